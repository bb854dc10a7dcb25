//! Logins through the service with a remote store: what a login journals reaches the store
//! without waiting for a run, adds and removes alike.

use fakes::scim::FakeScim;
use serde_json::json;

use crate::cloud::FAST_RETRIES;
use crate::login::{claims, env, key, keys_loaded, login_token};
use crate::service::{eventually, start, stop};
use fakes::oidc::FakeOidc;

const TOKEN: &str = "scim-token-never-logged";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_reaches_the_store_at_once() {
    let scim = FakeScim::start(TOKEN);
    scim.add_group("Testers");
    scim.add_user("dee@example.com");
    let fake = FakeOidc::start(vec![key()]);
    let env = env(&fake.issuer());
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&format!(
        "{config}\n[store]\nkind = \"scim\"\nurl = \"{}\"\ntoken_file = \"scim.token\"\nstages = [\"qa\"]\n{FAST_RETRIES}",
        scim.url()
    ));
    std::fs::write(env.path("scim.token"), TOKEN).unwrap();
    let service = start(&env).await;
    let addr = service.addr();
    keys_loaded(addr);
    eventually("the run at start", || {
        let out = env.run(&["users", "show", "ben@example.com", "--output", "json"]);
        (out.code == 0 && out.stdout.contains("Testers"))
            .then_some(())
            .ok_or(out.stdout)
    });
    let token = |groups: &str, age: i64| {
        let mut c = claims(&fake, "okta-app", "dee@example.com", age);
        c["GroupsClaim"] = json!(groups);
        fake.sign(&c)
    };
    let first = login_token(addr, &token("Okta Testers", 20));
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(
        first.json()["changes"],
        json!({"adds": 1, "removes": 0}),
        "{}",
        first.json()
    );
    eventually("dee in the store", || {
        let members = scim.members_of("Testers");
        members
            .contains(&"dee@example.com".to_owned())
            .then_some(())
            .ok_or(format!("{members:?}"))
    });
    let second = login_token(addr, &token("Everyone", 10));
    assert_eq!(second.json()["changes"], json!({"adds": 0, "removes": 1}));
    eventually("dee out of the store", || {
        let members = scim.members_of("Testers");
        (!members.contains(&"dee@example.com".to_owned()))
            .then_some(())
            .ok_or(format!("{members:?}"))
    });
    stop(service).await;
    let out = env.run(&["status", "--output", "json"]);
    // ben and cid (corp's Engineering, mapped onto Testers) are not in the store: their adds wait.
    assert_eq!(
        out.json()["journal"],
        json!({"pending": 2, "failed": 0}),
        "{}",
        out.stdout
    );
}
