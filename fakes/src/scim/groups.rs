//! `/Groups` but PATCH: listing (`displayName eq` case-insensitive, `externalId eq`,
//! `id eq … and members eq …` answering 1 or 0 groups, `members eq …` a user's groups; nothing
//! else), reading one (404 ResourceNotFound), creating one (`displayName` required and ≤1024
//! characters, at most 100 members, 409 `uniqueness` for a taken name), deleting one (204).
//! Every group comes back with empty `members`, as from AWS.

use std::sync::Arc;

use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use super::query::{self, Params};
use super::store::{Group, etag, group_json};
use super::users::{field, text};
use super::{State, bump, error, invalid, json_body, scim};

/// The 404 for a group id.
pub(super) fn no_group(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        None,
        &format!("ResourceNotFoundException: Group {id} not found."),
    )
}

/// A group response, with its `ETag` header when ETags are on.
pub(super) fn group_response(state: &State, status: StatusCode, g: &Group) -> Response {
    let etags = state.switches.lock().unwrap().etag;
    let mut r = scim(status, group_json(g, &state.base, etags));
    if etags && let Ok(v) = HeaderValue::from_str(&etag(g.version)) {
        r.headers_mut().insert("etag", v);
    }
    r
}

/// The group queries AWS answers.
enum Select {
    All,
    Named(String),
    External(String),
    Check(String, String),
    OfUser(String),
}

/// What a `filter` selects, counted by kind (a bad filter counts as a lookup).
fn select(state: &State, params: &Params) -> Result<Select, Response> {
    let c = &state.counts;
    let Some(filter) = params.get("filter") else {
        bump(&c.group_pages);
        return Ok(Select::All);
    };
    let clauses = query::parse_filter(filter).inspect_err(|_| bump(&c.group_lookups))?;
    let pairs: Vec<(&str, &str)> = clauses
        .iter()
        .map(|(a, v)| (a.as_str(), v.as_str()))
        .collect();
    let (what, counter) = match pairs.as_slice() {
        [("displayname", v)] => (Select::Named(v.to_string()), &c.group_lookups),
        [("externalid", v)] => (Select::External(v.to_string()), &c.group_lookups),
        [("id", g), ("members", u)] | [("members", u), ("id", g)] => (
            Select::Check(g.to_string(), u.to_string()),
            &c.membership_checks,
        ),
        [("members", u)] => (Select::OfUser(u.to_string()), &c.user_group_queries),
        _ => {
            bump(&c.group_lookups);
            return Err(invalid(
                "invalidFilter",
                "Groups can only be filtered by displayName eq, externalId eq, members eq, \
                 or id eq and members eq.",
            ));
        }
    };
    bump(counter);
    Ok(what)
}

/// `GET /Groups`.
pub(super) async fn list(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    if let Err(r) = state.admit(&headers, false) {
        return r;
    }
    let (cap, etags) = {
        let s = state.switches.lock().unwrap();
        (s.page_cap, s.etag)
    };
    let (select, paging) =
        match select(&state, &params).and_then(|s| Ok((s, query::paging(&params, cap)?))) {
            Ok(v) => v,
            Err(r) => return r,
        };
    let dir = state.dir.lock().unwrap();
    let selected: Vec<&Group> = match &select {
        Select::All => dir.groups.iter().collect(),
        Select::Named(v) => dir
            .group_by_name(v)
            .map(|i| &dir.groups[i])
            .into_iter()
            .collect(),
        Select::External(v) => dir
            .groups
            .iter()
            .filter(|g| g.external_id.as_deref() == Some(v.as_str()))
            .collect(),
        Select::Check(g, u) => dir
            .group(g)
            .filter(|group| group.members.contains(u))
            .into_iter()
            .collect(),
        Select::OfUser(u) => dir
            .groups
            .iter()
            .filter(|g| g.members.contains(u))
            .collect(),
    };
    let render = |g: &&Group| group_json(g, &state.base, etags);
    scim(StatusCode::OK, query::list(&selected, paging, render))
}

/// `GET /Groups/{id}`.
pub(super) async fn get_one(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = state.admit(&headers, false) {
        return r;
    }
    bump(&state.counts.group_gets);
    let dir = state.dir.lock().unwrap();
    match dir.group(&id) {
        Some(g) => group_response(&state, StatusCode::OK, g),
        None => no_group(&id),
    }
}

/// The member ids of a `[{"value": id}, …]` array.
pub(super) fn member_ids(value: &Value) -> Result<Vec<String>, Response> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        Value::Object(_) => std::slice::from_ref(value),
        _ => return Err(invalid("invalidValue", "members must be an array.")),
    };
    items
        .iter()
        .map(|m| {
            text(m, "value")
                .map(str::to_owned)
                .ok_or_else(|| invalid("invalidValue", "Each member needs a string value."))
        })
        .collect()
}

/// `POST /Groups`.
pub(super) async fn create(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = state.admit(&headers, true) {
        return r;
    }
    bump(&state.counts.group_creates);
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(name) = text(&body, "displayName").filter(|n| !n.trim().is_empty()) else {
        return invalid("invalidValue", "displayName is required.");
    };
    if name.chars().count() > 1024 {
        return invalid(
            "invalidValue",
            "displayName must be at most 1024 characters.",
        );
    }
    let members = match field(&body, "members") {
        None | Some(Value::Null) => Vec::new(),
        Some(m) => match member_ids(m) {
            Ok(ids) => ids,
            Err(r) => return r,
        },
    };
    if members.len() > 100 {
        return invalid(
            "invalidValue",
            &format!(
                "A group can be created with at most 100 members; got {}.",
                members.len()
            ),
        );
    }
    let mut dir = state.dir.lock().unwrap();
    if let Some(unknown) = members.iter().find(|m| dir.user(m).is_none()) {
        return error(
            StatusCode::NOT_FOUND,
            None,
            &format!("ResourceNotFoundException: User {unknown} not found."),
        );
    }
    let external_id = text(&body, "externalId").map(str::to_owned);
    let Ok(id) = dir.insert_group(name, external_id) else {
        return error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            "Duplicate GroupDisplayName: a group with this displayName already exists.",
        );
    };
    let Some(g) = dir.group_mut(&id) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, None, "lost the group");
    };
    g.members.extend(members);
    let mut r = group_response(&state, StatusCode::CREATED, g);
    if let Ok(v) = HeaderValue::from_str(&format!("{}/Groups/{id}", state.base)) {
        r.headers_mut().insert("location", v);
    }
    r
}

/// `DELETE /Groups/{id}`.
pub(super) async fn delete(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = state.admit(&headers, true) {
        return r;
    }
    bump(&state.counts.group_deletes);
    let mut dir = state.dir.lock().unwrap();
    let Some(g) = dir.group(&id) else {
        return no_group(&id);
    };
    if let Err(r) = state.check_if_match(&headers, g.version) {
        return r;
    }
    dir.delete_group(&id);
    StatusCode::NO_CONTENT.into_response()
}
