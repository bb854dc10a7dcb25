//! Test harness for the core: a fake store that really applies plans, and snapshot builders.

use std::collections::BTreeMap;

use super::*;
use crate::directory::{Directory, Snapshot, SnapshotGroup, SnapshotUser};
use crate::model::GroupName;

/// One IdP of a test run.
#[derive(Debug, Clone)]
pub struct Idp {
    pub name: String,
    pub read: Result<Snapshot, String>,
    pub mappings: Vec<MappingConfig>,
    pub nested: bool,
    pub max_depth: usize,
}

impl Idp {
    pub fn new(name: &str, read: Snapshot, mappings: Vec<MappingConfig>) -> Self {
        Idp {
            name: name.into(),
            read: Ok(read),
            mappings,
            nested: true,
            max_depth: 8,
        }
    }

    /// The same IdP with other mappings.
    pub fn with_mappings(mut self, mappings: Vec<MappingConfig>) -> Self {
        self.mappings = mappings;
        self
    }

    pub fn failing(name: &str, mappings: Vec<MappingConfig>) -> Self {
        Idp {
            name: name.into(),
            read: Err("connection refused".into()),
            mappings,
            nested: true,
            max_depth: 8,
        }
    }
}

/// A store that applies plans, so a test can plan again.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub universe: Universe,
    pub held: BTreeMap<String, Vec<Held>>,
    pub baselines: BTreeMap<String, Baseline>,
    pub policy: Policy,
}

impl Fixture {
    /// A store with these (stage, group) pairs.
    pub fn new(groups: &[(&str, &str)]) -> Self {
        let groups = groups
            .iter()
            .map(|(stage, name)| GroupEntry {
                stage: Stage::parse(stage).unwrap(),
                name: name.to_string(),
                norm: GroupName::parse(name).unwrap().norm().to_owned(),
            })
            .collect();
        Fixture {
            universe: Universe {
                groups,
                ..Universe::default()
            },
            held: BTreeMap::new(),
            baselines: BTreeMap::new(),
            policy: Policy {
                safety: SafetyConfig::default(),
                allow_removals: None,
                allow_empty: false,
                served_stages: ["development", "qa", "production"]
                    .iter()
                    .map(|s| Stage::parse(s).unwrap())
                    .collect(),
                remote_missing: Default::default(),
                command: "idpsync --config /etc/idpsync/idpsync.toml reconcile".into(),
                scope: Default::default(),
            },
        }
    }

    pub fn user(&mut self, key: &str) -> UserIdx {
        let key = UserKey::parse(key).unwrap();
        match self.universe.users.iter().position(|u| *u == key) {
            Some(i) => i as UserIdx,
            None => {
                self.universe.users.push(key);
                (self.universe.users.len() - 1) as UserIdx
            }
        }
    }

    pub fn group(&self, stage: &str, name: &str) -> GroupIdx {
        self.universe
            .groups
            .iter()
            .position(|g| g.stage.as_str() == stage && g.name == name)
            .unwrap() as GroupIdx
    }

    /// Gives `idp` a membership it holds already (as if applied earlier).
    pub fn hold(&mut self, idp: &str, stage: &str, group: &str, user: &str, cause: &str) {
        let (group, user) = (self.group(stage, group), self.user(user));
        self.held.entry(idp.into()).or_default().push(Held {
            group,
            user,
            cause: Arc::from(cause),
        });
    }

    pub fn plan(&mut self, idps: &[Idp]) -> Plan {
        let directories: Vec<Result<Directory, Failure>> = idps
            .iter()
            .map(|i| match &i.read {
                Ok(snapshot) => Directory::resolve(snapshot.clone())
                    .map_err(|e| Failure::new(FailureKind::Invalid, e.to_string())),
                Err(e) => Err(Failure::new(FailureKind::Unavailable, e.clone())),
            })
            .collect();
        let user_maps: Vec<Vec<UserIdx>> = directories
            .iter()
            .map(|d| match d {
                Ok(d) => d.users.iter().map(|u| self.user(u.key.as_str())).collect(),
                Err(_) => Vec::new(),
            })
            .collect();
        let empty = Baseline::new();
        let mappings: Vec<Vec<&MappingConfig>> = idps
            .iter()
            .map(|idp| idp.mappings.iter().collect())
            .collect();
        let inputs: Vec<IdpInput<'_>> = idps
            .iter()
            .enumerate()
            .map(|(i, idp)| IdpInput {
                name: IdpName::parse(&idp.name).unwrap(),
                mappings: &mappings[i],
                read: match &directories[i] {
                    Ok(directory) => Ok(IdpRead {
                        directory,
                        user_map: &user_maps[i],
                        nested: idp.nested,
                        max_depth: idp.max_depth,
                    }),
                    Err(e) => Err(e.clone()),
                },
                current: self.held.get(&idp.name).cloned().unwrap_or_default(),
                baseline: self.baselines.get(&idp.name).unwrap_or(&empty),
            })
            .collect();
        reconcile(&self.universe, &inputs, &self.policy)
    }

    pub fn apply(&mut self, plan: &Plan, idps: &[Idp]) {
        for (i, outcome) in plan.outcomes.iter().enumerate() {
            if let Outcome::Applied { baseline, .. } = outcome {
                let name = &idps[i].name;
                self.baselines.insert(name.clone(), baseline.clone());
                let held = self.held.entry(name.clone()).or_default();
                for r in plan.removes.iter().filter(|c| c.idp == i) {
                    held.retain(|h| (h.group, h.user) != (r.group, r.user));
                }
                for a in plan.adds.iter().filter(|c| c.idp == i) {
                    held.push(Held {
                        group: a.group,
                        user: a.user,
                        cause: a.cause.clone(),
                    });
                }
            }
        }
    }

    /// Plans and applies; returns the plan.
    pub fn run(&mut self, idps: &[Idp]) -> Plan {
        let plan = self.plan(idps);
        self.apply(&plan, idps);
        plan
    }

    /// (stage/group, user, cause) held by `idp`, sorted.
    pub fn memberships(&self, idp: &str) -> Vec<(String, String, String)> {
        let mut out: Vec<_> = self
            .held
            .get(idp)
            .map(|h| {
                h.iter()
                    .map(|h| self.describe(h.group, h.user, &h.cause))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    pub fn describe(
        &self,
        group: GroupIdx,
        user: UserIdx,
        cause: &str,
    ) -> (String, String, String) {
        let g = &self.universe.groups[group as usize];
        (
            format!("{}/{}", g.stage, g.name),
            self.universe.users[user as usize].to_string(),
            cause.to_owned(),
        )
    }

    /// The plan's changes as (sign, stage/group, user, idp, cause) lines.
    pub fn changes(&self, plan: &Plan, idps: &[Idp]) -> Vec<String> {
        let line = |sign: &str, c: &Change| {
            let (group, user, cause) = self.describe(c.group, c.user, &c.cause);
            format!("{sign} {group} {user} {} {cause}", idps[c.idp].name)
        };
        plan.adds
            .iter()
            .map(|c| line("+", c))
            .chain(plan.removes.iter().map(|c| line("-", c)))
            .collect()
    }
}

pub fn mapping(idp: &str, idp_group: &str, stage: &str, group: &str) -> MappingConfig {
    MappingConfig {
        idp: IdpName::parse(idp).unwrap(),
        idp_group: idp_group.into(),
        group: GroupName::parse(group).unwrap(),
        stage: Stage::parse(stage).unwrap(),
        line: None,
    }
}

/// A snapshot from `(id, email)` users and `(id, name, members)` groups; all users enabled.
pub fn snapshot(users: &[(&str, &str)], groups: &[(&str, &str, &[&str])]) -> Snapshot {
    Snapshot {
        users: users
            .iter()
            .map(|(id, email)| SnapshotUser {
                id: id.to_string(),
                key: Some(email.to_string()),
                enabled: true,
            })
            .collect(),
        groups: groups
            .iter()
            .map(|(id, name, members)| SnapshotGroup {
                id: id.to_string(),
                name: name.to_string(),
                members: members.iter().map(|m| m.to_string()).collect(),
            })
            .collect(),
    }
}
