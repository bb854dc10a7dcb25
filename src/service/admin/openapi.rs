//! The admin API's routes and its OpenAPI 3 document, built together from the handlers'
//! annotations (utoipa), so a route cannot be served without being documented.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{groups, reads, reconcile};
use crate::service::Shared;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "idpsync admin API",
        description = "End-user groups per stage, their roles and direct members, mappings, runs and audit (SPEC §4). \
                       Every call needs `Authorization: Bearer <admin token>`; errors are RFC 7807 problem documents.",
    ),
    modifiers(&AdminToken),
    security(("admin_token" = [])),
    tags(
        (name = "groups", description = "End-user groups"),
        (name = "users", description = "A user's groups and roles"),
        (name = "mappings", description = "IdP group → end-user group"),
        (name = "runs", description = "Reconciles, their history and refusals"),
        (name = "audit", description = "Every applied change"),
    )
)]
struct ApiDoc;

/// The bearer scheme every operation needs.
struct AdminToken;

impl utoipa::Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The API's routes (without authentication; the caller adds it) and their document.
pub(super) fn api(shared: Arc<Shared>) -> (Router, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::show, groups::update, groups::delete))
        .routes(routes!(groups::roles))
        .routes(routes!(groups::users))
        .routes(routes!(reads::user))
        .routes(routes!(reads::mappings))
        .routes(routes!(reads::runs))
        .routes(routes!(reconcile::run))
        .routes(routes!(reads::audit))
        .routes(routes!(reads::refusals))
        .routes(routes!(reconcile::approve))
        .routes(routes!(reconcile::reconcile))
        .with_state(shared)
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    (router, doc)
}

/// `GET /v1/admin/openapi.json`.
pub(super) async fn serve(doc: Arc<utoipa::openapi::OpenApi>) -> axum::response::Response {
    Json(doc.as_ref().clone()).into_response()
}
