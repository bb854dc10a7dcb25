//! `/users`: listing and searching user profiles (`userKeys` at most 20), and creating one —
//! e-mails unique case-insensitively (409), the identity provider and subject recorded so a test
//! can check them.

use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::http::{
    Params, codes, invalid, json_body, ok_json, page, page_ask, problem, uuid, uuids,
};
use super::store::Profile;
use super::{State, bump, lock};

type Answer = Result<Response, Response>;

/// `GET /users?nameOrEmailContains&userKeys&status&limit&offset`.
pub(super) async fn list(Extract(s): Extract<Arc<State>>, headers: HeaderMap, uri: Uri) -> Answer {
    let at = uri.path();
    s.admit(&headers, at, false)?;
    bump(&s.counts.user_pages);
    let p = Params::of(&uri);
    let ask = page_ask(&p, at)?;
    let keys = uuids(&p.list("userKeys"), "userKeys", 20, at)?;
    let text = p.get("nameOrEmailContains").map(str::to_lowercase);
    let active = match p.get("status") {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("active") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("inactive") => Some(false),
        Some(v) => {
            return Err(invalid(
                &format!("The value '{v}' is not a valid status (Active, Inactive)."),
                at,
            ));
        }
    };
    let store = lock(&s.store);
    let mut found: Vec<usize> = if keys.is_empty() {
        (0..store.users.len()).collect()
    } else {
        let mut found: Vec<usize> = keys.iter().filter_map(|k| store.user(k)).collect();
        found.sort_unstable();
        found.dedup();
        found
    };
    found.retain(|i| {
        let u = &store.users[*i];
        active.is_none_or(|a| u.active == a)
            && text.as_ref().is_none_or(|t| {
                u.name.to_lowercase().contains(t.as_str())
                    || u.email.to_lowercase().contains(t.as_str())
            })
    });
    store.sort_users(&mut found);
    Ok(page(&found, ask, |i| store.user_json(*i)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewUser {
    name: Option<String>,
    email: Option<String>,
    is_active: Option<bool>,
    #[allow(dead_code)]
    photo_url: Option<String>,
    #[allow(dead_code)]
    add_to_built_in_identity_provider: Option<bool>,
    identity_provider_key: Option<String>,
    subject: Option<String>,
    username: Option<String>,
}

/// `POST /users` → 201 `{"key"}`.
pub(super) async fn create(
    Extract(s): Extract<Arc<State>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Answer {
    let at = uri.path();
    s.admit(&headers, at, true)?;
    let req: NewUser = json_body(&headers, &body, at)?;
    let name = req
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| invalid("The name field is required.", at))?;
    let email = req
        .email
        .map(|e| e.trim().to_owned())
        .ok_or_else(|| invalid("The email field is required.", at))?;
    let well_formed = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    });
    if !well_formed {
        return Err(invalid(
            &format!("The value '{email}' is not a valid email address."),
            at,
        ));
    }
    let idp = match req.identity_provider_key {
        Some(k) => Some(uuid(&k, "identityProviderKey", at)?),
        None => None,
    };
    let subject = req.subject.filter(|s| !s.is_empty());
    if idp.is_some() != subject.is_some() {
        return Err(invalid(
            "identityProviderKey and subject must be given together.",
            at,
        ));
    }
    let profile = Profile {
        name,
        email,
        username: req.username,
        active: req.is_active.unwrap_or(true),
        idp,
        subject,
        via_api: true,
    };
    let mut store = lock(&s.store);
    let Some(index) = store.insert_user(profile) else {
        return Err(problem(
            StatusCode::CONFLICT,
            codes::USER_EXISTS,
            "A user with the same email already exists.",
            at,
        ));
    };
    let key = store.users[index].key.clone();
    drop(store);
    bump(&s.counts.user_creates);
    let mut r = ok_json(StatusCode::CREATED, &json!({ "key": key }));
    if let Ok(location) = HeaderValue::from_str(&format!("{}{at}/{key}", s.base)) {
        r.headers_mut().insert(header::LOCATION, location);
    }
    Ok(r)
}
