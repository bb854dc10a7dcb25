//! `idpsync run`: the service of SPEC §3–4.
//!
//! At start the state is opened and what a previous instance left half-done is closed (runs it
//! left open are marked interrupted; the journal is finished — for the embedded store each
//! IdP's apply is its own transaction, so nothing is pending; a remote store is sent what is
//! pending at once, and after every login that journals a change), then the listener is bound (and
//! `admin_listen`, for the admin API and the web console, when `admin_token_file` is set), and
//! only then is the service ready. A run starts at once and then on the cron schedule; runs never
//! overlap (one due while the last is still going is skipped and counted). A failing IdP is
//! logged and counted and never stops the service. A reload swaps in a new configuration only
//! when it is valid. A stop lets the run in hand finish the IdP it is applying, drops reads in
//! progress (they change nothing), and returns.
//!
//! [`Service`] is the service in-process (what tests drive); [`run`] adds what a process under
//! systemd needs: signals (SIGTERM/SIGINT stop, SIGHUP reloads) and `sd_notify` (READY,
//! RELOADING, STOPPING, WATCHDOG).

mod admin;
mod console;
mod http;
mod journal;
mod login;
mod metrics;
mod notify;
mod providers;
mod runs;
mod schedule;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

pub use login::{LOGINS_PER_MINUTE, MAX_BODY_BYTES, MAX_IN_FLIGHT};
pub use metrics::Metrics;

use crate::config::{Config, ConfigError};
use crate::state::State;
use crate::sync::{RunOptions, ServedNow, SyncError, sync_once};

/// The audit and run-record actor of the service's runs.
pub const ACTOR: &str = "service";

/// How long requests in flight at a stop may take to finish before their connections close.
pub const HTTP_DRAIN: Duration = Duration::from_secs(2);

/// How long a stop may take before the process gives up waiting (`run` then exits 1).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// What the scheduler, the listener and reloads share.
pub(crate) struct Shared {
    config: RwLock<Arc<Config>>,
    metrics: Metrics,
    ready: AtomicBool,
    logins: login::Logins,
    /// Notified when a login has journalled changes for a remote store.
    journal: Notify,
    /// The runs administrators started, and the turn every run takes.
    runs: runs::Runs,
    /// Becomes `true` when the service stops.
    stopping: watch::Receiver<bool>,
}

impl Shared {
    fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .expect("the config lock is never poisoned")
            .clone()
    }

    /// Which stages are served as each IdP of a run commits: a reload during the run takes effect
    /// at its commits, and a change into a stage the new configuration no longer serves is dropped.
    fn served_now(self: &Arc<Self>) -> ServedNow {
        let shared = self.clone();
        ServedNow(Arc::new(move || shared.config().daemon.stages.clone()))
    }

    /// Runs `work` as the administrator's edits (actor `api`) off the async workers: the one way
    /// the admin API and the console write. The outer `Err` is the work having panicked.
    async fn edit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut crate::admin::Edits<'_>) -> Result<T, crate::admin::AdminError>
        + Send
        + 'static,
    ) -> Result<Result<T, crate::admin::AdminError>, tokio::task::JoinError> {
        let config = self.config();
        tokio::task::spawn_blocking(move || {
            let mut state =
                State::open(&config.daemon.state).map_err(crate::admin::AdminError::State)?;
            let mut edits = crate::admin::Edits::open(&config, &mut state, crate::admin::ACTOR)?;
            work(&mut edits)
        })
        .await
    }

    /// Reads the journal's depth into the gauges.
    async fn refresh_journal_gauges(&self) {
        let path = self.config().daemon.state.clone();
        let depth = tokio::task::spawn_blocking(move || {
            State::open_read_only(&path).and_then(|state| state.journal_depth())
        })
        .await;
        match depth {
            Ok(Ok((pending, failed))) => self.metrics.set_journal(pending, failed),
            Ok(Err(e)) => warn!(error = %e, "The journal could not be read for /metrics."),
            Err(_) => {}
        }
    }
}

/// The service running in this process.
pub struct Service {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    config_path: PathBuf,
    env: Vec<(String, String)>,
    stop: watch::Sender<bool>,
    reloaded: Arc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Service {
    /// Loads the configuration, opens the state and finishes what a previous instance left,
    /// binds `daemon.listen`, and starts the scheduler (whose first run starts at once).
    ///
    /// Needs a multi-threaded tokio runtime (runs apply on blocking sections).
    pub async fn start(config_path: &Path, env: Vec<(String, String)>) -> anyhow::Result<Service> {
        let config = Arc::new(Config::load(config_path, &env)?);
        let recovered = {
            let path = config.daemon.state.clone();
            let store = config.store.clone();
            tokio::task::spawn_blocking(move || -> Result<_, crate::state::StateError> {
                let mut state = State::open(&path)?;
                state.serve_remotely(&store.tenant(), store.remote_stages())?;
                let interrupted = state.close_interrupted_runs(ACTOR)?;
                let journal = state.journal_depth()?;
                Ok((interrupted, journal))
            })
            .await??
        };
        let (interrupted, (pending, failed)) = recovered;
        if interrupted > 0 {
            warn!(
                runs = interrupted,
                "Runs of a previous instance were interrupted; each IdP they applied committed whole, the rest is applied now."
            );
        }
        if config.store.remote().is_some() {
            info!(
                pending,
                failed,
                store = config.store.kind(),
                "Journal: sending what is pending to the store."
            );
        } else {
            info!(pending, failed, "Journal finished: no entry is in flight.");
        }
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            config: RwLock::new(config.clone()),
            metrics: Metrics::new(),
            ready: AtomicBool::new(false),
            logins: login::Logins::new(&config)?,
            journal: Notify::new(),
            runs: runs::Runs::default(),
            stopping: stopped.clone(),
        });
        shared.metrics.set_journal(pending, failed);
        shared
            .metrics
            .know_idps(config.idps.iter().map(|i| i.name.as_str()));
        let listener = tokio::net::TcpListener::bind(config.daemon.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.daemon.listen))?;
        let addr = listener.local_addr()?;
        let reloaded = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(journal::send_journal(
            shared.clone(),
            stopped.clone(),
        )));
        tasks.push(serve(
            listener,
            http::router(shared.clone()),
            stopped.clone(),
        ));
        let admin_addr = match &config.daemon.admin_token {
            Some(_) => {
                let admin = tokio::net::TcpListener::bind(config.daemon.admin_listen)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("cannot listen on {}: {e}", config.daemon.admin_listen)
                    })?;
                let admin_addr = admin.local_addr()?;
                tasks.push(serve(admin, admin::router(shared.clone()), stopped.clone()));
                info!(admin_listen = %admin_addr, "Admin API and web console listening.");
                Some(admin_addr)
            }
            None => None,
        };
        tasks.extend(shared.logins.providers().spawn_loaders(&stopped));
        tasks.push(tokio::spawn(schedule_loop(
            shared.clone(),
            stopped,
            reloaded.clone(),
        )));
        shared.ready.store(true, Ordering::Release);
        info!(listen = %addr, state = %config.daemon.state.display(), "Service ready.");
        Ok(Service {
            addr,
            admin_addr,
            shared,
            config_path: config_path.to_owned(),
            env,
            stop,
            reloaded,
            tasks,
        })
    }

    /// The address the listener is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the admin API and web console, when `admin_token_file` turns them on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.shared.config()
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Loads the configuration file again. A valid one takes over (the schedule from the next
    /// run on; a new `listen` address needs a restart); an invalid one is refused and the
    /// running configuration stays.
    pub fn reload(&self) -> Result<(), ConfigError> {
        match Config::load(&self.config_path, &self.env) {
            Ok(config) => {
                let current = self.shared.config();
                if config.daemon.listen != current.daemon.listen {
                    warn!(listen = %config.daemon.listen, "daemon.listen changed; it takes effect at the next restart.");
                }
                self.shared
                    .metrics
                    .know_idps(config.idps.iter().map(|i| i.name.as_str()));
                // Logins follow: an [idp.oidc] added, changed or removed takes effect now.
                match self.shared.logins.reload(&config, &self.stop.subscribe()) {
                    Ok(true) => info!("Login providers set up again for the new configuration."),
                    Ok(false) => {}
                    Err(e) => {
                        error!(error = %e, "Login providers could not be set up; the old ones stay.")
                    }
                }
                *self
                    .shared
                    .config
                    .write()
                    .expect("the config lock is never poisoned") = Arc::new(config);
                self.shared.metrics.record_reload(true);
                self.reloaded.notify_one();
                info!(config = %self.config_path.display(), "Configuration reloaded.");
                Ok(())
            }
            Err(e) => {
                self.shared.metrics.record_reload(false);
                error!(error = %e, "Configuration reload refused; the running configuration stays.");
                Err(e)
            }
        }
    }

    /// Asks the service to stop; [`Service::wait`] returns once it has.
    pub fn stop(&self) {
        self.shared.ready.store(false, Ordering::Release);
        let _ = self.stop.send(true);
    }

    /// Waits until the scheduler, the listeners and the runs administrators started have stopped.
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
        self.shared.runs.wait().await;
        info!("Service stopped.");
    }
}

/// Serves `router` on `listener` until the stop; requests in flight then get [`HTTP_DRAIN`] to
/// finish, and a client that never completes its request does not hold the stop up.
fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut http_stop = stopped.clone();
    let mut http_deadline = stopped;
    tokio::spawn(async move {
        let shutdown = async move { crate::sync::stopped(&mut http_stop).await };
        let serve = axum::serve(listener, router).with_graceful_shutdown(shutdown);
        let deadline = async move {
            crate::sync::stopped(&mut http_deadline).await;
            tokio::time::sleep(HTTP_DRAIN).await;
        };
        tokio::select! {
            served = serve => {
                if let Err(e) = served {
                    error!(error = %e, "The HTTP listener failed.");
                }
            }
            () = deadline => warn!("HTTP connections still open at stop were closed."),
        }
    })
}

/// Runs at once, then on the schedule, until stopped.
async fn schedule_loop(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    reloaded: Arc<Notify>,
) {
    let mut first = true;
    loop {
        if !first {
            let config = shared.config();
            let now = Utc::now();
            let Some(next) = schedule::next_after(&config.daemon.schedule, now) else {
                warn!("The schedule never fires again; no more runs.");
                crate::sync::stopped(&mut stop).await;
                return;
            };
            let delay =
                (next - now).to_std().unwrap_or_default() + schedule::jitter(config.daemon.jitter);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = reloaded.notified() => continue,
                () = crate::sync::stopped(&mut stop) => return,
            }
        }
        first = false;
        if *stop.borrow() {
            return;
        }
        // A run an administrator started goes first when it holds the turn.
        let _turn = tokio::select! {
            turn = shared.runs.turn.lock() => turn,
            () = crate::sync::stopped(&mut stop) => return,
        };
        let config = shared.config();
        let started = Utc::now();
        let options = RunOptions {
            actor: Some(ACTOR.to_owned()),
            stop: Some(stop.clone()),
            served_now: Some(shared.served_now()),
            ..RunOptions::default()
        };
        match sync_once(&config, &options, &crate::progress::silent).await {
            Ok(output) => shared.metrics.record_run(&output),
            Err(SyncError::Stopped) => return,
            Err(e) => error!(error = %e, "The run failed as a whole; the next one is on schedule."),
        }
        let skipped = schedule::fired_between(&config.daemon.schedule, started, Utc::now());
        if skipped > 0 {
            shared.metrics.record_skipped(skipped);
            warn!(
                skipped,
                "Scheduled runs skipped: the last run was still going."
            );
        }
        shared.refresh_journal_gauges().await;
    }
}

/// `idpsync run`: the service as a process. Exit 0 after a stop by SIGTERM or SIGINT.
pub async fn run(config_path: &Path) -> anyhow::Result<u8> {
    use tokio::signal::unix::{SignalKind, signal};
    let env: Vec<(String, String)> = std::env::vars().collect();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let service = Service::start(config_path, env).await?;
    notify::ready();
    let watchdog = notify::watchdog();
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => {
                notify::reloading();
                let _ = service.reload();
                notify::ready();
            }
        }
    }
    info!("Stopping: the run in hand finishes the IdP it is applying.");
    notify::stopping();
    service.stop();
    let stopped = tokio::time::timeout(STOP_TIMEOUT, service.wait()).await;
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    match stopped {
        Ok(()) => Ok(0),
        Err(_) => {
            error!(
                seconds = STOP_TIMEOUT.as_secs(),
                "The service did not stop in time."
            );
            Ok(1)
        }
    }
}
