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
    /// The service: reconcile on the schedule, serve the read API, health and metrics.
    Run,
    /// Validate the configuration (and with --connect, read every IdP).
    Check {
        /// Also read every IdP and report what it holds.
        #[arg(long)]
        connect: bool,
    },
    /// Save what a reconcile would do, with the guards run now, to apply later exactly.
    Plan(PlanArgs),
    /// Apply a saved plan exactly, or refuse (exit 3) when memberships, roles or the configuration changed since.
    Apply {
        /// The plan file written by `plan --out`.
        plan: PathBuf,
    },
    /// Per IdP: last run, outcome, counts, refusals pending, next run; journal depth.
    Status {
        /// Result format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// The audit log: every applied change with its actor and cause.
    Audit(AuditArgs),
    /// Journal entries a store rejected permanently.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Read one IdP now and print a directory export (the `file` IdP's format).
    Export {
        /// The IdP to read.
        #[arg(long, value_name = "NAME")]
        idp: String,
    },
    /// Write a consistent copy of the state (SQLite online backup), safe while the service runs.
    Backup {
        /// Where to write the copy (must not exist).
        path: PathBuf,
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

/// `plan` options.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only this IdP (repeatable).
    #[arg(long = "idp", value_name = "NAME")]
    pub idps: Vec<String>,
    /// Let an IdP through the removal guard when it removes at most N.
    #[arg(long, value_name = "N")]
    pub allow_removals: Option<u64>,
    /// Let an IdP through the empty-source guard.
    #[arg(long)]
    pub allow_empty: bool,
    /// Where to write the plan.
    #[arg(long, value_name = "PLAN.json")]
    pub out: PathBuf,
    /// How to print the plan on standard output.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `audit` filters.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Records at or after this time (RFC 3339, e.g. 2026-11-28T00:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<String>,
    /// Records about this user.
    #[arg(long, value_name = "KEY")]
    pub user: Option<String>,
    /// Records about this group (with --stage).
    #[arg(long, value_name = "NAME", requires = "stage")]
    pub group: Option<String>,
    /// The group's stage.
    #[arg(long, requires = "group")]
    pub stage: Option<String>,
    /// Result format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `journal` subcommands.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Entries a store rejected permanently.
    List {
        /// Result format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Queue a failed entry again; the next run retries it.
    Retry {
        /// The entry's id.
        id: i64,
    },
    /// Give up on a failed entry (audited).
    Drop {
        /// The entry's id.
        id: i64,
    },
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
    /// Create a group in a stage (the stage never changes afterwards).
    Create {
        /// The group's name.
        name: String,
        /// Its stage.
        #[arg(long)]
        stage: String,
        /// Its description.
        #[arg(long, default_value = "")]
        description: String,
        /// A role it grants (repeatable).
        #[arg(long = "role", value_name = "APP/ROLE")]
        roles: Vec<String>,
    },
    /// Rename a group or change its description.
    Update {
        /// The group's name.
        name: String,
        /// Its stage.
        #[arg(long)]
        stage: String,
        /// The new name.
        #[arg(long, value_name = "NEW")]
        rename: Option<String>,
        /// The new description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Add or remove roles of a group.
    Roles {
        /// The group's name.
        name: String,
        /// Its stage.
        #[arg(long)]
        stage: String,
        /// A role to add (repeatable).
        #[arg(long = "add", value_name = "APP/ROLE")]
        add: Vec<String>,
        /// A role to remove (repeatable).
        #[arg(long = "remove", value_name = "APP/ROLE")]
        remove: Vec<String>,
    },
    /// Add users as direct members.
    AddUser {
        /// The group's name.
        name: String,
        /// Its stage.
        #[arg(long)]
        stage: String,
        /// User keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Remove users' direct membership (an IdP's provenance stays).
    RemoveUser {
        /// The group's name.
        name: String,
        /// Its stage.
        #[arg(long)]
        stage: String,
        /// User keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Delete a group; refused while it has members unless --remove-members.
    Delete {
        /// The group's name.
        name: String,
        /// Its stage.
        #[arg(long)]
        stage: String,
        /// Remove its members too.
        #[arg(long)]
        remove_members: bool,
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
