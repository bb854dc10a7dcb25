//! The SCIM store against the AWS-like fake SCIM server: adds, removes, ownership of members
//! found there, users the server does not know, throttling, permanent rejections and the
//! journal, batching to 100 changes a PATCH, a missing group, and CLI edits refused.

use fakes::scim::{FakeScim, read};
use serde_json::json;

use crate::common::Env;
use crate::stores::{
    failed_entries, in_stage, journal_depth, many, setup, unresolved, write, write_people,
};

const TOKEN: &str = "scim-token-never-logged";

fn store(url: &str, extra: &str) -> String {
    format!(
        "kind = \"scim\"\nurl = \"{url}\"\ntoken_file = \"scim.token\"\nstages = [\"production\"]\n{extra}"
    )
}

fn env_for(scim: &FakeScim, people: &[&str]) -> Env {
    setup(&store(&scim.url(), ""), people, &[("scim.token", TOKEN)])
}

#[test]
fn changes_reach_the_store_and_members_found_there_stay() {
    let scim = FakeScim::start(TOKEN);
    let people = scim.add_group("People");
    let pre = scim.add_user("pre@example.com");
    scim.add_member(&people, &pre);
    let other = scim.add_user("zed@example.com");
    scim.add_member(&people, &other);
    scim.add_user("ana@example.com");
    scim.add_user("ben@example.com");
    let env = env_for(&scim, &["ana", "ben", "cat", "pre"]);

    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        in_stage(&doc["adds"], "production"),
        [
            "People ana@example.com",
            "People ben@example.com",
            "People pre@example.com"
        ],
        "cat is not in the store: not an add"
    );
    assert_eq!(
        in_stage(&doc["adds"], "qa").len(),
        4,
        "qa stays embedded, cat included"
    );
    assert_eq!(unresolved(&doc), ["scim production/People cat@example.com"]);
    assert_eq!(doc["summary"]["adds"], 7);
    assert_eq!(
        scim.members_of("People"),
        [
            "ana@example.com",
            "ben@example.com",
            "pre@example.com",
            "zed@example.com"
        ]
    );
    assert_eq!(read(&scim.counts().patches), 1, "one PATCH for both adds");

    // Nothing changed: nothing is sent; cat is asked for again.
    let before = (
        read(&scim.counts().patches),
        read(&scim.counts().user_lookups),
    );
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["adds"], json!([]));
    assert_eq!(unresolved(&doc), ["scim production/People cat@example.com"]);
    assert_eq!(read(&scim.counts().patches), before.0);
    assert_eq!(
        read(&scim.counts().user_lookups),
        before.1 + 1,
        "one lookup: cat"
    );

    // cat appears (a first login, say): the next run sends it.
    scim.add_user("cat@example.com");
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(unresolved(&doc), Vec::<String>::new());
    assert!(
        scim.members_of("People")
            .contains(&"cat@example.com".to_owned())
    );

    // ben and pre leave the IdP: ben (ours) leaves the store, pre (there before us) stays.
    write_people(&env, &["ana", "cat"]);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        in_stage(&doc["removes"], "production"),
        ["People ben@example.com", "People pre@example.com"]
    );
    assert_eq!(
        scim.members_of("People"),
        [
            "ana@example.com",
            "cat@example.com",
            "pre@example.com",
            "zed@example.com"
        ]
    );
    let body = scim.last_patch_body().unwrap();
    assert_eq!(
        body["Operations"],
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", scim.user_id("ben@example.com").unwrap())}])
    );
    assert_eq!(journal_depth(&env), (0, 0));
}

#[test]
fn throttling_is_waited_out_and_a_rejection_fails_only_its_change() {
    let scim = FakeScim::start(TOKEN);
    scim.add_group("People");
    for u in ["ana", "ben"] {
        scim.add_user(&format!("{u}@example.com"));
    }
    let env = env_for(&scim, &["ana"]);
    scim.switch(|s| {
        s.throttle_next = 3;
        s.retry_after = Some(0);
    });
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(scim.members_of("People"), ["ana@example.com"]);
    assert_eq!(read(&scim.counts().throttled), 3);

    // The next write is refused for good: that change fails, is listed, and blocks nothing.
    scim.switch(|s| s.reject_writes = 1);
    write_people(&env, &["ana", "ben"]);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(scim.members_of("People"), ["ana@example.com"]);
    assert_eq!(journal_depth(&env), (0, 1));
    let failed = failed_entries(&env);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["op"], "add");
    assert_eq!(failed[0]["user"], "ben@example.com");
    assert_eq!(
        failed[0]["run_id"], doc["run_id"],
        "the run that journalled it"
    );
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("scimType"), "{error}");
    let audit = env.run(&["audit", "--user", "ben@example.com", "--output", "json"]);
    audit.expect(0);
    assert!(
        audit
            .json()
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["op"] == "drop" && a["detail"].as_str().unwrap().contains("rejected")),
        "{}",
        audit.stdout
    );
    let (code, _) = env.reconcile(&[]);
    assert_eq!(code, 0, "a failed entry never blocks later runs");

    // Retried, it goes through at the next run.
    let id = failed[0]["id"].as_i64().unwrap().to_string();
    env.run(&["journal", "retry", &id]).expect(0);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        scim.members_of("People"),
        ["ana@example.com", "ben@example.com"]
    );
    assert_eq!(journal_depth(&env), (0, 0));
}

#[test]
fn an_unavailable_store_fails_the_run_and_the_next_run_sends_its_changes() {
    let scim = FakeScim::start(TOKEN);
    scim.add_group("People");
    scim.add_user("ana@example.com");
    let env = env_for(&scim, &["ana"]);
    scim.switch(|s| s.busy_next = 1000);
    let out = env.run(&["reconcile"]);
    out.expect(1);
    assert!(out.stdout.contains("FAILED store scim"), "{}", out.stdout);
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN));
    assert!(scim.members_of("People").is_empty());
    assert_eq!(journal_depth(&env).0, 1, "the add waits in the journal");
    scim.switch(|s| s.busy_next = 0);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["adds"], json!([]), "the mirror had it already");
    assert_eq!(scim.members_of("People"), ["ana@example.com"]);
    assert_eq!(journal_depth(&env), (0, 0));
}

#[test]
fn changes_go_100_to_a_patch_and_users_are_listed_in_bulk() {
    let scim = FakeScim::start(TOKEN);
    scim.add_group("People");
    let ids = many(250);
    let names: Vec<String> = ids.iter().map(|i| format!("{i}@example.com")).collect();
    scim.add_users(&names);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let env = env_for(&scim, &refs);
    let (code, doc) = env.reconcile(&["--allow-removals", "0"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(scim.members_of("People").len(), 250);
    assert_eq!(read(&scim.counts().patches), 3, "250 adds in 3 PATCHes");
    assert_eq!(read(&scim.counts().max_patch_members), 100);
    assert_eq!(
        read(&scim.counts().user_lookups),
        0,
        "users were listed, not looked up"
    );
    assert_eq!(read(&scim.counts().user_pages), 3);
    // Everyone leaves: 250 removes, allowed, in 3 PATCHes of filter-path removes.
    write_people(&env, &[]);
    let (code, doc) = env.reconcile(&["--allow-removals", "500", "--allow-empty"]);
    assert_eq!(code, 0, "{doc}");
    assert!(scim.members_of("People").is_empty());
    assert_eq!(read(&scim.counts().patches), 6);
}

#[test]
fn a_group_the_store_lacks_is_remote_group_not_found_unless_created() {
    let scim = FakeScim::start(TOKEN);
    scim.add_user("ana@example.com");
    let env = env_for(&scim, &["ana"]);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        doc["inactive_mappings"],
        json!([{"idp": "hr", "idp_group": "Everyone", "group": "People", "stage": "production", "reason": "remote_group_not_found"}])
    );
    assert_eq!(in_stage(&doc["adds"], "production"), Vec::<String>::new());
    assert_eq!(in_stage(&doc["adds"], "qa"), ["People ana@example.com"]);
    assert!(scim.groups().is_empty());

    write(&env, &store(&scim.url(), "create_groups = true"));
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["inactive_mappings"], json!([]));
    assert_eq!(scim.members_of("People"), ["ana@example.com"]);
    assert_eq!(scim.groups().len(), 1);
    // Renamed in the store: followed by its id, never answered with a duplicate.
    let id = scim.group_id("People").unwrap();
    scim.rename_group(&id, "People (renamed)");
    write_people(&env, &["ana", "ben"]);
    scim.add_user("ben@example.com");
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(scim.groups().len(), 1);
    assert_eq!(
        scim.members_of("People (renamed)"),
        ["ana@example.com", "ben@example.com"]
    );
}

#[test]
fn cli_membership_edits_are_refused_for_a_remote_stage() {
    let scim = FakeScim::start(TOKEN);
    let env = env_for(&scim, &[]);
    env.run(&["groups", "create", "Extra", "--stage", "production"])
        .expect(0);
    let out = env.run(&[
        "groups",
        "add-user",
        "Extra",
        "--stage",
        "production",
        "ana@example.com",
    ]);
    out.expect(2);
    assert!(
        out.stderr.contains("served by the scim store"),
        "{}",
        out.stderr
    );
    env.run(&[
        "groups",
        "remove-user",
        "Extra",
        "--stage",
        "production",
        "ana@example.com",
    ])
    .expect(2);
    env.run(&[
        "groups",
        "delete",
        "Extra",
        "--stage",
        "production",
        "--remove-members",
    ])
    .expect(2);
    // Other stages are the embedded store's.
    env.run(&[
        "groups",
        "add-user",
        "People",
        "--stage",
        "qa",
        "ana@example.com",
    ])
    .expect(0);
    assert_eq!(read(&scim.counts().requests), 0);
}

#[test]
fn a_server_with_etags_gets_if_match_on_every_patch() {
    let scim = FakeScim::start(TOKEN);
    scim.switch(|s| s.etag = true);
    scim.add_group("People");
    for u in ["ana", "ben"] {
        scim.add_user(&format!("{u}@example.com"));
    }
    let env = env_for(&scim, &["ana"]);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    write_people(&env, &["ben"]);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(scim.members_of("People"), ["ben@example.com"]);
    assert_eq!(read(&scim.counts().patches), 2);
    assert_eq!(
        read(&scim.counts().group_gets),
        2,
        "each PATCH read the group's version first"
    );
}

#[test]
fn an_applied_saved_plan_reaches_the_store() {
    let scim = FakeScim::start(TOKEN);
    scim.add_group("People");
    scim.add_user("ana@example.com");
    let env = env_for(&scim, &["ana"]);
    env.run(&["plan", "--out", "plan.json"]).expect(0);
    assert!(
        scim.members_of("People").is_empty(),
        "a plan writes nothing"
    );
    let out = env.run(&["apply", "plan.json"]);
    out.expect(0);
    assert!(
        out.stdout.contains("Store scim: 1 changes sent"),
        "{}",
        out.stdout
    );
    assert_eq!(scim.members_of("People"), ["ana@example.com"]);
    assert_eq!(journal_depth(&env), (0, 0));
}

#[test]
fn a_retried_entry_never_undoes_what_came_after_it() {
    let scim = FakeScim::start(TOKEN);
    scim.add_group("People");
    for u in ["ana", "ben"] {
        scim.add_user(&format!("{u}@example.com"));
    }
    let env = env_for(&scim, &["ana", "ben"]);
    // The batch, then each change alone.
    scim.switch(|s| s.reject_writes = 3);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    let failed = failed_entries(&env);
    assert_eq!(failed.len(), 2, "{failed:?}");
    // ben leaves the IdP group; then the failed add of ben is retried.
    write_people(&env, &["ana"]);
    env.reconcile(&[]);
    for entry in &failed {
        env.run(&[
            "journal",
            "retry",
            &entry["id"].as_i64().unwrap().to_string(),
        ])
        .expect(0);
    }
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        scim.members_of("People"),
        ["ana@example.com"],
        "ben's stale add is not sent"
    );
    assert_eq!(journal_depth(&env), (0, 0));
}

#[test]
fn a_group_gone_from_the_store_is_refused_not_emptied() {
    let scim = FakeScim::start(TOKEN);
    let people = scim.add_group("People");
    for u in ["ana", "ben"] {
        scim.add_user(&format!("{u}@example.com"));
    }
    let env = env_for(&scim, &["ana"]);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    // Deleted in the store: the next change finds it gone and forgets its id.
    scim.delete_group(&people);
    write_people(&env, &["ana", "ben"]);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        journal_depth(&env),
        (1, 0),
        "ben's add waits: the group is looked up again next time"
    );
    // Now the mapping's remote group is missing while its local group holds memberships: refused.
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 3, "{doc}");
    assert_eq!(doc["refused"][0]["guard"], "empty");
    assert_eq!(
        doc["inactive_mappings"][0]["reason"],
        "remote_group_not_found"
    );
    assert_eq!(
        in_stage(&doc["removes"], "production"),
        Vec::<String>::new()
    );
    let out = env.run(&[
        "groups",
        "show",
        "People",
        "--stage",
        "production",
        "--output",
        "json",
    ]);
    assert_eq!(
        out.json()["members"].as_array().unwrap().len(),
        2,
        "the mirror keeps ana and ben"
    );
}

#[test]
fn entries_for_a_store_no_longer_configured_are_failed_not_left_pending() {
    let old = FakeScim::start(TOKEN);
    old.add_group("People");
    old.add_user("ana@example.com");
    let env = env_for(&old, &["ana"]);
    old.switch(|s| s.busy_next = 1000);
    env.run(&["reconcile"]).expect(1);
    assert_eq!(journal_depth(&env), (1, 0));
    let new = FakeScim::start(TOKEN);
    new.add_group("People");
    new.add_user("ana@example.com");
    write(&env, &store(&new.url(), ""));
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(journal_depth(&env), (0, 1));
    let failed = failed_entries(&env);
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("journalled for another store"),
        "{failed:?}"
    );
    assert_eq!(
        new.members_of("People"),
        ["ana@example.com"],
        "the new store is sent what the mirror holds"
    );
    assert!(old.members_of("People").is_empty());
}

#[test]
fn entries_of_a_stage_the_store_stopped_serving_are_failed_and_its_groups_not_seeded() {
    let scim = FakeScim::start(TOKEN);
    scim.add_group("People");
    scim.add_user("ana@example.com");
    let env = env_for(&scim, &["ana"]);
    scim.switch(|s| s.busy_next = 1000);
    env.run(&["reconcile"]).expect(1);
    assert_eq!(journal_depth(&env), (1, 0));
    scim.switch(|s| s.busy_next = 0);
    // The store now serves qa instead: production's entry can never be sent.
    let qa = store(&scim.url(), "").replace("stages = [\"production\"]", "stages = [\"qa\"]");
    write(&env, &qa);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    let failed = failed_entries(&env);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("no longer serves"),
        "{failed:?}"
    );
    // qa's People, seen for the first time, is sent what the mirror holds there: ana.
    assert_eq!(scim.members_of("People"), ["ana@example.com"]);
}

#[test]
fn a_dry_run_with_a_remote_store_writes_and_sends_nothing() {
    let scim = FakeScim::start(TOKEN);
    scim.add_group("People");
    scim.add_user("ana@example.com");
    let env = env_for(&scim, &["ana"]);
    let before = env.tree();
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        in_stage(&doc["adds"], "production"),
        ["People ana@example.com"]
    );
    assert_eq!(env.tree(), before, "no state file, no lock, nothing");
    assert_eq!(read(&scim.counts().patches), 0);
    // And after a real run, a dry run changes nothing in the state either.
    env.reconcile(&[]);
    write_people(&env, &[]);
    let state = env.state();
    let (code, _) = env.reconcile(&["--dry-run", "--allow-empty", "--allow-removals", "1"]);
    assert_eq!(code, 0);
    assert_eq!(env.state(), state);
    assert_eq!(read(&scim.counts().patches), 1);
}
