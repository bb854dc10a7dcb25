//! Every configured mapping with its status (`GET /v1/admin/mappings`, the console's Mappings
//! page): what the configuration and the store tell now, and what the IdP's last applied read told.

use serde::Serialize;

use crate::config::Config;
use crate::report::InactiveDoc;
use crate::state::{State, StateError};

/// One mapping and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MappingDoc {
    /// The IdP.
    pub idp: String,
    /// The IdP group's id or name.
    pub idp_group: String,
    /// The end-user group's stage.
    pub stage: String,
    /// The end-user group, as the configuration names it.
    pub group: String,
    /// `active` or `inactive`.
    pub status: &'static str,
    /// Why it is inactive (SPEC §2's reason codes); `null` when active.
    pub reason: Option<String>,
    /// Set when the mapping names a former name of a renamed group: it follows the group, and the
    /// configuration should be updated.
    pub warning: Option<String>,
}

/// The mappings of `config` in configuration order.
///
/// `stage_not_served` and `group_not_found` are judged now from the configuration and the store;
/// the reasons only the IdP can tell (`idp_group_not_found`, `idp_group_ambiguous`,
/// `remote_group_not_found`) come from the IdP's last applied read. A mapping of an IdP never
/// read is `active` until a read says otherwise.
pub fn mapping_docs(config: &Config, state: &State) -> Result<Vec<MappingDoc>, StateError> {
    let (groups, former) = state.groups_and_former_names()?;
    let renamed = crate::mappings::renamed(&config.mappings, &groups, &former);
    let stored: std::collections::HashSet<(&str, &str)> = groups
        .iter()
        .map(|g| (g.stage.as_str(), g.norm.as_str()))
        .collect();
    let mut last_reads: Vec<(String, Vec<InactiveDoc>)> = Vec::new();
    for idp in &config.idps {
        let inactive = match state.stored_read(&idp.name)? {
            Some(read) => serde_json::from_str(&read.inactive).unwrap_or_default(),
            None => Vec::new(),
        };
        last_reads.push((idp.name.to_string(), inactive));
    }
    let mut docs = Vec::with_capacity(config.mappings.len());
    for m in &config.mappings {
        let (idp, stage, group) = (m.idp.as_str(), m.stage.as_str(), m.group.as_str());
        let warning = renamed
            .iter()
            .find(|r| {
                r.idp == idp && r.idp_group == m.idp_group && r.stage == stage && r.group == group
            })
            .map(crate::mappings::RenamedMapping::warning);
        let exists = stored.contains(&(stage, m.group.norm()))
            || warning.is_some()
            || config.declared_group(stage, m.group.norm()).is_some();
        let reason = if !config.daemon.stages.contains(&m.stage) {
            Some("stage_not_served".to_owned())
        } else if !exists {
            Some("group_not_found".to_owned())
        } else {
            last_reads
                .iter()
                .find(|(name, _)| name == idp)
                .and_then(|(_, inactive)| {
                    inactive.iter().find(|i| {
                        i.idp_group == m.idp_group && i.stage == stage && i.group == group
                    })
                })
                .map(|i| i.reason.clone())
                .filter(|r| r != "group_not_found" && r != "stage_not_served")
        };
        docs.push(MappingDoc {
            idp: idp.to_owned(),
            idp_group: m.idp_group.clone(),
            stage: stage.to_owned(),
            group: group.to_owned(),
            status: if reason.is_some() {
                "inactive"
            } else {
                "active"
            },
            reason,
            warning,
        });
    }
    Ok(docs)
}
