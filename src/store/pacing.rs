//! The request budget of a remote store: at most `requests_per_minute` in any minute, counted
//! by this client (ODC allows an organisation 100 a minute and documents no `Retry-After`), and
//! the wait a throttled answer asks for: `Retry-After`, else Jira's `X-RateLimit-Reset`.
//!
//! The budget is a sliding log of send times rather than a token bucket: a bucket refilling at
//! the same rate lets a full burst and a minute's refill through in one minute, which a store
//! counting fixed minutes answers with 429s.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::time::Instant;

use crate::client::{Pacing, retry_after};

/// At most `limit` requests in any `window`.
pub struct Budget {
    limit: usize,
    window: Duration,
    sent: Mutex<VecDeque<Instant>>,
}

impl Budget {
    /// `per_minute` requests a minute.
    pub fn per_minute(per_minute: u32) -> Budget {
        Budget {
            limit: per_minute.max(1) as usize,
            window: Duration::from_secs(60),
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Takes a slot now, or says how long until one frees.
    fn take(&self, now: Instant) -> Result<(), Duration> {
        let mut sent = self.sent.lock().expect("no panics while held");
        while sent
            .front()
            .is_some_and(|&t| now.duration_since(t) >= self.window)
        {
            sent.pop_front();
        }
        if sent.len() < self.limit {
            sent.push_back(now);
            return Ok(());
        }
        let oldest = *sent.front().expect("full, so not empty");
        Err(self.window - now.duration_since(oldest))
    }
}

impl Pacing for Budget {
    async fn ready(&self) {
        while let Err(wait) = self.take(Instant::now()) {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "The store's request budget is spent; waiting."
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn wait_after(&self, _status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
        retry_after(headers).or_else(|| {
            let reset = headers.get("x-ratelimit-reset")?.to_str().ok()?;
            let at = chrono::DateTime::parse_from_rfc3339(reset.trim()).ok()?;
            Some(
                at.signed_duration_since(chrono::Utc::now())
                    .to_std()
                    .unwrap_or_default(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_minute_holds_more_than_the_limit() {
        let budget = Budget::per_minute(3);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..7 {
            budget.ready().await;
            times.push(start.elapsed());
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .filter(|&&u| u - *t < Duration::from_secs(60))
                .count();
            assert!(in_window <= 3, "{times:?}");
        }
        assert_eq!(
            times[2],
            Duration::ZERO,
            "a burst up to the limit waits not"
        );
        assert_eq!(times[3], Duration::from_secs(60));
    }

    #[test]
    fn jira_reset_is_the_fallback_wait() {
        let mut headers = HeaderMap::new();
        let at = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
        headers.insert("x-ratelimit-reset", at.parse().unwrap());
        let wait = Budget::per_minute(1)
            .wait_after(StatusCode::TOO_MANY_REQUESTS, &headers)
            .unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        headers.insert("retry-after", "2".parse().unwrap());
        let wait = Budget::per_minute(1).wait_after(StatusCode::TOO_MANY_REQUESTS, &headers);
        assert_eq!(wait, Some(Duration::from_secs(2)));
    }
}
