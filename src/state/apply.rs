//! The checked apply: the one function that writes memberships (SPEC §1 invariants 9–11).
//!
//! Runs, saved plans and administrator edits all hand it a [`Batch`]: changes of one provenance
//! with the actor they are audited under. Inside one short write transaction it checks every
//! change against the rows as they are at commit — a change whose group was deleted, or whose
//! stage is no longer served, since it was planned is *dropped*: never written, audited as
//! `drop` with the reason, and returned — and writes the rest conditionally (add a provenance if
//! absent, remove it if present), auditing only what changed a row. For an IdP's part of a run the
//! same transaction carries its baseline, stored ids, read record and per-IdP run row, and clears
//! its unresolved refusal: for the embedded store this transaction is the journal — killed before
//! the commit it leaves nothing, and the next run plans the same changes again. In the service,
//! a run's apply pauses for waiting writers, committing in parts (`pause.rs`). A saved plan
//! applies all its batches in one transaction (`saved.rs`).

use rustc_hash::FxHashMap as HashMap;

use rusqlite::{OptionalExtension, Transaction, params};

use super::bulk::{ROWS_PER_STATEMENT, audit_adds, bulk_users, multi_row, store_ids};
use super::drops::{DropContext, audit_drop, check_groups};
pub use super::drops::{DropReason, Dropped};
use super::pause::{ForWaitingWriters, Never, Pauses};
use super::{State, StateError, unix_now};
use crate::model::{IdpName, Provenance, Stage};
use crate::reconcile::Baseline;

/// One membership change: a provenance added to, or removed from, (group, user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipChange<'a> {
    /// The group's row id (groups are ids: a rename during a read still lands in the group).
    pub group: i64,
    /// The user key.
    pub user: &'a str,
    /// The IdP group behind an IdP change; empty for none.
    pub cause: &'a str,
}

/// Which way a change goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// A provenance added.
    Add,
    /// A provenance removed.
    Remove,
}

impl ChangeOp {
    /// `add` or `remove`, as the audit log spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Add => "add",
            ChangeOp::Remove => "remove",
        }
    }
}

/// Changes of one provenance, applied together in one transaction.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    /// Who: `run:<id>`, `cli:<user>` (later `login`, `api`), as audited.
    pub actor: &'a str,
    /// The provenance every change adds or removes.
    pub provenance: &'a Provenance,
    /// Provenances to add.
    pub adds: &'a [MembershipChange<'a>],
    /// Provenances to remove.
    pub removes: &'a [MembershipChange<'a>],
    /// The stages writes may land in: a change to a group of another stage is dropped.
    pub served: &'a [Stage],
    /// Audit detail for every change written (`group deleted`), when there is one.
    pub detail: Option<&'a str>,
    /// For an IdP's part of a run: what commits with its changes.
    pub run: Option<&'a RunPart<'a>>,
    /// Told how many rows are written so far, after each statement of rows.
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
}

/// What commits with an IdP's changes in a run (or in an applied saved plan).
#[derive(Debug, Clone, Default)]
pub struct RunPart<'a> {
    /// The run.
    pub run_id: &'a str,
    /// Immutable ids to store beside keys: (user key, IdP id), only those new or changed.
    pub external_ids: Vec<(&'a str, &'a str)>,
    /// The read's baseline, replacing the stored one (`None`: unchanged).
    pub baseline: Option<&'a Baseline>,
    /// The read, recorded for the unchanged-read shortcut with the generation its commit leaves —
    /// only when the store is still at `planned_at` and nothing was dropped: a plan made from a
    /// state that moved since is no record of what a full read would give.
    pub read: Option<ReadRecord<'a>>,
    /// The state generation the plan was made from (moved by the run's own earlier commits).
    pub planned_at: i64,
    /// Users the read skipped for lack of a user key, when known (not for a saved plan).
    pub skipped_users: Option<u64>,
    /// (id, name) of each IdP group the mappings found in the read, for logins to match claims
    /// through (`None`: leave the stored ones, as a saved plan does).
    pub group_names: Option<Vec<(&'a str, &'a str)>>,
}

/// What is recorded of an applied read for the unchanged-read shortcut.
#[derive(Debug, Clone)]
pub struct ReadRecord<'a> {
    /// The source's fingerprint.
    pub fingerprint: &'a str,
    /// The configuration fingerprint.
    pub config: &'a str,
    /// The inactive mappings of the read (JSON array).
    pub inactive: String,
    /// Users skipped for lack of a key.
    pub skipped_users: u64,
}

/// What a batch did: rows really changed (the others were so already, e.g. written concurrently),
/// and the changes dropped at commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Provenances added.
    pub adds: u64,
    /// Provenances removed.
    pub removes: u64,
    /// Changes not written, with why.
    pub dropped: Vec<Dropped>,
    /// The state generation after the commit.
    pub generation: i64,
}

impl State {
    /// Applies one batch in its own write transaction, paused for writers of this process that
    /// wait for their turn (see the module documentation and `pause.rs`).
    pub fn apply(&mut self, batch: &Batch<'_>) -> Result<Applied, StateError> {
        // A bulk load checks its groups itself, inside its own write transaction, and resolves or
        // creates every user there too: SQLite's per-row foreign-key lookups would only repeat
        // that, at a fifth of a first load's time. Enforcement is back on for the next statement.
        let bulk = batch.adds.len() >= BULK_ADDS;
        if bulk {
            self.conn
                .pragma_update(None, "foreign_keys", "OFF")
                .map_err(|e| self.err(e))?;
        }
        // The apply checkpoints the WAL itself, outside its turn: a pause after handing the turn
        // on, and the end below, rather than in its commits with waiting writers still waiting.
        // (A login's commit that finds the WAL past SQLite's threshold still checkpoints inside
        // that login's turn; only a checkpoint no writer can append behind lets the WAL restart.)
        // Tuning only, so a failure is told.
        let tune = |conn: &rusqlite::Connection, pages: i64| {
            if let Err(e) = conn.pragma_update(None, "wal_autocheckpoint", pages) {
                tracing::warn!(error = %e, "The WAL's automatic checkpoints could not be set for this connection.");
            }
        };
        tune(&self.conn, 0);
        let turn = super::turns::take_turn();
        let applied = self.apply_checked(batch, &mut ForWaitingWriters::new(turn));
        tune(&self.conn, SQLITE_AUTOCHECKPOINT_PAGES);
        super::pause::checkpoint(&self.conn);
        if bulk && let Err(e) = self.conn.pragma_update(None, "foreign_keys", "ON") {
            // The batch itself committed or rolled back whole; only later writes on this
            // connection would go unchecked, and a run opens its own connection.
            tracing::warn!(error = %e, "Foreign keys could not be turned back on for this connection.");
        }
        applied
    }

    fn apply_checked(
        &mut self,
        batch: &Batch<'_>,
        pauses: &mut dyn Pauses,
    ) -> Result<Applied, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let applied = apply_pausing_in(&tx, batch, pauses).map_err(err)?;
        if applied.adds + applied.removes > 0 {
            super::bump_generation(&tx).map_err(err)?;
        }
        // The read is recorded with the generation this very commit leaves: any later change,
        // even a moment later, turns the unchanged-read shortcut off for it.
        tx.execute(
            "UPDATE idp_reads SET generation = (SELECT value FROM meta WHERE key = 'generation') WHERE generation = -1",
            [],
        )
        .map_err(err)?;
        let mut applied = applied;
        applied.generation = super::generation_in(&tx).map_err(err)?;
        crate::failpoint!("apply::in_tx");
        tx.commit().map_err(err)?;
        Ok(applied)
    }
}

/// One administrator's direct change of `user` in group `group` of `stage`, through the checked
/// apply inside the caller's transaction (`groups add-user`, `groups remove-user`).
pub(super) fn apply_direct(
    tx: &Transaction<'_>,
    actor: &str,
    stage: &Stage,
    op: ChangeOp,
    group: i64,
    user: &str,
) -> rusqlite::Result<Applied> {
    let change = [MembershipChange {
        group,
        user,
        cause: "",
    }];
    let (adds, removes): (&[MembershipChange<'_>], &[MembershipChange<'_>]) = match op {
        ChangeOp::Add => (&change, &[]),
        ChangeOp::Remove => (&[], &change),
    };
    apply_in(
        tx,
        &Batch {
            actor,
            provenance: &Provenance::Direct,
            adds,
            removes,
            served: std::slice::from_ref(stage),
            detail: None,
            run: None,
            progress: None,
        },
    )
}

/// The `sources` id of a provenance, created on first use (`direct` is always 0).
pub(super) fn source_id(
    tx: &rusqlite::Connection,
    provenance: &Provenance,
) -> rusqlite::Result<i64> {
    let provenance = provenance.to_string();
    tx.prepare_cached("INSERT OR IGNORE INTO sources (provenance) VALUES (?1)")?
        .execute([&provenance])?;
    tx.prepare_cached("SELECT id FROM sources WHERE provenance = ?1")?
        .query_row([&provenance], |r| r.get(0))
}

/// SQLite's default `wal_autocheckpoint`, restored after an apply that turned it off.
const SQLITE_AUTOCHECKPOINT_PAGES: i64 = 1000;

/// From this many adds in one batch, users are resolved in bulk rather than one query each.
const BULK_USERS: usize = 10_000;

/// From this many adds in one batch (and at least half the table), the by-user index is rebuilt
/// once rather than updated per row.
const BULK_ADDS: usize = 100_000;

/// The body of every membership write (see the module documentation), in one transaction.
pub(super) fn apply_in(tx: &Transaction<'_>, batch: &Batch<'_>) -> rusqlite::Result<Applied> {
    apply_pausing_in(tx, batch, &mut Never)
}

/// [`apply_in`], pausing between statements of rows when `pauses` says so (`pause.rs`).
fn apply_pausing_in(
    tx: &Transaction<'_>,
    batch: &Batch<'_>,
    pauses: &mut dyn Pauses,
) -> rusqlite::Result<Applied> {
    let started_at = super::generation_in(tx)?;
    let now = unix_now();
    let context = DropContext {
        now,
        actor: super::intern(tx, "actors", "name", batch.actor)?,
        source: source_id(tx, batch.provenance)?,
        provenance: batch.provenance,
    };
    let (actor, source) = (context.actor, context.source);
    let mut causes: HashMap<String, i64> = HashMap::default();
    let mut cause_id = |cause: &str| -> rusqlite::Result<Option<i64>> {
        if cause.is_empty() {
            return Ok(None);
        }
        if let Some(&id) = causes.get(cause) {
            return Ok(Some(id));
        }
        let id = super::intern(tx, "causes", "idp_group", cause)?;
        causes.insert(cause.to_owned(), id);
        Ok(Some(id))
    };
    let mut applied = Applied::default();
    let mut find_user = tx.prepare_cached("SELECT id FROM users WHERE key = ?1")?;
    let mut new_user = tx.prepare_cached("INSERT INTO users (key, created_at) VALUES (?1, ?2)")?;
    // Users first (a pause between statements commits users only, as one here does).
    let mut users: HashMap<String, i64> = if batch.adds.len() >= BULK_USERS {
        let mut between = || match pauses.due() {
            true => pauses.pause(tx),
            false => Ok(()),
        };
        bulk_users(tx, batch.adds.iter().map(|c| c.user), now, &mut between)?
    } else {
        HashMap::default()
    };
    let mut user_id = |key: &str, create: bool| -> rusqlite::Result<Option<i64>> {
        if let Some(&id) = users.get(key) {
            return Ok(Some(id));
        }
        let found: Option<i64> = find_user.query_row([key], |r| r.get(0)).optional()?;
        let id = match (found, create) {
            (Some(id), _) => id,
            (None, true) => {
                new_user.execute(params![key, now])?;
                tx.last_insert_rowid()
            }
            (None, false) => return Ok(None),
        };
        users.insert(key.to_owned(), id);
        Ok(Some(id))
    };
    // (group, user, cause, index in the batch) of every add.
    let mut adds: Vec<(i64, i64, Option<i64>, usize)> = Vec::with_capacity(batch.adds.len());
    for (i, change) in batch.adds.iter().enumerate() {
        let user = user_id(change.user, true)?.expect("created");
        adds.push((change.group, user, cause_id(change.cause)?, i));
        if i % 4096 == 4095 && pauses.due() {
            pauses.pause(tx)?;
        }
    }
    // Checked against the rows as they are now, after any pause above. Dropped changes are
    // audited, never written; the user of a dropped add becomes known, so `audit --user` finds
    // the record.
    let groups = batch.adds.iter().chain(batch.removes).map(|c| c.group);
    let dropping = check_groups(tx, batch.served, groups)?;
    let drop_of = |op, change: &MembershipChange<'_>, reason| Dropped {
        op,
        group: change.group,
        user: change.user.to_owned(),
        reason,
    };
    for &(group, user, cause, i) in &adds {
        if let Some(&reason) = dropping.get(&group) {
            let dropped = drop_of(ChangeOp::Add, &batch.adds[i], reason);
            let dropped = audit_drop(tx, &context, dropped, Some(user), cause)?;
            applied.dropped.push(dropped);
        }
    }
    for change in batch.removes {
        if let Some(&reason) = dropping.get(&change.group) {
            let (user, cause) = (user_id(change.user, false)?, cause_id(change.cause)?);
            let dropped = drop_of(ChangeOp::Remove, change, reason);
            let dropped = audit_drop(tx, &context, dropped, user, cause)?;
            applied.dropped.push(dropped);
        }
    }
    adds.retain(|a| !dropping.contains_key(&a.0));
    let mut remove_rows: Vec<usize> = (0..batch.removes.len())
        .filter(|&i| !dropping.contains_key(&batch.removes[i].group))
        .collect();
    // The memberships in primary-key order: the B-tree grows at its edge instead of being
    // searched at random for every row.
    adds.sort_unstable_by_key(|&(group, user, _, _)| (group, user));
    // A bulk load rebuilds the by-user index once instead of updating it at random per row; inside
    // the transaction, so readers never see the table without it (a pause builds it first).
    let rebuild_index = std::cell::Cell::new(
        adds.len() >= BULK_ADDS && {
            let rows: i64 = tx.query_row("SELECT count(*) FROM memberships", [], |r| r.get(0))?;
            adds.len() as i64 >= rows / 2
        },
    );
    if rebuild_index.get() {
        tx.execute_batch("DROP INDEX memberships_by_user")?;
    }
    // Pauses for waiting writers between statements: commits what is written, lets them in,
    // then checks the groups of the rest again if any group changed meanwhile.
    let mut catalog = super::catalog_in(tx)?;
    let mut pause_if_due = |tx: &Transaction<'_>,
                            rest: &mut dyn Iterator<Item = (ChangeOp, &MembershipChange<'_>)>,
                            applied: &mut Applied|
     -> rusqlite::Result<Option<HashMap<i64, DropReason>>> {
        if !pauses.due() {
            return Ok(None);
        }
        if rebuild_index.take() {
            tx.execute_batch(super::schema::CREATE_BY_USER_INDEX)?;
        }
        if applied.adds + applied.removes > 0 {
            super::bump_generation(tx)?;
        }
        pauses.pause(tx)?;
        let now_at = super::catalog_in(tx)?;
        if std::mem::replace(&mut catalog, now_at) == now_at {
            return Ok(Some(HashMap::default()));
        }
        let rest: Vec<_> = rest.collect();
        let again = check_groups(tx, batch.served, rest.iter().map(|(_, c)| c.group))?;
        for (op, change) in rest {
            if let Some(&reason) = again.get(&change.group) {
                let dropped = Dropped {
                    op,
                    group: change.group,
                    user: change.user.to_owned(),
                    reason,
                };
                let user = tx
                    .prepare_cached("SELECT id FROM users WHERE key = ?1")?
                    .query_row([change.user], |r| r.get(0))
                    .optional()?;
                let cause = match change.cause {
                    "" => None,
                    cause => Some(super::intern(tx, "causes", "idp_group", cause)?),
                };
                applied
                    .dropped
                    .push(audit_drop(tx, &context, dropped, user, cause)?);
            }
        }
        Ok(Some(again))
    };
    let mut written = 0u64;
    let mut at = 0;
    // Many rows per statement; RETURNING names the rows really inserted, and only those are audited.
    while at < adds.len() {
        let chunk = &adds[at..(at + ROWS_PER_STATEMENT).min(adds.len())];
        let mut insert = tx.prepare_cached(&multi_row(
            "INSERT OR IGNORE INTO memberships (group_id, user_id, source, cause) VALUES ",
            "(?, ?, ?, ?)",
            chunk.len(),
            " RETURNING group_id, user_id, cause",
        ))?;
        // Plain integers (NULL for no cause), bound without dynamic dispatch: a first load binds
        // millions of them.
        let values = chunk
            .iter()
            .flat_map(|&(group, user, cause, _)| [Some(group), Some(user), Some(source), cause]);
        let inserted: Vec<(i64, i64, Option<i64>)> = insert
            .query_map(rusqlite::params_from_iter(values), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        written += chunk.len() as u64;
        at += chunk.len();
        if !inserted.is_empty() {
            audit_adds(tx, actor, source, now, batch.detail, &inserted)?;
            applied.adds += inserted.len() as u64;
        }
        crate::failpoint!("apply::rows");
        if let Some(progress) = batch.progress {
            progress(written);
        }
        let rest_adds = adds[at..].iter().map(|a| (ChangeOp::Add, &batch.adds[a.3]));
        let rest_removes = remove_rows
            .iter()
            .map(|&i| (ChangeOp::Remove, &batch.removes[i]));
        if (at < adds.len() || !remove_rows.is_empty())
            && let Some(again) = pause_if_due(tx, &mut rest_adds.chain(rest_removes), &mut applied)?
            && !again.is_empty()
        {
            let mut rest = adds.split_off(at);
            rest.retain(|a| !again.contains_key(&a.0));
            adds.extend(rest);
            remove_rows.retain(|&i| !again.contains_key(&batch.removes[i].group));
        }
    }
    if rebuild_index.take() {
        tx.execute_batch(super::schema::CREATE_BY_USER_INDEX)?;
    }
    let mut audit = tx.prepare_cached(
        "INSERT INTO audit_log (at, actor, op, group_id, user_id, source, cause, detail) VALUES (?1, ?2, 'remove', ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut delete = tx.prepare_cached(
        "DELETE FROM memberships WHERE group_id = ?1 AND user_id = ?2 AND source = ?3",
    )?;
    let mut n = 0;
    while n < remove_rows.len() {
        let change = &batch.removes[remove_rows[n]];
        if let Some(user) = user_id(change.user, false)?
            && delete.execute(params![change.group, user, source])? == 1
        {
            let cause = cause_id(change.cause)?;
            audit.execute(params![
                now,
                actor,
                change.group,
                user,
                source,
                cause,
                batch.detail
            ])?;
            applied.removes += 1;
        }
        n += 1;
        if n % ROWS_PER_STATEMENT == 0 || n == remove_rows.len() {
            written += ((n - 1) % ROWS_PER_STATEMENT + 1) as u64;
            crate::failpoint!("apply::rows");
            if let Some(progress) = batch.progress {
                progress(written);
            }
            let mut rest = remove_rows[n..]
                .iter()
                .map(|&i| (ChangeOp::Remove, &batch.removes[i]));
            if n < remove_rows.len()
                && let Some(again) = pause_if_due(tx, &mut rest, &mut applied)?
                && !again.is_empty()
            {
                let mut rest = remove_rows.split_off(n);
                rest.retain(|&i| !again.contains_key(&batch.removes[i].group));
                remove_rows.extend(rest);
            }
        }
    }
    if let Some(run) = batch.run {
        let Provenance::Idp(idp) = batch.provenance else {
            unreachable!("a run part belongs to an IdP's batch");
        };
        let mut ids: Vec<(i64, &str)> = Vec::with_capacity(run.external_ids.len());
        for &(key, external) in &run.external_ids {
            if let Some(user) = user_id(key, false)? {
                ids.push((user, external));
            }
        }
        // Facts of the read rather than changes: a pause between their statements is harmless.
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            store_ids(tx, source, chunk)?;
            pause_if_due(tx, &mut std::iter::empty(), &mut applied)?;
        }
        // The read is a record of what a full read would give only when the plan was made from
        // the state this apply began in, nothing was dropped and no one wrote during a pause.
        let faithful =
            started_at == run.planned_at && applied.dropped.is_empty() && !pauses.moved();
        record_run_part(tx, source, idp, run, &applied, faithful)?;
    }
    Ok(applied)
}

/// The run bookkeeping that commits with an IdP's changes (its stored ids are written just
/// before): baseline, read record, the per-IdP run row, and the end of its unresolved refusal.
fn record_run_part(
    tx: &Transaction<'_>,
    source: i64,
    idp: &IdpName,
    run: &RunPart<'_>,
    applied: &Applied,
    faithful: bool,
) -> rusqlite::Result<()> {
    if let Some(baseline) = run.baseline {
        tx.execute("DELETE FROM baselines WHERE source = ?1", [source])?;
        let mut put = tx.prepare_cached(
            "INSERT INTO baselines (source, idp_group, members, hash) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (group, digest) in baseline {
            put.execute(params![
                source,
                group,
                digest.members as i64,
                digest.hash as i64
            ])?;
        }
    }
    if let Some(names) = &run.group_names {
        super::login::record_group_names(tx, source, names)?;
    }
    match run.read.as_ref().filter(|_| faithful) {
        Some(read) => tx.execute(
            "INSERT OR REPLACE INTO idp_reads (source, fingerprint, config, generation, inactive, skipped_users)
             VALUES (?1, ?2, ?3, -1, ?4, ?5)",
            params![source, read.fingerprint, read.config, read.inactive, read.skipped_users as i64],
        )?,
        None => tx.execute("DELETE FROM idp_reads WHERE source = ?1", [source])?,
    };
    tx.execute(
        "INSERT OR REPLACE INTO run_idps (run_id, idp, outcome, adds, removes, dropped, skipped_users)
         VALUES (?1, ?2, 'applied', ?3, ?4, ?5, ?6)",
        params![
            run.run_id,
            idp.as_str(),
            applied.adds as i64,
            applied.removes as i64,
            applied.dropped.len() as i64,
            run.skipped_users.map(|n| n as i64)
        ],
    )?;
    tx.execute("DELETE FROM refusals WHERE idp = ?1", [idp.as_str()])?;
    Ok(())
}
