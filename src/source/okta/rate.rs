//! Okta's rate limits, which the org shares with every other integration
//! (reference/idp-apis.md §2.4).
//!
//! Every response carries `X-Rate-Limit-Limit`, `-Remaining` and `-Reset` (the absolute epoch
//! second the window ends). We count our own requests per window and send at most
//! `rate_limit_share` of its limit in it; when what remains of the window runs low (others are
//! using it too) we wait for its reset as well — so the budget holds before the server has to say
//! no. After a 429 — `E0000047`, or the concurrent-request form with limit and remaining both 0 —
//! the retry waits until `X-Rate-Limit-Reset` rather than any fixed delay.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::client::{Pacing, retry_after};

/// Margin after a reset epoch before the next window is assumed open (clocks differ a little).
const SKEW: f64 = 0.5;

/// What we know of the current window.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    limit: u32,
    remaining: u32,
    reset: u64,
    /// Requests we sent in this window.
    ours: u32,
    /// Seconds from one reset to the next, as seen (Okta's windows are a minute).
    length: u64,
    /// The last reset the server itself reported; `reset` differs from it once we have rolled
    /// into the next window on our own clock and await the server's numbers for it.
    reported: u64,
}

/// The pacing of one Okta org.
pub struct RateBudget {
    share: f64,
    /// Requests that may be in flight: kept back from `remaining` so they cannot overrun it.
    reserve: u32,
    window: Mutex<Option<Window>>,
}

impl RateBudget {
    /// A budget taking `share` of each limit, with `concurrency` requests in flight at most.
    pub fn new(share: f64, concurrency: usize) -> RateBudget {
        RateBudget {
            share,
            reserve: concurrency as u32,
            window: Mutex::new(None),
        }
    }

    /// Counts one request into the window, or says how long to wait for the next one.
    fn take(&self, now: f64) -> Result<(), Duration> {
        let mut slot = self.window.lock().expect("no panics");
        let Some(window) = slot.as_mut() else {
            return Ok(());
        };
        if now >= window.reset as f64 + SKEW {
            // The window has reset: the first response of the next one brings its numbers.
            *window = Window {
                remaining: window.limit,
                reset: window.reset.max(window.reported) + window.length,
                ours: 0,
                ..*window
            };
        }
        let ours = ((f64::from(window.limit) * self.share).floor() as u32).max(1);
        if window.limit > 0 && (window.ours >= ours || window.remaining <= self.reserve) {
            return Err(Duration::from_secs_f64(window.reset as f64 + SKEW - now));
        }
        window.ours += 1;
        window.remaining = window.remaining.saturating_sub(1);
        Ok(())
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl Pacing for RateBudget {
    async fn ready(&self) {
        while let Err(wait) = self.take(now()) {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "This run's share of Okta's rate window is spent; waiting for its reset."
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn observe(&self, _status: StatusCode, headers: &HeaderMap) {
        let (Some(limit), Some(remaining), Some(reset)) = (
            number(headers, "x-rate-limit-limit"),
            number(headers, "x-rate-limit-remaining"),
            number(headers, "x-rate-limit-reset"),
        ) else {
            return;
        };
        if limit == 0 {
            // The concurrent-request form says nothing of the window.
            return;
        }
        let (limit, remaining) = (limit as u32, remaining as u32);
        let mut slot = self.window.lock().expect("no panics");
        let Some(w) = slot.as_mut() else {
            *slot = Some(Window {
                limit,
                remaining,
                reset,
                ours: 1,
                length: 60,
                reported: reset,
            });
            return;
        };
        if reset < w.reported || (reset == w.reported && w.reset != w.reported) {
            // A late answer from a window already over.
            return;
        }
        if reset > w.reported {
            // The server's first answer in a newer window: it fixes the reset and the length.
            // Our requests since we rolled over stay counted; if we had not rolled yet (our clock
            // is behind), the request answered is the first of the window.
            let rolled = w.reset != w.reported;
            *w = Window {
                limit,
                remaining,
                reset,
                ours: if rolled { w.ours } else { 1 },
                length: (reset - w.reported).clamp(1, 3600),
                reported: reset,
            };
            return;
        }
        // Answers of one window arrive out of order: keep the lowest remaining.
        w.limit = limit;
        w.remaining = w.remaining.min(remaining);
    }

    fn wait_after(&self, status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
        if status == StatusCode::TOO_MANY_REQUESTS {
            let reset = number(headers, "x-rate-limit-reset")?;
            let wait = reset as f64 + SKEW - now();
            return Some(Duration::from_secs_f64(wait.max(SKEW)));
        }
        retry_after(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(limit: u64, remaining: u64, reset: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-rate-limit-limit", limit.to_string().parse().unwrap());
        h.insert(
            "x-rate-limit-remaining",
            remaining.to_string().parse().unwrap(),
        );
        h.insert("x-rate-limit-reset", reset.to_string().parse().unwrap());
        h
    }

    #[test]
    fn at_most_the_share_of_a_window_is_taken() {
        let budget = RateBudget::new(0.5, 2);
        let t = 1_000_000.0;
        assert_eq!(budget.take(t), Ok(()), "nothing known yet");
        budget.observe(StatusCode::OK, &headers(10, 9, 1_000_060));
        // Our first request counted; four more make five of ten.
        for _ in 0..4 {
            assert_eq!(budget.take(t), Ok(()));
        }
        let wait = budget.take(t).expect_err("half of the limit is spent");
        assert_eq!(wait, Duration::from_secs_f64(60.0 + SKEW));
        // Past the reset the next window opens.
        assert_eq!(budget.take(t + 61.0), Ok(()));
    }

    #[test]
    fn the_next_window_is_taken_from_the_server_and_its_length_learned() {
        // Windows of two seconds: once rolled over on our own clock (guessing a minute), the
        // server's first answer of the new window fixes the reset, so a spent share waits two
        // seconds, not sixty.
        let budget = RateBudget::new(0.5, 1);
        let t = 1_000_000.0;
        budget.observe(StatusCode::OK, &headers(8, 7, 1_000_001));
        for _ in 0..3 {
            assert_eq!(budget.take(t), Ok(()));
        }
        assert!(budget.take(t).is_err(), "four of eight spent");
        let later = t + 1.6;
        assert_eq!(budget.take(later), Ok(()), "rolled over: a new window");
        budget.observe(StatusCode::OK, &headers(8, 7, 1_000_003));
        for _ in 0..3 {
            assert_eq!(budget.take(later), Ok(()));
        }
        let wait = budget
            .take(later)
            .expect_err("four of the new window's eight spent");
        assert_eq!(wait, Duration::from_secs_f64(1_000_003.0 + SKEW - later));
        let w = budget.window.lock().unwrap().unwrap();
        assert_eq!((w.reset, w.length), (1_000_003, 2));
        // A late answer of the old window changes nothing.
        budget.observe(StatusCode::OK, &headers(8, 0, 1_000_001));
        assert_eq!(
            budget.window.lock().unwrap().unwrap().remaining,
            w.remaining
        );
    }

    #[test]
    fn a_window_others_have_nearly_spent_waits_for_its_reset() {
        let budget = RateBudget::new(0.5, 4);
        let t = 1_000_000.0;
        budget.observe(StatusCode::OK, &headers(600, 5, 1_000_030));
        assert_eq!(
            budget.take(t),
            Ok(()),
            "five remain, more than the four in flight"
        );
        assert!(budget.take(t).is_err(), "four remain: the reserve");
        // A later answer of the same window with more remaining does not undo that.
        budget.observe(StatusCode::OK, &headers(600, 50, 1_000_030));
        assert!(budget.take(t).is_err());
    }

    #[test]
    fn a_429_waits_until_the_reset_and_the_concurrent_form_changes_nothing() {
        let budget = RateBudget::new(0.5, 4);
        let reset = now() as u64 + 20;
        let wait = budget
            .wait_after(StatusCode::TOO_MANY_REQUESTS, &headers(600, 0, reset))
            .unwrap();
        assert!(wait > Duration::from_secs(18) && wait <= Duration::from_secs(21));
        budget.observe(StatusCode::OK, &headers(600, 300, reset));
        budget.observe(StatusCode::TOO_MANY_REQUESTS, &headers(0, 0, reset - 15));
        assert_eq!(budget.window.lock().unwrap().unwrap().limit, 600);
    }
}
