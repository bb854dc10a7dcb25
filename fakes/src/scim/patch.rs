//! `PATCH /Groups/{id}` as AWS takes it: a PatchOp body with ≥1 operation, `op` matched
//! case-insensitively; `add` with path `members` (or no path and a `members` value), `remove`
//! with path `members[value eq "id"]` or with path `members` and a value array; `add`/`replace`
//! of `displayName` and `externalId`. Refused with 400: `replace` of members, "remove all"
//! (`remove` path `members` without values), other paths, more than 100 member values in all.
//! An unknown user in an add is 404 ResourceNotFound. Adding a member again and removing a
//! non-member are no-ops. All or nothing; 204 on success (200 with the group by a switch).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use super::groups::{group_response, member_ids, no_group};
use super::query::parse_filter;
use super::users::{field, text};
use super::{State, bump, error, invalid, json_body};

const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The most member values one PATCH may carry.
pub const MAX_MEMBER_CHANGES: usize = 100;

/// One change a PATCH asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Add(Vec<String>),
    Remove(Vec<String>),
    Rename(String),
    ExternalId(Option<String>),
}

fn refuse(scim_type: &str, detail: &str) -> Response {
    invalid(
        scim_type,
        &format!("Request is unparsable, syntactically incorrect, or violates schema: {detail}"),
    )
}

/// The id in a `members[value eq "id"]` path.
fn filtered_member(path: &str) -> Option<Result<String, Response>> {
    let inner = path
        .get(..8)
        .filter(|p| p.eq_ignore_ascii_case("members["))
        .and_then(|_| path[8..].strip_suffix(']'))?;
    Some(match parse_filter(inner) {
        Ok(c) if c.len() == 1 && c[0].0 == "value" => Ok(c[0].1.clone()),
        _ => Err(refuse(
            "invalidPath",
            "only members[value eq \"id\"] is supported.",
        )),
    })
}

fn string_value(value: Option<&Value>, what: &str) -> Result<String, Response> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            refuse(
                "invalidValue",
                &format!("{what} must be a non-empty string."),
            )
        })
}

/// The changes of one operation with no path: its value is an object of attributes.
fn pathless(op: &str, value: Option<&Value>) -> Result<Vec<Change>, Response> {
    let Some(Value::Object(attrs)) = value else {
        return Err(refuse(
            "noTarget",
            "an operation without a path needs an object value.",
        ));
    };
    let mut out = Vec::new();
    for (k, v) in attrs {
        let k = k.to_ascii_lowercase();
        match (op, k.as_str()) {
            ("add", "members") => out.push(Change::Add(member_ids(v)?)),
            ("replace", "members") => {
                return Err(refuse(
                    "invalidValue",
                    "replace of members is not supported.",
                ));
            }
            (_, "displayname") => out.push(Change::Rename(string_value(Some(v), "displayName")?)),
            (_, "externalid") => out.push(Change::ExternalId(Some(string_value(
                Some(v),
                "externalId",
            )?))),
            _ => {
                return Err(refuse(
                    "invalidPath",
                    &format!("attribute {k:?} cannot be patched."),
                ));
            }
        }
    }
    Ok(out)
}

/// The changes of one operation.
fn operation(o: &Value) -> Result<Vec<Change>, Response> {
    let Some(op) = text(o, "op").map(str::to_ascii_lowercase) else {
        return Err(refuse("invalidSyntax", "every operation needs an op."));
    };
    let path = text(o, "path").map(str::trim);
    let value = field(o, "value").filter(|v| !v.is_null());
    if op == "remove"
        && let Some(id) = path.and_then(filtered_member)
    {
        return Ok(vec![Change::Remove(vec![id?])]);
    }
    let lower = path.map(str::to_ascii_lowercase);
    let change = match (op.as_str(), lower.as_deref()) {
        ("add" | "replace", None) => return pathless(&op, value),
        ("remove", None) => return Err(refuse("noTarget", "remove needs a path.")),
        ("add", Some("members")) => match value {
            Some(v) => Change::Add(member_ids(v)?),
            None => return Err(refuse("invalidValue", "add of members needs a value.")),
        },
        ("replace", Some("members")) => {
            return Err(refuse(
                "invalidValue",
                "replace of members is not supported.",
            ));
        }
        ("remove", Some("members")) => match value.map(member_ids).transpose()? {
            Some(ids) if !ids.is_empty() => Change::Remove(ids),
            _ => {
                return Err(refuse(
                    "invalidValue",
                    "removing all members is not supported; remove members by value.",
                ));
            }
        },
        ("add" | "replace", Some("displayname")) => {
            Change::Rename(string_value(value, "displayName")?)
        }
        ("add" | "replace", Some("externalid")) => {
            Change::ExternalId(Some(string_value(value, "externalId")?))
        }
        ("remove", Some("externalid")) => Change::ExternalId(None),
        ("add" | "remove" | "replace", Some(p)) => {
            return Err(refuse(
                "invalidPath",
                &format!("path {p:?} cannot be patched."),
            ));
        }
        _ => return Err(refuse("invalidSyntax", &format!("unknown op {op:?}."))),
    };
    Ok(vec![change])
}

/// How many member values an operation carries, judged loosely (for the counters).
fn raw_members(o: &Value) -> usize {
    let count = |v: &Value| match v {
        Value::Array(a) => a.len(),
        Value::Object(_) => 1,
        _ => 0,
    };
    let path = text(o, "path").unwrap_or_default().to_ascii_lowercase();
    let value = field(o, "value");
    if path.starts_with("members[") {
        1
    } else if path == "members" {
        value.map_or(0, count)
    } else if path.is_empty() {
        value.and_then(|v| field(v, "members")).map_or(0, count)
    } else {
        0
    }
}

/// The changes of a PatchOp body, or the 400 refusing it.
fn changes(state: &State, body: &Value) -> Result<Vec<Change>, Response> {
    let ops = match field(body, "Operations") {
        Some(Value::Array(ops)) => ops,
        _ => return Err(refuse("invalidSyntax", "Operations must be an array.")),
    };
    let c = &state.counts;
    c.max_patch_ops
        .fetch_max(ops.len() as u64, Ordering::Relaxed);
    let raw: usize = ops.iter().map(raw_members).sum();
    c.max_patch_members.fetch_max(raw as u64, Ordering::Relaxed);
    let schemas = field(body, "schemas").and_then(Value::as_array);
    let patch_op = schemas.is_some_and(|s| {
        s.iter().any(|u| {
            u.as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(PATCH_SCHEMA))
        })
    });
    if !patch_op {
        return Err(refuse(
            "invalidSyntax",
            &format!("schemas must hold {PATCH_SCHEMA}."),
        ));
    }
    if ops.is_empty() {
        return Err(refuse(
            "invalidSyntax",
            "Operations must hold at least one operation.",
        ));
    }
    let mut out = Vec::new();
    for o in ops {
        out.extend(operation(o)?);
    }
    let members: usize = out
        .iter()
        .map(|c| match c {
            Change::Add(ids) | Change::Remove(ids) => ids.len(),
            _ => 0,
        })
        .sum();
    if members > MAX_MEMBER_CHANGES {
        return Err(refuse(
            "invalidValue",
            &format!(
                "a PATCH may change at most {MAX_MEMBER_CHANGES} members; this one has {members}."
            ),
        ));
    }
    Ok(out)
}

/// `PATCH /Groups/{id}`.
pub(super) async fn patch(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = state.admit(&headers, true) {
        return r;
    }
    bump(&state.counts.patches);
    let r = apply(&state, &headers, &id, &body);
    if r.status().is_client_error() {
        bump(&state.counts.refused_patches);
    }
    r
}

fn apply(state: &State, headers: &HeaderMap, id: &str, body: &[u8]) -> Response {
    let body = match json_body(headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    *state.last_patch.lock().unwrap() = Some(body.clone());
    let changes = match changes(state, &body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut dir = state.dir.lock().unwrap();
    let Some(index) = dir.group_index(id) else {
        return no_group(id);
    };
    if let Err(r) = state.check_if_match(headers, dir.groups[index].version) {
        return r;
    }
    let before = &dir.groups[index];
    let mut members: HashSet<String> = before.members.clone();
    let (mut name, mut external_id) = (before.display_name.clone(), before.external_id.clone());
    let mut values = 0u64;
    for change in changes {
        match change {
            Change::Add(ids) => {
                values += ids.len() as u64;
                for uid in ids {
                    if dir.user(&uid).is_none() {
                        return error(
                            StatusCode::NOT_FOUND,
                            None,
                            &format!("ResourceNotFoundException: User {uid} not found."),
                        );
                    }
                    members.insert(uid);
                }
            }
            Change::Remove(ids) => {
                values += ids.len() as u64;
                for uid in ids {
                    members.remove(&uid);
                }
            }
            Change::Rename(n) => name = n,
            Change::ExternalId(x) => external_id = x,
        }
    }
    if dir.group_by_name(&name).is_some_and(|i| i != index) {
        return error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            "Duplicate GroupDisplayName: a group with this displayName already exists.",
        );
    }
    let g = &mut dir.groups[index];
    let net = members.difference(&g.members).count() + g.members.difference(&members).count();
    let changed = net > 0 || name != g.display_name || external_id != g.external_id;
    g.members = members;
    g.display_name = name;
    g.external_id = external_id;
    if changed {
        g.version += 1;
    }
    let c = &state.counts;
    c.member_values.fetch_add(values, Ordering::Relaxed);
    c.member_changes.fetch_add(net as u64, Ordering::Relaxed);
    if state.switches.lock().unwrap().patch_returns_resource {
        group_response(state, StatusCode::OK, g)
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}
