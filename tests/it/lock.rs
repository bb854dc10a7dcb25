//! The run lock (SPEC §1 invariant 10): a CLI run of an IdP whose lock another run holds waits up
//! to `daemon.run_wait`, then fails that IdP (exit 1) naming the holder; other IdPs proceed and
//! dry runs take no lock at all.

use std::fs::File;
use std::io::Write;

use serde_json::json;

use crate::common::{CONFIG, Env, changes, keys};

/// Takes `<state>.locks/<idp>.lock` the way a run does, writing `holder` into it.
fn hold_lock(env: &Env, idp: &str, holder: &str) -> File {
    let folder = env.path("state/idpsync.db.locks");
    std::fs::create_dir_all(&folder).unwrap();
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(folder.join(format!("{idp}.lock")))
        .unwrap();
    file.try_lock().expect("the lock is free");
    file.set_len(0).unwrap();
    writeln!(file, "{holder}").unwrap();
    file
}

/// CONFIG plus a second file IdP `hr` mapping its Staff group onto Marketing.
fn two_idps() -> Env {
    let env = Env::new();
    env.write_config(&format!(
        "{CONFIG}\n[[idp]]\nname = \"hr\"\nkind = \"file\"\npath = \"hr.json\"\n\n[[mapping]]\nidp = \"hr\"\nidp_group = \"Staff\"\ngroup = \"Marketing\"\nstage = \"production\"\n"
    ));
    env.write_export(
        "hr.json",
        &json!({"users": [{"id": "h1", "email": "eve@example.com"}], "groups": [{"id": "s", "name": "Staff", "members": ["h1"]}]}),
    );
    env
}

#[test]
fn a_held_run_lock_fails_that_idp_only() {
    let env = two_idps();
    let lock = hold_lock(&env, "corp", "test-holder-4242");
    let vars = [("IDPSYNC__DAEMON__RUN_WAIT", "1")];

    // A dry run ignores the lock.
    let out = env.run_with(&["reconcile", "--dry-run", "--output", "json"], &vars);
    out.expect(0);
    let dry = out.json();
    assert_eq!(dry["failed_idps"], json!([]), "{dry:#}");
    assert_eq!(dry["summary"]["adds"], 5, "{dry:#}");

    let out = env.run_with(&["reconcile", "--output", "json"], &vars);
    out.expect(1);
    let doc = out.json();
    let failed = doc["failed_idps"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{doc:#}");
    assert_eq!(failed[0]["idp"], "corp");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("another run"), "{error}");
    assert!(
        error.contains("test-holder-4242"),
        "the holder is not named: {error}"
    );
    // hr is not locked: its change applies; nothing of corp does.
    assert_eq!(
        changes(&doc["adds"]),
        ["production/Marketing eve@example.com hr Staff"]
    );
    assert_eq!(doc["removes"], json!([]));
    let before = env.state();
    assert_eq!(before.table("memberships").len(), 1);

    // Only corp, still locked.
    let out = env.run_with(&["reconcile", "--idp", "corp", "--output", "json"], &vars);
    out.expect(1);
    assert_eq!(out.json()["failed_idps"][0]["idp"], "corp");
    assert_eq!(
        env.state().table("memberships"),
        before.table("memberships")
    );

    // Released: corp applies.
    drop(lock);
    let out = env.run_with(&["reconcile", "--output", "json"], &vars);
    out.expect(0);
    let doc = out.json();
    assert_eq!(doc["failed_idps"], json!([]));
    assert_eq!(doc["summary"]["adds"], 4, "{doc:#}");
    assert_eq!(
        keys(&doc),
        crate::common::sorted(crate::common::REPORT_FIELDS)
    );
}

#[test]
fn dry_runs_ignore_the_lock_and_take_none() {
    let env = Env::new();
    let (code, _) = env.reconcile(&[]);
    assert_eq!(code, 0);
    let lock = hold_lock(&env, "corp", "holder");
    let before = env.state();
    let out = env.run_with(
        &["reconcile", "--dry-run", "--output", "json"],
        &[("IDPSYNC__DAEMON__RUN_WAIT", "1")],
    );
    out.expect(0);
    assert_eq!(out.json()["failed_idps"], json!([]));
    assert_eq!(env.state(), before);
    drop(lock);

    // A dry run on a fresh folder does not create the lock folder either.
    let fresh = Env::new();
    let tree = fresh.tree();
    fresh.run(&["reconcile", "--dry-run"]).expect(0);
    assert_eq!(fresh.tree(), tree);
    assert!(!fresh.path("state/idpsync.db.locks").exists());
}

#[test]
fn a_finished_run_releases_its_lock() {
    let env = Env::new();
    let (code, _) = env.reconcile(&[]);
    assert_eq!(code, 0);
    // The run's lock file exists and is free again: the test can take it.
    let lock_path = env.path("state/idpsync.db.locks/corp.lock");
    assert!(lock_path.exists());
    let file = File::options()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    file.try_lock().expect("the run released its lock");
}
