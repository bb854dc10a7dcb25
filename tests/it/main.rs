//! The integration tests: one binary driving the real `idpsync` executable.
//!
//! - `common`: temporary folders with a configuration, exports and state; running the binary with a
//!   clean environment; state and folder snapshots.
//! - `bad_input`: every bad configuration, override or argument exits 2 and changes nothing.
//! - `cli`: the reconcile document, dry runs, read commands, IdP failures, paths, `check`.
//! - `lock`: the per-IdP run lock.
//! - `scenario`: the "done when" scenario of the core issue.

mod bad_input;
mod cli;
mod common;
mod lock;
mod scenario;
