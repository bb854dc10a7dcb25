//! Reading each section of the configuration file into typed values, checking the model's rules
//! (names, stages, roles, the catalogue, unique groups and mappings) as it goes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use toml_edit::TableLike;

use super::reader::{ConfigError, Doc, Located, Origin, Section, entries};
use super::secret;
use super::{
    DaemonConfig, DeclaredGroup, IdpConfig, IdpKind, MappingConfig, OidcConfig, SafetyConfig,
};
use crate::model::{GroupName, IdpName, Role, Stage};

pub(super) fn section<'a>(
    doc: &'a Doc,
    top: &mut Section<'a>,
    key: &str,
) -> Result<Section<'a>, ConfigError> {
    Ok(top
        .table(key)?
        .map(|s| s.with_env(key))
        .unwrap_or_else(|| Section::new(doc, None, key.to_owned(), Some(key.to_owned()), None)))
}

impl<'a> Section<'a> {
    fn with_env(self, prefix: &str) -> Self {
        self.rebase(prefix.to_owned(), Some(prefix.to_owned()))
    }
}

pub(super) fn read_daemon(
    s: &mut Section<'_>,
    dir: &Path,
    env: &[(String, String)],
) -> Result<DaemonConfig, ConfigError> {
    let state = match s.string("state")? {
        Some(p) => dir.join(p.value),
        None => match env.iter().find(|(k, _)| k == "STATE_DIRECTORY") {
            // systemd may pass several folders separated by ':'; the first is ours.
            Some((_, v)) => Path::new(v.split(':').next().unwrap_or(v)).join("idpsync.db"),
            None => dir.join("idpsync.db"),
        },
    };
    let schedule = match s.string("schedule")? {
        Some(text) => cron::Schedule::from_str(&text.value).map_err(|e| {
            s.error_from(
                "schedule",
                &text.origin,
                format!(
                    "invalid cron expression {:?} (sec min hour day month weekday): {e}",
                    text.value
                ),
            )
        })?,
        None => cron::Schedule::from_str("0 */5 * * * *").expect("the default schedule parses"),
    };
    let listen = address(s, "listen", "127.0.0.1:8410")?;
    let admin_listen = address(s, "admin_listen", "127.0.0.1:8411")?;
    let stages = match s.strings("stages")? {
        None => ["development", "qa", "production"]
            .iter()
            .map(|n| Stage::parse(n).expect("default stages are valid"))
            .collect(),
        Some(list) => {
            let mut stages: Vec<Stage> = Vec::new();
            for name in &list.value {
                let stage =
                    Stage::parse(name).map_err(|e| s.error_from("stages", &list.origin, e.0))?;
                if stages.contains(&stage) {
                    return Err(s.error_from(
                        "stages",
                        &list.origin,
                        format!("stage {name:?} is listed twice"),
                    ));
                }
                stages.push(stage);
            }
            if stages.is_empty() {
                return Err(s.error_from("stages", &list.origin, "at least one stage is needed"));
            }
            stages
        }
    };
    let admin_token = secret::read(s, "admin_token", dir, env)?;
    let app_token = secret::read(s, "app_token", dir, env)?;
    let webhook_token = secret::read(s, "webhook_token", dir, env)?;
    let run_wait = s
        .duration("run_wait")?
        .map_or(Duration::from_secs(30), |d| d.value);
    let jitter = s.duration("jitter")?.map_or(Duration::ZERO, |d| d.value);
    Ok(DaemonConfig {
        state,
        schedule,
        listen,
        admin_listen,
        stages,
        admin_token,
        app_token,
        webhook_token,
        run_wait,
        jitter,
    })
}

pub(super) fn address(
    s: &mut Section<'_>,
    key: &str,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    match s.string(key)? {
        None => Ok(default.parse().expect("default addresses parse")),
        Some(text) => text.value.parse().map_err(|_| {
            s.error_from(
                key,
                &text.origin,
                format!("{:?} is not an address such as 127.0.0.1:8410", text.value),
            )
        }),
    }
}

pub(super) fn read_safety(s: &mut Section<'_>) -> Result<SafetyConfig, ConfigError> {
    let defaults = SafetyConfig::default();
    let max_removals = s
        .unsigned("max_removals")?
        .map_or(defaults.max_removals, |v| v.value);
    let max_removal_ratio = match s.float("max_removal_ratio")? {
        None => defaults.max_removal_ratio,
        Some(v) if (0.0..=1.0).contains(&v.value) => v.value,
        Some(v) => {
            return Err(s.error_from("max_removal_ratio", &v.origin, "must be between 0 and 1"));
        }
    };
    let min_removals_for_ratio = s
        .unsigned("min_removals_for_ratio")?
        .map_or(defaults.min_removals_for_ratio, |v| v.value);
    Ok(SafetyConfig {
        max_removals,
        max_removal_ratio,
        min_removals_for_ratio,
    })
}

pub(super) fn read_idp(
    doc: &Doc,
    table: &dyn TableLike,
    offset: Option<usize>,
    index: usize,
    dir: &Path,
    env: &[(String, String)],
) -> Result<IdpConfig, ConfigError> {
    let mut s = Section::new(doc, Some(table), format!("idp[{index}]"), None, offset);
    let name_value = s
        .string("name")?
        .ok_or_else(|| s.entry_error("every [[idp]] needs a name"))?;
    let name = IdpName::parse(&name_value.value)
        .map_err(|e| s.error_from("name", &name_value.origin, e.0))?;
    let mut s = s.rebase(format!("idp[{name}]"), Some(format!("idp.{name}")));
    let kind_value = s.string("kind")?.ok_or_else(|| {
        s.entry_error("every [[idp]] needs a kind (file, ldap, azure_ad, okta, oidc)")
    })?;
    let kind = match kind_value.value.as_str() {
        "file" => {
            let path = s
                .string("path")?
                .ok_or_else(|| s.entry_error("a file IdP needs path = \"directory.json\""))?;
            IdpKind::File {
                path: dir.join(path.value),
            }
        }
        "ldap" => IdpKind::Ldap(Box::new(super::ldap::read(&mut s, dir, env)?)),
        "azure_ad" => IdpKind::AzureAd(Box::new(super::cloud::read_azure_ad(&mut s, dir, env)?)),
        "okta" => IdpKind::Okta(Box::new(super::cloud::read_okta(&mut s, dir, env)?)),
        "oidc" => IdpKind::Oidc {
            overage: super::cloud::read_overage_credentials(&mut s, dir, env)?,
        },
        other => {
            return Err(s.error_from(
                "kind",
                &kind_value.origin,
                format!("unknown IdP kind {other:?} (expected file, ldap, azure_ad, okta or oidc)"),
            ));
        }
    };
    let nested = s.boolean("nested")?.is_some_and(|v| v.value);
    if let IdpKind::Ldap(ldap) = &kind
        && ldap.in_chain
        && !nested
    {
        return Err(s.error(
            "in_chain",
            "in_chain expands nested groups on the server; it needs nested = true",
        ));
    }
    let nested_max_depth = match s.unsigned("nested_max_depth")? {
        None => 32,
        Some(v) if (1..=1000).contains(&v.value) => v.value as usize,
        Some(v) => {
            return Err(s.error_from("nested_max_depth", &v.origin, "must be between 1 and 1000"));
        }
    };
    let user_key = match (&kind, s.string("user_key")?) {
        (IdpKind::Ldap(_), None) => "mail".to_owned(),
        (IdpKind::Ldap(_), Some(v)) if v.value.trim().is_empty() => {
            return Err(s.error_from("user_key", &v.origin, "must name an attribute"));
        }
        (IdpKind::Ldap(_), Some(v)) => v.value.trim().to_owned(),
        (IdpKind::File { .. }, None) => "email".to_owned(),
        (IdpKind::File { .. }, Some(v)) if ["email", "id", "name"].contains(&v.value.as_str()) => {
            v.value
        }
        (IdpKind::File { .. }, Some(v)) => {
            return Err(s.error_from(
                "user_key",
                &v.origin,
                format!(
                    "a file IdP takes the user key from email, id or name, not {:?}",
                    v.value
                ),
            ));
        }
        (IdpKind::AzureAd(_), v) => super::cloud::azure_user_key(&s, v)?,
        (IdpKind::Okta(_), v) => super::cloud::okta_user_key(&s, v)?,
        (IdpKind::Oidc { .. }, None) => String::new(),
        (IdpKind::Oidc { .. }, Some(v)) => {
            return Err(s.error_from(
                "user_key",
                &v.origin,
                "a login-only IdP (kind = \"oidc\") takes the user key from [idp.oidc] user_claim",
            ));
        }
    };
    let oidc = match s.table("oidc")? {
        None => None,
        Some(mut o) => {
            let config = read_oidc(&mut o)?;
            o.finish()?;
            Some(config)
        }
    };
    if matches!(kind, IdpKind::Oidc { .. }) && oidc.is_none() {
        return Err(s.entry_error(
            "a login-only IdP (kind = \"oidc\") needs [idp.oidc] with issuer and client_id",
        ));
    }
    let user_key = match (&kind, &oidc) {
        (IdpKind::Oidc { .. }, Some(oidc)) => oidc.user_claim.clone(),
        _ => user_key,
    };
    let line = s.line();
    s.finish()?;
    Ok(IdpConfig {
        name,
        kind,
        nested,
        nested_max_depth,
        user_key,
        oidc,
        line,
    })
}

pub(super) fn read_oidc(s: &mut Section<'_>) -> Result<OidcConfig, ConfigError> {
    let required = |s: &mut Section<'_>, key: &str| -> Result<String, ConfigError> {
        match s.string(key)? {
            Some(v) if !v.value.trim().is_empty() => Ok(v.value),
            Some(v) => Err(s.error_from(key, &v.origin, "must not be empty")),
            None => Err(s.entry_error(format!("[idp.oidc] needs {key}"))),
        }
    };
    let issuer = required(s, "issuer")?;
    if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
        return Err(s.error(
            "issuer",
            "must be an https:// URL (http:// only on a loopback address)",
        ));
    }
    let client_id = required(s, "client_id")?;
    let groups_claim = s
        .string("groups_claim")?
        .map_or_else(|| "groups".to_owned(), |v| v.value);
    let claim_delimiter = match s.string("claim_delimiter")? {
        None => None,
        Some(v) if !v.value.is_empty() && v.value.chars().count() <= 3 => Some(v.value),
        Some(v) => {
            return Err(s.error_from("claim_delimiter", &v.origin, "must be 1 to 3 characters"));
        }
    };
    let user_claim = s
        .string("user_claim")?
        .map_or_else(|| "email".to_owned(), |v| v.value);
    let max_token_age = s
        .duration("max_token_age")?
        .map_or(Duration::from_secs(600), |v| v.value);
    let auto_create = s.boolean("auto_create")?.is_none_or(|v| v.value);
    Ok(OidcConfig {
        issuer,
        client_id,
        groups_claim,
        claim_delimiter,
        user_claim,
        max_token_age,
        auto_create,
    })
}

pub(super) fn check_idps(doc: &Doc, idps: &[IdpConfig]) -> Result<(), ConfigError> {
    let mut names = HashMap::new();
    let mut audiences: HashMap<(&str, &str), &IdpName> = HashMap::new();
    for idp in idps {
        let at = idp.line.map(|l| l.to_string()).unwrap_or_default();
        if let Some(first) = names.insert(idp.name.as_str(), at.clone()) {
            return Err(located(
                doc,
                idp.line,
                &format!("idp[{}].name", idp.name),
                format!(
                    "IdP name {:?} is used twice (first at line {first})",
                    idp.name.as_str()
                ),
            ));
        }
        if let Some(oidc) = &idp.oidc {
            let key = (oidc.issuer.trim_end_matches('/'), oidc.client_id.as_str());
            if let Some(other) = audiences.insert(key, &idp.name) {
                return Err(located(
                    doc,
                    idp.line,
                    &format!("idp[{}].oidc", idp.name),
                    format!(
                        "IdP {other} already uses issuer {:?} with client_id {:?}; two IdPs may not share (issuer, audience)",
                        oidc.issuer, oidc.client_id
                    ),
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn located(doc: &Doc, line: Option<usize>, key: &str, message: String) -> ConfigError {
    ConfigError {
        file: doc.file().to_owned(),
        origin: Origin::File(line),
        key: key.to_owned(),
        message,
    }
}

pub(super) fn read_apps(
    doc: &Doc,
    root: &dyn TableLike,
) -> Result<Option<BTreeMap<String, BTreeSet<String>>>, ConfigError> {
    let list = entries(doc, root, "app")?;
    if list.is_empty() {
        return Ok(None);
    }
    let mut apps = BTreeMap::new();
    for (index, (table, offset)) in list.into_iter().enumerate() {
        let mut s = Section::new(doc, Some(table), format!("app[{index}]"), None, offset);
        let name = s
            .string("name")?
            .ok_or_else(|| s.entry_error("every [[app]] needs a name"))?;
        if name.value.trim().is_empty() || name.value.contains('/') {
            return Err(s.error_from(
                "name",
                &name.origin,
                "an app name must be non-empty and contain no '/'",
            ));
        }
        let roles = s.strings("roles")?.map(|v| v.value).unwrap_or_default();
        let mut set = BTreeSet::new();
        for role in roles {
            if role.trim().is_empty() || role.contains('/') {
                return Err(s.error(
                    "roles",
                    format!("role {role:?} must be non-empty and contain no '/'"),
                ));
            }
            set.insert(role);
        }
        s.finish()?;
        if apps.insert(name.value.clone(), set).is_some() {
            return Err(doc.error_at(
                offset,
                &format!("app[{index}].name"),
                format!("app {:?} is listed twice", name.value),
            ));
        }
    }
    Ok(Some(apps))
}

pub(super) fn check_role_in(
    apps: Option<&BTreeMap<String, BTreeSet<String>>>,
    role: &Role,
) -> Result<(), String> {
    let Some(apps) = apps else { return Ok(()) };
    match apps.get(role.app()) {
        None => Err(format!(
            "role {role}: app {:?} is not in the [[app]] catalogue",
            role.app()
        )),
        Some(roles) if !roles.contains(role.role()) => Err(format!(
            "role {role}: app {:?} has no role {:?} in the [[app]] catalogue",
            role.app(),
            role.role()
        )),
        Some(_) => Ok(()),
    }
}

pub(super) fn stage_of(
    s: &Section<'_>,
    value: Located<String>,
    stages: &[Stage],
) -> Result<Stage, ConfigError> {
    let stage =
        Stage::parse(&value.value).map_err(|e| s.error_from("stage", &value.origin, e.0))?;
    if !stages.contains(&stage) {
        let known: Vec<&str> = stages.iter().map(Stage::as_str).collect();
        return Err(s.error_from(
            "stage",
            &value.origin,
            format!(
                "stage {stage} is not in daemon.stages ({})",
                known.join(", ")
            ),
        ));
    }
    Ok(stage)
}

pub(super) fn read_groups(
    doc: &Doc,
    root: &dyn TableLike,
    stages: &[Stage],
    apps: Option<&BTreeMap<String, BTreeSet<String>>>,
) -> Result<Vec<DeclaredGroup>, ConfigError> {
    let mut groups: Vec<DeclaredGroup> = Vec::new();
    let mut seen: HashMap<(Stage, String), usize> = HashMap::new();
    for (index, (table, offset)) in entries(doc, root, "group")?.into_iter().enumerate() {
        let mut s = Section::new(doc, Some(table), format!("group[{index}]"), None, offset);
        let name_value = s
            .string("name")?
            .ok_or_else(|| s.entry_error("every [[group]] needs a name"))?;
        let name = GroupName::parse(&name_value.value)
            .map_err(|e| s.error_from("name", &name_value.origin, e.0))?;
        let stage_value = s
            .string("stage")?
            .ok_or_else(|| s.entry_error("every [[group]] needs a stage"))?;
        let stage = stage_of(&s, stage_value, stages)?;
        let description = s
            .string("description")?
            .map(|v| v.value)
            .unwrap_or_default();
        let mut roles = BTreeSet::new();
        if let Some(list) = s.strings("roles")? {
            for raw in &list.value {
                let role =
                    Role::parse(raw).map_err(|e| s.error_from("roles", &list.origin, e.0))?;
                check_role_in(apps, &role).map_err(|e| s.error_from("roles", &list.origin, e))?;
                roles.insert(role);
            }
        }
        let line = s.line();
        s.finish()?;
        let key = (stage.clone(), name.norm().to_owned());
        if let Some(&first) = seen.get(&key) {
            let first: &DeclaredGroup = &groups[first];
            return Err(doc.error_at(
                offset,
                &format!("group[{index}].name"),
                format!(
                    "group {:?} is declared twice in stage {stage} (first at line {})",
                    name.as_str(),
                    first.line.unwrap_or(0)
                ),
            ));
        }
        seen.insert(key, groups.len());
        groups.push(DeclaredGroup {
            name,
            stage,
            description,
            roles,
            line,
        });
    }
    Ok(groups)
}

pub(super) fn read_mappings(
    doc: &Doc,
    root: &dyn TableLike,
    stages: &[Stage],
    idps: &[IdpConfig],
) -> Result<Vec<MappingConfig>, ConfigError> {
    let mut mappings: Vec<MappingConfig> = Vec::new();
    let mut seen: HashMap<(IdpName, String, Stage, String), usize> = HashMap::new();
    for (index, (table, offset)) in entries(doc, root, "mapping")?.into_iter().enumerate() {
        let mut s = Section::new(doc, Some(table), format!("mapping[{index}]"), None, offset);
        let mut required = |key: &str| -> Result<Located<String>, ConfigError> {
            s.string(key)?
                .ok_or_else(|| s.entry_error(format!("every [[mapping]] needs {key}")))
        };
        let idp_value = required("idp")?;
        let idp_group = required("idp_group")?;
        let group_value = required("group")?;
        let stage_value = required("stage")?;
        let idp = match idps.iter().find(|i| i.name.as_str() == idp_value.value) {
            Some(idp) => idp.name.clone(),
            None => {
                let known: Vec<&str> = idps.iter().map(|i| i.name.as_str()).collect();
                return Err(s.error_from(
                    "idp",
                    &idp_value.origin,
                    format!(
                        "no [[idp]] is named {:?} (known: {})",
                        idp_value.value,
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        };
        if idp_group.value.is_empty() {
            return Err(s.error_from("idp_group", &idp_group.origin, "must not be empty"));
        }
        let group = GroupName::parse(&group_value.value)
            .map_err(|e| s.error_from("group", &group_value.origin, e.0))?;
        let stage = stage_of(&s, stage_value, stages)?;
        let line = s.line();
        s.finish()?;
        let mapping = MappingConfig {
            idp,
            idp_group: idp_group.value,
            group,
            stage,
            line,
        };
        let key = (
            mapping.idp.clone(),
            mapping.idp_group.clone(),
            mapping.stage.clone(),
            mapping.group.norm().to_owned(),
        );
        if let Some(&first) = seen.get(&key) {
            let first: &MappingConfig = &mappings[first];
            return Err(doc.error_at(
                offset,
                &format!("mapping[{index}]"),
                format!(
                    "the same mapping is given twice (first at line {})",
                    first.line.unwrap_or(0)
                ),
            ));
        }
        seen.insert(key, mappings.len());
        mappings.push(mapping);
    }
    Ok(mappings)
}
