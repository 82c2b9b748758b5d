//! The ingest side: ledger, id re-keying, session state, commits.

use std::borrow::Cow;

use rusqlite::{params, Connection, OptionalExtension};

use super::admin::pruned_before;
use super::insert::write_totals;
use super::outbox;
use super::{err_at, SqliteStore};
use crate::enrich::hostkey::HostKey;
use crate::error::StoreError;
use crate::model::Event;
use crate::rollup::Totals;
use crate::sinks::{Checkpoint, Commit, Committed, LedgerEntry, RekeyState, Sink};
use crate::time::rfc3339;

pub(super) fn now_string() -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
    rfc3339(now - now % 1_000_000)
}

impl Sink for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn checkpoint(&mut self, fingerprint: u64) -> Result<Option<Checkpoint>, StoreError> {
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| format!("SELECT {LEDGER_COLUMNS} FROM ledger WHERE fingerprint = ?1"));
        self.conn
            .prepare_cached(&SQL)
            .and_then(|mut st| st.query_row([fingerprint as i64], |r| checkpoint_of(fingerprint, r)).optional())
            .map_err(self.err("read ledger"))
    }

    fn ledger(&mut self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.ledger_entries()
    }

    fn key_ids(&mut self, key: &HostKey, rekey_state: &mut RekeyState<'_>) -> Result<&'static str, StoreError> {
        let path = self.path.clone();
        let err = |what| err_at(&path, what);
        let store = self.describe();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err("begin id re-keying"))?;
        let meta = |k: &str| {
            tx.query_row("SELECT value FROM store_meta WHERE key = ?1", [k], |r| r.get::<_, String>(0)).optional()
        };
        let scheme = meta("id_scheme").map_err(err("read id scheme"))?;
        let check = meta("id_key_check").map_err(err("read id scheme"))?;
        if let Some(scheme) = crate::sinks::id_scheme_action(&store, scheme, check, key)? {
            return Ok(scheme);
        }
        let ids = key.id_key();
        let rekey = |v: i64| ids.hash(v as u64) as i64;
        let mut rows = 0;
        for (table, time) in [("transfers", "end_us"), ("logins", "time_us")] {
            let stored: Vec<(i64, i64)> = tx
                .prepare(&format!("SELECT {time}, event_id FROM {table} ORDER BY {time}"))
                .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .map_err(err("read event ids"))?;
            let mut update = tx
                .prepare(&format!("UPDATE {table} SET event_id = ?1 WHERE {time} = ?2 AND event_id = ?3"))
                .map_err(err("re-key event ids"))?;
            for group in stored.chunk_by(|a, b| a.0 == b.0) {
                let old: Vec<u64> = group.iter().map(|&(_, id)| id as u64).collect();
                for (new, &(t, id)) in crate::sessions::rekey_unkeyed_ids(&ids, &old).into_iter().zip(group) {
                    update.execute(params![new as i64, t, id]).map_err(err("re-key event ids"))?;
                }
            }
            rows += stored.len() as u64;
        }
        // Rows that record their input (stores keyed since migration 4
        // never come here, but test stores written unkeyed do) follow their
        // ledger entry; one look first spares old stores a scan per entry.
        let inputs_known: bool = tx.query_row(INPUTS_KNOWN, [], |r| r.get(0)).map_err(err("read event inputs"))?;
        let ledger: Vec<(i64, i64, String)> = tx
            .prepare("SELECT fingerprint, tail_hash, ids_state FROM ledger")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect())
            .map_err(err("re-key ledger"))?;
        let scheme = crate::sinks::scheme_after_rekey(rows > 0 || !ledger.is_empty());
        for (fp, tail, state) in ledger {
            // 0 is the tail hash that never matches (after an overlong line).
            let tail = if tail == 0 { 0 } else { rekey(tail) };
            tx.execute(
                "UPDATE ledger SET fingerprint = ?1, tail_hash = ?2, ids_state = ?3 WHERE fingerprint = ?4",
                params![rekey(fp), tail, crate::sessions::rekey_ids_state(&ids, &state), fp],
            )
            .map_err(err("re-key ledger"))?;
            for table in ["transfers", "logins"].into_iter().filter(|_| inputs_known) {
                tx.execute(&format!("UPDATE {table} SET input = ?1 WHERE input = ?2"), params![rekey(fp), fp])
                    .map_err(err("re-key event inputs"))?;
            }
        }
        let states: Vec<(String, String)> = tx
            .prepare("SELECT scope, state FROM session_state")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(err("read session state"))?;
        for (scope, stored) in states {
            let new =
                rekey_state(&scope, &stored).map_err(|reason| StoreError::State { scope: scope.clone(), reason })?;
            tx.execute("UPDATE session_state SET state = ?1 WHERE scope = ?2", params![new, scope])
                .map_err(err("re-key session state"))?;
        }
        tx.execute(
            "INSERT INTO store_meta (key, value) VALUES ('id_scheme', ?1), ('id_key_check', ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![scheme, key.key_check()],
        )
        .map_err(err("record id scheme"))?;
        tx.commit().map_err(err("commit id re-keying"))?;
        if rows > 0 {
            tracing::info!("{store}: re-keyed {rows} event ids written before ids were keyed with the host key");
        }
        Ok(scheme)
    }

    fn state(&mut self, scope: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT state FROM session_state WHERE scope = ?1")
            .and_then(|mut st| st.query_row([scope], |r| r.get(0)).optional())
            .map_err(self.err("read session state"))
    }

    fn states(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT scope, state FROM session_state ORDER BY scope")
            .map_err(self.err("read session states"))?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.err("read session states"))?;
        rows.collect::<Result<_, _>>().map_err(self.err("read session states"))
    }

    fn commit(&mut self, c: &Commit<'_>) -> Result<Committed, StoreError> {
        self.commit_with(c, &mut |_, _| Ok(()))
    }

    fn part_events(&self) -> Option<usize> {
        Some(crate::testhook::part_events().unwrap_or(PART_EVENTS))
    }

    fn part(&mut self, c: &Commit<'_>) -> Result<Committed, StoreError> {
        self.within(|s| s.stage(c).map(|(done, _)| done))
    }

    /// Commits parts whose commit never came (the run read no more
    /// events after them): exact, as [`Sink::part`] says.
    fn finish(&mut self) -> Result<(), StoreError> {
        let empty = Commit { events: &[], input: None, checkpoint: None, states: &[], outbox: &[] };
        self.within(|s| s.close(&empty, &[], &mut |_, _| Ok(())))
    }

    fn outbox(&mut self) -> &mut dyn crate::sinks::Outbox {
        self
    }
}

/// Work another store does inside an SQLite commit, after the rows were
/// written and before `COMMIT`: it sees the transaction and the events
/// (those past the prune horizon, already stored or not); an error rolls the
/// whole commit back.
pub type BeforeCommit<'h> = dyn FnMut(&Connection, &[Event]) -> Result<(), StoreError> + 'h;

/// Events per part of a transaction taken in parts ([`Sink::part`]): as
/// many as a commit of a follower, so memory holds no more than before
/// while a batch import's transactions grow to
/// [`crate::ingest::PARTED_BATCH_EVENTS`].
const PART_EVENTS: usize = 10_000;

/// Rollup rows a transaction holds in memory at most: beyond, they are
/// written at once (in the same transaction) and summed anew, so that a
/// transaction of many distinct files or clients keeps memory flat.
const MAX_TOTALS: usize = 65_536;

/// The write transaction open between the parts of a commit
/// ([`Sink::part`]), or within one commit.
#[derive(Default)]
pub(super) struct Open {
    /// The prune horizon (µs), if the store was ever pruned.
    horizon: Option<i64>,
    /// What the transaction stored so far, for the ledger.
    done: Committed,
    /// The rollup rows of what it stored, written once, just before the
    /// commit.
    totals: Totals,
}

impl SqliteStore {
    /// [`Sink::commit`] with `hook` run just before `COMMIT` (the InfluxDB
    /// store sends the events to its server there, so nothing is marked
    /// imported locally unless the server acknowledged it).
    pub fn commit_with(&mut self, c: &Commit<'_>, hook: &mut BeforeCommit<'_>) -> Result<Committed, StoreError> {
        self.within(|s| {
            let (done, events) = s.stage(c)?;
            s.close(c, &events, hook)?;
            Ok(done)
        })
    }

    /// Runs `f`; when it fails, rolls back the open transaction so that
    /// nothing of it is committed.
    fn within<T>(&mut self, f: impl FnOnce(&mut SqliteStore) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let result = f(self);
        if result.is_err() && self.open.take().is_some() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result
    }

    /// Stores the events and hook deliveries of `c` in the open transaction
    /// (opening one first), their rollup rows summed for the commit;
    /// returns what it stored and the events past the prune horizon.
    fn stage<'c>(&mut self, c: &'c Commit<'_>) -> Result<(Committed, Cow<'c, [Event]>), StoreError> {
        let path = self.path.clone();
        let err = |what| err_at(&path, what);
        if self.open.is_none() {
            self.conn.execute_batch("BEGIN IMMEDIATE").map_err(err("begin transaction"))?;
            self.open = Some(Open::default());
            let horizon = pruned_before(&self.conn).map_err(err("read prune horizon"))?;
            self.open.as_mut().expect("opened above").horizon = horizon;
        }
        let open = self.open.as_mut().expect("opened above");
        let (events, skipped) = crate::sinks::beyond_horizon(c.events, open.horizon);
        let tx = &self.conn;
        // A part partly stored already is inserted again row by row: back
        // to this savepoint, not to the transaction's start.
        tx.execute_batch("SAVEPOINT part").map_err(err("begin transaction"))?;
        let mut hooks = outbox::fresh(tx, c.outbox, open.horizon).map_err(err("read hook events"))?;
        let mut insert = |careful, totals: &mut Totals| {
            Self::insert_events(tx, &mut self.stmts, &events, c.input, &mut self.ips, careful, totals)
                .map_err(err("insert events"))
        };
        let mut done = match insert(false, &mut open.totals)? {
            Some(done) => done,
            None => {
                tx.execute_batch("ROLLBACK TO part").map_err(err("roll back"))?;
                hooks = outbox::fresh(tx, c.outbox, open.horizon).map_err(err("read hook events"))?;
                insert(true, &mut open.totals)?.unwrap_or_default()
            }
        };
        tx.execute_batch("RELEASE part").map_err(err("insert events"))?;
        done.dup += skipped;
        outbox::queue(tx, &hooks, &now_string()).map_err(err("queue hook deliveries"))?;
        if open.totals.len() >= MAX_TOTALS {
            write_totals(tx, &mut self.stmts, &mut open.totals).map_err(err("update rollups"))?;
        }
        open.done.new += done.new;
        open.done.dup += done.dup;
        Ok((done, events))
    }

    /// Ends the open transaction with the checkpoint and states of `c`: the
    /// rollup rows, the ledger, the session states, `hook`, `COMMIT`.
    fn close(&mut self, c: &Commit<'_>, events: &[Event], hook: &mut BeforeCommit<'_>) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |what| err_at(&path, what);
        let Some(open) = &mut self.open else { return Ok(()) };
        let tx = &self.conn;
        write_totals(tx, &mut self.stmts, &mut open.totals).map_err(err("update rollups"))?;
        let done = open.done;
        let now = now_string();
        if let Some(cp) = c.checkpoint {
            tx.prepare_cached(
                "INSERT INTO ledger (fingerprint, name, format, offset, lines, tail_hash, ids_state, events_new, \
                 events_dup, rejected, first_import, last_import) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
                 ?11, ?11) ON CONFLICT (fingerprint) DO UPDATE SET name = excluded.name, format = excluded.format, \
                 offset = excluded.offset, lines = excluded.lines, tail_hash = excluded.tail_hash, \
                 ids_state = excluded.ids_state, events_new = events_new + excluded.events_new, \
                 events_dup = events_dup + excluded.events_dup, rejected = excluded.rejected, \
                 last_import = excluded.last_import",
            )
            .and_then(|mut st| {
                st.execute(params![
                    cp.fingerprint as i64,
                    cp.name,
                    cp.format,
                    cp.offset as i64,
                    cp.lines as i64,
                    cp.tail_hash as i64,
                    cp.ids,
                    done.new as i64,
                    done.dup as i64,
                    cp.rejected as i64,
                    now,
                ])
            })
            .map_err(err("update ledger"))?;
        }
        let mut save = tx
            .prepare_cached(
                "INSERT INTO session_state (scope, state, updated) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (scope) DO UPDATE SET state = excluded.state, updated = excluded.updated",
            )
            .map_err(err("save session state"))?;
        for (scope, state) in c.states {
            save.execute(params![scope, state, now]).map_err(err("save session state"))?;
        }
        drop(save);
        hook(tx, events)?;
        crate::testhook::maybe_crash("commit");
        tx.execute_batch("COMMIT").map_err(err("commit"))?;
        self.open = None;
        Ok(())
    }
}

/// Whether any stored event records its input.
const INPUTS_KNOWN: &str = "SELECT EXISTS (SELECT 1 FROM transfers WHERE input IS NOT NULL) \
     OR EXISTS (SELECT 1 FROM logins WHERE input IS NOT NULL)";

// The ledger listing of `Sink::ledger` (`xferstats status`, the follower's
// catch-up), and the ledger columns it shares with `Sink::checkpoint`.

/// The ledger columns [`checkpoint_of`] reads, in its order.
const LEDGER_COLUMNS: &str = "name, format, offset, lines, tail_hash, ids_state, events_new, events_dup, rejected";

/// The [`LEDGER_COLUMNS`] of a row as the checkpoint of `fingerprint`.
fn checkpoint_of(fingerprint: u64, r: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
    Ok(Checkpoint {
        fingerprint,
        name: r.get(0)?,
        format: r.get(1)?,
        offset: r.get::<_, i64>(2)? as u64,
        lines: r.get::<_, i64>(3)? as u64,
        tail_hash: r.get::<_, i64>(4)? as u64,
        ids: r.get(5)?,
        events_new: r.get::<_, i64>(6)? as u64,
        events_dup: r.get::<_, i64>(7)? as u64,
        rejected: r.get::<_, i64>(8)? as u64,
    })
}

impl SqliteStore {
    pub(crate) fn ledger_entries(&mut self) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {LEDGER_COLUMNS}, fingerprint, last_import FROM ledger ORDER BY last_import DESC, name"
            ))
            .map_err(self.err("list ledger"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(LedgerEntry { checkpoint: checkpoint_of(r.get::<_, i64>(9)? as u64, r)?, last_import: r.get(10)? })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        drop(stmt);
        rows.map_err(self.err("list ledger"))
    }
}
