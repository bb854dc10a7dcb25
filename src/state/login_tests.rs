//! A login whose write fails to commit leaves nothing behind in what its connection keeps
//! between logins (`user_rows.rs`): an id its rolled-back transaction took (a cause's, here) is
//! free again, and the next writer, on any connection, may take it for another name.

use std::cell::RefCell;
use std::collections::BTreeSet;

use super::*;
use crate::model::{GroupName, IdpName, Stage};

#[test]
fn a_login_whose_commit_fails_forgets_the_names_it_read_inside_its_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idpsync.db");
    let stage = Stage::parse("production").unwrap();
    let team = State::open(&path)
        .unwrap()
        .create_group(
            &stage,
            &GroupName::parse("Team").unwrap(),
            "",
            &BTreeSet::new(),
            "cli:t",
        )
        .unwrap();
    let idp = IdpName::parse("okta").unwrap();
    let stages = [stage.clone()];
    let targets = [(stage.clone(), "team".to_owned())];
    let request = |issued_at| LoginRequest {
        idp: &idp,
        user: "ana@example.com",
        stages: &stages,
        issued_at,
        auto_create: true,
        targets: &targets,
    };
    let add = |cause: &'static str| {
        move |_: &LoginState<'_>| {
            let change = LoginChange {
                group: team,
                cause: cause.to_owned(),
            };
            (vec![change], Vec::new())
        }
    };
    let mut first = State::open_for_logins(&path).unwrap();
    let mut second = State::open_for_logins(&path).unwrap();

    // Ana joins Team through the IdP group `okta-a`; the commit fails, after the login read her
    // rows back (and with them the new cause) inside its transaction.
    fail::cfg("login::before_commit", "return").unwrap();
    let failed = first.login(&request(1), add("okta-a"), || ());
    fail::remove("login::before_commit");
    assert!(failed.is_err(), "{failed:?}");
    // On another connection she joins through `okta-b`, whose cause row takes the freed id.
    let joined = second.login(&request(2), add("okta-b"), || ()).unwrap();
    assert!(matches!(joined.applied, LoginApplied::Applied(ref a) if a.adds == 1));

    let held = RefCell::new(Vec::new());
    let observe = |start: &LoginState<'_>| {
        *held.borrow_mut() = start.loaded.idps[0]
            .held
            .iter()
            .map(|&(_, _, cause)| start.loaded.causes[cause as usize].to_string())
            .collect();
        (Vec::new(), Vec::new())
    };
    first.login(&request(3), observe, || ()).unwrap();
    assert_eq!(
        *held.borrow(),
        ["okta-b"],
        "the first connection plans from the cause the store holds, not the one it rolled back"
    );
}
