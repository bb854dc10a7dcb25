//! What a fake tenant holds: directory objects of every member type, groups nesting groups
//! (cycles allowed), the app registration's credentials — and a generator of large tenants.

use std::collections::HashMap;

/// A user object.
#[derive(Debug, Clone)]
pub struct User {
    /// Object id.
    pub id: String,
    /// `mail`, which may be null.
    pub mail: Option<String>,
    /// `userPrincipalName`.
    pub upn: String,
    /// `accountEnabled`.
    pub enabled: bool,
    /// A member the app may not read in full: only `@odata.type` and `id` come back.
    pub limited: bool,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Member {
    /// A user, by id.
    User(String),
    /// A nested group, by id.
    Group(String),
    /// Another directory object: (`@odata.type`, id).
    Other(&'static str, String),
}

/// A group.
#[derive(Debug, Clone)]
pub struct Group {
    /// Object id.
    pub id: String,
    /// `displayName`.
    pub name: String,
    /// Direct members.
    pub members: Vec<Member>,
}

/// A whole tenant and the app registration idpsync signs in as.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// The tenant id in token URLs.
    pub tenant_id: String,
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// The registered certificate: (base64url SHA-256 thumbprint, PEM public key).
    pub certificate: Option<(String, String)>,
    /// Users by id.
    pub users: HashMap<String, User>,
    /// Groups, in listing order.
    pub groups: Vec<Group>,
    /// Index of each group in `groups` by id.
    by_id: HashMap<String, usize>,
}

impl Tenant {
    /// An empty tenant with the given credentials.
    pub fn new(tenant_id: &str, client_id: &str, client_secret: &str) -> Tenant {
        Tenant {
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            certificate: None,
            users: HashMap::new(),
            groups: Vec::new(),
            by_id: HashMap::new(),
        }
    }

    /// Adds a user with `mail` and a UPN derived from it.
    pub fn user(&mut self, id: &str, mail: Option<&str>, enabled: bool) -> &mut Tenant {
        let upn = format!("{}@tenant.test", id);
        self.users.insert(
            id.to_owned(),
            User {
                id: id.to_owned(),
                mail: mail.map(str::to_owned),
                upn,
                enabled,
                limited: false,
            },
        );
        self
    }

    /// Adds a group.
    pub fn group(&mut self, id: &str, name: &str, members: Vec<Member>) -> &mut Tenant {
        self.by_id.insert(id.to_owned(), self.groups.len());
        self.groups.push(Group {
            id: id.to_owned(),
            name: name.to_owned(),
            members,
        });
        self
    }

    /// A large tenant for benchmarks: `users` users, `groups` groups, `memberships` random
    /// (group, user) draws (duplicates collapse), and every 100th group nesting the next one.
    /// Deterministic for a seed.
    pub fn generate(users: usize, groups: usize, memberships: usize, seed: u64) -> Tenant {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut tenant = Tenant::new("bench-tenant", "bench-client", "bench-secret");
        for i in 0..users {
            let id = format!("{:08x}-0000-4000-8000-{:012x}", i, i);
            tenant.users.insert(
                id.clone(),
                User {
                    upn: format!("user{i:06}@bench.test"),
                    mail: Some(format!("user{i:06}@example.com")),
                    id,
                    enabled: true,
                    limited: false,
                },
            );
        }
        let mut members: Vec<std::collections::BTreeSet<usize>> = vec![Default::default(); groups];
        for _ in 0..memberships {
            members[rng.usize(0..groups)].insert(rng.usize(0..users));
        }
        for (g, set) in members.into_iter().enumerate() {
            let mut list: Vec<Member> = set
                .into_iter()
                .map(|u| Member::User(format!("{:08x}-0000-4000-8000-{:012x}", u, u)))
                .collect();
            if g % 100 == 0 && g + 1 < groups {
                list.push(Member::Group(group_id(g + 1)));
            }
            tenant.group(&group_id(g), &format!("Group {g}"), list);
        }
        tenant
    }

    /// The tenant as a directory export (idpsync's file IdP format) with the same users, groups
    /// and nesting, for comparing reads of one directory.
    pub fn export(&self) -> serde_json::Value {
        let mut users: Vec<&User> = self.users.values().collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        serde_json::json!({
            "users": users.iter().map(|u| serde_json::json!({
                "id": u.id, "email": u.mail, "enabled": u.enabled})).collect::<Vec<_>>(),
            "groups": self.groups.iter().map(|g| serde_json::json!({
                "id": g.id, "name": g.name,
                "members": g.members.iter().filter_map(|m| match m {
                    Member::User(id) | Member::Group(id) => Some(id.as_str()),
                    Member::Other(..) => None,
                }).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        })
    }

    pub(crate) fn find_group(&self, id: &str) -> Option<&Group> {
        self.by_id.get(id).map(|&i| &self.groups[i])
    }

    /// Direct members, or all members through nesting (cycle-safe, each object once, nested
    /// groups themselves included) for `transitiveMembers`.
    pub(crate) fn listed_members(&self, group: &Group, transitive: bool) -> Vec<Member> {
        if !transitive {
            return group.members.clone();
        }
        let mut seen_groups = std::collections::HashSet::from([group.id.clone()]);
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        let mut queue = std::collections::VecDeque::from([group]);
        while let Some(g) = queue.pop_front() {
            for m in &g.members {
                if let Member::Group(id) = m {
                    if seen_groups.insert(id.clone())
                        && let Some(nested) = self.find_group(id)
                    {
                        queue.push_back(nested);
                    } else {
                        continue;
                    }
                }
                if seen.insert(m.clone()) {
                    out.push(m.clone());
                }
            }
        }
        out
    }
}

fn group_id(g: usize) -> String {
    format!("{:08x}-1111-4000-8000-{:012x}", g, g)
}
