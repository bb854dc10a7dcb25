//! The service the console's tests drive: [`CONFIG`] with the admin API and console on free
//! loopback ports and an admin token file, a mapping to a group not created yet, and helpers that
//! read the store as the CLI shows it; and [`Person`], a person at the console over plain HTTP.

use std::time::Duration;

use idpsync::service::Service;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::common::{CONFIG, Env, assert_loopback, corp_export};

/// The console's Content-Security-Policy, exactly.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The admin token of the configurations here.
pub(crate) const ADMIN_TOKEN: &str = "admin-token-3f9c2a71e8";
/// Once a year: only the run at start happens on its own.
const YEARLY: &str = "0 0 0 1 1 *";

/// [`CONFIG`] served with the admin API and console on free loopback ports, `rest` appended;
/// the export of [`corp_export`] plus an IdP group "Campaign Crew" (ana and cid) that a mapping
/// points at the group "Campaigns" of production, which does not exist yet.
pub(crate) fn console_env(rest: &str) -> Env {
    let env = Env::empty();
    let daemon = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         admin_token_file = \"admin.token\"\nschedule = \"{YEARLY}\"\n"
    );
    let mapping = "\n[[mapping]]\nidp = \"corp\"\nidp_group = \"g-camp\"\ngroup = \"Campaigns\"\n\
                   stage = \"production\"\n";
    env.write_config(&format!(
        "{}{mapping}{rest}",
        CONFIG.replacen("[daemon]\n", &daemon, 1)
    ));
    std::fs::write(env.path("admin.token"), format!("{ADMIN_TOKEN}\n")).unwrap();
    env.write_export("corp.json", &export());
    env
}

/// The export of [`console_env`].
pub(crate) fn export() -> Value {
    let mut export = corp_export();
    export["groups"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "g-camp", "name": "Campaign Crew", "members": ["u1", "u3"]}));
    export
}

/// The service of an [`Env`], its first run finished, and the console's address.
pub(crate) struct Site {
    pub(crate) env: Env,
    pub(crate) service: Service,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
}

impl Site {
    /// Starts the service of `env` and waits for the run it starts with.
    pub(crate) async fn start(env: Env) -> Site {
        let service = crate::service::start(&env).await;
        let addr = service
            .admin_addr()
            .expect("admin_token_file turns the console on");
        let base = format!("http://{addr}");
        assert_loopback(&base);
        crate::service::eventually("the run at start", || {
            let finished = finished_runs(&env);
            if finished >= 1 {
                Ok(())
            } else {
                Err(format!("{finished} runs finished"))
            }
        });
        Site { env, service, base }
    }

    /// Stops the service.
    pub(crate) async fn stop(self) {
        crate::service::stop(self.service).await;
    }
}

/// How many runs the state records as finished.
pub(crate) fn finished_runs(env: &Env) -> i64 {
    if !env.state_path().exists() {
        return 0;
    }
    let conn = rusqlite::Connection::open_with_flags(
        env.state_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row(
        "SELECT count(*) FROM runs WHERE finished_at IS NOT NULL",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

/// `groups show --output json` through the binary; `None` when there is no such group.
pub(crate) fn group_in_store(env: &Env, name: &str, stage: &str) -> Option<Value> {
    let out = env.run(&["groups", "show", name, "--stage", stage, "--output", "json"]);
    match out.code {
        0 => Some(out.json()),
        2 if out.stderr.contains("no group") => None,
        _ => panic!("groups show failed: {out:?}"),
    }
}

/// One answer of the console.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The CSRF token of the page's forms.
    pub(crate) fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

/// A person at the console: plain HTTP, redirects not followed, one session cookie.
pub(crate) struct Person {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) cookie: Option<String>,
}

impl Person {
    pub(crate) fn at(site: &Site) -> Person {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        Person {
            http,
            base: site.base.clone(),
            cookie: None,
        }
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.expect("the console answers");
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        Answer {
            status,
            headers,
            body: response.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub(crate) async fn post<F: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        fields: &F,
    ) -> Answer {
        self.send(self.http.post(format!("{}{path}", self.base)).form(fields))
            .await
    }

    /// Posts `body` as a form, as it is.
    pub(crate) async fn post_raw(&self, path: &str, body: String) -> Answer {
        let request = self.http.post(format!("{}{path}", self.base));
        let form = "application/x-www-form-urlencoded";
        self.send(request.header("content-type", form).body(body))
            .await
    }

    /// Signs in with the admin token; answers the session's CSRF token.
    pub(crate) async fn sign_in(&mut self) -> String {
        let answer = self.post("/sign-in", &[("token", ADMIN_TOKEN)]).await;
        assert_eq!(answer.status, 303, "{answer:?}");
        let cookie = answer.header("set-cookie");
        self.cookie = Some(cookie.split(';').next().unwrap().to_owned());
        self.get("/groups").await.csrf()
    }
}

/// Asserts the console's security headers on `answer` (of `path`).
pub(crate) fn assert_security_headers(path: &str, answer: &Answer) {
    assert_eq!(answer.header("content-security-policy"), CSP, "{path}");
    assert_eq!(answer.header("x-content-type-options"), "nosniff", "{path}");
    assert_eq!(answer.header("referrer-policy"), "no-referrer", "{path}");
    assert_eq!(answer.header("x-frame-options"), "DENY", "{path}");
}

/// The text of `body` from `start` to the next `end`.
pub(crate) fn between<'b>(body: &'b str, start: &str, end: &str) -> &'b str {
    let from = body
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} in {body}"));
    let rest = &body[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}
