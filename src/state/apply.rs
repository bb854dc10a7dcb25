//! Applying one IdP's part of a plan to the embedded store, and recording runs.
//!
//! One IdP's changes, audit rows, stored ids and new baseline commit together in one transaction:
//! for the embedded store this transaction is the journal (SPEC §1 invariant 9) — a run killed
//! before the commit leaves nothing behind and the next run plans the same changes again. Each
//! change is conditional (insert if absent, delete if present) and audited only when it changed a row.

use rustc_hash::FxHashMap as HashMap;

use rusqlite::{OptionalExtension, params};

use super::{State, StateError, unix_now};
use crate::model::IdpName;
use crate::reconcile::Baseline;

/// One IdP's applicable changes, in store terms.
#[derive(Debug, Clone, Default)]
pub struct IdpApply<'a> {
    /// Adds: (group id, user key, cause).
    pub adds: Vec<(i64, &'a str, &'a str)>,
    /// Removes: (group id, user key, cause).
    pub removes: Vec<(i64, &'a str, &'a str)>,
    /// Immutable ids to store beside keys: (user key, IdP id), only those new or changed.
    pub external_ids: Vec<(&'a str, &'a str)>,
    /// The read's baseline, replacing the stored one.
    pub baseline: Option<&'a Baseline>,
    /// The read itself, recorded for the unchanged-read shortcut with the generation its commit leaves.
    pub read: Option<ReadRecord<'a>>,
}

/// What is recorded of an applied read.
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

/// A change of a saved plan: (stage, group name, user key, cause).
pub type SavedChange<'a> = (&'a str, &'a str, &'a str, &'a str);

/// One IdP's part of a saved plan.
#[derive(Debug, Clone)]
pub struct SavedIdp<'a> {
    /// The IdP.
    pub idp: IdpName,
    /// Its adds.
    pub adds: Vec<SavedChange<'a>>,
    /// Its removes.
    pub removes: Vec<SavedChange<'a>>,
    /// Immutable ids to store beside user keys: (user key, IdP id).
    pub external_ids: Vec<(&'a str, &'a str)>,
    /// The baseline of the read the plan was made from.
    pub baseline: Option<&'a Baseline>,
}

/// Changes that really changed a row (others were already so, e.g. written concurrently).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppliedCounts {
    /// Provenances added.
    pub adds: u64,
    /// Provenances removed.
    pub removes: u64,
}

/// The end of a run, for the run history.
#[derive(Debug, Clone)]
pub struct RunRecord<'a> {
    /// The run id.
    pub run_id: &'a str,
    /// `ok`, `failed` or `refused`.
    pub outcome: &'a str,
    /// Adds applied.
    pub adds: u64,
    /// Removes applied.
    pub removes: u64,
    /// The run's summary (stored as JSON; the full document is printed, not stored).
    pub summary: &'a crate::report::Summary,
}

impl State {
    /// Records the start of a run, so a run that dies shows as never finished.
    pub fn begin_run(&mut self, run_id: &str, actor: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO runs (id, actor, started_at, outcome) VALUES (?1, ?2, ?3, 'running')",
                params![run_id, actor, unix_now()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Closes the runs `actor` left open ('running': the process died or was killed mid-run) as
    /// 'interrupted'; returns how many. Their applied IdPs committed whole; the others applied
    /// nothing, and the next run plans what is left.
    pub fn close_interrupted_runs(&mut self, actor: &str) -> Result<u64, StateError> {
        let closed = self
            .conn
            .execute(
                "UPDATE runs SET outcome = 'interrupted', finished_at = ?2 WHERE outcome = 'running' AND actor = ?1",
                params![actor, unix_now()],
            )
            .map_err(|e| self.err(e))?;
        Ok(closed as u64)
    }

    /// Records the end of a run.
    pub fn finish_run(&mut self, record: &RunRecord<'_>) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE runs SET finished_at = ?2, outcome = ?3, adds = ?4, removes = ?5, report = ?6 WHERE id = ?1",
                params![
                    record.run_id,
                    unix_now(),
                    record.outcome,
                    record.adds as i64,
                    record.removes as i64,
                    serde_json::to_string(record.summary).expect("the summary serialises")
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records what happened to an IdP that was not applied: `failed`, or `refused` with the guard
    /// and the command that allows it (shown by `status` until a later run applies the IdP).
    pub fn record_idp_outcome(
        &mut self,
        run_id: &str,
        idp: &IdpName,
        outcome: &str,
        detail: &str,
        refusal: Option<(&str, &str)>,
    ) -> Result<(), StateError> {
        let (guard, allow) = refusal.unzip();
        self.conn
            .execute(
                "INSERT OR REPLACE INTO run_idps (run_id, idp, outcome, adds, removes, detail, guard, allow)
                 VALUES (?1, ?2, ?3, 0, 0, ?4, ?5, ?6)",
                params![run_id, idp.as_str(), outcome, detail, guard, allow],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Applies one IdP's changes, ids and baseline in one transaction, auditing each real change.
    pub fn apply_idp(
        &mut self,
        run_id: &str,
        idp: &IdpName,
        apply: &IdpApply<'_>,
    ) -> Result<AppliedCounts, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let counts = apply_in(&tx, run_id, idp, apply).map_err(err)?;
        if counts.adds + counts.removes > 0 {
            super::bump_generation(&tx).map_err(err)?;
        }
        // The read is recorded with the generation this very commit leaves: any later change,
        // even a moment later, turns the unchanged-read shortcut off for it.
        tx.execute(
            "UPDATE idp_reads SET generation = (SELECT value FROM meta WHERE key = 'generation') WHERE generation = -1",
            [],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(counts)
    }

    /// Applies a saved plan in one transaction, only if the state is still at `generation`:
    /// declared groups are created first, then each IdP's changes, baseline and audit rows.
    pub fn apply_saved(
        &mut self,
        run_id: &str,
        generation: i64,
        declared: &[crate::config::DeclaredGroup],
        parts: &[SavedIdp<'_>],
    ) -> Result<AppliedCounts, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let now = super::generation_in(&tx).map_err(err)?;
        if now != generation {
            return Err(StateError::Refused(format!(
                "memberships, roles or groups changed since the plan was made (state generation {generation} then, {now} now); make a new plan"
            )));
        }
        super::groups::declared_in(&tx, declared, &format!("run:{run_id}")).map_err(err)?;
        let mut total = AppliedCounts::default();
        for part in parts {
            let mut find = tx
                .prepare_cached("SELECT id FROM groups WHERE stage = ?1 AND norm = ?2")
                .map_err(err)?;
            let apply = IdpApply {
                adds: resolve_groups(&mut find, &part.adds).map_err(|e| e.within(&path))?,
                removes: resolve_groups(&mut find, &part.removes).map_err(|e| e.within(&path))?,
                external_ids: part.external_ids.clone(),
                baseline: part.baseline,
                read: None,
            };
            let counts = apply_in(&tx, run_id, &part.idp, &apply).map_err(err)?;
            total.adds += counts.adds;
            total.removes += counts.removes;
        }
        super::bump_generation(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(total)
    }

    /// Deletes audit records older than `days` days (0 keeps everything).
    pub fn purge_audit(&mut self, days: u32) -> Result<u64, StateError> {
        if days == 0 {
            return Ok(0);
        }
        let cutoff = unix_now() - i64::from(days) * 86_400;
        let n = self
            .conn
            .execute("DELETE FROM audit_log WHERE at < ?1", [cutoff])
            .map_err(|e| self.err(e))?;
        Ok(n as u64)
    }
}

/// The `sources` id of `idp:<name>`, created on first use.
pub(super) fn source_id(tx: &rusqlite::Connection, idp: &IdpName) -> rusqlite::Result<i64> {
    let provenance = format!("idp:{idp}");
    tx.execute(
        "INSERT OR IGNORE INTO sources (provenance) VALUES (?1)",
        [&provenance],
    )?;
    tx.query_row(
        "SELECT id FROM sources WHERE provenance = ?1",
        [&provenance],
        |r| r.get(0),
    )
}

/// Rows per multi-row INSERT: few statements, far below SQLite's 32,766 parameters.
const ROWS_PER_STATEMENT: usize = 256;

/// `head` followed by `rows` copies of `row`, comma-separated, then `tail`.
fn multi_row(head: &str, row: &str, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * (row.len() + 2) + tail.len());
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
    sql.push_str(tail);
    sql
}

/// From this many adds in one apply, users are resolved in bulk rather than one query each.
const BULK_USERS: usize = 10_000;

/// Every user key the store holds, plus the new keys of `apply`'s adds inserted with multi-row
/// statements: one pass instead of a lookup and an insert per user.
fn bulk_users(
    tx: &rusqlite::Transaction<'_>,
    apply: &IdpApply<'_>,
    now: i64,
) -> rusqlite::Result<HashMap<String, i64>> {
    let mut users: HashMap<String, i64> = HashMap::default();
    let mut stmt = tx.prepare("SELECT id, key FROM users")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        users.insert(row.get(1)?, row.get(0)?);
    }
    let mut new: Vec<&str> = apply
        .adds
        .iter()
        .map(|&(_, key, _)| key)
        .filter(|k| !users.contains_key(*k))
        .collect();
    new.sort_unstable();
    new.dedup();
    for chunk in new.chunks(ROWS_PER_STATEMENT) {
        let mut insert = tx.prepare_cached(&multi_row(
            "INSERT INTO users (key, created_at) VALUES ",
            "(?, ?)",
            chunk.len(),
            " RETURNING id, key",
        ))?;
        let values: Vec<&dyn rusqlite::ToSql> = chunk
            .iter()
            .flat_map(|k| [k as &dyn rusqlite::ToSql, &now])
            .collect();
        let mut rows = insert.query(values.as_slice())?;
        while let Some(row) = rows.next()? {
            users.insert(row.get(1)?, row.get(0)?);
        }
    }
    Ok(users)
}

/// From this many adds in one apply (and at least half the table), the by-user index is rebuilt
/// once rather than updated per row.
const BULK_ADDS: usize = 100_000;

/// The body of an apply: conditional changes with their audit rows, stored ids, baseline, outcome.
fn apply_in(
    tx: &rusqlite::Transaction<'_>,
    run_id: &str,
    idp: &IdpName,
    apply: &IdpApply<'_>,
) -> rusqlite::Result<AppliedCounts> {
    let actor = super::intern(tx, "actors", "name", &format!("run:{run_id}"))?;
    let now = unix_now();
    let source = source_id(tx, idp)?;
    let mut causes: HashMap<String, i64> = HashMap::default();
    let mut cause_id = |cause: &str| -> rusqlite::Result<i64> {
        if let Some(&id) = causes.get(cause) {
            return Ok(id);
        }
        let id = super::intern(tx, "causes", "idp_group", cause)?;
        causes.insert(cause.to_owned(), id);
        Ok(id)
    };
    let mut counts = AppliedCounts::default();
    let mut find_user = tx.prepare_cached("SELECT id FROM users WHERE key = ?1")?;
    let mut new_user = tx.prepare_cached("INSERT INTO users (key, created_at) VALUES (?1, ?2)")?;
    let mut users: HashMap<String, i64> = if apply.adds.len() >= BULK_USERS {
        bulk_users(tx, apply, now)?
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
    let mut delete = tx.prepare_cached(
        "DELETE FROM memberships WHERE group_id = ?1 AND user_id = ?2 AND source = ?3",
    )?;
    let mut audit = tx.prepare_cached(
        "INSERT INTO audit_log (at, actor, op, group_id, user_id, source, cause) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    // Users first, then the memberships in primary-key order: the B-tree grows at its edge
    // instead of being searched at random for every row.
    let mut adds: Vec<(i64, i64, i64)> = Vec::with_capacity(apply.adds.len());
    for &(group, key, cause) in &apply.adds {
        adds.push((
            group,
            user_id(key, true)?.expect("created"),
            cause_id(cause)?,
        ));
    }
    adds.sort_unstable_by_key(|&(group, user, _)| (group, user));
    // A bulk load rebuilds the by-user index once instead of updating it at random per row; inside
    // the transaction, so readers never see the table without it.
    let rebuild_index = adds.len() >= BULK_ADDS && {
        let rows: i64 = tx.query_row("SELECT count(*) FROM memberships", [], |r| r.get(0))?;
        adds.len() as i64 >= rows / 2
    };
    if rebuild_index {
        tx.execute_batch("DROP INDEX memberships_by_user")?;
    }
    // Many rows per statement; RETURNING names the rows really inserted, and only those are audited.
    for chunk in adds.chunks(ROWS_PER_STATEMENT) {
        let mut insert = tx.prepare_cached(&multi_row(
            "INSERT OR IGNORE INTO memberships (group_id, user_id, source, cause) VALUES ",
            "(?, ?, ?, ?)",
            chunk.len(),
            " RETURNING group_id, user_id, cause",
        ))?;
        let values = chunk
            .iter()
            .flat_map(|&(group, user, cause)| [group, user, source, cause]);
        let inserted: Vec<[i64; 3]> = insert
            .query_map(rusqlite::params_from_iter(values), |r| {
                Ok([r.get(0)?, r.get(1)?, r.get(2)?])
            })?
            .collect::<Result<_, _>>()?;
        if inserted.is_empty() {
            continue;
        }
        let mut audit_rows = tx.prepare_cached(&multi_row(
            "INSERT INTO audit_log (at, actor, op, group_id, user_id, source, cause) VALUES ",
            "(?, ?, 'add', ?, ?, ?, ?)",
            inserted.len(),
            "",
        ))?;
        let values = inserted
            .iter()
            .flat_map(|&[group, user, cause]| [now, actor, group, user, source, cause]);
        audit_rows.execute(rusqlite::params_from_iter(values))?;
        counts.adds += inserted.len() as u64;
    }
    if rebuild_index {
        tx.execute_batch("CREATE INDEX memberships_by_user ON memberships (user_id)")?;
    }
    for &(group, key, cause) in &apply.removes {
        let Some(user) = user_id(key, false)? else {
            continue;
        };
        if delete.execute(params![group, user, source])? == 1 {
            audit.execute(params![
                now,
                actor,
                "remove",
                group,
                user,
                source,
                cause_id(cause)?
            ])?;
            counts.removes += 1;
        }
    }
    let mut ids: Vec<(i64, &str)> = Vec::with_capacity(apply.external_ids.len());
    for &(key, external) in &apply.external_ids {
        if let Some(user) = user_id(key, false)? {
            ids.push((user, external));
        }
    }
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut store_ids = tx.prepare_cached(&multi_row(
            "INSERT INTO user_ids (source, user_id, external_id) VALUES ",
            "(?, ?, ?)",
            chunk.len(),
            " ON CONFLICT (source, user_id) DO UPDATE SET external_id = excluded.external_id",
        ))?;
        let values: Vec<&dyn rusqlite::ToSql> = chunk
            .iter()
            .flat_map(|(user, external)| [&source as &dyn rusqlite::ToSql, user, external])
            .collect();
        store_ids.execute(values.as_slice())?;
    }
    if let Some(baseline) = apply.baseline {
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
    match &apply.read {
        Some(read) => tx.execute(
            "INSERT OR REPLACE INTO idp_reads (source, fingerprint, config, generation, inactive, skipped_users)
             VALUES (?1, ?2, ?3, -1, ?4, ?5)",
            params![source, read.fingerprint, read.config, read.inactive, read.skipped_users as i64],
        )?,
        None => tx.execute("DELETE FROM idp_reads WHERE source = ?1", [source])?,
    };
    tx.execute(
        "INSERT OR REPLACE INTO run_idps (run_id, idp, outcome, adds, removes) VALUES (?1, ?2, 'applied', ?3, ?4)",
        params![run_id, idp.as_str(), counts.adds as i64, counts.removes as i64],
    )?;
    Ok(counts)
}

/// Store ids of a saved plan's groups; a group gone since the plan refuses it.
fn resolve_groups<'a>(
    find: &mut rusqlite::CachedStatement<'_>,
    list: &[SavedChange<'a>],
) -> Result<Vec<(i64, &'a str, &'a str)>, ResolveError> {
    let mut out = Vec::with_capacity(list.len());
    for &(stage, group, user, cause) in list {
        let norm = crate::model::normalise_group_name(group);
        let id: Option<i64> = find
            .query_row(params![stage, norm], |r| r.get(0))
            .optional()?;
        let id = id.ok_or_else(|| {
            ResolveError::Gone(format!(
                "group {group:?} in stage {stage} no longer exists; make a new plan"
            ))
        })?;
        out.push((id, user, cause));
    }
    Ok(out)
}

/// Why a saved plan's groups could not be resolved.
enum ResolveError {
    Sqlite(rusqlite::Error),
    Gone(String),
}

impl From<rusqlite::Error> for ResolveError {
    fn from(e: rusqlite::Error) -> Self {
        ResolveError::Sqlite(e)
    }
}

impl ResolveError {
    fn within(self, path: &std::path::Path) -> StateError {
        match self {
            ResolveError::Sqlite(e) => super::sqlite(path, e),
            ResolveError::Gone(message) => StateError::Refused(message),
        }
    }
}
