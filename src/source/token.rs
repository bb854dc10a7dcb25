//! OAuth 2.0 client-credentials tokens for the cloud IdPs: requested with a client secret or a
//! signed client assertion (RFC 7523: Entra's certificate credential, Okta's `private_key_jwt`),
//! cached until shortly before they expire, and dropped when the API answers 401 so the next
//! request fetches a fresh one — once; a second 401 fails the read.
//!
//! Secrets and tokens stay in [`SecretString`]s and request bodies; no message here carries one.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::SourceError;
use crate::client::{HttpClient, RetryAfter};

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// `client_secret` in the form.
    Secret(SecretString),
    /// A JWT client assertion signed with `key`.
    Assertion {
        /// The PEM private key.
        key: SecretString,
        /// Extra JOSE header fields: `kid`, `x5t#S256`.
        kid: Option<String>,
        /// `x5t#S256` of the certificate (Entra).
        x5t_s256: Option<String>,
    },
}

/// A token endpoint and what to ask it for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The token endpoint URL (also the assertion's audience).
    pub url: String,
    /// The client id (`iss` and `sub` of an assertion).
    pub client_id: String,
    /// The scope asked for.
    pub scope: String,
    /// The credential.
    pub auth: ClientAuth,
}

#[derive(Clone)]
struct Cached {
    token: SecretString,
    fresh_until: Instant,
}

/// A token cache for one client.
pub struct TokenCache {
    request: TokenRequest,
    cached: Mutex<Option<Cached>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

impl TokenCache {
    /// A cache that fetches tokens as `request` says.
    pub fn new(request: TokenRequest) -> TokenCache {
        TokenCache {
            request,
            cached: Mutex::new(None),
        }
    }

    /// The token endpoint, for messages.
    pub fn url(&self) -> &str {
        &self.request.url
    }

    /// A token that is still fresh, fetched when there is none.
    pub async fn get(&self, client: &HttpClient) -> Result<SecretString, SourceError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.fresh_until
        {
            return Ok(c.token.clone());
        }
        let fetched = self.fetch(client).await?;
        let token = fetched.token.clone();
        *cached = Some(fetched);
        Ok(token)
    }

    /// Forgets `token` after the API refused it, unless a fresher one replaced it already.
    pub async fn refused(&self, token: &SecretString) {
        let mut cached = self.cached.lock().await;
        if cached
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == token.expose_secret())
        {
            *cached = None;
        }
    }

    async fn fetch(&self, client: &HttpClient) -> Result<Cached, SourceError> {
        let r = &self.request;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", r.client_id.clone()),
            ("scope", r.scope.clone()),
        ];
        match &r.auth {
            ClientAuth::Secret(secret) => {
                form.push(("client_secret", secret.expose_secret().to_owned()))
            }
            ClientAuth::Assertion { key, kid, x5t_s256 } => {
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push((
                    "client_assertion",
                    self.assertion(key, kid.clone(), x5t_s256.clone())?,
                ));
            }
        }
        let url = reqwest::Url::parse(&r.url)
            .map_err(|e| SourceError::Invalid(format!("token URL {}: {e}", r.url)))?;
        let what = format!("POST {}", r.url);
        let started = Instant::now();
        let response = client
            .send(&RetryAfter, &what, || {
                client
                    .request(reqwest::Method::POST, url.clone())
                    .form(&form)
            })
            .await
            .map_err(|e| SourceError::Unavailable(format!("cannot get a token: {e}")))?;
        if !response.status.is_success() {
            let message = format!(
                "{what}: the token request was refused: {}",
                response.error_summary()
            );
            return Err(if response.status.is_client_error() {
                SourceError::Unauthorized(message)
            } else {
                SourceError::Unavailable(message)
            });
        }
        let body: TokenResponse = response
            .json()
            .map_err(|e| SourceError::Invalid(e.to_string()))?;
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(3600));
        // Refresh five minutes early, or at half the lifetime of a short-lived token.
        let margin = Duration::from_secs(300).min(lifetime / 2);
        Ok(Cached {
            token: SecretString::from(body.access_token),
            fresh_until: started + lifetime - margin,
        })
    }

    /// A client assertion for this endpoint, valid for five minutes.
    fn assertion(
        &self,
        key: &SecretString,
        kid: Option<String>,
        x5t_s256: Option<String>,
    ) -> Result<String, SourceError> {
        let pem = key.expose_secret().as_bytes();
        let (key, algorithm) = match jsonwebtoken::EncodingKey::from_rsa_pem(pem) {
            Ok(key) => (key, jsonwebtoken::Algorithm::RS256),
            Err(_) => match jsonwebtoken::EncodingKey::from_ec_pem(pem) {
                Ok(key) => (key, jsonwebtoken::Algorithm::ES256),
                Err(_) => {
                    return Err(SourceError::Invalid(
                        "the private key is neither RSA nor EC PEM".to_owned(),
                    ));
                }
            },
        };
        let mut header = jsonwebtoken::Header::new(algorithm);
        header.kid = kid;
        header.x5t_s256 = x5t_s256;
        let now = chrono::Utc::now().timestamp();
        let claims = AssertionClaims {
            iss: &self.request.client_id,
            sub: &self.request.client_id,
            aud: &self.request.url,
            jti: uuid::Uuid::now_v7().to_string(),
            iat: now,
            nbf: now,
            exp: now + 300,
        };
        jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|e| SourceError::Invalid(format!("cannot sign the client assertion: {e}")))
    }
}
