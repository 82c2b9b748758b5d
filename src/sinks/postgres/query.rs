//! The report side: grouped sums and the ranked lists.

use super::PgStore;
use crate::error::StoreError;
use crate::rollup::sql::Dialect;
use crate::rollup::{Aggregate, DayList, Group, Groups, Metrics};
use crate::sinks::Store;

/// How PostgreSQL spells the rollup and report SQL: `$1`, `$2` are the
/// report's days (`YYYY-MM-DD` or NULL), `$3` the ranked lists' limit.
pub(crate) const DIALECT: Dialect = Dialect {
    user: "username",
    transfer_time: "end_ts",
    login_time: "time_ts",
    day_of: |col| format!("({col} AT TIME ZONE 'UTC')::date"),
    day_text: |col| format!("to_char(({col} AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')"),
    rollup_day: "to_char(day, 'YYYY-MM-DD')",
    day_filter: "($1::text IS NULL OR day >= $1::date) AND ($2::text IS NULL OR day <= $2::date)",
    time_filter: |col| {
        format!(
            "($1::text IS NULL OR {col} >= ($1::text::date)::timestamp AT TIME ZONE 'UTC') AND \
             ($2::text IS NULL OR {col} < ($2::text::date + 1)::timestamp AT TIME ZONE 'UTC')"
        )
    },
    rebuild_from: |col| format!("{col} >= ($1::text::date)::timestamp AT TIME ZONE 'UTC'"),
    rebuild_day: "day >= $1::text::date",
    month_of: |d| format!("to_char({d}, 'YYYY-MM')"),
    month_start: |d| format!("date_trunc('month', {d})::date"),
    client: "COALESCE(abbrev(client_ip), client_hash, client_host, '')",
    transfer_us: "(extract(epoch FROM end_ts) * 1000000)::bigint",
    limit: "$3",
    cast: "::bigint",
};

impl Store for PgStore {
    fn aggregate(&mut self, q: &Aggregate) -> Result<Vec<Group>, StoreError> {
        let mut out = Groups::default();
        self.aggregate_rows(q, &mut |keys, m| out.add(keys, m))?;
        Ok(out.finish(q.keys.is_empty()))
    }

    fn aggregate_rows(&mut self, q: &Aggregate, row: &mut dyn FnMut(&[&str], &Metrics)) -> Result<(), StoreError> {
        for (sql, metrics) in DIALECT.report_queries(q) {
            let rows = self.client.query(&sql, &[&q.since, &q.until]).map_err(self.err("run report"))?;
            let mut keys: Vec<&str> = Vec::with_capacity(q.keys.len());
            let nk = q.keys.len().max(1);
            for r in &rows {
                let v = (0..metrics.len()).map(|i| r.get::<_, Option<i64>>(nk + i).unwrap_or(0) as u64);
                let Some(m) = Metrics::of_sums(metrics, v) else { continue };
                keys.clear();
                keys.extend((0..q.keys.len()).map(|i| r.get::<_, Option<&str>>(i).unwrap_or_default()));
                row(&keys, &m);
            }
        }
        Ok(())
    }

    fn latest_day(&mut self, since: Option<&str>, until: Option<&str>) -> Result<Option<String>, StoreError> {
        let row = self
            .client
            .query_one(
                "SELECT to_char(MAX(day), 'YYYY-MM-DD') FROM (SELECT day FROM daily_transfers UNION ALL \
                 SELECT day FROM daily_logins) d WHERE ($1::text IS NULL OR day >= $1::date) \
                 AND ($2::text IS NULL OR day <= $2::date)",
                &[&since, &until],
            )
            .map_err(self.err("find latest day"))?;
        Ok(row.get(0))
    }

    fn failed_transfers(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::rollup::FailedTransfer>, StoreError> {
        let sql = crate::rollup::sql::failed_transfers_sql(&DIALECT);
        let rows = self.client.query(&sql, &[&since, &until, &i64::from(limit)]).map_err(self.err("run report"))?;
        Ok(rows
            .iter()
            .map(|r| crate::rollup::FailedTransfer {
                end: r.get(0),
                user: r.get(1),
                host: r.get(2),
                module: r.get(3),
                protocol: r.get(4),
                direction: r.get(5),
                status: r.get(6),
                path: r.get(7),
                client: r.get(8),
                country: r.get(9),
            })
            .collect())
    }

    fn day_counts(
        &mut self,
        list: DayList,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::rollup::DayCount>, StoreError> {
        let sql = &crate::rollup::sql::day_counts_sql(&DIALECT, list);
        let rows = self.client.query(sql, &[&since, &until, &i64::from(limit)]).map_err(self.err("run report"))?;
        Ok(rows
            .iter()
            .map(|r| crate::rollup::DayCount {
                day: r.get(0),
                key: r.get(1),
                country: r.get(2),
                count: r.get::<_, Option<i64>>(3).unwrap_or(0) as u64,
                bytes: r.get::<_, Option<i64>>(4).unwrap_or(0) as u64,
            })
            .collect())
    }

    fn month_files(
        &mut self,
        month: &str,
        at_least: u64,
        limit: u32,
        names: &[String],
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let base = "SELECT v1, transfers, bytes_up + bytes_down FROM daily_values \
                    WHERE field = 'file' AND day = $1::text::date AND v1 <> '' AND transfers > 0";
        let rows = if names.is_empty() {
            let sql = format!("{base} AND transfers >= $2 ORDER BY transfers DESC, v1 LIMIT $3");
            self.client.query(&sql, &[&month, &(at_least as i64), &i64::from(limit)])
        } else {
            self.client.query(&format!("{base} AND v1 = ANY($2)"), &[&month, &names])
        }
        .map_err(self.err("run report"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get::<_, i64>(1) as u64, r.get::<_, i64>(2) as u64)).collect())
    }

    fn distinct_clients(&mut self, since: Option<&str>, until: Option<&str>) -> Result<u64, StoreError> {
        let sql = crate::rollup::sql::distinct_clients_sql(&DIALECT);
        let row = self.client.query_one(&sql, &[&since, &until]).map_err(self.err("count clients"))?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn status(&mut self) -> Result<crate::metrics::StoreStatus, StoreError> {
        let mut st = crate::metrics::StoreStatus::default();
        let rows = self
            .client
            .query(
                "SELECT format, SUM(lines)::bigint, SUM(rejected)::bigint FROM ledger GROUP BY format ORDER BY format",
                &[],
            )
            .map_err(self.err("read ledger"))?;
        st.lines = rows.iter().map(|r| (r.get(0), r.get::<_, i64>(1) as u64, r.get::<_, i64>(2) as u64)).collect();
        let us = |col: &str| format!("(extract(epoch FROM {col}) * 1000000)::bigint");
        let row = self
            .client
            .query_one(
                &format!(
                    "SELECT {}, {} FROM (SELECT MAX(last_import) AS c, GREATEST((SELECT MAX(end_ts) FROM transfers), \
                     (SELECT MAX(time_ts) FROM logins)) AS e FROM ledger) x",
                    us("c"),
                    us("e")
                ),
                &[],
            )
            .map_err(self.err("read ledger"))?;
        st.last_commit_us = row.get(0);
        st.newest_event_us = row.get(1);
        let outbox: bool = self
            .client
            .query_one("SELECT to_regclass('hook_outbox') IS NOT NULL", &[])
            .map_err(self.err("look for the hook outbox"))?
            .get(0);
        if outbox {
            let rows = self
                .client
                .query("SELECT state, count(*) FROM hook_outbox GROUP BY state ORDER BY state", &[])
                .map_err(self.err("read the hook outbox"))?;
            st.hook_deliveries = Some(rows.iter().map(|r| (r.get(0), r.get::<_, i64>(1) as u64)).collect());
        }
        Ok(st)
    }
}
