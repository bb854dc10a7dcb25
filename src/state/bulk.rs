//! Helpers for writing many rows fast: multi-row statements, resolving user keys in bulk, and
//! the multi-row writes of an apply (audit rows of adds, IdP ids).
//!
//! A first load writes a million memberships; one statement per row would spend most of its time
//! in SQLite's statement machinery, so rows go 256 to a statement.

use rusqlite::Transaction;
use rusqlite::types::Value;
use rustc_hash::FxHashMap as HashMap;

/// Rows per multi-row INSERT: few statements, far below SQLite's 32,766 parameters.
pub(super) const ROWS_PER_STATEMENT: usize = 256;

/// `head` followed by `rows` copies of `row`, comma-separated, then `tail`.
pub(super) fn multi_row(head: &str, row: &str, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * (row.len() + 2) + tail.len());
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
    sql.push_str(tail);
    sql
}

/// Every user key the store holds, plus `new_keys` the store lacks inserted with multi-row
/// statements: one pass instead of a lookup and an insert per user. `between` runs after each
/// statement (it may commit and begin again: a key another writer created meanwhile is looked up).
pub(super) fn bulk_users<'k>(
    tx: &Transaction<'_>,
    new_keys: impl Iterator<Item = &'k str>,
    now: i64,
    between: &mut dyn FnMut() -> rusqlite::Result<()>,
) -> rusqlite::Result<HashMap<String, i64>> {
    let mut users: HashMap<String, i64> = HashMap::default();
    let mut stmt = tx.prepare("SELECT id, key FROM users")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        users.insert(row.get(1)?, row.get(0)?);
    }
    let mut new: Vec<&str> = new_keys.filter(|k| !users.contains_key(*k)).collect();
    new.sort_unstable();
    new.dedup();
    for chunk in new.chunks(ROWS_PER_STATEMENT) {
        let mut insert = tx.prepare_cached(&multi_row(
            "INSERT OR IGNORE INTO users (key, created_at) VALUES ",
            "(?, ?)",
            chunk.len(),
            " RETURNING id, key",
        ))?;
        let values: Vec<&dyn rusqlite::ToSql> = chunk
            .iter()
            .flat_map(|k| [k as &dyn rusqlite::ToSql, &now])
            .collect();
        let mut rows = insert.query(values.as_slice())?;
        while let Some(row) = rows.next()? {
            users.insert(row.get(1)?, row.get(0)?);
        }
        drop(rows);
        let mut find = tx.prepare_cached("SELECT id FROM users WHERE key = ?1")?;
        for &key in chunk {
            if !users.contains_key(key) {
                let id = find.query_row([key], |r| r.get(0))?;
                users.insert(key.to_owned(), id);
            }
        }
        between()?;
    }
    Ok(users)
}

/// Stores the IdP's immutable ids of `ids` (user row id, IdP id), replacing those that changed.
pub(super) fn store_ids(
    tx: &Transaction<'_>,
    source: i64,
    ids: &[(i64, &str)],
) -> rusqlite::Result<()> {
    let mut store_ids = tx.prepare_cached(&multi_row(
        "INSERT INTO user_ids (source, user_id, external_id) VALUES ",
        "(?, ?, ?)",
        ids.len(),
        " ON CONFLICT (source, user_id) DO UPDATE SET external_id = excluded.external_id",
    ))?;
    let values: Vec<&dyn rusqlite::ToSql> = ids
        .iter()
        .flat_map(|(user, external)| [&source as &dyn rusqlite::ToSql, user, external])
        .collect();
    store_ids.execute(values.as_slice())?;
    Ok(())
}

/// Audits the rows an add statement really inserted: (group, user, cause).
pub(super) fn audit_adds(
    tx: &Transaction<'_>,
    actor: i64,
    source: i64,
    now: i64,
    detail: Option<&str>,
    inserted: &[(i64, i64, Option<i64>)],
) -> rusqlite::Result<()> {
    let mut audit_rows = tx.prepare_cached(&multi_row(
        "INSERT INTO audit_log (at, actor, op, group_id, user_id, source, cause, detail) VALUES ",
        "(?, ?, 'add', ?, ?, ?, ?, ?)",
        inserted.len(),
        "",
    ))?;
    let detail = detail.map_or(Value::Null, |d| Value::Text(d.to_owned()));
    let values = inserted.iter().flat_map(|&(group, user, cause)| {
        [
            Value::Integer(now),
            Value::Integer(actor),
            Value::Integer(group),
            Value::Integer(user),
            Value::Integer(source),
            cause.map_or(Value::Null, Value::Integer),
            detail.clone(),
        ]
    });
    audit_rows.execute(rusqlite::params_from_iter(values))?;
    Ok(())
}
