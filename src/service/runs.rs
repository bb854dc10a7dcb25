//! Runs an administrator starts (`POST /v1/admin/reconcile`, the console's "Run now" and approve
//! buttons) beside the scheduled ones: never two at once — a run asked for while another goes waits
//! its turn, and asking again for the same run while it waits answers the one already queued —
//! each with its id known before it starts, so the caller can follow it at `/v1/admin/runs/{id}`.
//! A stop lets the run in hand finish the IdP it is applying and drops the queued ones. Dry runs
//! (previews) go one at a time, so a page reloaded in a hurry does not read every IdP at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::error;

use super::Shared;
use crate::report::Report;
use crate::sync::{RunOptions, SyncError, sync_once};

/// How many finished runs are remembered with their reconcile document.
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
    /// It failed as a whole (the state could not be opened, the service stopped first, …).
    Failed(String),
}

/// What a run was asked to do: two queued asks alike are one run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ask {
    idps: Vec<String>,
    full: bool,
    allow_removals: Option<u64>,
    allow_empty: bool,
}

impl Ask {
    fn of(options: &RunOptions) -> Ask {
        Ask {
            idps: options.idps.iter().map(ToString::to_string).collect(),
            full: options.full,
            allow_removals: options.allow_removals,
            allow_empty: options.allow_empty,
        }
    }
}

/// The runs started by administrators, and the turn every run takes.
pub(crate) struct Runs {
    started: Mutex<BTreeMap<String, Started>>,
    /// The runs waiting for their turn.
    queued: Mutex<Vec<(String, Ask)>>,
    /// The tasks of started runs, awaited at the stop.
    tasks: Mutex<tokio::task::JoinSet<()>>,
    /// Held by whichever run is going, scheduled or started.
    pub(super) turn: tokio::sync::Mutex<()>,
    /// Held by the dry run going.
    dry: tokio::sync::Semaphore,
}

impl Default for Runs {
    fn default() -> Runs {
        Runs {
            started: Mutex::default(),
            queued: Mutex::default(),
            tasks: Mutex::default(),
            turn: tokio::sync::Mutex::new(()),
            dry: tokio::sync::Semaphore::new(1),
        }
    }
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
        // UUIDv7 ids sort by time: forget the oldest finished runs, never one still to come.
        let done: Vec<String> = started
            .iter()
            .filter(|(_, s)| matches!(s, Started::Finished { .. } | Started::Failed(_)))
            .map(|(id, _)| id.clone())
            .collect();
        for id in done.iter().take(done.len().saturating_sub(KEPT)) {
            started.remove(id);
        }
    }

    /// Waits for every started run: the one in hand finishes the IdP it is applying, queued
    /// ones end at once as failed.
    pub(super) async fn wait(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("never poisoned"));
        while tasks.join_next().await.is_some() {}
    }
}

impl Shared {
    /// Starts a real run with `options` as actor `api`, in its turn; answers its id at once. The
    /// same run asked for again while it waits answers the same id.
    pub(crate) fn start_run(self: &Arc<Self>, mut options: RunOptions) -> String {
        let ask = Ask::of(&options);
        let mut queued = self.runs.queued.lock().expect("never poisoned");
        if let Some((id, _)) = queued.iter().find(|(_, a)| *a == ask) {
            return id.clone();
        }
        let id = uuid::Uuid::now_v7().to_string();
        queued.push((id.clone(), ask));
        drop(queued);
        options.run_id = Some(id.clone());
        options.dry_run = false;
        options.actor = Some(crate::admin::ACTOR.to_owned());
        options.stop = Some(self.stopping.clone());
        options.served_now = Some(self.served_now());
        self.runs.set(&id, Started::Queued);
        let shared = self.clone();
        let run_id = id.clone();
        let task = async move {
            let mut stopping = shared.stopping.clone();
            let turn = tokio::select! {
                turn = shared.runs.turn.lock() => Some(turn),
                () = crate::sync::stopped(&mut stopping) => None,
            };
            shared
                .runs
                .queued
                .lock()
                .expect("never poisoned")
                .retain(|(id, _)| *id != run_id);
            let Some(_turn) = turn else {
                shared.runs.set(
                    &run_id,
                    Started::Failed("the service stopped before the run started".into()),
                );
                return;
            };
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
        };
        self.runs.tasks.lock().expect("never poisoned").spawn(task);
        id
    }

    /// A plan of what a run with `options` would do now, writing nothing; one at a time.
    pub(crate) async fn dry_run(&self, mut options: RunOptions) -> Result<Report, SyncError> {
        let _one = self
            .runs
            .dry
            .acquire()
            .await
            .map_err(|_| SyncError::Stopped)?;
        options.dry_run = true;
        options.actor = Some(crate::admin::ACTOR.to_owned());
        let config = self.config();
        Ok(sync_once(&config, &options, &crate::progress::silent)
            .await?
            .report)
    }
}
