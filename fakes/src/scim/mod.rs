//! A fake SCIM 2.0 server that behaves like AWS IAM Identity Center's, as
//! reference/targets.md §2 describes it (§2.8 for AWS's quirks), under `/scim/v2`.
//!
//! Enforced as AWS does: `Authorization: Bearer <token>` on every call (401 otherwise) and a
//! `User-Agent` header (400 without one); `count` clamped to 100 and paging by `startIndex` or
//! AWS's opaque `cursor`/`nextCursor`; only `eq` filters joined by `and`, on `userName` or
//! `externalId` for users and `displayName`, `externalId`, `members` or `id` + `members` for
//! groups (400 `invalidFilter` otherwise); groups always read back with empty `members`; at most
//! 100 members in a create and 100 member changes in a PATCH; no `replace` of members and no
//! "remove all"; atomic PATCHes; `If-Match` with 412 once ETags are switched on. Errors are
//! SCIM Error documents (`status` a string) served as `application/scim+json`.

mod discovery;
mod groups;
mod patch;
mod query;
mod seed;
mod store;
mod users;

#[cfg(test)]
mod group_tests;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::server::{Running, serve_with_state};
use store::Directory;

pub use patch::MAX_MEMBER_CHANGES;

/// The SCIM error message schema.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Behaviours a test switches on, read on every request. All off by default.
#[derive(Debug, Clone)]
pub struct Switches {
    /// Answer this many coming (authorized) requests with 429 ThrottlingException.
    pub throttle_next: u32,
    /// The `Retry-After` seconds of those 429s; `None` sends no header.
    pub retry_after: Option<u64>,
    /// Answer this many coming (authorized) requests with 503.
    pub busy_next: u32,
    /// The `Retry-After` seconds of those 503s; `None` sends no header.
    pub busy_retry_after: Option<u64>,
    /// Refuse this many coming writes (POST, PATCH, DELETE) with `reject_status`, for good.
    pub reject_writes: u32,
    /// The status of a refused write: 400 (ValidationException) or 403 (AccessDenied).
    pub reject_status: u16,
    /// Advertise and honour ETags: groups carry `meta.version` and an `ETag` header, and
    /// PATCH/DELETE check `If-Match` (412 on a mismatch).
    pub etag: bool,
    /// A successful PATCH answers 200 with the group (empty `members`) instead of 204.
    pub patch_returns_resource: bool,
    /// The most resources a list page holds (AWS: 100; it once was 50).
    pub page_cap: usize,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            throttle_next: 0,
            retry_after: Some(0),
            busy_next: 0,
            busy_retry_after: None,
            reject_writes: 0,
            reject_status: 400,
            etag: false,
            patch_returns_resource: false,
            page_cap: 100,
        }
    }
}

/// What the fake has been sent. Read one with [`read`].
#[derive(Debug, Default)]
pub struct Counts {
    /// Every HTTP request, refused ones included (`/_fake/stats` excepted).
    pub requests: AtomicU64,
    /// Requests refused with 401.
    pub unauthorized: AtomicU64,
    /// Requests refused with 400 for a missing `User-Agent`.
    pub missing_user_agent: AtomicU64,
    /// 429s sent.
    pub throttled: AtomicU64,
    /// 503s sent.
    pub busy: AtomicU64,
    /// Writes refused by the `reject_writes` switch.
    pub rejected_writes: AtomicU64,
    /// `PATCH /Groups/{id}` requests admitted (past auth and the switches), refused or not.
    pub patches: AtomicU64,
    /// PATCHes answered 4xx for their content (limits, syntax, unknown users, 404, 409, 412).
    pub refused_patches: AtomicU64,
    /// Memberships actually added or removed by successful PATCHes (no-ops not counted).
    pub member_changes: AtomicU64,
    /// Member values sent in successful PATCHes, no-ops included.
    pub member_values: AtomicU64,
    /// The most `Operations` one PATCH body held (refused bodies included).
    pub max_patch_ops: AtomicU64,
    /// The most member values one PATCH body held (refused bodies included).
    pub max_patch_members: AtomicU64,
    /// `GET /Users` with a `filter`.
    pub user_lookups: AtomicU64,
    /// `GET /Users` without a `filter`.
    pub user_pages: AtomicU64,
    /// `GET /Users/{id}`.
    pub user_gets: AtomicU64,
    /// `POST /Users` admitted.
    pub user_creates: AtomicU64,
    /// `GET /Groups` with a `displayName` or `externalId` filter.
    pub group_lookups: AtomicU64,
    /// `GET /Groups` without a `filter`.
    pub group_pages: AtomicU64,
    /// `GET /Groups/{id}`.
    pub group_gets: AtomicU64,
    /// `GET /Groups?filter=id eq "g" and members eq "u"`.
    pub membership_checks: AtomicU64,
    /// `GET /Groups?filter=members eq "u"` (a user's groups).
    pub user_group_queries: AtomicU64,
    /// `POST /Groups` admitted.
    pub group_creates: AtomicU64,
    /// `DELETE /Groups/{id}` admitted.
    pub group_deletes: AtomicU64,
}

/// Reads one counter.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The shared state of a running fake.
pub struct State {
    /// `http://127.0.0.1:PORT/scim/v2`.
    base: String,
    token: String,
    /// The switches, changeable while running.
    pub switches: Mutex<Switches>,
    /// The counters.
    pub counts: Counts,
    dir: Mutex<Directory>,
    last_patch: Mutex<Option<Value>>,
}

/// A running fake SCIM server; stops when dropped.
pub struct FakeScim {
    /// The server.
    pub server: Running,
    /// Its state, to flip switches and read counters.
    pub state: Arc<State>,
}

impl FakeScim {
    /// Serves an empty directory accepting `Bearer <token>`, switches off.
    pub fn start(token: &str) -> FakeScim {
        Self::start_with(token, Switches::default())
    }

    /// Serves an empty directory accepting `Bearer <token>` with `switches`.
    pub fn start_with(token: &str, switches: Switches) -> FakeScim {
        let token = token.to_owned();
        let state = move |root: String| State {
            base: format!("{root}/scim/v2"),
            token,
            switches: Mutex::new(switches),
            counts: Counts::default(),
            dir: Mutex::new(Directory::default()),
            last_patch: Mutex::new(None),
        };
        let (server, state) = serve_with_state(None, state, router);
        FakeScim { server, state }
    }

    /// The SCIM base URL, `http://127.0.0.1:PORT/scim/v2` (no trailing slash).
    pub fn url(&self) -> String {
        self.state.base.clone()
    }

    /// Changes the switches.
    pub fn switch(&self, change: impl FnOnce(&mut Switches)) {
        change(&mut self.state.switches.lock().unwrap());
    }

    /// The counters.
    pub fn counts(&self) -> &Counts {
        &self.state.counts
    }

    /// The body of the last PATCH that parsed as JSON.
    pub fn last_patch_body(&self) -> Option<Value> {
        self.state.last_patch.lock().unwrap().clone()
    }
}

fn router(state: Arc<State>) -> Router {
    Router::new()
        .route(
            "/scim/v2/ServiceProviderConfig",
            get(discovery::provider_config),
        )
        .route("/scim/v2/Users", get(users::list).post(users::create))
        .route("/scim/v2/Users/{id}", get(users::get_one))
        .route("/scim/v2/Groups", get(groups::list).post(groups::create))
        .route(
            "/scim/v2/Groups/{id}",
            get(groups::get_one)
                .patch(patch::patch)
                .delete(groups::delete),
        )
        .route("/_fake/stats", get(discovery::stats))
        .fallback(discovery::not_found)
        .method_not_allowed_fallback(discovery::not_allowed)
        .with_state(state)
}

/// A JSON response served as `application/scim+json`.
pub(crate) fn scim(status: StatusCode, value: Value) -> Response {
    let body = serde_json::to_vec(&value).expect("json");
    let mut response = (status, Body::from(body)).into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/scim+json"),
    );
    response
}

/// A SCIM Error document; `scim_type` only for 400 and 409.
pub(crate) fn error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let mut body = json!({"schemas": [ERROR_SCHEMA], "status": status.as_u16().to_string(),
        "detail": detail});
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    scim(status, body)
}

/// A 400 ValidationException.
pub(crate) fn invalid(scim_type: &str, detail: &str) -> Response {
    error(StatusCode::BAD_REQUEST, Some(scim_type), detail)
}

fn with_retry_after(mut r: Response, secs: Option<u64>) -> Response {
    if let Some(s) = secs {
        r.headers_mut().insert("retry-after", HeaderValue::from(s));
    }
    r
}

impl State {
    /// The gate every call passes: counted, then the token, the `User-Agent`, the 429 and 503
    /// switches and, for a write, the rejection switch. `Err` is the answer to send.
    pub(crate) fn admit(&self, headers: &HeaderMap, write: bool) -> Result<(), Response> {
        bump(&self.counts.requests);
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        if token != Some(self.token.as_str()) || self.token.is_empty() {
            bump(&self.counts.unauthorized);
            let mut r = error(StatusCode::UNAUTHORIZED, None, "Unauthorized");
            r.headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
            return Err(r);
        }
        let agent = headers.get("user-agent").and_then(|v| v.to_str().ok());
        if agent.is_none_or(|a| a.trim().is_empty()) {
            bump(&self.counts.missing_user_agent);
            return Err(invalid(
                "invalidValue",
                "Request is missing the required User-Agent header.",
            ));
        }
        let mut s = self.switches.lock().unwrap();
        if s.throttle_next > 0 {
            s.throttle_next -= 1;
            bump(&self.counts.throttled);
            let r = error(
                StatusCode::TOO_MANY_REQUESTS,
                None,
                "ThrottlingException: Rate exceeded",
            );
            return Err(with_retry_after(r, s.retry_after));
        }
        if s.busy_next > 0 {
            s.busy_next -= 1;
            bump(&self.counts.busy);
            let r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "The service is unavailable.",
            );
            return Err(with_retry_after(r, s.busy_retry_after));
        }
        if write && s.reject_writes > 0 {
            s.reject_writes -= 1;
            bump(&self.counts.rejected_writes);
            return Err(if s.reject_status == 403 {
                error(
                    StatusCode::FORBIDDEN,
                    None,
                    "AccessDeniedException: You are not authorized to perform this operation.",
                )
            } else {
                let status =
                    StatusCode::from_u16(s.reject_status).unwrap_or(StatusCode::BAD_REQUEST);
                error(
                    status,
                    Some("invalidValue"),
                    "ValidationException: the request was rejected.",
                )
            });
        }
        Ok(())
    }

    /// Whether `If-Match` (when ETags are on and it was sent) matches `version`; 412 if not.
    pub(crate) fn check_if_match(&self, headers: &HeaderMap, version: u64) -> Result<(), Response> {
        if !self.switches.lock().unwrap().etag {
            return Ok(());
        }
        let Some(want) = headers.get("if-match").and_then(|v| v.to_str().ok()) else {
            return Ok(());
        };
        let current = store::etag(version);
        if want
            .split(',')
            .any(|w| w.trim() == "*" || w.trim() == current)
        {
            return Ok(());
        }
        Err(error(
            StatusCode::PRECONDITION_FAILED,
            None,
            &format!("The resource has changed: its version is {current}."),
        ))
    }
}

/// Parses a request body sent as `application/scim+json` or `application/json`.
pub(crate) fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Response> {
    let media = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(
        media.as_deref(),
        Some("application/scim+json" | "application/json")
    ) {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            "Content-Type must be application/scim+json or application/json.",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        invalid(
            "invalidSyntax",
            &format!("Request is unparsable, syntactically incorrect, or violates schema: {e}"),
        )
    })
}
