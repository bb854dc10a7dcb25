//! The admin REST API of `admin_listen` through the running service: every route behind the admin
//! token and in the OpenAPI document, and groups created, edited and deleted with the CLI's rules
//! (the store and the audit checked after every call, refused calls changing nothing), with problem
//! documents for bad bodies and the 404/405/409/422 paths.

use serde_json::{Value, json};

use crate::admin_api_site::{
    ADMIN, admin_env, cli_audit, cli_group, get, problem, raw, send, started,
};
use crate::common::{Env, keys};
use crate::service::{TOKEN, http_get, http_send, start, stop};

/// Every route of SPEC §4's table (and the two this service adds: refusals and their approval),
/// as the OpenAPI document must list them.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/admin/groups"),
    ("post", "/v1/admin/groups"),
    ("get", "/v1/admin/groups/{stage}/{name}"),
    ("patch", "/v1/admin/groups/{stage}/{name}"),
    ("delete", "/v1/admin/groups/{stage}/{name}"),
    ("patch", "/v1/admin/groups/{stage}/{name}/roles"),
    ("patch", "/v1/admin/groups/{stage}/{name}/users"),
    ("get", "/v1/admin/users/{key}"),
    ("get", "/v1/admin/mappings"),
    ("get", "/v1/admin/runs"),
    ("get", "/v1/admin/runs/{id}"),
    ("get", "/v1/admin/audit"),
    ("get", "/v1/admin/refusals"),
    ("post", "/v1/admin/refusals/{idp}/approve"),
    ("post", "/v1/admin/reconcile"),
];

// ---------------------------------------------------------------------------------------------
// Off, tokens, routes
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_is_off_without_an_admin_token_and_answers_404() {
    let env = admin_env("");
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&config.replace("admin_token_file = \"admin.token\"\n", ""));
    let service = start(&env).await;
    assert_eq!(
        service.admin_addr(),
        None,
        "nothing listens on admin_listen"
    );
    for token in [None, Some(ADMIN)] {
        let answer = http_get(service.addr(), "/v1/admin/groups", token);
        problem(
            &answer,
            404,
            "the admin API is off: set daemon.admin_token_file",
        );
    }
    stop(service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_the_admin_token_and_is_in_the_openapi_document() {
    let env = admin_env("");
    let (service, admin) = started(&env).await;

    let doc = get(admin, "/v1/admin/openapi.json").json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "patch", "delete", "put"].contains(&method.as_str()) {
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(
        documented, expected,
        "the OpenAPI document lists every route"
    );
    assert!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"] == "bearer",
        "{doc}"
    );

    for (method, path) in &expected {
        let concrete = path
            .replace("{stage}", "qa")
            .replace("{name}", "Testers")
            .replace("{key}", "ana@example.com")
            .replace("{id}", "nope")
            .replace("{idp}", "corp");
        for token in [None, Some("wrong-token"), Some("")] {
            let answer = http_send(admin, &method.to_uppercase(), &concrete, token, Some(b"{}"));
            let doc = problem(&answer, 401, "a missing or wrong admin token");
            assert_eq!(doc["type"], "urn:idpsync:problem:invalid_token");
            assert!(
                answer
                    .header("www-authenticate")
                    .unwrap()
                    .starts_with("Bearer")
            );
            assert!(!answer.body.contains("wrong-token"), "{answer:?}");
        }
        // With the token the route is served (whatever it then says of the request).
        let answer = http_send(
            admin,
            &method.to_uppercase(),
            &concrete,
            Some(ADMIN),
            Some(b"{}"),
        );
        assert!(
            !answer.body.contains("is no route of the admin API"),
            "{method} {concrete}: {answer:?}"
        );
    }
    // The scheme is case-insensitive (RFC 7235); another scheme is no token.
    let lower = raw(
        admin,
        &format!("GET /v1/admin/groups HTTP/1.1\r\nAuthorization: bearer {ADMIN}"),
        b"",
    );
    assert_eq!(lower.status, 200, "{lower:?}");
    // The document itself is behind the token too, and an unknown path or method is a problem.
    problem(
        &http_get(admin, "/v1/admin/openapi.json", None),
        401,
        "admin token",
    );
    problem(
        &get(admin, "/v1/admin/nothing"),
        404,
        "is no route of the admin API",
    );
    // The app token is not the admin token.
    problem(
        &http_get(admin, "/v1/admin/groups", Some(TOKEN)),
        401,
        "admin token",
    );
    // The read API of applications takes the admin token as well as the app token.
    let read = http_get(service.addr(), "/v1/users/ana@example.com", Some(ADMIN));
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(
        read.json(),
        get(admin, "/v1/admin/users/ana@example.com").json()
    );
    stop(service).await;
}

// ---------------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_created_edited_and_deleted_with_the_cli_rules() {
    let env = admin_env("");
    let (service, admin) = started(&env).await;

    // Create: 201 with the `groups show` document, the same the CLI shows.
    let created = send(
        admin,
        "POST",
        "/v1/admin/groups",
        &json!({"name": "Ops & Support", "stage": "qa", "description": "Runs things", "roles": ["Dash/Viewer"]}),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let doc = created.json();
    assert_eq!(
        keys(&doc),
        [
            "declared",
            "description",
            "members",
            "name",
            "roles",
            "stage"
        ]
    );
    assert_eq!(doc["roles"], json!(["Dash/Viewer"]));
    assert_eq!(Some(doc.clone()), cli_group(&env, "qa", "Ops & Support"));
    // Path segments are percent-encoded.
    let path = "/v1/admin/groups/qa/Ops%20%26%20Support";
    assert_eq!(get(admin, path).json(), doc);

    // A duplicate (names compare case-insensitively) is 409; an unknown role or stage 422.
    let before = env.state();
    problem(
        &send(
            admin,
            "POST",
            "/v1/admin/groups",
            &json!({"name": "ops & SUPPORT", "stage": "qa"}),
        ),
        409,
        "already exists in stage qa",
    );
    problem(
        &send(
            admin,
            "POST",
            "/v1/admin/groups",
            &json!({"name": "New", "stage": "qa", "roles": ["Nope/Viewer"]}),
        ),
        422,
        "catalogue",
    );
    problem(
        &send(
            admin,
            "POST",
            "/v1/admin/groups",
            &json!({"name": "New", "stage": "staging"}),
        ),
        422,
        "not one of daemon.stages",
    );
    // Bad bodies: a missing field, an unknown one, broken JSON, another media type, too big.
    problem(
        &send(admin, "POST", "/v1/admin/groups", &json!({"name": "New"})),
        422,
        "stage",
    );
    problem(
        &send(
            admin,
            "POST",
            "/v1/admin/groups",
            &json!({"name": "New", "stage": "qa", "colour": "red"}),
        ),
        422,
        "colour",
    );
    let broken = raw(
        admin,
        "POST /v1/admin/groups HTTP/1.1\r\nContent-Type: application/json",
        b"{\"name\": ",
    );
    problem(&broken, 400, "");
    let text = raw(
        admin,
        "POST /v1/admin/groups HTTP/1.1\r\nContent-Type: text/plain",
        br#"{"name": "New", "stage": "qa"}"#,
    );
    problem(&text, 415, "");
    let huge = json!({"name": "New", "stage": "qa", "description": "x".repeat(70 * 1024)});
    problem(
        &send(admin, "POST", "/v1/admin/groups", &huge),
        413,
        "64 KiB",
    );
    assert_eq!(env.state(), before, "refused calls change nothing");

    // Rename and describe; the stage never changes (`stage` is no field of the body).
    let renamed = send(
        admin,
        "PATCH",
        path,
        &json!({"name": "Ops", "description": "Runs all things"}),
    );
    assert_eq!(renamed.status, 200, "{renamed:?}");
    assert_eq!(renamed.json()["name"], "Ops");
    assert_eq!(
        cli_group(&env, "qa", "Ops").unwrap()["description"],
        "Runs all things"
    );
    assert_eq!(cli_group(&env, "qa", "Ops & Support"), None);
    problem(
        &get(admin, path),
        404,
        "no group \"Ops & Support\" in stage qa",
    );
    // A stage in the path that is no stage names no group, whatever the method.
    for method in ["GET", "PATCH", "DELETE"] {
        let body = br#"{"name": "X"}"#;
        let answer = http_send(
            admin,
            method,
            "/v1/admin/groups/staging/Ops",
            Some(ADMIN),
            Some(body),
        );
        problem(&answer, 404, "not one of daemon.stages");
    }
    problem(
        &send(
            admin,
            "PATCH",
            "/v1/admin/groups/staging/Ops/users",
            &json!({"add": ["ana@example.com"]}),
        ),
        404,
        "not one of daemon.stages",
    );
    problem(
        &send(
            admin,
            "PATCH",
            "/v1/admin/groups/qa/Ops",
            &json!({"stage": "production"}),
        ),
        422,
        "stage",
    );
    problem(
        &send(admin, "PATCH", "/v1/admin/groups/qa/Ops", &json!({})),
        422,
        "nothing to change",
    );
    problem(
        &send(
            admin,
            "PATCH",
            "/v1/admin/groups/qa/Ops",
            &json!({"name": "testers"}),
        ),
        409,
        "\"Testers\" already exists in stage qa",
    );
    // A declared group refuses edits, naming the configuration file and line.
    let before = env.state();
    let declared = problem(
        &send(
            admin,
            "PATCH",
            "/v1/admin/groups/qa/Testers",
            &json!({"description": "x"}),
        ),
        409,
        "is declared in",
    );
    let line = crate::common::line_of(
        &std::fs::read_to_string(env.config_path()).unwrap(),
        "name = \"Testers\"",
    ) - 1;
    let detail = declared["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("idpsync.toml line {line}")),
        "{detail}"
    );
    problem(
        &send(
            admin,
            "PATCH",
            "/v1/admin/groups/qa/Testers/roles",
            &json!({"add": ["Dash/Viewer"]}),
        ),
        409,
        "is declared in",
    );
    problem(
        &http_send(
            admin,
            "DELETE",
            "/v1/admin/groups/qa/Testers?remove_members=true",
            Some(ADMIN),
            None,
        ),
        409,
        "is declared in",
    );
    assert_eq!(env.state(), before);

    // Roles.
    let roles = send(
        admin,
        "PATCH",
        "/v1/admin/groups/qa/Ops/roles",
        &json!({"add": ["Dash/Editor"], "remove": ["Dash/Viewer"]}),
    );
    assert_eq!(roles.json(), json!({"roles": ["Dash/Editor"]}), "{roles:?}");
    assert_eq!(
        cli_group(&env, "qa", "Ops").unwrap()["roles"],
        json!(["Dash/Editor"])
    );
    let before = env.state();
    problem(
        &send(
            admin,
            "PATCH",
            "/v1/admin/groups/qa/Ops/roles",
            &json!({"add": ["Dash/Viewer", "Dash/Owner"]}),
        ),
        422,
        "Dash/Owner",
    );
    problem(
        &send(admin, "PATCH", "/v1/admin/groups/qa/Ops/roles", &json!({})),
        422,
        "nothing to change",
    );
    problem(
        &send(
            admin,
            "PATCH",
            "/v1/admin/groups/qa/Nobody/roles",
            &json!({"add": ["Dash/Viewer"]}),
        ),
        404,
        "no group",
    );
    assert_eq!(env.state(), before, "no role of a refused edit was added");

    // Direct members: all or nothing.
    let users = send(
        admin,
        "PATCH",
        "/v1/admin/groups/qa/Ops/users",
        &json!({"add": ["Ana@Example.com", "dan@example.com"]}),
    );
    assert_eq!(users.status, 200, "{users:?}");
    assert_eq!(
        users.json()["added"],
        json!(["ana@example.com", "dan@example.com"])
    );
    let before = env.state();
    problem(
        &send(
            admin,
            "PATCH",
            "/v1/admin/groups/qa/Ops/users",
            &json!({"add": ["eve@example.com"], "remove": ["zed@example.com"]}),
        ),
        409,
        "zed@example.com is not a direct member",
    );
    problem(
        &send(
            admin,
            "PATCH",
            "/v1/admin/groups/qa/Ops/users",
            &json!({"add": [" "]}),
        ),
        422,
        "must not be empty",
    );
    assert_eq!(
        env.state(),
        before,
        "eve was not added by the refused request"
    );
    let members = |env: &Env| -> Vec<String> {
        cli_group(env, "qa", "Ops").unwrap()["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| format!("{} {}", m["user"].as_str().unwrap(), m["provenance"]))
            .collect()
    };
    assert_eq!(
        members(&env),
        [
            r#"ana@example.com ["direct"]"#,
            r#"dan@example.com ["direct"]"#
        ]
    );

    // Delete: refused while members remain, saying who would lose what; then with the flag.
    let before = env.state();
    let refused = problem(
        &http_send(
            admin,
            "DELETE",
            "/v1/admin/groups/qa/Ops",
            Some(ADMIN),
            None,
        ),
        409,
        "has 2 members",
    );
    assert_eq!(refused["type"], "urn:idpsync:problem:members_remain");
    assert_eq!(
        refused["members"],
        json!([{"user": "ana@example.com", "roles": ["Dash/Editor"]}, {"user": "dan@example.com", "roles": ["Dash/Editor"]}])
    );
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("remove_members=true")
    );
    assert_eq!(env.state(), before);
    let deleted = http_send(
        admin,
        "DELETE",
        "/v1/admin/groups/qa/Ops?remove_members=true",
        Some(ADMIN),
        None,
    );
    assert_eq!(deleted.status, 200, "{deleted:?}");
    assert_eq!(deleted.json()["lost"].as_array().unwrap().len(), 2);
    assert_eq!(cli_group(&env, "qa", "Ops"), None);
    problem(
        &http_send(
            admin,
            "DELETE",
            "/v1/admin/groups/qa/Ops",
            Some(ADMIN),
            None,
        ),
        404,
        "no group",
    );
    problem(
        &http_send(
            admin,
            "DELETE",
            "/v1/admin/groups/qa/Ops?remove_members=maybe",
            Some(ADMIN),
            None,
        ),
        400,
        "remove_members",
    );

    // Every write was audited as `api`, as the CLI shows the audit.
    let audit = cli_audit(&env);
    let ops: Vec<String> = audit
        .iter()
        .filter(|r| r["actor"] == "api")
        .map(|r| r["op"].as_str().unwrap().to_owned())
        .collect();
    for op in [
        "group.create",
        "group.rename",
        "group.describe",
        "role.add",
        "role.remove",
        "add",
        "remove",
        "group.delete",
    ] {
        assert!(
            ops.iter().any(|o| o == op),
            "{op} not audited as api: {ops:?}"
        );
    }
    // The API's audit is the CLI's, filtered alike.
    let api_audit = get(admin, "/v1/admin/audit?limit=1000").json();
    assert_eq!(api_audit["items"].as_array().unwrap(), &audit);
    assert_eq!(api_audit["next"], Value::Null);
    let of_ops = get(admin, "/v1/admin/audit?group=Ops&stage=qa").json();
    assert!(
        of_ops["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["group"] == "Ops"),
        "{of_ops}"
    );
    problem(
        &get(admin, "/v1/admin/audit?group=Ops"),
        400,
        "needs its stage",
    );
    problem(
        &get(admin, "/v1/admin/audit?since=yesterday"),
        400,
        "RFC 3339",
    );
    stop(service).await;
}
