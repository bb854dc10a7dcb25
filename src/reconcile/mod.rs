//! The pure core: desired memberships, current memberships and a policy in, a plan out.
//!
//! This module does no I/O and reads no clock. It carries SPEC §1: per completely-read IdP,
//! desired = active mappings' usable members, current = every `idp:<name>` membership in the served
//! stages; adds and removes come from one sorted merge over integer ids; the empty-source and removal
//! guards refuse an IdP's part of the plan as a whole, leaving other IdPs untouched. Only `idp:<name>`
//! provenances of read IdPs are ever in a plan, so `direct` and other IdPs' provenances are safe by
//! construction.

mod diff;
mod guards;
mod ranks;
mod resolve;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::config::{MappingConfig, SafetyConfig};
use crate::directory::Directory;
use crate::model::{Failure, FailureKind, IdpName, Stage, UserKey};
use diff::diff;
use ranks::{Ranks, group_index};
use resolve::resolve_mappings;
pub use resolve::{digest, key_hashes};

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
    /// Former names of renamed groups: a mapping that names one resolves to the group (a current
    /// name of another group always wins).
    pub aliases: Vec<GroupAlias>,
}

/// A former name of a group in its stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAlias {
    /// The group's stage.
    pub stage: Stage,
    /// The former name, normalised.
    pub norm: String,
    /// The group it names now.
    pub group: GroupIdx,
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
    pub mappings: &'a [&'a MappingConfig],
    /// Its read, or why it failed.
    pub read: Result<IdpRead<'a>, Failure>,
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
    /// Groups (stage, normalised name) of a remotely served stage that the remote store lacks:
    /// their mappings are `remote_group_not_found`.
    pub remote_missing: BTreeSet<(Stage, String)>,
    /// The command that reruns this reconcile (`idpsync --config PATH reconcile`), for `allow`.
    pub command: String,
    /// Which memberships the plan covers.
    pub scope: Scope,
}

/// Which memberships a plan covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every membership of each read IdP (a batch run): the guards judge each IdP and the plan
    /// carries each IdP's new baseline.
    #[default]
    All,
    /// One user's memberships (a login): each IdP's `current` and read hold that user alone, so
    /// the batch-only guards (empty source, vanished or ambiguous groups, the removal ratio)
    /// would misjudge it and do not apply, baselines stay as they are, and no mapping is listed
    /// as inactive (a token that does not claim a group says nothing of its mapping).
    User {
        /// Adds only: the IdP is also read in batch, and removals belong to those reads.
        adds_only: bool,
    },
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
    /// IdPs that failed to read, with the failure.
    pub failed: Vec<(IdpName, Failure)>,
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
    let resolved = match resolve_mappings(idp, read, universe, ranks, group_index, policy, plan) {
        Ok(resolved) => resolved,
        Err(error) => {
            plan.failed
                .push((idp.name.clone(), Failure::new(FailureKind::Invalid, error)));
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

    let (removes, baseline) = match policy.scope {
        Scope::All => {
            let suspicious = guards::suspicious_read(idp, read, resolved.suspicious);
            let removals = removes.len() as u64;
            if let Some(refusal) =
                guards::judge(idp, suspicious, removals, adds.len() as u64, policy)
            {
                plan.refused.push(refusal);
                return Outcome::Refused;
            }
            (removes, resolved.baseline)
        }
        Scope::User { adds_only } => {
            let removes = if adds_only { Vec::new() } else { removes };
            (removes, idp.baseline.clone())
        }
    };
    let outcome = Outcome::Applied {
        baseline,
        adds: adds.len() as u64,
        removes: removes.len() as u64,
    };
    plan.adds.extend(adds);
    plan.removes.extend(removes);
    outcome
}

#[cfg(test)]
mod cost_tests;
#[cfg(test)]
mod harness;
#[cfg(test)]
mod props;
#[cfg(test)]
mod scope_tests;
#[cfg(test)]
mod tests;
