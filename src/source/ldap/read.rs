//! Reading a whole directory into a [`Snapshot`]: users (key, immutable id, enabled), groups of
//! the three common schemas (or Active Directory's), and their members resolved to ids.
//!
//! Group ids are normalised DNs; user ids are the immutable ids (`entryUUID`, `objectGUID`).
//! Member values that name nothing read — a placeholder DN, an entry outside the bases or
//! filters — are left out, not errors: directories are full of them.

use std::collections::HashMap;

use ldap3::ldap_escape;

use crate::config::LdapConfig;
use crate::directory::{Snapshot, SnapshotGroup, SnapshotUser};
use crate::dn;
use crate::source::SourceError;

use super::conn::Session;
use super::search::{self, Entry};

/// Active Directory's `userAccountControl` bit for a disabled account (ADS_UF_ACCOUNTDISABLE).
const ACCOUNT_DISABLED: u32 = 0x2;

/// LDAP_MATCHING_RULE_IN_CHAIN: transitive membership, evaluated by Active Directory.
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// A whole read: the entries, the ids derived from them and every group's resolved members.
/// [`DirectoryRead::snapshot`] lends it out as a [`Snapshot`] without copying a string.
pub struct DirectoryRead {
    users: Vec<Entry>,
    groups: Vec<Entry>,
    user_ids: Vec<String>,
    group_ids: Vec<String>,
    members: Vec<Vec<Member>>,
    enabled: Vec<bool>,
    user_key: String,
    group_name_attr: String,
}

/// A member value resolved: an index into the users or the groups read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    User(u32),
    Group(u32),
}

/// Reads every user and group and resolves members; any failure fails the whole read.
pub async fn read(session: &mut Session<'_>, user_key: &str) -> Result<DirectoryRead, SourceError> {
    let config = session.config;
    let mut user_attrs = vec![
        user_key,
        config.user_id_attr.as_str(),
        config.uid_attr.as_str(),
    ];
    if let Some(attr) = &config.disabled_attr {
        user_attrs.push(attr);
    }
    if config.active_directory {
        user_attrs.push("userAccountControl");
    }
    let mut group_attrs = vec![config.group_name_attr.as_str()];
    group_attrs.extend(config.member_attrs.iter().map(String::as_str));
    if let Some(attr) = &config.member_uid_attr {
        group_attrs.push(attr);
    }
    let users = search::paged(
        session,
        "users",
        &config.user_base_dn,
        &config.user_filter,
        &user_attrs,
    )
    .await?;
    let groups = search::paged(
        session,
        "groups",
        &config.group_base_dn,
        &config.group_filter,
        &group_attrs,
    )
    .await?;

    let user_ids = users
        .iter()
        .map(|entry| {
            immutable_id(entry, &config.user_id_attr).ok_or_else(|| {
                SourceError::Invalid(format!(
                    "{}: user {:?} has no {} (user_id_attr)",
                    config.url, entry.dn, config.user_id_attr
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let group_ids: Vec<String> = groups
        .iter()
        .map(|g| normalised(config, &g.dn).map(|dn| dn.into_owned()))
        .collect::<Result<_, _>>()?;
    let mut by_dn: HashMap<std::borrow::Cow<'_, str>, Member> =
        HashMap::with_capacity(users.len() + groups.len());
    for (index, entry) in users.iter().enumerate() {
        by_dn.insert(normalised(config, &entry.dn)?, Member::User(index as u32));
    }
    for (index, id) in group_ids.iter().enumerate() {
        by_dn.insert(
            std::borrow::Cow::Borrowed(id.as_str()),
            Member::Group(index as u32),
        );
    }
    let mut by_uid: HashMap<String, u32> = HashMap::new();
    if config.member_uid_attr.is_some() {
        for (index, entry) in users.iter().enumerate() {
            if let Some(uid) = search::first(entry, &config.uid_attr) {
                by_uid.insert(uid.trim().to_lowercase(), index as u32);
            }
        }
    }

    let mut ignored = 0usize;
    let mut members = Vec::with_capacity(groups.len());
    for entry in &groups {
        let mut these = Vec::new();
        for attr in &config.member_attrs {
            let rest = search::ranged_values(session, entry, attr).await?;
            for value in search::values(entry, attr).iter().chain(&rest) {
                match dn::normalised(strip_unique_id(value)).and_then(|m| by_dn.get(&m)) {
                    Some(&member) => these.push(member),
                    None => ignored += 1,
                }
            }
        }
        if let Some(attr) = &config.member_uid_attr {
            for uid in search::values(entry, attr) {
                match by_uid.get(&uid.trim().to_lowercase()) {
                    Some(&user) => these.push(Member::User(user)),
                    None => ignored += 1,
                }
            }
        }
        if config.in_chain && these.iter().any(|m| matches!(m, Member::Group(_))) {
            these = in_chain_members(session, &by_dn, &entry.dn).await?;
        }
        members.push(these);
    }
    if ignored > 0 {
        tracing::debug!(
            ignored,
            "Member values naming no user or group that was read were left out."
        );
    }
    Ok(DirectoryRead {
        groups,
        user_ids,
        group_ids,
        members,
        enabled: users.iter().map(|entry| enabled(config, entry)).collect(),
        users,
        user_key: user_key.to_owned(),
        group_name_attr: config.group_name_attr.clone(),
    })
}

impl DirectoryRead {
    /// The read as a snapshot borrowing its strings.
    pub fn snapshot(&self) -> Snapshot<&str> {
        let users = self
            .users
            .iter()
            .zip(&self.user_ids)
            .zip(&self.enabled)
            .map(|((entry, id), &enabled)| SnapshotUser {
                id: id.as_str(),
                key: search::first(entry, &self.user_key),
                enabled,
            })
            .collect();
        let groups = self
            .groups
            .iter()
            .zip(&self.group_ids)
            .zip(&self.members)
            .map(|((entry, id), members)| SnapshotGroup {
                id: id.as_str(),
                name: search::first(entry, &self.group_name_attr).unwrap_or(entry.dn.as_str()),
                members: members
                    .iter()
                    .map(|m| match *m {
                        Member::User(i) => self.user_ids[i as usize].as_str(),
                        Member::Group(i) => self.group_ids[i as usize].as_str(),
                    })
                    .collect(),
            })
            .collect();
        Snapshot { users, groups }
    }
}

/// Whether the account may be a member.
fn enabled(config: &LdapConfig, entry: &Entry) -> bool {
    if config.active_directory {
        let control = search::first(entry, "userAccountControl")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0);
        return control & ACCOUNT_DISABLED == 0;
    }
    let Some(attr) = &config.disabled_attr else {
        return true;
    };
    let values = search::values(entry, attr);
    match &config.disabled_value {
        None => values.is_empty(),
        Some(disabled) => !values
            .iter()
            .any(|v| v.trim().eq_ignore_ascii_case(disabled.trim())),
    }
}

/// The immutable id: text as given, or a binary GUID (`objectGUID`) in its usual text form.
fn immutable_id(entry: &Entry, attr: &str) -> Option<String> {
    if let Some(bytes) = search::first_binary(entry, attr) {
        return Some(guid_or_hex(bytes));
    }
    let text = search::first(entry, attr)?;
    // A GUID whose 16 bytes happen to be valid UTF-8 arrives as text.
    if attr.eq_ignore_ascii_case("objectGUID") && text.len() == 16 {
        return Some(guid_or_hex(text.as_bytes()));
    }
    Some(text.to_owned())
}

/// A 16-byte GUID in the text form Windows shows (the first three fields are little-endian);
/// other binary values in hex.
fn guid_or_hex(bytes: &[u8]) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if bytes.len() != 16 {
        return hex(bytes);
    }
    let reversed = |range: std::ops::Range<usize>| {
        let mut part = bytes[range].to_vec();
        part.reverse();
        hex(&part)
    };
    format!(
        "{}-{}-{}-{}-{}",
        reversed(0..4),
        reversed(4..6),
        reversed(6..8),
        hex(&bytes[8..10]),
        hex(&bytes[10..16])
    )
}

/// `uniqueMember` values may end in an optional UID, `#'0101'B` (RFC 4517 NameAndOptionalUID).
fn strip_unique_id(value: &str) -> &str {
    match value.rfind("#'") {
        Some(at) if value.ends_with("'B") => &value[..at],
        _ => value,
    }
}

fn normalised<'a>(
    config: &LdapConfig,
    entry_dn: &'a str,
) -> Result<std::borrow::Cow<'a, str>, SourceError> {
    dn::normalised(entry_dn).ok_or_else(|| {
        SourceError::Invalid(format!(
            "{} returned an entry with a malformed DN {entry_dn:?}",
            config.url
        ))
    })
}

/// Every user in `group_dn` at any depth, as Active Directory evaluates it (one paged search).
async fn in_chain_members(
    session: &mut Session<'_>,
    by_dn: &HashMap<std::borrow::Cow<'_, str>, Member>,
    group_dn: &str,
) -> Result<Vec<Member>, SourceError> {
    let config = session.config;
    let filter = format!(
        "(&{}(memberOf:{IN_CHAIN}:={}))",
        config.user_filter,
        ldap_escape(group_dn)
    );
    let entries = search::paged(
        session,
        "nested members",
        &config.user_base_dn,
        &filter,
        &["1.1"],
    )
    .await?;
    let mut members = Vec::with_capacity(entries.len());
    for entry in &entries {
        if let Some(&member @ Member::User(_)) = by_dn.get(&normalised(config, &entry.dn)?) {
            members.push(member);
        }
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_read_the_way_windows_writes_them() {
        let bytes = [
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        assert_eq!(guid_or_hex(&bytes), "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(guid_or_hex(&[1, 2]), "0102");
    }

    #[test]
    fn unique_member_uids_are_stripped() {
        assert_eq!(strip_unique_id("uid=a,dc=x#'0101'B"), "uid=a,dc=x");
        assert_eq!(strip_unique_id("uid=a,dc=x"), "uid=a,dc=x");
        assert_eq!(strip_unique_id("cn=a#b,dc=x"), "cn=a#b,dc=x");
    }

    #[test]
    fn filter_values_are_escaped_per_rfc_4515() {
        assert_eq!(
            ldap_escape("cn=R&D (EMEA) *\\x\0,dc=x"),
            "cn=R&D \\28EMEA\\29 \\2a\\5cx\\00,dc=x"
        );
    }
}
