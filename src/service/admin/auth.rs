//! `Authorization: Bearer <admin token>` on every `/v1/admin/...` call, compared in constant time.

use std::sync::Arc;

use axum::extract::{Request, State as Extract};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

use super::Problem;
use crate::service::Shared;

/// Whether `headers` carry the admin token of the configuration in force.
pub(crate) fn has_admin_token(shared: &Shared, headers: &HeaderMap) -> bool {
    let config = shared.config();
    let Some(expected) = &config.daemon.admin_token else {
        return false;
    };
    let given = crate::service::http::bearer_token(headers);
    crate::service::http::equal_in_constant_time(
        given.as_bytes(),
        expected.expose_secret().as_bytes(),
    )
}

/// Lets a request through only with the admin token; else `401` with a `WWW-Authenticate`
/// challenge.
pub(super) async fn require_admin(
    Extract(shared): Extract<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if has_admin_token(&shared, request.headers()) {
        return next.run(request).await;
    }
    let mut response = Problem::new(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "a missing or wrong admin token: send Authorization: Bearer <the token of daemon.admin_token_file>",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"idpsync admin\""),
    );
    response
}
