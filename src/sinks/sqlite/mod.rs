//! The embedded default store: one SQLite file, zero set-up.
//!
//! Writes go through cached prepared statements inside one transaction per
//! commit (WAL, `synchronous=NORMAL`: a power cut may lose the last commits
//! but never splits one, and the ledger rolls back with the events); a batch
//! import sends it in parts, and the rollup rows are summed in memory (on a
//! thread of their own while SQLite inserts) and written once per
//! transaction. Each raw insert is `INSERT OR IGNORE` on the content-derived
//! `event_id`; only rows actually inserted feed the rollup deltas, so the
//! daily tables always equal the sum of the raw rows.

mod admin;
mod bind;
mod commit;
mod insert;
mod outbox;
pub(crate) mod query;
mod schema;
pub mod spec;
mod wal;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::error::StoreError;
use crate::filemode::DbMode;

pub use commit::BeforeCommit;
use insert::{IpText, Statements};
use schema::MIGRATIONS;

/// The page size of a new store: four times SQLite's default. An import
/// inserts its rows with ~20 % less CPU (fewer pages to balance, link and
/// write twice through the WAL, as `examples/sqlite_limit.rs` measures for
/// SQLite alone), and the page cache keeps the same bytes.
const PAGE_SIZE: u32 = 16_384;

/// A SQLite store.
pub struct SqliteStore {
    /// The raw-row inserts, prepared on first use; declared before `conn`
    /// so that they are finalized before it closes.
    stmts: Option<Statements>,
    conn: Connection,
    /// The checkpoints of a writable `conn` (its WAL hook points here, so
    /// declared after it: dropped once it is closed).
    _wal: Option<Box<wal::Wal>>,
    path: PathBuf,
    ips: IpText,
    /// The write transaction of the commit in progress (see
    /// [`Sink::part`](crate::sinks::Sink::part)).
    open: Option<commit::Open>,
}

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
        // A new file gets pages of PAGE_SIZE bytes (set before WAL mode
        // writes its header; an existing file keeps its own).
        conn.execute_batch(&format!("PRAGMA page_size={PAGE_SIZE}")).map_err(err("set page size"))?;
        // Temporary files stay files (SQLite's default), not memory: each
        // part of a transaction is a savepoint, whose statement journal holds
        // every page the part changes that the transaction had changed
        // before — in memory it grew with the store (peak RSS 78 MiB for a
        // 115 MB import, 105 MiB for 1 GB), in a file it spills past 64 KiB.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; \
             PRAGMA journal_size_limit=67108864; PRAGMA cache_size=-16384;",
        )
        .map_err(err("set pragmas"))?;
        // Every statement of a commit stays prepared for the whole run.
        conn.set_prepared_statement_cache_capacity(32);
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(err("read page size"))?;
        let wal = Some(wal::Wal::install(&conn, path, page_size));
        let mut store =
            SqliteStore { stmts: None, conn, _wal: wal, path: path.to_path_buf(), ips: IpText::default(), open: None };
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
        let open = |name: &str| -> Result<(Connection, Vec<i64>), rusqlite::Error> {
            let conn = Connection::open_with_flags(name, flags)?;
            conn.busy_timeout(std::time::Duration::from_secs(60))?;
            conn.execute_batch("PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;")?;
            let v: Vec<i64> = conn
                .prepare("SELECT version FROM schema_version")
                .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())?;
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
        match crate::sinks::pending_migrations(MIGRATIONS, &found) {
            Err((found, supported)) => {
                return Err(StoreError::NewerSchema { path: path.to_path_buf(), found, supported })
            }
            Ok(pending) if !pending.is_empty() => {
                let supported = MIGRATIONS.last().map_or(0, |m| m.0);
                let found = found.iter().copied().max().unwrap_or(0);
                return Err(StoreError::OlderSchema { path: path.to_path_buf(), found, supported });
            }
            Ok(_) => {}
        }
        Ok(SqliteStore { stmts: None, conn, _wal: None, path: path.to_path_buf(), ips: IpText::default(), open: None })
    }

    fn err(&self, what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite { path: self.path.clone(), what, source }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_escape_what_sqlite_would_read_as_syntax() {
        assert_eq!(file_uri(Path::new("/srv/stats/x.db"), false), "file:/srv/stats/x.db");
        assert_eq!(file_uri(Path::new("a b/x?y#z%.db"), true), "file:a%20b/x%3Fy%23z%25.db?immutable=1");
    }

    /// The clients with the most failed logins are read from the partial
    /// index of failed logins alone (migration 8), not from every login.
    #[test]
    fn failed_login_clients_read_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("x.db")).unwrap();
        let sql = crate::rollup::sql::day_counts_sql(&query::DIALECT, crate::rollup::DayList::FailedLoginClients);
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(rusqlite::params![None::<String>, None::<String>, None::<i64>, None::<i64>, 50], |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let logins: Vec<&String> = plan.iter().filter(|p| p.contains(" logins")).collect();
        assert_eq!(logins.len(), 2, "{plan:?}");
        for p in logins {
            assert!(p.contains("COVERING INDEX logins_failed_by_client"), "{plan:?}");
        }
    }
}
