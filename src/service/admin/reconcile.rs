//! `POST /v1/admin/reconcile` (a dry run answers its plan; a real run answers `202` and is
//! followed at `/v1/admin/runs/{id}`), and `POST /v1/admin/refusals/{idp}/approve`, the run that
//! lets one pending refusal through with exactly what its `allow` command names.

use std::sync::Arc;

use axum::Json;
use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::body::{Q, Segments};
use super::{Problem, blocking};
use crate::model::IdpName;
use crate::service::Shared;
use crate::service::runs::Started;
use crate::state::{RunSummary, State};
use crate::sync::{RunOptions, SyncError};

/// `?dry_run=&allow_removals=&allow_empty=&idp=&full=`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ReconcileQuery {
    /// Plan only and answer the plan; write nothing.
    #[serde(default)]
    dry_run: bool,
    /// Let through up to this many removals per IdP (`--allow-removals N`).
    allow_removals: Option<u64>,
    /// Let an IdP that reads as empty apply (`--allow-empty`).
    #[serde(default)]
    allow_empty: bool,
    /// Only this IdP (all batch IdPs when absent).
    idp: Option<String>,
    /// Read every IdP whole (`--full`).
    #[serde(default)]
    full: bool,
}

/// A run started: follow it at `href`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct StartedDoc {
    /// The run's id (its audit actor is `run:<id>`).
    run_id: String,
    /// Where to follow it.
    href: String,
}

/// Where a run is, and its reconcile document once it is done.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RunDoc {
    /// The run's id.
    run_id: String,
    /// `queued`, `running`, `finished` or `failed`.
    status: &'static str,
    /// Its record in the run history, once it has one.
    run: Option<RunSummary>,
    /// The reconcile document (SPEC §3) of a run started through this service, once finished.
    #[schema(value_type = Option<Object>)]
    report: Option<serde_json::Value>,
    /// The exit status the same run would have from the CLI, once finished.
    exit_code: Option<u8>,
    /// Why it failed as a whole.
    error: Option<String>,
}

fn options_of(query: &ReconcileQuery) -> Result<RunOptions, Problem> {
    let idps = match &query.idp {
        Some(name) => vec![IdpName::parse(name).map_err(|e| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_idp",
                format!("idp {name:?}: {}", e.0),
            )
        })?],
        None => Vec::new(),
    };
    Ok(RunOptions {
        dry_run: query.dry_run,
        full: query.full,
        idps,
        allow_removals: query.allow_removals,
        allow_empty: query.allow_empty,
        ..RunOptions::default()
    })
}

fn sync_problem(e: SyncError) -> Problem {
    match e {
        SyncError::UnknownIdp(_) | SyncError::LoginOnly(_) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_idp",
            e.to_string(),
        ),
        SyncError::State(e) => e.into(),
        SyncError::Stopped => Problem::unavailable("the service is stopping"),
    }
}

/// Starts `options` as a real run and answers `202` pointing at it.
fn started(shared: &Arc<Shared>, options: RunOptions) -> Result<Response, Problem> {
    crate::sync::check_idps(&shared.config(), &options.idps).map_err(sync_problem)?;
    let run_id = shared.start_run(options);
    let href = format!("/v1/admin/runs/{run_id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(StartedDoc {
            run_id,
            href: href.clone(),
        }),
    )
        .into_response();
    if let Ok(location) = header::HeaderValue::from_str(&href) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Reconcile now, or plan what a reconcile would do.
#[utoipa::path(post, path = "/v1/admin/reconcile", tag = "runs", params(ReconcileQuery),
    responses((status = 200, description = "dry_run=true: the reconcile document of the plan; nothing was written", body = Object),
              (status = 202, description = "The run is started (after the run in hand, if any); follow it at `href`", body = StartedDoc),
              (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 422, description = "An unknown or login-only IdP", body = Problem)))]
pub(super) async fn reconcile(
    Extract(shared): Extract<Arc<Shared>>,
    Q(query): Q<ReconcileQuery>,
) -> Result<Response, Problem> {
    let options = options_of(&query)?;
    if !query.dry_run {
        return started(&shared, options);
    }
    let report = shared.dry_run(options).await.map_err(sync_problem)?;
    Ok(Json(report).into_response())
}

/// `?run_id=`: the refused run the caller saw.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ApproveQuery {
    /// Approve only if the pending refusal is still this run's (else 409), so a newer refusal
    /// is never approved unseen.
    run_id: Option<String>,
}

/// Approve an IdP's pending refusal: run it with what its `allow` command names.
#[utoipa::path(post, path = "/v1/admin/refusals/{idp}/approve", tag = "runs",
    params(("idp" = String, Path, description = "The refused IdP"), ApproveQuery),
    responses((status = 202, description = "The allowing run is started; follow it at `href`", body = StartedDoc),
              (status = 401, body = Problem), (status = 404, description = "The IdP has no pending refusal", body = Problem),
              (status = 409, description = "The pending refusal is another run's than `run_id`", body = Problem)))]
pub(super) async fn approve(
    Extract(shared): Extract<Arc<Shared>>,
    Segments(idp): Segments<String>,
    Q(query): Q<ApproveQuery>,
) -> Result<Response, Problem> {
    let config = shared.config();
    let wanted = idp.clone();
    let refusal = blocking(move || {
        let state = State::open_read_only(&config.daemon.state)?;
        Ok(crate::admin::refusal_docs(&config, &state)?
            .into_iter()
            .find(|r| r.idp == wanted))
    })
    .await?
    .ok_or_else(|| Problem::not_found(format!("IdP {idp:?} has no pending refusal")))?;
    if let Some(seen) = &query.run_id
        && *seen != refusal.run_id
    {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "the pending refusal of IdP {idp:?} is of run {} now, not {seen}: look at it again before approving",
                refusal.run_id
            ),
        ));
    }
    started(&shared, crate::admin::approval_of(&refusal))
}

/// Follow a run.
#[utoipa::path(get, path = "/v1/admin/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "The run id")),
    responses((status = 200, description = "Where the run is; its reconcile document once finished", body = RunDoc),
              (status = 401, body = Problem), (status = 404, body = Problem)))]
pub(super) async fn run(
    Extract(shared): Extract<Arc<Shared>>,
    Segments(id): Segments<String>,
) -> Result<Json<RunDoc>, Problem> {
    let started = shared.runs.started(&id);
    let config = shared.config();
    let wanted = id.clone();
    let record = blocking(move || {
        let state = State::open_read_only(&config.daemon.state)?;
        Ok(state.run_summary(&wanted)?)
    })
    .await?;
    let doc = match (started, record) {
        (None, None) => return Err(Problem::not_found(format!("no run {id:?}"))),
        (Some(Started::Queued), run) => RunDoc::new(id, "queued", run),
        (Some(Started::Running), run) => RunDoc::new(id, "running", run),
        (Some(Started::Failed(error)), run) => RunDoc {
            error: Some(error),
            ..RunDoc::new(id, "failed", run)
        },
        (Some(Started::Finished { report, exit_code }), run) => RunDoc {
            report: serde_json::to_value(&*report).ok(),
            exit_code: Some(exit_code),
            ..RunDoc::new(id, "finished", run)
        },
        // A run of the schedule, the CLI or an earlier instance: its record says.
        (None, Some(run)) => {
            let status = match run.outcome.as_str() {
                "running" => "running",
                "failed" | "interrupted" => "failed",
                _ => "finished",
            };
            RunDoc::new(id, status, Some(run))
        }
    };
    Ok(Json(doc))
}

impl RunDoc {
    fn new(run_id: String, status: &'static str, run: Option<RunSummary>) -> RunDoc {
        RunDoc {
            run_id,
            status,
            run,
            report: None,
            exit_code: None,
            error: None,
        }
    }
}
