//! The SQLite state file: the embedded group store, per-IdP baselines, audit log and run history.
//!
//! This module owns the connection and its settings (WAL, `synchronous=NORMAL`, `busy_timeout`),
//! the schema and its migrations, and every query. It decides nothing about *what* changes — the
//! plan comes from `reconcile` — it only applies changes as short, conditional transactions
//! (add a provenance if absent, remove it if present) so concurrent writers never lose or double one.

mod apply;
mod bulk;
mod direct;
mod drops;
mod edit;
mod groups;
mod history;
mod idp_names;
mod load;
pub mod lock;
mod login;
mod pause;
mod remote;
mod remote_cache;
mod run_list;
mod runs;
mod saved;
mod schema;
mod turns;
mod user_rows;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use apply::{
    Applied, Batch, ChangeOp, DropReason, Dropped, MembershipChange, ReadRecord, RunPart,
};
pub use direct::DirectEdit;
pub use edit::LostRoles;
pub use groups::{GroupMember, GroupView, UserMembership};
pub use history::{AuditFilter, AuditRecord, IdpRun, JournalEntry, StoredRead};
pub use idp_names::IdpGroupNames;
pub use load::{FormerName, Loaded, LoadedGroup};
pub use login::{LoginApplied, LoginChange, LoginDone, LoginRequest, LoginState};
pub use remote::{CachedGroup, OpenEntry, Owner, Settled};
pub use run_list::{RunIdp, RunPage, RunSummary};
pub use runs::{NotApplied, PendingRefusal, Refusal, RunRecord};
pub use saved::{NamedChange, PlanPart, stale as stale_plan};

/// How long a writer waits for another writer's transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// The provenance id of `direct` in the `sources` table.
pub const DIRECT_SOURCE: i64 = 0;

/// Errors of the state file; all of them fail the command (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite refused an operation.
    #[error("state file {path}: {source}")]
    Sqlite {
        /// The state file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The file was written by a newer idpsync.
    #[error(
        "state file {path} has schema version {found}; this idpsync understands up to {supported}. Upgrade idpsync (or restore a backup made by this version)"
    )]
    TooNew {
        /// The state file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The file was written by an older idpsync and could not be upgraded here.
    #[error(
        "state file {path} has schema version {found}; this idpsync reads version {supported} and could not upgrade it ({reason}). Run `idpsync reconcile` once as the state's owner"
    )]
    NeedsUpgrade {
        /// The state file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The version this build reads.
        supported: i64,
        /// Why the upgrade failed.
        reason: String,
    },
    /// The state file or its folder could not be created.
    #[error("cannot create {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A request that does not fit the store (unknown group, duplicate name): exit 2.
    #[error("{0}")]
    Invalid(String),
    /// A request the store refuses to carry out as asked (a stale plan, a group with members): exit 3.
    #[error("{0}")]
    Refused(String),
}

/// An open state file.
pub struct State {
    conn: Connection,
    path: PathBuf,
    /// What logins through this connection keep between them (see [`login::Catalogs`]).
    login_catalogs: login::Catalogs,
    /// The names behind the ids of users' membership rows, kept by this connection.
    row_names: user_rows::RowNames,
}

impl State {
    /// Opens `path` for writing, creating the file and missing parent folders (mode 0700).
    pub fn open(path: &Path) -> Result<State, StateError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            create_private_dirs(parent).map_err(|source| StateError::Folder {
                path: parent.to_owned(),
                source,
            })?;
        }
        if !path.exists() {
            // The state holds user keys: readable by its owner only.
            use std::os::unix::fs::OpenOptionsExt;
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
            match created {
                Ok(_) => {}
                // Another process created it first: fine.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(StateError::Folder {
                        path: path.to_owned(),
                        source,
                    });
                }
            }
        }
        let conn = Connection::open(path).map_err(|e| sqlite(path, e))?;
        let mut state = State {
            conn,
            path: path.to_owned(),
            login_catalogs: login::Catalogs::default(),
            row_names: user_rows::RowNames::default(),
        };
        state.configure().map_err(|e| sqlite(path, e))?;
        schema::migrate(&mut state.conn, path)?;
        Ok(state)
    }

    /// Opens `path` for logins: as [`State::open`], but a write that finds the file locked
    /// tries again every millisecond (up to the same timeout) instead of in SQLite's steps of up
    /// to 100 ms, so a login behind a short batch transaction goes on as soon as it ends.
    pub fn open_for_logins(path: &Path) -> Result<State, StateError> {
        let mut state = State::open(path)?;
        state
            .conn
            .busy_handler(Some(retry_every_millisecond))
            .map_err(|e| state.err(e))?;
        Ok(state)
    }

    /// Opens `path` read-only; a missing file reads as an empty store and nothing is created.
    pub fn open_read_only(path: &Path) -> Result<State, StateError> {
        if !path.exists() {
            let mut conn = Connection::open_in_memory().map_err(|e| sqlite(path, e))?;
            schema::migrate(&mut conn, path)?;
            return Ok(State {
                conn,
                path: path.to_owned(),
                login_catalogs: login::Catalogs::default(),
                row_names: user_rows::RowNames::default(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| sqlite(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sqlite(path, e))?;
        let found = schema::check_readable(&conn, path)?;
        if found < schema::CURRENT_VERSION {
            // A file of an older idpsync (the old service may still be running): upgrade it once,
            // in its own short transactions, then read it as usual.
            drop(conn);
            State::open(path).map_err(|e| StateError::NeedsUpgrade {
                path: path.to_owned(),
                found,
                supported: schema::CURRENT_VERSION,
                reason: e.to_string(),
            })?;
            return State::open_read_only(path);
        }
        Ok(State {
            conn,
            path: path.to_owned(),
            login_catalogs: login::Catalogs::default(),
            row_names: user_rows::RowNames::default(),
        })
    }

    fn configure(&mut self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        // 16 MiB of page cache (the default is 2 MiB): a million-membership apply touches its
        // indexes all over. Measured: 64 MiB was no faster and cost its size in peak memory.
        self.conn.pragma_update(None, "cache_size", -16_384)?;
        // A login alone runs some thirty distinct statements; rusqlite keeps 16 by default, and
        // one evicted is prepared again at every use.
        self.conn
            .set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        self.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        Ok(())
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`): a conflicting writer waits at the start
    /// (up to the busy timeout), never halfway through; dropping it uncommitted rolls it back.
    pub(super) fn write_tx(&mut self) -> Result<rusqlite::Transaction<'_>, StateError> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| sqlite(&path, e))
    }

    fn err(&self, e: rusqlite::Error) -> StateError {
        sqlite(&self.path, e)
    }
}

/// The busy handler of [`State::open_for_logins`].
fn retry_every_millisecond(attempt: i32) -> bool {
    std::thread::sleep(Duration::from_millis(1));
    u128::try_from(attempt).is_ok_and(|n| n < BUSY_TIMEOUT.as_millis())
}

fn sqlite(path: &Path, source: rusqlite::Error) -> StateError {
    StateError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

fn create_private_dirs(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Counts every committed change to memberships, roles or groups, so a saved plan can tell it is stale.
pub(crate) fn bump_generation(tx: &rusqlite::Connection) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'generation'",
        [],
    )?;
    Ok(())
}

/// The current generation (see [`bump_generation`]).
pub(crate) fn generation_in(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = 'generation'")?
        .query_row([], |r| r.get(0))
}

/// The `catalog` counter: it moves whenever a group, a former name or an IdP group name changes
/// (triggers keep it, whoever writes), and not with memberships.
pub(crate) fn catalog_in(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = 'catalog'")?
        .query_row([], |r| r.get(0))
}

impl State {
    /// The state generation: it changes whenever memberships, roles or groups change.
    pub fn generation(&self) -> Result<i64, StateError> {
        generation_in(&self.conn).map_err(|e| self.err(e))
    }
}

/// The id of `value` in an interning table (`actors`, `causes`), created on first use.
pub(crate) fn intern(
    tx: &rusqlite::Connection,
    table: &str,
    column: &str,
    value: &str,
) -> rusqlite::Result<i64> {
    tx.prepare_cached(&format!(
        "INSERT OR IGNORE INTO {table} ({column}) VALUES (?1)"
    ))?
    .execute([value])?;
    tx.prepare_cached(&format!("SELECT id FROM {table} WHERE {column} = ?1"))?
        .query_row([value], |r| r.get(0))
}

/// Seconds since the Unix epoch, as stored in the state file.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Milliseconds since the Unix epoch (the remote user cache's "checked at").
pub fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// RFC 3339 UTC text for a stored Unix time.
pub fn rfc3339(unix: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(all(test, feature = "failpoints"))]
mod login_tests;
#[cfg(test)]
mod pause_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod upgrade_tests;
