//! Resolving one IdP's mappings against its read: the desired memberships, the new baseline, and
//! what looks suspicious (a mapped group emptied, vanished or ambiguous) for the empty guard.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::ranks::Ranks;
use super::{
    Baseline, GroupDigest, GroupIdx, IdpInput, IdpRead, InactiveMapping, InactiveReason, Plan,
    Policy, Scope, Universe, UserIdx,
};
use crate::config::MappingConfig;
use crate::directory::Lookup;

/// What one IdP's mappings resolve to in this read.
pub(super) struct Resolved {
    /// (membership key, cause) pairs, unsorted, with duplicates.
    pub(super) desired: Vec<(u64, CauseRank)>,
    /// The IdP groups the mappings name, sorted: a [`CauseRank`] indexes this.
    pub(super) causes: Vec<Arc<str>>,
    pub(super) baseline: Baseline,
    pub(super) suspicious: Vec<String>,
}

pub(super) fn resolve_mappings(
    idp: &IdpInput<'_>,
    read: IdpRead<'_>,
    universe: &Universe,
    ranks: &Ranks,
    group_index: &BTreeMap<(&str, &str), GroupIdx>,
    policy: &Policy,
    plan: &mut Plan,
) -> Result<Resolved, String> {
    // One user's plan judges no mapping and moves no baseline: what is left out here it never
    // reads, and a login plans a few hundred mappings per sign-in.
    let batch = policy.scope == Scope::All;
    let holders: BTreeSet<GroupIdx> = if batch {
        idp.current.iter().map(|h| h.group).collect()
    } else {
        BTreeSet::new()
    };
    let mut desired = Vec::new();
    let mut baseline = Baseline::new();
    let mut suspicious = Vec::new();
    let mut expanded: BTreeMap<usize, Vec<UserIdx>> = BTreeMap::new();
    let mut scratch = Vec::new();
    let key_hashes = if batch {
        key_hashes(universe)
    } else {
        Vec::new()
    };
    // Causes by rank, so two mappings onto one group keep the smallest IdP group as the cause.
    let mut cause_names: Vec<&str> = idp.mappings.iter().map(|m| m.idp_group.as_str()).collect();
    cause_names.sort_unstable();
    cause_names.dedup();
    let mut emptied = BTreeSet::new();
    let inactive = |reason, m: &MappingConfig| InactiveMapping {
        idp: m.idp.clone(),
        idp_group: m.idp_group.clone(),
        group: m.group.as_str().to_owned(),
        stage: m.stage.clone(),
        reason,
    };
    let mut statuses = Vec::new();
    // Mappings in the order of their target group's rank: desired then comes out nearly sorted,
    // which the sort in `diff` finishes in close to linear time.
    let mut ordered: Vec<(u32, Option<GroupIdx>, &MappingConfig)> = idp
        .mappings
        .iter()
        .map(|m| {
            let target = group_index
                .get(&(m.stage.as_str(), m.group.norm()))
                .copied();
            (
                target.map_or(u32::MAX, |g| ranks.groups[g as usize]),
                target,
                *m,
            )
        })
        .collect();
    ordered.sort_by_key(|&(rank, _, _)| rank);
    for (_, target, mapping) in ordered {
        if !policy.served_stages.contains(&mapping.stage) {
            if batch {
                statuses.push(inactive(InactiveReason::StageNotServed, mapping));
            }
            continue;
        }
        let lookup = read.directory.find(&mapping.idp_group);
        let Some(target) = target else {
            if batch {
                statuses.push(inactive(InactiveReason::GroupNotFound, mapping));
            }
            continue;
        };
        if !policy.remote_missing.is_empty()
            && policy
                .remote_missing
                .contains(&(mapping.stage.clone(), mapping.group.norm().to_owned()))
        {
            if batch {
                statuses.push(inactive(InactiveReason::RemoteGroupNotFound, mapping));
                // "Not in the store" is never "nobody is there": a group that holds memberships
                // is not emptied because the store lost (or never had) its twin.
                if holders.contains(&target) {
                    suspicious.push(format!(
                        "the remote store lacks group {}/{} while it holds memberships",
                        mapping.stage, mapping.group
                    ));
                }
            }
            continue;
        }
        let found = match lookup {
            Lookup::Found(index) => index,
            Lookup::NotFound | Lookup::Ambiguous if !batch => continue,
            Lookup::NotFound | Lookup::Ambiguous => {
                let reason = if lookup == Lookup::NotFound {
                    InactiveReason::IdpGroupNotFound
                } else {
                    InactiveReason::IdpGroupAmbiguous
                };
                if holders.contains(&target) {
                    suspicious.push(format!(
                        "mapped IdP group {:?} is {} while {}/{} holds its memberships",
                        mapping.idp_group,
                        if reason == InactiveReason::IdpGroupNotFound {
                            "gone"
                        } else {
                            "ambiguous"
                        },
                        mapping.stage,
                        mapping.group
                    ));
                }
                statuses.push(inactive(reason, mapping));
                continue;
            }
        };
        let members = match expanded.entry(found) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let local = read
                    .directory
                    .members(found, read.nested, read.max_depth)
                    .map_err(|e| e.to_string())?;
                let mut members: Vec<UserIdx> =
                    local.iter().map(|&u| read.user_map[u as usize]).collect();
                ranks.tick(local.len() as u64);
                members.sort_unstable_by(|&a, &b| {
                    ranks.tick(1);
                    ranks.users[a as usize].cmp(&ranks.users[b as usize])
                });
                members.dedup();
                entry.insert(members)
            }
        };
        if batch {
            let group = &read.directory.groups[found];
            let digest = digest(&key_hashes, members, &mut scratch);
            let had = idp.baseline.get(&group.id).map_or(0, |d| d.members);
            if digest.members == 0 && had > 0 && emptied.insert(found) {
                suspicious.push(format!(
                    "mapped IdP group {:?} emptied: 0 members, {had} at the last applied read",
                    group.name
                ));
            }
            baseline.insert(group.id.clone(), digest);
        }
        let cause = cause_names
            .binary_search(&mapping.idp_group.as_str())
            .expect("every mapping's IdP group is ranked") as CauseRank;
        desired.extend(members.iter().map(|&u| (ranks.key(target, u), cause)));
    }
    plan.inactive.extend(statuses);
    suspicious.sort();
    suspicious.dedup();
    Ok(Resolved {
        desired,
        causes: cause_names.into_iter().map(Arc::from).collect(),
        baseline,
        suspicious,
    })
}

/// The xxh3 of every user key, indexed like [`Universe::users`]: a group's digest hashes these
/// rather than the keys, so it reads a small dense array instead of a million scattered strings.
pub fn key_hashes(universe: &Universe) -> Vec<u64> {
    universe
        .users
        .iter()
        .map(|k| xxhash_rust::xxh3::xxh3_64(k.as_str().as_bytes()))
        .collect()
}

/// The digest of a member list sorted by key: the count, and the xxh3 of the members'
/// [`key_hashes`] in that order (little-endian), gathered into `scratch` and hashed in one call.
pub fn digest(
    key_hashes: &[u64],
    members_sorted_by_key: &[UserIdx],
    scratch: &mut Vec<u8>,
) -> GroupDigest {
    scratch.clear();
    for &u in members_sorted_by_key {
        scratch.extend_from_slice(&key_hashes[u as usize].to_le_bytes());
    }
    GroupDigest {
        members: members_sorted_by_key.len() as u64,
        hash: xxhash_rust::xxh3::xxh3_64(scratch),
    }
}

/// The rank of a mapping's IdP group among the IdP's mapped groups ([`Resolved::causes`]).
pub(super) type CauseRank = u32;
