//! Per-IdP run locks: two runs of the same IdP never overlap (SPEC §1 invariant 10).
//!
//! A lock is an OS file lock (`File::try_lock`) on `<state>.locks/<idp>.lock`, released when the
//! process exits, however it exits. The holder writes who it is into the file so a waiting run can
//! name it. These locks never stop other writers: the store itself takes only short transactions.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::model::IdpName;

/// A held run lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run kept it longer than we waited.
    #[error("another run of IdP {idp} is still going after waiting {waited:?} (holder: {holder})")]
    Held {
        /// The IdP.
        idp: IdpName,
        /// How long we waited.
        waited: Duration,
        /// What the holder wrote about itself.
        holder: String,
    },
    /// The lock file could not be opened.
    #[error("cannot open run lock {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The lock file of `idp` for the state file `state`.
pub fn lock_path(state: &Path, idp: &IdpName) -> PathBuf {
    let mut folder = state.as_os_str().to_owned();
    folder.push(".locks");
    PathBuf::from(folder).join(format!("{idp}.lock"))
}

/// Takes the run lock of `idp`, waiting up to `wait`; `holder` says who we are.
pub fn acquire(
    state: &Path,
    idp: &IdpName,
    wait: Duration,
    holder: &str,
) -> Result<RunLock, LockError> {
    let path = lock_path(state, idp);
    acquire_at(path, || idp.clone(), wait, holder)
}

/// Takes the journal's lock: one drain at a time sends a remote store its entries, whichever
/// process drains (a run, the service after logins). Its file name (`.journal.lock`) is no IdP's.
pub fn acquire_journal(state: &Path, wait: Duration, holder: &str) -> Result<RunLock, LockError> {
    let mut folder = state.as_os_str().to_owned();
    folder.push(".locks");
    let path = PathBuf::from(folder).join(".journal.lock");
    let name = || IdpName::parse("journal").expect("a valid name");
    acquire_at(path, name, wait, holder)
}

fn acquire_at(
    path: PathBuf,
    idp: impl Fn() -> IdpName,
    wait: Duration,
    holder: &str,
) -> Result<RunLock, LockError> {
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if started.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(100).min(wait));
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    idp: idp(),
                    waited: wait,
                    holder: if text.trim().is_empty() {
                        "unknown".into()
                    } else {
                        text.trim().to_owned()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{holder}").map_err(io)?;
    Ok(RunLock { _file: file })
}
