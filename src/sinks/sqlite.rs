//! The embedded default store: one SQLite file, zero set-up.
//!
//! Writes go through cached prepared statements inside one transaction per
//! commit (WAL, `synchronous=NORMAL`: a power cut may lose the last commits
//! but never splits one, and the ledger rolls back with the events). Each
//! raw insert is `INSERT OR IGNORE` on the content-derived `event_id`; only
//! rows actually inserted feed the rollup deltas, so the daily tables always
//! equal the sum of the raw rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::{
    Admin, Aggregate, Checkpoint, Commit, Committed, Group, Key, LedgerEntry, Pruned, RekeyState, Sink, Store,
};
use crate::enrich::hostkey::{HostKey, ID_SCHEME};
use crate::error::StoreError;
use crate::filemode::DbMode;
use crate::model::{Direction, Event, Protocol, Status, Transfer};
use crate::time::{day_number, day_string, rfc3339};

/// Schema migrations, applied in order; the index + 1 is the version.
const MIGRATIONS: &[&str] = &[
    include_str!("../../sql/sqlite/0001_init.sql"),
    include_str!("../../sql/sqlite/0002_enrich.sql"),
    include_str!("../../sql/sqlite/0003_store_meta.sql"),
];

/// A SQLite store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    ips: IpText,
}

type RollKey<'a> = (i64, &'a str, Protocol, Direction, Status, &'a str, &'a str);
type LoginKey<'a> = (i64, &'a str, Protocol, &'a str, &'static str);

impl SqliteStore {
    /// Opens (creating file, directory and schema if needed) the database;
    /// a new file is private (see [`DbMode`]).
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, DbMode::default())
    }

    /// Opens the database for writing, creating what is missing: the
    /// directories and the file with `mode` (SQLite gives its `-wal`, `-shm`
    /// and `-journal` files the file's mode), then the schema.
    pub fn open_with(path: &Path, mode: DbMode) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            mode.create_dir_all(dir).map_err(|e| StoreError::Dir { path: dir.to_path_buf(), source: e })?;
        }
        mode.create_file(path).map_err(|e| StoreError::Create { path: path.to_path_buf(), source: e })?;
        let err = |what| err_at(path, what);
        let conn = Connection::open(path).map_err(err("open"))?;
        conn.busy_timeout(std::time::Duration::from_secs(60)).map_err(err("set busy timeout"))?;
        // The -wal and -shm files stay when the last writer closes (the WAL
        // emptied: journal_size_limit truncates it then), so that readers
        // without write access to the directory can use them.
        persist_wal(&conn).map_err(err("keep the WAL file"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; \
             PRAGMA journal_size_limit=67108864; PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;",
        )
        .map_err(err("set pragmas"))?;
        let mut store = SqliteStore { conn, path: path.to_path_buf(), ips: IpText::default() };
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing database read-only (reports): nothing is created
    /// or migrated, and neither the file nor its directory need be
    /// writable. A WAL database needs its `-wal` and `-shm` files, which
    /// xferstats leaves in place; if they are missing (a database copied
    /// alone, or written by an older xferstats) and the directory is not
    /// writable, the file is read as immutable, which is exact since no
    /// WAL holds anything it lacks.
    pub fn open_read_only(path: &Path) -> Result<SqliteStore, StoreError> {
        // SQLite would only say "unable to open database file".
        std::fs::File::open(path).map_err(|e| StoreError::Unreadable { path: path.to_path_buf(), source: e })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open = |name: &str| -> Result<(Connection, i64), rusqlite::Error> {
            let conn = Connection::open_with_flags(name, flags)?;
            conn.busy_timeout(std::time::Duration::from_secs(60))?;
            conn.execute_batch("PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;")?;
            let v = conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))?;
            Ok((conn, v))
        };
        let (conn, found) = match open(&file_uri(path, false)) {
            // The -shm cannot be created: SQLITE_READONLY_DIRECTORY, or
            // SQLITE_CANTOPEN.
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
                ) && !wal_has_frames(path) =>
            {
                open(&file_uri(path, true))
            }
            other => other,
        }
        .map_err(err_at(path, "open read-only"))?;
        let supported = MIGRATIONS.len() as i64;
        if found > supported {
            return Err(StoreError::NewerSchema { path: path.to_path_buf(), found, supported });
        }
        if found < supported {
            return Err(StoreError::OlderSchema { path: path.to_path_buf(), found, supported });
        }
        Ok(SqliteStore { conn, path: path.to_path_buf(), ips: IpText::default() })
    }

    fn err(&self, what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite { path: self.path.clone(), what, source }
    }

    /// Applies pending migrations; refuses a database from a newer binary.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |what| {
            let path = path.clone();
            move |source| StoreError::Sqlite { path: path.clone(), what, source }
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err("begin migration"))?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .map_err(err("create schema_version"))?;
        let current: i64 = tx
            .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))
            .map_err(err("read schema version"))?;
        let supported = MIGRATIONS.len() as i64;
        if current > supported {
            return Err(StoreError::NewerSchema { path: self.path.clone(), found: current, supported });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql).map_err(err("apply migration"))?;
            tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [i as i64 + 1])
                .map_err(err("record migration"))?;
        }
        tx.commit().map_err(err("commit migration"))?;
        Ok(())
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))
            .map_err(self.err("read schema version"))
    }

    /// The underlying connection (tests and tools).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Inserts events and updates rollups. In fast mode transfers go 32 to a
    /// statement and `None` is returned if a group turns out to be partly
    /// stored already (a re-read overlap): the caller then rolls back and
    /// repeats in careful mode, one row per statement, to learn exactly
    /// which rows are new.
    fn insert_events(
        tx: &Transaction<'_>,
        events: &[Event],
        ips: &mut IpText,
        careful: bool,
    ) -> rusqlite::Result<Option<Committed>> {
        let mut done = Committed::default();
        let mut rolls: HashMap<RollKey<'_>, (i64, i64), Xxh3DefaultBuilder> = HashMap::default();
        let mut logins: HashMap<LoginKey<'_>, i64, Xxh3DefaultBuilder> = HashMap::default();

        // Transfers go in multi-row statements (fewer statement executions);
        // RETURNING names the rows actually inserted, which alone feed the
        // rollup.
        let transfers: Vec<&Transfer> = events
            .iter()
            .filter_map(|e| match e {
                Event::Transfer(t) => Some(t),
                Event::Login(_) => None,
            })
            .collect();
        let mut multi = tx.prepare_cached(&multi_insert_sql(ROWS_PER_INSERT))?;
        let mut single = tx.prepare_cached(&multi_insert_sql(1))?;
        let mut inserted: Vec<bool> = Vec::with_capacity(ROWS_PER_INSERT);
        for group in transfers.chunks(ROWS_PER_INSERT) {
            inserted.clear();
            if group.len() == ROWS_PER_INSERT && !careful {
                for (i, t) in group.iter().enumerate() {
                    bind_transfer(&mut multi, i * TRANSFER_COLS, t, ips)?;
                }
                let n = multi.raw_execute()?;
                if n != group.len() && n != 0 {
                    return Ok(None);
                }
                inserted.resize(group.len(), n != 0);
            } else {
                for t in group {
                    bind_transfer(&mut single, 0, t, ips)?;
                    inserted.push(single.raw_execute()? == 1);
                }
            }
            for (t, new) in group.iter().zip(&inserted) {
                if *new {
                    done.new += 1;
                    let key = (
                        day_number(t.end),
                        &*t.server_host,
                        t.protocol,
                        t.direction,
                        t.status,
                        t.module.as_deref().unwrap_or(""),
                        t.user.as_str(),
                    );
                    let e = rolls.entry(key).or_default();
                    e.0 += 1;
                    e.1 += t.bytes as i64;
                } else {
                    done.dup += 1;
                }
            }
        }

        let mut l_stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO logins (event_id, time_us, protocol, user, client_ip, client_host, \
             outcome, method, session, server_host, source, country, city, latitude, longitude, geohash, \
             client_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?;
        for ev in events {
            let Event::Login(l) = ev else { continue };
            let o = l.origin.as_deref();
            let n = l_stmt.execute(params![
                l.id as i64,
                l.time,
                l.protocol.as_str(),
                l.user,
                ips.text(l.client_ip, o.and_then(|o| o.ip_prefix)),
                l.client_host,
                l.outcome.as_str(),
                l.method,
                l.session,
                l.server_host,
                l.source.as_str(),
                o.and_then(|o| o.country.as_deref()),
                o.and_then(|o| o.city.as_deref()),
                o.and_then(|o| o.latitude),
                o.and_then(|o| o.longitude),
                o.and_then(|o| o.geohash.as_deref()),
                o.and_then(|o| o.client_hash.as_deref()),
            ])?;
            if n == 1 {
                done.new += 1;
                *logins
                    .entry((day_number(l.time), &*l.server_host, l.protocol, l.user.as_str(), l.outcome.as_str()))
                    .or_default() += 1;
            } else {
                done.dup += 1;
            }
        }
        let mut r_stmt = tx.prepare_cached(
            "INSERT INTO daily_transfers (day, server_host, protocol, direction, status, module, user, transfers, \
             bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO UPDATE SET \
             transfers = transfers + excluded.transfers, bytes = bytes + excluded.bytes",
        )?;
        for ((dn, host, proto, dir, status, module, user), (n, bytes)) in rolls {
            r_stmt.execute(params![
                day_string(dn * 86_400_000_000),
                host,
                proto.as_str(),
                dir.as_str(),
                status.as_str(),
                module,
                user,
                n,
                bytes
            ])?;
        }
        let mut dl_stmt = tx.prepare_cached(
            "INSERT INTO daily_logins (day, server_host, protocol, user, outcome, logins) VALUES (?1, ?2, ?3, ?4, \
             ?5, ?6) ON CONFLICT DO UPDATE SET logins = logins + excluded.logins",
        )?;
        for ((dn, host, proto, user, outcome), n) in logins {
            dl_stmt.execute(params![day_string(dn * 86_400_000_000), host, proto.as_str(), user, outcome, n])?;
        }
        Ok(Some(done))
    }
}

/// Rows per multi-row transfer insert.
const ROWS_PER_INSERT: usize = 32;
/// Bound columns per transfer row.
const TRANSFER_COLS: usize = 24;

/// One row of the transfer insert. Low-cardinality text columns are bound
/// as small integers and turned into string constants by SQLite (no copy
/// per row); the codes are the `code()`s of the model enums.
const TRANSFER_ROW: &str = "(?,?,?,\
    CASE ? WHEN 0 THEN 'rsync' WHEN 1 THEN 'sftp' WHEN 2 THEN 'scp' WHEN 3 THEN 'ftp' WHEN 4 THEN 'ftps' \
    WHEN 5 THEN 'ssh' ELSE 'http' END,\
    CASE ? WHEN 0 THEN 'upload' WHEN 1 THEN 'download' ELSE 'delete' END,\
    CASE ? WHEN 0 THEN 'completed' WHEN 1 THEN 'interrupted' ELSE 'failed' END,\
    ?,?,?,?,?,?,?,?,?,?,?,\
    CASE ? WHEN 0 THEN 'file' ELSE 'session' END,?,?,?,?,?,?)";

fn multi_insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT OR IGNORE INTO transfers (event_id, end_us, start_us, protocol, direction, status, bytes, \
         wire_bytes, file_size, path, module, user, client_ip, client_host, session, server_host, source, \
         granularity, country, city, latitude, longitude, geohash, client_hash) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str(TRANSFER_ROW);
    }
    sql
}

fn bind_transfer(
    stmt: &mut rusqlite::CachedStatement<'_>,
    base: usize,
    t: &Transfer,
    ips: &mut IpText,
) -> rusqlite::Result<()> {
    let b = base + 1;
    stmt.raw_bind_parameter(b, t.id as i64)?;
    stmt.raw_bind_parameter(b + 1, t.end)?;
    stmt.raw_bind_parameter(b + 2, t.start)?;
    stmt.raw_bind_parameter(b + 3, t.protocol as i64)?;
    stmt.raw_bind_parameter(b + 4, t.direction as i64)?;
    stmt.raw_bind_parameter(b + 5, t.status as i64)?;
    stmt.raw_bind_parameter(b + 6, t.bytes as i64)?;
    stmt.raw_bind_parameter(b + 7, t.wire_bytes.map(|v| v as i64))?;
    stmt.raw_bind_parameter(b + 8, t.file_size.map(|v| v as i64))?;
    stmt.raw_bind_parameter(b + 9, t.path.as_deref())?;
    stmt.raw_bind_parameter(b + 10, t.module.as_deref())?;
    stmt.raw_bind_parameter(b + 11, t.user.as_str())?;
    let o = t.origin.as_deref();
    stmt.raw_bind_parameter(b + 12, ips.text(t.client_ip, o.and_then(|o| o.ip_prefix)))?;
    stmt.raw_bind_parameter(b + 13, t.client_host.as_deref())?;
    stmt.raw_bind_parameter(b + 14, t.session.as_deref())?;
    stmt.raw_bind_parameter(b + 15, &*t.server_host)?;
    stmt.raw_bind_parameter(b + 16, t.source.as_str())?;
    stmt.raw_bind_parameter(b + 17, t.granularity as i64)?;
    stmt.raw_bind_parameter(b + 18, o.and_then(|o| o.country.as_deref()))?;
    stmt.raw_bind_parameter(b + 19, o.and_then(|o| o.city.as_deref()))?;
    stmt.raw_bind_parameter(b + 20, o.and_then(|o| o.latitude))?;
    stmt.raw_bind_parameter(b + 21, o.and_then(|o| o.longitude))?;
    stmt.raw_bind_parameter(b + 22, o.and_then(|o| o.geohash.as_deref()))?;
    stmt.raw_bind_parameter(b + 23, o.and_then(|o| o.client_hash.as_deref()))?;
    Ok(())
}

/// Text of client addresses already bound (`addr` or, for a truncated
/// address, `addr/bits`): an import sees each client many times, and
/// formatting an address costs more than a lookup. Bounded: it starts over
/// past 65,536 addresses.
#[derive(Default)]
struct IpText {
    map: HashMap<(std::net::IpAddr, Option<u8>), String, Xxh3DefaultBuilder>,
}

impl IpText {
    fn text(&mut self, ip: Option<std::net::IpAddr>, prefix: Option<u8>) -> Option<&str> {
        let key = (ip?, prefix);
        if !self.map.contains_key(&key) {
            if self.map.len() >= 65_536 {
                self.map.clear();
            }
            let text = crate::model::ip_text(key.0, prefix);
            self.map.insert(key, text);
        }
        self.map.get(&key).map(String::as_str)
    }
}

fn now_string() -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
    rfc3339(now - now % 1_000_000)
}

impl Sink for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn checkpoint(&mut self, fingerprint: u64) -> Result<Option<Checkpoint>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {LEDGER_COLUMNS} FROM ledger WHERE fingerprint = ?1"),
                [fingerprint as i64],
                |r| checkpoint_of(fingerprint, r),
            )
            .optional()
            .map_err(self.err("read ledger"))
    }

    fn ledger(&mut self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.ledger_entries()
    }

    fn key_ids(&mut self, key: &HostKey, rekey_state: &mut RekeyState<'_>) -> Result<u64, StoreError> {
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
        if !super::id_scheme_action(&store, scheme, check, key)? {
            return Ok(0);
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
        let ledger: Vec<(i64, i64, String)> = tx
            .prepare("SELECT fingerprint, tail_hash, ids_state FROM ledger")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect())
            .map_err(err("re-key ledger"))?;
        for (fp, tail, state) in ledger {
            // 0 is the tail hash that never matches (after an overlong line).
            let tail = if tail == 0 { 0 } else { rekey(tail) };
            tx.execute(
                "UPDATE ledger SET fingerprint = ?1, tail_hash = ?2, ids_state = ?3 WHERE fingerprint = ?4",
                params![rekey(fp), tail, crate::sessions::rekey_ids_state(&ids, &state), fp],
            )
            .map_err(err("re-key ledger"))?;
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
            params![ID_SCHEME, key.key_check()],
        )
        .map_err(err("record id scheme"))?;
        tx.commit().map_err(err("commit id re-keying"))?;
        if rows > 0 {
            tracing::info!("{store}: re-keyed {rows} event ids written before ids were keyed with the host key");
        }
        Ok(rows)
    }

    fn state(&mut self, scope: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT state FROM session_state WHERE scope = ?1", [scope], |r| r.get(0))
            .optional()
            .map_err(self.err("read session state"))
    }

    fn commit(&mut self, c: &Commit<'_>) -> Result<Committed, StoreError> {
        self.commit_with(c, &mut |_, _| Ok(()))
    }
}

/// Work another store does inside an SQLite commit, after the rows were
/// written and before `COMMIT`: it sees the transaction and the events
/// (those past the prune horizon, already stored or not); an error rolls the
/// whole commit back.
pub type BeforeCommit<'h> = dyn FnMut(&Connection, &[Event]) -> Result<(), StoreError> + 'h;

impl SqliteStore {
    /// [`Sink::commit`] with `hook` run just before `COMMIT` (the InfluxDB
    /// store sends the events to its server there, so nothing is marked
    /// imported locally unless the server acknowledged it).
    pub fn commit_with(&mut self, c: &Commit<'_>, hook: &mut BeforeCommit<'_>) -> Result<Committed, StoreError> {
        let path = self.path.clone();
        let err = |what| {
            let path = path.clone();
            move |source| StoreError::Sqlite { path: path.clone(), what, source }
        };
        let mut tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err("begin transaction"))?;
        let horizon = pruned_before(&tx).map_err(err("read prune horizon"))?;
        let (events, skipped) = super::beyond_horizon(c.events, horizon);
        let mut done = match Self::insert_events(&tx, &events, &mut self.ips, false).map_err(err("insert events"))? {
            Some(done) => done,
            None => {
                tx.rollback().map_err(err("roll back"))?;
                tx = self
                    .conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(err("begin transaction"))?;
                Self::insert_events(&tx, &events, &mut self.ips, true)
                    .map_err(err("insert events"))?
                    .unwrap_or_default()
            }
        };
        done.dup += skipped;
        let now = now_string();
        if let Some(cp) = c.checkpoint {
            tx.execute(
                "INSERT INTO ledger (fingerprint, name, format, offset, lines, tail_hash, ids_state, events_new, \
                 events_dup, rejected, first_import, last_import) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
                 ?11, ?11) ON CONFLICT (fingerprint) DO UPDATE SET name = excluded.name, format = excluded.format, \
                 offset = excluded.offset, lines = excluded.lines, tail_hash = excluded.tail_hash, \
                 ids_state = excluded.ids_state, events_new = events_new + excluded.events_new, \
                 events_dup = events_dup + excluded.events_dup, rejected = excluded.rejected, \
                 last_import = excluded.last_import",
                params![
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
                ],
            )
            .map_err(err("update ledger"))?;
        }
        for (scope, state) in c.states {
            tx.execute(
                "INSERT INTO session_state (scope, state, updated) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (scope) DO UPDATE SET state = excluded.state, updated = excluded.updated",
                params![scope, state, now],
            )
            .map_err(err("save session state"))?;
        }
        hook(&tx, &events)?;
        crate::testhook::maybe_crash("commit");
        tx.commit().map_err(err("commit"))?;
        Ok(done)
    }
}

/// Day range over the rollup tables (`?1`, `?2` are `YYYY-MM-DD` or NULL).
/// (Every filter names all four parameters, so one parameter list fits both.)
const DAY_FILTER: &str = "(?1 IS NULL OR day >= ?1) AND (?2 IS NULL OR day <= ?2) AND coalesce(?3, ?4, 0) IS NOT NULL";

/// Time range over a raw table's key column (`?3`, `?4` are µs or NULL).
fn time_filter(col: &'static str) -> &'static str {
    if col == "end_us" {
        "(?3 IS NULL OR end_us >= ?3) AND (?4 IS NULL OR end_us < ?4) AND coalesce(?1, ?2, 0) IS NOT NULL"
    } else {
        "(?3 IS NULL OR time_us >= ?3) AND (?4 IS NULL OR time_us < ?4) AND coalesce(?1, ?2, 0) IS NOT NULL"
    }
}

/// The report's day range as `[since, until + 1 day)` in µs.
fn time_bounds(since: Option<&str>, until: Option<&str>) -> (Option<i64>, Option<i64>) {
    let day = |d: Option<&str>| d.and_then(crate::time::parse_day);
    (day(since).map(|d| d * 86_400_000_000), day(until).map(|d| (d + 1) * 86_400_000_000))
}

/// SQL expression of a key over the rollup tables.
fn rollup_col(k: Key) -> Option<&'static str> {
    Some(match k {
        Key::Day => "day",
        Key::User => "user",
        Key::Protocol => "protocol",
        Key::Direction => "direction",
        Key::Host => "server_host",
        Key::Module => "module",
        Key::Status => "status",
        Key::Client | Key::Country | Key::City => return None,
    })
}

/// SQL expression of a key over the raw tables.
fn raw_col(k: Key, time: &'static str) -> &'static str {
    match k {
        Key::Day => {
            if time == "end_us" {
                "date(end_us / 1000000, 'unixepoch')"
            } else {
                "date(time_us / 1000000, 'unixepoch')"
            }
        }
        Key::User => "user",
        Key::Protocol => "protocol",
        Key::Direction => "direction",
        Key::Host => "server_host",
        Key::Module => "COALESCE(module, '')",
        Key::Status => "status",
        Key::Client => "COALESCE(client_ip, client_hash, client_host, '')",
        Key::Country => "COALESCE(country, '')",
        Key::City => "COALESCE(city || ', ' || country, city, '')",
    }
}

impl Store for SqliteStore {
    fn aggregate(&mut self, q: &Aggregate) -> Result<Vec<Group>, StoreError> {
        let use_rollup = q.keys.iter().all(|k| rollup_col(*k).is_some());
        let (table, count, cols): (&str, &str, Vec<&str>) = if use_rollup {
            ("daily_transfers", "transfers", q.keys.iter().map(|k| rollup_col(*k).unwrap_or("''")).collect())
        } else {
            ("transfers", "1", q.keys.iter().map(|k| raw_col(*k, "end_us")).collect())
        };
        let select_keys = if cols.is_empty() { "''".to_string() } else { cols.join(", ") };
        let group = if cols.is_empty() { String::new() } else { format!("GROUP BY {}", cols.join(", ")) };
        let filter = if use_rollup { DAY_FILTER } else { time_filter("end_us") };
        let (since_us, until_us) = time_bounds(q.since.as_deref(), q.until.as_deref());
        let sql = format!(
            "SELECT {select_keys}, {} FROM {table} WHERE {filter} {group}",
            super::transfer_metrics_sql(count, "")
        );
        let nk = q.keys.len().max(1);
        let mut out = super::Groups::default();
        {
            let mut stmt = self.conn.prepare(&sql).map_err(self.err("prepare report"))?;
            let mut rows = stmt.query(params![q.since, q.until, since_us, until_us]).map_err(self.err("run report"))?;
            while let Some(r) = rows.next().map_err(self.err("read report"))? {
                let keys: Vec<String> = (0..q.keys.len()).map(|i| r.get::<_, String>(i).unwrap_or_default()).collect();
                let g = |i: usize| r.get::<_, i64>(nk + i).map(|v| v as u64).unwrap_or(0);
                out.transfers(keys, std::array::from_fn(g));
            }
        }
        if q.keys.iter().all(|k| k.applies_to_logins()) {
            let raw = q.keys.iter().any(|k| k.needs_raw());
            let (table, count) = if raw { ("logins", "1") } else { ("daily_logins", "logins") };
            let cols: Vec<&str> = q
                .keys
                .iter()
                .map(|k| if raw { raw_col(*k, "time_us") } else { rollup_col(*k).unwrap_or("''") })
                .collect();
            let filter = if raw { time_filter("time_us") } else { DAY_FILTER };
            let select_keys = if cols.is_empty() { "''".to_string() } else { cols.join(", ") };
            let group = if cols.is_empty() { String::new() } else { format!("GROUP BY {}", cols.join(", ")) };
            let sql = format!(
                "SELECT {select_keys}, SUM(CASE WHEN outcome = 'ok' THEN {count} ELSE 0 END), \
                 SUM(CASE WHEN outcome <> 'ok' THEN {count} ELSE 0 END) FROM {table} \
                 WHERE {filter} {group}"
            );
            let mut stmt = self.conn.prepare(&sql).map_err(self.err("prepare report"))?;
            let mut rows = stmt.query(params![q.since, q.until, since_us, until_us]).map_err(self.err("run report"))?;
            while let Some(r) = rows.next().map_err(self.err("read report"))? {
                let keys: Vec<String> = (0..q.keys.len()).map(|i| r.get::<_, String>(i).unwrap_or_default()).collect();
                let ok = r.get::<_, Option<i64>>(nk).ok().flatten().unwrap_or(0) as u64;
                let failed = r.get::<_, Option<i64>>(nk + 1).ok().flatten().unwrap_or(0) as u64;
                out.logins(keys, ok, failed);
            }
        }
        Ok(out.finish(q.keys.is_empty()))
    }

    fn latest_day(&mut self, since: Option<&str>, until: Option<&str>) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT MAX(day) FROM (SELECT day FROM daily_transfers UNION ALL SELECT day FROM daily_logins) \
                 WHERE (?1 IS NULL OR day >= ?1) AND (?2 IS NULL OR day <= ?2)",
                params![since, until],
                |r| r.get(0),
            )
            .map_err(self.err("find latest day"))
    }

    fn top_files(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<super::DayCount>, StoreError> {
        self.day_counts(&super::top_files_sql(&raw_dialect()), since, until, limit)
    }

    fn failed_transfers(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<super::FailedTransfer>, StoreError> {
        let (since_us, until_us) = time_bounds(since, until);
        let sql = super::failed_transfers_sql(&raw_dialect());
        let mut stmt = self.conn.prepare(&sql).map_err(self.err("prepare report"))?;
        let rows = stmt
            .query_map(params![since, until, since_us, until_us, limit], |r| {
                Ok(super::FailedTransfer {
                    end: r.get(0)?,
                    user: r.get(1)?,
                    host: r.get(2)?,
                    module: r.get(3)?,
                    protocol: r.get(4)?,
                    direction: r.get(5)?,
                    status: r.get(6)?,
                    path: r.get(7)?,
                    client: r.get(8)?,
                    country: r.get(9)?,
                })
            })
            .map_err(self.err("run report"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err("read report"))
    }

    fn failed_login_clients(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<super::DayCount>, StoreError> {
        self.day_counts(&super::failed_login_clients_sql(&raw_dialect()), since, until, limit)
    }
}

/// The SQLite spelling of the ranked-list queries' parameters: `?1`–`?4` as
/// in [`time_filter`], `?5` the limit.
fn raw_dialect() -> super::RawDialect<'static> {
    super::RawDialect {
        transfer_day: raw_col(Key::Day, "end_us"),
        login_day: raw_col(Key::Day, "time_us"),
        transfer_range: time_filter("end_us"),
        login_range: time_filter("time_us"),
        transfer_us: "end_us",
        user: "user",
        client: raw_col(Key::Client, "end_us"),
        limit: "?5",
        cast: "",
    }
}

impl SqliteStore {
    /// Runs a ranked per-day list query ([`super::DayCount`] columns).
    fn day_counts(
        &mut self,
        sql: &str,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<super::DayCount>, StoreError> {
        let (since_us, until_us) = time_bounds(since, until);
        let mut stmt = self.conn.prepare(sql).map_err(self.err("prepare report"))?;
        let rows = stmt
            .query_map(params![since, until, since_us, until_us, limit], |r| {
                Ok(super::DayCount {
                    day: r.get(0)?,
                    key: r.get(1)?,
                    country: r.get(2)?,
                    count: r.get::<_, i64>(3)? as u64,
                    bytes: r.get::<_, Option<i64>>(4)?.unwrap_or(0) as u64,
                })
            })
            .map_err(self.err("run report"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err("read report"))
    }
}

impl Admin for SqliteStore {
    fn schema_version(&mut self) -> Result<i64, StoreError> {
        SqliteStore::schema_version(self)
    }

    fn prune_raw(&mut self, before: i64) -> Result<Pruned, StoreError> {
        // Whole UTC days only, so every day is either fully in the raw
        // tables or not at all (a rebuild can tell which).
        let before = crate::time::day_number(before) * 86_400_000_000;
        let tx = self.conn.transaction().map_err(err_at(&self.path, "begin prune"))?;
        let old = pruned_before(&tx).map_err(err_at(&self.path, "read prune horizon"))?;
        tx.execute(
            "INSERT INTO store_meta (key, value) VALUES ('pruned_before', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [old.map_or(before, |o| o.max(before)).to_string()],
        )
        .map_err(err_at(&self.path, "record prune horizon"))?;
        let transfers =
            tx.execute("DELETE FROM transfers WHERE end_us < ?1", [before]).map_err(err_at(&self.path, "prune"))?;
        let logins =
            tx.execute("DELETE FROM logins WHERE time_us < ?1", [before]).map_err(err_at(&self.path, "prune"))?;
        tx.commit().map_err(err_at(&self.path, "commit prune"))?;
        Ok(Pruned { transfers: transfers as u64, logins: logins as u64, partitions: Vec::new() })
    }

    fn rebuild_rollups(&mut self, since: &str) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err_at(&path, "begin rebuild"))?;
        let since_us = crate::time::parse_day(since).map(|d| d * 86_400_000_000).unwrap_or(i64::MIN);
        if let Some(h) = pruned_before(&tx).map_err(err_at(&path, "read prune horizon"))?.filter(|h| since_us < *h) {
            return Err(StoreError::Refused(format!(
                "sqlite:{}: raw events before {} were pruned; rebuilding from {since} would lose their rollups \
                 (use --since {} or later)",
                path.display(),
                crate::time::day_string(h),
                crate::time::day_string(h)
            )));
        }
        let (raw_first, rollup_first): (Option<String>, Option<String>) = tx
            .query_row(
                "SELECT date(MIN(t) / 1000000, 'unixepoch'), (SELECT MIN(day) FROM (SELECT day FROM daily_transfers \
                 UNION ALL SELECT day FROM daily_logins) WHERE day >= ?1) FROM (SELECT MIN(end_us) AS t FROM \
                 transfers UNION ALL SELECT MIN(time_us) FROM logins)",
                [since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(err_at(&path, "find raw range"))?;
        if let Some(r) = rollup_first {
            if raw_first.as_deref().is_none_or(|f| r.as_str() < f) {
                return Err(StoreError::Refused(format!(
                    "sqlite:{}: the raw events of {r} and later days up to {} were pruned; rebuilding from {since} \
                     would lose their rollups (use --since {})",
                    path.display(),
                    raw_first.as_deref().unwrap_or("today"),
                    raw_first.as_deref().unwrap_or("a later day")
                )));
            }
        }
        tx.execute("DELETE FROM daily_transfers WHERE day >= ?1", [since]).map_err(err_at(&path, "clear rollups"))?;
        tx.execute("DELETE FROM daily_logins WHERE day >= ?1", [since]).map_err(err_at(&path, "clear rollups"))?;
        let mut written = tx
            .execute(
                "INSERT INTO daily_transfers (day, server_host, protocol, direction, status, module, user, \
                 transfers, bytes) SELECT date(end_us / 1000000, 'unixepoch'), server_host, protocol, direction, \
                 status, COALESCE(module, ''), user, count(*), SUM(bytes) FROM transfers WHERE end_us >= ?1 \
                 GROUP BY 1, 2, 3, 4, 5, 6, 7",
                [since_us],
            )
            .map_err(err_at(&path, "rebuild rollups"))? as u64;
        written += tx
            .execute(
                "INSERT INTO daily_logins (day, server_host, protocol, user, outcome, logins) \
                 SELECT date(time_us / 1000000, 'unixepoch'), server_host, protocol, user, outcome, count(*) \
                 FROM logins WHERE time_us >= ?1 GROUP BY 1, 2, 3, 4, 5",
                [since_us],
            )
            .map_err(err_at(&path, "rebuild rollups"))? as u64;
        tx.commit().map_err(err_at(&path, "commit rebuild"))?;
        Ok(written)
    }
}

/// The prune horizon (µs), if the store was ever pruned.
fn pruned_before(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT value FROM store_meta WHERE key = 'pruned_before'", [], |r| r.get::<_, String>(0))
        .optional()
        .map(|v| v.and_then(|v| v.parse().ok()))
}

fn err_at<'a>(path: &'a Path, what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Sqlite { path: path.to_path_buf(), what, source }
}

/// Keeps the `-wal` and `-shm` files when the last connection closes
/// (`SQLITE_FCNTL_PERSIST_WAL`).
fn persist_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mut on: std::os::raw::c_int = 1;
    // SAFETY: the handle is the live connection's; the file control reads
    // and writes one int through the pointer, valid for the call.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut on as *mut std::os::raw::c_int).cast(),
        )
    };
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rc), None))
    }
}

/// `file:PATH` (percent-encoded), with `immutable=1` if asked.
fn file_uri(path: &Path, immutable: bool) -> String {
    use std::os::unix::ffi::OsStrExt;
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'.').remove(b'-').remove(b'_');
    let mut uri = format!("file:{}", percent_encoding::percent_encode(path.as_os_str().as_bytes(), KEEP));
    if immutable {
        uri.push_str("?immutable=1");
    }
    uri
}

/// Whether the database's WAL file exists and holds anything.
fn wal_has_frames(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_os_string();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 0)
}

// The ledger listing of `Sink::ledger` (issue 14: `xferstats status`, the
// follower's catch-up), and the ledger columns it shares with
// `Sink::checkpoint`.

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

    #[test]
    fn file_uris_escape_what_sqlite_would_read_as_syntax() {
        assert_eq!(file_uri(Path::new("/srv/stats/x.db"), false), "file:/srv/stats/x.db");
        assert_eq!(file_uri(Path::new("a b/x?y#z%.db"), true), "file:a%20b/x%3Fy%23z%25.db?immutable=1");
    }
}
