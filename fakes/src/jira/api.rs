//! The endpoints: `group/bulk`, `group` (create), `group/member`, `group/user` (add, remove) and
//! `user/search`. Group pages clamp `maxResults` to 50 (or the `page_cap` switch) and answer
//! PageBeans; bad parameters and bodies answer 400, unknown groups and users 404, always as an
//! `ErrorCollection`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::gate::{Kind, State, error};
use super::site::{Site, User};

/// The most users one search answers.
const SEARCH_CAP: usize = 100;
/// The most items a group or member page holds.
const PAGE_CAP: usize = 50;
/// The longest `accountId` accepted.
const ACCOUNT_ID_MAX: usize = 128;
/// The longest group name accepted.
const GROUP_NAME_MAX: usize = 255;

type Pairs = Vec<(String, String)>;

fn pairs(raw: Option<String>) -> Pairs {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn first<'a>(p: &'a Pairs, name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn all<'a>(p: &'a Pairs, name: &str) -> Vec<&'a str> {
    p.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn bad(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// `startAt` (default 0) and `maxResults` (default 50, at least 1, clamped to `cap`).
fn paging(p: &Pairs, cap: usize) -> Result<(usize, usize), Response> {
    let start = match first(p, "startAt") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| bad("The startAt parameter must be a non-negative integer."))?,
    };
    let max = match first(p, "maxResults") {
        None => 50,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(bad("The maxResults parameter must be a positive integer.")),
        },
    };
    Ok((start, max.min(cap.max(1))))
}

/// A PageBean; `keep` are the filter parameters repeated in `self` and `nextPage`.
fn page_bean(
    state: &State,
    path: &str,
    keep: &[(&str, &str)],
    (start, max): (usize, usize),
    total: usize,
    values: Vec<Value>,
) -> Value {
    let url = |at: usize| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in keep {
            q.append_pair(k, v);
        }
        q.append_pair("maxResults", &max.to_string());
        q.append_pair("startAt", &at.to_string());
        format!("{}{path}?{}", state.base, q.finish())
    };
    let is_last = start + max >= total;
    let mut bean = json!({"self": url(start), "maxResults": max, "startAt": start,
        "total": total, "isLast": is_last, "values": values});
    if !is_last {
        bean["nextPage"] = json!(url(start + max));
    }
    bean
}

fn group_cap(state: &State) -> usize {
    state.lock_switches().page_cap.min(PAGE_CAP)
}

fn user_json(state: &State, u: &User) -> Value {
    let mut v = json!({
        "self": format!("{}/rest/api/3/user?accountId={}", state.base, u.account_id),
        "accountId": u.account_id, "accountType": "atlassian", "displayName": u.display_name,
        "active": u.active, "timeZone": "UTC", "locale": "en_US",
    });
    if !u.email_hidden {
        v["emailAddress"] = json!(u.email);
    }
    v
}

fn group_json(state: &State, site: &Site, g: usize) -> Value {
    let Some(group) = site.group(g) else {
        return Value::Null;
    };
    json!({"name": group.name, "groupId": group.id,
        "self": format!("{}/rest/api/3/group?groupId={}", state.base, group.id),
        "users": {"size": group.members.len(), "items": [], "max-results": 50,
            "start-index": 0, "end-index": 0},
        "expand": "users"})
}

/// The group a `groupId` or `groupname` parameter names (exactly one of them).
fn target_group(site: &Site, p: &Pairs) -> Result<usize, Response> {
    let found = match (first(p, "groupId"), first(p, "groupname")) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "You must provide either a groupId or a groupname, not both.",
            ));
        }
        (None, None) | (Some(""), None) | (None, Some("")) => {
            return Err(bad("You must provide a groupId or a groupname."));
        }
        (Some(id), None) => site.group_by_id(id),
        (None, Some(name)) => site.group_by_name(name),
    };
    found.ok_or_else(|| error(StatusCode::NOT_FOUND, "The group does not exist."))
}

fn account_id(v: Option<&str>) -> Result<&str, Response> {
    match v {
        None | Some("") => Err(bad("The accountId must be provided.")),
        Some(a) if a.len() > ACCOUNT_ID_MAX => {
            Err(bad("The accountId must not be longer than 128 characters."))
        }
        Some(a) => Ok(a),
    }
}

fn user_not_found(account_id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!("User with accountId '{account_id}' does not exist."),
    )
}

fn body_json(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            bad("Invalid request payload. Refer to the REST API documentation and try again.")
        })
}

fn flat(r: Result<Response, Response>) -> Response {
    r.unwrap_or_else(|e| e)
}

/// `GET /rest/api/3/group/bulk`.
pub(super) async fn bulk(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    state.gate(&headers, Kind::Lookup, |s| {
        flat((|| {
            let p = pairs(raw);
            let paging = paging(&p, group_cap(s))?;
            let names: Vec<String> = all(&p, "groupName")
                .iter()
                .map(|n| n.to_lowercase())
                .collect();
            let ids = all(&p, "groupId");
            let site = s.lock_site();
            let selected: Vec<Value> = site
                .sorted_groups()
                .into_iter()
                .filter(|g| {
                    (names.is_empty() && ids.is_empty())
                        || names.contains(&g.name.to_lowercase())
                        || ids.contains(&g.id.as_str())
                })
                .map(|g| json!({"name": g.name, "groupId": g.id}))
                .collect();
            let total = selected.len();
            let values = selected.into_iter().skip(paging.0).take(paging.1).collect();
            let keep: Vec<(&str, &str)> = p
                .iter()
                .filter(|(k, _)| k == "groupName" || k == "groupId")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let bean = page_bean(s, "/rest/api/3/group/bulk", &keep, paging, total, values);
            Ok(axum::Json(bean).into_response())
        })())
    })
}

/// `POST /rest/api/3/group`.
pub(super) async fn create_group(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.gate(&headers, Kind::Create, |s| {
        flat((|| {
            let body = body_json(&body)?;
            let name = match body.get("name").and_then(Value::as_str).map(str::trim) {
                None | Some("") => return Err(bad("You must specify a group name.")),
                Some(n) if n.chars().count() > GROUP_NAME_MAX => {
                    return Err(bad("The group name must not exceed 255 characters."));
                }
                Some(n) => n,
            };
            let mut site = s.lock_site();
            if let Some(existing) = site.group_by_name(name).and_then(|g| site.group(g)) {
                return Err(bad(&format!(
                    "A group with name '{}' already exists.",
                    existing.name
                )));
            }
            let g = site.add_group(name);
            let group = group_json(s, &site, g);
            Ok((StatusCode::CREATED, axum::Json(group)).into_response())
        })())
    })
}

/// `GET /rest/api/3/group/member`.
pub(super) async fn members(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    state.gate(&headers, Kind::MemberPage, |s| {
        flat((|| {
            let p = pairs(raw);
            let paging = paging(&p, group_cap(s))?;
            let inactive = match first(&p, "includeInactiveUsers") {
                None => false,
                Some(v) if v.eq_ignore_ascii_case("true") => true,
                Some(v) if v.eq_ignore_ascii_case("false") => false,
                Some(_) => {
                    return Err(bad("The includeInactiveUsers parameter must be a boolean."));
                }
            };
            let site = s.lock_site();
            let g = target_group(&site, &p)?;
            let group = site
                .group(g)
                .ok_or_else(|| bad("The group does not exist."))?;
            let visible = || {
                group
                    .members
                    .iter()
                    .map(|&(_, u)| &site.users[u])
                    .filter(|u| inactive || u.active)
            };
            let total = visible().count();
            let values = visible()
                .skip(paging.0)
                .take(paging.1)
                .map(|u| user_json(s, u))
                .collect();
            let mut keep: Vec<(&str, &str)> = p
                .iter()
                .filter(|(k, _)| k == "groupId" || k == "groupname")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            keep.push((
                "includeInactiveUsers",
                if inactive { "true" } else { "false" },
            ));
            let bean = page_bean(s, "/rest/api/3/group/member", &keep, paging, total, values);
            Ok(axum::Json(bean).into_response())
        })())
    })
}

/// `POST /rest/api/3/group/user`.
pub(super) async fn add_user(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    state.gate(&headers, Kind::AddUser, |s| {
        flat((|| {
            let p = pairs(raw);
            let mut site = s.lock_site();
            let g = target_group(&site, &p)?;
            let body = body_json(&body)?;
            let account = account_id(body.get("accountId").and_then(Value::as_str))?;
            let u = site
                .user_by_account(account)
                .ok_or_else(|| user_not_found(account))?;
            if !site.add_member(g, u) {
                let name = site.group(g).map(|g| g.name.clone()).unwrap_or_default();
                return Err(bad(&format!(
                    "Cannot add user. User is already a member of '{name}'"
                )));
            }
            let group = group_json(s, &site, g);
            Ok((StatusCode::CREATED, axum::Json(group)).into_response())
        })())
    })
}

/// `DELETE /rest/api/3/group/user`.
pub(super) async fn remove_user(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    state.gate(&headers, Kind::RemoveUser, |s| {
        flat((|| {
            let p = pairs(raw);
            let account = account_id(first(&p, "accountId"))?;
            let mut site = s.lock_site();
            let g = target_group(&site, &p)?;
            let u = site
                .user_by_account(account)
                .ok_or_else(|| user_not_found(account))?;
            if !site.remove_member(g, u) {
                let name = site.group(g).map(|g| g.name.clone()).unwrap_or_default();
                return Err(error(
                    StatusCode::NOT_FOUND,
                    &format!("Cannot remove user. User is not a member of '{name}'"),
                ));
            }
            Ok(StatusCode::OK.into_response())
        })())
    })
}

/// `GET /rest/api/3/user/search`.
pub(super) async fn search(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    state.gate(&headers, Kind::Search, |s| {
        flat((|| {
            let p = pairs(raw);
            let (start, max) = paging(&p, SEARCH_CAP)?;
            let query = first(&p, "query").filter(|q| !q.trim().is_empty());
            let account = first(&p, "accountId").filter(|a| !a.is_empty());
            if query.is_none() && account.is_none() {
                return Err(bad(
                    "The query parameter or the accountId parameter must be provided.",
                ));
            }
            let needle = query.map(|q| q.trim().to_lowercase());
            let site = s.lock_site();
            let mut found: Vec<&User> = site
                .users
                .iter()
                .filter(|u| account.is_none_or(|a| u.account_id == a))
                .filter(|u| {
                    needle.as_ref().is_none_or(|n| {
                        u.email.to_lowercase().contains(n.as_str())
                            || u.display_name.to_lowercase().contains(n.as_str())
                    })
                })
                .collect();
            found.sort_by_cached_key(|u| (u.display_name.to_lowercase(), u.account_id.clone()));
            let values: Vec<Value> = found
                .into_iter()
                .skip(start)
                .take(max)
                .map(|u| user_json(s, u))
                .collect();
            Ok(axum::Json(values).into_response())
        })())
    })
}

/// `GET /_fake/stats`: the counters as JSON (not part of Jira's API; no auth).
pub(super) async fn stats(Extract(state): Extract<Arc<State>>) -> Response {
    axum::Json(super::snapshot(&state.counters)).into_response()
}
