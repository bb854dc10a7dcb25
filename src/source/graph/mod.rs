//! The `azure_ad` IdP: Microsoft Entra ID read through Microsoft Graph v1.0
//! (reference/idp-apis.md §1).
//!
//! A read lists the groups `group_filter` selects, then reads every group's members —
//! `transitiveMembers` when `nested = true`, else `members` — a few groups at a time
//! (`max_concurrency`), page by page through `@odata.nextLink`, or in JSON `$batch`es of up to 20
//! when `batch = true` (`read`, `batch`). Users are taken from the member pages themselves: no
//! per-user request is ever made. Any request that still fails after its retries fails the whole
//! read (a read is complete or it fails).
//!
//! The read is shaped for a delta cursor to slot in later: [`GraphSource::read_if_changed`] is
//! where a stored `@odata.deltaLink` would be followed instead of a full read.

mod batch;
mod read;
mod scan;

use secrecy::{ExposeSecret, SecretString};

use super::collect::Collected;
use super::file::DirectoryExport;
use super::token::{ClientAuth, TokenCache, TokenRequest};
use super::{SourceError, SourceRead};
use crate::client::{HttpClient, RequestError, Response, RetryAfter};
use crate::config::{AzureAdConfig, AzureCredential};

/// Reads one Entra ID tenant.
pub struct GraphSource {
    config: AzureAdConfig,
    nested: bool,
    /// `mail` or `userPrincipalName`.
    key_field: &'static str,
    client: Result<HttpClient, String>,
    tokens: TokenCache,
}

impl std::fmt::Debug for GraphSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphSource")
            .field("graph_url", &self.config.graph_url)
            .finish_non_exhaustive()
    }
}

impl GraphSource {
    /// A source for `config`; `user_key` is `mail` or `upn`.
    pub fn new(config: &AzureAdConfig, nested: bool, user_key: &str) -> GraphSource {
        let auth = match &config.credential {
            AzureCredential::Secret(secret) => ClientAuth::Secret(secret.clone()),
            AzureCredential::Certificate {
                thumbprint_s256,
                private_key,
            } => ClientAuth::Assertion {
                key: private_key.clone(),
                kid: None,
                x5t_s256: Some(thumbprint_s256.clone()),
            },
        };
        let tokens = TokenCache::new(TokenRequest {
            url: format!(
                "{}/{}/oauth2/v2.0/token",
                config.authority_url, config.tenant_id
            ),
            client_id: config.client_id.clone(),
            scope: format!("{}/.default", config.graph_url),
            auth,
        });
        GraphSource {
            config: config.clone(),
            nested,
            key_field: if user_key == "upn" {
                "userPrincipalName"
            } else {
                "mail"
            },
            client: HttpClient::new(&config.http),
            tokens,
        }
    }

    fn client(&self) -> Result<&HttpClient, SourceError> {
        super::usable(&self.client)
    }

    /// The HTTPS client, for its request and throttle counts; `None` when it could not be set up.
    pub fn http(&self) -> Option<&HttpClient> {
        self.client.as_ref().ok()
    }

    /// Reads the tenant whole. Graph offers no cheap "unchanged" check without a delta cursor, so
    /// every read is a full one.
    pub async fn read_if_changed(
        &self,
        _unchanged_if: Option<&str>,
    ) -> Result<SourceRead, SourceError> {
        let collected = self.collect().await?;
        Ok(SourceRead::Changed {
            directory: collected.directory(&self.config.graph_url)?,
            fingerprint: None,
        })
    }

    /// Reads the tenant as a directory export (what `idpsync export` prints).
    pub async fn export(&self) -> Result<DirectoryExport, SourceError> {
        self.collect().await?.export(&self.config.graph_url)
    }

    /// `check --connect`: a token, then the groups counted without reading their members.
    pub async fn check(&self) -> Result<String, SourceError> {
        let groups = self.list_groups().await?;
        Ok(format!(
            "token from {}; {} groups",
            self.tokens.url(),
            groups.groups().count()
        ))
    }

    /// The ids of every group the user `object_id` is in, nested groups included, through
    /// `POST /users/{id}/getMemberObjects` (reference/idp-apis.md §1.8): how a login resolves an
    /// Entra groups overage. Any failure fails the lookup; it is never "no groups".
    pub async fn member_groups(&self, object_id: &str) -> Result<Vec<String>, SourceError> {
        let url = self.v1(&format!(
            "/users/{}/getMemberObjects",
            super::encode_segment(object_id)
        ))?;
        let body = serde_json::json!({"securityEnabledOnly": false});
        let response = ok(self.post(url, &body).await?)?;
        #[derive(serde::Deserialize)]
        struct Ids {
            value: Vec<String>,
        }
        let ids: Ids = super::collect::parse_page(&response.body, &response.what)?;
        Ok(ids.value)
    }

    /// `POST url` with a JSON `body` and a bearer token, refreshing the token once on a 401; the
    /// answer whatever its status (the caller judges it: a `$batch` reads its parts' statuses).
    async fn post(
        &self,
        url: reqwest::Url,
        body: &serde_json::Value,
    ) -> Result<Response, SourceError> {
        let client = self.client()?;
        let what = format!("POST {url}");
        self.authorized(
            |token| {
                client
                    .request(reqwest::Method::POST, url.clone())
                    .bearer_auth(token.expose_secret())
                    .json(body)
            },
            &what,
        )
        .await
    }

    async fn collect(&self) -> Result<Collected, SourceError> {
        let mut collected = self.list_groups().await?;
        if self.config.batch {
            batch::read_members(self, &mut collected).await?;
        } else {
            read::read_members(self, &mut collected).await?;
        }
        Ok(collected)
    }

    /// `GET url` with a bearer token, refreshing the token once on a 401; any status but 2xx
    /// fails, named by what it means.
    async fn get(&self, url: reqwest::Url) -> Result<Response, SourceError> {
        let client = self.client()?;
        let what = format!("GET {url}");
        let advanced = self.config.advanced_query;
        let response = self
            .authorized(
                |token| {
                    let builder = client
                        .request(reqwest::Method::GET, url.clone())
                        .bearer_auth(token.expose_secret());
                    if advanced {
                        // Graph does not carry this header into later pages: send it on every one.
                        builder.header("ConsistencyLevel", "eventual")
                    } else {
                        builder
                    }
                },
                &what,
            )
            .await?;
        ok(response)
    }

    /// Sends what `make` builds with a fresh token; on a 401 the token is dropped and the request
    /// sent once more with a new one.
    async fn authorized(
        &self,
        make: impl Fn(&SecretString) -> reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Response, SourceError> {
        let client = self.client()?;
        let mut refreshed = false;
        loop {
            let token = self.tokens.get(client).await?;
            let response = client
                .send(&RetryAfter, what, || make(&token))
                .await
                .map_err(request_failure)?;
            if response.status == reqwest::StatusCode::UNAUTHORIZED && !refreshed {
                self.tokens.refused(&token).await;
                refreshed = true;
                continue;
            }
            return Ok(response);
        }
    }

    fn v1(&self, path: &str) -> Result<reqwest::Url, SourceError> {
        let text = format!("{}/v1.0{path}", self.config.graph_url);
        reqwest::Url::parse(&text).map_err(|e| SourceError::Invalid(format!("{text}: {e}")))
    }
}

/// `v1(path)` built on `root`, the parsed `v1("")`: setting the path and query of a copy costs
/// a fraction of parsing the whole URL again, which a read would do for thousands of groups.
fn under(root: &reqwest::Url, path: &str) -> reqwest::Url {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let mut url = root.clone();
    url.set_path(&format!("{}{path}", root.path()));
    url.set_query(query);
    url
}

pub(super) use super::answered as ok;

fn request_failure(e: RequestError) -> SourceError {
    match e {
        RequestError::Unavailable { .. } => SourceError::Unavailable(e.to_string()),
        RequestError::Invalid { .. } => SourceError::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_built_under_the_root_is_the_url_parsed_whole() {
        for base in [
            "https://graph.example",
            "http://127.0.0.1:8080/prefix",
            "https://g.example/",
        ] {
            let root = reqwest::Url::parse(&format!("{base}/v1.0")).unwrap();
            for path in [
                "/groups/0000-1111/transitiveMembers?$select=id,accountEnabled,mail&$top=999",
                "/groups/a%2Fb%20c%3F/members?$select=id,accountEnabled,userPrincipalName&$top=999",
                "/groups",
            ] {
                let whole = reqwest::Url::parse(&format!("{base}/v1.0{path}")).unwrap();
                assert_eq!(super::under(&root, path), whole, "{base} {path}");
            }
        }
    }
}
