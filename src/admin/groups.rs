//! Creating, renaming, describing and deleting groups, their roles and their direct members, with
//! the configuration's rules checked before the state's transaction.

use std::collections::BTreeSet;

use super::AdminError;
use crate::config::Config;
use crate::model::{GroupName, Role, Stage, UserKey};
use crate::state::{DirectEdit, LostRoles, State};
use crate::views::{self, GroupDoc};

/// A group to create.
#[derive(Debug, Clone, Default)]
pub struct CreateGroup {
    /// Its name.
    pub name: String,
    /// Its stage (one of `daemon.stages`); it never changes afterwards.
    pub stage: String,
    /// Its description.
    pub description: String,
    /// Its roles, `App/Role`.
    pub roles: Vec<String>,
}

/// The administrator's edits, as `actor` (`cli:<user>`, `api`), on an open state.
pub struct Edits<'a> {
    config: &'a Config,
    state: &'a mut State,
    actor: &'a str,
}

impl<'a> Edits<'a> {
    /// Edits of `state` under `config`, audited as `actor`. Declared groups are created first,
    /// so they exist before anyone edits their members.
    pub fn open(
        config: &'a Config,
        state: &'a mut State,
        actor: &'a str,
    ) -> Result<Edits<'a>, AdminError> {
        state
            .serve_remotely(&config.store.tenant(), config.store.remote_stages())
            .map_err(AdminError::State)?;
        state
            .sync_declared(&config.groups, actor)
            .map_err(AdminError::State)?;
        Ok(Edits {
            config,
            state,
            actor,
        })
    }

    /// The configuration the edits are checked against.
    pub fn config(&self) -> &Config {
        self.config
    }

    /// The state, for reads between edits.
    pub fn state(&self) -> &State {
        self.state
    }

    /// The `groups show` document of group (`stage`, `name`).
    pub fn group(&self, stage: &str, name: &str) -> Result<GroupDoc, AdminError> {
        self.show(&stage_of(self.config, stage)?, &name_of(name)?)
    }

    /// Creates a group; answers its `groups show` document.
    pub fn create(&mut self, group: &CreateGroup) -> Result<GroupDoc, AdminError> {
        let stage = stage_of(self.config, &group.stage)?;
        let name = name_of(&group.name)?;
        let roles: BTreeSet<Role> = roles_of(self.config, &group.roles)?.into_iter().collect();
        if let Some(existing) = self
            .state
            .find_group(&stage, &name)
            .map_err(AdminError::State)?
        {
            return Err(AdminError::Conflict(format!(
                "group {:?} already exists in stage {stage}",
                existing.name
            )));
        }
        self.state
            .create_group(&stage, &name, &group.description, &roles, self.actor)?;
        self.show(&stage, &name)
    }

    /// Renames a group and/or changes its description (the stage never changes).
    pub fn update(
        &mut self,
        stage: &str,
        name: &str,
        rename: Option<&str>,
        description: Option<&str>,
    ) -> Result<GroupDoc, AdminError> {
        let (stage, name) = (stage_of(self.config, stage)?, name_of(name)?);
        self.stored(&stage, &name)?;
        if rename.is_none() && description.is_none() {
            return Err(AdminError::Invalid(
                "nothing to change: give a new name and/or a description".into(),
            ));
        }
        let what = if rename.is_some() {
            "name"
        } else {
            "description"
        };
        self.refuse_declared(&stage, &name, what)?;
        let rename = rename.map(name_of).transpose()?;
        if let Some(new) = &rename
            && new.norm() != name.norm()
            && let Some(clash) = self
                .state
                .find_group(&stage, new)
                .map_err(AdminError::State)?
        {
            return Err(AdminError::Conflict(format!(
                "group {:?} already exists in stage {stage}",
                clash.name
            )));
        }
        self.state
            .update_group(&stage, &name, rename.as_ref(), description, self.actor)?;
        self.show(&stage, rename.as_ref().unwrap_or(&name))
    }

    /// Adds and removes roles (`App/Role`); answers the group's roles afterwards.
    pub fn roles(
        &mut self,
        stage: &str,
        name: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<Vec<String>, AdminError> {
        let (stage, name) = (stage_of(self.config, stage)?, name_of(name)?);
        self.stored(&stage, &name)?;
        if add.is_empty() && remove.is_empty() {
            return Err(AdminError::Invalid(
                "nothing to change: give roles to add and/or to remove".into(),
            ));
        }
        self.refuse_declared(&stage, &name, "roles")?;
        let add = roles_of(self.config, add)?;
        let remove: Vec<Role> = remove
            .iter()
            .map(|r| Role::parse(r).map_err(|e| AdminError::UnknownRole(format!("{r:?}: {}", e.0))))
            .collect::<Result<_, _>>()?;
        Ok(self
            .state
            .edit_roles(&stage, &name, &add, &remove, self.actor)?)
    }

    /// Adds and removes direct members, all or none.
    pub fn members(
        &mut self,
        stage: &str,
        name: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<DirectEdit, AdminError> {
        let (stage, name) = (stage_of(self.config, stage)?, name_of(name)?);
        self.stored(&stage, &name)?;
        self.refuse_remote(&stage, "direct-membership edits")?;
        if add.is_empty() && remove.is_empty() {
            return Err(AdminError::Invalid(
                "nothing to change: give user keys to add and/or to remove".into(),
            ));
        }
        let (add, remove) = (keys_of(add)?, keys_of(remove)?);
        Ok(self
            .state
            .edit_direct(&stage, &name, &add, &remove, self.actor)?)
    }

    /// Deletes a group. With members it is refused unless `remove_members`; answers the users
    /// who lost roles and which.
    pub fn delete(
        &mut self,
        stage: &str,
        name: &str,
        remove_members: bool,
    ) -> Result<Vec<LostRoles>, AdminError> {
        let (stage, name) = (stage_of(self.config, stage)?, name_of(name)?);
        let shown = self.stored(&stage, &name)?;
        self.refuse_declared(&stage, &name, "existence")?;
        if remove_members {
            self.refuse_remote(&stage, "deletes that remove members")?;
        }
        let lost = self
            .state
            .delete_preview(&stage, &name)
            .map_err(AdminError::State)?;
        if !lost.is_empty() && !remove_members {
            return Err(AdminError::MembersRemain {
                detail: members_remain(&shown, &stage, &lost),
                lost,
            });
        }
        Ok(self
            .state
            .delete_group(&stage, &name, remove_members, self.actor)?)
    }

    /// The `groups show` document of a group.
    fn show(&self, stage: &Stage, name: &GroupName) -> Result<GroupDoc, AdminError> {
        views::group_doc(self.config, self.state, stage, name)
            .map_err(AdminError::State)?
            .ok_or_else(|| not_found(stage, name))
    }

    /// The group as stored, or `NotFound`.
    fn stored(&self, stage: &Stage, name: &GroupName) -> Result<String, AdminError> {
        self.state
            .find_group(stage, name)
            .map_err(AdminError::State)?
            .map(|g| g.name)
            .ok_or_else(|| not_found(stage, name))
    }

    /// Refuses an edit the configuration owns, naming the file and line that declares the group.
    fn refuse_declared(
        &self,
        stage: &Stage,
        name: &GroupName,
        what: &str,
    ) -> Result<(), AdminError> {
        match self.config.declared_group(stage.as_str(), name.norm()) {
            Some(declared) => Err(AdminError::Declared(format!(
                "group {:?} in stage {stage} is declared in {} line {}; its {what} can only change there",
                declared.name.as_str(),
                self.config.path.display(),
                declared.line.unwrap_or(0)
            ))),
            None => Ok(()),
        }
    }

    /// Refuses a direct-membership edit in a stage a remote store serves (SPEC §2: for now).
    fn refuse_remote(&self, stage: &Stage, what: &str) -> Result<(), AdminError> {
        if self.config.store.serves_remotely(stage) {
            return Err(AdminError::RemoteStage(format!(
                "stage {stage} is served by the {} store: {what} are refused for it for now; \
                 change memberships in the IdP (through a mapping) or in the store itself",
                self.config.store.kind()
            )));
        }
        Ok(())
    }
}

fn not_found(stage: &Stage, name: &GroupName) -> AdminError {
    AdminError::NotFound(format!("no group {:?} in stage {stage}", name.as_str()))
}

/// How many members a refused delete names in words (the error's `lost` has them all).
const NAMED: usize = 10;

/// "Group X has N members (…)": the first members with the roles each would lose.
fn members_remain(shown: &str, stage: &Stage, lost: &[LostRoles]) -> String {
    let mut losses: Vec<String> = lost
        .iter()
        .take(NAMED)
        .map(|l| {
            let roles = if l.roles.is_empty() {
                "no roles".to_owned()
            } else {
                l.roles.join(", ")
            };
            format!("{} would lose {roles}", l.user)
        })
        .collect();
    if lost.len() > NAMED {
        losses.push(format!("and {} more", lost.len() - NAMED));
    }
    format!(
        "group {shown:?} in stage {stage} has {} members ({})",
        lost.len(),
        losses.join("; ")
    )
}

/// A stage of `daemon.stages`.
pub fn stage_of(config: &Config, raw: &str) -> Result<Stage, AdminError> {
    match Stage::parse(raw) {
        Ok(stage) if config.daemon.stages.contains(&stage) => Ok(stage),
        _ => Err(AdminError::Invalid(format!(
            "stage {raw:?} is not one of daemon.stages ({})",
            config
                .daemon
                .stages
                .iter()
                .map(Stage::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn name_of(raw: &str) -> Result<GroupName, AdminError> {
    GroupName::parse(raw).map_err(|e| AdminError::Invalid(e.0))
}

fn roles_of(config: &Config, raw: &[String]) -> Result<Vec<Role>, AdminError> {
    raw.iter()
        .map(|r| {
            let role =
                Role::parse(r).map_err(|e| AdminError::UnknownRole(format!("{r:?}: {}", e.0)))?;
            config.check_role(&role).map_err(AdminError::UnknownRole)?;
            Ok(role)
        })
        .collect()
}

fn keys_of(raw: &[String]) -> Result<Vec<UserKey>, AdminError> {
    raw.iter()
        .map(|k| UserKey::parse(k).map_err(|e| AdminError::Invalid(format!("{k:?}: {}", e.0))))
        .collect()
}
