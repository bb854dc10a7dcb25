//! Configuration tests: defaults, overrides, secrets, and every bad input with file, line and key.

use super::*;

pub(super) const BASE: &str = r#"
[daemon]
state = "state/idpsync.db"

[[idp]]
name = "corp"
kind = "file"
path = "dir.json"
nested = true

[[app]]
name = "Dash"
roles = ["Viewer", "Editor"]

[[group]]
name = "Marketing"
stage = "production"
roles = ["Dash/Viewer"]

[[mapping]]
idp = "corp"
idp_group = "Marketing Team"
group = "Marketing"
stage = "production"
"#;

pub(super) fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::parse(
        Path::new("/etc/idpsync/idpsync.toml"),
        text.to_owned(),
        &env,
    )
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_env(text, &[])
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn defaults_and_relative_paths() {
    let config = parse(BASE).unwrap();
    assert_eq!(
        config.daemon.state,
        Path::new("/etc/idpsync/state/idpsync.db")
    );
    assert_eq!(config.safety, SafetyConfig::default());
    let stages: Vec<&str> = config.daemon.stages.iter().map(Stage::as_str).collect();
    assert_eq!(stages, ["development", "qa", "production"]);
    assert_eq!(config.daemon.run_wait, Duration::from_secs(30));
    assert_eq!(config.daemon.listen.to_string(), "127.0.0.1:8410");
    assert!(
        matches!(&config.idps[0].kind, IdpKind::File { path } if path == Path::new("/etc/idpsync/dir.json"))
    );
    assert_eq!(config.idps[0].user_key, "email");
    assert_eq!(config.mappings[0].line, Some(20));
    assert_eq!(config.groups[0].line, Some(15));
}

#[test]
fn state_defaults_to_state_directory_then_beside_the_config() {
    let no_state = BASE.replace("state = \"state/idpsync.db\"", "");
    let config = parse_env(&no_state, &[("STATE_DIRECTORY", "/var/lib/idpsync")]).unwrap();
    assert_eq!(
        config.daemon.state,
        Path::new("/var/lib/idpsync/idpsync.db")
    );
    let config = parse(&no_state).unwrap();
    assert_eq!(config.daemon.state, Path::new("/etc/idpsync/idpsync.db"));
}

#[test]
fn environment_overrides_reach_sections_and_idps() {
    let config = parse_env(
        BASE,
        &[
            ("IDPSYNC__SAFETY__MAX_REMOVALS", "50"),
            ("IDPSYNC__DAEMON__STAGES", "qa,production"),
            ("IDPSYNC__IDP__CORP__PATH", "other.json"),
            ("IDPSYNC__IDP__CORP__NESTED", "false"),
        ],
    )
    .unwrap();
    assert_eq!(config.safety.max_removals, 50);
    assert_eq!(config.daemon.stages.len(), 2);
    assert!(
        matches!(&config.idps[0].kind, IdpKind::File { path } if path == Path::new("/etc/idpsync/other.json"))
    );
    assert!(!config.idps[0].nested);
}

#[test]
fn bad_override_values_name_the_variable() {
    let err = parse_env(BASE, &[("IDPSYNC__SAFETY__MAX_REMOVALS", "many")]).unwrap_err();
    assert_eq!(
        err.origin,
        Origin::Env("IDPSYNC__SAFETY__MAX_REMOVALS".into())
    );
    assert!(err.to_string().contains("safety.max_removals"), "{err}");
}

#[test]
fn unknown_override_is_refused_by_name() {
    for var in [
        "IDPSYNC__SAFETY__MAX_REMOVAL",
        "IDPSYNC__IDP__OKTA__PATH",
        "IDPSYNC__NOPE__X",
    ] {
        let err = parse_env(BASE, &[(var, "1")]).unwrap_err();
        assert_eq!(err.origin, Origin::Env(var.into()), "{var}");
        assert!(err.to_string().contains(var), "{err}");
    }
}

#[test]
fn toml_syntax_error_names_the_line() {
    let err = error("[daemon]\nstate = \"x.db\"\nschedule = \n");
    assert!(err.starts_with("/etc/idpsync/idpsync.toml:3: "), "{err}");
    assert!(err.contains("TOML syntax error"), "{err}");
}

#[test]
fn unknown_keys_name_line_and_key() {
    let err = error(&BASE.replace("nested = true", "nested = true\nnestd = true"));
    assert!(
        err.starts_with("/etc/idpsync/idpsync.toml:10: idp[corp].nestd: unknown key"),
        "{err}"
    );
    let err = error(&format!("{BASE}\n[safety]\nmax_removal = 3\n"));
    assert!(
        err.contains(":27: safety.max_removal: unknown key"),
        "{err}"
    );
    let err = error(&format!("{BASE}\n[extras]\nx = 1\n"));
    assert!(err.contains(":26: extras: unknown key"), "{err}");
}

#[test]
fn inline_secrets_are_refused_without_echoing_them() {
    let err = error(&BASE.replace("[daemon]", "[daemon]\nadmin_token = \"hunter2-secret\""));
    assert!(
        err.contains(":3: daemon.admin_token: secrets are never written inline"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn secrets_come_from_files_and_env() {
    use secrecy::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.token"), "s3cret\n").unwrap();
    let text = BASE.replace(
        "[daemon]",
        "[daemon]\napp_token_file = \"app.token\"\nadmin_token = \"env:ADMIN_TOKEN\"",
    );
    let env = [
        (
            "CREDENTIALS_DIRECTORY".to_string(),
            dir.path().display().to_string(),
        ),
        ("ADMIN_TOKEN".to_string(), "from-env".to_string()),
    ];
    let config = Config::parse(Path::new("/etc/idpsync/idpsync.toml"), text.clone(), &env).unwrap();
    assert_eq!(
        config.daemon.app_token.as_ref().unwrap().expose_secret(),
        "s3cret"
    );
    assert_eq!(
        config.daemon.admin_token.as_ref().unwrap().expose_secret(),
        "from-env"
    );
    assert!(!format!("{config:?}").contains("s3cret"));
    let err = Config::parse(Path::new("/etc/idpsync/idpsync.toml"), text, &env[..1]).unwrap_err();
    assert!(err.to_string().contains("ADMIN_TOKEN is not set"), "{err}");
}

#[test]
fn mapping_to_an_unknown_idp() {
    let err = error(&BASE.replace("idp = \"corp\"", "idp = \"okta\""));
    assert!(
        err.contains(":21: mapping[0].idp: no [[idp]] is named \"okta\" (known: corp)"),
        "{err}"
    );
}

#[test]
fn stage_not_in_stages_and_bad_stage_names() {
    let err = error(&BASE.replace(
        "stage = \"production\"\nroles",
        "stage = \"staging\"\nroles",
    ));
    assert!(
        err.contains(":17: group[0].stage: stage staging is not in daemon.stages"),
        "{err}"
    );
    let err = error(&BASE.replace("[daemon]", "[daemon]\nstages = [\"Prod\"]"));
    assert!(
        err.contains(":3: daemon.stages: stage name \"Prod\" must match [a-z0-9_-]+"),
        "{err}"
    );
    let err = error(&BASE.replace(
        "group = \"Marketing\"\nstage = \"production\"",
        "group = \"Marketing\"\nstage = \"Pro duction\"",
    ));
    assert!(
        err.contains("mapping[0].stage: stage name \"Pro duction\" must match"),
        "{err}"
    );
}

#[test]
fn roles_are_checked_for_shape_and_catalogue() {
    let err = error(&BASE.replace("roles = [\"Dash/Viewer\"]", "roles = [\"DashViewer\"]"));
    assert!(
        err.contains(":18: group[0].roles: role \"DashViewer\" must be written App/Role"),
        "{err}"
    );
    let err = error(&BASE.replace("roles = [\"Dash/Viewer\"]", "roles = [\"Dash/Viewer/X\"]"));
    assert!(err.contains("exactly one '/'"), "{err}");
    let err = error(&BASE.replace("roles = [\"Dash/Viewer\"]", "roles = [\"Dash/Owner\"]"));
    assert!(
        err.contains(":18: group[0].roles: role Dash/Owner: app \"Dash\" has no role \"Owner\""),
        "{err}"
    );
    let err = error(&BASE.replace("roles = [\"Dash/Viewer\"]", "roles = [\"Crm/User\"]"));
    assert!(
        err.contains("app \"Crm\" is not in the [[app]] catalogue"),
        "{err}"
    );
    // Without a catalogue any well-formed role passes.
    let no_apps = BASE.replace(
        "[[app]]\nname = \"Dash\"\nroles = [\"Viewer\", \"Editor\"]\n",
        "",
    );
    assert!(parse(&no_apps.replace("Dash/Viewer", "Crm/User")).is_ok());
}

#[test]
fn empty_and_over_long_group_names() {
    let err = error(&BASE.replace("name = \"Marketing\"", "name = \"   \""));
    assert!(
        err.contains(":16: group[0].name: a group name must not be empty"),
        "{err}"
    );
    let long = "x".repeat(257);
    let err = error(&BASE.replace("group = \"Marketing\"", &format!("group = \"{long}\"")));
    assert!(
        err.contains("mapping[0].group: group name of 257 characters is longer than 256"),
        "{err}"
    );
}

#[test]
fn duplicate_groups_idps_and_audiences() {
    let twice = format!("{BASE}\n[[group]]\nname = \"MARKETING \"\nstage = \"production\"\n");
    assert!(error(&twice).contains("declared twice in stage production"));
    let oidc = |name: &str| {
        format!(
            "\n[[idp]]\nname = \"{name}\"\nkind = \"file\"\npath = \"x.json\"\n[idp.oidc]\nissuer = \"https://login.example.com/\"\nclient_id = \"app\"\n"
        )
    };
    let err = error(&format!("{BASE}{}{}", oidc("a"), oidc("b")));
    assert!(
        err.contains("idp[b].oidc: IdP a already uses issuer"),
        "{err}"
    );
    assert!(
        err.contains("two IdPs may not share (issuer, audience)"),
        "{err}"
    );
    let err = error(&format!("{BASE}{}", oidc("corp")));
    assert!(err.contains("IdP name \"corp\" is used twice"), "{err}");
}

#[test]
fn cron_and_kinds_are_validated() {
    let err = error(&BASE.replace("[daemon]", "[daemon]\nschedule = \"every minute\""));
    assert!(
        err.contains(":3: daemon.schedule: invalid cron expression"),
        "{err}"
    );
    let err = error(&BASE.replace("kind = \"file\"", "kind = \"oidc\""));
    assert!(
        err.contains("a login-only IdP (kind = \"oidc\") needs [idp.oidc]"),
        "{err}"
    );
    let err = error(&BASE.replace("[daemon]", "[store]\nkind = \"nfs\"\n[daemon]"));
    assert!(
        err.contains("store.kind: unknown store kind \"nfs\""),
        "{err}"
    );
}

#[test]
fn the_reference_configuration_lists_every_key_and_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference.toml");
    let env = [("IDPSYNC_REFERENCE_TOKEN".to_string(), "x".to_string())];
    let config = Config::load(&path, &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.idps.len(), 4);
    assert!(config.idps[0].oidc.is_some());
    assert!(matches!(&config.idps[1].kind, IdpKind::Ldap(l) if l.bind_password.is_some()));
    assert!(matches!(&config.idps[2].kind, IdpKind::AzureAd(a) if a.http.max_concurrency == 4));
    assert!(matches!(&config.idps[3].kind, IdpKind::Okta(o) if o.rate_limit_share == 0.5));
    assert!(config.apps.is_some() && !config.groups.is_empty() && !config.mappings.is_empty());
}

#[test]
fn the_demo_configuration_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    Config::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn overrides_differing_only_in_case_are_refused() {
    let err = parse_env(
        BASE,
        &[
            ("IDPSYNC__SAFETY__MAX_REMOVALS", "5"),
            ("IDPSYNC__safety__max_removals", "6"),
        ],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("names the same key as IDPSYNC__SAFETY__MAX_REMOVALS"),
        "{err}"
    );
}

#[test]
fn an_override_creating_a_missing_table_is_blamed_by_name() {
    let err = parse_env(BASE, &[("IDPSYNC__IDP__CORP__OIDC__NOPE", "x")]).unwrap_err();
    assert_eq!(
        err.origin,
        Origin::Env("IDPSYNC__IDP__CORP__OIDC__NOPE".into())
    );
}

/// `BASE` with its file IdP replaced by an LDAP one carrying `keys`.
fn with_ldap(keys: &str) -> String {
    BASE.replace(
        "kind = \"file\"\npath = \"dir.json\"",
        &format!("kind = \"ldap\"\n{keys}"),
    )
}

fn ldap_of(config: &Config) -> &LdapConfig {
    match &config.idps[0].kind {
        IdpKind::Ldap(ldap) => ldap,
        other => panic!("not ldap: {other:?}"),
    }
}

#[test]
fn ldap_defaults_find_openldap_and_active_directory_entries() {
    let text = with_ldap("url = \"ldap://dir:389\"\nbase_dn = \"dc=example,dc=com\"");
    let config = parse(&text).unwrap();
    let ldap = ldap_of(&config);
    assert_eq!(config.idps[0].user_key, "mail");
    assert_eq!(ldap.user_filter, "(objectClass=inetOrgPerson)");
    assert_eq!(ldap.group_filter, ldap::DEFAULT_GROUP_FILTER);
    assert_eq!(
        (ldap.user_base_dn.as_str(), ldap.group_base_dn.as_str()),
        ("dc=example,dc=com", "dc=example,dc=com")
    );
    assert_eq!(ldap.user_id_attr, "entryUUID");
    assert_eq!(ldap.member_attrs, ["member", "uniqueMember"]);
    assert_eq!(ldap.member_uid_attr.as_deref(), Some("memberUid"));
    assert_eq!(
        (ldap.page_size, ldap.timeout),
        (500, Duration::from_secs(60))
    );
    assert!(ldap.bind_dn.is_none() && !ldap.active_directory);

    let text = with_ldap(
        "url = \"ldaps://dc1:636\"\nbase_dn = \"DC=corp,DC=example\"\nactive_directory = true\nin_chain = true\nbind_dn = \"CN=svc,DC=corp,DC=example\"\nbind_password = \"env:LDAP_PW\"\nuser_key = \"userPrincipalName\"",
    );
    let config = parse_env(&text, &[("LDAP_PW", "s3cret")]).unwrap();
    let ldap = ldap_of(&config);
    assert_eq!(config.idps[0].user_key, "userPrincipalName");
    assert_eq!(
        ldap.user_filter,
        "(&(objectCategory=person)(objectClass=user))"
    );
    assert_eq!(ldap.group_filter, "(objectClass=group)");
    assert_eq!(
        (ldap.user_id_attr.as_str(), ldap.uid_attr.as_str()),
        ("objectGUID", "sAMAccountName")
    );
    assert_eq!(ldap.member_attrs, ["member"]);
    assert!(ldap.member_uid_attr.is_none() && ldap.in_chain);
    assert!(
        !format!("{config:?}").contains("s3cret"),
        "the password never prints"
    );
}

#[test]
fn bad_ldap_settings_name_the_key() {
    let base = "url = \"ldap://dir:389\"\nbase_dn = \"dc=x\"";
    for (keys, expected) in [
        ("base_dn = \"dc=x\"", "an ldap IdP needs url"),
        (
            "url = \"http://dir\"\nbase_dn = \"dc=x\"",
            "idp[corp].url: \"http://dir\" is not an ldap:// or ldaps:// URL",
        ),
        ("url = \"ldap://dir\"", "an ldap IdP needs base_dn"),
        (
            "url = \"ldaps://dir\"\nbase_dn = \"dc=x\"\nstarttls = true",
            "idp[corp].starttls: starttls applies to ldap:// URLs",
        ),
        (
            &format!("{base}\nbind_dn = \"cn=svc,dc=x\""),
            "bind_dn and bind_password_file",
        ),
        (
            &format!("{base}\nbind_dn = \"cn=svc,dc=x\"\nbind_password = \"hunter2\""),
            "secrets are never written inline",
        ),
        (
            &format!("{base}\nin_chain = true"),
            "idp[corp].in_chain: in_chain (LDAP_MATCHING_RULE_IN_CHAIN) exists only on Active Directory",
        ),
        (
            &format!("{base}\nuser_filter = \"objectClass=person\""),
            "idp[corp].user_filter: \"objectClass=person\" is not an LDAP filter",
        ),
        (
            &format!("{base}\ngroup_filter = \"(|(cn=a)(cn=b)\""),
            "idp[corp].group_filter",
        ),
        (
            &format!("{base}\npage_size = 0"),
            "idp[corp].page_size: must be between 1 and 100000",
        ),
        (
            &format!("{base}\ntimeout = 0"),
            "idp[corp].timeout: must be more than zero",
        ),
        (
            &format!("{base}\ndisabled_value = \"x\""),
            "disabled_value needs disabled_attr",
        ),
        (
            &format!("{base}\nactive_directory = true\ndisabled_attr = \"x\""),
            "userAccountControl",
        ),
        (
            &format!("{base}\nuser_key = \" \""),
            "idp[corp].user_key: must name an attribute",
        ),
        (&format!("{base}\nsize_limit = 5"), "size_limit"),
    ] {
        let err = error(&with_ldap(keys));
        assert!(err.contains(expected), "{keys}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    let chain = with_ldap(&format!("{base}\nactive_directory = true\nin_chain = true"));
    let err = error(&chain.replace("nested = true", "nested = false"));
    assert!(
        err.contains("idp[corp].in_chain: in_chain expands nested groups on the server; it needs nested = true"),
        "{err}"
    );
}
