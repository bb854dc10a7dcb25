//! The run history: a run's row (written first, closed last), what happened to each IdP in it, the
//! unresolved refusal of each IdP, and closing the rows of runs that died.
//!
//! A run's row is written before anything is applied and closed after, so every applied change
//! belongs to a run; a process killed in between leaves its row `running`, and the next run that
//! holds one of its IdPs' run locks — which the dead run held until it died — closes it as
//! `interrupted`.

use rusqlite::{OptionalExtension, params};

use super::{State, StateError, unix_now};
use crate::model::{Failure, IdpName, RunOutcome};

/// The end of a run, for the run history.
#[derive(Debug, Clone)]
pub struct RunRecord<'a> {
    /// The run id.
    pub run_id: &'a str,
    /// How the run as a whole ended.
    pub outcome: RunOutcome,
    /// The run's summary (stored as JSON; the full document is printed, not stored).
    pub summary: &'a crate::report::Summary,
}

/// What happened to an IdP that a run did not apply.
#[derive(Debug, Clone, Copy)]
pub enum NotApplied<'a> {
    /// Found as at its last applied read; its refusal, if any, is resolved.
    Unchanged {
        /// Users that read skipped for lack of a key.
        skipped_users: u64,
    },
    /// A guard withheld its changes; the refusal stays in `status` until a run applies the IdP.
    Refused(&'a Refusal<'a>),
    /// It failed to read or to apply.
    Failed(&'a Failure),
    /// A stop left it unapplied.
    Interrupted(&'a str),
}

/// A refusal as the run history keeps it.
#[derive(Debug, Clone, Copy)]
pub struct Refusal<'a> {
    /// `empty` or `removals`.
    pub guard: &'a str,
    /// Why, in words.
    pub detail: &'a str,
    /// The exact command that lets it through.
    pub allow: &'a str,
    /// Users the refused read skipped for lack of a key.
    pub skipped_users: u64,
}

/// The unresolved refusal of an IdP, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRefusal {
    /// The run that was refused last.
    pub run_id: String,
    /// `empty` or `removals`.
    pub guard: String,
    /// Why, in words.
    pub detail: String,
    /// The exact command that lets it through.
    pub allow: String,
}

impl State {
    /// Records the start of a run before it writes anything; `idps` are those whose run locks it
    /// holds. Re-opens the row of a saved plan's earlier apply that died or failed before its
    /// commit (a plan applies at most once: a committed one is stale and refused before this).
    pub fn begin_run(
        &mut self,
        run_id: &str,
        actor: &str,
        idps: &[IdpName],
    ) -> Result<(), StateError> {
        let idps: Vec<&str> = idps.iter().map(IdpName::as_str).collect();
        self.conn
            .execute(
                "INSERT INTO runs (id, actor, started_at, outcome, idps) VALUES (?1, ?2, ?3, 'running', ?4)
                 ON CONFLICT (id) DO UPDATE SET actor = excluded.actor, started_at = excluded.started_at,
                     outcome = 'running', finished_at = NULL, idps = excluded.idps
                 WHERE runs.outcome IN ('running', 'interrupted', 'failed')",
                params![run_id, actor, unix_now(), idps.join(" ")],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Closes as `interrupted` the runs left `running` that held one of `held`'s run locks: the
    /// caller holds those locks now, so their runs are dead. Returns how many were closed.
    pub fn close_abandoned_runs(&mut self, held: &[IdpName]) -> Result<u64, StateError> {
        if held.is_empty() {
            return Ok(0);
        }
        let running: Vec<(String, String)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id, idps FROM runs WHERE outcome = 'running'")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let mut closed = 0;
        for (id, idps) in running {
            if idps
                .split(' ')
                .any(|n| held.iter().any(|h| h.as_str() == n))
            {
                closed += self.close_interrupted(&id, &idps)?;
            }
        }
        Ok(closed)
    }

    /// Closes run `id` (holding the locks of the space-separated `idps`) as `interrupted`, and
    /// records each of its IdPs that has no outcome yet as interrupted too; 1 if it was open.
    fn close_interrupted(&mut self, id: &str, idps: &str) -> Result<u64, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let closed = tx
            .execute(
                "UPDATE runs SET outcome = 'interrupted', finished_at = ?2 WHERE id = ?1 AND outcome = 'running'",
                params![id, unix_now()],
            )
            .map_err(err)?;
        for idp in idps.split(' ').filter(|n| !n.is_empty()) {
            tx.execute(
                "INSERT OR IGNORE INTO run_idps (run_id, idp, outcome, adds, removes, detail)
                 VALUES (?1, ?2, 'interrupted', 0, 0, 'interrupted: the process ended before this IdP was applied; the next run plans it again')",
                params![id, idp],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(closed as u64)
    }

    /// Closes the runs `actor` left open (the service at start: the process died or was killed
    /// mid-run) as `interrupted`; returns how many. Their applied IdPs committed whole; the others
    /// applied nothing, and the next run plans what is left.
    pub fn close_interrupted_runs(&mut self, actor: &str) -> Result<u64, StateError> {
        let running: Vec<(String, String)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id, idps FROM runs WHERE outcome = 'running' AND actor = ?1")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([actor], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let mut closed = 0;
        for (id, idps) in running {
            closed += self.close_interrupted(&id, &idps)?;
        }
        Ok(closed)
    }

    /// Records the end of a run.
    pub fn finish_run(&mut self, record: &RunRecord<'_>) -> Result<(), StateError> {
        let summary = record.summary;
        self.conn
            .execute(
                "UPDATE runs SET finished_at = ?2, outcome = ?3, adds = ?4, removes = ?5, report = ?6 WHERE id = ?1",
                params![
                    record.run_id,
                    unix_now(),
                    record.outcome.as_str(),
                    summary.adds as i64,
                    summary.removes as i64,
                    serde_json::to_string(summary).expect("the summary serialises")
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records what happened to an IdP a run did not apply (an applied IdP's row commits with its
    /// changes): a refusal also becomes the IdP's unresolved refusal; finding the IdP unchanged
    /// resolves it, as an applied run does.
    pub fn record_not_applied(
        &mut self,
        run_id: &str,
        idp: &IdpName,
        what: NotApplied<'_>,
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let (outcome, detail, kind, skipped, refusal) = match what {
            NotApplied::Unchanged { skipped_users } => {
                (RunOutcome::Unchanged, "", None, Some(skipped_users), None)
            }
            NotApplied::Refused(r) => (
                RunOutcome::Refused,
                r.detail,
                None,
                Some(r.skipped_users),
                Some(r),
            ),
            NotApplied::Failed(f) => (
                RunOutcome::Failed,
                f.message.as_str(),
                Some(f.kind.as_str()),
                None,
                None,
            ),
            NotApplied::Interrupted(detail) => (RunOutcome::Interrupted, detail, None, None, None),
        };
        tx.execute(
            "INSERT OR REPLACE INTO run_idps (run_id, idp, outcome, adds, removes, detail, guard, allow, error_kind, skipped_users)
             VALUES (?1, ?2, ?3, 0, 0, ?4, ?5, ?6, ?7, ?8)",
            params![
                run_id,
                idp.as_str(),
                outcome.as_str(),
                detail,
                refusal.map(|r| r.guard),
                refusal.map(|r| r.allow),
                kind,
                skipped.map(|n| n as i64)
            ],
        )
        .map_err(err)?;
        match what {
            NotApplied::Refused(r) => {
                tx.execute(
                    "INSERT OR REPLACE INTO refusals (idp, run_id, guard, detail, allow) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![idp.as_str(), run_id, r.guard, r.detail, r.allow],
                )
                .map_err(err)?;
            }
            NotApplied::Unchanged { .. } => {
                tx.execute("DELETE FROM refusals WHERE idp = ?1", [idp.as_str()])
                    .map_err(err)?;
            }
            NotApplied::Failed(_) | NotApplied::Interrupted(_) => {}
        }
        tx.commit().map_err(err)
    }

    /// The unresolved refusal of `idp`, if any.
    pub fn pending_refusal(&self, idp: &IdpName) -> Result<Option<PendingRefusal>, StateError> {
        self.conn
            .query_row(
                "SELECT run_id, guard, detail, allow FROM refusals WHERE idp = ?1",
                [idp.as_str()],
                |r| {
                    Ok(PendingRefusal {
                        run_id: r.get(0)?,
                        guard: r.get(1)?,
                        detail: r.get(2)?,
                        allow: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
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
