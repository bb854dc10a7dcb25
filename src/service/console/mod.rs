//! The web console at `/` of `admin_listen` (SPEC §4): the seed's portal flows for a person,
//! server-rendered with maud — plain HTML forms, one small stylesheet, no script at all.
//!
//! It calls the same library functions as the CLI and the REST API ([`crate::admin`],
//! [`crate::views`]), so it validates alike and writes through the same checked apply, audited as
//! actor `api`. Every page but the sign-in page and the stylesheet needs a session
//! ([`guard`]); every POST carries the session's CSRF token; every response carries a strict
//! Content-Security-Policy ([`headers`]). Successful writes redirect (POST-redirect-GET) with a
//! flash message; refused ones render the form again with the reason beside the field.
//!
//! No route is under `/v1/`: that prefix is the REST API's.

mod assets;
mod audit;
mod delete;
mod form;
mod group;
mod groups;
mod guard;
mod headers;
mod layout;
mod links;
mod mappings;
mod members;
mod refusals;
mod report;
mod roles;
mod runs;
mod session;
mod signin;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;

use super::Shared;
use crate::admin::{AdminError, Edits};
use crate::config::Config;
use crate::state::{State, StateError};
use session::{Session, Sessions};

/// What every console handler shares: the service and the sessions.
#[derive(Clone)]
pub(super) struct Console {
    shared: Arc<Shared>,
    sessions: Arc<Sessions>,
}

/// The console's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let console = Console {
        shared,
        sessions: Arc::new(Sessions::default()),
    };
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/groups") }))
        .route("/groups", get(groups::list).post(groups::create))
        .route("/groups/new", get(groups::new))
        .route(
            "/groups/{stage}/{name}",
            get(group::general).post(group::edit),
        )
        .route("/groups/{stage}/{name}/roles", post(roles::edit))
        .route("/groups/{stage}/{name}/users", get(members::tab))
        .route("/groups/{stage}/{name}/users/add", post(members::add))
        .route("/groups/{stage}/{name}/users/remove", post(members::remove))
        .route(
            "/groups/{stage}/{name}/delete",
            get(delete::confirm).post(delete::delete),
        )
        .route("/users", get(users::search))
        .route("/mappings", get(mappings::list))
        .route("/runs", get(runs::list).post(runs::run_now))
        .route("/runs/{id}", get(runs::show))
        .route("/preview", get(runs::preview))
        .route("/refusals", get(refusals::list))
        .route("/refusals/{idp}/approve", post(refusals::approve))
        .route("/audit", get(audit::list))
        .route("/sign-out", post(signin::sign_out))
        .route_layer(axum::middleware::from_fn_with_state(
            console.clone(),
            guard::require_session,
        ));
    Router::new()
        .route("/sign-in", get(signin::page).post(signin::sign_in))
        .route("/assets/console.css", get(assets::stylesheet))
        .merge(pages)
        // Forms are small: no body past 64 KiB is read, the sign-in form's included.
        .layer(DefaultBodyLimit::max(form::MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn(headers::secure))
        .with_state(console)
}

impl Console {
    /// The configuration in force.
    fn config(&self) -> Arc<Config> {
        self.shared.config()
    }

    /// Runs `work` on a read-only view of the state, off the async workers.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Config, &State) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, Failure> {
        let config = self.config();
        let done = tokio::task::spawn_blocking(move || {
            let state = State::open_read_only(&config.daemon.state)?;
            work(&config, &state)
        })
        .await;
        match done {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Failure::Unavailable(e.to_string())),
            Err(_) => Err(Failure::Internal),
        }
    }

    /// Runs `work` as the administrator's edits (actor `api`), off the async workers. The outer
    /// error is the console failing; the inner one the edit refused, for the form to show.
    async fn edit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Edits<'_>) -> Result<T, AdminError> + Send + 'static,
    ) -> Result<Result<T, AdminError>, Failure> {
        let done = self.shared.edit(work).await;
        match done {
            Ok(Err(AdminError::State(e))) => Err(Failure::Unavailable(e.to_string())),
            Ok(outcome) => Ok(outcome),
            Err(_) => Err(Failure::Internal),
        }
    }

    /// POST-redirect-GET: `to`, with `flash` shown there.
    fn done(&self, session: &Session, to: &str, flash: impl Into<String>) -> Response {
        self.sessions.flash(&session.id, flash.into());
        Redirect::to(to).into_response()
    }
}

/// The status of a page that shows a refused edit again: the API's for the same refusal.
fn refusal_status(e: &AdminError) -> StatusCode {
    super::admin::status_of(e).0
}

/// A page that cannot be shown, as a page that says why.
#[derive(Debug)]
pub(super) enum Failure {
    /// The group, user or run asked for does not exist.
    NotFound(String),
    /// The state could not be read or written.
    Unavailable(String),
    /// The request's work failed (a bug; the service's log has it).
    Internal,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, title, detail) = match self {
            Failure::NotFound(detail) => (StatusCode::NOT_FOUND, "Not found", detail),
            Failure::Unavailable(detail) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The state is unavailable",
                format!("{detail}. Nothing was changed; try again in a moment."),
            ),
            Failure::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The request failed; the service's log says why. Nothing was changed.".to_owned(),
            ),
        };
        let body = html! {
            h1 { (title) }
            p.alert role="alert" { (detail) }
            p { a href="/groups" { "Back to the groups" } }
        };
        (status, layout::bare(title, body)).into_response()
    }
}
