//! The write floor for `scripts/bench`: N sorted (group, user, source, cause) rows into a WITHOUT ROWID
//! table and N audit rows, in one transaction with prepared statements, through rusqlite — what any
//! implementation must pay to store N memberships with one audit record each.
//!
//! It then times one sequential scan of the memberships back: the read floor of a no-op run.
//!
//! Usage: `cargo run --release --example insert_floor -- ROWS PATH` prints `INSERT_S SCAN_S CHECK`.

use std::time::Instant;

fn main() -> rusqlite::Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: i64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let path = args
        .next()
        .unwrap_or_else(|| "target/insert_floor.db".into());
    let _ = std::fs::remove_file(&path);
    let mut conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE memberships (group_id INTEGER NOT NULL, user_id INTEGER NOT NULL, source INTEGER NOT NULL,
                                   cause INTEGER, PRIMARY KEY (group_id, user_id, source)) WITHOUT ROWID;
         CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor INTEGER NOT NULL, op TEXT NOT NULL,
                                 group_id INTEGER, user_id INTEGER, source INTEGER, cause INTEGER, detail TEXT);",
    )?;
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare("INSERT INTO memberships VALUES (?1, ?2, 1, ?1)")?;
        let mut audit = tx.prepare("INSERT INTO audit_log (at, actor, op, group_id, user_id, source, cause) VALUES (0, 1, 'add', ?1, ?2, 1, ?1)")?;
        for i in 0..rows {
            let (group, user) = (i / 100, i % 100_000);
            insert.execute([group, user])?;
            audit.execute([group, user])?;
        }
    }
    tx.commit()?;
    let inserted = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut scan = conn.prepare("SELECT group_id, user_id, source, cause FROM memberships")?;
    let mut sum = 0i64;
    let mut rows = scan.query([])?;
    while let Some(row) = rows.next()? {
        sum = sum.wrapping_add(row.get::<_, i64>(0)? ^ row.get::<_, i64>(1)?);
    }
    let scanned = started.elapsed().as_secs_f64();
    // Seconds to insert, seconds to scan back (the checksum keeps the scan from being optimised away).
    println!("{inserted:.3} {scanned:.3} {}", sum & 1);
    Ok(())
}
