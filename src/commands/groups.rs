//! `idpsync groups list|show` and `idpsync users show`: read-only views of the store.
//!
//! They open the state read-only (a missing state is an empty store) and work while the service runs.

use super::{Usage, stage_arg};
use crate::cli::{GroupsCommand, Output, UsersCommand};
use crate::config::Config;
use crate::model::{GroupName, UserKey};
use crate::state::State;
use crate::views;

/// Runs `groups list` or `groups show`.
pub fn run_groups(config: &Config, command: &GroupsCommand) -> anyhow::Result<u8> {
    if !matches!(
        command,
        GroupsCommand::List { .. } | GroupsCommand::Show { .. }
    ) {
        return super::edit::run(config, command);
    }
    let state = State::open_read_only(&config.daemon.state)?;
    match command {
        GroupsCommand::List { stage, output } => {
            let stage = stage.as_deref().map(|s| stage_arg(config, s)).transpose()?;
            let groups = views::group_list(config, &state, stage.as_ref())?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&groups)?),
                Output::Text => {
                    if groups.is_empty() {
                        println!("No groups.");
                    }
                    for g in &groups {
                        let declared = if g.declared { " (declared)" } else { "" };
                        println!(
                            "{:<12} {:<28} {:>6} members  {}{declared}",
                            g.stage,
                            g.name,
                            g.member_count,
                            g.roles.join(", ")
                        );
                    }
                }
            }
        }
        GroupsCommand::Show {
            name,
            stage,
            output,
        } => {
            let stage = stage_arg(config, stage)?;
            let name = GroupName::parse(name).map_err(|e| Usage(e.0))?;
            let doc = views::group_doc(config, &state, &stage, &name)?
                .ok_or_else(|| Usage(format!("no group {:?} in stage {stage}", name.as_str())))?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
                Output::Text => {
                    print!("{} ({})", doc.name, doc.stage);
                    match views::declared_line(config, &doc.stage, &doc.name) {
                        Some(line) => println!(
                            " — declared in {} line {}",
                            config.path.display(),
                            line.unwrap_or(0)
                        ),
                        None => println!(),
                    }
                    println!("Description: {}", doc.description);
                    println!(
                        "Roles: {}",
                        if doc.roles.is_empty() {
                            "none".into()
                        } else {
                            doc.roles.join(", ")
                        }
                    );
                    println!("Members ({}):", doc.members.len());
                    for m in &doc.members {
                        println!("  {:<36} {}", m.user, m.provenance.join(", "));
                    }
                }
            }
        }
        _ => unreachable!("edits are handled above"),
    }
    Ok(0)
}

/// Runs `users show`.
pub fn run_users(config: &Config, command: &UsersCommand) -> anyhow::Result<u8> {
    let UsersCommand::Show { key, stage, output } = command;
    let key = UserKey::parse(key).map_err(|e| Usage(e.0))?;
    let stage = stage.as_deref().map(|s| stage_arg(config, s)).transpose()?;
    let state = State::open_read_only(&config.daemon.state)?;
    let doc = views::user_doc(&state, &key, stage.as_ref())?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
        Output::Text => {
            println!("{}", doc.user);
            if doc.groups.is_empty() {
                println!("No group memberships.");
            }
            for g in &doc.groups {
                println!("  {}/{}  {}", g.stage, g.name, g.provenance.join(", "));
            }
            for (stage, apps) in &doc.roles {
                for (app, list) in apps {
                    println!(
                        "  role in {stage}: {app}/{}",
                        list.join(&format!(", {app}/"))
                    );
                }
            }
        }
    }
    Ok(0)
}
