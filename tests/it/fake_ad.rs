//! A fake Active Directory domain controller served with `ldap3_proto` on 127.0.0.1:0, for the
//! tests of the LDAP IdP in Active Directory mode (there is no real AD here).
//!
//! What it does like AD (MS-ADTS 3.1.1.3; RFC 2696):
//! - simple bind of one service account (by DN or UPN); a wrong password answers
//!   `invalidCredentials` (49) with AD's `data 52e` text; anonymous binds succeed but may only read
//!   the rootDSE (other searches answer `operationsError`, 000004DC); unbind closes;
//! - the rootDSE (`defaultNamingContext`, `namingContexts`, `dsServiceName`,
//!   `highestCommittedUSN`, `supportedControl`, …), the USN moving on every change;
//! - users (`user` objects with `objectCategory` a DN, `objectGUID` and `objectSid` binary,
//!   `userAccountControl`) and groups (`group` objects with `member` DNs, nested groups allowed);
//! - filters: and/or/not, equality, presence, substrings, >=, <=, approx; attribute names and
//!   values case-insensitive, DN-valued attributes compared as normalised DNs; the `objectCategory`
//!   shortcut (`objectCategory=person`); the computed `memberOf`; extensible matches with
//!   LDAP_MATCHING_RULE_IN_CHAIN (`1.2.840.113556.1.4.1941`, on `memberOf` and `member`), BIT_AND
//!   (`…803`) and BIT_OR (`…804`);
//! - scopes base, one level, subtree, children; attribute selection (`*`, `1.1`, names);
//! - MaxPageSize 1000: an unpaged search matching more returns 1000 entries then
//!   `sizeLimitExceeded` (4); the paged results control (RFC 2696) pages by min(asked, 1000)
//!   with an opaque cookie, size 0 abandons;
//! - MaxValRange 1500 (range retrieval, MS-ADTS 3.1.1.3.1.3.3) on every multi-valued attribute.
//!
//! What it does not: TLS/StartTLS, SASL, writes over LDAP (tests change the directory through
//! [`FakeAd`]'s methods), referrals, binary filter values (`ldap3_proto` decodes filter values as
//! UTF-8 and drops a connection sending others), DirSync, `uSNChanged` per entry, sorting, VLV,
//! deleted objects, ACLs beyond "bound or not".
//!
//! The server runs on its own thread and tokio runtime, so a test can drive the real binary with
//! `std::process::Command` (blocking) while the fake answers. [`Stats`] counts what the clients
//! asked, so tests can assert that paging and range retrieval were used.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindResponse, LdapExtendedResponse, LdapFilter, LdapMatchingRuleAssertion,
    LdapMsg, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchRequest,
    LdapSearchResultEntry, LdapSearchScope, LdapSubstringFilter,
};
use tokio_util::codec::Framed;

/// The domain's naming context.
pub const DOMAIN: &str = "DC=corp,DC=example";
/// Where [`User::new`] users live.
pub const PEOPLE: &str = "OU=People,DC=corp,DC=example";
/// Where [`FakeAd::add_group`] groups live.
pub const GROUPS: &str = "OU=Groups,DC=corp,DC=example";
/// The service account the fake accepts binds for.
pub const SERVICE_DN: &str = "CN=idpsync,OU=Service Accounts,DC=corp,DC=example";
/// The service account's password.
pub const SERVICE_PASSWORD: &str = "Corr3ct-Horse";
/// The domain controller's NTDS settings object (the rootDSE's `dsServiceName`).
pub const DS_SERVICE_NAME: &str = "CN=NTDS Settings,CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=corp,DC=example";
/// AD's MaxPageSize policy: entries per search or page at most.
pub const MAX_PAGE_SIZE: usize = 1000;
/// AD's MaxValRange policy: values of one attribute per entry at most.
pub const MAX_VAL_RANGE: usize = 1500;
/// LDAP_MATCHING_RULE_IN_CHAIN.
pub const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
/// LDAP_MATCHING_RULE_BIT_AND.
pub const BIT_AND: &str = "1.2.840.113556.1.4.803";
/// LDAP_MATCHING_RULE_BIT_OR.
pub const BIT_OR: &str = "1.2.840.113556.1.4.804";
/// The paged results control (RFC 2696).
pub const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";
/// `userAccountControl` of a normal account.
pub const NORMAL_ACCOUNT: u32 = 512;
/// ADS_UF_ACCOUNTDISABLE.
pub const ACCOUNT_DISABLE: u32 = 0x2;

const PERSON_CATEGORY: &str = "CN=Person,CN=Schema,CN=Configuration,DC=corp,DC=example";
const GROUP_CATEGORY: &str = "CN=Group,CN=Schema,CN=Configuration,DC=corp,DC=example";
const OU_CATEGORY: &str = "CN=Organizational-Unit,CN=Schema,CN=Configuration,DC=corp,DC=example";
const DOMAIN_CATEGORY: &str = "CN=Domain-DNS,CN=Schema,CN=Configuration,DC=corp,DC=example";
/// Attributes whose values are DNs, compared as normalised DNs.
const DN_ATTRIBUTES: &[&str] = &[
    "member",
    "memberof",
    "distinguishedname",
    "objectcategory",
    "manager",
];

/// A user to add with [`FakeAd::add_user`].
#[derive(Debug, Clone)]
pub struct User {
    /// The `cn` (the first RDN's value).
    pub cn: String,
    /// The container the user lives in.
    pub parent: String,
    /// `sAMAccountName`.
    pub sam: String,
    /// `mail`, if any.
    pub mail: Option<String>,
    /// `userPrincipalName`, if any.
    pub upn: Option<String>,
    /// `userAccountControl`.
    pub account_control: u32,
    /// `objectGUID`, in AD's byte layout (the first three fields little-endian).
    pub guid: [u8; 16],
}

impl User {
    /// An enabled user `CN=<sam>,OU=People,…` with mail and UPN `<sam>@corp.example` and a GUID
    /// derived from `sam` (a version-4 GUID, never valid UTF-8 as bytes).
    pub fn new(sam: &str) -> User {
        User {
            cn: sam.to_owned(),
            parent: PEOPLE.to_owned(),
            sam: sam.to_owned(),
            mail: Some(format!("{sam}@corp.example")),
            upn: Some(format!("{sam}@corp.example")),
            account_control: NORMAL_ACCOUNT,
            guid: guid_for(sam),
        }
    }

    /// The same user disabled (`userAccountControl` 514).
    pub fn disabled(mut self) -> User {
        self.account_control |= ACCOUNT_DISABLE;
        self
    }

    /// The same user without `mail`.
    pub fn without_mail(mut self) -> User {
        self.mail = None;
        self
    }

    /// The same user with another `objectGUID`.
    pub fn with_guid(mut self, guid: [u8; 16]) -> User {
        self.guid = guid;
        self
    }

    /// The same user with another `userAccountControl`.
    pub fn with_account_control(mut self, value: u32) -> User {
        self.account_control = value;
        self
    }

    /// The user's DN.
    pub fn dn(&self) -> String {
        format!("CN={},{}", escape_rdn_value(&self.cn), self.parent)
    }

    /// The text form Windows shows of this user's `objectGUID`.
    pub fn guid_text(&self) -> String {
        guid_text(&self.guid)
    }
}

/// A deterministic version-4 GUID for `seed`. Byte 7 holds the version nibble (ASCII range) and
/// byte 8 the variant (0x80..0xBF, a lone UTF-8 continuation byte), so the bytes are never UTF-8.
pub fn guid_for(seed: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, slot) in out.iter_mut().enumerate() {
        for b in seed.bytes().chain([i as u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        *slot = (h >> 24) as u8;
    }
    out[7] = 0x40 | (out[7] & 0x0f);
    out[8] = 0x80 | (out[8] & 0x3f);
    out
}

/// The text form of a GUID in AD's byte layout: the first three fields byte-swapped.
pub fn guid_text(bytes: &[u8; 16]) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let swapped = |r: std::ops::Range<usize>| {
        let mut part = bytes[r].to_vec();
        part.reverse();
        hex(&part)
    };
    format!(
        "{}-{}-{}-{}-{}",
        swapped(0..4),
        swapped(4..6),
        swapped(6..8),
        hex(&bytes[8..10]),
        hex(&bytes[10..16])
    )
}

/// `value` escaped for an RDN (RFC 4514): `,` `+` `"` `\` `<` `>` `;` `=`, a leading `#` or
/// space and a trailing space get a backslash. `*`, `(` and `)` need none.
pub fn escape_rdn_value(value: &str) -> String {
    let mut out = String::new();
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What the clients asked of the fake since it started (or since [`FakeAd::reset_stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted.
    pub connections: usize,
    /// Simple binds that succeeded (anonymous ones included).
    pub binds: usize,
    /// Simple binds answered `invalidCredentials`.
    pub refused_binds: usize,
    /// Search requests of any kind (every page counts, rootDSE reads too).
    pub searches: usize,
    /// Searches of the rootDSE.
    pub root_dse_reads: usize,
    /// Search requests carrying the paged results control (one per page).
    pub paged_requests: usize,
    /// Unpaged searches cut at MaxPageSize with `sizeLimitExceeded`.
    pub size_limit_exceeded: usize,
    /// Search requests asking for an attribute with a `;range=` option.
    pub range_requests: usize,
    /// Entries sent with a range-tagged attribute (`member;range=0-1499`, …).
    pub ranged_entries: usize,
    /// Entries sent in all.
    pub entries_sent: usize,
    /// Every search request, in order.
    pub search_log: Vec<SearchSeen>,
    /// The assertion values of every LDAP_MATCHING_RULE_IN_CHAIN match received, unescaped.
    pub in_chain_values: Vec<String>,
}

impl Stats {
    /// The searches whose filter text contains `needle` (case-insensitive).
    pub fn searches_with(&self, needle: &str) -> Vec<&SearchSeen> {
        let needle = needle.to_lowercase();
        self.search_log
            .iter()
            .filter(|s| s.filter.to_lowercase().contains(&needle))
            .collect()
    }
}

/// One search request as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchSeen {
    /// The base DN as sent.
    pub base: String,
    /// `base`, `one`, `sub` or `children`.
    pub scope: &'static str,
    /// The filter in RFC 4515 text (values escaped again from what was received).
    pub filter: String,
    /// The attributes asked for, as sent.
    pub attrs: Vec<String>,
    /// The page size of the paged results control, when the request carried one.
    pub page_size: Option<i64>,
    /// Whether the control carried a cookie (a page after the first).
    pub continued: bool,
}

/// When the fake drops a connection on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The next search of anything but the rootDSE sends this many entries, then the connection
    /// closes without a result.
    AfterEntries(usize),
    /// The next search asking for a `;range=` attribute closes the connection without an answer.
    OnRangeRequest,
}

/// The running fake. Dropping it stops the server (open connections close).
pub struct FakeAd {
    addr: SocketAddr,
    shared: Arc<Mutex<Directory>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeAd {
    /// Starts a fake domain `DC=corp,DC=example` holding the OUs `People`, `Groups` and
    /// `Service Accounts` and the service account [`SERVICE_DN`] (a user without `mail`).
    pub fn start() -> FakeAd {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Directory::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let server = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fake-ad".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                if let Ok((socket, _)) = accepted {
                                    tokio::spawn(serve(socket, server.clone()));
                                }
                            }
                        }
                    }
                });
            })
            .unwrap();
        let ad = FakeAd {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        };
        {
            let mut dir = ad.dir();
            dir.insert(container(DOMAIN, "domainDNS", DOMAIN_CATEGORY));
            for ou in [PEOPLE, GROUPS, "OU=Service Accounts,DC=corp,DC=example"] {
                dir.insert(container(ou, "organizationalUnit", OU_CATEGORY));
            }
            let mut service = User::new("idpsync").without_mail();
            service.parent = "OU=Service Accounts,DC=corp,DC=example".into();
            dir.insert(user_entry(&service));
        }
        ad
    }

    /// `ldap://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("ldap://{}", self.addr)
    }

    fn dir(&self) -> MutexGuard<'_, Directory> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a user (one USN step); returns its DN.
    pub fn add_user(&self, user: &User) -> String {
        self.add_users(std::slice::from_ref(user)).remove(0)
    }

    /// Adds users (one USN step for all); returns their DNs.
    pub fn add_users(&self, users: &[User]) -> Vec<String> {
        let mut dir = self.dir();
        let dns = users
            .iter()
            .map(|u| dir.insert(user_entry(u)))
            .collect::<Vec<_>>();
        dir.usn += 1;
        dns
    }

    /// Adds a group `CN=<cn>,OU=Groups,…` with these member DNs (one USN step); returns its DN.
    pub fn add_group(&self, cn: &str, members: &[String]) -> String {
        let dn = format!("CN={},{GROUPS}", escape_rdn_value(cn));
        let entry = Entry::new(&dn)
            .with("objectClass", &["top", "group"])
            .with("objectCategory", &[GROUP_CATEGORY])
            .with("cn", &[cn])
            .with("name", &[cn])
            .with("sAMAccountName", &[cn])
            // ADS_GROUP_TYPE_GLOBAL_GROUP | ADS_GROUP_TYPE_SECURITY_ENABLED
            .with("groupType", &["-2147483646"])
            .with_binary("objectGUID", guid_for(&dn).to_vec())
            .with_values(
                "member",
                members.iter().map(|m| m.as_bytes().to_vec()).collect(),
            );
        let mut dir = self.dir();
        let dn = dir.insert(entry);
        dir.usn += 1;
        dn
    }

    /// Replaces a group's `member` values (one USN step).
    pub fn set_members(&self, group_dn: &str, members: &[String]) {
        let mut dir = self.dir();
        let entry = dir.entry_mut(group_dn);
        entry.set(
            "member",
            members.iter().map(|m| m.as_bytes().to_vec()).collect(),
        );
        dir.usn += 1;
    }

    /// Adds one `member` value to a group (one USN step).
    pub fn add_member(&self, group_dn: &str, member_dn: &str) {
        let mut dir = self.dir();
        let entry = dir.entry_mut(group_dn);
        let mut values = entry.get("member").cloned().unwrap_or_default();
        values.push(member_dn.as_bytes().to_vec());
        entry.set("member", values);
        dir.usn += 1;
    }

    /// Sets a user's `userAccountControl` (one USN step).
    pub fn set_account_control(&self, user_dn: &str, value: u32) {
        let mut dir = self.dir();
        dir.entry_mut(user_dn)
            .set("userAccountControl", vec![value.to_string().into_bytes()]);
        dir.usn += 1;
    }

    /// The rootDSE's `highestCommittedUSN`.
    pub fn usn(&self) -> u64 {
        self.dir().usn
    }

    /// Moves `highestCommittedUSN` on without changing anything else.
    pub fn bump_usn(&self) {
        self.dir().usn += 1;
    }

    /// Answers as another domain controller (the rootDSE's `dsServiceName`), whose USNs are its
    /// own: the same `highestCommittedUSN` there says nothing about changes.
    pub fn set_ds_service_name(&self, name: &str) {
        self.dir().ds_service_name = name.to_owned();
    }

    /// Changes the service account's password: binds with the old one get `invalidCredentials`.
    pub fn set_password(&self, password: &str) {
        self.dir().password = password.to_owned();
    }

    /// Arms a connection cut (see [`Cut`]); it fires once.
    pub fn cut(&self, cut: Cut) {
        self.dir().cut = Some(cut);
    }

    /// What the clients asked so far.
    pub fn stats(&self) -> Stats {
        self.dir().stats.clone()
    }

    /// Forgets the counts so far.
    pub fn reset_stats(&self) {
        self.dir().stats = Stats::default();
    }
}

impl Drop for FakeAd {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn container(dn: &str, class: &str, category: &str) -> Entry {
    let first = dn.split(',').next().unwrap();
    let (kind, value) = first.split_once('=').unwrap();
    Entry::new(dn)
        .with("objectClass", &["top", class])
        .with("objectCategory", &[category])
        .with(
            if kind.eq_ignore_ascii_case("dc") {
                "dc"
            } else {
                "ou"
            },
            &[value],
        )
        .with("name", &[value])
}

fn user_entry(user: &User) -> Entry {
    let rid = 1000 + u32::from_le_bytes(user.guid[0..4].try_into().unwrap()) % 1_000_000;
    // S-1-5-21-3623811015-3361044348-30300820-<rid>: revision 1, 5 sub-authorities, authority 5
    // (big-endian), then the sub-authorities little-endian (never UTF-8: C7 2B FE D7 …).
    let mut sid = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
    for sub in [21u32, 3_623_811_015, 3_361_044_348, 30_300_820, rid] {
        sid.extend_from_slice(&sub.to_le_bytes());
    }
    let mut entry = Entry::new(&user.dn())
        .with(
            "objectClass",
            &["top", "person", "organizationalPerson", "user"],
        )
        .with("objectCategory", &[PERSON_CATEGORY])
        .with("cn", &[&user.cn])
        .with("name", &[&user.cn])
        .with("sAMAccountName", &[&user.sam])
        .with("userAccountControl", &[&user.account_control.to_string()])
        .with_binary("objectGUID", user.guid.to_vec())
        .with_binary("objectSid", sid);
    if let Some(mail) = &user.mail {
        entry = entry.with("mail", &[mail]);
    }
    if let Some(upn) = &user.upn {
        entry = entry.with("userPrincipalName", &[upn]);
    }
    entry
}

/// One directory entry: its DN as given and its attributes (names as given, values as bytes).
#[derive(Debug, Clone)]
struct Entry {
    dn: String,
    /// The normalised RDNs, leaf first.
    rdns: Vec<String>,
    attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    fn new(dn: &str) -> Entry {
        Entry {
            dn: dn.to_owned(),
            rdns: rdns(dn).unwrap_or_else(|| panic!("malformed DN {dn:?}")),
            attrs: Vec::new(),
        }
    }

    fn with(self, name: &str, values: &[&str]) -> Entry {
        self.with_values(name, values.iter().map(|v| v.as_bytes().to_vec()).collect())
    }

    fn with_binary(self, name: &str, value: Vec<u8>) -> Entry {
        self.with_values(name, vec![value])
    }

    fn with_values(mut self, name: &str, values: Vec<Vec<u8>>) -> Entry {
        self.set(name, values);
        self
    }

    fn get(&self, name: &str) -> Option<&Vec<Vec<u8>>> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    fn set(&mut self, name: &str, values: Vec<Vec<u8>>) {
        self.attrs.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if !values.is_empty() {
            self.attrs.push((name.to_owned(), values));
        }
    }

    fn norm(&self) -> String {
        self.rdns.join(",")
    }

    fn is_group(&self) -> bool {
        self.get("objectClass")
            .is_some_and(|v| v.iter().any(|c| c.eq_ignore_ascii_case(b"group")))
    }
}

/// A DN's RDNs, normalised: attribute types and values lower-cased, escapes resolved, spaces
/// around separators dropped, then re-escaped canonically. `None` when malformed.
fn rdns(dn: &str) -> Option<Vec<String>> {
    if dn.trim().is_empty() {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    let mut chars = dn.chars().peekable();
    loop {
        // One RDN: type '=' value, maybe '+'-joined (kept together).
        let mut rdn = String::new();
        loop {
            let mut kind = String::new();
            for c in chars.by_ref() {
                if c == '=' {
                    break;
                }
                kind.push(c);
            }
            let kind = kind.trim().to_lowercase();
            if kind.is_empty() {
                return None;
            }
            let mut value = String::new();
            let mut trailing_plain_spaces = 0;
            let mut end = None;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        let a = chars.next()?;
                        if a.is_ascii_hexdigit()
                            && chars.peek().is_some_and(|b| b.is_ascii_hexdigit())
                        {
                            let b = chars.next()?;
                            let byte = u8::from_str_radix(&format!("{a}{b}"), 16).ok()?;
                            value.push(byte as char);
                        } else {
                            value.push(a);
                        }
                        trailing_plain_spaces = 0;
                    }
                    ',' | ';' | '+' => {
                        end = Some(c);
                        break;
                    }
                    ' ' => {
                        if !value.is_empty() {
                            value.push(' ');
                            trailing_plain_spaces += 1;
                        }
                    }
                    _ => {
                        value.push(c);
                        trailing_plain_spaces = 0;
                    }
                }
            }
            value.truncate(value.len() - trailing_plain_spaces);
            if !rdn.is_empty() {
                rdn.push('+');
            }
            rdn.push_str(&kind);
            rdn.push('=');
            rdn.push_str(&escape_rdn_value(&value.to_lowercase()));
            match end {
                Some('+') => continue,
                Some(_) => break,
                None => {
                    out.push(rdn);
                    return Some(out);
                }
            }
        }
        out.push(rdn);
    }
}

fn norm_dn(dn: &str) -> Option<String> {
    rdns(dn).map(|r| r.join(","))
}

/// The directory behind the fake, shared between the server thread and the test.
struct Directory {
    entries: Vec<Entry>,
    by_dn: HashMap<String, usize>,
    usn: u64,
    ds_service_name: String,
    password: String,
    cut: Option<Cut>,
    stats: Stats,
    next_cookie: u64,
    /// Open paged searches: cookie → the matched entries still to send.
    pages: HashMap<Vec<u8>, Paging>,
}

struct Paging {
    request: LdapSearchRequest,
    rest: VecDeque<usize>,
}

impl Directory {
    fn new() -> Directory {
        Directory {
            entries: Vec::new(),
            by_dn: HashMap::new(),
            usn: 12_000,
            ds_service_name: DS_SERVICE_NAME.to_owned(),
            password: SERVICE_PASSWORD.to_owned(),
            cut: None,
            stats: Stats::default(),
            next_cookie: 1,
            pages: HashMap::new(),
        }
    }

    fn insert(&mut self, entry: Entry) -> String {
        let norm = entry.norm();
        assert!(
            !self.by_dn.contains_key(&norm),
            "{} is already in the fake AD",
            entry.dn
        );
        let dn = entry.dn.clone();
        self.by_dn.insert(norm, self.entries.len());
        self.entries.push(entry);
        dn
    }

    fn entry_mut(&mut self, dn: &str) -> &mut Entry {
        let norm = norm_dn(dn).unwrap_or_else(|| panic!("malformed DN {dn:?}"));
        let index = *self
            .by_dn
            .get(&norm)
            .unwrap_or_else(|| panic!("{dn} is not in the fake AD"));
        &mut self.entries[index]
    }

    fn root_dse(&self) -> Entry {
        Entry::new("")
            .with("defaultNamingContext", &[DOMAIN])
            .with(
                "namingContexts",
                &[
                    DOMAIN,
                    "CN=Configuration,DC=corp,DC=example",
                    "CN=Schema,CN=Configuration,DC=corp,DC=example",
                    "DC=DomainDnsZones,DC=corp,DC=example",
                    "DC=ForestDnsZones,DC=corp,DC=example",
                ],
            )
            .with("rootDomainNamingContext", &[DOMAIN])
            .with("dsServiceName", &[&self.ds_service_name])
            .with("dnsHostName", &["dc1.corp.example"])
            .with("highestCommittedUSN", &[&self.usn.to_string()])
            .with("isSynchronized", &["TRUE"])
            .with("supportedLDAPVersion", &["3", "2"])
            .with(
                "supportedControl",
                &[
                    PAGED_RESULTS_OID,
                    "1.2.840.113556.1.4.801",
                    "1.2.840.113556.1.4.473",
                    "1.2.840.113556.1.4.528",
                    "1.2.840.113556.1.4.417",
                    "1.2.840.113556.1.4.841",
                    "1.2.840.113556.1.4.1339",
                    "1.2.840.113556.1.4.1340",
                    "1.2.840.113556.1.4.529",
                ],
            )
            .with(
                "supportedCapabilities",
                &["1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1670"],
            )
            .with("supportedSASLMechanisms", &["GSSAPI", "GSS-SPNEGO"])
    }

    /// Every DN `group` holds at any depth (cycle-safe); cached per search in `cache`.
    fn closure<'c>(
        &self,
        group_norm: &str,
        cache: &'c mut HashMap<String, HashSet<String>>,
    ) -> &'c HashSet<String> {
        if !cache.contains_key(group_norm) {
            let mut seen = HashSet::new();
            let mut queue = vec![group_norm.to_owned()];
            let mut visited = HashSet::new();
            while let Some(g) = queue.pop() {
                if !visited.insert(g.clone()) {
                    continue;
                }
                let Some(&index) = self.by_dn.get(&g) else {
                    continue;
                };
                let entry = &self.entries[index];
                if !entry.is_group() {
                    continue;
                }
                for value in entry.get("member").into_iter().flatten() {
                    if let Some(m) = norm_dn(&String::from_utf8_lossy(value))
                        && seen.insert(m.clone())
                    {
                        queue.push(m);
                    }
                }
            }
            cache.insert(group_norm.to_owned(), seen);
        }
        &cache[group_norm]
    }

    /// The groups holding `entry` directly (the computed `memberOf`).
    fn member_of(&self, entry_norm: &str, ctx: &mut Ctx) -> Vec<String> {
        if ctx.member_of.is_none() {
            let mut index: HashMap<String, Vec<String>> = HashMap::new();
            for group in self.entries.iter().filter(|e| e.is_group()) {
                for value in group.get("member").into_iter().flatten() {
                    if let Some(m) = norm_dn(&String::from_utf8_lossy(value)) {
                        index.entry(m).or_default().push(group.dn.clone());
                    }
                }
            }
            ctx.member_of = Some(index);
        }
        ctx.member_of
            .as_ref()
            .unwrap()
            .get(entry_norm)
            .cloned()
            .unwrap_or_default()
    }

    fn values(&self, entry: &Entry, name: &str, ctx: &mut Ctx) -> Vec<Vec<u8>> {
        match name.to_ascii_lowercase().as_str() {
            "distinguishedname" if !entry.dn.is_empty() => vec![entry.dn.as_bytes().to_vec()],
            "memberof" => self
                .member_of(&entry.norm(), ctx)
                .into_iter()
                .map(String::into_bytes)
                .collect(),
            _ => entry.get(name).cloned().unwrap_or_default(),
        }
    }

    fn matches(&self, filter: &LdapFilter, entry: &Entry, ctx: &mut Ctx) -> bool {
        match filter {
            LdapFilter::And(all) => all.iter().all(|f| self.matches(f, entry, ctx)),
            LdapFilter::Or(any) => any.iter().any(|f| self.matches(f, entry, ctx)),
            LdapFilter::Not(f) => !self.matches(f, entry, ctx),
            LdapFilter::Equality(attr, value) | LdapFilter::Approx(attr, value) => {
                let lower = attr.to_ascii_lowercase();
                let values = self.values(entry, attr, ctx);
                if lower == "objectcategory" && !value.contains('=') {
                    // AD's shortcut: the class's defaultObjectCategory, named by its CN.
                    return values.iter().any(|v| {
                        rdns(&String::from_utf8_lossy(v))
                            .and_then(|r| r.first().cloned())
                            .is_some_and(|first| first == format!("cn={}", value.to_lowercase()))
                    });
                }
                values.iter().any(|v| value_eq(&lower, v, value))
            }
            LdapFilter::Present(attr) => {
                attr.eq_ignore_ascii_case("objectClass")
                    || !self.values(entry, attr, ctx).is_empty()
            }
            LdapFilter::Substring(attr, sub) => self
                .values(entry, attr, ctx)
                .iter()
                .any(|v| substring_matches(&String::from_utf8_lossy(v).to_lowercase(), sub)),
            LdapFilter::GreaterOrEqual(attr, value) => self
                .values(entry, attr, ctx)
                .iter()
                .any(|v| compare(v, value).is_ge()),
            LdapFilter::LessOrEqual(attr, value) => self
                .values(entry, attr, ctx)
                .iter()
                .any(|v| compare(v, value).is_le()),
            LdapFilter::Extensible(m) => self.extensible(m, entry, ctx),
        }
    }

    fn extensible(&self, m: &LdapMatchingRuleAssertion, entry: &Entry, ctx: &mut Ctx) -> bool {
        let Some(attr) = m.type_.as_deref() else {
            return false;
        };
        match m.matching_rule.as_deref() {
            Some(IN_CHAIN) => {
                let Some(value) = norm_dn(&m.match_value) else {
                    return false;
                };
                let mut cache = std::mem::take(&mut ctx.closures);
                let hit = if attr.eq_ignore_ascii_case("memberOf") {
                    // Entries held by the group `value` at any depth.
                    self.closure(&value, &mut cache).contains(&entry.norm())
                } else if attr.eq_ignore_ascii_case("member") {
                    // Groups holding `value` at any depth.
                    entry.is_group() && self.closure(&entry.norm(), &mut cache).contains(&value)
                } else {
                    false
                };
                ctx.closures = cache;
                hit
            }
            Some(rule @ (BIT_AND | BIT_OR)) => {
                let Ok(mask) = m.match_value.trim().parse::<i64>() else {
                    return false;
                };
                self.values(entry, attr, ctx).iter().any(|v| {
                    let Ok(n) = String::from_utf8_lossy(v).trim().parse::<i64>() else {
                        return false;
                    };
                    if rule == BIT_AND {
                        n & mask == mask
                    } else {
                        n & mask != 0
                    }
                })
            }
            None => {
                let lower = attr.to_ascii_lowercase();
                self.values(entry, attr, ctx)
                    .iter()
                    .any(|v| value_eq(&lower, v, &m.match_value))
            }
            Some(_) => false,
        }
    }

    fn in_scope(&self, entry: &Entry, base: &[String], scope: &LdapSearchScope) -> bool {
        let depth = entry.rdns.len();
        if depth < base.len() || entry.rdns[depth - base.len()..] != *base {
            return false;
        }
        match scope {
            LdapSearchScope::Base => depth == base.len(),
            LdapSearchScope::OneLevel => depth == base.len() + 1,
            LdapSearchScope::Subtree => true,
            LdapSearchScope::Children => depth > base.len(),
        }
    }

    /// The attributes of `entry` a search asked for, with range retrieval; `true` when one
    /// came back range-tagged.
    fn select(
        &self,
        entry: &Entry,
        requested: &[String],
        ctx: &mut Ctx,
    ) -> (Vec<LdapPartialAttribute>, bool) {
        let mut wanted: Vec<(String, Option<Range>)> = Vec::new();
        let all = requested.is_empty() || requested.iter().any(|a| a == "*");
        if all {
            for (name, _) in &entry.attrs {
                wanted.push((name.clone(), None));
            }
        }
        for asked in requested {
            if asked == "*" || asked == "1.1" || asked == "+" {
                continue;
            }
            let (name, range) = parse_attr_options(asked);
            if let Some(slot) = wanted
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            {
                if range.is_some() {
                    slot.1 = range;
                }
            } else {
                wanted.push((name, range));
            }
        }
        let mut out = Vec::new();
        let mut ranged = false;
        for (name, range) in wanted {
            let values = self.values(entry, &name, ctx);
            if values.is_empty() {
                continue;
            }
            let shown = entry
                .attrs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                .map_or(name.clone(), |(n, _)| n.clone());
            let range = match range {
                Some(r) => Some(r),
                None if values.len() > MAX_VAL_RANGE => Some(Range { low: 0, high: None }),
                None => None,
            };
            match range {
                None => out.push(LdapPartialAttribute {
                    atype: shown,
                    vals: values,
                }),
                Some(Range { low, high }) => {
                    if low >= values.len() {
                        continue;
                    }
                    let mut end = low + MAX_VAL_RANGE - 1;
                    if let Some(h) = high {
                        end = end.min(h);
                    }
                    end = end.min(values.len() - 1);
                    let tag = if end == values.len() - 1 {
                        format!("{shown};range={low}-*")
                    } else {
                        format!("{shown};range={low}-{end}")
                    };
                    ranged = true;
                    out.push(LdapPartialAttribute {
                        atype: tag,
                        vals: values[low..=end].to_vec(),
                    });
                }
            }
        }
        (out, ranged)
    }
}

/// Caches of one search's evaluation.
#[derive(Default)]
struct Ctx {
    closures: HashMap<String, HashSet<String>>,
    member_of: Option<HashMap<String, Vec<String>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    low: usize,
    high: Option<usize>,
}

/// `member;range=0-1499` → (`member`, 0..=1499); other options (`;binary`) are dropped.
fn parse_attr_options(asked: &str) -> (String, Option<Range>) {
    let mut parts = asked.split(';');
    let name = parts.next().unwrap_or_default().to_owned();
    let mut range = None;
    for option in parts {
        let Some(spec) = option
            .to_ascii_lowercase()
            .strip_prefix("range=")
            .map(str::to_owned)
        else {
            continue;
        };
        let Some((low, high)) = spec.split_once('-') else {
            continue;
        };
        let Ok(low) = low.parse() else { continue };
        let high = if high == "*" { None } else { high.parse().ok() };
        range = Some(Range { low, high });
    }
    (name, range)
}

fn value_eq(lower_attr: &str, stored: &[u8], asserted: &str) -> bool {
    if DN_ATTRIBUTES.contains(&lower_attr) {
        let stored = norm_dn(&String::from_utf8_lossy(stored));
        return stored.is_some() && stored == norm_dn(asserted);
    }
    match std::str::from_utf8(stored) {
        Ok(text) => text.to_lowercase() == asserted.to_lowercase(),
        Err(_) => stored == asserted.as_bytes(),
    }
}

fn compare(stored: &[u8], asserted: &str) -> std::cmp::Ordering {
    let stored = String::from_utf8_lossy(stored);
    match (stored.trim().parse::<i64>(), asserted.trim().parse::<i64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => stored.to_lowercase().cmp(&asserted.to_lowercase()),
    }
}

fn substring_matches(value: &str, sub: &LdapSubstringFilter) -> bool {
    let mut rest = value;
    if let Some(initial) = &sub.initial {
        let Some(r) = rest.strip_prefix(initial.to_lowercase().as_str()) else {
            return false;
        };
        rest = r;
    }
    for any in &sub.any {
        let any = any.to_lowercase();
        let Some(at) = rest.find(&any) else {
            return false;
        };
        rest = &rest[at + any.len()..];
    }
    match &sub.final_ {
        Some(last) => rest.ends_with(&last.to_lowercase()),
        None => true,
    }
}

/// A filter as RFC 4515 text, values escaped.
pub fn filter_text(filter: &LdapFilter) -> String {
    fn esc(v: &str) -> String {
        let mut out = String::new();
        for c in v.chars() {
            match c {
                '*' | '(' | ')' | '\\' | '\0' => out.push_str(&format!("\\{:02x}", c as u8)),
                _ => out.push(c),
            }
        }
        out
    }
    match filter {
        LdapFilter::And(all) => format!("(&{})", all.iter().map(filter_text).collect::<String>()),
        LdapFilter::Or(any) => format!("(|{})", any.iter().map(filter_text).collect::<String>()),
        LdapFilter::Not(f) => format!("(!{})", filter_text(f)),
        LdapFilter::Equality(a, v) => format!("({a}={})", esc(v)),
        LdapFilter::Approx(a, v) => format!("({a}~={})", esc(v)),
        LdapFilter::GreaterOrEqual(a, v) => format!("({a}>={})", esc(v)),
        LdapFilter::LessOrEqual(a, v) => format!("({a}<={})", esc(v)),
        LdapFilter::Present(a) => format!("({a}=*)"),
        LdapFilter::Substring(a, s) => {
            let mut text = format!("({a}=");
            if let Some(i) = &s.initial {
                text.push_str(&esc(i));
            }
            text.push('*');
            for any in &s.any {
                text.push_str(&esc(any));
                text.push('*');
            }
            if let Some(f) = &s.final_ {
                text.push_str(&esc(f));
            }
            text.push(')');
            text
        }
        LdapFilter::Extensible(m) => format!(
            "({}{}{}:={})",
            m.type_.as_deref().unwrap_or(""),
            if m.dn_attributes { ":dn" } else { "" },
            m.matching_rule
                .as_deref()
                .map(|r| format!(":{r}"))
                .unwrap_or_default(),
            esc(&m.match_value)
        ),
    }
}

fn done(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.to_owned(),
        referral: Vec::new(),
    }
}

/// What to send for one search.
struct Answer {
    entries: Vec<LdapSearchResultEntry>,
    result: LdapResult,
    controls: Vec<LdapControl>,
    /// Close the connection after this many entries, sending no result.
    cut_after: Option<usize>,
}

impl Answer {
    fn error(code: LdapResultCode, message: &str) -> Answer {
        Answer {
            entries: Vec::new(),
            result: done(code, message),
            controls: Vec::new(),
            cut_after: None,
        }
    }
}

/// Per-connection state.
struct Session {
    bound: bool,
}

async fn serve(socket: tokio::net::TcpStream, shared: Arc<Mutex<Directory>>) {
    let lock = || shared.lock().unwrap_or_else(|e| e.into_inner());
    lock().stats.connections += 1;
    let mut framed = Framed::new(socket, LdapCodec::default());
    let mut session = Session { bound: false };
    while let Some(Ok(msg)) = framed.next().await {
        let msgid = msg.msgid;
        let reply = |op: LdapOp, ctrl: Vec<LdapControl>| LdapMsg { msgid, op, ctrl };
        match msg.op {
            LdapOp::BindRequest(bind) => {
                let response = {
                    let mut dir = lock();
                    let res = match &bind.cred {
                        _ if bind.version != 3 => done(LdapResultCode::ProtocolError, ""),
                        LdapBindCred::Simple(pw) if bind.dn.is_empty() || pw.is_empty() => {
                            session.bound = false;
                            dir.stats.binds += 1;
                            done(LdapResultCode::Success, "")
                        }
                        LdapBindCred::Simple(pw) => {
                            let is_service = norm_dn(&bind.dn) == norm_dn(SERVICE_DN)
                                || bind.dn.eq_ignore_ascii_case("idpsync@corp.example");
                            if is_service && *pw == dir.password {
                                session.bound = true;
                                dir.stats.binds += 1;
                                done(LdapResultCode::Success, "")
                            } else {
                                session.bound = false;
                                dir.stats.refused_binds += 1;
                                done(
                                    LdapResultCode::InvalidCredentials,
                                    "80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, data 52e, v4563",
                                )
                            }
                        }
                        _ => done(LdapResultCode::AuthMethodNotSupported, ""),
                    };
                    LdapBindResponse {
                        res,
                        saslcreds: None,
                    }
                };
                if framed
                    .send(reply(LdapOp::BindResponse(response), Vec::new()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            LdapOp::UnbindRequest => return,
            LdapOp::AbandonRequest(_) => {}
            LdapOp::SearchRequest(request) => {
                let answer = lock().search(&session, &request, &msg.ctrl);
                for (sent, entry) in answer.entries.into_iter().enumerate() {
                    if answer.cut_after == Some(sent) {
                        let _ = framed.flush().await;
                        return;
                    }
                    if framed
                        .feed(reply(LdapOp::SearchResultEntry(entry), Vec::new()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if answer.cut_after.is_some() {
                    let _ = framed.flush().await;
                    return;
                }
                if framed
                    .send(reply(
                        LdapOp::SearchResultDone(answer.result),
                        answer.controls,
                    ))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            LdapOp::ExtendedRequest(_) => {
                let response = LdapExtendedResponse {
                    res: done(
                        LdapResultCode::ProtocolError,
                        "0000203D: LdapErr: DSID-0C0C0B8E, comment: Unknown extended request OID, data 0, v4563",
                    ),
                    name: None,
                    value: None,
                };
                if framed
                    .send(reply(LdapOp::ExtendedResponse(response), Vec::new()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // Writes, compares, … are not part of the fake: drop the connection.
            _ => return,
        }
    }
}

impl Directory {
    fn search(
        &mut self,
        session: &Session,
        request: &LdapSearchRequest,
        controls: &[LdapControl],
    ) -> Answer {
        self.stats.searches += 1;
        let paged = controls.iter().find_map(|c| match c {
            LdapControl::SimplePagedResults { size, cookie } => Some((*size, cookie.clone())),
            _ => None,
        });
        let scope = match request.scope {
            LdapSearchScope::Base => "base",
            LdapSearchScope::OneLevel => "one",
            LdapSearchScope::Subtree => "sub",
            LdapSearchScope::Children => "children",
        };
        self.stats.search_log.push(SearchSeen {
            base: request.base.clone(),
            scope,
            filter: filter_text(&request.filter),
            attrs: request.attrs.clone(),
            page_size: paged.as_ref().map(|(size, _)| *size),
            continued: paged.as_ref().is_some_and(|(_, cookie)| !cookie.is_empty()),
        });
        collect_in_chain(&request.filter, &mut self.stats.in_chain_values);
        let range_request = request
            .attrs
            .iter()
            .any(|a| a.to_ascii_lowercase().contains(";range="));
        if range_request {
            self.stats.range_requests += 1;
        }
        if paged.is_some() {
            self.stats.paged_requests += 1;
        }

        let root = request.base.trim().is_empty() && request.scope == LdapSearchScope::Base;
        if !root {
            match self.cut {
                Some(Cut::OnRangeRequest) if range_request => {
                    self.cut = None;
                    return Answer {
                        cut_after: Some(0),
                        ..Answer::error(LdapResultCode::Other, "")
                    };
                }
                _ => {}
            }
        }
        if root {
            self.stats.root_dse_reads += 1;
            let entry = self.root_dse();
            let mut ctx = Ctx::default();
            let mut entries = Vec::new();
            if self.matches(&request.filter, &entry, &mut ctx) {
                let (attributes, _) = self.select(&entry, &request.attrs, &mut ctx);
                entries.push(LdapSearchResultEntry {
                    dn: String::new(),
                    attributes,
                });
            }
            self.stats.entries_sent += entries.len();
            return Answer {
                entries,
                result: done(LdapResultCode::Success, ""),
                controls: Vec::new(),
                cut_after: None,
            };
        }
        if !session.bound {
            return Answer::error(
                LdapResultCode::OperationsError,
                "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v4563",
            );
        }

        // The matched entries still to send, and the paging state.
        let (mut rest, page_size) = match &paged {
            Some((size, cookie)) if !cookie.is_empty() => {
                let Some(paging) = self.pages.remove(cookie) else {
                    return Answer::error(
                        LdapResultCode::ProtocolError,
                        "00000057: LdapErr: DSID-0C090809, comment: Error processing control, data 0, v4563",
                    );
                };
                if paging.request.base != request.base
                    || paging.request.filter != request.filter
                    || paging.request.scope != request.scope
                {
                    return Answer::error(
                        LdapResultCode::ProtocolError,
                        "00000057: LdapErr: DSID-0C090809, comment: Error processing control (the search changed between pages), data 0, v4563",
                    );
                }
                (paging.rest, Some(*size))
            }
            _ => {
                let Some(base) = rdns(&request.base) else {
                    return Answer::error(
                        LdapResultCode::InvalidDNSyntax,
                        "00002081: NameErr: DSID-03100241, problem 2003 (BAD_ATT_SYNTAX), data 0",
                    );
                };
                if !self.by_dn.contains_key(&base.join(",")) {
                    return Answer {
                        result: LdapResult {
                            matcheddn: DOMAIN.to_owned(),
                            ..done(
                                LdapResultCode::NoSuchObject,
                                &format!(
                                    "0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT), data 0, best match of:\n\t'{DOMAIN}'\n"
                                ),
                            )
                        },
                        ..Answer::error(LdapResultCode::Success, "")
                    };
                }
                let mut ctx = Ctx::default();
                let matched = (0..self.entries.len())
                    .filter(|&i| {
                        let entry = &self.entries[i];
                        self.in_scope(entry, &base, &request.scope)
                            && self.matches(&request.filter, entry, &mut ctx)
                    })
                    .collect::<VecDeque<_>>();
                (matched, paged.as_ref().map(|(size, _)| *size))
            }
        };

        let mut controls = Vec::new();
        let mut result = done(LdapResultCode::Success, "");
        let take = match page_size {
            Some(size) if size <= 0 => {
                // RFC 2696: size 0 abandons the paged search.
                rest.clear();
                0
            }
            Some(size) => (size as usize).min(MAX_PAGE_SIZE),
            None => {
                let limit = if request.sizelimit > 0 {
                    (request.sizelimit as usize).min(MAX_PAGE_SIZE)
                } else {
                    MAX_PAGE_SIZE
                };
                if rest.len() > limit {
                    self.stats.size_limit_exceeded += 1;
                    result = done(LdapResultCode::SizeLimitExceeded, "");
                }
                limit
            }
        };
        let now: Vec<usize> = rest.drain(..take.min(rest.len())).collect();
        if page_size.is_some() {
            let cookie = if rest.is_empty() {
                Vec::new()
            } else {
                let cookie = format!("fake-ad-page-{}", self.next_cookie).into_bytes();
                self.next_cookie += 1;
                self.pages.insert(
                    cookie.clone(),
                    Paging {
                        request: request.clone(),
                        rest,
                    },
                );
                cookie
            };
            controls.push(LdapControl::SimplePagedResults { size: 0, cookie });
        }

        let mut ctx = Ctx::default();
        let mut entries = Vec::with_capacity(now.len());
        for index in now {
            let entry = &self.entries[index];
            let (attributes, ranged) = self.select(entry, &request.attrs, &mut ctx);
            if ranged {
                self.stats.ranged_entries += 1;
            }
            entries.push(LdapSearchResultEntry {
                dn: entry.dn.clone(),
                attributes,
            });
        }
        let cut_after = match self.cut {
            Some(Cut::AfterEntries(n)) => {
                self.cut = None;
                Some(n.min(entries.len()))
            }
            _ => None,
        };
        self.stats.entries_sent += cut_after.unwrap_or(entries.len());
        Answer {
            entries,
            result,
            controls,
            cut_after,
        }
    }
}

fn collect_in_chain(filter: &LdapFilter, out: &mut Vec<String>) {
    match filter {
        LdapFilter::And(all) | LdapFilter::Or(all) => {
            all.iter().for_each(|f| collect_in_chain(f, out))
        }
        LdapFilter::Not(f) => collect_in_chain(f, out),
        LdapFilter::Extensible(m) if m.matching_rule.as_deref() == Some(IN_CHAIN) => {
            out.push(m.match_value.clone())
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    //! The fake against the `ldap3` client, so the AD tests rest on a fake that behaves.

    use super::*;
    use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
    use ldap3::{LdapConnAsync, Scope, SearchEntry, SearchResult};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    async fn connect(ad: &FakeAd) -> ldap3::Ldap {
        let (conn, mut ldap) = LdapConnAsync::new(&ad.url()).await.unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind(SERVICE_DN, SERVICE_PASSWORD)
            .await
            .unwrap()
            .success()
            .unwrap();
        ldap
    }

    async fn paged(
        ldap: &mut ldap3::Ldap,
        size: i32,
        base: &str,
        filter: &str,
        attrs: Vec<&str>,
    ) -> Vec<SearchEntry> {
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(size)),
        ];
        let mut stream = ldap
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(e) = stream.next().await.unwrap() {
            out.push(SearchEntry::construct(e));
        }
        stream.finish().await.success().unwrap();
        out
    }

    fn users(prefix: &str, n: usize) -> Vec<User> {
        (0..n)
            .map(|i| User::new(&format!("{prefix}{i:04}")))
            .collect()
    }

    #[test]
    fn binds_root_dse_and_refusals() {
        let ad = FakeAd::start();
        block_on(async {
            let (conn, mut ldap) = LdapConnAsync::new(&ad.url()).await.unwrap();
            ldap3::drive!(conn);
            let refused = ldap.simple_bind(SERVICE_DN, "wrong").await.unwrap();
            assert_eq!(refused.rc, 49);
            assert!(refused.text.contains("data 52e"), "{}", refused.text);
            // Anonymous: the rootDSE only.
            let SearchResult(root, res) = ldap
                .search(
                    "",
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["highestCommittedUSN", "dsServiceName", "supportedControl"],
                )
                .await
                .unwrap();
            assert_eq!(res.rc, 0);
            let root = SearchEntry::construct(root[0].clone());
            assert_eq!(
                root.attrs["highestCommittedUSN"],
                vec![ad.usn().to_string()]
            );
            assert_eq!(
                root.attrs["dsServiceName"],
                vec![DS_SERVICE_NAME.to_owned()]
            );
            assert!(root.attrs["supportedControl"].contains(&PAGED_RESULTS_OID.to_owned()));
            assert!(!root.attrs.contains_key("namingContexts"));
            let SearchResult(_, res) = ldap
                .search(DOMAIN, Scope::Subtree, "(objectClass=*)", vec!["cn"])
                .await
                .unwrap();
            assert_eq!(res.rc, 1, "{}", res.text);

            ldap.simple_bind(
                "CN=IDPSYNC, ou=service accounts,dc=CORP,dc=example",
                SERVICE_PASSWORD,
            )
            .await
            .unwrap()
            .success()
            .unwrap();
            let SearchResult(none, res) = ldap
                .search(
                    "OU=Nowhere,DC=corp,DC=example",
                    Scope::Subtree,
                    "(objectClass=*)",
                    vec!["cn"],
                )
                .await
                .unwrap();
            assert_eq!((none.len(), res.rc), (0, 32));
            ldap.unbind().await.unwrap();
        });
        let before = ad.usn();
        ad.bump_usn();
        ad.add_user(&User::new("ana"));
        assert_eq!(ad.usn(), before + 2);
        let stats = ad.stats();
        assert_eq!(
            (stats.binds, stats.refused_binds, stats.root_dse_reads),
            (1, 1, 1)
        );
    }

    #[test]
    fn every_change_moves_the_usn_and_shows_in_the_next_search() {
        let ad = FakeAd::start();
        let usn = ad.usn();
        let ana = ad.add_user(&User::new("ana").with_account_control(66048));
        let ben = ad.add_user(&User::new("ben"));
        let team = ad.add_group("team", std::slice::from_ref(&ana));
        ad.set_members(&team, &[ana.clone(), ben.clone()]);
        ad.set_account_control(&ana, 66050);
        assert_eq!(ad.usn(), usn + 5);
        block_on(async {
            let mut ldap = connect(&ad).await;
            let found = paged(
                &mut ldap,
                10,
                DOMAIN,
                &format!("(&(memberOf={team})(!(userAccountControl:{BIT_AND}:=2)))"),
                vec!["cn"],
            )
            .await;
            let names: Vec<&str> = found.iter().map(|e| e.attrs["cn"][0].as_str()).collect();
            assert_eq!(names, ["ben"]);
            ad.set_password("rotated");
            let refused = ldap
                .simple_bind(SERVICE_DN, SERVICE_PASSWORD)
                .await
                .unwrap();
            assert_eq!(refused.rc, 49);
            ldap.simple_bind(SERVICE_DN, "rotated")
                .await
                .unwrap()
                .success()
                .unwrap();
        });
        let stats = ad.stats();
        assert_eq!(stats.searches_with("memberOf=").len(), 1);
        assert_eq!((stats.binds, stats.refused_binds), (2, 1));
    }

    #[test]
    fn users_carry_a_binary_guid_and_filters_evaluate_like_ad() {
        let ad = FakeAd::start();
        let ana = User::new("ana").with_guid([
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x46, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]);
        assert_eq!(ana.guid_text(), "00112233-4455-4677-8899-aabbccddeeff");
        ad.add_users(&[
            ana.clone(),
            User::new("ben").disabled(),
            User::new("cid").without_mail(),
        ]);
        for seed in ["ana", "ben", "x", ""] {
            assert!(std::str::from_utf8(&guid_for(seed)).is_err());
        }
        block_on(async {
            let mut ldap = connect(&ad).await;
            let SearchResult(found, res) = ldap
                .search(
                    DOMAIN,
                    Scope::Subtree,
                    "(&(objectCategory=person)(objectClass=user))",
                    vec!["mail", "objectGUID", "userAccountControl"],
                )
                .await
                .unwrap();
            assert_eq!(res.rc, 0);
            let found: Vec<SearchEntry> = found.into_iter().map(SearchEntry::construct).collect();
            // The service account is a user too.
            assert_eq!(found.len(), 4);
            let a = found.iter().find(|e| e.dn == ana.dn()).unwrap();
            assert_eq!(a.bin_attrs["objectGUID"], vec![ana.guid.to_vec()]);
            assert!(!a.attrs.contains_key("objectGUID"));
            assert_eq!(a.attrs["mail"], vec!["ana@corp.example".to_owned()]);
            assert!(!a.attrs.contains_key("cn"), "only the attributes asked for");

            let names = |entries: Vec<ldap3::ResultEntry>| {
                let mut n: Vec<String> = entries
                    .into_iter()
                    .map(|e| SearchEntry::construct(e).attrs["sAMAccountName"][0].clone())
                    .collect();
                n.sort();
                n
            };
            for (filter, expected) in [
                (
                    "(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
                    vec!["ana", "cid", "idpsync"],
                ),
                (
                    "(userAccountControl:1.2.840.113556.1.4.803:=514)",
                    vec!["ben"],
                ),
                ("(&(objectClass=user)(mail=*))", vec!["ana", "ben"]),
                ("(MAIL=ANA@Corp.Example)", vec!["ana"]),
                ("(sAMAccountName=*i*)", vec!["cid", "idpsync"]),
                ("(sAMAccountName=b*n)", vec!["ben"]),
                ("(|(cn=ana)(cn=cid))", vec!["ana", "cid"]),
                ("(userAccountControl>=514)", vec!["ben"]),
                (
                    "(distinguishedName=cn=BEN, ou=people, dc=corp, dc=example)",
                    vec!["ben"],
                ),
            ] {
                let SearchResult(found, res) = ldap
                    .search(DOMAIN, Scope::Subtree, filter, vec!["sAMAccountName"])
                    .await
                    .unwrap();
                assert_eq!(res.rc, 0, "{filter}");
                assert_eq!(names(found), expected, "{filter}");
            }
            // Scopes.
            let SearchResult(one, _) = ldap
                .search(DOMAIN, Scope::OneLevel, "(objectClass=*)", vec!["1.1"])
                .await
                .unwrap();
            assert_eq!(one.len(), 3, "the three OUs");
            let SearchResult(base, _) = ldap
                .search(
                    &ana.dn(),
                    Scope::Base,
                    "(objectClass=*)",
                    Vec::<&str>::new(),
                )
                .await
                .unwrap();
            let base = SearchEntry::construct(base[0].clone());
            assert_eq!(base.attrs["userAccountControl"], vec!["512".to_owned()]);
            assert_eq!(base.bin_attrs["objectSid"][0].len(), 28);
        });
    }

    #[test]
    fn unpaged_searches_stop_at_max_page_size_and_paged_ones_get_everything() {
        let ad = FakeAd::start();
        ad.add_users(&users("u", 2345));
        block_on(async {
            let mut ldap = connect(&ad).await;
            let SearchResult(found, res) = ldap
                .search(PEOPLE, Scope::Subtree, "(objectClass=user)", vec!["mail"])
                .await
                .unwrap();
            assert_eq!((found.len(), res.rc), (MAX_PAGE_SIZE, 4));
            assert_eq!(ad.stats().size_limit_exceeded, 1);

            ad.reset_stats();
            // Asking for more than MaxPageSize per page still gets 1000 at a time.
            let all = paged(&mut ldap, 5000, PEOPLE, "(objectClass=user)", vec!["mail"]).await;
            assert_eq!(all.len(), 2345);
            let distinct: HashSet<_> = all.iter().map(|e| e.dn.clone()).collect();
            assert_eq!(distinct.len(), 2345);
            assert_eq!(ad.stats().paged_requests, 3);

            ad.reset_stats();
            let all = paged(&mut ldap, 500, PEOPLE, "(objectClass=user)", vec!["1.1"]).await;
            assert_eq!(all.len(), 2345);
            assert!(all[0].attrs.is_empty() && all[0].bin_attrs.is_empty());
            assert_eq!(ad.stats().paged_requests, 5);
        });
    }

    #[test]
    fn range_retrieval_over_max_val_range() {
        let ad = FakeAd::start();
        let dns = ad.add_users(&users("m", 3200));
        let big = ad.add_group("Big", &dns);
        let small = ad.add_group("Small", &dns[..3]);
        block_on(async {
            let mut ldap = connect(&ad).await;
            let get = |entries: Vec<ldap3::ResultEntry>| SearchEntry::construct(entries[0].clone());
            let SearchResult(found, _) = ldap
                .search(
                    &big,
                    Scope::Base,
                    "(objectClass=group)",
                    vec!["member", "cn"],
                )
                .await
                .unwrap();
            let first = get(found);
            assert!(!first.attrs.contains_key("member"));
            assert_eq!(first.attrs["member;range=0-1499"].len(), 1500);
            assert_eq!(first.attrs["cn"], vec!["Big".to_owned()]);
            // All attributes: the same naming.
            let SearchResult(found, _) = ldap
                .search(&big, Scope::Base, "(objectClass=*)", Vec::<&str>::new())
                .await
                .unwrap();
            assert!(get(found).attrs.contains_key("member;range=0-1499"));

            let mut all = first.attrs["member;range=0-1499"].clone();
            let SearchResult(found, _) = ldap
                .search(
                    &big,
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["member;range=1500-*"],
                )
                .await
                .unwrap();
            let second = get(found);
            all.extend(second.attrs["member;range=1500-2999"].clone());
            let SearchResult(found, _) = ldap
                .search(
                    &big,
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["Member;Range=3000-*"],
                )
                .await
                .unwrap();
            let last = get(found);
            assert_eq!(last.attrs["member;range=3000-*"].len(), 200);
            all.extend(last.attrs["member;range=3000-*"].clone());
            assert_eq!(all, dns);
            // An explicit high bound, and one past the end.
            let SearchResult(found, _) = ldap
                .search(
                    &big,
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["member;range=10-19"],
                )
                .await
                .unwrap();
            assert_eq!(get(found).attrs["member;range=10-19"], dns[10..20].to_vec());
            let SearchResult(found, _) = ldap
                .search(
                    &small,
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["member;range=0-*"],
                )
                .await
                .unwrap();
            assert_eq!(get(found).attrs["member;range=0-*"].len(), 3);
            let SearchResult(found, _) = ldap
                .search(&small, Scope::Base, "(objectClass=*)", vec!["member"])
                .await
                .unwrap();
            assert_eq!(get(found).attrs["member"].len(), 3);
        });
        let stats = ad.stats();
        assert_eq!(stats.range_requests, 4);
        assert_eq!(stats.ranged_entries, 6);
    }

    #[test]
    fn in_chain_filters_expand_nested_groups_on_the_server() {
        let ad = FakeAd::start();
        // d is in no group.
        let [a, b, c, _d] = ["a", "b", "c", "d"].map(|n| ad.add_user(&User::new(n)));
        let inner = ad.add_group("inner", std::slice::from_ref(&c));
        let odd = ad.add_group("odd*(x)\\y", &[b.clone(), inner.clone()]);
        assert_eq!(odd, "CN=odd*(x)\\\\y,OU=Groups,DC=corp,DC=example");
        let outer = ad.add_group("outer", &[a.clone(), odd.clone()]);
        // A cycle back to the top.
        ad.add_member(&inner, &outer);
        block_on(async {
            let mut ldap = connect(&ad).await;
            let escaped = ldap3::ldap_escape(&odd).into_owned();
            for (filter, expected) in [
                (
                    format!("(&(objectClass=user)(memberOf:{IN_CHAIN}:={escaped}))"),
                    vec!["a", "b", "c"],
                ),
                (
                    format!("(&(objectClass=user)(memberOf:{IN_CHAIN}:={inner}))"),
                    vec!["a", "b", "c"],
                ),
                (format!("(memberOf={escaped})"), vec!["b", "inner"]),
                (
                    format!("(&(objectClass=group)(member:{IN_CHAIN}:={b}))"),
                    vec!["inner", "odd*(x)\\y", "outer"],
                ),
            ] {
                let found = paged(&mut ldap, 100, DOMAIN, &filter, vec!["cn"]).await;
                let mut names: Vec<String> = found
                    .into_iter()
                    .map(|e| e.attrs["cn"][0].clone())
                    .collect();
                names.sort();
                assert_eq!(names, expected, "{filter}");
            }
        });
        let stats = ad.stats();
        assert_eq!(stats.in_chain_values[0], odd);
        assert_eq!(stats.in_chain_values.len(), 3);
        assert_eq!(stats.searches_with("\\2a\\28x\\29\\5c\\5cy").len(), 2);
    }

    #[test]
    fn cuts_close_the_connection_mid_search() {
        let ad = FakeAd::start();
        let dns = ad.add_users(&users("c", 1600));
        let big = ad.add_group("Big", &dns);
        ad.cut(Cut::AfterEntries(10));
        block_on(async {
            let mut ldap = connect(&ad).await;
            let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![Box::new(PagedResults::new(100))];
            let mut stream = ldap
                .streaming_search_with(
                    adapters,
                    PEOPLE,
                    Scope::Subtree,
                    "(objectClass=user)",
                    vec!["1.1"],
                )
                .await
                .unwrap();
            let mut got = 0;
            let error = loop {
                match stream.next().await {
                    Ok(Some(_)) => got += 1,
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            let finished = stream.finish().await;
            assert!(error.is_some() || finished.rc != 0, "the cut is visible");
            assert_eq!(got, 10);

            ad.cut(Cut::OnRangeRequest);
            let mut ldap = connect(&ad).await;
            let SearchResult(found, _) = ldap
                .search(&big, Scope::Base, "(objectClass=*)", vec!["member"])
                .await
                .unwrap();
            assert_eq!(found.len(), 1);
            assert!(
                ldap.search(
                    &big,
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["member;range=1500-*"]
                )
                .await
                .is_err()
            );
        });
    }
}
