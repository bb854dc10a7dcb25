//! A small async HTTP client for the fake's own tests: a `User-Agent` and the bearer token
//! unless told otherwise, answers read as JSON, and a check of SCIM Error documents.

use reqwest::Method;
use serde_json::{Value, json};

use super::FakeScim;

/// The token the tests' fakes accept.
pub(super) const TOKEN: &str = "scim-secret";

/// A client for one fake, with a `User-Agent` and the token unless told otherwise.
pub(super) struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// An answer: status, headers, body as JSON (`Null` when empty).
pub(super) struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Client {
    pub fn new(fake: &FakeScim) -> Client {
        let http = reqwest::Client::builder()
            .user_agent("idpsync-test/1")
            .build()
            .unwrap();
        Client {
            http,
            base: fake.url(),
            token: Some(TOKEN.to_owned()),
        }
    }

    pub fn without_user_agent(fake: &FakeScim) -> Client {
        Client {
            http: reqwest::Client::new(),
            ..Client::new(fake)
        }
    }

    pub fn with_token(fake: &FakeScim, token: Option<&str>) -> Client {
        Client {
            token: token.map(str::to_owned),
            ..Client::new(fake)
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.send_with(method, path, body, &[]).await
    }

    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }
}

/// Asserts `a` is a SCIM Error with `status` and `scim_type`.
pub(super) fn assert_error(a: &Answer, status: u16, scim_type: Option<&str>) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(
        a.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(a.body["status"], json!(status.to_string()));
    assert_eq!(a.body["scimType"].as_str(), scim_type, "{}", a.body);
    assert!(a.body["detail"].is_string());
    assert_eq!(a.headers["content-type"], "application/scim+json");
}
