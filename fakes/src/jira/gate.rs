//! The gate every API call passes, in this order: counted; charged to the burst window; HTTP
//! Basic `email:api_token` checked (401); the forced-503 and forced-429 switches; the burst budget
//! (429 `jira-burst-based`); for writes, the forced-rejection switch (403). Every response then
//! carries `X-RateLimit-Limit`/`-Remaining`/`-Reset`, and `X-RateLimit-NearLimit: true` when
//! under 20 % of the budget is left.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use super::Switches;
use super::site::Site;

/// What a request asks for, for the per-kind counters and the write switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `GET /rest/api/3/group/bulk`.
    Lookup,
    /// `POST /rest/api/3/group`.
    Create,
    /// `GET /rest/api/3/group/member`.
    MemberPage,
    /// `POST /rest/api/3/group/user`.
    AddUser,
    /// `DELETE /rest/api/3/group/user`.
    RemoveUser,
    /// `GET /rest/api/3/user/search`.
    Search,
}

/// The counters, as atomics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub unauthorized: AtomicU64,
    pub group_lookups: AtomicU64,
    pub group_creates: AtomicU64,
    pub member_pages: AtomicU64,
    pub add_user: AtomicU64,
    pub remove_user: AtomicU64,
    pub user_searches: AtomicU64,
    pub throttled: AtomicU64,
    pub over_limit: AtomicU64,
    pub busy: AtomicU64,
    pub rejected_writes: AtomicU64,
    pub early_retries: AtomicU64,
    pub busiest_window: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The burst window: its index since the epoch, its length, and what it has used.
#[derive(Debug, Default)]
pub(crate) struct Window {
    index: u64,
    length_ms: u64,
    used: u64,
}

/// The shared state of a running fake.
pub(crate) struct State {
    pub base: String,
    pub credential: String,
    pub switches: Mutex<Switches>,
    pub counters: Counters,
    pub window: Mutex<Window>,
    pub site: Mutex<Site>,
    pub retry_not_before: Mutex<Option<Instant>>,
}

/// The rate-limit header values of one response.
pub(crate) struct Rate {
    limit: u64,
    remaining: u64,
    reset: String,
}

impl Rate {
    /// Puts the rate headers on `response`.
    pub fn stamp(&self, mut response: Response) -> Response {
        let h = response.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        if let Ok(v) = HeaderValue::from_str(&self.reset) {
            h.insert("x-ratelimit-reset", v);
        }
        if self.remaining * 5 < self.limit {
            h.insert("x-ratelimit-nearlimit", HeaderValue::from_static("true"));
        }
        response
    }
}

/// Jira's `ErrorCollection`: `{"errorMessages":[message],"errors":{}}`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"errorMessages": [message], "errors": {}})),
    )
        .into_response()
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn iso8601(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl State {
    /// Runs `handler` behind the gate and stamps the rate headers on whatever is answered.
    pub fn gate(
        &self,
        headers: &HeaderMap,
        kind: Kind,
        handler: impl FnOnce(&State) -> Response,
    ) -> Response {
        let (rate, refused) = self.admit(headers);
        if let Some(response) = refused {
            return rate.stamp(response);
        }
        let c = &self.counters;
        bump(match kind {
            Kind::Lookup => &c.group_lookups,
            Kind::Create => &c.group_creates,
            Kind::MemberPage => &c.member_pages,
            Kind::AddUser => &c.add_user,
            Kind::RemoveUser => &c.remove_user,
            Kind::Search => &c.user_searches,
        });
        if matches!(kind, Kind::Create | Kind::AddUser | Kind::RemoveUser) {
            let rejected = {
                let mut s = self.lock_switches();
                let rejected = s.reject_writes > 0;
                s.reject_writes = s.reject_writes.saturating_sub(1);
                rejected
            };
            if rejected {
                bump(&c.rejected_writes);
                return rate.stamp(error(
                    StatusCode::FORBIDDEN,
                    "You do not have permission to manage groups. Site administration permission is required.",
                ));
            }
        }
        rate.stamp(handler(self))
    }

    pub fn lock_switches(&self) -> std::sync::MutexGuard<'_, Switches> {
        self.switches.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn lock_site(&self) -> std::sync::MutexGuard<'_, Site> {
        self.site.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts and charges the request; `Some` is a refusal to send instead of the answer.
    fn admit(&self, headers: &HeaderMap) -> (Rate, Option<Response>) {
        let c = &self.counters;
        bump(&c.requests);
        let now = Instant::now();
        {
            let mut not_before = self
                .retry_not_before
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if not_before.is_some_and(|t| now < t) {
                bump(&c.early_retries);
            }
            if not_before.is_some_and(|t| now >= t) {
                *not_before = None;
            }
        }
        let switches = self.lock_switches().clone();
        let length_ms = switches.window_ms.max(1);
        let ms = now_ms();
        let index = ms / length_ms;
        let used = {
            let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
            if w.index != index || w.length_ms != length_ms {
                *w = Window {
                    index,
                    length_ms,
                    used: 0,
                };
            }
            w.used += 1;
            w.used
        };
        c.busiest_window.fetch_max(used, Ordering::Relaxed);
        let limit = switches.rate_limit;
        let rate = Rate {
            limit,
            remaining: limit.saturating_sub(used),
            reset: iso8601(((index + 1) * length_ms).div_ceil(1000)),
        };
        if !self.authorized(headers) {
            bump(&c.unauthorized);
            return (
                rate,
                Some(error(
                    StatusCode::UNAUTHORIZED,
                    "You are not authenticated. Authentication required to perform this operation.",
                )),
            );
        }
        let (busy, throttle) = {
            let mut s = self.lock_switches();
            let busy = s.busy_next > 0;
            s.busy_next = s.busy_next.saturating_sub(1);
            let throttle = !busy && s.throttle_next > 0;
            if throttle {
                s.throttle_next -= 1;
            }
            (busy, throttle)
        };
        if busy {
            bump(&c.busy);
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable: the site is temporarily unable to handle the request.",
            );
            if let Some(secs) = switches.busy_retry_after {
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from(secs));
            }
            return (rate, Some(r));
        }
        if throttle || used > limit {
            bump(&c.throttled);
            if !throttle {
                bump(&c.over_limit);
            }
            let secs = switches.retry_after_secs;
            if secs > 0 {
                *self
                    .retry_not_before
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(now + Duration::from_secs(secs));
            }
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded.");
            let h = r.headers_mut();
            h.insert("retry-after", HeaderValue::from(secs));
            h.insert(
                "ratelimit-reason",
                HeaderValue::from_static("jira-burst-based"),
            );
            let rate = Rate {
                remaining: 0,
                ..rate
            };
            return (rate, Some(r));
        }
        (rate, None)
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, encoded)) = value.trim().split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .is_ok_and(|decoded| decoded == self.credential.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::iso8601;

    #[test]
    fn formats_instants_as_iso_8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_772_409_600 + 3_723), "2026-03-02T01:02:03Z");
    }
}
