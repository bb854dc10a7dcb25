//! Criterion benchmarks of `reconcile()` alone at 10k, 100k and 1M memberships: a first plan into an
//! empty store and a no-op plan, to show near-linear growth. Run with `cargo bench --bench reconcile`.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use idpsync::config::{MappingConfig, SafetyConfig};
use idpsync::directory::{Directory, Snapshot, SnapshotGroup, SnapshotUser};
use idpsync::model::{GroupName, IdpName, Stage, UserKey};
use idpsync::reconcile::{
    Baseline, GroupEntry, Held, IdpInput, IdpRead, Policy, Universe, UserIdx, reconcile,
};

/// One user per ten memberships, one group per hundred, one mapping per group; deterministic.
struct Scale {
    universe: Universe,
    directory: Directory,
    user_map: Vec<UserIdx>,
    mappings: Vec<MappingConfig>,
}

fn scale(memberships: usize) -> Scale {
    let (users, groups) = (memberships / 10, memberships / 100);
    let mut seed: u64 = 42;
    let mut next = move |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) % n as u64) as usize
    };
    let mut members = vec![Vec::new(); groups];
    for _ in 0..memberships {
        members[next(groups)].push(format!("u{}", next(users)));
    }
    let snapshot = Snapshot {
        users: (0..users)
            .map(|i| SnapshotUser {
                id: format!("u{i}"),
                key: Some(format!("user{i:06}@example.com")),
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
    let directory = Directory::resolve(snapshot).expect("generated directories are consistent");
    let stage = Stage::parse("production").expect("valid stage");
    let universe = Universe {
        users: directory
            .users
            .iter()
            .map(|u| u.key.clone())
            .collect::<Vec<UserKey>>(),
        groups: (0..groups)
            .map(|g| GroupEntry {
                stage: stage.clone(),
                name: format!("Team {g}"),
                norm: format!("team {g}"),
            })
            .collect(),
        aliases: Vec::new(),
    };
    let user_map = (0..directory.users.len() as UserIdx).collect();
    let mappings = (0..groups)
        .map(|g| MappingConfig {
            idp: IdpName::parse("corp").expect("valid name"),
            idp_group: format!("g{g}"),
            group: GroupName::parse(&format!("Team {g}")).expect("valid name"),
            stage: stage.clone(),
            line: None,
        })
        .collect();
    Scale {
        universe,
        directory,
        user_map,
        mappings,
    }
}

fn policy() -> Policy {
    Policy {
        safety: SafetyConfig::default(),
        allow_removals: None,
        allow_empty: false,
        served_stages: [Stage::parse("production").expect("valid stage")].into(),
        remote_missing: Default::default(),
        command: "idpsync reconcile".into(),
        scope: Default::default(),
    }
}

fn input<'a>(
    s: &'a Scale,
    mappings: &'a [&'a MappingConfig],
    current: Vec<Held>,
    baseline: &'a Baseline,
) -> IdpInput<'a> {
    IdpInput {
        name: IdpName::parse("corp").expect("valid name"),
        mappings,
        read: Ok(IdpRead {
            directory: &s.directory,
            user_map: &s.user_map,
            nested: true,
            max_depth: 32,
        }),
        current,
        baseline,
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("reconcile");
    group.sample_size(10);
    let policy = policy();
    let baseline = Baseline::new();
    for memberships in [10_000, 100_000, 1_000_000] {
        let s = scale(memberships);
        let mappings: Vec<&MappingConfig> = s.mappings.iter().collect();
        group.throughput(Throughput::Elements(memberships as u64));
        group.bench_with_input(BenchmarkId::new("first", memberships), &s, |b, s| {
            b.iter(|| {
                reconcile(
                    &s.universe,
                    &[input(s, &mappings, Vec::new(), &baseline)],
                    &policy,
                )
            })
        });
        let first = reconcile(
            &s.universe,
            &[input(&s, &mappings, Vec::new(), &baseline)],
            &policy,
        );
        let held: Vec<Held> = first
            .adds
            .iter()
            .map(|c| Held {
                group: c.group,
                user: c.user,
                cause: Arc::clone(&c.cause),
            })
            .collect();
        group.bench_with_input(BenchmarkId::new("no-op", memberships), &s, |b, s| {
            b.iter(|| {
                reconcile(
                    &s.universe,
                    &[input(s, &mappings, held.clone(), &baseline)],
                    &policy,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
