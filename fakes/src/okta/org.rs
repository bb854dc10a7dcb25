//! What a fake Okta org holds: users with statuses and profiles, groups of users, the API token
//! and a service app's registered keys — and a generator of large orgs.

/// A user.
#[derive(Debug, Clone)]
pub struct User {
    /// `00u…` id.
    pub id: String,
    /// `ACTIVE`, `SUSPENDED`, `DEPROVISIONED`, `LOCKED_OUT`, …
    pub status: String,
    /// `profile.email`.
    pub email: Option<String>,
    /// `profile.login`.
    pub login: String,
}

/// A group.
#[derive(Debug, Clone)]
pub struct Group {
    /// `00g…` id.
    pub id: String,
    /// `profile.name`.
    pub name: String,
    /// `OKTA_GROUP` or `APP_GROUP`.
    pub kind: String,
    /// Indexes into the org's users.
    pub members: Vec<usize>,
}

/// A whole org.
#[derive(Debug, Clone, Default)]
pub struct Org {
    /// The SSWS API token accepted.
    pub api_token: String,
    /// The service app's client id.
    pub client_id: String,
    /// The service app's registered public keys: (kid, PEM, is EC).
    pub keys: Vec<(String, String, bool)>,
    /// Users.
    pub users: Vec<User>,
    /// Groups, in listing order.
    pub groups: Vec<Group>,
}

impl Org {
    /// An empty org accepting `api_token`.
    pub fn new(api_token: &str) -> Org {
        Org {
            api_token: api_token.to_owned(),
            client_id: "0oaFAKEservice".to_owned(),
            ..Org::default()
        }
    }

    /// Adds a user; returns its index.
    pub fn user(&mut self, id: &str, email: Option<&str>, status: &str) -> usize {
        self.users.push(User {
            id: id.to_owned(),
            status: status.to_owned(),
            email: email.map(str::to_owned),
            login: format!("{id}@login.test"),
        });
        self.users.len() - 1
    }

    /// Adds an `OKTA_GROUP` of the users at `members`.
    pub fn group(&mut self, id: &str, name: &str, members: Vec<usize>) {
        self.groups.push(Group {
            id: id.to_owned(),
            name: name.to_owned(),
            kind: "OKTA_GROUP".to_owned(),
            members,
        });
    }

    /// A large org: `users` users, `groups` groups, `memberships` random draws (duplicates
    /// collapse). Deterministic for a seed.
    pub fn generate(users: usize, groups: usize, memberships: usize, seed: u64) -> Org {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut org = Org::new("bench-token");
        for i in 0..users {
            org.user(
                &format!("00u{i:017}"),
                Some(&format!("user{i:06}@example.com")),
                "ACTIVE",
            );
        }
        let mut members: Vec<std::collections::BTreeSet<usize>> = vec![Default::default(); groups];
        for _ in 0..memberships {
            members[rng.usize(0..groups)].insert(rng.usize(0..users));
        }
        for (g, set) in members.into_iter().enumerate() {
            org.group(
                &format!("00g{g:017}"),
                &format!("Group {g}"),
                set.into_iter().collect(),
            );
        }
        org
    }
}
