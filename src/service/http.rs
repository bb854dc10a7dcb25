//! The service's HTTP listener (SPEC §4, `listen`): health, readiness, metrics, and the read API
//! applications use to ask which groups and roles a user has.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::Shared;
use crate::model::{Stage, UserKey};
use crate::state::State;
use crate::views;

/// The routes of `listen`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/login", post(super::login::login))
        .route("/v1/users/{key}", get(user))
        .route("/v1/groups", get(groups))
        .route("/v1/admin/{*rest}", axum::routing::any(admin_elsewhere))
        .with_state(shared)
}

/// The process is alive.
async fn healthz() -> &'static str {
    "ok\n"
}

/// The state is open, the listeners are bound and every `[idp.oidc]` verifier has loaded its
/// keys (IdP health is in `/metrics` and `status`).
async fn readyz(Extract(shared): Extract<Arc<Shared>>) -> Response {
    if shared.ready.load(Ordering::Acquire) && shared.logins.loaded() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

async fn metrics(Extract(shared): Extract<Arc<Shared>>) -> Response {
    shared.refresh_journal_gauges().await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct StageQuery {
    stage: Option<String>,
}

/// `GET /v1/users/{key}`: the `users show` document.
async fn user(
    Extract(shared): Extract<Arc<Shared>>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(query): Query<StageQuery>,
) -> Result<Response, ApiError> {
    let config = shared.config();
    check_app_token(&shared, &headers)?;
    let key = UserKey::parse(&key)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.0))?;
    let stage = stage_of(&config, query.stage.as_deref())?;
    blocking(move || {
        let state = State::open_read_only(&config.daemon.state)?;
        views::user_doc(&state, &key, stage.as_ref())
    })
    .await
}

/// `GET /v1/groups?stage=S`: the `groups list` document.
async fn groups(
    Extract(shared): Extract<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<StageQuery>,
) -> Result<Response, ApiError> {
    let config = shared.config();
    check_app_token(&shared, &headers)?;
    let stage = stage_of(&config, query.stage.as_deref())?;
    blocking(move || {
        let state = State::open_read_only(&config.daemon.state)?;
        views::group_list(&config, &state, stage.as_ref())
    })
    .await
}

/// Runs a store read off the async workers and answers its document as JSON.
async fn blocking<T: serde::Serialize + Send + 'static>(
    read: impl FnOnce() -> Result<T, crate::state::StateError> + Send + 'static,
) -> Result<Response, ApiError> {
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(doc)) => Ok(Json(doc).into_response()),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "Read API: the state could not be read.");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the state could not be read",
            ))
        }
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the read failed",
        )),
    }
}

fn stage_of(config: &crate::config::Config, raw: Option<&str>) -> Result<Option<Stage>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    match Stage::parse(raw) {
        Ok(stage) if config.daemon.stages.contains(&stage) => Ok(Some(stage)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{raw:?} is not one of daemon.stages"),
        )),
    }
}

/// The admin API is not served on `listen`: it is off, or on `admin_listen`.
async fn admin_elsewhere(Extract(shared): Extract<Arc<Shared>>) -> super::admin::Problem {
    let config = shared.config();
    super::admin::Problem::not_found(match &config.daemon.admin_token {
        None => "the admin API is off: set daemon.admin_token_file".to_owned(),
        Some(_) => format!(
            "the admin API is served on daemon.admin_listen ({}), not here",
            config.daemon.admin_listen
        ),
    })
}

/// Passes when the request carries the app token, or the admin token. Without an app token
/// configured, the read API answers the admin token only, and is off without either.
fn check_app_token(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    if super::admin::has_admin_token(shared, headers) {
        return Ok(());
    }
    let config = shared.config();
    let Some(expected) = &config.daemon.app_token else {
        if config.daemon.admin_token.is_some() {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "a missing or wrong admin token",
            ));
        }
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the read API is off: set daemon.app_token_file",
        ));
    };
    require_bearer(headers, expected, "a missing or wrong app token")
}

/// Passes when the request's `Authorization: Bearer` token is `expected` (compared in constant
/// time); else `401 invalid_token` saying `refusal`.
pub(super) fn require_bearer(
    headers: &HeaderMap,
    expected: &secrecy::SecretString,
    refusal: &'static str,
) -> Result<(), ApiError> {
    let given = bearer_token(headers);
    if equal_in_constant_time(given.as_bytes(), expected.expose_secret().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            refusal,
        ))
    }
}

/// Compares two secrets in constant time: their SHA-256 digests are compared with `subtle`, so
/// neither the content nor the length of the expected secret shows in the time taken.
pub(crate) fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    let (a, b) = (
        ring::digest::digest(&ring::digest::SHA256, a),
        ring::digest::digest(&ring::digest::SHA256, b),
    );
    a.as_ref().ct_eq(b.as_ref()).into()
}

/// The token of an `Authorization: Bearer <token>` header (the scheme compared case-insensitively,
/// RFC 7235); empty when there is none.
pub(crate) fn bearer_token(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        })
        .unwrap_or("")
}

/// An error answer: `{"error": "<code>", "detail": "…"}` (SPEC §4), never echoing a token.
pub(super) struct ApiError {
    status: StatusCode,
    pub(super) code: &'static str,
    detail: String,
    pub(super) retry_after: Option<axum::http::HeaderValue>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({"error": self.code, "detail": self.detail})),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, seconds);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(equal_in_constant_time(b"secret", b"secret"));
        assert!(!equal_in_constant_time(b"secret", b"secreT"));
        assert!(!equal_in_constant_time(b"secret", b"secret2"));
        assert!(!equal_in_constant_time(b"", b"secret"));
    }
}
