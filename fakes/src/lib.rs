//! Fake servers that speak the wire formats of the cloud services idpsync reads, written from
//! `reference/idp-apis.md`: Microsoft Graph with its token endpoint ([`graph`]), Okta ([`okta`]),
//! an OpenID provider with rotatable signing keys ([`oidc`]), a forwarding HTTP proxy
//! ([`proxy`]), and the group stores idpsync pushes to, from `reference/targets.md`: ODC's identity
//! API ([`odc`]), an AWS-like SCIM 2.0 server ([`scim`]) and Jira Cloud ([`jira`]).
//!
//! They enforce what the real services enforce — `$top` ≤ 999, a scope ending in `/.default`, an
//! `Authorization` header on every call, `ConsistencyLevel` where Graph requires it, opaque
//! `$skiptoken` nextLinks, token expiry, Okta's `limit` caps and rate-limit headers — and offer
//! switches a test flips: page sizes, a 429 every Nth request, 5xx bursts, a connection cut
//! mid-page, short token lifetimes. They count what they were sent. Each listens on
//! `127.0.0.1:0` on its own runtime thread, so synchronous tests can use them, and stops when
//! dropped. Test-only: never linked into idpsync.

// Handlers answer errors as the HTTP response itself; boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod graph;
pub mod jira;
pub mod odc;
pub mod oidc;
pub mod okta;
pub mod proxy;
pub mod scim;
pub mod server;

pub use server::{Running, Tls};
