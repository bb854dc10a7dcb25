//! The command line of SPEC §3 (clap definitions only; the work is in `commands`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps end-user groups in step with the groups people have in their identity provider.
#[derive(Debug, Parser)]
#[command(name = "idpsync", version, about)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "IDPSYNC_CONFIG", default_value = crate::config::DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Errors only, and no progress bar.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// How a result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// Text for people.
    #[default]
    Text,
    /// The JSON document of SPEC §3.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reconcile once: read the IdPs, plan, check the guards and apply.
    Reconcile(ReconcileArgs),
    /// Validate the configuration (and with --connect, read every IdP).
    Check {
        /// Also read every IdP and report what it holds.
        #[arg(long)]
        connect: bool,
    },
    /// End-user groups.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Users.
    #[command(subcommand)]
    Users(UsersCommand),
}

/// `reconcile` options.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Plan and print, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Ignore every "unchanged, skip it" shortcut and read everything.
    #[arg(long)]
    pub full: bool,
    /// Only this IdP (repeatable).
    #[arg(long = "idp", value_name = "NAME")]
    pub idps: Vec<String>,
    /// Result format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Let an IdP through the removal guard when it removes at most N.
    #[arg(long, value_name = "N")]
    pub allow_removals: Option<u64>,
    /// Let an IdP through the empty-source guard.
    #[arg(long)]
    pub allow_empty: bool,
}

/// `groups` subcommands.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List groups.
    List {
        /// Only this stage.
        #[arg(long)]
        stage: Option<String>,
        /// Result format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show one group with its roles and members.
    Show {
        /// The group's name.
        name: String,
        /// The group's stage.
        #[arg(long)]
        stage: String,
        /// Result format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Show a user's groups (with provenance) and effective roles.
    Show {
        /// The user key.
        key: String,
        /// Only this stage.
        #[arg(long)]
        stage: Option<String>,
        /// Result format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}
