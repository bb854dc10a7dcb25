//! The administration commands of issue 3 through the real binary: the seed's group flows, declared
//! groups, direct and mapped provenances on one membership, saved plans, audit, status, journal,
//! export round-trips, backups (also during a running reconcile) and writes beside another writer.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{
    CONFIG, Env, Outcome, REPORT_FIELDS, changes, corp_export, keys, line_of, sorted,
};

const PLAN_FIELDS: &[&str] = &[
    "format",
    "state_generation",
    "config_hash",
    "allow_removals",
    "allow_empty",
    "baselines",
    "external_ids",
    "plan",
];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// [`Env::new`] whose runs see `USER=alice`, so CLI edits are audited as `cli:alice`.
fn env_as_alice() -> Env {
    let mut env = Env::new();
    env.vars.push(("USER".into(), "alice".into()));
    env
}

/// [`env_as_alice`] after a first successful reconcile (ana, ben in Marketing; ben, cid in Testers).
fn reconciled() -> Env {
    let env = env_as_alice();
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["summary"]["adds"], 4, "{doc:#}");
    env
}

/// Runs and asserts the exit status.
fn ok(env: &Env, args: &[&str]) -> Outcome {
    let out = env.run(args);
    out.expect(0);
    out
}

/// Runs a command that must fail with `code`, print nothing on stdout, an error naming `needle`
/// on stderr, and change nothing in the state.
fn refused(env: &Env, args: &[&str], code: i32, needle: &str) -> Outcome {
    let before = env.state().tables;
    let out = env.run(args);
    assert_eq!(out.code, code, "{args:?}: {out:?}");
    assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    assert!(
        out.stderr.contains(needle),
        "{args:?}: want {needle:?} in {out:?}"
    );
    assert_eq!(env.state().tables, before, "{args:?} changed the state");
    out
}

/// The `groups show --output json` document.
fn show(env: &Env, name: &str, stage: &str) -> Value {
    ok(
        env,
        &["groups", "show", name, "--stage", stage, "--output", "json"],
    )
    .json()
}

/// A group's members as (user, provenances), through `groups show --output json`.
fn members(env: &Env, name: &str, stage: &str) -> Vec<(String, Vec<String>)> {
    show(env, name, stage)["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let provenance = m["provenance"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
                .collect();
            (m["user"].as_str().unwrap().to_owned(), provenance)
        })
        .collect()
}

/// `(user, provenances)` pairs for comparing with [`members`].
fn m(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    list.iter()
        .map(|(u, p)| ((*u).to_owned(), p.iter().map(|s| (*s).to_owned()).collect()))
        .collect()
}

/// The export of [`corp_export`] with the members of IdP group `id` replaced.
fn export_with_members(id: &str, new_members: &[&str]) -> Value {
    let mut doc = corp_export();
    for group in doc["groups"].as_array_mut().unwrap() {
        if group["id"] == id {
            group["members"] = json!(new_members);
        }
    }
    doc
}

/// Reads a JSON file.
fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Opens a SQLite file (read-write, as an operator restoring a backup would).
fn open(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn integrity(conn: &rusqlite::Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. The seed's group flows
// ---------------------------------------------------------------------------------------------

#[test]
fn create_show_rename_describe_roles_and_members_of_a_group() {
    let env = reconciled();
    let out = ok(
        &env,
        &[
            "groups",
            "create",
            "Ops",
            "--stage",
            "qa",
            "--description",
            "Operations",
            "--role",
            "Dash/Viewer",
        ],
    );
    assert!(out.stdout.contains("Ops"), "{out:?}");
    let doc = show(&env, "Ops", "qa");
    assert_eq!(
        keys(&doc),
        sorted(&[
            "name",
            "stage",
            "description",
            "declared",
            "roles",
            "members"
        ])
    );
    assert_eq!(
        doc,
        json!({"name": "Ops", "stage": "qa", "description": "Operations", "declared": false,
               "roles": ["Dash/Viewer"], "members": []})
    );
    // Listed in its stage only.
    let list = ok(
        &env,
        &["groups", "list", "--stage", "qa", "--output", "json"],
    )
    .json();
    let ops: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["name"] == "Ops")
        .collect();
    assert_eq!(
        ops,
        [
            &json!({"name": "Ops", "stage": "qa", "description": "Operations", "declared": false,
                 "roles": ["Dash/Viewer"], "member_count": 0})
        ]
    );
    let production = ok(
        &env,
        &[
            "groups",
            "list",
            "--stage",
            "production",
            "--output",
            "json",
        ],
    )
    .json();
    assert!(
        production
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["name"] != "Ops")
    );

    // Rename (looked up case-insensitively); the stage stays.
    ok(
        &env,
        &[
            "groups",
            "update",
            " ops ",
            "--stage",
            "qa",
            "--rename",
            "Platform Ops",
        ],
    );
    refused(
        &env,
        &["groups", "show", "Ops", "--stage", "qa"],
        2,
        "no group",
    );
    assert_eq!(show(&env, "platform ops", "qa")["name"], "Platform Ops");
    // Description only.
    ok(
        &env,
        &[
            "groups",
            "update",
            "Platform Ops",
            "--stage",
            "qa",
            "--description",
            "Platform operations",
        ],
    );
    let doc = show(&env, "Platform Ops", "qa");
    assert_eq!(doc["description"], "Platform operations");
    assert_eq!(doc["name"], "Platform Ops");
    // Both at once.
    ok(
        &env,
        &[
            "groups",
            "update",
            "Platform Ops",
            "--stage",
            "qa",
            "--rename",
            "Ops",
            "--description",
            "Ops again",
        ],
    );
    let doc = show(&env, "Ops", "qa");
    assert_eq!(
        (&doc["name"], &doc["description"]),
        (&json!("Ops"), &json!("Ops again"))
    );

    // Roles: add and remove in one command; the result is printed.
    let out = ok(
        &env,
        &[
            "groups",
            "roles",
            "Ops",
            "--stage",
            "qa",
            "--add",
            "Dash/Editor",
            "--remove",
            "Dash/Viewer",
        ],
    );
    assert!(out.stdout.contains("Dash/Editor"), "{out:?}");
    assert_eq!(show(&env, "Ops", "qa")["roles"], json!(["Dash/Editor"]));
    ok(
        &env,
        &[
            "groups",
            "roles",
            "Ops",
            "--stage",
            "qa",
            "--add",
            "Dash/Viewer",
        ],
    );
    assert_eq!(
        show(&env, "Ops", "qa")["roles"],
        json!(["Dash/Editor", "Dash/Viewer"])
    );
    // A role outside the catalogue, an unknown role of a known app, malformed roles: exit 2.
    for bad in ["Other/Viewer", "Dash/Owner"] {
        refused(
            &env,
            &["groups", "roles", "Ops", "--stage", "qa", "--add", bad],
            2,
            "catalogue",
        );
    }
    for bad in ["DashViewer", "Dash/Viewer/Extra", "/Viewer", "Dash/"] {
        refused(
            &env,
            &["groups", "roles", "Ops", "--stage", "qa", "--add", bad],
            2,
            "App/Role",
        );
        refused(
            &env,
            &["groups", "create", "Other", "--stage", "qa", "--role", bad],
            2,
            "App/Role",
        );
    }
    refused(
        &env,
        &[
            "groups",
            "create",
            "Other",
            "--stage",
            "qa",
            "--role",
            "Nope/Viewer",
        ],
        2,
        "catalogue",
    );
    refused(
        &env,
        &["groups", "roles", "Ops", "--stage", "qa"],
        2,
        "nothing to change",
    );

    // Members: several keys at once, normalised.
    let out = ok(
        &env,
        &[
            "groups",
            "add-user",
            "Ops",
            "--stage",
            "qa",
            "Ana@X.com",
            "  ZED@Example.COM ",
            "ben@example.com",
        ],
    );
    assert!(out.stdout.contains("ana@x.com"), "{out:?}");
    assert_eq!(
        members(&env, "Ops", "qa"),
        m(&[
            ("ana@x.com", &["direct"]),
            ("ben@example.com", &["direct"]),
            ("zed@example.com", &["direct"]),
        ])
    );
    // Adding again is a no-op that says so.
    let out = ok(
        &env,
        &["groups", "add-user", "Ops", "--stage", "qa", "ana@x.com"],
    );
    assert!(out.stdout.contains("already"), "{out:?}");
    assert_eq!(members(&env, "Ops", "qa").len(), 3);
    let list = ok(
        &env,
        &["groups", "list", "--stage", "qa", "--output", "json"],
    )
    .json();
    let ops = list
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Ops")
        .unwrap();
    assert_eq!(ops["member_count"], 3);
    // users show reflects the direct membership and the group's roles.
    let user = ok(&env, &["users", "show", "ANA@x.com", "--output", "json"]).json();
    assert_eq!(
        user,
        json!({"user": "ana@x.com",
               "groups": [{"name": "Ops", "stage": "qa", "provenance": ["direct"]}],
               "roles": {"qa": {"Dash": ["Editor", "Viewer"]}}})
    );
    // One bad key refuses the whole command: nothing is added.
    refused(
        &env,
        &[
            "groups",
            "add-user",
            "Ops",
            "--stage",
            "qa",
            "new@x.com",
            "   ",
        ],
        2,
        "error",
    );
    assert_eq!(members(&env, "Ops", "qa").len(), 3);

    // remove-user, with the key normalised.
    let out = ok(
        &env,
        &[
            "groups",
            "remove-user",
            "Ops",
            "--stage",
            "qa",
            "ANA@x.com",
            "zed@example.com",
        ],
    );
    assert!(out.stdout.contains("ana@x.com"), "{out:?}");
    assert_eq!(
        members(&env, "Ops", "qa"),
        m(&[("ben@example.com", &["direct"])])
    );
    refused(
        &env,
        &["groups", "remove-user", "Ops", "--stage", "qa", "ana@x.com"],
        2,
        "not a direct member",
    );
    refused(
        &env,
        &[
            "groups",
            "remove-user",
            "Ops",
            "--stage",
            "qa",
            "never@seen.com",
        ],
        2,
        "not a direct member",
    );
}

#[test]
fn delete_refuses_a_group_with_members_naming_lost_roles_unless_asked() {
    let env = reconciled();
    // An empty group deletes at once.
    ok(
        &env,
        &["groups", "create", "Empty", "--stage", "development"],
    );
    let out = ok(
        &env,
        &["groups", "delete", "empty", "--stage", "development"],
    );
    assert!(out.stdout.contains("Deleted group"), "{out:?}");
    refused(
        &env,
        &["groups", "show", "Empty", "--stage", "development"],
        2,
        "no group",
    );

    // ana also has Dash/Viewer in production through Marketing: she loses Editor only.
    ok(
        &env,
        &[
            "groups",
            "create",
            "Ops",
            "--stage",
            "production",
            "--role",
            "Dash/Viewer",
            "--role",
            "Dash/Editor",
        ],
    );
    ok(
        &env,
        &[
            "groups",
            "add-user",
            "Ops",
            "--stage",
            "production",
            "ana@example.com",
            "zed@x.com",
        ],
    );
    let out = refused(
        &env,
        &["groups", "delete", "Ops", "--stage", "production"],
        3,
        "--remove-members",
    );
    assert!(
        out.stderr
            .contains("ana@example.com would lose Dash/Editor;"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("zed@x.com would lose Dash/Editor, Dash/Viewer"),
        "{out:?}"
    );
    assert_eq!(members(&env, "Ops", "production").len(), 2);

    let out = ok(
        &env,
        &[
            "groups",
            "delete",
            "Ops",
            "--stage",
            "production",
            "--remove-members",
        ],
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].contains("Deleted group \"Ops\""), "{out:?}");
    assert!(
        lines.iter().any(|l| l.contains("ana@example.com")
            && l.contains("Dash/Editor")
            && !l.contains("Dash/Viewer")),
        "{out:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("zed@x.com") && l.contains("Dash/Editor, Dash/Viewer")),
        "{out:?}"
    );
    refused(
        &env,
        &["groups", "show", "Ops", "--stage", "production"],
        2,
        "no group",
    );
    let zed = ok(&env, &["users", "show", "zed@x.com", "--output", "json"]).json();
    assert_eq!(zed, json!({"user": "zed@x.com", "groups": [], "roles": {}}));
    let ana = ok(
        &env,
        &["users", "show", "ana@example.com", "--output", "json"],
    )
    .json();
    assert_eq!(ana["roles"], json!({"production": {"Dash": ["Viewer"]}}));
    // The IdP membership in Marketing is untouched.
    assert_eq!(
        members(&env, "Marketing", "production"),
        m(&[
            ("ana@example.com", &["idp:corp"]),
            ("ben@example.com", &["idp:corp"]),
        ])
    );
}

#[test]
fn group_names_are_unique_per_stage_after_normalisation() {
    let env = reconciled();
    // "Marketing" is declared in production.
    refused(
        &env,
        &["groups", "create", " MARKETING ", "--stage", "production"],
        2,
        "already exists",
    );
    // The same name in another stage is another group.
    ok(&env, &["groups", "create", " MARKETING ", "--stage", "qa"]);
    let doc = show(&env, "marketing", "qa");
    assert_eq!(doc["name"], "MARKETING", "the name keeps its case, trimmed");
    assert_eq!(doc["declared"], false);

    ok(&env, &["groups", "create", "Sales", "--stage", "qa"]);
    refused(
        &env,
        &["groups", "create", "sALES", "--stage", "qa"],
        2,
        "already exists",
    );
    ok(
        &env,
        &["groups", "create", "sales", "--stage", "development"],
    );
    // Unicode NFC: a decomposed é is the same name as a composed one.
    ok(&env, &["groups", "create", "Caf\u{e9}", "--stage", "qa"]);
    refused(
        &env,
        &["groups", "create", "CAFE\u{301}", "--stage", "qa"],
        2,
        "already exists",
    );
    // A rename may not take another group's name; changing only its case is fine.
    refused(
        &env,
        &[
            "groups",
            "update",
            "Sales",
            "--stage",
            "qa",
            "--rename",
            " marketing ",
        ],
        2,
        "already exists",
    );
    refused(
        &env,
        &[
            "groups", "update", "Sales", "--stage", "qa", "--rename", "testers",
        ],
        2,
        "already exists",
    );
    ok(
        &env,
        &[
            "groups", "update", "Sales", "--stage", "qa", "--rename", "SALES",
        ],
    );
    assert_eq!(show(&env, "sales", "qa")["name"], "SALES");
}

#[test]
fn unknown_groups_unknown_stages_and_empty_updates_exit_2() {
    let env = reconciled();
    let unknown_group: &[&[&str]] = &[
        &["groups", "update", "Nope", "--stage", "qa", "--rename", "X"],
        &[
            "groups",
            "update",
            "Nope",
            "--stage",
            "qa",
            "--description",
            "X",
        ],
        &[
            "groups",
            "roles",
            "Nope",
            "--stage",
            "qa",
            "--add",
            "Dash/Viewer",
        ],
        &[
            "groups",
            "add-user",
            "Nope",
            "--stage",
            "qa",
            "ana@example.com",
        ],
        &[
            "groups",
            "remove-user",
            "Nope",
            "--stage",
            "qa",
            "ana@example.com",
        ],
        &["groups", "delete", "Nope", "--stage", "qa"],
        &[
            "groups",
            "delete",
            "Nope",
            "--stage",
            "qa",
            "--remove-members",
        ],
        // Declared in production, not in qa.
        &[
            "groups",
            "add-user",
            "Marketing",
            "--stage",
            "qa",
            "ana@example.com",
        ],
    ];
    for args in unknown_group {
        refused(&env, args, 2, "no group");
    }
    let unknown_stage: &[&[&str]] = &[
        &["groups", "create", "X", "--stage", "staging"],
        &["groups", "create", "X", "--stage", "Production"],
        &[
            "groups",
            "update",
            "Marketing",
            "--stage",
            "staging",
            "--rename",
            "X",
        ],
        &[
            "groups",
            "roles",
            "Marketing",
            "--stage",
            "staging",
            "--add",
            "Dash/Viewer",
        ],
        &[
            "groups",
            "add-user",
            "Marketing",
            "--stage",
            "staging",
            "ana@example.com",
        ],
        &[
            "groups",
            "remove-user",
            "Marketing",
            "--stage",
            "staging",
            "ana@example.com",
        ],
        &["groups", "delete", "Marketing", "--stage", "staging"],
    ];
    for args in unknown_stage {
        refused(&env, args, 2, "stage");
    }
    refused(
        &env,
        &["groups", "update", "Testers", "--stage", "qa"],
        2,
        "nothing to change",
    );
    ok(&env, &["groups", "create", "Ops", "--stage", "qa"]);
    refused(
        &env,
        &["groups", "update", "Ops", "--stage", "qa"],
        2,
        "nothing to change",
    );
    // Bad names: empty, and over 256 characters.
    refused(
        &env,
        &["groups", "create", "  ", "--stage", "qa"],
        2,
        "error",
    );
    let long = "x".repeat(257);
    refused(
        &env,
        &["groups", "create", &long, "--stage", "qa"],
        2,
        "error",
    );
    refused(
        &env,
        &[
            "groups", "update", "Ops", "--stage", "qa", "--rename", &long,
        ],
        2,
        "error",
    );
    // Missing arguments are usage errors too.
    for args in [
        &["groups", "add-user", "Ops", "--stage", "qa"][..],
        &["groups", "create", "Ops"],
        &["groups", "delete", "Ops"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Declared groups
// ---------------------------------------------------------------------------------------------

#[test]
fn declared_groups_refuse_config_owned_edits_naming_file_and_line() {
    let env = reconciled();
    let config = env.config_path().display().to_string();
    let marketing_line = line_of(CONFIG, "name = \"Marketing\"") - 1;
    let testers_line = line_of(CONFIG, "name = \"Testers\"") - 1;
    assert_eq!(
        CONFIG.lines().nth(marketing_line - 1),
        Some("[[group]]"),
        "the declared line is the [[group]] header"
    );
    let cases: &[(&[&str], usize)] = &[
        (
            &[
                "groups",
                "update",
                "Marketing",
                "--stage",
                "production",
                "--rename",
                "Mkt",
            ],
            marketing_line,
        ),
        (
            &[
                "groups",
                "update",
                " marketing ",
                "--stage",
                "production",
                "--description",
                "X",
            ],
            marketing_line,
        ),
        (
            &[
                "groups",
                "roles",
                "Marketing",
                "--stage",
                "production",
                "--add",
                "Dash/Editor",
            ],
            marketing_line,
        ),
        (
            &[
                "groups",
                "roles",
                "Marketing",
                "--stage",
                "production",
                "--remove",
                "Dash/Viewer",
            ],
            marketing_line,
        ),
        (
            &["groups", "delete", "Marketing", "--stage", "production"],
            marketing_line,
        ),
        (
            &[
                "groups",
                "delete",
                "Marketing",
                "--stage",
                "production",
                "--remove-members",
            ],
            marketing_line,
        ),
        (
            &[
                "groups", "update", "TESTERS", "--stage", "qa", "--rename", "QA",
            ],
            testers_line,
        ),
        (
            &[
                "groups",
                "delete",
                "Testers",
                "--stage",
                "qa",
                "--remove-members",
            ],
            testers_line,
        ),
    ];
    for (args, line) in cases {
        let out = refused(&env, args, 2, "declared");
        assert!(out.stderr.contains(&config), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(&format!("line {line}")),
            "{args:?}: want line {line}: {out:?}"
        );
    }
    let doc = show(&env, "Marketing", "production");
    assert_eq!(doc["declared"], true);
    assert_eq!(doc["description"], "Marketing team");
    assert_eq!(doc["roles"], json!(["Dash/Viewer"]));

    // Membership edits are accepted.
    ok(
        &env,
        &[
            "groups",
            "add-user",
            "Marketing",
            "--stage",
            "production",
            "Zed@X.com",
        ],
    );
    assert_eq!(
        members(&env, "Marketing", "production"),
        m(&[
            ("ana@example.com", &["idp:corp"]),
            ("ben@example.com", &["idp:corp"]),
            ("zed@x.com", &["direct"]),
        ])
    );
    ok(
        &env,
        &[
            "groups",
            "remove-user",
            "Marketing",
            "--stage",
            "production",
            "zed@x.com",
        ],
    );
    assert_eq!(members(&env, "Marketing", "production").len(), 2);
}

#[test]
fn declared_groups_accept_member_edits_before_any_reconcile() {
    // On a fresh folder the declared group does not exist in the store yet; an edit creates it.
    let env = env_as_alice();
    ok(
        &env,
        &[
            "groups",
            "add-user",
            "Testers",
            "--stage",
            "qa",
            "dan@example.com",
        ],
    );
    let doc = show(&env, "Testers", "qa");
    assert_eq!(doc["declared"], true);
    assert_eq!(doc["roles"], json!(["Dash/Editor"]));
    assert_eq!(
        members(&env, "Testers", "qa"),
        m(&[("dan@example.com", &["direct"])])
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Direct and mapped provenances on one membership
// ---------------------------------------------------------------------------------------------

#[test]
fn direct_and_idp_provenances_coexist_and_survive_each_others_removal() {
    let env = reconciled();
    // ana: mapped from the IdP, then also added directly.
    ok(
        &env,
        &[
            "groups",
            "add-user",
            "Marketing",
            "--stage",
            "production",
            "ana@example.com",
        ],
    );
    assert_eq!(
        members(&env, "Marketing", "production"),
        m(&[
            ("ana@example.com", &["direct", "idp:corp"]),
            ("ben@example.com", &["idp:corp"]),
        ])
    );
    let ana = ok(
        &env,
        &["users", "show", "ana@example.com", "--output", "json"],
    )
    .json();
    assert_eq!(
        ana["groups"],
        json!([{"name": "Marketing", "stage": "production", "provenance": ["direct", "idp:corp"]}])
    );
    // A reconcile leaves the direct provenance alone.
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(
        (code, &doc["summary"]["adds"], &doc["summary"]["removes"]),
        (0, &json!(0), &json!(0))
    );

    // remove-user removes the direct provenance only and says the IdP keeps her in.
    let out = ok(
        &env,
        &[
            "groups",
            "remove-user",
            "Marketing",
            "--stage",
            "production",
            "ana@example.com",
        ],
    );
    assert!(
        out.stdout.contains("stays a member through idp:corp"),
        "{out:?}"
    );
    assert_eq!(
        members(&env, "Marketing", "production"),
        m(&[
            ("ana@example.com", &["idp:corp"]),
            ("ben@example.com", &["idp:corp"]),
        ])
    );
    // An IdP-only member is not a direct member.
    refused(
        &env,
        &[
            "groups",
            "remove-user",
            "Marketing",
            "--stage",
            "production",
            "ana@example.com",
        ],
        2,
        "not a direct member",
    );
    refused(
        &env,
        &[
            "groups",
            "remove-user",
            "Testers",
            "--stage",
            "qa",
            "Ben@Example.com",
        ],
        2,
        "not a direct member",
    );

    // ben: mapped and direct. Then the IdP replaces ana and ben with cid in "Marketing Team".
    ok(
        &env,
        &[
            "groups",
            "add-user",
            "Marketing",
            "--stage",
            "production",
            "ben@example.com",
        ],
    );
    env.write_export("corp.json", &export_with_members("g-mkt", &["u3", "u4"]));
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        changes(&doc["removes"]),
        [
            "production/Marketing ana@example.com corp Marketing Team",
            "production/Marketing ben@example.com corp Marketing Team",
        ]
    );
    // ana had nothing else: gone. ben keeps his direct membership.
    assert_eq!(
        members(&env, "Marketing", "production"),
        m(&[
            ("ben@example.com", &["direct"]),
            ("cid@example.com", &["idp:corp"]),
        ])
    );
    let ben = ok(
        &env,
        &["users", "show", "ben@example.com", "--output", "json"],
    )
    .json();
    assert_eq!(
        ben["groups"],
        json!([
            {"name": "Marketing", "stage": "production", "provenance": ["direct"]},
            {"name": "Testers", "stage": "qa", "provenance": ["idp:corp"]}
        ])
    );
    assert_eq!(ben["roles"]["production"], json!({"Dash": ["Viewer"]}));
    // The IdP takes them back: ben shows both again, ana only the IdP's.
    env.write_export("corp.json", &corp_export());
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        (&doc["summary"]["adds"], &doc["summary"]["removes"]),
        (&json!(2), &json!(1)),
        "{doc:#}"
    );
    assert_eq!(
        members(&env, "Marketing", "production"),
        m(&[
            ("ana@example.com", &["idp:corp"]),
            ("ben@example.com", &["direct", "idp:corp"]),
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Saved plans
// ---------------------------------------------------------------------------------------------

/// A reconciled folder whose export now adds dan to Marketing and drops cid from Engineering.
fn with_pending_changes() -> Env {
    let env = reconciled();
    let mut export = export_with_members("g-eng", &["u2"]);
    export["users"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "u5", "email": "Dan@Example.com"}));
    export["groups"][0]["members"]
        .as_array_mut()
        .unwrap()
        .push(json!("u5"));
    env.write_export("corp.json", &export);
    env
}

const PENDING_ADDS: &[&str] = &["production/Marketing dan@example.com corp Marketing Team"];
const PENDING_REMOVES: &[&str] = &["qa/Testers cid@example.com corp g-eng"];

#[test]
fn plan_writes_the_document_changes_nothing_and_apply_equals_reconcile() {
    let env = with_pending_changes();
    let (code, dry) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{dry:#}");
    let before = env.state();
    let tree = env.tree();

    let out = env.run(&["plan", "--out", "P.json", "--output", "json"]);
    out.expect(0);
    let printed = out.json();
    assert_eq!(keys(&printed), sorted(REPORT_FIELDS));
    let file = read_json(&env.path("P.json"));
    assert_eq!(keys(&file), sorted(PLAN_FIELDS), "{file:#}");
    assert_eq!(file["format"], "idpsync-plan/1");
    assert!(file["state_generation"].is_i64(), "{file:#}");
    assert!(
        !file["config_hash"].as_str().unwrap().is_empty(),
        "{file:#}"
    );
    assert_eq!(file["allow_removals"], Value::Null);
    assert_eq!(file["allow_empty"], false);
    assert_eq!(keys(&file["baselines"]), ["corp"]);
    assert_eq!(file["plan"], printed, "the file holds the printed document");
    assert_eq!(keys(&file["plan"]), sorted(REPORT_FIELDS));
    assert_eq!(changes(&file["plan"]["adds"]), PENDING_ADDS);
    assert_eq!(changes(&file["plan"]["removes"]), PENDING_REMOVES);
    assert_eq!(file["plan"]["adds"], dry["adds"]);
    assert_eq!(file["plan"]["removes"], dry["removes"]);
    assert_eq!(file["plan"]["refused"], json!([]));

    // Planning wrote nothing but the plan file.
    assert_eq!(env.state(), before, "planning changed the state");
    let mut expected_tree = tree.clone();
    expected_tree.insert("P.json".into());
    assert_eq!(env.tree(), expected_tree);

    // A twin folder reconciles instead of applying: the stores must end up equal.
    let twin = env.copy();
    let out = env.run(&["apply", "P.json"]);
    out.expect(0);
    assert!(out.stdout.contains("1 adds, 1 removes"), "{out:?}");
    let (code, doc) = twin.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(changes(&doc["adds"]), PENDING_ADDS);
    assert_eq!(changes(&doc["removes"]), PENDING_REMOVES);
    let (applied, reconciled) = (env.state(), twin.state());
    for table in [
        "memberships",
        "baselines",
        "groups",
        "group_roles",
        "sources",
    ] {
        assert_eq!(
            applied.table(table),
            reconciled.table(table),
            "table {table} differs between apply and reconcile"
        );
    }
    let user_keys = |dump: &crate::common::StateDump| -> Vec<String> {
        dump.table("users")
            .iter()
            .map(|row| row.split('|').nth(1).unwrap().to_owned())
            .collect()
    };
    assert_eq!(user_keys(&applied), user_keys(&reconciled));
    assert_eq!(
        members(&env, "Marketing", "production"),
        members(&twin, "Marketing", "production")
    );
    // Audited like a run, under the plan's run id.
    let run_id = file["plan"]["run_id"].as_str().unwrap();
    let audit = ok(
        &env,
        &["audit", "--user", "dan@example.com", "--output", "json"],
    )
    .json();
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit:#}");
    assert_eq!(audit[0]["actor"], format!("run:{run_id}"));
    assert_eq!(audit[0]["op"], "add");
    // Nothing is left to do.
    let (code, after) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(
        (&after["adds"], &after["removes"]),
        (&json!([]), &json!([]))
    );

    // Applying it again is a stale plan.
    let before = env.state().tables;
    let out = env.run(&["apply", "P.json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("make a new plan"), "{out:?}");
    assert_eq!(env.state().tables, before);
}

#[test]
fn apply_stores_immutable_ids_like_reconcile() {
    let env = with_pending_changes();
    ok(&env, &["plan", "--out", "P.json"]);
    let twin = env.copy();
    ok(&env, &["apply", "P.json"]);
    let (code, _) = twin.reconcile(&[]);
    assert_eq!(code, 0);
    assert_eq!(
        env.state().table("user_ids"),
        twin.state().table("user_ids")
    );
}

#[test]
fn apply_on_a_fresh_folder_applies_the_plan() {
    let env = env_as_alice();
    let out = env.run(&["plan", "--out", "P.json"]);
    out.expect(0);
    assert!(out.stdout.contains("apply"), "{out:?}");
    assert!(!env.state_path().exists(), "planning created the state");
    ok(&env, &["apply", "P.json"]);
    assert_eq!(
        members(&env, "Marketing", "production"),
        m(&[
            ("ana@example.com", &["idp:corp"]),
            ("ben@example.com", &["idp:corp"]),
        ])
    );
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0);
    assert_eq!(doc["summary"]["adds"], 0, "{doc:#}");
}

#[test]
fn a_plan_is_stale_after_any_membership_role_or_group_change() {
    let edits: &[&[&str]] = &[
        &[
            "groups",
            "add-user",
            "Marketing",
            "--stage",
            "production",
            "zed@x.com",
        ],
        &[
            "groups",
            "add-user",
            "Testers",
            "--stage",
            "qa",
            "cid@example.com",
        ],
        &["groups", "create", "Ops", "--stage", "qa"],
        &[
            "groups",
            "roles",
            "Extra",
            "--stage",
            "qa",
            "--add",
            "Dash/Editor",
        ],
        &[
            "groups",
            "roles",
            "Extra",
            "--stage",
            "qa",
            "--remove",
            "Dash/Viewer",
        ],
        &[
            "groups", "update", "Extra", "--stage", "qa", "--rename", "Extra 2",
        ],
        &[
            "groups",
            "update",
            "Extra",
            "--stage",
            "qa",
            "--description",
            "new",
        ],
        &[
            "groups",
            "remove-user",
            "Extra",
            "--stage",
            "qa",
            "eve@x.com",
        ],
        &[
            "groups",
            "delete",
            "Extra",
            "--stage",
            "qa",
            "--remove-members",
        ],
    ];
    for edit in edits {
        let env = with_pending_changes();
        ok(
            &env,
            &[
                "groups",
                "create",
                "Extra",
                "--stage",
                "qa",
                "--role",
                "Dash/Viewer",
            ],
        );
        ok(
            &env,
            &["groups", "add-user", "Extra", "--stage", "qa", "eve@x.com"],
        );
        ok(&env, &["plan", "--out", "P.json"]);
        ok(&env, edit);
        let before = env.state().tables;
        let out = env.run(&["apply", "P.json"]);
        assert_eq!(out.code, 3, "after {edit:?}: {out:?}");
        assert!(out.stderr.contains("changed since the plan"), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        assert_eq!(env.state().tables, before, "after {edit:?}");
        // A new plan applies.
        ok(&env, &["plan", "--out", "P2.json"]);
        ok(&env, &["apply", "P2.json"]);
    }
    // A reconcile that changed memberships makes it stale too.
    let env = with_pending_changes();
    ok(&env, &["plan", "--out", "P.json"]);
    let (code, _) = env.reconcile(&[]);
    assert_eq!(code, 0);
    let before = env.state().tables;
    let out = env.run(&["apply", "P.json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(env.state().tables, before);
}

#[test]
fn a_plan_is_stale_after_the_configuration_changes() {
    let env = with_pending_changes();
    ok(&env, &["plan", "--out", "P.json"]);
    // The file changed (even by a comment).
    env.write_config(&format!("{CONFIG}\n# edited\n"));
    let before = env.state().tables;
    let out = env.run(&["apply", "P.json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("configuration changed"), "{out:?}");
    assert_eq!(env.state().tables, before);
    // Back to the planned text, but an override differs.
    env.write_config(CONFIG);
    let out = env.run_with(
        &["apply", "P.json"],
        &[("IDPSYNC__SAFETY__MAX_REMOVALS", "50")],
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(env.state().tables, before);
    // The planned configuration applies.
    ok(&env, &["apply", "P.json"]);
    assert!(
        members(&env, "Marketing", "production")
            .iter()
            .any(|(u, _)| u == "dan@example.com")
    );
}

#[test]
fn corrupt_foreign_and_missing_plan_files_exit_2() {
    let env = with_pending_changes();
    ok(&env, &["plan", "--out", "P.json"]);
    let good = read_json(&env.path("P.json"));
    let (_, reconcile_doc) = env.reconcile(&["--dry-run"]);
    let mut other_format = good.clone();
    other_format["format"] = json!("idpsync-plan/99");
    let mut extra_field = good.clone();
    extra_field["surprise"] = json!(true);
    let mut missing_field = good.clone();
    missing_field.as_object_mut().unwrap().remove("config_hash");
    let files: Vec<(&str, String)> = vec![
        ("corrupt.json", "{\"format\": \"idpsync-plan/1\", ".into()),
        ("empty.json", String::new()),
        ("binary.json", "\u{0}\u{1}garbage".into()),
        ("reconcile.json", reconcile_doc.to_string()),
        ("export.json", corp_export().to_string()),
        ("array.json", "[]".into()),
        ("format.json", other_format.to_string()),
        ("extra.json", extra_field.to_string()),
        ("missing-field.json", missing_field.to_string()),
    ];
    let before = env.state().tables;
    for (name, text) in &files {
        std::fs::write(env.path(name), text).unwrap();
        let out = env.run(&["apply", name]);
        assert_eq!(out.code, 2, "{name}: {out:?}");
        assert!(
            out.stderr.contains("not an idpsync plan"),
            "{name}: {out:?}"
        );
        assert!(out.stderr.contains(name), "{name}: {out:?}");
    }
    let out = env.run(&["apply", "no-such-plan.json"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no-such-plan.json"), "{out:?}");
    let out = env.run(&["apply"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(env.state().tables, before);
    // The good one still applies.
    ok(&env, &["apply", "P.json"]);
}

#[test]
fn plans_run_the_guards_and_record_their_flags() {
    let config = CONFIG.replace("[[idp]]", "[safety]\nmax_removals = 1\n\n[[idp]]");
    let mut env = Env::new();
    env.vars.push(("USER".into(), "alice".into()));
    env.write_config(&config);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    // Two removals (ana from Marketing, cid from Testers) against a limit of one.
    let mut export = export_with_members("g-mkt", &["u2", "u4"]);
    export["groups"][1]["members"] = json!(["u2"]);
    env.write_export("corp.json", &export);
    let before = env.state();
    let out = env.run(&["plan", "--out", "P.json"]);
    assert_eq!(out.code, 3, "a plan exits as the dry run would: {out:?}");
    assert!(out.stdout.contains("REFUSED"), "{out:?}");
    assert_eq!(env.state(), before);
    let file = read_json(&env.path("P.json"));
    let refusal = &file["plan"]["refused"][0];
    assert_eq!(
        file["plan"]["refused"].as_array().unwrap().len(),
        1,
        "{file:#}"
    );
    assert_eq!(
        (
            &refusal["idp"],
            &refusal["guard"],
            &refusal["removals"],
            &refusal["limit"]
        ),
        (&json!("corp"), &json!("removals"), &json!(2), &json!(1)),
        "{file:#}"
    );
    assert!(
        refusal["allow"]
            .as_str()
            .unwrap()
            .ends_with("reconcile --idp corp --allow-removals 2"),
        "{refusal}"
    );
    assert_eq!(file["plan"]["removes"], json!([]));
    assert_eq!(
        file["baselines"],
        json!({}),
        "a refused IdP has nothing to apply"
    );
    // Applying a refused plan applies nothing and exits 3 again.
    let out = env.run(&["apply", "P.json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.contains("allow-removals 2"), "{out:?}");
    assert_eq!(
        env.state().table("memberships"),
        before.table("memberships")
    );

    // Not enough.
    let out = env.run(&["plan", "--allow-removals", "1", "--out", "P1.json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(read_json(&env.path("P1.json"))["allow_removals"], 1);

    // Enough: recorded, and the removals apply.
    let out = env.run(&["plan", "--allow-removals", "2", "--out", "P2.json"]);
    out.expect(0);
    let file = read_json(&env.path("P2.json"));
    assert_eq!(file["allow_removals"], 2);
    assert_eq!(file["allow_empty"], false);
    assert_eq!(
        changes(&file["plan"]["removes"]),
        [
            "production/Marketing ana@example.com corp Marketing Team",
            "qa/Testers cid@example.com corp g-eng",
        ]
    );
    ok(&env, &["apply", "P2.json"]);
    assert_eq!(
        members(&env, "Marketing", "production"),
        m(&[("ben@example.com", &["idp:corp"])])
    );
    assert_eq!(
        members(&env, "Testers", "qa"),
        m(&[("ben@example.com", &["idp:corp"])])
    );

    // The empty guard at plan time, and --allow-empty recorded.
    env.write_export("corp.json", &json!({"users": [], "groups": []}));
    let out = env.run(&["plan", "--out", "E.json"]);
    assert_eq!(out.code, 3, "{out:?}");
    let file = read_json(&env.path("E.json"));
    assert_eq!(file["plan"]["refused"][0]["guard"], "empty", "{file:#}");
    let out = env.run(&[
        "plan",
        "--allow-empty",
        "--allow-removals",
        "5",
        "--out",
        "E2.json",
    ]);
    out.expect(0);
    let file = read_json(&env.path("E2.json"));
    assert_eq!(
        (&file["allow_empty"], &file["allow_removals"]),
        (&json!(true), &json!(5))
    );
    assert_eq!(
        file["plan"]["removes"].as_array().unwrap().len(),
        2,
        "{file:#}"
    );
    ok(&env, &["apply", "E2.json"]);
    assert_eq!(members(&env, "Testers", "qa"), m(&[]));

    // An unknown IdP is bad usage and writes no plan.
    let out = env.run(&["plan", "--idp", "nope", "--out", "U.json"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(!env.path("U.json").exists());
}

// ---------------------------------------------------------------------------------------------
// 5. Audit
// ---------------------------------------------------------------------------------------------

/// `YYYY-MM-DDTHH:MM:SS` followed by optional fractional seconds and `Z`: RFC 3339 in UTC.
fn is_rfc3339_utc(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
    };
    digits(0..4)
        && bytes.get(4) == Some(&b'-')
        && digits(5..7)
        && bytes.get(7) == Some(&b'-')
        && digits(8..10)
        && bytes.get(10) == Some(&b'T')
        && digits(11..13)
        && bytes.get(13) == Some(&b':')
        && digits(14..16)
        && bytes.get(16) == Some(&b':')
        && digits(17..19)
        && text.ends_with('Z')
        && text[19..text.len() - 1]
            .strip_prefix('.')
            .map_or(text.len() == 20, |f| {
                !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit())
            })
}

#[test]
fn audit_records_every_change_with_its_actor() {
    let env = env_as_alice();
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    let run_actor = format!("run:{}", doc["run_id"].as_str().unwrap());
    ok(
        &env,
        &[
            "groups",
            "create",
            "Ops",
            "--stage",
            "qa",
            "--role",
            "Dash/Viewer",
        ],
    );
    ok(
        &env,
        &["groups", "add-user", "Ops", "--stage", "qa", "Zed@X.com"],
    );
    let out = env.run_with(
        &["groups", "remove-user", "Ops", "--stage", "qa", "zed@x.com"],
        &[("USER", "bob")],
    );
    out.expect(0);

    let records = ok(&env, &["audit", "--output", "json"]).json();
    let records = records.as_array().unwrap();
    for r in records {
        assert_eq!(
            keys(r),
            sorted(&[
                "time",
                "actor",
                "op",
                "stage",
                "group",
                "user",
                "provenance",
                "cause",
                "detail"
            ]),
            "{r}"
        );
        assert!(is_rfc3339_utc(r["time"].as_str().unwrap()), "{r}");
    }
    // The IdP's four adds, by the run.
    let adds: Vec<String> = records
        .iter()
        .filter(|r| r["op"] == "add" && r["provenance"] == "idp:corp")
        .map(|r| {
            assert_eq!(r["actor"], run_actor, "{r}");
            format!(
                "{}/{} {} {}",
                r["stage"].as_str().unwrap(),
                r["group"].as_str().unwrap(),
                r["user"].as_str().unwrap(),
                r["cause"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        adds,
        [
            "production/Marketing ana@example.com Marketing Team",
            "production/Marketing ben@example.com Marketing Team",
            "qa/Testers ben@example.com g-eng",
            "qa/Testers cid@example.com g-eng",
        ]
    );
    // The CLI's edits, by the Unix user that made them.
    let cli: Vec<(String, String, String)> = records
        .iter()
        .filter(|r| r["actor"].as_str().unwrap().starts_with("cli:"))
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_owned(),
                r["op"].as_str().unwrap().to_owned(),
                r["user"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let t = |a: &str, o: &str, u: &str| (a.to_owned(), o.to_owned(), u.to_owned());
    assert_eq!(
        cli,
        [
            t("cli:alice", "group.create", ""),
            t("cli:alice", "add", "zed@x.com"),
            t("cli:bob", "remove", "zed@x.com"),
        ]
    );
    let direct = records
        .iter()
        .find(|r| r["actor"] == "cli:alice" && r["op"] == "add")
        .unwrap();
    assert_eq!(
        (&direct["stage"], &direct["group"], &direct["provenance"]),
        (&json!("qa"), &json!("Ops"), &json!("direct"))
    );

    // Filters.
    let future = ok(
        &env,
        &[
            "audit",
            "--since",
            "2999-01-01T00:00:00Z",
            "--output",
            "json",
        ],
    )
    .json();
    assert_eq!(future, json!([]));
    let past = ok(
        &env,
        &[
            "audit",
            "--since",
            "2000-01-01T00:00:00+02:00",
            "--output",
            "json",
        ],
    )
    .json();
    assert_eq!(past.as_array().unwrap().len(), records.len());
    let first_time = records[0]["time"].as_str().unwrap();
    let since_first = ok(&env, &["audit", "--since", first_time, "--output", "json"]).json();
    assert_eq!(since_first.as_array().unwrap().len(), records.len());
    for bad in ["yesterday", "2026-13-01T00:00:00Z", "2026-01-01", ""] {
        let out = env.run(&["audit", "--since", bad]);
        assert_eq!(out.code, 2, "{bad:?}: {out:?}");
        assert!(out.stdout.is_empty());
    }
    let ben = ok(
        &env,
        &["audit", "--user", "Ben@Example.COM", "--output", "json"],
    )
    .json();
    let ben = ben.as_array().unwrap();
    assert_eq!(ben.len(), 2, "{ben:?}");
    assert!(ben.iter().all(|r| r["user"] == "ben@example.com"));
    let marketing = ok(
        &env,
        &[
            "audit",
            "--group",
            "MARKETING",
            "--stage",
            "production",
            "--output",
            "json",
        ],
    )
    .json();
    let marketing = marketing.as_array().unwrap();
    assert_eq!(
        marketing.len(),
        3,
        "group.create and two adds: {marketing:?}"
    );
    assert!(
        marketing
            .iter()
            .all(|r| r["group"] == "Marketing" && r["stage"] == "production")
    );
    let none = ok(
        &env,
        &[
            "audit",
            "--group",
            "Marketing",
            "--stage",
            "qa",
            "--output",
            "json",
        ],
    )
    .json();
    assert_eq!(none, json!([]));
    // --group needs --stage and the other way round.
    assert_eq!(env.run(&["audit", "--group", "Marketing"]).code, 2);
    assert_eq!(env.run(&["audit", "--stage", "qa"]).code, 2);

    // Text output: one line per record, naming actor and op.
    let text = ok(&env, &["audit"]);
    assert_eq!(text.stdout.lines().count(), records.len(), "{text:?}");
    assert!(text.stdout.contains(&run_actor));
    assert!(
        text.stdout
            .contains("cli:bob remove qa/Ops zed@x.com direct"),
        "{text:?}"
    );
}

#[test]
fn audit_keeps_a_deleted_groups_name() {
    let env = reconciled();
    ok(&env, &["groups", "create", "Ops", "--stage", "qa"]);
    ok(
        &env,
        &["groups", "add-user", "Ops", "--stage", "qa", "zed@x.com"],
    );
    ok(
        &env,
        &[
            "groups", "update", "Ops", "--stage", "qa", "--rename", "Old Ops",
        ],
    );
    ok(
        &env,
        &[
            "groups",
            "delete",
            "Old Ops",
            "--stage",
            "qa",
            "--remove-members",
        ],
    );
    let records = ok(
        &env,
        &[
            "audit", "--group", "old ops", "--stage", "qa", "--output", "json",
        ],
    )
    .json();
    let ops: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(
                (&r["group"], &r["stage"]),
                (&json!("Old Ops"), &json!("qa")),
                "{r}"
            );
            r["op"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        ops,
        [
            "group.create",
            "add",
            "group.rename",
            "remove",
            "group.delete"
        ]
    );
    let zed = ok(&env, &["audit", "--user", "zed@x.com", "--output", "json"]).json();
    assert!(
        zed.as_array()
            .unwrap()
            .iter()
            .all(|r| r["group"] == "Old Ops"),
        "{zed:#}"
    );
}

#[test]
fn audit_keeps_a_deleted_groups_name_after_a_new_group_is_created() {
    let env = reconciled();
    ok(&env, &["groups", "create", "Ops", "--stage", "qa"]);
    ok(
        &env,
        &["groups", "add-user", "Ops", "--stage", "qa", "zed@x.com"],
    );
    ok(
        &env,
        &[
            "groups",
            "delete",
            "Ops",
            "--stage",
            "qa",
            "--remove-members",
        ],
    );
    // A new group, created after the deletion, in another stage.
    ok(&env, &["groups", "create", "Dev", "--stage", "development"]);
    let zed = ok(&env, &["audit", "--user", "zed@x.com", "--output", "json"]).json();
    for r in zed.as_array().unwrap() {
        assert_eq!(
            (&r["stage"], &r["group"]),
            (&json!("qa"), &json!("Ops")),
            "{r}"
        );
    }
    let dev = ok(
        &env,
        &[
            "audit",
            "--group",
            "Dev",
            "--stage",
            "development",
            "--output",
            "json",
        ],
    )
    .json();
    let ops: Vec<&Value> = dev.as_array().unwrap().iter().map(|r| &r["op"]).collect();
    assert_eq!(
        ops,
        [&json!("group.create")],
        "Dev's history holds Ops's records: {dev:#}"
    );
}

#[test]
fn audit_finds_a_deleted_group_with_a_non_ascii_name() {
    let env = reconciled();
    ok(&env, &["groups", "create", "\u{c9}QUIPE", "--stage", "qa"]);
    ok(
        &env,
        &[
            "groups",
            "add-user",
            "\u{e9}quipe",
            "--stage",
            "qa",
            "zed@x.com",
        ],
    );
    let live = ok(
        &env,
        &[
            "audit",
            "--group",
            "\u{c9}QUIPE",
            "--stage",
            "qa",
            "--output",
            "json",
        ],
    )
    .json();
    assert_eq!(live.as_array().unwrap().len(), 2, "{live:#}");
    ok(
        &env,
        &[
            "groups",
            "delete",
            "\u{c9}QUIPE",
            "--stage",
            "qa",
            "--remove-members",
        ],
    );
    let deleted = ok(
        &env,
        &[
            "audit",
            "--group",
            "\u{c9}QUIPE",
            "--stage",
            "qa",
            "--output",
            "json",
        ],
    )
    .json();
    assert_eq!(deleted.as_array().unwrap().len(), 4, "{deleted:#}");
}

// ---------------------------------------------------------------------------------------------
// 6. Status and journal
// ---------------------------------------------------------------------------------------------

fn status(env: &Env) -> Value {
    ok(env, &["status", "--output", "json"]).json()
}

#[test]
fn status_shows_runs_refusals_until_resolved_and_the_journal() {
    let env = env_as_alice();
    // Fresh: never run, and nothing is created.
    let tree = env.tree();
    let doc = status(&env);
    assert_eq!(keys(&doc), sorted(&["idps", "journal"]));
    assert_eq!(doc["idps"].as_array().unwrap().len(), 1);
    assert_eq!(doc["idps"][0]["idp"], "corp");
    assert_eq!(doc["idps"][0]["last_run"], Value::Null);
    assert_eq!(doc["idps"][0]["refusal"], Value::Null);
    assert_eq!(doc["journal"], json!({"pending": 0, "failed": 0}));
    let text = ok(&env, &["status"]);
    assert!(text.stdout.contains("corp: never run"), "{text:?}");
    assert_eq!(env.tree(), tree);

    let (code, run) = env.reconcile(&[]);
    assert_eq!(code, 0, "{run:#}");
    let doc = status(&env);
    let idp = &doc["idps"][0];
    assert_eq!(
        keys(idp),
        sorted(&["idp", "last_run", "refusal", "next_run"])
    );
    let last = &idp["last_run"];
    assert_eq!(last["run_id"], run["run_id"]);
    assert_eq!(last["outcome"], "applied");
    assert_eq!((&last["adds"], &last["removes"]), (&json!(4), &json!(0)));
    assert!(is_rfc3339_utc(last["started"].as_str().unwrap()), "{last}");
    assert!(is_rfc3339_utc(last["finished"].as_str().unwrap()), "{last}");
    assert!(is_rfc3339_utc(idp["next_run"].as_str().unwrap()), "{idp}");
    assert_eq!(idp["refusal"], Value::Null);
    assert_eq!(doc["journal"], json!({"pending": 0, "failed": 0}));

    // An empty read is refused; status says so with the command that allows it.
    env.write_export("corp.json", &json!({"users": [], "groups": []}));
    let (code, refused_run) = env.reconcile(&[]);
    assert_eq!(code, 3, "{refused_run:#}");
    let doc = status(&env);
    let idp = &doc["idps"][0];
    assert_eq!(idp["last_run"]["run_id"], refused_run["run_id"]);
    assert_eq!(idp["last_run"]["outcome"], "refused");
    let refusal = &idp["refusal"];
    assert_eq!(keys(refusal), sorted(&["guard", "detail", "allow"]));
    assert_eq!(refusal["guard"], "empty");
    assert_eq!(refusal["allow"], refused_run["refused"][0]["allow"]);
    let allow = refusal["allow"].as_str().unwrap();
    let text = ok(&env, &["status"]);
    assert!(
        text.stdout.contains("REFUSED by the empty guard"),
        "{text:?}"
    );
    assert!(text.stdout.contains(allow), "{text:?}");
    // Still refused on the next run, until an operator acts.
    let (code, _) = env.reconcile(&[]);
    assert_eq!(code, 3);
    assert_eq!(status(&env)["idps"][0]["refusal"]["guard"], "empty");

    // The `allow` command, run as printed, lets it through; the refusal is gone.
    let words: Vec<&str> = allow.split(' ').collect();
    assert_eq!(
        words[..3],
        ["idpsync", "--config", &*env.config_path().to_string_lossy()]
    );
    assert!(
        allow.ends_with("reconcile --idp corp --allow-empty"),
        "{allow}"
    );
    let out = env.run(&words[3..]);
    out.expect(0);
    let doc = status(&env);
    let idp = &doc["idps"][0];
    assert_eq!(idp["refusal"], Value::Null, "{doc:#}");
    assert_eq!(idp["last_run"]["outcome"], "applied");
    assert_eq!(idp["last_run"]["removes"], 4);
    assert_eq!(doc["journal"], json!({"pending": 0, "failed": 0}));
    let text = ok(&env, &["status"]);
    assert!(!text.stdout.contains("REFUSED"), "{text:?}");
    assert!(
        text.stdout.contains("Journal: 0 pending, 0 failed"),
        "{text:?}"
    );
}

#[test]
fn status_shows_a_failed_idp_with_its_error() {
    let env = reconciled();
    std::fs::remove_file(env.path("corp.json")).unwrap();
    let (code, _) = env.reconcile(&[]);
    assert_eq!(code, 1);
    let doc = status(&env);
    let last = &doc["idps"][0]["last_run"];
    assert_eq!(last["outcome"], "failed", "{doc:#}");
    assert!(
        last["error"].as_str().unwrap().contains("corp.json"),
        "{doc:#}"
    );
    assert_eq!(doc["idps"][0]["refusal"], Value::Null);
}

#[test]
fn journal_list_on_a_fresh_state_and_unknown_entries() {
    let env = env_as_alice();
    let tree = env.tree();
    let out = ok(&env, &["journal", "list"]);
    assert!(out.stdout.contains("No failed journal entries"), "{out:?}");
    assert_eq!(
        ok(&env, &["journal", "list", "--output", "json"]).json(),
        json!([])
    );
    assert_eq!(env.tree(), tree, "journal list created something");

    let (code, _) = env.reconcile(&[]);
    assert_eq!(code, 0);
    assert_eq!(
        ok(&env, &["journal", "list", "--output", "json"]).json(),
        json!([])
    );
    for args in [
        &["journal", "retry", "999"][..],
        &["journal", "drop", "999"],
        &["journal", "retry", "0"],
        &["journal", "drop", "--", "-1"],
    ] {
        refused(&env, args, 2, "journal entry");
    }
    for args in [&["journal", "retry", "x"][..], &["journal", "drop"]] {
        assert_eq!(env.run(args).code, 2, "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Export round trip
// ---------------------------------------------------------------------------------------------

#[test]
fn export_round_trips_through_the_file_idp() {
    let env = env_as_alice();
    let first = ok(&env, &["export", "--idp", "corp"]);
    let exported = first.json();
    assert_eq!(keys(&exported), sorted(&["users", "groups"]));
    // The same directory: users and groups as written, enabled made explicit.
    let mut expected = corp_export();
    for user in expected["users"].as_array_mut().unwrap() {
        user["enabled"] = json!(true);
    }
    assert_eq!(exported, expected);
    assert!(!env.state_path().exists(), "export created the state");

    let (code, original) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0);
    // The same IdP pointed at the export.
    std::fs::write(env.path("exported.json"), &first.stdout).unwrap();
    env.write_config(&CONFIG.replace("path = \"corp.json\"", "path = \"exported.json\""));
    let second = ok(&env, &["export", "--idp", "corp"]);
    assert_eq!(second.stdout, first.stdout, "export is not a fixed point");
    let (code, again) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(again["adds"], original["adds"]);
    assert_eq!(again["summary"], original["summary"]);

    // A second file IdP beside the first reads it identically.
    let two = CONFIG.replace(
        "[[app]]",
        "[[idp]]\nname = \"copy\"\nkind = \"file\"\npath = \"exported.json\"\n\n[[app]]",
    );
    env.write_config(&two);
    let copy = ok(&env, &["export", "--idp", "copy"]);
    assert_eq!(copy.stdout, first.stdout);

    // An unknown IdP is bad usage; a missing file is a runtime failure.
    let out = env.run(&["export", "--idp", "nope"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.is_empty());
    std::fs::remove_file(env.path("exported.json")).unwrap();
    let out = env.run(&["export", "--idp", "copy"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(out.stderr.contains("exported.json"), "{out:?}");
    // A malformed one too.
    std::fs::write(env.path("exported.json"), "{\"users\": [").unwrap();
    let out = env.run(&["export", "--idp", "copy"]);
    assert_eq!(out.code, 1, "{out:?}");
}

#[test]
fn export_of_the_demo_directory_round_trips() {
    let env = Env::demo();
    let first = ok(&env, &["export", "--idp", "corp"]);
    let (code, original) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0);
    std::fs::write(env.path("demo-directory.json"), &first.stdout).unwrap();
    let second = ok(&env, &["export", "--idp", "corp"]);
    assert_eq!(second.stdout, first.stdout);
    let (code, again) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(again["adds"], original["adds"]);
    assert_eq!(again["inactive_mappings"], original["inactive_mappings"]);
    assert_eq!(again["summary"], original["summary"]);
}

// ---------------------------------------------------------------------------------------------
// 8. Backup
// ---------------------------------------------------------------------------------------------

#[test]
fn backup_writes_a_copy_that_opens_and_matches() {
    let env = reconciled();
    ok(
        &env,
        &[
            "groups",
            "add-user",
            "Marketing",
            "--stage",
            "production",
            "zed@x.com",
        ],
    );
    let target = env.path("copy.db");
    let out = ok(&env, &["backup", target.to_str().unwrap()]);
    assert!(out.stdout.contains("copy.db"), "{out:?}");
    {
        let conn = open(&target);
        assert_eq!(integrity(&conn), "ok");
        assert_eq!(count(&conn, "SELECT count(*) FROM memberships"), 5);
    }
    let (copy, state) = (crate::common::StateDump::of(&target), env.state());
    for table in ["memberships", "groups", "group_roles", "users", "baselines"] {
        assert_eq!(copy.table(table), state.table(table), "table {table}");
    }
    assert_eq!(
        copy.tables, state.tables,
        "the copy holds every row of the state"
    );
    assert_eq!(copy.user_version, state.user_version);

    // A restored copy works as a state file.
    let restored = env.copy();
    std::fs::copy(&target, restored.state_path()).unwrap();
    assert_eq!(
        members(&restored, "Marketing", "production"),
        members(&env, "Marketing", "production")
    );

    // An existing target is refused and left alone.
    std::fs::write(env.path("taken.db"), "keep me").unwrap();
    let out = env.run(&["backup", "taken.db"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("taken.db"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(env.path("taken.db")).unwrap(),
        "keep me"
    );
    let out = env.run(&["backup", target.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
}

const BIG_USERS: usize = 20_000;
const BIG_GROUPS: usize = 200;
/// Each user is in 10 groups.
const BIG_MEMBERSHIPS: i64 = (BIG_USERS * 10) as i64;

/// A folder with 200 declared, mapped groups and an export of 20,000 users in 10 groups each.
fn big_env() -> Env {
    let env = Env::empty();
    let mut config = String::from(
        "[daemon]\nstate = \"state/idpsync.db\"\nrun_wait = 1\n\n[[idp]]\nname = \"corp\"\nkind = \"file\"\npath = \"big.json\"\n",
    );
    for g in 0..BIG_GROUPS {
        config.push_str(&format!(
            "\n[[group]]\nname = \"G{g}\"\nstage = \"production\"\n\n[[mapping]]\nidp = \"corp\"\nidp_group = \"g{g}\"\ngroup = \"G{g}\"\nstage = \"production\"\n"
        ));
    }
    env.write_config(&config);
    let users: Vec<Value> = (0..BIG_USERS)
        .map(|i| json!({"id": format!("u{i}"), "email": format!("user{i}@example.com")}))
        .collect();
    let groups: Vec<Value> = (0..BIG_GROUPS)
        .map(|g| {
            let members: Vec<String> = (0..10)
                .flat_map(|r| {
                    let residue = (g + r) % BIG_GROUPS;
                    (residue..BIG_USERS).step_by(BIG_GROUPS)
                })
                .map(|i| format!("u{i}"))
                .collect();
            json!({"id": format!("g{g}"), "name": format!("Group {g}"), "members": members})
        })
        .collect();
    std::fs::write(
        env.path("big.json"),
        serde_json::to_vec(&json!({"users": users, "groups": groups})).unwrap(),
    )
    .unwrap();
    env
}

#[test]
fn backups_during_a_running_reconcile_are_consistent() {
    let env = big_env();
    // The state exists (with the declared groups) before the run starts, with no memberships.
    ok(&env, &["groups", "create", "Extra", "--stage", "qa"]);

    let mut command = env.command();
    command
        .args(["-q", "reconcile"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    let mut counts = Vec::new();
    for n in 0.. {
        let finished = child.try_wait().unwrap();
        let target = env.path(&format!("backup-{n}.db"));
        let out = env.run(&["backup", target.to_str().unwrap()]);
        assert_eq!(out.code, 0, "backup {n}: {out:?}");
        {
            let conn = open(&target);
            assert_eq!(integrity(&conn), "ok", "backup {n}");
            let memberships = count(&conn, "SELECT count(*) FROM memberships");
            assert!(
                memberships == 0 || memberships == BIG_MEMBERSHIPS,
                "backup {n} holds a partial apply: {memberships} memberships"
            );
            // The run's audit rows commit with its memberships.
            let audited = count(&conn, "SELECT count(*) FROM audit WHERE op = 'add'");
            assert_eq!(audited, memberships, "backup {n}");
            counts.push(memberships);
        }
        std::fs::remove_file(&target).unwrap();
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(env.path(&format!("backup-{n}.db{suffix}")));
        }
        if let Some(status) = finished {
            assert_eq!(status.code(), Some(0), "the reconcile failed");
            break;
        }
    }
    eprintln!(
        "{} backups, {} before the apply committed",
        counts.len(),
        counts.iter().filter(|&&c| c == 0).count()
    );
    assert_eq!(*counts.last().unwrap(), BIG_MEMBERSHIPS, "{counts:?}");
    let conn = open(&env.state_path());
    assert_eq!(
        count(&conn, "SELECT count(*) FROM memberships"),
        BIG_MEMBERSHIPS
    );
    // A load this large skips SQLite's per-row foreign-key lookups (it checks its groups itself
    // in the same transaction): every membership still names a real group and user.
    assert_eq!(
        count(&conn, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );
    let enforced: i64 = rusqlite::Connection::open(env.state_path())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM pragma_foreign_key_list('memberships')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(enforced, 2, "memberships reference groups and users");
}

// ---------------------------------------------------------------------------------------------
// 9. Writes beside another writer
// ---------------------------------------------------------------------------------------------

#[test]
fn writes_wait_for_another_writer_and_reads_do_not() {
    let env = reconciled();
    let conn = rusqlite::Connection::open(env.state_path()).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();

    // Reads work while the write transaction is open.
    for args in [
        &["groups", "list"][..],
        &["groups", "list", "--output", "json"],
        &["groups", "show", "Marketing", "--stage", "production"],
        &["users", "show", "ana@example.com"],
        &["audit"],
        &["status"],
        &["journal", "list"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, 0, "{args:?} while a writer is active: {out:?}");
    }
    assert!(!conn.is_autocommit(), "the transaction is still open");

    // A write waits for the transaction and then succeeds.
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let released = Instant::now();
        conn.execute_batch("COMMIT").unwrap();
        released
    });
    let out = env.run(&[
        "groups",
        "add-user",
        "Marketing",
        "--stage",
        "production",
        "zed@x.com",
    ]);
    let done = Instant::now();
    let released = holder.join().unwrap();
    out.expect(0);
    assert!(
        done > released,
        "the write did not wait for the other writer"
    );
    assert!(
        members(&env, "Marketing", "production")
            .iter()
            .any(|(u, p)| u == "zed@x.com" && p == &["direct"])
    );
}

/// SPEC §1 invariant 7: a refusal stays in `status` — guard, detail and the exact allow command —
/// until a run of that IdP is applied, whatever the runs in between did (here one fails to read,
/// one is killed); the status document has exactly SPEC §3's fields.
#[test]
fn a_refusal_stays_in_status_through_failed_and_killed_runs_until_allowed() {
    let env = reconciled();
    env.write_export("corp.json", &json!({"users": [], "groups": []}));
    let (code, refused_run) = env.reconcile(&[]);
    assert_eq!(code, 3, "{refused_run:#}");
    let allow = refused_run["refused"][0]["allow"]
        .as_str()
        .unwrap()
        .to_owned();

    // A run killed in the middle, which the next run closes as interrupted for corp.
    #[cfg(feature = "failpoints")]
    let killed = {
        let mut run = crate::armed::Armed::spawn(&env, &["reconcile"], "sync::after_reads=halt");
        assert!(run.reached("sync::after_reads"));
        run.kill();
        let conn = open(&env.state_path());
        conn.query_row("SELECT id FROM runs WHERE outcome = 'running'", [], |r| {
            r.get::<_, String>(0)
        })
        .unwrap()
    };

    // A failed run of the same IdP: the last run is the failure, the refusal is still pending.
    std::fs::remove_file(env.path("corp.json")).unwrap();
    let (code, _) = env.reconcile(&[]);
    assert_eq!(code, 1);
    let doc = status(&env);
    assert_eq!(keys(&doc), sorted(&["idps", "journal"]));
    let idp = &doc["idps"][0];
    assert_eq!(
        keys(idp),
        sorted(&["idp", "last_run", "refusal", "next_run"])
    );
    assert_eq!(
        keys(&idp["last_run"]),
        sorted(&[
            "run_id",
            "started",
            "finished",
            "outcome",
            "error_kind",
            "error",
            "adds",
            "removes",
            "skipped_users"
        ])
    );
    assert_eq!(idp["last_run"]["outcome"], "failed");
    assert_eq!(idp["last_run"]["error_kind"], "unavailable");
    assert_eq!(keys(&idp["refusal"]), sorted(&["guard", "detail", "allow"]));
    assert_eq!(idp["refusal"]["guard"], "empty");
    assert_eq!(idp["refusal"]["allow"], allow.as_str());
    let text = ok(&env, &["status"]);
    assert!(text.stdout.contains("failed (unavailable)"), "{text:?}");
    assert!(
        text.stdout.contains("REFUSED by the empty guard"),
        "{text:?}"
    );
    assert!(text.stdout.contains(&allow), "{text:?}");

    // A malformed export fails as invalid; the refusal stays.
    std::fs::write(env.path("corp.json"), "{ not json").unwrap();
    assert_eq!(env.reconcile(&[]).0, 1);
    let doc = status(&env);
    assert_eq!(doc["idps"][0]["last_run"]["error_kind"], "invalid");
    assert_eq!(doc["idps"][0]["refusal"]["allow"], allow.as_str());

    #[cfg(feature = "failpoints")]
    {
        let conn = open(&env.state_path());
        let closed: (String, String) = conn
            .query_row(
                "SELECT r.outcome, i.outcome FROM runs r JOIN run_idps i ON i.run_id = r.id WHERE r.id = ?1",
                [&killed],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(closed, ("interrupted".to_owned(), "interrupted".to_owned()));
    }
    env.write_export("corp.json", &json!({"users": [], "groups": []}));

    // Only a run that applies the IdP resolves it: the allow command, run as printed.
    let words: Vec<&str> = allow.split(' ').collect();
    env.run(&words[3..]).expect(0);
    let doc = status(&env);
    assert_eq!(doc["idps"][0]["refusal"], Value::Null, "{doc:#}");
    assert_eq!(doc["idps"][0]["last_run"]["outcome"], "applied");
    assert_eq!(doc["idps"][0]["last_run"]["error_kind"], Value::Null);
    assert_eq!(doc["idps"][0]["last_run"]["error"], Value::Null);
}

/// `status` shows the users the IdP's last read skipped for lack of a user key, also after a run
/// that could not read it, and on an unchanged run.
#[test]
fn status_shows_the_users_skipped_at_the_last_read() {
    let env = reconciled();
    let doc = status(&env);
    assert_eq!(doc["idps"][0]["last_run"]["skipped_users"], 1, "{doc:#}");
    assert!(
        ok(&env, &["status"])
            .stdout
            .contains("1 users skipped at the last read (no user key)")
    );
    // Unchanged: the count stays.
    assert_eq!(env.reconcile(&[]).0, 0);
    let doc = status(&env);
    assert_eq!(doc["idps"][0]["last_run"]["outcome"], "unchanged");
    assert_eq!(doc["idps"][0]["last_run"]["skipped_users"], 1);
    // Failed to read: still the last read's count.
    std::fs::remove_file(env.path("corp.json")).unwrap();
    assert_eq!(env.reconcile(&[]).0, 1);
    assert_eq!(status(&env)["idps"][0]["last_run"]["skipped_users"], 1);
}
