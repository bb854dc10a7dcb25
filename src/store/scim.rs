//! `kind = "scim"`: a SCIM 2.0 server (RFC 7643/7644; reference/targets.md §2), written for the
//! strictest large one, AWS IAM Identity Center: a bearer token and a `User-Agent` on every
//! request, `eq` filters only, no Bulk, at most `max_ops_per_patch` (100) membership changes in
//! one `PATCH /Groups/{id}`, and groups whose GET lists no members — so membership is checked
//! with `filter=id eq "…" and members eq "…"`, and drift is not read (the API cannot list it).
//!
//! Adds go as one `add` operation; removes as RFC 7644 filter-path `remove` operations
//! (`members[value eq "…"]`), never the bare `members` path that empties a group. Users are
//! listed page by page into the cache when many are unknown, else found one by one with
//! `filter=userName eq "…"`. 200 and 204 both mean done; `scimType` is kept in errors. Where
//! `/ServiceProviderConfig` says groups are versioned (ETags), each PATCH carries `If-Match` with
//! the version just read, and a 412 reads it again and retries.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::pacing::Budget;
use super::{Answer, Change, Op, RemoteGroup, RemoteStore, StoreError, error_of};
use crate::client::{HttpClient, Response};
use crate::config::ScimConfig;
use crate::model::Stage;

/// Unknown users at which listing every user beats finding each (pages of 100).
const LIST_USERS_FROM: usize = 50;
/// SCIM's JSON media type.
const SCIM_JSON: &str = "application/scim+json";

/// A SCIM 2.0 server.
pub struct ScimStore {
    base: String,
    tenant: String,
    token: SecretString,
    max_ops: usize,
    client: HttpClient,
    budget: Budget,
    /// Whether the server versions groups (`etag.supported` in `/ServiceProviderConfig`), read
    /// once: PATCHes then carry `If-Match`, and a 412 reads the version again.
    etags: tokio::sync::OnceCell<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListResponse {
    #[serde(default)]
    total_results: u64,
    #[serde(default, rename = "Resources")]
    resources: Vec<Value>,
}

impl ScimStore {
    /// A client for the server `config` names.
    pub fn new(config: &ScimConfig) -> Result<ScimStore, StoreError> {
        Ok(ScimStore {
            base: config.url.clone(),
            tenant: format!("scim {}", config.url),
            token: config.token.clone(),
            max_ops: config.max_ops_per_patch,
            client: HttpClient::new(&config.remote.http).map_err(StoreError::Invalid)?,
            budget: Budget::new(config.remote.rate_limit, config.remote.rate_window),
            etags: tokio::sync::OnceCell::new(),
        })
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, StoreError> {
        super::endpoint(&self.base, path, query)
    }

    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Response, StoreError> {
        self.call_if(method, url, body, None).await
    }

    /// [`ScimStore::call`] with an `If-Match` version.
    async fn call_if(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        version: Option<&str>,
    ) -> Result<Response, StoreError> {
        let what = format!("{method} {}", url.path());
        let response = self
            .client
            .send(&self.budget, &what, || {
                let mut request = self
                    .client
                    .request(method.clone(), url.clone())
                    .bearer_auth(self.token.expose_secret())
                    .header(reqwest::header::ACCEPT, SCIM_JSON);
                if let Some(version) = version {
                    request = request.header(reqwest::header::IF_MATCH, version);
                }
                if let Some(body) = body {
                    request = request
                        .header(reqwest::header::CONTENT_TYPE, SCIM_JSON)
                        .body(body.to_string());
                }
                request
            })
            .await?;
        Ok(response)
    }

    /// `GET` of a list, the whole response.
    async fn list(&self, path: &str, query: &[(&str, &str)]) -> Result<ListResponse, StoreError> {
        let response = self.call(Method::GET, self.url(path, query)?, None).await?;
        if !response.status.is_success() {
            return Err(failure(&response));
        }
        Ok(response.json()?)
    }

    /// The server's configuration, once: whether it versions groups.
    async fn etags(&self) -> Result<bool, StoreError> {
        self.etags
            .get_or_try_init(|| async {
                let url = self.url("/ServiceProviderConfig", &[])?;
                let response = self.call(Method::GET, url, None).await?;
                if !response.status.is_success() {
                    // A server without discovery is served the plain way.
                    return Ok(false);
                }
                let config: Value = response.json()?;
                Ok(config
                    .pointer("/etag/supported")
                    .and_then(Value::as_bool)
                    .unwrap_or(false))
            })
            .await
            .copied()
    }

    /// The group's current version (its `ETag`, else `meta.version`).
    async fn version(&self, group: &str) -> Result<Option<String>, StoreError> {
        let url = self.url(
            &format!("/Groups/{}", encode(group)),
            &[("excludedAttributes", "members")],
        )?;
        let response = self.call(Method::GET, url, None).await?;
        match response.status {
            StatusCode::NOT_FOUND => Err(StoreError::GroupGone(failure(&response).to_string())),
            s if s.is_success() => {
                let header = response
                    .headers
                    .get(reqwest::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let meta = response
                    .json::<Value>()?
                    .pointer("/meta/version")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Ok(header.or(meta))
            }
            _ => Err(failure(&response)),
        }
    }

    /// Every user, page by page: userName (lower-cased) → id.
    async fn all_users(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let mut users = BTreeMap::new();
        let mut start = 1u64;
        loop {
            let start_text = start.to_string();
            let page = self
                .list("/Users", &[("startIndex", &start_text), ("count", "100")])
                .await?;
            let n = page.resources.len() as u64;
            for user in &page.resources {
                if let Some((name, id)) = user_of(user) {
                    users.insert(name, id);
                }
            }
            start += n;
            if n == 0 || start > page.total_results {
                return Ok(users);
            }
        }
    }
}

/// (userName lower-cased, id) of a User resource.
fn user_of(user: &Value) -> Option<(String, String)> {
    let name = user.get("userName")?.as_str()?;
    let id = user.get("id")?.as_str()?;
    Some((name.trim().to_lowercase(), id.to_owned()))
}

/// A group resource as a [`RemoteGroup`].
fn group_of(group: &Value) -> Option<RemoteGroup> {
    Some(RemoteGroup {
        id: group.get("id")?.as_str()?.to_owned(),
        name: group.get("displayName")?.as_str()?.to_owned(),
    })
}

/// Whether a 404's detail is about the group rather than a user.
fn mentions_group(response: &Response) -> bool {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let detail = body
        .get("detail")
        .and_then(Value::as_str)
        .unwrap_or_default();
    !detail.to_lowercase().contains("user")
}

/// A filter's string literal: quoted, with `"` and `\` escaped (RFC 7644 §3.4.2.2).
fn literal(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The error of a failed response, with the SCIM error's `scimType` and `detail`.
fn failure(response: &Response) -> StoreError {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let detail = match (text("scimType"), text("detail")) {
        (Some(t), Some(d)) => format!("scimType {t}: {d}"),
        (Some(t), None) => format!("scimType {t}"),
        (None, Some(d)) => d,
        (None, None) => "no SCIM error body".to_owned(),
    };
    error_of(response, detail)
}

impl RemoteStore for ScimStore {
    fn kind(&self) -> &'static str {
        "scim"
    }

    fn tenant(&self) -> &str {
        &self.tenant
    }

    fn batch_size(&self) -> usize {
        self.max_ops
    }

    fn lists_members(&self) -> bool {
        false
    }

    async fn check(&self) -> Result<String, StoreError> {
        let response = self
            .call(Method::GET, self.url("/ServiceProviderConfig", &[])?, None)
            .await?;
        if !response.status.is_success() {
            return Err(failure(&response));
        }
        let config: Value = response.json()?;
        let supported = |k: &str| {
            config
                .get(k)
                .and_then(|v| v.get("supported"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        if !supported("patch") {
            return Err(StoreError::Rejected(format!(
                "{} does not support PATCH, which idpsync sends membership changes with",
                self.base
            )));
        }
        // Probe the token on a resource too: some servers serve the configuration unauthenticated.
        self.list("/Users", &[("count", "1")]).await?;
        Ok(format!(
            "scim {}: authenticated; PATCH supported, bulk {}, ETags {}",
            self.base,
            if supported("bulk") {
                "supported (not used)"
            } else {
                "not supported"
            },
            if supported("etag") {
                "supported"
            } else {
                "not supported"
            },
        ))
    }

    async fn find_group(
        &self,
        _stage: &Stage,
        name: &str,
    ) -> Result<Option<RemoteGroup>, StoreError> {
        let filter = format!("displayName eq {}", literal(name));
        let page = self
            .list(
                "/Groups",
                &[("filter", &filter), ("excludedAttributes", "members")],
            )
            .await?;
        Ok(page.resources.iter().find_map(group_of))
    }

    async fn group(&self, id: &str) -> Result<Option<RemoteGroup>, StoreError> {
        let url = self.url(&format!("/Groups/{}", encode(id)), &[])?;
        let response = self.call(Method::GET, url, None).await?;
        match response.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(group_of(&response.json::<Value>()?)),
            _ => Err(failure(&response)),
        }
    }

    async fn create_group(&self, stage: &Stage, name: &str) -> Result<RemoteGroup, StoreError> {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
        });
        let response = self
            .call(Method::POST, self.url("/Groups", &[])?, Some(&body))
            .await?;
        match response.status {
            // Created by someone else meanwhile (or by a request whose answer was lost).
            StatusCode::CONFLICT => self.find_group(stage, name).await?.ok_or_else(|| {
                StoreError::Invalid(format!(
                    "group {name:?} conflicts on create but is not found"
                ))
            }),
            s if s.is_success() => group_of(&response.json::<Value>()?)
                .ok_or_else(|| StoreError::Invalid("the created group has no id".into())),
            _ => Err(failure(&response)),
        }
    }

    async fn members(&self, _group: &str) -> Result<Vec<String>, StoreError> {
        Err(StoreError::Invalid(
            "this SCIM server's groups do not list their members".into(),
        ))
    }

    async fn is_member(&self, group: &str, user: &str) -> Result<bool, StoreError> {
        let filter = format!("id eq {} and members eq {}", literal(group), literal(user));
        let page = self
            .list(
                "/Groups",
                &[("filter", &filter), ("excludedAttributes", "members")],
            )
            .await?;
        Ok(page.total_results > 0 || !page.resources.is_empty())
    }

    async fn find_users(&self, keys: &[String]) -> Result<BTreeMap<String, String>, StoreError> {
        if keys.len() >= LIST_USERS_FROM {
            let all = self.all_users().await?;
            return Ok(keys
                .iter()
                .filter_map(|k| all.get(k).map(|id| (k.clone(), id.clone())))
                .collect());
        }
        let mut found = BTreeMap::new();
        for key in keys {
            let filter = format!("userName eq {}", literal(key));
            let page = self.list("/Users", &[("filter", &filter)]).await?;
            if let Some((name, id)) = page.resources.iter().find_map(user_of)
                && &name == key
            {
                found.insert(key.clone(), id);
            }
        }
        Ok(found)
    }

    async fn create_user(&self, _key: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    async fn push(&self, group: &str, changes: &[Change]) -> Result<Vec<Answer>, StoreError> {
        let adds: Vec<Value> = changes
            .iter()
            .filter(|c| c.op == Op::Add)
            .map(|c| json!({"value": c.user}))
            .collect();
        let mut operations = Vec::new();
        if !adds.is_empty() {
            operations.push(json!({"op": "add", "path": "members", "value": adds}));
        }
        for change in changes.iter().filter(|c| c.op == Op::Remove) {
            operations.push(json!({
                "op": "remove",
                "path": format!("members[value eq {}]", literal(&change.user)),
            }));
        }
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        });
        let url = self.url(&format!("/Groups/{}", encode(group)), &[])?;
        let etags = self.etags().await?;
        let mut attempts = 0;
        let response = loop {
            let version = if etags {
                self.version(group).await?
            } else {
                None
            };
            let response = self
                .call_if(Method::PATCH, url.clone(), Some(&body), version.as_deref())
                .await?;
            attempts += 1;
            // Changed between our read of its version and the PATCH: read it again.
            if response.status == StatusCode::PRECONDITION_FAILED && attempts < 5 {
                continue;
            }
            break response;
        };
        match response.status {
            s if s.is_success() => Ok(vec![Answer::Done; changes.len()]),
            // A 404 names what is missing: the group (its cached id is stale) or a user.
            StatusCode::NOT_FOUND if mentions_group(&response) => {
                Err(StoreError::GroupGone(failure(&response).to_string()))
            }
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

/// A path segment, percent-encoded.
pub(super) fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
