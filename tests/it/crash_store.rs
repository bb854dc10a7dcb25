//! Crash safety of the journal to a remote store (SPEC §1 invariant 9), through the real binary
//! SIGKILLed at each step of sending it — after the journal write, with entries marked sending,
//! after a push before its done mark, between the changes of a batch — and at random moments
//! of a seeded run: the store converges, nothing is lost or doubled, and members found there
//! before idpsync stay. Jira answers a repeated add with "already a member", which is what a
//! crash after a push makes the next run hear: it must still count the membership as ours.

use fakes::jira::FakeJira;

use crate::armed::Armed;
use crate::common::Env;
use crate::stores::{journal_depth, setup, write_people};

const EMAIL: &str = "admin@example.com";
const TOKEN: &str = "jira-api-token";
const PEOPLE: [&str; 5] = ["u1", "u2", "u3", "u4", "pre"];

/// A Jira site with group People holding `pre` and `zed` (both there before idpsync), and an
/// IdP whose Everyone group is u1…u4 and pre.
fn site() -> (FakeJira, Env) {
    let jira = FakeJira::start(EMAIL, TOKEN);
    jira.add_group("People");
    for u in ["u1", "u2", "u3", "u4", "pre", "zed"] {
        jira.add_user(&format!("{u}@example.com"));
    }
    jira.add_member("People", "pre@example.com");
    jira.add_member("People", "zed@example.com");
    let store = format!(
        "kind = \"jira\"\nsite_url = \"{}\"\nemail = \"{EMAIL}\"\napi_token_file = \"jira.token\"\nstages = [\"production\"]",
        jira.site_url()
    );
    let env = setup(&store, &PEOPLE, &[("jira.token", TOKEN)]);
    (jira, env)
}

fn emails(ids: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = ids.iter().map(|i| format!("{i}@example.com")).collect();
    out.sort();
    out
}

/// After a restart the store holds everyone, the journal is empty, and when the IdP drops all
/// but u1, exactly idpsync's own memberships leave: pre and zed stay.
fn converges(jira: &FakeJira, env: &Env) {
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        jira.members_of("People"),
        emails(&["u1", "u2", "u3", "u4", "pre", "zed"])
    );
    assert_eq!(journal_depth(env), (0, 0));
    write_people(env, &["u1"]);
    let (code, doc) = env.reconcile(&["--allow-removals", "10"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        jira.members_of("People"),
        emails(&["u1", "pre", "zed"]),
        "every add idpsync sent is its own, even one whose answer a crash lost"
    );
    assert_eq!(journal_depth(env), (0, 0));
}

fn kill_at(point: &str, hit: u32) -> (FakeJira, Env) {
    let (jira, env) = site();
    let mut run = Armed::spawn(&env, &["reconcile"], &format!("{point}=halt@{hit}"));
    assert!(run.reached(point), "{point} was never reached");
    run.kill();
    (jira, env)
}

#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test)"
)]
fn killed_after_the_journal_write_the_next_run_sends_it() {
    // The first drain of a run finishes what earlier runs left; the second sends this run's.
    let (jira, env) = kill_at("store::before_drain", 2);
    assert!(
        jira.members_of("People") == emails(&["pre", "zed"]),
        "nothing sent yet"
    );
    assert_eq!(
        journal_depth(&env).0,
        5,
        "u1…u4 and pre wait in the journal"
    );
    converges(&jira, &env);
}

#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test)"
)]
fn killed_with_an_entry_marked_sending_it_is_sent_once() {
    let (jira, env) = kill_at("store::before_push", 1);
    assert_eq!(jira.counts().add_user, 0);
    converges(&jira, &env);
}

#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test)"
)]
fn killed_after_a_push_before_its_done_mark_it_stays_ours() {
    let (jira, env) = kill_at("store::after_push", 1);
    assert_eq!(
        jira.counts().add_user,
        1,
        "one add reached Jira, unrecorded"
    );
    converges(&jira, &env);
}

#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test)"
)]
fn killed_between_the_changes_of_a_batch_the_rest_follows() {
    let (jira, env) = kill_at("store::mid_batch", 2);
    assert_eq!(
        jira.members_of("People").len(),
        4,
        "two of four sent and settled"
    );
    assert_eq!(journal_depth(&env).0, 2);
    converges(&jira, &env);
}

/// Kills a run at a random push several times over, each time restarting, then checks the
/// store converged. The seed is printed; `IDPSYNC_STORE_SMOKE_SEED=<seed>` replays it.
#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test)"
)]
fn random_kills_while_sending_lose_and_double_nothing() {
    let seed = std::env::var("IDPSYNC_STORE_SMOKE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("store kill smoke test: seed {seed} (IDPSYNC_STORE_SMOKE_SEED={seed} replays it)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let (jira, env) = site();
    let points = [
        "store::before_push",
        "store::after_push",
        "store::mid_batch",
    ];
    for _ in 0..6 {
        let point = points[rng.usize(..points.len())];
        let hit = rng.u32(1..=4);
        let mut run = Armed::spawn(&env, &["reconcile"], &format!("{point}=halt@{hit}"));
        if run.reached(point) {
            run.kill();
        } else {
            let out = run.finish();
            assert_eq!(out.code, 0, "seed {seed}: {out:?}");
        }
    }
    converges(&jira, &env);
    let sent = jira.counts().add_user;
    assert!(
        sent <= 4 + 6,
        "seed {seed}: at most one repeated add per kill, {sent} sent"
    );
}

/// SCIM in batches of 100: killed after the second PATCH went out, before its done mark; the
/// restart sends only what was not done and every member sent stays removable as ours.
#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test)"
)]
fn scim_killed_after_a_batch_went_out_converges() {
    use fakes::scim::{FakeScim, read};
    let scim = FakeScim::start(TOKEN);
    scim.add_group("People");
    let ids = crate::stores::many(250);
    let names: Vec<String> = ids.iter().map(|i| format!("{i}@example.com")).collect();
    scim.add_users(&names);
    let store = format!(
        "kind = \"scim\"\nurl = \"{}\"\ntoken_file = \"scim.token\"\nstages = [\"production\"]",
        scim.url()
    );
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let env = setup(&store, &refs, &[("scim.token", TOKEN)]);
    let mut run = Armed::spawn(&env, &["reconcile"], "store::after_push=halt@2");
    assert!(run.reached("store::after_push"));
    run.kill();
    assert_eq!(scim.members_of("People").len(), 200);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(scim.members_of("People").len(), 250);
    assert_eq!(
        read(&scim.counts().patches),
        4,
        "the unrecorded batch once more, then the last"
    );
    write_people(&env, &[]);
    let (code, doc) = env.reconcile(&["--allow-removals", "500", "--allow-empty"]);
    assert_eq!(code, 0, "{doc:#}");
    assert!(scim.members_of("People").is_empty(), "all 250 were ours");
}

/// A remove sent whose answer the kill lost, then the user is back in the IdP group: the store
/// must get the user back, though the journal last recorded the membership as idpsync's.
#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test)"
)]
fn killed_after_a_remove_went_out_a_later_add_is_sent() {
    let (jira, env) = site();
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    write_people(&env, &["u1", "u2", "u3", "pre"]);
    let mut run = Armed::spawn(&env, &["reconcile"], "store::after_push=halt@1");
    assert!(run.reached("store::after_push"));
    run.kill();
    assert!(
        !jira
            .members_of("People")
            .contains(&"u4@example.com".to_owned()),
        "the remove went out"
    );
    write_people(&env, &PEOPLE);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        jira.members_of("People"),
        emails(&["u1", "u2", "u3", "u4", "pre", "zed"])
    );
    assert_eq!(journal_depth(&env), (0, 0));
}
