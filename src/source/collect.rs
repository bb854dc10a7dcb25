//! Assembling a cloud IdP's read from its pages: groups first, then each group's member pages in
//! whatever order they arrive, users deduplicated by the IdP's immutable id.
//!
//! Cloud IdPs list users only as members of groups (no per-user requests), so the users of a
//! read are the members seen. A user seen twice keeps what it was first seen with. The result
//! goes through [`Directory::resolve`] like every other source's read. No I/O here.

use rustc_hash::FxHashMap as HashMap;

use super::SourceError;
use super::file::{DirectoryExport, ExportGroup, ExportUser};
use crate::directory::{Directory, Snapshot, SnapshotGroup, SnapshotUser};

/// A member as a page gives it, borrowed from the page's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageUser<'a> {
    /// The IdP's immutable id.
    pub id: &'a str,
    /// The raw user-key attribute, when present.
    pub key: Option<&'a str>,
    /// Whether the account may be a member.
    pub enabled: bool,
}

struct User {
    id: Box<str>,
    key: Option<Box<str>>,
    enabled: bool,
}

struct Group {
    id: String,
    name: String,
    members: Vec<u32>,
}

/// The read so far: every group listed, with the members of each that have arrived.
#[derive(Default)]
pub struct Collected {
    users: Vec<User>,
    by_id: HashMap<Box<str>, u32>,
    groups: Vec<Group>,
}

impl Collected {
    /// Adds a listed group; its index is the handle its member pages are added under.
    pub fn add_group(&mut self, id: String, name: String) -> usize {
        self.groups.push(Group {
            id,
            name,
            members: Vec::new(),
        });
        self.groups.len() - 1
    }

    /// The groups listed so far, as (id, name).
    pub fn groups(&self) -> impl Iterator<Item = (&str, &str)> {
        self.groups.iter().map(|g| (g.id.as_str(), g.name.as_str()))
    }

    /// Adds one page of user members to group `group`.
    pub fn add_members<'a>(&mut self, group: usize, page: impl IntoIterator<Item = PageUser<'a>>) {
        for user in page {
            let index = match self.by_id.get(user.id) {
                Some(&index) => index,
                None => {
                    let index = self.users.len() as u32;
                    let id: Box<str> = user.id.into();
                    self.by_id.insert(id.clone(), index);
                    self.users.push(User {
                        id,
                        key: user.key.map(Into::into),
                        enabled: user.enabled,
                    });
                    index
                }
            };
            self.groups[group].members.push(index);
        }
    }

    /// Memberships collected so far (before deduplication).
    pub fn memberships(&self) -> usize {
        self.groups.iter().map(|g| g.members.len()).sum()
    }

    fn snapshot(&self) -> Snapshot<&str> {
        let users = self
            .users
            .iter()
            .map(|u| SnapshotUser {
                id: &*u.id,
                key: u.key.as_deref(),
                enabled: u.enabled,
            })
            .collect();
        let groups = self
            .groups
            .iter()
            .map(|g| {
                let mut members: Vec<u32> = g.members.clone();
                // A member listed on two pages (a replay) counts once.
                members.sort_unstable();
                members.dedup();
                SnapshotGroup {
                    id: g.id.as_str(),
                    name: g.name.as_str(),
                    members: members
                        .into_iter()
                        .map(|i| &*self.users[i as usize].id)
                        .collect(),
                }
            })
            .collect();
        Snapshot { users, groups }
    }

    /// The checked directory; `origin` names the IdP's endpoint in an error.
    pub fn directory(&self, origin: &str) -> Result<Directory, SourceError> {
        Directory::resolve(self.snapshot())
            .map_err(|e| SourceError::Invalid(format!("{origin}: inconsistent read: {e}")))
    }

    /// The read as a directory export (what `idpsync export` prints), checked first.
    pub fn export(&self, origin: &str) -> Result<DirectoryExport, SourceError> {
        self.directory(origin)?;
        let mut snapshot = self.snapshot();
        // Pages arrive in any order: sort, so one directory always exports the same.
        snapshot.users.sort_unstable_by(|a, b| a.id.cmp(b.id));
        for group in &mut snapshot.groups {
            group.members.sort_unstable();
        }
        Ok(DirectoryExport {
            users: snapshot
                .users
                .iter()
                .map(|u| ExportUser {
                    id: u.id.to_owned(),
                    email: u.key.map(str::to_owned),
                    name: None,
                    enabled: u.enabled,
                })
                .collect(),
            groups: snapshot
                .groups
                .iter()
                .map(|g| ExportGroup {
                    id: g.id.to_owned(),
                    name: g.name.to_owned(),
                    members: g.members.iter().map(|m| (*m).to_owned()).collect(),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_deduplicated_by_id_and_replays_count_once() {
        let mut c = Collected::default();
        let eng = c.add_group("g1".into(), "eng".into());
        let ops = c.add_group("g2".into(), "ops".into());
        let ana = PageUser {
            id: "u1",
            key: Some("ana@example.com"),
            enabled: true,
        };
        let ben = PageUser {
            id: "u2",
            key: None,
            enabled: true,
        };
        c.add_members(eng, [ana, ben]);
        c.add_members(ops, [ana]);
        c.add_members(eng, [ana]);
        let export = c.export("test").unwrap();
        assert_eq!(export.users.len(), 2);
        assert_eq!(export.groups[0].members, ["u1", "u2"]);
        assert_eq!(export.groups[1].members, ["u1"]);
        let directory = c.directory("test").unwrap();
        assert_eq!(directory.skipped_users, 1);
    }
}
