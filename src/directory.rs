//! An IdP's read, checked and indexed: users with their keys, groups with their members.
//!
//! Every source produces a [`Snapshot`]; [`Directory::resolve`] checks it (duplicate ids, members
//! that refer to nothing) and [`Directory::members`] expands nested groups cycle-safely with a depth
//! cap. A snapshot that fails a check fails the whole read: a partial directory is never used.
//! This module does no I/O.

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;

use crate::model::UserKey;

/// What a source read: every user and every group, complete.
///
/// Generic over the string type so a source can hand over strings borrowed from its input
/// (a million member ids need not be a million allocations); owned `String` by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot<S = String> {
    /// Users, in the source's order.
    pub users: Vec<SnapshotUser<S>>,
    /// Groups, in the source's order.
    pub groups: Vec<SnapshotGroup<S>>,
}

/// A user as the source gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotUser<S = String> {
    /// The IdP's immutable id.
    pub id: S,
    /// The raw value of the user-key attribute, when the user has one.
    pub key: Option<S>,
    /// Disabled accounts are never members.
    pub enabled: bool,
}

/// A group as the source gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotGroup<S = String> {
    /// The IdP's group id.
    pub id: S,
    /// The group's display name.
    pub name: S,
    /// Ids of member users and of nested groups.
    pub members: Vec<S>,
}

/// Why a read cannot be used; the IdP fails this run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Two users, two groups, or a user and a group share an id.
    #[error("id {0:?} is used twice")]
    DuplicateId(String),
    /// A group lists a member id that is neither a user nor a group.
    #[error("group {group:?} lists member {member:?}, which is neither a user nor a group")]
    DanglingMember {
        /// The group's id.
        group: String,
        /// The unknown member id.
        member: String,
    },
    /// Nesting goes deeper than the configured cap.
    #[error("group {group:?} nests groups more than {max_depth} levels deep (nested_max_depth)")]
    TooDeep {
        /// The mapped group whose expansion went too deep.
        group: String,
        /// The cap.
        max_depth: usize,
    },
}

/// A usable user: enabled and with a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The IdP's immutable id.
    pub id: String,
    /// The normalised key.
    pub key: UserKey,
}

/// A group with its direct members resolved to indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    /// The IdP's group id.
    pub id: String,
    /// The display name.
    pub name: String,
    /// Indexes into [`Directory::users`] of usable direct members.
    pub users: Vec<u32>,
    /// Indexes into [`Directory::groups`] of nested groups.
    pub subgroups: Vec<u32>,
}

/// How a mapping's `idp_group` value resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Exactly one group has this id, or (no id matching) this name.
    Found(usize),
    /// No group has this id or name.
    NotFound,
    /// Several groups have this name.
    Ambiguous,
}

/// A checked, indexed read of one IdP.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Users the IdP returned, usable or not.
    pub users_total: usize,
    /// Users without a usable key (absent, empty or too long), skipped.
    pub skipped_users: usize,
    /// Usable users (enabled, keyed).
    pub users: Vec<DirectoryUser>,
    /// All groups.
    pub groups: Vec<DirectoryGroup>,
    by_id: HashMap<String, usize>,
    by_name: HashMap<String, Vec<usize>>,
    /// Group ids are normalised LDAP DNs: a mapping's DN matches in any case or spacing.
    dn_ids: bool,
}

enum Ref {
    User(Option<u32>),
    Group(u32),
}

/// A group whose members a source already resolved to indexes into its user list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedGroup {
    /// The IdP's group id.
    pub id: String,
    /// The display name.
    pub name: String,
    /// Indexes into the user list given beside it.
    pub users: Vec<u32>,
}

impl Directory {
    /// Checks a read whose users are unique by id and whose groups name their members by index
    /// into `users` (cloud sources resolve members as pages arrive, so no member is looked up by
    /// id a second time). The checks of [`Directory::resolve`]: keys, disabled accounts, an id
    /// used twice.
    pub fn resolve_indexed(
        users: &[SnapshotUser<&str>],
        groups: Vec<IndexedGroup>,
    ) -> Result<Directory, DirectoryError> {
        let mut ids: HashMap<&str, ()> =
            HashMap::with_capacity_and_hasher(users.len(), Default::default());
        let mut usable = Vec::with_capacity(users.len());
        let mut map = Vec::with_capacity(users.len());
        let mut skipped_users = 0;
        for user in users {
            if ids.insert(user.id, ()).is_some() {
                return Err(DirectoryError::DuplicateId(user.id.to_owned()));
            }
            map.push(match user.key.and_then(|k| UserKey::parse(k).ok()) {
                None => {
                    skipped_users += 1;
                    None
                }
                Some(_) if !user.enabled => None,
                Some(key) => {
                    usable.push(DirectoryUser {
                        id: user.id.to_owned(),
                        key,
                    });
                    Some((usable.len() - 1) as u32)
                }
            });
        }
        let mut by_id = HashMap::with_capacity_and_hasher(groups.len(), Default::default());
        let mut by_name: HashMap<String, Vec<usize>> =
            HashMap::with_capacity_and_hasher(groups.len(), Default::default());
        let mut out = Vec::with_capacity(groups.len());
        for (index, group) in groups.into_iter().enumerate() {
            if ids.contains_key(group.id.as_str()) || by_id.contains_key(&group.id) {
                return Err(DirectoryError::DuplicateId(group.id));
            }
            let mut members: Vec<u32> = group
                .users
                .iter()
                .filter_map(|&u| map.get(u as usize).copied().flatten())
                .collect();
            members.sort_unstable();
            members.dedup();
            by_id.insert(group.id.clone(), index);
            by_name.entry(group.name.clone()).or_default().push(index);
            out.push(DirectoryGroup {
                id: group.id,
                name: group.name,
                users: members,
                subgroups: Vec::new(),
            });
        }
        Ok(Directory {
            users_total: users.len(),
            skipped_users,
            users: usable,
            groups: out,
            by_id,
            by_name,
            dn_ids: false,
        })
    }

    /// Checks `snapshot` and indexes it.
    pub fn resolve<S: AsRef<str>>(snapshot: Snapshot<S>) -> Result<Directory, DirectoryError> {
        let mut refs: HashMap<&str, Ref> = HashMap::with_capacity_and_hasher(
            snapshot.users.len() + snapshot.groups.len(),
            Default::default(),
        );
        let mut users = Vec::with_capacity(snapshot.users.len());
        let mut skipped_users = 0;
        let users_total = snapshot.users.len();
        for user in &snapshot.users {
            let id = user.id.as_ref();
            if refs.contains_key(id) {
                return Err(DirectoryError::DuplicateId(id.to_owned()));
            }
            let key = user
                .key
                .as_ref()
                .and_then(|k| UserKey::parse(k.as_ref()).ok());
            let index = match key {
                None => {
                    skipped_users += 1;
                    None
                }
                Some(_) if !user.enabled => None,
                Some(key) => {
                    users.push(DirectoryUser {
                        id: id.to_owned(),
                        key,
                    });
                    Some((users.len() - 1) as u32)
                }
            };
            refs.insert(id, Ref::User(index));
        }
        for (index, group) in snapshot.groups.iter().enumerate() {
            if refs
                .insert(group.id.as_ref(), Ref::Group(index as u32))
                .is_some()
            {
                return Err(DirectoryError::DuplicateId(group.id.as_ref().to_owned()));
            }
        }
        let mut groups = Vec::with_capacity(snapshot.groups.len());
        let mut by_id =
            HashMap::with_capacity_and_hasher(snapshot.groups.len(), Default::default());
        let mut by_name: HashMap<String, Vec<usize>> =
            HashMap::with_capacity_and_hasher(snapshot.groups.len(), Default::default());
        for (index, group) in snapshot.groups.iter().enumerate() {
            let mut direct = Vec::new();
            let mut subgroups = Vec::new();
            for member in &group.members {
                match refs.get(member.as_ref()) {
                    Some(Ref::User(Some(u))) => direct.push(*u),
                    Some(Ref::User(None)) => {}
                    Some(Ref::Group(g)) => subgroups.push(*g),
                    None => {
                        return Err(DirectoryError::DanglingMember {
                            group: group.id.as_ref().to_owned(),
                            member: member.as_ref().to_owned(),
                        });
                    }
                }
            }
            direct.sort_unstable();
            direct.dedup();
            let (id, name) = (group.id.as_ref().to_owned(), group.name.as_ref().to_owned());
            by_id.insert(id.clone(), index);
            by_name.entry(name.clone()).or_default().push(index);
            groups.push(DirectoryGroup {
                id,
                name,
                users: direct,
                subgroups,
            });
        }
        Ok(Directory {
            users_total,
            skipped_users,
            users,
            groups,
            by_id,
            by_name,
            dn_ids: false,
        })
    }

    /// Marks group ids as normalised LDAP DNs ([`crate::dn::normalise`]), so that [`Directory::find`]
    /// also matches a mapping's DN written in another case or spacing.
    pub fn with_dn_ids(mut self) -> Self {
        self.dn_ids = true;
        self
    }

    /// Resolves a mapping's `idp_group`: an id match wins (for DN ids, in normalised form), then
    /// an exact, case-sensitive name.
    pub fn find(&self, idp_group: &str) -> Lookup {
        if let Some(&index) = self.by_id.get(idp_group) {
            return Lookup::Found(index);
        }
        if self.dn_ids
            && let Some(index) = crate::dn::normalise(idp_group).and_then(|dn| self.by_id.get(&dn))
        {
            return Lookup::Found(*index);
        }
        match self.by_name.get(idp_group).map(Vec::as_slice) {
            None | Some([]) => Lookup::NotFound,
            Some([one]) => Lookup::Found(*one),
            Some(_) => Lookup::Ambiguous,
        }
    }

    /// The usable users of group `index`, nested groups included when `nested`, sorted and unique.
    ///
    /// Each group is visited once (cycles end there); a group further than `max_depth` levels
    /// below `index` fails the expansion rather than silently truncating it.
    pub fn members(
        &self,
        index: usize,
        nested: bool,
        max_depth: usize,
    ) -> Result<Vec<u32>, DirectoryError> {
        let root = &self.groups[index];
        if !nested || root.subgroups.is_empty() {
            return Ok(root.users.clone());
        }
        let mut seen = vec![false; self.groups.len()];
        let mut queue = VecDeque::from([(index, 0usize)]);
        seen[index] = true;
        let mut members = Vec::new();
        while let Some((group, depth)) = queue.pop_front() {
            let group = &self.groups[group];
            members.extend_from_slice(&group.users);
            for &sub in &group.subgroups {
                let sub = sub as usize;
                if seen[sub] {
                    continue;
                }
                if depth + 1 > max_depth {
                    return Err(DirectoryError::TooDeep {
                        group: root.id.clone(),
                        max_depth,
                    });
                }
                seen[sub] = true;
                queue.push_back((sub, depth + 1));
            }
        }
        members.sort_unstable();
        members.dedup();
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, key: Option<&str>, enabled: bool) -> SnapshotUser {
        SnapshotUser {
            id: id.into(),
            key: key.map(Into::into),
            enabled,
        }
    }

    fn group(id: &str, name: &str, members: &[&str]) -> SnapshotGroup {
        SnapshotGroup {
            id: id.into(),
            name: name.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn keys(d: &Directory, members: &[u32]) -> Vec<String> {
        members
            .iter()
            .map(|&m| d.users[m as usize].key.to_string())
            .collect()
    }

    #[test]
    fn disabled_and_keyless_users_are_not_members() {
        let d = Directory::resolve(Snapshot {
            users: vec![
                user("u1", Some("A@x"), true),
                user("u2", Some("b@x"), false),
                user("u3", None, true),
            ],
            groups: vec![group("g1", "G", &["u1", "u2", "u3"])],
        })
        .unwrap();
        assert_eq!((d.users_total, d.skipped_users), (3, 1));
        assert_eq!(keys(&d, &d.members(0, true, 5).unwrap()), ["a@x"]);
    }

    #[test]
    fn nested_cycles_end_and_depth_is_capped() {
        let d = Directory::resolve(Snapshot {
            users: vec![
                user("u1", Some("a@x"), true),
                user("u2", Some("b@x"), true),
                user("u3", Some("c@x"), true),
            ],
            groups: vec![
                group("g1", "One", &["u1", "g2"]),
                group("g2", "Two", &["u2", "g3"]),
                group("g3", "Three", &["u3", "g1"]),
            ],
        })
        .unwrap();
        assert_eq!(
            keys(&d, &d.members(0, true, 5).unwrap()),
            ["a@x", "b@x", "c@x"]
        );
        assert_eq!(keys(&d, &d.members(0, false, 5).unwrap()), ["a@x"]);
        assert_eq!(
            d.members(0, true, 1),
            Err(DirectoryError::TooDeep {
                group: "g1".into(),
                max_depth: 1
            })
        );
        assert_eq!(
            keys(&d, &d.members(0, true, 2).unwrap()),
            ["a@x", "b@x", "c@x"]
        );
    }

    #[test]
    fn bad_snapshots_fail_with_the_offending_id() {
        let dup = Directory::resolve(Snapshot {
            users: vec![user("x", Some("a@x"), true)],
            groups: vec![group("x", "G", &[])],
        });
        assert_eq!(dup.unwrap_err(), DirectoryError::DuplicateId("x".into()));
        let dangling = Directory::resolve(Snapshot {
            users: vec![],
            groups: vec![group("g", "G", &["nobody"])],
        });
        assert!(dangling.unwrap_err().to_string().contains("\"nobody\""));
    }

    #[test]
    fn lookups_prefer_ids_and_detect_ambiguous_names() {
        let d = Directory::resolve(Snapshot {
            users: vec![],
            groups: vec![
                group("g1", "Sales", &[]),
                group("g2", "Sales", &[]),
                group("g3", "g1", &[]),
            ],
        })
        .unwrap();
        assert_eq!(d.find("g1"), Lookup::Found(0));
        assert_eq!(d.find("Sales"), Lookup::Ambiguous);
        assert_eq!(d.find("sales"), Lookup::NotFound);
        assert_eq!(d.find("g2"), Lookup::Found(1));
    }

    #[test]
    fn dn_ids_match_in_any_case_and_names_stay_exact() {
        let d = Directory::resolve(Snapshot {
            users: vec![],
            groups: vec![group("cn=admins,ou=groups,dc=x", "Admins", &[])],
        })
        .unwrap();
        assert_eq!(d.find("CN=Admins, OU=Groups, DC=x"), Lookup::NotFound);
        let d = d.with_dn_ids();
        assert_eq!(d.find("CN=Admins, OU=Groups, DC=x"), Lookup::Found(0));
        assert_eq!(d.find("Admins"), Lookup::Found(0));
        assert_eq!(d.find("admins"), Lookup::NotFound);
    }
}
