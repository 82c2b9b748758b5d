//! SQLite's own insert rate for the rows an ingest stored: the limit
//! `benches/vs_rsyncstats.sh` compares `xferstats ingest` with.
//!
//!   sqlite_limit SRC.db DST.db
//!
//! Reads every raw row (transfers, logins) of the xferstats store SRC into
//! memory, creates the same two tables (same keys, same pragmas as the
//! store) in the new file DST, and times inserting the rows there with one
//! prepared statement per table in one transaction, commit included.
//! Prints `rows N seconds S rows_per_s R`.

use std::time::Instant;

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};

fn main() -> rusqlite::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, src, dst] = args.as_slice() else {
        eprintln!("usage: sqlite_limit SRC.db DST.db");
        std::process::exit(2);
    };
    let src = Connection::open(src)?;
    let mut tables = Vec::new();
    for name in ["transfers", "logins"] {
        let sql: String =
            src.query_row("SELECT sql FROM sqlite_master WHERE type='table' AND name=?1", [name], |r| r.get(0))?;
        let mut stmt = src.prepare(&format!("SELECT * FROM {name}"))?;
        let cols = stmt.column_count();
        let rows: Vec<Vec<Value>> =
            stmt.query_map([], |r| (0..cols).map(|i| r.get::<_, Value>(i)).collect())?.collect::<Result<_, _>>()?;
        tables.push((name, sql, cols, rows));
    }
    let _ = std::fs::remove_file(dst);
    let mut db = Connection::open(dst)?;
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;",
    )?;
    for (_, sql, _, _) in &tables {
        db.execute_batch(sql)?;
    }
    let started = Instant::now();
    let tx = db.transaction()?;
    let mut n = 0u64;
    for (name, _, cols, rows) in &tables {
        let marks = vec!["?"; *cols].join(",");
        let mut stmt = tx.prepare(&format!("INSERT INTO {name} VALUES ({marks})"))?;
        for row in rows {
            stmt.execute(params_from_iter(row.iter()))?;
            n += 1;
        }
    }
    tx.commit()?;
    let secs = started.elapsed().as_secs_f64();
    println!("rows {n} seconds {secs:.3} rows_per_s {:.0}", n as f64 / secs);
    Ok(())
}
