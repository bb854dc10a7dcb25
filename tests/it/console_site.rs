//! The service the console's tests drive: [`CONFIG`] with the admin API and console on free
//! loopback ports and an admin token file, a mapping to a group not created yet, and helpers that
//! read the store as the CLI shows it.

use std::time::Duration;

use idpsync::service::Service;
use serde_json::{Value, json};

use crate::common::{CONFIG, Env, assert_loopback, corp_export};

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
