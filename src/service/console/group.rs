//! A group's page: the header and tabs it shares with the Users tab, and its General tab — name
//! and description, roles per app, and the way to delete it. A declared group shows these
//! read-only, naming the configuration line that owns them.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::form::{Form, unix_line_ends};
use super::layout::{self, Nav, described_by, field_error};
use super::session::Session;
use super::{Console, Failure, links, refusal_status, roles};
use crate::admin::{AdminError, stage_of};
use crate::config::Config;
use crate::model::GroupName;
use crate::views::{self, GroupDoc};

/// The tabs of a group's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tab {
    /// Name, description, roles, delete.
    General,
    /// Members.
    Users,
}

/// The `groups show` document of (`stage`, `name`), or a not-found page — also for a stage
/// that is not one of `daemon.stages`, even when the state still holds groups of it.
pub(super) async fn load(console: &Console, stage: &str, name: &str) -> Result<GroupDoc, Failure> {
    let missing = format!("There is no group {name:?} in stage {stage}.");
    let stage = stage_of(&console.config(), stage);
    let (Ok(stage), Ok(name)) = (stage, GroupName::parse(name)) else {
        return Err(Failure::NotFound(missing));
    };
    console
        .read(move |config, state| views::group_doc(config, state, &stage, &name))
        .await?
        .ok_or(Failure::NotFound(missing))
}

/// The group's title, stage, badges and tabs.
pub(super) fn header(config: &Config, doc: &GroupDoc, tab: Tab) -> Markup {
    let declared = views::declared_line(config, &doc.stage, &doc.name);
    html! {
        p.muted { a href=(links::groups_of(&doc.stage)) { "Groups of " (doc.stage) } }
        h1 { (doc.name) }
        p.subtitle {
            "Stage " strong { (doc.stage) }
            @if declared.is_some() { " " span.badge.declared { "Declared" } }
        }
        @if let Some(line) = declared {
            p.note {
                "The configuration declares this group ("
                code { (config.path.display()) } " line " (line.unwrap_or(0))
                "): its name, description and roles change there. Direct members can be edited here."
            }
        }
        nav aria-label="Group" {
            ul.tabs {
                li { a href=(links::group(&doc.stage, &doc.name))
                    aria-current=[(tab == Tab::General).then_some("page")] { "General" } }
                li { a href=(links::group_users(&doc.stage, &doc.name))
                    aria-current=[(tab == Tab::Users).then_some("page")] {
                    "Users (" (doc.members.len()) ")" } }
            }
        }
    }
}

/// The values and errors of the General tab's forms (the ones submitted, when refused).
#[derive(Debug, Clone, Default)]
pub(super) struct GeneralForm {
    /// The name field.
    pub(super) name: String,
    /// The description field.
    pub(super) description: String,
    /// The roles checked.
    pub(super) roles: Vec<String>,
    /// The free-text roles field.
    pub(super) roles_text: String,
    /// Why the name was refused.
    pub(super) name_error: Option<String>,
    /// Why the roles were refused.
    pub(super) roles_error: Option<String>,
    /// A refusal that belongs to no one field.
    pub(super) top_error: Option<String>,
}

impl GeneralForm {
    /// The forms filled with the group as it is.
    pub(super) fn of(doc: &GroupDoc) -> GeneralForm {
        GeneralForm {
            name: doc.name.clone(),
            description: doc.description.clone(),
            roles: doc.roles.clone(),
            ..GeneralForm::default()
        }
    }
}

/// The General tab.
pub(super) fn general_page(
    config: &Config,
    session: &Session,
    doc: &GroupDoc,
    form: &GeneralForm,
) -> Markup {
    let here = links::group(&doc.stage, &doc.name);
    let name_error = form.name_error.as_deref();
    let body = html! {
        (header(config, doc, Tab::General))
        @if let Some(error) = &form.top_error { p.alert role="alert" { (error) } }
        @if doc.declared {
            section.card {
                h2 { "Details" }
                dl.facts {
                    dt { "Name" } dd { (doc.name) }
                    dt { "Description" } dd { (doc.description) }
                }
            }
            section.card {
                h2 { "Roles" }
                @if doc.roles.is_empty() { p.muted { "No roles." } }
                @for role in &doc.roles { span.badge { (role) } }
            }
        } @else {
            section.card aria-labelledby="details-heading" {
                h2 #details-heading { "Name and description" }
                form method="post" action=(here) {
                    (layout::csrf(session))
                    label for="name" { "Name" }
                    input #name type="text" name="name" value=(form.name) required
                        aria-invalid=[name_error.map(|_| "true")]
                        aria-describedby=[described_by("name", name_error)];
                    (field_error("name", name_error))
                    label for="description" { "Description" }
                    textarea #description name="description" { (form.description) }
                    div.actions { button type="submit" { "Save" } }
                }
            }
            section.card aria-labelledby="roles-heading" {
                h2 #roles-heading { "Roles" }
                p.muted { "Members of the group have these roles in the apps of stage " (doc.stage) "." }
                form method="post" action=(format!("{here}/roles")) {
                    (layout::csrf(session))
                    (roles::picker(config, &form.roles, &form.roles_text, form.roles_error.as_deref()))
                    div.actions { button type="submit" { "Save roles" } }
                }
            }
            section.card aria-labelledby="delete-heading" {
                h2 #delete-heading { "Delete group" }
                p { "Deleting asks first what happens to its members and shows the roles they would lose." }
                a.button.danger href=(links::group_delete(&doc.stage, &doc.name)) { "Delete group…" }
            }
        }
    };
    layout::page(&doc.name, Nav::Groups, session, body)
}

/// `GET /groups/{stage}/{name}`: the General tab.
pub(super) async fn general(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path((stage, name)): Path<(String, String)>,
) -> Result<Markup, Failure> {
    let doc = load(&console, &stage, &name).await?;
    Ok(general_page(
        &console.config(),
        &session,
        &doc,
        &GeneralForm::of(&doc),
    ))
}

/// `POST /groups/{stage}/{name}`: rename and/or describe the group.
pub(super) async fn edit(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
    Path((stage, name)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let (new_name, description) = (form.text("name").to_owned(), form.textarea("description"));
    let (s, n, w, d) = (
        stage.clone(),
        name.clone(),
        new_name.clone(),
        description.clone(),
    );
    let outcome = console
        .edit(move |edits| {
            let doc = edits.group(&s, &n)?;
            let rename = (w.trim() != doc.name).then_some(w.as_str());
            // Line ends aside: a description stored with `\r\n` shown and sent back unchanged.
            let describe = (d != unix_line_ends(&doc.description)).then_some(d.as_str());
            if rename.is_none() && describe.is_none() {
                return Ok((doc, false));
            }
            Ok((edits.update(&s, &n, rename, describe)?, true))
        })
        .await?;
    match outcome {
        Ok((doc, changed)) => {
            let flash = match (changed, doc.name != name) {
                (false, _) => "Nothing changed.".to_owned(),
                (true, true) => format!("Renamed {name:?} to {:?}.", doc.name),
                (true, false) => "Saved.".to_owned(),
            };
            Ok(console.done(&session, &links::group(&doc.stage, &doc.name), flash))
        }
        Err(AdminError::NotFound(detail)) => Err(Failure::NotFound(detail)),
        Err(e) => {
            let doc = load(&console, &stage, &name).await?;
            let beside_name = matches!(e, AdminError::Conflict(_) | AdminError::Invalid(_));
            let values = GeneralForm {
                name: new_name,
                description,
                name_error: beside_name.then(|| e.to_string()),
                top_error: (!beside_name).then(|| e.to_string()),
                ..GeneralForm::of(&doc)
            };
            let page = general_page(&console.config(), &session, &doc, &values);
            Ok((refusal_status(&e), page).into_response())
        }
    }
}
