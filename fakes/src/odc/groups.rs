//! `/groups`, `/groups/{key}` and `/groups/{key}/users`: end-user groups of a stage, their
//! members (Assigned and Mapped), and the PATCH that changes only Assigned membership —
//! idempotently, atomically, at most 1000 keys per array.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::http::{
    Params, codes, invalid, json_body, ok_json, page, page_ask, problem, uuid, uuids,
};
use super::store::{self, Store, now_rfc3339};
use super::{State, bump, lock};

/// The most keys an array of a membership change (or `POST /groups`' `userKeys`) may hold.
/// ODC documents no cap; this fake's is its own.
pub const MAX_KEYS: usize = 1000;

type Answer = Result<Response, Response>;

fn no_group(instance: &str) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        "The group was not found.",
        instance,
    )
}

fn name_taken(instance: &str) -> Response {
    problem(
        StatusCode::CONFLICT,
        codes::GROUP_EXISTS,
        "A group with the same name already exists in this environment.",
        instance,
    )
}

fn status(code: StatusCode) -> Response {
    (code, Body::empty()).into_response()
}

/// Users named by `keys` that do not exist, as a 400.
fn check_users(store: &Store, keys: &[String], instance: &str) -> Result<Vec<usize>, Response> {
    let unknown: Vec<&str> = keys
        .iter()
        .filter(|k| store.user(k).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            codes::UNKNOWN_USER,
            &format!("Users not found: {}.", unknown.join(", ")),
            instance,
        ));
    }
    Ok(keys.iter().filter_map(|k| store.user(k)).collect())
}

/// `GET /groups?nameContains&environmentKey|environmentKeys&limit&offset`.
pub(super) async fn list(Extract(s): Extract<Arc<State>>, headers: HeaderMap, uri: Uri) -> Answer {
    let at = uri.path();
    s.admit(&headers, at, false)?;
    bump(&s.counts.group_lookups);
    let p = Params::of(&uri);
    let ask = page_ask(&p, at)?;
    let name = p.get("nameContains").map(str::to_lowercase);
    let many = p.list("environmentKeys");
    let envs: Option<Vec<String>> = match p.get("environmentKey") {
        Some(_) if !many.is_empty() => {
            return Err(invalid(
                "environmentKey and environmentKeys are mutually exclusive.",
                at,
            ));
        }
        Some(one) => Some(vec![uuid(one, "environmentKey", at)?]),
        None if many.is_empty() => None,
        None => Some(uuids(&many, "environmentKeys", usize::MAX, at)?),
    };
    let store = lock(&s.store);
    let mut found: Vec<&store::GroupRec> = store
        .groups
        .iter()
        .filter(|g| envs.as_ref().is_none_or(|e| e.contains(&g.env)))
        .filter(|g| {
            name.as_ref()
                .is_none_or(|n| g.name.to_lowercase().contains(n.as_str()))
        })
        .collect();
    found.sort_by_cached_key(|g| (g.name.to_lowercase(), g.key.clone()));
    Ok(page(&found, ask, |g| store::group_json(g)))
}

/// `GET /groups/{key}`.
pub(super) async fn read(
    Extract(s): Extract<Arc<State>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    let at = uri.path();
    s.admit(&headers, at, false)?;
    bump(&s.counts.group_lookups);
    let key = uuid(&key, "key", at)?;
    let store = lock(&s.store);
    let g = store.group(&key).ok_or_else(|| no_group(at))?;
    Ok(ok_json(
        StatusCode::OK,
        &store::group_json(&store.groups[g]),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewGroup {
    name: Option<String>,
    description: Option<String>,
    environment_key: Option<String>,
    application_role_keys: Option<Vec<String>>,
    user_keys: Option<Vec<String>>,
}

/// `POST /groups` → 201 `{"key"}`.
pub(super) async fn create(
    Extract(s): Extract<Arc<State>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Answer {
    let at = uri.path();
    s.admit(&headers, at, true)?;
    let req: NewGroup = json_body(&headers, &body, at)?;
    let name = req
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| invalid("The name field is required.", at))?;
    let env = req
        .environment_key
        .ok_or_else(|| invalid("The environmentKey field is required.", at))?;
    let env = uuid(&env, "environmentKey", at)?;
    let roles = uuids(
        &req.application_role_keys.unwrap_or_default(),
        "applicationRoleKeys",
        MAX_KEYS,
        at,
    )?;
    let users = uuids(&req.user_keys.unwrap_or_default(), "userKeys", MAX_KEYS, at)?;
    let mut store = lock(&s.store);
    if !store.envs.contains_key(&env) {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            codes::UNKNOWN_ENVIRONMENT,
            &format!("Environment {env} not found."),
            at,
        ));
    }
    if !roles.is_empty() {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            codes::UNKNOWN_ROLE,
            &format!("Application roles not found: {}.", roles.join(", ")),
            at,
        ));
    }
    let members: BTreeSet<usize> = check_users(&store, &users, at)?.into_iter().collect();
    if store.group_named(&env, &name, None).is_some() {
        return Err(name_taken(at));
    }
    let key = store.insert_group(&env, name, req.description, members);
    drop(store);
    bump(&s.counts.group_creates);
    let mut r = ok_json(StatusCode::CREATED, &json!({ "key": key }));
    if let Ok(location) = HeaderValue::from_str(&format!("{}{at}/{key}", s.base)) {
        r.headers_mut().insert(header::LOCATION, location);
    }
    Ok(r)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupChange {
    name: Option<String>,
    description: Option<String>,
}

/// `PATCH /groups/{key}` `{name?, description?}` → 204 (a null or absent field is left as is).
pub(super) async fn update(
    Extract(s): Extract<Arc<State>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Answer {
    let at = uri.path();
    s.admit(&headers, at, true)?;
    bump(&s.counts.group_updates);
    let key = uuid(&key, "key", at)?;
    let req: GroupChange = json_body(&headers, &body, at)?;
    if req.name.as_ref().is_some_and(|n| n.trim().is_empty()) {
        return Err(invalid("The name must not be empty.", at));
    }
    let mut store = lock(&s.store);
    let g = store.group(&key).ok_or_else(|| no_group(at))?;
    if let Some(name) = &req.name {
        let env = store.groups[g].env.clone();
        if store.group_named(&env, name, Some(g)).is_some() {
            return Err(name_taken(at));
        }
    }
    let group = &mut store.groups[g];
    if let Some(name) = req.name {
        group.name = name;
    }
    if let Some(description) = req.description {
        group.description = Some(description);
    }
    group.updated_at = now_rfc3339();
    Ok(status(StatusCode::NO_CONTENT))
}

/// `DELETE /groups/{key}` → 204.
pub(super) async fn delete(
    Extract(s): Extract<Arc<State>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    let at = uri.path();
    s.admit(&headers, at, true)?;
    bump(&s.counts.group_deletes);
    let key = uuid(&key, "key", at)?;
    let mut store = lock(&s.store);
    let g = store.group(&key).ok_or_else(|| no_group(at))?;
    store.groups.remove(g);
    Ok(status(StatusCode::NO_CONTENT))
}

#[derive(Clone, Copy, PartialEq)]
enum Membership {
    Assigned,
    Mapped,
}

/// `GET /groups/{key}/users?membershipType&nameOrEmailContains&userKey|userKeys&limit&offset`.
pub(super) async fn members(
    Extract(s): Extract<Arc<State>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Answer {
    let at = uri.path();
    s.admit(&headers, at, false)?;
    bump(&s.counts.member_pages);
    let key = uuid(&key, "key", at)?;
    let p = Params::of(&uri);
    let ask = page_ask(&p, at)?;
    let kind = match p.get("membershipType") {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("assigned") => Some(Membership::Assigned),
        Some(v) if v.eq_ignore_ascii_case("mapped") => Some(Membership::Mapped),
        Some(v) => {
            return Err(invalid(
                &format!("The value '{v}' is not a valid membershipType (Assigned, Mapped)."),
                at,
            ));
        }
    };
    let mut keys = p.list("userKeys");
    keys.extend(p.get("userKey"));
    let keys = uuids(&keys, "userKeys", 20, at)?;
    let text = p.get("nameOrEmailContains").map(str::to_lowercase);
    let store = lock(&s.store);
    let g = &store.groups[store.group(&key).ok_or_else(|| no_group(at))?];
    let pool: BTreeSet<usize> = match kind {
        Some(Membership::Assigned) => g.assigned.clone(),
        Some(Membership::Mapped) => g.mapped.clone(),
        None => g.assigned.union(&g.mapped).copied().collect(),
    };
    let mut found: Vec<usize> = pool
        .into_iter()
        .filter(|i| {
            let u = &store.users[*i];
            (keys.is_empty() || keys.contains(&u.key))
                && text.as_ref().is_none_or(|t| {
                    u.name.to_lowercase().contains(t.as_str())
                        || u.email.to_lowercase().contains(t.as_str())
                })
        })
        .collect();
    store.sort_users(&mut found);
    Ok(page(&found, ask, |i| {
        let mut types = Vec::new();
        if kind != Some(Membership::Mapped) && g.assigned.contains(i) {
            types.push("Assigned");
        }
        if kind != Some(Membership::Assigned) && g.mapped.contains(i) {
            types.push("Mapped");
        }
        json!({"membershipTypes": types, "user": store.member_json(*i)})
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberChange {
    user_keys_to_add: Option<Vec<String>>,
    user_keys_to_remove: Option<Vec<String>>,
}

/// `PATCH /groups/{key}/users` `{"userKeysToAdd","userKeysToRemove"}` → 200, no body.
pub(super) async fn change_members(
    Extract(s): Extract<Arc<State>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Answer {
    let at = uri.path();
    s.admit(&headers, at, true)?;
    bump(&s.counts.patch_users);
    let key = uuid(&key, "key", at)?;
    let req: MemberChange = json_body(&headers, &body, at)?;
    let add = uuids(
        &req.user_keys_to_add.unwrap_or_default(),
        "userKeysToAdd",
        MAX_KEYS,
        at,
    )?;
    let remove = uuids(
        &req.user_keys_to_remove.unwrap_or_default(),
        "userKeysToRemove",
        MAX_KEYS,
        at,
    )?;
    if let Some(both) = add.iter().find(|k| remove.contains(k)) {
        return Err(invalid(
            &format!("User {both} is both in userKeysToAdd and userKeysToRemove."),
            at,
        ));
    }
    let mut store = lock(&s.store);
    let g = store.group(&key).ok_or_else(|| no_group(at))?;
    let add = check_users(&store, &add, at)?;
    let remove = check_users(&store, &remove, at)?;
    let group = &mut store.groups[g];
    let mut changed = 0;
    for u in add {
        changed += u64::from(group.assigned.insert(u));
    }
    for u in remove {
        changed += u64::from(group.assigned.remove(&u));
    }
    drop(store);
    s.counts
        .member_changes
        .fetch_add(changed, std::sync::atomic::Ordering::Relaxed);
    Ok(status(StatusCode::OK))
}
