//! Tests of the `azure_ad` and `okta` keys, and of the URL rule every HTTPS client follows.

use super::tests::{BASE, parse_env};
use super::{AzureCredential, IdpKind, OktaCredential};

/// `BASE` with its file IdP replaced by one of `kind` carrying `keys`.
fn with(kind: &str, keys: &str) -> String {
    BASE.replace(
        "kind = \"file\"\npath = \"dir.json\"",
        &format!("kind = \"{kind}\"\n{keys}"),
    )
}

const AZURE: &str = "tenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"env:SECRET\"";
const OKTA: &str = "org_url = \"https://example.okta.com\"\napi_token = \"env:SECRET\"";

fn azure_error(keys: &str) -> String {
    parse_env(&with("azure_ad", keys), &[("SECRET", "s")])
        .unwrap_err()
        .to_string()
}

#[test]
fn azure_ad_defaults_point_at_microsoft_and_take_mail() {
    let config = parse_env(&with("azure_ad", AZURE), &[("SECRET", "s")]).unwrap();
    let idp = &config.idps[0];
    assert_eq!(idp.user_key, "mail");
    let IdpKind::AzureAd(a) = &idp.kind else {
        panic!("{:?}", idp.kind)
    };
    assert_eq!(a.authority_url, "https://login.microsoftonline.com");
    assert_eq!(a.graph_url, "https://graph.microsoft.com");
    assert!(matches!(a.credential, AzureCredential::Secret(_)));
    assert!(!a.batch && !a.advanced_query && !a.http.tls_insecure);
    assert_eq!(a.http.max_concurrency, 4);
    // An advanced filter turns advanced queries on by itself.
    let config = parse_env(
        &with(
            "azure_ad",
            &format!("{AZURE}\ngroup_filter = \"endswith(displayName,'-x')\"\nuser_key = \"upn\""),
        ),
        &[("SECRET", "s")],
    )
    .unwrap();
    let IdpKind::AzureAd(a) = &config.idps[0].kind else {
        panic!()
    };
    assert!(a.advanced_query);
    assert_eq!(config.idps[0].user_key, "upn");
}

#[test]
fn azure_ad_credentials_and_urls_are_checked() {
    let err = azure_error("tenant_id = \"t\"\nclient_id = \"c\"");
    assert!(
        err.contains("needs either client_secret_file, or certificate_file with private_key_file"),
        "{err}"
    );
    let err = azure_error(&AZURE.replace("env:SECRET", "inline-secret"));
    assert!(
        err.contains("idp[corp].client_secret: secrets are never written inline"),
        "{err}"
    );
    let err = azure_error(&format!(
        "{AZURE}\ngraph_url = \"http://graph.example.com\""
    ));
    assert!(err.contains("idp[corp].graph_url: \"http://graph.example.com\" is plain http:// to a host that is not loopback"), "{err}");
    let err = azure_error(&format!("{AZURE}\nproxy = \"ftp://proxy\""));
    assert!(err.contains("idp[corp].proxy"), "{err}");
    let err = azure_error(&format!("{AZURE}\nuser_key = \"email\""));
    assert!(err.contains("takes the user key from mail or upn"), "{err}");
    let err = azure_error(&format!("{AZURE}\nmax_concurrency = 0"));
    assert!(
        err.contains("idp[corp].max_concurrency: must be between 1 and 64"),
        "{err}"
    );
    let err = azure_error(&format!("{AZURE}\nca_file = \"missing-ca.pem\""));
    assert!(
        err.contains("idp[corp].ca_file: /etc/idpsync/missing-ca.pem does not exist"),
        "{err}"
    );
    let err = azure_error(&format!("{AZURE}\nbogus = 1"));
    assert!(err.contains("bogus"), "{err}");
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");
    let err = azure_error(&format!(
        "tenant_id = \"t\"\nclient_id = \"c\"\ncertificate_file = \"{keys}/entra-app.crt\"\nprivate_key_file = \"{keys}/entra-app.crt\""
    ));
    assert!(
        err.contains("idp[corp].private_key_file: is not a PEM RSA private key"),
        "{err}"
    );
    let config = parse_env(
        &with("azure_ad", &format!(
            "tenant_id = \"t\"\nclient_id = \"c\"\ncertificate_file = \"{keys}/entra-app.crt\"\nprivate_key_file = \"{keys}/entra-app.key\""
        )),
        &[],
    )
    .unwrap();
    let IdpKind::AzureAd(a) = &config.idps[0].kind else {
        panic!()
    };
    let AzureCredential::Certificate {
        thumbprint_s256, ..
    } = &a.credential
    else {
        panic!()
    };
    assert_eq!(thumbprint_s256.len(), 43, "base64url of 32 bytes");
}

#[test]
fn okta_keys_are_checked() {
    let config = parse_env(&with("okta", OKTA), &[("SECRET", "s")]).unwrap();
    assert_eq!(config.idps[0].user_key, "profile.email");
    let IdpKind::Okta(o) = &config.idps[0].kind else {
        panic!()
    };
    assert!(matches!(o.credential, OktaCredential::ApiToken(_)));
    assert_eq!((o.rate_limit_share, o.page_size), (0.5, 200));
    let okta_error = |keys: &str| {
        parse_env(&with("okta", keys), &[("SECRET", "s")])
            .unwrap_err()
            .to_string()
    };
    let err = okta_error("org_url = \"https://example.okta.com\"");
    assert!(
        err.contains("needs either api_token_file (SSWS), or client_id with private_key_file"),
        "{err}"
    );
    let err = okta_error("api_token = \"env:SECRET\"");
    assert!(err.contains("this IdP needs org_url"), "{err}");
    let err = okta_error(&format!("{OKTA}\nrate_limit_share = 1.5"));
    assert!(
        err.contains("idp[corp].rate_limit_share: must be more than 0 and at most 1"),
        "{err}"
    );
    let err = okta_error(&format!(
        "{OKTA}\ngroup_filter = \"a\"\ngroup_search = \"b\""
    ));
    assert!(err.contains("not both"), "{err}");
    let err = okta_error(&format!("{OKTA}\nkey_id = \"k\""));
    assert!(err.contains("key_id goes with client_id"), "{err}");
    let err = okta_error(&format!("{OKTA}\nuser_key = \"mail\""));
    assert!(
        err.contains("takes the user key from email or login"),
        "{err}"
    );
    let loopback = OKTA.replace("https://example.okta.com", "http://127.0.0.1:9/");
    let config = parse_env(&with("okta", &loopback), &[("SECRET", "s")]).unwrap();
    let IdpKind::Okta(o) = &config.idps[0].kind else {
        panic!()
    };
    assert_eq!(
        o.org_url, "http://127.0.0.1:9",
        "loopback http is allowed, the slash trimmed"
    );
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");
    let config = parse_env(
        &with("okta", &format!(
            "org_url = \"https://example.okta.com\"\nclient_id = \"0oa1\"\nprivate_key_file = \"{keys}/okta-ec.key\"\nuser_key = \"login\""
        )),
        &[],
    )
    .unwrap();
    assert_eq!(config.idps[0].user_key, "profile.login");
    let IdpKind::Okta(o) = &config.idps[0].kind else {
        panic!()
    };
    assert!(matches!(
        &o.credential,
        OktaCredential::ServiceApp { key_id: None, .. }
    ));
    // Environment overrides reach the new keys too.
    let config = parse_env(
        &with("okta", OKTA),
        &[
            ("SECRET", "s"),
            ("IDPSYNC__IDP__CORP__MAX_CONCURRENCY", "2"),
        ],
    )
    .unwrap();
    let IdpKind::Okta(o) = &config.idps[0].kind else {
        panic!()
    };
    assert_eq!(o.http.max_concurrency, 2);
}

#[test]
fn a_login_only_idp_may_carry_azure_ad_credentials_for_overages() {
    let login_only = |keys: &str| {
        BASE.replace(
            "kind = \"file\"\npath = \"dir.json\"\nnested = true",
            &format!(
                "kind = \"oidc\"\n{keys}\n[idp.oidc]\nissuer = \"https://login.microsoftonline.com/t/v2.0\"\nclient_id = \"app\""
            ),
        )
    };
    let config = parse_env(&login_only(AZURE), &[("SECRET", "s")]).unwrap();
    let IdpKind::Oidc { overage: Some(a) } = &config.idps[0].kind else {
        panic!("{:?}", config.idps[0].kind)
    };
    assert_eq!((a.tenant_id.as_str(), a.client_id.as_str()), ("t", "c"));
    let config = parse_env(&login_only(""), &[]).unwrap();
    assert!(matches!(
        config.idps[0].kind,
        IdpKind::Oidc { overage: None }
    ));
    // tenant_id alone is half a credential: the error names what is missing.
    let err = parse_env(&login_only("tenant_id = \"t\"\nclient_id = \"c\""), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("client_secret_file"), "{err}");
}
