//! Search by user: the groups a user key is in, with provenances, and the effective roles per
//! stage and app (the `users show` document).

use axum::Extension;
use axum::extract::{Query, State};
use maud::{Markup, html};

use super::layout::{self, Nav, described_by, field_error};
use super::session::Session;
use super::{Console, Failure, links};
use crate::model::UserKey;
use crate::views::{self, UserDoc};

/// The query of the page.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct UserQuery {
    /// The user key searched for.
    #[serde(default)]
    key: Option<String>,
}

/// `GET /users?key=K`: the search form, and the user's groups and roles.
pub(super) async fn search(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Query(query): Query<UserQuery>,
) -> Result<Markup, Failure> {
    let raw = query.key.unwrap_or_default();
    let (doc, error) = if raw.trim().is_empty() {
        (None, None)
    } else {
        match UserKey::parse(&raw) {
            Ok(key) => {
                let doc = console
                    .read(move |_, state| views::user_doc(state, &key, None))
                    .await?;
                (Some(doc), None)
            }
            Err(e) => (None, Some(e.to_string())),
        }
    };
    let error = error.as_deref();
    let body = html! {
        h1 { "Users" }
        form.card method="get" action="/users" role="search" {
            div.inline {
                div {
                    label for="key" { "User key" }
                    input #key type="search" name="key" value=(raw) placeholder="ana@example.com"
                        aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[described_by("key", error)];
                }
                button type="submit" { "Show groups and roles" }
            }
            (field_error("key", error))
        }
        @if let Some(doc) = &doc { (user_view(doc)) }
    };
    Ok(layout::page("Users", Nav::Users, &session, body))
}

fn user_view(doc: &UserDoc) -> Markup {
    html! {
        h2 #user-heading { (doc.user) }
        @if doc.groups.is_empty() {
            p.muted { (doc.user) " is in no group." }
        } @else {
            div.table-wrap {
                table #user-groups {
                    caption.muted { "Groups" }
                    thead { tr { th scope="col" { "Stage" } th scope="col" { "Group" } th scope="col" { "Membership" } } }
                    tbody {
                        @for g in &doc.groups {
                            tr {
                                td { (g.stage) }
                                td { a href=(links::group(&g.stage, &g.name)) { (g.name) } }
                                td { @for p in &g.provenance { (layout::provenance_badge(p)) } }
                            }
                        }
                    }
                }
            }
            h2 { "Effective roles" }
            @if doc.roles.is_empty() { p.muted { "Their groups grant no roles." } }
            @for (stage, apps) in &doc.roles {
                section.card {
                    h3 { "Stage " (stage) }
                    dl.facts {
                        @for (app, roles) in apps {
                            dt { (app) }
                            dd { @for role in roles { span.badge { (role) } } }
                        }
                    }
                }
            }
        }
    }
}
