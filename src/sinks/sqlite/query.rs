//! The report side: grouped sums and the ranked lists.

use rusqlite::params;

use super::SqliteStore;
use crate::error::StoreError;
use crate::rollup::sql::Dialect;
use crate::rollup::{Aggregate, DayList, Group, Groups, Metrics};
use crate::sinks::Store;

/// How SQLite spells the rollup and report SQL. Every report filter names
/// all four parameters (`?1`, `?2` the days as `YYYY-MM-DD` or NULL, `?3`,
/// `?4` the same as µs), so one parameter list fits them all.
pub(crate) const DIALECT: Dialect = Dialect {
    user: "user",
    transfer_time: "end_us",
    login_time: "time_us",
    day_of,
    day_text: day_of,
    rollup_day: "day",
    day_filter: "(?1 IS NULL OR day >= ?1) AND (?2 IS NULL OR day <= ?2) AND coalesce(?3, ?4, 0) IS NOT NULL",
    time_filter: |col| {
        format!("(?3 IS NULL OR {col} >= ?3) AND (?4 IS NULL OR {col} < ?4) AND coalesce(?1, ?2, 0) IS NOT NULL")
    },
    rebuild_from: |col| format!("{col} >= ?1"),
    rebuild_day: "day >= date(?1 / 1000000, 'unixepoch')",
    month_of: |d| format!("substr({d}, 1, 7)"),
    month_start: |d| format!("date({d}, 'start of month')"),
    client: "COALESCE(client_ip, client_hash, client_host, '')",
    transfer_us: "end_us",
    limit: "?5",
    cast: "",
};

/// The UTC day (`YYYY-MM-DD`) of a µs time column.
fn day_of(col: &str) -> String {
    format!("date({col} / 1000000, 'unixepoch')")
}

/// The report's day range as `[since, until + 1 day)` in µs.
fn time_bounds(since: Option<&str>, until: Option<&str>) -> (Option<i64>, Option<i64>) {
    let day = |d: Option<&str>| d.and_then(crate::time::parse_day);
    (day(since).map(|d| d * 86_400_000_000), day(until).map(|d| (d + 1) * 86_400_000_000))
}

/// The files of a month in the value rollup ([`Store::month_files`]; the
/// partial index `daily_values_files` ranks them).
const MONTH_FILES: &str = "SELECT v1, transfers, bytes_up + bytes_down FROM daily_values \
     WHERE day = ?1 AND v1 <> ''";

impl Store for SqliteStore {
    fn aggregate(&mut self, q: &Aggregate) -> Result<Vec<Group>, StoreError> {
        let mut out = Groups::default();
        self.aggregate_rows(q, &mut |keys, m| out.add(keys, m))?;
        Ok(out.finish(q.keys.is_empty()))
    }

    fn aggregate_rows(&mut self, q: &Aggregate, row: &mut dyn FnMut(&[&str], &Metrics)) -> Result<(), StoreError> {
        let (since_us, until_us) = time_bounds(q.since.as_deref(), q.until.as_deref());
        for (sql, metrics) in DIALECT.report_queries(q) {
            let mut stmt = self.conn.prepare(&sql).map_err(self.err("prepare report"))?;
            let mut rows = stmt.query(params![q.since, q.until, since_us, until_us]).map_err(self.err("run report"))?;
            let nk = q.keys.len().max(1);
            while let Some(r) = rows.next().map_err(self.err("read report"))? {
                let v = (0..metrics.len()).map(|i| r.get::<_, Option<i64>>(nk + i).ok().flatten().unwrap_or(0) as u64);
                let Some(m) = Metrics::of_sums(metrics, v) else { continue };
                let keys: Vec<&str> =
                    (0..q.keys.len()).map(|i| r.get_ref(i).ok().and_then(|v| v.as_str().ok()).unwrap_or("")).collect();
                row(&keys, &m);
            }
        }
        Ok(())
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

    fn failed_transfers(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::rollup::FailedTransfer>, StoreError> {
        let (since_us, until_us) = time_bounds(since, until);
        let sql = crate::rollup::sql::failed_transfers_sql(&DIALECT);
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

    fn day_counts(
        &mut self,
        list: DayList,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::rollup::DayCount>, StoreError> {
        let sql = &crate::rollup::sql::day_counts_sql(&DIALECT, list);
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

    fn month_files(
        &mut self,
        month: &str,
        at_least: u64,
        limit: u32,
        names: &[String],
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        // Ranked: through the partial index; named: through the primary key
        // (`'file' || ''` is not the index's `field = 'file'`, which the
        // planner would otherwise scan the month's files with).
        let (which, list) = if names.is_empty() {
            // One lower bound of `transfers` (with two, SQLite may take the
            // lower one and read every file of the month through the index).
            ("field = 'file' AND transfers >= max(?2, 1) ORDER BY transfers DESC, v1 LIMIT ?3", String::new())
        } else {
            (
                "field = 'file' || '' AND transfers > 0 AND v1 IN (SELECT value FROM json_each(?4)) \
                 AND ?2 + ?3 IS NOT NULL",
                serde_json::json!(names).to_string(),
            )
        };
        let sql = format!("{MONTH_FILES} AND {which}");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err("prepare report"))?;
        let mut bind = vec![rusqlite::types::Value::Text(month.into()), (at_least as i64).into(), limit.into()];
        if !names.is_empty() {
            bind.push(list.into());
        }
        let rows = stmt
            .query_map(rusqlite::params_from_iter(bind), |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64))
            })
            .map_err(self.err("run report"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err("read report"))
    }

    fn distinct_clients(&mut self, since: Option<&str>, until: Option<&str>) -> Result<u64, StoreError> {
        let (since_us, until_us) = time_bounds(since, until);
        let sql = crate::rollup::sql::distinct_clients_sql(&DIALECT);
        self.conn
            .query_row(&sql, params![since, until, since_us, until_us], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.err("count clients"))
    }

    fn status(&mut self) -> Result<crate::metrics::StoreStatus, StoreError> {
        let mut st = crate::metrics::StoreStatus::default();
        let mut stmt = self
            .conn
            .prepare("SELECT format, SUM(lines), SUM(rejected) FROM ledger GROUP BY format ORDER BY format")
            .map_err(self.err("read ledger"))?;
        st.lines = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)))
            .map_err(self.err("read ledger"))?
            .collect::<Result<_, _>>()
            .map_err(self.err("read ledger"))?;
        let last: Option<String> = self
            .conn
            .query_row("SELECT MAX(last_import) FROM ledger", [], |r| r.get(0))
            .map_err(self.err("read ledger"))?;
        st.last_commit_us = last.and_then(|t| crate::time::parse_rfc3339(t.as_bytes()).map(|(us, _)| us));
        st.newest_event_us = self
            .conn
            .query_row(
                "SELECT MAX(t) FROM (SELECT MAX(end_us) AS t FROM transfers UNION ALL SELECT MAX(time_us) FROM logins)",
                [],
                |r| r.get(0),
            )
            .map_err(self.err("find newest event"))?;
        let outbox: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'hook_outbox')",
                [],
                |r| r.get(0),
            )
            .map_err(self.err("look for the hook outbox"))?;
        if outbox {
            let mut stmt = self
                .conn
                .prepare("SELECT state, count(*) FROM hook_outbox GROUP BY state ORDER BY state")
                .map_err(self.err("read the hook outbox"))?;
            st.hook_deliveries = Some(
                stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
                    .map_err(self.err("read the hook outbox"))?
                    .collect::<Result<_, _>>()
                    .map_err(self.err("read the hook outbox"))?,
            );
        }
        Ok(st)
    }
}
