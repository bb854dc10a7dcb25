//! Helpers of the admin API tests (`admin_api`, `admin_api_reads`): a service folder with the
//! admin API on a free loopback port, requests with the admin token, problem documents checked
//! field by field, the store and the audit as the CLI shows them, runs followed to their end.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use idpsync::service::Service;
use serde_json::Value;

use crate::common::Env;
use crate::service::{
    Http, TOKEN, YEARLY, config_with, daemon_keys, eventually, http_get, http_send, start,
};

/// The admin token of every test here.
pub(crate) const ADMIN: &str = "admin-token-5d2f8e17a9";

/// A service folder with the admin API on a free loopback port, `rest` appended to the config.
pub(crate) fn admin_env(rest: &str) -> Env {
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
pub(crate) async fn started(env: &Env) -> (Service, SocketAddr) {
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

pub(crate) fn get(addr: SocketAddr, path: &str) -> Http {
    http_get(addr, path, Some(ADMIN))
}

pub(crate) fn send(addr: SocketAddr, method: &str, path: &str, body: &Value) -> Http {
    http_send(
        addr,
        method,
        path,
        Some(ADMIN),
        Some(body.to_string().as_bytes()),
    )
}

/// A request with raw headers and body, for the bodies `http_send` cannot make.
pub(crate) fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> Http {
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
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    Http {
        status,
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect(),
        body: body.to_owned(),
    }
}

/// Asserts `answer` is an RFC 7807 problem of `status` whose detail contains `needle`.
#[track_caller]
pub(crate) fn problem(answer: &Http, status: u16, needle: &str) -> Value {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json"),
        "{answer:?}"
    );
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
pub(crate) fn cli_group(env: &Env, stage: &str, name: &str) -> Option<Value> {
    let out = env.run(&["groups", "show", name, "--stage", stage, "--output", "json"]);
    match out.code {
        0 => Some(out.json()),
        2 => None,
        _ => panic!("{out:?}"),
    }
}

/// Every audit record, as the CLI shows them.
pub(crate) fn cli_audit(env: &Env) -> Vec<Value> {
    env.run(&["audit", "--output", "json"])
        .expect(0)
        .json()
        .as_array()
        .unwrap()
        .clone()
}

/// Follows `/v1/admin/runs/{id}` until the run is finished; answers its document.
pub(crate) fn finished(addr: SocketAddr, href: &str) -> Value {
    eventually("the run to finish", || {
        let doc = get(addr, href).json();
        match doc["status"].as_str() {
            Some("finished") => Ok(doc),
            Some("failed") => panic!("the run failed: {doc}"),
            _ => Err(doc.to_string()),
        }
    })
}
