//! The admin REST API of `admin_listen` through the running service: every route behind the admin
//! token and in the OpenAPI document, groups created, edited and deleted with the CLI's rules (the
//! store and the audit checked after every call, refused calls changing nothing), problem
//! documents for bad bodies and the 404/409/422 paths, pages with cursors, mappings with their
//! status, users, and reconciles — dry runs, real runs followed to their end, refusals approved.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use idpsync::service::Service;
use serde_json::{Value, json};

use crate::common::{Env, REPORT_FIELDS, corp_export, keys, sorted};
use crate::service::{
    Http, TOKEN, YEARLY, config_with, daemon_keys, eventually, http_get, http_send, idp_status,
    replace_export, start, status_of, stop,
};

/// The admin token of every test here.
const ADMIN: &str = "admin-token-5d2f8e17a9";

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
// Helpers
// ---------------------------------------------------------------------------------------------

/// A service folder with the admin API on a free loopback port, `rest` appended to the config.
fn admin_env(rest: &str) -> Env {
    let env = Env::new();
    let daemon = format!(
        "{}admin_listen = \"127.0.0.1:0\"\nadmin_token_file = \"admin.token\"\n",
        daemon_keys(YEARLY)
    );
    env.write_config(&config_with(&daemon, rest));
    std::fs::write(env.path("app.token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(env.path("admin.token"), format!("{ADMIN}\n")).unwrap();
    env
}

/// Starts the service and waits for its first run to finish.
async fn started(env: &Env) -> (Service, SocketAddr) {
    let service = start(env).await;
    let admin = service.admin_addr().expect("the admin API is on");
    crate::common::assert_loopback(&format!("http://{admin}/"));
    eventually("the first run", || {
        let runs = get(admin, "/v1/admin/runs").json();
        match runs["items"].as_array() {
            Some(items) if items.iter().any(|r| !r["finished"].is_null()) => Ok(()),
            _ => Err(runs.to_string()),
        }
    });
    (service, admin)
}

fn get(addr: SocketAddr, path: &str) -> Http {
    http_get(addr, path, Some(ADMIN))
}

fn send(addr: SocketAddr, method: &str, path: &str, body: &Value) -> Http {
    http_send(
        addr,
        method,
        path,
        Some(ADMIN),
        Some(body.to_string().as_bytes()),
    )
}

/// A request with raw headers and body, for the bodies `http_send` cannot make.
fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> Http {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{head}\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let _ = stream.write_all(body);
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Http {
        status,
        headers: Vec::new(),
        body: body.to_owned(),
    }
}

/// Asserts `answer` is an RFC 7807 problem of `status` whose detail contains `needle`.
#[track_caller]
fn problem(answer: &Http, status: u16, needle: &str) -> Value {
    assert_eq!(answer.status, status, "{answer:?}");
    if let Some(kind) = answer.header("content-type") {
        assert_eq!(kind, "application/problem+json", "{answer:?}");
    }
    let doc = answer.json();
    assert_eq!(doc["status"], status, "{doc}");
    assert!(
        doc["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:idpsync:problem:"),
        "{doc}"
    );
    assert!(doc["title"].is_string(), "{doc}");
    let detail = doc["detail"].as_str().unwrap();
    assert!(detail.contains(needle), "{needle:?} not in {doc}");
    doc
}

/// The group as the CLI shows it, or `None` when the CLI finds no such group.
fn cli_group(env: &Env, stage: &str, name: &str) -> Option<Value> {
    let out = env.run(&["groups", "show", name, "--stage", stage, "--output", "json"]);
    match out.code {
        0 => Some(out.json()),
        2 => None,
        _ => panic!("{out:?}"),
    }
}

/// Every audit record, as the CLI shows them.
fn cli_audit(env: &Env) -> Vec<Value> {
    env.run(&["audit", "--output", "json"])
        .expect(0)
        .json()
        .as_array()
        .unwrap()
        .clone()
}

/// Follows `/v1/admin/runs/{id}` until the run is finished; answers its document.
fn finished(addr: SocketAddr, href: &str) -> Value {
    eventually("the run to finish", || {
        let doc = get(addr, href).json();
        match doc["status"].as_str() {
            Some("finished") => Ok(doc),
            Some("failed") => panic!("the run failed: {doc}"),
            _ => Err(doc.to_string()),
        }
    })
}

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
    // The document itself is behind the token too, and an unknown path is a problem.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_come_in_pages_with_a_cursor_and_a_limit() {
    let env = admin_env("");
    let (service, admin) = started(&env).await;
    for name in ["A", "B", "C"] {
        let created = send(
            admin,
            "POST",
            "/v1/admin/groups",
            &json!({"name": name, "stage": "development"}),
        );
        assert_eq!(created.status, 201, "{created:?}");
    }
    let all = get(admin, "/v1/admin/groups").json();
    assert_eq!(all["next"], Value::Null);
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A", "B", "C", "Marketing", "Testers"]);
    let cli = env
        .run(&["groups", "list", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(all["items"], cli, "the API's list is the CLI's");

    let mut walked = Vec::new();
    let mut path = "/v1/admin/groups?limit=2".to_owned();
    loop {
        let page = get(admin, &path).json();
        assert!(page["items"].as_array().unwrap().len() <= 2, "{page}");
        walked.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/admin/groups?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(Value::from(walked), all["items"]);
    let development = get(admin, "/v1/admin/groups?stage=development").json();
    assert_eq!(development["items"].as_array().unwrap().len(), 3);
    problem(
        &get(admin, "/v1/admin/groups?limit=0"),
        400,
        "limit 0 is out of range",
    );
    problem(
        &get(admin, "/v1/admin/groups?limit=5000"),
        400,
        "out of range",
    );
    problem(&get(admin, "/v1/admin/groups?cursor=zzz"), 400, "cursor");
    problem(&get(admin, "/v1/admin/runs?cursor=zzz"), 400, "cursor");
    problem(&get(admin, "/v1/admin/audit?cursor=zzz"), 400, "cursor");

    // The audit, paged in the state, walks to the CLI's whole list; a stage alone filters too.
    let whole = cli_audit(&env);
    assert!(whole.len() > 5, "{whole:?}");
    let mut walked = Vec::new();
    let mut path = "/v1/admin/audit?limit=3".to_owned();
    loop {
        let page = get(admin, &path).json();
        walked.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/admin/audit?limit=3&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(walked, whole);
    let development = get(admin, "/v1/admin/audit?stage=development&limit=1000").json();
    let items = development["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "the three creates: {development}");
    assert!(
        items
            .iter()
            .all(|r| r["stage"] == "development" && r["op"] == "group.create")
    );
    problem(
        &get(admin, "/v1/admin/groups?stage=staging"),
        400,
        "not one of daemon.stages",
    );

    // Runs page newest first, one at a time.
    for _ in 0..2 {
        let started = http_send(admin, "POST", "/v1/admin/reconcile", Some(ADMIN), None);
        finished(admin, started.json()["href"].as_str().unwrap());
    }
    let first = get(admin, "/v1/admin/runs?limit=1").json();
    let second = get(
        admin,
        &format!(
            "/v1/admin/runs?limit=1&cursor={}",
            first["next"].as_str().unwrap()
        ),
    )
    .json();
    assert!(first["items"][0]["started"].as_str() >= second["items"][0]["started"].as_str());
    assert_ne!(first["items"][0]["run_id"], second["items"][0]["run_id"]);
    stop(service).await;
}

// ---------------------------------------------------------------------------------------------
// Users and mappings
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_mappings_say_what_the_cli_and_the_last_read_say() {
    let mapping = "\n[[mapping]]\nidp = \"corp\"\nidp_group = \"Finance\"\ngroup = \"Testers\"\nstage = \"qa\"\n\
                   \n[[mapping]]\nidp = \"corp\"\nidp_group = \"g-eng\"\ngroup = \"Nowhere\"\nstage = \"qa\"\n";
    let env = admin_env(mapping);
    let (service, admin) = started(&env).await;

    let user = get(admin, "/v1/admin/users/Ben%40Example.com");
    assert_eq!(user.status, 200, "{user:?}");
    let cli = env
        .run(&["users", "show", "ben@example.com", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(user.json(), cli);
    let long = format!("/v1/admin/users/{}", "k".repeat(321));
    problem(&get(admin, &long), 400, "longer than 320 bytes");
    problem(&get(admin, "/v1/admin/users/%20"), 400, "must not be empty");

    let mappings = get(admin, "/v1/admin/mappings").json();
    let items = mappings["items"].as_array().unwrap();
    let line = |m: &Value| {
        format!(
            "{} {} -> {}/{} {} {}",
            m["idp"].as_str().unwrap(),
            m["idp_group"].as_str().unwrap(),
            m["stage"].as_str().unwrap(),
            m["group"].as_str().unwrap(),
            m["status"].as_str().unwrap(),
            m["reason"].as_str().unwrap_or("null")
        )
    };
    let lines: Vec<String> = items.iter().map(line).collect();
    assert_eq!(
        lines,
        [
            "corp Marketing Team -> production/Marketing active null",
            "corp g-eng -> qa/Testers active null",
            "corp Finance -> qa/Testers inactive idp_group_not_found",
            "corp g-eng -> qa/Nowhere inactive group_not_found",
        ]
    );
    for m in items {
        assert_eq!(
            keys(m),
            [
                "group",
                "idp",
                "idp_group",
                "reason",
                "stage",
                "status",
                "warning"
            ]
        );
    }
    // The group appears: its mapping is active at once, before any read.
    send(
        admin,
        "POST",
        "/v1/admin/groups",
        &json!({"name": "Nowhere", "stage": "qa"}),
    );
    let mappings = get(admin, "/v1/admin/mappings").json();
    assert_eq!(
        line(&mappings["items"][3]),
        "corp g-eng -> qa/Nowhere active null"
    );
    // A renamed group's mappings follow it, with a warning.
    send(
        admin,
        "PATCH",
        "/v1/admin/groups/qa/Nowhere",
        &json!({"name": "Somewhere"}),
    );
    let renamed = get(admin, "/v1/admin/mappings").json()["items"][3].clone();
    assert_eq!(renamed["status"], "active", "{renamed}");
    assert!(
        renamed["warning"].as_str().unwrap().contains("Somewhere"),
        "{renamed}"
    );
    stop(service).await;
}

// ---------------------------------------------------------------------------------------------
// Reconciles, runs and refusals
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_plan_run_and_approve_refusals() {
    let env = admin_env("\n[safety]\nmax_removals = 1\n");
    let (service, admin) = started(&env).await;

    // ana leaves "Marketing Team" and cid "Engineering": two removals, over the guard.
    let mut export = corp_export();
    export["groups"][0]["members"] = json!(["u2", "u4"]);
    export["groups"][1]["members"] = json!(["u2"]);
    replace_export(&env, &export);

    // A dry run answers the reconcile document and writes nothing.
    let before = env.state();
    let plan = http_send(
        admin,
        "POST",
        "/v1/admin/reconcile?dry_run=true",
        Some(ADMIN),
        None,
    );
    assert_eq!(plan.status, 200, "{plan:?}");
    let plan = plan.json();
    assert_eq!(keys(&plan), sorted(REPORT_FIELDS));
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["refused"][0]["guard"], "removals", "{plan:#}");
    let allowed = http_send(
        admin,
        "POST",
        "/v1/admin/reconcile?dry_run=true&allow_removals=2",
        Some(ADMIN),
        None,
    )
    .json();
    assert_eq!(
        allowed["removes"].as_array().unwrap().len(),
        2,
        "{allowed:#}"
    );
    assert_eq!(env.state(), before, "dry runs write nothing");
    problem(
        &http_send(
            admin,
            "POST",
            "/v1/admin/reconcile?idp=nobody",
            Some(ADMIN),
            None,
        ),
        422,
        "nobody",
    );
    problem(
        &http_send(
            admin,
            "POST",
            "/v1/admin/reconcile?dry_run=perhaps",
            Some(ADMIN),
            None,
        ),
        400,
        "dry_run",
    );

    // A real run answers 202 and is followed to its end; it is refused, and the refusal is listed
    // with what would allow it.
    let started = http_send(admin, "POST", "/v1/admin/reconcile", Some(ADMIN), None);
    assert_eq!(started.status, 202, "{started:?}");
    let href = started.json()["href"].as_str().unwrap().to_owned();
    assert_eq!(started.header("location"), Some(href.as_str()));
    let done = finished(admin, &href);
    assert_eq!(done["exit_code"], 3, "{done:#}");
    assert_eq!(done["report"]["refused"][0]["idp"], "corp");
    assert_eq!(done["run"]["actor"], "api");
    assert_eq!(done["run"]["idps"][0]["outcome"], "refused");
    let refusals = get(admin, "/v1/admin/refusals").json();
    let refusal = &refusals["items"][0];
    assert_eq!(refusal["idp"], "corp");
    assert_eq!(refusal["guard"], "removals");
    assert!(
        refusal["allow"]
            .as_str()
            .unwrap()
            .ends_with("--idp corp --allow-removals 2"),
        "{refusal}"
    );
    assert_eq!(
        idp_status(&status_of(&env), "corp")["refusal"]["guard"],
        "removals"
    );
    problem(
        &http_send(
            admin,
            "POST",
            "/v1/admin/refusals/nobody/approve",
            Some(ADMIN),
            None,
        ),
        404,
        "no pending refusal",
    );

    // Approving runs exactly what `allow` names, and resolves it.
    let approved = http_send(
        admin,
        "POST",
        "/v1/admin/refusals/corp/approve",
        Some(ADMIN),
        None,
    );
    assert_eq!(approved.status, 202, "{approved:?}");
    let done = finished(admin, approved.json()["href"].as_str().unwrap());
    assert_eq!(done["exit_code"], 0, "{done:#}");
    assert_eq!(done["report"]["removes"].as_array().unwrap().len(), 2);
    assert_eq!(get(admin, "/v1/admin/refusals").json()["items"], json!([]));
    assert!(idp_status(&status_of(&env), "corp")["refusal"].is_null());
    let ana = env
        .run(&["users", "show", "ana@example.com", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(ana["groups"], json!([]));
    // The run history has both, newest first, and a run of the schedule is found by id too.
    let runs = get(admin, "/v1/admin/runs").json();
    let items = runs["items"].as_array().unwrap();
    assert_eq!(items[0]["run_id"], done["run_id"]);
    let first = items.last().unwrap();
    assert_eq!(first["actor"], "service");
    let scheduled = get(
        admin,
        &format!("/v1/admin/runs/{}", first["run_id"].as_str().unwrap()),
    )
    .json();
    assert_eq!(scheduled["status"], "finished", "{scheduled}");
    problem(&get(admin, "/v1/admin/runs/no-such-run"), 404, "no run");
    stop(service).await;
}

// ---------------------------------------------------------------------------------------------
// A remote store
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_edits_of_a_stage_a_remote_store_serves_are_refused_as_from_the_cli() {
    const SCIM_TOKEN: &str = "scim-token-admin-api";
    let scim = fakes::scim::FakeScim::start(SCIM_TOKEN);
    scim.add_group("Testers");
    let env = admin_env("");
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&format!(
        "{config}\n[store]\nkind = \"scim\"\nurl = \"{}\"\ntoken_file = \"scim.token\"\nstages = [\"qa\"]\n{}",
        scim.url(),
        crate::cloud::FAST_RETRIES
    ));
    std::fs::write(env.path("scim.token"), SCIM_TOKEN).unwrap();
    let (service, admin) = started(&env).await;

    let before = env.state();
    let refused = problem(
        &send(
            admin,
            "PATCH",
            "/v1/admin/groups/qa/Testers/users",
            &json!({"add": ["dee@example.com"]}),
        ),
        409,
        "stage qa is served by the scim store",
    );
    assert_eq!(refused["type"], "urn:idpsync:problem:remote_stage");
    let cli = env.run(&[
        "groups",
        "add-user",
        "Testers",
        "--stage",
        "qa",
        "dee@example.com",
    ]);
    cli.expect(2);
    assert!(
        cli.stderr.contains("stage qa is served by the scim store"),
        "{cli:?}"
    );
    assert_eq!(env.state(), before, "neither wrote anything");
    // Stages the embedded store serves take direct edits as before.
    let created = send(
        admin,
        "POST",
        "/v1/admin/groups",
        &json!({"name": "Local", "stage": "production"}),
    );
    assert_eq!(created.status, 201, "{created:?}");
    let added = send(
        admin,
        "PATCH",
        "/v1/admin/groups/production/Local/users",
        &json!({"add": ["dee@example.com"]}),
    );
    assert_eq!(added.status, 200, "{added:?}");
    stop(service).await;
}
