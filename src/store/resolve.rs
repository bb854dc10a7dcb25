//! Finding what the journal's entries name in the store: each user's remote id (cached, with
//! "not found" answers, asked in bulk where the API allows, created where configured), each
//! group's remote id (cached by local group; a first sight journals what the mirror holds), and
//! which mapped groups the store lacks before a run plans.

use std::collections::{BTreeMap, BTreeSet};

use tracing::info;

use super::RemoteStore;
use super::StoreError;
use super::drain::{DrainOptions, GroupWork};
use crate::model::{GroupName, Stage};
use crate::state::{CachedGroup, State};

/// The store's id of every user the entries name: from the cache, else asked in bulk (and, for
/// an add, created where the store is configured to).
pub(super) async fn resolve_users<S: RemoteStore>(
    store: &S,
    state: &mut State,
    options: &DrainOptions<'_>,
    keys: &BTreeMap<i64, String>,
    adds: &BTreeSet<i64>,
) -> Result<BTreeMap<i64, Option<String>>, StoreError> {
    let tenant = store.tenant().to_owned();
    let ids: Vec<i64> = keys.keys().copied().collect();
    let mut known = state.remote_users(&tenant, &ids, options.negative_since)?;
    let unknown: Vec<(i64, &String)> = keys
        .iter()
        .filter(|(id, _)| !known.contains_key(id))
        .map(|(&id, key)| (id, key))
        .collect();
    if unknown.is_empty() {
        return Ok(known);
    }
    let asked: Vec<String> = unknown.iter().map(|(_, k)| (*k).clone()).collect();
    let found = store.find_users(&asked).await?;
    let mut answers = Vec::with_capacity(unknown.len());
    for (id, key) in unknown {
        let mut remote = found.get(key).cloned();
        if remote.is_none() && adds.contains(&id) {
            remote = store.create_user(key).await?;
        }
        answers.push((id, remote.clone()));
        known.insert(id, remote);
    }
    state.set_remote_users(&tenant, &answers)?;
    Ok(known)
}

/// The remote group of a local group: cached, else found by name (or created).
pub(super) async fn resolve_group<S: RemoteStore>(
    store: &S,
    state: &mut State,
    options: &DrainOptions<'_>,
    group_id: i64,
    group: &GroupWork,
) -> Result<Option<CachedGroup>, StoreError> {
    let tenant = store.tenant();
    if let Some(cached) = state.remote_group(tenant, group_id)? {
        return Ok(Some(cached));
    }
    let stage = Stage::parse(&group.stage).map_err(|e| StoreError::Invalid(e.0))?;
    let found = match store.find_group(&stage, &group.name).await? {
        Some(found) => found,
        None if options.create_groups => {
            info!(store = store.kind(), stage = %stage, group = %group.name, "Creating the group in the store.");
            store.create_group(&stage, &group.name).await?
        }
        None => return Ok(None),
    };
    let cached = CachedGroup {
        remote_id: found.id,
        remote_name: found.name,
        read_at: None,
    };
    state.set_remote_group(tenant, group_id, Some(&cached))?;
    Ok(Some(cached))
}

/// Of these (stage, name) groups, those the store lacks (and that will not be created): their
/// mappings are `remote_group_not_found`. Groups found are cached, unless this is a dry run.
pub async fn missing_groups<S: RemoteStore>(
    store: &S,
    options: &DrainOptions<'_>,
    groups: &[(Stage, String)],
) -> Result<Vec<(Stage, String)>, StoreError> {
    if options.create_groups || groups.is_empty() {
        return Ok(Vec::new());
    }
    let tenant = store.tenant();
    let mut state = if options.dry_run {
        State::open_read_only(options.state)?
    } else {
        State::open(options.state)?
    };
    let mut missing = Vec::new();
    for (stage, name) in groups {
        let norm = GroupName::parse(name)
            .map(|n| n.norm().to_owned())
            .unwrap_or_else(|_| name.to_lowercase());
        let local = state.group_id_of(stage.as_str(), &norm)?;
        if let Some(id) = local
            && state.remote_group(tenant, id)?.is_some()
        {
            continue;
        }
        match store.find_group(stage, name).await? {
            Some(found) => {
                if let (Some(id), false) = (local, options.dry_run) {
                    let cached = CachedGroup {
                        remote_id: found.id,
                        remote_name: found.name,
                        read_at: None,
                    };
                    state.set_remote_group(tenant, id, Some(&cached))?;
                }
            }
            None => missing.push((stage.clone(), name.clone())),
        }
    }
    Ok(missing)
}
