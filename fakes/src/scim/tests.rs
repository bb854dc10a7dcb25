//! The fake over HTTP: auth and `User-Agent` on every call, discovery, user paging (index and
//! cursor), user filters, user creates and their limits, and the 429/503/rejection switches.

use reqwest::Method;
use serde_json::json;

use super::testing::{Client, TOKEN, assert_error};
use super::{FakeScim, Switches, read};

#[tokio::test]
async fn every_call_needs_the_token_and_a_user_agent() {
    let fake = FakeScim::start(TOKEN);
    let g = fake.add_group("Team");
    for client in [
        Client::with_token(&fake, None),
        Client::with_token(&fake, Some("wrong")),
    ] {
        for (method, path) in [
            (Method::GET, "/ServiceProviderConfig".to_owned()),
            (Method::GET, "/Users".to_owned()),
            (Method::GET, format!("/Groups/{g}")),
            (Method::PATCH, format!("/Groups/{g}")),
            (Method::DELETE, format!("/Groups/{g}")),
        ] {
            assert_error(&client.send(method, &path, None).await, 401, None);
        }
    }
    assert_eq!(read(&fake.counts().unauthorized), 10);
    let bare = Client::without_user_agent(&fake);
    assert_error(&bare.get("/Users").await, 400, Some("invalidValue"));
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": []}]});
    let a = bare
        .send(Method::PATCH, &format!("/Groups/{g}"), Some(patch))
        .await;
    assert_error(&a, 400, Some("invalidValue"));
    assert_eq!(read(&fake.counts().missing_user_agent), 2);
    assert_eq!(read(&fake.counts().requests), 12);
    assert_eq!(read(&fake.counts().patches), 0);
    assert_eq!(fake.group_id("team"), Some(g));
}

#[tokio::test]
async fn the_provider_config_is_aws_like() {
    let fake = FakeScim::start(TOKEN);
    let c = Client::new(&fake);
    let a = c.get("/ServiceProviderConfig").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["content-type"], "application/scim+json");
    assert_eq!(a.body["patch"]["supported"], true);
    assert_eq!(a.body["bulk"]["supported"], false);
    assert_eq!(
        a.body["filter"],
        json!({"supported": true, "maxResults": 100})
    );
    assert_eq!(a.body["sort"]["supported"], false);
    assert_eq!(a.body["etag"]["supported"], false);
    fake.switch(|s| s.etag = true);
    assert_eq!(
        c.get("/ServiceProviderConfig").await.body["etag"]["supported"],
        true
    );
    assert_error(&c.get("/Bulk").await, 404, None);
}

#[tokio::test]
async fn users_page_by_index_clamped_to_100() {
    let fake = FakeScim::start(TOKEN);
    fake.seed_users(250);
    let c = Client::new(&fake);
    let a = c.get("/Users?startIndex=1&count=500").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(a.body["totalResults"], 250);
    assert_eq!(a.body["itemsPerPage"], 100);
    assert_eq!(a.body["startIndex"], 1);
    let first = &a.body["Resources"][0];
    assert_eq!(first["userName"], "user000000@example.com");
    assert_eq!(first["emails"][0]["value"], "user000000@example.com");
    assert_eq!(first["emails"][0]["primary"], true);
    assert_eq!(first["active"], true);
    let a = c.get("/Users?startIndex=201&count=100").await;
    assert_eq!(a.body["itemsPerPage"], 50);
    assert_eq!(
        a.body["Resources"][49]["userName"],
        "user000249@example.com"
    );
    assert_eq!(
        c.get("/Users?startIndex=0&count=10").await.body["startIndex"],
        1
    );
    assert_eq!(c.get("/Users?startIndex=300").await.body["itemsPerPage"], 0);
    assert_error(&c.get("/Users?count=0").await, 400, Some("invalidValue"));
    assert_error(&c.get("/Users?count=x").await, 400, Some("invalidValue"));
    assert_eq!(read(&fake.counts().user_pages), 6);
    fake.switch(|s| s.page_cap = 50);
    assert_eq!(c.get("/Users").await.body["itemsPerPage"], 50);
    let id = fake.user_id("USER000007@example.com").unwrap();
    let a = c.get(&format!("/Users/{id}")).await;
    assert_eq!(
        (a.status, a.body["userName"].as_str()),
        (200, Some("user000007@example.com"))
    );
    assert_error(&c.get("/Users/nope").await, 404, None);
}

#[tokio::test]
async fn cursors_page_to_the_end() {
    let fake = FakeScim::start(TOKEN);
    fake.seed_users(250);
    let c = Client::new(&fake);
    let (mut names, mut cursor, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let a = c.get(&format!("/Users?count=100&cursor={cursor}")).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.body.get("startIndex").is_none());
        pages += 1;
        for u in a.body["Resources"].as_array().unwrap() {
            names.push(u["userName"].as_str().unwrap().to_owned());
        }
        match a.body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!((pages, names.len()), (3, 250));
    names.dedup();
    assert_eq!(names.len(), 250);
    assert_error(
        &c.get("/Users?cursor=bogus").await,
        400,
        Some("invalidCursor"),
    );
    assert_error(
        &c.get("/Users?cursor=&startIndex=1").await,
        400,
        Some("invalidValue"),
    );
    fake.add_group("A");
    let a = c.get("/Groups?cursor=").await;
    assert_eq!(
        (a.body["totalResults"].as_u64(), a.body.get("nextCursor")),
        (Some(1), None)
    );
}

#[tokio::test]
async fn users_filter_by_user_name_or_external_id_only() {
    let fake = FakeScim::start(TOKEN);
    fake.seed_users(10_000);
    let id = fake.add_user_with_external_id("Ann@Example.com", Some("ext-1"));
    assert_eq!(fake.user_count(), 10_001);
    let c = Client::new(&fake);
    let a = c
        .get("/Users?filter=userName%20eq%20%22ann%40example.com%22")
        .await;
    assert_eq!(a.body["totalResults"], 1);
    assert_eq!(a.body["Resources"][0]["id"], json!(id));
    assert_eq!(a.body["Resources"][0]["externalId"], "ext-1");
    let a = c.get("/Users?filter=externalId%20eq%20%22ext-1%22").await;
    assert_eq!(a.body["Resources"][0]["userName"], "Ann@Example.com");
    let a = c.get("/Users?filter=userName%20eq%20%22nobody%22").await;
    assert_eq!((a.status, a.body["totalResults"].as_u64()), (200, Some(0)));
    for bad in [
        "userName%20ne%20%22x%22",
        "displayName%20eq%20%22x%22",
        "userName%20eq%20%22x%22%20or%20userName%20eq%20%22y%22",
        "userName%20sw%20%22a%22",
    ] {
        let a = c.get(&format!("/Users?filter={bad}")).await;
        assert_error(&a, 400, Some("invalidFilter"));
    }
    assert_eq!(read(&fake.counts().user_lookups), 7);
    assert_eq!(read(&fake.counts().user_pages), 0);
}

#[tokio::test]
async fn creating_users_needs_a_new_user_name() {
    let fake = FakeScim::start(TOKEN);
    let c = Client::new(&fake);
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bo@example.com", "displayName": "Bo", "externalId": "e-bo",
        "name": {"givenName": "Bo", "familyName": "B"},
        "emails": [{"value": "bo@example.com", "primary": true}]});
    let a = c.send(Method::POST, "/Users", Some(body.clone())).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.body["id"].as_str().unwrap();
    assert_eq!(
        a.headers["location"].to_str().unwrap(),
        format!("{}/Users/{id}", fake.url())
    );
    assert_eq!(a.body["displayName"], "Bo");
    assert_eq!(a.body["name"]["givenName"], "Bo");
    let mut again = body.clone();
    again["userName"] = json!("BO@example.com");
    let a = c.send(Method::POST, "/Users", Some(again)).await;
    assert_error(&a, 409, Some("uniqueness"));
    let a = c
        .send(Method::POST, "/Users", Some(json!({"displayName": "x"})))
        .await;
    assert_error(&a, 400, Some("invalidValue"));
    let two = json!({"userName": "c@x", "emails": [{"value": "a@x"}, {"value": "b@x"}]});
    assert_error(
        &c.send(Method::POST, "/Users", Some(two)).await,
        400,
        Some("invalidValue"),
    );
    let long = json!({"userName": "x".repeat(129)});
    assert_error(
        &c.send(Method::POST, "/Users", Some(long)).await,
        400,
        Some("invalidValue"),
    );
    let a = c
        .send_with(
            Method::POST,
            "/Users",
            None,
            &[("content-type", "text/plain")],
        )
        .await;
    assert_error(&a, 415, None);
    assert_eq!(fake.user_count(), 1);
    assert_eq!(read(&fake.counts().user_creates), 6);
}

#[tokio::test]
async fn switches_throttle_fail_and_reject() {
    let fake = FakeScim::start_with(
        TOKEN,
        Switches {
            retry_after: Some(7),
            ..Switches::default()
        },
    );
    let c = Client::new(&fake);
    fake.switch(|s| s.throttle_next = 2);
    for _ in 0..2 {
        let a = c.get("/Users").await;
        assert_error(&a, 429, None);
        assert_eq!(a.headers["retry-after"], "7");
    }
    assert_eq!(c.get("/Users").await.status, 200);
    fake.switch(|s| {
        s.throttle_next = 1;
        s.retry_after = Some(0);
    });
    assert_eq!(c.get("/Users").await.headers["retry-after"], "0");
    fake.switch(|s| s.busy_next = 2);
    let a = c.get("/Groups").await;
    assert_error(&a, 503, None);
    assert!(!a.headers.contains_key("retry-after"));
    fake.switch(|s| s.busy_retry_after = Some(3));
    assert_eq!(c.get("/Groups").await.headers["retry-after"], "3");
    assert_eq!(c.get("/Groups").await.status, 200);
    fake.switch(|s| s.reject_writes = 2);
    assert_eq!(c.get("/Groups").await.status, 200);
    let body = json!({"displayName": "G"});
    assert_error(
        &c.send(Method::POST, "/Groups", Some(body.clone())).await,
        400,
        Some("invalidValue"),
    );
    fake.switch(|s| s.reject_status = 403);
    assert_error(
        &c.send(Method::POST, "/Groups", Some(body.clone())).await,
        403,
        None,
    );
    assert_eq!(
        c.send(Method::POST, "/Groups", Some(body)).await.status,
        201
    );
    let counts = fake.counts();
    assert_eq!(
        (
            read(&counts.throttled),
            read(&counts.busy),
            read(&counts.rejected_writes)
        ),
        (3, 2, 2)
    );
    assert_eq!(read(&counts.requests), 11);
}
