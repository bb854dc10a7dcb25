//! The LDAP IdP (`kind = "ldap"`) through the real binary against a real OpenLDAP server: one
//! throwaway `slapd` per test ([`crate::slapd`]) loaded with the fixture of
//! [`crate::ldap_fixture`], bound as a non-root service account so the server's size limit of 500
//! applies.
//!
//! Covered: a full sync into the embedded store (paging beyond the size limit, the three group
//! schemas, nested groups with a cycle across schemas, a name with filter metacharacters mapped
//! by name and by DN in another case, disabled and mail-less users); the empty-source guard; a
//! read cut off halfway ([`crate::cut_proxy`]) failing that IdP only; a refused bind, a missing
//! base DN, an unreachable server; ldaps and StartTLS with and without the CA; the removal
//! guard; the unchanged check on `contextCSN`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::{Env, changes};
use crate::cut_proxy::CutProxy;
use crate::ldap_fixture::{
    ALL_TEAMS, ENGINEERING, Fixture, MARKETING, OPS, PLACEHOLDER, PLATFORM, SALES, STAFF, Schema,
    key, replace_members, user_dn,
};
use crate::slapd::{Slapd, free_port};

/// What a test folder's configuration starts with.
const DAEMON: &str = "[daemon]\nstate = \"state/idpsync.db\"\nrun_wait = 1\n\n";

/// The mappings of the full sync: (IdP group as written in the mapping, target group, stage,
/// fixture group). The platform group and the metacharacter group are mapped by DN in another
/// case and spacing (the latter with `\\` where the entry's DN has `\5C`), the others by name.
const MAPPINGS: &[(&str, &str, &str, &str)] = &[
    ("staff", "Staff", "production", STAFF),
    ("engineering", "Engineering", "production", ENGINEERING),
    (
        "CN=Platform, OU=Groups, DC=Example, DC=Com",
        "Platform",
        "production",
        PLATFORM,
    ),
    ("ops", "Ops", "production", OPS),
    ("all-teams", "All Teams", "production", ALL_TEAMS),
    (SALES, "Sales", "production", SALES),
    (
        r"CN = SALES (EU) *\\ TEAM,OU=groups, dc=EXAMPLE,dc=com",
        "Sales",
        "qa",
        SALES,
    ),
    ("marketing", "Marketing", "production", MARKETING),
];

/// `value` as a TOML string.
fn toml(value: &str) -> String {
    serde_json::to_string(value).unwrap()
}

/// An `[[idp]]` of kind ldap named `name` at `url`, bound as the service account (password in
/// `ldap.password`), reading the fixture's bases with nested groups and the fixture's disabled
/// marker; `extra` holds more keys.
fn ldap_idp(slapd: &Slapd, name: &str, url: &str, extra: &str) -> String {
    format!(
        "[[idp]]\nname = {}\nkind = \"ldap\"\nurl = {}\nbind_dn = {}\nbind_password_file = \"ldap.password\"\n\
         base_dn = {}\nuser_base_dn = \"ou=people,dc=example,dc=com\"\ngroup_base_dn = \"ou=groups,dc=example,dc=com\"\n\
         disabled_attr = \"employeeType\"\ndisabled_value = \"disabled\"\nnested = true\n{extra}\n\n",
        toml(name),
        toml(url),
        toml(&slapd.bind_dn),
        toml(&slapd.base_dn),
    )
}

/// The declared groups and mappings of [`MAPPINGS`] for IdP `idp`.
fn groups_and_mappings(idp: &str) -> String {
    let mut out = String::new();
    let mut declared = BTreeSet::new();
    for (idp_group, group, stage, _) in MAPPINGS {
        if declared.insert((group, stage)) {
            out.push_str(&format!(
                "[[group]]\nname = {}\nstage = {}\n\n",
                toml(group),
                toml(stage)
            ));
        }
        out.push_str(&format!(
            "[[mapping]]\nidp = {}\nidp_group = {}\ngroup = {}\nstage = {}\n\n",
            toml(idp),
            toml(idp_group),
            toml(group),
            toml(stage)
        ));
    }
    out
}

/// A test folder for IdP `corp` at `url` (the server's own when `None`) with [`MAPPINGS`] and
/// the service account's password in `ldap.password`.
fn setup(slapd: &Slapd, url: Option<&str>, extra: &str) -> Env {
    let env = Env::empty();
    std::fs::write(env.path("ldap.password"), &slapd.bind_password).unwrap();
    let url = url.map_or_else(|| slapd.url(), str::to_owned);
    env.write_config(&format!(
        "{DAEMON}{}{}",
        ldap_idp(slapd, "corp", &url, extra),
        groups_and_mappings("corp")
    ));
    env
}

/// A server loaded with the standard fixture.
fn start() -> (Slapd, Fixture) {
    let fixture = Fixture::new();
    (Slapd::start(&fixture.ldif()), fixture)
}

/// The members of `stage/group` in the store, each checked to hold exactly `provenance`.
fn members(env: &Env, group: &str, stage: &str, provenance: &[&str]) -> BTreeSet<String> {
    let out = env.run(&[
        "groups", "show", group, "--stage", stage, "--output", "json",
    ]);
    out.expect(0);
    let doc = out.json();
    doc["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members in {doc:#}"))
        .iter()
        .map(|m| {
            assert_eq!(m["provenance"], json!(provenance), "{group}: {m}");
            m["user"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// How many memberships the full sync of the fixture adds.
fn expected_adds(fixture: &Fixture) -> usize {
    MAPPINGS
        .iter()
        .map(|(_, _, _, cn)| fixture.expected(cn).len())
        .sum()
}

/// `check --connect`'s line for a good read of the fixture at `url`.
fn connect_line(fixture: &Fixture, url: &str) -> String {
    format!(
        "  idp corp: ldap {url}: {} users ({} usable, {} without a user key), {} groups",
        fixture.users_total(),
        fixture.usable(),
        fixture.without_key(),
        fixture.groups.len()
    )
}

/// `check --connect` fails: exit 1 and a `FAILED` line for `corp` at `url` whose error holds
/// every one of `needles`. Returns the line.
fn connect_fails(env: &Env, url: &str, needles: &[&str]) -> String {
    let out = env.run(&["check", "--connect"]);
    out.expect(1);
    let prefix = format!("  idp corp: ldap {url}: FAILED: ");
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} on stdout: {out:?}"))
        .to_owned();
    for needle in needles {
        assert!(line.contains(needle), "{needle:?} is not in {line:?}");
    }
    line
}

/// A reconcile that fails IdP `corp` alone: exit 1, one failed IdP whose error holds every one
/// of `needles`, nothing of it planned.
fn reconcile_fails(env: &Env, needles: &[&str]) -> Value {
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 1, "{doc:#}");
    let failed = doc["failed_idps"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{doc:#}");
    assert_eq!(failed[0]["idp"], "corp");
    let error = failed[0]["error"].as_str().unwrap();
    for needle in needles {
        assert!(error.contains(needle), "{needle:?} is not in {error:?}");
    }
    assert!(
        changes(&doc["adds"]).iter().all(|c| !c.contains(" corp ")),
        "{doc:#}"
    );
    assert!(
        changes(&doc["removes"])
            .iter()
            .all(|c| !c.contains(" corp ")),
        "{doc:#}"
    );
    doc
}

#[test]
fn ldap_full_sync_pages_past_the_size_limit_and_expands_every_schema() {
    let (slapd, fixture) = start();
    let env = setup(&slapd, None, "");

    // check --connect reads everything: 1,250 users through a size limit of 500.
    let out = env.run(&["check", "--connect"]);
    out.expect(0);
    let line = connect_line(&fixture, &slapd.url());
    assert!(out.stdout.lines().any(|l| l == line), "{line:?} in {out:?}");

    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["failed_idps"], json!([]), "{doc:#}");
    assert_eq!(doc["refused"], json!([]), "{doc:#}");
    assert_eq!(doc["inactive_mappings"], json!([]), "{doc:#}");
    assert_eq!(doc["summary"]["skipped_users"], fixture.without_key());
    assert_eq!(doc["summary"]["adds"], expected_adds(&fixture));
    assert_eq!(doc["summary"]["removes"], 0);

    // Each add names the mapping's idp_group text as its cause.
    let adds = changes(&doc["adds"]);
    for (idp_group, group, stage, cn) in MAPPINGS {
        let sample = fixture.expected(cn).into_iter().next().unwrap();
        let line = format!("{stage}/{group} {sample} corp {idp_group}");
        assert!(adds.contains(&line), "{line:?} not among the adds");
    }

    // Exactly the expected members, mapping by mapping.
    for (_, group, stage, cn) in MAPPINGS {
        let expected = fixture.expected(cn);
        assert!(!expected.is_empty(), "{cn}");
        assert_eq!(
            members(&env, group, stage, &["idp:corp"]),
            expected,
            "{stage}/{group} from {cn}"
        );
    }

    // The particular cases, spelled out.
    let staff = members(&env, "Staff", "production", &["idp:corp"]);
    assert!(
        staff.len() > 500,
        "paged past the size limit: {}",
        staff.len()
    );
    assert!(
        staff.contains("user0042@example.com"),
        "mixed-case mail, lower-cased"
    );
    assert!(staff.contains("user0699@example.com"));
    assert!(!staff.contains("user0700@example.com"), "not a member");
    for disabled in [7, 16] {
        // employeeType "disabled" and "DISABLED": both disable.
        assert!(key(disabled).is_none());
        assert!(
            !staff
                .iter()
                .any(|u| u.starts_with(&format!("user{disabled:04}@")))
        );
    }
    assert!(
        staff.contains("user0003@example.com"),
        "employeeType contractor is enabled"
    );
    let engineering = members(&env, "Engineering", "production", &["idp:corp"]);
    assert!(
        engineering.contains("user0701@example.com"),
        "member DN in another case"
    );
    assert!(
        engineering.contains("user0725@example.com"),
        "through platform, #'0101'B stripped"
    );
    assert_eq!(
        engineering,
        members(&env, "Platform", "production", &["idp:corp"]),
        "the cycle across schemas gives both groups the same members"
    );
    let ops = members(&env, "Ops", "production", &["idp:corp"]);
    assert!(ops.contains("user0730@example.com"), "memberUid");
    assert!(ops.contains("user0739@example.com"), "memberUid USER0739");
    let all = members(&env, "All Teams", "production", &["idp:corp"]);
    assert!(all.is_superset(&engineering) && all.is_superset(&ops));
    assert_eq!(
        members(&env, "Sales", "production", &["idp:corp"]),
        members(&env, "Sales", "qa", &["idp:corp"]),
        "the metacharacter group by name and by DN"
    );

    // A second run changes nothing.
    let (code, again) = env.reconcile(&["--full"]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(
        (&again["summary"]["adds"], &again["summary"]["removes"]),
        (&json!(0), &json!(0)),
        "{again:#}"
    );
}

#[test]
fn ldap_small_pages_and_an_anonymous_bind_read_the_same() {
    let (slapd, fixture) = start();
    // Anonymous: no bind_dn; the size limit applies to anonymous searches as well.
    let env = Env::empty();
    env.write_config(&format!(
        "{DAEMON}[[idp]]\nname = \"corp\"\nkind = \"ldap\"\nurl = {}\nbase_dn = \"dc=example,dc=com\"\n\
         user_base_dn = \"ou=people,dc=example,dc=com\"\ngroup_base_dn = \"ou=groups,dc=example,dc=com\"\n\
         disabled_attr = \"employeeType\"\ndisabled_value = \"disabled\"\nnested = true\npage_size = 97\n\n{}",
        toml(&slapd.url()),
        groups_and_mappings("corp")
    ));
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["summary"]["adds"], expected_adds(&fixture));
    assert_eq!(
        members(&env, "Staff", "production", &["idp:corp"]),
        fixture.expected(STAFF)
    );
}

#[test]
fn ldap_mappings_match_a_dn_in_any_case_but_a_name_exactly_and_nesting_can_be_off() {
    let (slapd, fixture) = start();
    let env = Env::empty();
    std::fs::write(env.path("ldap.password"), &slapd.bind_password).unwrap();
    let mut config = format!(
        "{DAEMON}{}",
        ldap_idp(&slapd, "corp", &slapd.url(), "member_uid_attr = \"\"")
    )
    .replace("nested = true", "nested = false");
    for (idp_group, group) in [
        ("STAFF", "Staff"),
        ("Engineering", "Engineering"),
        (
            " cn = ENGINEERING , ou=Groups,DC=example,dc=COM",
            "Engineering DN",
        ),
        ("all-teams", "All Teams"),
        ("ops", "Ops"),
        ("cn=nobody,dc=example,dc=com", "Nobody"),
    ] {
        config.push_str(&format!(
            "[[group]]\nname = {}\nstage = \"production\"\n\n\
             [[mapping]]\nidp = \"corp\"\nidp_group = {}\ngroup = {}\nstage = \"production\"\n\n",
            toml(group),
            toml(idp_group),
            toml(group)
        ));
    }
    env.write_config(&config);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    // A name matches exactly (case-sensitive); the placeholder is no group.
    let mut inactive: Vec<(String, String)> = doc["inactive_mappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["idp_group"].as_str().unwrap().to_owned(),
                m["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    inactive.sort();
    assert_eq!(
        inactive,
        [
            ("Engineering".to_owned(), "idp_group_not_found".to_owned()),
            ("STAFF".to_owned(), "idp_group_not_found".to_owned()),
            (
                "cn=nobody,dc=example,dc=com".to_owned(),
                "idp_group_not_found".to_owned()
            ),
        ],
        "{doc:#}"
    );
    // A DN matches in any case and spacing; without nesting only the group's own users count.
    let engineering = members(&env, "Engineering DN", "production", &["idp:corp"]);
    assert_eq!(engineering, fixture.direct_by_dn(ENGINEERING));
    assert!(
        !engineering.contains("user0725@example.com"),
        "platform not expanded"
    );
    assert!(members(&env, "All Teams", "production", &["idp:corp"]).is_empty());
    // member_uid_attr = "": memberUid values are not read.
    assert!(members(&env, "Ops", "production", &["idp:corp"]).is_empty());
    assert_eq!(doc["summary"]["adds"], engineering.len(), "{doc:#}");
}

#[test]
fn ldap_empty_source_guard_refuses_a_group_emptied_to_the_placeholder() {
    let (slapd, fixture) = start();
    let env = setup(&slapd, None, "");
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    let before = members(&env, "Marketing", "production", &["idp:corp"]);
    assert_eq!(before, fixture.expected(MARKETING));

    slapd.modify(&replace_members(
        MARKETING,
        Schema::Names,
        &[PLACEHOLDER.to_owned()],
    ));
    for _ in 0..2 {
        let (code, doc) = env.reconcile(&[]);
        assert_eq!(code, 3, "{doc:#}");
        let refused = doc["refused"].as_array().unwrap();
        assert_eq!(refused.len(), 1, "{doc:#}");
        assert_eq!(refused[0]["idp"], "corp");
        assert_eq!(refused[0]["guard"], "empty");
        assert!(
            refused[0]["allow"]
                .as_str()
                .unwrap()
                .contains("--allow-empty"),
            "{doc:#}"
        );
        assert_eq!(doc["failed_idps"], json!([]));
        assert_eq!(
            members(&env, "Marketing", "production", &["idp:corp"]),
            before,
            "nobody was removed"
        );
    }

    // Let through on purpose: marketing's members go.
    let (code, doc) = env.reconcile(&["--allow-empty"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["summary"]["removes"], before.len(), "{doc:#}");
    assert!(members(&env, "Marketing", "production", &["idp:corp"]).is_empty());
}

#[test]
fn ldap_read_cut_off_halfway_fails_that_idp_only() {
    let (slapd, fixture) = start();
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], slapd.port()));

    // The first run reads the server directly and applies; hr, a file IdP, adds ana.
    let env = Env::empty();
    std::fs::write(env.path("ldap.password"), &slapd.bind_password).unwrap();
    let hr_block = "[[idp]]\nname = \"hr\"\nkind = \"file\"\npath = \"hr.json\"\n\n\
                    [[group]]\nname = \"People\"\nstage = \"production\"\n\n\
                    [[mapping]]\nidp = \"hr\"\nidp_group = \"Everyone\"\ngroup = \"People\"\nstage = \"production\"\n\n";
    let write = |url: &str| {
        env.write_config(&format!(
            "{DAEMON}{}{hr_block}{}",
            ldap_idp(&slapd, "corp", url, ""),
            groups_and_mappings("corp")
        ))
    };
    let hr = |members: &[String]| {
        let users: Vec<Value> = members
            .iter()
            .map(|m| json!({"id": m, "email": format!("{m}@example.com")}))
            .collect();
        env.write_export(
            "hr.json",
            &json!({"users": users, "groups": [{"id": "g1", "name": "Everyone", "members": members}]}),
        );
    };
    write(&slapd.url());
    let mut people = vec!["ana".to_owned()];
    hr(&people);
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    let staff = members(&env, "Staff", "production", &["idp:corp"]);
    assert_eq!(staff, fixture.expected(STAFF));

    // How many messages a whole read takes: a dry run through a proxy that never cuts.
    let whole = CutProxy::start(upstream, usize::MAX);
    write(&whole.url());
    let (code, doc) = env.reconcile(&["--dry-run"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["summary"]["adds"], 0, "{doc:#}");
    let total = whole.most_messages();
    assert!(total > fixture.users_total(), "{total} messages");

    // Cut after the bind, halfway through the users (past the first page of 500), and one
    // message before the end. Each time hr gains someone in the same run, and applies.
    for after in [1, 700, total - 1] {
        let proxy = CutProxy::start(upstream, after);
        write(&proxy.url());
        let newcomer = format!("new{after}");
        people.push(newcomer.clone());
        hr(&people);
        let doc = reconcile_fails(&env, &[]);
        assert_eq!(proxy.cuts(), 1, "cut after {after} messages");
        assert_eq!(
            changes(&doc["adds"]),
            [format!(
                "production/People {newcomer}@example.com hr Everyone"
            )],
            "hr applies (cut after {after})"
        );
        assert_eq!(doc["removes"], json!([]), "a partial read removes nobody");
        assert_eq!(doc["refused"], json!([]));
        assert_eq!(
            members(&env, "Staff", "production", &["idp:corp"]),
            staff,
            "corp's memberships are untouched (cut after {after})"
        );
        assert!(
            members(&env, "People", "production", &["idp:hr"])
                .contains(&format!("{newcomer}@example.com"))
        );
    }

    // check --connect fails the same way.
    let proxy = CutProxy::start(upstream, 700);
    write(&proxy.url());
    connect_fails(&env, &proxy.url(), &[]);
    assert_eq!(proxy.cuts(), 1);
}

#[test]
fn ldap_refused_bind_fails_the_idp_and_check_says_so() {
    let (slapd, _) = start();
    let env = setup(&slapd, None, "");
    std::fs::write(env.path("ldap.password"), "not-the-password").unwrap();
    let refused = format!("bind as \"{}\" refused", slapd.bind_dn);
    connect_fails(&env, &slapd.url(), &[&refused]);
    reconcile_fails(&env, &[&refused]);
    assert!(
        members(&env, "Staff", "production", &[]).is_empty(),
        "nothing applied"
    );
    // The run record keeps what kind of failure it was: credentials, for an operator to fix.
    assert_eq!(error_kind(&env), "unauthorized");
}

/// The `error_kind` of the IdP's last run, as `status --output json` shows it.
fn error_kind(env: &Env) -> String {
    let out = env.run(&["status", "--output", "json"]);
    out.expect(0);
    out.json()["idps"][0]["last_run"]["error_kind"]
        .as_str()
        .unwrap_or_else(|| panic!("no error_kind: {}", out.stdout))
        .to_owned()
}

#[test]
fn ldap_missing_base_dn_and_unreachable_server_fail_with_their_reason() {
    let (slapd, _) = start();
    let missing = "ou=missing,dc=example,dc=com";
    let env = Env::empty();
    std::fs::write(env.path("ldap.password"), &slapd.bind_password).unwrap();
    env.write_config(&format!(
        "{DAEMON}[[idp]]\nname = \"corp\"\nkind = \"ldap\"\nurl = {}\nbind_dn = {}\n\
         bind_password_file = \"ldap.password\"\nbase_dn = {}\n\n{}",
        toml(&slapd.url()),
        toml(&slapd.bind_dn),
        toml(missing),
        groups_and_mappings("corp")
    ));
    connect_fails(&env, &slapd.url(), &["no such object", missing]);
    reconcile_fails(&env, &["no such object", missing]);
    assert_eq!(
        error_kind(&env),
        "invalid",
        "a base DN that does not exist is the configuration's"
    );

    // Nothing listens on this port (it was free a moment ago).
    let url = format!("ldap://127.0.0.1:{}", free_port());
    let env = setup(&slapd, Some(&url), "connect_timeout = \"5s\"");
    connect_fails(&env, &url, &[&format!("cannot connect to {url}")]);
    reconcile_fails(&env, &[&format!("cannot connect to {url}")]);
    assert_eq!(error_kind(&env), "unavailable");
}

#[test]
fn ldap_ldaps_and_starttls_need_the_ca() {
    let fixture = Fixture::new();
    let slapd = Slapd::start_tls(&fixture.ldif());
    let ldaps = slapd.ldaps_url();
    let plain = slapd.url();
    let env = setup(&slapd, Some(&ldaps), "");
    std::fs::copy(slapd.ca_file(), env.path("ca.pem")).unwrap();
    let configure = |url: &str, extra: &str| {
        env.write_config(&format!(
            "{DAEMON}{}{}",
            ldap_idp(&slapd, "corp", url, extra),
            groups_and_mappings("corp")
        ))
    };

    // With the CA (a path relative to the configuration's folder): both ways work.
    for (url, extra) in [
        (&ldaps, "ca_file = \"ca.pem\""),
        (&plain, "starttls = true\nca_file = \"ca.pem\""),
        (&ldaps, "tls_insecure = true"),
    ] {
        configure(url, extra);
        let out = env.run(&["check", "--connect"]);
        out.expect(0);
        let line = connect_line(&fixture, url);
        assert!(
            out.stdout.lines().any(|l| l == line),
            "{extra}: {line:?} in {out:?}"
        );
    }
    configure(&ldaps, "ca_file = \"ca.pem\"");
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["summary"]["adds"], expected_adds(&fixture));

    // Without it, the server's certificate is not trusted: a TLS error, for both ways.
    for (url, extra) in [(&ldaps, ""), (&plain, "starttls = true")] {
        configure(url, extra);
        connect_fails(&env, url, &["TLS"]);
        reconcile_fails(&env, &["TLS"]);
    }
}

#[test]
fn ldap_removal_guard_refuses_many_removals_until_allowed() {
    let (slapd, fixture) = start();
    let env = setup(&slapd, None, "");
    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 0, "{doc:#}");
    let staff = members(&env, "Staff", "production", &["idp:corp"]);

    // 300 of staff's 700 members leave.
    let mut change = format!(
        "dn: {}\nchangetype: modify\ndelete: member\n",
        crate::ldap_fixture::group_dn(STAFF)
    );
    for i in 0..300 {
        change.push_str(&format!("member: {}\n", user_dn(i)));
    }
    change.push_str("-\n");
    slapd.modify(&change);
    let leaving: BTreeSet<String> = (0..300).filter_map(key).collect();
    let removals = leaving.len();
    assert!(removals > 10);

    let (code, doc) = env.reconcile(&[]);
    assert_eq!(code, 3, "{doc:#}");
    let refused = &doc["refused"][0];
    assert_eq!(refused["idp"], "corp", "{doc:#}");
    assert_eq!(refused["guard"], "removals", "{doc:#}");
    assert_eq!(refused["removals"], removals, "{doc:#}");
    assert!(refused["limit"].as_u64().unwrap() < removals as u64);
    let allow = format!("--allow-removals {removals}");
    assert!(
        refused["allow"].as_str().unwrap().contains(&allow),
        "{doc:#}"
    );
    assert_eq!(members(&env, "Staff", "production", &["idp:corp"]), staff);

    // One less than needed is still refused.
    let fewer = (removals - 1).to_string();
    let (code, doc) = env.reconcile(&["--allow-removals", &fewer]);
    assert_eq!(code, 3, "{doc:#}");
    assert_eq!(members(&env, "Staff", "production", &["idp:corp"]), staff);

    let (code, doc) = env.reconcile(&["--allow-removals", &removals.to_string()]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["summary"]["removes"], removals, "{doc:#}");
    assert_eq!(doc["summary"]["adds"], 0, "{doc:#}");
    let expected: BTreeSet<String> = staff.difference(&leaving).cloned().collect();
    assert_eq!(
        members(&env, "Staff", "production", &["idp:corp"]),
        expected
    );
    assert_eq!(expected, {
        let mut after = fixture.clone();
        after
            .groups
            .iter_mut()
            .find(|g| g.cn == STAFF)
            .unwrap()
            .members
            .drain(..300);
        after.expected(STAFF)
    });
}

#[test]
fn ldap_unchanged_check_follows_context_csn() {
    let (slapd, fixture) = start();
    // Through a proxy that never cuts: it counts what each run reads.
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], slapd.port()));
    let proxy = CutProxy::start(upstream, usize::MAX);
    let env = setup(&slapd, Some(&proxy.url()), "");
    // Runs `reconcile` with `args`: its outcome and how many messages the server sent.
    let run = |args: &[&str]| {
        let before = proxy.messages();
        let out = env.run(&[&["reconcile", "--output", "json"][..], args].concat());
        out.expect(0);
        (out.stderr.clone(), out.json(), proxy.messages() - before)
    };
    const UNCHANGED: &str = "Unchanged since its last applied read";

    let (_, doc, read) = run(&[]);
    assert_eq!(doc["summary"]["adds"], expected_adds(&fixture));
    assert!(read > fixture.users_total(), "a full read: {read} messages");

    // Nothing moved: the IdP is not read (a few messages for contextCSN), the plan is empty.
    let (stderr, doc, read) = run(&[]);
    assert!(stderr.contains(UNCHANGED), "{stderr}");
    assert!(read < 20, "only the marker is read: {read} messages");
    assert_eq!((&doc["adds"], &doc["removes"]), (&json!([]), &json!([])));
    assert_eq!(doc["summary"]["skipped_users"], fixture.without_key());

    // A write on the server moves contextCSN: the next run reads it and applies it.
    let before = slapd.values(&slapd.base_dn, "contextCSN");
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n-\n",
        crate::ldap_fixture::group_dn(MARKETING),
        user_dn(760)
    ));
    assert_ne!(slapd.values(&slapd.base_dn, "contextCSN"), before);
    let (stderr, doc, read) = run(&[]);
    assert!(!stderr.contains(UNCHANGED), "{stderr}");
    assert!(read > fixture.users_total(), "read again: {read} messages");
    assert_eq!(
        changes(&doc["adds"]),
        ["production/Marketing user0760@example.com corp marketing"]
    );
    assert_eq!(doc["removes"], json!([]));

    // Unchanged again; --full reads all the same and finds nothing to do.
    let (stderr, _, read) = run(&[]);
    assert!(stderr.contains(UNCHANGED), "{stderr}");
    assert!(read < 20, "{read} messages");
    let (stderr, doc, read) = run(&["--full"]);
    assert!(!stderr.contains(UNCHANGED), "{stderr}");
    assert!(
        read > fixture.users_total(),
        "--full reads: {read} messages"
    );
    assert_eq!((&doc["adds"], &doc["removes"]), (&json!([]), &json!([])));
    assert_eq!(proxy.cuts(), 0);
}
