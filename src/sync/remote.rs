//! A run's part with a remote group store: before planning, the journal a crashed run left is
//! finished and the mapped remote groups are looked up (a missing one makes its mappings
//! `remote_group_not_found`); after the applies, what they journalled is sent, and the document
//! learns which adds wait for users the store does not know (`unresolved_users`, never in `adds`).
//!
//! A store that fails does not fail the run's applies: they are in the mirror and the journal,
//! and the next run sends them. The document says so and the exit status is 1.

use std::collections::BTreeSet;

use tracing::error;

use crate::config::Config;
use crate::model::Stage;
use crate::report::{Report, StoreDoc};
use crate::state::{State, StateError};
use crate::store::{DrainOptions, DrainReport, Store};

/// The remote store of a run, and what it has done so far.
pub struct RemoteRun {
    store: Store,
    started: i64,
    actor: String,
    full: bool,
    dry_run: bool,
    doc: StoreDoc,
}

impl RemoteRun {
    /// Makes the state journal the stages the configured store serves remotely (none for the
    /// embedded store), from this run's writes on.
    pub(super) fn serve(config: &Config, state: &mut State) -> Result<(), StateError> {
        state.serve_remotely(&config.store.tenant(), config.store.remote_stages())
    }

    /// The configured remote store, if there is one.
    pub(super) fn open(
        config: &Config,
        run_id: &str,
        full: bool,
        dry_run: bool,
    ) -> Result<Option<RemoteRun>, StateError> {
        let store = match Store::build(&config.store) {
            Ok(Some(store)) => store,
            Ok(None) => return Ok(None),
            Err(e) => {
                error!(store = config.store.kind(), error = %e, "The store cannot be set up.");
                return Err(StateError::Invalid(format!("[store]: {e}")));
            }
        };
        Ok(Some(RemoteRun {
            store,
            started: crate::state::unix_millis(),
            actor: format!("run:{run_id}"),
            full,
            dry_run,
            doc: StoreDoc {
                kind: config.store.kind().to_owned(),
                ..StoreDoc::default()
            },
        }))
    }

    fn options<'a>(&'a self, config: &'a Config) -> DrainOptions<'a> {
        let remote = config.store.remote().expect("a remote store");
        DrainOptions {
            state: &config.daemon.state,
            actor: &self.actor,
            negative_since: self.started,
            drift: true,
            full: self.full,
            create_groups: remote.create_groups,
            drift_interval: remote.drift_interval,
            dry_run: self.dry_run,
            lock_wait: config.daemon.run_wait,
        }
    }

    /// Finishes the journal, then finds which mapped remote groups the store lacks.
    pub(super) async fn before_plan(&mut self, config: &Config) -> BTreeSet<(Stage, String)> {
        if !self.dry_run {
            // What an earlier run left is sent first; drift waits for the run's own changes.
            let options = DrainOptions {
                drift: false,
                ..self.options(config)
            };
            match self.store.drain(&options).await {
                Ok(report) => self.add(&report),
                Err(e) => self.failed(e.to_string()),
            }
        }
        let wanted: Vec<(Stage, String)> = config
            .mappings
            .iter()
            .filter(|m| config.store.serves_remotely(&m.stage))
            .map(|m| (m.stage.clone(), m.group.as_str().to_owned()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        match self
            .store
            .missing_groups(&self.options(config), &wanted)
            .await
        {
            Ok(missing) => missing
                .into_iter()
                .map(|(stage, name)| (stage, crate::model::normalise_group_name(&name)))
                .collect(),
            Err(e) => {
                // Unknown is not missing: the changes are journalled and wait for the store.
                self.failed(e.to_string());
                BTreeSet::new()
            }
        }
    }

    /// Sends what the applies journalled and completes the document.
    pub(super) async fn after_apply(mut self, config: &Config, report: &mut Report) {
        if !self.dry_run && self.doc.error.is_none() {
            match self.store.drain(&self.options(config)).await {
                Ok(drained) => {
                    self.add(&drained);
                    let unresolved: BTreeSet<(&str, &str, &str)> = drained
                        .unresolved
                        .iter()
                        .map(|u| (u.stage.as_str(), u.group.as_str(), u.user.as_str()))
                        .collect();
                    let before = report.adds.len();
                    report
                        .adds
                        .retain(|a| !unresolved.contains(&(&*a.stage, &*a.group, &*a.user)));
                    report.summary.adds -= (before - report.adds.len()) as u64;
                    report.unresolved_users = drained.unresolved;
                }
                Err(e) => self.failed(e.to_string()),
            }
        }
        report.store = Some(self.doc);
    }

    /// Sends what was journalled outside a run (a saved plan's apply): no plan, no drift.
    pub async fn send(config: &Config, actor: &str) -> Option<StoreDoc> {
        let store = match Store::build(&config.store) {
            Ok(Some(store)) => store,
            Ok(None) => return None,
            Err(e) => {
                return Some(StoreDoc {
                    kind: config.store.kind().to_owned(),
                    error: Some(e.to_string()),
                    ..StoreDoc::default()
                });
            }
        };
        let mut run = RemoteRun {
            store,
            started: crate::state::unix_millis(),
            actor: actor.to_owned(),
            full: false,
            dry_run: false,
            doc: StoreDoc {
                kind: config.store.kind().to_owned(),
                ..StoreDoc::default()
            },
        };
        let options = DrainOptions {
            drift: false,
            ..run.options(config)
        };
        match run.store.drain(&options).await {
            Ok(report) => run.add(&report),
            Err(e) => run.failed(e.to_string()),
        }
        Some(run.doc)
    }

    fn add(&mut self, report: &DrainReport) {
        self.doc.pushed += report.pushed;
        self.doc.requests += report.requests;
        self.doc.failed += report.failed;
        self.doc.drift += report.drift;
    }

    fn failed(&mut self, error: String) {
        error!(store = %self.doc.kind, error = %error, "The store failed; its changes wait in the journal for the next run.");
        self.doc.error.get_or_insert(error);
    }
}
