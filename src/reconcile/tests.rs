//! Table-driven tests, one or more per invariant of SPEC §1.

use super::harness::*;
use super::*;

const ANA: (&str, &str) = ("u1", "ana@example.com");
const BEN: (&str, &str) = ("u2", "ben@example.com");
const CAT: (&str, &str) = ("u3", "cat@example.com");

fn store() -> Fixture {
    Fixture::new(&[
        ("production", "Marketing"),
        ("production", "Sales"),
        ("qa", "Testers"),
    ])
}

fn marketing(members: &[&str]) -> Idp {
    Idp::new(
        "corp",
        snapshot(&[ANA, BEN, CAT], &[("g1", "Marketing Team", members)]),
        vec![mapping("corp", "Marketing Team", "production", "Marketing")],
    )
}

#[test]
fn first_run_adds_desired_sorted_with_causes() {
    let mut f = store();
    let idp = Idp::new(
        "corp",
        snapshot(
            &[CAT, ANA, BEN],
            &[
                ("g1", "Marketing Team", &["u3", "u1"][..]),
                ("g2", "Eng", &["u2"]),
            ],
        ),
        vec![
            mapping("corp", "Eng", "qa", "Testers"),
            mapping("corp", "Marketing Team", "production", "Marketing"),
        ],
    );
    let plan = f.plan(std::slice::from_ref(&idp));
    assert_eq!(
        f.changes(&plan, &[idp]),
        [
            "+ production/Marketing ana@example.com corp Marketing Team",
            "+ production/Marketing cat@example.com corp Marketing Team",
            "+ qa/Testers ben@example.com corp Eng",
        ]
    );
    assert!(plan.refused.is_empty() && plan.failed.is_empty() && plan.inactive.is_empty());
}

#[test]
fn idempotence_and_convergence() {
    let mut f = store();
    let idps = [marketing(&["u1", "u2"])];
    let first = f.run(&idps);
    assert_eq!(first.adds.len(), 2);
    assert_eq!(
        f.memberships("corp"),
        [
            (
                "production/Marketing".into(),
                "ana@example.com".into(),
                "Marketing Team".into()
            ),
            (
                "production/Marketing".into(),
                "ben@example.com".into(),
                "Marketing Team".into()
            ),
        ]
    );
    let second = f.plan(&idps);
    assert!(second.adds.is_empty() && second.removes.is_empty());
    assert!(matches!(
        second.outcomes[0],
        Outcome::Applied {
            adds: 0,
            removes: 0,
            ..
        }
    ));
}

/// The core's half of invariant 1 (the store's half: `sync::props` and `state::tests`): another
/// IdP holding the very membership neither stands in for corp's add nor makes corp remove it, and
/// only corp's own provenance is planned.
#[test]
fn ownership_only_the_read_idps_provenance_is_planned() {
    let mut f = store();
    // okta holds ana and ben in Marketing; corp maps ana there.
    for user in ["ana@example.com", "ben@example.com"] {
        f.hold("okta", "production", "Marketing", user, "Okta Marketing");
    }
    let idps = [marketing(&["u1"])];
    let plan = f.plan(&idps);
    assert_eq!(
        f.changes(&plan, &idps),
        ["+ production/Marketing ana@example.com corp Marketing Team"],
        "okta's membership is not corp's"
    );
    assert!(
        plan.removes.is_empty(),
        "ben is okta's, not corp's to remove"
    );
    f.apply(&plan, &idps);
    // corp's mapping goes: only corp's provenance of ana is removed.
    let unmapped = [marketing(&[]).with_mappings(Vec::new())];
    let plan = f.plan(&unmapped);
    assert_eq!(
        f.changes(&plan, &unmapped),
        ["- production/Marketing ana@example.com corp Marketing Team"]
    );
}

#[test]
fn failure_isolation_a_failed_idp_contributes_nothing() {
    let mut f = store();
    f.hold("okta", "production", "Sales", "ben@example.com", "Sales");
    let idps = [
        marketing(&["u1"]),
        Idp::failing(
            "okta",
            vec![mapping("okta", "Sales", "production", "Sales")],
        ),
    ];
    let plan = f.run(&idps);
    assert_eq!(
        f.changes(&plan, &idps),
        ["+ production/Marketing ana@example.com corp Marketing Team"]
    );
    assert_eq!(
        plan.failed,
        [(
            IdpName::parse("okta").unwrap(),
            Failure::new(FailureKind::Unavailable, "connection refused")
        )]
    );
    assert_eq!(plan.outcomes[1], Outcome::Failed);
    assert_eq!(
        f.memberships("okta").len(),
        1,
        "the failed IdP's memberships stay"
    );
}

#[test]
fn an_inconsistent_read_fails_only_that_idp() {
    let mut f = store();
    let broken = Idp::new(
        "okta",
        snapshot(&[ANA], &[("s", "Sales", &["ghost"])]),
        vec![mapping("okta", "Sales", "production", "Sales")],
    );
    let plan = f.plan(&[marketing(&["u1"]), broken]);
    assert_eq!(plan.adds.len(), 1);
    assert!(plan.failed[0].1.message.contains("ghost"));
    assert_eq!(plan.failed[0].1.kind, FailureKind::Invalid);
}

#[test]
fn empty_guard_zero_users() {
    let mut f = store();
    f.run(&[marketing(&["u1", "u2"])]);
    let empty = Idp::new("corp", snapshot(&[], &[]), marketing(&[]).mappings);
    let plan = f.run(std::slice::from_ref(&empty));
    assert_eq!(plan.refused.len(), 1);
    let refusal = &plan.refused[0];
    assert_eq!(
        (refusal.guard, refusal.removals, refusal.limit),
        (Guard::Empty, 2, 0)
    );
    assert!(
        refusal.detail.contains("no users at all"),
        "{}",
        refusal.detail
    );
    assert_eq!(
        refusal.allow,
        "idpsync --config /etc/idpsync/idpsync.toml reconcile --idp corp --allow-empty"
    );
    assert!(plan.removes.is_empty());
    assert_eq!(f.memberships("corp").len(), 2);
}

#[test]
fn an_empty_new_idp_with_nothing_to_protect_is_not_refused() {
    let mut f = store();
    let plan = f.plan(&[Idp::new("corp", snapshot(&[], &[]), vec![])]);
    assert!(plan.refused.is_empty());
}

#[test]
fn empty_guard_emptied_group_is_refused_until_allowed() {
    let mut f = store();
    f.run(&[marketing(&["u1", "u2"])]);
    // Refused twice in a row: the baseline only moves on an applied read.
    for _ in 0..2 {
        let plan = f.run(&[marketing(&[])]);
        assert_eq!(plan.refused.len(), 1);
        assert_eq!(plan.refused[0].guard, Guard::Empty);
        assert!(
            plan.refused[0]
                .detail
                .contains("\"Marketing Team\" emptied")
        );
        assert!(plan.removes.is_empty());
    }
    f.policy.allow_empty = true;
    let plan = f.run(&[marketing(&[])]);
    assert!(plan.refused.is_empty());
    assert_eq!(plan.removes.len(), 2);
    f.policy.allow_empty = false;
    // Now the baseline says 0 members: an empty group is no longer suspicious.
    assert!(f.plan(&[marketing(&[])]).refused.is_empty());
}

#[test]
fn empty_guard_vanished_or_ambiguous_group_holding_memberships() {
    let mut f = store();
    f.run(&[marketing(&["u1"])]);
    let vanished = Idp::new("corp", snapshot(&[ANA], &[]), marketing(&[]).mappings);
    let plan = f.plan(std::slice::from_ref(&vanished));
    assert_eq!(plan.refused[0].guard, Guard::Empty);
    assert!(plan.refused[0].detail.contains("is gone"));
    assert_eq!(plan.inactive[0].reason, InactiveReason::IdpGroupNotFound);
    let ambiguous = Idp::new(
        "corp",
        snapshot(
            &[ANA],
            &[
                ("g1", "Marketing Team", &["u1"][..]),
                ("g9", "Marketing Team", &[]),
            ],
        ),
        marketing(&[]).mappings,
    );
    let plan = f.plan(std::slice::from_ref(&ambiguous));
    assert_eq!(plan.refused[0].guard, Guard::Empty);
    assert_eq!(plan.inactive[0].reason, InactiveReason::IdpGroupAmbiguous);
    assert!(plan.removes.is_empty());
}

fn many(n: usize) -> (Vec<(String, String)>, Vec<String>) {
    let users: Vec<(String, String)> = (0..n)
        .map(|i| (format!("u{i}"), format!("user{i:04}@x.com")))
        .collect();
    let ids = users.iter().map(|(id, _)| id.clone()).collect();
    (users, ids)
}

fn big_idp(members: usize, total: usize) -> Idp {
    let (users, ids) = many(total);
    let users: Vec<(&str, &str)> = users
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let ids: Vec<&str> = ids.iter().take(members).map(String::as_str).collect();
    Idp::new(
        "corp",
        snapshot(&users, &[("g1", "Marketing Team", &ids)]),
        marketing(&[]).mappings,
    )
}

#[test]
fn removal_guard_table() {
    // (held before, kept, max_removals, allow_removals, refused?, limit)
    let cases = [
        (100, 80, 500, None, false, 20), // 20 of 100 = ratio exactly: allowed
        (100, 79, 500, None, true, 20),  // 21 > 0.2 × 100
        (10, 0, 500, None, false, 10),   // 10 removals: not above min_removals_for_ratio
        (12, 1, 500, None, true, 10),    // 11 > 10 and > 0.2 × 12
        (100, 79, 500, Some(21), false, 20),
        (100, 79, 500, Some(20), true, 20),
        (600, 0, 5, None, true, 5), // max_removals
    ];
    for (held, kept, max, allow, refused, limit) in cases {
        let mut f = store();
        f.policy.safety.max_removals = max;
        f.policy.safety.max_removal_ratio = 1.0;
        f.run(&[big_idp(held, held)]);
        f.policy.safety.max_removal_ratio = 0.2;
        f.policy.allow_removals = allow;
        f.policy.allow_empty = true;
        let plan = f.plan(&[big_idp(kept, held)]);
        let case = format!("held {held} kept {kept} max {max} allow {allow:?}");
        assert_eq!(!plan.refused.is_empty(), refused, "{case}");
        if refused {
            let r = &plan.refused[0];
            assert_eq!(
                (r.guard, r.removals, r.limit),
                (Guard::Removals, (held - kept) as u64, limit),
                "{case}"
            );
            assert!(
                r.allow
                    .ends_with(&format!("--idp corp --allow-removals {}", held - kept)),
                "{case}"
            );
            assert!(plan.removes.is_empty(), "{case}");
        } else {
            assert_eq!(plan.removes.len(), held - kept, "{case}");
        }
    }
}

/// A ratio is a decimal fraction: 0.29 of 100 memberships lets 29 removals through, though the
/// binary double nearest 0.29 times 100 is 28.999999999999996.
#[test]
fn a_decimal_ratio_is_exact() {
    let mut f = store();
    f.policy.safety.max_removal_ratio = 1.0;
    f.run(&[big_idp(100, 100)]);
    f.policy.safety.max_removal_ratio = 0.29;
    let plan = f.plan(&[big_idp(71, 100)]);
    assert!(plan.refused.is_empty(), "{:?}", plan.refused);
    assert_eq!(plan.removes.len(), 29);
    let plan = f.plan(&[big_idp(70, 100)]);
    assert_eq!(plan.refused[0].limit, 29);
}

#[test]
fn refusals_are_local_other_idps_apply() {
    let mut f = store();
    let okta = |members: &[&str]| {
        Idp::new(
            "okta",
            snapshot(&[ANA, BEN, CAT], &[("s", "Sales", members)]),
            vec![mapping("okta", "Sales", "production", "Sales")],
        )
    };
    f.run(&[marketing(&["u1", "u2"]), okta(&[])]);
    let idps = [marketing(&[]), okta(&["u3"])];
    let plan = f.run(&idps);
    assert_eq!(plan.refused.len(), 1);
    assert_eq!(plan.refused[0].idp.as_str(), "corp");
    assert_eq!(
        f.changes(&plan, &idps),
        ["+ production/Sales cat@example.com okta Sales"]
    );
}

#[test]
fn both_guards_give_one_command_that_allows_both() {
    let mut f = store();
    f.policy.safety.max_removals = 1;
    f.run(&[marketing(&["u1", "u2", "u3"])]);
    let plan = f.plan(&[marketing(&[])]);
    assert_eq!(plan.refused[0].guard, Guard::Empty);
    assert!(
        plan.refused[0]
            .allow
            .ends_with("--idp corp --allow-empty --allow-removals 3")
    );
}

#[test]
fn determinism_independent_of_input_order() {
    let build = |reverse: bool| {
        let mut users = vec![ANA, BEN, CAT];
        let mut groups: Vec<(&str, &str, &[&str])> = vec![
            ("g1", "Marketing Team", &["u1", "u3"]),
            ("g2", "Sales", &["u2", "u1"]),
        ];
        let mut mappings = vec![
            mapping("corp", "Marketing Team", "production", "Marketing"),
            mapping("corp", "Sales", "production", "Sales"),
            mapping("corp", "g2", "production", "Marketing"),
        ];
        if reverse {
            users.reverse();
            groups.reverse();
            mappings.reverse();
        }
        Idp::new("corp", snapshot(&users, &groups), mappings)
    };
    let (a, b) = ([build(false)], [build(true)]);
    let mut f = store();
    let plan_a = f.plan(&a);
    let plan_b = f.plan(&b);
    assert_eq!(f.changes(&plan_a, &a), f.changes(&plan_b, &b));
    assert_eq!(plan_a, f.plan(&a));
    // ana is in both g1 and g2, both mapped to Marketing: the cause is the bytewise-smallest value.
    assert!(
        f.changes(&plan_a, &a)
            .contains(&"+ production/Marketing ana@example.com corp Marketing Team".to_owned())
    );
}

#[test]
fn a_deleted_mapping_removes_what_it_granted_with_the_recorded_cause() {
    let mut f = store();
    f.run(&[marketing(&["u1"])]);
    let unmapped = [Idp::new(
        "corp",
        snapshot(&[ANA], &[("g1", "Marketing Team", &["u1"])]),
        vec![],
    )];
    let plan = f.run(&unmapped);
    assert_eq!(
        f.changes(&plan, &unmapped),
        ["- production/Marketing ana@example.com corp Marketing Team"]
    );
}

#[test]
fn nested_groups_cycles_and_depth_cap() {
    let mut f = store();
    let mut idp = Idp::new(
        "corp",
        snapshot(
            &[ANA, BEN, CAT],
            &[
                ("g1", "Marketing Team", &["u1", "g2"]),
                ("g2", "Campaigns", &["u2", "g3"]),
                ("g3", "Ads", &["u3", "g1"]),
            ],
        ),
        marketing(&[]).mappings,
    );
    assert_eq!(f.plan(std::slice::from_ref(&idp)).adds.len(), 3);
    idp.nested = false;
    assert_eq!(f.plan(std::slice::from_ref(&idp)).adds.len(), 1);
    idp.nested = true;
    idp.max_depth = 1;
    let plan = f.plan(&[idp]);
    assert!(plan.adds.is_empty());
    assert!(plan.failed[0].1.message.contains("more than 1 levels deep"));
    assert_eq!(plan.failed[0].1.kind, FailureKind::Invalid);
}

#[test]
fn mapping_statuses_and_reasons() {
    let mut f = store();
    f.policy.served_stages.remove(&Stage::parse("qa").unwrap());
    let idp = Idp::new(
        "corp",
        snapshot(
            &[ANA],
            &[
                ("g1", "Dup", &["u1"][..]),
                ("g2", "Dup", &[]),
                ("g3", "Team", &["u1"]),
            ],
        ),
        vec![
            mapping("corp", "Team", "production", "Nope"),
            mapping("corp", "Missing", "production", "Marketing"),
            mapping("corp", "Dup", "production", "Sales"),
            mapping("corp", "Team", "qa", "Testers"),
            mapping("corp", "g3", "production", "marketing"),
        ],
    );
    let plan = f.plan(&[idp]);
    let reasons: Vec<(&str, &str)> = plan
        .inactive
        .iter()
        .map(|m| (m.idp_group.as_str(), m.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("Missing", "idp_group_not_found"),
            ("Team", "group_not_found"),
            ("Dup", "idp_group_ambiguous"),
            ("Team", "stage_not_served")
        ]
    );
    // "marketing" matches the group "Marketing" case-insensitively; "g3" matches by id.
    assert_eq!(plan.adds.len(), 1);
}

#[test]
fn disabled_and_keyless_users_are_excluded_and_counted() {
    let mut f = store();
    let mut snap = snapshot(
        &[ANA, BEN, CAT],
        &[("g1", "Marketing Team", &["u1", "u2", "u3"])],
    );
    snap.users[1].enabled = false;
    snap.users[2].key = None;
    let plan = f.plan(&[Idp::new("corp", snap, marketing(&[]).mappings)]);
    assert_eq!(plan.adds.len(), 1);
    assert_eq!(plan.skipped_users, 1);
}
