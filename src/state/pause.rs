//! A long apply that lets waiting writers in (SPEC §1 invariant 10: writes are short
//! transactions; a login waits only behind a short apply transaction).
//!
//! A run's apply of an IdP's part is one transaction while nobody waits: all or nothing, as the
//! crash tests prove. When a writer of this process (a login) queues for a turn (`turns.rs`), the
//! apply, once it has held the lock for [`PART`], commits the rows written so far with the
//! generation moved, gives its turn up, checkpoints the WAL while the waiting writers write, lets
//! them all go first (for at most another part) and begins again, checking the groups of the
//! remaining changes again if any group changed meanwhile (the catalog counter).
//!
//! A run killed after such a pause leaves whole statements of rows applied, each change audited
//! once, and the next run plans exactly what is missing (`tests/it/crash_pause.rs`). The
//! baseline and the run row, written with the last part, still tell of the last run applied
//! whole; and since each pause moves the generation, no stored read can match it, so the
//! unchanged-read shortcut cannot skip the rest (a paused apply also records its own read as not
//! faithful: `pause_tests`).

use std::time::{Duration, Instant};

use rusqlite::Transaction;

use super::turns::{Turn, others_waiting, take_turn};

/// How long an apply holds the write lock, at least, before it pauses for waiting writers: a
/// login waits about this long plus a commit. Each pause's commit writes every page the part
/// dirtied, and a first load dirties its by-user index all over, so short parts cost the apply:
/// the S1 first load with logins sent flat out took 26 s with 10 ms parts (p99 of the logins
/// 45 ms), 19 s with 15 ms (60 ms) and 15 s with 25 ms (82 ms), against 5 s alone (BENCHMARKS.md).
pub const PART: Duration = Duration::from_millis(10);

/// When and how an apply lets other writers in.
pub(super) trait Pauses {
    /// Whether to pause now.
    fn due(&self) -> bool;
    /// Commits `tx`'s work so far, lets the waiting writers in and begins a new transaction in
    /// its place, on the same connection.
    fn pause(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()>;
    /// Whether another writer committed during a pause.
    fn moved(&self) -> bool;
}

/// One transaction, never paused: administrator edits, saved plans, logins.
pub(super) struct Never;

impl Pauses for Never {
    fn due(&self) -> bool {
        false
    }

    fn pause(&mut self, _tx: &Transaction<'_>) -> rusqlite::Result<()> {
        Ok(())
    }

    fn moved(&self) -> bool {
        false
    }
}

/// Pauses for the writers of this process queued for a turn, after [`PART`] of writing.
pub(super) struct ForWaitingWriters {
    turn: Option<Turn>,
    since: Instant,
    moved: bool,
}

impl ForWaitingWriters {
    /// Pauses for writers queued behind `turn`, the turn this apply's transaction began in.
    pub(super) fn new(turn: Turn) -> Self {
        ForWaitingWriters {
            turn: Some(turn),
            since: Instant::now(),
            moved: false,
        }
    }
}

impl Pauses for ForWaitingWriters {
    fn due(&self) -> bool {
        self.since.elapsed() >= PART && others_waiting()
    }

    fn pause(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let left_at = super::generation_in(tx)?;
        tx.execute_batch("COMMIT")?;
        // Passed on to the first writer queued; while they write, this apply copies the pages it
        // committed from the WAL into the database (its commits do not: `State::apply`), so the
        // WAL stays short for every reader; then it queues again behind the rest.
        self.turn = None;
        crate::failpoint!("apply::paused");
        checkpoint(tx);
        // The turn is no queue either: let the writers waiting now take it before this apply
        // does, while more keep coming for at most another part.
        let until = Instant::now() + PART;
        while others_waiting() && Instant::now() < until {
            std::thread::sleep(Duration::from_micros(200));
        }
        self.turn = Some(take_turn());
        tx.execute_batch("BEGIN IMMEDIATE")?;
        if super::generation_in(tx)? != left_at {
            self.moved = true;
        }
        self.since = Instant::now();
        Ok(())
    }

    fn moved(&self) -> bool {
        self.moved
    }
}

/// Copies what it can of the WAL into the database without waiting for readers or writers
/// (a passive checkpoint). Only an I/O error fails one, and the next checkpoint tries again, so
/// a failure is told, not returned.
pub(super) fn checkpoint(conn: &rusqlite::Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "A WAL checkpoint failed; the next one tries again.");
    }
}
