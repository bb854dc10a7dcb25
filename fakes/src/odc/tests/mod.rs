//! Drives the fake over HTTP as a client would: auth, rate limit and switches here; paging and
//! the write semantics in [`writes`].

mod writes;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::{FakeOdc, Switches, codes};

const ID: &str = "idpsync-client";
const SECRET: &str = "s3cret";

pub(super) struct Client {
    pub(super) fake: FakeOdc,
    pub(super) http: reqwest::Client,
    pub(super) token: String,
}

pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) headers: reqwest::header::HeaderMap,
    pub(super) body: Value,
}

pub(super) async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.expect("a body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

pub(super) async fn fetch_token(fake: &FakeOdc, http: &reqwest::Client) -> String {
    let disco = http
        .get(format!(
            "{}/identity/.well-known/openid-configuration",
            fake.portal_url()
        ))
        .send()
        .await
        .expect("discovery");
    let disco = answer(disco).await.body;
    let endpoint = disco["token_endpoint"].as_str().expect("a token endpoint");
    let r = http
        .post(endpoint)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ID),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .expect("token");
    answer(r).await.body["access_token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

pub(super) async fn client(switches: Switches) -> Client {
    let fake = FakeOdc::start_with(ID, SECRET, switches);
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let token = fetch_token(&fake, &http).await;
    Client { fake, http, token }
}

impl Client {
    pub(super) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.fake.api_url()))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            r = r
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        answer(r.send().await.expect("a response")).await
    }

    pub(super) async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub(super) async fn patch_users(&self, group: &str, add: &[&str], remove: &[&str]) -> Answer {
        let body = json!({"userKeysToAdd": add, "userKeysToRemove": remove});
        let path = format!("/groups/{group}/users");
        self.call(Method::PATCH, &path, Some(body)).await
    }
}

pub(super) fn assert_problem(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.headers["content-type"], "application/problem+json");
    assert_eq!(a.body["status"], status);
    assert_eq!(a.body["errorCode"], code);
    for field in ["type", "title", "detail", "instance", "traceId"] {
        assert!(a.body[field].is_string(), "{field} in {}", a.body);
    }
}

#[tokio::test]
async fn issues_tokens_for_client_credentials_only() {
    let c = client(Switches::default()).await;
    let token = |form: Vec<(&'static str, &'static str)>| {
        c.http.post(c.fake.token_url()).form(&form).send()
    };
    let good = answer(
        token(vec![
            ("grant_type", "client_credentials"),
            ("client_id", ID),
            ("client_secret", SECRET),
        ])
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(good.status, 200);
    assert_eq!(good.body["expires_in"], 43_200);
    assert_eq!(good.body["token_type"], "Bearer");
    let basic = c
        .http
        .post(c.fake.token_url())
        .basic_auth(ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials")]);
    assert_eq!(answer(basic.send().await.unwrap()).await.status, 200);
    let wrong = answer(
        token(vec![
            ("grant_type", "client_credentials"),
            ("client_id", ID),
            ("client_secret", "nope"),
        ])
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.body["error"].clone()),
        (401, json!("invalid_client"))
    );
    let grant = answer(
        token(vec![
            ("grant_type", "password"),
            ("client_id", ID),
            ("client_secret", SECRET),
        ])
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (grant.status, grant.body["error"].clone()),
        (400, json!("unsupported_grant_type"))
    );
    c.fake.switch(|s| s.token_failures = 1);
    let busy = answer(
        token(vec![
            ("grant_type", "client_credentials"),
            ("client_id", ID),
            ("client_secret", SECRET),
        ])
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(busy.status, 503);
    let stats = c.fake.stats();
    assert_eq!((stats.tokens, stats.requests, stats.discoveries), (6, 0, 1));
}

#[tokio::test]
async fn every_call_needs_a_live_bearer_token() {
    let c = client(Switches::default()).await;
    let bare = c
        .http
        .get(format!("{}/groups", c.fake.api_url()))
        .send()
        .await
        .unwrap();
    assert_problem(&answer(bare).await, 401, codes::UNAUTHORIZED);
    let bogus = c
        .http
        .get(format!("{}/users", c.fake.api_url()))
        .bearer_auth("forged")
        .send()
        .await
        .unwrap();
    assert_problem(&answer(bogus).await, 401, codes::UNAUTHORIZED);
    assert_eq!(c.get("/groups").await.status, 200);
    c.fake.expire_tokens();
    assert_problem(&c.get("/groups").await, 401, codes::UNAUTHORIZED);
    c.fake.switch(|s| s.token_lifetime = Duration::ZERO);
    let stale = Client {
        token: fetch_token(&c.fake, &c.http).await,
        ..c
    };
    assert_problem(&stale.get("/users").await, 401, codes::UNAUTHORIZED);
    assert_eq!(stale.fake.stats().unauthorized, 4);
}

#[tokio::test]
async fn rate_limit_is_shared_and_sends_no_retry_after() {
    let c = client(Switches {
        rate_limit: 3,
        ..Switches::default()
    })
    .await;
    for path in ["/groups", "/users", "/groups"] {
        assert_eq!(c.get(path).await.status, 200);
    }
    let over = c.get("/users").await;
    assert_problem(&over, 429, codes::TOO_MANY_REQUESTS);
    assert!(!over.headers.contains_key("retry-after"));
    assert!(!fetch_token(&c.fake, &c.http).await.is_empty());
    c.fake.switch(|s| s.window = Duration::ZERO);
    assert_eq!(c.get("/users").await.status, 200);
    let stats = c.fake.stats();
    assert_eq!(
        (stats.throttled, stats.over_limit, stats.requests),
        (1, 1, 5)
    );
}

#[tokio::test]
async fn switches_force_429s_503s_and_rejected_writes() {
    let c = client(Switches::default()).await;
    let env = c.fake.add_environment("Dev");
    c.fake.switch(|s| {
        s.throttle_next = 2;
        s.throttle_retry_after = Some(0);
    });
    for _ in 0..2 {
        let a = c.get("/groups").await;
        assert_problem(&a, 429, codes::TOO_MANY_REQUESTS);
        assert_eq!(a.headers["retry-after"], "0");
    }
    c.fake.switch(|s| {
        s.busy_next = 2;
        s.busy_retry_after = Some(3);
    });
    let busy = c.get("/groups").await;
    assert_problem(&busy, 503, codes::UNAVAILABLE);
    assert_eq!(busy.headers["retry-after"], "3");
    c.fake.switch(|s| s.busy_retry_after = None);
    assert!(!c.get("/groups").await.headers.contains_key("retry-after"));
    assert_eq!(c.get("/groups").await.status, 200);
    c.fake.switch(|s| s.reject_writes = 2);
    let body = json!({"name": "G", "environmentKey": env});
    assert_problem(
        &c.call(Method::POST, "/groups", Some(body.clone())).await,
        403,
        codes::FORBIDDEN,
    );
    assert_eq!(c.get("/groups").await.status, 200);
    c.fake.switch(|s| s.reject_status = 400);
    assert_problem(
        &c.call(Method::POST, "/groups", Some(body.clone())).await,
        400,
        codes::REJECTED,
    );
    assert_eq!(
        c.call(Method::POST, "/groups", Some(body)).await.status,
        201
    );
    let stats = c.fake.stats();
    assert_eq!(
        (
            stats.throttled,
            stats.busy,
            stats.rejected_writes,
            stats.group_creates
        ),
        (2, 2, 2, 1)
    );
}
