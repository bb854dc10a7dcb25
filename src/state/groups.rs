//! Groups, roles and memberships of the embedded store: declared groups, direct edits and views.
//!
//! The views here are what `groups list`, `groups show` and `users show` print; the edits are the
//! library functions administration commands are thin layers over. Every edit is a short
//! transaction and is audited with its actor.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{OptionalExtension, params};

use super::apply::{ChangeOp, apply_direct};
use super::user_rows::{RowNames, user_memberships_of};
use super::{State, StateError, unix_now};
use crate::config::DeclaredGroup;
use crate::model::{GroupName, Provenance, Role, Stage, UserKey};

/// A group as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    /// Its row id.
    pub id: i64,
    /// Its name as shown.
    pub name: String,
    /// Its stage.
    pub stage: String,
    /// Its description.
    pub description: String,
    /// Its roles, sorted.
    pub roles: Vec<String>,
    /// Users with at least one provenance.
    pub member_count: u64,
}

/// A member of a group with the provenances that hold it, `direct` first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The user key.
    pub user: String,
    /// Its provenances, in display order.
    pub provenance: Vec<Provenance>,
}

/// One group a user belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMembership {
    /// The group's name.
    pub name: String,
    /// The group's stage.
    pub stage: String,
    /// Its provenances, in display order.
    pub provenance: Vec<Provenance>,
    /// The group's roles.
    pub roles: Vec<String>,
}

impl State {
    /// Creates missing declared groups and makes name case, description and roles match the config.
    /// Returns the number of groups created or changed.
    pub fn sync_declared(
        &mut self,
        groups: &[DeclaredGroup],
        actor: &str,
    ) -> Result<u64, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let changed = declared_in(&tx, groups, actor).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(changed)
    }

    /// Creates a group; refused when one of the same normalised name exists in the stage.
    pub fn create_group(
        &mut self,
        stage: &Stage,
        name: &GroupName,
        description: &str,
        roles: &BTreeSet<Role>,
        actor: &str,
    ) -> Result<i64, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let exists: Option<String> = tx
            .query_row(
                "SELECT name FROM groups WHERE stage = ?1 AND norm = ?2",
                params![stage.as_str(), name.norm()],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        if let Some(existing) = exists {
            return Err(StateError::Invalid(format!(
                "group {existing:?} already exists in stage {stage}"
            )));
        }
        let now = unix_now();
        tx.execute(
            "INSERT INTO groups (stage, name, norm, description, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![stage.as_str(), name.as_str(), name.norm(), description, now],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        take_over_former_name(&tx, stage.as_str(), name.norm()).map_err(err)?;
        for role in roles {
            tx.execute(
                "INSERT INTO group_roles (group_id, role) VALUES (?1, ?2)",
                params![id, role.to_string()],
            )
            .map_err(err)?;
        }
        tx.execute(
            "INSERT INTO audit (at, actor, op, group_id) VALUES (?1, ?2, 'group.create', ?3)",
            params![now, actor, id],
        )
        .map_err(err)?;
        super::bump_generation(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(id)
    }

    /// Adds `user` to a group with the `direct` provenance; `false` when it already had it.
    pub fn add_direct(
        &mut self,
        stage: &Stage,
        group: &GroupName,
        user: &UserKey,
        actor: &str,
    ) -> Result<bool, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let group_id: i64 = tx
            .query_row(
                "SELECT id FROM groups WHERE stage = ?1 AND norm = ?2",
                params![stage.as_str(), group.norm()],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?
            .ok_or_else(|| {
                StateError::Invalid(format!("no group {:?} in stage {stage}", group.as_str()))
            })?;
        let applied =
            apply_direct(&tx, actor, stage, ChangeOp::Add, group_id, user.as_str()).map_err(err)?;
        if applied.adds > 0 {
            super::bump_generation(&tx).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(applied.adds > 0)
    }

    /// Every group (optionally of one stage), sorted by stage then name.
    pub fn list_groups(&self, stage: Option<&Stage>) -> Result<Vec<GroupView>, StateError> {
        self.select_groups(stage, None)
    }

    /// The groups of `stage` (all when `None`) of normalised name `norm` (any when `None`),
    /// sorted by stage then name.
    fn select_groups(
        &self,
        stage: Option<&Stage>,
        norm: Option<&str>,
    ) -> Result<Vec<GroupView>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT g.id, g.name, g.stage, g.description,
                        (SELECT group_concat(role, char(10)) FROM (SELECT role FROM group_roles WHERE group_id = g.id ORDER BY role)),
                        (SELECT count(DISTINCT user_id) FROM memberships WHERE group_id = g.id)
                 FROM groups g WHERE (?1 IS NULL OR g.stage = ?1) AND (?2 IS NULL OR g.norm = ?2)",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params![stage.map(Stage::as_str), norm], |r| {
                let roles: Option<String> = r.get(4)?;
                Ok(GroupView {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    stage: r.get(2)?,
                    description: r.get(3)?,
                    roles: roles
                        .map(|s| s.split('\n').map(str::to_owned).collect())
                        .unwrap_or_default(),
                    member_count: r.get::<_, i64>(5)? as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        let mut groups: Vec<GroupView> = rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        groups.sort_by(|a, b| {
            (a.stage.as_bytes(), a.name.as_bytes()).cmp(&(b.stage.as_bytes(), b.name.as_bytes()))
        });
        Ok(groups)
    }

    /// The group of that (normalised) name in `stage`, if any.
    pub fn find_group(
        &self,
        stage: &Stage,
        name: &GroupName,
    ) -> Result<Option<GroupView>, StateError> {
        Ok(self
            .select_groups(Some(stage), Some(name.norm()))?
            .into_iter()
            .next())
    }

    /// The members of a group with their provenances, sorted by user key.
    pub fn group_members(&self, group_id: i64) -> Result<Vec<GroupMember>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT u.key, s.provenance FROM memberships m
                 JOIN users u ON u.id = m.user_id JOIN sources s ON s.id = m.source
                 WHERE m.group_id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([group_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut members: BTreeMap<String, Vec<Provenance>> = BTreeMap::new();
        for row in rows {
            let (user, provenance) = row.map_err(|e| self.err(e))?;
            let provenance =
                Provenance::parse(&provenance).map_err(|e| StateError::Invalid(e.0))?;
            members.entry(user).or_default().push(provenance);
        }
        Ok(members
            .into_iter()
            .map(|(user, mut provenance)| {
                provenance.sort();
                GroupMember { user, provenance }
            })
            .collect())
    }

    /// The groups `user` belongs to (optionally in one stage), with provenances and roles.
    pub fn user_memberships(
        &self,
        user: &UserKey,
        stage: Option<&Stage>,
    ) -> Result<Vec<UserMembership>, StateError> {
        let read = || -> rusqlite::Result<Vec<UserMembership>> {
            // One snapshot for the rows and the names behind them.
            let tx = self.conn.unchecked_transaction()?;
            let user_id: Option<i64> = tx
                .prepare_cached("SELECT id FROM users WHERE key = ?1")?
                .query_row([user.as_str()], |r| r.get(0))
                .optional()?;
            match user_id {
                Some(id) => {
                    let rows = RowNames::default().rows_in(&tx, id)?;
                    Ok(user_memberships_of(&rows, stage.map(Stage::as_str)))
                }
                None => Ok(Vec::new()),
            }
        };
        read().map_err(|e| self.err(e))
    }
}

/// Creates missing declared groups and aligns name case, description and roles, inside `tx`;
/// bumps the generation when anything changed. Returns the number of groups created or changed.
pub(super) fn declared_in(
    tx: &rusqlite::Transaction<'_>,
    groups: &[DeclaredGroup],
    actor: &str,
) -> rusqlite::Result<u64> {
    let now = unix_now();
    let mut changed = 0;
    for group in groups {
        // In the stored order (bytes, as `ORDER BY role` reads them back), which is not the order
        // of `Role` (by app, then role: `Dash/Viewer` before `Dash-Admin/Viewer`).
        let mut roles: Vec<String> = group.roles.iter().map(Role::to_string).collect();
        roles.sort_unstable();
        let found: Option<(i64, String, String)> = tx
            .prepare_cached(
                "SELECT id, name, description FROM groups WHERE stage = ?1 AND norm = ?2",
            )?
            .query_row(params![group.stage.as_str(), group.name.norm()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let (id, op) = match found {
            None => {
                tx.prepare_cached("INSERT INTO groups (stage, name, norm, description, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(params![group.stage.as_str(), group.name.as_str(), group.name.norm(), group.description, now])?;
                let id = tx.last_insert_rowid();
                take_over_former_name(tx, group.stage.as_str(), group.name.norm())?;
                (id, Some("group.create"))
            }
            Some((id, name, description)) => {
                let mut op = None;
                if name != group.name.as_str() || description != group.description {
                    tx.prepare_cached(
                        "UPDATE groups SET name = ?2, description = ?3 WHERE id = ?1",
                    )?
                    .execute(params![
                        id,
                        group.name.as_str(),
                        group.description
                    ])?;
                    op = Some("group.update");
                }
                (id, op)
            }
        };
        let stored: Vec<String> = {
            let mut stmt = tx
                .prepare_cached("SELECT role FROM group_roles WHERE group_id = ?1 ORDER BY role")?;
            let rows = stmt.query_map([id], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let op = if stored != roles {
            tx.prepare_cached("DELETE FROM group_roles WHERE group_id = ?1")?
                .execute([id])?;
            for role in &roles {
                tx.prepare_cached("INSERT INTO group_roles (group_id, role) VALUES (?1, ?2)")?
                    .execute(params![id, role])?;
            }
            op.or(Some("group.roles"))
        } else {
            op
        };
        if let Some(op) = op {
            changed += 1;
            tx.prepare_cached(
                "INSERT INTO audit (at, actor, op, group_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                now,
                actor,
                op,
                id,
                format!(
                    "declared at line {}; roles: {}",
                    group.line.unwrap_or(0),
                    roles.join(", ")
                )
            ])?;
        }
    }
    if changed > 0 {
        super::bump_generation(tx)?;
    }
    Ok(changed)
}

/// A group created with, or renamed to, a former name of another group takes that name over:
/// mappings that name it resolve to this group from now on.
pub(super) fn take_over_former_name(
    tx: &rusqlite::Transaction<'_>,
    stage: &str,
    norm: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM former_names WHERE stage = ?1 AND norm = ?2")?
        .execute(params![stage, norm])?;
    Ok(())
}
