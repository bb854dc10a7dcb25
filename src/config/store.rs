//! `[store]`: the group store (SPEC §2, wire details in reference/targets.md): `embedded` (the
//! default), or a remote store — ODC's identity API, a SCIM 2.0 server, Jira Cloud — with the
//! stages it serves, its credentials and its request budget.
//!
//! Credentials are read here once, into [`SecretString`]s; a stage the store names that
//! `[daemon] stages` does not list is a configuration error naming the key.

use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;

use super::http::{self, HttpConfig};
use super::reader::{ConfigError, Section};
use super::secret;
use crate::model::Stage;

/// `[store]`: where groups live.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// Groups live in the state file itself.
    Embedded,
    /// OutSystems Developer Cloud's identity API v1.
    Odc(OdcConfig),
    /// A SCIM 2.0 server (AWS IAM Identity Center, Atlassian Guard, …).
    Scim(ScimConfig),
    /// Jira Cloud's REST API v3.
    Jira(JiraConfig),
}

/// What every remote store takes.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// The stages it serves; mappings to other stages stay in the embedded store.
    pub stages: Vec<Stage>,
    /// Create a group the store lacks instead of marking its mappings `remote_group_not_found`.
    pub create_groups: bool,
    /// Requests this client sends at most in any `rate_window` (ODC allows an organisation 100
    /// a minute).
    pub rate_limit: u32,
    /// The window of `rate_limit` (a minute by default).
    pub rate_window: Duration,
    /// How often the store's real membership is re-read to find drift (daily by default).
    pub drift_interval: Duration,
    /// Connection, timeouts and retries.
    pub http: HttpConfig,
}

/// `kind = "odc"`.
#[derive(Debug, Clone)]
pub struct OdcConfig {
    /// The portal's URL (`https://<org>.outsystems.dev`).
    pub portal_url: String,
    /// The API client's id.
    pub client_id: String,
    /// The API client's secret.
    pub client_secret: SecretString,
    /// Stage → ODC environment key.
    pub environments: Vec<(Stage, String)>,
    /// Pre-create users the organisation lacks, linked to this identity provider.
    pub identity_provider_key: Option<String>,
    /// Users per `PATCH /groups/{key}/users` call.
    pub batch_size: usize,
    /// The common keys.
    pub remote: RemoteConfig,
}

/// `kind = "scim"`.
#[derive(Debug, Clone)]
pub struct ScimConfig {
    /// The SCIM base URL (`…/scim/v2`).
    pub url: String,
    /// The bearer token.
    pub token: SecretString,
    /// Membership changes in one PATCH (AWS allows 100).
    pub max_ops_per_patch: usize,
    /// The common keys.
    pub remote: RemoteConfig,
}

/// `kind = "jira"`.
#[derive(Debug, Clone)]
pub struct JiraConfig {
    /// The site (`https://<site>.atlassian.net`).
    pub site_url: String,
    /// The account e-mail the API token belongs to.
    pub email: String,
    /// The API token.
    pub api_token: SecretString,
    /// The common keys.
    pub remote: RemoteConfig,
}

impl StoreConfig {
    /// The kind, as `[store] kind` names it and the reconcile document's `unresolved_users` shows.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreConfig::Embedded => "embedded",
            StoreConfig::Odc(_) => "odc",
            StoreConfig::Scim(_) => "scim",
            StoreConfig::Jira(_) => "jira",
        }
    }

    /// The keys every remote store takes; `None` for the embedded store.
    pub fn remote(&self) -> Option<&RemoteConfig> {
        match self {
            StoreConfig::Embedded => None,
            StoreConfig::Odc(c) => Some(&c.remote),
            StoreConfig::Scim(c) => Some(&c.remote),
            StoreConfig::Jira(c) => Some(&c.remote),
        }
    }

    /// The stages a remote store serves (none for the embedded store, which holds every stage).
    pub fn remote_stages(&self) -> &[Stage] {
        self.remote().map_or(&[], |r| r.stages.as_slice())
    }

    /// Whether a remote store serves `stage`.
    pub fn serves_remotely(&self, stage: &Stage) -> bool {
        self.remote_stages().contains(stage)
    }

    /// Names the store's tenant: its kind and base URL. Cached ids belong to it, so pointing the
    /// configuration at another tenant starts from an empty cache.
    pub fn tenant(&self) -> String {
        match self {
            StoreConfig::Embedded => "embedded".to_owned(),
            StoreConfig::Odc(c) => format!("odc {}", c.portal_url),
            StoreConfig::Scim(c) => format!("scim {}", c.url),
            StoreConfig::Jira(c) => format!("jira {}", c.site_url),
        }
    }
}

/// Reads `[store]`; `stages` are `[daemon] stages`, which every store stage must be one of.
pub(super) fn read_store(
    s: &mut Section<'_>,
    dir: &Path,
    env: &[(String, String)],
    stages: &[Stage],
) -> Result<StoreConfig, ConfigError> {
    let kind = s.string("kind")?;
    let Some(kind) = kind else {
        return Ok(StoreConfig::Embedded);
    };
    match kind.value.as_str() {
        "embedded" => Ok(StoreConfig::Embedded),
        "odc" => {
            let portal_url = required_url(s, "portal_url", "https://example.outsystems.dev")?;
            let client_id = required(s, "client_id", "the API client's id")?;
            let client_secret = secret::read(s, "client_secret", dir, env)?
                .ok_or_else(|| s.entry_error("an odc store needs client_secret_file"))?;
            let environments = environments(s, stages)?;
            let identity_provider_key = optional(s, "identity_provider_key")?;
            let batch_size = bounded(s, "batch_size", 100, 1000)?;
            let remote = remote(
                s,
                dir,
                environments
                    .iter()
                    .map(|(stage, _)| stage.clone())
                    .collect(),
                100,
            )?;
            Ok(StoreConfig::Odc(OdcConfig {
                portal_url,
                client_id,
                client_secret,
                environments,
                identity_provider_key,
                batch_size,
                remote,
            }))
        }
        "scim" => {
            let url = required_url(s, "url", "https://scim.example.com/scim/v2")?;
            let token = secret::read(s, "token", dir, env)?
                .ok_or_else(|| s.entry_error("a scim store needs token_file"))?;
            let max_ops_per_patch = bounded(s, "max_ops_per_patch", 100, 10_000)?;
            let stages = stage_list(s, stages)?;
            let remote = remote(s, dir, stages, 1200)?;
            Ok(StoreConfig::Scim(ScimConfig {
                url,
                token,
                max_ops_per_patch,
                remote,
            }))
        }
        "jira" => {
            let site_url = required_url(s, "site_url", "https://example.atlassian.net")?;
            let email = required(s, "email", "admin@example.com")?;
            let api_token = secret::read(s, "api_token", dir, env)?
                .ok_or_else(|| s.entry_error("a jira store needs api_token_file"))?;
            let stages = stage_list(s, stages)?;
            let remote = remote(s, dir, stages, 600)?;
            Ok(StoreConfig::Jira(JiraConfig {
                site_url,
                email,
                api_token,
                remote,
            }))
        }
        other => Err(s.error_from(
            "kind",
            &kind.origin,
            format!("unknown store kind {other:?} (expected embedded, odc, scim or jira)"),
        )),
    }
}

/// The keys every remote store takes.
fn remote(
    s: &mut Section<'_>,
    dir: &Path,
    stages: Vec<Stage>,
    default_rate: u64,
) -> Result<RemoteConfig, ConfigError> {
    let create_groups = s.boolean("create_groups")?.is_some_and(|v| v.value);
    let rate_limit = bounded(s, "rate_limit", default_rate as usize, 1_000_000)?;
    let rate_window = match s.duration("rate_window")? {
        Some(d) if !d.value.is_zero() => d.value,
        Some(d) => return Err(s.error_from("rate_window", &d.origin, "must be longer than 0")),
        None => Duration::from_secs(60),
    };
    let drift_interval = match s.duration("drift_interval")? {
        Some(d) => d.value,
        None => Duration::from_secs(24 * 3600),
    };
    Ok(RemoteConfig {
        stages,
        create_groups,
        rate_limit: rate_limit as u32,
        rate_window,
        drift_interval,
        http: http::read(s, dir)?,
    })
}

/// `stages = { production = "<environment key>", … }` (ODC).
fn environments(s: &mut Section<'_>, known: &[Stage]) -> Result<Vec<(Stage, String)>, ConfigError> {
    let Some(table) = s.string_table("stages")? else {
        return Err(
            s.entry_error("an odc store needs stages = { production = \"<environment key>\" }")
        );
    };
    let mut out = Vec::new();
    for (name, key) in table.value {
        let stage = served(s, known, &name, &table.origin)?;
        if key.trim().is_empty() {
            return Err(s.error_from(
                "stages",
                &table.origin,
                format!("stage {name:?} needs an environment key"),
            ));
        }
        if out.iter().any(|(_, k): &(Stage, String)| k == key.trim()) {
            return Err(s.error_from(
                "stages",
                &table.origin,
                format!(
                    "two stages name environment {key:?}: each stage is its own ODC environment"
                ),
            ));
        }
        out.push((stage, key.trim().to_owned()));
    }
    if out.is_empty() {
        return Err(s.error_from("stages", &table.origin, "at least one stage is needed"));
    }
    Ok(out)
}

/// `stages = ["production"]` (SCIM, Jira).
fn stage_list(s: &mut Section<'_>, known: &[Stage]) -> Result<Vec<Stage>, ConfigError> {
    let Some(list) = s.strings("stages")? else {
        return Err(s.entry_error("a remote store needs stages = [\"production\"]"));
    };
    let mut out: Vec<Stage> = Vec::new();
    for name in &list.value {
        let stage = served(s, known, name, &list.origin)?;
        if !out.contains(&stage) {
            out.push(stage);
        }
    }
    if out.is_empty() {
        return Err(s.error_from("stages", &list.origin, "at least one stage is needed"));
    }
    if out.len() > 1 {
        return Err(s.error_from(
            "stages",
            &list.origin,
            "this store has no stages of its own: two stages would share its groups, and a removal in one would take access the other grants; name one stage",
        ));
    }
    Ok(out)
}

/// `name` as a stage of `[daemon] stages`.
fn served(
    s: &Section<'_>,
    known: &[Stage],
    name: &str,
    origin: &super::reader::Origin,
) -> Result<Stage, ConfigError> {
    let stage = Stage::parse(name).map_err(|e| s.error_from("stages", origin, e.0))?;
    if !known.contains(&stage) {
        return Err(s.error_from(
            "stages",
            origin,
            format!("stage {name:?} is not one of [daemon] stages"),
        ));
    }
    Ok(stage)
}

fn required_url(s: &mut Section<'_>, key: &str, example: &str) -> Result<String, ConfigError> {
    if s.string(key)?.is_none() {
        return Err(s.entry_error(format!("this store needs {key} = \"{example}\"")));
    }
    http::url(s, key, None, example)
}

fn required(s: &mut Section<'_>, key: &str, example: &str) -> Result<String, ConfigError> {
    optional(s, key)?
        .ok_or_else(|| s.entry_error(format!("this store needs {key} = \"{example}\"")))
}

fn optional(s: &mut Section<'_>, key: &str) -> Result<Option<String>, ConfigError> {
    match s.string(key)? {
        Some(v) if v.value.trim().is_empty() => {
            Err(s.error_from(key, &v.origin, "must not be empty"))
        }
        Some(v) => Ok(Some(v.value.trim().to_owned())),
        None => Ok(None),
    }
}

fn bounded(s: &mut Section<'_>, key: &str, default: usize, max: u64) -> Result<usize, ConfigError> {
    match s.unsigned(key)? {
        None => Ok(default),
        Some(v) if (1..=max).contains(&v.value) => Ok(v.value as usize),
        Some(v) => Err(s.error_from(key, &v.origin, format!("must be between 1 and {max}"))),
    }
}
