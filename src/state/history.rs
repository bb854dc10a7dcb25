//! What happened: the audit log with its filters, per-IdP run status, the journal, and backups.
//!
//! Read-only views for `audit` and `status`, the journal operations `journal list|retry|drop`,
//! and a consistent copy of the state through SQLite's online backup.

use std::path::Path;

use rusqlite::{OptionalExtension, params};

use super::{State, StateError, rfc3339, unix_now};
use crate::model::{IdpName, Stage, UserKey};

/// One audit record, with names resolved (a deleted group keeps its last name).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// When, RFC 3339 UTC.
    pub time: String,
    /// Who: `run:<id>`, `login`, `cli:<user>`, `api`.
    pub actor: String,
    /// What: `add`, `remove`, `group.create`, `group.rename`, `role.add`, …
    pub op: String,
    /// The group's stage.
    pub stage: Option<String>,
    /// The group.
    pub group: Option<String>,
    /// The user.
    pub user: Option<String>,
    /// The provenance changed.
    pub provenance: Option<String>,
    /// The IdP group behind an IdP change.
    pub cause: Option<String>,
    /// Anything else (old and new name, roles).
    pub detail: Option<String>,
}

/// Filters of `audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Records at or after this Unix time.
    pub since: Option<i64>,
    /// Records about this user.
    pub user: Option<UserKey>,
    /// Records about this group (stage, normalised name).
    pub group: Option<(Stage, String)>,
    /// Records about groups of this stage.
    pub stage: Option<Stage>,
}

/// The last run of one IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpRun {
    /// The run id.
    pub run_id: String,
    /// When it started (Unix time).
    pub started_at: i64,
    /// When it finished, if it did.
    pub finished_at: Option<i64>,
    /// `applied`, `unchanged`, `refused`, `failed` or `interrupted`.
    pub outcome: String,
    /// Adds applied.
    pub adds: u64,
    /// Removes applied.
    pub removes: u64,
    /// Why it failed, was refused or interrupted.
    pub detail: Option<String>,
    /// The kind of failure (`unavailable`, `unauthorized`, `invalid`) when it failed.
    pub error_kind: Option<String>,
    /// Users the IdP's last completed read skipped for lack of a key (this run's read, or the
    /// last one before it); `None` when it was never read.
    pub skipped_users: Option<u64>,
}

/// A journal entry a store rejected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JournalEntry {
    /// Its id, for `journal retry|drop`.
    pub id: i64,
    /// The run that journalled it.
    pub run_id: String,
    /// `add` or `remove`.
    pub op: String,
    /// The group's stage.
    pub stage: Option<String>,
    /// The group.
    pub group: Option<String>,
    /// The user.
    pub user: Option<String>,
    /// The provenance.
    pub provenance: Option<String>,
    /// `pending`, `failed`, `dropped` or `done`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The store's last answer.
    pub error: Option<String>,
    /// Last change, RFC 3339 UTC.
    pub updated: String,
}

impl State {
    /// Audit records matching `filter`, oldest first.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StateError> {
        Ok(self.audit_page(filter, None, None)?.0)
    }

    /// Up to `limit` audit records matching `filter` after cursor `after` (from the start when
    /// `None`), oldest first, and the cursor of the next page (`None` on the last).
    pub fn audit_page(
        &self,
        filter: &AuditFilter,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<(Vec<AuditRecord>, Option<i64>), StateError> {
        self.audit_rows(filter, after, limit, false)
    }

    /// The newest `limit` audit records matching `filter`, newest first, and whether there are
    /// more.
    pub fn audit_latest(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<(Vec<AuditRecord>, bool), StateError> {
        let (records, next) = self.audit_rows(filter, None, Some(limit), true)?;
        Ok((records, next.is_some()))
    }

    /// The records matching `filter` past `cursor` in id order (descending when `newest_first`).
    fn audit_rows(
        &self,
        filter: &AuditFilter,
        cursor: Option<i64>,
        limit: Option<u32>,
        newest_first: bool,
    ) -> Result<(Vec<AuditRecord>, Option<i64>), StateError> {
        let (past, order) = if newest_first {
            ("a.id < ?6", "DESC")
        } else {
            ("a.id > ?6", "ASC")
        };
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT a.at, a.actor, a.op, coalesce(g.stage, d.stage), coalesce(g.name, d.name), u.key, s.provenance, a.cause, a.detail, a.id
                 FROM audit a
                 LEFT JOIN groups g ON g.id = a.group_id
                 LEFT JOIN deleted_groups d ON d.id = a.group_id
                 LEFT JOIN users u ON u.id = a.user_id
                 LEFT JOIN sources s ON s.id = a.source
                 WHERE (?1 IS NULL OR a.at >= ?1)
                   AND (?2 IS NULL OR u.key = ?2)
                   AND (?3 IS NULL OR (coalesce(g.stage, d.stage) = ?3 AND coalesce(g.norm, d.norm) = ?4))
                   AND (?5 IS NULL OR coalesce(g.stage, d.stage) = ?5)
                   AND {past}
                 ORDER BY a.id {order}
                 LIMIT ?7"
            ))
            .map_err(|e| self.err(e))?;
        let (stage, norm) = filter
            .group
            .clone()
            .map(|(s, n)| (s.to_string(), n))
            .unzip();
        // One more than asked: whether a next page exists.
        let wanted = limit.map_or(-1, |n| i64::from(n) + 1);
        let rows = stmt
            .query_map(
                params![
                    filter.since,
                    filter.user.as_ref().map(UserKey::as_str),
                    stage,
                    norm,
                    filter.stage.as_ref().map(Stage::as_str),
                    cursor.unwrap_or(if newest_first { i64::MAX } else { i64::MIN }),
                    wanted
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(9)?,
                        AuditRecord {
                            time: rfc3339(r.get(0)?),
                            actor: r.get(1)?,
                            op: r.get(2)?,
                            stage: r.get(3)?,
                            group: r.get(4)?,
                            user: r.get(5)?,
                            provenance: r.get(6)?,
                            cause: r.get(7)?,
                            detail: r.get(8)?,
                        },
                    ))
                },
            )
            .map_err(|e| self.err(e))?;
        let mut found: Vec<(i64, AuditRecord)> =
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        let next = match limit {
            Some(n) if found.len() > n as usize => {
                found.truncate(n as usize);
                found.last().map(|(id, _)| *id)
            }
            _ => None,
        };
        Ok((found.into_iter().map(|(_, r)| r).collect(), next))
    }

    /// The last run that read `idp`, if any.
    pub fn last_run(&self, idp: &IdpName) -> Result<Option<IdpRun>, StateError> {
        self.conn
            .query_row(
                "SELECT r.id, r.started_at, r.finished_at, i.outcome, i.adds, i.removes, i.detail, i.error_kind,
                        (SELECT i2.skipped_users FROM run_idps i2 JOIN runs r2 ON r2.id = i2.run_id
                         WHERE i2.idp = i.idp AND i2.skipped_users IS NOT NULL ORDER BY r2.rowid DESC LIMIT 1)
                 FROM run_idps i JOIN runs r ON r.id = i.run_id
                 WHERE i.idp = ?1 ORDER BY r.rowid DESC LIMIT 1",
                [idp.as_str()],
                |r| {
                    Ok(IdpRun {
                        run_id: r.get(0)?,
                        started_at: r.get(1)?,
                        finished_at: r.get(2)?,
                        outcome: r.get(3)?,
                        adds: r.get::<_, i64>(4)? as u64,
                        removes: r.get::<_, i64>(5)? as u64,
                        detail: r.get(6)?,
                        error_kind: r.get(7)?,
                        skipped_users: r.get::<_, Option<i64>>(8)?.map(|n| n as u64),
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Journal entries not done: (pending — waiting, sent without an answer yet, or waiting for
    /// the store to know the user — and failed) counts.
    pub fn journal_depth(&self) -> Result<(u64, u64), StateError> {
        self.conn
            .query_row(
                "SELECT count(*) FILTER (WHERE status IN ('pending', 'sending', 'unresolved')), count(*) FILTER (WHERE status = 'failed') FROM journal",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(|e| self.err(e))
    }

    /// Journal entries a store rejected permanently (`failed`), oldest first.
    pub fn journal_failed(&self) -> Result<Vec<JournalEntry>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT j.id, j.run_id, j.op, g.stage, g.name, u.key, s.provenance, j.status, j.attempts, j.error, j.updated_at
                 FROM journal j LEFT JOIN groups g ON g.id = j.group_id LEFT JOIN users u ON u.id = j.user_id
                 LEFT JOIN sources s ON s.id = j.source WHERE j.status = 'failed' ORDER BY j.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(JournalEntry {
                    id: r.get(0)?,
                    run_id: r.get(1)?,
                    op: r.get(2)?,
                    stage: r.get(3)?,
                    group: r.get(4)?,
                    user: r.get(5)?,
                    provenance: r.get(6)?,
                    status: r.get(7)?,
                    attempts: r.get(8)?,
                    error: r.get(9)?,
                    updated: rfc3339(r.get(10)?),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Records a change a store rejected permanently (used by remote stores).
    #[allow(clippy::too_many_arguments)]
    pub fn journal_record_failed(
        &mut self,
        run_id: &str,
        op: &str,
        group_id: i64,
        user_id: i64,
        source: i64,
        cause: Option<&str>,
        error: &str,
    ) -> Result<i64, StateError> {
        let now = unix_now();
        self.conn
            .execute(
                "INSERT INTO journal (run_id, created_at, updated_at, op, group_id, user_id, source, cause, status, attempts, error)
                 VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, 'failed', 1, ?8)",
                params![run_id, now, op, group_id, user_id, source, cause, error],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Marks failed entry `id` `pending` (retried by the next run) or `dropped`, auditing the decision.
    pub fn journal_resolve(&mut self, id: i64, retry: bool, actor: &str) -> Result<(), StateError> {
        let status = if retry { "pending" } else { "dropped" };
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let row: Option<(i64, i64, i64)> = tx
            .query_row(
                "SELECT group_id, user_id, source FROM journal WHERE id = ?1 AND status = 'failed'",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(err)?;
        let Some((group, user, source)) = row else {
            return Err(StateError::Invalid(format!("no failed journal entry {id}")));
        };
        tx.execute(
            "UPDATE journal SET status = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, status, unix_now()],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO audit (at, actor, op, group_id, user_id, source, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![unix_now(), actor, format!("journal.{}", if retry { "retry" } else { "drop" }), group, user, source, format!("entry {id}")],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Writes a consistent copy of the state to `target` with SQLite's online backup.
    pub fn backup_to(&self, target: &Path) -> Result<(), StateError> {
        self.conn
            .backup(
                rusqlite::MAIN_DB,
                target,
                None::<fn(rusqlite::backup::Progress)>,
            )
            .map_err(|e| self.err(e))
    }
}

/// What an IdP's last applied read was, for the unchanged-read shortcut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRead {
    /// The source's fingerprint of that read.
    pub fingerprint: String,
    /// The configuration fingerprint it was applied under.
    pub config: String,
    /// The state generation after the run that applied it.
    pub generation: i64,
    /// Its inactive mappings, as the reconcile document lists them (JSON array).
    pub inactive: String,
    /// Users it skipped for lack of a key.
    pub skipped_users: u64,
}

impl State {
    /// The last applied read of `idp`, if one was recorded.
    pub fn stored_read(&self, idp: &IdpName) -> Result<Option<StoredRead>, StateError> {
        self.conn
            .query_row(
                "SELECT r.fingerprint, r.config, r.generation, r.inactive, r.skipped_users
                 FROM idp_reads r JOIN sources s ON s.id = r.source WHERE s.provenance = ?1",
                [format!("idp:{idp}")],
                |r| {
                    Ok(StoredRead {
                        fingerprint: r.get(0)?,
                        config: r.get(1)?,
                        generation: r.get(2)?,
                        inactive: r.get(3)?,
                        skipped_users: r.get::<_, i64>(4)? as u64,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}
