//! A fake Okta org: `/oauth2/v1/token` for service apps, `/api/v1/groups` and
//! `/api/v1/groups/{id}/users`, as reference/idp-apis.md §2 describes them.
//!
//! Enforced as Okta does: `SSWS <token>` or a bearer token it issued on every call; `limit`
//! capped (200 for groups, 1000 for a group's users); paging by an opaque `after` cursor in
//! `Link: <…>; rel="next"`, sent comma-joined or as separate header lines; and a rate limit per
//! fixed window reported in `X-Rate-Limit-Limit`, `-Remaining` and `-Reset` (an absolute epoch)
//! on every response, with a 429 `E0000047` past it.

mod org;
mod pages;
mod token;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

pub use org::{Group, Org, User};

use crate::server::{Running, Tls, serve_with_state};

/// How `Link` headers are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStyle {
    /// One header, links comma-joined (Okta's documented form).
    Joined,
    /// One header line per link.
    Separate,
    /// Joined and separate by turns.
    Alternate,
}

/// Behaviours a test switches on.
#[derive(Debug, Clone)]
pub struct Switches {
    /// Requests allowed per window.
    pub rate_limit: u64,
    /// The window, seconds (Okta's is a minute).
    pub window_secs: u64,
    /// The most groups a page holds.
    pub group_page_cap: usize,
    /// The most users a page holds.
    pub user_page_cap: usize,
    /// How `Link` headers are sent.
    pub link_style: LinkStyle,
    /// Answer every Nth API request with 429 `E0000047` (the window untouched).
    pub throttle_every: Option<u64>,
    /// Answer every Nth API request with the concurrent-limit 429 (limit and remaining 0).
    pub concurrent_every: Option<u64>,
    /// Answer this many coming API requests with 503.
    pub busy_burst: u32,
    /// Cut this many coming user pages off mid-body.
    pub cut_pages: u32,
    /// Lifetime of issued OAuth tokens, seconds.
    pub token_lifetime: u64,
    /// User pages answer with malformed JSON.
    pub malformed_users: bool,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            rate_limit: 600,
            window_secs: 60,
            group_page_cap: 200,
            user_page_cap: 1000,
            link_style: LinkStyle::Alternate,
            throttle_every: None,
            concurrent_every: None,
            busy_burst: 0,
            cut_pages: 0,
            token_lifetime: 3600,
            malformed_users: false,
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
    /// Pages of `/api/v1/groups`.
    pub group_pages: AtomicU64,
    /// Pages of group users.
    pub user_pages: AtomicU64,
    /// 429s sent for the rate limit being exceeded (not the forced ones).
    pub over_limit: AtomicU64,
    /// 429s sent in all.
    pub throttled: AtomicU64,
    /// Requests that came in a window already answered with a 429, before its reset.
    pub early_retries: AtomicU64,
    /// The most requests one window saw.
    pub busiest_window: AtomicU64,
}

/// Reads one counter.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

struct Window {
    index: u64,
    used: u64,
    forced_throttle_until: Option<u64>,
}

/// The shared state of a running fake.
pub struct State {
    base: String,
    org: Org,
    /// The switches, changeable while running.
    pub switches: Mutex<Switches>,
    /// The counters.
    pub counts: Counts,
    tokens: Mutex<Vec<(String, Instant)>>,
    window: Mutex<Window>,
}

/// A running fake org.
pub struct FakeOkta {
    /// The server.
    pub server: Running,
    /// Its state.
    pub state: Arc<State>,
}

impl FakeOkta {
    /// Serves `org` with `switches`.
    pub fn start(org: Org, switches: Switches) -> FakeOkta {
        Self::serve(org, switches, None)
    }

    /// Serves `org` with `switches` over TLS (`https://127.0.0.1:PORT`).
    pub fn start_tls(org: Org, switches: Switches, tls: Tls) -> FakeOkta {
        Self::serve(org, switches, Some(tls))
    }

    fn serve(org: Org, switches: Switches, tls: Option<Tls>) -> FakeOkta {
        let state = move |base| State {
            base,
            org,
            switches: Mutex::new(switches),
            counts: Counts::default(),
            tokens: Mutex::new(Vec::new()),
            window: Mutex::new(Window {
                index: 0,
                used: 0,
                forced_throttle_until: None,
            }),
        };
        let routes = |state: Arc<State>| {
            Router::new()
                .route("/oauth2/v1/token", post(token::token))
                .route("/api/v1/groups", get(pages::groups))
                .route("/api/v1/groups/{id}/users", get(pages::users))
                .route("/_fake/stats", get(stats))
                .with_state(state)
        };
        let (server, state) = serve_with_state(tls, state, routes);
        FakeOkta { server, state }
    }

    /// The org URL.
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
}

async fn stats(axum::extract::State(state): axum::extract::State<Arc<State>>) -> Response {
    let c = &state.counts;
    axum::Json(json!({
        "requests": read(&c.requests), "tokens": read(&c.tokens),
        "group_pages": read(&c.group_pages), "user_pages": read(&c.user_pages),
        "over_limit": read(&c.over_limit), "throttled": read(&c.throttled),
        "early_retries": read(&c.early_retries), "busiest_window": read(&c.busiest_window),
    }))
    .into_response()
}

/// Okta's error object.
pub(crate) fn error(status: StatusCode, code: &str, summary: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"errorCode": code, "errorSummary": summary, "errorLink": code,
        "errorId": "oaeFAKE", "errorCauses": []}),
        ),
    )
        .into_response()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn rate_headers(r: &mut Response, limit: u64, remaining: u64, reset: u64) {
    let h = r.headers_mut();
    h.insert("x-rate-limit-limit", HeaderValue::from(limit));
    h.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
    h.insert("x-rate-limit-reset", HeaderValue::from(reset));
}

impl State {
    /// The gate every API call passes: the rate window, the credential, the switches. `Err` is
    /// the answer to send; `Ok` carries the rate headers' values for the response.
    pub(crate) fn admit(&self, headers: &HeaderMap) -> Result<(u64, u64, u64), Response> {
        let n = self.counts.requests.fetch_add(1, Ordering::Relaxed) + 1;
        let switches = self.switches.lock().unwrap().clone();
        let now = now_secs();
        let index = now / switches.window_secs;
        let reset = (index + 1) * switches.window_secs;
        let (used, early) = {
            let mut w = self.window.lock().unwrap();
            if w.index != index {
                *w = Window {
                    index,
                    used: 0,
                    forced_throttle_until: None,
                };
            }
            w.used += 1;
            let early = w.used > switches.rate_limit + 1
                || w.forced_throttle_until.is_some_and(|until| now < until);
            (w.used, early)
        };
        self.counts
            .busiest_window
            .fetch_max(used, Ordering::Relaxed);
        if early {
            self.counts.early_retries.fetch_add(1, Ordering::Relaxed);
        }
        let remaining = switches.rate_limit.saturating_sub(used);
        let too_many = |state: &State| {
            state.counts.throttled.fetch_add(1, Ordering::Relaxed);
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
            )
        };
        if used > switches.rate_limit {
            self.counts.over_limit.fetch_add(1, Ordering::Relaxed);
            let mut r = too_many(self);
            rate_headers(&mut r, switches.rate_limit, 0, reset);
            return Err(r);
        }
        if !self.authorized(headers) {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "E0000011",
                "Invalid token provided",
            );
            rate_headers(&mut r, switches.rate_limit, remaining, reset);
            return Err(r);
        }
        if let Some(every) = switches.throttle_every
            && n.is_multiple_of(every)
        {
            self.window.lock().unwrap().forced_throttle_until = Some(reset);
            let mut r = too_many(self);
            rate_headers(&mut r, switches.rate_limit, remaining, reset);
            return Err(r);
        }
        if let Some(every) = switches.concurrent_every
            && n.is_multiple_of(every)
        {
            let mut r = too_many(self);
            rate_headers(&mut r, 0, 0, now + 1);
            return Err(r);
        }
        {
            let mut s = self.switches.lock().unwrap();
            if s.busy_burst > 0 {
                s.busy_burst -= 1;
                let mut r = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "E0000009",
                    "Internal Server Error",
                );
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from(1u64));
                return Err(r);
            }
        }
        Ok((switches.rate_limit, remaining, reset))
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if let Some(token) = value.strip_prefix("SSWS ") {
            return !self.org.api_token.is_empty() && token == self.org.api_token;
        }
        let Some(token) = value.strip_prefix("Bearer ") else {
            return false;
        };
        let now = Instant::now();
        self.tokens
            .lock()
            .unwrap()
            .iter()
            .any(|(t, exp)| t == token && now < *exp)
    }

    pub(crate) fn issue(&self) -> (String, u64) {
        let lifetime = self.switches.lock().unwrap().token_lifetime;
        let token = format!("fake-okta-token-{:016x}", fastrand::u64(..));
        self.tokens.lock().unwrap().push((
            token.clone(),
            Instant::now() + Duration::from_secs(lifetime),
        ));
        (token, lifetime)
    }
}
