//! The InfluxDB store: raw points (`xfer`, `login`) and daily points
//! (`xfer_daily`, `login_daily`) written as line protocol to a 1.x, 2.x or
//! 3.x server.
//!
//! InfluxDB cannot hold what exactly-once needs (which inputs were read how
//! far, the open sessions, which events are already counted), so a local
//! SQLite state file holds it: it is an ordinary xferstats SQLite store that
//! also keeps a copy of the events sent. Each commit runs the SQLite
//! transaction up to its `COMMIT`, sends the batch's points, and commits
//! only after the server acknowledged every request; a failed write rolls
//! the local transaction back, so the ledger never claims what the server
//! does not have. If the process dies between the server's answer and the
//! local `COMMIT`, the re-run sends the same points again: raw points have
//! deterministic timestamps (`line::point_time_ns`), so they overwrite
//! themselves instead of adding up.
//!
//! Daily points are computed on the client, from the local copy, for every
//! UTC day a commit touched: InfluxDB's own downsampling cannot count
//! distinct clients cheaply, and InfluxDB 3 has no Flux tasks. The touched
//! days are recorded in the same local transaction (`influx_pending_days`)
//! and rewritten once per run, after the last commit (or by the next run,
//! if this one died first): one day's point per tag set is rewritten whole,
//! so doing it again is harmless. `report` reads the local copy.

pub mod line;
pub mod spec;
pub mod write;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::StoreError;
use crate::model::Event;
use crate::time::{day_string, parse_day};
use spec::InfluxSpec;

use super::sqlite::{self, SqliteStore};
use super::{Access, Admin, Checkpoint, Commit, Committed, Forgotten, Pruned, Sink, Store};
use crate::rollup::sql::Rollup;
use crate::rollup::{self, Key};
use crate::rollup::{Aggregate, Group};
use write::{Precision, Target, Writer};

/// Local tables of the InfluxDB store, beside the SQLite store's own.
/// `gen` grows each time a commit touches the day again, so a rewrite
/// clears only the marks it has covered.
const LOCAL_DDL: &str = "
CREATE TABLE IF NOT EXISTS influx_pending_days (
    day  TEXT    PRIMARY KEY,
    gen  INTEGER NOT NULL
) WITHOUT ROWID;
";

/// `store_meta` key naming the server a state file belongs to.
const TARGET_KEY: &str = "influx_target";

/// Days rewritten per round of daily points.
const DAYS_PER_ROUND: usize = 64;

/// An InfluxDB server and its local state file.
pub struct InfluxStore {
    local: SqliteStore,
    writer: Writer,
    describe: String,
    state: std::path::PathBuf,
}

impl InfluxStore {
    /// Opens the state file for `access` (created with the mode of
    /// [`Access::Write`]; read-only for reports) and sets up the HTTP
    /// client; no request is made until the first commit.
    pub fn open(spec: &InfluxSpec, access: Access) -> Result<InfluxStore, StoreError> {
        let state = spec.state.clone().ok_or_else(|| StoreError::Influx {
            target: spec.describe.clone(),
            what: "open the state file",
            reason: "no state file given".into(),
        })?;
        let local = match access {
            Access::Write(mode) => SqliteStore::open_with(&state, mode)?,
            Access::Read => SqliteStore::open_read_only(&state)?,
        };
        let sq = |what| {
            let state = state.clone();
            move |source| StoreError::Sqlite { path: state.clone(), what, source }
        };
        let writable = access != Access::Read;
        if writable {
            local.connection().execute_batch(LOCAL_DDL).map_err(sq("create InfluxDB state tables"))?;
        }
        // A state file belongs to one server and database: its ledger says
        // what *that* server has.
        let ident = target_ident(spec);
        let owner: Option<String> = local
            .connection()
            .query_row("SELECT value FROM store_meta WHERE key = ?1", [TARGET_KEY], |r| r.get(0))
            .optional()
            .map_err(sq("read state owner"))?;
        match owner {
            Some(o) if o != ident => {
                return Err(StoreError::Influx {
                    target: spec.describe.clone(),
                    what: "open the state file",
                    reason: format!(
                        "{} holds the state of {o}, not of this server; give this one its own state file \
                         (state=PATH in the URL)",
                        state.display()
                    ),
                })
            }
            Some(_) => {}
            None if !writable => {}
            None => {
                local
                    .connection()
                    .execute("INSERT INTO store_meta (key, value) VALUES (?1, ?2)", [TARGET_KEY, &ident])
                    .map_err(sq("record state owner"))?;
            }
        }
        let writer = Writer::new(spec)?;
        Ok(InfluxStore { local, writer, describe: spec.describe.clone(), state })
    }

    fn sq(&self, what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite { path: self.state.clone(), what, source }
    }

    /// Rewrites the daily points of every pending day, oldest first, and
    /// clears their marks once the server has them. Returns the days
    /// rewritten.
    pub fn flush_days(&mut self) -> Result<u64, StoreError> {
        let pending: Vec<(String, i64)> = {
            let conn = self.local.connection();
            let mut stmt = conn
                .prepare("SELECT day, gen FROM influx_pending_days ORDER BY day")
                .map_err(self.sq("read pending days"))?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.sq("read pending days"))?;
            rows.collect::<Result<_, _>>().map_err(self.sq("read pending days"))?
        };
        let mut done = 0;
        for round in pending.chunks(DAYS_PER_ROUND) {
            let mut lines = String::new();
            for (day, _) in round {
                daily_points(self.local.connection(), day, &mut lines).map_err(self.sq("compute daily points"))?;
            }
            if !lines.is_empty() {
                let d = self.writer.write(Target::Daily, Precision::Seconds, &lines).map_err(|e| match e {
                    // The raw events are stored; say that only the daily
                    // points are missing, and that they are not lost.
                    StoreError::Influx { target, reason, .. } => StoreError::Influx {
                        target,
                        what: "daily points not written (the events are stored; the next run or `xferstats rollup \
                               --rebuild` writes them)",
                        reason,
                    },
                    e => e,
                })?;
                tracing::debug!("{}: {} daily point(s) of {} day(s) written", self.describe, d.lines, round.len());
            }
            let conn = self.local.connection();
            let mut del = conn
                .prepare_cached("DELETE FROM influx_pending_days WHERE day = ?1 AND gen = ?2")
                .map_err(self.sq("clear pending days"))?;
            for (day, gen) in round {
                del.execute(params![day, gen]).map_err(self.sq("clear pending days"))?;
            }
            done += round.len() as u64;
        }
        Ok(done)
    }
}

/// The `store_meta` owner of a state file: API and [`InfluxSpec::target`].
fn target_ident(spec: &InfluxSpec) -> String {
    match &spec.api {
        spec::InfluxApi::V1 { .. } => format!("influxdb {}", spec.target()),
        spec::InfluxApi::V2 { .. } => format!("influxdb2 {}", spec.target()),
    }
}

/// The daily measurements: the daily rollups without the day (the
/// timestamp) and the user (unbounded: every user would be a series), plus
/// the distinct clients.
const DAILY: [(&str, &Rollup); 2] = [("xfer_daily", &rollup::sql::TRANSFERS), ("login_daily", &rollup::sql::LOGINS)];

/// The tag of a rollup key in the points (raw and daily).
fn tag_name(k: Key) -> Option<&'static str> {
    match k {
        Key::Host => Some("host"),
        Key::Protocol => Some("proto"),
        Key::Direction => Some("dir"),
        Key::Status => Some("status"),
        Key::Module => Some("module"),
        _ => None,
    }
}

/// The tags of a daily measurement (rollup keys, then the extra key
/// columns, named as themselves) and the query of its values per tag set
/// over one day's raw rows of the local copy (`?1`, `?2`: µs bounds).
fn daily_query(r: &Rollup) -> (Vec<&'static str>, String) {
    let d = &sqlite::query::DIALECT;
    let time = d.time_of(r);
    let keys: Vec<Key> = r.keys.iter().copied().filter(|k| tag_name(*k).is_some()).collect();
    let mut tags: Vec<&str> = keys.iter().filter_map(|k| tag_name(*k)).collect();
    tags.extend(r.extra);
    let mut cols: Vec<String> = keys.iter().map(|k| d.raw_col(*k, time)).collect();
    cols.extend(r.extra.iter().map(|c| c.to_string()));
    let group: Vec<String> = (1..=cols.len()).map(|i| i.to_string()).collect();
    for (_, sum) in r.values {
        cols.push(format!("COALESCE({sum}, 0)"));
    }
    cols.push("COUNT(DISTINCT COALESCE(client_ip, client_hash, client_host))".into());
    let sql = format!(
        "SELECT {} FROM {} WHERE {time} >= ?1 AND {time} < ?2 GROUP BY {g} ORDER BY {g}",
        cols.join(", "),
        r.raw,
        g = group.join(", ")
    );
    (tags, sql)
}

/// Appends the daily points of UTC day `day` (`YYYY-MM-DD`), computed from
/// the local copy of the raw events.
fn daily_points(conn: &Connection, day: &str, out: &mut String) -> rusqlite::Result<()> {
    static QUERIES: std::sync::LazyLock<[(Vec<&str>, String); 2]> =
        std::sync::LazyLock::new(|| DAILY.map(|(_, r)| daily_query(r)));
    let Some(dn) = parse_day(day) else { return Ok(()) };
    let (from, to) = (dn * 86_400_000_000, (dn + 1) * 86_400_000_000);
    for ((name, r), (tag_names, sql)) in DAILY.iter().zip(QUERIES.iter()) {
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query([from, to])?;
        while let Some(row) = rows.next()? {
            let values: Vec<String> = (0..tag_names.len()).map(|i| row.get(i)).collect::<Result<_, _>>()?;
            let mut tags: Vec<(&str, &str)> =
                tag_names.iter().copied().zip(values.iter().map(String::as_str)).collect();
            let mut fields: Vec<(&str, i64)> = Vec::with_capacity(r.values.len() + 1);
            for (i, name) in r.values.iter().map(|(c, _)| *c).chain(["unique_clients"]).enumerate() {
                fields.push((name, row.get(tag_names.len() + i)?));
            }
            line::daily(out, name, dn * 86_400, &mut tags, &fields);
        }
    }
    Ok(())
}

/// Marks the UTC days of `events` pending (inside the commit's transaction).
fn mark_days(conn: &Connection, events: &[Event]) -> rusqlite::Result<()> {
    let mut days: Vec<i64> = events.iter().map(|e| crate::time::day_number(e.time())).collect();
    days.sort_unstable();
    days.dedup();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO influx_pending_days (day, gen) VALUES (?1, 1) ON CONFLICT (day) DO UPDATE SET gen = gen + 1",
    )?;
    for d in days {
        stmt.execute([day_string(d * 86_400_000_000)])?;
    }
    Ok(())
}

impl Sink for InfluxStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    /// The ids of the local state file; points already on the server keep
    /// the `event_id` they were written with.
    fn key_ids(
        &mut self,
        key: &crate::enrich::hostkey::HostKey,
        state: &mut crate::sinks::RekeyState<'_>,
    ) -> Result<&'static str, StoreError> {
        self.local.key_ids(key, state)
    }

    fn checkpoint(&mut self, fingerprint: u64) -> Result<Option<Checkpoint>, StoreError> {
        self.local.checkpoint(fingerprint)
    }

    fn state(&mut self, scope: &str) -> Result<Option<String>, StoreError> {
        self.local.state(scope)
    }

    /// The outbox is the local state file's: its rows are committed with
    /// the local copy of the events, after the server acknowledged them.
    fn outbox(&mut self) -> &mut dyn crate::sinks::Outbox {
        &mut self.local
    }

    fn states(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        self.local.states()
    }

    fn ledger(&mut self) -> Result<Vec<crate::sinks::LedgerEntry>, StoreError> {
        self.local.ledger_entries()
    }

    fn commit(&mut self, c: &Commit<'_>) -> Result<Committed, StoreError> {
        let writer = &self.writer;
        let state = &self.state;
        self.local.commit_with(c, &mut |conn, events| {
            if events.is_empty() {
                return Ok(());
            }
            mark_days(conn, events).map_err(|source| StoreError::Sqlite {
                path: state.clone(),
                what: "mark pending days",
                source,
            })?;
            let mut lines = String::with_capacity(events.len() * 320);
            for e in events {
                match e {
                    Event::Transfer(t) => line::transfer(&mut lines, t),
                    Event::Login(l) => line::login(&mut lines, l),
                }
            }
            writer.write(Target::Raw, Precision::Nanoseconds, &lines).map(|_| ())
        })
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        self.flush_days().map(|_| ())
    }
}

impl Store for InfluxStore {
    fn aggregate(&mut self, q: &Aggregate) -> Result<Vec<Group>, StoreError> {
        self.local.aggregate(q)
    }

    fn aggregate_rows(
        &mut self,
        q: &Aggregate,
        row: &mut dyn FnMut(&[&str], &crate::rollup::Metrics),
    ) -> Result<(), StoreError> {
        self.local.aggregate_rows(q, row)
    }

    fn latest_day(&mut self, since: Option<&str>, until: Option<&str>) -> Result<Option<String>, StoreError> {
        self.local.latest_day(since, until)
    }

    fn day_counts(
        &mut self,
        list: crate::rollup::DayList,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::rollup::DayCount>, StoreError> {
        self.local.day_counts(list, since, until, limit)
    }

    fn failed_transfers(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::rollup::FailedTransfer>, StoreError> {
        self.local.failed_transfers(since, until, limit)
    }

    fn distinct_clients(&mut self, since: Option<&str>, until: Option<&str>) -> Result<u64, StoreError> {
        self.local.distinct_clients(since, until)
    }

    fn month_files(
        &mut self,
        month: &str,
        at_least: u64,
        limit: u32,
        names: &[String],
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        self.local.month_files(month, at_least, limit, names)
    }

    fn status(&mut self) -> Result<crate::metrics::StoreStatus, StoreError> {
        self.local.status()
    }
}

impl Admin for InfluxStore {
    fn schema_version(&mut self) -> Result<i64, StoreError> {
        Admin::schema_version(&mut self.local)
    }

    /// Prunes the local copy (the server's retention policy or bucket
    /// retention prunes the server). Pending daily points go out first:
    /// they are computed from the rows about to go.
    fn prune_raw(&mut self, before: i64) -> Result<Pruned, StoreError> {
        self.flush_days()?;
        self.local.prune_raw(before)
    }

    /// Rebuilds the local rollups and rewrites the daily points of every
    /// day since `since` that still has raw events.
    fn rebuild_rollups(&mut self, since: &str) -> Result<u64, StoreError> {
        let n = self.local.rebuild_rollups(since)?;
        let since_us = parse_day(since).map(|d| d * 86_400_000_000).unwrap_or(0);
        self.local
            .connection()
            .execute(
                "INSERT INTO influx_pending_days (day, gen) \
                 SELECT DISTINCT day, 1 FROM daily_transfers WHERE day >= ?1 \
                 UNION SELECT DISTINCT day, 1 FROM daily_logins WHERE day >= ?1 \
                 ON CONFLICT (day) DO UPDATE SET gen = gen + 1",
                params![day_string(since_us)],
            )
            .map_err(self.sq("mark days to rewrite"))?;
        self.flush_days()?;
        Ok(n)
    }

    /// Refused: the server's points do not record their input, and
    /// deleting them one by one by time and tags is not done.
    fn forget(&mut self, _fingerprint: u64) -> Result<Option<Forgotten>, StoreError> {
        Err(StoreError::Refused(format!(
            "{}: forget is not supported for InfluxDB (its points do not record the input they came from); \
             drop the database or bucket and the state file, and import again",
            crate::sanitize::sanitize(&self.describe())
        )))
    }
}
