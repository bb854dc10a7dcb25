//! What a fake Jira site holds: users keyed by `accountId` (some hiding their e-mail, some
//! inactive) and groups keyed by a UUID `groupId`, whose names are unique case-insensitively and
//! whose members are kept ordered by the (hidden) username, here the lower-cased e-mail.

use std::collections::{BTreeSet, HashMap};

/// A user account.
#[derive(Debug, Clone)]
pub(crate) struct User {
    /// Jira's `accountId` (24 hex digits).
    pub account_id: String,
    /// The e-mail, as seeded.
    pub email: String,
    /// `displayName`.
    pub display_name: String,
    /// The user hides their e-mail: `emailAddress` is never sent.
    pub email_hidden: bool,
    /// `active`.
    pub active: bool,
}

/// A group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// `groupId`, a UUID.
    pub id: String,
    /// `name`, case preserved.
    pub name: String,
    /// Members as (lower-cased e-mail, index into the users), so iteration is Jira's order.
    pub members: BTreeSet<(String, usize)>,
}

/// The whole site.
#[derive(Debug, Default)]
pub(crate) struct Site {
    pub users: Vec<User>,
    by_account: HashMap<String, usize>,
    by_email: HashMap<String, usize>,
    pub groups: Vec<Option<Group>>,
    by_group_id: HashMap<String, usize>,
    by_group_name: HashMap<String, usize>,
}

/// `alice.smith@x` → `Alice Smith`: the local part split on `.`, `_` and `-`, words capitalised.
pub(crate) fn display_name_of(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    local
        .split(['.', '_', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Site {
    /// Adds a user (or returns the one with that e-mail, unchanged); returns its index.
    pub fn add_user(&mut self, email: &str, display_name: Option<&str>, hidden: bool) -> usize {
        let key = email.to_lowercase();
        if let Some(&i) = self.by_email.get(&key) {
            return i;
        }
        let i = self.users.len();
        let account_id = format!("5b10ac8d{:016x}", i as u64 + 1);
        self.users.push(User {
            account_id: account_id.clone(),
            email: email.to_owned(),
            display_name: display_name.map_or_else(|| display_name_of(email), str::to_owned),
            email_hidden: hidden,
            active: true,
        });
        self.by_account.insert(account_id, i);
        self.by_email.insert(key, i);
        i
    }

    /// The user with this e-mail (case-insensitive).
    pub fn user_by_email(&self, email: &str) -> Option<usize> {
        self.by_email.get(&email.to_lowercase()).copied()
    }

    /// The user with this `accountId`.
    pub fn user_by_account(&self, account_id: &str) -> Option<usize> {
        self.by_account.get(account_id).copied()
    }

    /// Adds a group (or returns the one with that name, case-insensitively); returns its index.
    pub fn add_group(&mut self, name: &str) -> usize {
        if let Some(i) = self.group_by_name(name) {
            return i;
        }
        let i = self.groups.len();
        let id = format!("276f955c-63d7-42c8-9520-{:012x}", i as u64 + 1);
        self.groups.push(Some(Group {
            id: id.clone(),
            name: name.to_owned(),
            members: BTreeSet::new(),
        }));
        self.by_group_id.insert(id, i);
        self.by_group_name.insert(name.to_lowercase(), i);
        i
    }

    /// The group with this name, matched case-insensitively as Jira does.
    pub fn group_by_name(&self, name: &str) -> Option<usize> {
        self.by_group_name.get(&name.to_lowercase()).copied()
    }

    /// The group with this `groupId` (exact).
    pub fn group_by_id(&self, id: &str) -> Option<usize> {
        self.by_group_id.get(id).copied()
    }

    /// The group at `i`, if it was not deleted.
    pub fn group(&self, i: usize) -> Option<&Group> {
        self.groups.get(i).and_then(Option::as_ref)
    }

    /// Every live group, sorted by name case-insensitively (Jira's order).
    pub fn sorted_groups(&self) -> Vec<&Group> {
        let mut all: Vec<&Group> = self.groups.iter().flatten().collect();
        all.sort_by_cached_key(|g| g.name.to_lowercase());
        all
    }

    fn member_key(&self, user: usize) -> (String, usize) {
        (self.users[user].email.to_lowercase(), user)
    }

    /// Adds `user` to group `g`; false if it already was a member.
    pub fn add_member(&mut self, g: usize, user: usize) -> bool {
        let key = self.member_key(user);
        match self.groups.get_mut(g).and_then(Option::as_mut) {
            Some(group) => group.members.insert(key),
            None => false,
        }
    }

    /// Removes `user` from group `g`; false if it was not a member.
    pub fn remove_member(&mut self, g: usize, user: usize) -> bool {
        let key = self.member_key(user);
        match self.groups.get_mut(g).and_then(Option::as_mut) {
            Some(group) => group.members.remove(&key),
            None => false,
        }
    }

    /// Renames group `g`; false if another group already has the new name.
    pub fn rename_group(&mut self, g: usize, new_name: &str) -> bool {
        if self.group_by_name(new_name).is_some_and(|other| other != g) {
            return false;
        }
        let Some(group) = self.groups.get_mut(g).and_then(Option::as_mut) else {
            return false;
        };
        self.by_group_name.remove(&group.name.to_lowercase());
        group.name = new_name.to_owned();
        self.by_group_name.insert(new_name.to_lowercase(), g);
        true
    }

    /// Deletes group `g` (its id is never reused).
    pub fn delete_group(&mut self, g: usize) -> bool {
        let Some(group) = self.groups.get_mut(g).and_then(Option::take) else {
            return false;
        };
        self.by_group_name.remove(&group.name.to_lowercase());
        self.by_group_id.remove(&group.id);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_come_from_the_local_part() {
        assert_eq!(display_name_of("alice.smith@example.com"), "Alice Smith");
        assert_eq!(display_name_of("bob_o-neil@x.test"), "Bob O Neil");
        assert_eq!(display_name_of("user000123@example.com"), "User000123");
    }

    #[test]
    fn names_are_unique_case_insensitively_and_renames_keep_the_id() {
        let mut site = Site::default();
        let g = site.add_group("Engineers");
        assert_eq!(site.add_group("engineers"), g);
        let other = site.add_group("Other");
        assert!(!site.rename_group(other, "ENGINEERS"));
        assert!(site.rename_group(g, "Builders"));
        assert_eq!(site.group_by_name("builders"), Some(g));
        assert_eq!(site.group_by_name("engineers"), None);
        assert!(site.delete_group(g));
        assert_eq!(site.group_by_name("builders"), None);
    }
}
