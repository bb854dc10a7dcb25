//! What the fake directory holds — users and groups with AWS-style ids, a userName index for
//! fast lookups among 10,000+ users — and how they render as SCIM resources (groups always
//! with empty `members`, as AWS answers them).

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const STAMP: &str = "2026-01-01T00:00:00Z";

/// A user.
#[derive(Debug, Clone)]
pub(super) struct User {
    pub id: String,
    pub user_name: String,
    pub display_name: String,
    pub email: Option<String>,
    pub external_id: Option<String>,
    pub active: bool,
    pub name: Option<Value>,
}

impl User {
    /// A user whose displayName and e-mail are its userName.
    pub fn named(user_name: &str) -> User {
        User {
            id: String::new(),
            user_name: user_name.to_owned(),
            display_name: user_name.to_owned(),
            email: Some(user_name.to_owned()),
            external_id: None,
            active: true,
            name: None,
        }
    }
}

/// A group; `members` holds user ids.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub members: HashSet<String>,
    pub version: u64,
}

/// A name already taken.
#[derive(Debug)]
pub(super) struct Taken;

/// Users and groups, in creation order.
#[derive(Debug, Default)]
pub(super) struct Directory {
    pub users: Vec<User>,
    by_id: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
    pub groups: Vec<Group>,
    issued: u64,
}

/// The weak ETag of a version.
pub(super) fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

impl Directory {
    /// A fresh id shaped like AWS's (`<store id>-<uuid>`).
    fn new_id(&mut self) -> String {
        self.issued += 1;
        format!(
            "9067729b3d-{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            self.issued,
            fastrand::u16(..),
            fastrand::u16(..0x1000),
            fastrand::u16(..0x1000),
            fastrand::u64(..1 << 48)
        )
    }

    /// Adds `user` under a new id; refuses a userName taken case-insensitively.
    pub fn insert_user(&mut self, mut user: User) -> Result<String, Taken> {
        let key = user.user_name.to_lowercase();
        if self.by_name.contains_key(&key) {
            return Err(Taken);
        }
        user.id = self.new_id();
        let id = user.id.clone();
        self.by_name.insert(key, self.users.len());
        self.by_id.insert(id.clone(), self.users.len());
        self.users.push(user);
        Ok(id)
    }

    /// The user with `id` (case-exact).
    pub fn user(&self, id: &str) -> Option<&User> {
        self.by_id.get(id).map(|&i| &self.users[i])
    }

    /// The user with `user_name` (case-insensitive).
    pub fn user_by_name(&self, user_name: &str) -> Option<&User> {
        self.by_name
            .get(&user_name.to_lowercase())
            .map(|&i| &self.users[i])
    }

    /// Adds a group under a new id; refuses a displayName taken case-insensitively.
    pub fn insert_group(
        &mut self,
        display_name: &str,
        external_id: Option<String>,
    ) -> Result<String, Taken> {
        if self.group_by_name(display_name).is_some() {
            return Err(Taken);
        }
        let id = self.new_id();
        self.groups.push(Group {
            id: id.clone(),
            display_name: display_name.to_owned(),
            external_id,
            members: HashSet::new(),
            version: 1,
        });
        Ok(id)
    }

    /// The index of the group named `display_name` (case-insensitive).
    pub fn group_by_name(&self, display_name: &str) -> Option<usize> {
        let want = display_name.to_lowercase();
        self.groups
            .iter()
            .position(|g| g.display_name.to_lowercase() == want)
    }

    /// The index of the group with `id`.
    pub fn group_index(&self, id: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.id == id)
    }

    /// The group with `id`.
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.group_index(id).map(|i| &self.groups[i])
    }

    /// The group with `id`, to change.
    pub fn group_mut(&mut self, id: &str) -> Option<&mut Group> {
        self.group_index(id).map(|i| &mut self.groups[i])
    }

    /// Deletes the group with `id`; whether it existed.
    pub fn delete_group(&mut self, id: &str) -> bool {
        match self.group_index(id) {
            Some(i) => {
                self.groups.remove(i);
                true
            }
            None => false,
        }
    }
}

/// A user as AWS renders it.
pub(super) fn user_json(u: &User, base: &str) -> Value {
    let mut v = json!({
        "schemas": [USER_SCHEMA], "id": u.id, "userName": u.user_name,
        "displayName": u.display_name, "active": u.active,
        "emails": u.email.iter().map(|e| json!({"value": e, "type": "work", "primary": true}))
            .collect::<Vec<_>>(),
        "meta": {"resourceType": "User", "created": STAMP, "lastModified": STAMP,
            "location": format!("{base}/Users/{}", u.id)},
    });
    if let Some(x) = &u.external_id {
        v["externalId"] = json!(x);
    }
    if let Some(n) = &u.name {
        v["name"] = n.clone();
    }
    v
}

/// A group as AWS renders it: `members` always empty; `meta.version` when ETags are on.
pub(super) fn group_json(g: &Group, base: &str, etags: bool) -> Value {
    let mut v = json!({
        "schemas": [GROUP_SCHEMA], "id": g.id, "displayName": g.display_name, "members": [],
        "meta": {"resourceType": "Group", "created": STAMP, "lastModified": STAMP,
            "location": format!("{base}/Groups/{}", g.id)},
    });
    if let Some(x) = &g.external_id {
        v["externalId"] = json!(x);
    }
    if etags {
        v["meta"]["version"] = json!(etag(g.version));
    }
    v
}
