//! Mappings follow renamed groups (SPEC model table, "rename a group"), through the real binary:
//! issue 11's reproduction — a mapped group renamed with `groups update --rename` kept losing its
//! mapped members — and what happens when a new group takes the former name.

use serde_json::{Value, json};

use crate::common::{Env, changes};

const CONFIG: &str = r#"[daemon]
state = "state/idpsync.db"
run_wait = 1

[[idp]]
name = "corp"
kind = "file"
path = "corp.json"

[[mapping]]
idp = "corp"
idp_group = "Ops"
group = "Operators"
stage = "production"
"#;

fn env() -> Env {
    let env = Env::empty();
    env.write_config(CONFIG);
    env.write_export(
        "corp.json",
        &json!({
            "users": [
                {"id": "u1", "email": "ana@example.com"},
                {"id": "u2", "email": "ben@example.com"}
            ],
            "groups": [{"id": "g-ops", "name": "Ops", "members": ["u1", "u2"]}]
        }),
    );
    env
}

/// [`env`] after `groups create Operators` and a reconcile that made ana and ben its mapped members.
fn reconciled() -> Env {
    let env = env();
    env.run(&["groups", "create", "Operators", "--stage", "production"])
        .expect(0);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["summary"]["adds"], 2);
    env
}

/// `groups update FROM --stage production --rename TO`, the seed's "update the group name" flow.
fn rename(env: &Env, from: &str, to: &str) {
    env.run(&[
        "groups",
        "update",
        from,
        "--stage",
        "production",
        "--rename",
        to,
    ])
    .expect(0);
}

fn status(env: &Env) -> (String, Value) {
    let text = env.run(&["status"]);
    text.expect(0);
    let json = env.run(&["status", "--output", "json"]);
    json.expect(0);
    (text.stdout, json.json())
}

#[test]
fn a_renamed_group_keeps_its_mapped_members_and_the_mapping_warns() {
    let env = reconciled();
    rename(&env, "Operators", "Ops-Team");
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["removes"], json!([]), "the mapping followed the rename");
    assert_eq!(doc["adds"], json!([]));
    assert_eq!(
        doc["inactive_mappings"],
        json!([]),
        "the mapping stays active"
    );
    let members = env
        .run(&[
            "groups",
            "show",
            "Ops-Team",
            "--stage",
            "production",
            "--output",
            "json",
        ])
        .json();
    assert_eq!(
        members["members"].as_array().unwrap().len(),
        2,
        "{members:#}"
    );

    // The warning, wherever the mapping is reported.
    let text = env.run(&["reconcile"]);
    text.expect(0);
    assert!(
        text.stdout
            .contains("  corp \"Ops\" -> production/Operators: the group is now \"Ops-Team\""),
        "{}",
        text.stdout
    );
    assert!(
        text.stderr
            .contains("names a former name of the group now called \"Ops-Team\""),
        "{}",
        text.stderr
    );
    let check = env.run(&["check"]);
    check.expect(0);
    assert!(
        check
            .stdout
            .contains("WARNING: mapping corp \"Ops\" -> production/Operators names a former name"),
        "{}",
        check.stdout
    );
    let (text, json) = status(&env);
    assert!(text.contains("WARNING: mapping corp \"Ops\""), "{text}");
    assert_eq!(json["idps"][0]["refusal"], Value::Null);

    // Updating the configuration to the new name silences the warning and changes nothing.
    env.write_config(&CONFIG.replace("group = \"Operators\"", "group = \"Ops-Team\""));
    let check = env.run(&["check"]);
    assert!(!check.stdout.contains("WARNING"), "{}", check.stdout);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        (doc["adds"].clone(), doc["removes"].clone()),
        (json!([]), json!([]))
    );
}

#[test]
fn a_new_group_that_takes_a_former_name_takes_its_mappings_over() {
    let env = reconciled();
    rename(&env, "Operators", "Ops-Team");
    // A new "Operators": the mapping names it now, so the members move there.
    env.run(&["groups", "create", "operators", "--stage", "production"])
        .expect(0);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        changes(&doc["adds"]),
        [
            "production/operators ana@example.com corp Ops",
            "production/operators ben@example.com corp Ops"
        ]
    );
    assert_eq!(
        changes(&doc["removes"]),
        [
            "production/Ops-Team ana@example.com corp Ops",
            "production/Ops-Team ben@example.com corp Ops"
        ]
    );
    let check = env.run(&["check"]);
    assert!(!check.stdout.contains("WARNING"), "{}", check.stdout);
}

#[test]
fn renaming_back_and_deleting_forget_former_names() {
    let env = reconciled();
    rename(&env, "Operators", "Ops-Team");
    rename(&env, "Ops-Team", "Operators");
    let check = env.run(&["check"]);
    assert!(
        !check.stdout.contains("WARNING"),
        "back under its own name: {}",
        check.stdout
    );
    // Renamed away and deleted: the mapping has no group; nothing is resolved through a ghost.
    rename(&env, "Operators", "Gone");
    env.run(&[
        "groups",
        "delete",
        "Gone",
        "--stage",
        "production",
        "--remove-members",
    ])
    .expect(0);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["inactive_mappings"][0]["reason"], "group_not_found");
}
