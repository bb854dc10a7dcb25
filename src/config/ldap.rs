//! The keys of an `[[idp]]` with `kind = "ldap"` (SPEC §2): OpenLDAP and Active Directory.
//!
//! Defaults find `inetOrgPerson` users and the three common group schemas; `active_directory =
//! true` switches the defaults to Active Directory's (`user` objects, `objectGUID`,
//! `sAMAccountName`, `group` objects).

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use super::reader::{ConfigError, Section};
use super::secret;

/// How to reach and read one LDAP directory.
#[derive(Debug, Clone)]
pub struct LdapConfig {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// StartTLS on an `ldap://` URL.
    pub starttls: bool,
    /// PEM certificates to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (`tls_insecure = true`).
    pub tls_insecure: bool,
    /// The DN to bind as; anonymous when absent.
    pub bind_dn: Option<String>,
    /// The bind password.
    pub bind_password: Option<SecretString>,
    /// Where users are searched.
    pub user_base_dn: String,
    /// Where groups are searched.
    pub group_base_dn: String,
    /// The base DN the unchanged check watches.
    pub base_dn: String,
    /// Which entries are users.
    pub user_filter: String,
    /// Which entries are groups.
    pub group_filter: String,
    /// The attribute holding the immutable id.
    pub user_id_attr: String,
    /// The attribute `member_uid_attr` values name.
    pub uid_attr: String,
    /// An attribute marking disabled users (not Active Directory).
    pub disabled_attr: Option<String>,
    /// The value of `disabled_attr` that disables; any value when absent.
    pub disabled_value: Option<String>,
    /// DN-valued member attributes.
    pub member_attrs: Vec<String>,
    /// The uid-valued member attribute, if any.
    pub member_uid_attr: Option<String>,
    /// The attribute giving a group's name.
    pub group_name_attr: String,
    /// Entries per page (RFC 2696).
    pub page_size: u32,
    /// Active Directory: `userAccountControl`, range retrieval, `highestCommittedUSN`.
    pub active_directory: bool,
    /// Active Directory: nested members from `LDAP_MATCHING_RULE_IN_CHAIN`.
    pub in_chain: bool,
    /// How long connecting (and TLS) may take.
    pub connect_timeout: Duration,
    /// How long one LDAP operation may take.
    pub timeout: Duration,
}

/// The default group filter: the three common group schemas.
pub const DEFAULT_GROUP_FILTER: &str =
    "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))";

/// Reads the LDAP keys of `s` (the common `[[idp]]` keys are read by the caller).
pub(super) fn read(
    s: &mut Section<'_>,
    dir: &Path,
    env: &[(String, String)],
) -> Result<LdapConfig, ConfigError> {
    let url = s.string("url")?.ok_or_else(|| {
        s.entry_error("an ldap IdP needs url = \"ldap://host:389\" (or ldaps://)")
    })?;
    let lower = url.value.to_ascii_lowercase();
    if !(lower.starts_with("ldap://") || lower.starts_with("ldaps://")) {
        return Err(s.error_from(
            "url",
            &url.origin,
            format!("{:?} is not an ldap:// or ldaps:// URL", url.value),
        ));
    }
    let starttls = flag(s, "starttls")?;
    if starttls && lower.starts_with("ldaps://") {
        return Err(s.error(
            "starttls",
            "starttls applies to ldap:// URLs; ldaps:// is TLS already",
        ));
    }
    let ca_file = s.string("ca_file")?.map(|v| dir.join(v.value));
    let tls_insecure = flag(s, "tls_insecure")?;
    let bind_dn = non_empty(s, "bind_dn")?;
    let bind_password = secret::read(s, "bind_password", dir, env)?;
    if bind_dn.is_some() != bind_password.is_some() {
        return Err(s.entry_error(
            "bind_dn and bind_password_file (or bind_password = \"env:VAR\") go together; give both, or neither for an anonymous bind",
        ));
    }
    let base_dn = non_empty(s, "base_dn")?
        .ok_or_else(|| s.entry_error("an ldap IdP needs base_dn = \"dc=example,dc=com\""))?;
    let active_directory = flag(s, "active_directory")?;
    let (user_filter, group_filter, id_attr, uid_attr) = if active_directory {
        (
            "(&(objectCategory=person)(objectClass=user))",
            "(objectClass=group)",
            "objectGUID",
            "sAMAccountName",
        )
    } else {
        (
            "(objectClass=inetOrgPerson)",
            DEFAULT_GROUP_FILTER,
            "entryUUID",
            "uid",
        )
    };
    let user_filter = filter(s, "user_filter", user_filter)?;
    let group_filter = filter(s, "group_filter", group_filter)?;
    let disabled_attr = non_empty(s, "disabled_attr")?;
    let disabled_value = non_empty(s, "disabled_value")?;
    if disabled_value.is_some() && disabled_attr.is_none() {
        return Err(s.error("disabled_value", "disabled_value needs disabled_attr"));
    }
    if active_directory && disabled_attr.is_some() {
        return Err(s.error(
            "disabled_attr",
            "Active Directory marks disabled accounts in userAccountControl; remove disabled_attr",
        ));
    }
    let in_chain = flag(s, "in_chain")?;
    if in_chain && !active_directory {
        return Err(s.error(
            "in_chain",
            "in_chain (LDAP_MATCHING_RULE_IN_CHAIN) exists only on Active Directory; set active_directory = true or remove it",
        ));
    }
    let member_attrs = match s.strings("member_attrs")? {
        Some(list) if list.value.iter().any(|a| a.trim().is_empty()) => {
            return Err(s.error_from(
                "member_attrs",
                &list.origin,
                "attribute names must not be empty",
            ));
        }
        Some(list) => list.value,
        None if active_directory => vec!["member".to_owned()],
        None => vec!["member".to_owned(), "uniqueMember".to_owned()],
    };
    let member_uid_attr = match s.string("member_uid_attr")? {
        Some(v) if v.value.trim().is_empty() => None,
        Some(v) => Some(v.value),
        None if active_directory => None,
        None => Some("memberUid".to_owned()),
    };
    let page_size = match s.unsigned("page_size")? {
        None => 500,
        Some(v) if (1..=100_000).contains(&v.value) => v.value as u32,
        Some(v) => {
            return Err(s.error_from("page_size", &v.origin, "must be between 1 and 100000"));
        }
    };
    Ok(LdapConfig {
        url: url.value,
        starttls,
        ca_file,
        tls_insecure,
        bind_dn,
        bind_password,
        user_base_dn: non_empty(s, "user_base_dn")?.unwrap_or_else(|| base_dn.clone()),
        group_base_dn: non_empty(s, "group_base_dn")?.unwrap_or_else(|| base_dn.clone()),
        base_dn,
        user_filter,
        group_filter,
        user_id_attr: non_empty(s, "user_id_attr")?.unwrap_or_else(|| id_attr.to_owned()),
        uid_attr: non_empty(s, "uid_attr")?.unwrap_or_else(|| uid_attr.to_owned()),
        disabled_attr,
        disabled_value,
        member_attrs,
        member_uid_attr,
        group_name_attr: non_empty(s, "group_name_attr")?.unwrap_or_else(|| "cn".to_owned()),
        page_size,
        active_directory,
        in_chain,
        connect_timeout: timeout(s, "connect_timeout", 10)?,
        timeout: timeout(s, "timeout", 60)?,
    })
}

fn flag(s: &mut Section<'_>, key: &str) -> Result<bool, ConfigError> {
    Ok(s.boolean(key)?.is_some_and(|v| v.value))
}

fn non_empty(s: &mut Section<'_>, key: &str) -> Result<Option<String>, ConfigError> {
    match s.string(key)? {
        Some(v) if v.value.trim().is_empty() => {
            Err(s.error_from(key, &v.origin, "must not be empty"))
        }
        Some(v) => Ok(Some(v.value.trim().to_owned())),
        None => Ok(None),
    }
}

/// A search filter: parenthesised, with balanced parentheses (the server checks the rest).
fn filter(s: &mut Section<'_>, key: &str, default: &str) -> Result<String, ConfigError> {
    let Some(v) = s.string(key)? else {
        return Ok(default.to_owned());
    };
    let text = v.value.trim();
    // Parentheses inside values are escaped (\28, \29), so every bare one is structure.
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    if !text.starts_with('(') || !text.ends_with(')') || depth != 0 {
        return Err(s.error_from(
            key,
            &v.origin,
            format!("{text:?} is not an LDAP filter: it must be parenthesised, with balanced parentheses, such as \"(objectClass=person)\""),
        ));
    }
    Ok(text.to_owned())
}

fn timeout(s: &mut Section<'_>, key: &str, default_secs: u64) -> Result<Duration, ConfigError> {
    match s.duration(key)? {
        None => Ok(Duration::from_secs(default_secs)),
        Some(v) if v.value.is_zero() => Err(s.error_from(key, &v.origin, "must be more than zero")),
        Some(v) => Ok(v.value),
    }
}
