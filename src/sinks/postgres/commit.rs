//! The ingest side: ledger, id re-keying, and the two commit paths.

use ::postgres::Transaction;

use super::copy::{copy_events, copy_rows};
use super::outbox;
use super::{pg_err, PgStore, MIGRATION_LOCK};
use crate::enrich::hostkey::HostKey;
use crate::error::StoreError;
use crate::model::Event;
use crate::sinks::{Checkpoint, Commit, Committed, HookRow, LedgerEntry, RekeyState, Sink};

impl Sink for PgStore {
    fn describe(&self) -> String {
        self.target.clone()
    }

    fn checkpoint(&mut self, fingerprint: u64) -> Result<Option<Checkpoint>, StoreError> {
        let row = self
            .client
            .query_opt(&format!("SELECT {LEDGER_COLUMNS} FROM ledger WHERE fingerprint = $1"), &[&(fingerprint as i64)])
            .map_err(self.err("read ledger"))?;
        Ok(row.map(|r| checkpoint_of(fingerprint, &r)))
    }

    fn ledger(&mut self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.ledger_entries()
    }

    fn key_ids(&mut self, key: &HostKey, rekey_state: &mut RekeyState<'_>) -> Result<&'static str, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let mut tx = self.client.transaction().map_err(err("begin id re-keying"))?;
        // One ingester re-keys; the others wait and then find it done.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(err("take migration lock"))?;
        let mut meta = |k: &str| -> Result<Option<String>, ::postgres::Error> {
            Ok(tx.query_opt("SELECT value FROM store_meta WHERE key = $1", &[&k])?.map(|r| r.get(0)))
        };
        let scheme = meta("id_scheme").map_err(err("read id scheme"))?;
        let check = meta("id_key_check").map_err(err("read id scheme"))?;
        if let Some(scheme) = crate::sinks::id_scheme_action(&target, scheme, check, key)? {
            return Ok(scheme);
        }
        let ids = key.id_key();
        let rekey = |v: i64| ids.hash(v as u64) as i64;
        // The new id of every stored id, computed here (the key never
        // reaches the server) and joined in by one UPDATE per table.
        tx.batch_execute(
            "CREATE TEMP TABLE xferstats_rekey (t timestamptz NOT NULL, old bigint NOT NULL, new bigint NOT NULL) \
             ON COMMIT DROP",
        )
        .map_err(err("re-key event ids"))?;
        let mut rows = 0;
        for (table, time) in [("transfers", "end_ts"), ("logins", "time_ts")] {
            let mut stored: Vec<(i64, i64)> = Vec::new();
            let micros = format!("(EXTRACT(EPOCH FROM {time}) * 1000000)::bigint");
            let portal = tx
                .bind(&format!("SELECT {micros}, event_id FROM {table} ORDER BY {time}"), &[])
                .map_err(err("read event ids"))?;
            loop {
                let batch = tx.query_portal(&portal, 65_536).map_err(err("read event ids"))?;
                if batch.is_empty() {
                    break;
                }
                stored.extend(batch.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))));
            }
            tx.batch_execute("TRUNCATE xferstats_rekey").map_err(err("re-key event ids"))?;
            copy_rows(&mut tx, "COPY xferstats_rekey (t, old, new) FROM STDIN (FORMAT binary)", |b, w| {
                for group in stored.chunk_by(|a, b| a.0 == b.0) {
                    let old: Vec<u64> = group.iter().map(|&(_, id)| id as u64).collect();
                    for (new, &(t, id)) in crate::sessions::rekey_unkeyed_ids(&ids, &old).into_iter().zip(group) {
                        b.row(3);
                        b.ts(t);
                        b.i64(id);
                        b.i64(new as i64);
                        b.flush_if_full(w)?;
                    }
                }
                Ok(())
            })
            .map_err(err("re-key event ids"))?;
            rows += tx
                .execute(
                    &format!(
                        "UPDATE {table} x SET event_id = m.new FROM xferstats_rekey m \
                         WHERE x.{time} = m.t AND x.event_id = m.old"
                    ),
                    &[],
                )
                .map_err(err("re-key event ids"))?;
        }
        // Rows that record their input (stores keyed since migration 3
        // never come here, but test stores written unkeyed do) follow their
        // ledger entry; one look first spares old stores a scan per entry.
        let inputs_known: bool = tx.query_one(INPUTS_KNOWN, &[]).map_err(err("read event inputs"))?.get(0);
        let ledger: Vec<(i64, i64, String)> = tx
            .query("SELECT fingerprint, tail_hash, ids_state FROM ledger", &[])
            .map_err(err("re-key ledger"))?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let scheme = crate::sinks::scheme_after_rekey(rows > 0 || !ledger.is_empty());
        for (fp, tail, state) in ledger {
            // 0 is the tail hash that never matches (after an overlong line).
            let tail = if tail == 0 { 0 } else { rekey(tail) };
            tx.execute(
                "UPDATE ledger SET fingerprint = $1, tail_hash = $2, ids_state = $3 WHERE fingerprint = $4",
                &[&rekey(fp), &tail, &crate::sessions::rekey_ids_state(&ids, &state), &fp],
            )
            .map_err(err("re-key ledger"))?;
            for table in ["transfers", "logins"].into_iter().filter(|_| inputs_known) {
                tx.execute(&format!("UPDATE {table} SET input = $1 WHERE input = $2"), &[&rekey(fp), &fp])
                    .map_err(err("re-key event inputs"))?;
            }
        }
        let states: Vec<(String, String)> = tx
            .query("SELECT scope, state FROM session_state", &[])
            .map_err(err("read session state"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for (scope, stored) in states {
            let new =
                rekey_state(&scope, &stored).map_err(|reason| StoreError::State { scope: scope.clone(), reason })?;
            tx.execute("UPDATE session_state SET state = $1 WHERE scope = $2", &[&new, &scope])
                .map_err(err("re-key session state"))?;
        }
        tx.execute(
            "INSERT INTO store_meta (key, value) VALUES ('id_scheme', $1), ('id_key_check', $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&scheme, &key.key_check()],
        )
        .map_err(err("record id scheme"))?;
        tx.commit().map_err(err("commit id re-keying"))?;
        if rows > 0 {
            tracing::info!("{target}: re-keyed {rows} event ids written before ids were keyed with the host key");
        }
        Ok(scheme)
    }

    fn state(&mut self, scope: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .client
            .query_opt("SELECT state FROM session_state WHERE scope = $1", &[&scope])
            .map_err(self.err("read session state"))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn outbox(&mut self) -> &mut dyn crate::sinks::Outbox {
        self
    }

    fn states(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .client
            .query("SELECT scope, state FROM session_state ORDER BY scope", &[])
            .map_err(self.err("read session states"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The batches were committed without waiting for the disk: one
    /// synchronous commit of a transaction with an id (and nothing else)
    /// waits until the WAL up to it, every batch's included, is flushed.
    fn finish(&mut self) -> Result<(), StoreError> {
        self.client
            .batch_execute("BEGIN; SELECT txid_current(); COMMIT")
            .map_err(self.err("flush the committed batches to disk"))
    }

    fn commit(&mut self, c: &Commit<'_>) -> Result<Committed, StoreError> {
        use ::postgres::error::SqlState;
        self.ensure_partitions(c.events)?;
        // Rollup rows are written in key order, so concurrent ingests
        // rarely deadlock; when they do, the server aborts one transaction
        // and it is simply run again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.commit_fast(c) {
                Err(StoreError::Postgres { source, .. }) if source.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    tracing::debug!("some events are stored already; committing through the stage table");
                    self.commit_exact(c)
                }
                other => other,
            };
            match result {
                Err(StoreError::Postgres { source, .. })
                    if attempt < 5
                        && matches!(source.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED
                            || *c == SqlState::T_R_SERIALIZATION_FAILURE) =>
                {
                    tracing::info!("{source}; retrying the batch (attempt {})", attempt + 1);
                    std::thread::sleep(std::time::Duration::from_millis(50 * attempt));
                }
                other => return other,
            }
        }
    }
}

impl PgStore {
    /// COPY straight into the raw tables; fails with a unique violation if
    /// any event is stored already (nothing is then committed).
    fn commit_fast(&mut self, c: &Commit<'_>) -> Result<Committed, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let started = std::time::Instant::now();
        let mut tx = self.client.transaction().map_err(err("begin transaction"))?;
        let horizon = batch_start(&mut tx, c).map_err(err("read prune horizon"))?;
        let (events, skipped) = crate::sinks::beyond_horizon(c.events, horizon);
        let (n_transfers, n_logins) = count(&events);
        if n_transfers > 0 {
            copy_events(&mut tx, "transfers", &events, c.input, false).map_err(err("copy transfers"))?;
        }
        if n_logins > 0 {
            copy_events(&mut tx, "logins", &events, c.input, true).map_err(err("copy logins"))?;
        }
        let copied = started.elapsed();
        super::rollup::add_batch(&mut tx, &events).map_err(err("update rollups"))?;
        // Every event was new (the COPY would have failed otherwise).
        let hooks: Vec<&HookRow> = c.outbox.iter().filter(|r| horizon.is_none_or(|h| r.event_time >= h)).collect();
        outbox::queue(&mut tx, &hooks).map_err(err("queue hook deliveries"))?;
        let done = Committed { new: n_transfers + n_logins, dup: skipped };
        finish(&mut tx, c, done).map_err(err("update ledger"))?;
        crate::testhook::maybe_crash("commit");
        tx.commit().map_err(err("commit"))?;
        tracing::debug!(events = done.new, ?copied, total = ?started.elapsed(), "committed (COPY)");
        Ok(done)
    }

    /// Through the stage tables: only the events not stored yet are
    /// inserted and rolled up.
    fn commit_exact(&mut self, c: &Commit<'_>) -> Result<Committed, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        if !self.staged {
            self.client
                .batch_execute(
                    "CREATE TEMP TABLE IF NOT EXISTS stage_transfers (LIKE transfers) ON COMMIT DELETE ROWS; \
                     CREATE TEMP TABLE IF NOT EXISTS stage_logins (LIKE logins) ON COMMIT DELETE ROWS",
                )
                .map_err(err("create stage tables"))?;
            self.staged = true;
        }
        let mut tx = self.client.transaction().map_err(err("begin transaction"))?;
        let horizon = batch_start(&mut tx, c).map_err(err("read prune horizon"))?;
        let (events, skipped) = crate::sinks::beyond_horizon(c.events, horizon);
        let (n_transfers, n_logins) = count(&events);
        let mut done = Committed { new: 0, dup: skipped };
        let hooks = outbox::fresh(&mut tx, c.outbox, horizon).map_err(err("read hook events"))?;
        if n_transfers > 0 {
            copy_events(&mut tx, "stage_transfers", &events, c.input, false).map_err(err("copy transfers"))?;
            let new: i64 = tx.query_one(&super::rollup::MOVE[0], &[]).map_err(err("insert transfers"))?.get(0);
            done.new += new as u64;
            done.dup += n_transfers - new as u64;
        }
        if n_logins > 0 {
            copy_events(&mut tx, "stage_logins", &events, c.input, true).map_err(err("copy logins"))?;
            let new: i64 = tx.query_one(&super::rollup::MOVE[1], &[]).map_err(err("insert logins"))?.get(0);
            done.new += new as u64;
            done.dup += n_logins - new as u64;
        }
        outbox::queue(&mut tx, &hooks).map_err(err("queue hook deliveries"))?;
        finish(&mut tx, c, done).map_err(err("update ledger"))?;
        crate::testhook::maybe_crash("commit");
        tx.commit().map_err(err("commit"))?;
        Ok(done)
    }
}

/// Starts a batch's transaction: its commit does not wait for the WAL to
/// reach the disk (`synchronous_commit = off`, a commit's fsync was a
/// tenth of the server's time per batch), and the prune horizon (µs), if
/// the store was ever pruned. Batches stay atomic and in order (the WAL is
/// sequential, a lost batch takes its ledger entry with it and is read
/// again); [`Sink::finish`] makes the run durable with one synchronous
/// commit, which flushes the WAL of every batch before it. A batch that
/// queues hook deliveries commits synchronously: the delivery worker may
/// send them at once, and a server crash must not take back an event whose
/// hook already fired (it would fire again when the batch is read again).
fn batch_start(tx: &mut Transaction<'_>, c: &Commit<'_>) -> Result<Option<i64>, ::postgres::Error> {
    if c.outbox.is_empty() {
        tx.batch_execute("SET LOCAL synchronous_commit = off")?;
    }
    pruned_before(tx)
}

/// The prune horizon (µs), if the store was ever pruned.
pub(super) fn pruned_before(tx: &mut Transaction<'_>) -> Result<Option<i64>, ::postgres::Error> {
    Ok(tx
        .query_opt("SELECT value FROM store_meta WHERE key = 'pruned_before'", &[])?
        .and_then(|r| r.get::<_, String>(0).parse().ok()))
}

pub(super) fn count(events: &[Event]) -> (u64, u64) {
    let t = events.iter().filter(|e| matches!(e, Event::Transfer(_))).count() as u64;
    (t, events.len() as u64 - t)
}

/// Ledger and session states, in the commit's transaction.
pub(super) fn finish(tx: &mut Transaction<'_>, c: &Commit<'_>, done: Committed) -> Result<(), ::postgres::Error> {
    if let Some(cp) = c.checkpoint {
        tx.execute(
            "INSERT INTO ledger (fingerprint, name, format, \"offset\", lines, tail_hash, ids_state, events_new, \
             events_dup, rejected, first_import, last_import) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             now(), now()) ON CONFLICT (fingerprint) DO UPDATE SET name = EXCLUDED.name, \
             format = EXCLUDED.format, \"offset\" = EXCLUDED.\"offset\", lines = EXCLUDED.lines, \
             tail_hash = EXCLUDED.tail_hash, ids_state = EXCLUDED.ids_state, \
             events_new = ledger.events_new + EXCLUDED.events_new, \
             events_dup = ledger.events_dup + EXCLUDED.events_dup, rejected = EXCLUDED.rejected, \
             last_import = EXCLUDED.last_import",
            &[
                &(cp.fingerprint as i64),
                &cp.name,
                &cp.format,
                &(cp.offset as i64),
                &(cp.lines as i64),
                &(cp.tail_hash as i64),
                &cp.ids,
                &(done.new as i64),
                &(done.dup as i64),
                &(cp.rejected as i64),
            ],
        )?;
    }
    for (scope, state) in c.states {
        tx.execute(
            "INSERT INTO session_state (scope, state, updated) VALUES ($1, $2, now()) \
             ON CONFLICT (scope) DO UPDATE SET state = EXCLUDED.state, updated = EXCLUDED.updated",
            &[scope, state],
        )?;
    }
    Ok(())
}

/// Whether any stored event records its input.
const INPUTS_KNOWN: &str = "SELECT EXISTS (SELECT 1 FROM transfers WHERE input IS NOT NULL) \
     OR EXISTS (SELECT 1 FROM logins WHERE input IS NOT NULL)";

// The ledger listing of `Sink::ledger` (`xferstats status`, the follower's
// catch-up), and the ledger columns it shares with `Sink::checkpoint`.

/// The ledger columns [`checkpoint_of`] reads, in its order.
const LEDGER_COLUMNS: &str = "name, format, \"offset\", lines, tail_hash, ids_state, events_new, events_dup, rejected";

/// The [`LEDGER_COLUMNS`] of a row as the checkpoint of `fingerprint`.
fn checkpoint_of(fingerprint: u64, r: &::postgres::Row) -> Checkpoint {
    Checkpoint {
        fingerprint,
        name: r.get(0),
        format: r.get(1),
        offset: r.get::<_, i64>(2) as u64,
        lines: r.get::<_, i64>(3) as u64,
        tail_hash: r.get::<_, i64>(4) as u64,
        ids: r.get(5),
        events_new: r.get::<_, i64>(6) as u64,
        events_dup: r.get::<_, i64>(7) as u64,
        rejected: r.get::<_, i64>(8) as u64,
    }
}

impl PgStore {
    fn ledger_entries(&mut self) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {LEDGER_COLUMNS}, fingerprint, \
                     to_char(last_import AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
                     FROM ledger ORDER BY last_import DESC, name"
                ),
                &[],
            )
            .map_err(self.err("list ledger"))?;
        Ok(rows
            .iter()
            .map(|r| LedgerEntry { checkpoint: checkpoint_of(r.get::<_, i64>(9) as u64, r), last_import: r.get(10) })
            .collect())
    }
}
