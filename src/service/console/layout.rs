//! The page shell every console page shares — the head (viewport, the one stylesheet), a skip
//! link, the main navigation, the flash message and the sign-out button — and small pieces the
//! pages repeat: the CSRF field, a field's error, provenance badges.

use maud::{DOCTYPE, Markup, html};

use super::session::Session;

/// The sections of the main navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    /// End-user groups per stage.
    Groups,
    /// Search by user.
    Users,
    /// Mappings and their status.
    Mappings,
    /// Run history and "Run now".
    Runs,
    /// The dry-run plan of the next reconcile.
    Preview,
    /// Pending refusals.
    Refusals,
    /// The audit log.
    Audit,
}

impl Nav {
    const ALL: [Nav; 7] = [
        Nav::Groups,
        Nav::Users,
        Nav::Mappings,
        Nav::Runs,
        Nav::Preview,
        Nav::Refusals,
        Nav::Audit,
    ];

    fn label(self) -> &'static str {
        match self {
            Nav::Groups => "Groups",
            Nav::Users => "Users",
            Nav::Mappings => "Mappings",
            Nav::Runs => "Runs",
            Nav::Preview => "Preview",
            Nav::Refusals => "Refusals",
            Nav::Audit => "Audit",
        }
    }

    fn href(self) -> &'static str {
        match self {
            Nav::Groups => "/groups",
            Nav::Users => "/users",
            Nav::Mappings => "/mappings",
            Nav::Runs => "/runs",
            Nav::Preview => "/preview",
            Nav::Refusals => "/refusals",
            Nav::Audit => "/audit",
        }
    }
}

/// A page of a signed-in session: `body` under the navigation, `current` marked.
pub(super) fn page(title: &str, current: Nav, session: &Session, body: Markup) -> Markup {
    shell(title, false, session, current, body)
}

/// How often a [`refreshing_page`] reloads itself, in seconds.
pub(super) const REFRESH_SECONDS: u32 = 3;

/// As [`page`], reloading itself every [`REFRESH_SECONDS`] (a run still going); the page
/// itself shows a "Refresh" link too.
pub(super) fn refreshing_page(
    title: &str,
    current: Nav,
    session: &Session,
    body: Markup,
) -> Markup {
    shell(title, true, session, current, body)
}

fn shell(title: &str, refresh: bool, session: &Session, current: Nav, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, refresh))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/groups" { "idpsync" span.brand-sub { " console" } }
                    nav aria-label="Main" {
                        ul {
                            @for item in Nav::ALL {
                                li {
                                    a href=(item.href())
                                        aria-current=[(item == current).then_some("page")] {
                                        (item.label())
                                    }
                                }
                            }
                        }
                    }
                    form.sign-out method="post" action="/sign-out" {
                        (csrf(session))
                        button.link type="submit" { "Sign out" }
                    }
                }
                main #main tabindex="-1" {
                    @if let Some(flash) = &session.flash {
                        p.flash role="status" { (flash) }
                    }
                    (body)
                }
            }
        }
    }
}

/// A page outside a session (sign-in, refusals of the guard, failures).
pub(super) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, false))
            body.bare {
                main #main { (body) }
            }
        }
    }
}

fn head(title: &str, refresh: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if refresh {
                meta http-equiv="refresh" content=(REFRESH_SECONDS);
            }
            title { (title) " · idpsync console" }
            link rel="stylesheet" href="/assets/console.css";
        }
    }
}

/// The hidden field every form of the session carries.
pub(super) fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// The message beside field `id` when the last try refused it (referenced by the field's
/// `aria-describedby`).
pub(super) fn field_error(id: &str, error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error {
            p.field-error id=(format!("{id}-error")) role="alert" { (error) }
        }
    }
}

/// The `aria-describedby` of a field with [`field_error`].
pub(super) fn described_by(id: &str, error: Option<&str>) -> Option<String> {
    error.map(|_| format!("{id}-error"))
}

/// A membership's provenance as a badge: "Direct", or "Mapped" with its IdP, as ODC shows it.
pub(super) fn provenance_badge(provenance: &str) -> Markup {
    html! {
        @match provenance.strip_prefix("idp:") {
            Some(idp) => span.badge.mapped title=(format!("Added by IdP {idp} through a mapping; read-only here")) {
                "Mapped · " (idp)
            },
            None => span.badge.direct title="Added by an administrator" { "Direct" },
        }
    }
}

/// `n` and the noun that goes with it: "1 member", "3 members".
pub(super) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A status word (`active`, `refused`, …) as a coloured badge.
pub(super) fn status_badge(status: &str) -> Markup {
    let tone = match status {
        "active" | "applied" | "unchanged" => "good",
        "refused" | "inactive" | "interrupted" | "running" | "queued" => "warn",
        "failed" => "bad",
        _ => "plain",
    };
    html! { span class=(format!("badge {tone}")) { (status) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refreshing_page_reloads_itself_every_three_seconds() {
        let session = Session {
            id: "id".into(),
            csrf: "csrf".into(),
            flash: None,
        };
        let going = refreshing_page("Run", Nav::Runs, &session, html! {}).into_string();
        assert!(
            going.contains(r#"<meta http-equiv="refresh" content="3">"#),
            "{going}"
        );
        let done = page("Run", Nav::Runs, &session, html! {}).into_string();
        assert!(!done.contains("http-equiv"), "{done}");
    }
}
