//! idpsync keeps an application's end-user groups in step with the groups people have in their
//! identity provider.
//!
//! The shape is a pure core with I/O at its edges:
//!
//! | module | owns | must not |
//! |---|---|---|
//! | [`config`] | the TOML file and overrides → a validated [`config::Config`] | be re-validated elsewhere |
//! | [`model`] | names, stages, roles, user keys, provenances | do I/O |
//! | [`directory`] | an IdP read (snapshot) → checked, expanded groups | do I/O |
//! | [`dn`] | LDAP distinguished names in one normalised form | do I/O |
//! | [`mappings`] | where a mapping's group resolves: its name, or a former name of a renamed group | do I/O |
//! | [`progress`] | the counts a run reports as it goes | draw anything |
//! | [`reconcile`] | desired + current + policy → plan with per-IdP refusals | do I/O or read the clock |
//! | [`client`] | outbound HTTPS: TLS options, retries with backoff, per-run retry budget | log a header or a body |
//! | [`login`] | an ID token at sign-in → verified claims (user, groups or an overage) | trust a claim before the signature |
//! | [`source`] | reading IdPs into checked directories, complete or failed | write state |
//! | [`state`] | the SQLite file: store (the mirror of a remote one), journal, baselines, audit, runs | decide what changes |
//! | [`store`] | the remote group stores (ODC, SCIM, Jira) and the drain that sends them the journal | decide what changes |
//! | [`sync`] | `sync_once`: the one place I/O meets the core | hold a store transaction while reading IdPs |
//! | [`service`] | `idpsync run`: schedule, signals, sd_notify, HTTP (read API, health, metrics, admin API, web console) | decide what changes |
//! | [`report`] | the reconcile document (JSON and text) | change anything |
//! | [`views`] | the read documents of the store (`groups list`, `groups show`, `users show`) for CLI and HTTP | write |
//! | [`admin`] | the administrator's group edits, mapping statuses and refusals, for CLI, admin API and console | bypass the checked apply |
//! | [`plan`] | saved plans: written by `plan`, applied exactly by `apply` or refused | re-plan on apply |
//! | [`cli`], [`commands`] | the command line and its thin subcommands | hold logic the library lacks |
//! | [`failpoint`] | named points on the write path, armed only in test builds | exist in a release build |
//! | [`alloc`] | the binary's allocator settings (mimalloc) | be needed by library users |

pub mod admin;
pub mod alloc;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod directory;
pub mod dn;
pub mod failpoint;
pub mod login;
pub mod mappings;
pub mod model;
pub mod plan;
pub mod progress;
pub mod reconcile;
pub mod report;
pub mod service;
pub mod source;
pub mod state;
pub mod store;
pub mod sync;
pub mod views;
