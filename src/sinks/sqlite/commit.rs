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
        self.within(|s| {
            let (done, _) = s.stage(c)?;
            if spilled(&s.conn) {
                s.settle()?;
            }
            Ok(done)
        })
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
/// while a batch import's transactions grow up to
/// [`crate::ingest::PARTED_BATCH_EVENTS`] (see [`SqliteStore::settle`]).
const PART_EVENTS: usize = 10_000;

/// Rollup rows a transaction holds in memory at most: beyond, they are
/// written at once (in the same transaction) and summed anew, so that a
/// transaction of many distinct files or clients keeps memory flat.
const MAX_TOTALS: usize = 65_536;

/// Whether SQLite wrote pages of the open transaction out of its page
/// cache before the commit since the last call (`SQLITE_DBSTATUS_CACHE_SPILL`,
/// reset by the call).
fn spilled(conn: &Connection) -> bool {
    let (mut now, mut high) = (0, 0);
    // SAFETY: a live connection; SQLite writes the two ints.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_status(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBSTATUS_CACHE_SPILL,
            &mut now,
            &mut high,
            1,
        )
    };
    rc == rusqlite::ffi::SQLITE_OK && now > 0
}

/// The commit in progress: its SQL transaction, open between its parts
/// ([`Sink::part`]) unless settled ([`SqliteStore::settle`]), or within
/// one commit.
#[derive(Default)]
pub(super) struct Open {
    /// The prune horizon (µs), if the store was ever pruned.
    horizon: Option<i64>,
    /// What the commit stored so far, for the ledger.
    done: Committed,
    /// The rollup rows of what its SQL transaction stored, written once,
    /// just before that commits.
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
        if self.conn.is_autocommit() {
            self.conn.execute_batch("BEGIN IMMEDIATE").map_err(err("begin transaction"))?;
            let open = self.open.get_or_insert_with(Open::default);
            open.horizon = pruned_before(&self.conn).map_err(err("read prune horizon"))?;
            spilled(&self.conn);
        }
        let open = self.open.get_or_insert_with(Open::default);
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

    /// Commits what the open transaction holds so far, its rollup rows
    /// included, without a checkpoint; the transaction's ledger counts go
    /// on to its end. Exact as [`Sink::part`] says: a run that stops before
    /// the checkpoint reads these events again and finds them stored. Done
    /// once the transaction's pages no longer fit the page cache: SQLite
    /// then writes ("spills") pages to the WAL before the commit, and writes
    /// a page again each time it changes — a transaction of a few hundred
    /// thousand events, its index and rollup pages changing all along,
    /// wrote the WAL to hundreds of MB.
    fn settle(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |what| err_at(&path, what);
        let Some(open) = &mut self.open else { return Ok(()) };
        write_totals(&self.conn, &mut self.stmts, &mut open.totals).map_err(err("update rollups"))?;
        self.conn.execute_batch("COMMIT").map_err(err("commit"))
    }

    /// Ends the open transaction with the checkpoint and states of `c`: the
    /// rollup rows, the ledger, the session states, `hook`, `COMMIT`.
    fn close(&mut self, c: &Commit<'_>, events: &[Event], hook: &mut BeforeCommit<'_>) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |what| err_at(&path, what);
        let Some(open) = &mut self.open else { return Ok(()) };
        let tx = &self.conn;
        if tx.is_autocommit() {
            // Everything was settled (see [`SqliteStore::settle`]); the
            // ledger and states still go in a transaction of their own.
            tx.execute_batch("BEGIN IMMEDIATE").map_err(err("begin transaction"))?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Direction, Granularity, Protocol, Status, Transfer};

    fn transfer(i: u64) -> Event {
        Event::Transfer(Transfer {
            id: i,
            end: 1_700_000_000_000_000 + i as i64 * 1_000_000,
            start: None,
            protocol: Protocol::Rsync,
            direction: Direction::Download,
            status: Status::Completed,
            bytes: i,
            wire_bytes: None,
            file_size: None,
            path: Some(format!("dir/{i}/{}", "x".repeat(200))),
            module: Some("pub".into()),
            user: format!("user{}", i % 50).into(),
            client_ip: None,
            client_host: Some(format!("host{}", i % 300).into()),
            session: None,
            server_host: "h".into(),
            source: crate::formats::Format::Rsyncd.source(),
            granularity: Granularity::File,
            origin: None,
        })
    }

    fn count(path: &std::path::Path, sql: &str) -> i64 {
        Connection::open(path).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Parts that outgrow the page cache are committed as they come, their
    /// rollups with them; the ledger comes with the commit and counts them
    /// all; a second import of the same events adds nothing.
    #[test]
    fn parts_beyond_the_page_cache_are_settled_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let mut store = SqliteStore::open(&path).unwrap();
        store.conn.execute_batch("PRAGMA cache_size=4").unwrap();
        let events: Vec<Event> = (0..3000).map(transfer).collect();
        let cp = Checkpoint {
            fingerprint: 7,
            name: "x.log".into(),
            format: "rsyncd".into(),
            offset: 1,
            lines: 1,
            tail_hash: 1,
            ids: String::new(),
            events_new: 0,
            events_dup: 0,
            rejected: 0,
        };
        // Raw rows, rolled-up transfers, ledger entries.
        let totals = "SELECT (SELECT count(*) FROM transfers) * 100000000 + (SELECT SUM(transfers) \
                      FROM daily_transfers) * 10 + (SELECT count(*) FROM ledger)";
        for round in 0..2 {
            let mut new = 0;
            for part in events.chunks(500) {
                let c = Commit { events: part, input: Some(7), checkpoint: None, states: &[], outbox: &[] };
                new += store.part(&c).unwrap().new;
            }
            assert_eq!(new, if round == 0 { 3000 } else { 0 });
            // Committed (seen by another connection), rollups included;
            // no ledger entry before the commit.
            assert_eq!(count(&path, totals), 3000 * 100000000 + 3000 * 10 + round);
            let c = Commit { events: &[], input: Some(7), checkpoint: Some(&cp), states: &[], outbox: &[] };
            store.commit(&c).unwrap();
            assert_eq!(count(&path, totals), 3000 * 100000000 + 3000 * 10 + 1);
            let counted = count(&path, "SELECT events_new * 10000 + events_dup FROM ledger");
            assert_eq!(counted, 3000 * 10000 + 3000 * round);
        }
    }
}
