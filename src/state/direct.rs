//! Direct memberships as an administrator edits them: several adds and removes of one group in one
//! transaction, so a request that fails part-way writes nothing (`groups add-user|remove-user`,
//! `PATCH /v1/admin/groups/{stage}/{name}/users`, the console's Users tab).

use rusqlite::{OptionalExtension, Transaction, params};

use super::apply::{ChangeOp, apply_direct};
use super::{State, StateError};
use crate::model::{GroupName, Provenance, Stage, UserKey};

/// What [`State::edit_direct`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectEdit {
    /// Users given the `direct` provenance.
    pub added: Vec<String>,
    /// Users asked to be added who already had it.
    pub already: Vec<String>,
    /// Users whose `direct` provenance was removed, with the provenances that still hold their
    /// membership (an IdP's), so they keep access.
    pub removed: Vec<(String, Vec<Provenance>)>,
}

impl State {
    /// Adds `adds` to and removes `removes` from group (`stage`, `name`) with the `direct`
    /// provenance, through the checked apply, in one transaction: removing a user who is not a
    /// direct member refuses the whole edit.
    pub fn edit_direct(
        &mut self,
        stage: &Stage,
        name: &GroupName,
        adds: &[UserKey],
        removes: &[UserKey],
        actor: &str,
    ) -> Result<DirectEdit, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let (id, group): (i64, String) = tx
            .query_row(
                "SELECT id, name FROM groups WHERE stage = ?1 AND norm = ?2",
                params![stage.as_str(), name.norm()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(err)?
            .ok_or_else(|| {
                StateError::Invalid(format!("no group {:?} in stage {stage}", name.as_str()))
            })?;
        let mut done = DirectEdit::default();
        for user in adds {
            let applied =
                apply_direct(&tx, actor, stage, ChangeOp::Add, id, user.as_str()).map_err(err)?;
            if applied.adds > 0 {
                done.added.push(user.to_string());
            } else {
                done.already.push(user.to_string());
            }
        }
        for user in removes {
            let applied = apply_direct(&tx, actor, stage, ChangeOp::Remove, id, user.as_str())
                .map_err(err)?;
            if applied.removes == 0 {
                return Err(StateError::Invalid(format!(
                    "{user} is not a direct member of {group:?} in stage {stage}"
                )));
            }
            let remaining = remaining_provenances(&tx, id, user).map_err(err)?;
            done.removed.push((user.to_string(), remaining));
        }
        if !done.added.is_empty() || !done.removed.is_empty() {
            super::bump_generation(&tx).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(done)
    }
}

/// The provenances that hold `user`'s membership of group `id`, sorted.
fn remaining_provenances(
    tx: &Transaction<'_>,
    id: i64,
    user: &UserKey,
) -> rusqlite::Result<Vec<Provenance>> {
    let mut stmt = tx.prepare(
        "SELECT s.provenance FROM memberships m JOIN sources s ON s.id = m.source
         JOIN users u ON u.id = m.user_id WHERE m.group_id = ?1 AND u.key = ?2",
    )?;
    let rows = stmt.query_map(params![id, user.as_str()], |r| r.get::<_, String>(0))?;
    let mut list = Vec::new();
    for row in rows {
        // Provenances in the state were written from parsed values.
        if let Ok(provenance) = Provenance::parse(&row?) {
            list.push(provenance);
        }
    }
    list.sort();
    Ok(list)
}
