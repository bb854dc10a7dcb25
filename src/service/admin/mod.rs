//! The admin REST API (`/v1/admin/...`) and the web console (`/`) on `admin_listen` (SPEC §4),
//! bound only when `daemon.admin_token_file` is set.
//!
//! Both call the same library functions as the CLI ([`crate::admin`], [`crate::views`]), with
//! the same validation and the same checked apply, and audit their writes as actor `api`.
//! Every `/v1/admin/...` call needs the admin token; bodies are JSON of at most
//! [`body::MAX_BODY_BYTES`]; errors are problem documents ([`Problem`]).

mod auth;
mod body;
mod groups;
mod openapi;
mod page;
mod problem;
mod reads;
mod reconcile;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

use super::Shared;

pub(super) use auth::has_admin_token;
pub(super) use problem::{Problem, status_of};

/// The routes of `admin_listen`: the API under `/v1/admin`, the console at `/`.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    let (api, doc) = openapi::api(shared.clone());
    let doc = Arc::new(doc);
    let api = api
        .route(
            "/v1/admin/openapi.json",
            get(move || openapi::serve(doc.clone())),
        )
        .route("/v1/admin/{*rest}", axum::routing::any(no_such_route))
        .method_not_allowed_fallback(no_such_method)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            auth::require_admin,
        ))
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES));
    api.merge(super::console::router(shared))
}

/// A path under `/v1/admin` that is no route of the API.
async fn no_such_route(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!(
        "{} is no route of the admin API; GET /v1/admin/openapi.json lists them",
        uri.path()
    ))
}

/// A method the route does not take.
async fn no_such_method(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not a method of {}; GET /v1/admin/openapi.json lists each route's",
            uri.path()
        ),
    )
}

/// Runs SQLite work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(_) => Err(internal()),
    }
}

/// The request's work panicked: `500`.
fn internal() -> Problem {
    Problem::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the request's work failed; see the service's log",
    )
}
