//! The service (`idpsync run`) in-process and as a child process: the schedule following the
//! directory file, the read API behind the app token, health, `/metrics` as Prometheus text,
//! reloads (in-process and by SIGHUP) that refuse a bad configuration, a stop during a run and the
//! next start finishing it, CLI writes beside the running service, refusals shown by `status`
//! until allowed, `sd_notify` READY/RELOADING/STOPPING with exit 0 on SIGTERM and SIGINT, and no
//! secret in any log line.
//!
//! In-process tests drive [`Service`] on a multi-threaded runtime; their bodies run on the test
//! thread (`block_on`), so the blocking helpers here (HTTP over `std::net`, the CLI binary,
//! polling) never hold up the service's workers. Every "eventually" polls with a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use idpsync::service::Service;
use serde_json::{Value, json};

use crate::common::{CONFIG, Env, corp_export};

/// The app token of every test configuration here.
pub(crate) const TOKEN: &str = "app-token-7c1e9b44";
/// A run every second.
pub(crate) const EVERY_SECOND: &str = "*/1 * * * * *";
/// Once a year: in a test, only the run at start happens.
pub(crate) const YEARLY: &str = "0 0 0 1 1 *";
/// How long any "eventually" may take.
pub(crate) const PATIENCE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// [`CONFIG`] with `daemon` extra keys after `[daemon]` and `rest` appended.
pub(crate) fn config_with(daemon: &str, rest: &str) -> String {
    let config = CONFIG.replacen("[daemon]\n", &format!("[daemon]\n{daemon}"), 1);
    assert_ne!(config, CONFIG, "CONFIG has a [daemon] table");
    format!("{config}{rest}")
}

/// The `[daemon]` keys of the service: a free loopback port, `schedule`, the app token file.
pub(crate) fn daemon_keys(schedule: &str) -> String {
    format!("listen = \"127.0.0.1:0\"\nschedule = \"{schedule}\"\napp_token_file = \"app.token\"\n")
}

/// [`Env::new`] set up for the service on `schedule`, with `rest` appended to the configuration.
pub(crate) fn service_env_with(schedule: &str, rest: &str) -> Env {
    let env = Env::new();
    env.write_config(&config_with(&daemon_keys(schedule), rest));
    std::fs::write(env.path("app.token"), format!("{TOKEN}\n")).unwrap();
    env
}

fn service_env(schedule: &str) -> Env {
    service_env_with(schedule, "")
}

/// Replaces a file whole (write then rename), so the running service never reads half of it.
fn replace_file(path: &Path, text: &str) {
    crate::common::assert_loopback(text);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Replaces the export `corp.json` whole.
pub(crate) fn replace_export(env: &Env, doc: &Value) {
    replace_file(
        &env.path("corp.json"),
        &serde_json::to_string_pretty(doc).unwrap(),
    );
}

/// Polls `probe` until it gives `Ok`, at most [`PATIENCE`]; panics with its last `Err`.
pub(crate) fn eventually<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Http {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Http {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {self:?}"))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` over HTTP/1.1 with `Connection: close`, with `Authorization: Bearer token` when given.
pub(crate) fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> Http {
    http_send(addr, "GET", path, token, None)
}

/// `method path` over HTTP/1.1 with `Connection: close`, a bearer `token` when given, and a
/// JSON `body` when given.
pub(crate) fn http_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Http {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let length = body.map_or(String::new(), |b| {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        )
    });
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}{length}Connection: close\r\n\r\n"
    )
    .unwrap();
    if let Some(body) = body {
        // A server that refuses early (413) may close before reading it all.
        let _ = stream.write_all(body);
    }
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let raw = String::from_utf8(raw).expect("the answer is UTF-8");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers: {raw:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut answer = Http {
        status,
        headers,
        body: body.to_owned(),
    };
    if answer
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        answer.body = dechunk(&answer.body);
    }
    answer
}

/// Decodes a chunked body.
fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = text.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
            .expect("a hexadecimal chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        text = &rest[size + 2..];
    }
}

/// The groups of `key` through the read API, as sorted `stage/name provenance,…` lines.
fn user_groups(addr: SocketAddr, key: &str) -> Vec<String> {
    let answer = http_get(addr, &format!("/v1/users/{key}"), Some(TOKEN));
    assert_eq!(answer.status, 200, "{answer:?}");
    group_lines(&answer.json())
}

/// The groups of a `users show` document as sorted `stage/name provenance,…` lines.
pub(crate) fn group_lines(doc: &Value) -> Vec<String> {
    let mut lines: Vec<String> = doc["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("no groups: {doc}"))
        .iter()
        .map(|g| {
            let provenance: Vec<&str> = g["provenance"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            format!(
                "{}/{} {}",
                g["stage"].as_str().unwrap(),
                g["name"].as_str().unwrap(),
                provenance.join(",")
            )
        })
        .collect();
    lines.sort();
    lines
}

/// Waits until `key`'s groups through the read API are `expected`.
fn wait_for_groups(addr: SocketAddr, key: &str, expected: &[&str]) {
    eventually(&format!("{key} in {expected:?}"), || {
        let groups = user_groups(addr, key);
        if groups == expected {
            Ok(())
        } else {
            Err(format!("{groups:?}"))
        }
    });
}

/// Parses metrics text with prometheus-parse, requiring every line to be one it understands.
///
/// prometheus-parse skips lines it does not recognise instead of failing, so a plain `parse`
/// would accept anything; each line is therefore checked to be HELP, TYPE, a sample or blank.
/// prometheus-client writes OpenMetrics text, which ends with `# EOF`: that line (and only as
/// the last line) is allowed and stripped before parsing.
fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    let body = text
        .strip_suffix("# EOF\n")
        .unwrap_or_else(|| panic!("OpenMetrics text ends with # EOF:\n{text}"));
    for line in body.lines() {
        let info = prometheus_parse::LineInfo::parse(line);
        assert!(
            !matches!(info, prometheus_parse::LineInfo::Ignored),
            "a line Prometheus text does not allow: {line:?}\n{text}"
        );
    }
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
        .expect("the metrics parse")
}

/// The sum of a counter's samples (`name` as written, e.g. `idpsync_runs_total`) over `labels`.
fn counter(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a counter: {s:?}"),
        })
        .sum()
}

/// `idpsync_runs_total` of the in-process service (one IdP: the number of runs).
pub(crate) fn runs_of(service: &Service) -> f64 {
    counter(
        &parse_metrics(&service.metrics().encode()),
        "idpsync_runs_total",
        &[],
    )
}

/// Waits until the service has counted `more` runs after `from`.
pub(crate) fn wait_for_runs(service: &Service, from: f64, more: f64) -> f64 {
    eventually(&format!("{more} more runs after {from}"), || {
        let runs = runs_of(service);
        if runs >= from + more {
            Ok(runs)
        } else {
            Err(format!("{runs} runs"))
        }
    })
}

/// Starts the service of `env` in-process.
pub(crate) async fn start(env: &Env) -> Service {
    Service::start(&env.config_path(), env.vars.clone())
        .await
        .expect("the service starts")
}

/// Stops the service and waits for it; a service still running after [`PATIENCE`] is a hung test.
pub(crate) async fn stop(service: Service) {
    service.stop();
    tokio::time::timeout(PATIENCE, service.wait())
        .await
        .expect("the service never stopped (hung)");
}

/// A read-only connection to the state file.
fn state_db(env: &Env) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_with_flags(
        env.state_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

/// Every run record as (actor, outcome, finished), oldest first.
fn run_records(env: &Env) -> Vec<(String, String, bool)> {
    let conn = state_db(env);
    let mut statement = conn
        .prepare("SELECT actor, outcome, finished_at IS NOT NULL FROM runs ORDER BY rowid")
        .unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// How many memberships the state holds.
fn membership_count(env: &Env) -> i64 {
    state_db(env)
        .query_row("SELECT count(*) FROM memberships", [], |r| r.get(0))
        .unwrap()
}

/// `idpsync status --output json`.
pub(crate) fn status_of(env: &Env) -> Value {
    let out = env.run(&["status", "--output", "json"]);
    out.expect(0);
    out.json()
}

/// `status`'s entry for `idp`.
pub(crate) fn idp_status(doc: &Value, idp: &str) -> Value {
    doc["idps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["idp"] == idp)
        .unwrap_or_else(|| panic!("no IdP {idp} in {doc:#}"))
        .clone()
}

/// A loopback TCP port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A loopback listener that accepts LDAP connections and never answers: a read from it hangs
/// until the client's timeout. `connected` receives each accepted connection (kept open).
pub(crate) struct BlackHole {
    port: u16,
    connected: std::sync::mpsc::Receiver<TcpStream>,
}

impl BlackHole {
    pub(crate) fn open() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (send, connected) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                if send.send(stream).is_err() {
                    return;
                }
            }
        });
        BlackHole { port, connected }
    }

    /// An `[[idp]]` table for an LDAP IdP `name` reading from the black hole.
    pub(crate) fn idp(&self, name: &str, timeout: &str) -> String {
        format!(
            "\n[[idp]]\nname = \"{name}\"\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:{}\"\n\
             base_dn = \"dc=example,dc=com\"\nconnect_timeout = \"5s\"\ntimeout = \"{timeout}\"\n",
            self.port
        )
    }

    /// Waits until a client has connected (its read is then in progress); keeps the connection.
    pub(crate) fn wait_connected(&self) -> TcpStream {
        self.connected
            .recv_timeout(PATIENCE)
            .expect("the LDAP IdP connects to the black hole")
    }
}

/// Which stream a child's line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// The binary as a child process, every output line collected; killed (and reaped) on drop.
struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<(Stream, String)>>>,
    /// How many of its two output streams reached their end.
    closed: Arc<AtomicUsize>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Spawns `command` (`--log-format json` should be among its arguments).
    fn spawn(mut command: Command) -> Daemon {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicUsize::new(0));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let readers = vec![
            Self::collect(stdout, Stream::Stdout, lines.clone(), closed.clone()),
            Self::collect(stderr, Stream::Stderr, lines.clone(), closed.clone()),
        ];
        Daemon {
            child,
            lines,
            closed,
            readers,
        }
    }

    fn collect(
        from: impl Read + Send + 'static,
        stream: Stream,
        lines: Arc<Mutex<Vec<(Stream, String)>>>,
        closed: Arc<AtomicUsize>,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push((stream, line));
            }
            closed.fetch_add(1, Ordering::Release);
        })
    }

    fn lines(&self) -> Vec<(Stream, String)> {
        self.lines.lock().unwrap().clone()
    }

    /// Everything the child wrote, for failure messages.
    fn output(&self) -> String {
        self.lines()
            .iter()
            .map(|(s, l)| format!("{s:?}: {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The JSON log lines (standard error) whose message is `message`.
    fn logs(&self, message: &str) -> Vec<Value> {
        self.lines()
            .iter()
            .filter(|(s, _)| *s == Stream::Stderr)
            .filter_map(|(_, l)| serde_json::from_str::<Value>(l).ok())
            .filter(|v| {
                v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .collect()
    }

    /// Waits until at least `count` log lines start with `message`; returns them.
    fn wait_for_logs(&self, message: &str, count: usize) -> Vec<Value> {
        eventually(&format!("{count} log lines {message:?}"), || {
            let found = self.logs(message);
            if found.len() >= count {
                Ok(found)
            } else if self.closed.load(Ordering::Acquire) == 2 {
                panic!("the child closed its output (exited?):\n{}", self.output())
            } else {
                Err(self.output())
            }
        })
    }

    /// The address the service listens on, from its "Service ready." line.
    fn addr(&self) -> SocketAddr {
        let ready = self.wait_for_logs("Service ready.", 1);
        ready[0]["fields"]["listen"]
            .as_str()
            .unwrap_or_else(|| panic!("no listen field: {}", ready[0]))
            .parse()
            .unwrap()
    }

    /// Sends a signal by name (`TERM`, `HUP`) with kill(1).
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the child to exit, then reads the rest of its output. A child still running
    /// after [`PATIENCE`] is a hung test: it panics, showing the output so far.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                for reader in self.readers.drain(..) {
                    reader.join().unwrap();
                }
                return status;
            }
            if Instant::now() > deadline {
                panic!("the child never exited (hung):\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `idpsync --config … --log-format json run` for `env`.
fn run_command(env: &Env) -> Command {
    let mut command = env.command();
    command.args(["--log-format", "json", "run"]);
    command
}

/// The user keys, group names and IdP group names and ids of the fixture.
fn fixture_names() -> Vec<String> {
    let export = corp_export();
    let mut names: Vec<String> = vec![
        "ana@example.com".into(),
        "ben@example.com".into(),
        "cid@example.com".into(),
        "Marketing".into(),
        "Testers".into(),
        "Engineers".into(),
    ];
    for user in export["users"].as_array().unwrap() {
        for field in ["id", "email", "name"] {
            if let Some(v) = user[field].as_str() {
                names.push(v.to_owned());
            }
        }
    }
    for group in export["groups"].as_array().unwrap() {
        for field in ["id", "name"] {
            names.push(group[field].as_str().unwrap().to_owned());
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------
// 1. The schedule follows the directory file
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_runs_at_start_then_follows_the_directory_file_on_schedule() {
    let env = service_env(EVERY_SECOND);
    let service = start(&env).await;
    let addr = service.addr();
    wait_for_groups(addr, "ana@example.com", &["production/Marketing idp:corp"]);
    assert_eq!(
        user_groups(addr, "cid@example.com"),
        ["qa/Testers idp:corp"]
    );

    // cid joins "Marketing Team" in the directory; a scheduled run picks it up.
    let mut export = corp_export();
    export["groups"][0]["members"]
        .as_array_mut()
        .unwrap()
        .push(json!("u3"));
    replace_export(&env, &export);
    wait_for_groups(
        addr,
        "cid@example.com",
        &["production/Marketing idp:corp", "qa/Testers idp:corp"],
    );
    // And leaves it again.
    replace_export(&env, &corp_export());
    wait_for_groups(addr, "cid@example.com", &["qa/Testers idp:corp"]);
    // A run's changes are visible before it is counted: wait for the count itself.
    wait_for_runs(&service, 0.0, 3.0);
    stop(service).await;
}

// ---------------------------------------------------------------------------------------------
// 2. The read API, health and readiness
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_read_api_needs_the_app_token_and_answers_the_cli_documents() {
    let env = service_env(YEARLY);
    let service = start(&env).await;
    let addr = service.addr();
    wait_for_groups(addr, "ana@example.com", &["production/Marketing idp:corp"]);

    for path in [
        "/v1/users/ana@example.com",
        "/v1/groups",
        "/v1/groups?stage=qa",
    ] {
        for token in [None, Some("wrong-token"), Some("")] {
            let answer = http_get(addr, path, token);
            assert_eq!(answer.status, 401, "{path} {token:?}: {answer:?}");
            let doc = answer.json();
            assert_eq!(doc["error"], "invalid_token", "{doc}");
            assert!(doc["detail"].is_string(), "{doc}");
            assert!(!answer.body.contains("wrong-token"), "{answer:?}");
        }
    }
    // Not the app token with another scheme either.
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /v1/groups HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");

    // With the token: the same documents as the CLI.
    let cli = |args: &[&str]| {
        let out = env.run(args);
        out.expect(0);
        out.json()
    };
    for (path, args) in [
        (
            "/v1/users/ana@example.com",
            vec!["users", "show", "ana@example.com", "--output", "json"],
        ),
        (
            "/v1/users/Ben@Example.com?stage=qa",
            vec![
                "users",
                "show",
                "Ben@Example.com",
                "--stage",
                "qa",
                "--output",
                "json",
            ],
        ),
        (
            "/v1/users/nobody@example.com",
            vec!["users", "show", "nobody@example.com", "--output", "json"],
        ),
        ("/v1/groups", vec!["groups", "list", "--output", "json"]),
        (
            "/v1/groups?stage=production",
            vec![
                "groups",
                "list",
                "--stage",
                "production",
                "--output",
                "json",
            ],
        ),
    ] {
        let answer = http_get(addr, path, Some(TOKEN));
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert!(
            answer
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{answer:?}"
        );
        assert_eq!(answer.json(), cli(&args), "{path}");
    }
    let ana = http_get(addr, "/v1/users/ana@example.com", Some(TOKEN)).json();
    assert_eq!(ana["user"], "ana@example.com");
    assert_eq!(ana["roles"], json!({"production": {"Dash": ["Viewer"]}}));
    let groups = http_get(addr, "/v1/groups", Some(TOKEN)).json();
    let counts: Vec<(String, u64)> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                format!(
                    "{}/{}",
                    g["stage"].as_str().unwrap(),
                    g["name"].as_str().unwrap()
                ),
                g["member_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("production/Marketing".to_owned(), 2),
            ("qa/Testers".to_owned(), 2)
        ]
    );

    // A stage outside daemon.stages is a bad request.
    for path in [
        "/v1/groups?stage=staging",
        "/v1/users/ana@example.com?stage=staging",
    ] {
        let answer = http_get(addr, path, Some(TOKEN));
        assert_eq!(answer.status, 400, "{path}: {answer:?}");
        assert_eq!(answer.json()["error"], "bad_request", "{answer:?}");
    }

    // A percent-encoded key is the same key.
    let encoded = http_get(addr, "/v1/users/ana%40example.com", Some(TOKEN));
    assert_eq!(encoded.status, 200, "{encoded:?}");
    assert_eq!(encoded.json(), ana);

    // Health and readiness need no token.
    let health = http_get(addr, "/healthz", None);
    assert_eq!(health.status, 200, "{health:?}");
    let ready = http_get(addr, "/readyz", None);
    assert_eq!(ready.status, 200, "{ready:?}");
    stop(service).await;
}

// ---------------------------------------------------------------------------------------------
// 3. Reloads
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_reload_refuses_a_bad_config_keeps_the_old_and_applies_a_good_one() {
    let env = service_env(EVERY_SECOND);
    let service = start(&env).await;
    let addr = service.addr();
    wait_for_groups(addr, "cid@example.com", &["qa/Testers idp:corp"]);

    // An invalid configuration (an unknown table; then not TOML at all) is refused; the running
    // one stays.
    let good = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&format!("{good}\n[daemon2]\nfoo = 1\n"));
    service
        .reload()
        .expect_err("an unknown table is refused on reload");
    env.write_config("this is not TOML = = =");
    service
        .reload()
        .expect_err("broken TOML is refused on reload");
    assert_eq!(service.config().mappings.len(), 2);
    let runs = runs_of(&service);
    wait_for_runs(&service, runs, 2.0);
    assert_eq!(
        user_groups(addr, "cid@example.com"),
        ["qa/Testers idp:corp"]
    );
    let scrape = parse_metrics(&service.metrics().encode());
    assert_eq!(
        counter(
            &scrape,
            "idpsync_config_reloads_total",
            &[("outcome", "refused")]
        ),
        2.0
    );

    // A valid change: a new declared group and mapping; the next run applies it.
    env.write_config(&format!(
        "{good}\n[[group]]\nname = \"Engineers\"\nstage = \"production\"\n\n\
         [[mapping]]\nidp = \"corp\"\nidp_group = \"Engineering\"\ngroup = \"Engineers\"\nstage = \"production\"\n"
    ));
    service.reload().expect("a valid configuration is reloaded");
    assert_eq!(service.config().mappings.len(), 3);
    wait_for_groups(
        addr,
        "cid@example.com",
        &["production/Engineers idp:corp", "qa/Testers idp:corp"],
    );
    let scrape = parse_metrics(&service.metrics().encode());
    assert_eq!(
        counter(
            &scrape,
            "idpsync_config_reloads_total",
            &[("outcome", "applied")]
        ),
        1.0
    );
    stop(service).await;
}

#[test]
fn service_sighup_with_a_bad_config_is_refused_and_the_process_keeps_serving() {
    let env = service_env(EVERY_SECOND);
    let mut daemon = Daemon::spawn(run_command(&env));
    let addr = daemon.addr();
    daemon.wait_for_logs("Reconciled.", 1);
    wait_for_groups(addr, "ana@example.com", &["production/Marketing idp:corp"]);

    let good = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&good.replace(EVERY_SECOND, "every now and then"));
    daemon.signal("HUP");
    let refused = daemon.wait_for_logs("Configuration reload refused", 1);
    assert_eq!(refused[0]["level"], "ERROR", "{}", refused[0]);
    // Still serving, still running on the old schedule.
    let runs = daemon.logs("Reconciled.").len();
    daemon.wait_for_logs("Reconciled.", runs + 2);
    assert_eq!(http_get(addr, "/healthz", None).status, 200);
    assert_eq!(
        user_groups(addr, "ana@example.com"),
        ["production/Marketing idp:corp"]
    );

    // A good configuration with a new mapping, by SIGHUP too.
    env.write_config(&format!(
        "{good}\n[[group]]\nname = \"Engineers\"\nstage = \"production\"\n\n\
         [[mapping]]\nidp = \"corp\"\nidp_group = \"Engineering\"\ngroup = \"Engineers\"\nstage = \"production\"\n"
    ));
    daemon.signal("HUP");
    daemon.wait_for_logs("Configuration reloaded.", 1);
    wait_for_groups(
        addr,
        "cid@example.com",
        &["production/Engineers idp:corp", "qa/Testers idp:corp"],
    );

    daemon.signal("TERM");
    let status = daemon.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    // One summary line per run that got past its reads (a run the stop caught reading is on
    // record as interrupted and has none).
    let runs = run_records(&env);
    let summarised = runs.iter().filter(|r| r.1 != "interrupted").count();
    assert!(runs.iter().all(|r| r.2), "{runs:?}");
    assert_eq!(
        daemon.logs("Reconciled.").len(),
        summarised,
        "{runs:?}\n{}",
        daemon.output()
    );
}

/// Without `app_token_file` the read API is off (it never answers a document), while health,
/// readiness and metrics still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_read_api_is_off_without_an_app_token() {
    let env = service_env(YEARLY);
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    env.write_config(&config.replace("app_token_file = \"app.token\"\n", ""));
    let service = start(&env).await;
    let addr = service.addr();
    wait_for_runs(&service, 0.0, 1.0);
    for token in [None, Some(TOKEN)] {
        for path in ["/v1/users/ana@example.com", "/v1/groups"] {
            let answer = http_get(addr, path, token);
            assert_eq!(answer.status, 404, "{path}: {answer:?}");
            assert_eq!(answer.json()["error"], "not_found", "{answer:?}");
        }
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(http_get(addr, path, None).status, 200, "{path}");
    }
    stop(service).await;
}

/// A reload takes the new schedule from the next run on, and the new app token at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_reload_takes_a_new_schedule_and_a_new_app_token() {
    let env = service_env(YEARLY);
    let service = start(&env).await;
    let addr = service.addr();
    wait_for_runs(&service, 0.0, 1.0);
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    std::fs::write(env.path("new.token"), "new-app-token-31f0\n").unwrap();
    env.write_config(
        &config
            .replace(YEARLY, EVERY_SECOND)
            .replace("app.token", "new.token"),
    );
    service.reload().expect("a valid configuration is reloaded");
    wait_for_runs(&service, 1.0, 2.0);
    let old = http_get(addr, "/v1/users/ana@example.com", Some(TOKEN));
    assert_eq!(old.status, 401, "{old:?}");
    let new = http_get(
        addr,
        "/v1/users/ana@example.com",
        Some("new-app-token-31f0"),
    );
    assert_eq!(new.status, 200, "{new:?}");
    stop(service).await;
}

/// A refusal is logged at ERROR by the service.
#[test]
fn service_binary_logs_a_refusal_at_error() {
    let env = service_env_with(YEARLY, "\n[safety]\nmax_removals = 1\n");
    let (code, _) = env.reconcile(&[]);
    assert_eq!(code, 0);
    let mut export = corp_export();
    export["groups"][0]["members"] = json!(["u2", "u4"]);
    export["groups"][1]["members"] = json!(["u2"]);
    replace_export(&env, &export);
    let mut daemon = Daemon::spawn(run_command(&env));
    let refused = daemon.wait_for_logs("Refused:", 1);
    assert_eq!(refused[0]["level"], "ERROR", "{}", refused[0]);
    assert_eq!(refused[0]["fields"]["idp"], "corp", "{}", refused[0]);
    assert_eq!(refused[0]["fields"]["guard"], "removals", "{}", refused[0]);
    daemon.signal("TERM");
    let status = daemon.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    let doc = status_of(&env);
    assert_eq!(
        idp_status(&doc, "corp")["refusal"]["guard"],
        "removals",
        "{doc:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A stop during a run, and the next start
// ---------------------------------------------------------------------------------------------

/// Starts the service with corp and an LDAP IdP reading from a black hole, and waits until the
/// first run is reading the black hole; gives the service, the black hole and its connection.
async fn service_stuck_in_a_run(env: &Env) -> (Service, BlackHole, TcpStream) {
    let hole = BlackHole::open();
    env.write_config(&config_with(
        &daemon_keys(YEARLY),
        &hole.idp("blackhole", "3600s"),
    ));
    let service = start(env).await;
    let connection = hole.wait_connected();
    (service, hole, connection)
}

/// SPEC §1 invariant 10: a reload during a run that stops serving a stage takes effect at the
/// run's commits — the run's changes into that stage are dropped (audited, counted), never
/// written, while the rest applies. The black hole holds the run in its read until the test closes
/// the connection, so the reload lands between the plan's load and its commit on every machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_stops_serving_a_stage_drops_the_runs_changes_into_it() {
    let env = service_env(YEARLY);
    let hole = BlackHole::open();
    env.write_config(&config_with(
        &daemon_keys(YEARLY),
        &hole.idp("blackhole", "3600s"),
    ));
    let service = start(&env).await;
    let connection = hole.wait_connected();
    // The new configuration serves production only: qa's group and mapping go with the stage.
    let without_qa = config_with(
        &format!("{}stages = [\"production\"]\n", daemon_keys(YEARLY)),
        &hole.idp("blackhole", "3600s"),
    )
    .replace(
        "[[group]]\nname = \"Testers\"\nstage = \"qa\"\nroles = [\"Dash/Editor\"]\n",
        "",
    )
    .replace(
        "[[mapping]]\nidp = \"corp\"\nidp_group = \"g-eng\"\ngroup = \"Testers\"\nstage = \"qa\"\n",
        "",
    );
    assert!(!without_qa.contains("\"qa\""), "{without_qa}");
    replace_file(&env.config_path(), &without_qa);
    service
        .reload()
        .expect("the configuration without qa is valid");
    // The black hole's read fails; the run goes on to commit corp's part.
    drop(connection);
    eventually("the run to finish", || {
        let runs = run_records(&env);
        match runs.first() {
            Some((_, _, true)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    stop(service).await;
    let conn = state_db(&env);
    let rows = |sql: &str| -> Vec<String> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        rows(
            "SELECT g.stage || '/' || u.key FROM memberships m JOIN groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id ORDER BY 1"
        ),
        ["production/ana@example.com", "production/ben@example.com"],
        "Marketing applied, nothing written into qa"
    );
    assert_eq!(
        rows(
            "SELECT op || ' ' || stage || '/' || \"group\" || ' ' || user || ': ' || detail FROM (SELECT a.op, d.stage, d.name AS \"group\", u.key AS user, a.detail FROM audit a JOIN users u ON u.id = a.user_id JOIN groups d ON d.id = a.group_id WHERE a.op = 'drop') ORDER BY 1"
        ),
        [
            "drop qa/Testers ben@example.com: add of idp:corp for ben@example.com dropped at commit: the group's stage is no longer served",
            "drop qa/Testers cid@example.com: add of idp:corp for cid@example.com dropped at commit: the group's stage is no longer served",
        ]
    );
    let summary: String = conn
        .query_row("SELECT report FROM runs", [], |r| r.get(0))
        .unwrap();
    let summary: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(
        (summary["adds"].clone(), summary["dropped"].clone()),
        (json!(2), json!(2)),
        "{summary}"
    );
}

/// The embedded store's journal is its transaction: each IdP's changes commit in one
/// transaction, so a run stopped midway leaves either an IdP's changes whole or none of them,
/// and "the next start finishes the journal" means here that the next run applies what the
/// stopped one did not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_stop_during_a_run_applies_nothing_and_the_next_start_applies_everything() {
    let env = service_env(YEARLY);
    let (service, _hole, _connection) = service_stuck_in_a_run(&env).await;
    let addr = service.addr();
    // The run is reading: corp is read, the black hole is not answering.
    assert_eq!(user_groups(addr, "ana@example.com"), Vec::<String>::new());
    // The LDAP timeout is an hour: the stop returns because the read was dropped, not timed out.
    stop(service).await;
    assert_eq!(membership_count(&env), 0, "nothing of the run was applied");
    assert_eq!(
        run_records(&env),
        [("service".to_owned(), "interrupted".to_owned(), true)]
    );

    // The next start, without the black hole, applies everything.
    env.write_config(&config_with(&daemon_keys(YEARLY), ""));
    let service = start(&env).await;
    let addr = service.addr();
    wait_for_groups(addr, "ana@example.com", &["production/Marketing idp:corp"]);
    wait_for_groups(
        addr,
        "ben@example.com",
        &["production/Marketing idp:corp", "qa/Testers idp:corp"],
    );
    wait_for_groups(addr, "cid@example.com", &["qa/Testers idp:corp"]);
    stop(service).await;
    assert_eq!(membership_count(&env), 4);
    let runs = run_records(&env);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].1, "interrupted");
    assert_eq!(runs[1].1, "applied", "{runs:?}");
    let doc = status_of(&env);
    let corp = idp_status(&doc, "corp");
    assert_eq!(corp["last_run"]["outcome"], "applied", "{doc:#}");
    assert_eq!(corp["last_run"]["adds"], 4, "{doc:#}");
    assert_eq!(doc["journal"], json!({"pending": 0, "failed": 0}));
}

/// What `status` says right after a stop interrupted a run: each IdP of the run shows it
/// (SPEC §3: status is per IdP, its last run and outcome). The `runs` row says `interrupted`
/// (see above), but a stop while reading writes no per-IdP outcome, which is what `status` reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_status_shows_the_run_a_stop_interrupted() {
    let env = service_env(YEARLY);
    let (service, _hole, _connection) = service_stuck_in_a_run(&env).await;
    stop(service).await;
    let doc = status_of(&env);
    for idp in ["corp", "blackhole"] {
        let entry = idp_status(&doc, idp);
        assert_eq!(
            entry["last_run"]["outcome"], "interrupted",
            "status --output json should show the interrupted run for {idp}:\n{doc:#}"
        );
    }
}

/// A process killed outright (SIGKILL) in the middle of a run leaves its run record `running`;
/// the next start closes it as interrupted before anything else, and its first run applies
/// everything (the embedded store's journal being its per-IdP transaction, nothing is half done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_start_after_a_killed_process_closes_its_run_and_applies_everything() {
    let env = service_env(YEARLY);
    let hole = BlackHole::open();
    env.write_config(&config_with(
        &daemon_keys(YEARLY),
        &hole.idp("blackhole", "3600s"),
    ));
    let daemon = Daemon::spawn(run_command(&env));
    let _connection = hole.wait_connected();
    eventually("the run record of the run in progress", || {
        let runs = if env.state_path().exists() {
            run_records(&env)
        } else {
            Vec::new()
        };
        if runs.len() == 1 {
            Ok(())
        } else {
            Err(format!("{runs:?}"))
        }
    });
    drop(daemon); // SIGKILL
    assert_eq!(membership_count(&env), 0);
    assert_eq!(
        run_records(&env),
        [("service".to_owned(), "running".to_owned(), false)]
    );

    env.write_config(&config_with(&daemon_keys(YEARLY), ""));
    let service = start(&env).await;
    let addr = service.addr();
    wait_for_groups(addr, "ana@example.com", &["production/Marketing idp:corp"]);
    stop(service).await;
    let runs = run_records(&env);
    assert_eq!(
        runs,
        [
            ("service".to_owned(), "interrupted".to_owned(), true),
            ("service".to_owned(), "applied".to_owned(), true)
        ]
    );
    assert_eq!(membership_count(&env), 4);
}

// ---------------------------------------------------------------------------------------------
// 5. A CLI write beside the running service
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_cli_write_succeeds_while_the_service_runs_and_survives_its_runs() {
    let env = service_env(EVERY_SECOND);
    let service = start(&env).await;
    let addr = service.addr();
    wait_for_groups(addr, "ana@example.com", &["production/Marketing idp:corp"]);

    let out = env.run(&[
        "groups",
        "add-user",
        "Marketing",
        "--stage",
        "production",
        "zed@example.com",
        "ana@example.com",
    ]);
    out.expect(0);
    assert_eq!(
        user_groups(addr, "zed@example.com"),
        ["production/Marketing direct"]
    );
    let runs = runs_of(&service);
    wait_for_runs(&service, runs, 2.0);
    assert_eq!(
        user_groups(addr, "zed@example.com"),
        ["production/Marketing direct"]
    );
    assert_eq!(
        user_groups(addr, "ana@example.com"),
        ["production/Marketing direct,idp:corp"]
    );

    // ana leaves the IdP group: the IdP's provenance goes, the direct one stays.
    let mut export = corp_export();
    export["groups"][0]["members"] = json!(["u2", "u4"]);
    replace_export(&env, &export);
    wait_for_groups(addr, "ana@example.com", &["production/Marketing direct"]);
    stop(service).await;
}

// ---------------------------------------------------------------------------------------------
// 6. /metrics
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_metrics_parse_as_prometheus_text_named_idpsync_without_names() {
    let env = service_env(EVERY_SECOND);
    let service = start(&env).await;
    let addr = service.addr();
    wait_for_runs(&service, 0.0, 3.0);

    let finished_before = run_records(&env).iter().filter(|r| r.2).count() as f64;
    let answer = http_get(addr, "/metrics", None);
    let finished_after = run_records(&env).iter().filter(|r| r.2).count() as f64;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer
            .header("content-type")
            .is_some_and(|t| t.contains("text")),
        "{answer:?}"
    );
    let scrape = parse_metrics(&answer.body);
    assert!(!scrape.samples.is_empty());
    let names = fixture_names();
    for sample in &scrape.samples {
        assert!(
            sample.metric.starts_with("idpsync_"),
            "{} is not idpsync_*",
            sample.metric
        );
        for (label, value) in sample.labels.iter() {
            assert!(
                !names.iter().any(|n| n.eq_ignore_ascii_case(value)) && !value.contains('@'),
                "{}{{{label}={value:?}}} names a user or a group",
                sample.metric
            );
        }
    }
    for doc in scrape.docs.keys() {
        assert!(doc.starts_with("idpsync_"), "{doc}");
    }
    // Each finished run is counted once (a run finishing during the scrape may be in either).
    let runs = counter(&scrape, "idpsync_runs_total", &[("idp", "corp")]);
    assert!(
        runs >= finished_before - 1.0 && runs <= finished_after && runs >= 3.0,
        "idpsync_runs_total {runs}, run records finished {finished_before}..{finished_after}"
    );
    assert_eq!(counter(&scrape, "idpsync_failures_total", &[]), 0.0);
    assert_eq!(
        counter(
            &scrape,
            "idpsync_changes_applied_total",
            &[("idp", "corp"), ("kind", "add")]
        ),
        4.0
    );
    for name in [
        "idpsync_runs_skipped_total",
        "idpsync_journal_depth",
        "idpsync_journal_failed",
        "idpsync_source_requests_total",
        "idpsync_last_success_timestamp_seconds",
    ] {
        assert!(
            scrape.samples.iter().any(|s| s.metric == name),
            "{name} missing:\n{}",
            answer.body
        );
    }
    stop(service).await;
}

/// A failing IdP is counted and never stops the service; a run still going when the next is due
/// makes that one skip, counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_counts_a_failing_idp_and_the_runs_a_long_run_skips() {
    let hole = BlackHole::open();
    let env = service_env_with(EVERY_SECOND, &hole.idp("blackhole", "1s"));
    let service = start(&env).await;
    let addr = service.addr();
    let scrape = eventually("two failed runs of the black hole", || {
        let scrape = parse_metrics(&service.metrics().encode());
        if counter(&scrape, "idpsync_failures_total", &[("idp", "blackhole")]) >= 2.0 {
            Ok(scrape)
        } else {
            Err(service.metrics().encode())
        }
    });
    assert!(
        counter(&scrape, "idpsync_runs_total", &[("idp", "corp")]) >= 2.0,
        "{scrape:?}"
    );
    assert!(
        counter(&scrape, "idpsync_runs_skipped_total", &[]) >= 1.0,
        "runs of a second or more (the LDAP timeout) on a one-second schedule skip runs"
    );
    assert_eq!(
        counter(&scrape, "idpsync_failures_total", &[("idp", "corp")]),
        0.0
    );
    // corp was applied all along.
    assert_eq!(
        user_groups(addr, "ana@example.com"),
        ["production/Marketing idp:corp"]
    );
    let doc = status_of(&env);
    assert_eq!(
        idp_status(&doc, "blackhole")["last_run"]["outcome"],
        "failed",
        "{doc:#}"
    );
    stop(service).await;
}

// ---------------------------------------------------------------------------------------------
// 7. systemd notify and SIGTERM
// ---------------------------------------------------------------------------------------------

#[test]
fn service_binary_notifies_ready_serves_and_exits_0_on_sigterm() {
    let env = service_env(EVERY_SECOND);
    let socket_path = env.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut command = run_command(&env);
    command.env("NOTIFY_SOCKET", &socket_path);
    let mut daemon = Daemon::spawn(command);

    let receive = |socket: &UnixDatagram| {
        let mut buffer = [0u8; 4096];
        let n = socket
            .recv(&mut buffer)
            .expect("a notification arrives within 15 s");
        String::from_utf8(buffer[..n].to_vec()).unwrap()
    };
    let ready = receive(&socket);
    assert!(
        ready.lines().any(|l| l == "READY=1"),
        "{ready:?}\n{}",
        daemon.output()
    );
    // READY comes after the listener is bound: it answers at once.
    let addr = daemon.addr();
    assert_eq!(http_get(addr, "/healthz", None).status, 200);
    assert_eq!(http_get(addr, "/readyz", None).status, 200);
    daemon.wait_for_logs("Reconciled.", 1);

    // A reload is framed by RELOADING=1 (with the monotonic time systemd's notify-reload wants)
    // and READY=1.
    daemon.signal("HUP");
    let reloading = receive(&socket);
    assert!(
        reloading.lines().any(|l| l == "RELOADING=1"),
        "{reloading:?}"
    );
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    let ready = receive(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    daemon.wait_for_logs("Configuration reloaded.", 1);

    daemon.signal("TERM");
    let stopping = receive(&socket);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let status = daemon.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "the listener is closed"
    );
}

#[test]
fn service_binary_exits_0_on_sigint() {
    let env = service_env(EVERY_SECOND);
    let mut daemon = Daemon::spawn(run_command(&env));
    daemon.addr();
    daemon.wait_for_logs("Reconciled.", 1);
    daemon.signal("INT");
    let status = daemon.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    daemon.wait_for_logs("Service stopped.", 1);
}

/// An HTTP client that sent half a request and waits does not hold the stop up: SIGTERM still
/// exits 0 within a few seconds (a scraper or application stuck mid-request must not turn a
/// stop into systemd's kill).
#[test]
fn service_binary_exits_0_promptly_on_sigterm_with_a_client_mid_request() {
    let env = service_env(YEARLY);
    let mut daemon = Daemon::spawn(run_command(&env));
    let addr = daemon.addr();
    daemon.wait_for_logs("Reconciled.", 1);
    let mut client = TcpStream::connect(addr).unwrap();
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // The request is on the service's side (an idle connection would be closed at once).
    assert_eq!(http_get(addr, "/healthz", None).status, 200);
    daemon.signal("TERM");
    let status = daemon.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    drop(client);
}

#[test]
fn service_binary_exits_0_on_sigterm_in_the_middle_of_a_run() {
    let env = service_env(YEARLY);
    let hole = BlackHole::open();
    env.write_config(&config_with(
        &daemon_keys(YEARLY),
        &hole.idp("blackhole", "3600s"),
    ));
    let mut daemon = Daemon::spawn(run_command(&env));
    let _connection = hole.wait_connected();
    daemon.signal("TERM");
    let status = daemon.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    assert_eq!(membership_count(&env), 0);
    assert_eq!(
        run_records(&env),
        [("service".to_owned(), "interrupted".to_owned(), true)]
    );
}

// ---------------------------------------------------------------------------------------------
// 8. No secret in any log line
// ---------------------------------------------------------------------------------------------

const APP_SECRET: &str = "app-s3cret-5d1c0e";
const HOOK_SECRET: &str = "hook-s3cret-9a7b2f";
const LDAP_SECRET: &str = "ldap-s3cret-4e8d6a";

/// A folder whose configuration holds an app token, a webhook token and an LDAP bind password,
/// each in a file. Two LDAP IdPs bind with the password: `directory` on a closed loopback port,
/// and `slow` on `hole`, which receives the bind (the password goes over the wire) and never
/// answers, so the bind times out after a second.
fn env_with_secrets(hole: &BlackHole) -> Env {
    let env = Env::new();
    let daemon = format!(
        "listen = \"127.0.0.1:0\"\nschedule = \"{YEARLY}\"\n\
         app_token_file = \"app.token\"\nwebhook_token_file = \"hook.token\"\n"
    );
    let ldap = format!(
        "\n[[idp]]\nname = \"directory\"\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:{}\"\n\
         base_dn = \"dc=example,dc=com\"\nbind_dn = \"cn=idpsync,dc=example,dc=com\"\n\
         bind_password_file = \"ldap.password\"\nconnect_timeout = \"2s\"\ntimeout = \"2s\"\n",
        closed_port()
    );
    let slow = format!(
        "\n[[idp]]\nname = \"slow\"\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:{}\"\n\
         base_dn = \"dc=example,dc=com\"\nbind_dn = \"cn=idpsync,dc=example,dc=com\"\n\
         bind_password_file = \"ldap.password\"\nconnect_timeout = \"2s\"\ntimeout = \"1s\"\n",
        hole.port
    );
    env.write_config(&config_with(&daemon, &format!("{ldap}{slow}")));
    for (file, secret) in [
        ("app.token", APP_SECRET),
        ("hook.token", HOOK_SECRET),
        ("ldap.password", LDAP_SECRET),
    ] {
        std::fs::write(env.path(file), format!("{secret}\n")).unwrap();
    }
    env
}

/// Asserts no line holds a secret, every standard-error line is a JSON log line, and there is
/// exactly `runs` "Reconciled." summary lines.
fn assert_clean_json_logs(lines: &[(Stream, String)], runs: usize, context: &str) {
    assert!(!lines.is_empty(), "{context}: no output");
    for (stream, line) in lines {
        for secret in [APP_SECRET, HOOK_SECRET, LDAP_SECRET] {
            assert!(
                !line.contains(secret),
                "{context}: a secret in a log line ({stream:?}): {line}"
            );
        }
    }
    let summaries = lines
        .iter()
        .filter(|(s, _)| *s == Stream::Stderr)
        .map(|(_, line)| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("{context}: not a JSON log line ({e}): {line}"))
        })
        .filter(|v| v["fields"]["message"] == "Reconciled.")
        .count();
    assert_eq!(summaries, runs, "{context}: summary lines per run");
}

#[test]
fn service_no_secret_is_logged_at_trace_level_by_reconcile_or_run() {
    let hole = BlackHole::open();
    let env = env_with_secrets(&hole);
    let trace = [("IDPSYNC_LOG", "trace")];

    let out = env.run_with(&["--log-format", "json", "reconcile"], &trace);
    assert_eq!(out.code, 1, "the LDAP IdPs fail: {out:?}");
    // The bind password was in play: the black hole received it.
    let mut bind = Vec::new();
    let mut connection = hole.wait_connected();
    connection
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    connection.read_to_end(&mut bind).unwrap();
    assert!(
        bind.windows(LDAP_SECRET.len())
            .any(|w| w == LDAP_SECRET.as_bytes()),
        "the bind request carries the password"
    );
    let mut lines: Vec<(Stream, String)> = out
        .stdout
        .lines()
        .map(|l| (Stream::Stdout, l.to_owned()))
        .collect();
    lines.extend(out.stderr.lines().map(|l| (Stream::Stderr, l.to_owned())));
    assert!(
        lines.iter().any(|(_, l)| l.contains("\"DEBUG\"")),
        "the log level is beyond info:\n{}",
        out.stderr
    );
    assert_clean_json_logs(&lines, 1, "reconcile");

    let mut command = run_command(&env);
    command.env("IDPSYNC_LOG", "trace");
    let mut daemon = Daemon::spawn(command);
    let addr = daemon.addr();
    daemon.wait_for_logs("Reconciled.", 1);
    // The token goes over the wire, right and wrong.
    assert_eq!(
        http_get(addr, "/v1/users/ana@example.com", Some(APP_SECRET)).status,
        200
    );
    assert_eq!(
        http_get(addr, "/v1/users/ana@example.com", Some("not-it")).status,
        401
    );
    daemon.signal("TERM");
    let status = daemon.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", daemon.output());
    assert_clean_json_logs(&daemon.lines(), 1, "run");
    // Each failing IdP is logged at ERROR, without its password.
    for idp in ["directory", "slow"] {
        let failed: Vec<Value> = daemon
            .logs("IdP read failed")
            .into_iter()
            .filter(|v| v["fields"]["idp"] == idp)
            .collect();
        assert_eq!(failed.len(), 1, "{idp}: {}", daemon.output());
        assert_eq!(failed[0]["level"], "ERROR", "{}", failed[0]);
    }
}

// ---------------------------------------------------------------------------------------------
// A refusal stays in status until an operator allows it from the CLI
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_refusal_shows_in_status_until_allowed_from_the_cli() {
    let env = service_env_with(EVERY_SECOND, "\n[safety]\nmax_removals = 1\n");
    let service = start(&env).await;
    let addr = service.addr();
    wait_for_groups(addr, "ana@example.com", &["production/Marketing idp:corp"]);

    // ana leaves "Marketing Team" and cid "Engineering": two removals, over the guard (and no
    // mapped group empties, which the empty guard would refuse as well).
    let mut export = corp_export();
    export["groups"][0]["members"] = json!(["u2", "u4"]);
    export["groups"][1]["members"] = json!(["u2"]);
    replace_export(&env, &export);
    let refusal = eventually("the refusal in status", || {
        let doc = status_of(&env);
        let corp = idp_status(&doc, "corp");
        if corp["refusal"].is_null() {
            Err(format!("{doc:#}"))
        } else {
            Ok(corp["refusal"].clone())
        }
    });
    assert_eq!(refusal["guard"], "removals", "{refusal:#}");
    // Still refused, run after run, and counted.
    let runs = runs_of(&service);
    wait_for_runs(&service, runs, 2.0);
    assert_eq!(idp_status(&status_of(&env), "corp")["refusal"], refusal);
    let scrape = parse_metrics(&service.metrics().encode());
    assert!(
        counter(
            &scrape,
            "idpsync_refusals_total",
            &[("idp", "corp"), ("guard", "removals")]
        ) >= 2.0
    );
    assert_eq!(
        user_groups(addr, "ana@example.com"),
        ["production/Marketing idp:corp"]
    );

    // The operator allows it from the CLI while the service runs.
    let allow = refusal["allow"].as_str().unwrap();
    assert!(allow.ends_with("--allow-removals 2"), "{allow}");
    let out = env.run(&["reconcile", "--idp", "corp", "--allow-removals", "2"]);
    out.expect(0);
    assert!(idp_status(&status_of(&env), "corp")["refusal"].is_null());
    assert_eq!(user_groups(addr, "ana@example.com"), Vec::<String>::new());
    assert_eq!(user_groups(addr, "cid@example.com"), Vec::<String>::new());
    let runs = runs_of(&service);
    wait_for_runs(&service, runs, 2.0);
    let doc = status_of(&env);
    assert!(idp_status(&doc, "corp")["refusal"].is_null(), "{doc:#}");
    stop(service).await;
}
