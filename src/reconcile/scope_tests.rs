//! The one-user scope of a login: the same plan for that user, without the batch-only guards,
//! adds only for an IdP that batch reads own removals for, and baselines left as they were.

use super::harness::*;
use super::*;

const ANA: (&str, &str) = ("u1", "ana@example.com");
const BEN: (&str, &str) = ("u2", "ben@example.com");

fn store() -> Fixture {
    let mut f = Fixture::new(&[("production", "Marketing"), ("production", "Sales")]);
    f.hold("corp", "production", "Sales", "ana@example.com", "g2");
    f
}

fn mappings() -> Vec<MappingConfig> {
    vec![
        mapping("corp", "Marketing Team", "production", "Marketing"),
        mapping("corp", "g2", "production", "Sales"),
    ]
}

/// Ana's login: her token lists only the marketing group.
fn login() -> Idp {
    Idp::new(
        "corp",
        snapshot(&[ANA], &[("g1", "Marketing Team", &["u1"][..])]),
        mappings(),
    )
}

fn user_scope(f: &mut Fixture, adds_only: bool) {
    f.policy.scope = Scope::User { adds_only };
}

#[test]
fn a_login_of_a_batch_idp_only_adds() {
    let mut f = store();
    user_scope(&mut f, true);
    let idp = login();
    let plan = f.plan(std::slice::from_ref(&idp));
    assert_eq!(
        f.changes(&plan, &[idp]),
        ["+ production/Marketing ana@example.com corp Marketing Team"]
    );
    assert!(plan.refused.is_empty());
    assert!(
        plan.inactive.is_empty(),
        "a token not claiming g2 says nothing of its mapping: {:?}",
        plan.inactive
    );
}

#[test]
fn a_login_of_a_login_only_idp_adds_and_removes() {
    let mut f = store();
    user_scope(&mut f, false);
    let idp = login();
    let plan = f.plan(std::slice::from_ref(&idp));
    assert_eq!(
        f.changes(&plan, &[idp]),
        [
            "+ production/Marketing ana@example.com corp Marketing Team",
            "- production/Sales ana@example.com corp g2",
        ]
    );
}

#[test]
fn the_batch_guards_do_not_judge_one_user() {
    // The same read as a batch run is refused: a mapped group that held memberships vanished,
    // and every one of the IdP's memberships would go.
    let mut f = store();
    f.hold("corp", "production", "Sales", "ben@example.com", "g2");
    let idp = Idp::new("corp", snapshot(&[ANA, BEN], &[]), mappings());
    let batch = f.plan(std::slice::from_ref(&idp));
    assert_eq!(batch.refused.len(), 1);
    user_scope(&mut f, false);
    let one = Idp::new("corp", snapshot(&[ANA], &[]), mappings());
    f.held.get_mut("corp").unwrap().retain(|h| h.user == 0);
    let plan = f.plan(std::slice::from_ref(&one));
    assert!(plan.refused.is_empty());
    assert_eq!(
        f.changes(&plan, &[one]),
        ["- production/Sales ana@example.com corp g2"]
    );
}

#[test]
fn a_login_leaves_the_baseline_as_it_was() {
    let mut f = store();
    let whole = Idp::new(
        "corp",
        snapshot(
            &[ANA],
            &[
                ("g1", "Marketing Team", &["u1"][..]),
                ("g2", "Sales Team", &["u1"]),
            ],
        ),
        mappings(),
    );
    let before = f.run(&[whole]);
    let Outcome::Applied { baseline, .. } = &before.outcomes[0] else {
        panic!("applied")
    };
    assert!(!baseline.is_empty(), "a batch run moves the baseline");
    f.baselines.clear();
    user_scope(&mut f, true);
    let plan = f.plan(&[login()]);
    let Outcome::Applied { baseline, .. } = &plan.outcomes[0] else {
        panic!("applied")
    };
    assert!(
        baseline.is_empty(),
        "a login keeps the stored (here empty) baseline"
    );
}
