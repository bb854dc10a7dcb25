//! Pending refusals — IdP runs the guards refused — with what would allow each, and the approve
//! button: the same reconcile of that IdP with exactly what its `allow` command names
//! ([`crate::admin::approval_of`]), started at once and followed on its run page.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};

use super::form::Form;
use super::layout::{self, Nav};
use super::session::Session;
use super::{Console, Failure, links};
use crate::admin::{approval_of, refusal_docs};

/// `GET /refusals`.
pub(super) async fn list(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
) -> Result<Markup, Failure> {
    let refusals = console.read(refusal_docs).await?;
    let body = html! {
        h1 { "Refusals" }
        p.muted {
            "A run the safety guards refused changes nothing for that IdP until someone approves it. "
            "Approving runs the IdP's reconcile now, allowing exactly what the refusal names; a read "
            "that removes more than that is refused again."
        }
        @if refusals.is_empty() {
            p #no-refusals { "No refusal is pending." }
        }
        @for r in &refusals {
            section.card.refusal data-idp=(r.idp) {
                h2 { "IdP " (r.idp) " " (layout::status_badge("refused")) }
                dl.facts {
                    dt { "Guard" } dd { (r.guard) }
                    dt { "Why" } dd { (r.detail) }
                    dt { "Refused run" } dd { a href=(links::run(&r.run_id)) { code { (r.run_id) } } }
                    dt { "Allowed by" } dd { code { (r.allow) } }
                }
                form method="post" action=(format!("/refusals/{}/approve", links::segment(&r.idp))) {
                    (layout::csrf(&session))
                    input type="hidden" name="run_id" value=(r.run_id);
                    div.actions {
                        button type="submit" aria-label=(format!("Approve the refusal of IdP {}", r.idp)) {
                            "Approve and run"
                        }
                        a href="/preview" { "Preview first" }
                    }
                }
            }
        }
    };
    Ok(layout::page("Refusals", Nav::Refusals, &session, body))
}

/// `POST /refusals/{idp}/approve`: runs the allowing reconcile of the refusal shown (the form
/// names its run, so a newer refusal of the IdP is not approved unseen).
pub(super) async fn approve(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
    Path(idp): Path<String>,
) -> Result<Response, Failure> {
    let refusals = console.read(refusal_docs).await?;
    let run_id = form.text("run_id");
    let Some(refusal) = refusals.iter().find(|r| r.idp == idp && r.run_id == run_id) else {
        let why = if refusals.iter().any(|r| r.idp == idp) {
            format!(
                "IdP {idp} was refused again since that page was shown: review the new refusal first."
            )
        } else {
            format!("IdP {idp} has no pending refusal any more; nothing was run.")
        };
        return Ok(console.done(&session, "/refusals", why));
    };
    let approval = approval_of(refusal);
    let flags = allowed_in_words(&approval);
    let id = console.shared.start_run(approval);
    Ok(console.done(
        &session,
        &links::run(&id),
        format!(
            "Approved the refusal of IdP {idp}: its reconcile is running with {}.",
            flags
        ),
    ))
}

/// The flags an approval runs with, in the words of the `allow` command: read from the options
/// [`approval_of`] gives, so the page says what is run.
fn allowed_in_words(approval: &crate::sync::RunOptions) -> String {
    let mut flags = Vec::new();
    if approval.allow_empty {
        flags.push("--allow-empty".to_owned());
    }
    if let Some(n) = approval.allow_removals {
        flags.push(format!("--allow-removals {n}"));
    }
    if flags.is_empty() {
        "what the refusal names".to_owned()
    } else {
        flags.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(allow: &str) -> String {
        allowed_in_words(&approval_of(&crate::admin::RefusalDoc {
            idp: "corp".into(),
            run_id: "r".into(),
            guard: "removals".into(),
            detail: "d".into(),
            allow: allow.into(),
        }))
    }

    #[test]
    fn the_flags_of_the_allow_command_are_named() {
        assert_eq!(
            words("idpsync --config x.toml reconcile --idp corp --allow-removals 2"),
            "--allow-removals 2"
        );
        assert_eq!(words("idpsync reconcile"), "what the refusal names");
    }
}
