//! Changes dropped at commit (SPEC §1 invariant 10): which groups of a batch would drop their
//! changes, checked against the rows as they are now, and the audit record of a drop.

use rusqlite::{OptionalExtension, Transaction, params};
use rustc_hash::FxHashMap as HashMap;

use super::apply::ChangeOp;
use crate::model::{Provenance, Stage};

/// Why a change was dropped at commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The group was deleted after the change was planned.
    GroupDeleted,
    /// The group's stage is not among the stages the batch may write.
    StageNotServed,
}

impl DropReason {
    /// The reason in words, for the audit log and the run output.
    pub fn describe(self) -> &'static str {
        match self {
            DropReason::GroupDeleted => "the group was deleted after the change was planned",
            DropReason::StageNotServed => "the group's stage is no longer served",
        }
    }
}

/// A change dropped at commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Add or remove.
    pub op: ChangeOp,
    /// The group's row id.
    pub group: i64,
    /// The user key.
    pub user: String,
    /// Why.
    pub reason: DropReason,
}

/// Why each of `groups` would drop its changes, checked against the rows now (groups that would
/// not are left out).
pub(super) fn check_groups(
    tx: &Transaction<'_>,
    served: &[Stage],
    groups: impl Iterator<Item = i64>,
) -> rusqlite::Result<HashMap<i64, DropReason>> {
    let mut stage_of = tx.prepare_cached("SELECT stage FROM groups WHERE id = ?1")?;
    let mut seen: HashMap<i64, Option<DropReason>> = HashMap::default();
    for group in groups {
        if seen.contains_key(&group) {
            continue;
        }
        let stage: Option<String> = stage_of.query_row([group], |r| r.get(0)).optional()?;
        let verdict = match stage {
            None => Some(DropReason::GroupDeleted),
            Some(stage) if !served.iter().any(|s| s.as_str() == stage) => {
                Some(DropReason::StageNotServed)
            }
            Some(_) => None,
        };
        seen.insert(group, verdict);
    }
    Ok(seen
        .into_iter()
        .filter_map(|(group, verdict)| verdict.map(|v| (group, v)))
        .collect())
}

/// Who dropped a change and under what, for its audit record.
pub(super) struct DropContext<'a> {
    pub(super) now: i64,
    pub(super) actor: i64,
    pub(super) source: i64,
    pub(super) provenance: &'a Provenance,
}

/// Audits `dropped` as a `drop` record (`user` is the user's row id, when known) and returns it.
pub(super) fn audit_drop(
    tx: &Transaction<'_>,
    context: &DropContext<'_>,
    dropped: Dropped,
    user: Option<i64>,
    cause: Option<i64>,
) -> rusqlite::Result<Dropped> {
    let detail = format!(
        "{} of {} for {} dropped at commit: {}",
        dropped.op.as_str(),
        context.provenance,
        dropped.user,
        dropped.reason.describe()
    );
    tx.prepare_cached(
        "INSERT INTO audit_log (at, actor, op, group_id, user_id, source, cause, detail) VALUES (?1, ?2, 'drop', ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        context.now,
        context.actor,
        dropped.group,
        user,
        context.source,
        cause,
        detail
    ])?;
    Ok(dropped)
}
