//! The LDAP IdP in Active Directory mode (`kind = "ldap"`, `active_directory = true`, see
//! the LDAP contract of issue 5) through the real binary, against the fake AD of [`crate::fake_ad`]
//! running inside the test process: userAccountControl, objectGUID ids, range retrieval past
//! MaxValRange, paging past MaxPageSize, nested groups on the client and with
//! LDAP_MATCHING_RULE_IN_CHAIN, RFC 4515 escaping, the highestCommittedUSN unchanged check, and
//! failures (a refused bind, a connection cut) that must change nothing.

use serde_json::{Value, json};

use crate::common::{Env, Outcome, changes};
use crate::fake_ad::{
    Cut, DOMAIN, FakeAd, GROUPS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, SearchSeen, User,
};

/// The stage every mapping of these tests targets.
const STAGE: &str = "production";

/// A folder whose configuration reads `ad` as IdP `corp` (Active Directory mode, users under
/// `OU=People`, groups anywhere in the domain), with `extra` keys in the `[[idp]]` table and one
/// declared group plus mapping per `(idp_group, group)`.
fn env_for(ad: &FakeAd, extra: &str, mappings: &[(&str, &str)]) -> Env {
    let env = Env::empty();
    std::fs::write(env.path("ad.password"), format!("{SERVICE_PASSWORD}\n")).unwrap();
    let mut config = format!(
        r#"[daemon]
state = "state/idpsync.db"
run_wait = 1

[[idp]]
name = "corp"
kind = "ldap"
active_directory = true
url = "{url}"
bind_dn = "{SERVICE_DN}"
bind_password_file = "ad.password"
base_dn = "{DOMAIN}"
user_base_dn = "{PEOPLE}"
connect_timeout = 5
timeout = 20
{extra}
"#,
        url = ad.url()
    );
    for (idp_group, group) in mappings {
        config.push_str(&format!(
            "\n[[group]]\nname = \"{group}\"\nstage = \"{STAGE}\"\n\n[[mapping]]\nidp = \"corp\"\nidp_group = '{idp_group}'\ngroup = \"{group}\"\nstage = \"{STAGE}\"\n"
        ));
    }
    assert!(ad.url().starts_with("ldap://127.0.0.1:"));
    env.write_config(&config);
    env
}

/// `reconcile --output json` plus `args`, expecting `code`.
fn reconcile(env: &Env, args: &[&str], code: i32) -> (Outcome, Value) {
    let mut all = vec!["reconcile", "--output", "json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    out.expect(code);
    let doc = out.json();
    (out, doc)
}

/// The sorted user keys of a declared group, from `groups show --output json`.
fn members(env: &Env, group: &str) -> Vec<String> {
    let out = env.run(&[
        "groups", "show", group, "--stage", STAGE, "--output", "json",
    ]);
    out.expect(0);
    let mut users: Vec<String> = out.json()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"].as_str().unwrap().to_owned())
        .collect();
    users.sort();
    users
}

/// `<sam>@corp.example` for each name, sorted.
fn keys(names: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = names.iter().map(|n| format!("{n}@corp.example")).collect();
    keys.sort();
    keys
}

/// Every (user key, stored immutable id of IdP `corp`) of the state file.
fn stored_ids(env: &Env) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open_with_flags(
        env.state_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut statement = conn
        .prepare("SELECT u.key, i.external_id FROM users u JOIN user_ids i ON i.user_id = u.id ORDER BY u.key")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Whether `text` is a GUID in its usual text form (8-4-4-4-12 lower-case hex digits).
fn is_guid_text(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| {
            p.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        })
}

#[test]
fn disabled_accounts_are_not_members_and_the_object_guid_is_the_stored_id() {
    let ad = FakeAd::start();
    // 66048 = NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD: enabled; the bit test is not an equality.
    let ana = User::new("ana").with_account_control(66048).with_guid([
        0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x46, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ]);
    let ana_dn = ad.add_user(&ana);
    let ben_dn = ad.add_user(&User::new("ben").disabled());
    let cid_dn = ad.add_user(&User::new("cid").without_mail());
    let dan_dn = ad.add_user(&User::new("dan"));
    // A GUID whose 16 bytes happen to be valid UTF-8 reaches the client as text, not binary.
    let eli_dn = ad.add_user(&User::new("eli").with_guid(*b"0123456789abcdef"));
    ad.add_group(
        "Marketing Team",
        &[
            ana_dn.clone(),
            eli_dn,
            ben_dn,
            cid_dn,
            // A member that names nothing read is ignored.
            "CN=Gone,OU=Elsewhere,DC=corp,DC=example".to_owned(),
        ],
    );
    ad.add_group("Sales", &[dan_dn]);
    let env = env_for(&ad, "", &[("Marketing Team", "Marketing")]);

    let check = env.run(&["check", "--connect"]);
    check.expect(0);
    assert!(
        check
            .stdout
            .contains(&format!("idp corp: ldap {}: 5 users (", ad.url()))
            && check.stdout.contains("1 without a user key), 2 groups"),
        "{}",
        check.stdout
    );

    let (_, doc) = reconcile(&env, &[], 0);
    assert_eq!(
        changes(&doc["adds"]),
        [
            "production/Marketing ana@corp.example corp Marketing Team",
            "production/Marketing eli@corp.example corp Marketing Team"
        ],
        "ben is disabled (userAccountControl 514), cid has no mail: {doc:#}"
    );
    assert_eq!(doc["summary"]["skipped_users"], 1, "{doc:#}");
    assert_eq!(doc["failed_idps"], json!([]));
    // objectGUID arrives as 16 raw bytes; its text form (first three fields byte-swapped) is
    // the immutable id stored beside the key.
    let ids = stored_ids(&env);
    assert!(
        ids.contains(&(
            "ana@corp.example".to_owned(),
            "00112233-4455-4677-8899-aabbccddeeff".to_owned()
        )) && ids.contains(&(
            "eli@corp.example".to_owned(),
            "33323130-3534-3736-3839-616263646566".to_owned()
        )),
        "{ids:?}"
    );
    for (key, id) in &ids {
        assert!(is_guid_text(id), "{key}: {id:?} is not a GUID's text form");
    }

    // Disabling ana (514 | 65536) takes her out at the next run.
    ad.set_account_control(&ana_dn, 66050);
    let (_, doc) = reconcile(&env, &[], 0);
    assert_eq!(
        changes(&doc["removes"]),
        ["production/Marketing ana@corp.example corp Marketing Team"],
        "{doc:#}"
    );
    assert_eq!(members(&env, "Marketing"), keys(&["eli"]));
}

#[test]
fn user_principal_name_as_the_user_key() {
    let ad = FakeAd::start();
    let ana = ad.add_user(&User::new("ana").without_mail());
    let ben = ad.add_user(&User::new("ben").disabled().without_mail());
    ad.add_group("Team", &[ana, ben]);
    let env = env_for(
        &ad,
        r#"user_key = "userPrincipalName""#,
        &[("Team", "Team")],
    );
    let (_, doc) = reconcile(&env, &[], 0);
    assert_eq!(
        changes(&doc["adds"]),
        ["production/Team ana@corp.example corp Team"],
        "{doc:#}"
    );
    assert_eq!(doc["summary"]["skipped_users"], 0);
}

#[test]
fn a_missing_base_fails_check_and_the_read() {
    let ad = FakeAd::start();
    let amy = ad.add_user(&User::new("amy"));
    ad.add_group("Team", &[amy]);
    let env = env_for(
        &ad,
        r#"group_base_dn = "OU=Nowhere,DC=corp,DC=example""#,
        &[("Team", "Team")],
    );
    let check = env.run(&["check", "--connect"]);
    check.expect(1);
    assert!(
        check.stdout.contains(": FAILED: ")
            && check.stdout.contains("no such object")
            && check.stdout.contains("OU=Nowhere,DC=corp,DC=example"),
        "{}",
        check.stdout
    );
    let (_, doc) = reconcile(&env, &[], 1);
    assert_eq!(doc["failed_idps"][0]["idp"], "corp", "{doc:#}");
    assert_eq!(doc["adds"], json!([]));
}

#[test]
fn a_group_over_max_val_range_reconciles_completely_through_range_retrieval() {
    let ad = FakeAd::start();
    let users: Vec<User> = (0..3200).map(|i| User::new(&format!("u{i:04}"))).collect();
    let dns = ad.add_users(&users);
    let big = ad.add_group("All Staff", &dns);
    ad.add_group("Small", &dns[..2]);
    // The DN in another case and spacing matches too.
    let env = env_for(
        &ad,
        "",
        &[
            ("cn=all staff, ou=GROUPS, dc=corp, dc=example", "Staff"),
            ("Small", "Small"),
        ],
    );
    let (_, doc) = reconcile(&env, &[], 0);
    assert_eq!(doc["summary"]["adds"], 3202, "{}", doc["failed_idps"]);
    let staff = members(&env, "Staff");
    assert_eq!(staff.len(), 3200);
    assert_eq!(staff, {
        let mut all: Vec<String> = users.iter().map(|u| u.mail.clone().unwrap()).collect();
        all.sort();
        all
    });

    // 3200 = 0-1499, then 1500-* answered 1500-2999, then 3000-*: base searches of the group.
    let stats = ad.stats();
    let asked: Vec<&SearchSeen> = stats
        .search_log
        .iter()
        .filter(|s| s.attrs.iter().any(|a| a.contains(";range=")))
        .collect();
    assert_eq!(stats.range_requests, 2, "{asked:#?}");
    assert_eq!(
        asked
            .iter()
            .map(|s| (s.base.to_lowercase(), s.scope, s.attrs.join(",")))
            .collect::<Vec<_>>(),
        [
            (big.to_lowercase(), "base", "member;range=1500-*".to_owned()),
            (big.to_lowercase(), "base", "member;range=3000-*".to_owned())
        ],
        "{asked:#?}"
    );
    assert_eq!(stats.ranged_entries, 3);

    // A full read again finds the same 3200: nothing to remove.
    let (_, doc) = reconcile(&env, &["--full"], 0);
    assert_eq!(
        (&doc["summary"]["adds"], &doc["summary"]["removes"]),
        (&json!(0), &json!(0)),
        "{doc:#}"
    );
}

#[test]
fn more_users_than_max_page_size_arrive_through_paging() {
    let ad = FakeAd::start();
    let dns = ad.add_users(
        &(0..1234)
            .map(|i| User::new(&format!("p{i:04}")))
            .collect::<Vec<_>>(),
    );
    ad.add_group("Everyone", &dns);
    // Asking for more than AD's MaxPageSize per page: AD answers 1000 at a time anyway.
    let env = env_for(&ad, "page_size = 5000", &[("Everyone", "Everyone")]);
    let (_, doc) = reconcile(&env, &[], 0);
    assert_eq!(doc["summary"]["adds"], 1234, "{}", doc["failed_idps"]);
    assert_eq!(members(&env, "Everyone").len(), 1234);
    let stats = ad.stats();
    assert_eq!(stats.size_limit_exceeded, 0, "every search is paged");
    for search in stats.search_log.iter().filter(|s| s.scope != "base") {
        assert!(search.page_size.is_some(), "not paged: {search:?}");
    }
    // Users in two pages (1000 + 234, AD's MaxPageSize), groups in one.
    let user_pages: Vec<&SearchSeen> = stats
        .search_log
        .iter()
        .filter(|s| s.base == PEOPLE && s.scope == "sub")
        .collect();
    assert_eq!(
        user_pages
            .iter()
            .map(|s| (s.page_size, s.continued))
            .collect::<Vec<_>>(),
        [(Some(5000), false), (Some(5000), true)],
        "{user_pages:#?}"
    );
}

/// The nested directory of the two nesting tests: Engineering ⊃ Backend ⊃ Platform ⊃ Engineering
/// (a cycle), Sales flat; fay is disabled, eve in no group.
fn nested_directory(ad: &FakeAd) -> Vec<String> {
    let [amy, bob, cat, dee, _eve, fay] = [
        User::new("amy"),
        User::new("bob"),
        User::new("cat"),
        User::new("dee"),
        User::new("eve"),
        User::new("fay").disabled(),
    ]
    .map(|u| ad.add_user(&u));
    let platform = ad.add_group("Platform", &[cat]);
    let backend = ad.add_group("Backend", &[bob, fay, platform.clone()]);
    let engineering = ad.add_group("Engineering", &[amy, backend.clone()]);
    ad.add_member(&platform, &engineering);
    ad.add_group("Sales", &[dee]);
    vec![engineering, backend, platform]
}

const NESTED_MAPPINGS: &[(&str, &str)] = &[
    ("Engineering", "Eng"),
    ("Backend", "Backend"),
    ("Platform", "Platform"),
    ("Sales", "Sales"),
];

fn nested_memberships(env: &Env) -> Vec<(String, Vec<String>)> {
    NESTED_MAPPINGS
        .iter()
        .map(|(_, g)| ((*g).to_owned(), members(env, g)))
        .collect()
}

#[test]
fn nested_groups_expand_on_the_client_and_through_in_chain_alike() {
    let ad = FakeAd::start();
    let nesting = nested_directory(&ad);
    let expected = vec![
        ("Eng".to_owned(), keys(&["amy", "bob", "cat"])),
        ("Backend".to_owned(), keys(&["amy", "bob", "cat"])),
        ("Platform".to_owned(), keys(&["amy", "bob", "cat"])),
        ("Sales".to_owned(), keys(&["dee"])),
    ];

    // `nested` is the common IdP key (default false, config/reference.toml): set it.
    let client = env_for(&ad, "nested = true", NESTED_MAPPINGS);
    reconcile(&client, &[], 0);
    assert_eq!(nested_memberships(&client), expected);
    assert_eq!(
        ad.stats().in_chain_values,
        Vec::<String>::new(),
        "nested = true expands on the client by default"
    );

    ad.reset_stats();
    let server = env_for(&ad, "nested = true\nin_chain = true", NESTED_MAPPINGS);
    reconcile(&server, &[], 0);
    assert_eq!(nested_memberships(&server), expected, "the same result");
    let stats = ad.stats();
    let mut asked = stats.in_chain_values.clone();
    asked.sort();
    let mut wanted = nesting.clone();
    wanted.sort();
    assert_eq!(
        asked, wanted,
        "one in-chain search per group holding groups (not Sales): {:#?}",
        stats.search_log
    );
    let in_chain = stats.searches_with(":1.2.840.113556.1.4.1941:=");
    assert_eq!(in_chain.len(), 3, "{in_chain:#?}");
    for search in &in_chain {
        assert!(
            search.base == PEOPLE
                && search.scope == "sub"
                && search.page_size.is_some()
                && search.filter.starts_with(
                    "(&(&(objectCategory=person)(objectClass=user))(memberOf:1.2.840.113556.1.4.1941:="
                ),
            "a paged search under user_base_dn with the user filter: {search:?}"
        );
    }
}

#[test]
fn a_group_name_with_filter_specials_works_with_in_chain() {
    let ad = FakeAd::start();
    let [gil, hal, _ivy] =
        [User::new("gil"), User::new("hal"), User::new("ivy")].map(|u| ad.add_user(&u));
    let leads = ad.add_group("EMEA Leads", &[hal]);
    let odd = ad.add_group(r"R&D (EMEA) *\ops", &[gil, leads]);
    assert_eq!(odd, format!(r"CN=R&D (EMEA) *\\ops,{GROUPS}"));
    let env = env_for(
        &ad,
        "nested = true\nin_chain = true",
        &[
            (r"R&D (EMEA) *\ops", "RnD"),
            (&odd.to_lowercase(), "RnD by DN"),
        ],
    );
    let (_, doc) = reconcile(&env, &[], 0);
    assert_eq!(doc["failed_idps"], json!([]), "{doc:#}");
    assert_eq!(members(&env, "RnD"), keys(&["gil", "hal"]));
    assert_eq!(members(&env, "RnD by DN"), keys(&["gil", "hal"]));
    let stats = ad.stats();
    // The DN went out escaped per RFC 4515 (\2a \28 \29 \5c) and the server read it back as
    // the DN itself.
    assert!(
        stats.in_chain_values.contains(&odd),
        "{:#?}",
        stats.search_log
    );
    let expected = r"(memberOf:1.2.840.113556.1.4.1941:=CN=R&D \28EMEA\29 \2a\5c\5cops,OU=Groups,DC=corp,DC=example)";
    assert_eq!(
        stats.searches_with(expected).len(),
        1,
        "{:#?}",
        stats.search_log
    );
}

#[test]
fn an_unchanged_highest_committed_usn_skips_the_read() {
    let ad = FakeAd::start();
    let [amy, bob] = [User::new("amy"), User::new("bob")].map(|u| ad.add_user(&u));
    let team = ad.add_group("Team", std::slice::from_ref(&amy));
    let env = env_for(&ad, "", &[("Team", "Team")]);
    let (first, _) = reconcile(&env, &[], 0);
    assert!(
        !first.stderr.contains("Unchanged since"),
        "{}",
        first.stderr
    );
    assert_eq!(members(&env, "Team"), keys(&["amy"]));

    // Nothing moved: only the rootDSE is read.
    ad.reset_stats();
    let (second, doc) = reconcile(&env, &[], 0);
    assert!(
        second
            .stderr
            .contains("Unchanged since its last applied read"),
        "{}",
        second.stderr
    );
    assert_eq!((&doc["adds"], &doc["removes"]), (&json!([]), &json!([])));
    let stats = ad.stats();
    assert!(stats.root_dse_reads >= 1, "{stats:#?}");
    assert_eq!(
        stats.searches, stats.root_dse_reads,
        "no search but the rootDSE: {:#?}",
        stats.search_log
    );

    // A change moves the USN: the next run reads and applies it.
    ad.add_member(&team, &bob);
    ad.reset_stats();
    let (third, doc) = reconcile(&env, &[], 0);
    assert!(
        !third.stderr.contains("Unchanged since"),
        "{}",
        third.stderr
    );
    assert_eq!(
        changes(&doc["adds"]),
        ["production/Team bob@corp.example corp Team"]
    );
    assert!(ad.stats().searches > ad.stats().root_dse_reads);

    // The USN moving alone means a read, with nothing to do.
    ad.bump_usn();
    let (fourth, doc) = reconcile(&env, &[], 0);
    assert!(
        !fourth.stderr.contains("Unchanged since"),
        "{}",
        fourth.stderr
    );
    assert_eq!((&doc["adds"], &doc["removes"]), (&json!([]), &json!([])));
    let (fifth, _) = reconcile(&env, &[], 0);
    assert!(
        fifth
            .stderr
            .contains("Unchanged since its last applied read"),
        "{}",
        fifth.stderr
    );

    // Another domain controller answering with the same USN is no proof of "unchanged".
    ad.set_ds_service_name(
        "CN=NTDS Settings,CN=DC2,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=corp,DC=example",
    );
    ad.reset_stats();
    let (other_dc, doc) = reconcile(&env, &[], 0);
    assert!(
        !other_dc.stderr.contains("Unchanged since"),
        "{}",
        other_dc.stderr
    );
    assert_eq!((&doc["adds"], &doc["removes"]), (&json!([]), &json!([])));
    assert!(ad.stats().searches > ad.stats().root_dse_reads);

    // --full reads anyway.
    ad.reset_stats();
    let (full, doc) = reconcile(&env, &["--full"], 0);
    assert!(!full.stderr.contains("Unchanged since"), "{}", full.stderr);
    assert_eq!((&doc["adds"], &doc["removes"]), (&json!([]), &json!([])));
    assert!(ad.stats().searches > ad.stats().root_dse_reads);
    assert_eq!(members(&env, "Team"), keys(&["amy", "bob"]));
}

#[test]
fn a_refused_bind_fails_the_idp_exits_1_and_changes_nothing() {
    let ad = FakeAd::start();
    let amy = ad.add_user(&User::new("amy"));
    ad.add_group("Team", &[amy]);
    let env = env_for(&ad, "", &[("Team", "Team")]);
    reconcile(&env, &[], 0);
    assert_eq!(members(&env, "Team"), keys(&["amy"]));

    std::fs::write(env.path("ad.password"), "not-the-password\n").unwrap();
    ad.bump_usn();
    let before = env.state().table("memberships").to_vec();
    let (_, doc) = reconcile(&env, &[], 1);
    assert_eq!(doc["failed_idps"][0]["idp"], "corp", "{doc:#}");
    let error = doc["failed_idps"][0]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("bind as \"{SERVICE_DN}\" refused")),
        "{error}"
    );
    assert_eq!(
        (&doc["adds"], &doc["removes"]),
        (&json!([]), &json!([])),
        "{doc:#}"
    );
    assert_eq!(env.state().table("memberships"), before.as_slice());
    assert_eq!(members(&env, "Team"), keys(&["amy"]));

    let check = env.run(&["check", "--connect"]);
    check.expect(1);
    assert!(
        check
            .stdout
            .contains(&format!("idp corp: ldap {}", ad.url()))
            && check.stdout.contains(": FAILED: ")
            && check
                .stdout
                .contains(&format!("bind as \"{SERVICE_DN}\" refused")),
        "{}",
        check.stdout
    );
    assert!(ad.stats().refused_binds >= 2);
}

#[test]
fn a_connection_cut_fails_the_whole_read_and_changes_nothing() {
    let ad = FakeAd::start();
    let dns = ad.add_users(
        &(0..1600)
            .map(|i| User::new(&format!("c{i:04}")))
            .collect::<Vec<_>>(),
    );
    let big = ad.add_group("Big", &dns);
    let env = env_for(&ad, "", &[("Big", "Big")]);
    let (_, doc) = reconcile(&env, &[], 0);
    assert_eq!(doc["summary"]["adds"], 1600);
    let before = env.state().table("memberships").to_vec();

    // c0000 leaves; the read breaks during range retrieval, then during the user search.
    ad.set_members(&big, &dns[1..]);
    for cut in [Cut::OnRangeRequest, Cut::AfterEntries(5)] {
        ad.cut(cut);
        let (_, doc) = reconcile(&env, &[], 1);
        assert_eq!(doc["failed_idps"][0]["idp"], "corp", "{cut:?}: {doc:#}");
        assert_eq!(
            (&doc["adds"], &doc["removes"]),
            (&json!([]), &json!([])),
            "{cut:?}: a partial read applies nothing"
        );
        assert_eq!(env.state().table("memberships"), before.as_slice());
    }
    let (_, doc) = reconcile(&env, &[], 0);
    assert_eq!(
        changes(&doc["removes"]),
        ["production/Big c0000@corp.example corp Big"]
    );
    assert_eq!(members(&env, "Big").len(), 1599);
}
