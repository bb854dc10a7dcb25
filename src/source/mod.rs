//! IdP sources: each reads one IdP completely and checks it into a [`Directory`] (through
//! `Directory::resolve`, the same checks for every source), or fails.
//!
//! The set of kinds is closed and chosen by configuration, so it is an enum. A source never returns
//! a partial read: a failure anywhere fails the whole read, and the IdP then contributes nothing to
//! the run (SPEC §1 invariant 4). Sources never touch the state file.

pub mod collect;
pub mod file;
pub mod graph;
pub mod ldap;
pub mod okta;
pub mod token;

use crate::client::{HttpClient, Response};
use crate::config::{IdpConfig, IdpKind};
use crate::directory::Directory;
use crate::model::{Failure, FailureKind};

/// Why an IdP could not be read; either way the IdP sits this run out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The IdP could not be reached or read (missing file, network): retry at the next run.
    #[error("{0}")]
    Unavailable(String),
    /// The IdP refused our credentials (a refused bind, insufficient rights): refresh once at
    /// most, then fail until an operator fixes them.
    #[error("{0}")]
    Unauthorized(String),
    /// The IdP answered with data that cannot be used (malformed, inconsistent): an operator must look.
    #[error("{0}")]
    Invalid(String),
}

impl SourceError {
    /// The error as a failure of its kind, as the run record keeps it.
    pub fn into_failure(self) -> Failure {
        match self {
            SourceError::Unavailable(m) => Failure::new(FailureKind::Unavailable, m),
            SourceError::Unauthorized(m) => Failure::new(FailureKind::Unauthorized, m),
            SourceError::Invalid(m) => Failure::new(FailureKind::Invalid, m),
        }
    }
}

/// What a read produced.
#[derive(Debug, Clone)]
pub enum SourceRead {
    /// The IdP is exactly as it was when its fingerprint was taken (a cheap check said so).
    Unchanged,
    /// A complete, checked read, with a fingerprint when the source can give one cheaply.
    Changed {
        /// Everything the IdP holds.
        directory: Directory,
        /// Equal fingerprints mean an identical IdP (file: a hash of its bytes).
        fingerprint: Option<String>,
    },
}

/// A configured IdP, ready to read.
#[derive(Debug)]
pub enum Source {
    /// A directory export on disk.
    File(file::FileSource),
    /// An LDAP directory.
    Ldap(Box<ldap::LdapSource>),
    /// Entra ID through Microsoft Graph.
    AzureAd(std::sync::Arc<graph::GraphSource>),
    /// An Okta org.
    Okta(std::sync::Arc<okta::OktaSource>),
    /// A login-only IdP (`kind = "oidc"`): there is nothing to read in batch.
    LoginOnly(crate::model::IdpName),
}

impl Source {
    /// Builds the source an `[[idp]]` entry describes.
    pub fn build(config: &IdpConfig) -> Source {
        match &config.kind {
            IdpKind::File { path } => {
                Source::File(file::FileSource::new(path.clone(), &config.user_key))
            }
            IdpKind::Ldap(ldap) => {
                Source::Ldap(Box::new(ldap::LdapSource::new(ldap, &config.user_key)))
            }
            IdpKind::AzureAd(azure) => Source::AzureAd(std::sync::Arc::new(
                graph::GraphSource::new(azure, config.nested, &config.user_key),
            )),
            IdpKind::Okta(okta) => Source::Okta(std::sync::Arc::new(okta::OktaSource::new(
                okta,
                &config.user_key,
            ))),
            IdpKind::Oidc { .. } => Source::LoginOnly(config.name.clone()),
        }
    }

    /// `check --connect`: what a quick look at the IdP found. File and LDAP IdPs are read whole
    /// (the same read a run makes); cloud IdPs get a token and count their groups without
    /// reading members.
    pub async fn check(&self) -> Result<String, SourceError> {
        let read = match self {
            Source::AzureAd(graph) => return graph.check().await,
            Source::Okta(okta) => return okta.check().await,
            Source::LoginOnly(_) => {
                return Ok(
                    "login-only: read at sign-in by `idpsync run`, never in batch".to_owned(),
                );
            }
            Source::File(_) | Source::Ldap(_) => self.read(None).await?,
        };
        match read {
            SourceRead::Changed { directory: d, .. } => Ok(format!(
                "{} users ({} usable, {} without a user key), {} groups",
                d.users_total,
                d.users.len(),
                d.skipped_users,
                d.groups.len()
            )),
            SourceRead::Unchanged => Err(SourceError::Invalid("unexpectedly unchanged".to_owned())),
        }
    }

    /// Reads the IdP now as a directory export (what `idpsync export` prints), checked for consistency.
    pub async fn export(&self) -> Result<file::DirectoryExport, SourceError> {
        match self {
            Source::File(file) => file.export().await,
            Source::Ldap(ldap) => ldap.export().await,
            Source::AzureAd(graph) => graph.export().await,
            Source::Okta(okta) => okta.export().await,
            Source::LoginOnly(name) => Err(login_only(name)),
        }
    }

    /// Requests this source has sent to its IdP so far (LDAP operations; one per file read).
    pub fn requests(&self) -> u64 {
        match self {
            Source::File(file) => file.requests(),
            Source::Ldap(ldap) => ldap.requests(),
            Source::AzureAd(graph) => graph.http().map_or(0, HttpClient::requests),
            Source::Okta(okta) => okta.http().map_or(0, HttpClient::requests),
            Source::LoginOnly(_) => 0,
        }
    }

    /// Answers so far that throttled us (429) or said the service was busy (503).
    pub fn throttles(&self) -> u64 {
        match self {
            Source::File(_) | Source::Ldap(_) | Source::LoginOnly(_) => 0,
            Source::AzureAd(graph) => graph.http().map_or(0, HttpClient::throttles),
            Source::Okta(okta) => okta.http().map_or(0, HttpClient::throttles),
        }
    }

    /// Reads the IdP, or answers [`SourceRead::Unchanged`] when its fingerprint still equals
    /// `unchanged_if` (the shortcut of SPEC §1 invariant 13; pass `None` to always read).
    pub async fn read(&self, unchanged_if: Option<&str>) -> Result<SourceRead, SourceError> {
        match self {
            Source::File(file) => file.read_if_changed(unchanged_if).await,
            Source::Ldap(ldap) => ldap.read_if_changed(unchanged_if).await,
            // Cloud IdPs have no cheap "unchanged" check until a delta cursor exists: always read.
            Source::AzureAd(graph) => {
                let graph = graph.clone();
                spawned(async move { graph.read_if_changed(None).await }).await
            }
            Source::Okta(okta) => {
                let okta = okta.clone();
                spawned(async move { okta.read_if_changed(None).await }).await
            }
            Source::LoginOnly(name) => Err(login_only(name)),
        }
    }
}

/// Why a login-only IdP cannot be read.
fn login_only(name: &crate::model::IdpName) -> SourceError {
    SourceError::Invalid(format!(
        "IdP {name} is login-only (kind = \"oidc\"): its memberships change at sign-in, and there is nothing to read in batch"
    ))
}

/// Runs a cloud read as a task of its own on the runtime's workers, beside the connection tasks
/// that serve it, rather than on the thread that awaits it (fewer wake-ups across threads). The
/// task is aborted when the caller stops waiting, as the future itself would have been dropped.
async fn spawned(
    read: impl Future<Output = Result<SourceRead, SourceError>> + Send + 'static,
) -> Result<SourceRead, SourceError> {
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let task = tokio::spawn(read);
    let _abort = AbortOnDrop(task.abort_handle());
    task.await
        .unwrap_or_else(|e| Err(SourceError::Invalid(format!("the read stopped: {e}"))))
}

/// A cloud source's client, or the reason it could not be set up (a `ca_file` without
/// certificates, say) as the failure of the read.
fn usable(client: &Result<HttpClient, String>) -> Result<&HttpClient, SourceError> {
    client.as_ref().map_err(|e| SourceError::Invalid(e.clone()))
}

/// A cloud API's response that is not 2xx as the failure it means, with the service's error code.
fn answered(response: Response) -> Result<Response, SourceError> {
    let status = response.status;
    if status.is_success() {
        return Ok(response);
    }
    let message = format!("{}: {}", response.what, response.error_summary());
    Err(match status.as_u16() {
        401 | 403 => SourceError::Unauthorized(message),
        // A page that vanished mid-read (an expired cursor, a group deleted meanwhile): the next
        // run reads again.
        404 | 410 => SourceError::Unavailable(message),
        s if s >= 500 => SourceError::Unavailable(message),
        _ => SourceError::Invalid(message),
    })
}

/// Percent-encodes a URL path segment (everything but RFC 3986's unreserved characters).
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
