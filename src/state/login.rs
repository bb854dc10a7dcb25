//! What a login reads and writes: one user's memberships of one IdP (through the by-user index,
//! never a scan), the issue time of the last token applied for that user and IdP, and each
//! mapped IdP group's id and name from the IdP's last applied read.
//!
//! A login takes no run lock; it waits only behind another short write transaction. It loads,
//! plans and applies inside one write transaction ([`State::login`]), after comparing the
//! token's `iat` with the stored one: of two logins of one user racing, the second to commit
//! plans against what the first wrote, and an older token changes nothing whichever is second.

use std::sync::Arc;

use rusqlite::{OptionalExtension, Transaction, params};

use super::apply::{Applied, Batch, MembershipChange, apply_in, source_id};
use super::load::{Loaded, LoadedIdp};
use super::{State, StateError, unix_now};
use crate::model::{IdpName, Provenance, Stage};

/// What a login starts from.
#[derive(Debug, Clone, Default)]
pub struct LoginState {
    /// Every group and former name; `users` holds the user when the store knows them; `idps[0]`
    /// holds their memberships of the IdP in the served stages.
    pub loaded: Loaded,
    /// Whether the store knows the user.
    pub known: bool,
    /// The `iat` of the last token applied for this user and IdP.
    pub last_issued_at: Option<i64>,
    /// (IdP group id, name) of each mapped group in the IdP's last applied read.
    pub group_names: Vec<(String, String)>,
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

impl State {
    /// One login of `user` through `idp` with a token issued at `issued_at`: in one write
    /// transaction, loads what the login starts from, asks `plan` for its (adds, removes), and
    /// applies them as actor `login` with the token's `iat`. The user is created when unknown and
    /// `auto_create`.
    pub fn login(
        &mut self,
        idp: &IdpName,
        user: &str,
        stages: &[Stage],
        issued_at: i64,
        auto_create: bool,
        plan: impl FnOnce(&LoginState) -> (Vec<LoginChange>, Vec<LoginChange>),
    ) -> Result<LoginApplied, StateError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.write_tx()?;
        let start = load_login_in(&tx, idp, user, stages).map_err(err)?;
        if !start.known && !auto_create {
            return Ok(LoginApplied::NotAllowed);
        }
        if start.last_issued_at.is_some_and(|last| last > issued_at) {
            return Ok(LoginApplied::Stale);
        }
        let (adds, removes) = plan(&start);
        let (adds, removes) = (as_changes(&adds, user), as_changes(&removes, user));
        let provenance = Provenance::Idp(idp.clone());
        let batch = Batch {
            actor: "login",
            provenance: &provenance,
            adds: &adds,
            removes: &removes,
            served: stages,
            detail: None,
            run: None,
            progress: None,
        };
        let mut applied = apply_login_in(&tx, &batch, user, issued_at).map_err(err)?;
        if applied.adds + applied.removes > 0 {
            super::bump_generation(&tx).map_err(err)?;
        }
        applied.generation = super::generation_in(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(LoginApplied::Applied(applied))
    }
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

/// What a login of `user` through `idp` starts from, read inside the login's transaction.
fn load_login_in(
    tx: &Transaction<'_>,
    idp: &IdpName,
    user: &str,
    stages: &[Stage],
) -> rusqlite::Result<LoginState> {
    let mut state = LoginState {
        loaded: Loaded {
            generation: super::generation_in(tx)?,
            groups: super::load::groups_in(tx)?,
            former_names: super::load::former_names_in(tx)?,
            causes: vec![Arc::from("")],
            ..Loaded::default()
        },
        ..LoginState::default()
    };
    let user_id: Option<i64> = tx
        .query_row("SELECT id FROM users WHERE key = ?1", [user], |r| r.get(0))
        .optional()?;
    let source: Option<i64> = tx
        .query_row(
            "SELECT id FROM sources WHERE provenance = ?1",
            [Provenance::Idp(idp.clone()).to_string()],
            |r| r.get(0),
        )
        .optional()?;
    let mut held = LoadedIdp {
        source,
        ..LoadedIdp::default()
    };
    if let Some(user_id) = user_id {
        state.known = true;
        state.loaded.users.push((user_id, user.to_owned()));
    }
    if let Some(source) = source {
        let mut names =
            tx.prepare_cached("SELECT idp_group, name FROM idp_group_names WHERE source = ?1")?;
        state.group_names = names
            .query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
    }
    if let (Some(user_id), Some(source)) = (user_id, source) {
        state.last_issued_at = tx
            .query_row(
                "SELECT issued_at FROM login_tokens WHERE source = ?1 AND user_id = ?2",
                [source, user_id],
                |r| r.get(0),
            )
            .optional()?;
        let served: Vec<&str> = stages.iter().map(Stage::as_str).collect();
        let mut rows = tx.prepare_cached(
            "SELECT m.group_id, coalesce(c.idp_group, ''), g.stage FROM memberships m
             JOIN groups g ON g.id = m.group_id LEFT JOIN causes c ON c.id = m.cause
             WHERE m.user_id = ?1 AND m.source = ?2",
        )?;
        let found: Vec<(i64, String, String)> = rows
            .query_map([user_id, source], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (group, cause, stage) in found {
            if served.contains(&stage.as_str()) {
                let index = state.loaded.causes.len() as u32;
                state.loaded.causes.push(Arc::from(cause));
                held.held.push((group, user_id, index));
            }
        }
    }
    state.loaded.idps.push(held);
    Ok(state)
}

/// The user row (created when missing), the login's changes, and the token's `iat`.
fn apply_login_in(
    tx: &Transaction<'_>,
    batch: &Batch<'_>,
    user: &str,
    issued_at: i64,
) -> rusqlite::Result<Applied> {
    let source = source_id(tx, batch.provenance)?;
    tx.execute(
        "INSERT OR IGNORE INTO users (key, created_at) VALUES (?1, ?2)",
        params![user, unix_now()],
    )?;
    let user_id: i64 = tx.query_row("SELECT id FROM users WHERE key = ?1", [user], |r| r.get(0))?;
    let applied = apply_in(tx, batch)?;
    tx.execute(
        "INSERT INTO login_tokens (source, user_id, issued_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (source, user_id) DO UPDATE SET issued_at = excluded.issued_at",
        params![source, user_id, issued_at],
    )?;
    Ok(applied)
}

/// Replaces the IdP's stored (group id, name) pairs when they differ from `names`.
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
