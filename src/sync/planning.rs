//! Turning the reads and the loaded state into the core's input, and planning: the interned world,
//! each IdP's mappings, read and current memberships, and the policy of this run.

use std::collections::BTreeSet;

use tracing::error;

use super::RunOptions;
use super::read::Read;
use super::world::{World, build_world, dense_index, lookup};
use crate::config::{Config, IdpConfig, MappingConfig};
use crate::model::{IdpName, Stage};
use crate::reconcile::{Held, IdpInput, IdpRead, Plan, Policy, Scope, UserIdx, reconcile};
use crate::state::Loaded;

/// Plans the run: builds the world of `loaded` and the read IdPs, and reconciles.
pub(super) fn plan_run(
    config: &Config,
    options: &RunOptions,
    reads: &[Read],
    loaded: &Loaded,
    scope: Scope,
    remote_missing: &BTreeSet<(Stage, String)>,
) -> (World, Plan) {
    let names: Vec<&IdpName> = reads.iter().map(|r| &r.name).collect();
    let mut world = build_world(config, loaded, options.dry_run);
    let user_maps: Vec<Vec<UserIdx>> = reads
        .iter()
        .map(|read| match &read.result {
            Ok(directory) => directory
                .users
                .iter()
                .map(|u| world.intern(&u.key))
                .collect(),
            Err(_) => Vec::new(),
        })
        .collect();
    // Store ids are small dense integers: index arrays beat hashing a million times.
    let group_of = dense_index(&world.group_ids);
    let user_of = dense_index(&world.user_ids);
    let mappings: Vec<Vec<&MappingConfig>> = names
        .iter()
        .map(|n| config.mappings.iter().filter(|m| &m.idp == *n).collect())
        .collect();
    let idp_configs: Vec<&IdpConfig> = names
        .iter()
        .map(|n| config.idp(n.as_str()).expect("selected"))
        .collect();
    let inputs: Vec<IdpInput<'_>> = reads
        .iter()
        .enumerate()
        .map(|(i, read)| IdpInput {
            name: read.name.clone(),
            mappings: &mappings[i],
            read: match &read.result {
                Ok(directory) => Ok(IdpRead {
                    directory,
                    user_map: &user_maps[i],
                    nested: idp_configs[i].nested,
                    max_depth: idp_configs[i].nested_max_depth,
                }),
                Err(e) => Err(e.clone()),
            },
            current: loaded.idps[i]
                .held
                .iter()
                .filter_map(|(g, u, cause)| {
                    Some(Held {
                        group: lookup(&group_of, *g)?,
                        user: lookup(&user_of, *u)?,
                        cause: loaded.causes[*cause as usize].clone(),
                    })
                })
                .collect(),
            baseline: &loaded.idps[i].baseline,
        })
        .collect();
    let policy = Policy {
        safety: config.safety.clone(),
        allow_removals: options.allow_removals,
        allow_empty: options.allow_empty,
        served_stages: config.daemon.stages.iter().cloned().collect(),
        remote_missing: remote_missing.clone(),
        command: format!("idpsync --config {} reconcile", shell_quote(&config.path)),
        scope,
    };
    let plan = reconcile(&world.universe, &inputs, &policy);
    tracing::debug!(
        adds = plan.adds.len(),
        removes = plan.removes.len(),
        "Planned."
    );
    for refusal in &plan.refused {
        error!(idp = %refusal.idp, guard = refusal.guard.as_str(), removals = refusal.removals, limit = refusal.limit,
            allow = %refusal.allow, "Refused: {}. Nothing of this IdP was applied.", refusal.detail);
    }
    (world, plan)
}

/// Quotes a path for the `allow` command when it holds shell metacharacters.
fn shell_quote(path: &std::path::Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
