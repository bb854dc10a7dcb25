//! `idpsync plan --out PLAN.json` and `idpsync apply PLAN.json`.

use std::path::Path;

use crate::cli::{Output, PlanArgs};
use crate::config::Config;
use crate::model::IdpName;
use crate::plan::SavedPlan;
use crate::progress::ProgressFn;
use crate::state::lock;
use crate::sync::{RunOptions, SyncError, sync_once, unix_user};

/// Plans with the guards run now and writes the plan; exits as the dry run would.
pub async fn plan(
    config: &Config,
    args: &PlanArgs,
    progress: ProgressFn<'_>,
) -> anyhow::Result<u8> {
    let mut idps = Vec::new();
    for name in &args.idps {
        idps.push(IdpName::parse(name).map_err(|_| SyncError::UnknownIdp(name.clone()))?);
    }
    let options = RunOptions {
        dry_run: true,
        full: true,
        idps,
        allow_removals: args.allow_removals,
        allow_empty: args.allow_empty,
        ..RunOptions::default()
    };
    let output = sync_once(config, &options, progress).await?;
    let saved = SavedPlan::new(
        output,
        config.fingerprint.clone(),
        args.allow_removals,
        args.allow_empty,
    );
    saved
        .write(&args.out)
        .map_err(|e| super::Usage(format!("cannot write {}: {e}", args.out.display())))?;
    match args.output {
        Output::Json => saved.plan.write_json(std::io::stdout().lock())?,
        Output::Text => {
            saved.plan.write_text(std::io::stdout().lock())?;
            println!(
                "Plan written to {}; apply it with: idpsync --config {} apply {}",
                args.out.display(),
                config.path.display(),
                args.out.display()
            );
        }
    }
    Ok(saved.plan.exit_code())
}

/// Applies a saved plan exactly, holding the run locks of its IdPs.
pub async fn apply(config: &Config, path: &Path) -> anyhow::Result<u8> {
    let saved = SavedPlan::read(path)?;
    let holder = format!(
        "pid {} apply of plan {}",
        std::process::id(),
        saved.plan.run_id
    );
    let mut locks = Vec::new();
    for idp in saved.idps()? {
        locks.push(lock::acquire(
            &config.daemon.state,
            &idp,
            config.daemon.run_wait,
            &holder,
        )?);
    }
    let actor = format!("cli:{}", unix_user());
    // A remote store's stages are journalled from this write on.
    crate::state::State::open(&config.daemon.state)?
        .serve_remotely(&config.store.tenant(), config.store.remote_stages())?;
    let applied = saved.apply(config, &actor)?;
    drop(locks);
    let store = crate::sync::RemoteRun::send(config, &actor).await;
    let dropped = if applied.dropped.is_empty() {
        String::new()
    } else {
        format!(", {} dropped at commit", applied.dropped.len())
    };
    println!(
        "Applied plan {}: {} adds, {} removes{dropped}.",
        saved.plan.run_id, applied.adds, applied.removes
    );
    for refusal in &saved.plan.refused {
        println!(
            "Not applied: idp {} was refused by the {} guard when the plan was made. To allow: {}",
            refusal.idp, refusal.guard, refusal.allow
        );
    }
    for failed in &saved.plan.failed_idps {
        println!(
            "Not applied: idp {} could not be read when the plan was made: {}",
            failed.idp, failed.error
        );
    }
    if let Some(store) = &store {
        println!(
            "Store {}: {} changes sent in {} requests, {} rejected (see `idpsync journal list`).",
            store.kind, store.pushed, store.requests, store.failed
        );
        if let Some(error) = &store.error {
            println!(
                "FAILED store {}: {error}; the changes wait in the journal for the next run.",
                store.kind
            );
            return Ok(if saved.plan.exit_code() == 3 { 3 } else { 1 });
        }
    }
    // The same precedence as the run that made the plan: 3 if anything was refused, 1 if anything failed.
    Ok(saved.plan.exit_code())
}
