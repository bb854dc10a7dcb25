//! Deleting a group, with the members question asked first: the confirmation lists every member
//! and the roles each would lose (those no other group of the stage grants); deleting a group
//! with members needs "remove the N members too", and without it is refused, saying how many
//! remain and offering it again. The confirmation sends the number of members it showed; if
//! they are not as many any more, nothing is deleted and the confirmation is shown again.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::form::Form;
use super::group::{self, Tab};
use super::layout::{self, Nav};
use super::session::Session;
use super::{Console, Failure, links, refusal_status};
use crate::admin::{AdminError, stage_of};
use crate::config::Config;
use crate::model::GroupName;
use crate::state::LostRoles;
use crate::views::GroupDoc;

/// `GET /groups/{stage}/{name}/delete`: the confirmation.
pub(super) async fn confirm(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path((stage, name)): Path<(String, String)>,
) -> Result<Markup, Failure> {
    let (doc, lost) = load(&console, &stage, &name).await?;
    Ok(confirm_page(&console.config(), &session, &doc, &lost, None))
}

/// What a delete POST came to.
enum Deleted {
    /// Gone: its name as shown, and the members removed with it.
    Gone(String, Vec<LostRoles>),
    /// Not deleted: the members are not the number the confirmation showed.
    MembersChanged,
}

/// `POST /groups/{stage}/{name}/delete`: delete it (and its members, when asked — only when
/// they are still as many as the confirmation showed, its hidden field `members`).
pub(super) async fn delete(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
    Path((stage, name)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let remove_members = form.checked("remove_members");
    let shown_members: Option<usize> = form.text("members").trim().parse().ok();
    let (s, n) = (stage.clone(), name.clone());
    let outcome = console
        .edit(move |edits| {
            let doc = edits.group(&s, &n)?;
            if remove_members {
                let stage = stage_of(edits.config(), &doc.stage)?;
                let group = GroupName::parse(&doc.name).map_err(|e| AdminError::Invalid(e.0))?;
                let now = edits.state().delete_preview(&stage, &group)?.len();
                if shown_members != Some(now) {
                    return Ok(Deleted::MembersChanged);
                }
            }
            Ok(Deleted::Gone(
                doc.name,
                edits.delete(&s, &n, remove_members)?,
            ))
        })
        .await?;
    match outcome {
        Ok(Deleted::Gone(shown, lost)) => {
            let members = match lost.len() {
                0 => String::new(),
                1 => " Its member was removed.".to_owned(),
                n => format!(" Its {n} members were removed."),
            };
            Ok(console.done(
                &session,
                &links::groups_of(&stage),
                format!("Group {shown:?} deleted from stage {stage}.{members}"),
            ))
        }
        Ok(Deleted::MembersChanged) => {
            let (doc, lost) = load(&console, &stage, &name).await?;
            let page = confirm_page(
                &console.config(),
                &session,
                &doc,
                &lost,
                Some(Refused::MembersChanged),
            );
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(AdminError::NotFound(detail)) => Err(Failure::NotFound(detail)),
        Err(e) => {
            let (doc, lost) = load(&console, &stage, &name).await?;
            let page = confirm_page(
                &console.config(),
                &session,
                &doc,
                &lost,
                Some(Refused::Edit(&e)),
            );
            Ok((refusal_status(&e), page).into_response())
        }
    }
}

/// Why the confirmation is shown again.
enum Refused<'e> {
    /// The delete was refused.
    Edit(&'e AdminError),
    /// The members changed since the confirmation was shown.
    MembersChanged,
}

async fn load(
    console: &Console,
    stage: &str,
    name: &str,
) -> Result<(GroupDoc, Vec<LostRoles>), Failure> {
    let doc = group::load(console, stage, name).await?;
    let stage = stage_of(&console.config(), stage);
    let (Ok(stage), Ok(name)) = (stage, GroupName::parse(name)) else {
        return Err(Failure::NotFound(format!("There is no group {name:?}.")));
    };
    let lost = console
        .read(move |_, state| state.delete_preview(&stage, &name))
        .await?;
    Ok((doc, lost))
}

fn confirm_page(
    config: &Config,
    session: &Session,
    doc: &GroupDoc,
    lost: &[LostRoles],
    refused: Option<Refused<'_>>,
) -> Markup {
    let count = lost.len();
    let members = layout::count(count, "member", "members");
    let members_remain = matches!(
        refused,
        Some(Refused::Edit(AdminError::MembersRemain { .. }))
    );
    let body = html! {
        (group::header(config, doc, Tab::General))
        h2 { "Delete group " (doc.name) "?" }
        @match refused {
            Some(Refused::MembersChanged) => p #members-changed.alert role="alert" {
                "The group's members changed since this page was shown: " (count) " now. "
                "Look again before deleting."
            },
            Some(Refused::Edit(_)) if members_remain => p.alert role="alert" {
                "Not deleted: the group still has " (members) ". "
                "Check “Also remove the " (members) "” to delete it with them."
            },
            Some(Refused::Edit(e)) => p.alert role="alert" { (e) },
            None => {},
        }
        @if doc.declared {
            p.note { "A declared group is deleted by removing it from the configuration." }
            p { a href=(links::group(&doc.stage, &doc.name)) { "Back to the group" } }
        } @else {
            @if count == 0 {
                p { "The group has no members: nobody loses a role." }
            } @else {
                p #members-question {
                    "The group has " strong { (members) } ". Deleting it with them ends "
                    "their membership; they lose the roles below (roles another group of stage "
                    (doc.stage) " grants them stay)."
                }
                div.table-wrap {
                    table #lost-roles {
                        thead { tr { th scope="col" { "Member" } th scope="col" { "Roles they would lose" } } }
                        tbody {
                            @for l in lost {
                                tr {
                                    td { (l.user) }
                                    td {
                                        @if l.roles.is_empty() { span.muted { "none" } }
                                        @for role in &l.roles { span.badge { (role) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.card method="post" action=(links::group_delete(&doc.stage, &doc.name)) {
                (layout::csrf(session))
                input type="hidden" name="members" value=(count);
                @if count > 0 {
                    label.check {
                        input #remove_members type="checkbox" name="remove_members" value="true"
                            aria-invalid=[members_remain.then_some("true")];
                        "Also remove the " (members) " too"
                    }
                }
                div.actions {
                    button.danger type="submit" { "Delete group" }
                    a href=(links::group(&doc.stage, &doc.name)) { "Cancel" }
                }
            }
        }
    };
    layout::page(&format!("Delete {}", doc.name), Nav::Groups, session, body)
}
