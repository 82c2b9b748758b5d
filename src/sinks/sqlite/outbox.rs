//! The hook outbox (`hook_outbox`, migration 6): queued in the commit's
//! transaction, claimed and finished by the delivery worker.

use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::SqliteStore;
use crate::error::StoreError;
use crate::sinks::{Attempt, Delivery, HookRow, Outbox, OutboxEntry, OUTBOX_STATES};

/// The rows of `rows` whose event is not stored yet and not before the
/// prune horizon: those this commit stores for the first time, so the
/// only ones that may fire. Looked up by the raw tables' primary key
/// (time, id) inside the commit's write transaction, before its inserts.
pub(super) fn fresh<'r>(
    tx: &Connection,
    rows: &'r [HookRow],
    horizon: Option<i64>,
) -> rusqlite::Result<Vec<&'r HookRow>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.iter().filter(|r| horizon.is_none_or(|h| r.event_time >= h)) {
        let sql = if r.login {
            "SELECT 1 FROM logins WHERE time_us = ?1 AND event_id = ?2"
        } else {
            "SELECT 1 FROM transfers WHERE end_us = ?1 AND event_id = ?2"
        };
        let stored = tx
            .prepare_cached(sql)?
            .query_row(params![r.event_time, r.event_id as i64], |_| Ok(()))
            .optional()?
            .is_some();
        if !stored {
            out.push(r);
        }
    }
    Ok(out)
}

/// Queues `rows` (one per hook and event: a row already queued stays as it
/// is).
pub(super) fn queue(tx: &Connection, rows: &[&HookRow], created: &str) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO hook_outbox (hook, event_id, event_time_us, trigger, payload, next_attempt_us, created) \
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6) ON CONFLICT (hook, event_id) DO NOTHING",
    )?;
    for r in rows {
        st.execute(params![r.hook, r.event_id as i64, r.event_time, r.trigger, r.payload, created])?;
    }
    Ok(())
}

/// `?,?,…` for `n` bound values starting at `?{first}`.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(",")
}

impl Outbox for SqliteStore {
    fn claim_due(&mut self, hooks: &[&str], now: i64, lease: i64, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        if hooks.is_empty() {
            return Ok(Vec::new());
        }
        let path = self.path.clone();
        let err = |what| super::err_at(&path, what);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err("claim hook deliveries"))?;
        let sql = format!(
            "SELECT id, hook, event_id, payload, attempts FROM hook_outbox WHERE state = 'pending' \
             AND next_attempt_us <= ?1 AND hook IN ({}) ORDER BY id LIMIT {limit}",
            placeholders(2, hooks.len())
        );
        let mut values: Vec<rusqlite::types::Value> = vec![now.into()];
        values.extend(hooks.iter().map(|h| rusqlite::types::Value::from(h.to_string())));
        let due: Vec<Delivery> = tx
            .prepare(&sql)
            .and_then(|mut st| {
                st.query_map(params_from_iter(values), |r| {
                    Ok(Delivery {
                        id: r.get(0)?,
                        hook: r.get(1)?,
                        event_id: r.get::<_, i64>(2)? as u64,
                        payload: r.get(3)?,
                        attempts: r.get::<_, i64>(4)? as u32,
                    })
                })?
                .collect()
            })
            .map_err(err("claim hook deliveries"))?;
        for d in &due {
            tx.execute("UPDATE hook_outbox SET next_attempt_us = ?1 WHERE id = ?2", params![now + lease, d.id])
                .map_err(err("claim hook deliveries"))?;
        }
        tx.commit().map_err(err("claim hook deliveries"))?;
        Ok(due)
    }

    fn finish_delivery(&mut self, id: i64, attempt: &Attempt) -> Result<(), StoreError> {
        let now = super::commit::now_string();
        let n = match attempt {
            Attempt::Delivered => self.conn.execute(
                "UPDATE hook_outbox SET state = 'done', attempts = attempts + 1, last_error = NULL, finished = ?1 \
                 WHERE id = ?2",
                params![now, id],
            ),
            Attempt::Failed { error, next: Some(next) } => self.conn.execute(
                "UPDATE hook_outbox SET attempts = attempts + 1, last_error = ?1, next_attempt_us = ?2 WHERE id = ?3",
                params![error, next, id],
            ),
            Attempt::Failed { error, next: None } => self.conn.execute(
                "UPDATE hook_outbox SET state = 'parked', attempts = attempts + 1, last_error = ?1, finished = ?2 \
                 WHERE id = ?3",
                params![error, now, id],
            ),
        };
        n.map(|_| ()).map_err(self.err("record hook delivery"))
    }

    fn outbox_counts(&mut self) -> Result<[(&'static str, u64); 3], StoreError> {
        let mut counts = OUTBOX_STATES.map(|s| (s, 0));
        let rows: Vec<(String, i64)> = self
            .conn
            .prepare("SELECT state, count(*) FROM hook_outbox GROUP BY state")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(self.err("count hook deliveries"))?;
        for (state, n) in rows {
            if let Some(c) = counts.iter_mut().find(|c| c.0 == state) {
                c.1 = n as u64;
            }
        }
        Ok(counts)
    }

    fn outbox_list(&mut self, state: &str, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        self.conn
            .prepare(
                "SELECT id, hook, trigger, event_id, event_time_us, attempts, last_error FROM hook_outbox \
                 WHERE state = ?1 ORDER BY id LIMIT ?2",
            )
            .and_then(|mut st| {
                st.query_map(params![state, limit], |r| {
                    Ok(OutboxEntry {
                        id: r.get(0)?,
                        hook: r.get(1)?,
                        trigger: r.get(2)?,
                        event_id: (r.get::<_, i64>(3)? as u64).to_string(),
                        event_time: crate::time::rfc3339(r.get(4)?),
                        attempts: r.get::<_, i64>(5)? as u32,
                        last_error: r.get(6)?,
                    })
                })?
                .collect()
            })
            .map_err(self.err("list hook deliveries"))
    }

    fn requeue(&mut self, id: Option<i64>, now: i64) -> Result<u64, StoreError> {
        let n = match id {
            Some(id) => self.conn.execute(
                "UPDATE hook_outbox SET state = 'pending', attempts = 0, next_attempt_us = ?1, finished = NULL \
                 WHERE id = ?2 AND state IN ('parked', 'pending')",
                params![now, id],
            ),
            None => self.conn.execute(
                "UPDATE hook_outbox SET state = 'pending', attempts = 0, next_attempt_us = ?1, finished = NULL \
                 WHERE state = 'parked'",
                params![now],
            ),
        };
        n.map(|n| n as u64).map_err(self.err("re-queue hook deliveries"))
    }

    fn next_due(&mut self, hooks: &[&str]) -> Result<Option<i64>, StoreError> {
        if hooks.is_empty() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT min(next_attempt_us) FROM hook_outbox WHERE state = 'pending' AND hook IN ({})",
            placeholders(1, hooks.len())
        );
        self.conn
            .query_row(&sql, params_from_iter(hooks.iter()), |r| r.get(0))
            .map_err(self.err("read hook deliveries"))
    }
}
