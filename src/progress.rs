//! What a run tells whoever shows its progress: the library reports counts, the binary draws them
//! (a bar on a terminal), the service and tests ignore them.

use crate::model::IdpName;

/// One step of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Reading an IdP has started.
    Reading {
        /// The IdP.
        idp: &'a IdpName,
    },
    /// An IdP was read whole.
    Read {
        /// The IdP.
        idp: &'a IdpName,
        /// Users it returned.
        users: u64,
        /// Groups it returned.
        groups: u64,
    },
    /// The plan is made: this many changes may apply.
    Planned {
        /// Adds and removes.
        changes: u64,
    },
    /// Applying: `done` of `total` changes written.
    Applying {
        /// Changes written so far.
        done: u64,
        /// Changes to write.
        total: u64,
    },
    /// The run is over (its result is about to be printed): clear whatever shows progress.
    Done,
}

/// Where a run reports its progress; called from any thread.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress<'_>) + Send + Sync);

/// Reports nowhere.
pub fn silent(_: Progress<'_>) {}
