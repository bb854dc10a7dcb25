//! The `okta` IdP against the fake Okta of the `fakes` crate: both credentials, `Link` paging in
//! both header forms, statuses, keys, the rate budget, 429s waited out until the reset, every way
//! a read fails, `check --connect` and `export`.

use fakes::okta::{FakeOkta, LinkStyle, Org, Switches, read};
use serde_json::json;

use crate::cloud::{FAST_RETRIES, fails_alone, setup, write};
use crate::common::{Env, changes};

const TOKEN: &str = "00SSWS-token-never-logged";

/// ana, ben (LOCKED_OUT: still enabled), cid (SUSPENDED), dan (DEPROVISIONED), eve (no
/// email) and fay in Engineering; fay and gus in Ops.
fn org() -> Org {
    let mut o = Org::new(TOKEN);
    let ana = o.user("00u-ana", Some("ana@example.com"), "ACTIVE");
    let ben = o.user("00u-ben", Some("Ben@Example.com"), "LOCKED_OUT");
    let cid = o.user("00u-cid", Some("cid@example.com"), "SUSPENDED");
    let dan = o.user("00u-dan", Some("dan@example.com"), "DEPROVISIONED");
    let eve = o.user("00u-eve", None, "ACTIVE");
    let fay = o.user("00u-fay", Some("fay@example.com"), "PASSWORD_EXPIRED");
    let gus = o.user("00u-gus", Some("gus@example.com"), "RECOVERY");
    o.group("00g-eng", "Engineering", vec![ana, ben, cid, dan, eve, fay]);
    o.group("00g-ops", "Ops", vec![fay, gus]);
    o.group("00g-app", "App Users", vec![ana]);
    o
}

fn idp(url: &str, extra: &str) -> String {
    format!(
        r#"[[idp]]
name = "cloud"
kind = "okta"
org_url = "{url}"
{FAST_RETRIES}{extra}

[[group]]
name = "Eng"
stage = "production"

[[group]]
name = "Ops"
stage = "production"

[[mapping]]
idp = "cloud"
idp_group = "Engineering"
group = "Eng"
stage = "production"

[[mapping]]
idp = "cloud"
idp_group = "00g-ops"
group = "Ops"
stage = "production"
"#
    )
}

const SSWS: &str = "api_token_file = \"okta.token\"\n";

fn start(org: Org, switches: Switches, extra: &str, people: &[&str]) -> (FakeOkta, Env) {
    let fake = FakeOkta::start(org, switches);
    let env = setup(&idp(&fake.url(), extra), people);
    std::fs::write(env.path("okta.token"), format!("{TOKEN}\n")).unwrap();
    (fake, env)
}

const EXPECTED: [&str; 5] = [
    "production/Eng ana@example.com cloud Engineering",
    "production/Eng ben@example.com cloud Engineering",
    "production/Eng fay@example.com cloud Engineering",
    "production/Ops fay@example.com cloud 00g-ops",
    "production/Ops gus@example.com cloud 00g-ops",
];

#[test]
fn okta_reconcile_pages_by_link_in_both_forms_and_keeps_only_enabled_users() {
    for style in [LinkStyle::Joined, LinkStyle::Separate, LinkStyle::Alternate] {
        let switches = Switches {
            group_page_cap: 1,
            link_style: style,
            ..Switches::default()
        };
        let (fake, env) = start(org(), switches, &format!("{SSWS}page_size = 2"), &[]);
        let (code, doc) = env.reconcile(&[]);
        assert_eq!(code, 0, "{style:?}: {doc:#}");
        assert_eq!(changes(&doc["adds"]), EXPECTED, "{style:?}");
        assert_eq!(doc["summary"]["skipped_users"], 1, "eve has no email");
        // Three pages of one group; Engineering's six users in three pages, Ops' two in one,
        // App Users' one in one.
        let c = fake.counts();
        assert_eq!(read(&c.group_pages), 3, "{style:?}");
        assert_eq!(read(&c.user_pages), 3 + 1 + 1, "{style:?}");
        assert_eq!(read(&c.tokens), 0, "SSWS needs no token");
        let (code, doc) = env.reconcile(&[]);
        assert_eq!(code, 0, "{doc:#}");
        assert_eq!(doc["adds"], json!([]));
    }
}

#[test]
fn okta_login_key_and_group_filters() {
    let (fake, env) = start(
        org(),
        Switches::default(),
        &format!("{SSWS}user_key = \"login\"\ngroup_search = \"profile.name sw \\\"Op\\\"\""),
        &[],
    );
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{doc:#}");
    // Only Ops is listed; Engineering's mapping finds no group.
    assert_eq!(
        changes(&doc["adds"]),
        [
            "production/Ops 00u-fay@login.test cloud 00g-ops",
            "production/Ops 00u-gus@login.test cloud 00g-ops"
        ]
    );
    assert_eq!(doc["inactive_mappings"][0]["reason"], "idp_group_not_found");
    assert_eq!(read(&fake.counts().user_pages), 1);
    // An expression Okta does not understand is its 400, named.
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&config.replace(
        "group_search = \"profile.name sw \\\"Op\\\"\"",
        "group_filter = \"nonsense\"",
    ));
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 1, "{doc:#}");
    assert!(
        doc["failed_idps"][0]["error"]
            .as_str()
            .unwrap()
            .contains("400 Bad Request: E0000031")
    );
}

fn keys_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys")
}

#[test]
fn okta_service_app_signs_a_client_assertion_with_rsa_or_ec() {
    let dir = keys_dir();
    let mut o = org();
    o.keys = vec![
        (
            "rsa-1".into(),
            std::fs::read_to_string(dir.join("okta-rsa.pub")).unwrap(),
            false,
        ),
        (
            "ec-1".into(),
            std::fs::read_to_string(dir.join("okta-ec.pub")).unwrap(),
            true,
        ),
    ];
    for (file, kid) in [("okta-rsa.key", "rsa-1"), ("okta-ec.key", "ec-1")] {
        let (fake, env) = start(
            o.clone(),
            Switches::default(),
            &format!(
                "client_id = \"0oaFAKEservice\"\nprivate_key_file = \"{}\"\nkey_id = \"{kid}\"",
                dir.join(file).display()
            ),
            &[],
        );
        let (code, doc) = env.reconcile(&["--dry-run"]);
        assert_eq!(code, 0, "{file}: {doc:#}");
        assert_eq!(changes(&doc["adds"]), EXPECTED);
        assert_eq!(
            read(&fake.counts().tokens),
            1,
            "one token, cached for the whole read"
        );
        // The wrong key for that kid is refused at the token endpoint.
        let other = if kid == "rsa-1" { "ec-1" } else { "rsa-1" };
        let block = idp(
            &fake.url(),
            &format!(
                "client_id = \"0oaFAKEservice\"\nprivate_key_file = \"{}\"\nkey_id = \"{other}\"",
                dir.join(file).display()
            ),
        );
        write(&env, &block);
        let (code, doc) = env.reconcile(&["--dry-run"]);
        assert_eq!(code, 1, "{doc:#}");
        let error = doc["failed_idps"][0]["error"].as_str().unwrap();
        assert!(
            error.contains("/oauth2/v1/token") && error.contains("invalid_client"),
            "{error}"
        );
    }
}

#[test]
fn okta_takes_only_its_share_of_the_rate_limit() {
    // Windows of two seconds allowing 8 requests; with rate_limit_share = 0.5 we send at most 4
    // in any window, and no request is ever refused. 13 requests: 1 group page, 12 user pages.
    let switches = Switches {
        rate_limit: 8,
        window_secs: 2,
        ..Switches::default()
    };
    let (fake, env) = start(org(), switches, &format!("{SSWS}page_size = 1"), &[]);
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(changes(&doc["adds"]), EXPECTED);
    let c = fake.counts();
    assert_eq!(read(&c.requests), 1 + 6 + 2 + 1);
    assert_eq!(
        read(&c.throttled),
        0,
        "the budget held before the server said no"
    );
    assert!(
        read(&c.busiest_window) <= 4,
        "{} in one window",
        read(&c.busiest_window)
    );
}

#[test]
fn okta_429s_wait_until_the_reset_and_busy_answers_are_retried() {
    // Every fourth request a 429 E0000047 whose window resets within two seconds; every fifth
    // the concurrent-request form. No request arrives before the reset it was told.
    let switches = Switches {
        window_secs: 2,
        throttle_every: Some(4),
        concurrent_every: Some(5),
        ..Switches::default()
    };
    let (fake, env) = start(
        org(),
        switches,
        &format!("{SSWS}page_size = 2\nmax_concurrency = 1"),
        &[],
    );
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(changes(&doc["adds"]), EXPECTED);
    let c = fake.counts();
    assert!(read(&c.throttled) >= 2, "{}", read(&c.throttled));
    assert_eq!(
        read(&c.early_retries),
        0,
        "every retry waited for X-Rate-Limit-Reset"
    );

    fake.switch(|s| {
        s.throttle_every = None;
        s.concurrent_every = None;
        s.busy_burst = 3;
    });
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(changes(&doc["adds"]), EXPECTED);
}

#[test]
fn okta_every_incomplete_read_fails_that_idp_alone() {
    let (fake, env) = start(
        org(),
        Switches::default(),
        &format!("{SSWS}page_size = 2\nmax_retries = 2"),
        &["ana"],
    );
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    let mut people = vec!["ana"];
    fake.switch(|s| s.busy_burst = 100);
    fails_alone(
        &env,
        &mut people,
        "p1",
        &["503 Service Unavailable", "after 2 retries"],
        "unavailable",
    );
    fake.switch(|s| s.busy_burst = 0);
    fake.switch(|s| s.malformed_users = true);
    fails_alone(
        &env,
        &mut people,
        "p2",
        &["not the JSON expected"],
        "invalid",
    );
    fake.switch(|s| s.malformed_users = false);
    fake.switch(|s| s.cut_pages = 1000);
    fails_alone(
        &env,
        &mut people,
        "p3",
        &["connection error", "after 2 retries"],
        "unavailable",
    );
    fake.switch(|s| s.cut_pages = 0);
    std::fs::write(env.path("okta.token"), "wrong-token-value").unwrap();
    fails_alone(
        &env,
        &mut people,
        "p4",
        &["401 Unauthorized: E0000011"],
        "unauthorized",
    );
    std::fs::write(env.path("okta.token"), TOKEN).unwrap();
    fake.switch(|s| s.cut_pages = 1);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "one cut page is retried: {doc:#}");
}

#[test]
fn okta_check_connect_export_and_no_token_in_any_output() {
    let (fake, env) = start(org(), Switches::default(), SSWS, &[]);
    let url = fake.url();
    let out = env.run_with(&["check", "--connect"], &[("IDPSYNC_LOG", "trace")]);
    out.expect(0);
    assert!(
        out.stdout.contains(&format!(
            "  idp cloud: okta {url}: API token accepted; 3 groups"
        )),
        "{}",
        out.stdout
    );
    assert_eq!(read(&fake.counts().user_pages), 0, "no members read");
    std::fs::write(env.path("okta.token"), "wrong-token-value").unwrap();
    let bad = env.run_with(&["check", "--connect"], &[("IDPSYNC_LOG", "trace")]);
    bad.expect(1);
    assert!(
        bad.stdout.contains(&format!("  idp cloud: okta {url}: FAILED: GET {url}/api/v1/groups?limit=200: 401 Unauthorized: E0000011 Invalid token provided")),
        "{}",
        bad.stdout
    );
    std::fs::write(env.path("okta.token"), TOKEN).unwrap();
    let export = env.run_with(&["export", "--idp", "cloud"], &[("IDPSYNC_LOG", "trace")]);
    export.expect(0);
    let doc: serde_json::Value = serde_json::from_str(&export.stdout).unwrap();
    let eng = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == "00g-eng")
        .unwrap();
    assert_eq!(eng["members"].as_array().unwrap().len(), 6);
    let cid = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == "00u-cid")
        .unwrap();
    assert_eq!(cid["enabled"], false);
    for out in [&out, &bad, &export] {
        for text in [&out.stdout, &out.stderr] {
            assert!(
                !text.contains(TOKEN) && !text.contains("wrong-token-value"),
                "a token leaked:\n{text}"
            );
        }
    }
}

#[test]
fn okta_over_tls_needs_the_ca_or_tls_insecure() {
    let env = Env::empty();
    crate::slapd::make_certificates(&env.path("tls"));
    let tls = fakes::Tls {
        cert: env.path("tls/cert.pem"),
        key: env.path("tls/key.pem"),
    };
    let fake = FakeOkta::start_tls(org(), Switches::default(), tls);
    std::fs::write(env.path("okta.token"), TOKEN).unwrap();
    crate::cloud::write_people(&env, &[]);
    write(&env, &idp(&fake.url(), &format!("{SSWS}max_retries = 0")));
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 1, "{doc:#}");
    let error = doc["failed_idps"][0]["error"].as_str().unwrap();
    assert!(error.contains("invalid peer certificate"), "{error}");
    assert_eq!(read(&fake.counts().requests), 0);
    for extra in ["ca_file = \"tls/ca.pem\"", "tls_insecure = true"] {
        write(&env, &idp(&fake.url(), &format!("{SSWS}{extra}")));
        let (code, doc) = env.reconcile(&["--dry-run"]);
        assert_eq!(code, 0, "{extra}: {doc:#}");
        assert_eq!(changes(&doc["adds"]), EXPECTED, "{extra}");
    }
}

#[test]
fn okta_through_a_proxy() {
    let proxy = fakes::proxy::FakeProxy::start();
    let (fake, env) = start(
        org(),
        Switches::default(),
        &format!("{SSWS}proxy = \"{}\"", proxy.url()),
        &[],
    );
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(changes(&doc["adds"]), EXPECTED);
    assert_eq!(
        proxy.forwarded(),
        read(&fake.counts().requests),
        "every request went through the proxy"
    );
}
