//! Helpers shared by the Entra ID and Okta tests: a folder whose configuration has one cloud IdP
//! (`cloud`) beside a file IdP (`hr`), the memberships of a group as the store holds them, and the
//! failure-isolation check every "a read is complete or it fails" case goes through.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::{Env, changes};

/// Settings that keep retries quick in tests: backoff from 10 ms, waits of at most 5 s.
pub const FAST_RETRIES: &str = "retry_min_delay = \"10ms\"\nretry_max_delay = \"5s\"\n";

/// The file IdP `hr` with its group, declared group and mapping.
const HR: &str = r#"
[[idp]]
name = "hr"
kind = "file"
path = "hr.json"

[[group]]
name = "People"
stage = "production"

[[mapping]]
idp = "hr"
idp_group = "Everyone"
group = "People"
stage = "production"
"#;

/// A folder whose configuration is `[daemon]`, the cloud IdP block `idp` (with its groups and
/// mappings) and the file IdP `hr` holding `people`.
pub fn setup(idp: &str, people: &[&str]) -> Env {
    let env = Env::empty();
    write(&env, idp);
    write_people(&env, people);
    env
}

/// Rewrites the configuration with the cloud IdP block `idp`.
pub fn write(env: &Env, idp: &str) {
    env.write_config(&format!(
        "[daemon]\nstate = \"state/idpsync.db\"\nrun_wait = 1\n\n{idp}\n{HR}"
    ));
}

/// Rewrites `hr.json` with `people` (ids; keys `<id>@example.com`) in group Everyone.
pub fn write_people(env: &Env, people: &[&str]) {
    let users: Vec<Value> = people
        .iter()
        .map(|m| json!({"id": m, "email": format!("{m}@example.com")}))
        .collect();
    env.write_export(
        "hr.json",
        &json!({"users": users, "groups": [{"id": "g1", "name": "Everyone", "members": people}]}),
    );
}

/// The members of `stage/group`, each checked to hold exactly `provenance`.
pub fn members(env: &Env, group: &str, stage: &str, provenance: &[&str]) -> BTreeSet<String> {
    let out = env.run(&[
        "groups", "show", group, "--stage", stage, "--output", "json",
    ]);
    out.expect(0);
    out.json()["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members in {}", out.stdout))
        .iter()
        .map(|m| {
            assert_eq!(m["provenance"], json!(provenance), "{group}: {m}");
            m["user"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Every membership of the store as `stage/group user provenance…` lines.
pub fn memberships(env: &Env) -> BTreeSet<String> {
    let out = env.run(&["groups", "list", "--output", "json"]);
    out.expect(0);
    let mut lines = BTreeSet::new();
    for group in out.json().as_array().unwrap() {
        let (name, stage) = (
            group["name"].as_str().unwrap(),
            group["stage"].as_str().unwrap(),
        );
        for user in members_any(env, name, stage) {
            lines.insert(format!("{stage}/{name} {user}"));
        }
    }
    lines
}

fn members_any(env: &Env, group: &str, stage: &str) -> Vec<String> {
    let out = env.run(&[
        "groups", "show", group, "--stage", stage, "--output", "json",
    ]);
    out.expect(0);
    out.json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{} {}", m["user"].as_str().unwrap(), m["provenance"]))
        .collect()
}

/// A reconcile in which the cloud IdP fails while `hr` gains `newcomer`: exit 1, the cloud IdP
/// the one failed IdP with an error holding each of `needles` and of `kind`, hr's add applied,
/// and every membership of the cloud IdP exactly as before. Returns the error.
pub fn fails_alone(
    env: &Env,
    people: &mut Vec<&'static str>,
    newcomer: &'static str,
    needles: &[&str],
    kind: &str,
) -> String {
    let before: BTreeSet<String> = memberships(env)
        .into_iter()
        .filter(|m| m.contains("idp:cloud"))
        .collect();
    people.push(newcomer);
    write_people(env, people);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 1, "{doc:#}");
    let failed = doc["failed_idps"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{doc:#}");
    assert_eq!(failed[0]["idp"], "cloud", "{doc:#}");
    let error = failed[0]["error"].as_str().unwrap().to_owned();
    for needle in needles {
        assert!(error.contains(needle), "{needle:?} is not in {error:?}");
    }
    assert_eq!(
        changes(&doc["adds"]),
        [format!(
            "production/People {newcomer}@example.com hr Everyone"
        )],
        "hr proceeds: {doc:#}"
    );
    assert_eq!(doc["removes"], json!([]), "a failed read removes nobody");
    let after: BTreeSet<String> = memberships(env)
        .into_iter()
        .filter(|m| m.contains("idp:cloud"))
        .collect();
    assert_eq!(after, before, "the cloud IdP's memberships are untouched");
    assert!(!before.is_empty(), "the check needs memberships to protect");
    let out = env.run(&["status", "--output", "json"]);
    out.expect(0);
    let status = out.json();
    let cloud = status["idps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["idp"] == "cloud")
        .unwrap_or_else(|| panic!("no cloud in {status:#}"));
    assert_eq!(cloud["last_run"]["error_kind"], kind, "{status:#}");
    error
}
