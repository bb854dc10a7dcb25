//! `/groups`, `/groups/{id}/members|transitiveMembers` and `$batch`.
//!
//! Paging is by an opaque `$skiptoken` in an absolute nextLink that carries every original query
//! option; a page may be empty and still have a nextLink. Members come with their `@odata.type`
//! and only the `$select`ed fields; a limited-information member has nulls for every field but
//! `id`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::tenant::Member;
use super::{State, error, odata};

type Params = HashMap<String, String>;

fn encode_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("RFNwdAIA:{offset}:opaque"))
}

fn decode_token(token: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.split(':').nth(1)?.parse().ok()
}

/// `$top`: 1..=999, or Graph's 400.
fn top(params: &Params, page_size: usize) -> Result<usize, Response> {
    let top = match params.get("$top") {
        None => 100,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => n,
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    &format!(
                        "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
                    ),
                ));
            }
        },
    };
    Ok(top.min(page_size))
}

/// The next link: this path with every original option and a new `$skiptoken`.
fn next_link(base: &str, path: &str, params: &Params, offset: usize) -> String {
    let mut url = url::Url::parse(&format!("{base}{path}")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        let mut keys: Vec<&String> = params.keys().filter(|k| *k != "$skiptoken").collect();
        keys.sort();
        for k in keys {
            q.append_pair(k, &params[k]);
        }
        q.append_pair("$skiptoken", &encode_token(offset));
    }
    url.to_string()
}

/// Where this page starts, or the 404 of an expired skiptoken.
fn start(state: &State, params: &Params) -> Result<usize, Response> {
    match params.get("$skiptoken") {
        None => Ok(0),
        Some(_) if state.switches.lock().unwrap().expire_skiptokens => Err(error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "The paging state has expired.",
        )),
        Some(t) => decode_token(t).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "Invalid skiptoken.",
            )
        }),
    }
}

fn consistency(headers: &HeaderMap) -> bool {
    headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        == Some("eventual")
}

/// The filters this fake understands: `startswith(displayName,'x')` (standard) and
/// `endswith(displayName,'x')` (an advanced query).
fn filter(params: &Params, advanced: bool) -> Result<Option<(bool, String)>, Response> {
    let Some(f) = params.get("$filter") else {
        return Ok(None);
    };
    let arg = |prefix: &str| {
        f.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("')"))
            .map(str::to_owned)
    };
    if let Some(p) = arg("startswith(displayName,'") {
        return Ok(Some((true, p)));
    }
    if let Some(p) = arg("endswith(displayName,'") {
        if !advanced {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Operator 'endsWith' is not supported because the required parameters might be missing. Try adding $count with a value of true and ConsistencyLevel header with a value of eventual.",
            ));
        }
        return Ok(Some((false, p)));
    }
    Err(error(
        StatusCode::BAD_REQUEST,
        "Request_UnsupportedQuery",
        "Unsupported filter.",
    ))
}

/// `GET /v1.0/groups`.
pub(super) async fn groups(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    if let Some(refused) = state.admit(&headers) {
        return refused;
    }
    state.counts.group_pages.fetch_add(1, Ordering::Relaxed);
    let advanced =
        consistency(&headers) && params.get("$count").map(String::as_str) == Some("true");
    let page_size = state.switches.lock().unwrap().page_size;
    let (top, from) = match (top(&params, page_size), start(&state, &params)) {
        (Ok(t), Ok(f)) => (t, f),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let selected: Vec<&super::Group> = match filter(&params, advanced) {
        Err(r) => return r,
        Ok(None) => state.tenant.groups.iter().collect(),
        Ok(Some((prefix, text))) => state
            .tenant
            .groups
            .iter()
            .filter(|g| {
                if prefix {
                    g.name.starts_with(&text)
                } else {
                    g.name.ends_with(&text)
                }
            })
            .collect(),
    };
    let page: Vec<Value> = selected
        .iter()
        .skip(from)
        .take(top)
        .map(|g| json!({"id": g.id, "displayName": g.name}))
        .collect();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/v1.0/$metadata#groups(id,displayName)",
            state.base
        )),
    );
    if advanced && from == 0 {
        body.insert("@odata.count".into(), json!(selected.len()));
    }
    if from + top < selected.len() {
        body.insert(
            "@odata.nextLink".into(),
            json!(next_link(&state.base, "/v1.0/groups", &params, from + top)),
        );
    }
    body.insert("value".into(), Value::Array(page));
    odata(Value::Object(body))
}

/// `GET /v1.0/groups/{id}/members` and `/transitiveMembers`.
pub(super) async fn members(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path((id, relation)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Response {
    if let Some(refused) = state.admit(&headers) {
        return refused;
    }
    let (status, body) = member_page(&state, &id, &relation, &params);
    let cut = {
        let mut s = state.switches.lock().unwrap();
        let cut = status == StatusCode::OK && s.cut_pages > 0;
        if cut {
            s.cut_pages -= 1;
        }
        cut
    };
    if cut {
        return cut_short(body);
    }
    if status != StatusCode::OK {
        return (status, axum::Json(body)).into_response();
    }
    if state.switches.lock().unwrap().malformed_members {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"value\": [{\"id\": ",
        )
            .into_response();
    }
    odata(body)
}

/// A 200 whose body stops halfway: the connection is dropped after the first half.
fn cut_short(body: Value) -> Response {
    let bytes = serde_json::to_vec(&body).unwrap();
    let half = bytes::Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
    let stream = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "cut by the fake",
        )),
    ]);
    let mut response = Body::from_stream(stream).into_response();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

/// One page of a group's members, shared by the plain GET and `$batch`.
pub(super) fn member_page(
    state: &State,
    id: &str,
    relation: &str,
    params: &Params,
) -> (StatusCode, Value) {
    let err = |r: Response| {
        // Error documents here are simple; rebuild them as values for batch parts.
        let status = r.status();
        (
            status,
            json!({"error": {"code": "Request_BadRequest", "message": format!("{status}")}}),
        )
    };
    let transitive = match relation {
        "members" => false,
        "transitiveMembers" => true,
        _ => {
            return (
                StatusCode::NOT_FOUND,
                json!({"error": {"code": "Request_ResourceNotFound", "message": "Unknown relation."}}),
            );
        }
    };
    let Some(group) = state.tenant.find_group(id) else {
        return (
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "Request_ResourceNotFound",
            "message": format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present.")}}),
        );
    };
    let switches = state.switches.lock().unwrap().clone();
    let top = match top(params, switches.page_size) {
        Ok(t) => t,
        Err(r) => return err(r),
    };
    let from = match start(state, params) {
        Ok(f) => f,
        Err(_) => {
            return (
                StatusCode::NOT_FOUND,
                json!({"error": {"code": "Request_ResourceNotFound", "message": "The paging state has expired."}}),
            );
        }
    };
    state.counts.member_pages.fetch_add(1, Ordering::Relaxed);
    let path = format!("/v1.0/groups/{id}/{relation}");
    let all = state.tenant.listed_members(group, transitive);
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}/v1.0/$metadata#directoryObjects", state.base)),
    );
    if switches.empty_first_pages && params.get("$skiptoken").is_none() {
        body.insert(
            "@odata.nextLink".into(),
            json!(next_link(&state.base, &path, params, 0)),
        );
        body.insert("value".into(), json!([]));
        return (StatusCode::OK, Value::Object(body));
    }
    let select: Vec<&str> = params
        .get("$select")
        .map_or(vec![], |s| s.split(',').collect());
    let page: Vec<Value> = all
        .iter()
        .skip(from)
        .take(top)
        .map(|m| object(state, m, &select))
        .collect();
    if from + top < all.len() {
        body.insert(
            "@odata.nextLink".into(),
            json!(next_link(&state.base, &path, params, from + top)),
        );
    }
    body.insert("value".into(), Value::Array(page));
    (StatusCode::OK, Value::Object(body))
}

/// A directory object as Graph lists it, with only the selected fields.
fn object(state: &State, member: &Member, select: &[&str]) -> Value {
    let mut o = Map::new();
    let field = |o: &mut Map<String, Value>, name: &str, value: Value| {
        if select.is_empty() || select.contains(&name) {
            o.insert(name.to_owned(), value);
        }
    };
    match member {
        Member::User(id) => {
            o.insert("@odata.type".into(), json!("#microsoft.graph.user"));
            o.insert("id".into(), json!(id));
            let user = state.tenant.users.get(id);
            match user {
                Some(u) if !u.limited => {
                    field(&mut o, "mail", json!(u.mail));
                    field(&mut o, "userPrincipalName", json!(u.upn));
                    field(&mut o, "accountEnabled", json!(u.enabled));
                    field(&mut o, "displayName", json!(format!("User {}", u.id)));
                }
                _ => {
                    for name in ["mail", "userPrincipalName", "accountEnabled", "displayName"] {
                        field(&mut o, name, Value::Null);
                    }
                }
            }
        }
        Member::Group(id) => {
            o.insert("@odata.type".into(), json!("#microsoft.graph.group"));
            o.insert("id".into(), json!(id));
            field(&mut o, "mail", Value::Null);
        }
        Member::Other(kind, id) => {
            o.insert("@odata.type".into(), json!(kind));
            o.insert("id".into(), json!(id));
            field(&mut o, "mail", Value::Null);
            field(&mut o, "accountEnabled", json!(true));
        }
    }
    Value::Object(o)
}

/// `POST /v1.0/$batch`: at most 20 requests, unique ids, answered in reverse order.
pub(super) async fn batch(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(refused) = state.admit(&headers) {
        return refused;
    }
    state.counts.batches.fetch_add(1, Ordering::Relaxed);
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload format.",
        );
    };
    if requests.len() > 20 {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Limit of 20 requests in a batch exceeded.",
        );
    }
    let mut ids = std::collections::HashSet::new();
    for r in requests {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !ids.insert(id) {
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Batch request ids must be unique.",
            );
        }
    }
    let every = state.switches.lock().unwrap().batch_throttle_every;
    let mut failed = std::collections::HashSet::new();
    let mut responses = Vec::new();
    for r in requests {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let depends: Vec<&str> = r
            .get("dependsOn")
            .and_then(Value::as_array)
            .map(|d| d.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if depends.iter().any(|d| failed.contains(*d)) {
            failed.insert(id.clone());
            responses.push(json!({"id": id, "status": 424, "body": {"error": {"code": "FailedDependency", "message": "A request it depends on failed."}}}));
            continue;
        }
        let n = state.counts.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(every) = every
            && (n + 1).is_multiple_of(every)
        {
            state.counts.throttled.fetch_add(1, Ordering::Relaxed);
            failed.insert(id.clone());
            responses.push(
                json!({"id": id, "status": 429, "headers": {"Retry-After": "1"},
                "body": {"error": {"code": "TooManyRequests", "message": "Too many requests"}}}),
            );
            continue;
        }
        let (status, body) = inner(&state, r);
        if !status.is_success() {
            failed.insert(id.clone());
        }
        responses.push(json!({"id": id, "status": status.as_u16(),
            "headers": {"Content-Type": "application/json"}, "body": body}));
    }
    responses.reverse();
    odata(json!({"responses": responses}))
}

/// Runs one batch part: a relative `GET /groups/{id}/{relation}?...`.
fn inner(state: &State, request: &Value) -> (StatusCode, Value) {
    let bad = |m: &str| {
        (
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": "BadRequest", "message": m}}),
        )
    };
    if request.get("method").and_then(Value::as_str) != Some("GET") {
        return bad("Only GET parts are served by this fake.");
    }
    let Some(relative) = request.get("url").and_then(Value::as_str) else {
        return bad("A part needs a url.");
    };
    if relative.starts_with("http") || relative.starts_with("/v1.0") {
        return bad("Batch part URLs are relative, without the host or version.");
    }
    let url = url::Url::parse(&format!("{}/v1.0{relative}", state.base)).unwrap();
    let params: Params = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    match segments.as_slice() {
        ["v1.0", "groups", id, relation] => {
            let id = url::form_urlencoded::parse(format!("x={id}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            member_page(state, &id, relation, &params)
        }
        _ => bad("Only member listings are served in batches by this fake."),
    }
}

/// `POST /users/{id}/getMemberObjects`: the ids of every group the user is in, nested groups
/// included (the call is transitive), as `{"value": [ids]}`; `securityEnabledOnly` is required.
pub(super) async fn member_objects(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = state.admit(&headers) {
        return refused;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !body["securityEnabledOnly"].is_boolean() {
        return error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "The parameter 'securityEnabledOnly' in the request payload is not a valid parameter.",
        );
    }
    if !state.tenant.users.contains_key(&id) {
        return error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    }
    let user = Member::User(id);
    let ids: Vec<&str> = state
        .tenant
        .groups
        .iter()
        .filter(|g| state.tenant.listed_members(g, true).contains(&user))
        .map(|g| g.id.as_str())
        .collect();
    odata(json!({
        "@odata.context": format!("{}/v1.0/$metadata#Collection(Edm.String)", state.base),
        "value": ids,
    }))
}
