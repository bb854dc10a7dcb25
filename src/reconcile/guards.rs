//! The guards of SPEC §1 invariants 5 and 6, judged per IdP: the empty-source guard (a read that
//! looks empty where it was not) and the removal guard (too many removals for the IdP's size).
//!
//! A refused IdP's whole part of the plan is withheld; the refusal says why and gives the exact
//! command that lets it through. Pure, like the rest of the core.

use super::{Guard, IdpInput, IdpRead, Policy, Refusal};

/// The reasons the empty-source guard has to refuse this read: those the mappings found (a mapped
/// group emptied, vanished or ambiguous) and, first, an IdP that returned no users at all while it
/// holds memberships or had members at its last applied read.
pub(super) fn suspicious_read(
    idp: &IdpInput<'_>,
    read: IdpRead<'_>,
    mut from_mappings: Vec<String>,
) -> Vec<String> {
    let baseline_had_members = idp.baseline.values().any(|d| d.members > 0);
    if read.directory.users_total == 0 && (!idp.current.is_empty() || baseline_had_members) {
        from_mappings.insert(0, "the IdP returned no users at all".to_owned());
    }
    from_mappings
}

/// Parts per million the removal ratio is taken in: the configured ratio is a decimal fraction,
/// and `0.29 × 100` in binary floating point is 28.999999999999996, not 29.
const RATIO_PARTS: u128 = 1_000_000;

/// The most removals the removal guard lets through for an IdP holding `held` memberships:
/// `max_removals`, and beyond `min_removals_for_ratio` no more than `max_removal_ratio × held`.
pub(super) fn removal_limit(policy: &Policy, held: u64) -> u64 {
    let safety = &policy.safety;
    let parts = (safety.max_removal_ratio * RATIO_PARTS as f64).round() as u128;
    let ratio_cap = u64::try_from(u128::from(held) * parts / RATIO_PARTS).unwrap_or(u64::MAX);
    safety
        .max_removals
        .min(safety.min_removals_for_ratio.max(ratio_cap))
}

/// Judges one read IdP's part of the plan: `None` when it may apply, else the refusal (the empty
/// guard first when both refuse, with one command that allows both).
pub(super) fn judge(
    idp: &IdpInput<'_>,
    suspicious: Vec<String>,
    removals: u64,
    withheld_adds: u64,
    policy: &Policy,
) -> Option<Refusal> {
    let held = idp.current.len() as u64;
    let safety = &policy.safety;
    let limit = removal_limit(policy, held);
    let empty_refused = !suspicious.is_empty() && !policy.allow_empty;
    let removals_refused = removals > limit && policy.allow_removals.is_none_or(|n| n < removals);
    if !empty_refused && !removals_refused {
        return None;
    }
    let mut allow = format!("{} --idp {}", policy.command, idp.name);
    if empty_refused {
        allow.push_str(" --allow-empty");
    }
    if removals_refused {
        allow.push_str(&format!(" --allow-removals {removals}"));
    }
    let (guard, limit, detail) = if empty_refused {
        (Guard::Empty, 0, suspicious.join("; "))
    } else if removals > safety.max_removals {
        let detail = format!(
            "{removals} removals exceed safety.max_removals = {}",
            safety.max_removals
        );
        (Guard::Removals, limit, detail)
    } else {
        let detail = format!(
            "{removals} removals of {held} memberships exceed safety.max_removal_ratio = {}",
            safety.max_removal_ratio
        );
        (Guard::Removals, limit, detail)
    };
    Some(Refusal {
        idp: idp.name.clone(),
        guard,
        removals,
        limit,
        allow,
        detail,
        withheld_adds,
    })
}
