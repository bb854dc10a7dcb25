//! `idpsync groups list|show` and `idpsync users show`: read-only views of the store.
//!
//! They open the state read-only (a missing state is an empty store) and work while the service runs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Usage, stage_arg};
use crate::cli::{GroupsCommand, Output, UsersCommand};
use crate::config::Config;
use crate::model::{GroupName, Stage, UserKey};
use crate::state::{GroupView, State};

#[derive(Serialize)]
struct GroupListItem<'a> {
    name: &'a str,
    stage: &'a str,
    description: &'a str,
    declared: bool,
    roles: &'a [String],
    member_count: u64,
}

#[derive(Serialize)]
struct GroupDoc<'a> {
    name: &'a str,
    stage: &'a str,
    description: &'a str,
    declared: bool,
    roles: &'a [String],
    members: Vec<MemberDoc>,
}

#[derive(Serialize)]
struct MemberDoc {
    user: String,
    provenance: Vec<String>,
}

#[derive(Serialize)]
struct UserDoc {
    user: String,
    groups: Vec<UserGroupDoc>,
    roles: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

#[derive(Serialize)]
struct UserGroupDoc {
    name: String,
    stage: String,
    provenance: Vec<String>,
}

fn declared_line(config: &Config, stage: &str, name: &str) -> Option<Option<usize>> {
    config
        .declared_group(stage, &crate::model::normalise_group_name(name))
        .map(|g| g.line)
}

/// Declared groups the store does not hold yet (the next real run creates them) show as they will be.
fn add_pending_declared(config: &Config, stage: Option<&Stage>, groups: &mut Vec<GroupView>) {
    for declared in &config.groups {
        if stage.is_some_and(|s| *s != declared.stage) {
            continue;
        }
        let stored = groups.iter().any(|g| {
            g.stage == declared.stage.as_str()
                && crate::model::normalise_group_name(&g.name) == declared.name.norm()
        });
        if !stored {
            groups.extend(pending_declared(config, &declared.stage, &declared.name));
        }
    }
    groups.sort_by(|a, b| {
        (a.stage.as_bytes(), a.name.as_bytes()).cmp(&(b.stage.as_bytes(), b.name.as_bytes()))
    });
}

/// A declared group as it will be created, with no id (-1) and no members.
fn pending_declared(config: &Config, stage: &Stage, name: &GroupName) -> Option<GroupView> {
    config
        .declared_group(stage.as_str(), name.norm())
        .map(|g| GroupView {
            id: -1,
            name: g.name.as_str().to_owned(),
            stage: g.stage.to_string(),
            description: g.description.clone(),
            roles: g.roles.iter().map(ToString::to_string).collect(),
            member_count: 0,
        })
}

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
            let mut groups = state.list_groups(stage.as_ref())?;
            add_pending_declared(config, stage.as_ref(), &mut groups);
            match output {
                Output::Json => {
                    let items: Vec<GroupListItem<'_>> = groups
                        .iter()
                        .map(|g| GroupListItem {
                            name: &g.name,
                            stage: &g.stage,
                            description: &g.description,
                            declared: declared_line(config, &g.stage, &g.name).is_some(),
                            roles: &g.roles,
                            member_count: g.member_count,
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&items)?);
                }
                Output::Text => {
                    if groups.is_empty() {
                        println!("No groups.");
                    }
                    for g in &groups {
                        let declared = if declared_line(config, &g.stage, &g.name).is_some() {
                            " (declared)"
                        } else {
                            ""
                        };
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
            let stored = state.find_group(&stage, &name)?;
            let group = match stored {
                Some(group) => group,
                None => pending_declared(config, &stage, &name).ok_or_else(|| {
                    Usage(format!("no group {:?} in stage {stage}", name.as_str()))
                })?,
            };
            let members = if group.id >= 0 {
                state.group_members(group.id)?
            } else {
                Vec::new()
            };
            let declared = declared_line(config, &group.stage, &group.name);
            match output {
                Output::Json => {
                    let doc = GroupDoc {
                        name: &group.name,
                        stage: &group.stage,
                        description: &group.description,
                        declared: declared.is_some(),
                        roles: &group.roles,
                        members: members
                            .iter()
                            .map(|m| MemberDoc {
                                user: m.user.clone(),
                                provenance: m.provenance.iter().map(ToString::to_string).collect(),
                            })
                            .collect(),
                    };
                    println!("{}", serde_json::to_string_pretty(&doc)?);
                }
                Output::Text => {
                    print!("{} ({})", group.name, group.stage);
                    match declared {
                        Some(line) => println!(
                            " — declared in {} line {}",
                            config.path.display(),
                            line.unwrap_or(0)
                        ),
                        None => println!(),
                    }
                    println!("Description: {}", group.description);
                    println!(
                        "Roles: {}",
                        if group.roles.is_empty() {
                            "none".into()
                        } else {
                            group.roles.join(", ")
                        }
                    );
                    println!("Members ({}):", members.len());
                    for m in &members {
                        let provenance: Vec<String> =
                            m.provenance.iter().map(ToString::to_string).collect();
                        println!("  {:<36} {}", m.user, provenance.join(", "));
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
    let memberships = state.user_memberships(&key, stage.as_ref())?;
    let mut roles: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for m in &memberships {
        for role in &m.roles {
            if let Some((app, name)) = role.split_once('/') {
                let list = roles
                    .entry(m.stage.clone())
                    .or_default()
                    .entry(app.to_owned())
                    .or_default();
                if !list.iter().any(|r| r == name) {
                    list.push(name.to_owned());
                    list.sort();
                }
            }
        }
    }
    let doc = UserDoc {
        user: key.to_string(),
        groups: memberships
            .iter()
            .map(|m| UserGroupDoc {
                name: m.name.clone(),
                stage: m.stage.clone(),
                provenance: m.provenance.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        roles,
    };
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
