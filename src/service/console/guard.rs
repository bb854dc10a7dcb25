//! The session guard in front of every console page but the sign-in page and the stylesheet.
//!
//! A request without an open session is sent to the sign-in page (with the page it asked for, to
//! come back to). A POST is read here, once: its form must carry the session's CSRF token, or it
//! is refused with 403 before any handler runs, so no handler can forget the check. Handlers get
//! the [`Session`] and the [`Form`] as request extensions.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use secrecy::ExposeSecret;

use super::form::{Form, MAX_FORM_BYTES};
use super::session::{COOKIE, Session};
use super::{Console, layout, links};

/// Lets a request through only with an open session, and a POST only with its CSRF token.
pub(super) async fn require_session(
    State(console): State<Console>,
    request: Request,
    next: Next,
) -> Response {
    let Some(session) = console.session_of(request.headers()) else {
        let asked = match request.method() {
            &Method::GET => request
                .uri()
                .path_and_query()
                .map_or("/groups", |p| p.as_str()),
            _ => "/groups",
        };
        let next = links::after_sign_in(asked);
        return Redirect::to(&format!("/sign-in?next={}", links::query(next))).into_response();
    };
    if request.method() != Method::POST {
        let mut request = request;
        request.extensions_mut().insert(session);
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is larger than the console accepts (64 KiB); nothing was changed.",
        );
    };
    let form = Form::parse(&bytes);
    if !form.get("csrf").is_some_and(|t| session.csrf_matches(t)) {
        return refused(
            StatusCode::FORBIDDEN,
            "The form did not carry this session's security token (it may come from another \
             site, or from a page open before you signed in again), so nothing was changed. \
             Reload the page and send the form again.",
        );
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(form);
    request.extensions_mut().insert(session);
    next.run(request).await
}

impl Console {
    /// The open session whose id the request's cookie carries.
    pub(super) fn session_of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let config = self.config();
        let token = config.daemon.admin_token.as_ref()?;
        self.sessions
            .find(id, token.expose_secret().as_bytes(), Instant::now())
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(super) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn refused(status: StatusCode, why: &str) -> Response {
    let body = html! {
        h1 { "Refused" }
        p.alert role="alert" { (why) }
        p { a href="/groups" { "Back to the console" } }
    };
    (status, layout::bare("Refused", body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=1; idpsync_console=abc".parse().unwrap());
        headers.append(header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "idpsync"), None);
    }
}
