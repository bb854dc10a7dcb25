//! `idpsync reconcile`.

use crate::cli::{Output, ReconcileArgs};
use crate::config::Config;
use crate::model::IdpName;
use crate::progress::ProgressFn;
use crate::sync::{RunOptions, SyncError, sync_once};

/// Runs one reconcile and prints its document; the exit status follows SPEC §3's precedence.
pub async fn run(
    config: &Config,
    args: &ReconcileArgs,
    progress: ProgressFn<'_>,
) -> anyhow::Result<u8> {
    let mut idps = Vec::new();
    for name in &args.idps {
        let idp = IdpName::parse(name).map_err(|_| SyncError::UnknownIdp(name.clone()))?;
        idps.push(idp);
    }
    let options = RunOptions {
        dry_run: args.dry_run,
        full: args.full,
        idps,
        allow_removals: args.allow_removals,
        allow_empty: args.allow_empty,
        ..RunOptions::default()
    };
    let report = sync_once(config, &options, progress).await?.report;
    match args.output {
        Output::Json => report.write_json(std::io::stdout().lock())?,
        Output::Text => report.write_text(std::io::stdout().lock())?,
    }
    Ok(report.exit_code())
}
