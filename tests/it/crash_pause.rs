//! SPEC §1 invariants 9 and 10 where they meet: the service's run, applying a large IdP part,
//! pauses for a waiting login — the login is answered while the apply is held after its pause —
//! and is SIGKILLed there. What is left is whole statements of rows, each audited once, beside
//! the login's change; the next run applies exactly the rest.

use serde_json::{Value, json};

use crate::armed::Armed;
use crate::common::Env;
use crate::crash::{assert_consistent, per_source, running};
use crate::login::{HOOK, key};
use crate::service::{eventually, http_get, http_send};
use crate::slapd::free_port;

/// Users of `corp`'s one group: 40 statements of rows, so many remain when the login queues.
const USERS: usize = 10_240;

/// The service on a free loopback port: `corp` (file) with one group of [`USERS`] mapped onto
/// production's Everyone, and the login-only IdP `okta` of `issuer` mapped onto Testers.
fn service_env(issuer: &str) -> (Env, std::net::SocketAddr) {
    let port = free_port();
    let env = Env::empty();
    let users: Vec<Value> = (0..USERS)
        .map(|u| json!({"id": format!("u{u}"), "email": format!("user{u}@example.com")}))
        .collect();
    let members: Vec<String> = (0..USERS).map(|u| format!("u{u}")).collect();
    env.write_export(
        "corp.json",
        &json!({"users": users, "groups": [{"id": "g0", "name": "All", "members": members}]}),
    );
    std::fs::write(env.path("hook.token"), format!("{HOOK}\n")).unwrap();
    env.write_config(&format!(
        r#"[daemon]
state = "state/idpsync.db"
listen = "127.0.0.1:{port}"
schedule = "0 0 0 1 1 *"
webhook_token_file = "hook.token"

[[idp]]
name = "corp"
kind = "file"
path = "corp.json"

[[group]]
name = "Everyone"
stage = "production"

[[mapping]]
idp = "corp"
idp_group = "g0"
group = "Everyone"
stage = "production"

[[idp]]
name = "okta"
kind = "oidc"

[idp.oidc]
issuer = "{issuer}"
client_id = "okta-app"

[[group]]
name = "Testers"
stage = "production"

[[mapping]]
idp = "okta"
idp_group = "Okta Testers"
group = "Testers"
stage = "production"
"#
    ));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(addr.ip().is_loopback());
    (env, addr)
}

/// Audit rows of `op` for provenance `idp:corp`.
fn audited(env: &Env, op: &str) -> i64 {
    let conn = rusqlite::Connection::open(env.state_path()).unwrap();
    conn.query_row(
        "SELECT count(*) FROM audit_log l JOIN sources s ON s.id = l.source
         WHERE s.provenance = 'idp:corp' AND l.op = ?1",
        [op],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test)"
)]
fn a_run_killed_after_pausing_for_a_login_keeps_whole_statements_and_the_login() {
    let fake = fakes::oidc::FakeOidc::start(vec![key()]);
    let (env, addr) = service_env(&fake.issuer());
    // The run at start holds its turn at its first statement of rows until told to go on.
    let mut service = Armed::spawn(
        &env,
        &["run"],
        "apply::rows=pause@1;login::before_turn=mark@1;apply::paused=halt",
    );
    assert!(service.reached("apply::rows"), "the run at start applies");
    eventually("/readyz", || {
        let answer = http_get(addr, "/readyz", None);
        (answer.status == 200).then_some(()).ok_or(answer.body)
    });
    let now = chrono::Utc::now().timestamp();
    let token = fake.sign(
        &json!({"iss": fake.issuer(), "aud": "okta-app", "sub": "s-eve",
        "iat": now, "exp": now + 3600, "email": "eve@example.com", "groups": ["Okta Testers"]}),
    );
    let login = std::thread::spawn(move || {
        let body = json!({"id_token": token}).to_string();
        http_send(addr, "POST", "/v1/login", Some(HOOK), Some(body.as_bytes()))
    });
    // Planned and queued behind the run's turn; the run goes on and pauses for it.
    assert!(
        service.reached("login::before_turn"),
        "the login is planned"
    );
    service.resume();
    assert!(
        service.reached("apply::paused"),
        "the apply pauses for the login"
    );
    let answer = login.join().unwrap();
    assert_eq!(
        answer.status, 200,
        "the login is answered during the apply: {answer:?}"
    );
    service.kill();

    let state = env.state_path();
    assert_consistent(&state);
    let counts = per_source(&state);
    let committed = counts.get("idp:corp").copied().unwrap_or(0);
    assert!(
        committed > 0 && committed < USERS && committed % 256 == 0,
        "whole statements of rows committed before the pause: {counts:?}"
    );
    assert_eq!(audited(&env, "add"), committed as i64, "each audited once");
    assert_eq!(
        counts.get("idp:okta"),
        Some(&1),
        "the login's change stands"
    );
    assert_eq!(running(&state).len(), 1, "the killed run's row stays open");

    // The next run applies exactly the rest, once.
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        doc["summary"]["adds"].as_u64(),
        Some((USERS - committed) as u64),
        "{doc:#}"
    );
    assert_consistent(&state);
    let counts = per_source(&state);
    assert_eq!(counts.get("idp:corp"), Some(&USERS));
    assert_eq!(counts.get("idp:okta"), Some(&1));
    assert_eq!(
        audited(&env, "add"),
        USERS as i64,
        "each add audited once in all"
    );
}
