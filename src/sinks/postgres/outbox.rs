//! The hook outbox (`hook_outbox`, migration 5): queued in the commit's
//! transaction, claimed and finished by the delivery worker.

use ::postgres::GenericClient;

use super::{pg_err, PgStore};
use crate::error::StoreError;
use crate::sinks::{Attempt, Delivery, HookRow, Outbox, OutboxEntry, OUTBOX_STATES};

/// The rows of `rows` whose event is not stored yet and not before the
/// prune horizon: those this commit stores for the first time. Looked up
/// by the raw tables' primary key (time, id) in the commit's transaction
/// before its inserts; should a concurrent import store the same event
/// meanwhile, the outbox's unique (hook, event_id) still queues it once.
pub(super) fn fresh<'r>(
    tx: &mut impl GenericClient,
    rows: &'r [HookRow],
    horizon: Option<i64>,
) -> Result<Vec<&'r HookRow>, ::postgres::Error> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.iter().filter(|r| horizon.is_none_or(|h| r.event_time >= h)) {
        let sql = if r.login {
            "SELECT 1 FROM logins WHERE time_ts = 'epoch'::timestamptz + $1 * interval '1 microsecond' AND event_id = $2"
        } else {
            "SELECT 1 FROM transfers WHERE end_ts = 'epoch'::timestamptz + $1 * interval '1 microsecond' AND event_id = $2"
        };
        if tx.query_opt(sql, &[&r.event_time, &(r.event_id as i64)])?.is_none() {
            out.push(r);
        }
    }
    Ok(out)
}

/// Queues `rows` (one per hook and event: a row already queued stays as it
/// is).
pub(super) fn queue(tx: &mut impl GenericClient, rows: &[&HookRow]) -> Result<(), ::postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let st = tx.prepare(
        "INSERT INTO hook_outbox (hook, event_id, event_time_us, trigger, payload, next_attempt_us) \
         VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (hook, event_id) DO NOTHING",
    )?;
    for r in rows {
        tx.execute(&st, &[&r.hook, &(r.event_id as i64), &r.event_time, &r.trigger, &r.payload])?;
    }
    Ok(())
}

impl Outbox for PgStore {
    fn claim_due(&mut self, hooks: &[&str], now: i64, lease: i64, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let hooks: Vec<String> = hooks.iter().map(|h| h.to_string()).collect();
        // One statement: rows locked by another worker are skipped.
        let rows = self
            .client
            .query(
                "UPDATE hook_outbox o SET next_attempt_us = $2 + $3 FROM ( \
                 SELECT id FROM hook_outbox WHERE state = 'pending' AND next_attempt_us <= $2 AND hook = ANY($1) \
                 ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) due WHERE o.id = due.id \
                 RETURNING o.id, o.hook, o.event_id, o.payload, o.attempts",
                &[&hooks, &now, &lease, &(limit as i64)],
            )
            .map_err(err("claim hook deliveries"))?;
        let mut due: Vec<Delivery> = rows
            .iter()
            .map(|r| Delivery {
                id: r.get(0),
                hook: r.get(1),
                event_id: r.get::<_, i64>(2) as u64,
                payload: r.get(3),
                attempts: r.get::<_, i32>(4) as u32,
            })
            .collect();
        due.sort_by_key(|d| d.id);
        Ok(due)
    }

    fn finish_delivery(&mut self, id: i64, attempt: &Attempt) -> Result<(), StoreError> {
        let target = self.target.clone();
        let n = match attempt {
            Attempt::Delivered => self.client.execute(
                "UPDATE hook_outbox SET state = 'done', attempts = attempts + 1, last_error = NULL, finished = now() \
                 WHERE id = $1",
                &[&id],
            ),
            Attempt::Failed { error, next: Some(next) } => self.client.execute(
                "UPDATE hook_outbox SET attempts = attempts + 1, last_error = $1, next_attempt_us = $2 WHERE id = $3",
                &[error, next, &id],
            ),
            Attempt::Failed { error, next: None } => self.client.execute(
                "UPDATE hook_outbox SET state = 'parked', attempts = attempts + 1, last_error = $1, \
                 finished = now() WHERE id = $2",
                &[error, &id],
            ),
        };
        n.map(|_| ()).map_err(pg_err(&target, "record hook delivery"))
    }

    fn outbox_counts(&mut self) -> Result<[(&'static str, u64); 3], StoreError> {
        let mut counts = OUTBOX_STATES.map(|s| (s, 0));
        let rows = self
            .client
            .query("SELECT state, count(*) FROM hook_outbox GROUP BY state", &[])
            .map_err(self.err("count hook deliveries"))?;
        for r in rows {
            let state: String = r.get(0);
            if let Some(c) = counts.iter_mut().find(|c| c.0 == state) {
                c.1 = r.get::<_, i64>(1) as u64;
            }
        }
        Ok(counts)
    }

    fn outbox_list(&mut self, state: &str, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT id, hook, trigger, event_id, event_time_us, attempts, last_error FROM hook_outbox \
                 WHERE state = $1 ORDER BY id LIMIT $2",
                &[&state, &(limit as i64)],
            )
            .map_err(self.err("list hook deliveries"))?;
        Ok(rows
            .iter()
            .map(|r| OutboxEntry {
                id: r.get(0),
                hook: r.get(1),
                trigger: r.get(2),
                event_id: (r.get::<_, i64>(3) as u64).to_string(),
                event_time: crate::time::rfc3339(r.get(4)),
                attempts: r.get::<_, i32>(5) as u32,
                last_error: r.get(6),
            })
            .collect())
    }

    fn requeue(&mut self, id: Option<i64>, now: i64) -> Result<u64, StoreError> {
        let n = match id {
            Some(id) => self.client.execute(
                "UPDATE hook_outbox SET state = 'pending', attempts = 0, next_attempt_us = $1, finished = NULL \
                 WHERE id = $2 AND state IN ('parked', 'pending')",
                &[&now, &id],
            ),
            None => self.client.execute(
                "UPDATE hook_outbox SET state = 'pending', attempts = 0, next_attempt_us = $1, finished = NULL \
                 WHERE state = 'parked'",
                &[&now],
            ),
        };
        n.map_err(self.err("re-queue hook deliveries"))
    }

    fn next_due(&mut self, hooks: &[&str]) -> Result<Option<i64>, StoreError> {
        let hooks: Vec<String> = hooks.iter().map(|h| h.to_string()).collect();
        let row = self
            .client
            .query_one(
                "SELECT min(next_attempt_us) FROM hook_outbox WHERE state = 'pending' AND hook = ANY($1)",
                &[&hooks],
            )
            .map_err(self.err("read hook deliveries"))?;
        Ok(row.get(0))
    }
}
