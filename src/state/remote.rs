//! What the state keeps for a remote group store: the stages it serves (which turns the journal
//! triggers on), the journal's open entries and their outcomes, the cache of remote group ids and
//! the remote memberships with their owner. Remote user ids and the request budget's history are
//! in `remote_cache.rs`.
//!
//! Only [`crate::store`] calls these. Nothing here talks to a store; every outcome is written in
//! one short transaction, so a crash between two calls leaves the journal where it was.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use super::{State, StateError, sqlite, unix_now};
use crate::model::Stage;

/// A journal entry not yet done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenEntry {
    /// Its id.
    pub id: i64,
    /// `pending`, `sending` (sent once, its outcome unknown: a crash may have come between) or
    /// `unresolved` (the store did not know the user).
    pub status: String,
    /// The local group.
    pub group_id: i64,
    /// Its stage.
    pub stage: String,
    /// Its name, as the store is asked for it.
    pub group: String,
    /// The local user.
    pub user_id: i64,
    /// The user key.
    pub user: String,
}

/// A remote group as cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedGroup {
    /// The store's id for it.
    pub remote_id: String,
    /// Its name in the store when last seen.
    pub remote_name: String,
    /// When its members were last read (never: `None`).
    pub read_at: Option<i64>,
}

/// Who owns a remote membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// idpsync put it there (the journal recorded it).
    Ours,
    /// It was there before idpsync: never removed by idpsync.
    Preexisting,
}

impl Owner {
    fn as_str(self) -> &'static str {
        match self {
            Owner::Ours => "ours",
            Owner::Preexisting => "preexisting",
        }
    }

    fn parse(text: &str) -> Owner {
        if text == "ours" {
            Owner::Ours
        } else {
            Owner::Preexisting
        }
    }
}

/// What one push settled, written at once.
#[derive(Debug, Default)]
pub struct Settled {
    /// Entries done.
    pub done: Vec<i64>,
    /// Entries left for a later run because the store did not know the user.
    pub unresolved: Vec<i64>,
    /// Entries the store rejected for good, with why.
    pub failed: Vec<(i64, String)>,
    /// Remote memberships now known, with their owner: (remote group, remote user, owner).
    pub members: Vec<(String, String, Owner)>,
    /// Remote memberships now gone: (remote group, remote user).
    pub gone: Vec<(String, String)>,
}

impl State {
    /// Records which stages the remote store `tenant` serves (none: the embedded store only),
    /// so that from the next write on, changes in them are journalled.
    pub fn serve_remotely(&mut self, tenant: &str, stages: &[Stage]) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| sqlite(&path, e);
        let current: Vec<(String, String)> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT stage, tenant FROM remote_stages ORDER BY stage")
                .map_err(err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        let mut wanted: Vec<(String, String)> = stages
            .iter()
            .map(|s| (s.as_str().to_owned(), tenant.to_owned()))
            .collect();
        wanted.sort();
        if current == wanted {
            return Ok(());
        }
        let tx = self.write_tx()?;
        tx.execute("DELETE FROM remote_stages", []).map_err(err)?;
        for (stage, tenant) in &wanted {
            tx.execute(
                "INSERT INTO remote_stages (stage, tenant) VALUES (?1, ?2)",
                params![stage, tenant],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The journal's entries for `tenant` not yet done (failed ones aside), oldest first.
    pub fn journal_open(&self, tenant: &str) -> Result<Vec<OpenEntry>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT j.id, j.status, j.group_id, g.stage, g.name, j.user_id, u.key
                 FROM journal j JOIN groups g ON g.id = j.group_id JOIN users u ON u.id = j.user_id
                 WHERE j.tenant = ?1 AND j.status IN ('pending', 'sending', 'unresolved') ORDER BY j.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([tenant], |r| {
                Ok(OpenEntry {
                    id: r.get(0)?,
                    status: r.get(1)?,
                    group_id: r.get(2)?,
                    stage: r.get(3)?,
                    group: r.get(4)?,
                    user_id: r.get(5)?,
                    user: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Entries that can never be sent are marked failed: their group is gone from the state, they
    /// were journalled for another store (the configuration was pointed elsewhere since), or the
    /// store no longer serves their stage.
    pub fn journal_orphans(&mut self, tenant: &str) -> Result<u64, StateError> {
        let n = self
            .conn
            .execute(
                "UPDATE journal SET status = 'failed', error = 'the group was deleted before the store was sent the change', updated_at = ?2
                 WHERE tenant = ?1 AND status IN ('pending', 'sending', 'unresolved')
                   AND NOT EXISTS (SELECT 1 FROM groups g WHERE g.id = journal.group_id)",
                params![tenant, unix_now()],
            )
            .map_err(|e| self.err(e))?;
        let stranded = self
            .conn
            .execute(
                "UPDATE journal SET status = 'failed', error = 'journalled for another store (' || tenant || '); the configuration names ' || ?1 || ' now', updated_at = ?2
                 WHERE tenant <> ?1 AND status IN ('pending', 'sending', 'unresolved')",
                params![tenant, unix_now()],
            )
            .map_err(|e| self.err(e))?;
        let unserved = self
            .conn
            .execute(
                "UPDATE journal SET status = 'failed', error = 'the store no longer serves this stage', updated_at = ?2
                 WHERE tenant = ?1 AND status IN ('pending', 'sending', 'unresolved')
                   AND NOT EXISTS (SELECT 1 FROM groups g JOIN remote_stages r ON r.stage = g.stage AND r.tenant = ?1
                                   WHERE g.id = journal.group_id)",
                params![tenant, unix_now()],
            )
            .map_err(|e| self.err(e))?;
        Ok((n + stranded + unserved) as u64)
    }

    /// Marks entries `sending` and counts an attempt, before their request goes out: after a
    /// crash, an entry found `sending` may have reached the store.
    pub fn journal_sending(&mut self, ids: &[i64]) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| sqlite(&path, e);
        let now = unix_now();
        let tx = self.write_tx()?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE journal SET status = 'sending', attempts = attempts + 1, updated_at = ?2 WHERE id = ?1",
                )
                .map_err(err)?;
            for id in ids {
                stmt.execute(params![id, now]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Writes what a push settled, in one transaction; failed entries are audited with `actor`.
    pub fn journal_settle(
        &mut self,
        tenant: &str,
        settled: &Settled,
        actor: &str,
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| sqlite(&path, e);
        let now = unix_now();
        let tx = self.write_tx()?;
        {
            let mut done = tx
                .prepare_cached("DELETE FROM journal WHERE id = ?1")
                .map_err(err)?;
            for id in &settled.done {
                done.execute([id]).map_err(err)?;
            }
            let mut unresolved = tx
                .prepare_cached(
                    "UPDATE journal SET status = 'unresolved', error = 'the store does not know this user', updated_at = ?2 WHERE id = ?1",
                )
                .map_err(err)?;
            for id in &settled.unresolved {
                unresolved.execute(params![id, now]).map_err(err)?;
            }
            let mut failed = tx
                .prepare_cached(
                    "UPDATE journal SET status = 'failed', error = ?2, updated_at = ?3 WHERE id = ?1",
                )
                .map_err(err)?;
            let mut audit = tx
                .prepare_cached(
                    "INSERT INTO audit (at, actor, op, group_id, user_id, source, cause, detail)
                     SELECT ?2, ?3, 'drop', group_id, user_id, source, cause, ?4 FROM journal WHERE id = ?1",
                )
                .map_err(err)?;
            for (id, error) in &settled.failed {
                failed.execute(params![id, error, now]).map_err(err)?;
                let detail = format!("journal entry {id}: the store rejected the change: {error}");
                audit
                    .execute(params![id, now, actor, detail])
                    .map_err(err)?;
            }
            let mut member = tx
                .prepare_cached(
                    "INSERT INTO remote_members (tenant, remote_group, remote_user, owner) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT DO UPDATE SET owner = excluded.owner",
                )
                .map_err(err)?;
            for (group, user, owner) in &settled.members {
                member
                    .execute(params![tenant, group, user, owner.as_str()])
                    .map_err(err)?;
            }
            let mut gone = tx
                .prepare_cached(
                    "DELETE FROM remote_members WHERE tenant = ?1 AND remote_group = ?2 AND remote_user = ?3",
                )
                .map_err(err)?;
            for (group, user) in &settled.gone {
                gone.execute(params![tenant, group, user]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// The cached remote group of local group `group_id`.
    pub fn remote_group(
        &self,
        tenant: &str,
        group_id: i64,
    ) -> Result<Option<CachedGroup>, StateError> {
        self.conn
            .query_row(
                "SELECT remote_id, remote_name, read_at FROM remote_groups WHERE tenant = ?1 AND group_id = ?2",
                params![tenant, group_id],
                |r| {
                    Ok(CachedGroup {
                        remote_id: r.get(0)?,
                        remote_name: r.get(1)?,
                        read_at: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Caches the remote group of `group_id` (or forgets it, with `None`, after the store said
    /// it is gone). The first time the group is cached, every member the mirror holds is
    /// journalled for the store. Who owns its memberships is kept by the remote id: found again under the same
    /// id, the group is still idpsync's to manage as before.
    pub fn set_remote_group(
        &mut self,
        tenant: &str,
        group_id: i64,
        group: Option<&CachedGroup>,
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| sqlite(&path, e);
        let tx = self.write_tx()?;
        let first_sight = group.is_some()
            && !tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM remote_groups WHERE tenant = ?1 AND group_id = ?2)",
                    params![tenant, group_id],
                    |r| r.get::<_, bool>(0),
                )
                .map_err(err)?;
        if first_sight {
            // The mirror may hold members from before this store served the stage (or from
            // before it was pointed at this tenant): the store is sent them too, as adds the
            // usual way, so whoever is there already stays "preexisting".
            tx.execute(
                "INSERT INTO journal (run_id, created_at, updated_at, op, group_id, user_id, source, cause, status, tenant, error)
                 SELECT '', ?3, ?3, 'add', m.group_id, m.user_id, min(m.source), NULL, 'pending', ?1, 'the group was first seen in the store'
                 FROM memberships m WHERE m.group_id = ?2
                   AND EXISTS (SELECT 1 FROM groups g JOIN remote_stages r ON r.stage = g.stage
                               WHERE g.id = m.group_id AND r.tenant = ?1)
                   AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.tenant = ?1 AND j.group_id = m.group_id
                                   AND j.user_id = m.user_id AND j.status IN ('pending', 'sending', 'unresolved'))
                 GROUP BY m.group_id, m.user_id",
                params![tenant, group_id, unix_now()],
            )
            .map_err(err)?;
        }
        match group {
            Some(g) => tx.execute(
                "INSERT INTO remote_groups (tenant, group_id, remote_id, remote_name, read_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO UPDATE SET remote_id = excluded.remote_id, remote_name = excluded.remote_name, read_at = excluded.read_at",
                params![tenant, group_id, g.remote_id, g.remote_name, g.read_at],
            ),
            None => tx.execute(
                "DELETE FROM remote_groups WHERE tenant = ?1 AND group_id = ?2",
                params![tenant, group_id],
            ),
        }
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// The local id of group `name` (normalised) in `stage`, if the state has it.
    pub fn group_id_of(&self, stage: &str, norm: &str) -> Result<Option<i64>, StateError> {
        self.conn
            .query_row(
                "SELECT id FROM groups WHERE stage = ?1 AND norm = ?2",
                params![stage, norm],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The remote memberships of `group_id` idpsync knows of, with their owners.
    pub fn remote_members(
        &self,
        tenant: &str,
        remote_group: &str,
    ) -> Result<BTreeMap<String, Owner>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT remote_user, owner FROM remote_members WHERE tenant = ?1 AND remote_group = ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![tenant, remote_group], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Owner::parse(&r.get::<_, String>(1)?),
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Records a read of the remote group's members: every member idpsync did not know of is
    /// `preexisting` (but those in `settling`, whose journal entries are still open), known ones
    /// the store no longer has are forgotten; `read_at` moves to now.
    pub fn record_remote_read(
        &mut self,
        tenant: &str,
        group_id: i64,
        remote_group: &str,
        members: &[String],
        settling: &std::collections::BTreeSet<String>,
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| sqlite(&path, e);
        let tx = self.write_tx()?;
        {
            tx.execute(
                "CREATE TEMP TABLE IF NOT EXISTS remote_read (remote_user TEXT PRIMARY KEY, settling INTEGER NOT NULL)",
                [],
            )
            .map_err(err)?;
            tx.execute("DELETE FROM temp.remote_read", [])
                .map_err(err)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO temp.remote_read (remote_user, settling) VALUES (?1, ?2)",
                )
                .map_err(err)?;
            for member in members {
                insert
                    .execute(params![member, settling.contains(member)])
                    .map_err(err)?;
            }
            tx.execute(
                "DELETE FROM remote_members WHERE tenant = ?1 AND remote_group = ?2
                   AND remote_user NOT IN (SELECT remote_user FROM temp.remote_read)",
                params![tenant, remote_group],
            )
            .map_err(err)?;
            tx.execute(
                "INSERT OR IGNORE INTO remote_members (tenant, remote_group, remote_user, owner)
                 SELECT ?1, ?2, remote_user, 'preexisting' FROM temp.remote_read WHERE NOT settling",
                params![tenant, remote_group],
            )
            .map_err(err)?;
            tx.execute(
                "UPDATE remote_groups SET read_at = ?3 WHERE tenant = ?1 AND group_id = ?2",
                params![tenant, group_id, unix_now()],
            )
            .map_err(err)?;
            tx.execute("DELETE FROM temp.remote_read", [])
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Per local user of `group_id`: whether the mirror holds the user (any provenance).
    pub fn mirror_members(&self, group_id: i64) -> Result<Vec<(i64, String)>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT m.user_id, u.key FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.group_id = ?1 ORDER BY m.user_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([group_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Journals a change the store needs though the mirror did not change: drift found on a
    /// read (a membership idpsync owns, missing or left behind in the store).
    pub fn journal_drift(
        &mut self,
        tenant: &str,
        changes: &[(&'static str, i64, i64)],
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| sqlite(&path, e);
        let now = unix_now();
        let tx = self.write_tx()?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO journal (run_id, created_at, updated_at, op, group_id, user_id, source, cause, status, tenant, error)
                     VALUES ('', ?1, ?1, ?2, ?3, ?4, coalesce((SELECT min(source) FROM memberships WHERE group_id = ?3 AND user_id = ?4), 0),
                             NULL, 'pending', ?5, 'drift')",
                )
                .map_err(err)?;
            for (op, group, user) in changes {
                stmt.execute(params![now, op, group, user, tenant])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// The cached remote groups whose members were last read before `before` (Unix seconds).
    pub fn remote_groups_due(
        &self,
        tenant: &str,
        before: i64,
    ) -> Result<Vec<(i64, CachedGroup)>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT r.group_id, r.remote_id, r.remote_name, r.read_at FROM remote_groups r
                 JOIN groups g ON g.id = r.group_id
                 WHERE r.tenant = ?1 AND coalesce(r.read_at, 0) < ?2 ORDER BY r.group_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![tenant, before], |r| {
                Ok((
                    r.get(0)?,
                    CachedGroup {
                        remote_id: r.get(1)?,
                        remote_name: r.get(2)?,
                        read_at: r.get(3)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Names the journal's new entries (the triggers cannot know who wrote them) after the run,
    /// or the logins, whose drain first sees them.
    pub fn journal_claim(&mut self, tenant: &str, by: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE journal SET run_id = ?2 WHERE tenant = ?1 AND run_id = ''",
                params![tenant, by],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Whether the mirror holds `user_id` in `group_id` (any provenance): what the store should
    /// have, whatever order the journal's entries came in.
    pub fn in_mirror(&self, group_id: i64, user_id: i64) -> Result<bool, StateError> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM memberships WHERE group_id = ?1 AND user_id = ?2)",
            )
            .and_then(|mut stmt| stmt.query_row(params![group_id, user_id], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }
}
