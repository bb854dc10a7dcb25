//! One user's memberships as rows, and the names behind their ids.
//!
//! A user's rows are read from the by-user index alone (it carries the cause). The group, source
//! and cause each row names are looked up through [`RowNames`], which a connection keeps between
//! reads: logins read the same few hundred groups again and again, and joining them in SQL cost
//! more than the rest of a login. What it keeps is dropped whenever the `catalog` counter moves
//! (a change of groups, their former names or roles, by whichever connection). Committed source
//! and cause rows are only ever added and keep their ids, so a name once found stays right until
//! then. Rows a transaction created are free again if it rolls back: a connection whose write
//! fails to commit after reading through its names drops them (`State::login`).

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};
use rustc_hash::FxHashMap as HashMap;

use super::groups::UserMembership;
use super::load::LoadedGroup;
use crate::model::Provenance;

/// A user's membership rows: one range of the by-user index, which carries every column read.
pub(super) const USER_ROWS: &str =
    "SELECT group_id, source, cause FROM memberships WHERE user_id = ?1";

/// One membership of a user, with its group.
#[derive(Debug, Clone)]
pub(super) struct MembershipRow {
    /// The group, with its roles.
    pub group: Arc<RolesOf>,
    /// The source row of the provenance.
    pub source: i64,
    /// The provenance.
    pub provenance: Arc<Provenance>,
    /// The IdP group behind it (empty for none).
    pub cause: Arc<str>,
}

/// A group row with its roles, sorted.
#[derive(Debug)]
pub(super) struct RolesOf {
    /// The group.
    pub group: LoadedGroup,
    /// Its roles, sorted.
    pub roles: Vec<String>,
}

/// The names behind group, source and cause ids, kept by one connection.
#[derive(Debug, Default)]
pub(super) struct RowNames {
    /// The `catalog` counter the groups were read at.
    catalog: Option<i64>,
    groups: HashMap<i64, Option<Arc<RolesOf>>>,
    sources: HashMap<i64, Option<Arc<Provenance>>>,
    causes: HashMap<i64, Arc<str>>,
}

impl RowNames {
    /// Every membership of the user with row id `user_id`, read inside `conn`'s current
    /// transaction: one range of the by-user index, whatever the store's size.
    pub(super) fn rows_in(
        &mut self,
        conn: &Connection,
        user_id: i64,
    ) -> rusqlite::Result<Vec<MembershipRow>> {
        let catalog = super::catalog_in(conn)?;
        if self.catalog != Some(catalog) {
            *self = RowNames {
                catalog: Some(catalog),
                ..RowNames::default()
            };
        }
        let ids: Vec<(i64, i64, Option<i64>)> = conn
            .prepare_cached(USER_ROWS)?
            .query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut rows = Vec::with_capacity(ids.len());
        for (group, source, cause) in ids {
            // A row naming no group or source is not a membership (a join would not list it).
            let (Some(group), Some(provenance)) =
                (self.group(conn, group)?, self.source(conn, source)?)
            else {
                continue;
            };
            rows.push(MembershipRow {
                group,
                source,
                provenance,
                cause: self.cause(conn, cause)?,
            });
        }
        Ok(rows)
    }

    /// The group with row id `id` and its roles.
    fn group(&mut self, conn: &Connection, id: i64) -> rusqlite::Result<Option<Arc<RolesOf>>> {
        if let Some(found) = self.groups.get(&id) {
            return Ok(found.clone());
        }
        let group = conn
            .prepare_cached("SELECT id, stage, name, norm FROM groups WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(LoadedGroup {
                    id: r.get(0)?,
                    stage: r.get(1)?,
                    name: r.get(2)?,
                    norm: r.get(3)?,
                })
            })
            .optional()?;
        let found = match group {
            Some(group) => {
                let roles = conn
                    .prepare_cached(
                        "SELECT role FROM group_roles WHERE group_id = ?1 ORDER BY role",
                    )?
                    .query_map([id], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Some(Arc::new(RolesOf { group, roles }))
            }
            None => None,
        };
        self.groups.insert(id, found.clone());
        Ok(found)
    }

    /// The provenance of source row `id`.
    fn source(&mut self, conn: &Connection, id: i64) -> rusqlite::Result<Option<Arc<Provenance>>> {
        if let Some(found) = self.sources.get(&id) {
            return Ok(found.clone());
        }
        let text: Option<String> = conn
            .prepare_cached("SELECT provenance FROM sources WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let found = match text {
            Some(text) => Some(Arc::new(Provenance::parse(&text).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    e.0.into(),
                )
            })?)),
            None => None,
        };
        self.sources.insert(id, found.clone());
        Ok(found)
    }

    /// The IdP group of cause row `id` (empty for none).
    fn cause(&mut self, conn: &Connection, id: Option<i64>) -> rusqlite::Result<Arc<str>> {
        let Some(id) = id else {
            return Ok(Arc::from(""));
        };
        if let Some(found) = self.causes.get(&id) {
            return Ok(found.clone());
        }
        let name: Option<String> = conn
            .prepare_cached("SELECT idp_group FROM causes WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let found: Arc<str> = Arc::from(name.unwrap_or_default());
        self.causes.insert(id, found.clone());
        Ok(found)
    }
}

/// The groups of a user from their `rows` (optionally in one stage), with provenances and roles,
/// in (stage, name) order.
pub(super) fn user_memberships_of(
    rows: &[MembershipRow],
    stage: Option<&str>,
) -> Vec<UserMembership> {
    let mut groups: BTreeMap<i64, UserMembership> = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|r| stage.is_none_or(|s| r.group.group.stage == s))
    {
        groups
            .entry(row.group.group.id)
            .or_insert_with(|| UserMembership {
                name: row.group.group.name.clone(),
                stage: row.group.group.stage.clone(),
                provenance: Vec::new(),
                roles: row.group.roles.clone(),
            })
            .provenance
            .push((*row.provenance).clone());
    }
    let mut out: Vec<UserMembership> = groups.into_values().collect();
    for membership in &mut out {
        membership.provenance.sort();
    }
    out.sort_by(|a, b| {
        (a.stage.as_bytes(), a.name.as_bytes()).cmp(&(b.stage.as_bytes(), b.name.as_bytes()))
    });
    out
}
