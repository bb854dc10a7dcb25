//! `sync_once`: the one place where I/O meets the core.
//!
//! Read the selected IdPs (outside any store transaction, holding only their run locks) while the
//! state is opened, the run's row written and what the IdPs hold loaded; reconcile; then apply
//! each IdP's part through the checked apply in its own short transaction, record what happened
//! to each IdP, close the run's row and build the report. A dry run follows the same path but opens
//! the state read-only and writes nothing: no memberships, no baseline, no run row, no lock.
//!
//! | step | module |
//! |---|---|
//! | which IdPs, the unchanged shortcut, the reads | [`read`] |
//! | opening the state, the run row, declared groups, the load | [`prepare`] |
//! | the core's input and the plan | [`planning`] (with [`world`]) |
//! | the checked apply per IdP, the run history | [`apply`] |
//! | the reconcile document | [`document`] |
//! | a remote store: the journal finished first, missing groups, the changes sent after | [`remote`] |
//! | a login: the same steps for one user, without a run | [`login`] |

mod apply;
mod document;
pub mod login;
mod planning;
mod prepare;
#[cfg(test)]
mod props;
mod read;
mod remote;
mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{info, warn};

use crate::config::Config;
use crate::model::{Failure, FailureKind, IdpName, RunOutcome, Stage};
use crate::progress::{Progress, ProgressFn};
use crate::reconcile::{Baseline, Outcome, Scope};
use crate::report::{InactiveDoc, Report};
use crate::state::lock;
use crate::state::{Loaded, NotApplied, RunRecord, State, StateError};
use apply::{ApplyContext, ApplyResult, apply_plan, external_ids_of};
use document::to_report;
use prepare::Prepare;
use read::Read;
pub use remote::RemoteRun;

/// Checks that a run may select `idps` (each configured and read in batch) before it starts.
pub fn check_idps(config: &Config, idps: &[IdpName]) -> Result<(), SyncError> {
    read::select_idps(config, idps).map(|_| ())
}

/// What the caller asks of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Plan only; write nothing.
    pub dry_run: bool,
    /// Ignore every "unchanged, skip it" shortcut and read every IdP whole.
    pub full: bool,
    /// Only these IdPs (all when empty).
    pub idps: Vec<IdpName>,
    /// `--allow-removals N`.
    pub allow_removals: Option<u64>,
    /// `--allow-empty`.
    pub allow_empty: bool,
    /// Who started the run, for its run record (`cli:<user>` when absent).
    pub actor: Option<String>,
    /// Set to `true` to stop the run: reads in progress are dropped, and applying stops after the
    /// IdP in hand (its transaction completes or never began). The service's shutdown.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// The stages served as each IdP commits, when they can change during the run (the
    /// service reloads its configuration); a change into a stage no longer served is dropped.
    /// Without it, the run's configuration says.
    pub served_now: Option<ServedNow>,
    /// The run's id, when the caller named it before the run (the admin API answers with it);
    /// a new UUIDv7 when absent.
    pub run_id: Option<String>,
}

/// Asks, at each commit, which stages are served now.
#[derive(Clone)]
pub struct ServedNow(pub Arc<dyn Fn() -> Vec<Stage> + Send + Sync>);

impl std::fmt::Debug for ServedNow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServedNow(..)")
    }
}

/// What happened to one IdP in a run, for metrics and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct IdpStats {
    /// The IdP.
    pub name: String,
    /// Its outcome.
    pub outcome: RunOutcome,
    /// Seconds spent reading it.
    pub seconds: f64,
    /// Requests sent to it.
    pub requests: u64,
    /// Requests it throttled.
    pub throttles: u64,
}

/// What a run produced: the report, and what a saved plan needs to be applied later.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The reconcile document.
    pub report: Report,
    /// The new baseline of every IdP whose part may apply.
    pub baselines: BTreeMap<String, Baseline>,
    /// The state generation the plan was made at.
    pub generation: i64,
    /// Per IdP whose part may apply: immutable ids to store beside user keys (key → id).
    pub external_ids: BTreeMap<String, BTreeMap<String, String>>,
    /// Per selected IdP, what happened to it.
    pub idps: Vec<IdpStats>,
    /// How the run as a whole ended.
    pub outcome: RunOutcome,
}

/// Errors that stop a run as a whole (an IdP failing does not: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// `--idp` named an IdP the configuration does not have.
    #[error("no [[idp]] is named {0:?}")]
    UnknownIdp(String),
    /// `--idp` named a login-only IdP, which is never read in batch.
    #[error(
        "IdP {0:?} is login-only (kind = \"oidc\"): its memberships change at sign-in (POST /v1/login), never in a run"
    )]
    LoginOnly(String),
    /// The state file failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The run was stopped (`RunOptions::stop`) before anything was applied.
    #[error("the run was stopped before anything was applied")]
    Stopped,
}

/// Runs one reconciliation and returns its report (with what a saved plan needs).
pub async fn sync_once(
    config: &Config,
    options: &RunOptions,
    progress: ProgressFn<'_>,
) -> Result<RunOutput, SyncError> {
    let run_id = options
        .run_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let selected = read::select_idps(config, &options.idps)?;
    // The remote store first: what earlier runs left is sent, and which mapped groups it lacks is
    // known before the shortcut is judged (a group missing now, or then, changes the plan).
    let mut remote = RemoteRun::open(config, &run_id, options.full, options.dry_run)?;
    if !options.dry_run {
        // Journalling the store's stages starts before anything of the store is cached or sent.
        run_blocking(|| {
            State::open(&config.daemon.state).and_then(|mut s| RemoteRun::serve(config, &mut s))
        })?;
    }
    let remote_missing = match &mut remote {
        Some(remote) => remote.before_plan(config).await,
        None => BTreeSet::new(),
    };
    let stored = if options.full {
        vec![None; selected.len()]
    } else {
        let mut stored = run_blocking(|| read::unchanged_candidates(config, &selected))?;
        if remote.is_some() {
            for s in &mut stored {
                if !remote_missing.is_empty()
                    || s.as_ref()
                        .is_some_and(|s| s.inactive.contains("remote_group_not_found"))
                {
                    *s = None;
                }
            }
        }
        stored
    };
    let locks: Vec<Result<Option<lock::RunLock>, Failure>> = if options.dry_run {
        selected.iter().map(|_| Ok(None)).collect()
    } else {
        let holder = format!("pid {} run {run_id}", std::process::id());
        run_blocking(|| {
            selected
                .iter()
                .map(|idp| {
                    lock::acquire(
                        &config.daemon.state,
                        &idp.name,
                        config.daemon.run_wait,
                        &holder,
                    )
                    .map(Some)
                    .map_err(|e| Failure::new(FailureKind::Unavailable, e.to_string()))
                })
                .collect()
        })
    };
    let held: Vec<IdpName> = selected
        .iter()
        .zip(&locks)
        .filter(|(_, lock)| matches!(lock, Ok(Some(_))))
        .map(|(idp, _)| idp.name.clone())
        .collect();
    // The state is opened and loaded beside the reads: at scale each takes a few tenths of a
    // second. What the load saw is checked again at commit (the checked apply), so an edit
    // racing the read is never overwritten.
    let cancel = Arc::new(AtomicBool::new(false));
    let preparing = tokio::task::spawn_blocking({
        let prepare = Prepare {
            path: config.daemon.state.clone(),
            dry_run: options.dry_run,
            run_id: run_id.clone(),
            actor: options
                .actor
                .clone()
                .unwrap_or_else(|| format!("cli:{}", unix_user())),
            held,
            declared: if options.dry_run {
                Vec::new()
            } else {
                config.groups.clone()
            },
            idps: selected.iter().map(|i| i.name.clone()).collect(),
            stages: config.daemon.stages.clone(),
            cancel: cancel.clone(),
        };
        move || prepare.run()
    });
    let reads = match options.stop.clone() {
        None => read::read_idps(&selected, &stored, locks, progress).await,
        Some(mut stop) => tokio::select! {
            reads = read::read_idps(&selected, &stored, locks, progress) => reads,
            () = stopped(&mut stop) => {
                // Reads change nothing; dropping them is safe. Close the run record.
                cancel.store(true, Ordering::Relaxed);
                if let Ok(Ok((mut state, _))) = preparing.await
                    && !options.dry_run
                {
                    let detail = "interrupted: the service stopped during the read; the next run reads again";
                    for idp in &selected {
                        state.record_not_applied(&run_id, &idp.name, NotApplied::Interrupted(detail))?;
                    }
                    state.finish_run(&RunRecord {
                        run_id: &run_id,
                        outcome: RunOutcome::Interrupted,
                        summary: &crate::report::Summary::default(),
                    })?;
                }
                info!(run_id, "Run stopped while reading; nothing was applied.");
                return Err(SyncError::Stopped);
            }
        },
    };
    tracing::debug!(idps = reads.len(), "IdPs read.");
    let (unchanged, reads): (Vec<Read>, Vec<Read>) =
        reads.into_iter().partition(|r| r.unchanged.is_some());
    if reads.iter().all(|r| r.result.is_err()) {
        // Nothing to reconcile: stop the membership scan.
        cancel.store(true, Ordering::Relaxed);
    }
    let (state, loaded) = match preparing.await {
        Ok(prepared) => prepared?,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    crate::failpoint!("sync::after_reads");
    let run = Run {
        config,
        options,
        run_id: &run_id,
        progress,
        remote_missing: &remote_missing,
    };
    let mut output = run_blocking(|| run.finish(reads, unchanged, state, loaded));
    if let (Some(remote), Ok(output)) = (remote, output.as_mut()) {
        remote.after_apply(config, &mut output.report).await;
    }
    progress(Progress::Done);
    output
}

/// Returns once `stop` says stop (or its sender is gone).
pub async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Runs blocking work (SQLite) off the async workers when the runtime has several.
fn run_blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// A run once its IdPs are read: what it plans, applies and records.
struct Run<'a> {
    config: &'a Config,
    options: &'a RunOptions,
    run_id: &'a str,
    progress: ProgressFn<'a>,
    /// Remote groups the store lacks (`remote_group_not_found`).
    remote_missing: &'a BTreeSet<(Stage, String)>,
}

impl Run<'_> {
    fn finish(
        &self,
        reads: Vec<Read>,
        unchanged: Vec<Read>,
        mut state: State,
        loaded: Option<(Vec<IdpName>, Loaded)>,
    ) -> Result<RunOutput, SyncError> {
        let (config, options, run_id) = (self.config, self.options, self.run_id);
        let names: Vec<IdpName> = reads.iter().map(|r| r.name.clone()).collect();
        let loaded = match loaded {
            Some((loaded_for, loaded)) => loaded.only(&loaded_for, &names),
            None => state.load(&names, &config.daemon.stages)?,
        };
        tracing::debug!(
            groups = loaded.groups.len(),
            users = loaded.users.len(),
            "State loaded."
        );
        let (world, mut plan) = planning::plan_run(
            config,
            options,
            &reads,
            &loaded,
            Scope::All,
            self.remote_missing,
        );
        (self.progress)(Progress::Planned {
            changes: (plan.adds.len() + plan.removes.len()) as u64,
        });
        let mut applied = ApplyResult {
            interrupted: vec![false; reads.len()],
            dropped: Vec::new(),
        };
        if !options.dry_run {
            let context = ApplyContext {
                config,
                run_id,
                stop: options.stop.as_ref(),
                served_now: options.served_now.as_ref(),
                progress: self.progress,
            };
            applied = apply_plan(&mut state, &context, &mut plan, &world, &reads, &loaded)?;
        }
        let mut report = to_report(
            run_id,
            options.dry_run,
            &plan,
            &world,
            &names,
            &applied.dropped,
        );
        for read in &unchanged {
            let stored = read.unchanged.as_ref().expect("partitioned on unchanged");
            let inactive: Vec<InactiveDoc> =
                serde_json::from_str(&stored.inactive).unwrap_or_default();
            report.inactive_mappings.extend(inactive);
            report.summary.skipped_users += stored.skipped_users;
            if !options.dry_run {
                let what = NotApplied::Unchanged {
                    skipped_users: stored.skipped_users,
                };
                state.record_not_applied(run_id, &read.name, what)?;
            }
        }
        report.inactive_mappings.sort_by(|a, b| {
            (&a.idp, &a.stage, &a.group, &a.idp_group).cmp(&(
                &b.idp,
                &b.stage,
                &b.group,
                &b.idp_group,
            ))
        });
        let selected: Vec<&IdpName> = names
            .iter()
            .chain(unchanged.iter().map(|r| &r.name))
            .collect();
        report.renamed_mappings = crate::mappings::renamed(
            config
                .mappings
                .iter()
                .filter(|m| selected.contains(&&m.idp)),
            &loaded.groups,
            &loaded.former_names,
        );
        for renamed in &report.renamed_mappings {
            warn!(idp = %renamed.idp, "{}.", renamed.warning());
        }
        let idps = stats(&reads, &unchanged, &plan.outcomes, &applied.interrupted);
        let outcome = run_outcome(&idps);
        crate::failpoint!("sync::before_close");
        if !options.dry_run {
            state.finish_run(&RunRecord {
                run_id,
                outcome,
                summary: &report.summary,
            })?;
            state.purge_audit(config.audit.retention_days)?;
        }
        info!(
            run_id,
            outcome = outcome.as_str(),
            adds = report.summary.adds,
            removes = report.summary.removes,
            dropped = report.summary.dropped,
            refused = report.refused.len(),
            failed = report.failed_idps.len(),
            skipped_users = report.summary.skipped_users,
            dry_run = options.dry_run,
            "Reconciled."
        );
        let applicable = |i: usize| matches!(plan.outcomes[i], Outcome::Applied { .. });
        let baselines = names
            .iter()
            .zip(&plan.outcomes)
            .filter_map(|(name, outcome)| match outcome {
                Outcome::Applied { baseline, .. } => Some((name.to_string(), baseline.clone())),
                _ => None,
            })
            .collect();
        let external_ids = reads
            .iter()
            .enumerate()
            .filter(|&(i, _)| applicable(i))
            .map(|(i, read)| {
                let ids = external_ids_of(i, &plan, &world, read, &loaded)
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                (read.name.to_string(), ids)
            })
            .collect();
        Ok(RunOutput {
            report,
            baselines,
            generation: loaded.generation,
            external_ids,
            idps,
            outcome,
        })
    }
}

/// Per IdP of the run, what happened to it: the read IdPs in order, then the unchanged ones.
fn stats(
    reads: &[Read],
    unchanged: &[Read],
    outcomes: &[Outcome],
    interrupted: &[bool],
) -> Vec<IdpStats> {
    let read = reads.iter().enumerate().map(|(i, read)| {
        let outcome = match &outcomes[i] {
            _ if interrupted[i] => RunOutcome::Interrupted,
            Outcome::Applied { .. } => RunOutcome::Applied,
            Outcome::Refused => RunOutcome::Refused,
            Outcome::Failed => RunOutcome::Failed,
        };
        (read, outcome)
    });
    let skipped = unchanged.iter().map(|read| (read, RunOutcome::Unchanged));
    read.chain(skipped)
        .map(|(read, outcome)| IdpStats {
            name: read.name.to_string(),
            outcome,
            seconds: read.seconds,
            requests: read.requests,
            throttles: read.throttles,
        })
        .collect()
}

/// The outcome of a run from its IdPs': refused before failed before interrupted (SPEC §3's
/// precedence), then unchanged when every IdP was, else applied.
fn run_outcome(idps: &[IdpStats]) -> RunOutcome {
    let any = |o: RunOutcome| idps.iter().any(|s| s.outcome == o);
    if any(RunOutcome::Refused) {
        RunOutcome::Refused
    } else if any(RunOutcome::Failed) {
        RunOutcome::Failed
    } else if any(RunOutcome::Interrupted) {
        RunOutcome::Interrupted
    } else if !idps.is_empty() && idps.iter().all(|s| s.outcome == RunOutcome::Unchanged) {
        RunOutcome::Unchanged
    } else {
        RunOutcome::Applied
    }
}

/// The Unix user running the command, for the `cli:<user>` actor.
pub fn unix_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid{}", process_uid()))
}

/// The uid owning this process (from `/proc/self`), when no user name is in the environment.
fn process_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}
