//! Sort positions of users, groups and IdPs, so the core compares integers in bytewise order.
//!
//! Pure, like the rest of the core; it also counts the work a plan takes ([`super::Plan::work`]).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{Change, GroupIdx, IdpInput, Universe, UserIdx};
use crate::model::UserKey;

/// Sort positions of users, groups and IdPs, so integer comparisons give the bytewise order.
pub(super) struct Ranks {
    pub(super) users: Vec<u32>,
    pub(super) groups: Vec<u32>,
    pub(super) idps: Vec<u32>,
    /// The inverse of `users`: the user at each rank.
    pub(super) user_at: Vec<UserIdx>,
    /// The inverse of `groups`: the group at each rank.
    pub(super) group_at: Vec<GroupIdx>,
    /// The work counter of [`Plan::work`].
    pub(super) work: std::cell::Cell<u64>,
}

impl Ranks {
    pub(super) fn new(universe: &Universe, idps: &[IdpInput<'_>]) -> Self {
        let work = std::cell::Cell::new(0u64);
        /// (rank of each item, item at each rank).
        fn rank_of<T: Ord>(items: &[T], work: &std::cell::Cell<u64>) -> (Vec<u32>, Vec<u32>) {
            let mut order: Vec<u32> = (0..items.len() as u32).collect();
            order.sort_unstable_by(|&a, &b| {
                work.set(work.get() + 1);
                items[a as usize].cmp(&items[b as usize])
            });
            let mut ranks = vec![0; items.len()];
            for (rank, &index) in order.iter().enumerate() {
                ranks[index as usize] = rank as u32;
            }
            (ranks, order)
        }
        let users: Vec<&str> = universe.users.iter().map(UserKey::as_str).collect();
        let groups: Vec<(&str, &str)> = universe
            .groups
            .iter()
            .map(|g| (g.stage.as_str(), g.name.as_str()))
            .collect();
        let names: Vec<&str> = idps.iter().map(|i| i.name.as_str()).collect();
        let (users, user_at) = rank_of(&users, &work);
        let (groups, group_at) = rank_of(&groups, &work);
        Ranks {
            users,
            groups,
            idps: rank_of(&names, &work).0,
            user_at,
            group_at,
            work,
        }
    }

    /// Counts `n` steps of work.
    pub(super) fn tick(&self, n: u64) {
        self.work.set(self.work.get() + n);
    }

    pub(super) fn pair(&self, group: GroupIdx, user: UserIdx) -> (u32, u32) {
        (self.groups[group as usize], self.users[user as usize])
    }

    /// (group rank, user rank) packed so one integer comparison gives the bytewise order.
    pub(super) fn key(&self, group: GroupIdx, user: UserIdx) -> u64 {
        (u64::from(self.groups[group as usize]) << 32) | u64::from(self.users[user as usize])
    }

    /// The (group, user) behind a [`Ranks::key`].
    pub(super) fn unkey(&self, key: u64) -> (GroupIdx, UserIdx) {
        (
            self.group_at[(key >> 32) as usize],
            self.user_at[(key & u64::from(u32::MAX)) as usize],
        )
    }

    pub(super) fn compare(&self, a: &Change, b: &Change) -> Ordering {
        self.tick(1);
        (self.pair(a.group, a.user), self.idps[a.idp])
            .cmp(&(self.pair(b.group, b.user), self.idps[b.idp]))
    }
}

/// Groups by (stage, normalised name): current names, then former names no current name holds.
pub(super) fn group_index(universe: &Universe) -> BTreeMap<(&str, &str), GroupIdx> {
    let mut index: BTreeMap<(&str, &str), GroupIdx> = universe
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| ((g.stage.as_str(), g.norm.as_str()), i as GroupIdx))
        .collect();
    for alias in &universe.aliases {
        index
            .entry((alias.stage.as_str(), alias.norm.as_str()))
            .or_insert(alias.group);
    }
    index
}
