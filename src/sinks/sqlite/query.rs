//! The report side: grouped sums and the ranked lists.

use rusqlite::params;

use super::SqliteStore;
use crate::error::StoreError;
use crate::rollup::{Aggregate, Group, Key};
use crate::sinks::Store;

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
            crate::rollup::transfer_metrics_sql(count, "")
        );
        let nk = q.keys.len().max(1);
        let mut out = crate::rollup::Groups::default();
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
    ) -> Result<Vec<crate::rollup::DayCount>, StoreError> {
        self.day_counts(&crate::rollup::sql::top_files_sql(&raw_dialect()), since, until, limit)
    }

    fn failed_transfers(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::rollup::FailedTransfer>, StoreError> {
        let (since_us, until_us) = time_bounds(since, until);
        let sql = crate::rollup::sql::failed_transfers_sql(&raw_dialect());
        let mut stmt = self.conn.prepare(&sql).map_err(self.err("prepare report"))?;
        let rows = stmt
            .query_map(params![since, until, since_us, until_us, limit], |r| {
                Ok(crate::rollup::FailedTransfer {
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
    ) -> Result<Vec<crate::rollup::DayCount>, StoreError> {
        self.day_counts(&crate::rollup::sql::failed_login_clients_sql(&raw_dialect()), since, until, limit)
    }
}

/// The SQLite spelling of the ranked-list queries' parameters: `?1`–`?4` as
/// in [`time_filter`], `?5` the limit.
fn raw_dialect() -> crate::rollup::sql::RawDialect<'static> {
    crate::rollup::sql::RawDialect {
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
    /// Runs a ranked per-day list query ([`crate::rollup::DayCount`] columns).
    fn day_counts(
        &mut self,
        sql: &str,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::rollup::DayCount>, StoreError> {
        let (since_us, until_us) = time_bounds(since, until);
        let mut stmt = self.conn.prepare(sql).map_err(self.err("prepare report"))?;
        let rows = stmt
            .query_map(params![since, until, since_us, until_us, limit], |r| {
                Ok(crate::rollup::DayCount {
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
