//! The keys every HTTPS client takes (SPEC §2): `ca_file`, `tls_insecure`, `proxy`, timeouts,
//! concurrency and the retry policy; and the one rule for configured URLs: `https://`, or
//! `http://` on a loopback address only.
//!
//! IdPs read these now; remote stores and OIDC issuers take the same keys through [`read`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::reader::{ConfigError, Section};

/// How one HTTPS client connects and retries.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// PEM certificates to trust in addition to the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification; only with `tls_insecure = true`.
    pub tls_insecure: bool,
    /// An HTTP(S) proxy for every request of this client.
    pub proxy: Option<String>,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long one request, body included, may take.
    pub timeout: Duration,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Retries of one request (429, 503, 504, connection errors) before the read fails.
    pub max_retries: u32,
    /// Retries in all during one run: a service that keeps failing fails the read instead of
    /// being retried request after request.
    pub retry_budget: u32,
    /// The first backoff delay when the service gives no `Retry-After`; it doubles, with jitter.
    pub retry_min_delay: Duration,
    /// The longest backoff delay, and the longest `Retry-After` honoured before the read fails.
    pub retry_max_delay: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            ca_file: None,
            tls_insecure: false,
            proxy: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_concurrency: 4,
            max_retries: 8,
            retry_budget: 200,
            retry_min_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(120),
        }
    }
}

/// Reads the HTTP client keys of `s`.
pub(super) fn read(s: &mut Section<'_>, dir: &Path) -> Result<HttpConfig, ConfigError> {
    let defaults = HttpConfig::default();
    let proxy = match s.string("proxy")? {
        None => None,
        Some(v) => {
            check_url(&v.value).map_err(|m| s.error_from("proxy", &v.origin, m))?;
            Some(v.value)
        }
    };
    let config = HttpConfig {
        ca_file: s.string("ca_file")?.map(|v| dir.join(v.value)),
        tls_insecure: s.boolean("tls_insecure")?.is_some_and(|v| v.value),
        proxy,
        connect_timeout: positive(s, "connect_timeout", defaults.connect_timeout)?,
        timeout: positive(s, "timeout", defaults.timeout)?,
        max_concurrency: bounded(s, "max_concurrency", defaults.max_concurrency as u64, 64)?
            as usize,
        max_retries: bounded(s, "max_retries", defaults.max_retries.into(), 100)? as u32,
        retry_budget: bounded(s, "retry_budget", defaults.retry_budget.into(), 1_000_000)? as u32,
        retry_min_delay: positive(s, "retry_min_delay", defaults.retry_min_delay)?,
        retry_max_delay: positive(s, "retry_max_delay", defaults.retry_max_delay)?,
    };
    if config.retry_min_delay > config.retry_max_delay {
        return Err(s.error("retry_min_delay", "must not be longer than retry_max_delay"));
    }
    if let Some(ca) = &config.ca_file
        && !ca.is_file()
    {
        return Err(s.error(
            "ca_file",
            format!("{} does not exist or is not a file", ca.display()),
        ));
    }
    Ok(config)
}

/// Reads URL `key` (or `default`), checked by [`check_url`], without a trailing slash.
pub(super) fn url(
    s: &mut Section<'_>,
    key: &str,
    default: Option<&str>,
    example: &str,
) -> Result<String, ConfigError> {
    let value = match (s.string(key)?, default) {
        (Some(v), _) => {
            check_url(&v.value).map_err(|m| s.error_from(key, &v.origin, m))?;
            v.value
        }
        (None, Some(default)) => default.to_owned(),
        (None, None) => {
            return Err(s.entry_error(format!("this IdP needs {key} = \"{example}\"")));
        }
    };
    Ok(value.trim_end_matches('/').to_owned())
}

/// A configured URL is `https://`, or `http://` on a loopback address (127.0.0.0/8, `::1`,
/// `localhost`) for local fakes and tests (SPEC §2).
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) if IpAddr::V4(ip).is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if IpAddr::V6(ip).is_loopback() => Ok(()),
            Some(url::Host::Domain("localhost")) => Ok(()),
            _ => Err(format!(
                "{url:?} is plain http:// to a host that is not loopback; use https:// (http:// is only for 127.0.0.1 or ::1)"
            )),
        },
        _ => Err(format!("{url:?} is not an https:// URL")),
    }
}

fn positive(s: &mut Section<'_>, key: &str, default: Duration) -> Result<Duration, ConfigError> {
    match s.duration(key)? {
        None => Ok(default),
        Some(v) if v.value.is_zero() => Err(s.error_from(key, &v.origin, "must be more than zero")),
        Some(v) => Ok(v.value),
    }
}

fn bounded(s: &mut Section<'_>, key: &str, default: u64, max: u64) -> Result<u64, ConfigError> {
    match s.unsigned(key)? {
        None => Ok(default),
        Some(v) if key != "max_retries" && key != "retry_budget" && v.value == 0 => {
            Err(s.error_from(key, &v.origin, format!("must be between 1 and {max}")))
        }
        Some(v) if v.value > max => {
            Err(s.error_from(key, &v.origin, format!("must be at most {max}")))
        }
        Some(v) => Ok(v.value),
    }
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn only_https_or_loopback_http_is_allowed() {
        for ok in [
            "https://graph.microsoft.com",
            "http://127.0.0.1:8080",
            "http://127.3.4.5/x",
            "http://[::1]:99",
            "http://localhost:1",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://graph.microsoft.com",
            "http://10.0.0.1",
            "ftp://127.0.0.1",
            "graph.microsoft.com",
            "http://localhost.evil.test",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
