//! The ODC store against the fake ODC identity API: client credentials through discovery, groups
//! per environment, Assigned members sent and Mapped ones untouched, users pre-created with the
//! identity provider, an expired token refreshed once, and errors with their `errorCode`.

use fakes::odc::FakeOdc;
use serde_json::json;

use crate::common::Env;
use crate::stores::{
    failed_entries, in_stage, journal_depth, setup, unresolved, write, write_people,
};

const ID: &str = "idpsync-client";
const SECRET: &str = "odc-secret-never-logged";

fn store(odc: &FakeOdc, environment: &str, extra: &str) -> String {
    format!(
        "kind = \"odc\"\nportal_url = \"{}\"\nclient_id = \"{ID}\"\nclient_secret_file = \"odc.secret\"\nstages = {{ production = \"{environment}\" }}\n{extra}",
        odc.portal_url()
    )
}

fn env_for(odc: &FakeOdc, environment: &str, people: &[&str]) -> Env {
    setup(
        &store(odc, environment, ""),
        people,
        &[("odc.secret", SECRET)],
    )
}

#[test]
fn assigned_members_are_sent_and_mapped_ones_are_odcs_own() {
    let odc = FakeOdc::start(ID, SECRET);
    let production = odc.add_environment("production");
    let elsewhere = odc.add_environment("development");
    odc.add_group(&elsewhere, "People");
    let people = odc.add_group(&production, "People");
    let ana = odc.add_user("ana@example.com");
    odc.add_user("ben@example.com");
    let pre = odc.add_user("pre@example.com");
    let map = odc.add_user("map@example.com");
    odc.add_assigned_member(&people, &pre);
    odc.add_mapped_member(&people, &map);
    let env = env_for(&odc, &production, &["ana", "ben", "cat", "map", "pre"]);

    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        in_stage(&doc["adds"], "production"),
        [
            "People ana@example.com",
            "People ben@example.com",
            "People map@example.com",
            "People pre@example.com"
        ]
    );
    assert_eq!(unresolved(&doc), ["odc production/People cat@example.com"]);
    assert_eq!(
        odc.assigned_members(&people),
        [
            "ana@example.com",
            "ben@example.com",
            "map@example.com",
            "pre@example.com"
        ]
    );
    assert_eq!(odc.stats().tokens, 1);
    assert_eq!(odc.stats().patch_users, 1, "one PATCH for the three adds");
    assert_eq!(odc.stats().throttled, 0);

    // ana, map and pre leave the IdP: ana's and map's Assigned memberships (ours) go; map stays
    // Mapped (ODC's own), and pre, Assigned before idpsync, stays.
    odc.expire_tokens();
    write_people(&env, &["ben", "cat"]);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        odc.assigned_members(&people),
        ["ben@example.com", "pre@example.com"]
    );
    assert_eq!(odc.mapped_members(&people), ["map@example.com"]);
    assert_eq!(
        odc.stats().tokens,
        2,
        "the expired token was refreshed once"
    );
    let _ = ana;
}

#[test]
fn missing_users_are_created_with_the_identity_provider() {
    let odc = FakeOdc::start(ID, SECRET);
    let production = odc.add_environment("production");
    let people = odc.add_group(&production, "People");
    let env = setup(
        &store(
            &odc,
            &production,
            "identity_provider_key = \"5d1c7a3e-0000-4000-8000-000000000002\"",
        ),
        &["cat"],
        &[("odc.secret", SECRET)],
    );
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(unresolved(&doc), Vec::<String>::new());
    assert_eq!(odc.assigned_members(&people), ["cat@example.com"]);
    assert_eq!(
        odc.created_users(),
        [(
            "cat@example.com".to_owned(),
            Some("5d1c7a3e-0000-4000-8000-000000000002".to_owned()),
            Some("cat@example.com".to_owned())
        )]
    );
}

#[test]
fn a_rejection_keeps_its_error_code_and_a_missing_group_can_be_created() {
    let odc = FakeOdc::start(ID, SECRET);
    let production = odc.add_environment("production");
    odc.add_user("ana@example.com");
    let env = env_for(&odc, &production, &["ana"]);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        doc["inactive_mappings"][0]["reason"],
        "remote_group_not_found"
    );

    write(&env, &store(&odc, &production, "create_groups = true"));
    odc.switch(|s| s.reject_writes = 1);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 1, "the group could not be created: {doc}");
    assert_eq!(journal_depth(&env).0, 1);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    let people = odc.group_key(&production, "People").unwrap();
    assert_eq!(odc.assigned_members(&people), ["ana@example.com"]);
    assert_eq!(journal_depth(&env), (0, 0));

    odc.add_user("ben@example.com");
    write_people(&env, &["ana", "ben"]);
    odc.switch(|s| s.reject_writes = 1);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    let failed = failed_entries(&env);
    assert_eq!(failed.len(), 1);
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("errorCode OS-IDNT-PERM-40301"), "{error}");
    assert_eq!(failed[0]["user"], json!("ben@example.com"));
}
