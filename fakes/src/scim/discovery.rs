//! `GET /ServiceProviderConfig` as AWS advertises it (PATCH yes, bulk and sort no, filter with
//! 100 results at most, ETags only when switched on), SCIM 404/405 errors for unknown paths and
//! methods, and the counters at `/_fake/stats` (not SCIM; no auth, not counted).

use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{State, bump, error, read, scim};

/// `GET /ServiceProviderConfig`.
pub(super) async fn provider_config(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = state.admit(&headers, false) {
        return r;
    }
    let etag = state.switches.lock().unwrap().etag;
    scim(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://docs.aws.amazon.com/singlesignon/latest/developerguide/what-is-scim.html",
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 1, "maxPayloadSize": 1048576},
            "filter": {"supported": true, "maxResults": 100},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": etag},
            "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token",
                "description": "Authentication scheme using the OAuth Bearer Token Standard",
                "specUri": "https://www.rfc-editor.org/info/rfc6750", "primary": true}],
            "meta": {"resourceType": "ServiceProviderConfig",
                "location": format!("{}/ServiceProviderConfig", state.base)},
        }),
    )
}

pub(super) async fn not_found(Extract(state): Extract<Arc<State>>, headers: HeaderMap) -> Response {
    if let Err(r) = state.admit(&headers, false) {
        return r;
    }
    error(StatusCode::NOT_FOUND, None, "Resource not found.")
}

pub(super) async fn not_allowed(Extract(state): Extract<Arc<State>>) -> Response {
    bump(&state.counts.requests);
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "The method is not supported on this resource.",
    )
}

/// Counters as JSON, for scripts (not part of SCIM); not counted, no auth.
pub(super) async fn stats(Extract(state): Extract<Arc<State>>) -> Response {
    let c = &state.counts;
    axum::Json(json!({
        "requests": read(&c.requests), "throttled": read(&c.throttled), "busy": read(&c.busy),
        "patches": read(&c.patches), "member_changes": read(&c.member_changes),
        "user_lookups": read(&c.user_lookups), "user_pages": read(&c.user_pages),
        "group_lookups": read(&c.group_lookups), "membership_checks": read(&c.membership_checks),
        "max_patch_ops": read(&c.max_patch_ops), "max_patch_members": read(&c.max_patch_members),
    }))
    .into_response()
}
