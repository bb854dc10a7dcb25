//! State tests: creation on first write, read-only opening, schema versions, conditional writes.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::model::{GroupName, IdpName, Stage, UserKey};
use crate::reconcile::{Baseline, GroupDigest};

fn stage() -> Stage {
    Stage::parse("production").unwrap()
}

/// `(group, user, cause)` as a change of the checked apply.
fn changes<'a>(list: &[(i64, &'a str, &'a str)]) -> Vec<MembershipChange<'a>> {
    list.iter()
        .map(|&(group, user, cause)| MembershipChange { group, user, cause })
        .collect()
}

/// Applies an IdP's adds and removes as run `r1` does, with `run` committing beside them.
fn apply_idp(
    state: &mut State,
    idp: &IdpName,
    adds: &[(i64, &str, &str)],
    removes: &[(i64, &str, &str)],
    run: Option<&RunPart<'_>>,
) -> Applied {
    let provenance = crate::model::Provenance::Idp(idp.clone());
    let (adds, removes) = (changes(adds), changes(removes));
    state
        .apply(&Batch {
            actor: "run:r1",
            provenance: &provenance,
            adds: &adds,
            removes: &removes,
            served: &[stage()],
            detail: None,
            run,
            progress: None,
        })
        .unwrap()
}

#[test]
fn the_first_write_creates_the_file_and_private_parent_folders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/idpsync.db");
    State::open(&path).unwrap();
    assert!(path.exists());
    let mode = std::fs::metadata(dir.path().join("a"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the state holds user keys");
}

#[test]
fn a_missing_state_reads_as_empty_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing/idpsync.db");
    let mut state = State::open_read_only(&path).unwrap();
    assert!(state.list_groups(None).unwrap().is_empty());
    let loaded = state
        .load(&[IdpName::parse("corp").unwrap()], &[stage()])
        .unwrap();
    assert!(loaded.groups.is_empty() && loaded.idps[0].held.is_empty());
    assert!(!dir.path().join("missing").exists());
}

#[test]
fn read_only_state_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idpsync.db");
    State::open(&path).unwrap();
    let mut state = State::open_read_only(&path).unwrap();
    let err = state
        .create_group(
            &stage(),
            &GroupName::parse("X").unwrap(),
            "",
            &BTreeSet::new(),
            "cli:test",
        )
        .unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");
}

#[test]
fn a_newer_schema_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idpsync.db");
    drop(State::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    for result in [
        State::open(&path).map(|_| ()),
        State::open_read_only(&path).map(|_| ()),
    ] {
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("schema version 99") && err.contains("Upgrade idpsync"),
            "{err}"
        );
    }
}

#[test]
fn applies_are_conditional_audited_and_move_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::open(&dir.path().join("idpsync.db")).unwrap();
    let group = state
        .create_group(
            &stage(),
            &GroupName::parse("Marketing").unwrap(),
            "",
            &BTreeSet::new(),
            "cli:test",
        )
        .unwrap();
    let idp = IdpName::parse("corp").unwrap();
    let baseline: Baseline = [(
        "g1".to_owned(),
        GroupDigest {
            members: 1,
            hash: 7,
        },
    )]
    .into();
    let run = RunPart {
        run_id: "r1",
        external_ids: vec![("ana@x.com", "u1")],
        baseline: Some(&baseline),
        ..RunPart::default()
    };
    let adds = [(group, "ana@x.com", "Marketing Team")];
    state
        .begin_run("r1", "cli:test", std::slice::from_ref(&idp))
        .unwrap();
    let applied = apply_idp(&mut state, &idp, &adds, &[], Some(&run));
    assert_eq!((applied.adds, applied.removes), (1, 0));
    // The same add again changes nothing and is not audited twice.
    let again = apply_idp(&mut state, &idp, &adds, &[], Some(&run));
    assert_eq!((again.adds, again.removes, again.dropped.len()), (0, 0, 0));
    assert_eq!(
        again.generation, applied.generation,
        "nothing changed, nothing moved"
    );
    let audited: i64 = state
        .conn
        .query_row(
            "SELECT count(*) FROM audit WHERE op = 'add' AND actor = 'run:r1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audited, 1);
    let loaded = state.load(std::slice::from_ref(&idp), &[stage()]).unwrap();
    assert_eq!(loaded.idps[0].baseline, baseline);
    assert_eq!(loaded.idps[0].held.len(), 1);
    assert_eq!(
        loaded.idps[0].external_ids.values().collect::<Vec<_>>(),
        ["u1"]
    );
    // A run that finds every IdP unchanged cancels the load it started beside the reads.
    let cancelled = std::sync::atomic::AtomicBool::new(true);
    let gave_up = state.load_unless(std::slice::from_ref(&idp), &[stage()], &cancelled);
    assert!(gave_up.unwrap().is_none());
    // A load kept for some IdPs of a larger request hands back those, in the order asked.
    let other = IdpName::parse("other").unwrap();
    let both = state
        .load(&[other.clone(), idp.clone()], &[stage()])
        .unwrap();
    let only = both.only(&[other, idp.clone()], std::slice::from_ref(&idp));
    assert_eq!(only.idps.len(), 1);
    assert_eq!(only.idps[0].held.len(), 1);
    // A direct provenance on the same membership survives the IdP's removal.
    let key = UserKey::parse("ana@x.com").unwrap();
    state
        .add_direct(
            &stage(),
            &GroupName::parse("marketing").unwrap(),
            &key,
            "cli:test",
        )
        .unwrap();
    let remove = [(group, "ana@x.com", "Marketing Team")];
    assert_eq!(apply_idp(&mut state, &idp, &[], &remove, None).removes, 1);
    let members = state.group_members(group).unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].provenance, [crate::model::Provenance::Direct]);
    assert_eq!(
        state.user_memberships(&key, None).unwrap()[0].name,
        "Marketing"
    );
}

#[test]
fn group_names_are_unique_per_stage_after_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::open(&dir.path().join("idpsync.db")).unwrap();
    let none = BTreeSet::new();
    state
        .create_group(
            &stage(),
            &GroupName::parse("Sales").unwrap(),
            "",
            &none,
            "cli:t",
        )
        .unwrap();
    let err = state
        .create_group(
            &stage(),
            &GroupName::parse(" SALES ").unwrap(),
            "",
            &none,
            "cli:t",
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("already exists in stage production")
    );
    state
        .create_group(
            &Stage::parse("qa").unwrap(),
            &GroupName::parse("sales").unwrap(),
            "",
            &none,
            "cli:t",
        )
        .unwrap();
}

#[test]
fn failed_journal_entries_are_listed_retried_and_dropped_with_audit() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::open(&dir.path().join("idpsync.db")).unwrap();
    let group = state
        .create_group(
            &stage(),
            &GroupName::parse("Sales").unwrap(),
            "",
            &BTreeSet::new(),
            "cli:t",
        )
        .unwrap();
    let key = UserKey::parse("ana@x.com").unwrap();
    state
        .add_direct(&stage(), &GroupName::parse("Sales").unwrap(), &key, "cli:t")
        .unwrap();
    let user: i64 = state
        .conn
        .query_row("SELECT id FROM users", [], |r| r.get(0))
        .unwrap();
    let first = state
        .journal_record_failed(
            "r1",
            "add",
            group,
            user,
            DIRECT_SOURCE,
            Some("Sales"),
            "404 user not found",
        )
        .unwrap();
    let second = state
        .journal_record_failed(
            "r1",
            "remove",
            group,
            user,
            DIRECT_SOURCE,
            None,
            "403 forbidden",
        )
        .unwrap();
    assert_eq!(state.journal_depth().unwrap(), (0, 2));
    let listed = state.journal_failed().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (listed[0].group.as_deref(), listed[0].user.as_deref()),
        (Some("Sales"), Some("ana@x.com"))
    );
    assert_eq!(listed[0].error.as_deref(), Some("404 user not found"));
    state.journal_resolve(first, true, "cli:t").unwrap();
    state.journal_resolve(second, false, "cli:t").unwrap();
    assert_eq!(
        state.journal_depth().unwrap(),
        (1, 0),
        "one queued again, one dropped"
    );
    assert!(state.journal_failed().unwrap().is_empty());
    let err = state.journal_resolve(first, true, "cli:t").unwrap_err();
    assert!(
        matches!(err, StateError::Invalid(_)),
        "only failed entries can be resolved"
    );
    let ops: Vec<String> = state
        .audit(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .map(|r| r.op)
        .filter(|op| op.starts_with("journal."))
        .collect();
    assert_eq!(ops, ["journal.retry", "journal.drop"]);
}

#[test]
fn bulk_applies_resolve_existing_and_new_users_alike() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::open(&dir.path().join("idpsync.db")).unwrap();
    let group = state
        .create_group(
            &stage(),
            &GroupName::parse("All").unwrap(),
            "",
            &BTreeSet::new(),
            "cli:t",
        )
        .unwrap();
    // user0 exists already (a direct member), the others are new.
    state
        .add_direct(
            &stage(),
            &GroupName::parse("All").unwrap(),
            &UserKey::parse("user0@x.com").unwrap(),
            "cli:t",
        )
        .unwrap();
    let keys: Vec<String> = (0..12_000).map(|i| format!("user{i}@x.com")).collect();
    let adds: Vec<(i64, &str, &str)> = keys.iter().map(|k| (group, k.as_str(), "All")).collect();
    let corp = IdpName::parse("corp").unwrap();
    let counts = apply_idp(&mut state, &corp, &adds, &[], None);
    assert_eq!(counts.adds, 12_000);
    let users: i64 = state
        .conn
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 12_000, "user0 was reused, not duplicated");
    let members = state.group_members(group).unwrap();
    assert_eq!(members.len(), 12_000);
    assert_eq!(members[0].user, "user0@x.com");
    assert_eq!(
        members[0].provenance.len(),
        2,
        "direct and idp:corp on one membership"
    );
    // The by-user index exists again after the bulk rebuild, as the schema has it.
    let index: String = state
        .conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'memberships_by_user'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, schema::CREATE_BY_USER_INDEX);
}

#[test]
fn a_user_s_memberships_are_read_from_the_by_user_index_alone() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(&dir.path().join("idpsync.db")).unwrap();
    let plan: Vec<String> = state
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", user_rows::USER_ROWS))
        .unwrap()
        .query_map([1], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        plan,
        ["SEARCH memberships USING COVERING INDEX memberships_by_user (user_id=?)"]
    );
}

/// Rows an apply of `n` new memberships touches (memberships, audit rows, users, ids, baseline).
fn rows_touched_applying(n: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::open(&dir.path().join("idpsync.db")).unwrap();
    let groups: Vec<i64> = (0..n / 100 + 1)
        .map(|g| {
            state
                .create_group(
                    &stage(),
                    &GroupName::parse(&format!("G{g}")).unwrap(),
                    "",
                    &BTreeSet::new(),
                    "cli:t",
                )
                .unwrap()
        })
        .collect();
    let keys: Vec<String> = (0..n / 10 + 1).map(|u| format!("user{u}@x.com")).collect();
    let baseline: Baseline = groups
        .iter()
        .map(|g| {
            (
                format!("g{g}"),
                GroupDigest {
                    members: 1,
                    hash: 1,
                },
            )
        })
        .collect();
    let adds: Vec<(i64, &str, &str)> = (0..n)
        .map(|i| (groups[i / 100], keys[i % keys.len()].as_str(), "cause"))
        .collect();
    let run = RunPart {
        run_id: "r1",
        external_ids: keys.iter().map(|k| (k.as_str(), "id")).collect(),
        baseline: Some(&baseline),
        ..RunPart::default()
    };
    let before = state.conn.total_changes();
    apply_idp(
        &mut state,
        &IdpName::parse("corp").unwrap(),
        &adds,
        &[],
        Some(&run),
    );
    state.conn.total_changes() - before
}

/// Guards the apply against super-linear work by counting rows touched, not time.
#[test]
fn rows_touched_grow_linearly_with_the_changes_applied() {
    let (small, large) = (rows_touched_applying(1_000), rows_touched_applying(16_000));
    let ratio = large as f64 / small as f64;
    assert!(
        (12.0..20.0).contains(&ratio),
        "16 × the adds touched {ratio:.1} × the rows ({small} → {large})"
    );
    assert!(
        large <= 3 * 16_000 + 16_000 / 10 + 1_000,
        "about two rows per add plus users and ids: {large}"
    );
}

/// The checked apply against the rows at commit: a change into a group deleted since it was
/// planned, or into a stage the batch may not write, is dropped — not written, audited as `drop`
/// with the reason — while the rest applies; another provenance on the same pair is untouched.
#[test]
fn the_checked_apply_drops_what_no_longer_holds_and_touches_no_other_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::open(&dir.path().join("idpsync.db")).unwrap();
    let qa = Stage::parse("qa").unwrap();
    let create = |state: &mut State, stage: &Stage, name: &str| {
        state
            .create_group(
                stage,
                &GroupName::parse(name).unwrap(),
                "",
                &BTreeSet::new(),
                "cli:t",
            )
            .unwrap()
    };
    let (kept, gone, elsewhere) = (
        create(&mut state, &stage(), "Kept"),
        create(&mut state, &stage(), "Gone"),
        create(&mut state, &qa, "Elsewhere"),
    );
    let key = UserKey::parse("ana@x.com").unwrap();
    state
        .add_direct(&stage(), &GroupName::parse("Kept").unwrap(), &key, "cli:t")
        .unwrap();
    state
        .delete_group(&stage(), &GroupName::parse("Gone").unwrap(), false, "cli:t")
        .unwrap();
    let corp = IdpName::parse("corp").unwrap();
    let adds = [
        (kept, "ana@x.com", "g1"),
        (gone, "ana@x.com", "g2"),
        (elsewhere, "ana@x.com", "g3"),
    ];
    let applied = apply_idp(&mut state, &corp, &adds, &[], None);
    assert_eq!(applied.adds, 1);
    let reasons: Vec<(i64, DropReason)> = applied
        .dropped
        .iter()
        .map(|d| (d.group, d.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            (gone, DropReason::GroupDeleted),
            (elsewhere, DropReason::StageNotServed)
        ]
    );
    let members = state.group_members(kept).unwrap();
    assert_eq!(
        members[0].provenance,
        [
            crate::model::Provenance::Direct,
            crate::model::Provenance::Idp(corp.clone())
        ]
    );
    assert!(state.group_members(elsewhere).unwrap().is_empty());
    let drops = state
        .audit(&AuditFilter {
            user: Some(key.clone()),
            ..AuditFilter::default()
        })
        .unwrap()
        .into_iter()
        .filter(|r| r.op == "drop")
        .collect::<Vec<_>>();
    assert_eq!(drops.len(), 2);
    assert_eq!(
        drops[0].group.as_deref(),
        Some("Gone"),
        "a deleted group keeps its name"
    );
    assert_eq!(drops[0].cause.as_deref(), Some("g2"));
    assert!(
        drops[0].detail.as_deref().unwrap().contains("deleted"),
        "{drops:?}"
    );
    assert!(
        drops[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("no longer served"),
        "{drops:?}"
    );
    // corp's removal leaves the direct provenance of the same pair.
    let applied = apply_idp(&mut state, &corp, &[], &[(kept, "ana@x.com", "g1")], None);
    assert_eq!(applied.removes, 1);
    assert_eq!(
        state.group_members(kept).unwrap()[0].provenance,
        [crate::model::Provenance::Direct]
    );
}

/// Memberships reference real groups and users: the database itself refuses an orphan.
#[test]
fn the_store_refuses_a_membership_of_no_group() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(&dir.path().join("idpsync.db")).unwrap();
    let orphan = state.conn.execute(
        "INSERT INTO memberships (group_id, user_id, source) VALUES (999, 999, 0)",
        [],
    );
    assert!(orphan.unwrap_err().to_string().contains("FOREIGN KEY"));
}

#[test]
fn the_catalog_counter_moves_with_every_group_change_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::open(&dir.path().join("idpsync.db")).unwrap();
    let catalog = |state: &State| -> i64 {
        state
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'catalog'", [], |r| {
                r.get(0)
            })
            .unwrap()
    };
    let (none, sales) = (BTreeSet::new(), GroupName::parse("Sales").unwrap());
    let last = std::cell::Cell::new(catalog(&state));
    let moved = |state: &State, what: &str| {
        let now = catalog(state);
        assert!(now > last.get(), "{what} moves the catalog counter");
        last.set(now);
    };
    let group = state
        .create_group(&stage(), &sales, "", &none, "cli:t")
        .unwrap();
    moved(&state, "a created group");
    let renamed = GroupName::parse("Revenue").unwrap();
    state
        .update_group(&stage(), &sales, Some(&renamed), None, "cli:t")
        .unwrap();
    moved(&state, "a rename (and its former name)");
    let corp = IdpName::parse("corp").unwrap();
    apply_idp(
        &mut state,
        &corp,
        &[(group, "ann@example.com", "g1")],
        &[],
        None,
    );
    assert_eq!(catalog(&state), last.get(), "a membership leaves it");
    state
        .delete_group(&stage(), &renamed, true, "cli:t")
        .unwrap();
    moved(&state, "a deleted group");
}
