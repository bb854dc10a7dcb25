//! The `azure_ad` IdP against the fake Microsoft Graph of the `fakes` crate: paging, member
//! types, nesting, keys, credentials, throttling, `$batch`, every way a read fails, `check
//! --connect`, `export`, a proxy, and secrets kept out of every output.

use fakes::graph::{FakeGraph, Member, Switches, Tenant, read};
use serde_json::json;

use crate::cloud::{FAST_RETRIES, fails_alone, members, setup, write};
use crate::common::{Env, changes};

const SECRET: &str = "s3cret-value-never-logged";

/// ana and ben (nested) in Engineering, whose nesting cycles; cid disabled; dan without mail;
/// eve a limited-information member; fay in Ops; two groups named Dup; and a device, a contact
/// and a service principal among the members.
fn tenant() -> Tenant {
    let mut t = Tenant::new("contoso", "app-1", SECRET);
    t.user("u-ana", Some("ana@example.com"), true)
        .user("u-ben", Some("Ben@Example.com"), true)
        .user("u-cid", Some("cid@example.com"), false)
        .user("u-dan", None, true)
        .user("u-eve", Some("eve@example.com"), true)
        .user("u-fay", Some("fay@example.com"), true);
    t.users.get_mut("u-eve").unwrap().limited = true;
    let user = |id: &str| Member::User(id.to_owned());
    t.group(
        "g-eng",
        "Engineering",
        vec![
            user("u-ana"),
            Member::Other("#microsoft.graph.device", "d-1".into()),
            Member::Other("#microsoft.graph.orgContact", "c-1".into()),
            Member::Other("#microsoft.graph.servicePrincipal", "sp-1".into()),
            Member::Group("g-sub".into()),
        ],
    )
    .group(
        "g-sub",
        "Engineering Sub",
        vec![user("u-ben"), user("u-cid"), Member::Group("g-eng".into())],
    )
    .group(
        "g-ops",
        "Ops",
        vec![user("u-dan"), user("u-eve"), user("u-fay")],
    )
    .group("g-dup1", "Dup", vec![user("u-ana")])
    .group("g-dup2", "Dup", vec![user("u-fay")]);
    t
}

/// The `cloud` IdP at `url` with `extra` keys, and its groups and mappings: Engineering by
/// name, Ops by id, Dup (ambiguous).
fn idp(url: &str, extra: &str) -> String {
    format!(
        r#"[[idp]]
name = "cloud"
kind = "azure_ad"
tenant_id = "contoso"
client_id = "app-1"
client_secret_file = "entra.secret"
authority_url = "{url}"
graph_url = "{url}"
nested = true
{FAST_RETRIES}{extra}

[[group]]
name = "Eng"
stage = "production"

[[group]]
name = "Ops"
stage = "production"

[[group]]
name = "Dup"
stage = "production"

[[mapping]]
idp = "cloud"
idp_group = "Engineering"
group = "Eng"
stage = "production"

[[mapping]]
idp = "cloud"
idp_group = "g-ops"
group = "Ops"
stage = "production"

[[mapping]]
idp = "cloud"
idp_group = "Dup"
group = "Dup"
stage = "production"
"#
    )
}

fn start(switches: Switches, extra: &str, people: &[&str]) -> (FakeGraph, Env) {
    let fake = FakeGraph::start(tenant(), switches);
    let env = setup(&idp(&fake.url(), extra), people);
    std::fs::write(env.path("entra.secret"), format!("{SECRET}\n")).unwrap();
    (fake, env)
}

const EXPECTED: [&str; 3] = [
    "production/Eng ana@example.com cloud Engineering",
    "production/Eng ben@example.com cloud Engineering",
    "production/Ops fay@example.com cloud g-ops",
];

#[test]
fn graph_reconcile_pages_through_mixed_members_and_nesting() {
    let switches = Switches {
        page_size: 2,
        empty_first_pages: true,
        ..Switches::default()
    };
    let (fake, env) = start(switches, "", &[]);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(changes(&doc["adds"]), EXPECTED, "{doc:#}");
    // dan has no mail and eve's came back null: two users without a key.
    assert_eq!(doc["summary"]["skipped_users"], 2, "{doc:#}");
    assert_eq!(
        doc["inactive_mappings"],
        json!([{"idp": "cloud", "idp_group": "Dup", "group": "Dup", "stage": "production", "reason": "idp_group_ambiguous"}])
    );
    // Requests: one token, three pages of five groups, and per group an empty first page plus
    // ceil(transitive members / 2): Engineering lists ana, 3 others, Sub, ben, cid (7 → 4 pages),
    // Sub lists ben, cid, Engineering, ana, 3 others (7 → 4), Ops 3 → 2, each Dup 1 → 1.
    let c = fake.counts();
    assert_eq!(read(&c.tokens), 1);
    assert_eq!(read(&c.group_pages), 3);
    assert_eq!(read(&c.member_pages), 5 + 4 + 4 + 2 + 1 + 1);
    assert_eq!(read(&c.requests), 1 + 3 + 17);
    assert_eq!(members(&env, "Eng", "production", &["idp:cloud"]).len(), 2);

    // The second run finds nothing to do.
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["adds"], json!([]));
    assert_eq!(doc["removes"], json!([]));
}

#[test]
fn graph_upn_key_and_direct_members_only_without_nesting() {
    let (_fake, env) = start(Switches::default(), "user_key = \"upn\"", &[]);
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&config.replace("nested = true", "nested = false"));
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{doc:#}");
    // Not nested: Engineering's direct user is ana alone; keys are UPNs, so dan counts too.
    assert_eq!(
        changes(&doc["adds"]),
        [
            "production/Eng u-ana@tenant.test cloud Engineering",
            "production/Ops u-dan@tenant.test cloud g-ops",
            "production/Ops u-fay@tenant.test cloud g-ops",
        ],
        "{doc:#}"
    );
}

#[test]
fn graph_throttling_and_busy_answers_are_waited_out() {
    // Every third request is a 429 with Retry-After: 1, read one request at a time; then a burst
    // of 503s and 504s without Retry-After, backed off.
    let switches = Switches {
        page_size: 2,
        throttle_every: Some(3),
        ..Switches::default()
    };
    let (fake, env) = start(switches, "max_concurrency = 1", &[]);
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(changes(&doc["adds"]), EXPECTED);
    let c = fake.counts();
    assert!(read(&c.throttled) >= 5, "{} throttled", read(&c.throttled));
    assert_eq!(
        read(&c.early_retries),
        0,
        "every retry waited for its Retry-After"
    );

    fake.switch(|s| {
        s.throttle_every = None;
        s.busy_burst = 4;
        s.busy_retry_after = false;
    });
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(changes(&doc["adds"]), EXPECTED);
}

#[test]
fn graph_batch_reads_members_twenty_groups_a_post_and_retries_throttled_parts() {
    let mut t = tenant();
    for i in 0..45 {
        t.group(
            &format!("g-extra{i}"),
            &format!("Extra {i}"),
            vec![Member::User("u-ana".into())],
        );
    }
    let fake = FakeGraph::start(
        t,
        Switches {
            page_size: 2,
            batch_throttle_every: Some(7),
            ..Switches::default()
        },
    );
    let env = setup(&idp(&fake.url(), "batch = true"), &[]);
    std::fs::write(env.path("entra.secret"), SECRET).unwrap();
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(changes(&doc["adds"]), EXPECTED);
    let c = fake.counts();
    // 50 groups: three batches, plus the batches resending throttled parts.
    let batches = read(&c.batches);
    assert!(
        batches > 3,
        "{batches} batches: throttled parts were sent again"
    );
    assert!(read(&c.throttled) > 0);
    // Every group's first page in a batch; Engineering's and Sub's further pages and Ops' second
    // by plain GET: 50 + 3 + 3 + 1 pages.
    assert_eq!(read(&c.member_pages), 50 + 3 + 3 + 1);
}

#[test]
fn graph_advanced_filter_sends_consistency_level_on_every_page() {
    let switches = Switches {
        page_size: 1,
        ..Switches::default()
    };
    let (fake, env) = start(
        switches,
        "group_filter = \"endswith(displayName,'ps')\"",
        &[],
    );
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        changes(&doc["adds"]),
        ["production/Ops fay@example.com cloud g-ops"]
    );
    assert_eq!(read(&fake.counts().group_pages), 1);
    // Without the advanced query flag Graph refuses the filter: the read fails, named.
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&config.replace("group_filter", "advanced_query = false\ngroup_filter"));
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 1, "{doc:#}");
    let error = doc["failed_idps"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("400 Bad Request: Request_UnsupportedQuery"),
        "{error}"
    );
}

#[test]
fn graph_every_incomplete_read_fails_that_idp_alone() {
    let (fake, env) = start(
        Switches {
            page_size: 2,
            ..Switches::default()
        },
        "max_retries = 3",
        &["ana"],
    );
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    let mut people = vec!["ana"];

    // A page still failing after its retries.
    fake.switch(|s| s.busy_burst = 100);
    fails_alone(
        &env,
        &mut people,
        "p1",
        &["503 Service Unavailable", "after 3 retries"],
        "unavailable",
    );
    fake.switch(|s| s.busy_burst = 0);
    // A nextLink answering 404.
    fake.switch(|s| s.expire_skiptokens = true);
    fails_alone(
        &env,
        &mut people,
        "p2",
        &["skiptoken", "404 Not Found"],
        "unavailable",
    );
    fake.switch(|s| s.expire_skiptokens = false);
    // Malformed JSON.
    fake.switch(|s| s.malformed_members = true);
    fails_alone(
        &env,
        &mut people,
        "p3",
        &["not the JSON expected"],
        "invalid",
    );
    fake.switch(|s| s.malformed_members = false);
    // A page cut short mid-body, every time.
    fake.switch(|s| s.cut_pages = 1000);
    fails_alone(
        &env,
        &mut people,
        "p4",
        &["connection error", "after 3 retries"],
        "unavailable",
    );
    fake.switch(|s| s.cut_pages = 0);
    // A token that cannot be refreshed: every bearer refused, one new token tried, then the read fails.
    let tokens = read(&fake.counts().tokens);
    fake.switch(|s| s.refuse_tokens = true);
    fails_alone(
        &env,
        &mut people,
        "p5",
        &["401 Unauthorized", "InvalidAuthenticationToken"],
        "unauthorized",
    );
    assert_eq!(
        read(&fake.counts().tokens),
        tokens + 2,
        "one token, one refresh"
    );
    fake.switch(|s| s.refuse_tokens = false);
    // A wrong secret at the token endpoint.
    std::fs::write(env.path("entra.secret"), "wrong").unwrap();
    fails_alone(
        &env,
        &mut people,
        "p6",
        &["token request was refused", "AADSTS7000215"],
        "unauthorized",
    );
    std::fs::write(env.path("entra.secret"), SECRET).unwrap();

    // Once the fake behaves, one cut page is retried and the read completes.
    fake.switch(|s| s.cut_pages = 1);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["failed_idps"], json!([]));
}

#[test]
fn graph_token_is_cached_refreshed_once_on_401_and_a_certificate_works() {
    // Tokens forgotten server-side mid-read: one 401, one new token, the read completes.
    let switches = Switches {
        page_size: 2,
        forget_tokens_after: Some(6),
        ..Switches::default()
    };
    let (fake, env) = start(switches, "max_concurrency = 1", &[]);
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(changes(&doc["adds"]), EXPECTED);
    assert_eq!(read(&fake.counts().tokens), 2);
    assert_eq!(read(&fake.counts().unauthorized), 1);

    // A certificate credential: a client assertion naming the certificate by x5t#S256.
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    let mut t = tenant();
    t.certificate = Some((
        thumbprint(&keys.join("entra-app.crt")),
        std::fs::read_to_string(keys.join("entra-app.pub")).unwrap(),
    ));
    let fake = FakeGraph::start(t, Switches::default());
    let cert = format!(
        "certificate_file = \"{}\"\nprivate_key_file = \"{}\"",
        keys.join("entra-app.crt").display(),
        keys.join("entra-app.key").display()
    );
    let block = idp(&fake.url(), &cert).replace("client_secret_file = \"entra.secret\"\n", "");
    write(&env, &block);
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(changes(&doc["adds"]), EXPECTED);
    // Another key for the same certificate is refused.
    let other = block.replace("entra-app.key", "okta-rsa.key");
    write(&env, &other);
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 1, "{doc:#}");
    assert!(
        doc["failed_idps"][0]["error"]
            .as_str()
            .unwrap()
            .contains("invalid_client")
    );
}

/// base64url of the SHA-256 of a PEM certificate's DER.
fn thumbprint(path: &std::path::Path) -> String {
    use base64::Engine;
    let pem = std::fs::read_to_string(path).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[test]
fn graph_check_connect_counts_groups_and_never_prints_a_secret() {
    let (fake, env) = start(Switches::default(), "", &[]);
    let out = env.run_with(&["check", "--connect"], &[("IDPSYNC_LOG", "trace")]);
    out.expect(0);
    let url = fake.url();
    assert!(
        out.stdout.contains(&format!("  idp cloud: azure_ad tenant contoso at {url}: token from {url}/contoso/oauth2/v2.0/token; 5 groups")),
        "{}",
        out.stdout
    );
    assert_eq!(read(&fake.counts().member_pages), 0, "no members read");

    // A wrong secret: exit 1, naming the IdP and the endpoint.
    std::fs::write(env.path("entra.secret"), "wrong-secret-value").unwrap();
    let bad = env.run_with(&["check", "--connect"], &[("IDPSYNC_LOG", "trace")]);
    bad.expect(1);
    assert!(
        bad.stdout.contains(&format!("  idp cloud: azure_ad tenant contoso at {url}: FAILED: POST {url}/contoso/oauth2/v2.0/token: the token request was refused: 400 Bad Request: invalid_client AADSTS7000215")),
        "{}",
        bad.stdout
    );

    // A full run at trace level: neither the secret nor any token appears anywhere.
    std::fs::write(env.path("entra.secret"), SECRET).unwrap();
    let run = env.run_with(
        &["reconcile", "--output", "json"],
        &[("IDPSYNC_LOG", "trace")],
    );
    run.expect(0);
    let tokens = fake.issued_tokens();
    assert!(tokens.len() >= 2);
    for out in [&out, &bad, &run] {
        for text in [&out.stdout, &out.stderr] {
            assert!(
                !text.contains(SECRET) && !text.contains("wrong-secret-value"),
                "a secret leaked:\n{text}"
            );
            for token in &tokens {
                assert!(!text.contains(token.as_str()), "a token leaked:\n{text}");
            }
        }
    }
    assert!(
        run.stderr.contains("TRACE") || run.stderr.contains("DEBUG"),
        "trace logging was on"
    );
}

#[test]
fn graph_export_and_a_proxy() {
    let proxy = fakes::proxy::FakeProxy::start();
    let (fake, env) = start(
        Switches::default(),
        &format!("proxy = \"{}\"", proxy.url()),
        &[],
    );
    let out = env.run(&["export", "--idp", "cloud"]);
    out.expect(0);
    let export: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let groups = export["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 5);
    let eng = groups.iter().find(|g| g["id"] == "g-eng").unwrap();
    assert_eq!(eng["name"], "Engineering");
    assert_eq!(
        eng["members"],
        json!(["u-ana", "u-ben", "u-cid"]),
        "users of the transitive list"
    );
    let cid = export["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == "u-cid")
        .unwrap();
    assert_eq!(cid["enabled"], false);
    assert!(proxy.forwarded() > 0);
    assert_eq!(
        proxy.forwarded(),
        read(&fake.counts().requests),
        "every request went through the proxy"
    );
}

#[test]
fn graph_over_tls_needs_the_ca_or_tls_insecure() {
    let env = Env::empty();
    crate::slapd::make_certificates(&env.path("tls"));
    let tls = fakes::Tls {
        cert: env.path("tls/cert.pem"),
        key: env.path("tls/key.pem"),
    };
    let fake = FakeGraph::start_tls(tenant(), Switches::default(), tls);
    assert!(fake.url().starts_with("https://127.0.0.1:"));
    std::fs::write(env.path("entra.secret"), SECRET).unwrap();
    // The system roots do not know the test CA: refused, never retried into success.
    write(&env, &idp(&fake.url(), "max_retries = 0"));
    crate::cloud::write_people(&env, &[]);
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 1, "{doc:#}");
    let error = doc["failed_idps"][0]["error"].as_str().unwrap();
    assert!(error.contains("invalid peer certificate"), "{error}");
    assert_eq!(
        read(&fake.counts().requests),
        0,
        "nothing was sent over an unverified connection"
    );
    for extra in ["ca_file = \"tls/ca.pem\"", "tls_insecure = true"] {
        write(&env, &idp(&fake.url(), extra));
        let (code, doc) = env.reconcile(&["--dry-run"]);
        assert_eq!(code, 0, "{extra}: {doc:#}");
        assert_eq!(changes(&doc["adds"]), EXPECTED, "{extra}");
    }
}
