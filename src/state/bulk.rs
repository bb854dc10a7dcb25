//! Helpers for writing many rows fast: multi-row statements and resolving user keys in bulk.
//!
//! A first load writes a million memberships; one statement per row would spend most of its time
//! in SQLite's statement machinery, so rows go 256 to a statement.

use rusqlite::Transaction;
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
/// statements: one pass instead of a lookup and an insert per user.
pub(super) fn bulk_users<'k>(
    tx: &Transaction<'_>,
    new_keys: impl Iterator<Item = &'k str>,
    now: i64,
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
            "INSERT INTO users (key, created_at) VALUES ",
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
    }
    Ok(users)
}
