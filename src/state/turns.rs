//! The order in which this process's writers take SQLite's single write lock.
//!
//! SQLite's lock is no queue: a writer that commits and begins again at once keeps it, and a
//! waiting writer's busy handler only polls. So the writers of this process — logins, and a run's
//! apply — take a turn here first; and a run's apply, between its statements of rows, asks
//! whether anyone is waiting, and if so commits what it has written and lets them go first
//! (`pause.rs`). The turn is a plain `std` mutex, which parks waiters at once: `parking_lot`'s
//! mutexes spin and yield before parking, and with dozens of logins queued on two cores that
//! spinning took the CPU the turn's holder needed (quiet logins' p99 went from about 9 to
//! 200 ms in half the runs). A writer in another process (a CLI run beside the service) still
//! meets only SQLite's lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The turns.
static TURNS: Mutex<()> = Mutex::new(());

/// Writers queued for a turn.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// One writer's turn: held while it writes, released when dropped.
pub(crate) struct Turn {
    _guard: MutexGuard<'static, ()>,
}

/// Waits for this writer's turn.
pub(crate) fn take_turn() -> Turn {
    WAITING.fetch_add(1, Ordering::SeqCst);
    // A writer that panicked holding its turn left nothing half-done behind it: its transaction
    // rolled back when dropped.
    let guard = TURNS.lock().unwrap_or_else(|p| p.into_inner());
    WAITING.fetch_sub(1, Ordering::SeqCst);
    Turn { _guard: guard }
}

/// Whether another writer is queued for a turn.
pub(crate) fn others_waiting() -> bool {
    WAITING.load(Ordering::SeqCst) > 0
}
