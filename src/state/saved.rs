//! Applying a saved plan (`apply PLAN.json`) through the checked apply: all its IdPs in one
//! transaction, only while the state is still at the generation the plan was made at.

use rusqlite::{OptionalExtension, Transaction, params};

use super::apply::{Applied, Batch, MembershipChange, apply_in};
use super::{State, StateError};
use crate::config::DeclaredGroup;

impl State {
    /// Applies a saved plan's batches in one transaction, only if the state is still at
    /// `generation` (else refused, nothing written): declared groups first, then each batch, its
    /// groups named by (stage, name) and resolved here. Always moves the generation, so a plan
    /// applies at most once.
    pub fn apply_plan(
        &mut self,
        generation: i64,
        declared: &[DeclaredGroup],
        actor: &str,
        parts: &[PlanPart<'_>],
    ) -> Result<Applied, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let now = super::generation_in(&tx).map_err(err)?;
        if now != generation {
            return Err(stale(generation, now));
        }
        super::groups::declared_in(&tx, declared, actor).map_err(err)?;
        let mut total = Applied::default();
        for part in parts {
            let adds = resolve_names(&tx, &part.adds).map_err(|e| e.within(&path))?;
            let removes = resolve_names(&tx, &part.removes).map_err(|e| e.within(&path))?;
            let batch = Batch {
                adds: &adds,
                removes: &removes,
                ..part.batch
            };
            let applied = apply_in(&tx, &batch).map_err(err)?;
            total.adds += applied.adds;
            total.removes += applied.removes;
            total.dropped.extend(applied.dropped);
        }
        super::bump_generation(&tx).map_err(err)?;
        crate::failpoint!("apply::in_tx");
        tx.commit().map_err(err)?;
        Ok(total)
    }
}

/// The refusal of a stale saved plan.
pub fn stale(then: i64, now: i64) -> StateError {
    StateError::Refused(format!(
        "memberships, roles or groups changed since the plan was made (state generation {then} then, {now} now); make a new plan"
    ))
}

/// One IdP's part of a saved plan: its batch (whose `adds` and `removes` are ignored) and its
/// changes with groups named as the plan file names them.
pub struct PlanPart<'a> {
    /// Actor, provenance, served stages and run part.
    pub batch: Batch<'a>,
    /// Adds: (stage, group name, user key, cause).
    pub adds: Vec<NamedChange<'a>>,
    /// Removes, likewise.
    pub removes: Vec<NamedChange<'a>>,
}

/// A change of a saved plan: (stage, group name, user key, cause).
pub type NamedChange<'a> = (&'a str, &'a str, &'a str, &'a str);

/// Group ids of a saved plan's changes. The plan's generation still holds, so every group it names
/// exists under that name; one that does not means a plan edited by hand, which is refused.
fn resolve_names<'a>(
    tx: &Transaction<'_>,
    list: &[NamedChange<'a>],
) -> Result<Vec<MembershipChange<'a>>, ResolveError> {
    let mut find = tx.prepare_cached("SELECT id FROM groups WHERE stage = ?1 AND norm = ?2")?;
    let mut out = Vec::with_capacity(list.len());
    for &(stage, group, user, cause) in list {
        let norm = crate::model::normalise_group_name(group);
        let id: Option<i64> = find
            .query_row(params![stage, norm], |r| r.get(0))
            .optional()?;
        let id = id.ok_or_else(|| {
            ResolveError::Gone(format!(
                "the plan names group {group:?} in stage {stage}, which does not exist; make a new plan"
            ))
        })?;
        out.push(MembershipChange {
            group: id,
            user,
            cause,
        });
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
