//! Group stores. The embedded store is the state file itself (`crate::state`); the remote stores
//! — ODC's identity API ([`odc`]), SCIM 2.0 ([`scim`]) and Jira Cloud ([`jira`]) — are sent what
//! the embedded store, their mirror, was changed by, through the journal ([`drain`]).
//!
//! Each remote store implements [`RemoteStore`]: find and create groups, list or check members
//! where its API can, find users by key in bulk where it can, and push a batch of membership
//! changes. [`Store`] is the closed set of them, chosen by `[store] kind`. Nothing here decides
//! what changes: the plan does, and the checked apply journals it (see `state/remote.rs`).

pub mod drain;
mod drift;
pub mod jira;
pub mod odc;
pub mod pacing;
mod resolve;
pub mod scim;

use std::collections::BTreeMap;

use crate::client::{RequestError, Response};
use crate::config::StoreConfig;
use crate::model::Stage;

pub use drain::{DrainOptions, DrainReport, drain};

/// A group as a remote store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteGroup {
    /// The store's id for it (ODC key, SCIM id, Jira groupId).
    pub id: String,
    /// Its name there.
    pub name: String,
}

/// Add or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Make the user a member.
    Add,
    /// Take the user out.
    Remove,
}

/// One membership change for one remote group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Add or remove.
    pub op: Op,
    /// The store's id of the user.
    pub user: String,
}

/// What the store made of one change that it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Done as asked.
    Done,
    /// The user was a member already (an add): done, but the membership was not ours.
    AlreadyMember,
    /// The user was not a member (a remove): done.
    NotMember,
}

/// Why a store call failed, by what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Unreachable, or busy or throttled through every retry: try again later, keep the journal.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The credentials were refused: fix the configuration.
    #[error("the store refused the credentials: {0}")]
    Unauthorized(String),
    /// The store rejected these changes for good (a 4xx other than 401 and 429).
    #[error("the store rejected the request: {0}")]
    Rejected(String),
    /// The remote group is gone (404): its cached id is stale.
    #[error("the remote group is gone: {0}")]
    GroupGone(String),
    /// The store answered something unusable.
    #[error("the store answered something unusable: {0}")]
    Invalid(String),
    /// The state file failed.
    #[error("{0}")]
    State(String),
}

impl From<RequestError> for StoreError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Unavailable { .. } => StoreError::Unavailable(e.to_string()),
            RequestError::Invalid { .. } => StoreError::Invalid(e.to_string()),
        }
    }
}

/// `base` + `path` with `query`, or an error naming the URL that does not parse.
pub(crate) fn endpoint(
    base: &str,
    path: &str,
    query: &[(&str, &str)],
) -> Result<reqwest::Url, StoreError> {
    let mut url = reqwest::Url::parse(&format!("{base}{path}"))
        .map_err(|e| StoreError::Invalid(format!("{base}{path}: {e}")))?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

/// The error a non-success response stands for; `detail` is the store's own error text.
pub fn error_of(response: &Response, detail: String) -> StoreError {
    let text = format!("{} {}: {detail}", response.what, response.status);
    match response.status.as_u16() {
        401 => StoreError::Unauthorized(text),
        429 | 500..=599 => StoreError::Unavailable(text),
        _ => StoreError::Rejected(text),
    }
}

/// What a remote store does for the journal.
#[allow(async_fn_in_trait)]
pub trait RemoteStore: Sync {
    /// The store's kind (`odc`, `scim`, `jira`).
    fn kind(&self) -> &'static str;
    /// The tenant its caches and journal entries belong to (kind and base URL).
    fn tenant(&self) -> &str;
    /// Membership changes sent in one request at most.
    fn batch_size(&self) -> usize;
    /// Whether the API lists a group's members (AWS's SCIM does not: membership is checked one
    /// user at a time instead).
    fn lists_members(&self) -> bool;
    /// Authenticates and says what was reached (`check --connect`).
    async fn check(&self) -> Result<String, StoreError>;
    /// The group named `name` (case-insensitively) in `stage`, if the store has it.
    async fn find_group(
        &self,
        stage: &Stage,
        name: &str,
    ) -> Result<Option<RemoteGroup>, StoreError>;
    /// The group with id `id`, if the store still has it (to follow a rename).
    async fn group(&self, id: &str) -> Result<Option<RemoteGroup>, StoreError>;
    /// Creates group `name` in `stage`; one that exists already is found instead.
    async fn create_group(&self, stage: &Stage, name: &str) -> Result<RemoteGroup, StoreError>;
    /// The store's ids of the group's members (only when [`RemoteStore::lists_members`]); for ODC,
    /// only the members an administrator assigned, never those ODC maps itself.
    async fn members(&self, group: &str) -> Result<Vec<String>, StoreError>;
    /// Whether `user` is a member of `group`, where members cannot be listed.
    async fn is_member(&self, group: &str, user: &str) -> Result<bool, StoreError>;
    /// The store's id of each user key it knows (absent: not found).
    async fn find_users(&self, keys: &[String]) -> Result<BTreeMap<String, String>, StoreError>;
    /// Creates a user the store lacks, where the configuration asks for it (ODC's
    /// `identity_provider_key`); `None` when this store does not create users.
    async fn create_user(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Sends these changes to `group` (at most [`RemoteStore::batch_size`]), answering each in
    /// order. A batch the store rejects as a whole is [`StoreError::Rejected`].
    async fn push(&self, group: &str, changes: &[Change]) -> Result<Vec<Answer>, StoreError>;
    /// The HTTPS client, with its counters (requests sent, throttled answers) and retry budget.
    fn client(&self) -> &crate::client::HttpClient;
    /// The request budget.
    fn budget(&self) -> &pacing::Budget;
}

/// The configured remote store.
pub enum Store {
    /// ODC's identity API.
    Odc(Box<odc::OdcStore>),
    /// A SCIM 2.0 server.
    Scim(scim::ScimStore),
    /// Jira Cloud.
    Jira(jira::JiraStore),
}

impl Store {
    /// The remote store `config` names, or `None` for the embedded store.
    pub fn build(config: &StoreConfig) -> Result<Option<Store>, StoreError> {
        Ok(match config {
            StoreConfig::Embedded => None,
            StoreConfig::Odc(c) => Some(Store::Odc(Box::new(odc::OdcStore::new(c)?))),
            StoreConfig::Scim(c) => Some(Store::Scim(scim::ScimStore::new(c)?)),
            StoreConfig::Jira(c) => Some(Store::Jira(jira::JiraStore::new(c)?)),
        })
    }

    /// Starts a new drain of a long-lived client: its retry budget afresh.
    pub fn new_drain(&self) {
        match self {
            Store::Odc(s) => s.client().reset_retry_budget(),
            Store::Scim(s) => s.client().reset_retry_budget(),
            Store::Jira(s) => s.client().reset_retry_budget(),
        }
    }

    /// Sends the journal's open entries to the store (see [`drain()`]).
    pub async fn drain(&self, options: &DrainOptions<'_>) -> Result<DrainReport, StoreError> {
        match self {
            Store::Odc(s) => drain(s.as_ref(), options).await,
            Store::Scim(s) => drain(s, options).await,
            Store::Jira(s) => drain(s, options).await,
        }
    }

    /// Authenticates and resolves every remote group the mappings need (`check --connect`).
    pub async fn check(&self, groups: &[(Stage, String)]) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Odc(s) => check(s.as_ref(), groups).await,
            Store::Scim(s) => check(s, groups).await,
            Store::Jira(s) => check(s, groups).await,
        }
    }

    /// Of these (stage, name) groups, the ones the store lacks; each found one is cached.
    pub async fn missing_groups(
        &self,
        options: &DrainOptions<'_>,
        groups: &[(Stage, String)],
    ) -> Result<Vec<(Stage, String)>, StoreError> {
        match self {
            Store::Odc(s) => resolve::missing_groups(s.as_ref(), options, groups).await,
            Store::Scim(s) => resolve::missing_groups(s, options, groups).await,
            Store::Jira(s) => resolve::missing_groups(s, options, groups).await,
        }
    }
}

/// One line per group: found, or missing.
async fn check<S: RemoteStore>(
    store: &S,
    groups: &[(Stage, String)],
) -> Result<Vec<String>, StoreError> {
    let mut lines = vec![store.check().await?];
    for (stage, name) in groups {
        lines.push(match store.find_group(stage, name).await? {
            Some(found) => format!("group {stage}/{name}: found (id {})", found.id),
            None => format!("group {stage}/{name}: NOT FOUND in the store"),
        });
    }
    Ok(lines)
}
