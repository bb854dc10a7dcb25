//! The configuration of SPEC §2: the TOML file plus environment overrides, validated once.
//!
//! `Config::load` reads the file, applies `IDPSYNC__…` overrides, checks every value against the
//! model rules and resolves paths and secrets; the rest of the program receives only these typed
//! values. Errors name the file, the line and the key (or the environment variable).

mod cloud;
mod http;
mod ldap;
mod reader;
mod secret;
mod sections;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use toml_edit::TableLike;

pub use cloud::{AzureAdConfig, AzureCredential, OktaConfig, OktaCredential};
pub use http::{HttpConfig, check_url};
pub use ldap::LdapConfig;
pub use reader::{ConfigError, Origin};
use reader::{Doc, Section, entries};
use sections::{
    check_idps, check_role_in, read_apps, read_daemon, read_groups, read_idp, read_mappings,
    read_safety, section,
};
pub use store::{JiraConfig, OdcConfig, RemoteConfig, ScimConfig, StoreConfig};

use crate::model::{GroupName, IdpName, Role, Stage};

/// The default configuration path when neither `--config` nor `IDPSYNC_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/idpsync/idpsync.toml";

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The configuration file, as given.
    pub path: PathBuf,
    /// A hash of the file's text and the `IDPSYNC__` overrides: saved plans and the unchanged-read
    /// shortcut compare it to know the configuration is the same.
    pub fingerprint: String,
    /// `[daemon]`: state, schedule, listeners, stages, tokens.
    pub daemon: DaemonConfig,
    /// `[safety]`: the guard limits.
    pub safety: SafetyConfig,
    /// `[store]`: where groups live.
    pub store: StoreConfig,
    /// `[audit]`: retention of audit records.
    pub audit: AuditConfig,
    /// `[[idp]]` entries, in file order.
    pub idps: Vec<IdpConfig>,
    /// The `[[app]]` role catalogue (app → roles); `None` when there is no catalogue.
    pub apps: Option<BTreeMap<String, BTreeSet<String>>>,
    /// `[[group]]` declared groups.
    pub groups: Vec<DeclaredGroup>,
    /// `[[mapping]]` entries.
    pub mappings: Vec<MappingConfig>,
    /// Where each declared group is in `groups`, by (stage, normalised name): a store of 10,000
    /// declared groups is listed without a search of them all per group.
    declared_at: std::collections::HashMap<(String, String), usize>,
}

/// `[daemon]`.
#[derive(Debug)]
pub struct DaemonConfig {
    /// The SQLite state file.
    pub state: PathBuf,
    /// The reconcile schedule (cron with seconds).
    pub schedule: cron::Schedule,
    /// The service's public listener (login webhook, read API, health, metrics).
    pub listen: SocketAddr,
    /// The admin API listener.
    pub admin_listen: SocketAddr,
    /// The stages groups may belong to.
    pub stages: Vec<Stage>,
    /// Bearer token of the admin API; `None` turns it off.
    pub admin_token: Option<SecretString>,
    /// Bearer token of the read API; `None` turns it off.
    pub app_token: Option<SecretString>,
    /// Bearer token callers of `/v1/login` present; `None` leaves it open.
    pub webhook_token: Option<SecretString>,
    /// How long a CLI run waits for another run of the same IdP to finish.
    pub run_wait: Duration,
    /// The service delays each scheduled run by a random time up to this; zero (the default) is off.
    pub jitter: Duration,
}

/// `[safety]`: the removal guard's limits (SPEC §1 invariant 6).
#[derive(Debug, Clone, PartialEq)]
pub struct SafetyConfig {
    /// An IdP's plan with more removals than this is refused.
    pub max_removals: u64,
    /// An IdP's plan removing more than this share of its memberships is refused…
    pub max_removal_ratio: f64,
    /// …once it removes more than this many.
    pub min_removals_for_ratio: u64,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig {
            max_removals: 500,
            max_removal_ratio: 0.2,
            min_removals_for_ratio: 10,
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// Audit records older than this many days are deleted after each applied run; 0 keeps them forever.
    pub retention_days: u32,
}

/// One `[[idp]]`.
#[derive(Debug)]
pub struct IdpConfig {
    /// Its name, as used in mappings and provenances.
    pub name: IdpName,
    /// Where and how it is read.
    pub kind: IdpKind,
    /// Whether nested groups are expanded.
    pub nested: bool,
    /// The deepest nesting followed; deeper nesting fails the read rather than truncate it.
    pub nested_max_depth: usize,
    /// Which user attribute gives the user key.
    pub user_key: String,
    /// Login-time claims, when the IdP also signs users in.
    pub oidc: Option<OidcConfig>,
    /// The line of the `[[idp]]` header.
    pub line: Option<usize>,
}

/// The kinds of IdP this build reads.
#[derive(Debug, Clone)]
pub enum IdpKind {
    /// A directory export in JSON (SPEC §2).
    File {
        /// The export, resolved against the configuration folder.
        path: PathBuf,
    },
    /// An LDAP directory: OpenLDAP or Active Directory.
    Ldap(Box<LdapConfig>),
    /// Microsoft Entra ID, read through Microsoft Graph.
    AzureAd(Box<AzureAdConfig>),
    /// An Okta org, read through its management API.
    Okta(Box<OktaConfig>),
    /// Login-time only: never read in batch; its memberships change only at login (its
    /// `[idp.oidc]` is required).
    Oidc {
        /// `azure_ad` credentials, used only to resolve an Entra groups overage.
        overage: Option<Box<AzureAdConfig>>,
    },
}

/// `[idp.oidc]`: how ID tokens of this IdP are read at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The issuer URL.
    pub issuer: String,
    /// The audience (the app's client id).
    pub client_id: String,
    /// The claim holding groups.
    pub groups_claim: String,
    /// Splits a groups claim given as one string.
    pub claim_delimiter: Option<String>,
    /// The claim holding the user key.
    pub user_claim: String,
    /// Tokens issued longer ago than this are refused.
    pub max_token_age: Duration,
    /// Whether an unknown user is created at login.
    pub auto_create: bool,
}

/// One `[[group]]`: a group whose name, description and roles the configuration owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredGroup {
    /// Its name.
    pub name: GroupName,
    /// Its stage.
    pub stage: Stage,
    /// Its description.
    pub description: String,
    /// The roles it grants in its stage.
    pub roles: BTreeSet<Role>,
    /// The line of the `[[group]]` header.
    pub line: Option<usize>,
}

/// One `[[mapping]]`: an IdP group onto an end-user group of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingConfig {
    /// The IdP read.
    pub idp: IdpName,
    /// The IdP group's id or name, matched exactly.
    pub idp_group: String,
    /// The end-user group.
    pub group: GroupName,
    /// The group's stage.
    pub stage: Stage,
    /// The line of the `[[mapping]]` header.
    pub line: Option<usize>,
}

impl Config {
    /// Reads and validates `path`, with overrides and secrets taken from `env`.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            origin: Origin::File(None),
            key: String::new(),
            message: format!("cannot read the configuration file: {e}"),
        })?;
        Self::parse(path, text, env)
    }

    /// Validates configuration `text` as if read from `path`.
    pub fn parse(
        path: &Path,
        text: String,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let doc = Doc::new(path, &text, env);
        if let Some(err) = doc.conflicting_overrides() {
            return Err(err);
        }
        let document = toml_edit::Document::parse(text.as_str()).map_err(|e| {
            ConfigError {
                file: path.to_owned(),
                origin: Origin::File(None),
                key: String::new(),
                message: String::new(),
            }
            .with_toml_error(&text, &e)
        })?;
        let dir = path
            .parent()
            .map(Path::to_owned)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let root: &dyn TableLike = document.as_table();
        let mut top = Section::new(&doc, Some(root), String::new(), None, None);

        let mut daemon_section = section(&doc, &mut top, "daemon")?;
        let daemon = read_daemon(&mut daemon_section, &dir, env)?;
        daemon_section.finish()?;

        let mut safety_section = section(&doc, &mut top, "safety")?;
        let safety = read_safety(&mut safety_section)?;
        safety_section.finish()?;

        let mut store_section = section(&doc, &mut top, "store")?;
        let store = store::read_store(&mut store_section, &dir, env, &daemon.stages)?;
        store_section.finish()?;

        let mut audit_section = section(&doc, &mut top, "audit")?;
        let audit = AuditConfig {
            retention_days: match audit_section.unsigned("retention_days")? {
                Some(days) => u32::try_from(days.value).map_err(|_| {
                    audit_section.error_from("retention_days", &days.origin, "too large")
                })?,
                None => 365,
            },
        };
        audit_section.finish()?;

        // Arrays of tables: claimed here, read below.
        for key in ["idp", "app", "group", "mapping"] {
            top.claim(key);
        }
        let mut idps = Vec::new();
        for (index, (table, offset)) in entries(&doc, root, "idp")?.into_iter().enumerate() {
            idps.push(read_idp(&doc, table, offset, index, &dir, env)?);
        }
        check_idps(&doc, &idps)?;
        let apps = read_apps(&doc, root)?;
        let groups = read_groups(&doc, root, &daemon.stages, apps.as_ref())?;
        let mappings = read_mappings(&doc, root, &daemon.stages, &idps)?;
        top.finish()?;
        if let Some(err) = doc.unclaimed_override() {
            return Err(err);
        }
        let declared_at = groups
            .iter()
            .enumerate()
            .map(|(i, g)| ((g.stage.to_string(), g.name.norm().to_owned()), i))
            .collect();
        Ok(Config {
            path: path.to_owned(),
            fingerprint: fingerprint(&text, env),
            daemon,
            safety,
            store,
            audit,
            idps,
            apps,
            groups,
            mappings,
            declared_at,
        })
    }

    /// The IdP named `name`.
    pub fn idp(&self, name: &str) -> Option<&IdpConfig> {
        self.idps.iter().find(|i| i.name.as_str() == name)
    }

    /// The `[[group]]` entry declaring the group of normalised name `norm` in `stage`, if any.
    pub fn declared_group(&self, stage: &str, norm: &str) -> Option<&DeclaredGroup> {
        self.declared_at
            .get(&(stage.to_owned(), norm.to_owned()))
            .map(|&i| &self.groups[i])
    }

    /// Checks a role against the `[[app]]` catalogue (any role passes when there is none).
    pub fn check_role(&self, role: &Role) -> Result<(), String> {
        check_role_in(self.apps.as_ref(), role)
    }
}

/// The hash of the configuration text and the `IDPSYNC__` overrides in `env`.
pub fn fingerprint(config_text: &str, env: &[(String, String)]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(config_text.as_bytes());
    let mut overrides: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("IDPSYNC__"))
        .collect();
    overrides.sort();
    for (k, v) in overrides {
        hasher.update(b"\0");
        hasher.update(k.as_bytes());
        hasher.update(b"=");
        hasher.update(v.as_bytes());
    }
    format!("{:016x}", hasher.digest())
}

impl ConfigError {
    fn with_toml_error(mut self, text: &str, error: &toml_edit::TomlError) -> Self {
        let line = error.span().map(|s| {
            text.as_bytes()[..s.start.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        });
        self.origin = Origin::File(line);
        self.message = format!("TOML syntax error: {}", error.message().trim());
        self
    }
}

#[cfg(test)]
mod cloud_tests;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;
