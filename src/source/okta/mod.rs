//! The `okta` IdP: an Okta org read through its management API (reference/idp-apis.md §2).
//!
//! A read lists `/api/v1/groups` (with `filter` or `search` from the configuration), then every
//! group's `/api/v1/groups/{id}/users`, a few groups at a time, following `Link: <…>; rel="next"`
//! whether the server sends one comma-joined header or several lines (`read`). Requests are paced
//! to a share of the org's rate limits (`rate`). `SUSPENDED` and `DEPROVISIONED` users are
//! disabled; every other status is enabled (SPEC §1). Any request that still fails after its
//! retries fails the whole read.
//!
//! The read is shaped for a cursor to slot in later: [`OktaSource::read_if_changed`] is where a
//! stored `lastMembershipUpdated` watermark would narrow the groups read.

mod link;
mod rate;
mod read;

use secrecy::{ExposeSecret, SecretString};

use super::collect::Collected;
use super::file::DirectoryExport;
use super::token::{ClientAuth, TokenCache, TokenRequest};
use super::{SourceError, SourceRead};
use crate::client::{HttpClient, Response};
use crate::config::{OktaConfig, OktaCredential};

/// The scopes a service app asks for: reading groups, their members and users.
const SCOPES: &str = "okta.groups.read okta.users.read";

/// How requests authenticate.
enum Auth {
    /// `Authorization: SSWS <token>`.
    ApiToken(SecretString),
    /// `Authorization: Bearer <token>` from the org authorization server.
    ServiceApp(TokenCache),
}

/// Reads one Okta org.
pub struct OktaSource {
    config: OktaConfig,
    /// `profile.email` or `profile.login`.
    by_login: bool,
    client: Result<HttpClient, String>,
    auth: Auth,
    pacing: rate::RateBudget,
}

impl std::fmt::Debug for OktaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaSource")
            .field("org_url", &self.config.org_url)
            .finish_non_exhaustive()
    }
}

impl OktaSource {
    /// A source for `config`; `user_key` is `profile.email` or `profile.login`.
    pub fn new(config: &OktaConfig, user_key: &str) -> OktaSource {
        let auth = match &config.credential {
            OktaCredential::ApiToken(token) => Auth::ApiToken(token.clone()),
            OktaCredential::ServiceApp {
                client_id,
                private_key,
                key_id,
            } => {
                let url = format!("{}/oauth2/v1/token", config.org_url);
                Auth::ServiceApp(TokenCache::new(TokenRequest {
                    url,
                    client_id: client_id.clone(),
                    scope: SCOPES.to_owned(),
                    auth: ClientAuth::Assertion {
                        key: private_key.clone(),
                        kid: key_id.clone(),
                        x5t_s256: None,
                    },
                }))
            }
        };
        OktaSource {
            config: config.clone(),
            by_login: user_key == "profile.login",
            client: HttpClient::new(&config.http),
            auth,
            pacing: rate::RateBudget::new(config.rate_limit_share, config.http.max_concurrency),
        }
    }

    fn client(&self) -> Result<&HttpClient, SourceError> {
        super::usable(&self.client)
    }

    /// The HTTPS client, for its request and throttle counts; `None` when it could not be set up.
    pub fn http(&self) -> Option<&HttpClient> {
        self.client.as_ref().ok()
    }

    /// Reads the org whole; without a cursor there is no cheap "unchanged" check.
    pub async fn read_if_changed(
        &self,
        _unchanged_if: Option<&str>,
    ) -> Result<SourceRead, SourceError> {
        let collected = self.collect().await?;
        Ok(SourceRead::Changed {
            directory: collected.directory(&self.config.org_url)?,
            fingerprint: None,
        })
    }

    /// Reads the org as a directory export (what `idpsync export` prints).
    pub async fn export(&self) -> Result<DirectoryExport, SourceError> {
        self.collect().await?.export(&self.config.org_url)
    }

    /// `check --connect`: authenticates and counts the groups without reading their members.
    pub async fn check(&self) -> Result<String, SourceError> {
        let groups = self.list_groups().await?;
        let how = match &self.auth {
            Auth::ApiToken(_) => "API token accepted".to_owned(),
            Auth::ServiceApp(tokens) => format!("token from {}", tokens.url()),
        };
        Ok(format!("{how}; {} groups", groups.groups().count()))
    }

    async fn collect(&self) -> Result<Collected, SourceError> {
        let mut collected = self.list_groups().await?;
        read::read_members(self, &mut collected).await?;
        Ok(collected)
    }

    /// `GET url`, authenticated and paced; a service-app token is refreshed once on a 401.
    async fn get(&self, url: reqwest::Url) -> Result<Response, SourceError> {
        let client = self.client()?;
        let what = format!("GET {url}");
        let request = |authorization: &str| {
            client
                .request(reqwest::Method::GET, url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .header(reqwest::header::AUTHORIZATION, sensitive(authorization))
        };
        let mut refreshed = false;
        loop {
            let (authorization, token) = match &self.auth {
                Auth::ApiToken(token) => (format!("SSWS {}", token.expose_secret()), None),
                Auth::ServiceApp(tokens) => {
                    let token = tokens.get(client).await?;
                    (format!("Bearer {}", token.expose_secret()), Some(token))
                }
            };
            let response = client
                .send(&self.pacing, &what, || request(&authorization))
                .await
                .map_err(|e| SourceError::Unavailable(e.to_string()))?;
            if response.status == reqwest::StatusCode::UNAUTHORIZED
                && !refreshed
                && let (Auth::ServiceApp(tokens), Some(token)) = (&self.auth, &token)
            {
                tokens.refused(token).await;
                refreshed = true;
                continue;
            }
            return ok(response);
        }
    }

    fn api(&self, path: &str) -> Result<reqwest::Url, SourceError> {
        let text = format!("{}{path}", self.config.org_url);
        reqwest::Url::parse(&text).map_err(|e| SourceError::Invalid(format!("{text}: {e}")))
    }
}

/// An `Authorization` value marked sensitive, so no layer below ever prints it.
fn sensitive(value: &str) -> reqwest::header::HeaderValue {
    let mut value = reqwest::header::HeaderValue::from_str(value)
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("invalid"));
    value.set_sensitive(true);
    value
}

use super::answered as ok;
