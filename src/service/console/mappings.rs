//! Every configured mapping with its status: active, or inactive with the reason and what to do
//! about it; a mapping that names a renamed group's former name carries its warning.

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};

use super::layout::{self, Nav};
use super::session::Session;
use super::{Console, Failure, links};

/// What an inactive mapping's reason code means, in words a person can act on.
fn reason_in_words(reason: &str) -> &'static str {
    match reason {
        "stage_not_served" => "its stage is not in daemon.stages",
        "group_not_found" => {
            "no such end-user group: create it, or declare it in the configuration"
        }
        "idp_group_not_found" => "the IdP's last read found no such IdP group",
        "idp_group_ambiguous" => "several IdP groups have this name: map it by id",
        "remote_group_not_found" => "the remote store has no such group",
        _ => "see the run's report",
    }
}

/// The create form of group `name` in `stage`, the name filled in.
fn create_link(stage: &str, name: &str) -> String {
    format!(
        "/groups/new?stage={}&name={}",
        links::query(stage),
        links::query(name)
    )
}

/// `GET /mappings`.
pub(super) async fn list(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
) -> Result<Markup, Failure> {
    let mappings = console.read(crate::admin::mapping_docs).await?;
    let body = html! {
        h1 { "Mappings" }
        p.muted { "IdP groups and the end-user groups their members join, from the configuration." }
        @if mappings.is_empty() {
            p.muted { "The configuration has no [[mapping]]." }
        } @else {
            div.table-wrap {
                table #mappings {
                    thead { tr {
                        th scope="col" { "IdP" }
                        th scope="col" { "IdP group" }
                        th scope="col" { "End-user group" }
                        th scope="col" { "Status" }
                    } }
                    tbody {
                        @for m in &mappings {
                            tr {
                                td { (m.idp) }
                                td { (m.idp_group) }
                                td {
                                    @if m.reason.as_deref() == Some("group_not_found") {
                                        (m.group) span.muted { " in " (m.stage) } br;
                                        a href=(create_link(&m.stage, &m.group)) { "Create it" }
                                    } @else {
                                        a href=(links::group(&m.stage, &m.group)) { (m.group) }
                                        span.muted { " in " (m.stage) }
                                    }
                                }
                                td {
                                    (layout::status_badge(m.status))
                                    @if let Some(reason) = &m.reason {
                                        " " code { (reason) } br;
                                        span.muted { (reason_in_words(reason)) }
                                    }
                                    @if let Some(warning) = &m.warning {
                                        p.note { (warning) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Mappings", Nav::Mappings, &session, body))
}
