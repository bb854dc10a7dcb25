//! The pure core: desired memberships, current memberships and a policy in, a plan out.
//!
//! This module does no I/O and reads no clock. It carries SPEC §1: per completely-read IdP,
//! desired = active mappings' usable members, current = every `idp:<name>` membership in the served
//! stages; adds and removes come from one sorted merge over integer ids; the empty-source and removal
//! guards refuse an IdP's part of the plan as a whole, leaving other IdPs untouched. Only `idp:<name>`
//! provenances of read IdPs are ever in a plan, so `direct` and other IdPs' provenances are safe by
//! construction.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::config::{MappingConfig, SafetyConfig};
use crate::directory::{Directory, Lookup};
use crate::model::{IdpName, Stage, UserKey};

/// Index of a user in [`Universe::users`].
pub type UserIdx = u32;
/// Index of a group in [`Universe::groups`].
pub type GroupIdx = u32;

/// A group of the store as the core sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Its stage.
    pub stage: Stage,
    /// Its name as shown.
    pub name: String,
    /// Its normalised name (unique within the stage).
    pub norm: String,
}

/// Every user and group a run talks about, interned so the core compares integers.
#[derive(Debug, Clone, Default)]
pub struct Universe {
    /// User keys; a [`UserIdx`] indexes this.
    pub users: Vec<UserKey>,
    /// Groups; a [`GroupIdx`] indexes this.
    pub groups: Vec<GroupEntry>,
}

/// A membership an IdP holds now, with the cause recorded when it was added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The group.
    pub group: GroupIdx,
    /// The user.
    pub user: UserIdx,
    /// The IdP group that caused it.
    pub cause: Arc<str>,
}

/// What the last applied read saw of one mapped IdP group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupDigest {
    /// Usable members (nested included when the IdP expands them).
    pub members: u64,
    /// A hash of the sorted member keys.
    pub hash: u64,
}

/// Per IdP group id, the digest of the last applied read.
pub type Baseline = BTreeMap<String, GroupDigest>;

/// One IdP's read, with its users already interned into the [`Universe`].
#[derive(Debug, Clone, Copy)]
pub struct IdpRead<'a> {
    /// The checked read.
    pub directory: &'a Directory,
    /// `Directory::users[i]` is `Universe::users[user_map[i]]`.
    pub user_map: &'a [UserIdx],
    /// Whether nested groups are expanded.
    pub nested: bool,
    /// The nesting cap.
    pub max_depth: usize,
}

/// Everything the core needs to know about one IdP.
#[derive(Debug, Clone)]
pub struct IdpInput<'a> {
    /// The IdP.
    pub name: IdpName,
    /// Its mappings, in configuration order.
    pub mappings: &'a [MappingConfig],
    /// Its read, or why it failed.
    pub read: Result<IdpRead<'a>, String>,
    /// Every `idp:<name>` membership in the served stages.
    pub current: Vec<Held>,
    /// The last applied read.
    pub baseline: &'a Baseline,
}

/// How the guards are set for this run.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The configured limits.
    pub safety: SafetyConfig,
    /// `--allow-removals N`: an IdP with at most N removals passes the removal guard.
    pub allow_removals: Option<u64>,
    /// `--allow-empty`: the empty-source guard is off.
    pub allow_empty: bool,
    /// The stages this run serves.
    pub served_stages: BTreeSet<Stage>,
    /// The command that reruns this reconcile (`idpsync --config PATH reconcile`), for `allow`.
    pub command: String,
}

/// A membership change of one IdP's provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The group.
    pub group: GroupIdx,
    /// The user.
    pub user: UserIdx,
    /// Index of the IdP in the input.
    pub idp: usize,
    /// The IdP group behind it: the smallest mapped one for an add, the recorded one for a remove.
    pub cause: Arc<str>,
}

/// Which guard refused an IdP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// The read looks empty where it was not (SPEC §1 invariant 5).
    Empty,
    /// Too many removals (invariant 6).
    Removals,
}

impl Guard {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::Empty => "empty",
            Guard::Removals => "removals",
        }
    }
}

/// An IdP whose part of the plan is withheld, with what would let it through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The IdP.
    pub idp: IdpName,
    /// The first guard that refused it.
    pub guard: Guard,
    /// Removals its plan holds.
    pub removals: u64,
    /// The removals the guard allows (0 for the empty guard).
    pub limit: u64,
    /// The exact command that lets it through.
    pub allow: String,
    /// Why, in words (which group emptied or vanished, which ratio).
    pub detail: String,
    /// Adds withheld with it.
    pub withheld_adds: u64,
}

/// Why a mapping does nothing this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InactiveReason {
    /// No store group of that name in that stage.
    GroupNotFound,
    /// No IdP group has that id or name.
    IdpGroupNotFound,
    /// Several IdP groups have that name.
    IdpGroupAmbiguous,
    /// A remote store serves the stage but lacks the group.
    RemoteGroupNotFound,
    /// No store serves the stage in this run.
    StageNotServed,
}

impl InactiveReason {
    /// The reason code of SPEC's mapping table.
    pub fn as_str(self) -> &'static str {
        match self {
            InactiveReason::GroupNotFound => "group_not_found",
            InactiveReason::IdpGroupNotFound => "idp_group_not_found",
            InactiveReason::IdpGroupAmbiguous => "idp_group_ambiguous",
            InactiveReason::RemoteGroupNotFound => "remote_group_not_found",
            InactiveReason::StageNotServed => "stage_not_served",
        }
    }
}

/// A mapping that is not active, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InactiveMapping {
    /// The mapping's IdP.
    pub idp: IdpName,
    /// The mapping's IdP group value.
    pub idp_group: String,
    /// The mapping's target group.
    pub group: String,
    /// The mapping's stage.
    pub stage: Stage,
    /// The reason code.
    pub reason: InactiveReason,
}

/// What happened to one IdP in this plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Read and passed the guards; store `baseline` when the plan is applied.
    Applied {
        /// The new baseline.
        baseline: Baseline,
        /// Adds of this IdP.
        adds: u64,
        /// Removes of this IdP.
        removes: u64,
    },
    /// Read but refused; the baseline stays.
    Refused,
    /// Not read; contributes nothing.
    Failed,
}

/// The result of [`reconcile`].
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Adds that may apply, sorted by (stage, group, user, idp).
    pub adds: Vec<Change>,
    /// Removes that may apply, in the same order.
    pub removes: Vec<Change>,
    /// IdPs refused, by name.
    pub refused: Vec<Refusal>,
    /// Mappings that are not active.
    pub inactive: Vec<InactiveMapping>,
    /// IdPs that failed to read, with the error.
    pub failed: Vec<(IdpName, String)>,
    /// Users skipped for lack of a usable key, over the read IdPs.
    pub skipped_users: u64,
    /// One outcome per input IdP, in input order.
    pub outcomes: Vec<Outcome>,
    /// Comparisons and element steps the plan took: a machine-independent measure of its cost,
    /// which tests use to guard against super-linear growth.
    pub work: u64,
}

/// Computes the plan. Pure: the same input gives the same plan.
pub fn reconcile(universe: &Universe, idps: &[IdpInput<'_>], policy: &Policy) -> Plan {
    let ranks = Ranks::new(universe, idps);
    let group_index = group_index(universe);
    let mut plan = Plan {
        adds: Vec::new(),
        removes: Vec::new(),
        refused: Vec::new(),
        inactive: Vec::new(),
        failed: Vec::new(),
        skipped_users: 0,
        outcomes: Vec::with_capacity(idps.len()),
        work: 0,
    };
    for (position, idp) in idps.iter().enumerate() {
        let outcome = plan_idp(
            position,
            idp,
            universe,
            &group_index,
            &ranks,
            policy,
            &mut plan,
        );
        plan.outcomes.push(outcome);
    }
    plan.adds.sort_unstable_by(|a, b| ranks.compare(a, b));
    plan.removes.sort_unstable_by(|a, b| ranks.compare(a, b));
    plan.refused.sort_by(|a, b| a.idp.cmp(&b.idp));
    plan.inactive.sort_by(|a, b| {
        (
            a.idp.as_str(),
            a.stage.as_str(),
            a.group.as_str(),
            a.idp_group.as_str(),
        )
            .cmp(&(
                b.idp.as_str(),
                b.stage.as_str(),
                b.group.as_str(),
                b.idp_group.as_str(),
            ))
    });
    plan.failed.sort();
    plan.work = ranks.work.get();
    plan
}

/// Sort positions of users, groups and IdPs, so integer comparisons give the bytewise order.
struct Ranks {
    users: Vec<u32>,
    groups: Vec<u32>,
    idps: Vec<u32>,
    /// The inverse of `users`: the user at each rank.
    user_at: Vec<UserIdx>,
    /// The inverse of `groups`: the group at each rank.
    group_at: Vec<GroupIdx>,
    /// The work counter of [`Plan::work`].
    work: std::cell::Cell<u64>,
}

impl Ranks {
    fn new(universe: &Universe, idps: &[IdpInput<'_>]) -> Self {
        let work = std::cell::Cell::new(0u64);
        /// (rank of each item, item at each rank).
        fn rank_of<T: Ord>(items: &[T], work: &std::cell::Cell<u64>) -> (Vec<u32>, Vec<u32>) {
            let mut order: Vec<u32> = (0..items.len() as u32).collect();
            order.sort_unstable_by(|&a, &b| {
                work.set(work.get() + 1);
                items[a as usize].cmp(&items[b as usize])
            });
            let mut ranks = vec![0; items.len()];
            for (rank, &index) in order.iter().enumerate() {
                ranks[index as usize] = rank as u32;
            }
            (ranks, order)
        }
        let users: Vec<&str> = universe.users.iter().map(UserKey::as_str).collect();
        let groups: Vec<(&str, &str)> = universe
            .groups
            .iter()
            .map(|g| (g.stage.as_str(), g.name.as_str()))
            .collect();
        let names: Vec<&str> = idps.iter().map(|i| i.name.as_str()).collect();
        let (users, user_at) = rank_of(&users, &work);
        let (groups, group_at) = rank_of(&groups, &work);
        Ranks {
            users,
            groups,
            idps: rank_of(&names, &work).0,
            user_at,
            group_at,
            work,
        }
    }

    /// Counts `n` steps of work.
    fn tick(&self, n: u64) {
        self.work.set(self.work.get() + n);
    }

    fn pair(&self, group: GroupIdx, user: UserIdx) -> (u32, u32) {
        (self.groups[group as usize], self.users[user as usize])
    }

    /// (group rank, user rank) packed so one integer comparison gives the bytewise order.
    fn key(&self, group: GroupIdx, user: UserIdx) -> u64 {
        (u64::from(self.groups[group as usize]) << 32) | u64::from(self.users[user as usize])
    }

    /// The (group, user) behind a [`Ranks::key`].
    fn unkey(&self, key: u64) -> (GroupIdx, UserIdx) {
        (
            self.group_at[(key >> 32) as usize],
            self.user_at[(key & u64::from(u32::MAX)) as usize],
        )
    }

    fn compare(&self, a: &Change, b: &Change) -> Ordering {
        self.tick(1);
        (self.pair(a.group, a.user), self.idps[a.idp])
            .cmp(&(self.pair(b.group, b.user), self.idps[b.idp]))
    }
}

fn group_index(universe: &Universe) -> BTreeMap<(&str, &str), GroupIdx> {
    universe
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| ((g.stage.as_str(), g.norm.as_str()), i as GroupIdx))
        .collect()
}

/// What one IdP's mappings resolve to in this read.
struct Resolved {
    /// (membership key, cause) pairs, unsorted, with duplicates.
    desired: Vec<(u64, CauseRank)>,
    /// The IdP groups the mappings name, sorted: a [`CauseRank`] indexes this.
    causes: Vec<Arc<str>>,
    baseline: Baseline,
    suspicious: Vec<String>,
}

fn plan_idp(
    position: usize,
    idp: &IdpInput<'_>,
    universe: &Universe,
    group_index: &BTreeMap<(&str, &str), GroupIdx>,
    ranks: &Ranks,
    policy: &Policy,
    plan: &mut Plan,
) -> Outcome {
    let read = match &idp.read {
        Ok(read) => *read,
        Err(error) => {
            plan.failed.push((idp.name.clone(), error.clone()));
            return Outcome::Failed;
        }
    };
    let resolved = match resolve_mappings(
        idp,
        read,
        universe,
        ranks,
        group_index,
        &policy.served_stages,
        plan,
    ) {
        Ok(resolved) => resolved,
        Err(error) => {
            plan.failed.push((idp.name.clone(), error));
            return Outcome::Failed;
        }
    };
    plan.skipped_users += read.directory.skipped_users as u64;
    let (adds, removes) = diff(
        position,
        resolved.desired,
        &resolved.causes,
        &idp.current,
        ranks,
    );

    let mut suspicious = resolved.suspicious;
    let baseline_had_members = idp.baseline.values().any(|d| d.members > 0);
    if read.directory.users_total == 0 && (!idp.current.is_empty() || baseline_had_members) {
        suspicious.insert(0, "the IdP returned no users at all".to_owned());
    }
    let removals = removes.len() as u64;
    let held = idp.current.len() as u64;
    let safety = &policy.safety;
    let ratio_cap = (safety.max_removal_ratio * held as f64).floor() as u64;
    let limit = safety
        .max_removals
        .min(safety.min_removals_for_ratio.max(ratio_cap));
    let empty_refused = !suspicious.is_empty() && !policy.allow_empty;
    let removals_refused = removals > limit && policy.allow_removals.is_none_or(|n| n < removals);
    if empty_refused || removals_refused {
        let mut allow = format!("{} --idp {}", policy.command, idp.name);
        if empty_refused {
            allow.push_str(" --allow-empty");
        }
        if removals_refused {
            allow.push_str(&format!(" --allow-removals {removals}"));
        }
        let removal_detail = || {
            if removals > safety.max_removals {
                format!(
                    "{removals} removals exceed safety.max_removals = {}",
                    safety.max_removals
                )
            } else {
                format!(
                    "{removals} removals of {held} memberships exceed safety.max_removal_ratio = {}",
                    safety.max_removal_ratio
                )
            }
        };
        let (guard, limit, detail) = if empty_refused {
            (Guard::Empty, 0, suspicious.join("; "))
        } else {
            (Guard::Removals, limit, removal_detail())
        };
        plan.refused.push(Refusal {
            idp: idp.name.clone(),
            guard,
            removals,
            limit,
            allow,
            detail,
            withheld_adds: adds.len() as u64,
        });
        return Outcome::Refused;
    }
    let outcome = Outcome::Applied {
        baseline: resolved.baseline,
        adds: adds.len() as u64,
        removes: removals,
    };
    plan.adds.extend(adds);
    plan.removes.extend(removes);
    outcome
}

fn resolve_mappings(
    idp: &IdpInput<'_>,
    read: IdpRead<'_>,
    universe: &Universe,
    ranks: &Ranks,
    group_index: &BTreeMap<(&str, &str), GroupIdx>,
    served_stages: &BTreeSet<Stage>,
    plan: &mut Plan,
) -> Result<Resolved, String> {
    let holders: BTreeSet<GroupIdx> = idp.current.iter().map(|h| h.group).collect();
    let mut desired = Vec::new();
    let mut baseline = Baseline::new();
    let mut suspicious = Vec::new();
    let mut expanded: BTreeMap<usize, Vec<UserIdx>> = BTreeMap::new();
    let mut scratch = Vec::new();
    let key_hashes = key_hashes(universe);
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
    let mut ordered: Vec<&MappingConfig> = idp.mappings.iter().collect();
    ordered.sort_by_cached_key(|m| {
        group_index
            .get(&(m.stage.as_str(), m.group.norm()))
            .map_or(u32::MAX, |&g| ranks.groups[g as usize])
    });
    for mapping in ordered {
        if !served_stages.contains(&mapping.stage) {
            statuses.push(inactive(InactiveReason::StageNotServed, mapping));
            continue;
        }
        let target = group_index
            .get(&(mapping.stage.as_str(), mapping.group.norm()))
            .copied();
        let lookup = read.directory.find(&mapping.idp_group);
        let Some(target) = target else {
            statuses.push(inactive(InactiveReason::GroupNotFound, mapping));
            continue;
        };
        let found = match lookup {
            Lookup::Found(index) => index,
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
type CauseRank = u32;

/// One sorted merge of desired against current: (adds, removes).
///
/// Both sides are sorted as (packed key, small integer) pairs, so the sorts move 16-byte items
/// and compare integers only.
fn diff(
    idp: usize,
    mut desired: Vec<(u64, CauseRank)>,
    causes: &[Arc<str>],
    held: &[Held],
    ranks: &Ranks,
) -> (Vec<Change>, Vec<Change>) {
    desired.sort_unstable_by(|a, b| {
        ranks.tick(1);
        a.cmp(b)
    });
    desired.dedup_by_key(|d| d.0);
    let mut current: Vec<(u64, u32)> = held
        .iter()
        .enumerate()
        .map(|(i, h)| (ranks.key(h.group, h.user), i as u32))
        .collect();
    current.sort_unstable_by(|a, b| {
        ranks.tick(1);
        a.0.cmp(&b.0)
    });
    let (mut adds, mut removes) = (Vec::new(), Vec::new());
    let (mut d, mut c) = (desired.iter().peekable(), current.iter().peekable());
    loop {
        ranks.tick(1);
        let order = match (d.peek(), c.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(want), Some(have)) => want.0.cmp(&have.0),
        };
        match order {
            Ordering::Less => {
                let &(key, cause) = d.next().expect("peeked");
                let (group, user) = ranks.unkey(key);
                adds.push(Change {
                    group,
                    user,
                    idp,
                    cause: causes[cause as usize].clone(),
                });
            }
            Ordering::Greater => {
                let held = &held[c.next().expect("peeked").1 as usize];
                removes.push(Change {
                    group: held.group,
                    user: held.user,
                    idp,
                    cause: held.cause.clone(),
                });
            }
            Ordering::Equal => {
                d.next();
                c.next();
            }
        }
    }
    (adds, removes)
}

#[cfg(test)]
mod harness;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
