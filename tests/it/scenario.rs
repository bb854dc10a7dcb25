//! The "done when" scenario of the core issue, through the real binary and the real state file:
//! two IdPs of which one fails to read, a nested group with a cycle, an emptied IdP group refused
//! twice in a row, a mass removal refused for one IdP while another's adds apply, a deleted
//! mapping, and direct members created through the library.

use std::path::{Path, PathBuf};

use idpsync::model::{GroupName, Stage, UserKey};
use idpsync::state::State;
use serde_json::{Value, json};

struct Scenario {
    dir: tempfile::TempDir,
}

impl Scenario {
    fn config_path(&self) -> PathBuf {
        self.dir.path().join("idpsync.toml")
    }

    fn write_config(&self, with_sales_mapping: bool) {
        let sales = if with_sales_mapping {
            "[[mapping]]\nidp = \"corp\"\nidp_group = \"Sales\"\ngroup = \"Sales\"\nstage = \"qa\"\n"
        } else {
            ""
        };
        let text = format!(
            r#"[daemon]
state = "state/idpsync.db"
run_wait = 1

[[idp]]
name = "corp"
kind = "file"
path = "corp.json"
nested = true

[[idp]]
name = "okta"
kind = "file"
path = "okta.json"

[[group]]
name = "Engineering"
stage = "production"

[[group]]
name = "Marketing"
stage = "production"

[[group]]
name = "Sales"
stage = "qa"

[[group]]
name = "Support"
stage = "production"

[[mapping]]
idp = "corp"
idp_group = "Engineering"
group = "Engineering"
stage = "production"

[[mapping]]
idp = "corp"
idp_group = "mkt"
group = "Marketing"
stage = "production"

[[mapping]]
idp = "okta"
idp_group = "Support"
group = "Support"
stage = "production"

{sales}"#
        );
        crate::common::assert_loopback(&text);
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// corp: 30 engineers in "Engineering" ⊃ "Platform" ⊃ "Engineering" (a cycle), `marketing` in mkt, 2 in Sales.
    fn write_corp(&self, engineers: usize, marketing: &[&str]) {
        let mut users: Vec<Value> = (0..30)
            .map(|i| json!({"id": format!("e{i}"), "email": format!("eng{i:02}@example.com")}))
            .collect();
        for name in ["ana", "ben", "sam", "sue"] {
            users.push(json!({"id": name, "email": format!("{name}@example.com")}));
        }
        let direct: Vec<String> = (0..engineers.min(20)).map(|i| format!("e{i}")).collect();
        let mut platform: Vec<String> = (20..engineers.max(20)).map(|i| format!("e{i}")).collect();
        platform.push("g-eng".into());
        let mut eng = direct;
        eng.push("g-platform".into());
        let doc = json!({
            "users": users,
            "groups": [
                {"id": "g-eng", "name": "Engineering", "members": eng},
                {"id": "g-platform", "name": "Platform", "members": platform},
                {"id": "mkt", "name": "Marketing Team", "members": marketing},
                {"id": "g-sales", "name": "Sales", "members": ["sam", "sue"]},
            ]
        });
        std::fs::write(self.dir.path().join("corp.json"), doc.to_string()).unwrap();
    }

    fn write_okta(&self, support: &[&str]) {
        let users: Vec<Value> = ["ana", "ben", "tom", "tim"]
            .iter()
            .map(|n| json!({"id": format!("o-{n}"), "email": format!("{n}@example.com")}))
            .collect();
        let members: Vec<String> = support.iter().map(|n| format!("o-{n}")).collect();
        let doc =
            json!({"users": users, "groups": [{"id": "s", "name": "Support", "members": members}]});
        std::fs::write(self.dir.path().join("okta.json"), doc.to_string()).unwrap();
    }

    fn reconcile(&self, extra: &[&str]) -> (i32, Value) {
        let output = crate::common::clean_command()
            .arg("--config")
            .arg(self.config_path())
            .args(["-q", "reconcile", "--output", "json"])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let doc: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout:?}"));
        (output.status.code().unwrap(), doc)
    }

    fn state_path(&self) -> PathBuf {
        self.dir.path().join("state/idpsync.db")
    }

    fn members(&self, stage: &str, group: &str) -> Vec<(String, Vec<String>)> {
        members_of(&self.state_path(), stage, group)
    }
}

fn members_of(state: &Path, stage: &str, group: &str) -> Vec<(String, Vec<String>)> {
    let state = State::open_read_only(state).unwrap();
    let group = state
        .find_group(
            &Stage::parse(stage).unwrap(),
            &GroupName::parse(group).unwrap(),
        )
        .unwrap()
        .unwrap();
    state
        .group_members(group.id)
        .unwrap()
        .into_iter()
        .map(|m| {
            (
                m.user,
                m.provenance.iter().map(ToString::to_string).collect(),
            )
        })
        .collect()
}

fn users(changes: &Value) -> Vec<String> {
    changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}/{} {} {} {}",
                c["stage"].as_str().unwrap(),
                c["group"].as_str().unwrap(),
                c["user"].as_str().unwrap(),
                c["idp"].as_str().unwrap(),
                c["idp_group"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn two_idps_cycle_empty_and_removal_guards_deleted_mapping_and_direct_members() {
    let s = Scenario {
        dir: tempfile::tempdir().unwrap(),
    };
    s.write_config(true);
    s.write_corp(30, &["ana", "ben"]);
    // okta.json does not exist yet: okta fails to read, corp proceeds.

    let (code, doc) = s.reconcile(&[]);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["failed_idps"][0]["idp"], "okta");
    assert!(
        doc["failed_idps"][0]["error"]
            .as_str()
            .unwrap()
            .contains("okta.json")
    );
    // 30 engineers through the Engineering ⊃ Platform ⊃ Engineering cycle, 2 marketing, 2 sales.
    assert_eq!(doc["summary"]["adds"], 34, "{doc:#}");
    let adds = users(&doc["adds"]);
    let mut sorted = adds.clone();
    sorted.sort();
    assert_eq!(adds, sorted, "adds are sorted bytewise");
    assert!(adds.contains(&"production/Engineering eng29@example.com corp Engineering".to_owned()));
    assert!(adds.contains(&"production/Marketing ana@example.com corp mkt".to_owned()));
    assert_eq!(
        crate::common::keys(&doc),
        crate::common::sorted(crate::common::REPORT_FIELDS)
    );

    // Direct members, through the library: ana (also mapped) and zoe (direct only).
    {
        let mut state = State::open(&s.state_path()).unwrap();
        let (stage, group) = (
            Stage::parse("production").unwrap(),
            GroupName::parse("Marketing").unwrap(),
        );
        for key in ["ana@example.com", "zoe@example.com"] {
            assert!(
                state
                    .add_direct(&stage, &group, &UserKey::parse(key).unwrap(), "cli:test")
                    .unwrap()
            );
        }
    }
    assert_eq!(
        s.members("production", "Marketing"),
        [
            (
                "ana@example.com".to_owned(),
                vec!["direct".to_owned(), "idp:corp".to_owned()]
            ),
            ("ben@example.com".to_owned(), vec!["idp:corp".to_owned()]),
            ("zoe@example.com".to_owned(), vec!["direct".to_owned()]),
        ]
    );

    // Marketing Team emptied in corp, okta readable with two support members:
    // corp is refused (empty guard) twice in a row while okta's adds apply.
    s.write_corp(30, &[]);
    s.write_okta(&["tom", "tim"]);
    for round in 0..2 {
        let (code, doc) = s.reconcile(&[]);
        assert_eq!(code, 3, "round {round}: {doc:#}");
        assert_eq!(doc["refused"].as_array().unwrap().len(), 1);
        let refusal = &doc["refused"][0];
        assert_eq!(
            (refusal["idp"].as_str(), refusal["guard"].as_str()),
            (Some("corp"), Some("empty"))
        );
        assert_eq!(refusal["removals"], 2);
        let expected_allow = format!(
            "idpsync --config {} reconcile --idp corp --allow-empty",
            s.config_path().display()
        );
        assert_eq!(refusal["allow"], expected_allow);
        assert!(doc["removes"].as_array().unwrap().is_empty());
        let expected_adds: &[&str] = if round == 0 {
            &[
                "production/Support tim@example.com okta Support",
                "production/Support tom@example.com okta Support",
            ]
        } else {
            &[]
        };
        assert_eq!(users(&doc["adds"]), expected_adds, "round {round}");
        assert_eq!(
            s.members("production", "Marketing").len(),
            3,
            "nothing of corp was applied"
        );
    }

    // Allowed: corp's provenance goes, the direct one stays.
    let (code, doc) = s.reconcile(&["--idp", "corp", "--allow-empty"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        users(&doc["removes"]),
        [
            "production/Marketing ana@example.com corp mkt",
            "production/Marketing ben@example.com corp mkt"
        ]
    );
    assert_eq!(
        s.members("production", "Marketing"),
        [
            ("ana@example.com".to_owned(), vec!["direct".to_owned()]),
            ("zoe@example.com".to_owned(), vec!["direct".to_owned()]),
        ]
    );

    // A mass removal in corp (25 of its 32 memberships) is refused while okta's new add applies.
    s.write_corp(5, &[]);
    s.write_okta(&["tom", "tim", "ben"]);
    let (code, doc) = s.reconcile(&[]);
    assert_eq!(code, 3, "{doc:#}");
    let refusal = &doc["refused"][0];
    assert_eq!(
        (
            refusal["guard"].as_str(),
            refusal["removals"].as_u64(),
            refusal["limit"].as_u64()
        ),
        (Some("removals"), Some(25), Some(10))
    );
    let allow = refusal["allow"].as_str().unwrap().to_owned();
    assert!(
        allow.ends_with("reconcile --idp corp --allow-removals 25"),
        "{allow}"
    );
    assert_eq!(
        users(&doc["adds"]),
        ["production/Support ben@example.com okta Support"]
    );
    assert!(doc["removes"].as_array().unwrap().is_empty());
    assert_eq!(s.members("production", "Engineering").len(), 30);

    // The printed command lets it through.
    let args: Vec<&str> = allow.split(' ').skip(4).collect();
    assert_eq!(args[0], "--idp");
    let (code, doc) = s.reconcile(&args);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["summary"]["removes"], 25);
    assert_eq!(s.members("production", "Engineering").len(), 5);

    // Deleting the Sales mapping removes what it granted, with the recorded cause.
    s.write_config(false);
    let (code, doc) = s.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        users(&doc["removes"]),
        [
            "qa/Sales sam@example.com corp Sales",
            "qa/Sales sue@example.com corp Sales"
        ]
    );

    // Converged: the next run changes nothing.
    let (code, doc) = s.reconcile(&[]);
    assert_eq!(
        (code, &doc["summary"]["adds"], &doc["summary"]["removes"]),
        (0, &json!(0), &json!(0))
    );

    // Precedence: a refusal (3) beats a failure (1).
    std::fs::write(s.dir.path().join("okta.json"), "{not json").unwrap();
    s.write_corp(5, &["ana"]);
    std::fs::write(
        s.dir.path().join("corp.json"),
        r#"{"users":[],"groups":[]}"#,
    )
    .unwrap();
    let (code, doc) = s.reconcile(&[]);
    assert_eq!(code, 3, "{doc:#}");
    assert_eq!(doc["failed_idps"][0]["idp"], "okta");
    assert_eq!(doc["refused"][0]["idp"], "corp");
}
