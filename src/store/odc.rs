//! `kind = "odc"`: OutSystems Developer Cloud's User and Access Management API v1
//! (reference/targets.md §1.5).
//!
//! Tokens come by client credentials from the token endpoint that
//! `{portal}/identity/.well-known/openid-configuration` names, and are kept until shortly before
//! they expire (they last hours). Stages are ODC environments (`stages = { production = "<key>" }`);
//! groups are found by name within their environment. Members change through
//! `PATCH /groups/{key}/users`, which only touches **Assigned** membership: the members ODC maps
//! itself from IdP claims (**Mapped**) are ODC's own, never read as ours and never sent. Users are
//! found by e-mail — the whole organisation page by page into the cache when many are unknown —
//! and, with `identity_provider_key`, created when missing. The organisation's 100 requests a
//! minute are kept client-side (ODC's 429 names no wait); errors are RFC 7807 problem documents
//! whose `errorCode` is kept.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::pacing::Budget;
use super::{Answer, Change, Op, RemoteGroup, RemoteStore, StoreError, error_of};
use crate::client::{HttpClient, Response, RetryAfter};
use crate::config::OdcConfig;
use crate::model::Stage;
use crate::source::SourceError;
use crate::source::token::{ClientAuth, TokenCache, TokenRequest};

/// Unknown users at which listing the organisation beats finding each (pages of 100).
const LIST_USERS_FROM: usize = 20;

/// ODC's identity API for one organisation.
pub struct OdcStore {
    portal: String,
    api: String,
    tenant: String,
    client_id: String,
    secret: SecretString,
    environments: Vec<(Stage, String)>,
    identity_provider: Option<String>,
    batch: usize,
    client: HttpClient,
    budget: Budget,
    tokens: OnceCell<TokenCache>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    results: Vec<Value>,
    page: Option<PageInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    next_page_offset: Option<u64>,
}

#[derive(Deserialize)]
struct Discovery {
    token_endpoint: String,
}

impl OdcStore {
    /// A client for the organisation `config` names.
    pub fn new(config: &OdcConfig) -> Result<OdcStore, StoreError> {
        Ok(OdcStore {
            portal: config.portal_url.clone(),
            api: format!("{}/api/identity/v1", config.portal_url),
            tenant: format!("odc {}", config.portal_url),
            client_id: config.client_id.clone(),
            secret: config.client_secret.clone(),
            environments: config.environments.clone(),
            identity_provider: config.identity_provider_key.clone(),
            batch: config.batch_size,
            client: HttpClient::new(&config.remote.http).map_err(StoreError::Invalid)?,
            budget: Budget::new(config.remote.rate_limit, config.remote.rate_window),
            tokens: OnceCell::new(),
        })
    }

    /// The token cache, once discovery has named the token endpoint.
    async fn tokens(&self) -> Result<&TokenCache, StoreError> {
        self.tokens
            .get_or_try_init(|| async {
                let url = format!("{}/identity/.well-known/openid-configuration", self.portal);
                let parsed =
                    Url::parse(&url).map_err(|e| StoreError::Invalid(format!("{url}: {e}")))?;
                let what = format!("GET {url}");
                let response = self
                    .client
                    .send(&RetryAfter, &what, || {
                        self.client.request(Method::GET, parsed.clone())
                    })
                    .await?;
                if !response.status.is_success() {
                    return Err(StoreError::Unavailable(format!(
                        "{what}: {}",
                        response.error_summary()
                    )));
                }
                let discovery: Discovery = response.json()?;
                Ok(TokenCache::new(TokenRequest {
                    url: discovery.token_endpoint,
                    client_id: self.client_id.clone(),
                    scope: String::new(),
                    auth: ClientAuth::Secret(self.secret.clone()),
                }))
            })
            .await
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, StoreError> {
        super::endpoint(&self.api, path, query)
    }

    /// One API call with a fresh token; a 401 drops the token and tries once more.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Response, StoreError> {
        let tokens = self.tokens().await?;
        let what = format!("{method} {}", url.path());
        for attempt in 0..2 {
            let token = tokens.get(&self.client).await.map_err(token_error)?;
            let response = self
                .client
                .send(&self.budget, &what, || {
                    let request = self
                        .client
                        .request(method.clone(), url.clone())
                        .bearer_auth(token.expose_secret());
                    match body {
                        Some(body) => request.json(body),
                        None => request,
                    }
                })
                .await?;
            if response.status == StatusCode::UNAUTHORIZED && attempt == 0 {
                tokens.refused(&token).await;
                continue;
            }
            return Ok(response);
        }
        unreachable!("the loop returns on its second pass")
    }

    async fn get_ok(&self, url: Url) -> Result<Value, StoreError> {
        let response = self.call(Method::GET, url, None).await?;
        if !response.status.is_success() {
            return Err(failure(&response));
        }
        Ok(response.json()?)
    }

    /// Every item of a paged list.
    async fn all(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<Value>, StoreError> {
        let mut items = Vec::new();
        let mut offset = 0u64;
        loop {
            let offset_text = offset.to_string();
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", "100"));
            q.push(("offset", &offset_text));
            let page: Page = serde_json::from_value(self.get_ok(self.url(path, &q)?).await?)
                .map_err(|e| StoreError::Invalid(format!("GET {path}: not a page: {e}")))?;
            items.extend(page.results);
            match page.page.and_then(|p| p.next_page_offset) {
                Some(next) if next > offset => offset = next,
                _ => return Ok(items),
            }
        }
    }

    fn environment(&self, stage: &Stage) -> Result<&str, StoreError> {
        self.environments
            .iter()
            .find(|(s, _)| s == stage)
            .map(|(_, key)| key.as_str())
            .ok_or_else(|| StoreError::Invalid(format!("stage {stage} has no ODC environment")))
    }
}

fn token_error(e: SourceError) -> StoreError {
    match e {
        SourceError::Unauthorized(m) => StoreError::Unauthorized(m),
        SourceError::Unavailable(m) => StoreError::Unavailable(m),
        SourceError::Invalid(m) => StoreError::Invalid(m),
    }
}

/// The error of a failed response, with the problem document's `errorCode` and detail.
fn failure(response: &Response) -> StoreError {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let message = text("detail").or_else(|| text("title")).unwrap_or_default();
    let detail = match text("errorCode") {
        Some(code) => format!("errorCode {code}: {message}"),
        None if message.is_empty() => "no problem document".to_owned(),
        None => message,
    };
    error_of(response, detail)
}

fn group_of(group: &Value) -> Option<RemoteGroup> {
    Some(RemoteGroup {
        id: group.get("key")?.as_str()?.to_owned(),
        name: group.get("name")?.as_str()?.to_owned(),
    })
}

/// (e-mail lower-cased, key) of a user.
fn user_of(user: &Value) -> Option<(String, String)> {
    let email = user.get("email")?.as_str()?;
    let key = user.get("key")?.as_str()?;
    Some((email.trim().to_lowercase(), key.to_owned()))
}

impl RemoteStore for OdcStore {
    fn kind(&self) -> &'static str {
        "odc"
    }

    fn tenant(&self) -> &str {
        &self.tenant
    }

    fn batch_size(&self) -> usize {
        self.batch
    }

    fn lists_members(&self) -> bool {
        true
    }

    async fn check(&self) -> Result<String, StoreError> {
        self.get_ok(self.url("/groups", &[("limit", "1")])?).await?;
        Ok(format!(
            "odc {}: authenticated (client credentials)",
            self.portal
        ))
    }

    async fn find_group(
        &self,
        stage: &Stage,
        name: &str,
    ) -> Result<Option<RemoteGroup>, StoreError> {
        let environment = self.environment(stage)?;
        let wanted = crate::model::normalise_group_name(name);
        let groups = self
            .all(
                "/groups",
                &[
                    ("nameContains", name.trim()),
                    ("environmentKey", environment),
                ],
            )
            .await?;
        Ok(groups
            .iter()
            .filter_map(group_of)
            .find(|g| crate::model::normalise_group_name(&g.name) == wanted))
    }

    async fn group(&self, id: &str) -> Result<Option<RemoteGroup>, StoreError> {
        let url = self.url(&format!("/groups/{}", super::scim::encode(id)), &[])?;
        let response = self.call(Method::GET, url, None).await?;
        match response.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(group_of(&response.json::<Value>()?)),
            _ => Err(failure(&response)),
        }
    }

    async fn create_group(&self, stage: &Stage, name: &str) -> Result<RemoteGroup, StoreError> {
        let body = json!({
            "name": name,
            "description": "",
            "environmentKey": self.environment(stage)?,
            "applicationRoleKeys": [],
            "userKeys": [],
        });
        let response = self
            .call(Method::POST, self.url("/groups", &[])?, Some(&body))
            .await?;
        match response.status {
            StatusCode::CONFLICT => self.find_group(stage, name).await?.ok_or_else(|| {
                StoreError::Invalid(format!(
                    "group {name:?} conflicts on create but is not found"
                ))
            }),
            s if s.is_success() => {
                let created: Value = response.json()?;
                let key = created
                    .get("key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| StoreError::Invalid("the created group has no key".into()))?;
                Ok(RemoteGroup {
                    id: key.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(failure(&response)),
        }
    }

    async fn members(&self, group: &str) -> Result<Vec<String>, StoreError> {
        let path = format!("/groups/{}/users", super::scim::encode(group));
        let items = self.all(&path, &[("membershipType", "Assigned")]).await?;
        Ok(items
            .iter()
            .filter_map(|m| m.get("user")?.get("key")?.as_str().map(str::to_owned))
            .collect())
    }

    async fn is_member(&self, group: &str, user: &str) -> Result<bool, StoreError> {
        Ok(self.members(group).await?.iter().any(|m| m == user))
    }

    async fn find_users(&self, keys: &[String]) -> Result<BTreeMap<String, String>, StoreError> {
        let mut found = BTreeMap::new();
        if keys.len() >= LIST_USERS_FROM {
            let all: BTreeMap<String, String> = self
                .all("/users", &[])
                .await?
                .iter()
                .filter_map(user_of)
                .collect();
            for key in keys {
                if let Some(id) = all.get(key) {
                    found.insert(key.clone(), id.clone());
                }
            }
            return Ok(found);
        }
        for key in keys {
            let users = self.all("/users", &[("nameOrEmailContains", key)]).await?;
            if let Some((_, id)) = users
                .iter()
                .filter_map(user_of)
                .find(|(email, _)| email == key)
            {
                found.insert(key.clone(), id);
            }
        }
        Ok(found)
    }

    async fn create_user(&self, key: &str) -> Result<Option<String>, StoreError> {
        let Some(provider) = &self.identity_provider else {
            return Ok(None);
        };
        let body = json!({
            "name": key,
            "email": key,
            "isActive": true,
            "identityProviderKey": provider,
            "subject": key,
            "username": key,
        });
        let response = self
            .call(Method::POST, self.url("/users", &[])?, Some(&body))
            .await?;
        match response.status {
            StatusCode::CONFLICT => Ok(self.find_users(&[key.to_owned()]).await?.remove(key)),
            s if s.is_success() => {
                let created: Value = response.json()?;
                Ok(created
                    .get("key")
                    .and_then(Value::as_str)
                    .map(str::to_owned))
            }
            _ => Err(failure(&response)),
        }
    }

    async fn push(&self, group: &str, changes: &[Change]) -> Result<Vec<Answer>, StoreError> {
        let of = |op| -> Vec<&str> {
            changes
                .iter()
                .filter(|c| c.op == op)
                .map(|c| c.user.as_str())
                .collect()
        };
        let body = json!({"userKeysToAdd": of(Op::Add), "userKeysToRemove": of(Op::Remove)});
        let url = self.url(
            &format!("/groups/{}/users", super::scim::encode(group)),
            &[],
        )?;
        let response = self.call(Method::PATCH, url, Some(&body)).await?;
        match response.status {
            s if s.is_success() => Ok(vec![Answer::Done; changes.len()]),
            // An unknown user is a 400; a 404 is the group.
            StatusCode::NOT_FOUND => Err(StoreError::GroupGone(failure(&response).to_string())),
            _ => Err(failure(&response)),
        }
    }

    fn client(&self) -> &HttpClient {
        &self.client
    }

    fn budget(&self) -> &Budget {
        &self.budget
    }
}
