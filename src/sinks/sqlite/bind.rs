//! Prepared statements whose text parameters SQLite reads in place.
//!
//! rusqlite binds every text with `SQLITE_TRANSIENT`: SQLite copies it into
//! memory of its own (malloc, memcpy, free) once per parameter, which for
//! the raw rows of an import (a dozen texts per event) was a tenth of the
//! store thread. A [`Binding`] binds with `SQLITE_STATIC` instead, which is
//! sound only while the bytes live: it borrows them for its own lifetime,
//! runs the statement once and clears the bindings when it ends, so SQLite
//! never holds a pointer past the borrow.

use std::ffi::{c_char, c_int, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

use rusqlite::{ffi, Connection};

/// A statement prepared on a connection, finalized when dropped. Its
/// owner must drop it before the connection (see [`super::SqliteStore`]).
pub(super) struct RawStatement {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: *mut ffi::sqlite3,
}

// SAFETY: the statement is used only through `&mut self` and belongs to one
// connection, which moves between threads with it (rusqlite's `Connection`
// is `Send` and opened with SQLITE_OPEN_NO_MUTEX, the multi-thread mode).
unsafe impl Send for RawStatement {}

impl RawStatement {
    /// Prepares `sql` (one statement) on `conn`, to be kept for many runs
    /// (`SQLITE_PREPARE_PERSISTENT`).
    pub(super) fn prepare(conn: &Connection, sql: &str) -> rusqlite::Result<RawStatement> {
        let len = c_int::try_from(sql.len()).map_err(|_| failure(ffi::SQLITE_TOOBIG, None))?;
        // SAFETY: the handle is the live connection's; SQLite reads `len`
        // bytes of `sql` and writes the statement pointer.
        unsafe {
            let db = conn.handle();
            let mut stmt = std::ptr::null_mut();
            let rc = ffi::sqlite3_prepare_v3(
                db,
                sql.as_ptr().cast::<c_char>(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT as _,
                &mut stmt,
                std::ptr::null_mut(),
            );
            if rc != ffi::SQLITE_OK {
                ffi::sqlite3_finalize(stmt);
                return Err(error(db, rc));
            }
            match NonNull::new(stmt) {
                Some(stmt) => Ok(RawStatement { stmt, db }),
                // Only white space or a comment.
                None => Err(failure(ffi::SQLITE_MISUSE, Some("empty statement".into()))),
            }
        }
    }

    /// Starts binding one run of the statement to values that live for
    /// `'a`.
    pub(super) fn bind<'a>(&mut self) -> Binding<'_, 'a> {
        Binding { stmt: self, rc: ffi::SQLITE_OK, data: PhantomData }
    }
}

impl Drop for RawStatement {
    fn drop(&mut self) {
        // SAFETY: the statement is live and used nowhere else.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The parameters of one run of a [`RawStatement`], bound to values that
/// live for `'a` (parameters count from 1). The first failed bind is
/// reported by [`Binding::execute`]; dropping it resets the statement and
/// clears the bindings.
pub(super) struct Binding<'s, 'a> {
    stmt: &'s mut RawStatement,
    rc: c_int,
    data: PhantomData<&'a str>,
}

impl<'a> Binding<'_, 'a> {
    fn check(&mut self, rc: c_int) {
        if self.rc == ffi::SQLITE_OK {
            self.rc = rc;
        }
    }

    /// Binds text (NULL for `None`), read in place while the binding lives.
    pub(super) fn text(&mut self, i: usize, v: Option<&'a str>) {
        let rc = match v {
            None => self.null(i),
            Some(v) => match c_int::try_from(v.len()) {
                // SAFETY: `v` outlives the binding ('a), whose drop clears
                // it before SQLite could read it again.
                Ok(len) => unsafe {
                    let ptr = if len == 0 { c"".as_ptr() } else { v.as_ptr().cast::<c_char>() };
                    ffi::sqlite3_bind_text(self.stmt.stmt.as_ptr(), i as c_int, ptr, len, ffi::SQLITE_STATIC())
                },
                Err(_) => ffi::SQLITE_TOOBIG,
            },
        };
        self.check(rc);
    }

    /// Binds an integer (NULL for `None`).
    pub(super) fn int(&mut self, i: usize, v: Option<i64>) {
        let rc = match v {
            // SAFETY: a live statement; SQLite checks the index.
            Some(v) => unsafe { ffi::sqlite3_bind_int64(self.stmt.stmt.as_ptr(), i as c_int, v) },
            None => self.null(i),
        };
        self.check(rc);
    }

    /// Binds a float (NULL for `None`).
    pub(super) fn real(&mut self, i: usize, v: Option<f64>) {
        let rc = match v {
            // SAFETY: a live statement; SQLite checks the index.
            Some(v) => unsafe { ffi::sqlite3_bind_double(self.stmt.stmt.as_ptr(), i as c_int, v) },
            None => self.null(i),
        };
        self.check(rc);
    }

    fn null(&mut self, i: usize) -> c_int {
        // SAFETY: a live statement; SQLite checks the index.
        unsafe { ffi::sqlite3_bind_null(self.stmt.stmt.as_ptr(), i as c_int) }
    }

    /// Runs the statement (one that returns no rows) and returns the rows
    /// it changed.
    pub(super) fn execute(self) -> rusqlite::Result<usize> {
        let db = self.stmt.db;
        if self.rc != ffi::SQLITE_OK {
            return Err(error(db, self.rc));
        }
        // SAFETY: a live statement of the live connection `db`, its
        // parameters bound to values that live until `self` is dropped.
        unsafe {
            match ffi::sqlite3_step(self.stmt.stmt.as_ptr()) {
                ffi::SQLITE_DONE => Ok(ffi::sqlite3_changes64(db) as usize),
                ffi::SQLITE_ROW => Err(rusqlite::Error::ExecuteReturnedResults),
                rc => Err(error(db, rc)),
            }
        }
    }
}

impl Drop for Binding<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: a live statement; afterwards it holds no pointer into
        // the values of this binding.
        unsafe {
            ffi::sqlite3_reset(self.stmt.stmt.as_ptr());
            ffi::sqlite3_clear_bindings(self.stmt.stmt.as_ptr());
        }
    }
}

/// The connection's error for the result code `rc`.
fn error(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    // SAFETY: `db` is a live connection; the message is copied at once.
    let msg = unsafe {
        let p = ffi::sqlite3_errmsg(db);
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    // The extended code: a constraint or busy error stays recognisable.
    // SAFETY: as above.
    let code = unsafe { ffi::sqlite3_extended_errcode(db) };
    failure(if code & 0xff == rc & 0xff { code } else { rc }, msg)
}

fn failure(code: c_int, msg: Option<String>) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_values_are_stored_and_cleared_after_each_run() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT, b INTEGER, c REAL, d TEXT, UNIQUE (a))").unwrap();
        let mut st = RawStatement::prepare(&conn, "INSERT OR IGNORE INTO t VALUES (?1, ?2, ?3, ?4)").unwrap();
        for (a, b, c) in [("x", Some(1), Some(0.5)), ("", None, None), ("x", Some(2), None)] {
            let owned = a.to_string();
            let mut b_ = st.bind();
            b_.text(1, Some(&owned));
            b_.int(2, b);
            b_.real(3, c);
            let n = b_.execute().unwrap();
            assert_eq!(n, usize::from(b != Some(2)), "{a:?}");
        }
        // A run without binding sees NULLs, not the last run's values.
        assert_eq!(st.bind().execute().unwrap(), 1);
        type Row = (Option<String>, Option<i64>, Option<f64>, Option<String>);
        let rows: Vec<Row> = conn
            .prepare("SELECT a, b, c, d FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (Some("x".into()), Some(1), Some(0.5), None),
                (Some("".into()), None, None, None),
                (None, None, None, None)
            ]
        );
    }

    #[test]
    fn errors_name_sqlite_s_reason() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a TEXT NOT NULL)").unwrap();
        let mut st = RawStatement::prepare(&conn, "INSERT INTO t VALUES (?1)").unwrap();
        let e = st.bind().execute().unwrap_err();
        assert_eq!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::ConstraintViolation));
        assert!(e.to_string().contains("NOT NULL constraint failed: t.a"), "{e}");
        let mut b = st.bind();
        b.text(2, Some("out of range"));
        assert_eq!(b.execute().unwrap_err().sqlite_error_code(), Some(rusqlite::ErrorCode::ParameterOutOfRange));
        assert!(RawStatement::prepare(&conn, "INSERT INTO nowhere VALUES (1)").is_err());
        assert!(RawStatement::prepare(&conn, "-- nothing").is_err());
    }
}
