//! The API's wire conventions: RFC 7807 ProblemDetails with an `errorCode`, the
//! `limit`/`offset` parameters and the `{results, page}` envelope, query and JSON body parsing,
//! UUID keys.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The `errorCode`s this fake answers with (ODC's style; the real codes are not documented).
pub mod codes {
    /// 400: a malformed parameter or body (bad `limit`/`offset`, malformed JSON, a missing field,
    /// a malformed UUID, more than 20 `userKeys`, more than 1000 keys in an array).
    pub const VALIDATION: &str = "OS-IDNT-VAL-40001";
    /// 400: a user key that names no user (`PATCH /groups/{key}/users`, `POST /groups`).
    pub const UNKNOWN_USER: &str = "OS-IDNT-BIZ-40002";
    /// 400: `POST /groups` with an `environmentKey` that names no stage.
    pub const UNKNOWN_ENVIRONMENT: &str = "OS-IDNT-BIZ-40003";
    /// 400: `POST /groups` with `applicationRoleKeys` (the fake knows no roles).
    pub const UNKNOWN_ROLE: &str = "OS-IDNT-BIZ-40004";
    /// 400: a write refused by `Switches::reject_writes` with `reject_status` 400.
    pub const REJECTED: &str = "OS-IDNT-BIZ-40005";
    /// 401: no bearer token, or one unknown or expired.
    pub const UNAUTHORIZED: &str = "OS-IDNT-AUTH-40101";
    /// 403: a write refused by `Switches::reject_writes`.
    pub const FORBIDDEN: &str = "OS-IDNT-PERM-40301";
    /// 404: no such group (or route).
    pub const NOT_FOUND: &str = "OS-IDNT-NF-40401";
    /// 409: a group of that name (case-insensitively) exists in the stage.
    pub const GROUP_EXISTS: &str = "OS-IDNT-BIZ-40901";
    /// 409: a user with that e-mail (case-insensitively) exists.
    pub const USER_EXISTS: &str = "OS-IDNT-BIZ-40902";
    /// 415: a body that is not `application/json`.
    pub const MEDIA_TYPE: &str = "OS-IDNT-VAL-41501";
    /// 429: the rate limit, or a forced 429.
    pub const TOO_MANY_REQUESTS: &str = "OS-IDNT-RL-42901";
    /// 503: a forced 503.
    pub const UNAVAILABLE: &str = "OS-IDNT-SVC-50301";
}

/// An RFC 7807 ProblemDetails response.
pub(crate) fn problem(status: StatusCode, code: &str, detail: &str, instance: &str) -> Response {
    let section = match status.as_u16() {
        400 => "rfc9110#section-15.5.1",
        401 => "rfc9110#section-15.5.2",
        403 => "rfc9110#section-15.5.4",
        404 => "rfc9110#section-15.5.5",
        409 => "rfc9110#section-15.5.10",
        415 => "rfc9110#section-15.5.16",
        429 => "rfc6585#section-4",
        503 => "rfc9110#section-15.6.4",
        _ => "rfc9110#section-15",
    };
    let body = json!({
        "type": format!("https://tools.ietf.org/html/{section}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "instance": instance,
        "traceId": format!("00-{:032x}-{:016x}-00", fastrand::u128(..), fastrand::u64(..)),
        "errorCode": code,
    });
    let mut r = (status, Body::from(body.to_string())).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// A 400 [`codes::VALIDATION`].
pub(crate) fn invalid(detail: &str, instance: &str) -> Response {
    problem(StatusCode::BAD_REQUEST, codes::VALIDATION, detail, instance)
}

/// A JSON response with `status`.
pub(crate) fn ok_json(status: StatusCode, value: &Value) -> Response {
    let mut r = (status, Body::from(value.to_string())).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// A request's query parameters, decoded, in order.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn of(uri: &Uri) -> Params {
        let q = uri.query().unwrap_or_default();
        Params(
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of a parameter, matched case-insensitively (as ASP.NET binds).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a list parameter, repeated or comma-separated, blanks dropped.
    pub(crate) fn list(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// The page asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageAsk {
    pub(crate) limit: usize,
    pub(crate) offset: usize,
}

/// Reads `limit` (1..=100, default 100) and `offset` (≥ 0, default 0).
pub(crate) fn page_ask(params: &Params, instance: &str) -> Result<PageAsk, Response> {
    let limit = match params.get("limit") {
        None => 100,
        Some(v) => match v.trim().parse::<i32>() {
            Ok(n) if (1..=100).contains(&n) => n as usize,
            _ => {
                return Err(invalid(
                    "The limit must be an integer between 1 and 100.",
                    instance,
                ));
            }
        },
    };
    let offset = match params.get("offset") {
        None => 0,
        Some(v) => match v.trim().parse::<i32>() {
            Ok(n) if n >= 0 => n as usize,
            _ => {
                return Err(invalid(
                    "The offset must be an integer greater than or equal to 0.",
                    instance,
                ));
            }
        },
    };
    Ok(PageAsk { limit, offset })
}

/// The page of `all` asked for, in ODC's envelope.
pub(crate) fn page<T>(all: &[T], ask: PageAsk, render: impl Fn(&T) -> Value) -> Response {
    let total = all.len();
    let results: Vec<Value> = all
        .iter()
        .skip(ask.offset)
        .take(ask.limit)
        .map(render)
        .collect();
    let count = results.len();
    let next = (ask.offset + count < total).then_some(ask.offset + count);
    ok_json(
        StatusCode::OK,
        &json!({
            "results": results,
            "page": {
                "count": count,
                "limit": ask.limit,
                "offset": ask.offset,
                "nextPageOffset": next,
                "totalResults": total,
                "totalPages": total.div_ceil(ask.limit),
            }
        }),
    )
}

/// Parses a JSON body (`application/json` or `application/*+json`).
pub(crate) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
    instance: &str,
) -> Result<T, Response> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let json = media == "application/json"
        || media
            .strip_prefix("application/")
            .is_some_and(|m| m.ends_with("+json"));
    if !json {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::MEDIA_TYPE,
            "The request body must be application/json.",
            instance,
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| invalid(&format!("The request body is not valid: {e}"), instance))
}

/// A UUID in its canonical lowercase form, or `None` when `s` is not one.
pub(crate) fn parse_uuid(s: &str) -> Option<String> {
    let s = s.trim();
    let bytes = s.as_bytes();
    let well_formed = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    well_formed.then(|| s.to_ascii_lowercase())
}

/// [`parse_uuid`], or a 400 naming `field`.
pub(crate) fn uuid(s: &str, field: &str, instance: &str) -> Result<String, Response> {
    parse_uuid(s).ok_or_else(|| {
        invalid(
            &format!("The value '{s}' of {field} is not a valid UUID."),
            instance,
        )
    })
}

/// Every key of a list, each a UUID, at most `cap` of them.
pub(crate) fn uuids(
    keys: &[impl AsRef<str>],
    field: &str,
    cap: usize,
    instance: &str,
) -> Result<Vec<String>, Response> {
    if keys.len() > cap {
        return Err(invalid(
            &format!(
                "{field} holds {} keys; at most {cap} are allowed.",
                keys.len()
            ),
            instance,
        ));
    }
    keys.iter()
        .map(|k| uuid(k.as_ref(), field, instance))
        .collect()
}
