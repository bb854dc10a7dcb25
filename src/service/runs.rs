//! Runs an administrator starts (`POST /v1/admin/reconcile`, the console's "Run now" and approve
//! buttons) beside the scheduled ones: never two at once — a run asked for while another goes waits
//! its turn — each with its id known before it starts, so the caller can follow it at
//! `/v1/admin/runs/{id}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::error;

use super::Shared;
use crate::report::Report;
use crate::sync::{RunOptions, SyncError, sync_once};

/// How many started runs are remembered with their reconcile document.
const KEPT: usize = 100;

/// Where a started run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Started {
    /// Waiting for the run in hand to finish.
    Queued,
    /// Reading and applying.
    Running,
    /// Done: its reconcile document and exit status.
    Finished {
        /// The reconcile document.
        report: Box<Report>,
        /// SPEC §3's exit status of the same run from the CLI.
        exit_code: u8,
    },
    /// It failed as a whole (the state could not be opened, …).
    Failed(String),
}

/// The runs started by administrators, newest last, and the turn every run takes.
#[derive(Default)]
pub(crate) struct Runs {
    started: Mutex<BTreeMap<String, Started>>,
    /// Held by whichever run is going, scheduled or started.
    pub(super) turn: tokio::sync::Mutex<()>,
}

impl Runs {
    /// Where run `id` is, if an administrator started it since the service started.
    pub(crate) fn started(&self, id: &str) -> Option<Started> {
        self.started
            .lock()
            .expect("never poisoned")
            .get(id)
            .cloned()
    }

    fn set(&self, id: &str, to: Started) {
        let mut started = self.started.lock().expect("never poisoned");
        started.insert(id.to_owned(), to);
        // UUIDv7 ids sort by time: forget the oldest.
        while started.len() > KEPT {
            let oldest = started.keys().next().cloned().expect("not empty");
            started.remove(&oldest);
        }
    }
}

impl Shared {
    /// Starts a real run with `options` as actor `api`, in its turn; answers its id at once.
    pub(crate) fn start_run(self: &Arc<Self>, mut options: RunOptions) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        options.run_id = Some(id.clone());
        options.dry_run = false;
        options.actor = Some(crate::admin::ACTOR.to_owned());
        options.stop = Some(self.stopping.clone());
        options.served_now = Some(self.served_now());
        self.runs.set(&id, Started::Queued);
        let shared = self.clone();
        let run_id = id.clone();
        tokio::spawn(async move {
            let _turn = shared.runs.turn.lock().await;
            shared.runs.set(&run_id, Started::Running);
            let config = shared.config();
            let outcome = sync_once(&config, &options, &crate::progress::silent).await;
            let to = match outcome {
                Ok(output) => {
                    shared.metrics.record_run(&output);
                    Started::Finished {
                        exit_code: output.report.exit_code(),
                        report: Box::new(output.report),
                    }
                }
                Err(e @ SyncError::Stopped) => Started::Failed(e.to_string()),
                Err(e) => {
                    error!(run_id, error = %e, "A run an administrator started failed as a whole.");
                    Started::Failed(e.to_string())
                }
            };
            shared.runs.set(&run_id, to);
            shared.refresh_journal_gauges().await;
        });
        id
    }

    /// A plan of what a run with `options` would do now, writing nothing.
    pub(crate) async fn dry_run(&self, mut options: RunOptions) -> Result<Report, SyncError> {
        options.dry_run = true;
        options.actor = Some(crate::admin::ACTOR.to_owned());
        let config = self.config();
        Ok(sync_once(&config, &options, &crate::progress::silent)
            .await?
            .report)
    }
}
