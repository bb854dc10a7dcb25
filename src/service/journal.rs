//! The service's sender of the journal to a remote store: at start (what a previous instance or a
//! crashed run left), whenever a login has journalled a change, and a minute after a drain failed. Batch runs send their own
//! changes (`sync_once`); the journal lock keeps one drain at a time.
//!
//! The store client lives as long as the configuration it was built from, so ODC's tokens (good
//! for hours) are reused; its retry budget starts afresh for each drain.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::{debug, error};

use super::Shared;
use crate::config::Config;
use crate::store::{DrainOptions, Store};

/// How long after a failed drain the journal is sent again (when no login asks sooner).
const RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends the journal at once, then each time `shared.journal` is notified, until the stop.
pub(super) async fn send_journal(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut built: Option<(Arc<Config>, Store)> = None;
    loop {
        let mut failed = false;
        let config = shared.config();
        if !built.as_ref().is_some_and(|(c, _)| Arc::ptr_eq(c, &config)) {
            built = match Store::build(&config.store) {
                Ok(Some(store)) => Some((config.clone(), store)),
                Ok(None) => None,
                Err(e) => {
                    error!(error = %e, "The store cannot be set up; the journal waits.");
                    None
                }
            };
        }
        if let (Some((_, store)), Some(remote)) = (&built, config.store.remote()) {
            store.new_drain();
            let options = DrainOptions {
                state: &config.daemon.state,
                actor: "login",
                negative_since: crate::state::unix_millis() - 60_000,
                drift: false,
                full: false,
                create_groups: remote.create_groups,
                drift_interval: remote.drift_interval,
                dry_run: false,
                lock_wait: config.daemon.run_wait,
            };
            let drained = tokio::select! {
                drained = store.drain(&options) => Some(drained),
                () = crate::sync::stopped(&mut stop) => None,
            };
            match drained {
                None => return,
                Some(Ok(report)) => debug!(pushed = report.pushed, "Journal sent."),
                Some(Err(e)) => {
                    failed = true;
                    error!(store = config.store.kind(), error = %e, "The store failed; sending the journal again in a minute, or at the next login or run.");
                }
            }
            shared.refresh_journal_gauges().await;
        }
        // After a failure, try again on a timer too: logins may not come.
        let retry = async {
            if failed {
                tokio::time::sleep(RETRY).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = shared.journal.notified() => {}
            () = retry => {}
            () = crate::sync::stopped(&mut stop) => return,
        }
    }
}
