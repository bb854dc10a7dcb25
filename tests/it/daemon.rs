//! `idpsync run`: the service in-process ([`idpsync::service::Service`]) and as a child process.
//!
//! In-process, with a file IdP and a schedule of every second: the store follows the export, the
//! read API answers the CLI's documents behind the app token, `/metrics` parses as Prometheus
//! text, a CLI write lands while the service runs, and an invalid reload keeps the old
//! configuration. A stop during a read applies nothing and the next start applies it all (the
//! embedded store's journal is the per-IdP transaction). As a child: READY and STOPPING on
//! `NOTIFY_SOCKET`, SIGHUP with a bad configuration refused, SIGTERM exits 0.

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{CONFIG, Env, corp_export};

const TOKEN: &str = "app-token-for-tests";

/// [`CONFIG`] served every second on a free port, with the read API on.
fn service_config(listen: &str) -> String {
    CONFIG.replace(
        "run_wait = 1\n",
        &format!(
            "run_wait = 1\nschedule = \"*/1 * * * * *\"\nlisten = \"{listen}\"\napp_token_file = \"app.token\"\n"
        ),
    )
}

fn service_env(listen: &str) -> Env {
    let env = Env::new();
    env.write_config(&service_config(listen));
    std::fs::write(env.path("app.token"), format!("{TOKEN}\n")).unwrap();
    env
}

/// An HTTP/1.1 GET: (status, body).
async fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

/// Polls `check` every 50 ms until it holds, for at most `seconds`.
async fn eventually<F, Fut>(seconds: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn groups_of(doc: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(doc).unwrap();
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            format!(
                "{}/{}",
                g["stage"].as_str().unwrap(),
                g["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_follows_the_directory_and_serves_the_read_api() {
    let env = service_env("127.0.0.1:0");
    let service = idpsync::service::Service::start(&env.config_path(), Vec::new())
        .await
        .unwrap();
    let addr = service.addr();
    assert_eq!(get(addr, "/healthz", None).await.0, 200);
    assert_eq!(get(addr, "/readyz", None).await.0, 200);

    // The first run starts at once.
    eventually(10, "ana in Marketing", || async {
        let (status, body) = get(addr, "/v1/users/ana@example.com", Some(TOKEN)).await;
        status == 200 && groups_of(&body) == ["production/Marketing"]
    })
    .await;

    // The read API needs the app token and answers the CLI's documents.
    for token in [None, Some("wrong"), Some("")] {
        let (status, body) = get(addr, "/v1/groups", token).await;
        assert_eq!(status, 401, "{token:?}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"], "invalid_token");
        assert!(!body.contains(TOKEN));
    }
    let (status, body) = get(addr, "/v1/groups?stage=production", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let cli = env.run(&[
        "groups",
        "list",
        "--stage",
        "production",
        "--output",
        "json",
    ]);
    cli.expect(0);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::from_str::<Value>(&cli.stdout).unwrap()
    );
    let (status, body) = get(addr, "/v1/users/Ben@Example.com", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let cli = env.run(&["users", "show", "ben@example.com", "--output", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::from_str::<Value>(&cli.stdout).unwrap()
    );
    assert_eq!(get(addr, "/v1/groups?stage=nope", Some(TOKEN)).await.0, 400);

    // The store follows the export: cid joins Marketing Team.
    let mut export = corp_export();
    for group in export["groups"].as_array_mut().unwrap() {
        if group["name"] == "Marketing Team" {
            group["members"].as_array_mut().unwrap().push(json!("u3"));
        }
    }
    env.write_export("corp.json", &export);
    eventually(10, "cid in Marketing", || async {
        let (_, body) = get(addr, "/v1/users/cid@example.com", Some(TOKEN)).await;
        groups_of(&body).contains(&"production/Marketing".to_owned())
    })
    .await;

    // A CLI write while the service runs lands, and the service's next runs keep it.
    env.run(&[
        "groups",
        "add-user",
        "Testers",
        "--stage",
        "qa",
        "dan@example.com",
    ])
    .expect(0);
    let runs_before = runs_total(&service);
    eventually(10, "two more runs", || {
        let more = runs_total(&service) >= runs_before + 2.0;
        async move { more }
    })
    .await;
    let (_, body) = get(addr, "/v1/users/dan@example.com", Some(TOKEN)).await;
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["groups"][0]["provenance"], json!(["direct"]), "{doc}");

    // /metrics parses as Prometheus text; every metric is idpsync_*, no label names a user.
    let (status, text) = get(addr, "/metrics", None).await;
    assert_eq!(status, 200);
    let lines = text
        .lines()
        .filter(|l| *l != "# EOF") // OpenMetrics' end marker, which the Prometheus parser does not know
        .map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    assert!(!scrape.samples.is_empty());
    for sample in &scrape.samples {
        assert!(sample.metric.starts_with("idpsync_"), "{}", sample.metric);
        for (_, value) in sample.labels.iter() {
            assert!(
                !value.contains('@') && !value.contains("Marketing"),
                "{value}"
            );
        }
    }
    assert!(text.contains("idpsync_runs_total{idp=\"corp\",outcome=\"ok\"}"));

    // An invalid reload is refused and the old configuration keeps running.
    env.write_config(&format!(
        "{}\nnot_a_key = 1\n",
        service_config("127.0.0.1:0")
    ));
    assert!(service.reload().is_err());
    let runs_before = runs_total(&service);
    eventually(10, "runs go on after a refused reload", || {
        let more = runs_total(&service) > runs_before;
        async move { more }
    })
    .await;
    assert_eq!(get(addr, "/readyz", None).await.0, 200);

    service.stop();
    tokio::time::timeout(Duration::from_secs(10), service.wait())
        .await
        .expect("the service stops promptly");
}

/// The total of `idpsync_runs_total` over every label.
fn runs_total(service: &idpsync::service::Service) -> f64 {
    service
        .metrics()
        .encode()
        .lines()
        .filter(|l| l.starts_with("idpsync_runs_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_a_read_applies_nothing_and_the_next_start_applies_it_all() {
    // An LDAP IdP whose server accepts and never answers keeps the run reading.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in hole.incoming().flatten() {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    let env = service_env("127.0.0.1:0");
    let stuck = format!(
        "{}\n[[idp]]\nname = \"stuck\"\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:{port}\"\nbase_dn = \"dc=x\"\ntimeout = \"60s\"\n",
        service_config("127.0.0.1:0")
    );
    env.write_config(&stuck);
    let service = idpsync::service::Service::start(&env.config_path(), Vec::new())
        .await
        .unwrap();
    eventually(10, "the run reaches the silent server", || {
        let yes = accepted.load(std::sync::atomic::Ordering::SeqCst);
        async move { yes }
    })
    .await;
    let started = Instant::now();
    service.stop();
    tokio::time::timeout(Duration::from_secs(5), service.wait())
        .await
        .expect("a stop does not wait for the read");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Nothing of the run was applied (the file IdP's read finished, but applying comes after
    // every read), and the run is on record as interrupted.
    let memberships = env.run(&["users", "show", "ana@example.com", "--output", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&memberships.stdout).unwrap()["groups"],
        json!([])
    );
    let db = rusqlite::Connection::open(env.state_path()).unwrap();
    let outcome: String = db
        .query_row(
            "SELECT outcome FROM runs WHERE actor = 'service'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(outcome, "interrupted");
    drop(db);

    // The next start (the silent server gone from the configuration) applies everything.
    env.write_config(&service_config("127.0.0.1:0"));
    let service = idpsync::service::Service::start(&env.config_path(), Vec::new())
        .await
        .unwrap();
    let addr = service.addr();
    eventually(10, "ana in Marketing after the restart", || async {
        let (_, body) = get(addr, "/v1/users/ana@example.com", Some(TOKEN)).await;
        groups_of(&body) == ["production/Marketing"]
    })
    .await;
    service.stop();
    service.wait().await;
}

/// The binary as a child process; killed if the test fails before it exits.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The next datagram on the notify socket, as text.
fn notification(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn the_process_notifies_systemd_reloads_on_sighup_and_stops_on_sigterm() {
    let port = free_port();
    let env = service_env(&format!("127.0.0.1:{port}"));
    let socket_path = env.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut command = env.command();
    command
        .args(["--log-format", "json", "run"])
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut daemon = Daemon(command.spawn().unwrap());
    assert!(notification(&socket).contains("READY=1"));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let health = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(get(addr, "/healthz", None))
            .0
    };
    assert_eq!(health(), 200, "READY comes after the listener is bound");

    // SIGHUP with an invalid configuration: refused, the process serves on.
    env.write_config(&format!(
        "{}\nnot_a_key = 1\n",
        service_config(&format!("127.0.0.1:{port}"))
    ));
    signal(&daemon.0, "HUP");
    assert!(notification(&socket).contains("RELOADING=1"));
    assert!(notification(&socket).contains("READY=1"));
    assert_eq!(health(), 200);

    // SIGTERM: STOPPING, then exit 0.
    signal(&daemon.0, "TERM");
    assert!(notification(&socket).contains("STOPPING=1"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    daemon
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let messages: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Configuration reload refused")),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"Reconciled."),
        "one summary line per run: {messages:?}"
    );
    assert!(messages.contains(&"Service stopped."), "{messages:?}");
    assert!(
        !stderr.contains(TOKEN),
        "the app token never reaches a log line"
    );
}

#[test]
fn no_secret_reaches_a_log_line_even_at_trace_level() {
    let port = free_port();
    let closed = free_port();
    let env = service_env(&format!("127.0.0.1:{port}"));
    let secrets = [
        ("app.token", "s3cret-app-token"),
        ("admin.token", "s3cret-admin-token"),
        ("hook.token", "s3cret-webhook-token"),
        ("ldap.password", "s3cret-ldap-password"),
    ];
    for (file, secret) in secrets {
        std::fs::write(env.path(file), format!("{secret}\n")).unwrap();
    }
    let config = service_config(&format!("127.0.0.1:{port}")).replace(
        "app_token_file = \"app.token\"\n",
        "app_token_file = \"app.token\"\nadmin_token_file = \"admin.token\"\nwebhook_token_file = \"hook.token\"\n",
    );
    env.write_config(&format!(
        "{config}\n[[idp]]\nname = \"dir\"\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:{closed}\"\nbind_dn = \"cn=svc,dc=x\"\nbind_password_file = \"ldap.password\"\nbase_dn = \"dc=x\"\n"
    ));
    let trace = [("IDPSYNC_LOG", "trace")];
    let mut logs = Vec::new();
    for args in [
        vec!["-vv", "--log-format", "json", "reconcile"],
        vec!["-vv", "check", "--connect"],
    ] {
        let out = env.run_with(&args, &trace);
        assert_eq!(out.code, 1, "the LDAP IdP cannot be reached: {out:?}");
        logs.push(out.stdout);
        logs.push(out.stderr);
    }
    let mut command = env.command();
    command
        .args(["--log-format", "json", "run"])
        .env("IDPSYNC_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut daemon = Daemon(command.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let text = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    Ok(_) => Some(get(([127, 0, 0, 1], port).into(), "/metrics", None).await.1),
                    Err(_) => None,
                }
            });
        if let Some(text) = text.filter(|t| t.contains("idpsync_runs_total{")) {
            break text;
        }
        assert!(Instant::now() < deadline, "no run within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    logs.push(metrics);
    signal(&daemon.0, "TERM");
    let mut stderr = String::new();
    daemon
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(daemon.0.wait().unwrap().code(), Some(0));
    assert!(stderr.lines().count() > 5, "trace logging is on: {stderr}");
    for line in stderr.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    logs.push(stderr);
    for (file, secret) in secrets {
        for log in &logs {
            assert!(!log.contains(secret), "{file}'s secret leaked:\n{log}");
        }
    }
}
