//! Where each mapping's target group resolves in the store: by its name, or — when the group was
//! renamed — through a former name, as in ODC a mapping follows its group through a rename.
//!
//! A mapping that resolves through a former name stays active, and is reported as a warning (in
//! `check`, `status` and the run output) asking to update the configuration. This module does no
//! I/O: the run, `check` and `status` hand it the groups and former names they loaded.

use std::collections::BTreeMap;

use crate::config::MappingConfig;
use crate::state::{FormerName, LoadedGroup};

/// A mapping that names a former name of a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RenamedMapping {
    /// The mapping's IdP.
    pub idp: String,
    /// The mapping's IdP group value.
    pub idp_group: String,
    /// The mapping's stage.
    pub stage: String,
    /// The group name the mapping gives (a former name).
    pub group: String,
    /// The group's name now.
    pub now: String,
}

impl RenamedMapping {
    /// The warning, in words.
    pub fn warning(&self) -> String {
        format!(
            "mapping {} {:?} -> {}/{} names a former name of the group now called {:?}; it follows the group, update the configuration",
            self.idp, self.idp_group, self.stage, self.group, self.now
        )
    }
}

/// The mappings among `mappings` whose group is no current group of its stage but a former name
/// of one, sorted by (idp, stage, group, idp_group).
pub fn renamed<'a>(
    mappings: impl IntoIterator<Item = &'a MappingConfig>,
    groups: &[LoadedGroup],
    former: &[FormerName],
) -> Vec<RenamedMapping> {
    let current: std::collections::BTreeSet<(&str, &str)> = groups
        .iter()
        .map(|g| (g.stage.as_str(), g.norm.as_str()))
        .collect();
    let names: BTreeMap<i64, &str> = groups.iter().map(|g| (g.id, g.name.as_str())).collect();
    let formerly: BTreeMap<(&str, &str), &str> = former
        .iter()
        .filter_map(|f| {
            names
                .get(&f.group_id)
                .map(|now| ((f.stage.as_str(), f.norm.as_str()), *now))
        })
        .collect();
    let mut out: Vec<RenamedMapping> = mappings
        .into_iter()
        .filter_map(|m| {
            let key = (m.stage.as_str(), m.group.norm());
            if current.contains(&key) {
                return None;
            }
            formerly.get(&key).map(|now| RenamedMapping {
                idp: m.idp.to_string(),
                idp_group: m.idp_group.clone(),
                stage: m.stage.to_string(),
                group: m.group.as_str().to_owned(),
                now: (*now).to_owned(),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.idp, &a.stage, &a.group, &a.idp_group).cmp(&(&b.idp, &b.stage, &b.group, &b.idp_group))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupName, IdpName, Stage};

    fn group(id: i64, stage: &str, name: &str) -> LoadedGroup {
        LoadedGroup {
            id,
            stage: stage.into(),
            name: name.into(),
            norm: crate::model::normalise_group_name(name),
        }
    }

    fn mapping(group: &str) -> MappingConfig {
        MappingConfig {
            idp: IdpName::parse("corp").unwrap(),
            idp_group: "Ops".into(),
            group: GroupName::parse(group).unwrap(),
            stage: Stage::parse("production").unwrap(),
            line: None,
        }
    }

    fn former_name(name: &str, group_id: i64) -> FormerName {
        FormerName {
            stage: "production".into(),
            norm: crate::model::normalise_group_name(name),
            name: name.into(),
            group_id,
        }
    }

    #[test]
    fn a_former_name_resolves_to_the_renamed_group_and_a_current_name_wins() {
        let groups = [group(1, "production", "Ops-Team")];
        let former = [former_name("Operators", 1)];
        let found = renamed(
            &[mapping("operators"), mapping("Ops-Team")],
            &groups,
            &former,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].group.as_str(), found[0].now.as_str()),
            ("operators", "Ops-Team")
        );
        assert!(found[0].warning().contains("update the configuration"));
        // A new group that took the former name: the mapping names it, no warning.
        let groups = [
            group(1, "production", "Ops-Team"),
            group(2, "production", "Operators"),
        ];
        assert!(renamed(&[mapping("Operators")], &groups, &former).is_empty());
        // Another stage's former name does not count.
        let elsewhere = [FormerName {
            stage: "qa".into(),
            ..former_name("Operators", 1)
        }];
        assert!(renamed(&[mapping("Operators")], &groups[..1], &elsewhere).is_empty());
    }
}
