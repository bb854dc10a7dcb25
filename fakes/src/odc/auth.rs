//! The identity service's OpenID discovery document and its Keycloak-style token endpoint:
//! client credentials, the client authenticated by `client_id`/`client_secret` form fields
//! (`client_secret_post`) or HTTP Basic (`client_secret_basic`, which wins when both are sent);
//! errors in OAuth's `{"error","error_description"}` shape. Neither is rate-limited.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use serde_json::json;

use super::http::ok_json;
use super::{State, TOKEN_PATH, bump, lock};

fn refuse(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = ok_json(
        status,
        &json!({"error": error, "error_description": description}),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /identity/.well-known/openid-configuration`.
pub(super) async fn discovery(Extract(state): Extract<Arc<State>>) -> Response {
    bump(&state.counts.discoveries);
    let realm = format!("{}/identity/auth/realms/odc", state.base);
    let oidc = format!("{realm}/protocol/openid-connect");
    ok_json(
        StatusCode::OK,
        &json!({
            "issuer": realm,
            "authorization_endpoint": format!("{oidc}/auth"),
            "token_endpoint": format!("{}{TOKEN_PATH}", state.base),
            "jwks_uri": format!("{oidc}/certs"),
            "userinfo_endpoint": format!("{oidc}/userinfo"),
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        }),
    )
}

/// One form-urlencoded component, decoded.
fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The client id and secret of an HTTP Basic header (RFC 6749 §2.3.1), if one is sent.
fn basic(headers: &HeaderMap) -> Option<Option<(String, String)>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let pair = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(id, secret)| (form_decode(id), form_decode(secret)))
        });
    Some(pair)
}

/// `POST /identity/auth/realms/odc/protocol/openid-connect/token`.
pub(super) async fn token(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    bump(&state.counts.tokens);
    {
        let mut s = lock(&state.switches);
        if s.token_failures > 0 {
            s.token_failures -= 1;
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The token service is temporarily unavailable.",
            );
        }
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form_type {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded.",
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str);
    match field("grant_type") {
        None => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing form parameter: grant_type",
            );
        }
        Some("client_credentials") => {}
        Some(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant_type",
            );
        }
    }
    let credentials = match basic(&headers) {
        Some(pair) => pair,
        None => field("client_id").map(|id| {
            (
                id.to_owned(),
                field("client_secret").unwrap_or_default().to_owned(),
            )
        }),
    };
    let Some((id, secret)) = credentials else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
    };
    if id != state.client_id || secret != state.client_secret || secret.is_empty() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
    }
    let (token, lifetime) = state.issue();
    let mut r = ok_json(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "expires_in": lifetime.as_secs(),
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        }),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
