//! A provider's public key as `openidconnect` reads it, checked with `ring`.
//!
//! `openidconnect` chooses the key (by `kid`, use, type and `alg`) and checks the claims; its
//! own RSA arithmetic (the `rsa` crate) cost more than half a millisecond per token, the largest
//! single cost of a login. [`RingJwk`] keeps the crate's key for every decision and answers the
//! three algorithms a login accepts — RS256, PS256 and ES256 — through `ring`, with the key
//! material decoded once when the JWKS loads. Anything else goes to the crate's own check.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeyType, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm,
};
use openidconnect::{JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, SignatureVerificationError};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A JWK with its public key decoded for `ring`.
#[derive(Debug, Clone)]
pub struct RingJwk {
    inner: CoreJsonWebKey,
    public: Option<Public>,
}

/// The key material `ring` checks signatures with.
#[derive(Debug, Clone)]
enum Public {
    /// RSA: modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// P-256: the uncompressed point (`0x04 ‖ x ‖ y`).
    P256(Vec<u8>),
}

/// The members of a JWK that carry a public key.
#[derive(Deserialize)]
struct Material {
    kty: String,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl Material {
    /// The key for `ring`, when it is RSA or P-256 and decodes.
    fn public(&self) -> Option<Public> {
        let decode = |field: &Option<String>| URL_SAFE_NO_PAD.decode(field.as_deref()?).ok();
        match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => Some(Public::Rsa {
                n: decode(&self.n)?,
                e: decode(&self.e)?,
            }),
            ("EC", Some("P-256")) => {
                let (x, y) = (decode(&self.x)?, decode(&self.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                Some(Public::P256([&[4u8][..], &x, &y].concat()))
            }
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for RingJwk {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let public = Material::deserialize(&value).ok().and_then(|m| m.public());
        let inner = CoreJsonWebKey::deserialize(value).map_err(serde::de::Error::custom)?;
        Ok(RingJwk { inner, public })
    }
}

impl Serialize for RingJwk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.inner.serialize(serializer)
    }
}

impl JsonWebKey for RingJwk {
    type KeyUse = CoreJsonWebKeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.inner.key_id()
    }

    fn key_type(&self) -> &CoreJsonWebKeyType {
        self.inner.key_type()
    }

    fn key_use(&self) -> Option<&CoreJsonWebKeyUse> {
        self.inner.key_use()
    }

    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        self.inner.signing_alg()
    }

    fn new_symmetric(key: Vec<u8>) -> Self {
        RingJwk {
            inner: CoreJsonWebKey::new_symmetric(key),
            public: None,
        }
    }

    fn verify_signature(
        &self,
        alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureVerificationError> {
        // The crate filtered keys by these already; checked again, the key's `alg` binds it.
        if let JsonWebKeyAlgorithm::Algorithm(bound) = self.inner.signing_alg()
            && bound != alg
        {
            return Err(SignatureVerificationError::InvalidKey(
                "incompatible key algorithm".to_owned(),
            ));
        }
        let verified = match (alg, &self.public) {
            (CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, Some(Public::Rsa { n, e })) => {
                RsaPublicKeyComponents { n, e }.verify(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    message,
                    signature,
                )
            }
            (CoreJwsSigningAlgorithm::RsaSsaPssSha256, Some(Public::Rsa { n, e })) => {
                RsaPublicKeyComponents { n, e }.verify(
                    &signature::RSA_PSS_2048_8192_SHA256,
                    message,
                    signature,
                )
            }
            (CoreJwsSigningAlgorithm::EcdsaP256Sha256, Some(Public::P256(point))) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
            }
            _ => return self.inner.verify_signature(alg, message, signature),
        };
        verified.map_err(|_| SignatureVerificationError::CryptoError("bad signature".to_owned()))
    }

    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        self.inner.hash_bytes(bytes, alg)
    }
}
