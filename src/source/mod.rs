//! IdP sources: each reads one IdP completely and checks it into a [`Directory`] (through
//! `Directory::resolve`, the same checks for every source), or fails.
//!
//! The set of kinds is closed and chosen by configuration, so it is an enum. A source never returns
//! a partial read: a failure anywhere fails the whole read, and the IdP then contributes nothing to
//! the run (SPEC §1 invariant 4). Sources never touch the state file.

pub mod file;
pub mod ldap;

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
#[derive(Debug, Clone)]
pub enum Source {
    /// A directory export on disk.
    File(file::FileSource),
    /// An LDAP directory.
    Ldap(Box<ldap::LdapSource>),
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
        }
    }

    /// Reads the IdP now as a directory export (what `idpsync export` prints), checked for consistency.
    pub async fn export(&self) -> Result<file::DirectoryExport, SourceError> {
        match self {
            Source::File(file) => file.export().await,
            Source::Ldap(ldap) => ldap.export().await,
        }
    }

    /// Requests this source has sent to its IdP so far (LDAP operations; one per file read).
    pub fn requests(&self) -> u64 {
        match self {
            Source::File(file) => file.requests(),
            Source::Ldap(ldap) => ldap.requests(),
        }
    }

    /// Reads the IdP, or answers [`SourceRead::Unchanged`] when its fingerprint still equals
    /// `unchanged_if` (the shortcut of SPEC §1 invariant 13; pass `None` to always read).
    pub async fn read(&self, unchanged_if: Option<&str>) -> Result<SourceRead, SourceError> {
        match self {
            Source::File(file) => file.read_if_changed(unchanged_if).await,
            Source::Ldap(ldap) => ldap.read_if_changed(unchanged_if).await,
        }
    }
}
