//! The console's one stylesheet, compiled into the binary and served from this origin (the CSP
//! allows nothing else; nothing is loaded from the internet).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The stylesheet: responsive from phone to laptop widths, with a visible focus ring.
const STYLESHEET: &str = include_str!("console.css");

/// `GET /assets/console.css`.
pub(super) async fn stylesheet() -> Response {
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    response
}
