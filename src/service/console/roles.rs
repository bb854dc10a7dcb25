//! Roles per app: the checkboxes of the `[[app]]` catalogue (or, without one, a free-text
//! `App/Role` field), what a submitted form asks for, and saving a group's roles.

use std::collections::BTreeSet;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::form::Form;
use super::group::{self, GeneralForm};
use super::layout::{described_by, field_error};
use super::session::Session;
use super::{Console, Failure, links, refusal_status};
use crate::admin::AdminError;
use crate::config::Config;

/// The roles field set: one checkbox per catalogue role (and per role the group has outside it),
/// or without a catalogue the roles as checkboxes and a field to add more as `App/Role`.
pub(super) fn picker(
    config: &Config,
    checked: &[String],
    free_text: &str,
    error: Option<&str>,
) -> Markup {
    let checked: BTreeSet<&str> = checked.iter().map(String::as_str).collect();
    let catalogued: BTreeSet<String> = config
        .apps
        .iter()
        .flatten()
        .flat_map(|(app, roles)| roles.iter().map(move |r| format!("{app}/{r}")))
        .collect();
    let others: Vec<&str> = checked
        .iter()
        .copied()
        .filter(|r| !catalogued.contains(*r))
        .collect();
    html! {
        div #roles aria-describedby=[described_by("roles", error)] {
            @if let Some(apps) = &config.apps {
                @for (app, roles) in apps {
                    fieldset {
                        legend { (app) }
                        @for role in roles {
                            @let value = format!("{app}/{role}");
                            label.check {
                                input type="checkbox" name="role" value=(value)
                                    checked[checked.contains(value.as_str())];
                                (role)
                            }
                        }
                    }
                }
            }
            @if !others.is_empty() {
                fieldset {
                    legend { @if config.apps.is_some() { "Outside the catalogue" } @else { "Roles" } }
                    @for role in &others {
                        label.check {
                            input type="checkbox" name="role" value=(role) checked;
                            (role)
                        }
                    }
                }
            }
            @if config.apps.is_none() {
                label for="new_roles" { "Add roles" }
                input #new_roles type="text" name="new_roles" value=(free_text)
                    placeholder="App/Role, App/Other" aria-invalid=[error.map(|_| "true")];
                p.muted { "Write each role as App/Role; separate several with commas." }
            }
            (field_error("roles", error))
        }
    }
}

/// The roles a submitted form asks for: the checked boxes and the free-text ones, once each.
pub(super) fn submitted(form: &Form) -> Vec<String> {
    let mut roles: Vec<String> = form.all("role");
    roles.extend(
        form.text("new_roles")
            .split([',', '\n'])
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned),
    );
    let mut seen = BTreeSet::new();
    roles.retain(|r| seen.insert(r.clone()));
    roles
}

/// `POST /groups/{stage}/{name}/roles`: the group's roles become the ones checked.
pub(super) async fn edit(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Extension(form): Extension<Form>,
    Path((stage, name)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let wanted = submitted(&form);
    let (s, n, w) = (stage.clone(), name.clone(), wanted.clone());
    let outcome = console
        .edit(move |edits| {
            let doc = edits.group(&s, &n)?;
            let add: Vec<String> = w
                .iter()
                .filter(|r| !doc.roles.contains(r))
                .cloned()
                .collect();
            let remove: Vec<String> = doc
                .roles
                .iter()
                .filter(|r| !w.contains(r))
                .cloned()
                .collect();
            if add.is_empty() && remove.is_empty() {
                return Ok(None);
            }
            edits.roles(&s, &n, &add, &remove).map(Some)
        })
        .await?;
    let to = links::group(&stage, &name);
    match outcome {
        Ok(None) => Ok(console.done(&session, &to, "No roles changed.")),
        Ok(Some(roles)) => {
            let listed = if roles.is_empty() {
                "none".to_owned()
            } else {
                roles.join(", ")
            };
            Ok(console.done(&session, &to, format!("Roles saved: {listed}.")))
        }
        Err(AdminError::NotFound(detail)) => Err(Failure::NotFound(detail)),
        Err(e) => {
            let doc = group::load(&console, &stage, &name).await?;
            let field = GeneralForm {
                roles: wanted,
                roles_text: form.text("new_roles").to_owned(),
                roles_error: matches!(e, AdminError::UnknownRole(_)).then(|| e.to_string()),
                top_error: (!matches!(e, AdminError::UnknownRole(_))).then(|| e.to_string()),
                ..GeneralForm::of(&doc)
            };
            let page = group::general_page(&console.config(), &session, &doc, &field);
            Ok((refusal_status(&e), page).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_and_written_roles_are_taken_once_each() {
        let form = Form::parse(
            b"role=Dash%2FViewer&new_roles=Ops%2FAdmin%2C+Dash%2FViewer%2C+&role=Dash%2FEditor",
        );
        assert_eq!(
            submitted(&form),
            ["Dash/Viewer", "Dash/Editor", "Ops/Admin"]
        );
    }
}
