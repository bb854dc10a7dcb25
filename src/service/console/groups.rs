//! End-user groups per stage: the list with member counts and a search, and creating a group —
//! the stage chosen once, then shown read-only beside the name, description and roles.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::form::Form;
use super::layout::{self, Nav, described_by, field_error};
use super::session::Session;
use super::{Console, Failure, links, refusal_status, roles};
use crate::admin::{AdminError, CreateGroup, stage_of};
use crate::config::Config;
use crate::model::Stage;
use crate::views;

/// The query of the list and of the create form.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct ListQuery {
    /// The stage shown.
    #[serde(default)]
    stage: Option<String>,
    /// Text the names or descriptions must contain.
    #[serde(default)]
    q: Option<String>,
    /// The name the create form starts with (a mapping's group not created yet).
    #[serde(default)]
    name: Option<String>,
}

/// `raw` when it is one of `daemon.stages`.
fn served_stage(config: &Config, raw: &str) -> Option<Stage> {
    stage_of(config, raw).ok()
}

/// `GET /groups`: the groups of one stage (the first by default), filtered by `q`.
pub(super) async fn list(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Query(query): Query<ListQuery>,
) -> Result<Markup, Failure> {
    let config = console.config();
    let stage = query
        .stage
        .as_deref()
        .and_then(|s| served_stage(&config, s))
        .or_else(|| config.daemon.stages.first().cloned());
    let Some(stage) = stage else {
        let body = html! { h1 { "End-user groups" } p.note { "daemon.stages lists no stage." } };
        return Ok(layout::page("Groups", Nav::Groups, &session, body));
    };
    let shown = stage.clone();
    let groups = console
        .read(move |config, state| views::group_list(config, state, Some(&shown)))
        .await?;
    let q = query.q.unwrap_or_default();
    let needle = q.trim().to_lowercase();
    let matching: Vec<_> = groups
        .iter()
        .filter(|g| {
            needle.is_empty()
                || g.name.to_lowercase().contains(&needle)
                || g.description.to_lowercase().contains(&needle)
        })
        .collect();
    let body = html! {
        h1 { "End-user groups" }
        nav aria-label="Stages" {
            ul.stage-tabs {
                @for s in &config.daemon.stages {
                    li { a href=(links::groups_of(s.as_str()))
                        aria-current=[(*s == stage).then_some("page")] { (s) } }
                }
            }
        }
        div.toolbar {
            form method="get" action="/groups" role="search" {
                input type="hidden" name="stage" value=(stage);
                div {
                    label for="q" { "Search groups" }
                    input #q type="search" name="q" value=(q) placeholder="Name or description";
                }
                button.secondary type="submit" { "Search" }
            }
            a.button href=(format!("/groups/new?stage={}", links::query(stage.as_str()))) {
                "Create group"
            }
        }
        @if matching.is_empty() {
            p.muted {
                @if needle.is_empty() { "No groups in stage " (stage) " yet." }
                @else { "No group of stage " (stage) " matches “" (q) "”." }
            }
        } @else {
            div.table-wrap {
                table {
                    caption.muted { (layout::count(matching.len(), "group", "groups")) " in stage " (stage) }
                    thead { tr {
                        th scope="col" { "Name" }
                        th.hide-narrow scope="col" { "Description" }
                        th scope="col" { "Roles" }
                        th.num scope="col" { "Members" }
                    } }
                    tbody {
                        @for g in &matching {
                            tr {
                                td {
                                    a href=(links::group(&g.stage, &g.name)) { (g.name) }
                                    @if g.declared { " " span.badge.declared { "Declared" } }
                                }
                                td.hide-narrow { (g.description) }
                                td { @for role in &g.roles { span.badge { (role) } } }
                                td.num { a href=(links::group_users(&g.stage, &g.name))
                                    aria-label=(format!("{} members of {}", g.member_count, g.name)) {
                                    (g.member_count) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Groups", Nav::Groups, &session, body))
}

/// What the create form holds and why it was refused.
#[derive(Debug, Default)]
struct CreateForm {
    name: String,
    description: String,
    roles: Vec<String>,
    roles_text: String,
    stage_error: Option<String>,
    name_error: Option<String>,
    roles_error: Option<String>,
    top_error: Option<String>,
}

/// `GET /groups/new?stage=S`: the stage to choose, then the form for a group of that stage.
pub(super) async fn new(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Query(query): Query<ListQuery>,
) -> Markup {
    let config = console.config();
    match query
        .stage
        .as_deref()
        .and_then(|s| served_stage(&config, s))
    {
        Some(stage) => {
            let form = CreateForm {
                name: query.name.unwrap_or_default(),
                ..CreateForm::default()
            };
            create_page(&config, &session, Some(&stage), &form)
        }
        None => stage_page(&config, &session),
    }
}

/// `POST /groups`: create the group; its page next. A stage outside `daemon.stages` is
/// refused beside the stage field, the rest of the form kept.
pub(super) async fn create(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
) -> Result<Response, Failure> {
    let config = console.config();
    let typed = CreateForm {
        name: form.text("name").to_owned(),
        description: form.textarea("description"),
        roles: form.all("role"),
        roles_text: form.text("new_roles").to_owned(),
        ..CreateForm::default()
    };
    let stage = match stage_of(&config, form.text("stage")) {
        Ok(stage) => stage,
        Err(e) => {
            let values = CreateForm {
                stage_error: Some(e.to_string()),
                ..typed
            };
            let page = create_page(&config, &session, None, &values);
            return Ok((refusal_status(&e), page).into_response());
        }
    };
    let group = CreateGroup {
        name: typed.name.clone(),
        stage: stage.to_string(),
        description: typed.description.clone(),
        roles: roles::submitted(&form),
    };
    match console.edit(move |edits| edits.create(&group)).await? {
        Ok(doc) => Ok(console.done(
            &session,
            &links::group(&doc.stage, &doc.name),
            format!("Group {:?} created in stage {}.", doc.name, doc.stage),
        )),
        Err(e) => {
            let message = e.to_string();
            let values = match e {
                AdminError::Conflict(_) | AdminError::Invalid(_) => CreateForm {
                    name_error: Some(message),
                    ..typed
                },
                AdminError::UnknownRole(_) => CreateForm {
                    roles_error: Some(message),
                    ..typed
                },
                _ => CreateForm {
                    top_error: Some(message),
                    ..typed
                },
            };
            let page = create_page(&config, &session, Some(&stage), &values);
            Ok((refusal_status(&e), page).into_response())
        }
    }
}

fn stage_page(config: &Config, session: &Session) -> Markup {
    let body = html! {
        h1 { "Create a group" }
        form.card method="get" action="/groups/new" {
            fieldset {
                legend { "Stage of the new group (it never changes afterwards)" }
                @for (i, stage) in config.daemon.stages.iter().enumerate() {
                    label.check {
                        input type="radio" name="stage" value=(stage) required checked[i == 0];
                        (stage)
                    }
                }
            }
            div.actions { button type="submit" { "Continue" } }
        }
    };
    layout::page("Create a group", Nav::Groups, session, body)
}

/// The create form; with no `stage`, the stage is chosen in it (the one sent was refused).
fn create_page(
    config: &Config,
    session: &Session,
    stage: Option<&Stage>,
    form: &CreateForm,
) -> Markup {
    let name_error = form.name_error.as_deref();
    let stage_error = form.stage_error.as_deref();
    let back = stage.map_or_else(|| "/groups".to_owned(), |s| links::groups_of(s.as_str()));
    let body = html! {
        p.muted { a href=(back) { "Groups" @if let Some(stage) = stage { " of " (stage) } } }
        h1 { "Create a group" }
        @if let Some(error) = &form.top_error { p.alert role="alert" { (error) } }
        form.card method="post" action="/groups" {
            (layout::csrf(session))
            @if let Some(stage) = stage {
                input type="hidden" name="stage" value=(stage);
                dl.facts { dt { "Stage" } dd #stage { (stage) } }
            } @else {
                fieldset #stage aria-invalid=[stage_error.map(|_| "true")]
                    aria-describedby=[described_by("stage", stage_error)] {
                    legend { "Stage of the new group (it never changes afterwards)" }
                    @for s in &config.daemon.stages {
                        label.check { input type="radio" name="stage" value=(s) required; (s) }
                    }
                }
                (field_error("stage", stage_error))
            }
            label for="name" { "Name" }
            input #name type="text" name="name" value=(form.name) required autofocus
                aria-invalid=[name_error.map(|_| "true")]
                aria-describedby=[described_by("name", name_error)];
            (field_error("name", name_error))
            label for="description" { "Description" }
            textarea #description name="description" { (form.description) }
            h2 { "Roles" }
            (roles::picker(config, &form.roles, &form.roles_text, form.roles_error.as_deref()))
            div.actions {
                button type="submit" { "Create group" }
                a href=(back) { "Cancel" }
            }
        }
    };
    layout::page("Create a group", Nav::Groups, session, body)
}
