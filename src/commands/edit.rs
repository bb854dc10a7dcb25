//! `idpsync groups create|update|roles|add-user|remove-user|delete`: administrator edits.
//!
//! The configuration's rules are checked here (declared groups own their name, description and
//! roles; roles must be in the `[[app]]` catalogue); the store's rules inside the state's transaction.

use std::collections::BTreeSet;

use super::{Usage, stage_arg};
use crate::cli::GroupsCommand;
use crate::config::Config;
use crate::model::{GroupName, Role, Stage, UserKey};
use crate::state::State;
use crate::sync::unix_user;

fn name_arg(raw: &str) -> Result<GroupName, Usage> {
    GroupName::parse(raw).map_err(|e| Usage(e.0))
}

fn roles_arg(config: &Config, raw: &[String]) -> Result<Vec<Role>, Usage> {
    raw.iter()
        .map(|r| {
            let role = Role::parse(r).map_err(|e| Usage(e.0))?;
            config.check_role(&role).map_err(Usage)?;
            Ok(role)
        })
        .collect()
}

fn keys_arg(raw: &[String]) -> Result<Vec<UserKey>, Usage> {
    raw.iter()
        .map(|k| UserKey::parse(k).map_err(|e| Usage(format!("{k:?}: {}", e.0))))
        .collect()
}

/// Refuses an edit the configuration owns: declared groups keep their name, description and roles.
fn refuse_declared(
    config: &Config,
    stage: &Stage,
    name: &GroupName,
    what: &str,
) -> Result<(), Usage> {
    match config.declared_group(stage.as_str(), name.norm()) {
        Some(declared) => Err(Usage(format!(
            "group {:?} in stage {stage} is declared in {} line {}; its {what} can only change there",
            declared.name.as_str(),
            config.path.display(),
            declared.line.unwrap_or(0)
        ))),
        None => Ok(()),
    }
}

/// The group as stored (its name as shown, its roles), or exit 2 naming what was asked for.
fn stored(
    state: &State,
    stage: &Stage,
    name: &GroupName,
) -> Result<crate::state::GroupView, anyhow::Error> {
    state
        .find_group(stage, name)?
        .ok_or_else(|| Usage(format!("no group {:?} in stage {stage}", name.as_str())).into())
}

/// Refuses a direct-membership edit in a stage a remote store serves (SPEC §2: for now).
fn refuse_remote(config: &Config, stage: &Stage, what: &str) -> Result<(), Usage> {
    if config.store.serves_remotely(stage) {
        return Err(Usage(format!(
            "stage {stage} is served by the {} store: {what} from the CLI are refused for it for now; \
             change memberships in the IdP (through a mapping) or in the store itself",
            config.store.kind()
        )));
    }
    Ok(())
}

/// Runs one of the edit subcommands.
pub fn run(config: &Config, command: &GroupsCommand) -> anyhow::Result<u8> {
    let actor = format!("cli:{}", unix_user());
    let mut state = State::open(&config.daemon.state)?;
    state.serve_remotely(&config.store.tenant(), config.store.remote_stages())?;
    // Declared groups exist before anyone edits their members.
    state.sync_declared(&config.groups, &actor)?;
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
            let (stage, name) = (stage_arg(config, stage)?, name_arg(name)?);
            let roles: BTreeSet<Role> = roles_arg(config, roles)?.into_iter().collect();
            state.create_group(&stage, &name, description, &roles, &actor)?;
            println!("Created group {:?} in stage {stage}.", name.as_str());
        }
        GroupsCommand::Update {
            name,
            stage,
            rename,
            description,
        } => {
            let (stage, name) = (stage_arg(config, stage)?, name_arg(name)?);
            let shown = stored(&state, &stage, &name)?;
            if rename.is_none() && description.is_none() {
                return Err(Usage(
                    "nothing to change: give --rename NEW and/or --description D".into(),
                )
                .into());
            }
            let what = if rename.is_some() {
                "name"
            } else {
                "description"
            };
            refuse_declared(config, &stage, &name, what)?;
            let rename = rename.as_deref().map(name_arg).transpose()?;
            state.update_group(
                &stage,
                &name,
                rename.as_ref(),
                description.as_deref(),
                &actor,
            )?;
            match &rename {
                Some(new) => println!(
                    "Renamed {:?} to {:?} in stage {stage}.",
                    shown.name,
                    new.as_str()
                ),
                None => println!(
                    "Updated the description of {:?} in stage {stage}.",
                    shown.name
                ),
            }
        }
        GroupsCommand::Roles {
            name,
            stage,
            add,
            remove,
        } => {
            let (stage, name) = (stage_arg(config, stage)?, name_arg(name)?);
            let shown = stored(&state, &stage, &name)?;
            if add.is_empty() && remove.is_empty() {
                return Err(Usage(
                    "nothing to change: give --add APP/ROLE and/or --remove APP/ROLE".into(),
                )
                .into());
            }
            refuse_declared(config, &stage, &name, "roles")?;
            let add = roles_arg(config, add)?;
            let remove: Vec<Role> = remove
                .iter()
                .map(|r| Role::parse(r).map_err(|e| Usage(e.0)))
                .collect::<Result<_, _>>()?;
            let roles = state.edit_roles(&stage, &name, &add, &remove, &actor)?;
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
            let (stage, name) = (stage_arg(config, stage)?, name_arg(name)?);
            refuse_remote(config, &stage, "direct-membership edits")?;
            let shown = stored(&state, &stage, &name)?;
            for key in keys_arg(keys)? {
                if state.add_direct(&stage, &name, &key, &actor)? {
                    println!("Added {key} to {:?} in stage {stage} (direct).", shown.name);
                } else {
                    println!(
                        "{key} already is a direct member of {:?} in stage {stage}.",
                        shown.name
                    );
                }
            }
        }
        GroupsCommand::RemoveUser { name, stage, keys } => {
            let (stage, name) = (stage_arg(config, stage)?, name_arg(name)?);
            refuse_remote(config, &stage, "direct-membership edits")?;
            let shown = stored(&state, &stage, &name)?;
            let keys = keys_arg(keys)?;
            for key in &keys {
                let removed = state.remove_direct(&stage, &name, key, &actor)?;
                if removed.remaining.is_empty() {
                    println!("Removed {key} from {:?} in stage {stage}.", shown.name);
                } else {
                    let through: Vec<String> =
                        removed.remaining.iter().map(ToString::to_string).collect();
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
            let (stage, name) = (stage_arg(config, stage)?, name_arg(name)?);
            let shown = stored(&state, &stage, &name)?;
            refuse_declared(config, &stage, &name, "existence")?;
            if *remove_members {
                refuse_remote(config, &stage, "deletes that remove members")?;
            }
            let lost = state.delete_group(&stage, &name, *remove_members, &actor)?;
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
    Ok(0)
}
