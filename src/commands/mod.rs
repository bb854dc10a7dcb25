//! The subcommands: thin layers that load the configuration, call the library and print.
//!
//! Each returns the process exit status, or an error that `main` maps to one: [`Usage`] and
//! configuration errors exit 2, everything else 1. Standard output carries only the result.

mod check;
mod groups;
mod reconcile;

use std::path::Path;

use crate::cli::{Cli, Command};
use crate::config::Config;

/// Bad usage or a bad value (exit 2): unknown group, bad stage, bad key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Runs the parsed command line; `Ok` carries the exit status.
pub async fn run(cli: &Cli, progress: &indicatif::ProgressBar) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Reconcile(args) => reconcile::run(&load(&cli.config)?, args, progress).await,
        Command::Check { connect } => check::run(&load(&cli.config)?, *connect).await,
        Command::Groups(command) => groups::run_groups(&load(&cli.config)?, command),
        Command::Users(command) => groups::run_users(&load(&cli.config)?, command),
    }
}

/// Loads the configuration with the process environment.
pub fn load(path: &Path) -> Result<Config, crate::config::ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    Config::load(path, &env)
}

/// Maps an error to SPEC §3's exit status.
pub fn exit_code_of(error: &anyhow::Error) -> u8 {
    if error.is::<crate::config::ConfigError>() || error.is::<Usage>() {
        return 2;
    }
    match error.downcast_ref::<crate::sync::SyncError>() {
        Some(crate::sync::SyncError::UnknownIdp(_)) => 2,
        _ => 1,
    }
}
