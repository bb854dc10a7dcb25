//! Saved plans: `plan --out PLAN.json` writes what a reconcile would do; `apply PLAN.json` applies
//! exactly that, or refuses when the state or the configuration changed since.
//!
//! The file is the reconcile document plus what applying needs: the state generation it was made
//! at, a hash of the configuration (file and overrides), the guard flags it was made with, and the
//! new baseline of every IdP whose part may apply.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::model::{IdpName, Provenance, RunOutcome};
use crate::reconcile::Baseline;
use crate::report::{Report, Summary};
use crate::state::{Applied, Batch, NamedChange, PlanPart, RunPart, RunRecord, State, StateError};
use crate::sync::RunOutput;

/// The format tag of plan files this build writes and reads.
pub const FORMAT: &str = "idpsync-plan/1";

/// A plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    /// Always [`FORMAT`].
    pub format: String,
    /// The state generation the plan was made at.
    pub state_generation: i64,
    /// A hash of the configuration file and the `IDPSYNC__` overrides.
    pub config_hash: String,
    /// `--allow-removals` given to `plan`.
    pub allow_removals: Option<u64>,
    /// `--allow-empty` given to `plan`.
    pub allow_empty: bool,
    /// Per IdP whose part may apply: the baseline of the read.
    pub baselines: BTreeMap<String, Baseline>,
    /// Per IdP whose part may apply: immutable ids to store beside user keys (key → id).
    pub external_ids: BTreeMap<String, BTreeMap<String, String>>,
    /// The reconcile document.
    pub plan: Report,
}

/// Why a plan cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Not a readable plan of this format (exit 2).
    #[error("{path}: not an idpsync plan ({reason})")]
    Unreadable {
        /// The plan file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration changed since the plan was made (exit 3).
    #[error(
        "the configuration changed since the plan was made (config hash {then} then, {now} now); make a new plan"
    )]
    ConfigChanged {
        /// The plan's hash.
        then: String,
        /// The hash now.
        now: String,
    },
    /// The state refused or failed.
    #[error(transparent)]
    State(#[from] StateError),
}

impl SavedPlan {
    /// Wraps a dry run's output.
    pub fn new(
        output: RunOutput,
        config_hash: String,
        allow_removals: Option<u64>,
        allow_empty: bool,
    ) -> Self {
        SavedPlan {
            format: FORMAT.to_owned(),
            state_generation: output.generation,
            config_hash,
            allow_removals,
            allow_empty,
            baselines: output.baselines,
            external_ids: output.external_ids,
            plan: output.report,
        }
    }

    /// Reads a plan file, refusing anything that is not a plan of this format.
    pub fn read(path: &Path) -> Result<SavedPlan, PlanError> {
        let unreadable = |reason: String| PlanError::Unreadable {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
        let plan: SavedPlan = serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
        if plan.format != FORMAT {
            return Err(unreadable(format!(
                "format {:?}, expected {FORMAT:?}",
                plan.format
            )));
        }
        Ok(plan)
    }

    /// Writes the plan atomically (a temporary file renamed into place).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(
            &tmp,
            serde_json::to_string_pretty(self).expect("plans serialise"),
        )?;
        std::fs::rename(&tmp, path)
    }

    /// Applies exactly this plan through the checked apply, or refuses when the configuration or
    /// the state changed since. The plan's run row is written before anything is applied and
    /// closed after, so every change it applies belongs to a run. Only the IdPs whose part
    /// applies are recorded (the caller holds their run locks, `idps()`): what the plan says of
    /// refused or failed IdPs is as old as the plan, and a later run of theirs may know better.
    pub fn apply(&self, config: &Config, actor: &str) -> Result<Applied, PlanError> {
        if self.config_hash != config.fingerprint {
            return Err(PlanError::ConfigChanged {
                then: self.config_hash.clone(),
                now: config.fingerprint.clone(),
            });
        }
        let idps = self.idps()?;
        let mut state = State::open(&config.daemon.state)?;
        // A run that died holding these IdPs' locks (this plan's own earlier apply, say) is over.
        state.close_abandoned_runs(&idps)?;
        let now = state.generation()?;
        if now != self.state_generation {
            return Err(PlanError::State(crate::state::stale_plan(
                self.state_generation,
                now,
            )));
        }
        let run_id = self.plan.run_id.as_str();
        state.begin_run(run_id, actor, &idps)?;
        crate::failpoint!("plan::run_opened");
        let run_actor = format!("run:{run_id}");
        let provenances: Vec<Provenance> = idps.iter().cloned().map(Provenance::Idp).collect();
        let runs: Vec<RunPart<'_>> = self
            .baselines
            .iter()
            .map(|(name, baseline)| RunPart {
                run_id,
                external_ids: self
                    .external_ids
                    .get(name)
                    .map(|ids| ids.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
                    .unwrap_or_default(),
                baseline: Some(baseline),
                read: None,
                planned_at: self.state_generation,
                // The plan does not say how many users each IdP's read skipped.
                skipped_users: None,
                group_names: None,
            })
            .collect();
        let parts: Vec<PlanPart<'_>> = self
            .baselines
            .keys()
            .zip(&provenances)
            .zip(&runs)
            .map(|((name, provenance), run)| PlanPart {
                batch: Batch {
                    actor: &run_actor,
                    provenance,
                    adds: &[],
                    removes: &[],
                    served: &config.daemon.stages,
                    detail: None,
                    run: Some(run),
                    progress: None,
                },
                adds: changes_of(&self.plan.adds, name),
                removes: changes_of(&self.plan.removes, name),
            })
            .collect();
        let applied = state.apply_plan(self.state_generation, &config.groups, &run_actor, &parts);
        let applied = match applied {
            Ok(applied) => applied,
            Err(e) => {
                // Nothing was applied: the run row says why it ended.
                let outcome = match e {
                    StateError::Refused(_) => RunOutcome::Refused,
                    _ => RunOutcome::Failed,
                };
                state.finish_run(&RunRecord {
                    run_id,
                    outcome,
                    summary: &Summary::default(),
                })?;
                return Err(e.into());
            }
        };
        crate::failpoint!("plan::before_close");
        let summary = Summary {
            adds: applied.adds,
            removes: applied.removes,
            dropped: applied.dropped.len() as u64,
            ..self.plan.summary
        };
        state.finish_run(&RunRecord {
            run_id,
            outcome: self.plan.outcome(),
            summary: &summary,
        })?;
        state.purge_audit(config.audit.retention_days)?;
        Ok(applied)
    }

    /// The IdPs whose part of the plan may apply (their run locks are held while it applies).
    pub fn idps(&self) -> Result<Vec<IdpName>, PlanError> {
        self.baselines.keys().map(|n| parse_idp(n)).collect()
    }
}

fn parse_idp(name: &str) -> Result<IdpName, PlanError> {
    IdpName::parse(name).map_err(|e| PlanError::Unreadable {
        path: "plan".into(),
        reason: e.0,
    })
}

fn changes_of<'a>(list: &'a [crate::report::ChangeDoc], idp: &str) -> Vec<NamedChange<'a>> {
    list.iter()
        .filter(|c| &*c.idp == idp)
        .map(|c| (&*c.stage, &*c.group, &*c.user, &*c.idp_group))
        .collect()
}
