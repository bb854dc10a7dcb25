//! Bad input (SPEC §2, §5): every bad configuration, override or argument exits 2 with a message on
//! standard error naming the file, the line and the key (or the environment variable), prints
//! nothing on standard output, and leaves the state exactly as it was.

use crate::common::{CONFIG, Env, Outcome, line_of};

/// One bad input, run against a folder whose state a good run created.
struct Case {
    /// What the case is, for failure messages.
    what: &'static str,
    /// The configuration text.
    config: String,
    /// Extra environment variables.
    vars: Vec<(&'static str, String)>,
    /// Text standard error must contain: the key, or the environment variable.
    names: Vec<String>,
    /// Text of the offending line, whose number standard error must give beside the file.
    line: Option<String>,
    /// Text that must not appear on standard error (an inline secret).
    hidden: Option<&'static str>,
}

impl Case {
    fn file(what: &'static str, config: String, key: &str, line: impl Into<String>) -> Case {
        Case {
            what,
            config,
            vars: Vec::new(),
            names: vec![key.to_owned()],
            line: Some(line.into()),
            hidden: None,
        }
    }

    fn env(what: &'static str, var: &'static str, value: &str) -> Case {
        Case {
            what,
            config: CONFIG.to_owned(),
            vars: vec![(var, value.to_owned())],
            names: vec![format!("environment variable {var}")],
            line: None,
            hidden: None,
        }
    }

    fn naming(mut self, text: &str) -> Case {
        self.names.push(text.to_owned());
        self
    }

    fn hiding(mut self, secret: &'static str) -> Case {
        self.hidden = Some(secret);
        self
    }
}

/// A folder with [`CONFIG`] after one successful reconcile (so there is a state to protect).
fn reconciled() -> Env {
    let env = Env::new();
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert!(doc["summary"]["adds"].as_u64().unwrap() > 0, "{doc:#}");
    env
}

/// Asserts the common shape of a refusal of bad input: exit 2, nothing on stdout, a message on stderr.
fn assert_usage_error(out: &Outcome, what: &str) {
    assert_eq!(
        out.code, 2,
        "{what}: exit status\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: stdout must be empty, got {:?}",
        out.stdout
    );
    assert!(
        out.stderr.contains("error"),
        "{what}: no error on stderr: {:?}",
        out.stderr
    );
}

/// Runs every case against one reconciled folder with `reconcile` (text and JSON) and `check`,
/// asserting the refusal, its message and that neither the state nor the folder changed.
fn run_cases(cases: Vec<Case>) {
    let env = reconciled();
    let before = env.state();
    let tree = env.tree();
    let config_path = env.config_path().display().to_string();
    for case in cases {
        env.write_config(&case.config);
        let vars: Vec<(&str, &str)> = case.vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for args in [
            &["reconcile"][..],
            &["reconcile", "--output", "json"],
            &["check"],
        ] {
            let what = format!("{} ({})", case.what, args.join(" "));
            let out = env.run_with(args, &vars);
            assert_usage_error(&out, &what);
            let err = &out.stderr;
            assert!(
                err.contains(&config_path),
                "{what}: no file named in {err:?}"
            );
            for name in &case.names {
                assert!(
                    err.contains(name.as_str()),
                    "{what}: {name:?} not named in {err:?}"
                );
            }
            if let Some(needle) = &case.line {
                let line = line_of(&case.config, needle);
                let at = format!("{config_path}:{line}:");
                assert!(err.contains(&at), "{what}: expected {at:?} in {err:?}");
            }
            if let Some(secret) = case.hidden {
                assert!(!err.contains(secret), "{what}: the secret leaked: {err:?}");
            }
            assert_eq!(env.state(), before, "{what}: the state changed");
            assert_eq!(env.tree(), tree, "{what}: files were created or removed");
        }
    }
    // The good configuration still works on the untouched state: nothing to do.
    env.write_config(CONFIG);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(
        (code, &doc["summary"]["adds"], &doc["summary"]["removes"]),
        (0, &0.into(), &0.into()),
        "{doc:#}"
    );
}

/// `CONFIG` with `from` replaced by `to` (which must occur).
fn edit(from: &str, to: &str) -> String {
    assert!(CONFIG.contains(from), "{from:?} is not in CONFIG");
    CONFIG.replacen(from, to, 1)
}

const DAEMON_ANCHOR: &str = "run_wait = 1\n";

fn with_daemon_line(line: &str) -> String {
    edit(DAEMON_ANCHOR, &format!("{DAEMON_ANCHOR}{line}\n"))
}

#[test]
fn missing_config_file_exits_2_and_creates_nothing() {
    let env = Env::empty();
    let missing = env.path("nope.toml");
    let mut command = crate::common::clean_command();
    command
        .current_dir(env.dir.path())
        .arg("--config")
        .arg(&missing)
        .arg("reconcile");
    let out = crate::common::output(command);
    assert_usage_error(&out, "missing config");
    assert!(
        out.stderr.contains(&missing.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(env.tree().is_empty(), "created {:?}", env.tree());

    // The same through IDPSYNC_CONFIG, and for the read commands.
    for args in [
        &["reconcile", "--dry-run"][..],
        &["groups", "list"],
        &["users", "show", "a@b"],
        &["check"],
    ] {
        let mut command = crate::common::clean_command();
        command
            .current_dir(env.dir.path())
            .env("IDPSYNC_CONFIG", &missing)
            .args(args);
        let out = crate::common::output(command);
        assert_usage_error(
            &out,
            &format!("missing config via IDPSYNC_CONFIG ({args:?})"),
        );
        assert!(
            out.stderr.contains(&missing.display().to_string()),
            "{}",
            out.stderr
        );
        assert!(env.tree().is_empty(), "created {:?}", env.tree());
    }
}

#[test]
fn missing_config_file_leaves_an_existing_state_alone() {
    let env = reconciled();
    let before = env.state();
    std::fs::remove_file(env.config_path()).unwrap();
    let out = env.run(&["reconcile"]);
    assert_usage_error(&out, "missing config");
    assert!(
        out.stderr
            .contains(&env.config_path().display().to_string())
    );
    assert_eq!(env.state(), before);
}

#[test]
fn toml_syntax_errors_name_the_file_and_line() {
    run_cases(vec![
        Case {
            what: "unclosed table header",
            config: format!("{CONFIG}\n[safety\nmax_removals = 3\n"),
            vars: Vec::new(),
            names: vec!["TOML".into()],
            line: Some("[safety".into()),
            hidden: None,
        },
        Case {
            what: "duplicate key",
            config: edit(
                "kind = \"file\"\n",
                "kind = \"file\"\nkind = \"file\" # again\n",
            ),
            vars: Vec::new(),
            names: vec!["TOML".into(), "duplicate".into()],
            line: Some("# again".into()),
            hidden: None,
        },
    ]);
}

#[test]
fn unknown_keys_name_the_file_line_and_key() {
    run_cases(vec![
        Case::file(
            "unknown daemon key",
            with_daemon_line("max_removals = 5"),
            "daemon.max_removals",
            "max_removals = 5",
        ),
        Case::file(
            "unknown idp key",
            edit(
                "path = \"corp.json\"\n",
                "path = \"corp.json\"\nuser-key = \"email\"\n",
            ),
            "idp[corp].user-key",
            "user-key",
        ),
        Case::file(
            "unknown section",
            format!("{CONFIG}\n[nope]\nx = 1\n"),
            "nope",
            "[nope]",
        ),
        Case::file(
            "unknown top-level key",
            format!("surprise = true\n{CONFIG}"),
            "surprise",
            "surprise",
        ),
        Case::file(
            "unknown mapping key",
            edit(
                "idp_group = \"g-eng\"\n",
                "idp_group = \"g-eng\"\nprovenance = \"direct\"\n",
            ),
            "mapping[1].provenance",
            "provenance",
        ),
        Case::file(
            "unknown group key",
            edit(
                "description = \"Marketing team\"\n",
                "description = \"Marketing team\"\nowner = \"ana\"\n",
            ),
            "group[0].owner",
            "owner",
        ),
    ]);
}

#[test]
fn unknown_environment_overrides_name_the_variable() {
    run_cases(vec![
        Case::env("misspelt safety key", "IDPSYNC__SAFETY__MAX_REMOVAL", "3"),
        Case::env("unknown IdP", "IDPSYNC__IDP__NOPE__PATH", "x"),
        Case::env(
            "unknown key of a known IdP",
            "IDPSYNC__IDP__CORP__PAHT",
            "x",
        ),
        Case::env("no section", "IDPSYNC__NOPE", "1"),
        Case::env("bad value", "IDPSYNC__SAFETY__MAX_REMOVALS", "lots")
            .naming("safety.max_removals"),
    ]);
}

/// An override under a table the file does not have (`[idp.oidc]` of `corp`) names no key either;
/// the error must name the variable, not complain about the table's required keys.
#[test]
fn an_unknown_override_under_an_absent_table_names_the_variable() {
    run_cases(vec![Case::env(
        "unknown key under an absent [idp.oidc]",
        "IDPSYNC__IDP__CORP__OIDC__NOPE",
        "x",
    )]);
}

#[test]
fn a_good_environment_override_is_accepted() {
    let env = Env::new();
    let out = env.run_with(
        &["check"],
        &[
            ("IDPSYNC__SAFETY__MAX_REMOVALS", "50"),
            ("IDPSYNC__IDP__CORP__NESTED", "true"),
        ],
    );
    out.expect(0);
}

#[test]
fn inline_secrets_are_refused_without_echoing_them() {
    run_cases(vec![
        Case::file(
            "inline admin token",
            with_daemon_line("admin_token = \"hunter2-literal-token\""),
            "daemon.admin_token",
            "admin_token",
        )
        .hiding("hunter2-literal-token"),
        Case::file(
            "inline webhook token",
            with_daemon_line("webhook_token = \"hook-literal-token\""),
            "daemon.webhook_token",
            "webhook_token",
        )
        .hiding("hook-literal-token"),
        Case::env(
            "inline app token by override",
            "IDPSYNC__DAEMON__APP_TOKEN",
            "app-literal-token",
        )
        .naming("daemon.app_token")
        .hiding("app-literal-token"),
    ]);
}

#[test]
fn a_mapping_to_an_unknown_idp_is_refused() {
    run_cases(vec![Case::file(
        "mapping to okta",
        format!("{CONFIG}\n[[mapping]]\nidp = \"okta\"\nidp_group = \"x\"\ngroup = \"Marketing\"\nstage = \"production\"\n"),
        "mapping[2].idp",
        "idp = \"okta\"",
    )
    .naming("okta")]);
}

#[test]
fn stages_outside_daemon_stages_are_refused() {
    run_cases(vec![
        Case::file(
            "group in a stage not served",
            with_daemon_line("stages = [\"production\"]"),
            "group[1].stage",
            "stage = \"qa\"",
        ),
        Case::file(
            "group in an unknown stage",
            edit("stage = \"qa\"\nroles", "stage = \"staging\"\nroles"),
            "group[1].stage",
            "staging",
        )
        .naming("staging"),
        Case::file(
            "mapping to a stage not served",
            edit(
                "group = \"Testers\"\nstage = \"qa\"",
                "group = \"Testers\"\nstage = \"development\"",
            )
            .replacen(
                "run_wait = 1\n",
                "run_wait = 1\nstages = [\"production\", \"qa\"]\n",
                1,
            ),
            "mapping[1].stage",
            "stage = \"development\"",
        ),
    ]);
}

#[test]
fn bad_stage_names_are_refused() {
    run_cases(vec![
        Case::file(
            "group stage Prod",
            edit(
                "stage = \"production\"\ndescription",
                "stage = \"Prod\"\ndescription",
            ),
            "group[0].stage",
            "\"Prod\"",
        )
        .naming("Prod"),
        Case::file(
            "daemon stage Prod",
            with_daemon_line("stages = [\"Prod\", \"qa\"]"),
            "daemon.stages",
            "stages =",
        ),
        Case::file(
            "mapping stage with a space",
            edit(
                "group = \"Testers\"\nstage = \"qa\"",
                "group = \"Testers\"\nstage = \"q a\"",
            ),
            "mapping[1].stage",
            "\"q a\"",
        ),
    ]);
}

#[test]
fn roles_need_exactly_one_slash() {
    let cases = ["NoSlash", "A/B/C", "/Viewer", "Dash/"]
        .into_iter()
        .map(|role| {
            Case::file(
                "malformed role",
                edit(
                    "roles = [\"Dash/Viewer\"]",
                    &format!("roles = [\"{role}\"]"),
                ),
                "group[0].roles",
                format!("roles = [\"{role}\"]"),
            )
            .naming(role)
        })
        .collect();
    run_cases(cases);
}

#[test]
fn roles_outside_the_app_catalogue_are_refused() {
    run_cases(vec![
        Case::file(
            "unknown role of a known app",
            edit("roles = [\"Dash/Editor\"]", "roles = [\"Dash/Admin\"]"),
            "group[1].roles",
            "Dash/Admin",
        )
        .naming("Admin"),
        Case::file(
            "unknown app",
            edit("roles = [\"Dash/Viewer\"]", "roles = [\"Other/Viewer\"]"),
            "group[0].roles",
            "Other/Viewer",
        )
        .naming("Other"),
    ]);
}

#[test]
fn empty_and_overlong_group_names_are_refused() {
    let long = "x".repeat(257);
    run_cases(vec![
        Case::file(
            "empty group name",
            edit("name = \"Testers\"", "name = \"\""),
            "group[1].name",
            "name = \"\"",
        ),
        Case::file(
            "blank group name",
            edit("name = \"Testers\"", "name = \"   \""),
            "group[1].name",
            "name = \"   \"",
        ),
        Case::file(
            "257-character group name",
            edit("name = \"Testers\"", &format!("name = \"{long}\"")),
            "group[1].name",
            "xxxxxxxx",
        )
        .naming("256"),
        Case::file(
            "empty mapped group name",
            edit(
                "group = \"Testers\"\nstage = \"qa\"",
                "group = \"\"\nstage = \"qa\"",
            ),
            "mapping[1].group",
            "group = \"\"",
        ),
        Case::file(
            "257-character mapped group name",
            edit(
                "group = \"Testers\"\nstage = \"qa\"",
                &format!("group = \"{long}\"\nstage = \"qa\""),
            ),
            "mapping[1].group",
            "xxxxxxxx",
        ),
    ]);
}

#[test]
fn a_256_character_group_name_is_accepted() {
    // 256 characters (512 bytes): the limit counts characters.
    for name in ["x".repeat(256), "é".repeat(256)] {
        let env = Env::new();
        env.write_config(
            &edit("name = \"Testers\"", &format!("name = \"{name}\"")).replacen(
                "group = \"Testers\"",
                &format!("group = \"{name}\""),
                1,
            ),
        );
        let (code, doc) = env.reconcile(&[]);
        assert_eq!(code, 0, "{doc:#}");
        let out = env.run(&["groups", "show", &name, "--stage", "qa", "--output", "json"]);
        out.expect(0);
        assert_eq!(out.json()["name"], name.as_str());
    }
}

#[test]
fn empty_and_overlong_user_keys_are_refused() {
    let env = reconciled();
    let before = env.state();
    let tree = env.tree();
    let too_long = "a".repeat(321);
    let too_many_bytes = "é".repeat(161); // 161 characters, 322 bytes
    for (key, needle) in [
        ("", "empty"),
        ("   ", "empty"),
        (too_long.as_str(), "320"),
        (too_many_bytes.as_str(), "320"),
    ] {
        for output in ["text", "json"] {
            let out = env.run(&["users", "show", key, "--output", output]);
            assert_usage_error(&out, &format!("user key {key:?}"));
            assert!(out.stderr.contains("user key"), "{}", out.stderr);
            assert!(out.stderr.contains(needle), "{}", out.stderr);
            assert_eq!(env.state(), before);
            assert_eq!(env.tree(), tree);
        }
    }
    // 320 bytes is still a key.
    let longest = "a".repeat(320);
    let out = env.run(&["users", "show", &longest, "--output", "json"]);
    out.expect(0);
    assert_eq!(out.json()["user"], longest.as_str());
}

#[test]
fn two_idps_may_not_share_issuer_and_audience() {
    let oidc =
        |issuer: &str| format!("[idp.oidc]\nissuer = \"{issuer}\"\nclient_id = \"my-app\"\n");
    let config = format!(
        "{}\n[[idp]]\nname = \"hr\"\nkind = \"file\"\npath = \"corp.json\"\n{}",
        edit(
            "path = \"corp.json\"\n",
            &format!("path = \"corp.json\"\n{}", oidc("https://127.0.0.1:8443/"))
        ),
        oidc("https://127.0.0.1:8443")
    );
    // A different audience on the same issuer is fine.
    let env = Env::new();
    env.write_config(&config.replacen("client_id = \"my-app\"", "client_id = \"other-app\"", 1));
    env.run(&["check"]).expect(0);

    let case = Case {
        what: "duplicate (issuer, audience)",
        config,
        vars: Vec::new(),
        names: vec!["idp[hr]".into(), "my-app".into()],
        line: None,
        hidden: None,
    };
    run_cases(vec![case]);
}

#[test]
fn duplicate_issuer_error_points_at_the_second_idp() {
    let env = Env::new();
    let text = format!(
        "{CONFIG}\n[[idp]]\nname = \"a\"\nkind = \"file\"\npath = \"corp.json\"\n[idp.oidc]\nissuer = \"https://127.0.0.2:8443\"\nclient_id = \"x\"\n\n[[idp]]\nname = \"b\"\nkind = \"file\"\npath = \"corp.json\"\n[idp.oidc]\nissuer = \"https://127.0.0.2:8443\"\nclient_id = \"x\"\n"
    );
    env.write_config(&text);
    let out = env.run(&["check"]);
    assert_usage_error(&out, "duplicate issuer");
    // Any line of the second IdP's entry, from its `[[idp]]` header to its `[idp.oidc]` table.
    let first = line_of(&text, "name = \"b\"") - 1;
    let last = text.lines().count();
    let config = env.config_path().display().to_string();
    let located = (first..=last).any(|line| out.stderr.contains(&format!("{config}:{line}:")));
    assert!(located, "no line of idp b named in {:?}", out.stderr);
    assert!(out.stderr.contains("idp[b]"), "{}", out.stderr);
}

#[test]
fn reconcile_of_an_unknown_idp_exits_2_and_applies_nothing() {
    let env = reconciled();
    // A change is pending for corp; naming an unknown IdP beside it must not apply it.
    let mut export = crate::common::corp_export();
    export["groups"][1]["members"] = serde_json::json!(["u1", "u2", "u3"]);
    env.write_export("corp.json", &export);
    let before = env.state();
    let tree = env.tree();
    for args in [
        &["reconcile", "--idp", "nosuch"][..],
        &["reconcile", "--idp", "nosuch", "--output", "json"],
        &["reconcile", "--idp", "corp", "--idp", "nosuch"],
        &["reconcile", "--idp", "NoSuch", "--dry-run"],
    ] {
        let out = env.run(args);
        assert_usage_error(&out, &format!("{args:?}"));
        assert!(
            out.stderr.to_lowercase().contains("nosuch"),
            "{}",
            out.stderr
        );
        assert_eq!(env.state(), before, "{args:?}");
        assert_eq!(env.tree(), tree, "{args:?}");
    }
    // The pending change is still there for a real run.
    let (code, doc) = env.reconcile(&["--idp", "corp"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["summary"]["adds"], 1, "{doc:#}");
}
