//! A login through the same core as a run, scoped to one user (SPEC §4 `POST /v1/login`).
//!
//! The groups claim becomes a one-user read: each claimed value is an IdP group holding only
//! this user, named through the IdP's last applied read when that read saw it (Entra tokens
//! carry ids where mappings often name groups; Okta tokens carry names). The core plans it in
//! the one-user scope — adds only for an IdP that batch reads own removals for — and the plan
//! goes through the checked apply as actor `login`, beside the token's `iat`, in one short
//! transaction. No run lock is taken and no run is recorded: a login never waits behind a read.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet as HashSet;
use serde::Serialize;

use super::RunOptions;
use super::planning::plan_run;
use super::read::Read;
use crate::config::{Config, IdpConfig, IdpKind, MappingConfig};
use crate::directory::{Directory, IndexedGroup, SnapshotUser};
use crate::model::{Stage, UserKey};
use crate::reconcile::{Change, Scope};
use crate::state::{
    IdpGroupNames, LoginApplied, LoginChange, LoginRequest, LoginState, State, StateError,
};

/// The reply of a login (SPEC §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginReply {
    /// The user key.
    pub user: String,
    /// The user's groups after the login.
    pub groups: Vec<LoginGroup>,
    /// Effective roles: stage → app → roles.
    pub roles: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// What this login changed.
    pub changes: LoginChanges,
}

/// A group of a [`LoginReply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginGroup {
    /// Its name.
    pub name: String,
    /// Its stage.
    pub stage: String,
}

/// Counts of a [`LoginReply`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LoginChanges {
    /// Memberships added.
    pub adds: u64,
    /// Memberships removed.
    pub removes: u64,
}

/// Why a login changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The user claim is not a usable user key (401 `invalid_token`).
    #[error("the user claim is not a usable user key: {0}")]
    BadUser(String),
    /// The user is unknown and `auto_create = false` (403 `user_not_allowed`).
    #[error("{0} is not a known user, and [idp.oidc] auto_create = false for IdP {1}")]
    NotAllowed(String, String),
    /// The state failed (503).
    #[error(transparent)]
    State(#[from] StateError),
}

/// One verified login of `user` through `idp`: the groups claim `claimed`, from a token issued
/// at `issued_at`, written through `state` (the state file of `config`). `planned` is called
/// once the login is planned, before it waits for its write.
pub fn login_once(
    config: &Config,
    state: &mut State,
    idp: &IdpConfig,
    user: &str,
    issued_at: i64,
    claimed: &[String],
    planned: impl FnOnce(),
) -> Result<LoginReply, LoginError> {
    let key = UserKey::parse(user).map_err(|e| LoginError::BadUser(e.to_string()))?;
    let scope = Scope::User {
        adds_only: !matches!(idp.kind, IdpKind::Oidc { .. }),
    };
    let mappings: Vec<&MappingConfig> = config
        .mappings
        .iter()
        .filter(|m| m.idp == idp.name)
        .collect();
    let mapped: HashSet<&str> = mappings.iter().map(|m| m.idp_group.as_str()).collect();
    let mut targets: Vec<(Stage, String)> = mappings
        .iter()
        .map(|m| (m.stage.clone(), m.group.norm().to_owned()))
        .collect();
    targets.sort_unstable();
    targets.dedup();
    let request = LoginRequest {
        idp: &idp.name,
        user: key.as_str(),
        stages: &config.daemon.stages,
        issued_at,
        auto_create: idp.oidc.as_ref().is_none_or(|o| o.auto_create),
        targets: &targets,
    };
    // Planned inside the login's write transaction, against the memberships as they are there.
    let plan = |start: &LoginState<'_>| {
        let directory = one_user_read(&key, claimed, start.group_names, &mapped);
        let reads = [Read::unread(idp.name.clone(), Ok(directory))];
        let (world, plan) = plan_run(
            config,
            &RunOptions::default(),
            &reads,
            &start.loaded,
            scope,
            &Default::default(),
        );
        let owned = |list: &[Change]| -> Vec<LoginChange> {
            list.iter()
                .map(|c| LoginChange {
                    group: world.group_ids[c.group as usize].expect("a login sees stored groups"),
                    cause: c.cause.to_string(),
                })
                .collect()
        };
        (owned(&plan.adds), owned(&plan.removes))
    };
    let done = state.login(&request, plan, planned)?;
    let changes = match done.applied {
        LoginApplied::NotAllowed => {
            return Err(LoginError::NotAllowed(
                key.to_string(),
                idp.name.to_string(),
            ));
        }
        LoginApplied::Stale => LoginChanges::default(),
        LoginApplied::Applied(applied) => LoginChanges {
            adds: applied.adds,
            removes: applied.removes,
        },
    };
    let doc = crate::views::user_doc_of(&key, &done.memberships);
    Ok(LoginReply {
        user: doc.user,
        groups: doc
            .groups
            .into_iter()
            .map(|g| LoginGroup {
                name: g.name,
                stage: g.stage,
            })
            .collect(),
        roles: doc.roles,
        changes,
    })
}

/// The claim as a read of one user: each claimed value one group holding the user, with its id
/// and name from the last applied read when that read saw it. Only groups a mapping can find (by
/// id or exact name, as [`Directory::find`] does) are kept: a token may claim thousands.
fn one_user_read(
    key: &UserKey,
    claimed: &[String],
    names: &IdpGroupNames,
    mapped: &HashSet<&str>,
) -> Directory {
    let mut groups: BTreeMap<&str, &str> = BTreeMap::new();
    for value in claimed {
        let (id, name) = match (names.name_of(value), names.ids_named(value)) {
            (Some(name), _) => (value.as_str(), name),
            (None, [id]) => (id.as_str(), value.as_str()),
            _ => (value.as_str(), value.as_str()),
        };
        if !mapped.contains(id) && !mapped.contains(name) {
            continue;
        }
        groups.entry(id).or_insert(name);
    }
    let users = [SnapshotUser {
        id: key.as_str(),
        key: Some(key.as_str()),
        enabled: true,
    }];
    // The user's own id is the key; a claimed value equal to it cannot also be a group id.
    let groups = groups
        .into_iter()
        .filter(|&(id, _)| id != key.as_str())
        .map(|(id, name)| IndexedGroup {
            id: id.to_owned(),
            name: name.to_owned(),
            users: vec![0],
        })
        .collect();
    Directory::resolve_indexed(&users, groups).expect("one user and groups with distinct ids")
}
