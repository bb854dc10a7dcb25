//! Login-time claims (SPEC §4 `POST /v1/login`): verify an ID token, read its claims.
//!
//! | step | module |
//! |---|---|
//! | which IdP a token is for: its unverified `iss` and `aud` | [`select`] |
//! | discovery, JWKS, signature and time checks | [`verify`] |
//! | a JWKS key, checked with `ring` | [`jwk`] |
//! | the user key and the groups claim (listed, or an Entra overage) | [`claims`] |

pub mod claims;
pub mod jwk;
pub mod select;
pub mod verify;

pub use claims::{ClaimsError, Groups, LoginClaims};
pub use verify::{Rejected, Verified, Verifier};
