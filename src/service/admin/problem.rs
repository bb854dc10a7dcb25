//! Errors of the admin API as RFC 7807 problem documents (`application/problem+json`), each
//! naming what is wrong and never echoing a token.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::admin::AdminError;

/// An RFC 7807 problem document.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct Problem {
    /// A URI naming the kind of problem: `urn:idpsync:problem:<code>`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The kind in words.
    pub(crate) title: &'static str,
    /// The HTTP status.
    pub(crate) status: u16,
    /// What is wrong with this request, and what would let it through.
    pub(crate) detail: String,
    /// For a refused delete: each member and the roles it would lose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) members: Option<Vec<LostDoc>>,
}

/// A member of a group a delete was refused for, and the roles it would lose.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct LostDoc {
    /// The user key.
    pub(crate) user: String,
    /// Roles no other group of the stage gives it.
    pub(crate) roles: Vec<String>,
}

impl Problem {
    /// A problem of `status` with the short `code` of its `type`.
    pub(crate) fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("urn:idpsync:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            members: None,
        }
    }

    /// `400 bad_request`.
    pub(crate) fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// `404 not_found`.
    pub(crate) fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// `503 unavailable`: the state could not be read or written.
    pub(crate) fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }
}

/// The HTTP status and the problem code of an administrator's refused operation: one mapping
/// for the API's problem documents and the console's pages.
pub(crate) fn status_of(e: &AdminError) -> (StatusCode, &'static str) {
    match e {
        AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        AdminError::Declared(_) => (StatusCode::CONFLICT, "declared_group"),
        AdminError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        AdminError::RemoteStage(_) => (StatusCode::CONFLICT, "remote_stage"),
        AdminError::MembersRemain { .. } => (StatusCode::CONFLICT, "members_remain"),
        AdminError::UnknownRole(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_role"),
        AdminError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        AdminError::State(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    }
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Problem {
        let (status, code) = status_of(&e);
        match e {
            AdminError::MembersRemain { detail, lost } => {
                let mut problem = Problem::new(
                    status,
                    code,
                    format!("{detail}; delete it with remove_members=true to remove them too"),
                );
                problem.members = Some(
                    lost.into_iter()
                        .map(|l| LostDoc {
                            user: l.user,
                            roles: l.roles,
                        })
                        .collect(),
                );
                problem
            }
            AdminError::State(e) => {
                tracing::error!(error = %e, "Admin API: the state could not be read or written.");
                Problem::new(
                    status,
                    code,
                    "the state could not be read or written; see the service's log",
                )
            }
            other => Problem::new(status, code, other.to_string()),
        }
    }
}

impl From<crate::state::StateError> for Problem {
    fn from(e: crate::state::StateError) -> Problem {
        Problem::from(AdminError::State(e))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}
