//! Drives the fake over HTTP: auth, group creation and lookup, adds and removes, searches;
//! paging in [`pages`], limits and switches in [`limits`].

mod limits;
mod pages;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::FakeJira;

pub(super) const EMAIL: &str = "bot@example.com";
pub(super) const TOKEN: &str = "api-token-1";

pub(super) struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

pub(super) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(super) fn message(&self) -> &str {
        self.body["errorMessages"][0].as_str().unwrap_or("")
    }
}

impl Client {
    pub(super) fn new(jira: &FakeJira) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: jira.site_url(),
        }
    }

    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: Option<(&str, &str)>,
    ) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.http.request(method, url);
        if let Some((user, token)) = auth {
            request = request.basic_auth(user, Some(token));
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("the fake answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    pub(super) async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, Some((EMAIL, TOKEN)))
            .await
    }

    pub(super) async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body), Some((EMAIL, TOKEN)))
            .await
    }

    pub(super) async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None, Some((EMAIL, TOKEN)))
            .await
    }
}

#[tokio::test]
async fn every_call_needs_the_basic_credential() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    let c = Client::new(&jira);
    let none = c
        .send(Method::GET, "/rest/api/3/group/bulk", None, None)
        .await;
    assert_eq!(none.status, 401);
    assert!(none.message().contains("not authenticated"));
    assert_eq!(none.body["errors"], json!({}));
    assert_eq!(none.header("x-ratelimit-limit"), Some("100"));
    let wrong = c
        .send(
            Method::POST,
            "/rest/api/3/group",
            Some(json!({"name": "x"})),
            Some((EMAIL, "nope")),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let bearer = c
        .http
        .get(format!("{}/rest/api/3/user/search?query=a", c.base))
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert_eq!(bearer.map(|r| r.status().as_u16()).ok(), Some(401));
    assert!(jira.group_names().is_empty());
    let ok = c.get("/rest/api/3/group/bulk").await;
    assert_eq!(ok.status, 200);
    let counts = jira.counts();
    assert_eq!(
        (counts.requests, counts.unauthorized, counts.group_lookups),
        (4, 3, 1)
    );
}

#[tokio::test]
async fn groups_are_created_once_and_found_by_name_case_insensitively_or_id() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    let c = Client::new(&jira);
    let created = c
        .post("/rest/api/3/group", json!({"name": "Power-Users"}))
        .await;
    assert_eq!(created.status, 201);
    let id = created.body["groupId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(jira.group_id("power-users").as_deref(), Some(id.as_str()));
    assert_eq!(created.body["name"], "Power-Users");
    assert!(
        created.body["self"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&id)
    );
    let again = c
        .post("/rest/api/3/group", json!({"name": "POWER-USERS"}))
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(
        again.message(),
        "A group with name 'Power-Users' already exists."
    );
    assert_eq!(c.post("/rest/api/3/group", json!({})).await.status, 400);
    assert_eq!(
        c.post("/rest/api/3/group", json!({"name": "x".repeat(256)}))
            .await
            .status,
        400
    );
    let not_json = c
        .send(
            Method::POST,
            "/rest/api/3/group",
            Some(json!("text")),
            Some((EMAIL, TOKEN)),
        )
        .await;
    assert_eq!(not_json.status, 400);
    let by_name = c
        .get("/rest/api/3/group/bulk?groupName=power-users&groupName=missing")
        .await;
    assert_eq!(
        by_name.body["values"],
        json!([{"name": "Power-Users", "groupId": id}])
    );
    assert_eq!(
        (
            by_name.body["total"].as_u64(),
            by_name.body["isLast"].as_bool()
        ),
        (Some(1), Some(true))
    );
    let by_id = c.get(&format!("/rest/api/3/group/bulk?groupId={id}")).await;
    assert_eq!(by_id.body["values"][0]["name"], "Power-Users");
    jira.rename_group("Power-Users", "Admins");
    let old = c.get("/rest/api/3/group/bulk?groupName=Power-Users").await;
    assert_eq!(old.body["values"], json!([]));
    let new = c.get("/rest/api/3/group/bulk?groupName=admins").await;
    assert_eq!(new.body["values"][0]["groupId"], id.as_str());
    assert_eq!(jira.counts().group_creates, 5);
}

#[tokio::test]
async fn adds_and_removes_are_one_user_each_and_report_what_was_already_so() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    let gid = jira.add_group("Devs");
    let alice = jira.add_user("alice@example.com");
    let c = Client::new(&jira);
    let add = format!("/rest/api/3/group/user?groupId={gid}");
    let first = c.post(&add, json!({"accountId": alice})).await;
    assert_eq!(first.status, 201);
    assert_eq!(
        (first.body["groupId"].as_str(), first.body["name"].as_str()),
        (Some(gid.as_str()), Some("Devs"))
    );
    let again = c.post(&add, json!({"accountId": alice})).await;
    assert_eq!(again.status, 400);
    assert_eq!(
        again.message(),
        "Cannot add user. User is already a member of 'Devs'"
    );
    assert_eq!(
        c.post(&add, json!({"accountId": "unknown"})).await.status,
        404
    );
    assert_eq!(c.post(&add, json!({})).await.status, 400);
    let unknown_group = c
        .post(
            "/rest/api/3/group/user?groupId=nope",
            json!({"accountId": alice}),
        )
        .await;
    assert_eq!(unknown_group.status, 404);
    assert_eq!(jira.members_of("Devs"), vec!["alice@example.com"]);
    let remove = format!("/rest/api/3/group/user?groupId={gid}&accountId={alice}");
    assert_eq!(c.delete(&remove).await.status, 200);
    let gone = c.delete(&remove).await;
    assert_eq!(gone.status, 404);
    assert_eq!(
        gone.message(),
        "Cannot remove user. User is not a member of 'Devs'"
    );
    let long = "a".repeat(129);
    assert_eq!(
        c.delete(&format!(
            "/rest/api/3/group/user?groupId={gid}&accountId={long}"
        ))
        .await
        .status,
        400
    );
    assert!(jira.members_of("Devs").is_empty());
    jira.add_member("Devs", "alice@example.com");
    assert!(jira.remove_member("Devs", "alice@example.com"));
    let counts = jira.counts();
    assert_eq!((counts.add_user, counts.remove_user), (5, 3));
}

#[tokio::test]
async fn searches_match_email_or_display_name_and_keep_hidden_emails_hidden() {
    let jira = FakeJira::start(EMAIL, TOKEN);
    let alice = jira.add_user("alice.smith@example.com");
    jira.add_user_named("bob@example.com", "Robert Jones");
    let hidden = jira.add_user_hidden_email("carol.white@example.com");
    let c = Client::new(&jira);
    let found = c
        .get("/rest/api/3/user/search?query=ALICE.SMITH%40example.com")
        .await;
    assert_eq!(found.status, 200);
    assert_eq!(found.body[0]["accountId"], alice.as_str());
    assert_eq!(found.body[0]["emailAddress"], "alice.smith@example.com");
    assert_eq!(found.body[0]["displayName"], "Alice Smith");
    let robert = c.get("/rest/api/3/user/search?query=robert").await;
    assert_eq!(robert.body[0]["emailAddress"], "bob@example.com");
    for query in ["Carol%20White", "carol.white%40example.com"] {
        let carol = c
            .get(&format!("/rest/api/3/user/search?query={query}"))
            .await;
        assert_eq!(carol.body.as_array().map(Vec::len), Some(1));
        assert_eq!(carol.body[0]["accountId"], hidden.as_str());
        assert!(carol.body[0].get("emailAddress").is_none());
    }
    let many = c
        .get("/rest/api/3/user/search?query=example&maxResults=2")
        .await;
    assert_eq!(many.body.as_array().map(Vec::len), Some(2));
    assert_eq!(c.get("/rest/api/3/user/search").await.status, 400);
    assert_eq!(jira.counts().user_searches, 6);
}
