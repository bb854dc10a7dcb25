//! `/api/v1/groups` and `/api/v1/groups/{id}/users`, paged by an opaque `after` cursor in the
//! `Link` header.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::{LinkStyle, State, error, rate_headers};

type Params = HashMap<String, String>;

fn cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("cursor:{offset}"))
}

fn offset(params: &Params) -> Result<usize, Response> {
    let Some(after) = params.get("after") else {
        return Ok(0);
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(after)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.strip_prefix("cursor:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "E0000031", "Invalid after cursor"))
}

fn limit(params: &Params, default: usize, cap: usize) -> Result<usize, Response> {
    match params.get("limit") {
        None => Ok(default.min(cap)),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(cap)),
            _ => Err(error(
                StatusCode::BAD_REQUEST,
                "E0000001",
                "Api validation failed: limit",
            )),
        },
    }
}

/// The links of a page: `self`, and `next` when there is more.
fn links(state: &State, path: &str, params: &Params, next: Option<usize>, response: &mut Response) {
    let url_with = |after: Option<usize>| {
        let mut url = url::Url::parse(&format!("{}{path}", state.base)).unwrap();
        {
            let mut q = url.query_pairs_mut();
            let mut keys: Vec<&String> = params.keys().filter(|k| *k != "after").collect();
            keys.sort();
            for k in keys {
                q.append_pair(k, &params[k]);
            }
            if let Some(a) = after {
                q.append_pair("after", &cursor(a));
            }
        }
        url.to_string()
    };
    let this = format!(
        "<{}>; rel=\"self\"",
        url_with(offset(params).ok().filter(|o| *o > 0))
    );
    let mut all = vec![this];
    if let Some(n) = next {
        all.push(format!("<{}>; rel=\"next\"", url_with(Some(n))));
    }
    let style = state.switches.lock().unwrap().link_style;
    let separate = match style {
        LinkStyle::Joined => false,
        LinkStyle::Separate => true,
        LinkStyle::Alternate => state
            .counts
            .requests
            .load(Ordering::Relaxed)
            .is_multiple_of(2),
    };
    let headers = response.headers_mut();
    if separate {
        for l in all {
            headers.append("link", HeaderValue::from_str(&l).unwrap());
        }
    } else {
        headers.insert("link", HeaderValue::from_str(&all.join(", ")).unwrap());
    }
}

/// The filters and searches this fake understands: `type eq "…"`, `profile.name sw "…"`.
fn selects(expression: &str, group: &super::Group) -> Option<bool> {
    let quoted = |prefix: &str| {
        expression
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('"'))
            .and_then(|r| r.strip_suffix('"'))
    };
    if let Some(t) = quoted("type eq ") {
        return Some(group.kind == t);
    }
    if let Some(p) = quoted("profile.name sw ") {
        return Some(group.name.starts_with(p));
    }
    None
}

/// `GET /api/v1/groups`.
pub(super) async fn groups(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let (l, remaining, reset) = match state.admit(&headers) {
        Ok(v) => v,
        Err(r) => return r,
    };
    state.counts.group_pages.fetch_add(1, Ordering::Relaxed);
    let cap = state.switches.lock().unwrap().group_page_cap;
    let (limit, from) = match (limit(&params, 200, cap), offset(&params)) {
        (Ok(l), Ok(f)) => (l, f),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let expression = params.get("filter").or(params.get("search"));
    let mut selected = Vec::new();
    for g in &state.org.groups {
        match expression.map(|e| selects(e, g)) {
            None | Some(Some(true)) => selected.push(g),
            Some(Some(false)) => {}
            Some(None) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "E0000031",
                    "Invalid search criteria.",
                );
            }
        }
    }
    let page: Vec<Value> = selected.iter().skip(from).take(limit).map(|g| json!({
        "id": g.id, "created": "2024-01-01T00:00:00.000Z", "lastUpdated": "2024-06-01T00:00:00.000Z",
        "lastMembershipUpdated": "2025-01-02T03:04:05.000Z", "objectClass": ["okta:user_group"],
        "type": g.kind, "profile": {"name": g.name, "description": null},
        "_links": {"users": {"href": format!("{}/api/v1/groups/{}/users", state.base, g.id)}},
    })).collect();
    let mut response = axum::Json(page).into_response();
    let next = (from + limit < selected.len()).then_some(from + limit);
    links(&state, "/api/v1/groups", &params, next, &mut response);
    rate_headers(&mut response, l, remaining, reset);
    response
}

/// `GET /api/v1/groups/{id}/users`.
pub(super) async fn users(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let (l, remaining, reset) = match state.admit(&headers) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(group) = state.org.groups.iter().find(|g| g.id == id) else {
        return error(
            StatusCode::NOT_FOUND,
            "E0000007",
            &format!("Not found: Resource not found: {id} (UserGroup)"),
        );
    };
    state.counts.user_pages.fetch_add(1, Ordering::Relaxed);
    let cap = state.switches.lock().unwrap().user_page_cap;
    let (limit, from) = match (limit(&params, 1000, cap), offset(&params)) {
        (Ok(l), Ok(f)) => (l, f),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let page: Vec<Value> = group
        .members
        .iter()
        .skip(from)
        .take(limit)
        .map(|&i| {
            let u = &state.org.users[i];
            json!({"id": u.id, "status": u.status, "created": "2024-01-01T00:00:00.000Z",
            "activated": null, "statusChanged": null, "lastLogin": null,
            "lastUpdated": "2024-06-01T00:00:00.000Z", "passwordChanged": null,
            "type": {"id": "otyFAKE"},
            "profile": {"firstName": "User", "lastName": u.id, "mobilePhone": null,
                "secondEmail": null, "login": u.login, "email": u.email},
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": format!("{}/api/v1/users/{}", state.base, u.id)}}})
        })
        .collect();
    let body = serde_json::to_vec(&page).unwrap();
    let (malformed, cut) = {
        let mut s = state.switches.lock().unwrap();
        let cut = s.cut_pages > 0;
        if cut {
            s.cut_pages -= 1;
        }
        (s.malformed_users, cut)
    };
    let mut response = if cut {
        let half = bytes::Bytes::copy_from_slice(&body[..body.len() / 2]);
        let stream = futures_util::stream::iter(vec![
            Ok::<_, std::io::Error>(half),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "cut by the fake",
            )),
        ]);
        Body::from_stream(stream).into_response()
    } else if malformed {
        Body::from("[{\"id\": \"00u").into_response()
    } else {
        Body::from(body).into_response()
    };
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    let next = (from + limit < group.members.len()).then_some(from + limit);
    links(
        &state,
        &format!("/api/v1/groups/{id}/users"),
        &params,
        next,
        &mut response,
    );
    rate_headers(&mut response, l, remaining, reset);
    response
}
