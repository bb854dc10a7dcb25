//! Signing in with the admin token, and out.
//!
//! The token given is compared in constant time with `daemon.admin_token_file`'s; then a session
//! opens and its id goes into an `HttpOnly; SameSite=Strict; Path=/` cookie with a `Max-Age` of
//! the session's lifetime. A wrong token gets the sign-in page again with the error beside the
//! field, and no cookie. Signing out ends the session and expires the cookie.

use std::time::Instant;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use secrecy::ExposeSecret;

use super::form::Form;
use super::layout::{bare, described_by, field_error};
use super::session::{COOKIE, LIFETIME, Session};
use super::{Console, links};

/// The query of the sign-in page.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct SignInQuery {
    /// The page to go to once signed in.
    #[serde(default)]
    next: String,
    /// Set after a sign-out.
    #[serde(default)]
    out: Option<String>,
}

/// `GET /sign-in`: the form, or straight on when already signed in.
pub(super) async fn page(
    State(console): State<Console>,
    headers: axum::http::HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    let next = links::after_sign_in(&query.next);
    if console.session_of(&headers).is_some() {
        return Redirect::to(next).into_response();
    }
    let notice = query.out.is_some().then_some("You are signed out.");
    form_page(next, None, notice).into_response()
}

/// `POST /sign-in`: a session for the right token.
pub(super) async fn sign_in(
    State(console): State<Console>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let why = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "The form is larger than the console accepts (64 KiB); nobody was signed in."
            } else {
                "The form could not be read; nobody was signed in."
            };
            let body = html! { h1 { "Refused" } p.alert role="alert" { (why) } };
            return (rejection.status(), bare("Refused", body)).into_response();
        }
    };
    let form = Form::parse(&body);
    let next = links::after_sign_in(form.text("next")).to_owned();
    let config = console.config();
    let Some(expected) = config.daemon.admin_token.as_ref() else {
        return (
            StatusCode::NOT_FOUND,
            bare(
                "Console off",
                html! { p.alert { "The console is off: set daemon.admin_token_file." } },
            ),
        )
            .into_response();
    };
    let expected = expected.expose_secret().as_bytes();
    let given = form.text("token").trim();
    if given.is_empty() || !crate::service::http::equal_in_constant_time(given.as_bytes(), expected)
    {
        let error = if given.is_empty() {
            "Enter the admin token."
        } else {
            "That is not the admin token. Copy it from the file daemon.admin_token_file names."
        };
        return (
            StatusCode::UNAUTHORIZED,
            form_page(&next, Some(error), None),
        )
            .into_response();
    }
    let session = console.sessions.open(expected, Instant::now());
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        session.id,
        LIFETIME.as_secs()
    );
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a session id is a header value"),
    );
    response
}

/// `POST /sign-out`: ends the session and expires its cookie.
pub(super) async fn sign_out(
    State(console): State<Console>,
    Extension(session): Extension<Session>,
) -> Response {
    console.sessions.end(&session.id);
    let mut response = Redirect::to("/sign-in?out=1").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        ))
        .expect("a header value"),
    );
    response
}

fn form_page(next: &str, error: Option<&str>, notice: Option<&str>) -> Markup {
    bare(
        "Sign in",
        html! {
            section.card {
                h1 { "Sign in to idpsync" }
                @if let Some(notice) = notice {
                    p.flash role="status" { (notice) }
                }
                p.muted { "Administer end-user groups, their roles and members, mappings and runs." }
                form method="post" action="/sign-in" {
                    input type="hidden" name="next" value=(next);
                    label for="token" { "Admin token" }
                    input #token type="password" name="token" autocomplete="off" required
                        autofocus aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[described_by("token", error)];
                    (field_error("token", error))
                    p.muted { "The token in the file daemon.admin_token_file names." }
                    div.actions { button type="submit" { "Sign in" } }
                }
            }
        },
    )
}
