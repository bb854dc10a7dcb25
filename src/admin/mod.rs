//! The administrator's operations on end-user groups, shared by the CLI (`idpsync groups …`), the
//! admin REST API and the web console, so the three validate alike and write through the same
//! checked apply (SPEC §3–4).
//!
//! The configuration's rules are checked here — declared groups own their name, description and
//! roles; roles must be in the `[[app]]` catalogue; direct memberships of a stage a remote store
//! serves are edited in the store — and the store's rules inside the state's transaction. Every
//! error says what is wrong in words a person can act on, and is one [`AdminError`] kind that the
//! CLI turns into an exit status and the API into an HTTP status.

mod audit;
mod groups;
mod mappings;
mod refusals;

pub use audit::{AuditQuery, audit_filter};
pub use groups::{CreateGroup, Edits, stage_of};
pub use mappings::{MappingDoc, mapping_docs};
pub use refusals::{RefusalDoc, approval_of, refusal_docs};

use crate::state::{LostRoles, StateError};

/// The audit and run-record actor of edits and runs made through the admin API and the console.
pub const ACTOR: &str = "api";

/// Why an administrator's operation was not carried out. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The group (or user) asked for does not exist: HTTP 404, exit 2.
    #[error("{0}")]
    NotFound(String),
    /// The configuration declares the group, which owns what was to change: HTTP 409, exit 2.
    #[error("{0}")]
    Declared(String),
    /// The request clashes with what the store holds (a duplicate name, a user who is not a
    /// direct member): HTTP 409, exit 2.
    #[error("{0}")]
    Conflict(String),
    /// The group still has members and `remove_members` was not given: HTTP 409, exit 3.
    #[error("{detail}")]
    MembersRemain {
        /// What remains, in words.
        detail: String,
        /// Each member and the roles it would lose.
        lost: Vec<LostRoles>,
    },
    /// A role that is malformed or outside the `[[app]]` catalogue: HTTP 422, exit 2.
    #[error("{0}")]
    UnknownRole(String),
    /// A direct-membership edit in a stage a remote store serves: HTTP 409, exit 2.
    #[error("{0}")]
    RemoteStage(String),
    /// A malformed value (name, user key, stage) or nothing to change: HTTP 422, exit 2.
    #[error("{0}")]
    Invalid(String),
    /// The state could not be read or written: HTTP 503, exit 1.
    #[error(transparent)]
    State(StateError),
}

impl AdminError {
    /// SPEC §3's exit status for the CLI.
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::MembersRemain { .. } => 3,
            AdminError::State(StateError::Invalid(_)) => 2,
            AdminError::State(StateError::Refused(_)) => 3,
            AdminError::State(_) => 1,
            _ => 2,
        }
    }
}

impl From<StateError> for AdminError {
    /// The store's own refusals, found inside its transaction (a name taken meanwhile), are
    /// conflicts; anything else is the state failing.
    fn from(e: StateError) -> Self {
        match e {
            StateError::Invalid(detail) | StateError::Refused(detail) => {
                AdminError::Conflict(detail)
            }
            other => AdminError::State(other),
        }
    }
}
