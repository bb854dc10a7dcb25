//! Assembling a cloud IdP's read from its pages: groups first, then each group's member pages in
//! whatever order they arrive, users deduplicated by the IdP's immutable id.
//!
//! Cloud IdPs list users only as members of groups (no per-user requests), so the users of a
//! read are the members seen. A user seen twice keeps what it was first seen with. The result
//! goes through [`Directory::resolve`] like every other source's read. No I/O here.

use std::borrow::Cow;

use rustc_hash::FxHashMap as HashMap;

use super::SourceError;
use super::file::DirectoryExport;
use crate::directory::{Directory, IndexedGroup, Snapshot, SnapshotGroup, SnapshotUser};

/// Parses one page of a cloud API, strings borrowed from `body` where they have no escapes.
/// The body is checked as UTF-8 once, whole: parsing from a `str`, serde_json checks no string
/// again (from bytes it checks each one — a sixth of a Graph read's instructions).
pub fn parse_page<'a, T: serde::Deserialize<'a>>(
    body: &'a [u8],
    what: &str,
) -> Result<T, SourceError> {
    let invalid = |e: &dyn std::fmt::Display| {
        SourceError::Invalid(format!("{what}: the body is not the JSON expected: {e}"))
    };
    let text = std::str::from_utf8(body).map_err(|e| invalid(&e))?;
    serde_json::from_str(text).map_err(|e| invalid(&e))
}

/// Deserializes an optional string borrowed from the input when it has no escapes, owned when it
/// has (`#[serde(borrow)]` borrows a bare `Cow<str>` but not one inside an `Option`, which would
/// copy every value).
pub fn optional_cow<'de, D>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }
    deserializer.deserialize_option(Visitor)
}

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

impl User {
    fn snapshot(&self) -> SnapshotUser<&str> {
        SnapshotUser {
            id: &self.id,
            key: self.key.as_deref(),
            enabled: self.enabled,
        }
    }
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
    /// Users by the 128-bit xxh3 hash of their id: the lookup every membership makes touches
    /// no string (a collision among n ids has odds of about n² / 2¹²⁹).
    by_id: HashMap<u128, u32>,
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
        let page = page.into_iter();
        // Room for the whole page at once (a filtered page's upper bound is its length).
        let (least, most) = page.size_hint();
        self.groups[group].members.reserve(most.unwrap_or(least));
        for user in page {
            let hash = xxhash_rust::xxh3::xxh3_128(user.id.as_bytes());
            let index = match self.by_id.get(&hash) {
                Some(&index) => index,
                None => {
                    let index = self.users.len() as u32;
                    let id: Box<str> = user.id.into();
                    self.by_id.insert(hash, index);
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
        let users = self.users.iter().map(User::snapshot).collect();
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
    pub fn directory(self, origin: &str) -> Result<Directory, SourceError> {
        let Collected { users, groups, .. } = self;
        let groups = groups.into_iter().map(|g| IndexedGroup {
            id: g.id,
            name: g.name,
            users: g.members,
        });
        resolve(&users, groups.collect(), origin)
    }

    /// The read as a directory export (what `idpsync export` prints), checked first.
    pub fn export(&self, origin: &str) -> Result<DirectoryExport, SourceError> {
        let groups = self.groups.iter().map(|g| IndexedGroup {
            id: g.id.clone(),
            name: g.name.clone(),
            users: g.members.clone(),
        });
        resolve(&self.users, groups.collect(), origin)?;
        let mut snapshot = self.snapshot();
        // Pages arrive in any order: sort, so one directory always exports the same.
        snapshot.users.sort_unstable_by(|a, b| a.id.cmp(b.id));
        for group in &mut snapshot.groups {
            group.members.sort_unstable();
        }
        Ok(DirectoryExport::from_snapshot(&snapshot))
    }
}

/// `Directory::resolve_indexed`, its error naming `origin`.
fn resolve(
    users: &[User],
    groups: Vec<IndexedGroup>,
    origin: &str,
) -> Result<Directory, SourceError> {
    let users: Vec<SnapshotUser<&str>> = users.iter().map(User::snapshot).collect();
    Directory::resolve_indexed(&users, groups)
        .map_err(|e| SourceError::Invalid(format!("{origin}: inconsistent read: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_strings_are_borrowed_unless_escaped() {
        #[derive(serde::Deserialize)]
        struct T<'a> {
            #[serde(borrow, default, deserialize_with = "optional_cow")]
            a: Option<Cow<'a, str>>,
        }
        let t: T = serde_json::from_str(r#"{"a": "plain"}"#).unwrap();
        assert!(matches!(t.a, Some(Cow::Borrowed("plain"))));
        let t: T = serde_json::from_str(r#"{"a": "e\u0301"}"#).unwrap();
        assert!(matches!(t.a.as_deref(), Some("e\u{301}")) && matches!(t.a, Some(Cow::Owned(_))));
        let t: T = serde_json::from_str(r#"{"a": null}"#).unwrap();
        assert!(t.a.is_none());
        let t: T = serde_json::from_str("{}").unwrap();
        assert!(t.a.is_none());
    }

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
