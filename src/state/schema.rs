//! The schema of the state file and its migrations, versioned by SQLite's `user_version`.
//!
//! Each migration is one batch of SQL run in one transaction; a file newer than this build is
//! refused rather than guessed at. Membership, audit and baseline rows hold interned integer ids so
//! a million memberships stay small and fast to merge.

use std::path::Path;

use rusqlite::Connection;

use super::{StateError, sqlite};

/// Migrations in order; `MIGRATIONS[i]` brings the file from version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
-- The IdP's immutable id, stored beside the key, per IdP.
CREATE TABLE user_ids (
    source      INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    external_id TEXT NOT NULL,
    PRIMARY KEY (source, user_id)
) WITHOUT ROWID;
-- Provenances, interned: 0 is `direct`, the others `idp:<name>`.
CREATE TABLE sources (
    id          INTEGER PRIMARY KEY,
    provenance  TEXT NOT NULL UNIQUE
);
INSERT INTO sources (id, provenance) VALUES (0, 'direct');
-- AUTOINCREMENT: a deleted group's id is never reused, so its audit rows never point at another group.
CREATE TABLE groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    stage       TEXT NOT NULL,
    name        TEXT NOT NULL,
    norm        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    UNIQUE (stage, norm)
);
CREATE TABLE group_roles (
    group_id    INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    PRIMARY KEY (group_id, role)
) WITHOUT ROWID;
-- IdP group values that caused memberships, interned (memberships and audit rows hold the id).
CREATE TABLE causes (
    id          INTEGER PRIMARY KEY,
    idp_group   TEXT NOT NULL UNIQUE
);
CREATE TABLE memberships (
    group_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    source      INTEGER NOT NULL,
    cause       INTEGER,
    PRIMARY KEY (group_id, user_id, source)
) WITHOUT ROWID;
CREATE INDEX memberships_by_source ON memberships (source, group_id, user_id);
CREATE INDEX memberships_by_user ON memberships (user_id);
-- Per IdP, per mapped IdP group: what the last *applied* read saw.
CREATE TABLE baselines (
    source      INTEGER NOT NULL,
    idp_group   TEXT NOT NULL,
    members     INTEGER NOT NULL,
    hash        INTEGER NOT NULL,
    PRIMARY KEY (source, idp_group)
) WITHOUT ROWID;
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    actor       TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT NOT NULL,
    adds        INTEGER NOT NULL DEFAULT 0,
    removes     INTEGER NOT NULL DEFAULT 0,
    report      TEXT
);
CREATE TABLE run_idps (
    run_id      TEXT NOT NULL,
    idp         TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    adds        INTEGER NOT NULL,
    removes     INTEGER NOT NULL,
    detail      TEXT,
    PRIMARY KEY (run_id, idp)
) WITHOUT ROWID;
-- The audit log keeps integers only; the `audit` view below gives names and takes inserts by name.
CREATE TABLE actors (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE
);
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       INTEGER NOT NULL,
    op          TEXT NOT NULL,
    group_id    INTEGER,
    user_id     INTEGER,
    source      INTEGER,
    cause       INTEGER,
    detail      TEXT
);
CREATE VIEW audit AS
    SELECT l.id, l.at, a.name AS actor, l.op, l.group_id, l.user_id, l.source, c.idp_group AS cause, l.detail
    FROM audit_log l JOIN actors a ON a.id = l.actor LEFT JOIN causes c ON c.id = l.cause;
CREATE TRIGGER audit_insert INSTEAD OF INSERT ON audit BEGIN
    INSERT OR IGNORE INTO actors (name) VALUES (NEW.actor);
    INSERT OR IGNORE INTO causes (idp_group) SELECT NEW.cause WHERE NEW.cause IS NOT NULL;
    INSERT INTO audit_log (at, actor, op, group_id, user_id, source, cause, detail)
    VALUES (NEW.at, (SELECT id FROM actors WHERE name = NEW.actor), NEW.op, NEW.group_id, NEW.user_id, NEW.source,
            (SELECT id FROM causes WHERE idp_group = NEW.cause), NEW.detail);
END;
"#,
    r#"
-- Counts committed changes to memberships, roles and groups: saved plans compare it.
CREATE TABLE meta (
    key         TEXT PRIMARY KEY,
    value       INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('generation', 0);
-- Deleted groups keep their name for the audit log.
CREATE TABLE deleted_groups (
    id          INTEGER PRIMARY KEY,
    stage       TEXT NOT NULL,
    name        TEXT NOT NULL,
    norm        TEXT NOT NULL,
    deleted_at  INTEGER NOT NULL
);
-- A refusal's guard and the command that allows it, for `status`.
ALTER TABLE run_idps ADD COLUMN guard TEXT;
ALTER TABLE run_idps ADD COLUMN allow TEXT;
-- Changes a remote store rejected permanently (SPEC §1 invariant 9). The embedded store applies in one
-- transaction and never leaves entries here.
CREATE TABLE journal (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    op          TEXT NOT NULL,
    group_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    source      INTEGER NOT NULL,
    cause       TEXT,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX journal_by_status ON journal (status);
"#,
    r#"
-- Runs read an IdP's memberships with one sequential scan; this index only slowed every write.
DROP INDEX IF EXISTS memberships_by_source;
-- Per IdP, what its last applied read was: when the IdP, the configuration and the store are all
-- unchanged since (same fingerprint, same config hash, same state generation), a run may skip it.
CREATE TABLE idp_reads (
    source        INTEGER PRIMARY KEY,
    fingerprint   TEXT NOT NULL,
    config        TEXT NOT NULL,
    generation    INTEGER NOT NULL,
    inactive      TEXT NOT NULL,
    skipped_users INTEGER NOT NULL
);
"#,
    r#"
-- Memberships name real groups and users (SPEC §1 invariant 10): a change whose group is gone is
-- dropped at commit, never written. Rows a run wrote into a group deleted during its read (before
-- the checked apply) are removed here, and audited, so the audit log agrees with the store.
INSERT INTO audit (at, actor, op, group_id, user_id, source, cause, detail)
    SELECT CAST(strftime('%s', 'now') AS INTEGER), 'upgrade', 'remove', m.group_id, m.user_id, m.source,
           (SELECT idp_group FROM causes WHERE id = m.cause),
           'the group was deleted while a run planned this membership; removed by the schema upgrade'
    FROM memberships m
    WHERE m.group_id NOT IN (SELECT id FROM groups) AND m.user_id IN (SELECT id FROM users);
CREATE TABLE memberships_checked (
    group_id    INTEGER NOT NULL REFERENCES groups(id),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    source      INTEGER NOT NULL,
    cause       INTEGER,
    PRIMARY KEY (group_id, user_id, source)
) WITHOUT ROWID;
INSERT INTO memberships_checked (group_id, user_id, source, cause)
    SELECT group_id, user_id, source, cause FROM memberships
    WHERE group_id IN (SELECT id FROM groups) AND user_id IN (SELECT id FROM users)
      AND source IN (SELECT id FROM sources);
DROP TABLE memberships;
ALTER TABLE memberships_checked RENAME TO memberships;
CREATE INDEX memberships_by_user ON memberships (user_id);
UPDATE meta SET value = value + 1 WHERE key = 'generation';
-- Former names of renamed groups: a mapping that names one follows the group (SPEC model table).
-- A new group, or a rename, that takes a former name takes it over (the row goes).
CREATE TABLE former_names (
    stage       TEXT NOT NULL,
    norm        TEXT NOT NULL,
    name        TEXT NOT NULL,
    group_id    INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    renamed_at  INTEGER NOT NULL,
    PRIMARY KEY (stage, norm)
) WITHOUT ROWID;
-- Per IdP, its unresolved refusal: kept until a run of the IdP is applied (or finds it unchanged),
-- whatever the runs in between did (SPEC §1 invariant 7).
CREATE TABLE refusals (
    idp         TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL,
    guard       TEXT NOT NULL,
    detail      TEXT NOT NULL,
    allow       TEXT NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO refusals (idp, run_id, guard, detail, allow)
    SELECT i.idp, i.run_id, i.guard, coalesce(i.detail, ''), coalesce(i.allow, '')
    FROM run_idps i JOIN runs r ON r.id = i.run_id
    WHERE i.outcome = 'refused' AND r.rowid = (
        SELECT max(r2.rowid) FROM run_idps i2 JOIN runs r2 ON r2.id = i2.run_id
        WHERE i2.idp = i.idp AND i2.outcome IN ('applied', 'refused', 'unchanged'));
-- The IdPs whose run locks a run holds, so a later run holding one of them knows it died.
ALTER TABLE runs ADD COLUMN idps TEXT NOT NULL DEFAULT '';
ALTER TABLE run_idps ADD COLUMN error_kind TEXT;
ALTER TABLE run_idps ADD COLUMN skipped_users INTEGER;
ALTER TABLE run_idps ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;
-- One word per outcome everywhere.
UPDATE runs SET outcome = 'applied' WHERE outcome = 'ok';
"#,
    r#"
-- Per IdP and user, the issue time of the last login token applied: an older token changes nothing.
CREATE TABLE login_tokens (
    source      INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    issued_at   INTEGER NOT NULL,
    PRIMARY KEY (source, user_id)
) WITHOUT ROWID;
-- Per IdP, the id and name of each mapped IdP group in its last applied read: a login's groups
-- claim (Entra sends ids) is matched to mappings that name groups through it.
CREATE TABLE idp_group_names (
    source      INTEGER NOT NULL,
    idp_group   TEXT NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (source, idp_group)
) WITHOUT ROWID;
"#,
    r#"
-- Counts every change to what logins plan against (groups, their former names, the IdPs' group
-- names), whoever writes it: logins keep those between them until it moves.
INSERT INTO meta (key, value) VALUES ('catalog', 0);
CREATE TRIGGER catalog_groups_insert AFTER INSERT ON groups
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
CREATE TRIGGER catalog_groups_update AFTER UPDATE ON groups
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
CREATE TRIGGER catalog_groups_delete AFTER DELETE ON groups
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
CREATE TRIGGER catalog_former_names_insert AFTER INSERT ON former_names
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
CREATE TRIGGER catalog_former_names_update AFTER UPDATE ON former_names
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
CREATE TRIGGER catalog_former_names_delete AFTER DELETE ON former_names
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
CREATE TRIGGER catalog_idp_group_names_insert AFTER INSERT ON idp_group_names
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
CREATE TRIGGER catalog_idp_group_names_update AFTER UPDATE ON idp_group_names
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
CREATE TRIGGER catalog_idp_group_names_delete AFTER DELETE ON idp_group_names
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
"#,
    r#"
-- A user's memberships are read from the by-user index alone: it carries the cause as well as
-- the key's group and source, so a login reads no row of the table itself.
DROP INDEX memberships_by_user;
CREATE INDEX memberships_by_user ON memberships (user_id, cause);
-- Roles are part of what logins answer with and keep between them: they move the counter too.
CREATE TRIGGER catalog_group_roles_insert AFTER INSERT ON group_roles
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
CREATE TRIGGER catalog_group_roles_update AFTER UPDATE ON group_roles
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
CREATE TRIGGER catalog_group_roles_delete AFTER DELETE ON group_roles
    BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
"#,
    r#"
-- Remote group stores (SPEC §1 invariant 9). The stages a remote store serves, and which store
-- (its tenant: kind and base URL), as the configuration of the last writer to start said.
CREATE TABLE remote_stages (
    stage       TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL
) WITHOUT ROWID;
ALTER TABLE journal ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
-- Every change to whether a user is in a group of a remotely served stage is journalled in the
-- transaction that writes it, whoever writes it (runs, saved plans, logins, edits): a user joins
-- when the first provenance arrives and leaves when the last goes. The store is sent the change
-- afterwards, and the entry is done once the store has it.
CREATE TRIGGER journal_membership_add AFTER INSERT ON memberships
    WHEN EXISTS (SELECT 1 FROM remote_stages)
     AND (SELECT count(*) FROM memberships WHERE group_id = NEW.group_id AND user_id = NEW.user_id) = 1
BEGIN
    INSERT INTO journal (run_id, created_at, updated_at, op, group_id, user_id, source, cause, status, tenant)
    SELECT '', unixepoch(), unixepoch(), 'add', NEW.group_id, NEW.user_id, NEW.source,
           (SELECT idp_group FROM causes WHERE id = NEW.cause), 'pending', r.tenant
    FROM groups g JOIN remote_stages r ON r.stage = g.stage WHERE g.id = NEW.group_id;
END;
CREATE TRIGGER journal_membership_remove AFTER DELETE ON memberships
    WHEN EXISTS (SELECT 1 FROM remote_stages)
     AND NOT EXISTS (SELECT 1 FROM memberships WHERE group_id = OLD.group_id AND user_id = OLD.user_id)
BEGIN
    INSERT INTO journal (run_id, created_at, updated_at, op, group_id, user_id, source, cause, status, tenant)
    SELECT '', unixepoch(), unixepoch(), 'remove', OLD.group_id, OLD.user_id, OLD.source,
           (SELECT idp_group FROM causes WHERE id = OLD.cause), 'pending', r.tenant
    FROM groups g JOIN remote_stages r ON r.stage = g.stage WHERE g.id = OLD.group_id;
END;
DROP INDEX journal_by_status;
CREATE INDEX journal_by_status ON journal (tenant, status);
-- Whether a (group, user) has an entry open is asked per membership when a group is first seen.
CREATE INDEX journal_by_pair ON journal (tenant, group_id, user_id);
-- Per store tenant: the remote id of each local group (found by name once, so a rename in the
-- store is followed, never answered by a duplicate) and when its members were last read.
CREATE TABLE remote_groups (
    tenant      TEXT NOT NULL,
    group_id    INTEGER NOT NULL,
    remote_id   TEXT NOT NULL,
    remote_name TEXT NOT NULL,
    read_at     INTEGER,
    PRIMARY KEY (tenant, group_id)
) WITHOUT ROWID;
-- The remote id of each user key, or NULL: not found at `checked_at` (Unix milliseconds; the
-- negative cache).
CREATE TABLE remote_users (
    tenant      TEXT NOT NULL,
    user_id     INTEGER NOT NULL,
    remote_id   TEXT,
    checked_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, user_id)
) WITHOUT ROWID;
-- Who owns each remote membership idpsync knows of, by the remote group's id (kept when the
-- group's cached id is forgotten and found again): `ours` (the journal put it there) or
-- `preexisting` (present at idpsync's first read, or answered "already a member"): only ours are
-- ever removed (SPEC §1 invariant 1).
CREATE TABLE remote_members (
    tenant       TEXT NOT NULL,
    remote_group TEXT NOT NULL,
    remote_user  TEXT NOT NULL,
    owner        TEXT NOT NULL,
    PRIMARY KEY (tenant, remote_group, remote_user)
) WITHOUT ROWID;
-- Per store tenant, when its last requests were sent (Unix milliseconds, a JSON array): the
-- request budget holds across processes, so a run right after another does not overrun it.
CREATE TABLE remote_budget (
    tenant      TEXT PRIMARY KEY,
    sent        TEXT NOT NULL
) WITHOUT ROWID;
"#,
];

/// Creates the by-user index of memberships as the current schema has it (an apply that loads
/// most of the table drops it and builds it again once).
pub(super) const CREATE_BY_USER_INDEX: &str =
    "CREATE INDEX memberships_by_user ON memberships (user_id, cause)";

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the file up to [`CURRENT_VERSION`], refusing a newer one.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StateError> {
    let version = check_readable(conn, path)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(|e| sqlite(path, e))?;
        tx.execute_batch(sql).map_err(|e| sqlite(path, e))?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(|e| sqlite(path, e))?;
        tx.commit().map_err(|e| sqlite(path, e))?;
    }
    Ok(())
}

/// Reads the schema version and refuses files newer than this build.
pub fn check_readable(conn: &Connection, path: &Path) -> Result<i64, StateError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| sqlite(path, e))?;
    if version > CURRENT_VERSION {
        return Err(StateError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: CURRENT_VERSION,
        });
    }
    Ok(version)
}
