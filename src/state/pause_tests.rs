//! A long apply pauses for a writer waiting its turn (`pause.rs`): the writer's change lands
//! during the apply, nothing of either is lost or doubled, the read is not recorded as faithful,
//! and a group the writer deletes meanwhile drops the apply's remaining changes to it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use super::*;
use crate::model::{GroupName, IdpName, Provenance, Stage, UserKey};

/// Adds of `corp` to All (enough statements of rows that many remain once the pause is due),
/// then to Later; it has `later` of them.
const ALL: usize = 150_000;

/// What a long apply did while `writer` waited for its turn, from its first statement on.
struct Outcome {
    state: State,
    applied: Applied,
    /// The writer's change committed before the apply's last statement.
    landed_while_applying: bool,
    _dir: tempfile::TempDir,
}

/// Applies [`ALL`] adds to All and `later` to Later as run `r1` (with a read to record), while
/// `writer` runs on its own connection, holding a turn it queued for once the apply had begun.
fn long_apply(later: usize, writer: impl FnOnce(&mut State) + Send + 'static) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idpsync.db");
    let stage = Stage::parse("production").unwrap();
    let mut state = State::open(&path).unwrap();
    let mut group = |name: &str| {
        let name = GroupName::parse(name).unwrap();
        state
            .create_group(&stage, &name, "", &BTreeSet::new(), "cli:t")
            .unwrap()
    };
    let (all, later_id) = (group("All"), group("Later"));
    group("Other");
    let planned_at = state.generation().unwrap();
    let keys: Vec<String> = (0..ALL).map(|i| format!("user{i}@x.com")).collect();
    let adds: Vec<MembershipChange<'_>> = keys
        .iter()
        .map(|k| MembershipChange {
            group: all,
            user: k,
            cause: "All",
        })
        .chain(keys[..later].iter().map(|k| MembershipChange {
            group: later_id,
            user: k,
            cause: "Later",
        }))
        .collect();

    let (start, started) = mpsc::channel::<()>();
    let landed = Arc::new(AtomicBool::new(false));
    let writer = std::thread::spawn({
        let (path, landed) = (path.clone(), landed.clone());
        move || {
            let mut other = State::open(&path).unwrap();
            started.recv().unwrap();
            let _turn = turns::take_turn();
            writer(&mut other);
            landed.store(true, Ordering::SeqCst);
        }
    });
    let landed_while_applying = AtomicBool::new(false);
    let total = adds.len() as u64;
    let progress = |written: u64| {
        if written == super::bulk::ROWS_PER_STATEMENT as u64 {
            start.send(()).unwrap();
            while !turns::others_waiting() {
                std::thread::yield_now();
            }
        } else if written < total && landed.load(Ordering::SeqCst) {
            landed_while_applying.store(true, Ordering::SeqCst);
        }
    };
    let provenance = Provenance::Idp(IdpName::parse("corp").unwrap());
    let run = RunPart {
        run_id: "r1",
        read: Some(ReadRecord {
            fingerprint: "f",
            config: "c",
            inactive: "[]".to_owned(),
            skipped_users: 0,
        }),
        planned_at,
        ..RunPart::default()
    };
    let applied = state
        .apply(&Batch {
            actor: "run:r1",
            provenance: &provenance,
            adds: &adds,
            removes: &[],
            served: std::slice::from_ref(&stage),
            detail: None,
            run: Some(&run),
            progress: Some(&progress),
        })
        .unwrap();
    writer.join().unwrap();
    Outcome {
        state,
        applied,
        landed_while_applying: landed_while_applying.load(Ordering::SeqCst),
        _dir: dir,
    }
}

fn count(state: &State, sql: &str) -> i64 {
    state.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn a_long_apply_lets_a_waiting_writer_in_and_loses_nothing() {
    let index_seen = Arc::new(AtomicBool::new(false));
    let seen = index_seen.clone();
    let done = long_apply(0, move |other| {
        // What the pause committed, as another connection sees it.
        let index = "SELECT count(*) FROM sqlite_master WHERE name = 'memberships_by_user'";
        seen.store(count(other, index) == 1, Ordering::SeqCst);
        let stage = Stage::parse("production").unwrap();
        let other_group = GroupName::parse("Other").unwrap();
        let eve = UserKey::parse("eve@x.com").unwrap();
        other
            .add_direct(&stage, &other_group, &eve, "cli:t")
            .unwrap();
    });
    assert!(
        done.landed_while_applying,
        "the waiting writer's change committed before the apply's last statement"
    );
    let state = &done.state;
    assert_eq!(done.applied.adds, ALL as u64);
    let corp = "SELECT count(*) FROM memberships WHERE source <> 0";
    assert_eq!(count(state, corp), ALL as i64);
    assert_eq!(
        count(
            state,
            "SELECT count(*) FROM audit_log WHERE op = 'add' AND source <> 0"
        ),
        ALL as i64,
        "every add audited once"
    );
    assert_eq!(
        count(
            state,
            "SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.key = 'eve@x.com' AND m.source = 0"
        ),
        1,
        "the other writer's change stands"
    );
    assert_eq!(
        count(
            state,
            "SELECT count(*) FROM sqlite_master WHERE name = 'memberships_by_user'"
        ),
        1,
        "the by-user index is there after the apply"
    );
    assert!(
        index_seen.load(Ordering::SeqCst),
        "the by-user index was there during the pause (built before the pause's commit)"
    );
    assert_eq!(
        count(state, "SELECT count(*) FROM idp_reads"),
        0,
        "another writer committed during the apply: the read is no record of a full read"
    );
    assert_eq!(
        count(state, "SELECT count(*) FROM run_idps WHERE adds = 150000"),
        1
    );
}

#[test]
fn a_group_deleted_during_a_pause_drops_the_changes_to_it_that_remain() {
    const LATER: usize = 1_000;
    let done = long_apply(LATER, |other| {
        let stage = Stage::parse("production").unwrap();
        let later = GroupName::parse("Later").unwrap();
        other.delete_group(&stage, &later, false, "cli:t").unwrap();
    });
    assert!(
        done.landed_while_applying,
        "the deletion came during the apply"
    );
    let state = &done.state;
    assert_eq!(done.applied.adds, ALL as u64, "All's adds all written");
    assert_eq!(done.applied.dropped.len(), LATER, "Later's adds dropped");
    assert!(
        done.applied
            .dropped
            .iter()
            .all(|d| d.reason == DropReason::GroupDeleted)
    );
    assert_eq!(
        count(state, "SELECT count(*) FROM memberships WHERE source <> 0"),
        ALL as i64,
        "nothing written into the deleted group"
    );
    assert_eq!(
        count(state, "SELECT count(*) FROM audit_log WHERE op = 'drop'"),
        LATER as i64,
        "each dropped change audited once"
    );
    assert_eq!(
        count(state, "SELECT count(*) FROM run_idps WHERE dropped = 1000"),
        1
    );
}
