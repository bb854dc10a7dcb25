//! `POST /v1/login` for Entra ID tokens whose groups claim overflowed (`_claim_names`): the
//! groups are resolved through the fake Graph, with the `azure_ad` credentials of the IdP or of
//! a login-only IdP that carries them, and a failed lookup answers 503 and changes nothing.

use fakes::oidc::FakeOidc;
use serde_json::{Value, json};

use crate::cloud::FAST_RETRIES;
use crate::common::Env;
use crate::login::{HOOK, claims, groups_of, key, keys_loaded, login_token};
use crate::service::{eventually, http_get, start, stop};

/// An Entra IdP `name` (`kind` and its own keys in `keys`) with the fake Graph at `graph` as
/// its `azure_ad` credentials, signing users in through `issuer` (audience `entra-app`), its IdP
/// group `idp_group` mapped onto production's Eng.
fn entra_env(graph: &str, issuer: &str, name: &str, keys: &str, idp_group: &str) -> Env {
    let env = Env::empty();
    env.write_config(&format!(
        r#"[daemon]
state = "state/idpsync.db"
listen = "127.0.0.1:0"
schedule = "0 0 0 1 1 *"
webhook_token_file = "hook.token"

[[idp]]
name = "{name}"
{keys}
tenant_id = "contoso"
client_id = "app-1"
client_secret_file = "entra.secret"
authority_url = "{graph}"
graph_url = "{graph}"
{FAST_RETRIES}
[idp.oidc]
issuer = "{issuer}"
client_id = "entra-app"

[[group]]
name = "Eng"
stage = "production"

[[mapping]]
idp = "{name}"
idp_group = "{idp_group}"
group = "Eng"
stage = "production"
"#
    ));
    std::fs::write(env.path("hook.token"), format!("{HOOK}\n")).unwrap();
    std::fs::write(env.path("entra.secret"), "s3cret\n").unwrap();
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_overage_is_resolved_through_graph_and_a_failed_lookup_changes_nothing() {
    use fakes::graph::{FakeGraph, Member, Switches, Tenant};
    let mut tenant = Tenant::new("contoso", "app-1", "s3cret");
    // dan has no mail in the directory, so the batch read skips him; his token names him.
    tenant
        .user("u-ana", Some("ana@example.com"), true)
        .user("u-dan", None, true);
    tenant
        .group(
            "g-eng",
            "Engineering",
            vec![Member::User("u-ana".into()), Member::Group("g-sub".into())],
        )
        .group("g-sub", "Sub", vec![Member::User("u-dan".into())]);
    let graph = FakeGraph::start(tenant, Switches::default());
    let fake = FakeOidc::start(vec![key()]);
    let env = entra_env(
        &graph.server.url(),
        &fake.issuer(),
        "entra",
        "kind = \"azure_ad\"\nnested = true",
        "Engineering",
    );
    let service = start(&env).await;
    let addr = service.addr();
    eventually("/readyz and the run at start", || {
        let ready = http_get(addr, "/readyz", None).status == 200;
        let ana = groups_of(&env, "ana@example.com");
        (ready && ana == ["production/Eng idp:entra"])
            .then_some(())
            .ok_or(format!("{ana:?}"))
    });
    let overage = |marker: Value| {
        let mut c = claims(&fake, "entra-app", "dan@example.com", 0);
        c["oid"] = json!("u-dan");
        c["tid"] = json!("contoso");
        c.as_object_mut()
            .unwrap()
            .extend(marker.as_object().unwrap().clone());
        fake.sign(&c)
    };
    let claim_names = json!({"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1":
        {"endpoint": "https://graph.windows.net/contoso/users/u-dan/getMemberObjects"}}});
    // The lookup failing: 503 with Retry-After, and nothing changed.
    graph.state.switches.lock().unwrap().refuse_tokens = true;
    let before = env.state();
    let refused = login_token(addr, &overage(claim_names.clone()));
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.json()["error"], "unavailable");
    assert!(refused.header("retry-after").is_some());
    assert_eq!(env.state().tables, before.tables);
    graph.state.switches.lock().unwrap().refuse_tokens = false;
    // Resolved: g-eng (through g-sub) is the mapped Engineering of the last applied read.
    let answer = login_token(addr, &overage(claim_names));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["changes"], json!({"adds": 1, "removes": 0}));
    assert_eq!(
        groups_of(&env, "dan@example.com"),
        ["production/Eng idp:entra"]
    );
    // `hasgroups` asks for the same lookup.
    let again = login_token(addr, &overage(json!({"hasgroups": true})));
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.json()["changes"], json!({"adds": 0, "removes": 0}));
    stop(service).await;
}

/// A login-only IdP carrying `azure_ad` credentials resolves overages through Graph with them,
/// and fetches its provider's keys with the same HTTP settings (here a proxy); it is never read
/// in batch, so its mappings name the groups by id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_only_idp_resolves_an_overage_with_the_azure_ad_credentials_it_carries() {
    use fakes::graph::{FakeGraph, Member, Switches, Tenant};
    let mut tenant = Tenant::new("contoso", "app-1", "s3cret");
    tenant.user("u-dan", None, true);
    tenant.group("g-eng", "Engineering", vec![Member::User("u-dan".into())]);
    let graph = FakeGraph::start(tenant, Switches::default());
    let fake = FakeOidc::start(vec![key()]);
    let proxy = fakes::proxy::FakeProxy::start();
    let keys = format!("kind = \"oidc\"\nproxy = \"{}\"", proxy.url());
    let env = entra_env(
        &graph.server.url(),
        &fake.issuer(),
        "entra-login",
        &keys,
        "g-eng",
    );
    let checked = env.run(&["check"]);
    assert!(
        checked
            .stdout
            .contains("groups overages through Graph tenant contoso"),
        "{checked:?}"
    );
    let service = start(&env).await;
    let addr = service.addr();
    keys_loaded(addr);
    // Discovery and the JWKS went through the IdP's proxy, as its Graph requests do.
    let at_ready = proxy.forwarded();
    assert!(at_ready >= 2, "{at_ready} requests through the proxy");
    let mut c = claims(&fake, "entra-app", "dan@example.com", 0);
    c["oid"] = json!("u-dan");
    c["hasgroups"] = json!(true);
    let answer = login_token(addr, &fake.sign(&c));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        proxy.forwarded() >= at_ready + 2,
        "the token and getMemberObjects"
    );
    assert_eq!(answer.json()["changes"], json!({"adds": 1, "removes": 0}));
    assert_eq!(
        groups_of(&env, "dan@example.com"),
        ["production/Eng idp:entra-login"]
    );
    stop(service).await;
}
