//! A forwarding HTTP proxy for plain `http://` targets (requests in absolute form), counting
//! what passed through it, so a test can prove the `proxy` key is used.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::server::{Running, spawn};

/// A running proxy.
pub struct FakeProxy {
    /// The server.
    pub server: Running,
    /// Requests forwarded.
    pub forwarded: Arc<AtomicU64>,
}

impl FakeProxy {
    /// Starts a proxy.
    pub fn start() -> FakeProxy {
        let forwarded = Arc::new(AtomicU64::new(0));
        let counter = forwarded.clone();
        let server = spawn(move |_| {
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            Router::new()
                .fallback(forward)
                .with_state((client, counter))
        });
        FakeProxy { server, forwarded }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Requests forwarded so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }
}

async fn forward(
    State((client, counter)): State<(reqwest::Client, Arc<AtomicU64>)>,
    request: Request,
) -> Response {
    let uri = request.uri().to_string();
    if !uri.starts_with("http://") {
        return (
            StatusCode::BAD_REQUEST,
            "this proxy forwards absolute-form http:// requests only",
        )
            .into_response();
    }
    counter.fetch_add(1, Ordering::Relaxed);
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes()).unwrap();
    let mut outbound = client.request(method, &uri);
    for (name, value) in request.headers() {
        if name != "host" && name != "proxy-connection" {
            outbound = outbound.header(name.as_str(), value.as_bytes());
        }
    }
    let body = axum::body::to_bytes(request.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    match outbound.body(body).send().await {
        Ok(r) => {
            let mut response = Response::builder().status(r.status().as_u16());
            for (name, value) in r.headers() {
                response = response.header(name.as_str(), value.as_bytes());
            }
            response
                .body(Body::from(r.bytes().await.unwrap_or_default()))
                .unwrap()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
