//! The caches a remote store's drains keep between runs: each user's remote id (or a "not found"
//! answer, asked again at the next run) and when the store's recent requests were sent, so its
//! request budget holds across processes. Only [`crate::store`] calls these.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use super::{State, StateError, sqlite};

impl State {
    /// The cached remote ids of `users`: `Some(None)` is a cached "not found" no older than
    /// `negative_since` (Unix milliseconds; older ones are asked again); users absent from the map are unknown.
    pub fn remote_users(
        &self,
        tenant: &str,
        users: &[i64],
        negative_since: i64,
    ) -> Result<BTreeMap<i64, Option<String>>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT remote_id, checked_at FROM remote_users WHERE tenant = ?1 AND user_id = ?2",
            )
            .map_err(|e| self.err(e))?;
        let mut out = BTreeMap::new();
        for &user in users {
            let row: Option<(Option<String>, i64)> = stmt
                .query_row(params![tenant, user], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(|e| self.err(e))?;
            match row {
                Some((Some(id), _)) => {
                    out.insert(user, Some(id));
                }
                Some((None, checked)) if checked >= negative_since => {
                    out.insert(user, None);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Caches what the store answered for these users (`None`: not found, now).
    pub fn set_remote_users(
        &mut self,
        tenant: &str,
        found: &[(i64, Option<String>)],
    ) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| sqlite(&path, e);
        let now = super::unix_millis();
        let tx = self.write_tx()?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO remote_users (tenant, user_id, remote_id, checked_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT DO UPDATE SET remote_id = excluded.remote_id, checked_at = excluded.checked_at",
                )
                .map_err(err)?;
            for (user, remote) in found {
                stmt.execute(params![tenant, user, remote, now])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// The local id of each user key the store listed, for a read of a group's members.
    pub fn users_by_remote_id(&self, tenant: &str) -> Result<BTreeMap<String, i64>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT remote_id, user_id FROM remote_users WHERE tenant = ?1 AND remote_id IS NOT NULL",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// When the requests of `tenant`'s last drains were sent (Unix milliseconds).
    pub fn remote_budget(&self, tenant: &str) -> Result<Vec<i64>, StateError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT sent FROM remote_budget WHERE tenant = ?1",
                [tenant],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(text
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default())
    }

    /// Keeps when `tenant`'s recent requests were sent, for the next drain's budget.
    pub fn set_remote_budget(&mut self, tenant: &str, sent: &[i64]) -> Result<(), StateError> {
        let text = serde_json::to_string(sent).expect("numbers serialise");
        self.conn
            .execute(
                "INSERT INTO remote_budget (tenant, sent) VALUES (?1, ?2)
                 ON CONFLICT DO UPDATE SET sent = excluded.sent",
                params![tenant, text],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
