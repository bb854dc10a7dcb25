//! Opening the state for a run, on a blocking thread beside the IdP reads: close the runs that
//! died holding our IdPs' locks, write this run's row before anything is applied, create or align
//! the declared groups, and load what the selected IdPs hold.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tracing::{info, warn};

use super::SyncError;
use crate::config::DeclaredGroup;
use crate::model::{IdpName, Stage};
use crate::state::{Loaded, State};

/// What opening the state for a run needs.
pub(super) struct Prepare {
    pub(super) path: PathBuf,
    pub(super) dry_run: bool,
    pub(super) run_id: String,
    pub(super) actor: String,
    /// The IdPs whose run locks this run holds.
    pub(super) held: Vec<IdpName>,
    /// The declared groups to create or align first (real runs).
    pub(super) declared: Vec<DeclaredGroup>,
    pub(super) idps: Vec<IdpName>,
    pub(super) stages: Vec<Stage>,
    pub(super) cancel: Arc<AtomicBool>,
}

/// The opened state and, unless cancelled, what it holds for the selected IdPs.
pub(super) type Prepared = (State, Option<(Vec<IdpName>, Loaded)>);

impl Prepare {
    pub(super) fn run(self) -> Result<Prepared, SyncError> {
        let mut state = if self.dry_run {
            State::open_read_only(&self.path)?
        } else {
            let mut state = State::open(&self.path)?;
            let closed = state.close_abandoned_runs(&self.held)?;
            if closed > 0 {
                warn!(
                    runs = closed,
                    "Runs that died holding these IdPs' locks are closed as interrupted; what they committed stays, the rest is planned again."
                );
            }
            state.begin_run(&self.run_id, &self.actor, &self.held)?;
            let changed = state.sync_declared(&self.declared, &format!("run:{}", self.run_id))?;
            if changed > 0 {
                info!(
                    groups = changed,
                    "Declared groups created or updated from the configuration."
                );
            }
            state
        };
        let loaded = state.load_unless(&self.idps, &self.stages, &self.cancel)?;
        Ok((state, loaded.map(|l| (self.idps, l))))
    }
}
