//! `kind = "jira"`: Jira Cloud's REST API v3 groups (reference/targets.md §3.1), with HTTP Basic
//! e-mail and API token.
//!
//! Groups are kept by `groupId`, found from their name once (`GET /group/bulk`); users by
//! `accountId`, found from their e-mail with `GET /user/search?query=` — a user who hides their
//! e-mail cannot be matched and stays unresolved. Jira has no batch: one `POST` or `DELETE
//! /group/user` per change, "already a member" and "not a member" both counting as done. Members
//! are listed `startAt`/`maxResults` until `isLast`. A 429 is waited out as `Retry-After` says
//! (else `X-RateLimit-Reset`).

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::pacing::Budget;
use super::{Answer, Change, Op, RemoteGroup, RemoteStore, StoreError, error_of};
use crate::client::{HttpClient, Response};
use crate::config::JiraConfig;
use crate::model::Stage;

/// A Jira Cloud site.
pub struct JiraStore {
    site: String,
    tenant: String,
    email: String,
    token: SecretString,
    client: HttpClient,
    budget: Budget,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageBean {
    #[serde(default)]
    values: Vec<Value>,
    #[serde(default = "yes")]
    is_last: bool,
}

fn yes() -> bool {
    true
}

impl JiraStore {
    /// A client for the site `config` names.
    pub fn new(config: &JiraConfig) -> Result<JiraStore, StoreError> {
        Ok(JiraStore {
            site: config.site_url.clone(),
            tenant: format!("jira {}", config.site_url),
            email: config.email.clone(),
            token: config.api_token.clone(),
            client: HttpClient::new(&config.remote.http).map_err(StoreError::Invalid)?,
            budget: Budget::new(config.remote.rate_limit, config.remote.rate_window),
        })
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, StoreError> {
        super::endpoint(&format!("{}/rest/api/3", self.site), path, query)
    }

    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Response, StoreError> {
        let what = format!("{method} {}", url.path());
        Ok(self
            .client
            .send(&self.budget, &what, || {
                let request = self
                    .client
                    .request(method.clone(), url.clone())
                    .basic_auth(&self.email, Some(self.token.expose_secret()))
                    .header(reqwest::header::ACCEPT, "application/json");
                match body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await?)
    }

    async fn get_ok(&self, url: Url) -> Result<Value, StoreError> {
        let response = self.call(Method::GET, url, None).await?;
        if !response.status.is_success() {
            return Err(failure(&response));
        }
        Ok(response.json()?)
    }

    async fn groups(&self, query: &[(&str, &str)]) -> Result<Vec<RemoteGroup>, StoreError> {
        let page: PageBean =
            serde_json::from_value(self.get_ok(self.url("/group/bulk", query)?).await?)
                .map_err(|e| StoreError::Invalid(format!("GET /group/bulk: not a page: {e}")))?;
        Ok(page.values.iter().filter_map(group_of).collect())
    }
}

/// The `errorMessages` of an ErrorCollection, joined.
fn messages(response: &Response) -> String {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let mut out: Vec<String> = body
        .get("errorMessages")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(errors) = body.get("errors").and_then(Value::as_object) {
        out.extend(
            errors
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default())),
        );
    }
    out.join("; ")
}

fn failure(response: &Response) -> StoreError {
    error_of(response, messages(response))
}

fn group_of(group: &Value) -> Option<RemoteGroup> {
    Some(RemoteGroup {
        id: group.get("groupId")?.as_str()?.to_owned(),
        name: group.get("name")?.as_str()?.to_owned(),
    })
}

impl RemoteStore for JiraStore {
    fn kind(&self) -> &'static str {
        "jira"
    }

    fn tenant(&self) -> &str {
        &self.tenant
    }

    fn batch_size(&self) -> usize {
        1
    }

    fn lists_members(&self) -> bool {
        true
    }

    async fn check(&self) -> Result<String, StoreError> {
        // Listing groups needs the same rights as managing them, and proves the token.
        self.groups(&[("maxResults", "1")]).await?;
        Ok(format!(
            "jira {}: authenticated as {}",
            self.site, self.email
        ))
    }

    async fn find_group(
        &self,
        _stage: &Stage,
        name: &str,
    ) -> Result<Option<RemoteGroup>, StoreError> {
        let wanted = name.trim().to_lowercase();
        Ok(self
            .groups(&[("groupName", name.trim())])
            .await?
            .into_iter()
            .find(|g| g.name.to_lowercase() == wanted))
    }

    async fn group(&self, id: &str) -> Result<Option<RemoteGroup>, StoreError> {
        Ok(self
            .groups(&[("groupId", id)])
            .await?
            .into_iter()
            .find(|g| g.id == id))
    }

    async fn create_group(&self, stage: &Stage, name: &str) -> Result<RemoteGroup, StoreError> {
        let body = json!({"name": name});
        let response = self
            .call(Method::POST, self.url("/group", &[])?, Some(&body))
            .await?;
        if response.status.is_success() {
            return group_of(&response.json::<Value>()?)
                .ok_or_else(|| StoreError::Invalid("the created group has no groupId".into()));
        }
        if response.status == StatusCode::BAD_REQUEST
            && messages(&response).contains("already exists")
        {
            return self.find_group(stage, name).await?.ok_or_else(|| {
                StoreError::Invalid(format!("group {name:?} exists on create but is not found"))
            });
        }
        Err(failure(&response))
    }

    async fn members(&self, group: &str) -> Result<Vec<String>, StoreError> {
        let mut members = Vec::new();
        let mut start = 0usize;
        loop {
            let start_text = start.to_string();
            let query = [
                ("groupId", group),
                ("startAt", start_text.as_str()),
                ("maxResults", "50"),
                ("includeInactiveUsers", "true"),
            ];
            let url = self.url("/group/member", &query)?;
            let page: PageBean = serde_json::from_value(self.get_ok(url).await?)
                .map_err(|e| StoreError::Invalid(format!("GET /group/member: not a page: {e}")))?;
            let n = page.values.len();
            members.extend(
                page.values
                    .iter()
                    .filter_map(|u| u.get("accountId")?.as_str().map(str::to_owned)),
            );
            start += n;
            if page.is_last || n == 0 {
                return Ok(members);
            }
        }
    }

    async fn is_member(&self, group: &str, user: &str) -> Result<bool, StoreError> {
        Ok(self.members(group).await?.iter().any(|m| m == user))
    }

    async fn find_users(&self, keys: &[String]) -> Result<BTreeMap<String, String>, StoreError> {
        let mut found = BTreeMap::new();
        for key in keys {
            let users = self
                .get_ok(self.url("/user/search", &[("query", key), ("maxResults", "100")])?)
                .await?;
            // A user who hides their e-mail comes without it and cannot be matched.
            let hit = users.as_array().into_iter().flatten().find(|u| {
                u.get("emailAddress")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.trim().to_lowercase() == *key)
            });
            if let Some(id) = hit.and_then(|u| u.get("accountId")?.as_str()) {
                found.insert(key.clone(), id.to_owned());
            }
        }
        Ok(found)
    }

    async fn create_user(&self, _key: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    async fn push(&self, group: &str, changes: &[Change]) -> Result<Vec<Answer>, StoreError> {
        let mut answers = Vec::with_capacity(changes.len());
        for change in changes {
            let response = match change.op {
                Op::Add => {
                    let url = self.url("/group/user", &[("groupId", group)])?;
                    let body = json!({"accountId": change.user});
                    self.call(Method::POST, url, Some(&body)).await?
                }
                Op::Remove => {
                    let url = self.url(
                        "/group/user",
                        &[("groupId", group), ("accountId", &change.user)],
                    )?;
                    self.call(Method::DELETE, url, None).await?
                }
            };
            let text = messages(&response);
            answers.push(match (change.op, response.status) {
                (_, s) if s.is_success() => Answer::Done,
                (Op::Add, StatusCode::BAD_REQUEST) if text.contains("already a member") => {
                    Answer::AlreadyMember
                }
                (_, StatusCode::NOT_FOUND) if text.contains("group does not exist") => {
                    return Err(StoreError::GroupGone(text));
                }
                (Op::Remove, StatusCode::NOT_FOUND) => Answer::NotMember,
                _ => return Err(failure(&response)),
            });
        }
        Ok(answers)
    }

    fn client(&self) -> &HttpClient {
        &self.client
    }

    fn budget(&self) -> &Budget {
        &self.budget
    }
}
