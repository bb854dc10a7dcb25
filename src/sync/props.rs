//! Property tests of ownership and convergence through the whole path — `sync_once` reading file
//! IdPs, the core, and the checked apply into a real state file (SPEC §1 invariants 1 to 3).
//!
//! The store holds, on the very (group, user) pairs the run's IdPs map, `direct` provenances and
//! the provenances of a third IdP the run does not read; after the run those rows are exactly as
//! before, whatever the IdPs read and whatever the guards decide. An IdP whose part applied
//! converges (a dry run right after plans nothing for it); a refused or failed one is unchanged.

use std::collections::BTreeSet;
use std::path::Path;

use proptest::prelude::*;
use serde_json::json;

use super::{RunOptions, sync_once};
use crate::config::Config;
use crate::model::{GroupName, IdpName, Provenance, Stage, UserKey};
use crate::state::{Batch, MembershipChange, State};

const USERS: usize = 5;
/// (stage, group) of the store; every IdP may map onto each.
const GROUPS: &[(&str, &str)] = &[("production", "A"), ("production", "B"), ("qa", "A")];

/// One IdP's directory: per user present/enabled, per IdP group its members; and which of its
/// IdP groups map onto which store group.
#[derive(Debug, Clone)]
struct Directory {
    users: Vec<(bool, bool)>,
    groups: Vec<Vec<u8>>,
    mappings: Vec<(u8, u8)>,
    missing_file: bool,
}

fn directory() -> impl Strategy<Value = Directory> {
    (
        proptest::collection::vec(
            (prop::bool::weighted(0.9), prop::bool::weighted(0.85)),
            USERS,
        ),
        proptest::collection::vec(proptest::collection::vec(0u8..USERS as u8, 0..5), 1..3),
        proptest::collection::vec((0u8..3, 0u8..3), 0..4),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(users, groups, mappings, missing_file)| Directory {
            users,
            groups,
            mappings,
            missing_file,
        })
}

fn export(d: &Directory) -> serde_json::Value {
    let users: Vec<_> = (0..USERS)
        .filter(|&u| d.users[u].0)
        .map(|u| json!({"id": format!("u{u}"), "email": format!("user{u}@x.com"), "enabled": d.users[u].1}))
        .collect();
    let groups: Vec<_> = d
        .groups
        .iter()
        .enumerate()
        .map(|(g, members)| {
            let members: BTreeSet<String> = members
                .iter()
                .filter(|&&u| d.users[u as usize].0)
                .map(|u| format!("u{u}"))
                .collect();
            json!({"id": format!("g{g}"), "name": format!("G{g}"), "members": members})
        })
        .collect();
    json!({"users": users, "groups": groups})
}

fn config(dir: &Path, a: &Directory, b: &Directory) -> Config {
    let mut text = String::from(
        "[daemon]\nstate = \"state.db\"\nrun_wait = 1\nstages = [\"production\", \"qa\"]\n",
    );
    for name in ["a", "b", "other"] {
        text.push_str(&format!(
            "\n[[idp]]\nname = \"{name}\"\nkind = \"file\"\npath = \"{name}.json\"\n"
        ));
    }
    let mut seen = BTreeSet::new();
    for (name, d) in [("a", a), ("b", b)] {
        for &(idp_group, target) in &d.mappings {
            let (stage, group) = GROUPS[target as usize];
            if seen.insert((name, idp_group, target)) {
                text.push_str(&format!(
                    "\n[[mapping]]\nidp = \"{name}\"\nidp_group = \"G{idp_group}\"\ngroup = \"{group}\"\nstage = \"{stage}\"\n"
                ));
            }
        }
    }
    let path = dir.join("idpsync.toml");
    std::fs::write(&path, &text).unwrap();
    Config::parse(&path, text, &[]).unwrap()
}

fn write_exports(dir: &Path, a: &Directory, b: &Directory) {
    for (name, d) in [("a", a), ("b", b)] {
        let path = dir.join(format!("{name}.json"));
        if d.missing_file {
            let _ = std::fs::remove_file(&path);
        } else {
            std::fs::write(&path, export(d).to_string()).unwrap();
        }
    }
}

fn run(config: &Config, options: RunOptions) -> super::RunOutput {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(sync_once(config, &options, &crate::progress::silent))
        .unwrap()
}

/// Every membership as (stage/group, user, provenance).
fn rows(state: &Path) -> BTreeSet<(String, String, String)> {
    let state = State::open_read_only(state).unwrap();
    let mut out = BTreeSet::new();
    for group in state.list_groups(None).unwrap() {
        for member in state.group_members(group.id).unwrap() {
            for provenance in member.provenance {
                out.insert((
                    format!("{}/{}", group.stage, group.name),
                    member.user.clone(),
                    provenance.to_string(),
                ));
            }
        }
    }
    out
}

fn of(
    rows: &BTreeSet<(String, String, String)>,
    provenance: &str,
) -> BTreeSet<(String, String, String)> {
    rows.iter().filter(|r| r.2 == provenance).cloned().collect()
}

/// Gives the store `direct` and `idp:other` provenances on the (group, user) pairs chosen.
fn seed_foreign(state: &Path, direct: &[(u8, u8)], other: &[(u8, u8)]) {
    let mut state = State::open(state).unwrap();
    let groups = state.list_groups(None).unwrap();
    let id = |g: u8| {
        let (stage, name) = GROUPS[g as usize];
        groups
            .iter()
            .find(|x| x.stage == stage && x.name == name)
            .unwrap()
            .id
    };
    for &(g, u) in direct {
        let (stage, name) = GROUPS[g as usize];
        state
            .add_direct(
                &Stage::parse(stage).unwrap(),
                &GroupName::parse(name).unwrap(),
                &UserKey::parse(&format!("user{u}@x.com")).unwrap(),
                "cli:test",
            )
            .unwrap();
    }
    let keys: Vec<String> = other
        .iter()
        .map(|&(_, u)| format!("user{u}@x.com"))
        .collect();
    let adds: Vec<MembershipChange<'_>> = other
        .iter()
        .zip(&keys)
        .map(|(&(g, _), user)| MembershipChange {
            group: id(g),
            user,
            cause: "elsewhere",
        })
        .collect();
    let provenance = Provenance::Idp(IdpName::parse("other").unwrap());
    let stages = [
        Stage::parse("production").unwrap(),
        Stage::parse("qa").unwrap(),
    ];
    state
        .apply(&Batch {
            actor: "run:seed",
            provenance: &provenance,
            adds: &adds,
            removes: &[],
            served: &stages,
            detail: None,
            run: None,
            progress: None,
        })
        .unwrap();
}

/// The store's groups: all three, made before any run (as `groups create` would).
fn create_groups(state: &Path) {
    let mut state = State::open(state).unwrap();
    for (stage, name) in GROUPS {
        state
            .create_group(
                &Stage::parse(stage).unwrap(),
                &GroupName::parse(name).unwrap(),
                "",
                &Default::default(),
                "cli:test",
            )
            .unwrap();
    }
}

fn pairs() -> impl Strategy<Value = Vec<(u8, u8)>> {
    proptest::collection::vec((0u8..3, 0u8..USERS as u8), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_run_never_touches_direct_or_another_idps_provenance(
        before in proptest::collection::vec(directory(), 2),
        now in proptest::collection::vec(directory(), 2),
        direct in pairs(),
        other in pairs(),
        permissive in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.db");
        create_groups(&state);
        // A history: the earlier directories applied whatever the guards say.
        let earlier: Vec<Directory> = before.iter().map(|d| Directory { missing_file: false, ..d.clone() }).collect();
        write_exports(dir.path(), &earlier[0], &earlier[1]);
        let history = config(dir.path(), &earlier[0], &earlier[1]);
        let idps = vec![IdpName::parse("a").unwrap(), IdpName::parse("b").unwrap()];
        run(&history, RunOptions { idps: idps.clone(), allow_empty: true, allow_removals: Some(u64::MAX), ..RunOptions::default() });
        seed_foreign(&state, &direct, &other);
        let held = rows(&state);

        // The run under test: new directories and mappings, the guards as configured or lifted.
        write_exports(dir.path(), &now[0], &now[1]);
        let config = config(dir.path(), &now[0], &now[1]);
        let options = RunOptions {
            idps: idps.clone(),
            allow_empty: permissive,
            allow_removals: permissive.then_some(u64::MAX),
            ..RunOptions::default()
        };
        let output = run(&config, options.clone());
        let after = rows(&state);
        prop_assert_eq!(of(&after, "direct"), of(&held, "direct"), "direct provenances changed");
        prop_assert_eq!(of(&after, "idp:other"), of(&held, "idp:other"), "another IdP's provenances changed");

        let again = run(&config, RunOptions { dry_run: true, full: true, ..options });
        for stats in &output.idps {
            let name = stats.name.as_str();
            let provenance = format!("idp:{name}");
            match stats.outcome {
                crate::model::RunOutcome::Applied => {
                    let left = again.report.adds.iter().chain(&again.report.removes).filter(|c| &*c.idp == name).count();
                    prop_assert_eq!(left, 0, "{} applied but did not converge", name);
                }
                _ => prop_assert_eq!(of(&after, &provenance), of(&held, &provenance), "{} was not applied yet changed", name),
            }
        }
    }
}
