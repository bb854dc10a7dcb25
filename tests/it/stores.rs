//! Helpers shared by the remote store tests: a folder whose file IdP `hr` (group `Everyone`,
//! users `<id>@example.com`) is mapped to group `People` in production — which the remote store
//! serves — and in qa, which stays in the embedded store; and views of the reconcile document.

use serde_json::Value;

use crate::cloud::FAST_RETRIES;
pub use crate::cloud::write_people;
use crate::common::Env;

/// The `[[idp]]`, groups and mappings every store test uses.
const HR: &str = r#"
[[idp]]
name = "hr"
kind = "file"
path = "hr.json"

[[group]]
name = "People"
stage = "production"

[[group]]
name = "People"
stage = "qa"

[[mapping]]
idp = "hr"
idp_group = "Everyone"
group = "People"
stage = "production"

[[mapping]]
idp = "hr"
idp_group = "Everyone"
group = "People"
stage = "qa"
"#;

/// A folder whose `[store]` is `store` (quick retries added), with `people` in `Everyone` and
/// the secret files `secrets` (name, content).
pub fn setup(store: &str, people: &[&str], secrets: &[(&str, &str)]) -> Env {
    let env = Env::empty();
    write(&env, store);
    write_people(&env, people);
    for (name, secret) in secrets {
        std::fs::write(env.path(name), secret).unwrap();
    }
    env
}

/// Rewrites the configuration with `[store]` `store`.
pub fn write(env: &Env, store: &str) {
    env.write_config(&format!(
        "[daemon]\nstate = \"state/idpsync.db\"\nrun_wait = 1\n\n[store]\n{store}\n{FAST_RETRIES}\n{HR}"
    ));
}

/// The document's changes in `stage` as `group user` lines.
pub fn in_stage(list: &Value, stage: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|c| c["stage"] == stage)
        .map(|c| {
            format!(
                "{} {}",
                c["group"].as_str().unwrap(),
                c["user"].as_str().unwrap()
            )
        })
        .collect()
}

/// The document's `unresolved_users` as `store stage/group user` lines.
pub fn unresolved(doc: &Value) -> Vec<String> {
    doc["unresolved_users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{} {}/{} {}",
                u["store"].as_str().unwrap(),
                u["stage"].as_str().unwrap(),
                u["group"].as_str().unwrap(),
                u["user"].as_str().unwrap()
            )
        })
        .collect()
}

/// `status --output json`'s journal counts: (pending, failed).
pub fn journal_depth(env: &Env) -> (u64, u64) {
    let out = env.run(&["status", "--output", "json"]);
    out.expect(0);
    let doc = out.json();
    (
        doc["journal"]["pending"].as_u64().unwrap(),
        doc["journal"]["failed"].as_u64().unwrap(),
    )
}

/// `journal list --output json`.
pub fn failed_entries(env: &Env) -> Vec<Value> {
    let out = env.run(&["journal", "list", "--output", "json"]);
    out.expect(0);
    out.json().as_array().unwrap().clone()
}

/// `n` users `user00001@example.com`… by their ids (`user00001`…).
pub fn many(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("user{i:05}")).collect()
}
