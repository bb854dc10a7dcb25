//! `[store]`: each remote kind as config/reference.toml documents it, and the errors an
//! administrator can make with one.

use std::path::Path;

use super::tests::{BASE, parse_env};
use super::{Config, StoreConfig};

const TOKEN: (&str, &str) = ("STORE_TOKEN", "s3cret-store-token");

/// `BASE` with `[store]` `keys`.
fn with_store(keys: &str) -> String {
    BASE.replace("[daemon]", &format!("[store]\n{keys}\n\n[daemon]"))
}

fn store_error(keys: &str) -> String {
    parse_env(&with_store(keys), &[TOKEN])
        .unwrap_err()
        .to_string()
}

#[test]
fn every_documented_store_block_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    for kind in ["odc", "scim", "jira"] {
        let prefix = format!("#{kind}# ");
        let block: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect();
        assert!(block.len() > 4, "{kind}: {block:?}");
        let keys = block.join("\n");
        let env = [("IDPSYNC_REFERENCE_TOKEN", "x")];
        let config = parse_env(&with_store(&keys), &env).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(config.store.kind(), kind);
        assert_eq!(config.store.remote_stages().len(), 1);
        assert!(
            config
                .store
                .serves_remotely(&crate::model::Stage::parse("production").unwrap())
        );
    }
}

#[test]
fn an_odc_store_keeps_its_environments_and_budget() {
    let config = parse_env(
        &with_store(
            "kind = \"odc\"\nportal_url = \"https://acme.outsystems.dev/\"\nclient_id = \"c\"\nclient_secret = \"env:STORE_TOKEN\"\nstages = { production = \"env-p\", qa = \"env-q\" }",
        ),
        &[TOKEN],
    )
    .unwrap();
    let StoreConfig::Odc(odc) = &config.store else {
        panic!("{:?}", config.store)
    };
    assert_eq!(odc.portal_url, "https://acme.outsystems.dev");
    let envs: Vec<(&str, &str)> = odc
        .environments
        .iter()
        .map(|(s, k)| (s.as_str(), k.as_str()))
        .collect();
    assert_eq!(envs, [("production", "env-p"), ("qa", "env-q")]);
    assert_eq!(odc.remote.rate_limit, 100);
    assert_eq!(odc.remote.rate_window, std::time::Duration::from_secs(60));
    assert_eq!(odc.batch_size, 100);
    assert!(
        !format!("{config:?}").contains(TOKEN.1),
        "secrets stay out of Debug"
    );
    assert_eq!(config.store.tenant(), "odc https://acme.outsystems.dev");
}

#[test]
fn store_mistakes_name_the_key() {
    let scim =
        "kind = \"scim\"\nurl = \"https://scim.example.com/v2\"\ntoken = \"env:STORE_TOKEN\"";
    let err = store_error(&format!("{scim}\nstages = [\"staging\"]"));
    assert!(
        err.contains("store.stages: stage \"staging\" is not one of [daemon] stages"),
        "{err}"
    );
    let err = store_error(scim);
    assert!(err.contains("a remote store needs stages"), "{err}");
    let err = store_error(&format!("{scim}\nstages = [\"qa\", \"production\"]"));
    assert!(
        err.contains("store.stages: this store has no stages of its own"),
        "{err}"
    );
    let err = store_error(
        "kind = \"odc\"\nportal_url = \"https://x.outsystems.dev\"\nclient_id = \"c\"\nclient_secret = \"env:STORE_TOKEN\"\nstages = { qa = \"e1\", production = \"e1\" }",
    );
    assert!(err.contains("two stages name environment"), "{err}");
    let err = store_error(&format!(
        "{scim}\nstages = [\"production\"]\nmax_ops_per_patch = 0"
    ));
    assert!(
        err.contains("store.max_ops_per_patch: must be between 1"),
        "{err}"
    );
    let err = store_error(
        "kind = \"scim\"\nurl = \"http://scim.example.com/v2\"\ntoken = \"env:STORE_TOKEN\"\nstages = [\"production\"]",
    );
    assert!(err.contains("store.url"), "{err}");
    let err = store_error(
        "kind = \"scim\"\nurl = \"https://scim.example.com/v2\"\ntoken = \"inline\"\nstages = [\"production\"]",
    );
    assert!(err.contains("never written inline"), "{err}");
    let err = store_error(
        "kind = \"jira\"\nsite_url = \"https://x.atlassian.net\"\napi_token = \"env:STORE_TOKEN\"\nstages = [\"production\"]",
    );
    assert!(err.contains("this store needs email"), "{err}");
    let err = store_error(
        "kind = \"odc\"\nportal_url = \"https://x.outsystems.dev\"\nclient_id = \"c\"\nclient_secret = \"env:STORE_TOKEN\"\nstages = [\"production\"]",
    );
    assert!(
        err.contains("store.stages: expected a table of strings"),
        "{err}"
    );
    let err = store_error(
        "kind = \"jira\"\nsite_url = \"https://x.atlassian.net\"\nemail = \"a@b\"\napi_token = \"env:STORE_TOKEN\"\nstages = [\"production\"]\nbogus = 1",
    );
    assert!(err.contains("bogus"), "{err}");
}

#[test]
fn the_embedded_store_serves_no_stage_remotely() {
    let config: Config = parse_env(BASE, &[]).unwrap();
    assert_eq!(config.store.kind(), "embedded");
    assert!(config.store.remote_stages().is_empty());
}
