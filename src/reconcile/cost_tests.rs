//! The core's cost, counted rather than timed: work grows near-linearly with the memberships, and
//! a group's digest hashes exactly its member keys in order.

use super::harness::*;
use super::*;

/// A directory of `users` users in `groups` groups with about `memberships` memberships, one
/// mapping per group, read by IdP "corp"; deterministic.
fn scaled(
    users: usize,
    groups: usize,
    memberships: usize,
) -> (Universe, Directory, Vec<UserIdx>, Vec<MappingConfig>) {
    use crate::directory::{SnapshotGroup, SnapshotUser};
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut members = vec![Vec::new(); groups];
    for _ in 0..memberships {
        members[next(groups)].push(format!("u{}", next(users)));
    }
    let snapshot = crate::directory::Snapshot {
        users: (0..users)
            .map(|i| SnapshotUser {
                id: format!("u{i}"),
                key: Some(format!("user{i}@example.com")),
                enabled: true,
            })
            .collect(),
        groups: members
            .into_iter()
            .enumerate()
            .map(|(g, members)| SnapshotGroup {
                id: format!("g{g}"),
                name: format!("Group {g}"),
                members,
            })
            .collect(),
    };
    let directory = Directory::resolve(snapshot).unwrap();
    let universe = Universe {
        users: directory.users.iter().map(|u| u.key.clone()).collect(),
        groups: (0..groups)
            .map(|g| GroupEntry {
                stage: Stage::parse("production").unwrap(),
                name: format!("Team {g}"),
                norm: format!("team {g}"),
            })
            .collect(),
        ..Universe::default()
    };
    let user_map = (0..directory.users.len() as UserIdx).collect();
    let mappings = (0..groups)
        .map(|g| mapping("corp", &format!("g{g}"), "production", &format!("Team {g}")))
        .collect();
    (universe, directory, user_map, mappings)
}

/// The work of a first plan and of a no-op plan after it, at one scale.
fn work_at(memberships: usize) -> (u64, u64) {
    let (universe, directory, user_map, mappings) =
        scaled(memberships / 10, memberships / 100, memberships);
    let baseline = Baseline::new();
    let policy = Fixture::new(&[]).policy;
    let mappings: Vec<&MappingConfig> = mappings.iter().collect();
    let input = |current: Vec<Held>| IdpInput {
        name: IdpName::parse("corp").unwrap(),
        mappings: &mappings,
        read: Ok(IdpRead {
            directory: &directory,
            user_map: &user_map,
            nested: true,
            max_depth: 8,
        }),
        current,
        baseline: &baseline,
    };
    let first = reconcile(&universe, &[input(Vec::new())], &policy);
    let held: Vec<Held> = first
        .adds
        .iter()
        .map(|c| Held {
            group: c.group,
            user: c.user,
            cause: c.cause.clone(),
        })
        .collect();
    let again = reconcile(&universe, &[input(held)], &policy);
    assert!(again.adds.is_empty() && again.removes.is_empty());
    (first.work, again.work)
}

/// Guards against quadratic behaviour by counting work, not time: 16 times the memberships may
/// cost at most 16 × log₂ growth (about 22 ×) with a margin; a quadratic step would cost 256 ×.
#[test]
fn work_grows_near_linearly_with_memberships() {
    let (small_first, small_noop) = work_at(2_000);
    let (large_first, large_noop) = work_at(32_000);
    for (what, small, large) in [
        ("first plan", small_first, large_first),
        ("no-op plan", small_noop, large_noop),
    ] {
        let ratio = large as f64 / small as f64;
        assert!(
            ratio < 32.0,
            "{what}: 16 × the memberships cost {ratio:.1} × the work ({small} → {large})"
        );
        assert!(
            ratio > 8.0,
            "{what}: the work counter must count the memberships ({small} → {large})"
        );
    }
}

/// A group's digest is its member count and the xxh3 of its members' key hashes in key order:
/// the same members give the same digest, a different member or order a different one.
#[test]
fn digest_hashes_the_member_keys_in_order() {
    let keys = ["ana@example.com", "bo@example.com", "ça@example.com"];
    let universe = Universe {
        users: keys.iter().map(|k| UserKey::parse(k).unwrap()).collect(),
        ..Universe::default()
    };
    let hashes = super::key_hashes(&universe);
    assert_eq!(
        hashes[2],
        xxhash_rust::xxh3::xxh3_64("ça@example.com".as_bytes())
    );
    let mut expected = Vec::new();
    for &h in &hashes {
        expected.extend_from_slice(&h.to_le_bytes());
    }
    let mut scratch = Vec::new();
    let all = super::digest(&hashes, &[0, 1, 2], &mut scratch);
    assert_eq!(all.members, 3);
    assert_eq!(all.hash, xxhash_rust::xxh3::xxh3_64(&expected));
    assert_eq!(all, super::digest(&hashes, &[0, 1, 2], &mut scratch));
    assert_ne!(
        all.hash,
        super::digest(&hashes, &[0, 2, 1], &mut scratch).hash
    );
    assert_ne!(all.hash, super::digest(&hashes, &[0, 1], &mut scratch).hash);
}
