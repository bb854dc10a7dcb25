//! Reading the selected IdPs for a run: which IdPs, which may be skipped as unchanged, and the
//! reads themselves (concurrently, outside any store transaction, each holding its run lock).

use std::collections::BTreeSet;

use tracing::{error, info, warn};

use super::SyncError;
use crate::config::{Config, IdpConfig};
use crate::directory::Directory;
use crate::model::{Failure, IdpName};
use crate::progress::{Progress, ProgressFn};
use crate::source::{Source, SourceRead};
use crate::state::lock::RunLock;
use crate::state::{State, StoredRead};

/// One IdP's read, with its lock kept until the run ends.
pub(super) struct Read {
    pub(super) name: IdpName,
    pub(super) result: Result<Directory, Failure>,
    /// The source's fingerprint of this read, when it gives one.
    pub(super) fingerprint: Option<String>,
    /// Set when the shortcut found the IdP, the configuration and the store unchanged since this
    /// applied read: the IdP's plan is empty and it is not read further.
    pub(super) unchanged: Option<StoredRead>,
    /// Seconds the read took.
    pub(super) seconds: f64,
    /// Requests the read sent.
    pub(super) requests: u64,
    /// Answers that throttled the read (429, 503).
    pub(super) throttles: u64,
    pub(super) _lock: Option<RunLock>,
}

impl Read {
    /// A read that sent nothing and holds no lock: an IdP that failed before its read, or a
    /// login's claim standing in for one.
    pub(super) fn unread(name: IdpName, result: Result<Directory, Failure>) -> Read {
        Read {
            name,
            result,
            fingerprint: None,
            unchanged: None,
            seconds: 0.0,
            requests: 0,
            throttles: 0,
            _lock: None,
        }
    }
}

/// The IdPs `--idp` names (each once, in the order given), or all of them.
pub(super) fn select_idps<'a>(
    config: &'a Config,
    wanted: &[IdpName],
) -> Result<Vec<&'a IdpConfig>, SyncError> {
    let login_only = |idp: &IdpConfig| matches!(idp.kind, crate::config::IdpKind::Oidc { .. });
    if wanted.is_empty() {
        // Login-only IdPs are never read in batch: a run has nothing to plan for them.
        return Ok(config.idps.iter().filter(|i| !login_only(i)).collect());
    }
    let mut out: Vec<&IdpConfig> = Vec::new();
    for name in wanted {
        let idp = config
            .idp(name.as_str())
            .ok_or_else(|| SyncError::UnknownIdp(name.to_string()))?;
        if login_only(idp) {
            return Err(SyncError::LoginOnly(name.to_string()));
        }
        if !out.iter().any(|i| i.name == idp.name) {
            out.push(idp);
        }
    }
    Ok(out)
}

/// Per IdP, its last applied read when the configuration and the store have not changed since
/// (same config fingerprint, same state generation): the source may then answer "unchanged".
pub(super) fn unchanged_candidates(
    config: &Config,
    idps: &[&IdpConfig],
) -> Result<Vec<Option<StoredRead>>, SyncError> {
    if !config.daemon.state.exists() {
        return Ok(vec![None; idps.len()]);
    }
    let state = State::open_read_only(&config.daemon.state)?;
    let generation = state.generation()?;
    let mut out = Vec::with_capacity(idps.len());
    for idp in idps {
        let stored = state
            .stored_read(&idp.name)?
            .filter(|s| s.config == config.fingerprint && s.generation == generation);
        out.push(stored);
    }
    Ok(out)
}

/// Reads every IdP at once; an IdP whose lock was not taken fails without being read.
pub(super) async fn read_idps(
    idps: &[&IdpConfig],
    stored: &[Option<StoredRead>],
    locks: Vec<Result<Option<RunLock>, Failure>>,
    progress: ProgressFn<'_>,
) -> Vec<Read> {
    let reads = idps
        .iter()
        .zip(stored)
        .zip(locks)
        .map(|((idp, stored), lock)| async move {
            match lock {
                Ok(lock) => read_one(idp, stored.as_ref(), lock, progress).await,
                Err(failure) => {
                    error!(idp = %idp.name, error = %failure, "IdP read failed; it contributes no changes this run.");
                    Read::unread(idp.name.clone(), Err(failure))
                }
            }
        });
    futures_util::future::join_all(reads).await
}

async fn read_one(
    idp: &IdpConfig,
    stored: Option<&StoredRead>,
    lock: Option<RunLock>,
    progress: ProgressFn<'_>,
) -> Read {
    progress(Progress::Reading { idp: &idp.name });
    let unchanged_if = stored.map(|s| s.fingerprint.as_str());
    let started = std::time::Instant::now();
    let source = Source::build(idp);
    let read = source.read(unchanged_if).await;
    let (seconds, requests, throttles) = (
        started.elapsed().as_secs_f64(),
        source.requests(),
        source.throttles(),
    );
    let (result, fingerprint, unchanged) = match read {
        Ok(SourceRead::Unchanged) => {
            info!(idp = %idp.name, "Unchanged since its last applied read; nothing to do (--full reads it anyway).");
            (Ok(Directory::default()), None, stored.cloned())
        }
        Ok(SourceRead::Changed {
            directory,
            fingerprint,
        }) => (Ok(directory), fingerprint, None),
        Err(e) => (Err(e.into_failure()), None, None),
    };
    match &result {
        Ok(directory) if unchanged.is_none() => {
            warn_duplicate_keys(&idp.name, directory);
            progress(Progress::Read {
                idp: &idp.name,
                users: directory.users_total as u64,
                groups: directory.groups.len() as u64,
            });
        }
        Ok(_) => {}
        Err(e) => {
            error!(idp = %idp.name, error = %e, kind = e.kind.as_str(), "IdP read failed; it contributes no changes this run.");
        }
    }
    Read {
        name: idp.name.clone(),
        result,
        fingerprint,
        unchanged,
        seconds,
        requests,
        throttles,
        _lock: lock,
    }
}

/// Two IdP users with one key count as one user; say so, since it usually is a data error.
fn warn_duplicate_keys(idp: &IdpName, directory: &Directory) {
    let mut seen = BTreeSet::new();
    for user in &directory.users {
        if !seen.insert(user.key.as_str()) {
            warn!(idp = %idp, key = %user.key, "Two IdP users share one user key; they count as one user.");
        }
    }
}
