//! Seeding and inspecting a running fake directly, behind the client's back: users (one, many,
//! or 10,000+ generated at once), groups, memberships, renames — and reading what is there.

use std::sync::MutexGuard;

use super::FakeScim;
use super::store::{self, Directory};

impl FakeScim {
    fn dir(&self) -> MutexGuard<'_, Directory> {
        self.state.dir.lock().unwrap()
    }

    /// Adds a user (`displayName` and e-mail = `user_name`); returns its id. Panics when the
    /// userName (case-insensitively) exists.
    pub fn add_user(&self, user_name: &str) -> String {
        self.add_user_with_external_id(user_name, None)
    }

    /// Adds a user carrying `externalId`; returns its id. Panics when the userName exists.
    pub fn add_user_with_external_id(&self, user_name: &str, external_id: Option<&str>) -> String {
        let mut user = store::User::named(user_name);
        user.external_id = external_id.map(str::to_owned);
        self.dir()
            .insert_user(user)
            .unwrap_or_else(|_| panic!("user {user_name} exists"))
    }

    /// Adds users in one go (fast for 10,000+); returns their ids in order. Panics on a
    /// duplicate userName.
    pub fn add_users<S: AsRef<str>>(&self, user_names: impl IntoIterator<Item = S>) -> Vec<String> {
        let mut dir = self.dir();
        user_names
            .into_iter()
            .map(|n| {
                let n = n.as_ref();
                dir.insert_user(store::User::named(n))
                    .unwrap_or_else(|_| panic!("user {n} exists"))
            })
            .collect()
    }

    /// Adds `n` users `user000000@example.com`, `user000001@example.com`, … numbered on from
    /// the users already there; returns their ids.
    pub fn seed_users(&self, n: usize) -> Vec<String> {
        let from = self.user_count();
        self.add_users((from..from + n).map(|i| format!("user{i:06}@example.com")))
    }

    /// The number of users.
    pub fn user_count(&self) -> usize {
        self.dir().users.len()
    }

    /// The id of the user with `user_name` (case-insensitive).
    pub fn user_id(&self, user_name: &str) -> Option<String> {
        let dir = self.dir();
        dir.user_by_name(user_name).map(|u| u.id.clone())
    }

    /// Adds a group; returns its id. Panics when the displayName (case-insensitively) exists.
    pub fn add_group(&self, display_name: &str) -> String {
        self.add_group_with_external_id(display_name, None)
    }

    /// Adds a group carrying `externalId`; returns its id. Panics when the name exists.
    pub fn add_group_with_external_id(
        &self,
        display_name: &str,
        external_id: Option<&str>,
    ) -> String {
        self.dir()
            .insert_group(display_name, external_id.map(str::to_owned))
            .unwrap_or_else(|_| panic!("group {display_name} exists"))
    }

    /// Makes a user a member behind the client's back; whether it was not one already. Panics
    /// on an unknown group or user id.
    pub fn add_member(&self, group_id: &str, user_id: &str) -> bool {
        self.add_members(group_id, [user_id]) == 1
    }

    /// Makes users members behind the client's back; how many were not already. Panics on an
    /// unknown group or user id.
    pub fn add_members<S: AsRef<str>>(
        &self,
        group_id: &str,
        user_ids: impl IntoIterator<Item = S>,
    ) -> usize {
        let mut dir = self.dir();
        let ids: Vec<String> = user_ids
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect();
        for id in &ids {
            assert!(dir.user(id).is_some(), "no user {id}");
        }
        let g = dir.group_mut(group_id).expect("no such group");
        let added = ids
            .into_iter()
            .filter(|id| g.members.insert(id.clone()))
            .count();
        g.version += u64::from(added > 0);
        added
    }

    /// Takes a user out of a group behind the client's back; whether it was a member. Panics
    /// on an unknown group id.
    pub fn remove_member(&self, group_id: &str, user_id: &str) -> bool {
        let mut dir = self.dir();
        let g = dir.group_mut(group_id).expect("no such group");
        let removed = g.members.remove(user_id);
        g.version += u64::from(removed);
        removed
    }

    /// Renames a group behind the client's back. Panics on an unknown id.
    pub fn rename_group(&self, group_id: &str, new_name: &str) {
        let mut dir = self.dir();
        let g = dir.group_mut(group_id).expect("no such group");
        g.display_name = new_name.to_owned();
        g.version += 1;
    }

    /// Deletes a group behind the client's back; whether it existed.
    pub fn delete_group(&self, group_id: &str) -> bool {
        self.dir().delete_group(group_id)
    }

    /// The id of the group named `display_name` (case-insensitive).
    pub fn group_id(&self, display_name: &str) -> Option<String> {
        let dir = self.dir();
        dir.group_by_name(display_name)
            .map(|i| dir.groups[i].id.clone())
    }

    /// The userNames of the members of the group named `display_name` (case-insensitive),
    /// sorted; empty when there is no such group.
    pub fn members_of(&self, display_name: &str) -> Vec<String> {
        let dir = self.dir();
        let Some(i) = dir.group_by_name(display_name) else {
            return Vec::new();
        };
        let mut names: Vec<String> = dir.groups[i]
            .members
            .iter()
            .filter_map(|id| dir.user(id).map(|u| u.user_name.clone()))
            .collect();
        names.sort();
        names
    }

    /// Every group as (id, displayName), in creation order.
    pub fn groups(&self) -> Vec<(String, String)> {
        let dir = self.dir();
        dir.groups
            .iter()
            .map(|g| (g.id.clone(), g.display_name.clone()))
            .collect()
    }
}
