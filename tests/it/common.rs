//! Helpers shared by the integration tests: a temporary folder holding a configuration, a
//! directory export and the state file; running the real binary with a clean environment; and
//! snapshots of the state file and of the folder so a test can assert that nothing changed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_idpsync");

/// The fields of the reconcile document (SPEC §3), exactly.
pub const REPORT_FIELDS: &[&str] = &[
    "run_id",
    "dry_run",
    "adds",
    "removes",
    "refused",
    "inactive_mappings",
    "failed_idps",
    "unresolved_users",
    "summary",
];

/// The fields of the reconcile document's summary, exactly.
pub const SUMMARY_FIELDS: &[&str] = &["adds", "removes", "skipped_users", "dropped"];

/// A small valid configuration: one file IdP `corp`, a role catalogue, two declared groups, two mappings.
pub const CONFIG: &str = r#"[daemon]
state = "state/idpsync.db"
run_wait = 1

[[idp]]
name = "corp"
kind = "file"
path = "corp.json"

[[app]]
name = "Dash"
roles = ["Viewer", "Editor"]

[[group]]
name = "Marketing"
stage = "production"
description = "Marketing team"
roles = ["Dash/Viewer"]

[[group]]
name = "Testers"
stage = "qa"
roles = ["Dash/Editor"]

[[mapping]]
idp = "corp"
idp_group = "Marketing Team"
group = "Marketing"
stage = "production"

[[mapping]]
idp = "corp"
idp_group = "g-eng"
group = "Testers"
stage = "qa"
"#;

/// The export `corp` reads with [`CONFIG`]: ana and ben in marketing, ben and cid in engineering.
pub fn corp_export() -> Value {
    json!({
        "users": [
            {"id": "u1", "email": "ana@example.com", "name": "Ana"},
            {"id": "u2", "email": "Ben@Example.com", "name": "Ben"},
            {"id": "u3", "email": "cid@example.com", "name": "Cid"},
            {"id": "u4", "name": "No Mail"}
        ],
        "groups": [
            {"id": "g-mkt", "name": "Marketing Team", "members": ["u1", "u2", "u4"]},
            {"id": "g-eng", "name": "Engineering", "members": ["u2", "u3"]}
        ]
    })
}

/// A test folder: the configuration `idpsync.toml`, its exports and its state (`state/idpsync.db`).
pub struct Env {
    pub dir: tempfile::TempDir,
    /// The configuration file's name inside `dir`.
    pub config_name: String,
    /// Environment variables given to every run.
    pub vars: Vec<(String, String)>,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Standard output parsed as exactly one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit status, showing both streams when it differs.
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Env {
    /// An empty folder.
    pub fn empty() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            config_name: "idpsync.toml".into(),
            vars: Vec::new(),
        }
    }

    /// A folder with [`CONFIG`] and [`corp_export`].
    pub fn new() -> Env {
        let env = Env::empty();
        env.write_config(CONFIG);
        env.write_export("corp.json", &corp_export());
        env
    }

    /// A folder with the demo configuration and directory of `config/`, the state moved by an
    /// environment override to `state/idpsync.db`.
    pub fn demo() -> Env {
        let mut env = Env::empty();
        env.config_name = "demo.toml".into();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        for name in ["demo.toml", "demo-directory.json"] {
            std::fs::copy(source.join(name), env.path(name)).unwrap();
        }
        env.vars
            .push(("IDPSYNC__DAEMON__STATE".into(), "state/idpsync.db".into()));
        env
    }

    /// `dir/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The configuration file (absolute).
    pub fn config_path(&self) -> PathBuf {
        self.path(&self.config_name)
    }

    /// The state file (absolute).
    pub fn state_path(&self) -> PathBuf {
        self.path("state/idpsync.db")
    }

    /// Writes the configuration file, after asserting every URL in it is a loopback address.
    pub fn write_config(&self, text: &str) {
        assert_loopback(text);
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// Writes a configuration whose URLs may name other hosts because nothing ever connects to
    /// them (`check` without `--connect` of the shipped example): `why` says so.
    pub fn write_config_never_connected(&self, text: &str, why: &str) {
        assert!(!why.is_empty());
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// Writes a directory export.
    pub fn write_export(&self, name: &str, doc: &Value) {
        std::fs::write(self.path(name), serde_json::to_string_pretty(doc).unwrap()).unwrap();
    }

    /// The binary with `--config <absolute config path>`, run from `dir`, with a clean environment.
    pub fn command(&self) -> Command {
        let mut command = clean_command();
        command
            .current_dir(self.dir.path())
            .arg("--config")
            .arg(self.config_path());
        for (k, v) in &self.vars {
            assert_loopback(v);
            command.env(k, v);
        }
        command
    }

    /// Runs the binary with `args`.
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.run_with(args, &[])
    }

    /// Runs the binary with `args` and extra environment variables.
    pub fn run_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Outcome {
        let mut command = self.command();
        command.args(args);
        for (k, v) in vars {
            assert_loopback(v);
            command.env(k, v);
        }
        output(command)
    }

    /// `reconcile --output json` plus `args`: the exit status and the document.
    pub fn reconcile(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["reconcile", "--output", "json"];
        all.extend_from_slice(args);
        let outcome = self.run(&all);
        (outcome.code, outcome.json())
    }

    /// The state file's contents (see [`StateDump`]).
    pub fn state(&self) -> StateDump {
        StateDump::of(&self.state_path())
    }

    /// Every path under the folder.
    pub fn tree(&self) -> BTreeSet<PathBuf> {
        tree(self.dir.path())
    }

    /// A copy of the folder (configuration, exports and state) in a new temporary folder.
    pub fn copy(&self) -> Env {
        fn copy_dir(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                let target = to.join(entry.file_name());
                if entry.file_type().unwrap().is_dir() {
                    copy_dir(&entry.path(), &target);
                } else {
                    std::fs::copy(entry.path(), &target).unwrap();
                }
            }
        }
        let copy = Env {
            dir: tempfile::tempdir().unwrap(),
            config_name: self.config_name.clone(),
            vars: self.vars.clone(),
        };
        copy_dir(self.dir.path(), copy.dir.path());
        copy
    }
}

/// The binary with an environment holding only `PATH`, so no `IDPSYNC_*`, `STATE_DIRECTORY` or
/// `CREDENTIALS_DIRECTORY` of the host leaks in.
pub fn clean_command() -> Command {
    let mut command = Command::new(BIN);
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
}

/// Runs a command to completion.
pub fn output(mut command: Command) -> Outcome {
    let out = command.output().expect("the binary runs");
    Outcome {
        code: out.status.code().expect("the binary exits normally"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Every file and folder under `root`, relative to it.
pub fn tree(root: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.insert(path.strip_prefix(root).unwrap().to_owned());
            if path.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// Everything the state file holds: its bytes and every row of every table (sorted), plus the
/// schema version. Two equal dumps mean the state did not change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDump {
    /// `None` when the file does not exist.
    pub bytes: Option<Vec<u8>>,
    /// Per table (by name): its rows, each rendered as text, sorted.
    pub tables: Vec<(String, Vec<String>)>,
    pub user_version: i64,
}

impl StateDump {
    /// Dumps `path` (opened read-only; a missing file gives an empty dump).
    pub fn of(path: &Path) -> StateDump {
        if !path.exists() {
            return StateDump {
                bytes: None,
                tables: Vec::new(),
                user_version: 0,
            };
        }
        let bytes = std::fs::read(path).unwrap();
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .unwrap();
        let user_version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        let names: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut tables = Vec::new();
        for name in names {
            tables.push((name.clone(), table_rows(&conn, &name)));
        }
        StateDump {
            bytes: Some(bytes),
            tables,
            user_version,
        }
    }

    /// The rows of one table.
    pub fn table(&self, name: &str) -> &[String] {
        self.tables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, rows)| rows.as_slice())
            .unwrap_or_else(|| panic!("no table {name} in the state"))
    }
}

fn table_rows(conn: &rusqlite::Connection, table: &str) -> Vec<String> {
    let mut statement = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
    let columns = statement.column_count();
    let mut rows: Vec<String> = statement
        .query_map([], |row| {
            let mut cells = Vec::with_capacity(columns);
            for i in 0..columns {
                let cell = match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                    rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                    rusqlite::types::ValueRef::Real(v) => v.to_string(),
                    rusqlite::types::ValueRef::Text(v) => {
                        format!("{:?}", String::from_utf8_lossy(v))
                    }
                    rusqlite::types::ValueRef::Blob(v) => format!("blob{v:?}"),
                };
                cells.push(cell);
            }
            Ok(cells.join("|"))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    rows
}

/// The 1-based line of the first line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} is not in the text"))
        + 1
}

/// The sorted keys of a JSON object.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// Sorted owned strings, for comparing with [`keys`].
pub fn sorted(list: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    out.sort();
    out
}

/// A change of a reconcile document as `stage/group user idp idp_group`.
pub fn change_line(c: &Value) -> String {
    format!(
        "{}/{} {} {} {}",
        c["stage"].as_str().unwrap(),
        c["group"].as_str().unwrap(),
        c["user"].as_str().unwrap(),
        c["idp"].as_str().unwrap(),
        c["idp_group"].as_str().unwrap()
    )
}

/// The changes of a reconcile document's `adds` or `removes` as lines.
pub fn changes(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(change_line)
        .collect()
}

/// SPEC §5: tests talk only to this machine. Every URL in `text` (`scheme://host…`) and every
/// `listen`/`admin_listen` address must be a loopback address (127.0.0.0/8 or ::1); panics naming
/// the first that is not. Every configuration and environment value the tests hand the binary
/// goes through here.
pub fn assert_loopback(text: &str) {
    use std::net::{IpAddr, SocketAddr};
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let after = &rest[at + 3..];
        let end = after
            .find(|c: char| c == '/' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => host.split(':').next().unwrap_or(host),
        };
        // Template placeholders (`{url}`) are checked when filled in.
        if !host.starts_with('{') {
            let ip: IpAddr = host.parse().unwrap_or_else(|_| {
                panic!("a test configures {authority:?}, not a loopback address (SPEC §5)")
            });
            assert!(
                ip.is_loopback(),
                "a test configures {authority:?}, not a loopback address (SPEC §5)"
            );
        }
        rest = &after[end..];
    }
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if matches!(key.trim(), "listen" | "admin_listen") {
            let value = value.trim().trim_matches('"');
            if let Ok(addr) = value.parse::<SocketAddr>() {
                assert!(
                    addr.ip().is_loopback(),
                    "a test listens on {addr}, not loopback (SPEC §5)"
                );
            }
        }
    }
}

#[test]
fn the_loopback_check_refuses_other_hosts() {
    assert_loopback(
        "url = \"ldap://127.0.0.1:389\"\nissuer = \"https://[::1]:8443/x\"\nlisten = \"127.0.0.1:0\"",
    );
    for bad in [
        "url = \"ldaps://ldap.example.com:636\"",
        "graph_url = \"https://10.0.0.1\"",
        "listen = \"0.0.0.0:8410\"",
    ] {
        assert!(
            std::panic::catch_unwind(|| assert_loopback(bad)).is_err(),
            "{bad}"
        );
    }
}
