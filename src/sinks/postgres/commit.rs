//! The ingest side: ledger, id re-keying, and the two commit paths.

use ::postgres::GenericClient;

use super::copy::{copy_events, copy_rows, RawCopy};
use super::outbox;
use super::rollup::{Pending, Share};
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
        // Parts whose commit never came (an input read in vain).
        self.within(PgStore::settle)?;
        self.client
            .batch_execute("BEGIN; SELECT txid_current(); COMMIT")
            .map_err(self.err("flush the committed batches to disk"))
    }

    fn commit(&mut self, c: &Commit<'_>) -> Result<Committed, StoreError> {
        use ::postgres::error::SqlState;
        if self.open.as_ref().is_some_and(|o| o.parts > 0) {
            // The end of a transaction taken in parts: the parts' events
            // are gone from memory, so a failure is not retried here (the
            // run fails, nothing of the transaction is committed).
            return self.within(|s| s.stage(c, true).and_then(|done| s.close(c).map(|()| done)));
        }
        // Rollup rows are written in key order, so concurrent ingests
        // rarely deadlock; when they do, the server aborts one transaction
        // and it is simply run again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.within(|s| s.stage(c, false).and_then(|done| s.close(c).map(|()| done))) {
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

    fn part_events(&self) -> Option<usize> {
        Some(crate::testhook::part_events().unwrap_or(PART_EVENTS))
    }

    fn part(&mut self, c: &Commit<'_>) -> Result<Committed, StoreError> {
        self.within(|s| {
            let done = s.stage(c, true)?;
            if let Some(open) = &mut s.open {
                open.parts += 1;
            }
            Ok(done)
        })
    }
}

/// Events per part of a transaction taken in parts ([`Sink::part`]).
const PART_EVENTS: usize = 10_000;

/// The transaction open between the parts of a commit ([`Sink::part`]),
/// or within one commit.
#[derive(Debug, Default)]
pub(super) struct Open {
    /// The prune horizon (µs), if the store was ever pruned.
    horizon: Option<i64>,
    /// What the transaction stored so far, for the ledger.
    done: Committed,
    /// Hook deliveries were queued: the commit waits for the disk.
    hooks: bool,
    /// The rollup deltas of the events stored through the fast path.
    pending: Pending,
    /// Parts stored so far.
    parts: u32,
    /// The savepoint `fast` of the last part is still in place (kept until
    /// the next part or the commit; see [`PgStore::stage`]).
    savepoint: bool,
}

impl PgStore {
    /// Runs `f`; when it fails, rolls back the open transactions (if the
    /// connections still answer) so that nothing of them is committed.
    fn within<T>(&mut self, f: impl FnOnce(&mut PgStore) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let result = f(self);
        if result.is_err() {
            if self.open.take().is_some() {
                let _ = self.client.batch_execute("ROLLBACK");
            }
            self.side.rollback();
        }
        result
    }

    /// Opens the data transaction; its commit does not wait for the disk
    /// (see the note on synchronous commits below).
    fn begin(&mut self) -> Result<(), StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        self.client.batch_execute("BEGIN; SET LOCAL synchronous_commit = off").map_err(err("begin transaction"))?;
        let horizon = pruned_before(&mut self.client).map_err(err("read prune horizon"))?;
        self.open = Some(Open { horizon, ..Open::default() });
        Ok(())
    }

    /// Stores the events and hook deliveries of `c` in the open
    /// transaction (opening one first): COPY straight into the raw tables
    /// (fast path, rollup deltas summed here) or, when some event is
    /// stored already, through the stage tables (exact path). Returns what
    /// it stored. Events in a month without partitions commit what the
    /// open transaction holds first (see [`PgStore::settle`]). With
    /// `split` (a part of a batch import), the fast path stores the logins
    /// on the second connection at the same time (see [`super::side`]).
    fn stage(&mut self, c: &Commit<'_>, split: bool) -> Result<Committed, StoreError> {
        use ::postgres::error::SqlState;
        let settled = match self.open.is_some() && self.missing_months(c.events) {
            true => Some(self.settle()?),
            false => None,
        };
        self.ensure_partitions(c.events)?;
        if self.open.is_none() {
            self.begin()?;
        }
        if let (Some(settled), Some(open)) = (settled, &mut self.open) {
            (open.done, open.parts) = (settled.done, settled.parts);
        }
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let horizon = self.open.as_ref().and_then(|o| o.horizon);
        let (events, skipped) = crate::sinks::beyond_horizon(c.events, horizon);
        let (n_transfers, n_logins) = count(&events);
        if self.raw_copy.is_none() {
            self.raw_copy = Some(RawCopy::prepare(&mut self.client).map_err(err("prepare copy"))?);
        }
        let PgStore { client, open, raw_copy, side, config, .. } = self;
        let open = open.as_mut().expect("opened above");
        let second = match split && n_transfers > 0 && n_logins > 0 && c.outbox.is_empty() {
            true => side.get(config, &target),
            false => None,
        };
        let [copy_transfers, copy_logins] = &raw_copy.as_ref().expect("prepared above").statements;
        // The part before left its savepoint in place: released here in
        // the same round trip that takes this part's.
        let savepoint = if open.savepoint { "RELEASE SAVEPOINT fast; SAVEPOINT fast" } else { "SAVEPOINT fast" };
        client.batch_execute(savepoint).map_err(err("begin transaction"))?;
        open.savepoint = true;
        // The rollup deltas are summed while the server stores the last
        // COPY's rows, and taken back should the server refuse them.
        let mut added = false;
        let split = second.is_some();
        let mut during = |last_copy: bool| match (last_copy, split) {
            (true, false) => {
                open.pending.add(&events);
                added = true;
            }
            (true, true) => {
                open.pending.add_share(&events, Share::Transfers);
                added = true;
            }
            (false, _) => {}
        };
        // The COPY that failed, and how.
        let mut what = if n_transfers > 0 { "copy transfers" } else { "copy logins" };
        let fast = match second {
            // Transfers here, logins on the second connection, at once.
            Some(second) => {
                let (first, other) = std::thread::scope(|s| {
                    let other = s.spawn(|| second.store(&events, c.input));
                    let first = copy_events(client, copy_transfers, &events, c.input, false, || during(true));
                    (first, other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                });
                let refused = |e: &::postgres::Error| e.code() == Some(&SqlState::UNIQUE_VIOLATION);
                match (first, other) {
                    (Ok(_), Ok(())) => Ok(()),
                    // Any other failure ends the run (both roll back).
                    (Err(e), _) if !refused(&e) => Err(e),
                    (_, Err(e)) if !refused(&e) => {
                        what = "copy logins";
                        Err(e)
                    }
                    // Some event is stored already: both COPYs of the part
                    // are taken back, and the exact path stores it whole.
                    (first, other) => {
                        second.undo(&events, other.is_ok()).map_err(err("copy logins"))?;
                        Err(first.err().or(other.err()).expect("a COPY was refused"))
                    }
                }
            }
            None => (|| {
                if n_transfers > 0 {
                    copy_events(client, copy_transfers, &events, c.input, false, || during(n_logins == 0))?;
                }
                if n_logins > 0 {
                    what = "copy logins";
                    copy_events(client, copy_logins, &events, c.input, true, || during(true))?;
                }
                Ok::<_, ::postgres::Error>(())
            })(),
        };
        if fast.is_err() && added {
            match split {
                false => open.pending.remove(&events),
                true => open.pending.remove_share(&events, Share::Transfers),
            }
        }
        let mut done = Committed { new: 0, dup: skipped };
        let hooks: Vec<&HookRow>;
        match fast {
            Ok(()) => {
                // Every event was new (the COPY would have failed otherwise).
                done.new = n_transfers + n_logins;
                hooks = c.outbox.iter().filter(|r| horizon.is_none_or(|h| r.event_time >= h)).collect();
            }
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                tracing::debug!("some events are stored already; storing them through the stage table");
                client.batch_execute("ROLLBACK TO SAVEPOINT fast").map_err(err("copy events"))?;
                hooks = self.stage_exact(&events, c, &mut done)?;
            }
            Err(e) => return Err(err(what)(e)),
        }
        outbox::queue(&mut self.client, &hooks).map_err(err("queue hook deliveries"))?;
        let open = self.open.as_mut().expect("opened above");
        open.hooks |= !hooks.is_empty();
        open.done.new += done.new;
        open.done.dup += done.dup;
        Ok(done)
    }

    /// The exact path of [`PgStore::stage`]: only the events not stored yet
    /// are inserted and rolled up (in the statement that inserts them);
    /// returns the hook rows of those.
    fn stage_exact<'r>(
        &mut self,
        events: &[Event],
        c: &Commit<'r>,
        done: &mut Committed,
    ) -> Result<Vec<&'r HookRow>, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let client = &mut self.client;
        // Created outside any transaction block would do as well; inside,
        // a failed data transaction takes them with it.
        client
            .batch_execute(
                "CREATE TEMP TABLE IF NOT EXISTS stage_transfers (LIKE transfers) ON COMMIT DELETE ROWS; \
                 CREATE TEMP TABLE IF NOT EXISTS stage_logins (LIKE logins) ON COMMIT DELETE ROWS; \
                 TRUNCATE stage_transfers, stage_logins",
            )
            .map_err(err("create stage tables"))?;
        let horizon = self.open.as_ref().and_then(|o| o.horizon);
        let hooks = outbox::fresh(client, c.outbox, horizon).map_err(err("read hook events"))?;
        let (n_transfers, n_logins) = count(events);
        if n_transfers > 0 {
            copy_events(client, &RawCopy::sql("stage_transfers"), events, c.input, false, || ())
                .map_err(err("copy transfers"))?;
            let new: i64 = client.query_one(&super::rollup::MOVE[0], &[]).map_err(err("insert transfers"))?.get(0);
            done.new += new as u64;
            done.dup += n_transfers - new as u64;
        }
        if n_logins > 0 {
            copy_events(client, &RawCopy::sql("stage_logins"), events, c.input, true, || ())
                .map_err(err("copy logins"))?;
            let new: i64 = client.query_one(&super::rollup::MOVE[1], &[]).map_err(err("insert logins"))?.get(0);
            done.new += new as u64;
            done.dup += n_logins - new as u64;
        }
        Ok(hooks)
    }

    /// Commits the open transaction: the summed rollup deltas, the ledger
    /// (with what the whole transaction stored) and the open sessions of
    /// `c`.
    fn close(&mut self, c: &Commit<'_>) -> Result<(), StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let Some(mut open) = self.open.take() else { return Ok(()) };
        // Still open (its state taken) until the COMMIT: a failure before
        // rolls it back (see [`PgStore::within`]).
        self.open = Some(Open::default());
        self.write_rollups(&mut open.pending)?;
        finish(&mut self.client, c, open.done).map_err(err("update ledger"))?;
        self.commit_open(open.hooks)
    }

    /// Commits what the open transaction holds without a checkpoint, so
    /// that partitions can be created (in a transaction of their own): the
    /// events stay exact — a run that stops before the next checkpoint
    /// reads them again and finds them stored.
    /// Returns the open transaction's state, its rollup deltas written:
    /// what it stored and how many parts, for the ledger of the next one.
    fn settle(&mut self) -> Result<Open, StoreError> {
        let Some(mut open) = self.open.take() else { return Ok(Open::default()) };
        self.open = Some(Open::default());
        self.write_rollups(&mut open.pending)?;
        self.commit_open(open.hooks)?;
        Ok(open)
    }

    /// Writes the open transaction's rollup deltas, once the second
    /// connection's transaction, if it holds any, is committed with its
    /// own (see [`super::side`]): meanwhile the rollups it never writes are
    /// written here, so that neither connection waits for the other's row
    /// locks while the other waits for it.
    fn write_rollups(&mut self, pending: &mut Pending) -> Result<(), StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let PgStore { client, side, .. } = self;
        if side.is_open() {
            let (first, second) = std::thread::scope(|s| {
                let second = s.spawn(|| side.commit());
                let first = pending.write_first_only(client);
                (first, second.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            });
            second.map_err(err("commit on the second connection"))?;
            first.map_err(err("update rollups"))?;
        }
        pending.write(client).map_err(err("update rollups"))
    }

    /// COMMIT of the open transaction; synchronous when it queued hook
    /// deliveries (see the note on synchronous commits below).
    fn commit_open(&mut self, hooks: bool) -> Result<(), StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        if hooks {
            self.client.batch_execute("SET LOCAL synchronous_commit = on").map_err(err("commit"))?;
        }
        crate::testhook::maybe_crash("commit");
        self.client.batch_execute("COMMIT").map_err(err("commit"))?;
        self.open = None;
        Ok(())
    }
}

// A batch's transaction does not wait for the WAL to reach the disk at
// its commit (`synchronous_commit = off`, a commit's fsync was a tenth of
// the server's time per batch). Batches stay atomic and in order (the WAL
// is sequential, a lost batch takes its ledger entry with it and is read
// again); [`Sink::finish`] makes the run durable with one synchronous
// commit, which flushes the WAL of every batch before it. A batch that
// queues hook deliveries commits synchronously: the delivery worker may
// send them at once, and a server crash must not take back an event whose
// hook already fired (it would fire again when the batch is read again).

/// The prune horizon (µs), if the store was ever pruned.
pub(super) fn pruned_before(tx: &mut impl GenericClient) -> Result<Option<i64>, ::postgres::Error> {
    Ok(tx
        .query_opt("SELECT value FROM store_meta WHERE key = 'pruned_before'", &[])?
        .and_then(|r| r.get::<_, String>(0).parse().ok()))
}

pub(super) fn count(events: &[Event]) -> (u64, u64) {
    let t = events.iter().filter(|e| matches!(e, Event::Transfer(_))).count() as u64;
    (t, events.len() as u64 - t)
}

/// Ledger and session states, in the commit's transaction.
pub(super) fn finish(tx: &mut impl GenericClient, c: &Commit<'_>, done: Committed) -> Result<(), ::postgres::Error> {
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
