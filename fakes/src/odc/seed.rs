//! Seeding and inspecting the organisation directly, behind the client's back. Helpers panic on
//! a key that names nothing (a bug in the test, not a request to answer).

use std::collections::BTreeSet;

use super::store::{Profile, Store, new_key, now_rfc3339};
use super::{FakeOdc, lock};

fn group_index(store: &Store, key: &str) -> usize {
    store.group(key).unwrap_or_else(|| panic!("no group {key}"))
}

fn user_index(store: &Store, key: &str) -> usize {
    store.user(key).unwrap_or_else(|| panic!("no user {key}"))
}

impl FakeOdc {
    /// Adds a stage (environment) named `name`; returns its key.
    pub fn add_environment(&self, name: &str) -> String {
        let key = new_key();
        lock(&self.state.store)
            .envs
            .insert(key.clone(), name.to_owned());
        key
    }

    /// Adds an active user named after the e-mail's local part; returns its key. Panics when
    /// the e-mail is taken.
    pub fn add_user(&self, email: &str) -> String {
        self.add_users([email]).remove(0)
    }

    /// Adds active users, under one lock (fast for tens of thousands); returns their keys in
    /// order. Panics when an e-mail is taken.
    pub fn add_users<S: Into<String>>(&self, emails: impl IntoIterator<Item = S>) -> Vec<String> {
        let mut store = lock(&self.state.store);
        emails
            .into_iter()
            .map(|email| {
                let email = email.into();
                let index = store
                    .insert_user(Profile::seeded(email.clone()))
                    .unwrap_or_else(|| panic!("user {email} exists"));
                store.users[index].key.clone()
            })
            .collect()
    }

    /// Adds `count` users `user{i:06}@example.com` (named `user{i:06}`), `i` counting on from
    /// the previous call's; returns their keys in order.
    pub fn seed_users(&self, count: usize) -> Vec<String> {
        let first = {
            let mut store = lock(&self.state.store);
            store.seeded += count;
            store.seeded - count
        };
        self.add_users((first..first + count).map(|i| format!("user{i:06}@example.com")))
    }

    /// Adds a group to a stage; returns its key. Panics on an unknown stage or a name taken
    /// (case-insensitively) in it.
    pub fn add_group(&self, env_key: &str, name: &str) -> String {
        let mut store = lock(&self.state.store);
        let env = env_key.to_ascii_lowercase();
        assert!(store.envs.contains_key(&env), "no environment {env_key}");
        assert!(
            store.group_named(&env, name, None).is_none(),
            "group {name} exists in {env_key}"
        );
        store.insert_group(&env, name.to_owned(), None, BTreeSet::new())
    }

    /// Makes a user an Assigned member (as the Portal would).
    pub fn add_assigned_member(&self, group_key: &str, user_key: &str) {
        let mut store = lock(&self.state.store);
        let (g, u) = (group_index(&store, group_key), user_index(&store, user_key));
        store.groups[g].assigned.insert(u);
    }

    /// Makes a user a Mapped member (as a login through a mapped IdP claim would).
    pub fn add_mapped_member(&self, group_key: &str, user_key: &str) {
        let mut store = lock(&self.state.store);
        let (g, u) = (group_index(&store, group_key), user_index(&store, user_key));
        store.groups[g].mapped.insert(u);
    }

    /// Ends a user's Assigned membership, if any.
    pub fn remove_assigned_member(&self, group_key: &str, user_key: &str) {
        let mut store = lock(&self.state.store);
        let (g, u) = (group_index(&store, group_key), user_index(&store, user_key));
        store.groups[g].assigned.remove(&u);
    }

    /// Ends a user's Mapped membership, if any.
    pub fn remove_mapped_member(&self, group_key: &str, user_key: &str) {
        let mut store = lock(&self.state.store);
        let (g, u) = (group_index(&store, group_key), user_index(&store, user_key));
        store.groups[g].mapped.remove(&u);
    }

    /// Renames a group (no uniqueness check: a test may make a clash on purpose).
    pub fn rename_group(&self, group_key: &str, name: &str) {
        let mut store = lock(&self.state.store);
        let g = group_index(&store, group_key);
        store.groups[g].name = name.to_owned();
        store.groups[g].updated_at = now_rfc3339();
    }

    /// Deletes a group with its memberships.
    pub fn delete_group(&self, group_key: &str) {
        let mut store = lock(&self.state.store);
        let g = group_index(&store, group_key);
        store.groups.remove(g);
    }

    /// The e-mails of a group's Assigned members, sorted.
    pub fn assigned_members(&self, group_key: &str) -> Vec<String> {
        let store = lock(&self.state.store);
        let g = group_index(&store, group_key);
        store.emails(&store.groups[g].assigned)
    }

    /// The e-mails of a group's Mapped members, sorted.
    pub fn mapped_members(&self, group_key: &str) -> Vec<String> {
        let store = lock(&self.state.store);
        let g = group_index(&store, group_key);
        store.emails(&store.groups[g].mapped)
    }

    /// The key of a stage's group with this name (case-insensitively).
    pub fn group_key(&self, env_key: &str, name: &str) -> Option<String> {
        let store = lock(&self.state.store);
        store
            .group_named(env_key, name, None)
            .map(|g| store.groups[g].key.clone())
    }

    /// A group's name.
    pub fn group_name(&self, group_key: &str) -> Option<String> {
        let store = lock(&self.state.store);
        store.group(group_key).map(|g| store.groups[g].name.clone())
    }

    /// The names of a stage's groups, sorted.
    pub fn group_names(&self, env_key: &str) -> Vec<String> {
        let store = lock(&self.state.store);
        let mut names: Vec<String> = store
            .groups
            .iter()
            .filter(|g| g.env.eq_ignore_ascii_case(env_key))
            .map(|g| g.name.clone())
            .collect();
        names.sort();
        names
    }

    /// The key of the user with this e-mail (case-insensitively).
    pub fn user_key(&self, email: &str) -> Option<String> {
        let store = lock(&self.state.store);
        store
            .user_by_email(email)
            .map(|u| store.users[u].key.clone())
    }

    /// The number of users.
    pub fn user_count(&self) -> usize {
        lock(&self.state.store).users.len()
    }

    /// Users created through `POST /users`, in order: (e-mail, `identityProviderKey`, `subject`).
    pub fn created_users(&self) -> Vec<(String, Option<String>, Option<String>)> {
        lock(&self.state.store)
            .users
            .iter()
            .filter(|u| u.via_api)
            .map(|u| (u.email.clone(), u.idp.clone(), u.subject.clone()))
            .collect()
    }
}
