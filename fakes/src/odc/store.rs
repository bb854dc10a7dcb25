//! What a fake ODC organisation holds: stages (environments), users, end-user groups with their
//! Assigned and Mapped members — and how the API renders them.

use std::collections::{BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// A user profile.
pub(crate) struct UserRec {
    pub(crate) key: String,
    pub(crate) name: String,
    /// `name` lowercased then the key: the listing order.
    pub(crate) sort: (String, String),
    pub(crate) email: String,
    pub(crate) username: Option<String>,
    pub(crate) active: bool,
    pub(crate) idp: Option<String>,
    pub(crate) subject: Option<String>,
    /// Created through `POST /users` (not seeded).
    pub(crate) via_api: bool,
    pub(crate) created_at: String,
}

/// What a new user is made of.
pub(crate) struct Profile {
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) username: Option<String>,
    pub(crate) active: bool,
    pub(crate) idp: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) via_api: bool,
}

impl Profile {
    /// A seeded, active user named after its e-mail.
    pub(crate) fn seeded(email: String) -> Profile {
        Profile {
            name: name_from_email(&email),
            email,
            username: None,
            active: true,
            idp: None,
            subject: None,
            via_api: false,
        }
    }
}

/// An end-user group.
pub(crate) struct GroupRec {
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) env: String,
    pub(crate) updated_at: String,
    /// Indexes into the users.
    pub(crate) assigned: BTreeSet<usize>,
    pub(crate) mapped: BTreeSet<usize>,
}

/// The organisation.
#[derive(Default)]
pub(crate) struct Store {
    /// Stage key → name.
    pub(crate) envs: HashMap<String, String>,
    pub(crate) users: Vec<UserRec>,
    by_key: HashMap<String, usize>,
    by_email: HashMap<String, usize>,
    pub(crate) groups: Vec<GroupRec>,
    /// Users made by `seed_users` so far.
    pub(crate) seeded: usize,
}

/// A new random (v4) UUID, lowercase.
pub(crate) fn new_key() -> String {
    let n = fastrand::u128(..);
    let n = (n & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Now as RFC 3339 UTC with milliseconds.
pub(crate) fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// The name a seeded user gets: the e-mail's local part.
pub(crate) fn name_from_email(email: &str) -> String {
    email.split('@').next().unwrap_or(email).to_owned()
}

impl Store {
    /// Adds a user; `None` when the e-mail (case-insensitively) is taken.
    pub(crate) fn insert_user(&mut self, p: Profile) -> Option<usize> {
        let folded = p.email.to_lowercase();
        if self.by_email.contains_key(&folded) {
            return None;
        }
        let key = new_key();
        let index = self.users.len();
        self.by_email.insert(folded, index);
        self.by_key.insert(key.clone(), index);
        self.users.push(UserRec {
            sort: (p.name.to_lowercase(), key.clone()),
            key,
            name: p.name,
            email: p.email,
            username: p.username,
            active: p.active,
            idp: p.idp,
            subject: p.subject,
            via_api: p.via_api,
            created_at: now_rfc3339(),
        });
        Some(index)
    }

    /// A user by key (any case).
    pub(crate) fn user(&self, key: &str) -> Option<usize> {
        self.by_key.get(&key.to_ascii_lowercase()).copied()
    }

    /// A user by e-mail (case-insensitively).
    pub(crate) fn user_by_email(&self, email: &str) -> Option<usize> {
        self.by_email.get(&email.to_lowercase()).copied()
    }

    /// A group's index by key (any case).
    pub(crate) fn group(&self, key: &str) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.key.eq_ignore_ascii_case(key))
    }

    /// The group of a stage with a name, case-insensitively, other than `except`.
    pub(crate) fn group_named(
        &self,
        env: &str,
        name: &str,
        except: Option<usize>,
    ) -> Option<usize> {
        let name = name.to_lowercase();
        self.groups.iter().enumerate().position(|(i, g)| {
            Some(i) != except && g.env.eq_ignore_ascii_case(env) && g.name.to_lowercase() == name
        })
    }

    /// Adds a group of `assigned` users.
    pub(crate) fn insert_group(
        &mut self,
        env: &str,
        name: String,
        description: Option<String>,
        assigned: BTreeSet<usize>,
    ) -> String {
        let key = new_key();
        self.groups.push(GroupRec {
            key: key.clone(),
            name,
            description,
            env: env.to_ascii_lowercase(),
            updated_at: now_rfc3339(),
            assigned,
            mapped: BTreeSet::new(),
        });
        key
    }

    /// Sorts user indexes in listing order (name, then key).
    pub(crate) fn sort_users(&self, indexes: &mut [usize]) {
        indexes.sort_by(|a, b| self.users[*a].sort.cmp(&self.users[*b].sort));
    }

    /// The e-mails of users, sorted.
    pub(crate) fn emails(&self, indexes: &BTreeSet<usize>) -> Vec<String> {
        let mut out: Vec<String> = indexes
            .iter()
            .map(|i| self.users[*i].email.clone())
            .collect();
        out.sort();
        out
    }

    /// A user as `GET /users` lists it.
    pub(crate) fn user_json(&self, index: usize) -> Value {
        let u = &self.users[index];
        json!({
            "key": u.key,
            "name": u.name,
            "email": u.email,
            "username": u.username,
            "status": if u.active { "Active" } else { "Inactive" },
            "isActive": u.active,
            "photoUrl": null,
            "lastLoginAt": null,
            "createdAt": u.created_at,
        })
    }

    /// A user as a group's member listing nests it.
    pub(crate) fn member_json(&self, index: usize) -> Value {
        let u = &self.users[index];
        json!({
            "key": u.key,
            "name": u.name,
            "email": u.email,
            "status": if u.active { "Active" } else { "Inactive" },
            "photoUrl": null,
            "lastLoginAt": null,
        })
    }
}

/// A group as `GroupApiResponse`.
pub(crate) fn group_json(g: &GroupRec) -> Value {
    json!({
        "key": g.key,
        "name": g.name,
        "description": g.description,
        "environmentKey": g.env,
        "portfolioKey": null,
        "updatedAt": g.updated_at,
        "groupIdpClaimMappings": [],
    })
}
