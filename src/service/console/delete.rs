//! Deleting a group, with the members question asked first: the confirmation lists every member
//! and the roles each would lose (those no other group of the stage grants); deleting a group
//! with members needs "remove the N members too", and without it is refused, saying how many
//! remain and offering it again.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::form::Form;
use super::group::{self, Tab};
use super::layout::{self, Nav};
use super::session::Session;
use super::{Console, Failure, links, refusal_status};
use crate::admin::AdminError;
use crate::config::Config;
use crate::model::{GroupName, Stage};
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

/// `POST /groups/{stage}/{name}/delete`: delete it (and its members, when asked).
pub(super) async fn delete(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
    Path((stage, name)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let remove_members = form.checked("remove_members");
    let (s, n) = (stage.clone(), name.clone());
    let outcome = console
        .edit(move |edits| {
            let shown = edits.group(&s, &n)?.name;
            Ok((shown, edits.delete(&s, &n, remove_members)?))
        })
        .await?;
    match outcome {
        Ok((shown, lost)) => {
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
        Err(AdminError::NotFound(detail)) => Err(Failure::NotFound(detail)),
        Err(e) => {
            let (doc, lost) = load(&console, &stage, &name).await?;
            let page = confirm_page(&console.config(), &session, &doc, &lost, Some(&e));
            Ok((refusal_status(&e), page).into_response())
        }
    }
}

async fn load(
    console: &Console,
    stage: &str,
    name: &str,
) -> Result<(GroupDoc, Vec<LostRoles>), Failure> {
    let doc = group::load(console, stage, name).await?;
    let (Ok(stage), Ok(name)) = (Stage::parse(stage), GroupName::parse(name)) else {
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
    refused: Option<&AdminError>,
) -> Markup {
    let count = lost.len();
    let members = layout::count(count, "member", "members");
    let members_remain = matches!(refused, Some(AdminError::MembersRemain { .. }));
    let body = html! {
        (group::header(config, doc, Tab::General))
        h2 { "Delete group " (doc.name) "?" }
        @if let Some(e) = refused {
            p.alert role="alert" {
                @if members_remain {
                    "Not deleted: the group still has " (members) ". "
                    "Check “Also remove the " (members) "” to delete it with them."
                } @else { (e) }
            }
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
