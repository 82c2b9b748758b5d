//! SQLite's own insert rate for the rows an ingest stored: the limit
//! `benches/vs_rsyncstats.sh` compares `xferstats ingest` with.
//!
//!   sqlite_limit SRC.db DST.db
//!
//! Reads every raw row (transfers, logins) of the xferstats store SRC into
//! memory, creates the same two tables with the same keys and indexes (the
//! partial index of failed logins), the same page size and the same pragmas
//! as the store in the new file DST, and times inserting the rows there in
//! one transaction, commit included, with prepared statements bound as
//! cheaply as SQLite allows (texts read in place, `SQLITE_STATIC`) — twice,
//! into a fresh DST each time: one row per statement, then 32 rows per
//! statement as the store inserts transfers. Prints the faster as `rows N seconds S rows_per_s R`
//! (both on stderr, with the CPU seconds each took).

use std::ffi::{c_char, c_int};
use std::time::Instant;

use rusqlite::types::Value;
use rusqlite::{ffi, Connection};

/// Rows per multi-row statement, as the store's transfer insert.
const ROWS_PER_INSERT: usize = 32;

struct Table {
    name: &'static str,
    /// CREATE TABLE and CREATE INDEX statements.
    schema: Vec<String>,
    cols: usize,
    rows: Vec<Vec<Value>>,
}

fn main() -> rusqlite::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, src, dst] = args.as_slice() else {
        eprintln!("usage: sqlite_limit SRC.db DST.db");
        std::process::exit(2);
    };
    let src = Connection::open(src)?;
    let mut tables = Vec::new();
    for name in ["transfers", "logins"] {
        let schema: Vec<String> = src
            .prepare("SELECT sql FROM sqlite_master WHERE tbl_name = ?1 AND sql IS NOT NULL ORDER BY type DESC")?
            .query_map([name], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut stmt = src.prepare(&format!("SELECT * FROM {name}"))?;
        let cols = stmt.column_count();
        let rows: Vec<Vec<Value>> =
            stmt.query_map([], |r| (0..cols).map(|i| r.get::<_, Value>(i)).collect())?.collect::<Result<_, _>>()?;
        tables.push(Table { name, schema, cols, rows });
    }
    // The store's file format: its page size (a new store's is larger
    // than SQLite's default).
    let page_size: i64 = src.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let mut best: Option<(u64, f64)> = None;
    for per_statement in [1, ROWS_PER_INSERT] {
        let cpu = cpu_seconds();
        let (n, secs) = run(dst, &tables, per_statement, page_size)?;
        let cpu = cpu_seconds().zip(cpu).map_or(String::new(), |(b, a)| format!(" cpu_seconds {:.3}", b - a));
        eprintln!(
            "{per_statement} row(s) per statement: rows {n} seconds {secs:.3} rows_per_s {:.0}{cpu}",
            n as f64 / secs
        );
        if best.is_none_or(|(_, b)| secs < b) {
            best = Some((n, secs));
        }
    }
    let (n, secs) = best.expect("two runs");
    println!("rows {n} seconds {secs:.3} rows_per_s {:.0}", n as f64 / secs);
    Ok(())
}

/// Inserts every row into a new `dst` of pages of `page_size` bytes,
/// `per_statement` rows per statement (the rest one by one); returns the
/// rows and the seconds taken.
fn run(dst: &str, tables: &[Table], per_statement: usize, page_size: i64) -> rusqlite::Result<(u64, f64)> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{dst}{suffix}"));
    }
    let db = Connection::open(dst)?;
    db.execute_batch(&format!("PRAGMA page_size={page_size}"))?;
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; \
         PRAGMA journal_size_limit=67108864; PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;",
    )?;
    for t in tables {
        for sql in &t.schema {
            db.execute_batch(sql)?;
        }
    }
    let started = Instant::now();
    db.execute_batch("BEGIN")?;
    let mut n = 0u64;
    for t in tables {
        let row = format!("({})", vec!["?"; t.cols].join(","));
        let sql = |rows: usize| format!("INSERT INTO {} VALUES {}", t.name, vec![row.as_str(); rows].join(","));
        let multi = Prepared::new(&db, &sql(per_statement))?;
        let single = Prepared::new(&db, &sql(1))?;
        for group in t.rows.chunks(per_statement) {
            if group.len() == per_statement {
                multi.insert(&db, group)?;
            } else {
                for r in group {
                    single.insert(&db, std::slice::from_ref(r))?;
                }
            }
            n += group.len() as u64;
        }
    }
    db.execute_batch("COMMIT")?;
    Ok((n, started.elapsed().as_secs_f64()))
}

/// The CPU time of this thread so far (Linux: `/proc/thread-self/schedstat`),
/// to compare with the CPU time of the store's thread when the machine is
/// busy with other work.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(stat.split_whitespace().next()?.parse::<f64>().ok()? / 1e9)
}

/// A prepared statement, bound without copies.
struct Prepared(*mut ffi::sqlite3_stmt);

impl Prepared {
    fn new(db: &Connection, sql: &str) -> rusqlite::Result<Prepared> {
        let mut stmt = std::ptr::null_mut();
        // SAFETY: a live connection; SQLite reads `sql` and writes `stmt`.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.handle(),
                sql.as_ptr().cast::<c_char>(),
                sql.len() as c_int,
                ffi::SQLITE_PREPARE_PERSISTENT as _,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        check(db, rc)?;
        Ok(Prepared(stmt))
    }

    /// Binds the values of `rows` in order and runs the statement.
    fn insert(&self, db: &Connection, rows: &[Vec<Value>]) -> rusqlite::Result<()> {
        let st = self.0;
        let mut i: c_int = 0;
        for v in rows.iter().flatten() {
            i += 1;
            // SAFETY: a live statement; the values outlive the run (the
            // statement is reset and its bindings cleared below).
            let rc = unsafe {
                match v {
                    Value::Null => ffi::sqlite3_bind_null(st, i),
                    Value::Integer(x) => ffi::sqlite3_bind_int64(st, i, *x),
                    Value::Real(x) => ffi::sqlite3_bind_double(st, i, *x),
                    Value::Text(s) => {
                        ffi::sqlite3_bind_text(st, i, s.as_ptr().cast(), s.len() as c_int, ffi::SQLITE_STATIC())
                    }
                    Value::Blob(b) => {
                        ffi::sqlite3_bind_blob(st, i, b.as_ptr().cast(), b.len() as c_int, ffi::SQLITE_STATIC())
                    }
                }
            };
            check(db, rc)?;
        }
        // SAFETY: a live statement, every parameter bound.
        let rc = unsafe { ffi::sqlite3_step(st) };
        // SAFETY: as above; afterwards it holds no pointer into `rows`.
        unsafe {
            ffi::sqlite3_reset(st);
            ffi::sqlite3_clear_bindings(st);
        }
        check(db, if rc == ffi::SQLITE_DONE { ffi::SQLITE_OK } else { rc })
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // SAFETY: the statement is live and used nowhere else.
        unsafe { ffi::sqlite3_finalize(self.0) };
    }
}

fn check(db: &Connection, rc: c_int) -> rusqlite::Result<()> {
    if rc == ffi::SQLITE_OK {
        return Ok(());
    }
    // SAFETY: a live connection; the message is copied at once.
    let msg = unsafe { std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(db.handle())) };
    Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(msg.to_string_lossy().into_owned())))
}
