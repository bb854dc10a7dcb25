//! Finishing the journal: every open entry of a remote store is sent to it, then marked done
//! (SPEC §1 invariants 1 and 9). Runs call this after their applies (and first, for what a
//! crashed run left), the service at start and after logins.
//!
//! Per (group, user) the entries only say that something changed: the mirror (the embedded
//! store) says whether the user should be in the remote group now. Ownership decides what is
//! sent: a removal is sent only for a membership the journal put there (`ours`); one found at the first read of the group, or answered
//! "already a member", is `preexisting` and stays. An entry is marked `sending` before its
//! request goes out, so after a crash an "already a member" answer for it still counts as ours.
//! A user the store does not know is left `unresolved` and asked for again at the next run; a
//! change the store rejects for good is marked `failed` and audited, and never blocks the rest.
//!
//! Finding users and groups is [`super::resolve`]'s; reading the store again for drift is
//! [`super::drift`]'s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use tracing::{info, warn};

use super::{Answer, Change, Op, RemoteStore, StoreError};
use crate::report::UnresolvedDoc;
use crate::state::{CachedGroup, OpenEntry, Owner, Settled, State, StateError, lock};

/// What a drain may do.
#[derive(Debug, Clone)]
pub struct DrainOptions<'a> {
    /// The state file.
    pub state: &'a Path,
    /// Who is draining, for the audit of failed entries (`run:<id>`, `login`, `service`).
    pub actor: &'a str,
    /// A cached "user not found" older than this (Unix milliseconds) is asked again.
    pub negative_since: i64,
    /// Read the members of the groups due for it, to find drift (batch runs).
    pub drift: bool,
    /// Read every remote group's members now (`reconcile --full`).
    pub full: bool,
    /// Create remote groups the store lacks.
    pub create_groups: bool,
    /// How often a group's members are read again.
    pub drift_interval: Duration,
    /// Write nothing (a dry run): only find what is missing.
    pub dry_run: bool,
    /// How long to wait for another drain of the same state to finish.
    pub lock_wait: Duration,
}

/// What a drain did.
#[derive(Debug, Clone, Default)]
pub struct DrainReport {
    /// Changes the store accepted.
    pub pushed: u64,
    /// Entries marked failed.
    pub failed: u64,
    /// Memberships found drifted and journalled again.
    pub drift: u64,
    /// Adds waiting for the store to know their user.
    pub unresolved: Vec<UnresolvedDoc>,
    /// Requests sent.
    pub requests: u64,
    /// Local groups the store lost in this drain: their entries wait for the next drain (which
    /// looks the group up again), not failed by this one.
    lost: BTreeSet<i64>,
}

impl From<StateError> for StoreError {
    fn from(e: StateError) -> Self {
        StoreError::State(e.to_string())
    }
}

/// One (group, user) of the journal: its last wish and every entry behind it.
struct Pair {
    user_id: i64,
    /// What the store should hold: the mirror's membership now, whatever order the entries
    /// came in (a late `journal retry` must not undo a newer change).
    op: Op,
    ids: Vec<i64>,
    /// An entry of it was sent before without an answer recorded (a crash came between).
    sent_before: bool,
}

/// The open entries of one group.
pub(super) struct GroupWork {
    pub(super) stage: String,
    pub(super) name: String,
    pairs: Vec<Pair>,
}

/// Sends the journal's open entries to `store`, then re-reads what is due for drift.
pub async fn drain<S: RemoteStore>(
    store: &S,
    options: &DrainOptions<'_>,
) -> Result<DrainReport, StoreError> {
    let tenant = store.tenant().to_owned();
    let start = store.client().requests();
    let _lock = {
        let (path, wait) = (options.state.to_owned(), options.lock_wait);
        let holder = format!("pid {} {}", std::process::id(), options.actor);
        tokio::task::spawn_blocking(move || lock::acquire_journal(&path, wait, &holder))
            .await
            .map_err(|e| StoreError::State(e.to_string()))?
            .map_err(|e| {
                StoreError::Unavailable(format!("the journal is being sent by another drain: {e}"))
            })?
    };
    let mut state = State::open(options.state)?;
    store.budget().remember(&state.remote_budget(&tenant)?);
    let result = drain_in(store, &mut state, options).await;
    state.set_remote_budget(&tenant, &store.budget().sent())?;
    let mut report = result?;
    report.requests = store.client().requests() - start;
    if report.pushed + report.failed + report.drift > 0 || !report.unresolved.is_empty() {
        info!(
            store = store.kind(),
            pushed = report.pushed,
            failed = report.failed,
            drift = report.drift,
            unresolved = report.unresolved.len(),
            requests = report.requests,
            "Journal sent to the store."
        );
    }
    Ok(report)
}

/// [`drain`] with the state open and the budget loaded.
async fn drain_in<S: RemoteStore>(
    store: &S,
    state: &mut State,
    options: &DrainOptions<'_>,
) -> Result<DrainReport, StoreError> {
    let tenant = store.tenant().to_owned();
    let by = options.actor.strip_prefix("run:").unwrap_or(options.actor);
    state.journal_claim(&tenant, by)?;
    state.journal_orphans(&tenant)?;
    crate::failpoint!("store::before_drain");
    let mut report = DrainReport::default();
    send_open(store, state, options, &mut report).await?;
    // A group seen for the first time journals what the mirror already holds in it: send that.
    send_open(store, state, options, &mut report).await?;
    if store.lists_members() && options.drift {
        report.drift = super::drift::drift(store, state, options).await?;
        if report.drift > 0 {
            send_open(store, state, options, &mut report).await?;
        }
    }
    report.unresolved = state
        .journal_open(&tenant)?
        .into_iter()
        .filter(|e| e.status == "unresolved")
        .map(|e| UnresolvedDoc {
            store: store.kind().to_owned(),
            stage: e.stage,
            group: e.group,
            user: e.user,
        })
        .collect();
    report
        .unresolved
        .sort_by(|a, b| (&a.stage, &a.group, &a.user).cmp(&(&b.stage, &b.group, &b.user)));
    report.unresolved.dedup();
    Ok(report)
}

/// Groups the open entries by group and (group, user), in journal order; `wish` says what the
/// store should hold for a (group, user).
fn work_of(
    entries: Vec<OpenEntry>,
    mut wish: impl FnMut(i64, i64) -> Result<Op, StoreError>,
) -> Result<BTreeMap<i64, GroupWork>, StoreError> {
    let mut groups: BTreeMap<i64, GroupWork> = BTreeMap::new();
    let mut index: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for e in entries {
        let work = groups.entry(e.group_id).or_insert_with(|| GroupWork {
            stage: e.stage.clone(),
            name: e.group.clone(),
            pairs: Vec::new(),
        });
        let sent = e.status == "sending";
        match index.get(&(e.group_id, e.user_id)) {
            Some(&i) => {
                let pair = &mut work.pairs[i];
                pair.ids.push(e.id);
                pair.sent_before |= sent;
            }
            None => {
                index.insert((e.group_id, e.user_id), work.pairs.len());
                work.pairs.push(Pair {
                    user_id: e.user_id,
                    op: wish(e.group_id, e.user_id)?,
                    ids: vec![e.id],
                    sent_before: sent,
                });
            }
        }
    }
    Ok(groups)
}

/// Sends every open entry: groups resolved, users resolved in bulk, changes batched.
async fn send_open<S: RemoteStore>(
    store: &S,
    state: &mut State,
    options: &DrainOptions<'_>,
    report: &mut DrainReport,
) -> Result<(), StoreError> {
    let tenant = store.tenant().to_owned();
    let entries = state.journal_open(&tenant)?;
    if entries.is_empty() {
        return Ok(());
    }
    let keys: BTreeMap<i64, String> = entries
        .iter()
        .map(|e| (e.user_id, e.user.clone()))
        .collect();
    let work = work_of(entries, |group, user| {
        Ok(if state.in_mirror(group, user)? {
            Op::Add
        } else {
            Op::Remove
        })
    })?;
    let adds: BTreeSet<i64> = work
        .values()
        .flat_map(|g| {
            g.pairs
                .iter()
                .filter(|p| p.op == Op::Add)
                .map(|p| p.user_id)
        })
        .collect();
    let users = super::resolve::resolve_users(store, state, options, &keys, &adds).await?;
    for (group_id, group) in work {
        if report.lost.contains(&group_id) {
            continue;
        }
        let Some(remote) =
            super::resolve::resolve_group(store, state, options, group_id, &group).await?
        else {
            let error = format!(
                "group {:?} of stage {} is not in the store (create it there, or set create_groups = true)",
                group.name, group.stage
            );
            let failed: Vec<(i64, String)> = group
                .pairs
                .iter()
                .flat_map(|p| p.ids.iter().map(|&id| (id, error.clone())))
                .collect();
            report.failed += failed.len() as u64;
            state.journal_settle(
                &tenant,
                &Settled {
                    failed,
                    ..Settled::default()
                },
                options.actor,
            )?;
            continue;
        };
        if let Err(e) = send_group(
            store, state, options, group_id, &remote, &group, &users, report,
        )
        .await
        {
            match e {
                StoreError::GroupGone(detail) => {
                    // The cached id is stale: forget it; the entries wait for the next drain.
                    warn!(store = store.kind(), group = %group.name, "{detail}; the group is looked up again next time.");
                    state.set_remote_group(&tenant, group_id, None)?;
                    report.lost.insert(group_id);
                }
                e => return Err(e),
            }
        }
    }
    Ok(())
}

/// Sends one group's entries.
#[allow(clippy::too_many_arguments)]
async fn send_group<S: RemoteStore>(
    store: &S,
    state: &mut State,
    options: &DrainOptions<'_>,
    group_id: i64,
    remote: &CachedGroup,
    group: &GroupWork,
    users: &BTreeMap<i64, Option<String>>,
    report: &mut DrainReport,
) -> Result<(), StoreError> {
    let tenant = store.tenant().to_owned();
    if store.lists_members() && remote.read_at.is_none() {
        // The first read: whoever is there already is not ours — but a user idpsync sent before
        // without recording the answer is the journal's to settle.
        let members = store.members(&remote.remote_id).await?;
        let settling: BTreeSet<String> = group
            .pairs
            .iter()
            .filter(|p| p.sent_before)
            .filter_map(|p| users.get(&p.user_id).cloned().flatten())
            .collect();
        state.record_remote_read(&tenant, group_id, &remote.remote_id, &members, &settling)?;
    }
    let owned = state.remote_members(&tenant, &remote.remote_id)?;
    let mut settled = Settled::default();
    let mut to_send: Vec<(Change, &Pair)> = Vec::new();
    for pair in &group.pairs {
        let remote_user = users.get(&pair.user_id).cloned().flatten();
        match (pair.op, remote_user) {
            (Op::Add, None) => settled.unresolved.extend(&pair.ids),
            (Op::Remove, None) => settled.done.extend(&pair.ids),
            (Op::Add, Some(user)) => {
                // After a send whose answer was lost (a remove, say), "ours" may be stale: send
                // again; an add the store already has comes back as done. "Preexisting" stands.
                let owner = owned.get(&user).copied();
                if owner == Some(Owner::Preexisting)
                    || (owner == Some(Owner::Ours) && !pair.sent_before)
                {
                    settled.done.extend(&pair.ids);
                } else if !store.lists_members()
                    && !pair.sent_before
                    && store.is_member(&remote.remote_id, &user).await?
                {
                    settled.done.extend(&pair.ids);
                    settled
                        .members
                        .push((remote.remote_id.clone(), user, Owner::Preexisting));
                } else {
                    to_send.push((Change { op: Op::Add, user }, pair));
                }
            }
            (Op::Remove, Some(user)) => match owned.get(&user) {
                Some(Owner::Ours) => to_send.push((
                    Change {
                        op: Op::Remove,
                        user,
                    },
                    pair,
                )),
                None if pair.sent_before => to_send.push((
                    Change {
                        op: Op::Remove,
                        user,
                    },
                    pair,
                )),
                // Preexisting, or never in the store through us: nothing of ours to take out.
                _ => settled.done.extend(&pair.ids),
            },
        }
    }
    state.journal_settle(&tenant, &settled, options.actor)?;
    let chunks: Vec<&[(Change, &Pair)]> = to_send.chunks(store.batch_size().max(1)).collect();
    for (n, chunk) in chunks.iter().enumerate() {
        let ids: Vec<i64> = chunk
            .iter()
            .flat_map(|(_, p)| p.ids.iter().copied())
            .collect();
        state.journal_sending(&ids)?;
        crate::failpoint!("store::before_push");
        let changes: Vec<Change> = chunk.iter().map(|(c, _)| c.clone()).collect();
        let answers = answers_of(store, &remote.remote_id, &changes).await?;
        crate::failpoint!("store::after_push");
        let mut settled = Settled::default();
        for ((change, pair), answer) in chunk.iter().zip(answers) {
            match answer {
                Ok(answer) => {
                    report.pushed += 1;
                    settled.done.extend(&pair.ids);
                    match (change.op, answer) {
                        (Op::Add, Answer::AlreadyMember) if !pair.sent_before => {
                            settled.members.push((
                                remote.remote_id.clone(),
                                change.user.clone(),
                                Owner::Preexisting,
                            ));
                        }
                        (Op::Add, _) => settled.members.push((
                            remote.remote_id.clone(),
                            change.user.clone(),
                            Owner::Ours,
                        )),
                        (Op::Remove, _) => settled
                            .gone
                            .push((remote.remote_id.clone(), change.user.clone())),
                    }
                }
                Err(error) => {
                    report.failed += pair.ids.len() as u64;
                    warn!(store = store.kind(), group = %group.name, error = %error, "The store rejected a change; it is marked failed (see `idpsync journal list`).");
                    settled
                        .failed
                        .extend(pair.ids.iter().map(|&id| (id, error.clone())));
                }
            }
        }
        state.journal_settle(&tenant, &settled, options.actor)?;
        if n + 1 < chunks.len() {
            crate::failpoint!("store::mid_batch");
        }
    }
    Ok(())
}

/// Sends a batch; a batch rejected as a whole is sent again one change at a time, so only the
/// changes the store refuses fail.
async fn answers_of<S: RemoteStore>(
    store: &S,
    group: &str,
    changes: &[Change],
) -> Result<Vec<Result<Answer, String>>, StoreError> {
    let pushed = match store.push(group, changes).await {
        // A 404 is trusted only once the group itself is confirmed gone: forgetting a group that
        // is there would cost nothing of ownership, but a lookup and a first read for nothing.
        Err(StoreError::GroupGone(detail)) if store.group(group).await?.is_some() => {
            Err(StoreError::Rejected(detail))
        }
        other => other,
    };
    match pushed {
        Ok(answers) if answers.len() == changes.len() => Ok(answers.into_iter().map(Ok).collect()),
        Ok(answers) => Err(StoreError::Invalid(format!(
            "{} answers for {} changes",
            answers.len(),
            changes.len()
        ))),
        Err(StoreError::Rejected(e)) if changes.len() == 1 => Ok(vec![Err(e)]),
        Err(StoreError::Rejected(_)) => {
            let mut out = Vec::with_capacity(changes.len());
            for change in changes {
                out.push(
                    match store.push(group, std::slice::from_ref(change)).await {
                        Ok(mut answers) if answers.len() == 1 => Ok(answers.remove(0)),
                        Ok(_) => return Err(StoreError::Invalid("no answer for a change".into())),
                        // The group is confirmed there: a 404 for one change is about its user.
                        Err(StoreError::Rejected(e) | StoreError::GroupGone(e)) => Err(e),
                        Err(e) => return Err(e),
                    },
                );
            }
            Ok(out)
        }
        Err(e) => Err(e),
    }
}
