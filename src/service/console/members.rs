//! A group's Users tab: direct members added and removed by key; mapped members (provenance
//! `idp:<name>`) shown read-only with their IdP badge, as ODC shows "Mapped". In a stage a remote
//! store serves, direct edits are refused, so the form is not offered.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::form::Form;
use super::group::{self, Tab};
use super::layout::{self, Nav, described_by, field_error};
use super::session::Session;
use super::{Console, Failure, links, refusal_status};
use crate::admin::AdminError;
use crate::config::Config;
use crate::model::Stage;
use crate::views::GroupDoc;

/// The add form's value and the refusal to show.
#[derive(Debug, Default)]
struct UsersForm {
    user: String,
    user_error: Option<String>,
    top_error: Option<String>,
}

fn users_page(config: &Config, session: &Session, doc: &GroupDoc, form: &UsersForm) -> Markup {
    let here = links::group_users(&doc.stage, &doc.name);
    let remote = Stage::parse(&doc.stage).is_ok_and(|s| config.store.serves_remotely(&s));
    let user_error = form.user_error.as_deref();
    let body = html! {
        (group::header(config, doc, Tab::Users))
        @if let Some(error) = &form.top_error { p.alert role="alert" { (error) } }
        @if remote {
            p.note {
                "Stage " (doc.stage) " is served by the " (config.store.kind()) " store: direct "
                "members are not edited here. Change memberships in the IdP (through a mapping) "
                "or in the store itself."
            }
        } @else {
            section.card aria-labelledby="add-heading" {
                h2 #add-heading { "Add a user" }
                form.inline method="post" action=(format!("{here}/add")) {
                    (layout::csrf(session))
                    div {
                        label for="user" { "User key" }
                        input #user type="text" name="user" value=(form.user) required
                            placeholder="ana@example.com" autocomplete="off"
                            aria-invalid=[user_error.map(|_| "true")]
                            aria-describedby=[described_by("user", user_error)];
                    }
                    button type="submit" { "Add user" }
                }
                (field_error("user", user_error))
            }
        }
        @if doc.members.is_empty() {
            p.muted { "The group has no members." }
        } @else {
            div.table-wrap {
                table #members {
                    caption.muted { (layout::count(doc.members.len(), "member", "members")) }
                    thead { tr {
                        th scope="col" { "User" }
                        th scope="col" { "Membership" }
                        th scope="col" { span.hide-narrow { "Action" } }
                    } }
                    tbody {
                        @for member in &doc.members {
                            @let direct = member.provenance.iter().any(|p| p == "direct");
                            tr data-user=(member.user) {
                                td { a href=(links::user(&member.user)) { (member.user) } }
                                td { @for p in &member.provenance { (layout::provenance_badge(p)) } }
                                td {
                                    @if direct && !remote {
                                        form method="post" action=(format!("{here}/remove")) {
                                            (layout::csrf(session))
                                            input type="hidden" name="user" value=(member.user);
                                            button.secondary.small type="submit"
                                                aria-label=(format!("Remove {} (direct membership)", member.user)) {
                                                "Remove"
                                            }
                                        }
                                    } @else if !direct {
                                        span.muted.hide-narrow { "Managed by the IdP" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(&format!("{} · Users", doc.name), Nav::Groups, session, body)
}

/// `GET /groups/{stage}/{name}/users`: the Users tab.
pub(super) async fn tab(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path((stage, name)): Path<(String, String)>,
) -> Result<Markup, Failure> {
    let doc = group::load(&console, &stage, &name).await?;
    Ok(users_page(
        &console.config(),
        &session,
        &doc,
        &UsersForm::default(),
    ))
}

/// `POST /groups/{stage}/{name}/users/add`: a direct member.
pub(super) async fn add(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
    Path((stage, name)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let user = form.text("user").trim().to_owned();
    let (s, n, u) = (stage.clone(), name.clone(), user.clone());
    let outcome = console
        .edit(move |edits| edits.members(&s, &n, &[u], &[]))
        .await?;
    let to = links::group_users(&stage, &name);
    match outcome {
        Ok(done) => {
            let flash = match (done.added.first(), done.already.first()) {
                (Some(added), _) => format!("Added {added} as a direct member."),
                (None, Some(already)) => format!("{already} was already a direct member."),
                (None, None) => "Nothing changed.".to_owned(),
            };
            Ok(console.done(&session, &to, flash))
        }
        Err(e) => {
            let beside = matches!(e, AdminError::Invalid(_));
            let values = UsersForm {
                user,
                user_error: beside.then(|| e.to_string()),
                top_error: (!beside).then(|| e.to_string()),
            };
            refused(&console, &session, &stage, &name, &e, &values).await
        }
    }
}

/// `POST /groups/{stage}/{name}/users/remove`: a direct membership ends; a mapped one stays.
pub(super) async fn remove(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
    Path((stage, name)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let user = form.text("user").to_owned();
    let (s, n, u) = (stage.clone(), name.clone(), user);
    let outcome = console
        .edit(move |edits| edits.members(&s, &n, &[], &[u]))
        .await?;
    let to = links::group_users(&stage, &name);
    match outcome {
        Ok(done) => {
            let flash = match done.removed.first() {
                Some((user, kept)) if kept.is_empty() => {
                    format!("Removed {user} from the group.")
                }
                Some((user, kept)) => {
                    let kept: Vec<String> = kept.iter().map(ToString::to_string).collect();
                    format!(
                        "Removed {user}'s direct membership; {user} stays a member through {}.",
                        kept.join(", ")
                    )
                }
                None => "Nothing changed.".to_owned(),
            };
            Ok(console.done(&session, &to, flash))
        }
        Err(e) => {
            let values = UsersForm {
                top_error: Some(e.to_string()),
                ..UsersForm::default()
            };
            refused(&console, &session, &stage, &name, &e, &values).await
        }
    }
}

async fn refused(
    console: &Console,
    session: &Session,
    stage: &str,
    name: &str,
    e: &AdminError,
    values: &UsersForm,
) -> Result<Response, Failure> {
    if let AdminError::NotFound(detail) = e {
        return Err(Failure::NotFound(detail.clone()));
    }
    let doc = group::load(console, stage, name).await?;
    let page = users_page(&console.config(), session, &doc, values);
    Ok((refusal_status(e), page).into_response())
}
