//! `/v1/admin/users/{key}`, `/mappings`, `/runs`, `/audit`, `/refusals`: what the store, the
//! configuration and the run history say, as the CLI shows them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State as Extract;
use serde::Deserialize;

use super::body::{Q, Segments};
use super::page::{Page, PageQuery};
use super::{Problem, blocking};
use crate::admin::{AuditQuery, MappingDoc, RefusalDoc};
use crate::model::UserKey;
use crate::service::Shared;
use crate::state::{AuditRecord, RunSummary, State};
use crate::views::UserDoc;

/// Show a user's groups and effective roles.
#[utoipa::path(get, path = "/v1/admin/users/{key}", tag = "users",
    params(("key" = String, Path, description = "The user key, percent-encoded")),
    responses((status = 200, description = "The `users show` document (a user in no group has none)", body = UserDoc),
              (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(super) async fn user(
    Extract(shared): Extract<Arc<Shared>>,
    Segments(key): Segments<String>,
) -> Result<Json<UserDoc>, Problem> {
    let key =
        UserKey::parse(&key).map_err(|e| Problem::bad_request(format!("{key:?}: {}", e.0)))?;
    let config = shared.config();
    let doc = blocking(move || {
        let state = State::open_read_only(&config.daemon.state)?;
        Ok(crate::views::user_doc(&state, &key, None)?)
    })
    .await?;
    Ok(Json(doc))
}

/// Every mapping with its status.
#[utoipa::path(get, path = "/v1/admin/mappings", tag = "mappings", params(PageQuery),
    responses((status = 200, description = "Mappings in configuration order", body = Page<MappingDoc>),
              (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(super) async fn mappings(
    Extract(shared): Extract<Arc<Shared>>,
    Q(page): Q<PageQuery>,
) -> Result<Json<Page<MappingDoc>>, Problem> {
    page.limit()?;
    let config = shared.config();
    let all = blocking(move || {
        let state = State::open_read_only(&config.daemon.state)?;
        Ok(crate::admin::mapping_docs(&config, &state)?)
    })
    .await?;
    Ok(Json(page.page_of(all)?))
}

/// The run history, newest first.
#[utoipa::path(get, path = "/v1/admin/runs", tag = "runs", params(PageQuery),
    responses((status = 200, description = "Runs, newest first, with each IdP's outcome", body = Page<RunSummary>),
              (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(super) async fn runs(
    Extract(shared): Extract<Arc<Shared>>,
    Q(page): Q<PageQuery>,
) -> Result<Json<Page<RunSummary>>, Problem> {
    let limit = page.limit()?;
    let before = page.keyset()?;
    let config = shared.config();
    let found = blocking(move || {
        let state = State::open_read_only(&config.daemon.state)?;
        Ok(state.runs_page(limit, before)?)
    })
    .await?;
    Ok(Json(Page {
        items: found.runs,
        next: found.next.map(|n| n.to_string()),
    }))
}

/// `?since=&user=&group=&stage=` and the page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AuditParams {
    /// Records at or after this RFC 3339 time.
    since: Option<String>,
    /// Records about this user.
    user: Option<String>,
    /// Records about this group (needs `stage`).
    group: Option<String>,
    /// Records of this stage.
    stage: Option<String>,
    /// How many items at most (1–1000; 100 when absent).
    limit: Option<u32>,
    /// The `next` of the page before.
    cursor: Option<String>,
}

/// Audit records, oldest first.
#[utoipa::path(get, path = "/v1/admin/audit", tag = "audit", params(AuditParams),
    responses((status = 200, description = "The `audit` records matching the filters, oldest first", body = Page<AuditRecord>),
              (status = 400, description = "A malformed filter", body = Problem), (status = 401, body = Problem)))]
pub(super) async fn audit(
    Extract(shared): Extract<Arc<Shared>>,
    Q(params): Q<AuditParams>,
) -> Result<Json<Page<AuditRecord>>, Problem> {
    let config = shared.config();
    let filter = crate::admin::audit_filter(
        &config,
        &AuditQuery {
            since: params.since.as_deref(),
            user: params.user.as_deref(),
            group: params.group.as_deref(),
            stage: params.stage.as_deref(),
        },
    )
    .map_err(|e| Problem::bad_request(e.to_string()))?;
    let page = PageQuery {
        limit: params.limit,
        cursor: params.cursor,
    };
    let limit = page.limit()?;
    let after = page.keyset()?;
    let (items, next) = blocking(move || {
        let state = State::open_read_only(&config.daemon.state)?;
        Ok(state.audit_page(&filter, after, Some(limit))?)
    })
    .await?;
    Ok(Json(Page {
        items,
        next: next.map(|n| n.to_string()),
    }))
}

/// Every IdP's unresolved refusal, with what would allow it.
#[utoipa::path(get, path = "/v1/admin/refusals", tag = "runs", params(PageQuery),
    responses((status = 200, description = "Pending refusals; approve one with POST /v1/admin/refusals/{idp}/approve", body = Page<RefusalDoc>),
              (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(super) async fn refusals(
    Extract(shared): Extract<Arc<Shared>>,
    Q(page): Q<PageQuery>,
) -> Result<Json<Page<RefusalDoc>>, Problem> {
    page.limit()?;
    let config = shared.config();
    let all = blocking(move || {
        let state = State::open_read_only(&config.daemon.state)?;
        Ok(crate::admin::refusal_docs(&config, &state)?)
    })
    .await?;
    Ok(Json(page.page_of(all)?))
}
