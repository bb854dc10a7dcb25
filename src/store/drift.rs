//! Drift: the store's real membership of each remote group read again when it is due
//! (`drift_interval`, or `--full`), where the API can list it. What idpsync owns and the store
//! lost is journalled again, what it owns and the mirror no longer holds is journalled for
//! removal; the rest is someone else's and is left alone.

use std::collections::BTreeSet;

use tracing::warn;

use super::drain::DrainOptions;
use super::{RemoteStore, StoreError};
use crate::state::{CachedGroup, Owner, State};

/// Reads the members of every group due and journals what idpsync owns that drifted.
pub(super) async fn drift<S: RemoteStore>(
    store: &S,
    state: &mut State,
    options: &DrainOptions<'_>,
) -> Result<u64, StoreError> {
    let tenant = store.tenant().to_owned();
    let due_before = if options.full {
        i64::MAX
    } else {
        crate::state::unix_now() - options.drift_interval.as_secs() as i64
    };
    let open: BTreeSet<(i64, i64)> = state
        .journal_open(&tenant)?
        .iter()
        .map(|e| (e.group_id, e.user_id))
        .collect();
    let by_remote = state.users_by_remote_id(&tenant)?;
    let mut found = 0;
    for (group_id, cached) in state.remote_groups_due(&tenant, due_before)? {
        let Some(now) = store.group(&cached.remote_id).await? else {
            warn!(store = store.kind(), group = %cached.remote_name, "The group is gone from the store; it is looked up again next time.");
            state.set_remote_group(&tenant, group_id, None)?;
            continue;
        };
        if now.name != cached.remote_name {
            warn!(store = store.kind(), was = %cached.remote_name, now = %now.name, "The group was renamed in the store; idpsync keeps sending to it by its id.");
            let renamed = CachedGroup {
                remote_name: now.name.clone(),
                ..cached.clone()
            };
            state.set_remote_group(&tenant, group_id, Some(&renamed))?;
        }
        let present: BTreeSet<String> = store
            .members(&cached.remote_id)
            .await?
            .into_iter()
            .collect();
        let owned = state.remote_members(&tenant, &cached.remote_id)?;
        let mirror = state.mirror_members(group_id)?;
        let mirror_ids: Vec<i64> = mirror.iter().map(|(id, _)| *id).collect();
        let remote_of = state.remote_users(&tenant, &mirror_ids, i64::MIN)?;
        let in_mirror: BTreeSet<&String> = remote_of.values().flatten().collect();
        let mut changes = Vec::new();
        for (user_id, _) in &mirror {
            if let Some(Some(remote)) = remote_of.get(user_id)
                && !present.contains(remote)
                && !open.contains(&(group_id, *user_id))
            {
                changes.push(("add", group_id, *user_id));
            }
        }
        for (remote, owner) in &owned {
            if *owner == Owner::Ours
                && present.contains(remote)
                && !in_mirror.contains(remote)
                && let Some(&user_id) = by_remote.get(remote)
                && !open.contains(&(group_id, user_id))
            {
                changes.push(("remove", group_id, user_id));
            }
        }
        // Journalled before the read is recorded: a crash between the two reads again.
        if !changes.is_empty() {
            warn!(store = store.kind(), group = %cached.remote_name, changes = changes.len(), "Drift: the store differs from what idpsync sent it; correcting the memberships idpsync owns.");
            state.journal_drift(&tenant, &changes)?;
            found += changes.len() as u64;
        }
        // A member with an entry still open is the journal's to settle, not "preexisting".
        let settling: BTreeSet<String> = present
            .iter()
            .filter(|remote| {
                by_remote
                    .get(*remote)
                    .is_some_and(|&user| open.contains(&(group_id, user)))
            })
            .cloned()
            .collect();
        let members: Vec<String> = present.into_iter().collect();
        state.record_remote_read(&tenant, group_id, &cached.remote_id, &members, &settling)?;
    }
    Ok(found)
}
