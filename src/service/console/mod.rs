//! The web console at `/` of `admin_listen` (SPEC §4): the seed's portal flows for a person,
//! server-rendered.

use std::sync::Arc;

use axum::Router;

use super::Shared;

/// The console's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().with_state(shared)
}
