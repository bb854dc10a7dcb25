//! The request budget of a remote store: at most `rate_limit` requests in any `rate_window`,
//! counted by this client (ODC allows an organisation 100 a minute and documents no
//! `Retry-After`), and the wait a throttled answer asks for: `Retry-After`, else Jira's
//! `X-RateLimit-Reset`.
//!
//! The budget is a sliding log of send times rather than a token bucket: a bucket refilling at
//! the same rate lets a full burst and a window's refill through in one window, which a store
//! counting fixed windows answers with 429s. A slot frees 2 % after its window ends, so that
//! requests arriving a little later than they left never crowd into one of the store's windows.

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
    /// Whether an earlier process's requests were counted in already (once per budget).
    remembered: std::sync::atomic::AtomicBool,
}

impl Budget {
    /// At most `limit` requests in any `window`.
    pub fn new(limit: u32, window: Duration) -> Budget {
        Budget {
            limit: limit.max(1) as usize,
            window: window + window / 50,
            sent: Mutex::new(VecDeque::new()),
            remembered: Default::default(),
        }
    }

    /// When the requests in the current window were sent (Unix milliseconds), to be kept for the
    /// next process.
    pub fn sent(&self) -> Vec<i64> {
        let (now, now_ms) = (Instant::now(), crate::state::unix_millis());
        let sent = self.sent.lock().expect("no panics while held");
        sent.iter()
            .filter(|&&t| now.duration_since(t) < self.window)
            .map(|&t| now_ms - now.duration_since(t).as_millis() as i64)
            .collect()
    }

    /// Counts requests another process sent at these times (Unix milliseconds) as this
    /// budget's own; only the first call counts (later ones would count this process's twice).
    pub fn remember(&self, sent: &[i64]) {
        if self
            .remembered
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let (now, now_ms) = (Instant::now(), crate::state::unix_millis());
        let mut log = self.sent.lock().expect("no panics while held");
        let mut earlier: Vec<Instant> = sent
            .iter()
            .filter_map(|&t| {
                let ago = Duration::from_millis(now_ms.saturating_sub(t).max(0) as u64);
                (ago < self.window).then(|| now.checked_sub(ago)).flatten()
            })
            .collect();
        earlier.sort();
        for t in earlier.into_iter().rev() {
            if log.front().is_none_or(|&f| t <= f) {
                log.push_front(t);
            }
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
        let budget = Budget::new(3, Duration::from_secs(50));
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..7 {
            budget.ready().await;
            times.push(start.elapsed());
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .filter(|&&u| u - *t < Duration::from_secs(50))
                .count();
            assert!(in_window <= 3, "{times:?}");
        }
        assert_eq!(
            times[2],
            Duration::ZERO,
            "a burst up to the limit waits not"
        );
        assert_eq!(
            times[3],
            Duration::from_secs(51),
            "a slot frees 2 % after its window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_of_an_earlier_process_count() {
        let earlier = Budget::new(2, Duration::from_secs(60));
        earlier.ready().await;
        earlier.ready().await;
        let kept = earlier.sent();
        assert_eq!(kept.len(), 2);
        let next = Budget::new(2, Duration::from_secs(60));
        next.remember(&kept);
        assert!(
            next.take(Instant::now()).is_err(),
            "the window is full already"
        );
    }

    #[test]
    fn jira_reset_is_the_fallback_wait() {
        let mut headers = HeaderMap::new();
        let at = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
        headers.insert("x-ratelimit-reset", at.parse().unwrap());
        let wait = Budget::new(1, Duration::from_secs(60))
            .wait_after(StatusCode::TOO_MANY_REQUESTS, &headers)
            .unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        headers.insert("retry-after", "2".parse().unwrap());
        let wait = Budget::new(1, Duration::from_secs(60))
            .wait_after(StatusCode::TOO_MANY_REQUESTS, &headers);
        assert_eq!(wait, Some(Duration::from_secs(2)));
    }
}
