//! Administrator edits of the embedded store: rename, describe, roles, delete.
//!
//! Each edit is one short transaction that audits what it changed with the caller's actor and bumps
//! the state generation. Rules that need the configuration (declared groups, the role catalogue) are
//! checked by the caller; the rules of the store itself (unique names per stage, members on delete)
//! are checked here, inside the transaction.

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, Transaction, params};

use super::apply::{Batch, MembershipChange, apply_in};
use super::{DIRECT_SOURCE, State, StateError, unix_now};
use crate::model::{GroupName, Provenance, Role, Stage};

/// A member of a deleted group and the roles it lost (those no other group of the stage grants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostRoles {
    /// The user key.
    pub user: String,
    /// Roles the user no longer has in the stage.
    pub roles: Vec<String>,
}

fn group_id(
    tx: &Transaction<'_>,
    stage: &Stage,
    name: &GroupName,
) -> Result<(i64, String), StateError> {
    tx.query_row(
        "SELECT id, name FROM groups WHERE stage = ?1 AND norm = ?2",
        params![stage.as_str(), name.norm()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(|e| StateError::Invalid(e.to_string()))?
    .ok_or_else(|| StateError::Invalid(format!("no group {:?} in stage {stage}", name.as_str())))
}

fn audit(
    tx: &Transaction<'_>,
    actor: &str,
    op: &str,
    group: i64,
    user: Option<i64>,
    detail: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (at, actor, op, group_id, user_id, source, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![unix_now(), actor, op, group, user, user.map(|_| DIRECT_SOURCE), detail],
    )?;
    Ok(())
}

impl State {
    /// Renames a group and/or changes its description; the stage never changes.
    pub fn update_group(
        &mut self,
        stage: &Stage,
        name: &GroupName,
        rename: Option<&GroupName>,
        description: Option<&str>,
        actor: &str,
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let (id, old_name) = group_id(&tx, stage, name)?;
        if let Some(new) = rename {
            let clash: Option<String> = tx
                .query_row(
                    "SELECT name FROM groups WHERE stage = ?1 AND norm = ?2 AND id != ?3",
                    params![stage.as_str(), new.norm(), id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            if let Some(clash) = clash {
                return Err(StateError::Invalid(format!(
                    "group {clash:?} already exists in stage {stage}"
                )));
            }
            tx.execute(
                "UPDATE groups SET name = ?2, norm = ?3 WHERE id = ?1",
                params![id, new.as_str(), new.norm()],
            )
            .map_err(err)?;
            // Mappings follow the group: its old name stays a former name of it (unless only the
            // case changed), and the new one is taken over if another group had it before.
            super::groups::take_over_former_name(&tx, stage.as_str(), new.norm()).map_err(err)?;
            let old_norm = crate::model::normalise_group_name(&old_name);
            if old_norm != new.norm() {
                tx.execute(
                    "INSERT OR REPLACE INTO former_names (stage, norm, name, group_id, renamed_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![stage.as_str(), old_norm, old_name, id, unix_now()],
                )
                .map_err(err)?;
            }
            audit(
                &tx,
                actor,
                "group.rename",
                id,
                None,
                &format!("{old_name} -> {new}"),
            )
            .map_err(err)?;
        }
        if let Some(description) = description {
            tx.execute(
                "UPDATE groups SET description = ?2 WHERE id = ?1",
                params![id, description],
            )
            .map_err(err)?;
            audit(&tx, actor, "group.describe", id, None, description).map_err(err)?;
        }
        super::bump_generation(&tx).map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Adds and removes roles of a group; returns its roles afterwards.
    pub fn edit_roles(
        &mut self,
        stage: &Stage,
        name: &GroupName,
        add: &[Role],
        remove: &[Role],
        actor: &str,
    ) -> Result<Vec<String>, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let (id, _) = group_id(&tx, stage, name)?;
        for role in add {
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO group_roles (group_id, role) VALUES (?1, ?2)",
                    params![id, role.to_string()],
                )
                .map_err(err)?;
            if n == 1 {
                audit(&tx, actor, "role.add", id, None, &role.to_string()).map_err(err)?;
            }
        }
        for role in remove {
            let n = tx
                .execute(
                    "DELETE FROM group_roles WHERE group_id = ?1 AND role = ?2",
                    params![id, role.to_string()],
                )
                .map_err(err)?;
            if n == 1 {
                audit(&tx, actor, "role.remove", id, None, &role.to_string()).map_err(err)?;
            }
        }
        let roles: Vec<String> = {
            let mut stmt = tx
                .prepare("SELECT role FROM group_roles WHERE group_id = ?1 ORDER BY role")
                .map_err(err)?;
            let rows = stmt.query_map([id], |r| r.get(0)).map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        super::bump_generation(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(roles)
    }

    /// What deleting group (`stage`, `name`) would take: each member and the roles it would lose
    /// (those no other group of the stage grants). Writes nothing.
    pub fn delete_preview(
        &self,
        stage: &Stage,
        name: &GroupName,
    ) -> Result<Vec<LostRoles>, StateError> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM groups WHERE stage = ?1 AND norm = ?2",
                params![stage.as_str(), name.norm()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match id {
            Some(id) => lost_roles(&self.conn, stage, id).map_err(|e| self.err(e)),
            None => Ok(Vec::new()),
        }
    }

    /// Deletes a group. With members it is refused unless `remove_members`; then every membership
    /// goes too, and the result says which users lost which roles in the stage.
    pub fn delete_group(
        &mut self,
        stage: &Stage,
        name: &GroupName,
        remove_members: bool,
        actor: &str,
    ) -> Result<Vec<LostRoles>, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let (id, group) = group_id(&tx, stage, name)?;
        let lost = lost_roles(&tx, stage, id).map_err(err)?;
        if !lost.is_empty() && !remove_members {
            // The caller said who would lose what (`delete_preview`); members joined since.
            return Err(StateError::Refused(format!(
                "group {group:?} in stage {stage} has {} members now; delete it with its members removed, or look again",
                lost.len()
            )));
        }
        // Every membership goes through the checked apply, one provenance at a time, audited as
        // removed because the group was deleted.
        let members: Vec<(String, String, String)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT s.provenance, u.key, coalesce(c.idp_group, '') FROM memberships m
                     JOIN users u ON u.id = m.user_id JOIN sources s ON s.id = m.source
                     LEFT JOIN causes c ON c.id = m.cause
                     WHERE m.group_id = ?1 ORDER BY s.provenance, u.key",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        for chunk in members.chunk_by(|a, b| a.0 == b.0) {
            let provenance =
                Provenance::parse(&chunk[0].0).map_err(|e| StateError::Invalid(e.0))?;
            // The removal is audited with the cause recorded at the add.
            let removes: Vec<MembershipChange<'_>> = chunk
                .iter()
                .map(|(_, user, cause)| MembershipChange {
                    group: id,
                    user,
                    cause,
                })
                .collect();
            apply_in(
                &tx,
                &Batch {
                    actor,
                    provenance: &provenance,
                    adds: &[],
                    removes: &removes,
                    served: std::slice::from_ref(stage),
                    detail: Some("group deleted"),
                    run: None,
                    progress: None,
                },
            )
            .map_err(err)?;
        }
        tx.execute("DELETE FROM group_roles WHERE group_id = ?1", [id])
            .map_err(err)?;
        tx.execute(
            "INSERT OR REPLACE INTO deleted_groups (id, stage, name, norm, deleted_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, stage.as_str(), group, crate::model::normalise_group_name(&group), unix_now()],
        )
        .map_err(err)?;
        tx.execute("DELETE FROM groups WHERE id = ?1", [id])
            .map_err(err)?;
        audit(&tx, actor, "group.delete", id, None, "").map_err(err)?;
        super::bump_generation(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(lost)
    }
}

/// For each member of group `id`: the roles of the group no other group of the stage gives them.
fn lost_roles(
    tx: &rusqlite::Connection,
    stage: &Stage,
    id: i64,
) -> rusqlite::Result<Vec<LostRoles>> {
    let mut stmt = tx.prepare(
        "SELECT DISTINCT u.id, u.key FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.group_id = ?1 ORDER BY u.key",
    )?;
    let members: Vec<(i64, String)> = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut stmt = tx.prepare("SELECT role FROM group_roles WHERE group_id = ?1")?;
    let roles: BTreeSet<String> = stmt
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut others = tx.prepare(
        "SELECT DISTINCT r.role FROM memberships m JOIN groups g ON g.id = m.group_id JOIN group_roles r ON r.group_id = g.id
         WHERE m.user_id = ?1 AND g.stage = ?2 AND g.id != ?3",
    )?;
    let mut out = Vec::new();
    for (user, key) in members {
        let still: BTreeSet<String> = others
            .query_map(params![user, stage.as_str(), id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let lost: Vec<String> = roles.difference(&still).cloned().collect();
        out.push(LostRoles {
            user: key,
            roles: lost,
        });
    }
    Ok(out)
}
