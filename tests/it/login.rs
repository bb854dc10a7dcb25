//! `POST /v1/login` through the running service, with tokens signed by the fake OpenID provider:
//! a login fixes the user's memberships at once (adds only for a batch-read IdP; adds and
//! removes for a login-only IdP), an older token changes nothing, and every bad request is
//! refused with its status and error body while the store stays as it was.

use std::net::SocketAddr;

use chrono::Utc;
use fakes::oidc::{FakeOidc, SigningKey, forge};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::common::{CONFIG, Env};
use crate::service::{Http, eventually, group_lines, http_get, http_send, start, stop};

/// The caller token of every configuration here.
pub(crate) const HOOK: &str = "hook-token-51d0c3";

pub(crate) fn key() -> SigningKey {
    let path = format!(
        "{}/tests/fixtures/keys/entra-app.key",
        env!("CARGO_MANIFEST_DIR")
    );
    SigningKey {
        kid: "k1".to_owned(),
        alg: Algorithm::RS256,
        pem: std::fs::read_to_string(path).unwrap(),
    }
}

/// [`CONFIG`] served on a free port, `corp` (file, batch-read) also signing users in through
/// `issuer` with audience `corp-app` and `auto_create = false`, and the login-only IdP `okta`
/// (same issuer, audience `okta-app`, groups in `GroupsClaim` joined by `;`) mapped onto qa's
/// Testers.
pub(crate) fn env(issuer: &str) -> Env {
    let env = Env::new();
    let daemon = "listen = \"127.0.0.1:0\"\nschedule = \"0 0 0 1 1 *\"\nwebhook_token_file = \"hook.token\"\n";
    let config = CONFIG.replacen("[daemon]\n", &format!("[daemon]\n{daemon}"), 1);
    let config = config.replacen(
        "path = \"corp.json\"\n",
        &format!(
            "path = \"corp.json\"\n\n[idp.oidc]\nissuer = \"{issuer}\"\nclient_id = \"corp-app\"\nauto_create = false\n"
        ),
        1,
    );
    let okta = format!(
        r#"
[[idp]]
name = "okta"
kind = "oidc"

[idp.oidc]
issuer = "{issuer}"
client_id = "okta-app"
groups_claim = "GroupsClaim"
claim_delimiter = ";"

[[mapping]]
idp = "okta"
idp_group = "Okta Testers"
group = "Testers"
stage = "qa"
"#
    );
    env.write_config(&format!("{config}{okta}"));
    std::fs::write(env.path("hook.token"), format!("{HOOK}\n")).unwrap();
    env
}

/// Claims of a token for `audience`, issued `age` seconds ago.
pub(crate) fn claims(fake: &FakeOidc, audience: &str, email: &str, age: i64) -> Value {
    let now = Utc::now().timestamp();
    json!({"iss": fake.issuer(), "aud": audience, "sub": format!("sub-{email}"),
           "iat": now - age, "exp": now + 3600, "email": email})
}

fn login(addr: SocketAddr, caller: Option<&str>, body: &[u8]) -> Http {
    http_send(addr, "POST", "/v1/login", caller, Some(body))
}

pub(crate) fn login_token(addr: SocketAddr, token: &str) -> Http {
    login(
        addr,
        Some(HOOK),
        json!({"id_token": token}).to_string().as_bytes(),
    )
}

/// Waits for `/readyz`: every verifier's keys loaded.
pub(crate) fn keys_loaded(addr: SocketAddr) {
    eventually("/readyz", || {
        let answer = http_get(addr, "/readyz", None);
        (answer.status == 200).then_some(()).ok_or(answer.body)
    });
}

/// Waits for `/readyz` (the verifiers' keys loaded) and the run at start.
fn ready(env: &Env, addr: SocketAddr) {
    keys_loaded(addr);
    eventually("the run at start", || {
        let out = env.run(&["users", "show", "ana@example.com", "--output", "json"]);
        (out.code == 0 && out.stdout.contains("Marketing"))
            .then_some(())
            .ok_or(out.stdout)
    });
}

/// `users show` of `key` as `stage/name provenance` lines.
pub(crate) fn groups_of(env: &Env, key: &str) -> Vec<String> {
    let out = env.run(&["users", "show", key, "--output", "json"]);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap_or(json!({"groups": []}));
    group_lines(&doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_fixes_memberships_at_once_adds_only_for_a_batch_idp() {
    let fake = FakeOidc::start(vec![key()]);
    let env = env(&fake.issuer());
    let service = start(&env).await;
    let addr = service.addr();
    ready(&env, addr);
    // cid is in engineering only; her Entra-style token lists the marketing group by id, which
    // the mapping names ("Marketing Team"): the last applied read says they are one group. It
    // does not list engineering, but removals belong to the batch reads.
    let mut entra = claims(&fake, "corp-app", "cid@example.com", 0);
    entra["groups"] = json!(["g-mkt"]);
    let token = fake.sign(&entra);
    let answer = login_token(addr, &token);
    assert_eq!(answer.status, 200, "{answer:?}");
    let reply = answer.json();
    assert_eq!(reply["user"], "cid@example.com");
    assert_eq!(reply["changes"], json!({"adds": 1, "removes": 0}));
    assert_eq!(
        reply["groups"],
        json!([{"name": "Marketing", "stage": "production"}, {"name": "Testers", "stage": "qa"}])
    );
    assert_eq!(
        reply["roles"],
        json!({"production": {"Dash": ["Viewer"]}, "qa": {"Dash": ["Editor"]}})
    );
    assert_eq!(
        groups_of(&env, "cid@example.com"),
        ["production/Marketing idp:corp", "qa/Testers idp:corp"]
    );
    let audit = env.run(&["audit", "--user", "cid@example.com", "--output", "json"]);
    assert!(audit.stdout.contains("\"login\""), "{}", audit.stdout);
    // The same login again changes nothing.
    let again = login_token(addr, &token);
    assert_eq!(again.json()["changes"], json!({"adds": 0, "removes": 0}));
    stop(service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_only_idp_follows_the_claim_and_an_older_token_changes_nothing() {
    let fake = FakeOidc::start(vec![key()]);
    let env = env(&fake.issuer());
    let service = start(&env).await;
    let addr = service.addr();
    ready(&env, addr);
    let token = |groups: &str, age: i64| {
        let mut c = claims(&fake, "okta-app", "dee@example.com", age);
        c["GroupsClaim"] = json!(groups);
        fake.sign(&c)
    };
    let older = token("Okta Testers;Everyone", 30);
    let first = login_token(addr, &token("Okta Testers;Everyone", 20));
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json()["changes"], json!({"adds": 1, "removes": 0}));
    assert_eq!(groups_of(&env, "dee@example.com"), ["qa/Testers idp:okta"]);
    // A newer token without the group removes it: a login-only IdP's logins own removals.
    let newer = login_token(addr, &token("Everyone", 10));
    assert_eq!(newer.json()["changes"], json!({"adds": 0, "removes": 1}));
    assert!(groups_of(&env, "dee@example.com").is_empty());
    // A replay of an older token changes nothing.
    let before = env.state();
    let replay = login_token(addr, &older);
    assert_eq!(replay.status, 200, "{replay:?}");
    assert_eq!(replay.json()["changes"], json!({"adds": 0, "removes": 0}));
    assert_eq!(
        env.state().table("memberships"),
        before.table("memberships")
    );
    stop(service).await;
}

/// Logins keep the groups their mappings reach between them; a group another process creates
/// (or renames) in between is reached by the very next login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_created_by_the_cli_between_two_logins_is_reached_by_the_next() {
    let fake = FakeOidc::start(vec![key()]);
    let env = env(&fake.issuer());
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&format!(
        "{config}\n[[mapping]]\nidp = \"okta\"\nidp_group = \"Okta Auditors\"\ngroup = \"Auditors\"\nstage = \"qa\"\n"
    ));
    let service = start(&env).await;
    let addr = service.addr();
    ready(&env, addr);
    let token = |age: i64| {
        let mut c = claims(&fake, "okta-app", "eve@example.com", age);
        c["GroupsClaim"] = json!("Okta Auditors");
        fake.sign(&c)
    };
    let first = login_token(addr, &token(20));
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json()["changes"], json!({"adds": 0, "removes": 0}));
    let created = env.run(&["groups", "create", "Auditors", "--stage", "qa"]);
    assert_eq!(created.code, 0, "{created:?}");
    let second = login_token(addr, &token(10));
    assert_eq!(second.json()["changes"], json!({"adds": 1, "removes": 0}));
    assert_eq!(
        second.json()["groups"],
        json!([{"name": "Auditors", "stage": "qa"}])
    );
    let renamed = env.run(&[
        "groups",
        "update",
        "Auditors",
        "--stage",
        "qa",
        "--rename",
        "Inspectors",
    ]);
    assert_eq!(renamed.code, 0, "{renamed:?}");
    let third = login_token(addr, &token(0));
    assert_eq!(
        third.json()["groups"],
        json!([{"name": "Inspectors", "stage": "qa"}]),
        "the mapping follows the renamed group, and the reply names it as it is now"
    );
    assert_eq!(
        groups_of(&env, "eve@example.com"),
        ["qa/Inspectors idp:okta"]
    );
    // A role granted meanwhile is in the next reply: what a connection keeps of the groups it
    // answered with goes when they change, roles included.
    let granted = env.run(&[
        "groups",
        "roles",
        "Inspectors",
        "--stage",
        "qa",
        "--add",
        "Dash/Viewer",
    ]);
    assert_eq!(granted.code, 0, "{granted:?}");
    for age in [-5, -10] {
        let again = login_token(addr, &token(age));
        assert_eq!(again.status, 200, "{again:?}");
        assert_eq!(
            again.json()["roles"],
            json!({"qa": {"Dash": ["Viewer"]}}),
            "{again:?}"
        );
    }
    stop(service).await;
}

/// A reload that changes an `[idp.oidc]` takes effect without a restart: the new provider's
/// keys load, its tokens are taken, and the old provider's are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_moves_logins_to_a_changed_provider_without_a_restart() {
    let old = FakeOidc::start(vec![key()]);
    let new = FakeOidc::start(vec![key()]);
    let env = env(&old.issuer());
    let service = start(&env).await;
    let addr = service.addr();
    ready(&env, addr);
    let token = |fake: &FakeOidc, email: &str| {
        let mut c = claims(fake, "okta-app", email, 0);
        c["GroupsClaim"] = json!("Okta Testers");
        fake.sign(&c)
    };
    assert_eq!(
        login_token(addr, &token(&old, "fay@example.com")).status,
        200
    );
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&config.replace(&old.issuer(), &new.issuer()));
    service
        .reload()
        .expect("the changed configuration is taken");
    keys_loaded(addr);
    let taken = login_token(addr, &token(&new, "gus@example.com"));
    assert_eq!(taken.status, 200, "{taken:?}");
    assert_eq!(taken.json()["changes"], json!({"adds": 1, "removes": 0}));
    let refused = login_token(addr, &token(&old, "hal@example.com"));
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(groups_of(&env, "hal@example.com").is_empty());
    // A reload that changes nothing of the providers keeps them (no new discovery).
    let discoveries = new
        .state()
        .discoveries
        .load(std::sync::atomic::Ordering::Relaxed);
    service.reload().expect("the same configuration");
    assert_eq!(
        login_token(addr, &token(&new, "ivy@example.com")).status,
        200
    );
    assert_eq!(
        new.state()
            .discoveries
            .load(std::sync::atomic::Ordering::Relaxed),
        discoveries
    );
    stop(service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_is_refused_with_its_code_and_changes_nothing() {
    let fake = FakeOidc::start(vec![key()]);
    let env = env(&fake.issuer());
    let service = start(&env).await;
    let addr = service.addr();
    ready(&env, addr);
    let good = |email: &str| {
        let mut c = claims(&fake, "okta-app", email, 0);
        c["GroupsClaim"] = json!("Okta Testers");
        c
    };
    let edited = |edit: Value| {
        let mut c = good("eve@example.com");
        for (k, v) in edit.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        json!({"id_token": fake.sign(&c)}).to_string()
    };
    let now = Utc::now().timestamp();
    let body = |token: &str| json!({"id_token": token}).to_string();
    let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
        (
            "no caller token",
            None,
            edited(json!({})),
            401,
            "invalid_token",
        ),
        (
            "a wrong caller token",
            Some("nope"),
            edited(json!({})),
            401,
            "invalid_token",
        ),
        (
            "not JSON",
            Some(HOOK),
            "id_token=x".into(),
            400,
            "bad_request",
        ),
        (
            "no id_token",
            Some(HOOK),
            "{\"token\": \"x\"}".into(),
            400,
            "bad_request",
        ),
        ("garbage", Some(HOOK), body("garbage"), 401, "invalid_token"),
        (
            "expired",
            Some(HOOK),
            edited(json!({"exp": now - 120})),
            401,
            "invalid_token",
        ),
        (
            "not yet valid",
            Some(HOOK),
            edited(json!({"nbf": now + 600})),
            401,
            "invalid_token",
        ),
        (
            "too old",
            Some(HOOK),
            edited(json!({"iat": now - 3000})),
            401,
            "invalid_token",
        ),
        (
            "another audience",
            Some(HOOK),
            edited(json!({"aud": "other"})),
            401,
            "invalid_token",
        ),
        (
            "another issuer",
            Some(HOOK),
            edited(json!({"iss": "http://127.0.0.1:1"})),
            401,
            "invalid_token",
        ),
        (
            "an unverified e-mail",
            Some(HOOK),
            edited(json!({"email_verified": false})),
            401,
            "invalid_token",
        ),
        (
            "no groups claim",
            Some(HOOK),
            edited(json!({"GroupsClaim": null})),
            422,
            "groups_claim_missing",
        ),
        (
            "alg none",
            Some(HOOK),
            body(&forge(
                &json!({"alg": "none"}),
                &good("eve@example.com"),
                b"",
            )),
            401,
            "invalid_token",
        ),
        (
            "oversized",
            Some(HOOK),
            format!("{{\"id_token\": \"{}\"}}", "x".repeat(70_000)),
            413,
            "payload_too_large",
        ),
    ];
    let before = env.state();
    for (what, caller, body, status, code) in &cases {
        let answer = login(addr, *caller, body.as_bytes());
        assert_eq!(answer.status, *status, "{what}: {answer:?}");
        let doc = answer.json();
        assert_eq!(doc["error"], *code, "{what}: {doc}");
        assert!(
            doc["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {doc}"
        );
        if let Some(token) = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|b| b["id_token"].as_str().map(str::to_owned))
        {
            assert!(!answer.body.contains(&token), "{what}: the token is echoed");
        }
    }
    // An unknown user of an IdP with auto_create = false.
    let mut stranger = claims(&fake, "corp-app", "zed@example.com", 0);
    stranger["groups"] = json!(["g-mkt"]);
    let answer = login_token(addr, &fake.sign(&stranger));
    assert_eq!(
        (answer.status, answer.json()["error"].clone()),
        (403, json!("user_not_allowed"))
    );
    assert_eq!(
        env.state().tables,
        before.tables,
        "a refused request changes nothing"
    );
    stop(service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_over_its_limit_waits_and_two_racing_logins_end_in_the_newer() {
    let fake = FakeOidc::start(vec![key()]);
    let env = env(&fake.issuer());
    let service = start(&env).await;
    let addr = service.addr();
    ready(&env, addr);
    // Two logins of one user at once: whichever commits last, the newer token's state stays.
    for round in 0..8 {
        let user = format!("race{round}@example.com");
        let token = |groups: &str, age: i64| {
            let mut c = claims(&fake, "okta-app", &user, age);
            c["GroupsClaim"] = json!(groups);
            fake.sign(&c)
        };
        let (older, newer) = (token("Okta Testers", 20), token("Everyone", 10));
        let racers: Vec<_> = [older, newer]
            .into_iter()
            .map(|t| std::thread::spawn(move || login_token(addr, &t).status))
            .collect();
        for racer in racers {
            assert_eq!(racer.join().unwrap(), 200);
        }
        assert!(
            groups_of(&env, &user).is_empty(),
            "{user} ends as the newer token says"
        );
    }
    let token = {
        let mut c = claims(&fake, "okta-app", "fay@example.com", 0);
        c["GroupsClaim"] = json!("Okta Testers");
        fake.sign(&c)
    };
    for n in 0..idpsync::service::LOGINS_PER_MINUTE {
        assert_eq!(login_token(addr, &token).status, 200, "login {n}");
    }
    let limited = login_token(addr, &token);
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(limited.json()["error"], "rate_limited");
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let metrics = http_get(addr, "/metrics", None).body;
    assert!(
        metrics.contains("idpsync_logins_total{outcome=\"rate_limited\"} 1"),
        "{metrics}"
    );
    stop(service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_the_provider_and_logins_meanwhile_are_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let env = env(&issuer);
    let service = start(&env).await;
    let addr = service.addr();
    let answer = http_get(addr, "/readyz", None);
    assert_eq!(answer.status, 503, "{answer:?}");
    let now = Utc::now().timestamp();
    let unsigned = forge(
        &json!({"alg": "RS256", "kid": "k1"}),
        &json!({"iss": issuer, "aud": "okta-app", "sub": "s", "iat": now, "exp": now + 60,
                "email": "gus@example.com", "GroupsClaim": "Okta Testers"}),
        b"sig",
    );
    let answer = login_token(addr, &unsigned);
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.header("retry-after").is_some());
    stop(service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_beside_batch_runs_neither_deadlock_nor_lose_a_change() {
    let fake = FakeOidc::start(vec![key()]);
    let env = env(&fake.issuer());
    let service = start(&env).await;
    let addr = service.addr();
    ready(&env, addr);
    // Batch runs of `corp` from the CLI, one after another, while logins of `okta` arrive.
    let runs = {
        let command = env.command();
        let program = command.get_program().to_owned();
        let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
        let dir = env.dir.path().to_owned();
        std::thread::spawn(move || {
            (0..5)
                .map(|_| {
                    std::process::Command::new(&program)
                        .args(&args)
                        .args(["-q", "reconcile", "--full"])
                        .current_dir(&dir)
                        .env_clear()
                        .status()
                        .unwrap()
                        .code()
                })
                .collect::<Vec<_>>()
        })
    };
    let users: Vec<String> = (0..40).map(|i| format!("side{i}@example.com")).collect();
    for user in &users {
        let mut c = claims(&fake, "okta-app", user, 0);
        c["GroupsClaim"] = json!("Okta Testers");
        let answer = login_token(addr, &fake.sign(&c));
        assert_eq!(answer.status, 200, "{user}: {answer:?}");
    }
    assert!(
        runs.join().unwrap().iter().all(|c| *c == Some(0)),
        "every run succeeded"
    );
    for user in &users {
        assert_eq!(groups_of(&env, user), ["qa/Testers idp:okta"], "{user}");
    }
    stop(service).await;
}

#[test]
fn a_login_only_idp_is_never_read_in_batch() {
    let env = env("http://127.0.0.1:9");
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc}");
    assert!(doc["failed_idps"].as_array().unwrap().is_empty(), "{doc}");
    let named = env.run(&["reconcile", "--idp", "okta"]);
    assert_eq!(named.code, 2, "{named:?}");
    assert!(named.stderr.contains("login-only"), "{}", named.stderr);
}
