//! `/Users`: listing (`userName eq` case-insensitive, `externalId eq` case-exact, nothing else),
//! reading one (404 ResourceNotFound), creating one (`userName` required and ≤128 characters,
//! a single e-mail at most, 409 `uniqueness` for a taken userName).

use std::sync::Arc;

use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use super::query::{self, Params};
use super::store::{User, user_json};
use super::{State, bump, error, invalid, json_body, scim};

/// `GET /Users`.
pub(super) async fn list(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    if let Err(r) = state.admit(&headers, false) {
        return r;
    }
    bump(if params.contains_key("filter") {
        &state.counts.user_lookups
    } else {
        &state.counts.user_pages
    });
    let cap = state.switches.lock().unwrap().page_cap;
    let paging = match query::paging(&params, cap) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let dir = state.dir.lock().unwrap();
    let render = |u: &&User| user_json(u, &state.base);
    let Some(filter) = params.get("filter") else {
        let all: Vec<&User> = dir.users.iter().collect();
        return scim(StatusCode::OK, query::list(&all, paging, render));
    };
    let clauses = match query::parse_filter(filter) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let selected: Vec<&User> = match clauses.as_slice() {
        [(attr, v)] if attr == "username" => dir.user_by_name(v).into_iter().collect(),
        [(attr, v)] if attr == "externalid" => dir
            .users
            .iter()
            .filter(|u| u.external_id.as_deref() == Some(v.as_str()))
            .collect(),
        _ => {
            return invalid(
                "invalidFilter",
                "Users can only be filtered by userName eq or externalId eq.",
            );
        }
    };
    scim(StatusCode::OK, query::list(&selected, paging, render))
}

/// `GET /Users/{id}`.
pub(super) async fn get_one(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = state.admit(&headers, false) {
        return r;
    }
    bump(&state.counts.user_gets);
    let dir = state.dir.lock().unwrap();
    match dir.user(&id) {
        Some(u) => scim(StatusCode::OK, user_json(u, &state.base)),
        None => error(
            StatusCode::NOT_FOUND,
            None,
            &format!("ResourceNotFoundException: User {id} not found."),
        ),
    }
}

/// A string member of a JSON object, its key matched case-insensitively.
pub(super) fn text<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| v.as_str())
}

/// A member of a JSON object, its key matched case-insensitively.
pub(super) fn field<'a>(body: &'a Value, key: &str) -> Option<&'a Value> {
    body.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The user a create body describes.
fn user_from(body: &Value) -> Result<User, Response> {
    let Some(user_name) = text(body, "userName").filter(|n| !n.trim().is_empty()) else {
        return Err(invalid("invalidValue", "userName is required."));
    };
    if user_name.chars().count() > 128 {
        return Err(invalid(
            "invalidValue",
            "userName must be at most 128 characters.",
        ));
    }
    let mut user = User::named(user_name);
    if let Some(d) = text(body, "displayName") {
        user.display_name = d.to_owned();
    }
    user.external_id = text(body, "externalId").map(str::to_owned);
    user.name = field(body, "name").filter(|n| n.is_object()).cloned();
    if let Some(active) = field(body, "active") {
        user.active = active.as_bool().unwrap_or(true);
    }
    match field(body, "emails") {
        None | Some(Value::Null) => {}
        Some(Value::Array(emails)) if emails.len() <= 1 => {
            user.email = emails
                .first()
                .and_then(|e| e.get("value"))
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        Some(Value::Array(_)) => {
            return Err(invalid(
                "invalidValue",
                "Multiple values for emails are not supported.",
            ));
        }
        Some(_) => return Err(invalid("invalidValue", "emails must be an array.")),
    }
    Ok(user)
}

/// `POST /Users`.
pub(super) async fn create(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = state.admit(&headers, true) {
        return r;
    }
    bump(&state.counts.user_creates);
    let user = match json_body(&headers, &body).and_then(|b| user_from(&b)) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut dir = state.dir.lock().unwrap();
    let Ok(id) = dir.insert_user(user) else {
        return error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            "Duplicate userName: a user with this userName already exists.",
        );
    };
    let Some(u) = dir.user(&id) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, None, "lost the user");
    };
    let mut r = scim(StatusCode::CREATED, user_json(u, &state.base));
    if let Ok(v) = HeaderValue::from_str(&format!("{}/Users/{id}", state.base)) {
        r.headers_mut().insert("location", v);
    }
    r
}
