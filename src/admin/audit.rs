//! The audit filters as an administrator gives them (`idpsync audit --since --user --group
//! --stage`, `GET /v1/admin/audit?since=&user=&group=&stage=`), checked alike.

use super::{AdminError, stage_of};
use crate::config::Config;
use crate::model::{GroupName, UserKey};
use crate::state::AuditFilter;

/// The filters in words; each optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery<'a> {
    /// Records at or after this RFC 3339 time.
    pub since: Option<&'a str>,
    /// Records about this user.
    pub user: Option<&'a str>,
    /// Records about this group (with `stage`).
    pub group: Option<&'a str>,
    /// Records of this stage (with `group`: of that group).
    pub stage: Option<&'a str>,
}

/// The checked filter.
pub fn audit_filter(config: &Config, query: &AuditQuery<'_>) -> Result<AuditFilter, AdminError> {
    let since = query
        .since
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.timestamp())
                .map_err(|e| {
                    AdminError::Invalid(format!(
                        "since {s:?} is not an RFC 3339 time such as 2026-11-28T00:00:00Z: {e}"
                    ))
                })
        })
        .transpose()?;
    let user = query
        .user
        .map(|k| UserKey::parse(k).map_err(|e| AdminError::Invalid(format!("user {k:?}: {}", e.0))))
        .transpose()?;
    let stage = query.stage.map(|s| stage_of(config, s)).transpose()?;
    let group = match (query.group, &stage) {
        (Some(name), Some(stage)) => Some((
            stage.clone(),
            GroupName::parse(name)
                .map_err(|e| AdminError::Invalid(e.0))?
                .norm()
                .to_owned(),
        )),
        (Some(_), None) => {
            return Err(AdminError::Invalid(
                "a group filter needs its stage too (group names are unique per stage)".into(),
            ));
        }
        (None, _) => None,
    };
    Ok(AuditFilter {
        since,
        user,
        group,
        stage,
    })
}
