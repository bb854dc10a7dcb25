//! `sync_once`: the one place where I/O meets the core.
//!
//! Read the selected IdPs (outside any store transaction, holding only their run locks), load the
//! state, reconcile, then apply each IdP's part in its own short transaction, record the run and
//! build the report. A dry run follows the same path but opens the state read-only and writes
//! nothing: no memberships, no baseline, no run row, no lock.

mod document;
mod world;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{error, info, warn};

use crate::config::{Config, DeclaredGroup, MappingConfig};
use crate::directory::Directory;
use crate::model::{IdpName, Stage};
use crate::reconcile::{
    Baseline, Held, IdpInput, IdpRead, Outcome, Plan, Policy, UserIdx, reconcile,
};
use crate::report::{InactiveDoc, Report};
use crate::source::{Source, SourceRead};
use crate::state::lock::{self, RunLock};
use crate::state::{IdpApply, Loaded, ReadRecord, RunRecord, State, StateError, StoredRead};
use document::{inactive_doc, to_report};
use world::{World, build_world, dense_index, lookup};

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
}

/// What happened to one IdP in a run, for metrics and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct IdpStats {
    /// The IdP.
    pub name: String,
    /// `ok`, `unchanged`, `refused`, `failed` or `interrupted`.
    pub outcome: String,
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
    pub baselines: std::collections::BTreeMap<String, Baseline>,
    /// The state generation the plan was made at.
    pub generation: i64,
    /// Per IdP whose part may apply: immutable ids to store beside user keys (key → id).
    pub external_ids:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// Per selected IdP, what happened to it.
    pub idps: Vec<IdpStats>,
}

/// Errors that stop a run as a whole (an IdP failing does not: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// `--idp` named an IdP the configuration does not have.
    #[error("no [[idp]] is named {0:?}")]
    UnknownIdp(String),
    /// The state file failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The run was stopped (`RunOptions::stop`) before anything was applied.
    #[error("the run was stopped before anything was applied")]
    Stopped,
}

/// One IdP's read, with its lock kept until the run ends.
struct Read {
    name: IdpName,
    result: Result<Directory, String>,
    /// The source's fingerprint of this read, when it gives one.
    fingerprint: Option<String>,
    /// Set when the shortcut found the IdP, the configuration and the store unchanged since this
    /// applied read: the IdP's plan is empty and it is not read further.
    unchanged: Option<StoredRead>,
    /// Seconds the read took.
    seconds: f64,
    /// Requests the read sent.
    requests: u64,
    _lock: Option<RunLock>,
}

/// Runs one reconciliation and returns its report (with what a saved plan needs).
pub async fn sync_once(
    config: &Config,
    options: &RunOptions,
    progress: &indicatif::ProgressBar,
) -> Result<RunOutput, SyncError> {
    let run_id = uuid::Uuid::now_v7().to_string();
    let selected = select_idps(config, &options.idps)?;
    let stored = if options.full {
        vec![None; selected.len()]
    } else {
        run_blocking(|| unchanged_candidates(config, &selected))?
    };
    let locks = if options.dry_run {
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
                    .map_err(|e| e.to_string())
                })
                .collect()
        })
    };
    // The state is opened and loaded beside the reads: at scale each takes a few tenths of a
    // second, and the IdPs' memberships only change under the run locks already held.
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
        None => read_idps(&selected, &stored, locks, progress).await,
        Some(mut stop) => tokio::select! {
            reads = read_idps(&selected, &stored, locks, progress) => reads,
            () = stopped(&mut stop) => {
                // Reads change nothing; dropping them is safe. Close the run record.
                cancel.store(true, Ordering::Relaxed);
                if let Ok(Ok((mut state, _))) = preparing.await
                    && !options.dry_run
                {
                    for idp in &selected {
                        state.record_idp_outcome(
                            &run_id,
                            &idp.name,
                            "interrupted",
                            "interrupted: the service stopped during the read; the next run reads again",
                            None,
                        )?;
                    }
                    state.finish_run(&RunRecord {
                        run_id: &run_id,
                        outcome: "interrupted",
                        adds: 0,
                        removes: 0,
                        summary: &crate::report::Summary::default(),
                    })?;
                }
                info!(run_id, "Run stopped while reading; nothing was applied.");
                return Err(SyncError::Stopped);
            }
        },
    };
    progress.set_message("reconciling");
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
    run_blocking(|| plan_and_apply(config, options, &run_id, reads, unchanged, state, loaded))
}

/// Returns once `stop` says stop (or its sender is gone).
pub async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Opens the state for a run and loads what the selected IdPs hold, on a blocking thread.
struct Prepare {
    path: PathBuf,
    dry_run: bool,
    run_id: String,
    actor: String,
    /// The declared groups to create or align first (real runs).
    declared: Vec<DeclaredGroup>,
    idps: Vec<IdpName>,
    stages: Vec<Stage>,
    cancel: Arc<AtomicBool>,
}

/// The opened state and, unless cancelled, what it holds for the selected IdPs.
type Prepared = (State, Option<(Vec<IdpName>, Loaded)>);

impl Prepare {
    fn run(self) -> Result<Prepared, SyncError> {
        let mut state = if self.dry_run {
            State::open_read_only(&self.path)?
        } else {
            let mut state = State::open(&self.path)?;
            state.begin_run(&self.run_id, &self.actor)?;
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

fn select_idps<'a>(
    config: &'a Config,
    wanted: &[IdpName],
) -> Result<Vec<&'a crate::config::IdpConfig>, SyncError> {
    if wanted.is_empty() {
        return Ok(config.idps.iter().collect());
    }
    let mut out = Vec::new();
    for name in wanted {
        let idp = config
            .idp(name.as_str())
            .ok_or_else(|| SyncError::UnknownIdp(name.to_string()))?;
        if !out
            .iter()
            .any(|i: &&crate::config::IdpConfig| i.name == idp.name)
        {
            out.push(idp);
        }
    }
    Ok(out)
}

/// Per IdP, its last applied read when the configuration and the store have not changed since
/// (same config fingerprint, same state generation): the source may then answer "unchanged".
fn unchanged_candidates(
    config: &Config,
    idps: &[&crate::config::IdpConfig],
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

async fn read_idps(
    idps: &[&crate::config::IdpConfig],
    stored: &[Option<StoredRead>],
    locks: Vec<Result<Option<RunLock>, String>>,
    progress: &indicatif::ProgressBar,
) -> Vec<Read> {
    let reads = idps.iter().zip(stored).zip(locks).map(|((idp, stored), lock)| {
        async move {
            let lock = match lock {
                Ok(lock) => lock,
                Err(e) => {
                    return Read {
                        name: idp.name.clone(),
                        result: Err(e),
                        fingerprint: None,
                        unchanged: None,
                        seconds: 0.0,
                        requests: 0,
                        _lock: None,
                    };
                }
            };
            progress.set_message(format!("reading {}", idp.name));
            let unchanged_if = stored.as_ref().map(|s| s.fingerprint.as_str());
            let started = std::time::Instant::now();
            let source = Source::build(idp);
            let read = source.read(unchanged_if).await;
            let (seconds, requests) = (started.elapsed().as_secs_f64(), source.requests());
            let (result, fingerprint, unchanged) = match read {
                Ok(SourceRead::Unchanged) => {
                    info!(idp = %idp.name, "Unchanged since its last applied read; nothing to do (--full reads it anyway).");
                    (Ok(Directory::default()), None, stored.clone())
                }
                Ok(SourceRead::Changed { directory, fingerprint }) => (Ok(directory), fingerprint, None),
                Err(e) => (Err(e.to_string()), None, None),
            };
            if let Ok(directory) = &result {
                warn_duplicate_keys(&idp.name, directory);
            }
            if let Err(e) = &result {
                error!(idp = %idp.name, error = %e, "IdP read failed; it contributes no changes this run.");
            }
            Read {
                name: idp.name.clone(),
                result,
                fingerprint,
                unchanged,
                seconds,
                requests,
                _lock: lock,
            }
        }
    });
    futures_util::future::join_all(reads).await
}

/// Runs blocking work (SQLite) off the async workers when the runtime has several.
fn run_blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

fn plan_and_apply(
    config: &Config,
    options: &RunOptions,
    run_id: &str,
    reads: Vec<Read>,
    unchanged: Vec<Read>,
    mut state: State,
    loaded: Option<(Vec<IdpName>, Loaded)>,
) -> Result<RunOutput, SyncError> {
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
    let mut world = build_world(config, &loaded, options.dry_run);
    let user_maps: Vec<Vec<UserIdx>> = reads
        .iter()
        .map(|read| match &read.result {
            Ok(directory) => directory
                .users
                .iter()
                .map(|u| world.intern(&u.key))
                .collect(),
            Err(_) => Vec::new(),
        })
        .collect();
    // Store ids are small dense integers: index arrays beat hashing a million times.
    let group_of = dense_index(&world.group_ids);
    let user_of = dense_index(&world.user_ids);
    let mappings: Vec<Vec<MappingConfig>> = names
        .iter()
        .map(|n| {
            config
                .mappings
                .iter()
                .filter(|m| &m.idp == n)
                .cloned()
                .collect()
        })
        .collect();
    let idp_configs: Vec<&crate::config::IdpConfig> = names
        .iter()
        .map(|n| config.idp(n.as_str()).expect("selected"))
        .collect();
    let inputs: Vec<IdpInput<'_>> = reads
        .iter()
        .enumerate()
        .map(|(i, read)| IdpInput {
            name: read.name.clone(),
            mappings: &mappings[i],
            read: match &read.result {
                Ok(directory) => Ok(IdpRead {
                    directory,
                    user_map: &user_maps[i],
                    nested: idp_configs[i].nested,
                    max_depth: idp_configs[i].nested_max_depth,
                }),
                Err(e) => Err(e.clone()),
            },
            current: loaded.idps[i]
                .held
                .iter()
                .filter_map(|(g, u, cause)| {
                    Some(Held {
                        group: lookup(&group_of, *g)?,
                        user: lookup(&user_of, *u)?,
                        cause: loaded.causes[*cause as usize].clone(),
                    })
                })
                .collect(),
            baseline: &loaded.idps[i].baseline,
        })
        .collect();
    let policy = Policy {
        safety: config.safety.clone(),
        allow_removals: options.allow_removals,
        allow_empty: options.allow_empty,
        served_stages: config.daemon.stages.iter().cloned().collect(),
        command: format!("idpsync --config {} reconcile", shell_quote(&config.path)),
    };
    let mut plan = reconcile(&world.universe, &inputs, &policy);
    tracing::debug!(
        adds = plan.adds.len(),
        removes = plan.removes.len(),
        "Planned."
    );
    for refusal in &plan.refused {
        error!(idp = %refusal.idp, guard = refusal.guard.as_str(), removals = refusal.removals, limit = refusal.limit,
            allow = %refusal.allow, "Refused: {}. Nothing of this IdP was applied.", refusal.detail);
    }
    let mut interrupted = vec![false; reads.len()];
    if !options.dry_run {
        let context = ApplyContext {
            config,
            run_id,
            stop: options.stop.as_ref(),
        };
        interrupted = apply(&mut state, &context, &mut plan, &world, &reads, &loaded)?;
    }
    let mut report = to_report(run_id, options.dry_run, &plan, &world, &names);
    for read in &unchanged {
        let stored = read.unchanged.as_ref().expect("partitioned on unchanged");
        let inactive: Vec<InactiveDoc> = serde_json::from_str(&stored.inactive).unwrap_or_default();
        report.inactive_mappings.extend(inactive);
        report.summary.skipped_users += stored.skipped_users;
        if !options.dry_run {
            state.record_idp_outcome(run_id, &read.name, "unchanged", "", None)?;
        }
    }
    report.inactive_mappings.sort_by(|a, b| {
        (&a.idp, &a.stage, &a.group, &a.idp_group).cmp(&(&b.idp, &b.stage, &b.group, &b.idp_group))
    });
    if !options.dry_run {
        state.finish_run(&RunRecord {
            run_id,
            outcome: report.outcome(),
            adds: report.summary.adds,
            removes: report.summary.removes,
            summary: &report.summary,
        })?;
        state.purge_audit(config.audit.retention_days)?;
    }
    info!(
        run_id,
        adds = report.summary.adds,
        removes = report.summary.removes,
        refused = report.refused.len(),
        failed = report.failed_idps.len(),
        skipped_users = report.summary.skipped_users,
        dry_run = options.dry_run,
        "Reconciled."
    );
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
        .filter(|(i, _)| matches!(plan.outcomes[*i], Outcome::Applied { .. }))
        .map(|(i, read)| {
            let ids = external_ids_of(i, &plan, &world, read, &loaded)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            (read.name.to_string(), ids)
        })
        .collect();
    let mut idps: Vec<IdpStats> = reads
        .iter()
        .enumerate()
        .map(|(i, read)| IdpStats {
            name: read.name.to_string(),
            outcome: match &plan.outcomes[i] {
                _ if interrupted[i] => "interrupted",
                Outcome::Applied { .. } => "ok",
                Outcome::Refused => "refused",
                Outcome::Failed => "failed",
            }
            .to_owned(),
            seconds: read.seconds,
            requests: read.requests,
            throttles: 0,
        })
        .collect();
    idps.extend(unchanged.iter().map(|read| IdpStats {
        name: read.name.to_string(),
        outcome: "unchanged".to_owned(),
        seconds: read.seconds,
        requests: read.requests,
        throttles: 0,
    }));
    Ok(RunOutput {
        report,
        baselines,
        generation: loaded.generation,
        external_ids,
        idps,
    })
}

/// What an apply needs to know about the run it belongs to.
struct ApplyContext<'a> {
    config: &'a Config,
    run_id: &'a str,
    /// Set when the service stops: IdPs not applied yet are left for the next run.
    stop: Option<&'a tokio::sync::watch::Receiver<bool>>,
}

/// Applies each applicable IdP in its own transaction; an IdP whose apply fails moves to `failed`.
/// Returns, per IdP, whether a stop left it unapplied (its transaction never began).
fn apply(
    state: &mut State,
    context: &ApplyContext<'_>,
    plan: &mut Plan,
    world: &World,
    reads: &[Read],
    loaded: &Loaded,
) -> Result<Vec<bool>, SyncError> {
    let (config, run_id) = (context.config, context.run_id);
    let mut interrupted = vec![false; reads.len()];
    for (i, read) in reads.iter().enumerate() {
        if context.stop.is_some_and(|stop| *stop.borrow())
            && matches!(plan.outcomes[i], Outcome::Applied { .. })
        {
            let detail =
                "interrupted: the service stopped before this IdP's turn; the next run applies it";
            info!(idp = %read.name, "Stopping: this IdP's changes are left for the next run.");
            plan.failed.push((read.name.clone(), detail.to_owned()));
            plan.adds.retain(|c| c.idp != i);
            plan.removes.retain(|c| c.idp != i);
            plan.outcomes[i] = Outcome::Failed;
            interrupted[i] = true;
            state.record_idp_outcome(run_id, &read.name, "interrupted", detail, None)?;
            continue;
        }
        match &plan.outcomes[i] {
            Outcome::Applied { baseline, .. } => {
                let mut work = idp_apply(i, plan, world, read, loaded, baseline);
                work.read = read_record(config, plan, read);
                match state.apply_idp(run_id, &read.name, &work) {
                    Ok(counts) => {
                        tracing::debug!(idp = %read.name, adds = counts.adds, removes = counts.removes, "Applied.")
                    }
                    Err(e) => {
                        error!(idp = %read.name, error = %e, "Applying failed; nothing of this IdP was written.");
                        plan.failed
                            .push((read.name.clone(), format!("apply failed: {e}")));
                        plan.adds.retain(|c| c.idp != i);
                        plan.removes.retain(|c| c.idp != i);
                        plan.outcomes[i] = Outcome::Failed;
                    }
                }
            }
            Outcome::Refused => {
                if let Some(r) = plan.refused.iter().find(|r| r.idp == read.name) {
                    let refusal = Some((r.guard.as_str(), r.allow.as_str()));
                    state.record_idp_outcome(run_id, &read.name, "refused", &r.detail, refusal)?;
                }
            }
            Outcome::Failed => {
                let detail = plan
                    .failed
                    .iter()
                    .find(|(n, _)| n == &read.name)
                    .map(|(_, e)| e.clone())
                    .unwrap_or_default();
                state.record_idp_outcome(run_id, &read.name, "failed", &detail, None)?;
            }
        }
    }
    plan.failed.sort();
    Ok(interrupted)
}

/// The IdP's immutable ids to store beside user keys: users the store knows (or this plan adds)
/// whose stored id is missing or different.
fn external_ids_of<'a>(
    position: usize,
    plan: &Plan,
    world: &World,
    read: &'a Read,
    loaded: &Loaded,
) -> Vec<(&'a str, &'a str)> {
    let mut added = vec![false; world.universe.users.len()];
    for change in plan.adds.iter().filter(|c| c.idp == position) {
        added[change.user as usize] = true;
    }
    let stored = &loaded.idps[position].external_ids;
    let mut external_ids = Vec::new();
    if let Ok(directory) = &read.result {
        for user in &directory.users {
            let index = world.user_index[user.key.as_str()] as usize;
            let current = world.user_ids[index].and_then(|id| stored.get(&id));
            let known = world.user_ids[index].is_some() || added[index];
            if known && current != Some(&user.id) {
                external_ids.push((user.key.as_str(), user.id.as_str()));
            }
        }
    }
    external_ids
}

fn idp_apply<'a>(
    position: usize,
    plan: &'a Plan,
    world: &'a World,
    read: &'a Read,
    loaded: &'a Loaded,
    baseline: &'a Baseline,
) -> IdpApply<'a> {
    let store = |c: &'a crate::reconcile::Change| {
        (
            world.group_ids[c.group as usize].expect("real runs only see stored groups"),
            world.universe.users[c.user as usize].as_str(),
            &*c.cause,
        )
    };
    let adds: Vec<_> = plan
        .adds
        .iter()
        .filter(|c| c.idp == position)
        .map(store)
        .collect();
    let removes = plan
        .removes
        .iter()
        .filter(|c| c.idp == position)
        .map(store)
        .collect();
    let external_ids = external_ids_of(position, plan, world, read, loaded);
    IdpApply {
        adds,
        removes,
        external_ids,
        // An unchanged baseline is not rewritten: a no-op run writes next to nothing.
        baseline: (baseline != &loaded.idps[position].baseline).then_some(baseline),
        read: None,
    }
}

/// What is recorded of an applied read for the unchanged-read shortcut, when the source fingerprints.
fn read_record<'a>(config: &'a Config, plan: &Plan, read: &'a Read) -> Option<ReadRecord<'a>> {
    let fingerprint = read.fingerprint.as_deref()?;
    let inactive: Vec<InactiveDoc> = plan
        .inactive
        .iter()
        .filter(|m| m.idp == read.name)
        .map(inactive_doc)
        .collect();
    Some(ReadRecord {
        fingerprint,
        config: &config.fingerprint,
        inactive: serde_json::to_string(&inactive).expect("inactive mappings serialise"),
        skipped_users: read.result.as_ref().map_or(0, |d| d.skipped_users as u64),
    })
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

/// Quotes a path for the `allow` command when it holds shell metacharacters.
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
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
