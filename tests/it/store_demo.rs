//! The demo (`config/demo.toml` and its directory) with each remote store serving production:
//! the store ends holding what the mirror holds, and a second run sends nothing.

use std::collections::BTreeMap;

use fakes::jira::FakeJira;
use fakes::odc::FakeOdc;
use fakes::scim::FakeScim;
use serde_json::Value;

use crate::cloud::FAST_RETRIES;
use crate::common::Env;

const PRODUCTION: [&str; 4] = ["Everyone", "Marketing", "Operators", "Sales"];

/// Every e-mail of the demo directory, lower-cased.
fn demo_emails() -> Vec<String> {
    let path = format!("{}/config/demo-directory.json", env!("CARGO_MANIFEST_DIR"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["email"].as_str())
        .map(str::to_lowercase)
        .collect()
}

/// The demo with `store` appended, and its secret written.
fn demo_with(store: &str, secret: (&str, &str)) -> Env {
    let env = Env::demo();
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&format!("{config}\n[store]\n{store}\n{FAST_RETRIES}"));
    std::fs::write(env.path(secret.0), secret.1).unwrap();
    env
}

/// The mirror's production groups: name → sorted member keys.
fn mirror(env: &Env) -> BTreeMap<String, Vec<String>> {
    PRODUCTION
        .iter()
        .map(|g| {
            let out = env.run(&[
                "groups",
                "show",
                g,
                "--stage",
                "production",
                "--output",
                "json",
            ]);
            out.expect(0);
            let mut users: Vec<String> = out.json()["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["user"].as_str().unwrap().to_owned())
                .collect();
            users.sort();
            (g.to_string(), users)
        })
        .collect()
}

/// Runs the demo twice: the first sends everything, the second nothing.
fn runs_twice(env: &Env, sent: impl Fn() -> u64) {
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        doc["unresolved_users"].as_array().unwrap().len(),
        0,
        "{doc:#}"
    );
    let before = sent();
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(sent(), before, "nothing changed, nothing sent");
}

#[test]
fn the_demo_reaches_odc() {
    let odc = FakeOdc::start("demo", "demo-secret");
    let production = odc.add_environment("production");
    let keys: BTreeMap<&str, String> = PRODUCTION
        .iter()
        .map(|g| (*g, odc.add_group(&production, g)))
        .collect();
    odc.add_users(demo_emails());
    let env = demo_with(
        &format!(
            "kind = \"odc\"\nportal_url = \"{}\"\nclient_id = \"demo\"\nclient_secret_file = \"odc.secret\"\nstages = {{ production = \"{production}\" }}",
            odc.portal_url()
        ),
        ("odc.secret", "demo-secret"),
    );
    runs_twice(&env, || odc.stats().patch_users);
    for (group, users) in mirror(&env) {
        assert_eq!(
            odc.assigned_members(&keys[group.as_str()]),
            users,
            "{group}"
        );
    }
}

#[test]
fn the_demo_reaches_scim() {
    let scim = FakeScim::start("demo-token");
    for g in PRODUCTION {
        scim.add_group(g);
    }
    scim.add_users(demo_emails());
    let env = demo_with(
        &format!(
            "kind = \"scim\"\nurl = \"{}\"\ntoken_file = \"scim.token\"\nstages = [\"production\"]",
            scim.url()
        ),
        ("scim.token", "demo-token"),
    );
    runs_twice(&env, || fakes::scim::read(&scim.counts().patches));
    for (group, users) in mirror(&env) {
        assert_eq!(scim.members_of(&group), users, "{group}");
    }
}

#[test]
fn the_demo_reaches_jira() {
    let jira = FakeJira::start("admin@example.com", "demo-token");
    for g in PRODUCTION {
        jira.add_group(g);
    }
    jira.add_users(demo_emails());
    let env = demo_with(
        &format!(
            "kind = \"jira\"\nsite_url = \"{}\"\nemail = \"admin@example.com\"\napi_token_file = \"jira.token\"\nstages = [\"production\"]",
            jira.site_url()
        ),
        ("jira.token", "demo-token"),
    );
    runs_twice(&env, || jira.counts().add_user);
    for (group, users) in mirror(&env) {
        assert_eq!(jira.members_of(&group), users, "{group}");
    }
}
