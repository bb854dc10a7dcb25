//! `idpsync groups create|update|roles|add-user|remove-user|delete`: administrator edits, through
//! the same [`crate::admin::Edits`] as the admin API and the console; this module only turns
//! arguments into calls and results into lines.

use crate::admin::{AdminError, CreateGroup, Edits};
use crate::cli::GroupsCommand;
use crate::config::Config;
use crate::state::{State, StateError};
use crate::sync::unix_user;

/// An [`AdminError`] as the CLI reports it: the flags that would let a refused delete through
/// are named as flags.
fn cli_error(e: AdminError) -> anyhow::Error {
    match e {
        AdminError::MembersRemain { detail, .. } => StateError::Refused(format!(
            "{detail}; delete it with --remove-members to remove them too"
        ))
        .into(),
        other => other.into(),
    }
}

/// Runs one of the edit subcommands.
pub fn run(config: &Config, command: &GroupsCommand) -> anyhow::Result<u8> {
    let actor = format!("cli:{}", unix_user());
    let mut state = State::open(&config.daemon.state)?;
    let mut edits = Edits::open(config, &mut state, &actor).map_err(cli_error)?;
    edit(&mut edits, command).map_err(cli_error)?;
    Ok(0)
}

fn edit(edits: &mut Edits<'_>, command: &GroupsCommand) -> Result<(), AdminError> {
    match command {
        GroupsCommand::List { .. } | GroupsCommand::Show { .. } => {
            unreachable!("read commands are not edits")
        }
        GroupsCommand::Create {
            name,
            stage,
            description,
            roles,
        } => {
            let doc = edits.create(&CreateGroup {
                name: name.clone(),
                stage: stage.clone(),
                description: description.clone(),
                roles: roles.clone(),
            })?;
            println!("Created group {:?} in stage {}.", doc.name, doc.stage);
        }
        GroupsCommand::Update {
            name,
            stage,
            rename,
            description,
        } => {
            if rename.is_none() && description.is_none() {
                return Err(AdminError::Invalid(
                    "nothing to change: give --rename NEW and/or --description D".into(),
                ));
            }
            let before = edits.group(stage, name)?;
            let doc = edits.update(stage, name, rename.as_deref(), description.as_deref())?;
            if rename.is_some() {
                println!(
                    "Renamed {:?} to {:?} in stage {stage}.",
                    before.name, doc.name
                );
            } else {
                println!(
                    "Updated the description of {:?} in stage {stage}.",
                    doc.name
                );
            }
        }
        GroupsCommand::Roles {
            name,
            stage,
            add,
            remove,
        } => {
            if add.is_empty() && remove.is_empty() {
                return Err(AdminError::Invalid(
                    "nothing to change: give --add APP/ROLE and/or --remove APP/ROLE".into(),
                ));
            }
            let roles = edits.roles(stage, name, add, remove)?;
            let shown = edits.group(stage, name)?;
            println!(
                "Roles of {:?} in stage {stage}: {}",
                shown.name,
                if roles.is_empty() {
                    "none".into()
                } else {
                    roles.join(", ")
                }
            );
        }
        GroupsCommand::AddUser { name, stage, keys } => {
            let done = edits.members(stage, name, keys, &[])?;
            let shown = edits.group(stage, name)?;
            for key in &done.added {
                println!("Added {key} to {:?} in stage {stage} (direct).", shown.name);
            }
            for key in &done.already {
                println!(
                    "{key} already is a direct member of {:?} in stage {stage}.",
                    shown.name
                );
            }
        }
        GroupsCommand::RemoveUser { name, stage, keys } => {
            let done = edits.members(stage, name, &[], keys)?;
            let shown = edits.group(stage, name)?;
            for (key, remaining) in &done.removed {
                if remaining.is_empty() {
                    println!("Removed {key} from {:?} in stage {stage}.", shown.name);
                } else {
                    let through: Vec<String> = remaining.iter().map(ToString::to_string).collect();
                    println!(
                        "Removed the direct membership of {key} in {:?} in stage {stage}; {key} stays a member through {}.",
                        shown.name,
                        through.join(", ")
                    );
                }
            }
        }
        GroupsCommand::Delete {
            name,
            stage,
            remove_members,
        } => {
            let shown = edits.group(stage, name)?;
            let lost = edits.delete(stage, name, *remove_members)?;
            println!("Deleted group {:?} in stage {stage}.", shown.name);
            for member in &lost {
                let roles = if shown.roles.is_empty() {
                    "no roles (the group granted none)".to_owned()
                } else if member.roles.is_empty() {
                    "no roles (other groups of the stage grant the same)".to_owned()
                } else {
                    member.roles.join(", ")
                };
                println!("  {} lost: {roles}", member.user);
            }
        }
    }
    Ok(())
}
