//! Reading what a run needs from the state, in one consistent read transaction.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::params;

use super::{State, StateError};
use crate::model::{IdpName, Stage};
use crate::reconcile::{Baseline, GroupDigest};

/// A group row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedGroup {
    /// Its row id.
    pub id: i64,
    /// Its stage.
    pub stage: String,
    /// Its name as shown.
    pub name: String,
    /// Its normalised name.
    pub norm: String,
}

/// A former name of a renamed group: mappings that name it follow the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormerName {
    /// The group's stage.
    pub stage: String,
    /// The former name, normalised.
    pub norm: String,
    /// The former name as it was shown.
    pub name: String,
    /// The group that had it.
    pub group_id: i64,
}

/// What the state says about one IdP.
#[derive(Debug, Clone, Default)]
pub struct LoadedIdp {
    /// Its `sources` id, when it ever wrote anything.
    pub source: Option<i64>,
    /// Its memberships in the served stages: (group id, user id, index into [`Loaded::causes`]).
    pub held: Vec<(i64, i64, u32)>,
    /// Its last applied read.
    pub baseline: Baseline,
    /// The immutable ids stored for its users.
    pub external_ids: HashMap<i64, String>,
}

/// What a run starts from.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Every group.
    pub groups: Vec<LoadedGroup>,
    /// The former names of renamed groups.
    pub former_names: Vec<FormerName>,
    /// Every user: (id, key).
    pub users: Vec<(i64, String)>,
    /// Per requested IdP, in request order.
    pub idps: Vec<LoadedIdp>,
    /// The causes memberships name, shared: index 0 is "no cause".
    pub causes: Vec<Arc<str>>,
    /// The state generation this was read at.
    pub generation: i64,
}

impl Loaded {
    /// Keeps the IdPs of `wanted`, in that order, from a load made for `loaded_for`.
    ///
    /// # Panics
    /// When `wanted` names an IdP `loaded_for` does not: planning it from nothing would look
    /// like every membership being new.
    pub fn only(mut self, loaded_for: &[IdpName], wanted: &[IdpName]) -> Loaded {
        let mut by_name: std::collections::BTreeMap<&IdpName, LoadedIdp> =
            loaded_for.iter().zip(self.idps.drain(..)).collect();
        self.idps = wanted
            .iter()
            .map(|name| by_name.remove(name).expect("every wanted IdP was loaded"))
            .collect();
        self
    }
}

impl State {
    /// Loads groups, users and, per IdP, its memberships in `stages`, baseline and stored ids.
    pub fn load(&mut self, idps: &[IdpName], stages: &[Stage]) -> Result<Loaded, StateError> {
        let never = AtomicBool::new(false);
        Ok(self
            .load_unless(idps, stages, &never)?
            .expect("not cancelled"))
    }

    /// [`State::load`], giving up with `None` once `cancelled` is set: a run starts loading
    /// beside its IdP reads and stops when every IdP turns out unchanged.
    pub fn load_unless(
        &mut self,
        idps: &[IdpName],
        stages: &[Stage],
        cancelled: &AtomicBool,
    ) -> Result<Option<Loaded>, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        let mut loaded = Loaded {
            generation: super::generation_in(&tx).map_err(err)?,
            ..Loaded::default()
        };
        {
            loaded.groups = groups_in(&tx).map_err(err)?;
            loaded.former_names = former_names_in(&tx).map_err(err)?;
            let mut stmt = tx
                .prepare("SELECT id, key FROM users ORDER BY id")
                .map_err(err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(err)?;
            loaded.users = rows.collect::<Result<_, _>>().map_err(err)?;
        }
        let served: Vec<&str> = stages.iter().map(Stage::as_str).collect();
        for idp in idps {
            let source = tx
                .query_row(
                    "SELECT id FROM sources WHERE provenance = ?1",
                    [format!("idp:{idp}")],
                    |r| r.get(0),
                )
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
                .map_err(err)?;
            let mut this = LoadedIdp {
                source,
                ..LoadedIdp::default()
            };
            if let Some(source) = this.source {
                let mut stmt = tx
                    .prepare("SELECT idp_group, members, hash FROM baselines WHERE source = ?1")
                    .map_err(err)?;
                let rows = stmt
                    .query_map(params![source], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            GroupDigest {
                                members: r.get::<_, i64>(1)? as u64,
                                hash: r.get::<_, i64>(2)? as u64,
                            },
                        ))
                    })
                    .map_err(err)?;
                this.baseline = rows.collect::<Result<_, _>>().map_err(err)?;
                let mut stmt = tx
                    .prepare("SELECT user_id, external_id FROM user_ids WHERE source = ?1")
                    .map_err(err)?;
                let rows = stmt
                    .query_map(params![source], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(err)?;
                this.external_ids = rows.collect::<Result<_, _>>().map_err(err)?;
            }
            loaded.idps.push(this);
        }
        // One sequential scan of the membership table beats an index walk plus a lookup per row.
        let max_group = loaded.groups.iter().map(|g| g.id).max().unwrap_or(0).max(0) as usize;
        let mut served_group = vec![false; max_group + 1];
        for g in &loaded.groups {
            if g.id >= 0 {
                served_group[g.id as usize] = served.contains(&g.stage.as_str());
            }
        }
        let wanted: HashMap<i64, usize> = loaded
            .idps
            .iter()
            .enumerate()
            .filter_map(|(i, idp)| idp.source.map(|s| (s, i)))
            .collect();
        if cancelled.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if !wanted.is_empty() {
            // Cause row ids map to indexes into `loaded.causes` through a dense array.
            loaded.causes.push(Arc::from(""));
            let mut cause_index: Vec<u32> = Vec::new();
            let mut stmt = tx
                .prepare("SELECT id, idp_group FROM causes")
                .map_err(err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(err)?;
            for row in rows {
                let (id, cause) = row.map_err(err)?;
                let Ok(id) = usize::try_from(id) else {
                    continue;
                };
                if cause_index.len() <= id {
                    cause_index.resize(id + 1, 0);
                }
                cause_index[id] = loaded.causes.len() as u32;
                loaded.causes.push(Arc::from(cause));
            }
            let mut stmt = tx
                .prepare("SELECT group_id, user_id, source, cause FROM memberships")
                .map_err(err)?;
            let mut rows = stmt.query([]).map_err(err)?;
            let mut scanned = 0u32;
            while let Some(row) = rows.next().map_err(err)? {
                scanned = scanned.wrapping_add(1);
                if scanned.is_multiple_of(65_536) && cancelled.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                let source: i64 = row.get(2).map_err(err)?;
                let Some(&index) = wanted.get(&source) else {
                    continue;
                };
                let group: i64 = row.get(0).map_err(err)?;
                if !usize::try_from(group)
                    .ok()
                    .and_then(|g| served_group.get(g))
                    .copied()
                    .unwrap_or(false)
                {
                    continue;
                }
                let cause_id: Option<i64> = row.get(3).map_err(err)?;
                let cause = cause_id
                    .and_then(|id| usize::try_from(id).ok())
                    .and_then(|id| cause_index.get(id))
                    .copied()
                    .unwrap_or(0);
                loaded.idps[index]
                    .held
                    .push((group, row.get(1).map_err(err)?, cause));
            }
        }
        tx.finish().map_err(err)?;
        Ok(Some(loaded))
    }
}

impl State {
    /// Every group and the former names of renamed groups, for resolving mappings outside a run
    /// (`check`, `status`).
    pub fn groups_and_former_names(
        &self,
    ) -> Result<(Vec<LoadedGroup>, Vec<FormerName>), StateError> {
        let err = |e| self.err(e);
        Ok((
            groups_in(&self.conn).map_err(err)?,
            former_names_in(&self.conn).map_err(err)?,
        ))
    }
}

pub(super) fn groups_in(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<LoadedGroup>> {
    let mut stmt = conn.prepare_cached("SELECT id, stage, name, norm FROM groups ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(LoadedGroup {
            id: r.get(0)?,
            stage: r.get(1)?,
            name: r.get(2)?,
            norm: r.get(3)?,
        })
    })?;
    rows.collect()
}

pub(super) fn former_names_in(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<FormerName>> {
    let mut stmt = conn.prepare_cached("SELECT stage, norm, name, group_id FROM former_names")?;
    let rows = stmt.query_map([], |r| {
        Ok(FormerName {
            stage: r.get(0)?,
            norm: r.get(1)?,
            name: r.get(2)?,
            group_id: r.get(3)?,
        })
    })?;
    rows.collect()
}
