//! The unchanged-read shortcut (SPEC §1 invariant 13): when the export, the configuration and the
//! store are all as they were at the IdP's last applied read, a run skips the IdP — and gives
//! exactly the plan a full read gives. Any change to one of the three turns the shortcut off.

use serde_json::{Value, json};

use crate::common::{CONFIG, Env, corp_export};

/// A run's document without its run id, for comparing a shortcut run with a full one.
fn comparable(mut doc: Value) -> Value {
    doc.as_object_mut().unwrap().remove("run_id");
    doc
}

/// A dry run with and without `--full`: (did the shortcut fire, shortcut document, full document).
fn both(env: &Env) -> (bool, Value, Value) {
    let quick = env.run(&["reconcile", "--dry-run", "--output", "json"]);
    let full = env.run(&["reconcile", "--dry-run", "--full", "--output", "json"]);
    let fired = quick
        .stderr
        .contains("Unchanged since its last applied read");
    assert!(
        !full.stderr.contains("Unchanged since"),
        "--full never takes the shortcut"
    );
    (fired, comparable(quick.json()), comparable(full.json()))
}

#[test]
fn an_unchanged_idp_is_skipped_with_the_same_plan_as_a_full_read() {
    let env = Env::new();
    let (code, first) = env.reconcile(&[]);
    assert_eq!(code, 0, "{first:#}");
    let (fired, quick, full) = both(&env);
    assert!(fired, "nothing changed since the applied read");
    assert_eq!(quick, full);
    assert_eq!(
        quick["summary"]["skipped_users"], 1,
        "skipped users are remembered"
    );
    let real = env.run(&["reconcile", "--output", "json"]);
    assert!(real.stderr.contains("Unchanged since"));
    assert_eq!(
        real.json()["summary"],
        json!({"adds": 0, "removes": 0, "skipped_users": 1, "dropped": 0})
    );
}

#[test]
fn any_change_to_export_configuration_or_store_turns_the_shortcut_off() {
    let env = Env::new();
    env.reconcile(&[]);

    // The export changes: ana leaves marketing.
    let mut export = corp_export();
    export["groups"][0]["members"] = json!(["u2", "u4"]);
    env.write_export("corp.json", &export);
    let (fired, quick, full) = both(&env);
    assert!(!fired);
    assert_eq!(quick, full);
    assert_eq!(quick["summary"]["removes"], 1);
    env.reconcile(&[]);
    assert!(both(&env).0, "the new read was applied: unchanged again");

    // The configuration changes: a new mapping (into a group that does not exist yet).
    env.write_config(&format!(
        "{CONFIG}\n[[mapping]]\nidp = \"corp\"\nidp_group = \"Engineering\"\ngroup = \"Ops\"\nstage = \"production\"\n"
    ));
    let (fired, quick, full) = both(&env);
    assert!(!fired);
    assert_eq!(quick, full);
    assert_eq!(quick["inactive_mappings"][0]["reason"], "group_not_found");
    env.reconcile(&[]);
    assert!(both(&env).0);

    // The store changes: the group is created, so the mapping becomes active.
    env.run(&["groups", "create", "Ops", "--stage", "production"])
        .expect(0);
    let (fired, quick, full) = both(&env);
    assert!(
        !fired,
        "a store change since the read turns the shortcut off"
    );
    assert_eq!(quick, full);
    assert_eq!(quick["summary"]["adds"], 2);
    env.reconcile(&[]);

    // The store changes again: the group is deleted with its members.
    env.run(&[
        "groups",
        "delete",
        "Ops",
        "--stage",
        "production",
        "--remove-members",
    ])
    .expect(0);
    let (fired, quick, full) = both(&env);
    assert!(!fired);
    assert_eq!(quick, full);
    assert_eq!(quick["inactive_mappings"][0]["group"], "Ops");
}

#[test]
fn a_refused_read_is_refused_again_and_never_taken_as_unchanged() {
    let env = Env::new();
    env.reconcile(&[]);
    let mut export = corp_export();
    export["groups"][0]["members"] = json!([]);
    env.write_export("corp.json", &export);
    for _ in 0..2 {
        let (code, doc) = env.reconcile(&[]);
        assert_eq!(code, 3, "{doc:#}");
        assert_eq!(doc["refused"][0]["guard"], "empty");
    }
    // Back to the applied export: unchanged again, and the plan is empty like a full read's.
    env.write_export("corp.json", &corp_export());
    let (fired, quick, full) = both(&env);
    assert!(fired);
    assert_eq!(quick, full);
}
