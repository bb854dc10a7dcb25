//! The org authorization server's token endpoint for service apps: client credentials with a
//! `private_key_jwt` assertion (`iss` = `sub` = client id, `aud` = this URL, `exp` at most an hour
//! ahead, a registered `kid`), scopes echoed; errors in OAuth's shape.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Form;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::State;

/// The scopes a service app has been granted.
const GRANTED: [&str; 2] = ["okta.groups.read", "okta.users.read"];

fn refuse(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /oauth2/v1/token`.
pub(super) async fn token(
    Extract(state): Extract<Arc<State>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    state.counts.requests.fetch_add(1, Ordering::Relaxed);
    state.counts.tokens.fetch_add(1, Ordering::Relaxed);
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The grant type is not supported.",
        );
    }
    if field("client_assertion_type")
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication must be private_key_jwt for Okta API scopes.",
        );
    }
    let scope = field("scope").unwrap_or_default();
    if scope.split(' ').any(|s| !GRANTED.contains(&s)) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The requested scope is invalid, unknown, or malformed.",
        );
    }
    let url = format!("{}/oauth2/v1/token", state.base);
    if !valid(
        field("client_assertion").unwrap_or_default(),
        &state.org,
        &url,
    ) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion signature is invalid.",
        );
    }
    let (token, lifetime) = state.issue();
    axum::Json(json!({"token_type": "Bearer", "expires_in": lifetime, "access_token": token, "scope": scope}))
        .into_response()
}

fn valid(assertion: &str, org: &super::Org, url: &str) -> bool {
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return false;
    };
    let key = match &header.kid {
        Some(kid) => org.keys.iter().find(|(k, _, _)| k == kid),
        None if org.keys.len() == 1 => org.keys.first(),
        None => None,
    };
    let Some((_, pem, ec)) = key else {
        return false;
    };
    let decoding = if *ec {
        jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes())
    } else {
        jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes())
    };
    let Ok(decoding) = decoding else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[url]);
    validation.set_issuer(&[org.client_id.as_str()]);
    validation.sub = Some(org.client_id.clone());
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let Ok(data) = jsonwebtoken::decode::<serde_json::Value>(assertion, &decoding, &validation)
    else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    data.claims
        .get("exp")
        .and_then(|e| e.as_i64())
        .is_some_and(|exp| exp <= now + 3600)
}
