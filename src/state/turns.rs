//! The order in which this process's writers take SQLite's single write lock.
//!
//! SQLite's lock is no queue: a writer that commits and begins again at once keeps it, and a
//! waiting writer's busy handler only polls. So the writers of this process — logins, and a run's
//! apply — take their turn here first, first come first served; and a run's apply, between its
//! statements of rows, asks whether anyone is waiting, and if so commits what it has written and
//! queues again behind them (`pause.rs`). A writer in another process (a CLI run beside the
//! service) still meets only SQLite's lock.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{FairMutex, FairMutexGuard};

/// The turns, handed over first come first served.
static TURNS: FairMutex<()> = parking_lot::const_fair_mutex(());

/// Writers queued for a turn.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// One writer's turn: held while it writes, passed on to the next in the queue when dropped.
pub(crate) struct Turn {
    _guard: FairMutexGuard<'static, ()>,
}

/// Waits for this writer's turn behind those already queued.
pub(crate) fn take_turn() -> Turn {
    WAITING.fetch_add(1, Ordering::SeqCst);
    let guard = TURNS.lock();
    WAITING.fetch_sub(1, Ordering::SeqCst);
    Turn { _guard: guard }
}

/// Whether another writer is queued for a turn.
pub(crate) fn others_waiting() -> bool {
    WAITING.load(Ordering::SeqCst) > 0
}
