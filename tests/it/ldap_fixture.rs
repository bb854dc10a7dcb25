//! The directory the LDAP tests load into [`crate::slapd::Slapd`], and what the IdP should make
//! of it, as Rust values.
//!
//! - [`USERS`] `inetOrgPerson` entries `uid=userNNNN` under `ou=people` with `mail:
//!   userNNNN@example.com` — more than twice the server's size limit of 500, so only a paged
//!   search reads them all. Some are disabled (`employeeType: disabled`, in any case), some have
//!   another `employeeType` and stay enabled, some have no `mail`, one has a mixed-case `mail`.
//! - Groups under `ou=groups` in all three schemas: `groupOfNames`/`member`,
//!   `groupOfUniqueNames`/`uniqueMember` (one value with a `#'0101'B` suffix) and
//!   `posixGroup`/`memberUid` (one value in upper case, one naming nobody); a group of more than
//!   500 members; nested groups with a cycle across schemas; a group whose `cn` holds the filter
//!   metacharacters `*`, `(`, `)` and `\`; members that resolve to nothing (the placeholder
//!   [`PLACEHOLDER`], an entry outside the user base).
//!
//! [`Fixture::expected`] computes a group's usable members (nested, cycle-safe) from the same
//! model that [`Fixture::ldif`] writes, so the two cannot drift apart.

use std::collections::BTreeSet;

use crate::slapd::{BASE_DN, BIND_DN};

/// How many users the fixture holds.
pub const USERS: usize = 1250;
/// Where the users are.
pub const PEOPLE: &str = "ou=people,dc=example,dc=com";
/// Where the groups are.
pub const GROUPS: &str = "ou=groups,dc=example,dc=com";
/// A member value naming no entry (groupOfNames needs at least one member, so emptying a group
/// means leaving only this).
pub const PLACEHOLDER: &str = "cn=nobody,dc=example,dc=com";

/// Users 0..700 (`groupOfNames`): more members than the size limit.
pub const STAFF: &str = "staff";
/// `groupOfNames`: users 700..720 (one written in another case and spacing), the placeholder,
/// and [`PLATFORM`].
pub const ENGINEERING: &str = "engineering";
/// `groupOfUniqueNames`: users 720..730 (one with a `#'0101'B` suffix) and [`ENGINEERING`]: a
/// cycle across schemas.
pub const PLATFORM: &str = "platform";
/// `posixGroup`: the uids of users 730..740, one in upper case, and `ghost` (nobody).
pub const OPS: &str = "ops";
/// `groupOfNames` of groups: [`ENGINEERING`] (hence [`PLATFORM`]), [`OPS`], and the service
/// account (outside the user base, so nobody).
pub const ALL_TEAMS: &str = "all-teams";
/// `groupOfNames` whose name holds `(`, `)`, `*` and `\`: users 740..750.
pub const SALES: &str = r"Sales (EU) *\ Team";
/// `groupOfNames`: users 750..760; the tests empty it or change it.
pub const MARKETING: &str = "marketing";

/// `uid` of user `i`: `userNNNN`.
pub fn uid(i: usize) -> String {
    format!("user{i:04}")
}

/// DN of user `i`.
pub fn user_dn(i: usize) -> String {
    format!("uid={},{PEOPLE}", uid(i))
}

/// Whether user `i` is disabled: `employeeType: disabled` (`DISABLED` for half of them).
pub fn is_disabled(i: usize) -> bool {
    i % 9 == 7
}

/// Whether user `i` has no `mail` (never a disabled one, so the two counts stay apart).
pub fn has_no_mail(i: usize) -> bool {
    i % 11 == 5 && !is_disabled(i)
}

/// The `mail` attribute of user `i`, as stored (one in mixed case).
pub fn mail(i: usize) -> Option<String> {
    if has_no_mail(i) {
        None
    } else if i % 100 == 42 {
        Some(format!("User{i:04}@Example.com"))
    } else {
        Some(format!("{}@example.com", uid(i)))
    }
}

/// The `employeeType` of user `i`: `disabled`/`DISABLED`, `contractor` (enabled) or none.
fn employee_type(i: usize) -> Option<&'static str> {
    if is_disabled(i) {
        Some(if i.is_multiple_of(2) {
            "DISABLED"
        } else {
            "disabled"
        })
    } else if i % 9 == 3 {
        Some("contractor")
    } else {
        None
    }
}

/// The user key the IdP should give user `i` (its mail, lower-cased), `None` when the user is
/// not a usable member (disabled or without mail).
pub fn key(i: usize) -> Option<String> {
    if is_disabled(i) {
        return None;
    }
    mail(i).map(|m| m.to_lowercase())
}

/// The DN of group `cn`, escaped as a DN requires (`\` as `\5C`).
pub fn group_dn(cn: &str) -> String {
    format!("cn={},{GROUPS}", escape_dn_value(cn))
}

/// `value` escaped for a DN (RFC 4514): `\` `,` `+` `"` `<` `>` `;` and a leading `#` or
/// space, a trailing space.
pub fn escape_dn_value(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\5C"),
            ',' | '+' | '"' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i + 1 == value.chars().count() => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

/// The schema of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// `groupOfNames` / `member`.
    Names,
    /// `groupOfUniqueNames` / `uniqueMember`.
    UniqueNames,
    /// `posixGroup` / `memberUid`.
    Posix,
}

/// One member value of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// User `i` by DN (or by uid in a posixGroup).
    User(usize),
    /// User `i` by a DN in another case and spacing.
    UserOddDn(usize),
    /// User `i` by DN with a `#'0101'B` uniqueMember suffix.
    UserWithUid(usize),
    /// A group of the fixture, by `cn`.
    Group(&'static str),
    /// A `memberUid` value as written, matched against `uid` case-insensitively (maybe nobody's).
    Uid(&'static str),
    /// A DN that resolves to nothing read (the placeholder, an entry outside the user base).
    Nothing(String),
}

/// A group entry.
#[derive(Debug, Clone)]
pub struct Group {
    /// Its `cn` (unescaped).
    pub cn: &'static str,
    /// Its schema.
    pub schema: Schema,
    /// Its member values.
    pub members: Vec<Member>,
}

/// The whole directory below the suffix: `ou=people`, `ou=groups` and their entries.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The groups, in the order they are written.
    pub groups: Vec<Group>,
}

impl Default for Fixture {
    fn default() -> Fixture {
        Fixture::new()
    }
}

impl Fixture {
    /// The standard fixture described in the module documentation.
    pub fn new() -> Fixture {
        let users = |range: std::ops::Range<usize>| range.map(Member::User).collect::<Vec<_>>();
        let mut engineering = users(700..720);
        engineering[1] = Member::UserOddDn(701);
        engineering.push(Member::Nothing(PLACEHOLDER.into()));
        engineering.push(Member::Group(PLATFORM));
        let mut platform = users(720..730);
        platform[5] = Member::UserWithUid(725);
        platform.push(Member::Group(ENGINEERING));
        let mut ops = users(730..739);
        ops.push(Member::Uid("USER0739"));
        ops.push(Member::Uid("ghost"));
        Fixture {
            groups: vec![
                Group {
                    cn: STAFF,
                    schema: Schema::Names,
                    members: users(0..700),
                },
                Group {
                    cn: ENGINEERING,
                    schema: Schema::Names,
                    members: engineering,
                },
                Group {
                    cn: PLATFORM,
                    schema: Schema::UniqueNames,
                    members: platform,
                },
                Group {
                    cn: OPS,
                    schema: Schema::Posix,
                    members: ops,
                },
                Group {
                    cn: ALL_TEAMS,
                    schema: Schema::Names,
                    members: vec![
                        Member::Group(ENGINEERING),
                        Member::Group(OPS),
                        Member::Nothing(BIND_DN.into()),
                    ],
                },
                Group {
                    cn: SALES,
                    schema: Schema::Names,
                    members: users(740..750),
                },
                Group {
                    cn: MARKETING,
                    schema: Schema::Names,
                    members: users(750..760),
                },
            ],
        }
    }

    /// The LDIF of `ou=people`, `ou=groups` and every entry (for [`crate::slapd::Slapd::start`],
    /// which adds the suffix and the service account first).
    pub fn ldif(&self) -> String {
        let mut out = String::with_capacity(USERS * 200);
        for ou in ["people", "groups"] {
            out.push_str(&format!(
                "dn: ou={ou},{BASE_DN}\nobjectClass: organizationalUnit\nou: {ou}\n\n"
            ));
        }
        for i in 0..USERS {
            out.push_str(&format!(
                "dn: {}\nobjectClass: inetOrgPerson\nuid: {}\ncn: User {i}\nsn: User\n",
                user_dn(i),
                uid(i)
            ));
            if let Some(mail) = mail(i) {
                out.push_str(&format!("mail: {mail}\n"));
            }
            if let Some(kind) = employee_type(i) {
                out.push_str(&format!("employeeType: {kind}\n"));
            }
            out.push('\n');
        }
        for (n, group) in self.groups.iter().enumerate() {
            out.push_str(&format!("dn: {}\ncn: {}\n", group_dn(group.cn), group.cn));
            let attr = match group.schema {
                Schema::Names => "member",
                Schema::UniqueNames => "uniqueMember",
                Schema::Posix => "memberUid",
            };
            match group.schema {
                Schema::Names => out.push_str("objectClass: groupOfNames\n"),
                Schema::UniqueNames => out.push_str("objectClass: groupOfUniqueNames\n"),
                Schema::Posix => out.push_str(&format!(
                    "objectClass: posixGroup\ngidNumber: {}\n",
                    5000 + n
                )),
            }
            for member in &group.members {
                out.push_str(&format!("{attr}: {}\n", member_value(group.schema, member)));
            }
            out.push('\n');
        }
        out
    }

    /// The group `cn`.
    pub fn group(&self, cn: &str) -> &Group {
        self.groups
            .iter()
            .find(|g| g.cn == cn)
            .unwrap_or_else(|| panic!("no group {cn} in the fixture"))
    }

    /// The user keys the IdP should find in group `cn` with nested groups expanded (cycle-safe):
    /// enabled users with a mail, lower-cased.
    pub fn expected(&self, cn: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut users = BTreeSet::new();
        let mut todo = vec![cn];
        while let Some(cn) = todo.pop() {
            if !seen.insert(cn) {
                continue;
            }
            for member in &self.group(cn).members {
                match member {
                    Member::User(i) | Member::UserOddDn(i) | Member::UserWithUid(i) => {
                        users.insert(*i);
                    }
                    Member::Group(inner) => todo.push(inner),
                    Member::Uid(value) => {
                        if let Some(i) = (0..USERS).find(|i| uid(*i).eq_ignore_ascii_case(value)) {
                            users.insert(i);
                        }
                    }
                    Member::Nothing(_) => {}
                }
            }
        }
        users.into_iter().filter_map(key).collect()
    }

    /// The user keys of group `cn`'s own user members, nested groups not expanded (`nested =
    /// false`) and `memberUid` values ignored (`member_uid_attr = ""`).
    pub fn direct_by_dn(&self, cn: &str) -> BTreeSet<String> {
        self.group(cn)
            .members
            .iter()
            .filter_map(|m| match (self.group(cn).schema, m) {
                (Schema::Posix, _) => None,
                (_, Member::User(i) | Member::UserOddDn(i) | Member::UserWithUid(i)) => key(*i),
                _ => None,
            })
            .collect()
    }

    /// How many user entries the user search returns.
    pub fn users_total(&self) -> usize {
        USERS
    }

    /// How many users have no user key (no mail): `summary.skipped_users`.
    pub fn without_key(&self) -> usize {
        (0..USERS).filter(|i| mail(*i).is_none()).count()
    }

    /// How many users are usable (enabled, with a key).
    pub fn usable(&self) -> usize {
        (0..USERS).filter(|i| key(*i).is_some()).count()
    }
}

/// The attribute value that writes `member` into a group of `schema`.
fn member_value(schema: Schema, member: &Member) -> String {
    match (schema, member) {
        (Schema::Posix, Member::User(i)) => uid(*i),
        (Schema::Posix, Member::Uid(value)) => (*value).to_owned(),
        (Schema::Posix, other) => panic!("a posixGroup names users by uid, not {other:?}"),
        (_, Member::User(i)) => user_dn(*i),
        (_, Member::UserOddDn(i)) => format!("UID=User{i:04}, OU=People,DC=Example, DC=COM"),
        (_, Member::UserWithUid(i)) => format!("{}#'0101'B", user_dn(*i)),
        (_, Member::Group(cn)) => group_dn(cn),
        (_, Member::Nothing(dn)) => dn.clone(),
        (_, Member::Uid(value)) => panic!("only a posixGroup names users by uid, not {value}"),
    }
}

/// An `ldapmodify` change that replaces the members of group `cn` (of `schema`) with `values`.
pub fn replace_members(cn: &str, schema: Schema, values: &[String]) -> String {
    let attr = match schema {
        Schema::Names => "member",
        Schema::UniqueNames => "uniqueMember",
        Schema::Posix => "memberUid",
    };
    let mut out = format!(
        "dn: {}\nchangetype: modify\nreplace: {attr}\n",
        group_dn(cn)
    );
    for value in values {
        out.push_str(&format!("{attr}: {value}\n"));
    }
    out.push_str("-\n\n");
    out
}

#[test]
fn ldap_fixture_holds_what_the_tests_rely_on() {
    let fixture = Fixture::new();
    const { assert!(USERS >= 1200) };
    assert!(fixture.group(STAFF).members.len() > 500);
    // Disabled, mail-less and mixed-case users, in every group of users.
    for cn in [STAFF, ENGINEERING, PLATFORM, OPS, SALES, MARKETING] {
        let users: Vec<usize> = fixture
            .group(cn)
            .members
            .iter()
            .filter_map(|m| match m {
                Member::User(i) | Member::UserOddDn(i) | Member::UserWithUid(i) => Some(*i),
                _ => None,
            })
            .collect();
        assert!(
            users.iter().any(|i| is_disabled(*i)),
            "{cn}: a disabled user"
        );
        if cn != ENGINEERING {
            assert!(
                users.iter().any(|i| has_no_mail(*i)),
                "{cn}: a mail-less user"
            );
        }
    }
    assert!((0..USERS).any(|i| is_disabled(i) && i.is_multiple_of(2)));
    assert!((0..USERS).any(|i| is_disabled(i) && i % 2 == 1));
    assert_eq!(key(42).as_deref(), Some("user0042@example.com"));
    assert_eq!(mail(42).as_deref(), Some("User0042@Example.com"));
    // The cycle: engineering and platform have the same members, and all-teams holds both and ops.
    assert_eq!(fixture.expected(ENGINEERING), fixture.expected(PLATFORM));
    assert!(fixture.expected(ENGINEERING).contains(&key(725).unwrap()));
    assert!(fixture.expected(ENGINEERING).contains(&key(701).unwrap()));
    let all: BTreeSet<String> = fixture
        .expected(ENGINEERING)
        .union(&fixture.expected(OPS))
        .cloned()
        .collect();
    assert_eq!(fixture.expected(ALL_TEAMS), all);
    assert!(fixture.expected(OPS).contains("user0739@example.com"));
    assert!(
        !fixture.expected(OPS).contains("user0736@example.com"),
        "disabled"
    );
    assert_eq!(
        fixture.without_key() + fixture.usable() + (0..USERS).filter(|i| is_disabled(*i)).count(),
        USERS
    );
    assert_eq!(
        group_dn(SALES),
        r"cn=Sales (EU) *\5C Team,ou=groups,dc=example,dc=com"
    );
}

#[test]
fn ldap_fixture_loads_into_slapd_as_written() {
    let fixture = Fixture::new();
    let slapd = crate::slapd::Slapd::start(&fixture.ldif());
    let (code, dns) = slapd.search(&[
        "-E",
        "pr=500/noprompt",
        "-b",
        PEOPLE,
        "(objectClass=inetOrgPerson)",
        "1.1",
    ]);
    assert_eq!((code, dns.len()), (0, USERS));
    let (code, dns) = slapd.search(&[
        "-b",
        GROUPS,
        "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
        "1.1",
    ]);
    assert_eq!((code, dns.len()), (0, fixture.groups.len()));
    // The metacharacter group is found by its escaped name, and its DN is as written.
    let (code, dns) = slapd.search(&["-b", GROUPS, r"(cn=Sales \28EU\29 \2a\5c Team)", "1.1"]);
    assert_eq!(code, 0);
    assert_eq!(dns.len(), 1, "{dns:?}");
    assert_eq!(slapd.values(&group_dn(SALES), "cn"), [SALES]);
    assert_eq!(slapd.values(&group_dn(STAFF), "member").len(), 700);
    assert!(
        slapd
            .values(&group_dn(PLATFORM), "uniqueMember")
            .iter()
            .any(|v| v.ends_with("#'0101'B"))
    );
    assert_eq!(slapd.values(&user_dn(7), "employeeType"), ["disabled"]);
}

#[test]
fn ldap_fixture_groups_can_be_emptied_to_the_placeholder() {
    let fixture = Fixture::new();
    let slapd = crate::slapd::Slapd::start(&fixture.ldif());
    slapd.modify(&replace_members(
        MARKETING,
        Schema::Names,
        &[PLACEHOLDER.to_owned()],
    ));
    assert_eq!(slapd.values(&group_dn(MARKETING), "member"), [PLACEHOLDER]);
    let (code, dns) = slapd.search(&["-E", "pr=100/noprompt", "-b", PEOPLE, "(mail=*)", "1.1"]);
    assert_eq!(
        (code, dns.len()),
        (0, fixture.users_total() - fixture.without_key())
    );
}
