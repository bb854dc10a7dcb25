//! Property tests of the invariants over random directories, mappings, histories and policies.

use proptest::prelude::*;

use super::harness::*;
use super::*;
use crate::directory::{Snapshot, SnapshotGroup, SnapshotUser};

const GROUPS: &[(&str, &str)] = &[("production", "A"), ("production", "B"), ("qa", "A")];
const IDP_GROUP_VALUES: &[&str] = &["g0", "g1", "g2", "G0", "G1", "Dup", "Nope"];

#[derive(Debug, Clone)]
struct IdpCase {
    users: Vec<(bool, bool)>,            // (present, enabled) per user
    groups: Vec<(u8, Vec<u8>, Vec<u8>)>, // (name choice, user members, group members)
    mappings: Vec<(u8, u8)>,             // (idp_group value, target group)
    fails: bool,
}

fn idp_case() -> impl Strategy<Value = IdpCase> {
    (
        proptest::collection::vec((any::<bool>(), prop::bool::weighted(0.85)), 6),
        proptest::collection::vec(
            (
                0u8..3,
                proptest::collection::vec(0u8..6, 0..5),
                proptest::collection::vec(0u8..3, 0..2),
            ),
            0..4,
        ),
        proptest::collection::vec((0u8..7, 0u8..4), 0..5),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(users, groups, mappings, fails)| IdpCase {
            users,
            groups,
            mappings,
            fails,
        })
}

fn build(name: &str, case: &IdpCase, reverse: bool) -> Idp {
    let present: Vec<usize> = (0..6).filter(|&i| case.users[i].0).collect();
    let mut users: Vec<SnapshotUser> = present
        .iter()
        .map(|&i| SnapshotUser {
            id: format!("u{i}"),
            key: Some(format!("user{i}@x.com")),
            enabled: case.users[i].1,
        })
        .collect();
    let group_count = case.groups.len();
    let mut groups: Vec<SnapshotGroup> = case
        .groups
        .iter()
        .enumerate()
        .map(|(index, (name, members, subgroups))| {
            let mut all: Vec<String> = members
                .iter()
                .filter(|&&m| case.users[m as usize].0)
                .map(|m| format!("u{m}"))
                .collect();
            all.extend(
                subgroups
                    .iter()
                    .filter(|&&g| (g as usize) < group_count)
                    .map(|g| format!("g{g}")),
            );
            SnapshotGroup {
                id: format!("g{index}"),
                name: ["G0", "G1", "Dup"][*name as usize].to_owned(),
                members: all,
            }
        })
        .collect();
    let mut mappings: Vec<MappingConfig> = case
        .mappings
        .iter()
        .map(|&(value, target)| {
            let (stage, group) = GROUPS
                .get(target as usize)
                .copied()
                .unwrap_or(("production", "Missing"));
            mapping(name, IDP_GROUP_VALUES[value as usize], stage, group)
        })
        .collect();
    mappings.dedup();
    if reverse {
        users.reverse();
        groups.reverse();
        mappings.reverse();
    }
    let mut idp = Idp::new(name, Snapshot { users, groups }, mappings);
    if case.fails {
        idp.read = Err("timeout".into());
    }
    idp
}

fn permissive(f: &mut Fixture) {
    f.policy.allow_empty = true;
    f.policy.allow_removals = Some(u64::MAX);
}

/// A fixture with a history: `before` applied permissively, plus a foreign IdP's membership.
fn history(before: &[IdpCase]) -> Fixture {
    let mut f = Fixture::new(GROUPS);
    f.hold("other", "production", "A", "user0@x.com", "Other");
    let mut g = f.clone();
    permissive(&mut g);
    let idps: Vec<Idp> = before
        .iter()
        .zip(["a", "b"])
        .map(|(c, n)| {
            build(
                n,
                &IdpCase {
                    fails: false,
                    ..c.clone()
                },
                false,
            )
        })
        .collect();
    g.run(&idps);
    g.policy = f.policy;
    g
}

fn changes_of(f: &Fixture, plan: &Plan, idps: &[Idp], name: &str) -> Vec<String> {
    f.changes(plan, idps)
        .into_iter()
        .filter(|l| l.split(' ').nth(3) == Some(name))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn after_apply_a_new_plan_is_empty(before in proptest::collection::vec(idp_case(), 2), now in proptest::collection::vec(idp_case(), 2)) {
        let mut f = history(&before);
        permissive(&mut f);
        let idps: Vec<Idp> = now.iter().zip(["a", "b"]).map(|(c, n)| build(n, c, false)).collect();
        f.run(&idps);
        let again = f.plan(&idps);
        prop_assert!(again.adds.is_empty(), "{:?}", f.changes(&again, &idps));
        prop_assert!(again.removes.is_empty(), "{:?}", f.changes(&again, &idps));
    }

    /// The core's half of ownership (the store's half, with `direct` and a third IdP on the same
    /// pairs, is `sync::props`): every change belongs to a read, applied IdP, and every remove
    /// takes away a membership that IdP itself held — never one only another IdP holds.
    #[test]
    fn plans_change_only_what_the_read_idps_hold(before in proptest::collection::vec(idp_case(), 2), now in proptest::collection::vec(idp_case(), 2), allow in any::<bool>()) {
        let mut f = history(&before);
        if allow { permissive(&mut f); }
        let held_before = f.held.clone();
        let idps: Vec<Idp> = now.iter().zip(["a", "b"]).map(|(c, n)| build(n, c, false)).collect();
        let plan = f.run(&idps);
        for c in plan.removes.iter() {
            let held = held_before.get(&idps[c.idp].name).cloned().unwrap_or_default();
            prop_assert!(held.iter().any(|h| (h.group, h.user) == (c.group, c.user)), "a remove must remove something the IdP held");
        }
        for c in plan.adds.iter().chain(plan.removes.iter()) {
            let applied = matches!(plan.outcomes[c.idp], Outcome::Applied { .. });
            prop_assert!(applied, "changes only come from applied IdPs");
            prop_assert!(idps[c.idp].read.is_ok());
        }
    }

    #[test]
    fn deterministic_whatever_the_input_order(before in proptest::collection::vec(idp_case(), 2), now in proptest::collection::vec(idp_case(), 2)) {
        let mut f = history(&before);
        let forward: Vec<Idp> = now.iter().zip(["a", "b"]).map(|(c, n)| build(n, c, false)).collect();
        let backward: Vec<Idp> = now.iter().zip(["a", "b"]).map(|(c, n)| build(n, c, true)).collect();
        let p1 = f.plan(&forward);
        let p2 = f.plan(&forward);
        prop_assert_eq!(&p1, &p2);
        let p3 = f.plan(&backward);
        prop_assert_eq!(f.changes(&p1, &forward), f.changes(&p3, &backward));
        prop_assert_eq!(&p1.refused, &p3.refused);
    }

    /// The removal guard against SPEC §1 invariant 6 read literally, in exact integer arithmetic
    /// (the ratio is a whole percentage): R removals of M memberships pass when R ≤ max_removals
    /// and (R ≤ min_removals_for_ratio or R ≤ ratio × M). Both ways: what passes is applied, what
    /// does not is refused with that limit — unless `--allow-removals N ≥ R`.
    #[test]
    fn the_removal_guard_is_invariant_6(before in proptest::collection::vec(idp_case(), 2), now in proptest::collection::vec(idp_case(), 2),
            max in 0u64..6, percent in 0u64..=100, min in 0u64..4, allow in proptest::option::of(0u64..8)) {
        let mut f = history(&before);
        f.policy.safety = SafetyConfig { max_removals: max, max_removal_ratio: percent as f64 / 100.0, min_removals_for_ratio: min };
        f.policy.allow_removals = allow;
        f.policy.allow_empty = true;
        let idps: Vec<Idp> = now.iter().zip(["a", "b"]).map(|(c, n)| build(n, c, false)).collect();
        let plan = f.plan(&idps);
        for (i, idp) in idps.iter().enumerate() {
            let held = f.held.get(&idp.name).map_or(0, Vec::len) as u64;
            let passes = |r: u64| r <= max && (r <= min || r * 100 <= percent * held);
            let largest_passing = (0..=held + 10).rev().find(|&r| passes(r)).unwrap_or(0);
            match &plan.outcomes[i] {
                Outcome::Applied { removes, .. } => {
                    prop_assert!(passes(*removes) || allow.is_some_and(|n| n >= *removes),
                        "idp {} applied {} removals of {} (max {}, {}%, min {})", idp.name, removes, held, max, percent, min);
                }
                Outcome::Refused => {
                    let r = plan.refused.iter().find(|r| r.idp.as_str() == idp.name).unwrap();
                    prop_assert_eq!(r.guard, Guard::Removals);
                    prop_assert!(!passes(r.removals), "idp {} refused {} removals of {} that pass", idp.name, r.removals, held);
                    prop_assert!(allow.is_none_or(|n| n < r.removals));
                    prop_assert_eq!(r.limit, largest_passing, "the limit shown");
                }
                Outcome::Failed => {}
            }
        }
    }

    #[test]
    fn a_refusal_never_hides_another_idps_changes(before in proptest::collection::vec(idp_case(), 2), now in proptest::collection::vec(idp_case(), 2), max in 0u64..4) {
        let mut f = history(&before);
        f.policy.safety.max_removals = max;
        let idps: Vec<Idp> = now.iter().zip(["a", "b"]).map(|(c, n)| build(n, c, false)).collect();
        let joint = f.plan(&idps);
        for idp in idps.iter() {
            let alone = f.plan(std::slice::from_ref(idp));
            prop_assert_eq!(changes_of(&f, &joint, &idps, &idp.name), changes_of(&f, &alone, std::slice::from_ref(idp), &idp.name));
            prop_assert_eq!(joint.refused.iter().any(|r| r.idp.as_str() == idp.name), !alone.refused.is_empty());
        }
    }
}
