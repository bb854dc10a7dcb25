//! The run history, newest first, a page at a time (`GET /v1/admin/runs`, the console's Runs page),
//! and one run by id (`GET /v1/admin/runs/{id}`).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{State, StateError, rfc3339};

/// One run and what it did per IdP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunSummary {
    /// The run id.
    pub run_id: String,
    /// Who started it: `service`, `cli:<user>`, `api`.
    pub actor: String,
    /// When it started, RFC 3339 UTC.
    pub started: String,
    /// When it finished, if it did.
    pub finished: Option<String>,
    /// `running`, `applied`, `unchanged`, `refused`, `failed`, `interrupted`, ….
    pub outcome: String,
    /// Memberships added.
    pub adds: u64,
    /// Memberships removed.
    pub removes: u64,
    /// Each IdP of the run.
    pub idps: Vec<RunIdp>,
}

/// What one IdP did in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunIdp {
    /// The IdP.
    pub idp: String,
    /// Its outcome.
    pub outcome: String,
    /// Adds applied.
    pub adds: u64,
    /// Removes applied.
    pub removes: u64,
    /// Why it failed, was refused or interrupted.
    pub detail: Option<String>,
}

/// A page of runs and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPage {
    /// Newest first.
    pub runs: Vec<RunSummary>,
    /// Pass as `before` for the next page; `None` on the last.
    pub next: Option<i64>,
}

const RUN_COLUMNS: &str = "rowid, id, actor, started_at, finished_at, outcome, adds, removes";

impl State {
    /// Up to `limit` runs older than cursor `before` (all when `None`), newest first.
    pub fn runs_page(&self, limit: u32, before: Option<i64>) -> Result<RunPage, StateError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE rowid < ?1 ORDER BY rowid DESC LIMIT ?2"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![before.unwrap_or(i64::MAX), i64::from(limit) + 1],
                run_row,
            )
            .map_err(|e| self.err(e))?;
        let mut found: Vec<(i64, RunSummary)> =
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        let next = if found.len() > limit as usize {
            found.truncate(limit as usize);
            found.last().map(|(rowid, _)| *rowid)
        } else {
            None
        };
        let mut runs = Vec::with_capacity(found.len());
        for (_, mut run) in found {
            run.idps = self.run_idps(&run.run_id)?;
            runs.push(run);
        }
        Ok(RunPage { runs, next })
    }

    /// The run `id`, if there is one.
    pub fn run_summary(&self, id: &str) -> Result<Option<RunSummary>, StateError> {
        let found = self
            .conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [id],
                run_row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match found {
            Some((_, mut run)) => {
                run.idps = self.run_idps(&run.run_id)?;
                Ok(Some(run))
            }
            None => Ok(None),
        }
    }

    fn run_idps(&self, run_id: &str) -> Result<Vec<RunIdp>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT idp, outcome, adds, removes, detail FROM run_idps WHERE run_id = ?1 ORDER BY idp",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok(RunIdp {
                    idp: r.get(0)?,
                    outcome: r.get(1)?,
                    adds: r.get::<_, i64>(2)? as u64,
                    removes: r.get::<_, i64>(3)? as u64,
                    detail: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, RunSummary)> {
    Ok((
        r.get(0)?,
        RunSummary {
            run_id: r.get(1)?,
            actor: r.get(2)?,
            started: rfc3339(r.get(3)?),
            finished: r.get::<_, Option<i64>>(4)?.map(rfc3339),
            outcome: r.get(5)?,
            adds: r.get::<_, i64>(6)? as u64,
            removes: r.get::<_, i64>(7)? as u64,
            idps: Vec::new(),
        },
    ))
}
