//! The headers on every console response: a strict Content-Security-Policy (nothing but this
//! origin's stylesheet; no script, no frame, forms post only here), `nosniff`, no referrer, and
//! no caching of pages (they show memberships and carry CSRF tokens).
//!
//! It also refuses a POST the browser says comes from another site (`Sec-Fetch-Site`), before
//! any session or token is looked at: another port of the same host is the same *site* to a
//! browser, so `SameSite=Strict` alone would let its pages post here.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout;

/// The console's Content-Security-Policy.
/// `default-src 'none'` covers script and images: no page has either.
pub(super) const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every response, and refuses cross-site POSTs.
pub(super) async fn secure(request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::POST && !same_origin(request.headers()) {
        cross_site()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Whether the browser says the request comes from this origin, or from the person (an address
/// typed, a bookmark). Clients that send no `Sec-Fetch-Site` (curl, older browsers) pass; the
/// CSRF token still guards them.
fn same_origin(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
        None => true,
        Some(site) => site == b"same-origin" || site == b"none",
    }
}

fn cross_site() -> Response {
    let body = html! {
        h1 { "Refused" }
        p.alert role="alert" {
            "This form was sent from another site, so nothing was changed. "
            "Open the console itself and send it from there."
        }
        p { a href="/groups" { "Open the console" } }
    };
    (StatusCode::FORBIDDEN, layout::bare("Refused", body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_or_person_initiated_posts_pass() {
        let mut headers = HeaderMap::new();
        assert!(same_origin(&headers), "no header: the CSRF token decides");
        for (site, passes) in [
            ("same-origin", true),
            ("none", true),
            ("same-site", false),
            ("cross-site", false),
        ] {
            headers.insert("sec-fetch-site", HeaderValue::from_static(site));
            assert_eq!(same_origin(&headers), passes, "{site}");
        }
    }
}
