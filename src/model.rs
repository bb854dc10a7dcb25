//! The end-user group model of SPEC: names, stages, roles, user keys and provenances.
//!
//! Every value that crosses a boundary (configuration, IdP reads, CLI arguments) is checked here
//! once, so the rest of the code only ever sees valid values. This module does no I/O.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// The most bytes a normalised user key may have.
pub const MAX_USER_KEY_BYTES: usize = 320;
/// The most characters a group name may have.
pub const MAX_GROUP_NAME_CHARS: usize = 256;

/// Why a value was refused; the message names the value and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

fn refuse<T>(message: String) -> Result<T, ModelError> {
    Err(ModelError(message))
}

/// A user key: the one normalisation (trim, Unicode lower-case) used for every source of user names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserKey(String);

impl UserKey {
    /// Normalises `raw` and checks it is non-empty and at most [`MAX_USER_KEY_BYTES`] long.
    pub fn parse(raw: &str) -> Result<Self, ModelError> {
        let key = raw.trim().to_lowercase();
        if key.is_empty() {
            return refuse("a user key must not be empty".into());
        }
        if key.len() > MAX_USER_KEY_BYTES {
            return refuse(format!(
                "user key of {} bytes is longer than {MAX_USER_KEY_BYTES} bytes",
                key.len()
            ));
        }
        Ok(UserKey(key))
    }

    /// The normalised key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key read back from the state file, where only normalised keys are ever written.
    pub fn from_stored(key: String) -> Self {
        debug_assert_eq!(
            UserKey::parse(&key).map(|k| k.0).as_deref(),
            Ok(key.as_str())
        );
        UserKey(key)
    }
}

impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stage (`development`, `qa`, `production`, …): every group belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stage(String);

impl Stage {
    /// Checks that `raw` matches `[a-z0-9_-]+`.
    pub fn parse(raw: &str) -> Result<Self, ModelError> {
        if raw.is_empty() || !raw.bytes().all(is_name_byte) {
            return refuse(format!(
                "stage name {raw:?} must match [a-z0-9_-]+ (lower-case letters, digits, '_' and '-')"
            ));
        }
        Ok(Stage(raw.to_owned()))
    }

    /// The stage name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
}

/// The name of a configured IdP; it appears in provenances (`idp:<name>`) and environment overrides.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdpName(String);

impl IdpName {
    /// Checks that `raw` matches `[a-z0-9_-]+`, so it is safe in provenances and variable names.
    pub fn parse(raw: &str) -> Result<Self, ModelError> {
        if raw.is_empty() || !raw.bytes().all(is_name_byte) {
            return refuse(format!(
                "IdP name {raw:?} must match [a-z0-9_-]+ (lower-case letters, digits, '_' and '-')"
            ));
        }
        Ok(IdpName(raw.to_owned()))
    }

    /// The IdP name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdpName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A group name as given (case kept), with the normalised form groups are compared by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupName {
    name: String,
    norm: String,
}

impl GroupName {
    /// Trims `raw` and checks it is non-empty and at most [`MAX_GROUP_NAME_CHARS`] characters.
    pub fn parse(raw: &str) -> Result<Self, ModelError> {
        let name: String = raw.trim().nfc().collect();
        if name.is_empty() {
            return refuse("a group name must not be empty".into());
        }
        let chars = name.chars().count();
        if chars > MAX_GROUP_NAME_CHARS {
            return refuse(format!(
                "group name of {chars} characters is longer than {MAX_GROUP_NAME_CHARS}"
            ));
        }
        let norm = normalise_group_name(&name);
        Ok(GroupName { name, norm })
    }

    /// The name as it is shown.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The normalised name groups are unique by (within a stage).
    pub fn norm(&self) -> &str {
        &self.norm
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The comparison form of a group name: trimmed, Unicode NFC, lower-case.
pub fn normalise_group_name(raw: &str) -> String {
    raw.trim().nfc().collect::<String>().to_lowercase()
}

/// An end-user role of one app, written `App/Role`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Role {
    app: String,
    role: String,
}

impl Role {
    /// Checks for exactly one `/` with non-empty parts on both sides.
    pub fn parse(raw: &str) -> Result<Self, ModelError> {
        let mut parts = raw.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(app), Some(role), None) if !app.trim().is_empty() && !role.trim().is_empty() => {
                Ok(Role {
                    app: app.to_owned(),
                    role: role.to_owned(),
                })
            }
            _ => refuse(format!(
                "role {raw:?} must be written App/Role: exactly one '/', both parts non-empty"
            )),
        }
    }

    /// The app part.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The role part.
    pub fn role(&self) -> &str {
        &self.role
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.role)
    }
}

/// Where a membership comes from; several provenances may hold one membership.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Provenance {
    /// Assigned by an administrator.
    Direct,
    /// Derived from the mappings of one IdP.
    Idp(IdpName),
}

impl Provenance {
    /// Parses `direct` or `idp:<name>`.
    pub fn parse(raw: &str) -> Result<Self, ModelError> {
        if raw == "direct" {
            return Ok(Provenance::Direct);
        }
        match raw.strip_prefix("idp:") {
            Some(name) => Ok(Provenance::Idp(IdpName::parse(name)?)),
            None => refuse(format!(
                "provenance {raw:?} is neither direct nor idp:<name>"
            )),
        }
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provenance::Direct => f.write_str("direct"),
            Provenance::Idp(name) => write!(f, "idp:{name}"),
        }
    }
}

/// SPEC's display order: `direct` first, then `idp:*` sorted by name.
impl Ord for Provenance {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Provenance::Direct, Provenance::Direct) => std::cmp::Ordering::Equal,
            (Provenance::Direct, _) => std::cmp::Ordering::Less,
            (_, Provenance::Direct) => std::cmp::Ordering::Greater,
            (Provenance::Idp(a), Provenance::Idp(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Provenance {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What kind of failure stopped a read or a write, which says what to do about it; the run record
/// keeps it and `status` shows it (`error_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureKind {
    /// Could not be reached or read (network, timeout, a missing file, a busy lock): retry later.
    Unavailable,
    /// The credentials were refused: an operator must fix them.
    Unauthorized,
    /// What came back cannot be used (malformed, inconsistent): an operator must look.
    Invalid,
}

impl FailureKind {
    /// The word used in the run record and `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Unavailable => "unavailable",
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::Invalid => "invalid",
        }
    }

    /// The kind of a stored word.
    pub fn parse(raw: &str) -> Option<FailureKind> {
        [
            FailureKind::Unavailable,
            FailureKind::Unauthorized,
            FailureKind::Invalid,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
    }
}

/// A failure with its kind and what happened, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// What happened.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// The outcome of a run, or of one IdP in a run: one word each, the same in the run history,
/// `status`, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunOutcome {
    /// Read and applied (possibly with no change).
    Applied,
    /// Skipped: the IdP, the configuration and the store were as at its last applied read.
    Unchanged,
    /// Read, but a guard withheld its changes.
    Refused,
    /// Not read, or not applied.
    Failed,
    /// Stopped before it was applied (the service stopped, or the process died).
    Interrupted,
}

impl RunOutcome {
    /// The outcome's word.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Applied => "applied",
            RunOutcome::Unchanged => "unchanged",
            RunOutcome::Refused => "refused",
            RunOutcome::Failed => "failed",
            RunOutcome::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_are_trimmed_and_lower_cased() {
        assert_eq!(
            UserKey::parse("  Ana@Example.COM ").unwrap().as_str(),
            "ana@example.com"
        );
        assert_eq!(UserKey::parse("ÅSA@x.se").unwrap().as_str(), "åsa@x.se");
        assert!(UserKey::parse("   ").is_err());
        assert!(UserKey::parse(&"a".repeat(321)).is_err());
        assert!(UserKey::parse(&"a".repeat(320)).is_ok());
    }

    #[test]
    fn stages_and_idp_names_are_restricted() {
        assert!(Stage::parse("production").is_ok());
        assert!(Stage::parse("pre-prod_2").is_ok());
        for bad in ["", "Production", "pre prod", "qa/1"] {
            assert!(Stage::parse(bad).is_err(), "{bad}");
        }
        assert!(IdpName::parse("corp").is_ok());
        assert!(IdpName::parse("Corp").is_err());
    }

    #[test]
    fn group_names_compare_case_insensitively_after_nfc() {
        let a = GroupName::parse(" Marketing ").unwrap();
        let b = GroupName::parse("MARKETING").unwrap();
        assert_eq!(a.as_str(), "Marketing");
        assert_eq!(a.norm(), b.norm());
        // "é" precomposed vs. "e" + combining acute accent
        let c = GroupName::parse("Caf\u{e9}").unwrap();
        let d = GroupName::parse("Cafe\u{301}").unwrap();
        assert_eq!(c.norm(), d.norm());
        assert!(GroupName::parse("  ").is_err());
        assert!(GroupName::parse(&"x".repeat(257)).is_err());
        assert!(GroupName::parse(&"é".repeat(256)).is_ok());
    }

    #[test]
    fn roles_need_exactly_one_slash() {
        let role = Role::parse("Dashboard/Viewer").unwrap();
        assert_eq!((role.app(), role.role()), ("Dashboard", "Viewer"));
        for bad in ["Dashboard", "a/b/c", "/Viewer", "Dashboard/", ""] {
            assert!(Role::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn provenances_sort_direct_first() {
        let mut list = [
            Provenance::parse("idp:okta").unwrap(),
            Provenance::parse("direct").unwrap(),
            Provenance::parse("idp:azure").unwrap(),
        ];
        list.sort();
        let shown: Vec<String> = list.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown, ["direct", "idp:azure", "idp:okta"]);
    }
}
