//! The service's metrics (SPEC §4 `/metrics`), every one named `idpsync_*`, labelled by IdP,
//! outcome, guard or kind — never by a user or group name.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::model::RunOutcome;
use crate::sync::RunOutput;

/// Labels naming an IdP.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IdpLabel {
    /// The IdP's configured name.
    pub idp: String,
}

/// Labels of a run's outcome for one IdP.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The IdP's configured name.
    pub idp: String,
    /// `applied`, `unchanged`, `refused`, `failed` or `interrupted`.
    pub outcome: String,
}

/// Labels of a refusal.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GuardLabels {
    /// The IdP's configured name.
    pub idp: String,
    /// `empty` or `removals`.
    pub guard: String,
}

/// Labels of applied changes.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabels {
    /// The IdP's configured name.
    pub idp: String,
    /// `add` or `remove`.
    pub kind: String,
}

/// Labels of configuration reloads.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `applied` or `refused`.
    pub outcome: String,
}

/// Labels of a login's outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    /// `applied`, or the error code answered (`invalid_token`, `rate_limited`, …).
    pub outcome: String,
}

/// Every metric of the service, registered in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    runs: Family<OutcomeLabels, Counter>,
    failures: Family<IdpLabel, Counter>,
    refusals: Family<GuardLabels, Counter>,
    duration: Family<IdpLabel, Histogram, fn() -> Histogram>,
    changes: Family<ChangeLabels, Counter>,
    requests: Family<IdpLabel, Counter>,
    throttles: Family<IdpLabel, Counter>,
    last_success: Family<IdpLabel, Gauge<f64, AtomicU64>>,
    skipped: Counter,
    journal_depth: Gauge,
    journal_failed: Gauge,
    reloads: Family<ReloadLabels, Counter>,
    logins: Family<LoginLabels, Counter>,
    login_seconds: Histogram,
}

fn duration_histogram() -> Histogram {
    // 10 ms to about 10 minutes.
    Histogram::new(exponential_buckets(0.01, 3.0, 11))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut metrics = Metrics {
            registry: Registry::default(),
            runs: Family::default(),
            failures: Family::default(),
            refusals: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            changes: Family::default(),
            requests: Family::default(),
            throttles: Family::default(),
            last_success: Family::default(),
            skipped: Counter::default(),
            journal_depth: Gauge::default(),
            journal_failed: Gauge::default(),
            reloads: Family::default(),
            logins: Family::default(),
            // 0.5 ms to about 4 s.
            login_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
        };
        let r = &mut metrics.registry;
        r.register(
            "idpsync_runs",
            "Runs per IdP, by outcome",
            metrics.runs.clone(),
        );
        r.register(
            "idpsync_failures",
            "IdP runs that failed (read or apply)",
            metrics.failures.clone(),
        );
        r.register(
            "idpsync_refusals",
            "IdP runs a guard refused, by guard",
            metrics.refusals.clone(),
        );
        r.register(
            "idpsync_run_duration_seconds",
            "Seconds per IdP run: read, plan and apply",
            metrics.duration.clone(),
        );
        r.register(
            "idpsync_changes_applied",
            "Membership changes applied, by IdP and kind",
            metrics.changes.clone(),
        );
        r.register(
            "idpsync_source_requests",
            "Requests made to an IdP (LDAP operations, file reads)",
            metrics.requests.clone(),
        );
        r.register(
            "idpsync_source_throttles",
            "Requests an IdP throttled (429 or busy)",
            metrics.throttles.clone(),
        );
        r.register(
            "idpsync_last_success_timestamp_seconds",
            "Unix time of the last run of an IdP that ended applied or unchanged",
            metrics.last_success.clone(),
        );
        r.register(
            "idpsync_runs_skipped",
            "Scheduled runs skipped because the previous run was still going",
            metrics.skipped.clone(),
        );
        r.register(
            "idpsync_journal_depth",
            "Journal entries not applied yet",
            metrics.journal_depth.clone(),
        );
        r.register(
            "idpsync_journal_failed",
            "Journal entries a store rejected permanently, awaiting an operator",
            metrics.journal_failed.clone(),
        );
        r.register(
            "idpsync_config_reloads",
            "Configuration reloads (SIGHUP), by outcome",
            metrics.reloads.clone(),
        );
        r.register(
            "idpsync_logins",
            "Logins (POST /v1/login), by outcome",
            metrics.logins.clone(),
        );
        r.register(
            "idpsync_login_duration_seconds",
            "Time to answer a login",
            metrics.login_seconds.clone(),
        );
        metrics
    }

    /// Counts a login answered with `outcome` after `seconds`.
    pub fn record_login(&self, outcome: &str, seconds: f64) {
        self.logins
            .get_or_create(&LoginLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
        self.login_seconds.observe(seconds);
    }

    /// Records a finished run: per IdP its outcome, duration, changes, requests, throttles.
    pub fn record_run(&self, output: &RunOutput) {
        let report = &output.report;
        for idp in &output.idps {
            let label = IdpLabel {
                idp: idp.name.clone(),
            };
            self.runs
                .get_or_create(&OutcomeLabels {
                    idp: idp.name.clone(),
                    outcome: idp.outcome.as_str().to_owned(),
                })
                .inc();
            self.duration.get_or_create(&label).observe(idp.seconds);
            self.requests.get_or_create(&label).inc_by(idp.requests);
            self.throttles.get_or_create(&label).inc_by(idp.throttles);
            match idp.outcome {
                RunOutcome::Failed | RunOutcome::Interrupted => {
                    self.failures.get_or_create(&label).inc();
                }
                RunOutcome::Applied | RunOutcome::Unchanged if !report.dry_run => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    self.last_success.get_or_create(&label).set(now);
                }
                _ => {}
            }
        }
        for refusal in &report.refused {
            self.refusals
                .get_or_create(&GuardLabels {
                    idp: refusal.idp.clone(),
                    guard: refusal.guard.clone(),
                })
                .inc();
        }
        if !report.dry_run {
            for (changes, kind) in [(&report.adds, "add"), (&report.removes, "remove")] {
                for change in changes.iter() {
                    self.changes
                        .get_or_create(&ChangeLabels {
                            idp: change.idp.to_string(),
                            kind: kind.to_owned(),
                        })
                        .inc();
                }
            }
        }
    }

    /// Shows every configured IdP's counters at zero before its first run, so a dashboard sees
    /// the IdP and a rate over it starts from zero.
    pub fn know_idps<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            let label = IdpLabel {
                idp: name.to_owned(),
            };
            self.failures.get_or_create(&label).inc_by(0);
            self.requests.get_or_create(&label).inc_by(0);
            self.throttles.get_or_create(&label).inc_by(0);
        }
    }

    /// Counts a scheduled run skipped because the last was still going.
    pub fn record_skipped(&self, runs: u64) {
        self.skipped.inc_by(runs);
    }

    /// Sets the journal gauges: entries pending and entries failed.
    pub fn set_journal(&self, pending: u64, failed: u64) {
        self.journal_depth.set(pending as i64);
        self.journal_failed.set(failed as i64);
    }

    /// Counts a configuration reload, applied or refused.
    pub fn record_reload(&self, applied: bool) {
        let outcome = if applied { "applied" } else { "refused" };
        self.reloads
            .get_or_create(&ReloadLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// The metrics in the OpenMetrics text format (which Prometheus scrapes).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ChangeDoc, RefusedDoc, Report, Summary};
    use crate::sync::IdpStats;
    use std::sync::Arc;

    fn change(idp: &str) -> ChangeDoc {
        ChangeDoc {
            stage: Arc::from("production"),
            group: Arc::from("Secret Project"),
            user: Arc::from("ana@example.com"),
            idp: Arc::from(idp),
            idp_group: Arc::from("g-secret"),
        }
    }

    fn stats(idp: &str, outcome: RunOutcome) -> IdpStats {
        IdpStats {
            name: idp.to_owned(),
            outcome,
            seconds: 0.2,
            requests: 3,
            throttles: 0,
        }
    }

    #[test]
    fn a_run_is_counted_per_idp_without_naming_users_or_groups() {
        let metrics = Metrics::new();
        metrics.know_idps(["corp", "ldap"]);
        let output = RunOutput {
            report: Report {
                run_id: "r1".into(),
                dry_run: false,
                adds: vec![change("corp"), change("corp")],
                removes: vec![change("corp")],
                refused: vec![RefusedDoc {
                    idp: "ldap".into(),
                    guard: "removals".into(),
                    removals: 600,
                    limit: 500,
                    allow: "idpsync reconcile --idp ldap --allow-removals 600".into(),
                    detail: "600 removals exceed safety.max_removals = 500".into(),
                }],
                inactive_mappings: Vec::new(),
                failed_idps: Vec::new(),
                unresolved_users: Vec::new(),
                summary: Summary::default(),
                dropped: Vec::new(),
                renamed_mappings: Vec::new(),
                store: None,
            },
            baselines: Default::default(),
            generation: 1,
            external_ids: Default::default(),
            idps: vec![
                stats("corp", RunOutcome::Applied),
                stats("ldap", RunOutcome::Refused),
            ],
            outcome: RunOutcome::Refused,
        };
        metrics.record_run(&output);
        metrics.record_skipped(2);
        metrics.set_journal(0, 1);
        let text = metrics.encode();
        for line in [
            "idpsync_runs_total{idp=\"corp\",outcome=\"applied\"} 1",
            "idpsync_runs_total{idp=\"ldap\",outcome=\"refused\"} 1",
            "idpsync_refusals_total{idp=\"ldap\",guard=\"removals\"} 1",
            "idpsync_changes_applied_total{idp=\"corp\",kind=\"add\"} 2",
            "idpsync_changes_applied_total{idp=\"corp\",kind=\"remove\"} 1",
            "idpsync_source_requests_total{idp=\"corp\"} 3",
            "idpsync_failures_total{idp=\"ldap\"} 0",
            "idpsync_run_duration_seconds_count{idp=\"corp\"} 1",
            "idpsync_runs_skipped_total 2",
            "idpsync_journal_failed 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("idpsync_last_success_timestamp_seconds{idp=\"corp\"}"));
        assert!(!text.contains("idpsync_last_success_timestamp_seconds{idp=\"ldap\"}"));
        for name in ["Secret Project", "ana@example.com", "g-secret"] {
            assert!(!text.contains(name), "{name} leaked into a label");
        }
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("idpsync_"), "{line}");
        }
    }
}
