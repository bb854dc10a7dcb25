//! The outbound HTTPS client every cloud IdP (and, later, every remote store) talks through:
//! TLS as configured (`ca_file`, `tls_insecure`, `proxy`), timeouts, and one retry policy.
//!
//! A request is retried with exponential backoff and jitter (the `backon` crate) on 429, 502,
//! 503, 504 and connection errors — a body cut short mid-read included, since the whole body is
//! read inside the attempt — honouring the wait the service asks for ([`Pacing::wait_after`]:
//! Graph's `Retry-After`, Okta's `X-Rate-Limit-Reset`). Retries come out of a per-run budget
//! shared by every request of the client, so a service that keeps failing fails the read instead
//! of being retried for hours. Any other status is the caller's to interpret.
//!
//! This module never logs a header or a body: tokens and secrets travel only in them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode, Url};
use tracing::debug;

use crate::config::HttpConfig;

/// How one service wants to be paced: waited on before each attempt, told of each response.
pub trait Pacing: Sync {
    /// Waits until a request may be sent (a client-side rate budget); ready at once by default.
    fn ready(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// Sees the status and headers of every response (rate-limit headers).
    fn observe(&self, _status: StatusCode, _headers: &HeaderMap) {}
    /// How long the service asked us to wait after a throttled or busy response, if it said.
    fn wait_after(&self, status: StatusCode, headers: &HeaderMap) -> Option<Duration>;
}

/// Pacing by the standard `Retry-After` header alone (seconds or an HTTP date).
pub struct RetryAfter;

impl Pacing for RetryAfter {
    fn wait_after(&self, _status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
        retry_after(headers)
    }
}

/// The `Retry-After` header as a duration: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or_default())
}

/// A response whose status was not retried, with its whole body.
#[derive(Debug)]
pub struct Response {
    /// The request's method and URL, for messages.
    pub what: String,
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    /// The body as JSON of type `T`, or an [`RequestError::Invalid`] naming the request.
    pub fn json<'de, T: serde::Deserialize<'de>>(&'de self) -> Result<T, RequestError> {
        serde_json::from_slice(&self.body).map_err(|e| RequestError::Invalid {
            what: self.what.clone(),
            detail: format!("the body is not the JSON expected: {e}"),
        })
    }

    /// A short description of an error response: the status plus the service's error code or
    /// message when its body has one (never the whole body).
    pub fn error_summary(&self) -> String {
        let code = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| error_text(&v));
        match code {
            Some(code) => format!("{}: {code}", self.status),
            None => self.status.to_string(),
        }
    }
}

/// The code and message of an error body in the shapes our services use: Graph's
/// `{"error":{"code","message"}}`, OAuth's `{"error","error_description"}`, Okta's
/// `{"errorCode","errorSummary"}`.
fn error_text(v: &serde_json::Value) -> Option<String> {
    let text = |x: &serde_json::Value| x.as_str().map(str::to_owned);
    if let Some(inner) = v.get("error").filter(|e| e.is_object()) {
        let code = inner.get("code").and_then(text).unwrap_or_default();
        let message = inner.get("message").and_then(text).unwrap_or_default();
        return Some(format!("{code} {message}").trim().to_owned());
    }
    if let Some(code) = v.get("error").and_then(text) {
        let description = v
            .get("error_description")
            .and_then(text)
            .unwrap_or_default();
        let first = description.lines().next().unwrap_or_default();
        return Some(format!("{code} {first}").trim().to_owned());
    }
    let code = v.get("errorCode").and_then(text)?;
    let summary = v.get("errorSummary").and_then(text).unwrap_or_default();
    Some(format!("{code} {summary}").trim().to_owned())
}

/// Why a request gave no usable response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// The service could not be reached, or stayed busy or throttled through every retry.
    #[error("{what}: {detail}")]
    Unavailable {
        /// The request's method and URL.
        what: String,
        /// What went wrong, last.
        detail: String,
    },
    /// The service answered something unusable (malformed JSON, a bad URL to follow).
    #[error("{what}: {detail}")]
    Invalid {
        /// The request's method and URL.
        what: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// One failed attempt, before the retry policy decides.
struct Attempt {
    detail: String,
    retryable: bool,
    /// The wait the service asked for.
    wait: Option<Duration>,
}

/// Counts of what a client has sent, shared by its clones.
#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    throttles: AtomicU64,
    retries_left: AtomicU32,
}

/// An HTTPS client for one service, with its retry policy and per-run counters.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    config: HttpConfig,
    stats: Arc<Stats>,
}

impl HttpClient {
    /// A client as `config` says; a `ca_file` or `proxy` that cannot be used is an error naming it.
    pub fn new(config: &HttpConfig) -> Result<HttpClient, String> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("idpsync/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                format!("ca_file {} holds no PEM certificates: {e}", path.display())
            })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if config.tls_insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(proxy) = &config.proxy {
            let proxy = reqwest::Proxy::all(proxy).map_err(|e| format!("proxy {proxy:?}: {e}"))?;
            builder = builder.proxy(proxy);
        }
        let inner = builder
            .build()
            .map_err(|e| format!("cannot set up the HTTPS client: {e}"))?;
        let stats = Stats {
            retries_left: AtomicU32::new(config.retry_budget),
            ..Stats::default()
        };
        Ok(HttpClient {
            inner,
            config: config.clone(),
            stats: Arc::new(stats),
        })
    }

    /// The underlying client (no retries, no counters), for a library that sends its own
    /// requests (`openidconnect`'s discovery and JWKS).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// A request builder on this client.
    pub fn request(&self, method: reqwest::Method, url: Url) -> RequestBuilder {
        self.inner.request(method, url)
    }

    /// Requests sent so far, every attempt counted.
    pub fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::Relaxed)
    }

    /// Responses so far that were 429 or 503 (the service throttling or busy).
    pub fn throttles(&self) -> u64 {
        self.stats.throttles.load(Ordering::Relaxed)
    }

    /// The backoff between retries: exponential from `retry_min_delay` to `retry_max_delay`,
    /// with jitter, `max_retries` times.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.config.retry_min_delay)
            .with_max_delay(self.config.retry_max_delay)
            .with_max_times(self.config.max_retries as usize)
            .with_jitter()
    }

    /// Starts the retry budget afresh (a long-lived client, at each new unit of work).
    pub fn reset_retry_budget(&self) {
        self.stats
            .retries_left
            .store(self.config.retry_budget, Ordering::Relaxed);
    }

    /// Takes one retry from the run's budget; false when it is spent.
    pub fn take_retry(&self) -> bool {
        self.stats
            .retries_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// The longest wait a service may ask for before the request fails instead.
    pub fn max_wait(&self) -> Duration {
        self.config.retry_max_delay
    }

    /// Counts a throttled answer that arrived inside another response (a `$batch` part).
    pub fn count_throttle(&self) {
        self.stats.throttles.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends the request `make` builds (again on each attempt), retrying as the module says, and
    /// returns the first response that is not retried, body read whole.
    pub async fn send<P: Pacing>(
        &self,
        pacing: &P,
        what: &str,
        make: impl Fn() -> RequestBuilder,
    ) -> Result<Response, RequestError> {
        let attempt = || async {
            pacing.ready().await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let response = make().send().await.map_err(|e| Attempt {
                detail: transport(&e),
                retryable: true,
                wait: None,
            })?;
            let status = response.status();
            let headers = response.headers().clone();
            pacing.observe(status, &headers);
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            {
                self.stats.throttles.fetch_add(1, Ordering::Relaxed);
            }
            if is_retryable(status) {
                let body = response.bytes().await.unwrap_or_default();
                let summary = Response {
                    what: String::new(),
                    status,
                    headers,
                    body,
                };
                return Err(Attempt {
                    detail: summary.error_summary(),
                    retryable: true,
                    wait: pacing.wait_after(status, &summary.headers),
                });
            }
            let body = response.bytes().await.map_err(|e| Attempt {
                detail: format!("the body was cut short: {}", transport(&e)),
                retryable: true,
                wait: None,
            })?;
            Ok(Response {
                what: what.to_owned(),
                status,
                headers,
                body,
            })
        };
        let backoff = self.backoff();
        let max_wait = self.config.retry_max_delay;
        let mut budget_spent = false;
        let mut too_long = None;
        let result = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|a: &Attempt| {
                if !a.retryable {
                    return false;
                }
                budget_spent = !self.take_retry();
                !budget_spent
            })
            .adjust(|a: &Attempt, backoff| match a.wait {
                // The backoff says when the retries are spent; the service only says how long.
                _ if backoff.is_none() => None,
                Some(wait) if wait > max_wait => {
                    too_long = Some(wait);
                    None
                }
                // The service's wait, plus a little jitter so clients do not return in step.
                Some(wait) => Some(wait + Duration::from_millis(fastrand::u64(0..=250))),
                None => backoff,
            })
            .notify(|a: &Attempt, wait: Duration| {
                debug!(request = what, error = %a.detail, wait_ms = wait.as_millis() as u64, "Retrying.");
            })
            .await;
        result.map_err(|a| {
            let mut detail = a.detail;
            if budget_spent {
                detail.push_str(&format!(
                    " (the run's retry budget of {} is spent)",
                    self.config.retry_budget
                ));
            } else if let Some(wait) = too_long {
                detail.push_str(&format!(
                    " (asked to wait {} s, longer than retry_max_delay)",
                    wait.as_secs()
                ));
            } else if a.retryable {
                detail.push_str(&format!(" (after {} retries)", self.config.max_retries));
            }
            RequestError::Unavailable {
                what: what.to_owned(),
                detail,
            }
        })
    }
}

fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// A transport error's text with its causes, which reqwest keeps in the source chain.
fn transport(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "connection error".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn error_summaries_take_the_code_never_the_body() {
        let summary = |body: &str| {
            Response {
                what: String::new(),
                status: StatusCode::BAD_REQUEST,
                headers: HeaderMap::new(),
                body: Bytes::from(body.to_owned()),
            }
            .error_summary()
        };
        assert_eq!(
            summary(r#"{"error":{"code":"Request_BadRequest","message":"Bad filter"}}"#),
            "400 Bad Request: Request_BadRequest Bad filter"
        );
        assert_eq!(
            summary(
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"}"#
            ),
            "400 Bad Request: invalid_client AADSTS7000215: Invalid client secret provided."
        );
        assert_eq!(
            summary(r#"{"errorCode":"E0000011","errorSummary":"Invalid token provided"}"#),
            "400 Bad Request: E0000011 Invalid token provided"
        );
        assert_eq!(summary("<html>secret</html>"), "400 Bad Request");
    }
}
