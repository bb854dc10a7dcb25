//! The subcommands: thin layers that load the configuration, call the library and print.
//!
//! Each returns the process exit status, or an error that `main` maps to one: [`Usage`] and
//! configuration errors exit 2, everything else 1. Standard output carries only the result.

mod check;
mod edit;
mod groups;
mod ops;
mod plan;
mod reconcile;

use std::path::Path;

use crate::cli::{Cli, Command};
use crate::config::Config;

/// Bad usage or a bad value (exit 2): unknown group, bad stage, bad key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A `--stage` argument: a valid stage name listed in `daemon.stages`, else exit 2.
fn stage_arg(config: &Config, raw: &str) -> Result<crate::model::Stage, Usage> {
    let stage = crate::model::Stage::parse(raw).map_err(|e| Usage(e.0))?;
    if !config.daemon.stages.contains(&stage) {
        return Err(Usage(format!("stage {stage} is not in daemon.stages")));
    }
    Ok(stage)
}

/// Runs the parsed command line; `Ok` carries the exit status.
pub async fn run(cli: &Cli, progress: crate::progress::ProgressFn<'_>) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Reconcile(args) => reconcile::run(&load(&cli.config)?, args, progress).await,
        Command::Run => crate::service::run(&cli.config).await,
        Command::Check { connect } => check::run(&load(&cli.config)?, *connect).await,
        Command::Plan(args) => plan::plan(&load(&cli.config)?, args, progress).await,
        Command::Apply { plan } => plan::apply(&load(&cli.config)?, plan).await,
        Command::Status { output } => ops::status(&load(&cli.config)?, *output),
        Command::Audit(args) => ops::audit(&load(&cli.config)?, args),
        Command::Journal(command) => ops::journal(&load(&cli.config)?, command),
        Command::Export { idp } => ops::export(&load(&cli.config)?, idp).await,
        Command::Backup { path } => ops::backup(&load(&cli.config)?, path),
        Command::Groups(command) => groups::run_groups(&load(&cli.config)?, command),
        Command::Users(command) => groups::run_users(&load(&cli.config)?, command),
    }
}

/// Loads the configuration with the process environment.
pub fn load(path: &Path) -> Result<Config, crate::config::ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    Config::load(path, &env)
}

/// Maps an error to SPEC §3's exit status: 2 bad usage or configuration, 3 refused, else 1.
pub fn exit_code_of(error: &anyhow::Error) -> u8 {
    use crate::plan::PlanError;
    use crate::state::StateError;
    use crate::sync::SyncError;
    if error.is::<crate::config::ConfigError>() || error.is::<Usage>() {
        return 2;
    }
    let state_code = |e: &StateError| match e {
        StateError::Invalid(_) => 2,
        StateError::Refused(_) => 3,
        _ => 1,
    };
    if let Some(e) = error.downcast_ref::<StateError>() {
        return state_code(e);
    }
    if let Some(e) = error.downcast_ref::<crate::admin::AdminError>() {
        return e.exit_code();
    }
    match error.downcast_ref::<PlanError>() {
        Some(PlanError::Unreadable { .. }) => return 2,
        Some(PlanError::ConfigChanged { .. }) => return 3,
        Some(PlanError::State(e)) => return state_code(e),
        None => {}
    }
    match error.downcast_ref::<SyncError>() {
        Some(SyncError::UnknownIdp(_) | SyncError::LoginOnly(_)) => 2,
        Some(SyncError::State(e)) => state_code(e),
        Some(SyncError::Stopped) => 1,
        None => 1,
    }
}
