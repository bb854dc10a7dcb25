//! A fake OpenID provider: a discovery document and a JWKS, with keys a test rotates, and ID
//! tokens signed the way Entra ID and Okta sign them (reference/idp-apis.md §1.8, §2.5, §4).
//!
//! `GET /.well-known/openid-configuration` answers the provider metadata `openidconnect`
//! discovers (the issuer is the server's base URL), `GET /keys` the JWKS of the published keys.
//! A test signs tokens with [`FakeOidc::sign`] (any claims, any header) and turns keys over
//! with [`FakeOidc::publish`] and [`FakeOidc::retire`]; the server counts discovery and JWKS
//! fetches, so a test can see a refetch happen, or not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State as Extract;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::KeyPair;
use serde_json::{Value, json};

use crate::server::{Running, serve_with_state};

/// A signing key: its `kid`, algorithm and PKCS#8 private key (PEM).
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// The key id published in the JWKS and sent in token headers.
    pub kid: String,
    /// RS256, PS256 (RSA keys) or ES256 (a P-256 key).
    pub alg: Algorithm,
    /// The private key, PKCS#8 PEM.
    pub pem: String,
}

impl SigningKey {
    /// The public half as a JWK.
    fn jwk(&self) -> Value {
        let der = pem_body(&self.pem);
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match self.alg {
            Algorithm::ES256 => {
                let rng = ring::rand::SystemRandom::new();
                let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
                    &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &der,
                    &rng,
                )
                .expect("a P-256 PKCS#8 key");
                // An uncompressed point: 0x04, x, y.
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
                       "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            alg => {
                let pair =
                    ring::signature::RsaKeyPair::from_pkcs8(&der).expect("an RSA PKCS#8 key");
                let public: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
                json!({"kty": "RSA", "use": "sig", "alg": format!("{alg:?}"), "kid": self.kid,
                       "n": b64(&public.n), "e": b64(&public.e)})
            }
        }
    }
}

fn pem_body(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM base64")
}

/// What a test sees and flips while the provider runs.
pub struct State {
    /// The issuer: the server's base URL.
    pub issuer: String,
    /// Published keys; the last one signs by default.
    keys: Mutex<Vec<SigningKey>>,
    /// Discovery documents served.
    pub discoveries: AtomicU64,
    /// JWKS documents served.
    pub jwks_fetches: AtomicU64,
}

/// A running fake provider.
pub struct FakeOidc {
    server: Running,
    state: Arc<State>,
}

impl FakeOidc {
    /// Starts a provider publishing `keys`.
    pub fn start(keys: Vec<SigningKey>) -> FakeOidc {
        let (server, state) = serve_with_state(
            None,
            move |issuer| State {
                issuer,
                keys: Mutex::new(keys),
                discoveries: AtomicU64::new(0),
                jwks_fetches: AtomicU64::new(0),
            },
            |state| {
                Router::new()
                    .route("/.well-known/openid-configuration", get(discovery))
                    .route("/keys", get(jwks))
                    .with_state(state)
            },
        );
        FakeOidc { server, state }
    }

    /// The issuer URL (`http://127.0.0.1:PORT`).
    pub fn issuer(&self) -> String {
        self.server.url()
    }

    /// Counters.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Publishes one more key (the new default signer), as a provider does ahead of a rollover.
    pub fn publish(&self, key: SigningKey) {
        self.state.keys.lock().unwrap().push(key);
    }

    /// Stops publishing the key `kid`.
    pub fn retire(&self, kid: &str) {
        self.state.keys.lock().unwrap().retain(|k| k.kid != kid);
    }

    /// A token over `claims`, signed by the last published key with its `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let key = self
            .state
            .keys
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a key");
        sign_with(&key, Some(&key.kid), claims)
    }
}

/// A token over `claims` signed by `key`, with `kid` in the header when given.
pub fn sign_with(key: &SigningKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = kid.map(str::to_owned);
    let encoding = match key.alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(key.pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(key.pem.as_bytes()),
    }
    .expect("a signing key");
    jsonwebtoken::encode(&header, claims, &encoding).expect("signed")
}

/// A token with any header and payload and the given signature bytes, for tokens no honest
/// signer makes (`alg: none`, HS256 keyed with a public key, a forged signature).
pub fn forge(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("JSON"));
    format!(
        "{}.{}.{}",
        part(header),
        part(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

async fn discovery(Extract(state): Extract<Arc<State>>) -> Response {
    state.discoveries.fetch_add(1, Ordering::Relaxed);
    let issuer = &state.issuer;
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/keys"),
        "response_types_supported": ["code", "id_token", "code id_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256"],
        "scopes_supported": ["openid", "email", "profile", "groups"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "email", "email_verified", "groups"],
    }))
    .into_response()
}

async fn jwks(Extract(state): Extract<Arc<State>>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::Relaxed);
    let keys: Vec<Value> = state
        .keys
        .lock()
        .unwrap()
        .iter()
        .map(SigningKey::jwk)
        .collect();
    axum::Json(json!({ "keys": keys })).into_response()
}
