//! The command line of SPEC §3 through the real binary: the reconcile document, dry runs, the read
//! commands on a missing state, IdP failures, path resolution and `check`.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::common::{CONFIG, Env, REPORT_FIELDS, changes, corp_export, keys, sorted};

/// A reconcile document without its run id, for comparing runs.
fn without_run(doc: &Value) -> Value {
    let mut doc = doc.clone();
    let object = doc.as_object_mut().unwrap();
    object.remove("run_id");
    object.remove("dry_run");
    doc
}

/// The memberships of the state as `stage/group user provenance…` lines, through `groups show`.
fn memberships(env: &Env) -> Vec<String> {
    let out = env.run(&["groups", "list", "--output", "json"]);
    out.expect(0);
    let mut lines = Vec::new();
    for group in out.json().as_array().unwrap() {
        let (name, stage) = (
            group["name"].as_str().unwrap(),
            group["stage"].as_str().unwrap(),
        );
        let shown = env.run(&["groups", "show", name, "--stage", stage, "--output", "json"]);
        shown.expect(0);
        for member in shown.json()["members"].as_array().unwrap() {
            lines.push(format!(
                "{stage}/{name} {} {}",
                member["user"].as_str().unwrap(),
                member["provenance"]
            ));
        }
    }
    lines
}

#[test]
fn demo_first_run_document_and_idempotent_second_run() {
    let env = Env::demo();
    let out = env.run(&["reconcile", "--output", "json"]);
    out.expect(0);
    let doc = out.json();
    assert_eq!(keys(&doc), sorted(REPORT_FIELDS), "{doc:#}");
    assert_eq!(doc["dry_run"], false);
    assert!(!doc["run_id"].as_str().unwrap().is_empty());
    let adds = doc["adds"].as_array().unwrap();
    assert!(!adds.is_empty(), "{doc:#}");
    for add in adds {
        assert_eq!(
            keys(add),
            sorted(&["stage", "group", "user", "idp", "idp_group"]),
            "{add}"
        );
        assert_eq!(add["idp"], "corp");
    }
    // Sorted bytewise on (stage, group, user, idp).
    let tuples: Vec<(String, String, String, String)> = adds
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap().to_owned();
            (s("stage"), s("group"), s("user"), s("idp"))
        })
        .collect();
    let mut expected = tuples.clone();
    expected.sort();
    assert_eq!(tuples, expected, "adds are not sorted bytewise");
    expected.dedup();
    assert_eq!(expected.len(), tuples.len(), "an add is listed twice");
    // User keys are normalised (the export has Diogo.Alves@Example.com).
    assert!(
        tuples.iter().any(|t| t.2 == "diogo.alves@example.com"),
        "{doc:#}"
    );
    assert!(tuples.iter().all(|t| t.2 == t.2.trim().to_lowercase()));
    assert_eq!(doc["removes"], json!([]));
    assert_eq!(doc["refused"], json!([]));
    assert_eq!(doc["failed_idps"], json!([]));
    assert_eq!(
        doc["inactive_mappings"],
        json!([{"idp": "corp", "idp_group": "Finance", "group": "Finance", "stage": "production", "reason": "group_not_found"}])
    );
    assert_eq!(keys(&doc["summary"]), sorted(crate::common::SUMMARY_FIELDS));
    assert_eq!(doc["summary"]["adds"], adds.len());
    assert_eq!(doc["summary"]["removes"], 0);
    assert_eq!(doc["summary"]["skipped_users"], 1);
    // Logs go to standard error, never to standard output.
    assert!(out.stderr.contains("Reconciled"), "{}", out.stderr);
    assert!(!out.stdout.contains("INFO"));

    // The state is where the override put it, in a private folder; the copied default is unused.
    assert!(env.state_path().exists());
    let mode = std::fs::metadata(env.path("state"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    assert!(!env.path(".state").exists());

    let (code, second) = env.reconcile(&[]);
    assert_eq!(code, 0, "{second:#}");
    assert_eq!(keys(&second), sorted(REPORT_FIELDS));
    assert_eq!(
        (second["adds"].clone(), second["removes"].clone()),
        (json!([]), json!([]))
    );
    assert_eq!(
        (&second["summary"]["adds"], &second["summary"]["removes"]),
        (&json!(0), &json!(0))
    );
    assert_ne!(second["run_id"], doc["run_id"]);
    assert_eq!(second["inactive_mappings"], doc["inactive_mappings"]);

    // The text form says the same, on standard output only.
    let text = env.run(&["reconcile"]);
    text.expect(0);
    assert!(
        text.stdout.contains("No membership changes."),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("group_not_found"), "{}", text.stdout);
    assert!(!text.stdout.contains("INFO"), "{}", text.stdout);
}

#[test]
fn demo_groups_and_users_documents() {
    let env = Env::demo();
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");

    let out = env.run(&[
        "groups",
        "show",
        "Marketing",
        "--stage",
        "production",
        "--output",
        "json",
    ]);
    out.expect(0);
    let group = out.json();
    assert_eq!(
        keys(&group),
        sorted(&[
            "name",
            "stage",
            "description",
            "declared",
            "roles",
            "members"
        ])
    );
    assert_eq!(group["name"], "Marketing");
    assert_eq!(group["stage"], "production");
    assert_eq!(group["declared"], true);
    assert_eq!(group["description"], "Marketing team, campaigns included");
    assert_eq!(group["roles"], json!(["MarketingDashboard/Editor"]));
    let members = group["members"].as_array().unwrap();
    let expected = changes(&doc["adds"])
        .iter()
        .filter(|l| l.starts_with("production/Marketing "))
        .count();
    assert_eq!(members.len(), expected, "{group:#}");
    for member in members {
        assert_eq!(keys(member), sorted(&["user", "provenance"]), "{member}");
        assert_eq!(member["provenance"], json!(["idp:corp"]), "{member}");
    }
    // Case-insensitive, trimmed lookup of the name; the name keeps its case.
    let out = env.run(&[
        "groups",
        "show",
        "  marketing ",
        "--stage",
        "production",
        "--output",
        "json",
    ]);
    out.expect(0);
    assert_eq!(out.json()["name"], "Marketing");

    let out = env.run(&["users", "show", "ana.silva@example.com", "--output", "json"]);
    out.expect(0);
    let user = out.json();
    assert_eq!(keys(&user), sorted(&["user", "groups", "roles"]));
    assert_eq!(user["user"], "ana.silva@example.com");
    let groups = user["groups"].as_array().unwrap();
    assert!(!groups.is_empty(), "{user:#}");
    for g in groups {
        assert_eq!(keys(g), sorted(&["name", "stage", "provenance"]));
        assert_eq!(g["provenance"], json!(["idp:corp"]));
    }
    let roles = user["roles"].as_object().unwrap();
    assert!(roles.contains_key("production"), "{user:#}");
    for (_, apps) in roles {
        for (app, list) in apps.as_object().unwrap() {
            assert!(!app.contains('/'));
            let list: Vec<&str> = list
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            let mut sorted_list = list.clone();
            sorted_list.sort();
            sorted_list.dedup();
            assert_eq!(list, sorted_list, "roles of {app} are sorted and unique");
        }
    }

    // The key is normalised the same way as IdP attributes.
    let out = env.run(&[
        "users",
        "show",
        "  Diogo.Alves@EXAMPLE.com ",
        "--output",
        "json",
    ]);
    out.expect(0);
    let diogo = out.json();
    assert_eq!(diogo["user"], "diogo.alves@example.com");
    assert!(!diogo["groups"].as_array().unwrap().is_empty(), "{diogo:#}");

    // An unknown key has no groups and no roles.
    let out = env.run(&["users", "show", "nobody@example.com", "--output", "json"]);
    out.expect(0);
    assert_eq!(
        out.json(),
        json!({"user": "nobody@example.com", "groups": [], "roles": {}})
    );

    // `groups list` lists the declared groups with their counts.
    let out = env.run(&["groups", "list", "--output", "json"]);
    out.expect(0);
    let list = out.json();
    let names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            format!(
                "{}/{}",
                g["stage"].as_str().unwrap(),
                g["name"].as_str().unwrap()
            )
        })
        .collect();
    for declared in [
        "production/Marketing",
        "production/Sales",
        "production/Everyone",
        "production/Operators",
        "qa/QA Testers",
        "qa/QA Admins",
    ] {
        assert!(
            names.iter().any(|n| n == declared),
            "{declared} missing from {names:?}"
        );
    }
}

#[test]
fn groups_show_of_a_missing_group_or_bad_stage_exits_2() {
    let env = Env::new();
    let (code, _) = env.reconcile(&[]);
    assert_eq!(code, 0);
    let before = env.state();
    for args in [
        &["groups", "show", "Nope", "--stage", "production"][..],
        &[
            "groups",
            "show",
            "Nope",
            "--stage",
            "production",
            "--output",
            "json",
        ],
        &[
            "groups",
            "show",
            "Marketing",
            "--stage",
            "qa",
            "--output",
            "json",
        ],
        &["groups", "show", "Marketing", "--stage", "Production"],
        &["groups", "show", "Marketing", "--stage", "staging"],
        &["groups", "show", "", "--stage", "production"],
        &["groups", "list", "--stage", "staging"],
        &["users", "show", "ana@example.com", "--stage", "Prod"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        assert!(out.stderr.contains("error"), "{args:?}: {out:?}");
    }
    assert_eq!(env.state(), before);
}

#[test]
fn dry_run_on_a_fresh_folder_creates_nothing_and_predicts_the_real_run() {
    let env = Env::demo();
    let tree = env.tree();
    let (code, dry) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{dry:#}");
    assert_eq!(keys(&dry), sorted(REPORT_FIELDS));
    assert_eq!(dry["dry_run"], true);
    assert!(!dry["adds"].as_array().unwrap().is_empty());
    assert_eq!(env.tree(), tree, "a dry run created files or folders");
    assert!(!env.path("state").exists());

    // Text dry runs too.
    let out = env.run(&["reconcile", "--dry-run"]);
    out.expect(0);
    assert!(out.stdout.contains("Dry run"), "{}", out.stdout);
    assert_eq!(env.tree(), tree);

    let (code, real) = env.reconcile(&[]);
    assert_eq!(code, 0, "{real:#}");
    assert_eq!(real["dry_run"], false);
    assert_eq!(
        without_run(&dry),
        without_run(&real),
        "the dry run predicted another plan"
    );
}

#[test]
fn a_failing_dry_run_on_a_fresh_folder_creates_nothing() {
    let env = Env::new();
    std::fs::remove_file(env.path("corp.json")).unwrap();
    let tree = env.tree();
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["failed_idps"][0]["idp"], "corp");
    assert_eq!(env.tree(), tree);
}

#[test]
fn dry_run_after_changes_writes_nothing_and_predicts_the_real_run() {
    let env = Env::new();
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        changes(&doc["adds"]),
        [
            "production/Marketing ana@example.com corp Marketing Team",
            "production/Marketing ben@example.com corp Marketing Team",
            "qa/Testers ben@example.com corp g-eng",
            "qa/Testers cid@example.com corp g-eng",
        ]
    );
    assert_eq!(doc["summary"]["skipped_users"], 1);

    // Ben leaves marketing, dee joins engineering.
    let mut export = corp_export();
    export["users"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "u5", "email": "dee@example.com"}));
    export["groups"][0]["members"] = json!(["u1", "u4"]);
    export["groups"][1]["members"] = json!(["u2", "u3", "u5"]);
    env.write_export("corp.json", &export);

    let before = env.state();
    let tree = env.tree();
    let (code, dry) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{dry:#}");
    assert_eq!(
        changes(&dry["adds"]),
        ["qa/Testers dee@example.com corp g-eng"]
    );
    assert_eq!(
        changes(&dry["removes"]),
        ["production/Marketing ben@example.com corp Marketing Team"]
    );
    let out = env.run(&["reconcile", "--dry-run"]);
    out.expect(0);
    assert_eq!(env.state(), before, "a dry run changed the state");
    assert_eq!(env.tree(), tree, "a dry run created or removed files");

    let (code, real) = env.reconcile(&[]);
    assert_eq!(code, 0, "{real:#}");
    assert_eq!(without_run(&dry), without_run(&real));
    assert_ne!(env.state(), before);
}

#[test]
fn read_commands_on_a_missing_state_succeed_and_create_nothing() {
    let env = Env::new();
    let tree = env.tree();
    let out = env.run(&["groups", "list"]);
    out.expect(0);
    let out = env.run(&["groups", "list", "--output", "json"]);
    out.expect(0);
    assert!(out.json().is_array());
    let out = env.run(&["groups", "list", "--stage", "qa", "--output", "json"]);
    out.expect(0);
    let out = env.run(&["users", "show", "ana@example.com", "--output", "json"]);
    out.expect(0);
    assert_eq!(
        out.json(),
        json!({"user": "ana@example.com", "groups": [], "roles": {}})
    );
    let out = env.run(&["users", "show", "ana@example.com"]);
    out.expect(0);
    let out = env.run(&["check"]);
    out.expect(0);
    assert_eq!(env.tree(), tree, "a read command created files");
}

/// SPEC §2: "A missing state reads as an empty store: read-only commands ... succeed". A declared
/// group is part of the model from the configuration (dry runs already see it), so showing it
/// must not fail just because no real run has written the state yet.
#[test]
fn groups_show_of_a_declared_group_on_a_missing_state_succeeds() {
    let env = Env::new();
    let tree = env.tree();
    let out = env.run(&[
        "groups",
        "show",
        "Marketing",
        "--stage",
        "production",
        "--output",
        "json",
    ]);
    out.expect(0);
    let doc = out.json();
    assert_eq!(doc["declared"], true);
    assert_eq!(doc["members"], json!([]));
    assert_eq!(env.tree(), tree);
}

#[test]
fn a_missing_or_malformed_export_fails_the_idp_and_removes_nothing() {
    let env = Env::new();
    let (code, _) = env.reconcile(&[]);
    assert_eq!(code, 0);
    let members = env.state().table("memberships").to_vec();
    let export_path = env.path("corp.json");
    let bad_exports: [(&str, Option<&str>); 5] = [
        ("missing", None),
        ("malformed", Some("{not json")),
        ("truncated", Some("{\"users\": [")),
        (
            "unknown field",
            Some(r#"{"users":[{"id":"u1","mail":"a@b"}],"groups":[]}"#),
        ),
        (
            "dangling member",
            Some(
                r#"{"users":[{"id":"u1","email":"ana@example.com"}],"groups":[{"id":"g-mkt","name":"Marketing Team","members":["u1","ghost"]}]}"#,
            ),
        ),
    ];
    for (what, content) in bad_exports {
        match content {
            None => {
                let _ = std::fs::remove_file(&export_path);
            }
            Some(text) => std::fs::write(&export_path, text).unwrap(),
        }
        let out = env.run(&["reconcile", "--output", "json"]);
        assert_eq!(out.code, 1, "{what}: {out:?}");
        let doc = out.json();
        assert_eq!(keys(&doc), sorted(REPORT_FIELDS));
        let failed = doc["failed_idps"].as_array().unwrap();
        assert_eq!(failed.len(), 1, "{what}: {doc:#}");
        assert_eq!(failed[0]["idp"], "corp");
        assert_eq!(keys(&failed[0]), sorted(&["idp", "error"]));
        let error = failed[0]["error"].as_str().unwrap();
        if what != "dangling member" {
            assert!(
                error.contains("corp.json"),
                "{what}: the error names no file: {error}"
            );
        } else {
            assert!(error.contains("ghost"), "{what}: {error}");
        }
        assert_eq!(
            (doc["adds"].clone(), doc["removes"].clone()),
            (json!([]), json!([])),
            "{what}"
        );
        assert_eq!(doc["refused"], json!([]));
        assert_eq!(
            env.state().table("memberships"),
            members,
            "{what}: memberships changed"
        );

        // A dry run exits as the real run would.
        let out = env.run(&["reconcile", "--dry-run", "--output", "json"]);
        assert_eq!(out.code, 1, "{what} (dry run): {out:?}");
        assert_eq!(out.json()["failed_idps"][0]["idp"], "corp");

        // The text form names the IdP on standard output.
        let out = env.run(&["reconcile"]);
        assert_eq!(out.code, 1, "{what} (text): {out:?}");
        assert!(
            out.stdout.contains("FAILED idp corp"),
            "{what}: {}",
            out.stdout
        );
    }

    // Back to a good export: nothing to do, nobody was lost.
    env.write_export("corp.json", &corp_export());
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        (&doc["summary"]["adds"], &doc["summary"]["removes"]),
        (&json!(0), &json!(0))
    );
}

#[test]
fn a_failed_idp_does_not_stop_another() {
    let env = Env::new();
    env.write_config(&format!(
        "{CONFIG}\n[[idp]]\nname = \"hr\"\nkind = \"file\"\npath = \"hr.json\"\n\n[[mapping]]\nidp = \"hr\"\nidp_group = \"Staff\"\ngroup = \"Marketing\"\nstage = \"production\"\n"
    ));
    // hr.json does not exist.
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["failed_idps"].as_array().unwrap().len(), 1);
    assert_eq!(doc["failed_idps"][0]["idp"], "hr");
    assert_eq!(doc["summary"]["adds"], 4, "corp's adds apply: {doc:#}");
}

#[test]
fn stdout_holds_only_the_result() {
    let env = Env::new();
    for args in [
        &["reconcile", "--output", "json", "--dry-run"][..],
        &["reconcile", "--output", "json"],
        &["reconcile", "--output", "json", "-v"],
        &["--log-format", "json", "reconcile", "--output", "json"],
        &["groups", "list", "--output", "json"],
        &[
            "groups",
            "show",
            "Marketing",
            "--stage",
            "production",
            "--output",
            "json",
        ],
        &["users", "show", "ana@example.com", "--output", "json"],
    ] {
        let out = env.run(args);
        out.expect(0);
        // One JSON document and nothing else (serde_json rejects trailing text).
        let _ = out.json();
        assert!(out.stdout.ends_with('\n'), "{args:?}");
    }
    // Logs are on standard error (JSON lines with --log-format json).
    let out = env.run(&["--log-format", "json", "reconcile", "--output", "json"]);
    out.expect(0);
    let _ = out.json();
    let log_lines: Vec<&str> = out.stderr.lines().collect();
    assert!(!log_lines.is_empty());
    for line in log_lines {
        let _: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    }
    // -q: errors only.
    let out = env.run(&["-q", "reconcile", "--output", "json"]);
    out.expect(0);
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
}

#[test]
fn paths_resolve_against_the_config_folder_from_any_working_directory() {
    let env = Env::demo();
    let elsewhere = tempfile::tempdir().unwrap();
    let mut command = env.command();
    command
        .current_dir(elsewhere.path())
        .args(["reconcile", "--output", "json"]);
    let out = crate::common::output(command);
    out.expect(0);
    assert!(out.json()["summary"]["adds"].as_u64().unwrap() > 0);
    assert!(env.state_path().exists(), "the state is beside the config");
    assert!(
        crate::common::tree(elsewhere.path()).is_empty(),
        "files were created in the working directory"
    );

    // A relative --config from another folder works too.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("conf")).unwrap();
    std::fs::create_dir_all(root.path().join("work")).unwrap();
    crate::common::assert_loopback(CONFIG);
    std::fs::write(root.path().join("conf/idpsync.toml"), CONFIG).unwrap();
    std::fs::write(
        root.path().join("conf/corp.json"),
        corp_export().to_string(),
    )
    .unwrap();
    let mut command = crate::common::clean_command();
    command.current_dir(root.path().join("work")).args([
        "--config",
        "../conf/idpsync.toml",
        "reconcile",
        "--output",
        "json",
    ]);
    let out = crate::common::output(command);
    out.expect(0);
    assert_eq!(out.json()["summary"]["adds"], 4);
    assert!(root.path().join("conf/state/idpsync.db").exists());
    assert!(crate::common::tree(&root.path().join("work")).is_empty());

    // Read commands from elsewhere read the same state.
    let mut command = env.command();
    command.current_dir(elsewhere.path()).args([
        "users",
        "show",
        "ana.silva@example.com",
        "--output",
        "json",
    ]);
    let out = crate::common::output(command);
    out.expect(0);
    assert!(!out.json()["groups"].as_array().unwrap().is_empty());
}

#[test]
fn check_validates_and_connect_reads_every_idp() {
    let env = Env::new();
    let tree = env.tree();
    let out = env.run(&["check"]);
    out.expect(0);
    assert!(out.stdout.contains("valid"), "{}", out.stdout);
    let out = env.run(&["check", "--connect"]);
    out.expect(0);
    assert_eq!(env.tree(), tree, "check created files");

    std::fs::remove_file(env.path("corp.json")).unwrap();
    let out = env.run(&["check"]);
    out.expect(0);
    let out = env.run(&["check", "--connect"]);
    out.expect(1);
    assert!(
        out.stdout.contains("corp.json") || out.stderr.contains("corp.json"),
        "{out:?}"
    );

    std::fs::write(env.path("corp.json"), "{oops").unwrap();
    env.run(&["check", "--connect"]).expect(1);
}

#[test]
fn demo_config_checks() {
    let env = Env::demo();
    env.run(&["check", "--connect"]).expect(0);
    // The reference configuration parses as well (its paths need not exist for `check`).
    let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference.toml");
    let copy = Env::empty();
    std::fs::copy(&reference, copy.path("idpsync.toml")).unwrap();
    let token = "reference-secret-value";
    let out = copy.run_with(&["check"], &[("IDPSYNC_REFERENCE_TOKEN", token)]);
    out.expect(0);
    assert!(
        !out.stdout.contains(token) && !out.stderr.contains(token),
        "{out:?}"
    );
    // Without the variable the secret is missing: exit 2, naming the variable.
    let out = copy.run(&["check"]);
    out.expect(2);
    assert!(out.stderr.contains("IDPSYNC_REFERENCE_TOKEN"), "{out:?}");
}

#[test]
fn memberships_survive_a_round_trip_through_the_read_commands() {
    let env = Env::new();
    let (code, _) = env.reconcile(&[]);
    assert_eq!(code, 0);
    assert_eq!(
        memberships(&env),
        [
            "production/Marketing ana@example.com [\"idp:corp\"]",
            "production/Marketing ben@example.com [\"idp:corp\"]",
            "qa/Testers ben@example.com [\"idp:corp\"]",
            "qa/Testers cid@example.com [\"idp:corp\"]",
        ]
    );
}

#[test]
fn check_refuses_a_user_key_and_user_claim_of_different_kinds() {
    let env = Env::new();
    let text = std::fs::read_to_string(env.path("idpsync.toml")).unwrap();
    let with_oidc = text.replacen("[[idp]]", "[[idp]]\nuser_key = \"id\"\n", 1);
    env.write_config(&format!(
        "{with_oidc}\n[idp.oidc]\nissuer = \"https://127.0.0.1:8443\"\nclient_id = \"app\"\n"
    ));
    let out = env.run(&["check"]);
    out.expect(2);
    assert!(
        out.stderr.contains("user_key \"id\"") && out.stderr.contains("user_claim \"email\""),
        "{}",
        out.stderr
    );
}
