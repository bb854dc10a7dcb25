//! The `ldap` IdP: OpenLDAP and Active Directory through the ldap3 crate.
//!
//! A read connects and binds, takes the server's change marker, then pages through every user
//! and every group (`conn`, `search`, `read`, `marker`). Any failure — a refused bind, a page
//! that errs, a connection cut halfway — fails the whole read; a partial directory never reaches
//! the core. When the change marker equals the one stored with the last applied read, nothing
//! else is read (SPEC §1 invariant 13; `reconcile --full` always reads).

mod conn;
mod marker;
mod read;
mod search;

use crate::config::LdapConfig;
use crate::directory::{Directory, Snapshot};

use super::file::DirectoryExport;
use super::{SourceError, SourceRead};

/// Reads one LDAP directory.
#[derive(Debug, Clone)]
pub struct LdapSource {
    config: LdapConfig,
    user_key: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl LdapSource {
    /// A source for `config`, taking user keys from attribute `user_key`.
    pub fn new(config: &LdapConfig, user_key: &str) -> Self {
        LdapSource {
            config: config.clone(),
            user_key: user_key.to_owned(),
            requests: Default::default(),
        }
    }

    /// LDAP requests this source has sent (binds, searches, pages).
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count(&self, requests: u64) {
        self.requests
            .fetch_add(requests, std::sync::atomic::Ordering::Relaxed);
    }

    /// Reads the directory, or answers [`SourceRead::Unchanged`] when the server's change marker
    /// still equals `unchanged_if`.
    pub async fn read_if_changed(
        &self,
        unchanged_if: Option<&str>,
    ) -> Result<SourceRead, SourceError> {
        Ok(match self.fetch(unchanged_if).await? {
            None => SourceRead::Unchanged,
            Some((read, fingerprint)) => SourceRead::Changed {
                directory: self.resolve(read.snapshot())?,
                fingerprint,
            },
        })
    }

    /// One session: bind, the change marker, then everything unless the marker equals
    /// `unchanged_if` (`None`); the requests it sent are counted either way.
    async fn fetch(
        &self,
        unchanged_if: Option<&str>,
    ) -> Result<Option<(read::DirectoryRead, Option<String>)>, SourceError> {
        let mut session = conn::connect(&self.config).await?;
        let fingerprint = marker::read(&mut session).await;
        let read = if fingerprint.is_some() && fingerprint.as_deref() == unchanged_if {
            None
        } else {
            Some(read::read(&mut session, &self.user_key).await)
        };
        self.count(session.requests);
        session.close().await;
        read.map(|read| read.map(|read| (read, fingerprint)))
            .transpose()
    }

    /// Reads the directory as a directory export (what `idpsync export` prints).
    pub async fn export(&self) -> Result<DirectoryExport, SourceError> {
        let (read, _) = self
            .fetch(None)
            .await?
            .expect("a read without unchanged_if is whole");
        let snapshot = read.snapshot();
        self.resolve(snapshot.clone())?;
        Ok(DirectoryExport::from_snapshot(&snapshot))
    }

    fn resolve(&self, snapshot: Snapshot<&str>) -> Result<Directory, SourceError> {
        let directory = Directory::resolve(snapshot).map_err(|e| {
            SourceError::Invalid(format!("{}: inconsistent read: {e}", self.config.url))
        })?;
        Ok(directory.with_dn_ids())
    }
}
