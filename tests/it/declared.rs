//! Declared groups are aligned with the configuration once, then left alone: a run that finds
//! them as declared writes and audits nothing, whatever order their roles sort in.

use serde_json::json;

use crate::common::Env;

/// Roles of two apps whose names order differently as text (`Dash-Admin/…` first, since `-`
/// sorts before `/`) and by app (`Dash` first).
const CONFIG: &str = r#"[daemon]
state = "state/idpsync.db"
run_wait = 1

[[idp]]
name = "corp"
kind = "file"
path = "corp.json"

[[app]]
name = "Dash"
roles = ["Viewer"]

[[app]]
name = "Dash-Admin"
roles = ["Viewer"]

[[group]]
name = "Ops"
stage = "production"
roles = ["Dash/Viewer", "Dash-Admin/Viewer"]
"#;

#[test]
fn a_declared_group_as_declared_is_not_written_again() {
    let env = Env::empty();
    env.write_config(CONFIG);
    env.write_export(
        "corp.json",
        &json!({"users": [{"id": "u1", "email": "ana@example.com"}], "groups": []}),
    );
    let audit = || {
        let out = env.run(&["audit", "--output", "json"]);
        assert_eq!(out.code, 0, "{out:?}");
        out.json().as_array().unwrap().len()
    };
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    let first = audit();
    assert!(first > 0, "the first run creates Ops");
    for _ in 0..2 {
        let (code, doc) = env.reconcile(&[]);
        assert_eq!(code, 0, "{doc:#}");
    }
    assert_eq!(audit(), first, "later runs rewrite nothing of Ops");
}
