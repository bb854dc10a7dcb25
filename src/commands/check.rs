//! `idpsync check [--connect]`.

use crate::config::{Config, IdpKind};
use crate::source::Source;

/// Prints what the configuration holds; with `connect`, reads every IdP (exit 1 if one fails).
pub async fn run(config: &Config, connect: bool) -> anyhow::Result<u8> {
    println!("Configuration {} is valid.", config.path.display());
    println!("  state: {}", config.daemon.state.display());
    let stages: Vec<&str> = config.daemon.stages.iter().map(|s| s.as_str()).collect();
    println!("  stages: {}", stages.join(", "));
    match config.store.remote() {
        None => println!("  store: embedded"),
        Some(remote) => {
            let served: Vec<&str> = remote.stages.iter().map(|s| s.as_str()).collect();
            println!(
                "  store: {} ({}), serving {}",
                config.store.kind(),
                config.store.tenant(),
                served.join(", ")
            );
            let mut elsewhere: Vec<&str> = config
                .mappings
                .iter()
                .filter(|m| !config.store.serves_remotely(&m.stage))
                .map(|m| m.stage.as_str())
                .collect();
            elsewhere.sort_unstable();
            elsewhere.dedup();
            for stage in elsewhere {
                println!(
                    "  WARNING: stage {stage} is mapped but the {} store does not serve it: its memberships stay in the embedded store only",
                    config.store.kind()
                );
            }
        }
    }
    println!(
        "  {} IdPs, {} mappings, {} declared groups, {} apps in the role catalogue",
        config.idps.len(),
        config.mappings.len(),
        config.groups.len(),
        config.apps.as_ref().map_or(0, |a| a.len())
    );
    for idp in &config.idps {
        if let Some(oidc) = &idp.oidc {
            let (batch, login) = (key_kind(&idp.user_key), key_kind(&oidc.user_claim));
            if let (Some(batch), Some(login)) = (batch, login)
                && batch != login
            {
                return Err(super::Usage(format!(
                    "idp {}: user_key {:?} gives a {batch} but [idp.oidc] user_claim {:?} gives a {login}; logins would not match batch reads",
                    idp.name, idp.user_key, oidc.user_claim
                ))
                .into());
            }
        }
    }
    // Mappings that name a former name of a renamed group still work; say so. The state is the
    // store's, not the configuration's: one that cannot be read here only skips this.
    let former = crate::state::State::open_read_only(&config.daemon.state)
        .and_then(|state| state.groups_and_former_names());
    match former {
        Ok((groups, former)) => {
            for renamed in crate::mappings::renamed(&config.mappings, &groups, &former) {
                println!("  WARNING: {}", renamed.warning());
            }
        }
        Err(e) => println!("  (renamed groups not checked: {e})"),
    }
    let mut failed = false;
    for idp in &config.idps {
        match &idp.kind {
            IdpKind::File { path } => print!("  idp {}: file {}", idp.name, path.display()),
            IdpKind::Ldap(ldap) => print!("  idp {}: ldap {}", idp.name, ldap.url),
            IdpKind::AzureAd(azure) => print!(
                "  idp {}: azure_ad tenant {} at {}",
                idp.name, azure.tenant_id, azure.graph_url
            ),
            IdpKind::Okta(okta) => print!("  idp {}: okta {}", idp.name, okta.org_url),
            IdpKind::Oidc { overage } => {
                let issuer = idp.oidc.as_ref().map_or("", |o| o.issuer.as_str());
                print!("  idp {}: oidc (login-only) issuer {issuer}", idp.name);
                if let Some(azure) = overage {
                    print!(", groups overages through Graph tenant {}", azure.tenant_id);
                }
            }
        }
        if !connect {
            println!();
            continue;
        }
        match Source::build(idp).check().await {
            Ok(found) => println!(": {found}"),
            Err(e) => {
                println!(": FAILED: {e}");
                failed = true;
            }
        }
    }
    if connect && !check_store(config).await {
        failed = true;
    }
    Ok(if failed { 1 } else { 0 })
}

/// Authenticates to the remote store and finds every remote group the mappings and declared
/// groups need; false when that fails or a group is missing (and would not be created).
async fn check_store(config: &Config) -> bool {
    let Some(remote) = config.store.remote() else {
        return true;
    };
    let store = match crate::store::Store::build(&config.store) {
        Ok(Some(store)) => store,
        Ok(None) => return true,
        Err(e) => {
            println!("  store {}: FAILED: {e}", config.store.kind());
            return false;
        }
    };
    let mut groups: Vec<(crate::model::Stage, String)> = config
        .mappings
        .iter()
        .map(|m| (m.stage.clone(), m.group.as_str().to_owned()))
        .chain(
            config
                .groups
                .iter()
                .map(|g| (g.stage.clone(), g.name.as_str().to_owned())),
        )
        .filter(|(stage, _)| config.store.serves_remotely(stage))
        .collect();
    groups.sort();
    groups.dedup_by(|a, b| {
        a.0 == b.0
            && crate::model::normalise_group_name(&a.1) == crate::model::normalise_group_name(&b.1)
    });
    match store.check(&groups).await {
        Ok(lines) => {
            let missing = lines.iter().any(|l| l.contains("NOT FOUND"));
            for line in &lines {
                println!("  store {}: {line}", config.store.kind());
            }
            if missing && remote.create_groups {
                println!(
                    "  store {}: missing groups are created at the next run (create_groups = true)",
                    config.store.kind()
                );
            }
            !missing || remote.create_groups
        }
        Err(e) => {
            println!("  store {}: FAILED: {e}", config.store.kind());
            false
        }
    }
}

/// What kind of identifier an attribute or claim holds, when we know it.
fn key_kind(attribute: &str) -> Option<&'static str> {
    match attribute {
        "email" | "mail" | "upn" | "userPrincipalName" | "preferred_username" | "login"
        | "profile.email" | "profile.login" => Some("e-mail or login name"),
        "id" | "sub" | "oid" | "objectGUID" | "entryUUID" => Some("immutable id"),
        "name" | "cn" => Some("display name"),
        _ => None,
    }
}
