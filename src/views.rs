//! Read-only documents of the store, shared by the CLI (`groups list`, `users show`) and the
//! service's read API (`GET /v1/groups`, `GET /v1/users/{key}`), so both answer alike (SPEC §3).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Config;
use crate::model::{GroupName, Stage, UserKey};
use crate::state::{GroupView, State, StateError, UserMembership};

/// One group of the `groups list` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GroupListItem {
    /// The name as shown.
    pub name: String,
    /// The stage.
    pub stage: String,
    /// The description.
    pub description: String,
    /// Whether the configuration declares it.
    pub declared: bool,
    /// Its roles, `App/Role`.
    pub roles: Vec<String>,
    /// How many users are members.
    pub member_count: u64,
}

/// The `groups show` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GroupDoc {
    /// The name as shown.
    pub name: String,
    /// The stage.
    pub stage: String,
    /// The description.
    pub description: String,
    /// Whether the configuration declares it (then its name, description and roles change there).
    pub declared: bool,
    /// Its roles, `App/Role`.
    pub roles: Vec<String>,
    /// Its members, sorted by user key.
    pub members: Vec<MemberDoc>,
}

/// One member of a [`GroupDoc`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MemberDoc {
    /// The user key.
    pub user: String,
    /// `direct`, `idp:<name>`: `direct` first.
    pub provenance: Vec<String>,
}

/// The `groups show` document of (`stage`, `name`); a declared group the store does not hold yet
/// shows as it will be. `None` when there is no such group.
pub fn group_doc(
    config: &Config,
    state: &State,
    stage: &Stage,
    name: &GroupName,
) -> Result<Option<GroupDoc>, StateError> {
    let group = match state.find_group(stage, name)? {
        Some(group) => group,
        None => match pending_declared(config, stage, name) {
            Some(group) => group,
            None => return Ok(None),
        },
    };
    let members = if group.id >= 0 {
        state.group_members(group.id)?
    } else {
        Vec::new()
    };
    Ok(Some(GroupDoc {
        declared: declared_line(config, &group.stage, &group.name).is_some(),
        name: group.name,
        stage: group.stage,
        description: group.description,
        roles: group.roles,
        members: members
            .into_iter()
            .map(|m| MemberDoc {
                user: m.user,
                provenance: m.provenance.iter().map(ToString::to_string).collect(),
            })
            .collect(),
    }))
}

/// The `users show` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserDoc {
    /// The user key.
    pub user: String,
    /// The groups the user is in, with provenances.
    pub groups: Vec<UserGroupDoc>,
    /// Effective roles: stage → app → roles.
    pub roles: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// One group of a [`UserDoc`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserGroupDoc {
    /// The group's name.
    pub name: String,
    /// The group's stage.
    pub stage: String,
    /// `direct`, `idp:<name>`.
    pub provenance: Vec<String>,
}

/// Every group (of `stage`, when given), declared groups not stored yet included, sorted by
/// (stage, name).
pub fn group_list(
    config: &Config,
    state: &State,
    stage: Option<&Stage>,
) -> Result<Vec<GroupListItem>, StateError> {
    let mut groups = state.list_groups(stage)?;
    add_pending_declared(config, stage, &mut groups);
    Ok(groups
        .into_iter()
        .map(|g| GroupListItem {
            declared: declared_line(config, &g.stage, &g.name).is_some(),
            name: g.name,
            stage: g.stage,
            description: g.description,
            roles: g.roles,
            member_count: g.member_count,
        })
        .collect())
}

/// The groups and effective roles of `key` (of `stage`, when given).
pub fn user_doc(
    state: &State,
    key: &UserKey,
    stage: Option<&Stage>,
) -> Result<UserDoc, StateError> {
    Ok(user_doc_of(key, &state.user_memberships(key, stage)?))
}

/// The `users show` document of `key` with `memberships` (from [`State::user_memberships`]).
pub fn user_doc_of(key: &UserKey, memberships: &[UserMembership]) -> UserDoc {
    let mut roles: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for m in memberships {
        for role in &m.roles {
            if let Some((app, name)) = role.split_once('/') {
                let list = roles
                    .entry(m.stage.clone())
                    .or_default()
                    .entry(app.to_owned())
                    .or_default();
                if !list.iter().any(|r| r == name) {
                    list.push(name.to_owned());
                    list.sort();
                }
            }
        }
    }
    UserDoc {
        user: key.to_string(),
        groups: memberships
            .iter()
            .map(|m| UserGroupDoc {
                name: m.name.clone(),
                stage: m.stage.clone(),
                provenance: m.provenance.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        roles,
    }
}

/// The configuration line declaring group (`stage`, `name`), when the configuration declares it.
pub fn declared_line(config: &Config, stage: &str, name: &str) -> Option<Option<usize>> {
    config
        .declared_group(stage, &crate::model::normalise_group_name(name))
        .map(|g| g.line)
}

/// Declared groups the store does not hold yet (the next real run creates them) show as they will be.
fn add_pending_declared(config: &Config, stage: Option<&Stage>, groups: &mut Vec<GroupView>) {
    let stored: std::collections::HashSet<(String, String)> = groups
        .iter()
        .map(|g| (g.stage.clone(), crate::model::normalise_group_name(&g.name)))
        .collect();
    let before = groups.len();
    for declared in &config.groups {
        if stage.is_some_and(|s| *s != declared.stage) {
            continue;
        }
        if !stored.contains(&(declared.stage.to_string(), declared.name.norm().to_owned())) {
            groups.extend(pending_declared(config, &declared.stage, &declared.name));
        }
    }
    if groups.len() > before {
        groups.sort_by(|a, b| {
            (a.stage.as_bytes(), a.name.as_bytes()).cmp(&(b.stage.as_bytes(), b.name.as_bytes()))
        });
    }
}

/// A declared group as it will be created, with no id (-1) and no members.
pub fn pending_declared(config: &Config, stage: &Stage, name: &GroupName) -> Option<GroupView> {
    config
        .declared_group(stage.as_str(), name.norm())
        .map(|g| GroupView {
            id: -1,
            name: g.name.as_str().to_owned(),
            stage: g.stage.to_string(),
            description: g.description.clone(),
            roles: g.roles.iter().map(ToString::to_string).collect(),
            member_count: 0,
        })
}
