//! A fake Entra ID tenant: the v2.0 token endpoint and the Graph v1.0 calls idpsync makes
//! (`/groups`, `/groups/{id}/members`, `/groups/{id}/transitiveMembers`, `$batch`), as
//! reference/idp-apis.md §1 describes them.
//!
//! Enforced as Graph does: a client-credentials form with a scope of `{base}/.default`, the right
//! secret or a client assertion signed by the registered certificate's key (`x5t#S256`), a valid
//! unexpired bearer token on every call, `$top` between 1 and 999, `ConsistencyLevel: eventual`
//! with `$count=true` for advanced filters on every page, opaque `$skiptoken` nextLinks carrying
//! the query, at most 20 requests with unique ids in a batch.

mod auth;
mod pages;
pub mod tenant;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub use tenant::{Group, Member, Tenant, User};

use crate::server::{Running, Tls, serve_with_state};

/// Behaviours a test switches on. All off by default.
#[derive(Debug, Clone)]
pub struct Switches {
    /// The most objects a page holds, whatever `$top` asks (Graph may return fewer).
    pub page_size: usize,
    /// Answer every Nth API request (token requests not counted) with 429.
    pub throttle_every: Option<u64>,
    /// The `Retry-After` seconds of a 429; `None` sends none.
    pub retry_after: Option<u64>,
    /// Answer this many coming API requests with 503 (then 504 alternately).
    pub busy_burst: u32,
    /// Whether the 503/504 of a burst carry `Retry-After: 1`.
    pub busy_retry_after: bool,
    /// Cut this many coming member pages off mid-body (the connection drops).
    pub cut_pages: u32,
    /// Lifetime of issued tokens, seconds.
    pub token_lifetime: u64,
    /// Every `$skiptoken` link answers 404 (state expired server-side).
    pub expire_skiptokens: bool,
    /// Member pages answer with malformed JSON.
    pub malformed_members: bool,
    /// Throttle every Nth part of a `$batch` (429 in the part, outer 200).
    pub batch_throttle_every: Option<u64>,
    /// Every bearer token is refused (as after a revoked consent).
    pub refuse_tokens: bool,
    /// Put an empty page carrying a nextLink before each group's first member page.
    pub empty_first_pages: bool,
    /// After this many API requests, forget every token issued so far, once (a rotation): the
    /// next call with an old token gets 401.
    pub forget_tokens_after: Option<u64>,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            page_size: 999,
            throttle_every: None,
            retry_after: Some(1),
            busy_burst: 0,
            busy_retry_after: true,
            cut_pages: 0,
            token_lifetime: 3599,
            expire_skiptokens: false,
            malformed_members: false,
            batch_throttle_every: None,
            refuse_tokens: false,
            empty_first_pages: false,
            forget_tokens_after: None,
        }
    }
}

/// What the fake has been sent.
#[derive(Debug, Default)]
pub struct Counts {
    /// Every HTTP request, token requests included.
    pub requests: AtomicU64,
    /// Token requests.
    pub tokens: AtomicU64,
    /// Pages of `/groups`.
    pub group_pages: AtomicU64,
    /// Pages of members, in batches or not.
    pub member_pages: AtomicU64,
    /// `$batch` POSTs.
    pub batches: AtomicU64,
    /// 429s sent, batch parts included.
    pub throttled: AtomicU64,
    /// Requests that came while a `Retry-After` the fake sent had not yet elapsed.
    pub early_retries: AtomicU64,
    /// Requests whose bearer token was refused.
    pub unauthorized: AtomicU64,
}

/// Reads one counter.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// The shared state of a running fake.
pub struct State {
    base: String,
    tenant: Tenant,
    /// The switches, changeable while running.
    pub switches: Mutex<Switches>,
    /// The counters.
    pub counts: Counts,
    tokens: Mutex<Vec<(String, Instant)>>,
    issued: Mutex<Vec<String>>,
    throttled_until: Mutex<Option<Instant>>,
}

/// A running fake tenant.
pub struct FakeGraph {
    /// The server.
    pub server: Running,
    /// Its state, to flip switches and read counters.
    pub state: Arc<State>,
}

impl FakeGraph {
    /// Serves `tenant` with `switches`.
    pub fn start(tenant: Tenant, switches: Switches) -> FakeGraph {
        Self::serve(tenant, switches, None)
    }

    /// Serves `tenant` with `switches` over TLS (`https://127.0.0.1:PORT`).
    pub fn start_tls(tenant: Tenant, switches: Switches, tls: Tls) -> FakeGraph {
        Self::serve(tenant, switches, Some(tls))
    }

    fn serve(tenant: Tenant, switches: Switches, tls: Option<Tls>) -> FakeGraph {
        let state = move |base| State {
            base,
            tenant,
            switches: Mutex::new(switches),
            counts: Counts::default(),
            tokens: Mutex::new(Vec::new()),
            issued: Mutex::new(Vec::new()),
            throttled_until: Mutex::new(None),
        };
        let (server, state) = serve_with_state(tls, state, router);
        FakeGraph { server, state }
    }

    /// The base URL, for both `authority_url` and `graph_url`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Changes the switches.
    pub fn switch(&self, change: impl FnOnce(&mut Switches)) {
        change(&mut self.state.switches.lock().unwrap());
    }

    /// The counters.
    pub fn counts(&self) -> &Counts {
        &self.state.counts
    }

    /// Every access token issued so far (to prove none reaches a log).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state.issued.lock().unwrap().clone()
    }
}

fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(auth::token))
        .route("/v1.0/groups", get(pages::groups))
        .route("/v1.0/groups/{id}/{relation}", get(pages::members))
        .route("/v1.0/$batch", post(pages::batch))
        .route(
            "/v1.0/users/{id}/getMemberObjects",
            post(pages::member_objects),
        )
        .route("/_fake/stats", get(stats))
        .with_state(state)
}

/// Counters as JSON, for scripts/bench (not part of Graph's API).
async fn stats(axum::extract::State(state): axum::extract::State<Arc<State>>) -> Response {
    let c = &state.counts;
    axum::Json(json!({
        "requests": read(&c.requests), "tokens": read(&c.tokens),
        "group_pages": read(&c.group_pages), "member_pages": read(&c.member_pages),
        "batches": read(&c.batches), "throttled": read(&c.throttled),
        "early_retries": read(&c.early_retries),
    }))
    .into_response()
}

/// Graph's error document.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "innerError": {
        "date": "2026-12-01T00:00:00", "request-id": "fake-request", "client-request-id": "fake-client"}}});
    (status, axum::Json(body)).into_response()
}

/// A JSON response with Graph's content type and headers.
pub(crate) fn odata(value: Value) -> Response {
    let mut response = Body::from(serde_json::to_vec(&value).expect("json")).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
            .parse()
            .unwrap(),
    );
    headers.insert("odata-version", "4.0".parse().unwrap());
    headers.insert("request-id", "fake-request".parse().unwrap());
    response
}

impl State {
    /// The gate every API call passes: the token, then throttling and busy switches. `None`
    /// lets the request through.
    pub(crate) fn admit(&self, headers: &HeaderMap) -> Option<Response> {
        let n = self.counts.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let switches = self.switches.lock().unwrap().clone();
        let now = Instant::now();
        {
            let mut until = self.throttled_until.lock().unwrap();
            if let Some(t) = *until {
                if now < t {
                    self.counts.early_retries.fetch_add(1, Ordering::Relaxed);
                    self.counts.throttled.fetch_add(1, Ordering::Relaxed);
                    return Some(self.too_many(&switches));
                }
                *until = None;
            }
        }
        if switches.forget_tokens_after == Some(n) {
            self.tokens.lock().unwrap().clear();
        }
        if !self.authorized(headers, &switches) {
            self.counts.unauthorized.fetch_add(1, Ordering::Relaxed);
            return Some(error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience or expired.",
            ));
        }
        {
            let mut s = self.switches.lock().unwrap();
            if s.busy_burst > 0 {
                s.busy_burst -= 1;
                let status = if s.busy_burst.is_multiple_of(2) {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::GATEWAY_TIMEOUT
                };
                let mut r = error(status, "UnknownError", "The service is busy.");
                if s.busy_retry_after {
                    r.headers_mut().insert("retry-after", "1".parse().unwrap());
                }
                return Some(r);
            }
        }
        if let Some(every) = switches.throttle_every
            && n.is_multiple_of(every)
        {
            self.counts.throttled.fetch_add(1, Ordering::Relaxed);
            if let Some(secs) = switches.retry_after {
                *self.throttled_until.lock().unwrap() = Some(now + Duration::from_secs(secs));
            }
            return Some(self.too_many(&switches));
        }
        None
    }

    fn too_many(&self, switches: &Switches) -> Response {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests",
        );
        if let Some(secs) = switches.retry_after {
            r.headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
        }
        r
    }

    fn authorized(&self, headers: &HeaderMap, switches: &Switches) -> bool {
        if switches.refuse_tokens {
            return false;
        }
        let Some(token) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let now = Instant::now();
        self.tokens
            .lock()
            .unwrap()
            .iter()
            .any(|(t, expires)| t == token && now < *expires)
    }
}
