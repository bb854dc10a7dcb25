//! A long apply pauses for a writer waiting its turn (`pause.rs`): the writer's change lands
//! during the apply, nothing of either is lost or doubled, and the read is not recorded as faithful.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use super::*;
use crate::model::{GroupName, IdpName, Provenance, Stage, UserKey};

#[test]
fn a_long_apply_lets_a_waiting_writer_in_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idpsync.db");
    let stage = Stage::parse("production").unwrap();
    let mut state = State::open(&path).unwrap();
    let group = |state: &mut State, name: &str| {
        let name = GroupName::parse(name).unwrap();
        state
            .create_group(&stage, &name, "", &BTreeSet::new(), "cli:t")
            .unwrap()
    };
    let all = group(&mut state, "All");
    group(&mut state, "Other");
    let planned_at = state.generation().unwrap();
    // Enough statements of rows that many remain once the pause is due.
    let keys: Vec<String> = (0..150_000).map(|i| format!("user{i}@x.com")).collect();
    let adds: Vec<MembershipChange<'_>> = keys
        .iter()
        .map(|k| MembershipChange {
            group: all,
            user: k,
            cause: "All",
        })
        .collect();

    // The other writer: queued for its turn once the apply has begun; adds a direct member.
    let (start, started) = mpsc::channel::<()>();
    let landed = Arc::new(AtomicBool::new(false));
    let writer = std::thread::spawn({
        let (path, stage, landed) = (path.clone(), stage.clone(), landed.clone());
        move || {
            let mut other = State::open(&path).unwrap();
            started.recv().unwrap();
            let _turn = turns::take_turn();
            other
                .add_direct(
                    &stage,
                    &GroupName::parse("Other").unwrap(),
                    &UserKey::parse("eve@x.com").unwrap(),
                    "cli:t",
                )
                .unwrap();
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
    let corp = IdpName::parse("corp").unwrap();
    let provenance = Provenance::Idp(corp);
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

    assert!(
        landed_while_applying.load(Ordering::SeqCst),
        "the waiting writer's change committed before the apply's last statement"
    );
    assert_eq!(applied.adds, total);
    let count = |sql: &str| -> i64 { state.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM memberships WHERE source <> 0"),
        150_000
    );
    assert_eq!(
        count("SELECT count(*) FROM audit_log WHERE op = 'add' AND source <> 0"),
        150_000,
        "every add audited once"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.key = 'eve@x.com' AND m.source = 0"
        ),
        1,
        "the other writer's change stands"
    );
    assert_eq!(
        count("SELECT count(*) FROM sqlite_master WHERE name = 'memberships_by_user'"),
        1,
        "the by-user index is there (built before the pause's commit)"
    );
    assert_eq!(
        count("SELECT count(*) FROM idp_reads"),
        0,
        "another writer committed during the apply: the read is no record of a full read"
    );
    assert_eq!(
        count("SELECT count(*) FROM run_idps WHERE adds = 150000"),
        1
    );
}
