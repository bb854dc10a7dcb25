//! The Jira store against the fake Jira Cloud: one request per change, users by e-mail (hidden
//! e-mails unresolvable), "already a member" as preexisting, 429s waited out, and drift found on
//! a full run and corrected for the memberships idpsync owns only.

use fakes::jira::FakeJira;

use crate::common::Env;
use crate::stores::{in_stage, setup, unresolved, write_people};

const EMAIL: &str = "admin@example.com";
const TOKEN: &str = "jira-api-token-never-logged";

fn env_for(jira: &FakeJira, people: &[&str]) -> Env {
    let store = format!(
        "kind = \"jira\"\nsite_url = \"{}\"\nemail = \"{EMAIL}\"\napi_token_file = \"jira.token\"\nstages = [\"production\"]",
        jira.site_url()
    );
    setup(&store, people, &[("jira.token", TOKEN)])
}

#[test]
fn one_request_per_change_and_members_found_there_stay() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    jira.add_group("People");
    for u in ["ana", "ben", "pre", "zed"] {
        jira.add_user(&format!("{u}@example.com"));
    }
    jira.add_user_hidden_email("hid@example.com");
    jira.add_member("People", "pre@example.com");
    jira.add_member("People", "zed@example.com");
    let env = env_for(&jira, &["ana", "ben", "hid", "pre"]);
    jira.throttle_next(2, 0);

    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(unresolved(&doc), ["jira production/People hid@example.com"]);
    assert_eq!(
        jira.members_of("People"),
        [
            "ana@example.com",
            "ben@example.com",
            "pre@example.com",
            "zed@example.com"
        ]
    );
    let counts = jira.counts();
    assert_eq!(
        counts.add_user, 2,
        "one POST per add; pre was there already"
    );
    assert_eq!(counts.throttled, 2);

    // pre and ben leave: ben (ours) is removed, pre (found there) stays.
    write_people(&env, &["ana", "hid"]);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        in_stage(&doc["removes"], "production"),
        ["People ben@example.com", "People pre@example.com"]
    );
    assert_eq!(
        jira.members_of("People"),
        ["ana@example.com", "pre@example.com", "zed@example.com"]
    );
    assert_eq!(jira.counts().remove_user, 1);
}

#[test]
fn drift_is_corrected_for_what_idpsync_owns_only() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    jira.add_group("People");
    for u in ["ana", "ben", "zed"] {
        jira.add_user(&format!("{u}@example.com"));
    }
    let env = env_for(&jira, &["ana", "ben"]);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        jira.members_of("People"),
        ["ana@example.com", "ben@example.com"]
    );

    // Behind idpsync's back: ana removed, zed added.
    jira.remove_member("People", "ana@example.com");
    jira.add_member("People", "zed@example.com");
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        jira.members_of("People"),
        ["ben@example.com", "zed@example.com"],
        "not due yet: no read"
    );
    let out = env.run(&["reconcile", "--full"]);
    out.expect(0);
    assert!(
        out.stdout.contains("1 drifted memberships corrected"),
        "{}",
        out.stdout
    );
    assert_eq!(
        jira.members_of("People"),
        ["ana@example.com", "ben@example.com", "zed@example.com"],
        "ana (ours) is back; zed is someone else's and stays"
    );
    // zed joins the IdP group and leaves again: zed was not ours, so zed stays in Jira.
    write_people(&env, &["ana", "ben", "zed"]);
    env.reconcile(&[]);
    write_people(&env, &["ana", "ben"]);
    env.reconcile(&[]);
    assert!(
        jira.members_of("People")
            .contains(&"zed@example.com".to_owned())
    );
}

#[test]
fn check_connect_authenticates_and_finds_every_group() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    let env = env_for(&jira, &["ana"]);
    let out = env.run(&["check", "--connect"]);
    out.expect(1);
    assert!(
        out.stdout.contains("group production/People: NOT FOUND"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("stage qa is mapped but the jira store does not serve it"),
        "{}",
        out.stdout
    );
    jira.add_group("People");
    let out = env.run(&["check", "--connect"]);
    out.expect(0);
    assert!(
        out.stdout.contains("authenticated as admin@example.com"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("group production/People: found"),
        "{}",
        out.stdout
    );
    std::fs::write(env.path("jira.token"), "wrong-token").unwrap();
    let out = env.run(&["check", "--connect"]);
    out.expect(1);
    assert!(
        out.stdout.contains("refused the credentials"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("wrong-token") && !out.stderr.contains("wrong-token"));
}
