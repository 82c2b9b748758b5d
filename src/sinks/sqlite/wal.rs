//! WAL checkpoints on a thread of their own.
//!
//! SQLite checkpoints a connection's WAL in the commit that makes it hold
//! `wal_autocheckpoint` (1,000) pages: it syncs the WAL, copies its pages
//! into the database file and syncs that, on the thread that commits —
//! during an import the store thread, which bounds the run (a 115 MB import
//! waited 40–90 ms for each of its four or five checkpoints). A writable
//! store's connection checkpoints through [`Wal`] instead (its WAL hook,
//! which replaces the automatic checkpoint): a thread with a connection of
//! its own copies the pages (a `PASSIVE` checkpoint, which runs beside a
//! writer) while the store goes on. SQLite starts the WAL over only when a
//! transaction begins with every page copied, which with the copying done
//! elsewhere seldom happens; so once the WAL holds [`RESTART_BYTES`], the
//! commit waits for the thread and copies the rest itself, as SQLite would,
//! and the next transaction starts the WAL over: the WAL stays bounded.
//! Checkpoints copy committed pages only; what a crash leaves is SQLite's
//! WAL recovery, as before.

use std::ffi::{c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;

use rusqlite::{ffi, Connection};

/// WAL pages from which a commit has them checkpointed: SQLite's own
/// `wal_autocheckpoint` default.
const CHECKPOINT_PAGES: c_int = 1_000;

/// WAL size from which a commit waits for the pages to be copied (the
/// store's `journal_size_limit`, to which SQLite cuts the WAL file back).
const RESTART_BYTES: i64 = 64 << 20;

/// The checkpoints of one writable connection (see the module doc). Boxed:
/// the connection's WAL hook points to it, so it must stay where it is and
/// outlive the connection's commits.
pub(super) struct Wal {
    path: PathBuf,
    /// WAL pages from which a commit checkpoints itself.
    restart_pages: c_int,
    shared: Arc<Shared>,
    /// The thread, started at the first checkpoint; `None` if it could not
    /// be (the commits then checkpoint themselves).
    thread: OnceLock<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// A checkpoint is asked for.
    pending: bool,
    /// The thread is checkpointing.
    busy: bool,
    /// The thread is to end.
    stop: bool,
}

impl Wal {
    /// Makes `conn` (of the database at `path`, pages of `page_size` bytes)
    /// checkpoint through the returned [`Wal`], which must outlive it.
    pub(super) fn install(conn: &Connection, path: &Path, page_size: i64) -> Box<Wal> {
        let restart_pages = (RESTART_BYTES / page_size.max(512)).clamp(CHECKPOINT_PAGES as i64, c_int::MAX as i64);
        let wal = Box::new(Wal {
            path: path.to_path_buf(),
            restart_pages: restart_pages as c_int,
            shared: Arc::default(),
            thread: OnceLock::new(),
        });
        // SAFETY: a live connection; the hook gets a pointer to the boxed
        // `Wal`, which the caller keeps alive as long as the connection.
        unsafe { ffi::sqlite3_wal_hook(conn.handle(), Some(on_commit), std::ptr::from_ref(&*wal) as *mut c_void) };
        wal
    }

    /// After a commit that left `pages` pages in the WAL of `db`'s database
    /// `name`.
    fn committed(&self, db: *mut ffi::sqlite3, name: *const c_char, pages: c_int) {
        if pages < CHECKPOINT_PAGES {
            return;
        }
        if pages < self.restart_pages && self.thread.get_or_init(|| self.start()).is_some() {
            let mut s = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            s.pending = true;
            self.shared.changed.notify_all();
            return;
        }
        self.wait_idle();
        // SAFETY: called from the connection's WAL hook, where SQLite's own
        // automatic checkpoint runs the same call. An error leaves the
        // pages in the WAL for the next checkpoint (as SQLite's own
        // ignores it).
        unsafe {
            ffi::sqlite3_wal_checkpoint_v2(
                db,
                name,
                ffi::SQLITE_CHECKPOINT_PASSIVE,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }

    /// Until no checkpoint of the thread is asked for or running.
    fn wait_idle(&self) {
        if self.thread.get().is_none_or(Option::is_none) {
            return;
        }
        let mut s = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        while s.pending || s.busy {
            s = self.shared.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The thread and its connection, if they can be had.
    fn start(&self) -> Option<JoinHandle<()>> {
        let conn = match open(&self.path) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("{}: WAL checkpoints stay on the committing thread: {e}", self.path.display());
                return None;
            }
        };
        let shared = Arc::clone(&self.shared);
        std::thread::Builder::new().name("xferstats-wal".into()).spawn(move || serve(&conn, &shared)).ok()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Some(Some(thread)) = self.thread.take() {
            self.shared.state.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
            self.shared.changed.notify_all();
            let _ = thread.join();
        }
    }
}

/// The checkpointing connection: as the store's (synchronous=NORMAL: the
/// WAL is synced before its pages are copied, the database after), and
/// keeping the WAL file when it closes last.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    super::persist_wal(&conn)?;
    conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=67108864; PRAGMA wal_autocheckpoint=0;")?;
    Ok(conn)
}

/// The thread: a `PASSIVE` checkpoint each time one is asked for.
fn serve(conn: &Connection, shared: &Shared) {
    loop {
        let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        while !s.pending && !s.stop {
            s = shared.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        if s.stop {
            return;
        }
        s.pending = false;
        s.busy = true;
        drop(s);
        // SAFETY: a live connection, used by this thread alone.
        let rc = unsafe {
            ffi::sqlite3_wal_checkpoint_v2(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_CHECKPOINT_PASSIVE,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            tracing::debug!("WAL checkpoint: SQLite error {rc} (the pages stay for the next one)");
        }
        shared.state.lock().unwrap_or_else(|p| p.into_inner()).busy = false;
        shared.changed.notify_all();
    }
}

/// The WAL hook (see [`Wal::install`]).
unsafe extern "C" fn on_commit(arg: *mut c_void, db: *mut ffi::sqlite3, name: *const c_char, pages: c_int) -> c_int {
    // SAFETY: `arg` is the boxed `Wal` of `install`, alive while the
    // connection is; only shared references are made to it.
    let wal = unsafe { &*(arg as *const Wal) };
    wal.committed(db, name, pages);
    ffi::SQLITE_OK
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;

    /// Commits past the checkpoint size are copied by the thread; past the
    /// restart size the WAL starts over; the data are whole in another
    /// connection, and the last close empties the WAL.
    #[test]
    fn the_wal_is_checkpointed_beside_the_writer_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let store = SqliteStore::open(&path).unwrap();
        let conn = store.connection();
        conn.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        let blob = vec![7u8; 16_000];
        let mut most = 0;
        for _ in 0..12 {
            conn.execute_batch("BEGIN").unwrap();
            for _ in 0..600 {
                conn.execute("INSERT INTO t VALUES (?1)", [&blob]).unwrap();
            }
            conn.execute_batch("COMMIT").unwrap();
            most = most.max(std::fs::metadata(dir.path().join("x.db-wal")).unwrap().len());
        }
        // 12 commits of ~600 pages of 16 KiB (115 MiB): the WAL started
        // over at 64 MiB, so it never held them all.
        assert!(most < 100 << 20, "{most}");
        let other = rusqlite::Connection::open(&path).unwrap();
        assert_eq!(other.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap(), 7200);
        drop(other);
        drop(store);
        assert_eq!(std::fs::metadata(dir.path().join("x.db-wal")).unwrap().len(), 0);
        let reopened = rusqlite::Connection::open(&path).unwrap();
        assert_eq!(reopened.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap(), 7200);
    }
}
