//! Verifying an ID token for one IdP's `[idp.oidc]` (SPEC §4): discovery and JWKS through
//! `openidconnect`, and the checks the crate leaves to us.
//!
//! The crate chooses the key and checks `iss`, `aud`, `exp` and the algorithm; the signature
//! itself is checked by `ring` through the crate's key trait ([`RingJwk`]). We widen the
//! algorithms to RS256, PS256 and ES256 (never `none`, never HMAC: the verifier is a public
//! client's, so no shared secret exists to check one with), give `exp` its 60 s leeway by
//! shifting the crate's clock, and check `nbf` (with the same leeway) and the `iat` age
//! ourselves. The JWKS lives behind an [`ArcSwapOption`]: requests read it without a lock;
//! [`Verifier::refresh`] (the service's timer) and the unknown-`kid` path swap in a new one. An
//! unknown `kid` refetches the JWKS at most once a minute, so a stream of forged `kid`s cannot
//! turn us into a load generator against the provider.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGenderClaim,
    CoreGrantType, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalClaims, ClaimsVerificationError, ClientId, EmptyAdditionalProviderMetadata, IdToken,
    IdTokenVerifier, IssuerUrl, JsonWebKeySet, JsonWebKeySetUrl, ProviderMetadata,
    SignatureVerificationError,
};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::jwk::RingJwk;
use crate::config::OidcConfig;

/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// The shortest time between two JWKS refetches for an unknown `kid`.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Every claim the token carries, for the claims step to read (`groups` under any name, the
/// overage markers, `email_verified`, `nbf`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Extra {
    #[serde(flatten)]
    all: Map<String, Value>,
}

impl AdditionalClaims for Extra {}

type Token =
    IdToken<Extra, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// A provider's JWKS, its keys checked with `ring` ([`RingJwk`]).
type KeySet = JsonWebKeySet<RingJwk>;

/// The crate's core discovery document, with [`RingJwk`] keys.
type Metadata = ProviderMetadata<
    EmptyAdditionalProviderMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    RingJwk,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// A token that passed every check, with its payload.
#[derive(Debug, Clone)]
pub struct Verified {
    /// `sub`.
    pub subject: String,
    /// `iat`.
    pub issued_at: DateTime<Utc>,
    /// The payload as sent (signed, so now trusted).
    pub claims: Map<String, Value>,
}

/// Why a token was refused (401 `invalid_token`), or why it could not be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The token fails a check; the detail says which, and never quotes the token.
    #[error("{0}")]
    Invalid(String),
    /// The provider's keys are not loaded (discovery or the JWKS failed).
    #[error("the keys of {0} are not loaded yet")]
    NotLoaded(String),
}

/// What the provider published, as loaded.
struct Keys {
    jwks_uri: JsonWebKeySetUrl,
    set: KeySet,
}

/// One IdP's token verifier.
pub struct Verifier {
    issuer: IssuerUrl,
    audience: ClientId,
    max_token_age: Duration,
    http: reqwest::Client,
    keys: ArcSwapOption<Keys>,
    /// When the JWKS was last refetched for an unknown `kid`.
    last_refetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer.as_str())
            .field("loaded", &self.is_loaded())
            .finish_non_exhaustive()
    }
}

/// Whether `url` may be an issuer: `https://`, or `http://` on a loopback address only.
pub fn check_issuer(url: &str) -> Result<IssuerUrl, String> {
    crate::config::check_url(url).map_err(|e| format!("issuer {url:?}: {e}"))?;
    IssuerUrl::new(url.to_owned()).map_err(|e| format!("issuer {url:?} is not a URL: {e}"))
}

impl Verifier {
    /// A verifier for `config`, fetching through `http` (which must not follow redirects).
    pub fn new(config: &OidcConfig, http: reqwest::Client) -> Result<Verifier, String> {
        Ok(Verifier {
            issuer: check_issuer(&config.issuer)?,
            audience: ClientId::new(config.client_id.clone()),
            max_token_age: config.max_token_age,
            http,
            keys: ArcSwapOption::empty(),
            last_refetch: Mutex::new(None),
        })
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// Whether discovery and the JWKS have loaded (what `/readyz` waits for).
    pub fn is_loaded(&self) -> bool {
        self.keys.load().is_some()
    }

    /// Discovery, then the JWKS it names; swapped in whole on success.
    pub async fn load(&self) -> Result<(), String> {
        let metadata = Metadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| {
                format!(
                    "discovery of {} failed: {}",
                    self.issuer.as_str(),
                    chain(&e)
                )
            })?;
        self.keys.store(Some(Arc::new(Keys {
            jwks_uri: metadata.jwks_uri().clone(),
            set: metadata.jwks().clone(),
        })));
        Ok(())
    }

    /// Fetches the JWKS again (discovery again when it never loaded): the timer's refresh.
    pub async fn refresh(&self) -> Result<(), String> {
        let Some(keys) = self.keys.load_full() else {
            return self.load().await;
        };
        let set = KeySet::fetch_async(&keys.jwks_uri, &self.http)
            .await
            .map_err(|e| format!("the JWKS of {} failed: {}", self.issuer.as_str(), chain(&e)))?;
        self.keys.store(Some(Arc::new(Keys {
            jwks_uri: keys.jwks_uri.clone(),
            set,
        })));
        Ok(())
    }

    /// Verifies `token` as of `now`; an unknown `kid` refetches the JWKS (at most once a
    /// minute) and tries once more.
    pub async fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Verified, Rejected> {
        let token: Token = token
            .trim()
            .parse()
            .map_err(|_| Rejected::Invalid("the token is not a JWT".to_owned()))?;
        match self.check(&token, now) {
            Err(Check::UnknownKey) => {
                if self.refetch_for_unknown_key().await {
                    self.check(&token, now).map_err(Check::into_rejected)
                } else {
                    Err(Check::UnknownKey.into_rejected())
                }
            }
            other => other.map_err(Check::into_rejected),
        }
    }

    /// Refetches the JWKS unless one was refetched less than a minute ago; whether it did.
    async fn refetch_for_unknown_key(&self) -> bool {
        let mut last = self.last_refetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        match self.refresh().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(issuer = self.issuer.as_str(), "{e}");
                false
            }
        }
    }

    fn check(&self, token: &Token, now: DateTime<Utc>) -> Result<Verified, Check> {
        let Some(keys) = self.keys.load_full() else {
            return Err(Check::NotLoaded(self.issuer.as_str().to_owned()));
        };
        let leeway = chrono::Duration::from_std(LEEWAY).expect("a minute");
        let shifted = now - leeway;
        let verifier = IdTokenVerifier::new_public_client(
            self.audience.clone(),
            self.issuer.clone(),
            keys.set.clone(),
        )
        .set_allowed_algs([
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        ])
        .set_time_fn(move || shifted);
        let claims = token
            .claims(&verifier, |_: Option<&openidconnect::Nonce>| Ok(()))
            .map_err(|e| match e {
                ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                ) => Check::UnknownKey,
                other => Check::Invalid(describe(&other)),
            })?;
        let issued_at = claims.issue_time();
        if issued_at > now + leeway {
            return Err(Check::Invalid(
                "the token was issued in the future (iat)".to_owned(),
            ));
        }
        let age = (now - issued_at).to_std().unwrap_or_default();
        if age > self.max_token_age {
            return Err(Check::Invalid(format!(
                "the token was issued {}s ago (iat), over max_token_age {}s",
                age.as_secs(),
                self.max_token_age.as_secs()
            )));
        }
        let extra = &claims.additional_claims().all;
        if let Some(nbf) = extra.get("nbf") {
            let nbf = nbf
                .as_i64()
                .and_then(|s| DateTime::from_timestamp(s, 0))
                .ok_or_else(|| Check::Invalid("nbf is not a number of seconds".to_owned()))?;
            if nbf > now + leeway {
                return Err(Check::Invalid(
                    "the token is not valid yet (nbf)".to_owned(),
                ));
            }
        }
        let mut payload = extra.clone();
        // The standard claims the crate consumed, put back for the claims step.
        if let Some(email) = claims.email() {
            payload.insert("email".to_owned(), Value::String(email.to_string()));
        }
        if let Some(verified) = claims.email_verified() {
            payload.insert("email_verified".to_owned(), Value::Bool(verified));
        }
        if let Some(name) = claims.preferred_username() {
            payload.insert(
                "preferred_username".to_owned(),
                Value::String(name.to_string()),
            );
        }
        payload.insert(
            "sub".to_owned(),
            Value::String(claims.subject().to_string()),
        );
        Ok(Verified {
            subject: claims.subject().to_string(),
            issued_at,
            claims: payload,
        })
    }
}

/// The outcome of one verification attempt.
enum Check {
    UnknownKey,
    NotLoaded(String),
    Invalid(String),
}

impl Check {
    fn into_rejected(self) -> Rejected {
        match self {
            Check::UnknownKey => Rejected::Invalid(
                "no key of the provider's JWKS matches the token's kid".to_owned(),
            ),
            Check::NotLoaded(issuer) => Rejected::NotLoaded(issuer),
            Check::Invalid(detail) => Rejected::Invalid(detail),
        }
    }
}

/// The crate's reason in words. Its messages name claims and algorithms, never the token.
fn describe(e: &ClaimsVerificationError) -> String {
    match e {
        ClaimsVerificationError::Expired(_) => "the token has expired (exp)".to_owned(),
        ClaimsVerificationError::InvalidAudience(_) => {
            "the token is for another audience (aud)".to_owned()
        }
        ClaimsVerificationError::InvalidIssuer(_) => {
            "the token is from another issuer (iss)".to_owned()
        }
        ClaimsVerificationError::SignatureVerification(e) => {
            format!("the signature does not verify: {e}")
        }
        other => format!("the token fails a check: {other}"),
    }
}

/// An error with its sources, for a log line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
