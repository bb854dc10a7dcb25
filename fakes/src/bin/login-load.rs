//! The login load generator of `scripts/bench`: serves a fake OpenID provider, starts
//! `idpsync run` on a configuration that signs users in through it, and sends pre-signed tokens
//! of many subjects (so the per-subject limit is not what is measured) to `POST /v1/login`:
//! per claim size, a first login of every subject (untimed), then `--logins` timed logins with
//! fresh tokens, as users signing in again.
//!
//! `login-load --idpsync BIN --work DIR --key PEM [--base CONFIG] [--claims 10,200,5000]
//! [--logins N] [--concurrency N] [--rate PER_SECOND] [--during-batch]` prints a JSON line for
//! the floor (as many `GET /healthz`, `"floor"` set), then one per claim size (`--rate` sends
//! the timed logins at that pace instead of `--concurrency` at a time):
//! `{"claims", "logins", "seconds", "per_second", "p50_ms", "p99_ms", "max_ms", "errors",
//! "idpsync_cpu_s", "loader_cpu_s", "rate", "batch_seconds"}`. `--base` is a configuration to
//! add the login IdP to. With `--during-batch` (the base being the S1 directory's) the first
//! logins go to a service without the base's IdPs; then a service with them starts on the same
//! state, and the timed logins run from its start until its run at start has read and applied
//! the directory (`batch_seconds` after the start); there is no floor line.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use fakes::oidc::{FakeOidc, SigningKey};
use serde_json::json;

/// Mapped login groups: claims name `g0`…; the first `MAPPED` of them are mapped.
const MAPPED: usize = 200;
/// Subjects tokens are signed for.
const SUBJECTS: usize = 1000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let idpsync = PathBuf::from(value("--idpsync").expect("--idpsync BIN"));
    let work = PathBuf::from(value("--work").expect("--work DIR"));
    let key = std::fs::read_to_string(value("--key").expect("--key PEM")).expect("the key");
    let claims: Vec<usize> = value("--claims")
        .unwrap_or_else(|| "10,200,5000".into())
        .split(',')
        .map(|c| c.parse().expect("claim counts"))
        .collect();
    let logins: usize = value("--logins").map_or(3000, |v| v.parse().expect("--logins N"));
    let concurrency: usize = value("--concurrency").map_or(16, |v| v.parse().expect("a number"));
    let during_batch = args.iter().any(|a| a == "--during-batch");
    let rate: Option<f64> = value("--rate").map(|v| v.parse().expect("--rate LOGINS_PER_SECOND"));
    // The timed logins of --during-batch end with the service's run at start: one row, closed loop.
    assert!(
        !during_batch || (claims.len() == 1 && rate.is_none()),
        "--during-batch takes one --claims count and no --rate"
    );
    std::fs::create_dir_all(&work).unwrap();

    let fake = FakeOidc::start(vec![SigningKey {
        kid: "load".into(),
        alg: jsonwebtoken::Algorithm::RS256,
        pem: key,
    }]);
    let base = match value("--base") {
        Some(path) => std::fs::read_to_string(path).expect("the base configuration"),
        None => "[daemon]\nstate = \"state/login.db\"\n".to_owned(),
    };
    // The login IdP and its mapped groups, added to a configuration.
    let mut login_part = format!(
        "\n[[idp]]\nname = \"login\"\nkind = \"oidc\"\n\n[idp.oidc]\nissuer = \"{}\"\nclient_id = \"load-app\"\nmax_token_age = \"1h\"\n",
        fake.issuer()
    );
    for i in 0..MAPPED {
        login_part.push_str(&format!(
            "\n[[group]]\nname = \"Login {i}\"\nstage = \"production\"\n\n[[mapping]]\nidp = \"login\"\nidp_group = \"g{i}\"\ngroup = \"Login {i}\"\nstage = \"production\"\n"
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(if rate.is_some() { 1024 } else { concurrency })
        .build()
        .unwrap();
    let now = chrono_now();
    let sign = |count: usize, iat: i64| -> Arc<Vec<String>> {
        let bodies = (0..SUBJECTS).map(|s| {
            // `count` short names per subject, a different slice of the mapped ones each.
            let groups: Vec<String> = (0..count)
                .map(|g| format!("g{}", (g + s) % (count.max(MAPPED) + 1)))
                .collect();
            let token = fake.sign(&json!({"iss": fake.issuer(), "aud": "load-app",
                "sub": format!("s{s}-{count}"), "iat": iat, "exp": iat + 3600,
                "email": format!("user{s}-{count}@load.example"), "groups": groups}));
            json!({"id_token": token}).to_string()
        });
        Arc::new(bodies.collect())
    };
    if during_batch {
        // First, without the batch IdP: every subject signs in once (untimed), into the same state.
        let state_line = base
            .lines()
            .find(|l| l.trim_start().starts_with("state"))
            .expect("the base configuration names its state");
        let quiet = format!("[daemon]\n{state_line}\n{login_part}");
        let service = Service::start(&idpsync, &work, "first.toml", &quiet);
        for &count in &claims {
            first_logins(
                &runtime,
                &client,
                &service,
                sign(count, now - 1),
                concurrency,
            );
        }
        drop(service);
        // Then with it: the run at start reads and applies the directory, and the timed logins
        // (fresh tokens, as users signing in again) go on until that run has applied.
        let service = Service::start(
            &idpsync,
            &work,
            "batch.toml",
            &format!("{base}{login_part}"),
        );
        for &count in &claims {
            let timed = Timed {
                count,
                logins: usize::MAX,
                concurrency,
                rate: None,
                during_batch: true,
            };
            timed.run(&runtime, &client, &service, sign(count, now));
        }
        return;
    }
    let service = Service::start(
        &idpsync,
        &work,
        "login.toml",
        &format!("{base}{login_part}"),
    );
    // The floor: the same client, concurrency and count of `GET /healthz`, on this machine now.
    {
        let cpu_before = (process_cpu(service.pid()), own_cpu());
        let started = Instant::now();
        let (latencies, errors) = runtime.block_on(load(
            &client,
            &service.url,
            None,
            logins,
            concurrency,
            None,
            None,
        ));
        let seconds = started.elapsed().as_secs_f64();
        let (p50, p99, max) = percentiles(latencies.clone());
        println!(
            "{}",
            json!({"floor": "GET /healthz", "claims": 0, "logins": latencies.len(),
                   "seconds": seconds, "per_second": latencies.len() as f64 / seconds,
                   "p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3, "max_ms": max * 1e3,
                   "errors": errors, "idpsync_cpu_s": process_cpu(service.pid()) - cpu_before.0,
                   "loader_cpu_s": own_cpu() - cpu_before.1, "body_bytes": 0,
                   "during_batch": false, "rate": null})
        );
    }
    for &count in &claims {
        // First logins (every subject's memberships added), untimed; then the timed logins
        // with fresh tokens, as users signing in again with groups that mostly did not change.
        first_logins(
            &runtime,
            &client,
            &service,
            sign(count, now - 1),
            concurrency,
        );
        let timed = Timed {
            count,
            logins,
            concurrency,
            rate,
            during_batch: false,
        };
        timed.run(&runtime, &client, &service, sign(count, now));
    }
}

/// Every subject's first login (its memberships added), untimed; then their writes are flushed
/// to disk, so that the kernel's writeback of them does not land in the timed logins after.
fn first_logins(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    service: &Service,
    bodies: Arc<Vec<String>>,
    concurrency: usize,
) {
    runtime.block_on(load(
        client,
        &service.url,
        Some(bodies),
        SUBJECTS,
        concurrency,
        None,
        None,
    ));
    let synced = std::process::Command::new("sync").status();
    assert!(
        synced.as_ref().is_ok_and(|s| s.success()),
        "sync: {synced:?}"
    );
}

/// One row of timed logins: `count` claims each, `logins` of them (or, `during_batch`, as many
/// as go until the service's run at start has applied), `concurrency` at a time or at `rate`.
struct Timed {
    count: usize,
    logins: usize,
    concurrency: usize,
    rate: Option<f64>,
    during_batch: bool,
}

impl Timed {
    /// Sends the logins of `bodies` to `service` and prints the row as a JSON line.
    fn run(
        &self,
        runtime: &tokio::runtime::Runtime,
        client: &reqwest::Client,
        service: &Service,
        bodies: Arc<Vec<String>>,
    ) {
        let body_bytes = bodies.iter().map(String::len).max().unwrap_or(0);
        let until = self.during_batch.then(|| service.reconciled.clone());
        let cpu_before = (process_cpu(service.pid()), own_cpu());
        let started = Instant::now();
        let (latencies, errors) = runtime.block_on(load(
            client,
            &service.url,
            Some(bodies),
            self.logins,
            self.concurrency,
            self.rate,
            until,
        ));
        let seconds = started.elapsed().as_secs_f64();
        let (idpsync_cpu, loader_cpu) = (
            process_cpu(service.pid()) - cpu_before.0,
            own_cpu() - cpu_before.1,
        );
        let (p50, p99, max) = percentiles(latencies.clone());
        println!(
            "{}",
            json!({"claims": self.count, "logins": latencies.len(), "seconds": seconds,
                   "per_second": latencies.len() as f64 / seconds, "p50_ms": p50 * 1e3,
                   "p99_ms": p99 * 1e3, "max_ms": max * 1e3, "errors": errors,
                   "idpsync_cpu_s": idpsync_cpu, "loader_cpu_s": loader_cpu, "body_bytes": body_bytes,
                   "during_batch": self.during_batch,
                   "batch_seconds": self.during_batch.then(|| service.since_start()).flatten(),
                   "rate": self.rate})
        );
    }
}

/// `idpsync run` on a configuration written to the work directory, ready for logins; stopped
/// when dropped.
struct Service {
    child: std::process::Child,
    url: String,
    /// Seconds from the start to the end of the first applied run (`Reconciled.`), once logged.
    reconciled: Arc<OnceLock<f64>>,
}

impl Service {
    fn start(
        idpsync: &std::path::Path,
        work: &std::path::Path,
        name: &str,
        config: &str,
    ) -> Service {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let daemon =
            format!("[daemon]\nlisten = \"127.0.0.1:{port}\"\nschedule = \"0 0 0 1 1 *\"\n");
        let config_path = work.join(name);
        std::fs::write(&config_path, config.replacen("[daemon]\n", &daemon, 1)).unwrap();
        let started = Instant::now();
        let mut child = Command::new(idpsync)
            .arg("--config")
            .arg(&config_path)
            .arg("run")
            .current_dir(work)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("idpsync run starts");
        let stderr = child.stderr.take().unwrap();
        let reconciled = Arc::new(OnceLock::new());
        std::thread::spawn({
            let reconciled = reconciled.clone();
            move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("Reconciled.") {
                        let _ = reconciled.set(started.elapsed().as_secs_f64());
                    }
                    if line.contains("ERROR") || line.contains("WARN") {
                        eprintln!("idpsync: {line}");
                    }
                }
            }
        });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ready = std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .and_then(|mut s| {
                    use std::io::{Read, Write};
                    s.write_all(b"GET /readyz HTTP/1.0\r\n\r\n").ok()?;
                    let mut answer = String::new();
                    s.read_to_string(&mut answer).ok()?;
                    Some(answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"))
                });
            if ready == Some(true) {
                break;
            }
            assert!(Instant::now() < deadline, "idpsync never became ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        Service {
            child,
            url,
            reconciled,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Seconds from the start to the end of the first applied run, once it has ended.
    fn since_start(&self) -> Option<f64> {
        self.reconciled.get().copied()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The 50th and 99th percentiles and the largest of `latencies`.
fn percentiles(mut latencies: Vec<f64>) -> (f64, f64, f64) {
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or(0.0)
    };
    (at(0.50), at(0.99), at(1.0))
}

/// Sends `logins` logins cycling through `bodies` (or as many `GET /healthz`, the floor, without
/// them), or fewer when `until` is set first: `concurrency` at a time, each as soon as
/// another answers, or with `rate`, the i-th at i / `rate` seconds whatever the answers (an open
/// loop: each latency counts from when its login was due, so a slow answer cannot hide the
/// logins queued behind it). The latencies of the 200s in seconds, and how many were not 200.
async fn load(
    client: &reqwest::Client,
    url: &str,
    bodies: Option<Arc<Vec<String>>>,
    logins: usize,
    concurrency: usize,
    rate: Option<f64>,
    until: Option<Arc<OnceLock<f64>>>,
) -> (Vec<f64>, usize) {
    use futures_util::StreamExt;
    let start = tokio::time::Instant::now();
    let in_flight = if rate.is_some() { 4096 } else { concurrency };
    let results: Vec<Result<f64, u16>> = futures_util::stream::iter(0..logins)
        .take_while(|_| {
            let go_on = until.as_ref().is_none_or(|done| done.get().is_none());
            std::future::ready(go_on)
        })
        .map(|i| {
            let (client, bodies, url) = (client.clone(), bodies.clone(), url.to_owned());
            async move {
                let started = match rate {
                    Some(rate) => {
                        let due = start + Duration::from_secs_f64(i as f64 / rate);
                        tokio::time::sleep_until(due).await;
                        due.into_std()
                    }
                    None => Instant::now(),
                };
                let request = match &bodies {
                    Some(bodies) => client
                        .post(format!("{url}/v1/login"))
                        .header("content-type", "application/json")
                        .body(bodies[i % bodies.len()].clone()),
                    None => client.get(format!("{url}/healthz")),
                };
                let answer = request.send().await;
                match answer {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        Ok(started.elapsed().as_secs_f64())
                    }
                    Ok(r) => Err(r.status().as_u16()),
                    Err(_) => Err(0),
                }
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let errors = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(status)) = results.iter().find(|r| r.is_err()) {
        eprintln!("login-load: first failure status {status}");
    }
    (results.into_iter().filter_map(Result::ok).collect(), errors)
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// CPU seconds (user + system) of process `pid` so far, from `/proc/PID/stat`.
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command: state is 0, utime 11, stime 12; 100 ticks a second here.
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's CPU seconds so far.
fn own_cpu() -> f64 {
    process_cpu(std::process::id())
}
