//! Upgrades of the state file: a file of an older idpsync is brought to this version (by writers
//! and read-only commands alike), and migration 4 leaves the store and its audit log agreeing.

use std::path::Path;

use super::*;
use crate::model::IdpName;

/// A state file at schema version 3, the last before the checked apply; the connection to it.
fn version_3_file(path: &Path) -> rusqlite::Connection {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    for (i, sql) in schema::MIGRATIONS[..3].iter().enumerate() {
        let tx = conn.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .unwrap();
        tx.commit().unwrap();
    }
    conn
}

/// Migration 4 removes, and audits, the memberships an earlier race left in a deleted group,
/// keeps the rest, renames the outcome `ok` to `applied`, and keeps a refusal still pending.
#[test]
fn the_upgrade_removes_and_audits_memberships_of_deleted_groups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idpsync.db");
    {
        let conn = version_3_file(&path);
        conn.execute_batch(
            "INSERT INTO groups (id, stage, name, norm, created_at) VALUES (1, 'production', 'Kept', 'kept', 0);
             INSERT INTO users (id, key, created_at) VALUES (1, 'ana@x.com', 0);
             INSERT INTO sources (id, provenance) VALUES (1, 'idp:corp');
             INSERT INTO causes (id, idp_group) VALUES (1, 'g1');
             INSERT INTO memberships (group_id, user_id, source, cause) VALUES (1, 1, 1, 1), (2, 1, 1, 1);
             INSERT INTO deleted_groups (id, stage, name, norm, deleted_at) VALUES (2, 'production', 'V1', 'v1', 0);
             INSERT INTO runs (id, actor, started_at, outcome) VALUES ('r0', 'cli:t', 0, 'ok');
             INSERT INTO run_idps (run_id, idp, outcome, adds, removes, detail, guard, allow)
                 VALUES ('r0', 'corp', 'refused', 0, 0, '12 removals exceed', 'removals', 'idpsync reconcile --idp corp --allow-removals 12');",
        )
        .unwrap();
    }
    let state = State::open(&path).unwrap();
    let rows: Vec<(i64, i64)> = {
        let mut stmt = state
            .conn
            .prepare("SELECT group_id, user_id FROM memberships")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(rows, [(1, 1)]);
    let audit = state.audit(&AuditFilter::default()).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (
            audit[0].op.as_str(),
            audit[0].group.as_deref(),
            audit[0].cause.as_deref()
        ),
        ("remove", Some("V1"), Some("g1"))
    );
    let outcome: String = state
        .conn
        .query_row("SELECT outcome FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(outcome, "applied");
    let refusal = state
        .pending_refusal(&IdpName::parse("corp").unwrap())
        .unwrap()
        .expect("the refusal of the last run of corp stays pending");
    assert_eq!(
        (refusal.run_id.as_str(), refusal.guard.as_str()),
        ("r0", "removals")
    );
    assert!(refusal.allow.ends_with("--allow-removals 12"));
}

/// A read-only command on a file of an older idpsync upgrades it first, then reads it.
#[test]
fn reading_an_older_file_upgrades_it_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idpsync.db");
    drop(version_3_file(&path));
    let state = State::open_read_only(&path).unwrap();
    assert!(state.groups_and_former_names().unwrap().0.is_empty());
    assert!(
        state
            .pending_refusal(&IdpName::parse("corp").unwrap())
            .unwrap()
            .is_none()
    );
}
