//! `idpsync status`, `audit`, `journal`, `export` and `backup`: operating a sync you can trust.

use std::path::Path;

use serde::Serialize;

use super::Usage;
use crate::cli::{AuditArgs, JournalCommand, Output};
use crate::config::Config;
use crate::model::IdpName;
use crate::source::Source;
use crate::state::{State, rfc3339};
use crate::sync::unix_user;

/// The `status --output json` document of SPEC §3, field for field.
#[derive(Serialize)]
struct StatusDoc {
    idps: Vec<IdpStatus>,
    journal: JournalDepth,
}

#[derive(Serialize)]
struct IdpStatus {
    idp: String,
    last_run: Option<LastRun>,
    /// The IdP's unresolved refusal, whatever its later runs did.
    refusal: Option<Refusal>,
    next_run: Option<String>,
    /// Mappings of the IdP that name a former group name (text only).
    #[serde(skip)]
    renamed: Vec<crate::mappings::RenamedMapping>,
}

#[derive(Serialize)]
struct LastRun {
    run_id: String,
    started: String,
    finished: Option<String>,
    outcome: String,
    error_kind: Option<String>,
    error: Option<String>,
    adds: u64,
    removes: u64,
    skipped_users: Option<u64>,
}

#[derive(Serialize)]
struct Refusal {
    guard: String,
    detail: String,
    allow: String,
}

#[derive(Serialize)]
struct JournalDepth {
    pending: u64,
    failed: u64,
}

/// Prints per-IdP status and the journal depth.
pub fn status(config: &Config, output: Output) -> anyhow::Result<u8> {
    let state = State::open_read_only(&config.daemon.state)?;
    let next_run = config
        .daemon
        .schedule
        .upcoming(chrono::Utc)
        .next()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let (groups, former) = state.groups_and_former_names()?;
    let mut idps = Vec::new();
    for idp in &config.idps {
        let last = state.last_run(&idp.name)?;
        let refusal = state.pending_refusal(&idp.name)?.map(|r| Refusal {
            guard: r.guard,
            detail: r.detail,
            allow: r.allow,
        });
        idps.push(IdpStatus {
            idp: idp.name.to_string(),
            last_run: last.map(|r| LastRun {
                error: matches!(r.outcome.as_str(), "failed" | "interrupted")
                    .then(|| r.detail.clone().unwrap_or_default()),
                error_kind: r.error_kind.clone(),
                run_id: r.run_id,
                started: rfc3339(r.started_at),
                finished: r.finished_at.map(rfc3339),
                outcome: r.outcome,
                adds: r.adds,
                removes: r.removes,
                skipped_users: r.skipped_users,
            }),
            refusal,
            next_run: next_run.clone(),
            renamed: crate::mappings::renamed(
                config.mappings.iter().filter(|m| m.idp == idp.name),
                &groups,
                &former,
            ),
        });
    }
    let (pending, failed) = state.journal_depth()?;
    let doc = StatusDoc {
        idps,
        journal: JournalDepth { pending, failed },
    };
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
        Output::Text => print_status(&doc),
    }
    Ok(0)
}

fn print_status(doc: &StatusDoc) {
    for idp in &doc.idps {
        match &idp.last_run {
            None => println!("{}: never run", idp.idp),
            Some(r) => {
                let kind = r
                    .error_kind
                    .as_ref()
                    .map(|k| format!(" ({k})"))
                    .unwrap_or_default();
                println!(
                    "{}: last run {} at {}: {}{kind} ({} adds, {} removes){}",
                    idp.idp,
                    r.run_id,
                    r.started,
                    r.outcome,
                    r.adds,
                    r.removes,
                    r.error
                        .as_ref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                );
                if let Some(skipped) = r.skipped_users.filter(|&n| n > 0) {
                    println!("  {skipped} users skipped at the last read (no user key)");
                }
            }
        }
        if let Some(refusal) = &idp.refusal {
            println!(
                "  REFUSED by the {} guard: {}\n  To allow: {}",
                refusal.guard, refusal.detail, refusal.allow
            );
        }
        for renamed in &idp.renamed {
            println!("  WARNING: {}", renamed.warning());
        }
        if let Some(next) = &idp.next_run {
            println!("  next scheduled run (idpsync run): {next}");
        }
    }
    println!(
        "Journal: {} pending, {} failed",
        doc.journal.pending, doc.journal.failed
    );
}

/// Prints audit records matching the filters.
pub fn audit(config: &Config, args: &AuditArgs) -> anyhow::Result<u8> {
    let filter = crate::admin::audit_filter(
        config,
        &crate::admin::AuditQuery {
            since: args.since.as_deref(),
            user: args.user.as_deref(),
            group: args.group.as_deref(),
            stage: args.stage.as_deref(),
        },
    )?;
    let state = State::open_read_only(&config.daemon.state)?;
    let records = state.audit(&filter)?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&records)?),
        Output::Text => {
            if records.is_empty() {
                println!("No audit records.");
            }
            for r in &records {
                let mut line = format!("{} {} {}", r.time, r.actor, r.op);
                if let (Some(stage), Some(group)) = (&r.stage, &r.group) {
                    line.push_str(&format!(" {stage}/{group}"));
                }
                for part in [&r.user, &r.provenance].into_iter().flatten() {
                    line.push_str(&format!(" {part}"));
                }
                if let Some(cause) = &r.cause {
                    line.push_str(&format!(" (via {cause:?})"));
                }
                if let Some(detail) = r.detail.as_ref().filter(|d| !d.is_empty()) {
                    line.push_str(&format!(" — {detail}"));
                }
                println!("{line}");
            }
        }
    }
    Ok(0)
}

/// Lists, retries or drops failed journal entries.
pub fn journal(config: &Config, command: &JournalCommand) -> anyhow::Result<u8> {
    match command {
        JournalCommand::List { output } => {
            let state = State::open_read_only(&config.daemon.state)?;
            let entries = state.journal_failed()?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
                Output::Text => {
                    if entries.is_empty() {
                        println!("No failed journal entries.");
                    }
                    for e in &entries {
                        println!(
                            "{} {} {}/{} {} {} (run {}, {} attempts): {}",
                            e.id,
                            e.op,
                            e.stage.as_deref().unwrap_or("?"),
                            e.group.as_deref().unwrap_or("?"),
                            e.user.as_deref().unwrap_or("?"),
                            e.provenance.as_deref().unwrap_or("?"),
                            e.run_id,
                            e.attempts,
                            e.error.as_deref().unwrap_or("")
                        );
                    }
                }
            }
        }
        JournalCommand::Retry { id } | JournalCommand::Drop { id } => {
            let retry = matches!(command, JournalCommand::Retry { .. });
            let mut state = State::open(&config.daemon.state)?;
            state.journal_resolve(*id, retry, &format!("cli:{}", unix_user()))?;
            println!(
                "Journal entry {id} {}.",
                if retry {
                    "queued for the next run"
                } else {
                    "dropped"
                }
            );
        }
    }
    Ok(0)
}

/// Reads one IdP now and prints its directory export.
pub async fn export(config: &Config, idp: &str) -> anyhow::Result<u8> {
    let name =
        IdpName::parse(idp).map_err(|_| crate::sync::SyncError::UnknownIdp(idp.to_owned()))?;
    let idp = config
        .idp(name.as_str())
        .ok_or_else(|| crate::sync::SyncError::UnknownIdp(idp.to_owned()))?;
    match Source::build(idp).export().await {
        Ok(export) => {
            println!("{}", serde_json::to_string_pretty(&export)?);
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: idp {}: {e}", idp.name);
            Ok(1)
        }
    }
}

/// Writes a consistent copy of the state to `target`.
pub fn backup(config: &Config, target: &Path) -> anyhow::Result<u8> {
    if target.exists() {
        return Err(Usage(format!("{} exists; give a new path", target.display())).into());
    }
    if !config.daemon.state.exists() {
        return Err(anyhow::anyhow!(
            "there is no state file at {} yet",
            config.daemon.state.display()
        ));
    }
    let state = State::open_read_only(&config.daemon.state)?;
    state.backup_to(target)?;
    println!(
        "Backed up {} to {}.",
        config.daemon.state.display(),
        target.display()
    );
    Ok(0)
}
