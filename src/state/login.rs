//! What a login reads and writes: one user's memberships (through the by-user index, never a
//! scan), the issue time of the last token applied for that user and IdP, and the groups the
//! IdP's mappings can reach, with each mapped IdP group's id and name from the IdP's last applied
//! read.
//!
//! A login takes no run lock; it waits only behind another short write transaction. It loads
//! and plans on a snapshot, outside any write lock ([`State::login`]); its write transaction then
//! applies that plan when the user's memberships of the IdP are still those it planned against
//! (the generation not having moved says so at no cost; else they are read again), or loads and
//! plans once more inside the write transaction when they are not. The token's `iat` is compared
//! with the stored one there: of two logins of one user racing, the second to commit plans
//! against what the first wrote, and an older token changes nothing whichever is second.
//!
//! The groups a login can reach do not depend on the user, so they are kept between logins
//! ([`Catalogs`]) until the `catalog` counter moves: triggers move it at every change of groups,
//! their roles, former names or IdP group names, whichever connection writes it. (`PRAGMA
//! data_version` would move at every other login's commit, and a pool of connections would read
//! them again each time.) The names behind the ids of the user's own rows are kept the same way
//! ([`RowNames`]), and forgotten when a login's write fails to commit.

use std::sync::Arc;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use rustc_hash::FxHashSet as HashSet;

use super::apply::{Applied, Batch, MembershipChange, apply_in, source_id};
use super::load::{FormerName, Loaded, LoadedGroup, LoadedIdp};
use super::user_rows::{MembershipRow, RowNames, user_memberships_of};
use super::{IdpGroupNames, State, StateError, UserMembership, unix_now};
use crate::model::{IdpName, Provenance, Stage};

/// Who signs in, through which IdP, and what the login may reach.
#[derive(Debug, Clone, Copy)]
pub struct LoginRequest<'a> {
    /// The IdP whose token it is.
    pub idp: &'a IdpName,
    /// The user key.
    pub user: &'a str,
    /// The stages this store serves.
    pub stages: &'a [Stage],
    /// The token's `iat`.
    pub issued_at: i64,
    /// Whether an unknown user is created.
    pub auto_create: bool,
    /// (stage, normalised name) of every group the IdP's mappings name.
    pub targets: &'a [(Stage, String)],
}

/// What a login starts from.
#[derive(Debug, Clone)]
pub struct LoginState<'a> {
    /// The groups the IdP's mappings name (by name or former name) and the groups the user is
    /// in; `users` holds the user when the store knows them; `idps[0]` holds their memberships
    /// of the IdP in the served stages.
    pub loaded: Loaded,
    /// The `iat` of the last token applied for this user and IdP.
    pub last_issued_at: Option<i64>,
    /// (IdP group id, name) of each mapped group in the IdP's last applied read.
    pub group_names: &'a IdpGroupNames,
}

/// A change a login plans: a provenance of the login's IdP added to, or removed from, `group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginChange {
    /// The group's row id.
    pub group: i64,
    /// The IdP group behind it.
    pub cause: String,
}

/// What a login did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginApplied {
    /// The user is unknown and may not be created.
    NotAllowed,
    /// A token issued later was applied already: nothing changed.
    Stale,
    /// The plan went through the checked apply.
    Applied(Applied),
}

/// A login's outcome, with the user's groups as its transaction left them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginDone {
    /// What the login did.
    pub applied: LoginApplied,
    /// Every group the user is in afterwards, as `users show` lists them.
    pub memberships: Vec<UserMembership>,
}

/// The login catalogs of one connection, one per IdP.
#[derive(Debug, Default)]
pub(super) struct Catalogs {
    by_idp: Vec<Catalog>,
}

/// What every login of one IdP starts from, whoever signs in.
#[derive(Debug)]
struct Catalog {
    idp: IdpName,
    /// The `catalog` counter when it was read.
    version: i64,
    /// The targets it was read for.
    targets: Vec<(Stage, String)>,
    /// The groups the targets name, by name or former name, and their former names.
    groups: Vec<LoadedGroup>,
    former_names: Vec<FormerName>,
    /// (IdP group id, name) from the IdP's last applied read.
    group_names: IdpGroupNames,
}

impl Catalogs {
    /// The catalog of `request`'s IdP, read again when the `catalog` counter moved since.
    fn current(
        &mut self,
        tx: &Transaction<'_>,
        request: &LoginRequest<'_>,
    ) -> rusqlite::Result<&Catalog> {
        let version = super::catalog_in(tx)?;
        let found = self.by_idp.iter().position(|c| c.idp == *request.idp);
        let fresh = found.filter(|&i| {
            let catalog = &self.by_idp[i];
            catalog.version == version && catalog.targets == request.targets
        });
        if let Some(i) = fresh {
            return Ok(&self.by_idp[i]);
        }
        let catalog = read_catalog(tx, request, version)?;
        let i = match found {
            Some(i) => {
                self.by_idp[i] = catalog;
                i
            }
            None => {
                self.by_idp.push(catalog);
                self.by_idp.len() - 1
            }
        };
        Ok(&self.by_idp[i])
    }
}

/// Reads the catalog of `request`'s IdP.
fn read_catalog(
    tx: &Transaction<'_>,
    request: &LoginRequest<'_>,
    version: i64,
) -> rusqlite::Result<Catalog> {
    let targets: HashSet<(&str, &str)> = request
        .targets
        .iter()
        .map(|(stage, norm)| (stage.as_str(), norm.as_str()))
        .collect();
    let named = |stage: &str, norm: &str| targets.contains(&(stage, norm));
    let former = super::load::former_names_in(tx)?;
    let by_former: HashSet<i64> = former
        .iter()
        .filter(|f| named(&f.stage, &f.norm))
        .map(|f| f.group_id)
        .collect();
    let groups: Vec<LoadedGroup> = super::load::groups_in(tx)?
        .into_iter()
        .filter(|g| named(&g.stage, &g.norm) || by_former.contains(&g.id))
        .collect();
    let kept: HashSet<i64> = groups.iter().map(|g| g.id).collect();
    let group_names: Vec<(String, String)> = match idp_source(tx, request.idp)? {
        Some(source) => tx
            .prepare_cached("SELECT idp_group, name FROM idp_group_names WHERE source = ?1")?
            .query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(Catalog {
        idp: request.idp.clone(),
        version,
        targets: request.targets.to_vec(),
        groups,
        former_names: former
            .into_iter()
            .filter(|f| kept.contains(&f.group_id))
            .collect(),
        group_names: IdpGroupNames::new(group_names),
    })
}

/// A login decided before its write.
enum Prepared {
    /// Nothing to write: not allowed, or a stale token.
    Done(LoginDone),
    /// Planned at `generation`.
    Planned {
        generation: i64,
        /// The (group, cause) of each membership of the IdP the plan started from.
        held: Vec<(i64, String)>,
        adds: Vec<LoginChange>,
        removes: Vec<LoginChange>,
        before: Vec<UserMembership>,
    },
}

impl State {
    /// One login (`request`): loads what the login starts from and asks `plan` for its (adds,
    /// removes) on a snapshot, without the write lock; then, in one short write transaction,
    /// applies them as actor `login` with the token's `iat` — or, when the user's memberships of
    /// the IdP changed since the snapshot, loads and plans again inside that transaction. The
    /// user is created when unknown and `request.auto_create`. `planned` is called between the
    /// two, before the login queues for its write turn.
    pub fn login(
        &mut self,
        request: &LoginRequest<'_>,
        plan: impl Fn(&LoginState<'_>) -> (Vec<LoginChange>, Vec<LoginChange>),
        planned: impl FnOnce(),
    ) -> Result<LoginDone, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let snapshot = {
            let tx = self.conn.transaction().map_err(err)?;
            prepare_in(
                &tx,
                &mut self.login_catalogs,
                &mut self.row_names,
                request,
                &plan,
            )
            .map_err(err)?
        };
        let (generation, held, adds, removes, before) = match snapshot {
            Prepared::Done(done) => return Ok(done),
            Prepared::Planned {
                generation,
                held,
                adds,
                removes,
                before,
            } => (generation, held, adds, removes, before),
        };
        planned();
        crate::failpoint!("login::before_turn");
        // One writer of this process at a time: logins queue here rather than in SQLite's busy
        // handler, and a run's apply pauses for them (`turns.rs`).
        let _turn = super::turns::take_turn();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        // The plan stands when the user's memberships of the IdP are as it found them: at no
        // cost when the generation has not moved, else read again. Whatever else moved (other
        // users, groups, IdP group names), it is then this login as of its snapshot — the checked
        // apply still drops a change whose group was deleted or whose stage is not served. The
        // token rows are checked again below.
        let before = if super::generation_in(&tx).map_err(err)? == generation {
            Some(before)
        } else {
            let now = user_now_in(&tx, &mut self.row_names, request).map_err(err)?;
            let same = now
                .held_key()
                .into_iter()
                .eq(held.iter().map(|(g, c)| (*g, c.as_str())));
            same.then(|| user_memberships_of(&now.rows, None))
        };
        let (adds, removes, before) = match before {
            Some(before) => match recheck_in(&tx, request).map_err(err)? {
                Some(applied) => {
                    return Ok(LoginDone {
                        applied,
                        memberships: before,
                    });
                }
                None => (adds, removes, before),
            },
            None => {
                let again = prepare_in(
                    &tx,
                    &mut self.login_catalogs,
                    &mut self.row_names,
                    request,
                    &plan,
                );
                match again.map_err(err)? {
                    Prepared::Done(done) => return Ok(done),
                    Prepared::Planned {
                        adds,
                        removes,
                        before,
                        ..
                    } => (adds, removes, before),
                }
            }
        };
        let user = request.user;
        let (adds, removes) = (as_changes(&adds, user), as_changes(&removes, user));
        let provenance = Provenance::Idp(request.idp.clone());
        let batch = Batch {
            actor: "login",
            provenance: &provenance,
            adds: &adds,
            removes: &removes,
            served: request.stages,
            detail: None,
            run: None,
            progress: None,
        };
        let row_names = &mut self.row_names;
        let written = (move || -> rusqlite::Result<(Applied, Vec<UserMembership>)> {
            let (mut applied, user_id) = apply_login_in(&tx, &batch, request)?;
            let changed = applied.adds + applied.removes > 0;
            if changed {
                super::bump_generation(&tx)?;
            }
            let memberships = if changed {
                user_memberships_of(&row_names.rows_in(&tx, user_id)?, None)
            } else {
                before
            };
            applied.generation = super::generation_in(&tx)?;
            crate::failpoint!("login::before_commit", |_| Err(
                rusqlite::Error::InvalidQuery
            ));
            tx.commit()?;
            Ok((applied, memberships))
        })();
        match written {
            Ok((applied, memberships)) => Ok(LoginDone {
                applied: LoginApplied::Applied(applied),
                memberships,
            }),
            Err(e) => {
                // What the names learnt inside a transaction that did not commit may name rows
                // that are gone, and a cause or source id it took will be taken again: forgotten.
                self.row_names = RowNames::default();
                Err(err(e))
            }
        }
    }
}

/// Loads what a login of `request` starts from inside `tx` and decides it: not allowed, stale,
/// or planned by `plan`.
fn prepare_in(
    tx: &Transaction<'_>,
    catalogs: &mut Catalogs,
    names: &mut RowNames,
    request: &LoginRequest<'_>,
    plan: &impl Fn(&LoginState<'_>) -> (Vec<LoginChange>, Vec<LoginChange>),
) -> rusqlite::Result<Prepared> {
    let catalog = catalogs.current(tx, request)?;
    let (start, user) = load_login_in(tx, names, request, catalog)?;
    let before = match user.id {
        Some(_) => user_memberships_of(&user.rows, None),
        None if !request.auto_create => {
            return Ok(Prepared::Done(LoginDone {
                applied: LoginApplied::NotAllowed,
                memberships: Vec::new(),
            }));
        }
        None => Vec::new(),
    };
    if start
        .last_issued_at
        .is_some_and(|last| last > request.issued_at)
    {
        return Ok(Prepared::Done(LoginDone {
            applied: LoginApplied::Stale,
            memberships: before,
        }));
    }
    let (adds, removes) = plan(&start);
    Ok(Prepared::Planned {
        generation: start.loaded.generation,
        held: user
            .held_key()
            .into_iter()
            .map(|(g, c)| (g, c.to_owned()))
            .collect(),
        adds,
        removes,
        before,
    })
}

/// What a plan made on an earlier snapshot must still check at its write: a newer token
/// applied since, or the user gone while they may not be created.
fn recheck_in(
    tx: &Transaction<'_>,
    request: &LoginRequest<'_>,
) -> rusqlite::Result<Option<LoginApplied>> {
    let Some(user_id) = user_id_in(tx, request.user)? else {
        return Ok((!request.auto_create).then_some(LoginApplied::NotAllowed));
    };
    let last = last_issued_in(tx, idp_source(tx, request.idp)?, user_id)?;
    Ok(last
        .is_some_and(|last| last > request.issued_at)
        .then_some(LoginApplied::Stale))
}

/// The row id of the user with key `user`, when the store knows them.
fn user_id_in(tx: &Transaction<'_>, user: &str) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached("SELECT id FROM users WHERE key = ?1")?
        .query_row([user], |r| r.get(0))
        .optional()
}

/// The `iat` of the last token applied for `user_id` through the IdP of `source`.
fn last_issued_in(
    tx: &Transaction<'_>,
    source: Option<i64>,
    user_id: i64,
) -> rusqlite::Result<Option<i64>> {
    let Some(source) = source else {
        return Ok(None);
    };
    tx.prepare_cached("SELECT issued_at FROM login_tokens WHERE source = ?1 AND user_id = ?2")?
        .query_row([source, user_id], |r| r.get(0))
        .optional()
}

/// A login's changes of `user` as the checked apply takes them.
fn as_changes<'a>(list: &'a [LoginChange], user: &'a str) -> Vec<MembershipChange<'a>> {
    list.iter()
        .map(|c| MembershipChange {
            group: c.group,
            user,
            cause: &c.cause,
        })
        .collect()
}

/// The source row of `idp`, when it has one.
fn idp_source(tx: &Transaction<'_>, idp: &IdpName) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached("SELECT id FROM sources WHERE provenance = ?1")?
        .query_row([Provenance::Idp(idp.clone()).to_string()], |r| r.get(0))
        .optional()
}

/// What a login of `request` starts from, read inside the login's transaction over `catalog`,
/// with the user as the store has them.
fn load_login_in<'c>(
    tx: &Transaction<'_>,
    names: &mut RowNames,
    request: &LoginRequest<'_>,
    catalog: &'c Catalog,
) -> rusqlite::Result<(LoginState<'c>, UserNow)> {
    let mut state = LoginState {
        loaded: Loaded {
            generation: super::generation_in(tx)?,
            groups: catalog.groups.clone(),
            former_names: catalog.former_names.clone(),
            causes: vec![Arc::from("")],
            ..Loaded::default()
        },
        group_names: &catalog.group_names,
        last_issued_at: None,
    };
    let user = user_now_in(tx, names, request)?;
    let mut held = LoadedIdp {
        source: user.source,
        ..LoadedIdp::default()
    };
    if let Some(user_id) = user.id {
        state.loaded.users.push((user_id, request.user.to_owned()));
        state.last_issued_at = last_issued_in(tx, user.source, user_id)?;
        let mut known: HashSet<i64> = catalog.groups.iter().map(|g| g.id).collect();
        for &i in &user.held {
            let row = &user.rows[i];
            let index = state.loaded.causes.len() as u32;
            state.loaded.causes.push(row.cause.clone());
            held.held.push((row.group.group.id, user_id, index));
            // A held group no mapping names still belongs in the world: its membership is
            // current, and for a login-only IdP it is removed.
            if known.insert(row.group.group.id) {
                state.loaded.groups.push(row.group.group.clone());
            }
        }
    }
    state.loaded.idps.push(held);
    Ok((state, user))
}

/// A user as the store has them at one moment.
struct UserNow {
    /// Their row id, when the store knows them.
    id: Option<i64>,
    /// The source row of the login's IdP, when it has one.
    source: Option<i64>,
    /// Every membership of theirs.
    rows: Vec<MembershipRow>,
    /// Which of `rows` are the IdP's in a served stage: what a plan starts from.
    held: Vec<usize>,
}

impl UserNow {
    /// The (group, cause) of each membership a plan starts from, in order.
    fn held_key(&self) -> Vec<(i64, &str)> {
        let mut key: Vec<(i64, &str)> = self
            .held
            .iter()
            .map(|&i| (self.rows[i].group.group.id, &*self.rows[i].cause))
            .collect();
        key.sort_unstable();
        key
    }
}

/// `request`'s user as the store has them now: one range of the by-user index, named through
/// `names` (which reads only the groups, sources and causes it does not hold yet).
fn user_now_in(
    tx: &Transaction<'_>,
    names: &mut RowNames,
    request: &LoginRequest<'_>,
) -> rusqlite::Result<UserNow> {
    let id = user_id_in(tx, request.user)?;
    let source = idp_source(tx, request.idp)?;
    let rows = match id {
        Some(id) => names.rows_in(tx, id)?,
        None => Vec::new(),
    };
    let held = (0..rows.len())
        .filter(|&i| {
            Some(rows[i].source) == source
                && request
                    .stages
                    .iter()
                    .any(|s| s.as_str() == rows[i].group.group.stage)
        })
        .collect();
    Ok(UserNow {
        id,
        source,
        rows,
        held,
    })
}

/// The user row (created when missing), the login's changes, and the token's `iat`; with the
/// user's row id.
fn apply_login_in(
    tx: &Transaction<'_>,
    batch: &Batch<'_>,
    request: &LoginRequest<'_>,
) -> rusqlite::Result<(Applied, i64)> {
    let source = source_id(tx, batch.provenance)?;
    tx.prepare_cached("INSERT OR IGNORE INTO users (key, created_at) VALUES (?1, ?2)")?
        .execute(params![request.user, unix_now()])?;
    let user_id = user_id_in(tx, request.user)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    // Most sign-ins change nothing but the token's `iat`: the checked apply of nothing is skipped.
    let applied = if batch.adds.is_empty() && batch.removes.is_empty() {
        Applied::default()
    } else {
        apply_in(tx, batch)?
    };
    tx.prepare_cached(
        "INSERT INTO login_tokens (source, user_id, issued_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (source, user_id) DO UPDATE SET issued_at = excluded.issued_at",
    )?
    .execute(params![source, user_id, request.issued_at])?;
    Ok((applied, user_id))
}

/// Replaces the IdP's stored (group id, name) pairs when they differ from `names` (the triggers
/// of the `catalog` counter then move it, and logins read them again).
pub(super) fn record_group_names(
    tx: &Transaction<'_>,
    source: i64,
    names: &[(&str, &str)],
) -> rusqlite::Result<()> {
    let mut stored: Vec<(String, String)> = tx
        .prepare_cached(
            "SELECT idp_group, name FROM idp_group_names WHERE source = ?1 ORDER BY idp_group",
        )?
        .query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    stored.sort();
    let mut wanted: Vec<(&str, &str)> = names.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let same = stored.len() == wanted.len()
        && stored
            .iter()
            .zip(&wanted)
            .all(|((a, b), (c, d))| a == c && b == d);
    if same {
        return Ok(());
    }
    tx.execute("DELETE FROM idp_group_names WHERE source = ?1", [source])?;
    let mut put = tx.prepare_cached(
        "INSERT OR REPLACE INTO idp_group_names (source, idp_group, name) VALUES (?1, ?2, ?3)",
    )?;
    for (id, name) in wanted {
        put.execute(params![source, id, name])?;
    }
    Ok(())
}
