//! Paging, groups, membership changes and user creation over HTTP.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::super::{Switches, codes, store::new_key};
use super::{assert_problem, client};

#[tokio::test]
async fn pages_by_limit_and_offset_within_the_caps() {
    let c = client(Switches::default()).await;
    let keys = c.fake.seed_users(250);
    let first = c.get("/users").await;
    assert_eq!(first.body["results"].as_array().unwrap().len(), 100);
    assert_eq!(
        first.body["page"],
        json!({"count": 100, "limit": 100, "offset": 0, "nextPageOffset": 100, "totalResults": 250, "totalPages": 3})
    );
    assert_eq!(first.body["results"][0]["email"], "user000000@example.com");
    assert_eq!(first.body["results"][0]["isActive"], true);
    let last = c.get("/users?limit=100&offset=200").await;
    assert_eq!(last.body["page"]["count"], 50);
    assert_eq!(last.body["page"]["nextPageOffset"], Value::Null);
    let past = c.get("/users?offset=900").await;
    assert_eq!(
        (
            past.body["page"]["count"].clone(),
            past.body["page"]["nextPageOffset"].clone()
        ),
        (json!(0), Value::Null)
    );
    for bad in ["limit=101", "limit=0", "offset=-1", "limit=ten"] {
        assert_problem(
            &c.get(&format!("/users?{bad}")).await,
            400,
            codes::VALIDATION,
        );
    }
    let two = c
        .get(&format!("/users?userKeys={},{}", keys[7], keys[3]))
        .await;
    assert_eq!(two.body["page"]["totalResults"], 2);
    let many = keys[..21].join(",");
    assert_problem(
        &c.get(&format!("/users?userKeys={many}")).await,
        400,
        codes::VALIDATION,
    );
    let found = c.get("/users?nameOrEmailContains=USER00012").await;
    assert_eq!(found.body["page"]["totalResults"], 10);
    assert_eq!(c.fake.stats().user_pages, 10);
}

#[tokio::test]
async fn groups_are_unique_per_stage_and_searchable() {
    let c = client(Switches::default()).await;
    let (dev, prod) = (
        c.fake.add_environment("Development"),
        c.fake.add_environment("Production"),
    );
    let create = |env: &str, name: &str| {
        c.call(Method::POST, "/groups", Some(json!({"name": name, "description": "d", "environmentKey": env, "applicationRoleKeys": [], "userKeys": []})))
    };
    let made = create(&dev, "Engineering").await;
    assert_eq!(made.status, 201);
    let key = made.body["key"].as_str().unwrap().to_owned();
    assert_eq!(c.fake.group_key(&dev, "engineering"), Some(key.clone()));
    assert_problem(&create(&dev, "ENGINEERING").await, 409, codes::GROUP_EXISTS);
    assert_eq!(create(&prod, "Engineering").await.status, 201);
    assert_problem(
        &create(&new_key(), "X").await,
        400,
        codes::UNKNOWN_ENVIRONMENT,
    );
    c.fake.add_group(&dev, "Sales");
    let search = c
        .get(&format!("/groups?nameContains=NGIN&environmentKey={dev}"))
        .await;
    assert_eq!(search.body["page"]["totalResults"], 1);
    let g = &search.body["results"][0];
    assert_eq!(
        (g["key"].as_str(), g["environmentKey"].as_str()),
        (Some(key.as_str()), Some(dev.as_str()))
    );
    assert_eq!(
        (
            g["portfolioKey"].clone(),
            g["groupIdpClaimMappings"].clone()
        ),
        (Value::Null, json!([]))
    );
    assert_eq!(c.get("/groups").await.body["page"]["totalResults"], 3);
    assert_eq!(
        c.get(&format!("/groups/{key}")).await.body["name"],
        "Engineering"
    );
    let missing = new_key();
    assert_problem(
        &c.get(&format!("/groups/{missing}")).await,
        404,
        codes::NOT_FOUND,
    );
    let rename = c
        .call(
            Method::PATCH,
            &format!("/groups/{key}"),
            Some(json!({"name": "Platform"})),
        )
        .await;
    assert_eq!(rename.status, 204);
    assert_eq!(c.fake.group_name(&key).as_deref(), Some("Platform"));
    let clash = c
        .call(
            Method::PATCH,
            &format!("/groups/{key}"),
            Some(json!({"name": "sales"})),
        )
        .await;
    assert_problem(&clash, 409, codes::GROUP_EXISTS);
    assert_eq!(
        (c.fake.stats().group_creates, c.fake.stats().group_lookups),
        (2, 4)
    );
}

#[tokio::test]
async fn patch_changes_assigned_membership_only_idempotently_and_atomically() {
    let c = client(Switches::default()).await;
    let env = c.fake.add_environment("Production");
    let group = c.fake.add_group(&env, "Ops");
    let [a, b, d] = [
        c.fake.add_user("a@x.test"),
        c.fake.add_user("b@x.test"),
        c.fake.add_user("d@x.test"),
    ];
    assert_eq!(c.patch_users(&group, &[&a, &b], &[]).await.status, 200);
    assert_eq!(c.patch_users(&group, &[&a], &[&d]).await.status, 200);
    assert_eq!(c.fake.assigned_members(&group), ["a@x.test", "b@x.test"]);
    assert_eq!(c.fake.stats().member_changes, 2);
    c.fake.add_mapped_member(&group, &d);
    c.fake.add_mapped_member(&group, &a);
    let all = c.get(&format!("/groups/{group}/users")).await;
    let types: Vec<(String, Value)> = all.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"]["email"].as_str().unwrap().to_owned(),
                m["membershipTypes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("a@x.test".into(), json!(["Assigned", "Mapped"])),
            ("b@x.test".into(), json!(["Assigned"])),
            ("d@x.test".into(), json!(["Mapped"]))
        ]
    );
    let assigned = c
        .get(&format!("/groups/{group}/users?membershipType=Assigned"))
        .await;
    assert_eq!(assigned.body["page"]["totalResults"], 2);
    assert_eq!(
        assigned.body["results"][0]["membershipTypes"],
        json!(["Assigned"])
    );
    assert_eq!(assigned.body["results"][0]["user"]["status"], "Active");
    let unknown = new_key();
    assert_problem(
        &c.patch_users(&group, &[&d, &unknown], &[&b]).await,
        400,
        codes::UNKNOWN_USER,
    );
    assert_eq!(c.fake.assigned_members(&group), ["a@x.test", "b@x.test"]);
    let flood: Vec<String> = (0..1001).map(|_| new_key()).collect();
    let flood: Vec<&str> = flood.iter().map(String::as_str).collect();
    assert_problem(
        &c.patch_users(&group, &flood, &[]).await,
        400,
        codes::VALIDATION,
    );
    assert_eq!(c.patch_users(&group, &[], &[&a, &d]).await.status, 200);
    assert_eq!(
        (
            c.fake.assigned_members(&group),
            c.fake.mapped_members(&group)
        ),
        (
            vec!["b@x.test".to_owned()],
            vec!["a@x.test".to_owned(), "d@x.test".to_owned()]
        )
    );
    assert_problem(
        &c.patch_users(&unknown, &[&a], &[]).await,
        404,
        codes::NOT_FOUND,
    );
    let seeded = c.fake.seed_users(150);
    let body = json!({"userKeysToAdd": seeded});
    assert_eq!(
        c.call(Method::PATCH, &format!("/groups/{group}/users"), Some(body))
            .await
            .status,
        200
    );
    let next = c
        .get(&format!(
            "/groups/{group}/users?membershipType=Assigned&offset=100"
        ))
        .await;
    assert_eq!(
        (
            next.body["page"]["count"].clone(),
            next.body["page"]["totalResults"].clone()
        ),
        (json!(51), json!(151))
    );
    let stats = c.fake.stats();
    assert_eq!(
        (stats.patch_users, stats.member_changes, stats.member_pages),
        (7, 153, 3)
    );
}

#[tokio::test]
async fn creates_users_with_unique_emails_and_records_their_idp() {
    let c = client(Switches::default()).await;
    let idp = new_key();
    let new = |email: &str| json!({"name": "Ann", "email": email, "isActive": true, "identityProviderKey": idp, "subject": "sub-1", "username": "ann"});
    let made = c
        .call(Method::POST, "/users", Some(new("ann@x.test")))
        .await;
    assert_eq!(made.status, 201);
    let key = made.body["key"].as_str().unwrap();
    assert_eq!(c.fake.user_key("ANN@x.test").as_deref(), Some(key));
    assert_problem(
        &c.call(Method::POST, "/users", Some(new("Ann@X.test")))
            .await,
        409,
        codes::USER_EXISTS,
    );
    let lone = json!({"name": "Bo", "email": "bo@x.test", "subject": "s"});
    assert_problem(
        &c.call(Method::POST, "/users", Some(lone)).await,
        400,
        codes::VALIDATION,
    );
    assert_problem(
        &c.call(Method::POST, "/users", Some(json!({"email": "c@x.test"})))
            .await,
        400,
        codes::VALIDATION,
    );
    assert_eq!(
        c.fake.created_users(),
        [(
            "ann@x.test".to_owned(),
            Some(idp.clone()),
            Some("sub-1".to_owned())
        )]
    );
    assert_eq!(c.fake.stats().user_creates, 1);
}

#[tokio::test]
async fn seeds_ten_thousand_users_quickly() {
    let c = client(Switches::default()).await;
    let started = std::time::Instant::now();
    let keys = c.fake.seed_users(10_000);
    c.fake
        .add_users((0..500).map(|i| format!("extra{i}@example.com")));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!((keys.len(), c.fake.user_count()), (10_000, 10_500));
    let one = c.get("/users?limit=1&offset=10499").await;
    assert_eq!(one.body["page"]["totalPages"], 10_500);
    assert_eq!(one.body["results"][0]["email"], "user009999@example.com");
}
