//! The v2.0 token endpoint: client credentials with a secret or a certificate's client
//! assertion, errors in Entra's shape (`error`, `error_description` with an AADSTS code,
//! `error_codes`, `trace_id`, `correlation_id`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{Path, State as Extract};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::State;

fn refuse(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: fake-trace\r\nCorrelation ID: fake-correlation\r\nTimestamp: 2026-12-01 00:00:00Z"),
        "error_codes": [code],
        "timestamp": "2026-12-01 00:00:00Z",
        "trace_id": "fake-trace",
        "correlation_id": "fake-correlation",
    });
    (status, axum::Json(body)).into_response()
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(super) async fn token(
    Extract(state): Extract<Arc<State>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    state.counts.requests.fetch_add(1, Ordering::Relaxed);
    state.counts.tokens.fetch_add(1, Ordering::Relaxed);
    let t = &state.tenant;
    if tenant != t.tenant_id {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            "Tenant not found.",
        );
    }
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The grant type is not supported.",
        );
    }
    if field("client_id") != Some(t.client_id.as_str()) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application not found in the directory.",
        );
    }
    let scope = field("scope").unwrap_or_default();
    if !scope.ends_with("/.default") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            "Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        );
    }
    if scope != format!("{}/.default", state.base) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            "The resource principal was not found in the tenant.",
        );
    }
    let token_url = format!("{}/{}/oauth2/v2.0/token", state.base, t.tenant_id);
    let authenticated = match (field("client_secret"), field("client_assertion")) {
        (Some(secret), None) => secret == t.client_secret,
        (None, Some(assertion)) => {
            field("client_assertion_type")
                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                && valid_assertion(assertion, t, &token_url)
        }
        _ => false,
    };
    if !authenticated {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    let lifetime = state.switches.lock().unwrap().token_lifetime;
    let token = format!("fake-graph-token-{:016x}", fastrand::u64(..));
    state.issued.lock().unwrap().push(token.clone());
    state.tokens.lock().unwrap().push((
        token.clone(),
        Instant::now() + Duration::from_secs(lifetime),
    ));
    axum::Json(json!({
        "token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
        "access_token": token,
    }))
    .into_response()
}

/// A client assertion signed by the registered certificate's key, naming it by `x5t#S256`, for
/// this token URL, from this client, unexpired.
fn valid_assertion(assertion: &str, tenant: &super::Tenant, token_url: &str) -> bool {
    let Some((thumbprint, public_pem)) = &tenant.certificate else {
        return false;
    };
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return false;
    };
    if header.x5t_s256.as_deref() != Some(thumbprint.as_str())
        || !matches!(
            header.alg,
            jsonwebtoken::Algorithm::RS256 | jsonwebtoken::Algorithm::PS256
        )
    {
        return false;
    }
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes()) else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[token_url]);
    validation.set_issuer(&[tenant.client_id.as_str()]);
    validation.sub = Some(tenant.client_id.clone());
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation).is_ok()
}
