//! Connecting and binding to an LDAP server: `ldap://`, `ldaps://`, StartTLS, a private CA,
//! timeouts; and error texts an operator can act on (which bind was refused, which host was
//! unreachable, that TLS failed).

use std::sync::Arc;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::ExposeSecret;

use crate::config::LdapConfig;
use crate::source::SourceError;

/// A bound connection, with the configuration it was opened with and a count of the requests
/// made on it (binds, searches, pages).
pub struct Session<'a> {
    /// The connection.
    pub ldap: Ldap,
    /// Its IdP's settings.
    pub config: &'a LdapConfig,
    /// LDAP requests sent so far.
    pub requests: u64,
}

impl Session<'_> {
    /// Ends the session politely (an unbind); errors do not matter any more.
    pub async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

/// Opens a connection to the configured server and binds (anonymously without `bind_dn`).
pub async fn connect(config: &LdapConfig) -> Result<Session<'_>, SourceError> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(config.connect_timeout)
        .set_starttls(config.starttls);
    if config.tls_insecure {
        settings = settings.set_no_tls_verify(true);
    } else if let Some(ca_file) = &config.ca_file {
        settings = settings.set_config(Arc::new(tls_config(ca_file)?));
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &config.url)
        .await
        .map_err(|e| connect_error(&config.url, &e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(error = %e, "LDAP connection ended with an error.");
        }
    });
    if let (Some(dn), Some(password)) = (&config.bind_dn, &config.bind_password) {
        let result = ldap
            .with_timeout(config.timeout)
            .simple_bind(dn, password.expose_secret())
            .await
            .map_err(|e| operation_error(&config.url, "binding", &e))?;
        if result.rc != 0 {
            return Err(result_error(result.rc)(format!(
                "bind as {dn:?} refused by {}: {}",
                config.url,
                describe(result.rc, &result.text)
            )));
        }
    }
    Ok(Session {
        ldap,
        config,
        requests: u64::from(config.bind_dn.is_some()),
    })
}

/// A TLS client configuration trusting only the certificates in `ca_file`.
fn tls_config(ca_file: &std::path::Path) -> Result<rustls::ClientConfig, SourceError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        SourceError::Invalid(format!("cannot read ca_file {}: {e}", ca_file.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| unreadable(&e))? {
        let cert = cert.map_err(|e| unreadable(&e))?;
        roots.add(cert).map_err(|e| unreadable(&e))?;
    }
    if roots.is_empty() {
        return Err(unreadable(&"no PEM certificate in it"));
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The error of a failed connection: unreachable host, or TLS.
fn connect_error(url: &str, error: &LdapError) -> SourceError {
    if is_tls(error) {
        SourceError::Unavailable(format!("TLS with {url} failed: {}", cause(error)))
    } else {
        SourceError::Unavailable(format!("cannot connect to {url}: {}", cause(error)))
    }
}

/// The error of a failed operation (`doing` says which) on an open connection.
pub fn operation_error(url: &str, doing: &str, error: &LdapError) -> SourceError {
    match error {
        LdapError::LdapResult { result } => result_error(result.rc)(format!(
            "{doing} on {url} failed: {}",
            describe(result.rc, &result.text)
        )),
        LdapError::Timeout { .. } => {
            SourceError::Unavailable(format!("{doing} on {url} timed out (timeout)"))
        }
        _ if is_tls(error) => {
            SourceError::Unavailable(format!("TLS with {url} failed: {}", cause(error)))
        }
        _ => SourceError::Unavailable(format!(
            "{doing} on {url} failed: the connection broke ({})",
            cause(error)
        )),
    }
}

/// The kind of error an LDAP result code is: refused credentials or rights are `Unauthorized`
/// (an operator must fix them), anything else `Unavailable` (the next run tries again).
pub fn result_error(rc: u32) -> fn(String) -> SourceError {
    match rc {
        // strongerAuthRequired, inappropriateAuthentication, invalidCredentials, insufficientAccessRights
        8 | 48 | 49 | 50 => SourceError::Unauthorized,
        _ => SourceError::Unavailable,
    }
}

/// An LDAP result code in words, with the server's diagnostic text when it gave one.
pub fn describe(rc: u32, text: &str) -> String {
    let name = match rc {
        1 => "operations error",
        2 => "protocol error",
        3 => "time limit exceeded",
        4 => "size limit exceeded",
        7 => "authentication method not supported",
        8 => "stronger authentication required",
        10 => "referral",
        11 => "administrative limit exceeded",
        12 => "unavailable critical extension",
        13 => "confidentiality required",
        32 => "no such object",
        34 => "invalid DN syntax",
        48 => "inappropriate authentication",
        49 => "invalid credentials",
        50 => "insufficient access rights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwilling to perform",
        80 => "other",
        _ => "error",
    };
    if text.trim().is_empty() {
        format!("{name} ({rc})")
    } else {
        format!("{name} ({rc}): {}", text.trim())
    }
}

fn is_tls(error: &LdapError) -> bool {
    if matches!(error, LdapError::Rustls { .. } | LdapError::DNSName { .. }) {
        return true;
    }
    let text = cause(error).to_ascii_lowercase();
    ["certificate", "tls", "handshake", "alert"]
        .iter()
        .any(|w| text.contains(w))
}

/// The error with its sources, innermost last.
fn cause(error: &LdapError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = inner.source();
    }
    text
}
