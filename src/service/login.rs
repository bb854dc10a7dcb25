//! `POST /v1/login` (SPEC §4): the caller's token, bounds on the request, the ID token's
//! verification, the claims, a per-subject rate limit, then the one-user reconcile.
//!
//! Limits chosen where SPEC names the behaviour but no key: at most [`MAX_IN_FLIGHT`] logins at
//! once (more are `503` with `Retry-After: 1`), [`LOGINS_PER_MINUTE`] logins per subject
//! (`429` with the seconds until the next is allowed), bodies of at most [`MAX_BODY_BYTES`]
//! (`413`), and [`LOGIN_TIMEOUT`] for the whole answer (`503`). Every refusal changes nothing
//! and never quotes the token.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;
use tracing::warn;

use super::Shared;
use super::http::{ApiError, require_bearer};
use super::providers::Providers;
use crate::config::{Config, IdpConfig};
use crate::login::{ClaimsError, Groups, Rejected, claims, select};
use crate::model::IdpName;
use crate::state::State;
use crate::sync::login::{LoginError, login_once};

/// The largest login body read (64 KiB: a token of about 5,000 short group names fits).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Logins answered at once.
pub const MAX_IN_FLIGHT: usize = 64;
/// Logins a subject may make per minute.
pub const LOGINS_PER_MINUTE: u32 = 30;
/// The longest a login may take to answer.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The login side of the service: the providers of the configuration in force, the limits.
pub(crate) struct Logins {
    /// Replaced whole by a reload that changes them; a login keeps the ones it started with.
    providers: ArcSwap<Providers>,
    in_flight: Semaphore,
    /// Logins planning at once: two per core (measured at 200 claims on two cores: one per core
    /// left cores idle between turns; 64 at once raised the p99 by a third). A login gives its
    /// permit back once planned, before it queues for its write turn: while a run's apply holds
    /// the turn, every planned login waits for the same next pause, not one group after another.
    working: Arc<Semaphore>,
    per_subject: DefaultKeyedRateLimiter<String>,
    /// Idle connections to the state file: each login takes one for itself (and its login
    /// catalogs with it), plans on its own snapshot, and queues only for its short write.
    connections: std::sync::Mutex<Vec<State>>,
}

/// Idle login connections kept open.
const POOLED_CONNECTIONS: usize = 16;

impl Logins {
    /// The providers of `config` (none loaded yet), and the limits.
    pub(crate) fn new(config: &Config) -> anyhow::Result<Logins> {
        let quota = Quota::per_minute(NonZeroU32::new(LOGINS_PER_MINUTE).expect("not zero"));
        Ok(Logins {
            providers: ArcSwap::from_pointee(Providers::new(config)?),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            working: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get) * 2,
            )),
            per_subject: RateLimiter::keyed(quota),
            connections: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The providers in force.
    pub(crate) fn providers(&self) -> Arc<Providers> {
        self.providers.load_full()
    }

    /// Whether every verifier has loaded its discovery document and JWKS (`/readyz`).
    pub(crate) fn loaded(&self) -> bool {
        self.providers.load().loaded()
    }

    /// After a reload to `config`: builds its providers when they differ from those in force,
    /// starts their key loaders (until `stop`), and swaps them in. Whether it did.
    pub(crate) fn reload(
        &self,
        config: &Config,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<bool> {
        if self.providers.load().serve(config) {
            return Ok(false);
        }
        let providers = Providers::new(config)?;
        // The loaders stop by themselves when `stop` fires or the providers are dropped.
        drop(providers.spawn_loaders(stop));
        self.providers.store(Arc::new(providers));
        Ok(true)
    }
}

/// `POST /v1/login`.
pub(super) async fn login(
    Extract(shared): Extract<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let answer = match tokio::time::timeout(LOGIN_TIMEOUT, answer(&shared, &headers, body)).await {
        Ok(answer) => answer,
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the login took too long; nothing was changed",
        )
        .retry_after(1)),
    };
    let outcome = match &answer {
        Ok(_) => "applied",
        Err(e) => e.code,
    };
    shared
        .metrics
        .record_login(outcome, started.elapsed().as_secs_f64());
    match answer {
        Ok(reply) => reply,
        Err(e) => e.into_response(),
    }
}

async fn answer(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let config = shared.config();
    check_caller(&config, headers)?;
    let logins = &shared.logins;
    let Ok(_permit) = logins.in_flight.try_acquire() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "too many logins in flight",
        )
        .retry_after(1));
    };
    let token = id_token(body).await?;
    let invalid = |detail: String| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", detail);
    let (issuer, audiences) = select::issuer_and_audiences(&token)
        .ok_or_else(|| invalid("the token is not a JWT with iss and aud".to_owned()))?;
    let idp = config
        .idps
        .iter()
        .find(|idp| {
            idp.oidc.as_ref().is_some_and(|o| {
                select::same_issuer(&o.issuer, &issuer) && audiences.contains(&o.client_id)
            })
        })
        .ok_or_else(|| {
            invalid("no [idp.oidc] takes tokens of this issuer and audience".to_owned())
        })?;
    let oidc = idp.oidc.as_ref().expect("selected on its [idp.oidc]");
    let providers = logins.providers();
    let verifier = providers.verifier(&idp.name).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!(
                "idp {}: its provider is being set up after a reload",
                idp.name
            ),
        )
        .retry_after(1)
    })?;
    let verified = verifier
        .verify(&token, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            Rejected::Invalid(detail) => invalid(detail),
            Rejected::NotLoaded(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            )
            .retry_after(5),
        })?;
    let read = claims::read(&verified, oidc).map_err(|e| match e {
        ClaimsError::Invalid(detail) => invalid(detail),
        ClaimsError::GroupsMissing(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "groups_claim_missing",
            e.to_string(),
        ),
    })?;
    if let Err(not_until) = logins.per_subject.check_key(&read.subject) {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("more than {LOGINS_PER_MINUTE} logins a minute for this subject"),
        )
        .retry_after(wait.as_secs().max(1)));
    }
    let groups = match read.groups {
        Groups::Listed(groups) => groups,
        Groups::Overage { object_id, .. } => overage(&providers, &idp.name, object_id).await?,
    };
    let (config, idp_name) = (config.clone(), idp.name.clone());
    let (user, issued_at) = (read.user, read.issued_at);
    let remote = config.store.remote().is_some();
    let notify = shared.clone();
    let shared = shared.clone();
    let working = logins.working.clone().acquire_owned().await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service is stopping",
        )
    })?;
    let done = tokio::task::spawn_blocking(move || {
        let idp: &IdpConfig = config
            .idp(idp_name.as_str())
            .expect("selected from this config");
        let pool = &shared.logins.connections;
        let idle = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut state = match idle {
            Some(state) if state.path() == config.daemon.state => state,
            _ => State::open_for_logins(&config.daemon.state).map_err(LoginError::State)?,
        };
        let planned = move || drop(working);
        let reply = login_once(&config, &mut state, idp, &user, issued_at, &groups, planned);
        let mut idle = pool.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOLED_CONNECTIONS {
            idle.push(state);
        }
        reply
    })
    .await;
    match done {
        Ok(Ok(reply)) => {
            if remote && reply.changes.adds + reply.changes.removes > 0 {
                // The change waits in the journal: the service's sender takes it to the store.
                notify.journal.notify_one();
            }
            Ok(axum::Json(reply).into_response())
        }
        Ok(Err(LoginError::BadUser(detail))) => Err(invalid(detail)),
        Ok(Err(e @ LoginError::NotAllowed(..))) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "user_not_allowed",
            e.to_string(),
        )),
        Ok(Err(LoginError::State(e))) => {
            tracing::error!(error = %e, "Login: the state could not be written.");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the state could not be written; nothing was changed",
            )
            .retry_after(1))
        }
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the login failed",
        )),
    }
}

/// The groups of an Entra overage, looked up through Graph with the IdP's own credentials; a
/// failed lookup is `503` and changes nothing (never "no groups").
async fn overage(
    providers: &Providers,
    idp: &IdpName,
    object_id: Option<String>,
) -> Result<Vec<String>, ApiError> {
    let unavailable = |detail: String| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail).retry_after(30)
    };
    let Some(graph) = providers.graph(idp) else {
        return Err(unavailable(format!(
            "the token carries a groups overage, and idp {idp} has no Graph credentials to resolve it (kind = \"azure_ad\", or tenant_id and the other azure_ad keys on a login-only IdP); nothing was changed"
        )));
    };
    let Some(object_id) = object_id else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the token carries a groups overage but no oid to look the groups up by",
        ));
    };
    graph.member_groups(&object_id).await.map_err(|e| {
        warn!(idp = %idp, error = %e, "Login: the groups overage could not be resolved.");
        unavailable(format!(
            "the groups overage could not be resolved through Graph ({e}); nothing was changed"
        ))
    })
}

/// Passes when no caller token is configured, or the request carries it.
fn check_caller(config: &Config, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &config.daemon.webhook_token else {
        return Ok(());
    };
    require_bearer(
        headers,
        expected,
        "a missing or wrong caller token (webhook_token_file)",
    )
}

/// The body's `id_token`: `413` over [`MAX_BODY_BYTES`], `400` when it is not JSON with a
/// string `id_token`.
async fn id_token(body: Body) -> Result<String, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is over {MAX_BODY_BYTES} bytes"),
            )
        })?;
    #[derive(serde::Deserialize)]
    struct LoginBody {
        id_token: String,
    }
    let bad = |detail: &str| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail);
    let body: LoginBody = serde_json::from_slice(&bytes)
        .map_err(|_| bad("the body must be JSON: {\"id_token\": \"<JWT>\"}"))?;
    if body.id_token.trim().is_empty() {
        return Err(bad("id_token is empty"));
    }
    Ok(body.id_token)
}

impl ApiError {
    /// The same error with a `Retry-After` of `seconds`.
    fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = HeaderValue::from_str(&seconds.to_string()).ok();
        self
    }
}
