//! Runs: the history a page at a time, "Run now", one run followed until it finishes, and the
//! preview of the next reconcile (its dry-run plan, writing nothing).

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{self, Nav};
use super::report::report;
use super::session::Session;
use super::{Console, Failure, links};
use crate::service::runs::Started;
use crate::state::RunSummary;
use crate::sync::RunOptions;

/// Runs per page.
const PAGE: u32 = 25;

/// The query of the history.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct RunsQuery {
    /// The cursor of the page (from the "Older runs" link).
    #[serde(default)]
    before: Option<i64>,
}

fn run_buttons(session: &Session, preview_label: &str) -> Markup {
    html! {
        div.actions {
            form method="post" action="/runs" {
                (layout::csrf(session))
                button #run-now type="submit" { "Run now" }
            }
            a.button.secondary href="/preview" { (preview_label) }
        }
    }
}

/// `GET /runs`.
pub(super) async fn list(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Query(query): Query<RunsQuery>,
) -> Result<Markup, Failure> {
    let page = console
        .read(move |_, state| state.runs_page(PAGE, query.before))
        .await?;
    let body = html! {
        h1 { "Runs" }
        (run_buttons(&session, "Preview next reconcile"))
        @if page.runs.is_empty() {
            p.muted { "No run yet." }
        } @else {
            div.table-wrap {
                table #runs {
                    thead { tr {
                        th scope="col" { "Started" } th scope="col" { "Actor" }
                        th scope="col" { "Outcome" } th.num scope="col" { "Adds" }
                        th.num scope="col" { "Removes" } th.hide-narrow scope="col" { "IdPs" }
                    } }
                    tbody { @for run in &page.runs { (run_row(run)) } }
                }
            }
        }
        @if let Some(next) = page.next {
            p.pager { a href=(format!("/runs?before={next}")) { "Older runs" } }
        }
    };
    Ok(layout::page("Runs", Nav::Runs, &session, body))
}

fn run_row(run: &RunSummary) -> Markup {
    html! {
        tr {
            td { a href=(links::run(&run.run_id)) { (run.started) } }
            td { (run.actor) }
            td { (layout::status_badge(&run.outcome)) }
            td.num { (run.adds) }
            td.num { (run.removes) }
            td.hide-narrow {
                @for idp in &run.idps {
                    span.badge title=[idp.detail.as_deref()] { (idp.idp) ": " (idp.outcome) }
                }
            }
        }
    }
}

/// `POST /runs`: "Run now" — a real reconcile of every IdP, followed on its page.
pub(super) async fn run_now(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
) -> Response {
    let id = console.shared.start_run(RunOptions::default());
    console.done(&session, &links::run(&id), "Run started.")
}

/// `GET /runs/{id}`: one run; while it is queued or running the page reloads itself.
pub(super) async fn show(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Markup, Failure> {
    let started = console.shared.runs.started(&id);
    let run_id = id.clone();
    let summary = console
        .read(move |_, state| state.run_summary(&run_id))
        .await?;
    if started.is_none() && summary.is_none() {
        return Err(Failure::NotFound(format!("There is no run {id}.")));
    }
    let title = format!("Run {id}");
    let going = matches!(started, Some(Started::Queued | Started::Running));
    if going && let Some(flash) = &session.flash {
        // The page reloads itself while the run goes: the message stays until it is done.
        console.sessions.flash(&session.id, flash.clone());
    }
    let body = html! {
        p.muted { a href="/runs" { "All runs" } }
        h1 { "Run" }
        p.subtitle { code { (id) } }
        @if going { (refresh_note(&id)) }
        @match &started {
            Some(Started::Queued) => p #run-status.note role="status" data-state="queued" {
                "Queued: it starts when the run in hand finishes. This page follows it."
            },
            Some(Started::Running) => p #run-status.note role="status" data-state="running" {
                "Running: reading the IdPs and applying. This page follows it."
            },
            Some(Started::Failed(why)) => p #run-status.alert role="alert" data-state="failed" {
                "The run failed as a whole: " (why)
            },
            Some(Started::Finished { report: doc, exit_code }) => {
                p #run-status data-state="finished" {
                    "Finished: " (layout::status_badge(doc.outcome().as_str()))
                    span.muted { " (exit status " (exit_code) " from the CLI)" }
                }
                (report(doc, false))
            },
            None => {},
        }
        @if let Some(run) = &summary {
            @if started.is_none() {
                p #run-status data-state="recorded" { "Outcome: " (layout::status_badge(&run.outcome)) }
            }
            section.card {
                h2 { "Record" }
                dl.facts {
                    dt { "Started by" } dd { (run.actor) }
                    dt { "Started" } dd { (run.started) }
                    dt { "Finished" } dd { (run.finished.as_deref().unwrap_or("—")) }
                    dt { "Adds" } dd { (run.adds) }
                    dt { "Removes" } dd { (run.removes) }
                    @for idp in &run.idps {
                        dt { "IdP " (idp.idp) }
                        dd {
                            (layout::status_badge(&idp.outcome)) " +" (idp.adds) " −" (idp.removes)
                            @if let Some(detail) = &idp.detail { br; span.muted { (detail) } }
                        }
                    }
                }
            }
        }
    };
    Ok(if going {
        layout::refreshing_page(&title, Nav::Runs, &session, body)
    } else {
        layout::page(&title, Nav::Runs, &session, body)
    })
}

/// What a run page still going says of its reloading, with a link to reload it now.
fn refresh_note(id: &str) -> Markup {
    html! {
        p.muted {
            "This page reloads itself every " (layout::REFRESH_SECONDS) " seconds. "
            a #run-refresh href=(links::run(id)) { "Refresh" }
        }
    }
}

/// `GET /preview`: what a run would do now, writing nothing.
pub(super) async fn preview(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
) -> Markup {
    let plan = console.shared.dry_run(RunOptions::default()).await;
    let body = html! {
        h1 { "Preview of the next reconcile" }
        p.muted { "Every IdP read now and planned against the store; nothing is written." }
        (run_buttons(&session, "Preview again"))
        @match &plan {
            Ok(doc) => (report(doc, true)),
            Err(e) => p.alert role="alert" { "The preview failed: " (e) },
        }
    };
    layout::page("Preview", Nav::Preview, &session, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_still_going_has_a_refresh_link_to_itself() {
        let note = refresh_note("r 1").into_string();
        assert!(note.contains("every 3 seconds"), "{note}");
        assert!(
            note.contains(r#"<a id="run-refresh" href="/runs/r%201">Refresh</a>"#),
            "{note}"
        );
    }
}
