//! The interned world of a run: every group and user key a run talks about, with the store ids
//! behind each index, so the core compares integers.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap as HashMap;

use crate::config::Config;
use crate::model::{Stage, UserKey};
use crate::reconcile::{GroupAlias, GroupEntry, Universe, UserIdx};
use crate::state::Loaded;

/// Maps store ids to interned indexes through an array indexed by store id (`u32::MAX` = none).
pub(super) fn dense_index(ids: &[Option<i64>]) -> Vec<u32> {
    let len = ids
        .iter()
        .flatten()
        .copied()
        .max()
        .map_or(0, |m| m.max(0) as usize + 1);
    let mut index = vec![u32::MAX; len];
    for (i, id) in ids.iter().enumerate() {
        if let Some(id) = id.filter(|&id| id >= 0) {
            index[id as usize] = i as u32;
        }
    }
    index
}

pub(super) fn lookup(index: &[u32], id: i64) -> Option<u32> {
    usize::try_from(id)
        .ok()
        .and_then(|i| index.get(i))
        .copied()
        .filter(|&i| i != u32::MAX)
}

/// The interned world of a run, with the store ids behind each index.
pub(super) struct World {
    pub(super) universe: Universe,
    pub(super) group_ids: Vec<Option<i64>>,
    pub(super) user_ids: Vec<Option<i64>>,
    pub(super) user_index: HashMap<String, UserIdx>,
}

impl World {
    pub(super) fn intern(&mut self, key: &UserKey) -> UserIdx {
        if let Some(&index) = self.user_index.get(key.as_str()) {
            return index;
        }
        let index = self.universe.users.len() as UserIdx;
        self.universe.users.push(key.clone());
        self.user_ids.push(None);
        self.user_index.insert(key.as_str().to_owned(), index);
        index
    }
}

/// The world of a run over `loaded`; a dry run also shows the declared groups the store does not
/// hold yet (a real run has created them), without store ids.
pub(super) fn build_world(
    config: &Config,
    loaded: &Loaded,
    include_missing_declared: bool,
) -> World {
    let mut world = World {
        universe: Universe::default(),
        group_ids: Vec::new(),
        user_ids: Vec::new(),
        user_index: HashMap::with_capacity_and_hasher(loaded.users.len(), Default::default()),
    };
    for group in &loaded.groups {
        let Ok(stage) = Stage::parse(&group.stage) else {
            continue;
        };
        world.universe.groups.push(GroupEntry {
            stage,
            name: group.name.clone(),
            norm: group.norm.clone(),
        });
        world.group_ids.push(Some(group.id));
    }
    let index_of = dense_index(&world.group_ids);
    for former in &loaded.former_names {
        if let (Ok(stage), Some(group)) = (
            Stage::parse(&former.stage),
            lookup(&index_of, former.group_id),
        ) {
            world.universe.aliases.push(GroupAlias {
                stage,
                norm: former.norm.clone(),
                group,
            });
        }
    }
    if include_missing_declared {
        let stored: BTreeSet<(&str, &str)> = loaded
            .groups
            .iter()
            .map(|g| (g.stage.as_str(), g.norm.as_str()))
            .collect();
        for declared in &config.groups {
            if !stored.contains(&(declared.stage.as_str(), declared.name.norm())) {
                world.universe.groups.push(GroupEntry {
                    stage: declared.stage.clone(),
                    name: declared.name.as_str().to_owned(),
                    norm: declared.name.norm().to_owned(),
                });
                world.group_ids.push(None);
            }
        }
    }
    world.universe.users.reserve(loaded.users.len());
    world.user_ids.reserve(loaded.users.len());
    for (id, key) in &loaded.users {
        // Keys were normalised when stored; a run reads a hundred thousand of them back.
        let index = world.intern(&UserKey::from_stored(key.clone()));
        world.user_ids[index as usize] = Some(*id);
    }
    world
}
