//! Groups over HTTP: creates and their limits, empty `members` on reads, the AWS filters, and
//! PATCH — idempotent adds, both remove forms, case-insensitive ops, the 100-change cap, refused
//! replace/remove-all/empty bodies, atomicity, renames, ETags and the counters — and the seeding
//! helpers changing memberships behind the client's back.

use reqwest::Method;
use serde_json::{Value, json};

use super::testing::{Answer, Client, TOKEN, assert_error};
use super::{FakeScim, read};

fn patch_body(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn add(ids: &[String]) -> Value {
    let v: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    json!({"op": "add", "path": "members", "value": v})
}

async fn patch(c: &Client, group: &str, ops: Value) -> Answer {
    let path = format!("/Groups/{group}");
    c.send(Method::PATCH, &path, Some(patch_body(ops))).await
}

fn setup(users: usize) -> (FakeScim, String, Vec<String>) {
    let fake = FakeScim::start(TOKEN);
    let ids = fake.seed_users(users);
    let g = fake.add_group("Team");
    (fake, g, ids)
}

#[tokio::test]
async fn groups_read_back_without_members_and_filter_like_aws() {
    let fake = FakeScim::start(TOKEN);
    let users = fake.seed_users(3);
    let c = Client::new(&fake);
    let members: Vec<Value> = users[..2].iter().map(|u| json!({"value": u})).collect();
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Engineers", "externalId": "x-eng", "members": members});
    let a = c.send(Method::POST, "/Groups", Some(body)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let g = a.body["id"].as_str().unwrap().to_owned();
    assert_eq!(a.body["members"], json!([]));
    assert!(a.headers.contains_key("location"));
    let again = json!({"displayName": "ENGINEERS"});
    assert_error(
        &c.send(Method::POST, "/Groups", Some(again)).await,
        409,
        Some("uniqueness"),
    );
    let a = c.get(&format!("/Groups/{g}")).await;
    assert_eq!((a.status, &a.body["members"]), (200, &json!([])));
    assert!(a.body["meta"].get("version").is_none() && !a.headers.contains_key("etag"));
    assert_error(&c.get("/Groups/missing").await, 404, None);
    let q = |f: &str| {
        format!(
            "/Groups?filter={}",
            url::form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
        )
    };
    let a = c.get(&q(r#"displayName eq "engineers""#)).await;
    assert_eq!(
        (
            a.body["totalResults"].as_u64(),
            &a.body["Resources"][0]["members"]
        ),
        (Some(1), &json!([]))
    );
    assert_eq!(
        c.get(&q(r#"externalId eq "x-eng""#)).await.body["totalResults"],
        1
    );
    let check = |u: &str| q(&format!(r#"id eq "{g}" and members eq "{u}""#));
    assert_eq!(c.get(&check(&users[0])).await.body["totalResults"], 1);
    assert_eq!(c.get(&check(&users[2])).await.body["totalResults"], 0);
    let swapped = q(&format!(r#"members eq "{}" and id eq "{g}""#, users[1]));
    assert_eq!(c.get(&swapped).await.body["totalResults"], 1);
    fake.add_group("Other");
    let theirs = c.get(&q(&format!(r#"members eq "{}""#, users[0]))).await;
    assert_eq!(theirs.body["Resources"][0]["displayName"], "Engineers");
    assert_eq!(theirs.body["totalResults"], 1);
    for bad in [
        r#"id eq "x""#,
        r#"displayName co "E""#,
        r#"displayName eq "a" or id eq "b""#,
    ] {
        assert_error(&c.get(&q(bad)).await, 400, Some("invalidFilter"));
    }
    let counts = fake.counts();
    assert_eq!(read(&counts.membership_checks), 3);
    assert_eq!(read(&counts.user_group_queries), 1);
    assert_eq!(read(&counts.group_lookups), 5);
    assert_eq!(
        fake.members_of("engineers"),
        vec!["user000000@example.com", "user000001@example.com"]
    );
    assert_eq!(
        c.send(Method::DELETE, &format!("/Groups/{g}"), None)
            .await
            .status,
        204
    );
    assert_error(
        &c.send(Method::DELETE, &format!("/Groups/{g}"), None).await,
        404,
        None,
    );
    assert_eq!(fake.group_id("Engineers"), None);
}

#[tokio::test]
async fn group_creates_are_limited() {
    let fake = FakeScim::start(TOKEN);
    let users = fake.seed_users(101);
    let c = Client::new(&fake);
    let many: Vec<Value> = users.iter().map(|u| json!({"value": u})).collect();
    let a = c
        .send(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Big", "members": many})),
        )
        .await;
    assert_error(&a, 400, Some("invalidValue"));
    assert!(a.body["detail"].as_str().unwrap().contains("100"));
    let a = c
        .send(Method::POST, "/Groups", Some(json!({"members": []})))
        .await;
    assert_error(&a, 400, Some("invalidValue"));
    let ghost = json!({"displayName": "G", "members": [{"value": "ghost"}]});
    assert_error(
        &c.send(Method::POST, "/Groups", Some(ghost)).await,
        404,
        None,
    );
    let a = c
        .send(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "x".repeat(1025)})),
        )
        .await;
    assert_error(&a, 400, Some("invalidValue"));
    assert!(fake.groups().is_empty());
}

#[tokio::test]
async fn adds_are_idempotent_and_both_remove_forms_work() {
    let (fake, g, u) = setup(4);
    let c = Client::new(&fake);
    let a = patch(&c, &g, json!([add(&u[..3])])).await;
    assert_eq!((a.status, &a.body), (204, &Value::Null));
    assert_eq!(patch(&c, &g, json!([add(&u[..2])])).await.status, 204);
    assert_eq!(fake.members_of("team").len(), 3);
    let ops = json!([
        {"op": "Remove", "path": format!("members[value eq \"{}\"]", u[0])},
        {"op": "REMOVE", "path": "members", "value": [{"value": u[1]}, {"value": u[3]}]},
        {"op": "Add", "path": "members", "value": [{"value": u[3]}]},
    ]);
    assert_eq!(patch(&c, &g, ops).await.status, 204);
    assert_eq!(
        fake.members_of("Team"),
        vec!["user000002@example.com", "user000003@example.com"]
    );
    let gone = gone_ops();
    assert_eq!(patch(&c, &g, gone.clone()).await.status, 204);
    let counts = fake.counts();
    assert_eq!(read(&counts.patches), 4);
    assert_eq!(read(&counts.member_changes), 3 + 2 + 1);
    assert_eq!(read(&counts.member_values), 3 + 2 + 4 + 1);
    assert_eq!(read(&counts.max_patch_ops), 3);
    assert_eq!(read(&counts.refused_patches), 0);
    assert_eq!(fake.last_patch_body().unwrap(), patch_body(gone));
}

fn gone_ops() -> Value {
    json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}])
}

#[tokio::test]
async fn more_than_100_member_changes_are_refused_whole() {
    let (fake, g, u) = setup(150);
    let c = Client::new(&fake);
    let a = patch(&c, &g, json!([add(&u[..100])])).await;
    assert_eq!(a.status, 204);
    let a = patch(
        &c,
        &g,
        json!([add(&u[100..150]), {"op": "remove", "path": "members",
        "value": u[..51].iter().map(|id| json!({"value": id})).collect::<Vec<_>>()}]),
    )
    .await;
    assert_error(&a, 400, Some("invalidValue"));
    assert!(
        a.body["detail"]
            .as_str()
            .unwrap()
            .contains("at most 100 members")
    );
    assert_eq!(fake.members_of("Team").len(), 100);
    let counts = fake.counts();
    assert_eq!(read(&counts.max_patch_members), 101);
    assert_eq!(read(&counts.refused_patches), 1);
    assert_eq!(read(&counts.member_changes), 100);
}

#[tokio::test]
async fn replace_remove_all_and_malformed_bodies_are_refused() {
    let (fake, g, u) = setup(2);
    fake.add_members(&g, &u);
    let c = Client::new(&fake);
    let members = json!([{"value": u[0]}]);
    for ops in [
        json!([{"op": "replace", "path": "members", "value": members}]),
        json!([{"op": "replace", "value": {"members": members}}]),
        json!([{"op": "remove", "path": "members"}]),
        json!([{"op": "remove", "path": "members", "value": []}]),
        json!([{"op": "remove"}]),
        json!([{"op": "add", "path": "title", "value": "x"}]),
        json!([{"op": "move", "path": "members", "value": members}]),
        json!([{"path": "members", "value": members}]),
        json!([]),
    ] {
        let a = patch(&c, &g, ops.clone()).await;
        assert_eq!(a.status, 400, "{ops}: {}", a.body);
        assert!(a.body["scimType"].is_string(), "{ops}");
    }
    let path = format!("/Groups/{g}");
    let no_schema = json!({"Operations": [add(&u[..1])]});
    assert_error(
        &c.send(Method::PATCH, &path, Some(no_schema)).await,
        400,
        Some("invalidSyntax"),
    );
    let a = c
        .send_with(
            Method::PATCH,
            &path,
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_error(&a, 400, Some("invalidSyntax"));
    assert_eq!(fake.members_of("Team").len(), 2);
    assert_eq!(read(&fake.counts().refused_patches), 11);
    assert_error(
        &patch(&c, "missing", json!([add(&u[..1])])).await,
        404,
        None,
    );
}

#[tokio::test]
async fn an_unknown_user_fails_the_whole_patch_with_404() {
    let (fake, g, u) = setup(2);
    let c = Client::new(&fake);
    let ops =
        json!([add(&u[..1]), {"op": "add", "path": "members", "value": [{"value": "ghost"}]}]);
    let a = patch(&c, &g, ops).await;
    assert_error(&a, 404, None);
    assert!(a.body["detail"].as_str().unwrap().contains("User ghost"));
    assert!(fake.members_of("Team").is_empty());
    assert_eq!(read(&fake.counts().member_changes), 0);
}

#[tokio::test]
async fn renames_and_external_ids_patch_and_collide() {
    let (fake, g, _) = setup(0);
    fake.add_group("Taken");
    let c = Client::new(&fake);
    let ops = json!([{"op": "replace", "path": "displayName", "value": "Renamed"},
        {"op": "replace", "value": {"externalId": "ext-9"}}]);
    assert_eq!(patch(&c, &g, ops).await.status, 204);
    let a = c.get(&format!("/Groups/{g}")).await;
    assert_eq!(
        (&a.body["displayName"], &a.body["externalId"]),
        (&json!("Renamed"), &json!("ext-9"))
    );
    let clash = json!([{"op": "replace", "path": "displayName", "value": "TAKEN"}]);
    assert_error(&patch(&c, &g, clash).await, 409, Some("uniqueness"));
    assert_eq!(fake.group_id("renamed"), Some(g));
}

#[tokio::test]
async fn etags_guard_patches_when_switched_on() {
    let (fake, g, u) = setup(2);
    let c = Client::new(&fake);
    fake.switch(|s| {
        s.etag = true;
        s.patch_returns_resource = true;
    });
    let a = c.get(&format!("/Groups/{g}")).await;
    let tag = a.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(a.body["meta"]["version"], json!(tag));
    fake.add_member(&g, &u[1]);
    let path = format!("/Groups/{g}");
    let body = patch_body(json!([add(&u[..1])]));
    let a = c
        .send_with(
            Method::PATCH,
            &path,
            Some(body.clone()),
            &[("if-match", &tag)],
        )
        .await;
    assert_error(&a, 412, None);
    assert_eq!(fake.members_of("Team"), vec!["user000001@example.com"]);
    let fresh = c.get(&path).await.headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let a = c
        .send_with(Method::PATCH, &path, Some(body), &[("if-match", &fresh)])
        .await;
    assert_eq!((a.status, &a.body["members"]), (200, &json!([])));
    assert_ne!(a.headers["etag"].to_str().unwrap(), fresh);
    let any = patch_body(json!([add(&u[..1])]));
    let a = c
        .send_with(Method::PATCH, &path, Some(any), &[("if-match", "*")])
        .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn helpers_change_state_behind_the_clients_back() {
    let (fake, g, u) = setup(3);
    assert!(fake.add_member(&g, &u[2]));
    assert!(!fake.add_member(&g, &u[2]));
    assert_eq!(fake.add_members(&g, &u), 2);
    assert!(fake.remove_member(&g, &u[0]));
    assert!(!fake.remove_member(&g, &u[0]));
    fake.rename_group(&g, "Crew");
    assert_eq!(fake.group_id("crew"), Some(g.clone()));
    assert_eq!(
        fake.members_of("CREW"),
        vec!["user000001@example.com", "user000002@example.com"]
    );
    assert!(fake.members_of("Team").is_empty());
    let c = Client::new(&fake);
    let check = format!(
        "/Groups?filter=id%20eq%20%22{g}%22%20and%20members%20eq%20%22{}%22",
        u[0]
    );
    assert_eq!(c.get(&check).await.body["totalResults"], 0);
    assert!(fake.delete_group(&g));
    assert_eq!(fake.groups(), vec![]);
}
