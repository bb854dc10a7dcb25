//! Applying a run's plan: each applicable IdP's part goes through the checked apply in its own
//! transaction (in the service, paused for waiting logins: `state/pause.rs`), and what happened
//! to every IdP goes into the run history. Changes dropped at
//! commit leave the plan (they were never written) and are returned for the report.

use tracing::{error, info};

use super::read::Read;
use super::world::World;
use crate::config::Config;
use crate::model::{Failure, FailureKind, Provenance};
use crate::progress::{Progress, ProgressFn};
use crate::reconcile::{Change, Outcome, Plan};
use crate::report::InactiveDoc;
use crate::state::{
    Batch, ChangeOp, DropReason, Loaded, MembershipChange, NotApplied, ReadRecord, Refusal,
    RunPart, State, StateError,
};

/// What an apply needs to know about the run it belongs to.
pub(super) struct ApplyContext<'a> {
    pub(super) config: &'a Config,
    pub(super) run_id: &'a str,
    /// Set when the service stops: IdPs not applied yet are left for the next run.
    pub(super) stop: Option<&'a tokio::sync::watch::Receiver<bool>>,
    /// The stages served as each IdP commits, when they can change during the run.
    pub(super) served_now: Option<&'a super::ServedNow>,
    pub(super) progress: ProgressFn<'a>,
}

/// A change of the plan dropped at commit, and why.
pub(super) struct DroppedChange {
    pub(super) op: ChangeOp,
    pub(super) change: Change,
    pub(super) reason: DropReason,
}

/// What applying did beyond the plan: per IdP, whether a stop left it unapplied; the changes
/// dropped at commit.
pub(super) struct ApplyResult {
    pub(super) interrupted: Vec<bool>,
    pub(super) dropped: Vec<DroppedChange>,
}

/// Applies each applicable IdP in its own transaction; an IdP whose apply fails moves to `failed`.
pub(super) fn apply_plan(
    state: &mut State,
    context: &ApplyContext<'_>,
    plan: &mut Plan,
    world: &World,
    reads: &[Read],
    loaded: &Loaded,
) -> Result<ApplyResult, StateError> {
    let run_id = context.run_id;
    let actor = format!("run:{run_id}");
    let mut result = ApplyResult {
        interrupted: vec![false; reads.len()],
        dropped: Vec::new(),
    };
    let total = (plan.adds.len() + plan.removes.len()) as u64;
    let mut done = 0u64;
    // The generation the plan was made from, as the run's own commits move it.
    let mut planned_at = loaded.generation;
    for (i, read) in reads.iter().enumerate() {
        if context.stop.is_some_and(|stop| *stop.borrow())
            && matches!(plan.outcomes[i], Outcome::Applied { .. })
        {
            let detail =
                "interrupted: the service stopped before this IdP's turn; the next run applies it";
            info!(idp = %read.name, "Stopping: this IdP's changes are left for the next run.");
            withdraw(
                plan,
                i,
                read,
                Failure::new(FailureKind::Unavailable, detail),
            );
            result.interrupted[i] = true;
            state.record_not_applied(run_id, &read.name, NotApplied::Interrupted(detail))?;
            continue;
        }
        match &plan.outcomes[i] {
            Outcome::Applied { baseline, .. } => {
                let baseline = baseline.clone();
                let provenance = Provenance::Idp(read.name.clone());
                let (adds, removes) = (
                    changes_of(&plan.adds, i, world),
                    changes_of(&plan.removes, i, world),
                );
                let run = RunPart {
                    run_id,
                    external_ids: external_ids_of(i, plan, world, read, loaded),
                    // An unchanged baseline is not rewritten: a no-op run writes next to nothing.
                    baseline: (baseline != loaded.idps[i].baseline).then_some(&baseline),
                    read: read_record(context.config, plan, read),
                    planned_at,
                    skipped_users: Some(skipped(read)),
                    group_names: Some(group_names(read, &baseline)),
                };
                let report = |written: u64| {
                    (context.progress)(Progress::Applying {
                        done: done + written,
                        total,
                    });
                };
                let served = context
                    .served_now
                    .map_or_else(|| context.config.daemon.stages.clone(), |now| (now.0)());
                let batch = Batch {
                    actor: &actor,
                    provenance: &provenance,
                    adds: &adds,
                    removes: &removes,
                    served: &served,
                    detail: None,
                    run: Some(&run),
                    progress: Some(&report),
                };
                crate::failpoint!("apply::before_tx");
                match state.apply(&batch) {
                    Ok(applied) => {
                        tracing::debug!(idp = %read.name, adds = applied.adds, removes = applied.removes,
                            dropped = applied.dropped.len(), "Applied.");
                        done += (adds.len() + removes.len()) as u64;
                        planned_at = applied.generation;
                        if !applied.dropped.is_empty() {
                            result
                                .dropped
                                .extend(take_dropped(plan, i, world, &applied.dropped));
                        }
                    }
                    Err(e) => {
                        done += (adds.len() + removes.len()) as u64;
                        error!(idp = %read.name, error = %e, "Applying failed; the next run applies what this one did not.");
                        let failure =
                            Failure::new(FailureKind::Unavailable, format!("apply failed: {e}"));
                        withdraw(plan, i, read, failure.clone());
                        state.record_not_applied(
                            run_id,
                            &read.name,
                            NotApplied::Failed(&failure),
                        )?;
                    }
                }
                crate::failpoint!("apply::after_commit");
            }
            Outcome::Refused => {
                if let Some(r) = plan.refused.iter().find(|r| r.idp == read.name) {
                    let refusal = Refusal {
                        guard: r.guard.as_str(),
                        detail: &r.detail,
                        allow: &r.allow,
                        skipped_users: skipped(read),
                    };
                    state.record_not_applied(run_id, &read.name, NotApplied::Refused(&refusal))?;
                }
            }
            Outcome::Failed => {
                if let Some((_, failure)) = plan.failed.iter().find(|(n, _)| n == &read.name) {
                    state.record_not_applied(run_id, &read.name, NotApplied::Failed(failure))?;
                }
            }
        }
    }
    plan.failed.sort();
    Ok(result)
}

/// Takes IdP `i`'s changes out of the plan and marks it failed with `failure`.
fn withdraw(plan: &mut Plan, i: usize, read: &Read, failure: Failure) {
    plan.failed.push((read.name.clone(), failure));
    plan.adds.retain(|c| c.idp != i);
    plan.removes.retain(|c| c.idp != i);
    plan.outcomes[i] = Outcome::Failed;
}

/// (id, name) of each IdP group the read's mappings found (the baseline's groups), for logins
/// to match a groups claim of ids to mappings that name groups.
fn group_names<'a>(
    read: &'a Read,
    baseline: &'a crate::reconcile::Baseline,
) -> Vec<(&'a str, &'a str)> {
    let Ok(directory) = &read.result else {
        return Vec::new();
    };
    baseline
        .keys()
        .filter_map(|id| match directory.find(id) {
            crate::directory::Lookup::Found(i) => {
                Some((id.as_str(), directory.groups[i].name.as_str()))
            }
            _ => None,
        })
        .collect()
}

fn skipped(read: &Read) -> u64 {
    read.result.as_ref().map_or(0, |d| d.skipped_users as u64)
}

/// IdP `i`'s changes of `list` in store terms.
fn changes_of<'a>(list: &'a [Change], i: usize, world: &'a World) -> Vec<MembershipChange<'a>> {
    list.iter()
        .filter(|c| c.idp == i)
        .map(|c| MembershipChange {
            group: world.group_ids[c.group as usize].expect("real runs only see stored groups"),
            user: world.universe.users[c.user as usize].as_str(),
            cause: &c.cause,
        })
        .collect()
}

/// Removes from the plan the changes of IdP `i` that were dropped at commit, and returns them.
fn take_dropped(
    plan: &mut Plan,
    i: usize,
    world: &World,
    dropped: &[crate::state::Dropped],
) -> Vec<DroppedChange> {
    let mut out = Vec::with_capacity(dropped.len());
    for (op, list) in [
        (ChangeOp::Add, &mut plan.adds),
        (ChangeOp::Remove, &mut plan.removes),
    ] {
        let reasons: rustc_hash::FxHashMap<(i64, &str), DropReason> = dropped
            .iter()
            .filter(|d| d.op == op)
            .map(|d| ((d.group, d.user.as_str()), d.reason))
            .collect();
        if reasons.is_empty() {
            continue;
        }
        list.retain(|c| {
            let key = (
                world.group_ids[c.group as usize].unwrap_or(-1),
                world.universe.users[c.user as usize].as_str(),
            );
            match reasons.get(&key) {
                Some(&reason) if c.idp == i => {
                    out.push(DroppedChange {
                        op,
                        change: c.clone(),
                        reason,
                    });
                    false
                }
                _ => true,
            }
        });
    }
    out
}

/// The IdP's immutable ids to store beside user keys: users the store knows (or this plan adds)
/// whose stored id is missing or different.
pub(super) fn external_ids_of<'a>(
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

/// What is recorded of an applied read for the unchanged-read shortcut, when the source fingerprints.
fn read_record<'a>(config: &'a Config, plan: &Plan, read: &'a Read) -> Option<ReadRecord<'a>> {
    let fingerprint = read.fingerprint.as_deref()?;
    let inactive: Vec<InactiveDoc> = plan
        .inactive
        .iter()
        .filter(|m| m.idp == read.name)
        .map(super::document::inactive_doc)
        .collect();
    Some(ReadRecord {
        fingerprint,
        config: &config.fingerprint,
        inactive: serde_json::to_string(&inactive).expect("inactive mappings serialise"),
        skipped_users: skipped(read),
    })
}
