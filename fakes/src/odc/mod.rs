//! A fake OutSystems Developer Cloud portal: the identity service's OpenID discovery document and
//! client-credentials token endpoint, and the calls idpsync makes to the "User and Access
//! Management API v1" (`/api/identity/v1`): groups of a stage, their members, users — as
//! reference/targets.md §1.5 describes them.
//!
//! Enforced as ODC does: a bearer token this fake issued and that has not expired on every API
//! call (401 ProblemDetails otherwise); a per-organisation rate limit shared by all API endpoints
//! (100 a minute by default, token endpoint not counted) answered with 429 and no `Retry-After`;
//! `limit` 1..=100 and `offset` ≥ 0 on every list with ODC's `{results, page}` envelope;
//! `userKeys` ≤ 20; group names unique per stage, case-insensitively (409); e-mails unique (409);
//! `PATCH /groups/{key}/users` touching only *Assigned* membership, idempotently and atomically
//! (an unknown user key → 400, nothing applied). Errors are RFC 7807 ProblemDetails with an
//! `errorCode`, sent as `application/problem+json`.
//!
//! Not documented by ODC but enforced here: at most 1000 keys in each array of
//! `PATCH /groups/{key}/users` and in `userKeys` of `POST /groups` (400 past it), and a key may not
//! be both added and removed in one PATCH (400). *Mapped* membership (computed by ODC at login) is
//! only ever set by the test, through [`FakeOdc::add_mapped_member`].

mod auth;
mod counts;
mod groups;
mod http;
mod seed;
mod store;
#[cfg(test)]
mod tests;
mod users;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

pub use counts::{Counts, Stats, read};
pub use groups::MAX_KEYS;
pub use http::codes;

use crate::server::{Running, Tls, serve_with_state};

/// The API's base path under the portal URL.
pub const API_PATH: &str = "/api/identity/v1";
/// The token endpoint's path under the portal URL.
pub const TOKEN_PATH: &str = "/identity/auth/realms/odc/protocol/openid-connect/token";
/// The discovery document's path under the portal URL.
pub const DISCOVERY_PATH: &str = "/identity/.well-known/openid-configuration";

/// Behaviours a test switches on, at start ([`FakeOdc::start_with`]) or while running
/// ([`FakeOdc::switch`]).
#[derive(Debug, Clone)]
pub struct Switches {
    /// API requests allowed per window for the organisation (ODC: 100).
    pub rate_limit: u64,
    /// The rate window, a fixed window opened by the first request after the last one closed
    /// (ODC: a minute).
    pub window: Duration,
    /// Lifetime of issued tokens (ODC: 12 h); `expires_in` is its whole seconds. Zero makes
    /// tokens that are already expired.
    pub token_lifetime: Duration,
    /// Answer this many coming API requests with 429 (after auth and the rate window).
    pub throttle_next: u32,
    /// The `Retry-After` seconds of those forced 429s; `None` (the default, as ODC) sends none.
    pub throttle_retry_after: Option<u64>,
    /// Answer this many coming API requests with 503 (after the forced 429s).
    pub busy_next: u32,
    /// The `Retry-After` seconds of those 503s; `None` (the default) sends none.
    pub busy_retry_after: Option<u64>,
    /// Permanently reject this many coming writes (POST/PATCH/DELETE) with `reject_status`.
    pub reject_writes: u32,
    /// The status of a rejected write: 403 (the default) with [`codes::FORBIDDEN`], 400 with
    /// [`codes::REJECTED`], any other 4xx with [`codes::FORBIDDEN`]; a non-4xx value means 403.
    pub reject_status: u16,
    /// Answer this many coming token requests with 503 `{"error":"temporarily_unavailable"}`.
    pub token_failures: u32,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            rate_limit: 100,
            window: Duration::from_secs(60),
            token_lifetime: Duration::from_secs(43_200),
            throttle_next: 0,
            throttle_retry_after: None,
            busy_next: 0,
            busy_retry_after: None,
            reject_writes: 0,
            reject_status: 403,
            token_failures: 0,
        }
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Locks, shrugging off a poisoning panic of another test thread.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Window {
    started: Instant,
    used: u64,
}

/// The shared state of a running fake.
pub struct State {
    base: String,
    client_id: String,
    client_secret: String,
    /// The switches, changeable while running.
    pub switches: Mutex<Switches>,
    /// The counters.
    pub counts: Counts,
    tokens: Mutex<HashMap<String, Instant>>,
    issued: Mutex<Vec<String>>,
    window: Mutex<Window>,
    pub(crate) store: Mutex<store::Store>,
}

/// A running fake ODC portal.
pub struct FakeOdc {
    /// The server.
    pub server: Running,
    /// Its state, to flip switches and read counters.
    pub state: Arc<State>,
}

impl FakeOdc {
    /// Serves an empty organisation whose API client is `client_id` / `client_secret`.
    pub fn start(client_id: &str, client_secret: &str) -> FakeOdc {
        Self::serve(client_id, client_secret, Switches::default(), None)
    }

    /// [`FakeOdc::start`] with `switches`.
    pub fn start_with(client_id: &str, client_secret: &str, switches: Switches) -> FakeOdc {
        Self::serve(client_id, client_secret, switches, None)
    }

    /// [`FakeOdc::start_with`] over TLS (`https://127.0.0.1:PORT`).
    pub fn start_tls(
        client_id: &str,
        client_secret: &str,
        switches: Switches,
        tls: Tls,
    ) -> FakeOdc {
        Self::serve(client_id, client_secret, switches, Some(tls))
    }

    fn serve(id: &str, secret: &str, switches: Switches, tls: Option<Tls>) -> FakeOdc {
        let (client_id, client_secret) = (id.to_owned(), secret.to_owned());
        let state = move |base| State {
            base,
            client_id,
            client_secret,
            switches: Mutex::new(switches),
            counts: Counts::default(),
            tokens: Mutex::new(HashMap::new()),
            issued: Mutex::new(Vec::new()),
            window: Mutex::new(Window {
                started: Instant::now(),
                used: 0,
            }),
            store: Mutex::new(store::Store::default()),
        };
        let (server, state) = serve_with_state(tls, state, router);
        FakeOdc { server, state }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn portal_url(&self) -> String {
        self.server.url()
    }

    /// `{portal_url}/api/identity/v1`.
    pub fn api_url(&self) -> String {
        format!("{}{API_PATH}", self.server.url())
    }

    /// The token endpoint the discovery document names.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.server.url())
    }

    /// Changes the switches.
    pub fn switch(&self, change: impl FnOnce(&mut Switches)) {
        change(&mut lock(&self.state.switches));
    }

    /// The switches now.
    pub fn switches(&self) -> Switches {
        lock(&self.state.switches).clone()
    }

    /// The counters.
    pub fn counts(&self) -> &Counts {
        &self.state.counts
    }

    /// The counters, read now.
    pub fn stats(&self) -> Stats {
        self.state.counts.snapshot()
    }

    /// Every access token issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).clone()
    }

    /// Expires every token issued so far: the next call with one gets 401.
    pub fn expire_tokens(&self) {
        lock(&self.state.tokens).clear();
    }
}

fn router(state: Arc<State>) -> Router {
    let api = |p: &str| format!("{API_PATH}{p}");
    Router::new()
        .route(DISCOVERY_PATH, get(auth::discovery))
        .route(TOKEN_PATH, post(auth::token))
        .route(&api("/groups"), get(groups::list).post(groups::create))
        .route(
            &api("/groups/{key}"),
            get(groups::read)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .route(
            &api("/groups/{key}/users"),
            get(groups::members).patch(groups::change_members),
        )
        .route(&api("/users"), get(users::list).post(users::create))
        .route("/_fake/stats", get(stats))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(uri: Uri) -> Response {
    http::problem(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        "No such resource.",
        uri.path(),
    )
}

/// Counters as JSON, for scripts (not part of ODC's API).
async fn stats(axum::extract::State(state): axum::extract::State<Arc<State>>) -> Response {
    let s = state.counts.snapshot();
    axum::Json(json!({
        "requests": s.requests, "tokens": s.tokens, "group_lookups": s.group_lookups,
        "group_creates": s.group_creates, "member_pages": s.member_pages,
        "patch_users": s.patch_users, "member_changes": s.member_changes,
        "user_pages": s.user_pages, "user_creates": s.user_creates,
        "throttled": s.throttled, "busy": s.busy,
    }))
    .into_response()
}

fn with_retry_after(mut r: Response, secs: Option<u64>) -> Response {
    if let Some(secs) = secs {
        r.headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    r
}

impl State {
    /// The gate every API call passes, in order: the bearer token (401), the rate window (429),
    /// the forced 429s, the forced 503s, and for writes the forced rejections. `Err` is the
    /// answer to send.
    pub(crate) fn admit(
        &self,
        headers: &HeaderMap,
        path: &str,
        write: bool,
    ) -> Result<(), Response> {
        bump(&self.counts.requests);
        if !self.authorized(headers) {
            bump(&self.counts.unauthorized);
            let mut r = http::problem(
                StatusCode::UNAUTHORIZED,
                codes::UNAUTHORIZED,
                "The access token is missing, invalid or expired.",
                path,
            );
            r.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            return Err(r);
        }
        let mut s = lock(&self.switches);
        let too_many = || {
            http::problem(
                StatusCode::TOO_MANY_REQUESTS,
                codes::TOO_MANY_REQUESTS,
                "The organization exceeded the rate limit of its API client requests.",
                path,
            )
        };
        {
            let mut w = lock(&self.window);
            let now = Instant::now();
            if now.duration_since(w.started) >= s.window {
                *w = Window {
                    started: now,
                    used: 0,
                };
            }
            w.used += 1;
            if w.used > s.rate_limit {
                bump(&self.counts.throttled);
                bump(&self.counts.over_limit);
                return Err(too_many());
            }
        }
        if s.throttle_next > 0 {
            s.throttle_next -= 1;
            bump(&self.counts.throttled);
            return Err(with_retry_after(too_many(), s.throttle_retry_after));
        }
        if s.busy_next > 0 {
            s.busy_next -= 1;
            bump(&self.counts.busy);
            let r = http::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::UNAVAILABLE,
                "The service is temporarily unavailable.",
                path,
            );
            return Err(with_retry_after(r, s.busy_retry_after));
        }
        if write && s.reject_writes > 0 {
            s.reject_writes -= 1;
            bump(&self.counts.rejected_writes);
            let (status, code) = match s.reject_status {
                400 => (StatusCode::BAD_REQUEST, codes::REJECTED),
                other => (
                    StatusCode::from_u16(other)
                        .ok()
                        .filter(StatusCode::is_client_error)
                        .unwrap_or(StatusCode::FORBIDDEN),
                    codes::FORBIDDEN,
                ),
            };
            return Err(http::problem(
                status,
                code,
                "The API client is not allowed to perform this operation.",
                path,
            ));
        }
        Ok(())
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, token)) = value.split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return false;
        }
        let now = Instant::now();
        lock(&self.tokens)
            .get(token.trim())
            .is_some_and(|expires| now < *expires)
    }

    /// A new token and its lifetime.
    pub(crate) fn issue(&self) -> (String, Duration) {
        let lifetime = lock(&self.switches).token_lifetime;
        let token = format!("odc-fake-{:032x}", fastrand::u128(..));
        lock(&self.tokens).insert(token.clone(), Instant::now() + lifetime);
        lock(&self.issued).push(token.clone());
        (token, lifetime)
    }
}
