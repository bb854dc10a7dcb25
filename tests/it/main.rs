//! The integration tests: one binary driving the real `idpsync` executable.
//!
//! - `common`: temporary folders with a configuration, exports and state; running the binary with a
//!   clean environment; state and folder snapshots.
//! - `admin`: the administration commands: group edits, declared groups, provenances, saved plans,
//!   audit, status, journal, export, backup and writes beside another writer.
//! - `admin_api` and `admin_api_reads`, with `admin_api_site`: the admin REST API of `admin_listen` through the running
//!   service: tokens, the OpenAPI document, group edits with the CLI's rules, problem documents,
//!   pages, mappings, users, reconciles, refusals.
//! - `bad_input`: every bad configuration, override or argument exits 2 and changes nothing.
//! - `cli`: the reconcile document, dry runs, read commands, IdP failures, paths, `check`.
//! - `declared`: a declared group found as declared is not written or audited again.
//! - `lock`: the per-IdP run lock.
//! - `login`: `POST /v1/login` through the running service, with tokens of the fake OpenID provider;
//!   `login_overage`: Entra groups overages resolved through the fake Graph.
//! - `login_verify`: the login token verifier against the fake OpenID provider of `fakes`.
//! - `crash`, with `armed`: the binary SIGKILLed at each failpoint of the write path, a seeded
//!   smoke test of random kills, and edits racing a run.
//! - `renames`: mappings follow renamed groups; a new group takes a former name over.
//! - `scenario`: the "done when" scenario of the core issue.
//! - `shortcut`: the unchanged-read shortcut gives the plan a full read gives, and any change turns it off.
//! - `ldap`, with `slapd`, `ldap_fixture` and `cut_proxy`: the LDAP IdP against a real OpenLDAP server.
//! - `service`: `idpsync run` in-process and as a child process: schedule, read API,
//!   reload, stop, notify, metrics, secrets kept out of logs.
//! - `systemd`: the unit verifies and is hardened; the example configuration checks.
//! - `graph`, `okta`, with `cloud`: the Entra ID and Okta IdPs against the fake servers of the
//!   `fakes` crate.
//! - `store_scim`, `store_odc`, `store_jira`, with `stores`: the remote group stores against the
//!   fakes; `store_login`: logins reaching a remote store through the service; `crash_store`: the
//!   binary SIGKILLed at each step of sending the journal, and a seeded random kill test.
//! - `ad`, with `fake_ad`: the LDAP IdP in Active Directory mode against a fake AD (ldap3_proto).
//! - `console`, with `console_site`: the web console over plain HTTP (sign-in cookie, session
//!   guard, CSRF, security headers, refusals beside the field); `console_e2e`, with `browser`: its
//!   flows in headless Chromium through chromedriver, saving the screenshots of `docs/screenshots/`.

mod ad;
mod admin;
mod admin_api;
mod admin_api_reads;
mod admin_api_site;
mod armed;
mod bad_input;
mod browser;
mod cli;
mod cloud;
mod common;
mod console;
mod console_e2e;
mod console_site;
mod crash;
mod crash_pause;
mod crash_store;
mod cut_proxy;
mod declared;
mod fake_ad;
mod graph;
mod ldap;
mod ldap_fixture;
mod lock;
mod login;
mod login_overage;
mod login_verify;
mod okta;
mod renames;
mod scenario;
mod service;
mod shortcut;
mod slapd;
mod store_demo;
mod store_jira;
mod store_login;
mod store_odc;
mod store_scim;
mod stores;
mod systemd;
