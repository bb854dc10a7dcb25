//! Named failpoints on the write path, so a test can stop the real binary exactly there and prove
//! what a crash at that step leaves behind (SPEC §1 invariant 9).
//!
//! They exist only in builds with the `failpoints` feature (`scripts/test` turns it on), which a
//! release build refuses: in the shipped binary `failpoint!` expands to nothing. A test arms them
//! through `IDPSYNC_FAILPOINTS`, `;`-separated `name=action` pairs:
//!
//! | action | at the N-th hit of the point (`@N`, default the first) |
//! |---|---|
//! | `halt[@N]` | prints `failpoint NAME reached` on standard error and blocks forever (the test SIGKILLs) |
//! | `pause[@N]` | prints the same line and waits for a line on standard input, then goes on |
//! | `mark@N` | prints the same line and goes on |
//! | anything else | a `fail` crate action (`panic`, `sleep(100)`, `return` where the point says what it returns, …) |
//!
//! The points: `sync::after_reads` (reads and the state load done, nothing planned yet),
//! `apply::before_tx` (before an IdP's apply transaction), `apply::rows` (inside it, after each
//! statement of rows), `apply::in_tx` (inside it, every row written, before the commit),
//! `apply::after_commit` (an IdP committed, before the next IdP or the run's close),
//! `sync::before_close` (every IdP applied, the run row still open), and for `apply PLAN.json`
//! `plan::run_opened` (its run row written, nothing applied) and `plan::before_close`. In the
//! service, `apply::paused` (an apply that paused for a waiting writer has committed its part
//! and handed its turn on) `login::before_turn` (a login planned, about to queue for its
//! write) and `login::before_commit` (its write done, not committed; `return` fails the commit).
//! Sending the journal to a remote store: `store::before_drain` (a drain begins; the run's second
//! one follows its applies, so the journal is written and nothing sent), `store::before_push` (a
//! batch marked sending, not sent), `store::after_push` (sent, its outcome not recorded) and
//! `store::mid_batch` (a batch recorded, the next not sent).

#[cfg(all(feature = "failpoints", not(debug_assertions)))]
compile_error!(
    "failpoints are for test builds only: build a release without --features failpoints"
);

/// Marks a failpoint; nothing at all unless built with the `failpoints` feature.
#[cfg(feature = "failpoints")]
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {
        fail::fail_point!($name)
    };
    ($name:literal, $returns:expr) => {
        fail::fail_point!($name, $returns)
    };
}

/// Marks a failpoint; nothing at all unless built with the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {
        ()
    };
    ($name:literal, $returns:expr) => {
        ()
    };
}

/// Arms the failpoints `IDPSYNC_FAILPOINTS` names (see the module documentation).
///
/// # Panics
/// On an action this module and the `fail` crate do not know: a test that arms a point wrongly
/// must not pass by never stopping.
#[cfg(feature = "failpoints")]
pub fn arm_from_env() {
    let Ok(spec) = std::env::var("IDPSYNC_FAILPOINTS") else {
        return;
    };
    for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, action) = item
            .split_once('=')
            .unwrap_or_else(|| panic!("IDPSYNC_FAILPOINTS: {item:?} is not name=action"));
        let (verb, at) = match action.split_once('@') {
            Some((verb, n)) => (verb, n.parse::<u64>().expect("@N is a number")),
            None => (action, 1),
        };
        let name = name.to_owned();
        let announce = move |name: &str| {
            use std::io::Write;
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "failpoint {name} reached");
            let _ = err.flush();
        };
        let hits = std::sync::atomic::AtomicU64::new(0);
        let armed = match verb {
            "halt" | "pause" | "mark" => {
                let verb = verb.to_owned();
                let point = name.clone();
                fail::cfg_callback(name.clone(), move || {
                    let hit = hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    if hit != at {
                        return;
                    }
                    announce(&point);
                    match verb.as_str() {
                        "halt" => loop {
                            std::thread::park();
                        },
                        "pause" => {
                            let mut line = String::new();
                            let _ = std::io::stdin().read_line(&mut line);
                        }
                        _ => {}
                    }
                })
            }
            other => fail::cfg(name.clone(), other),
        };
        armed.unwrap_or_else(|e| panic!("IDPSYNC_FAILPOINTS: {name}: {e}"));
    }
}
