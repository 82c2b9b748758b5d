//! The report side: grouped sums and the ranked lists.

use super::PgStore;
use crate::error::StoreError;
use crate::rollup::{Aggregate, Group, Key};
use crate::sinks::Store;

/// Day range over the rollups (`$1`, `$2`: `YYYY-MM-DD` or NULL).
const DAY_FILTER: &str = "($1::text IS NULL OR day >= $1::date) AND ($2::text IS NULL OR day <= $2::date)";

fn time_filter(col: &str) -> String {
    format!(
        "($1::text IS NULL OR {col} >= ($1::text::date)::timestamp AT TIME ZONE 'UTC') AND \
         ($2::text IS NULL OR {col} < ($2::text::date + 1)::timestamp AT TIME ZONE 'UTC')"
    )
}

fn rollup_col(k: Key) -> Option<&'static str> {
    Some(match k {
        Key::Day => "to_char(day, 'YYYY-MM-DD')",
        Key::User => "username",
        Key::Protocol => "protocol",
        Key::Direction => "direction",
        Key::Host => "server_host",
        Key::Module => "module",
        Key::Status => "status",
        Key::Client | Key::Country | Key::City => return None,
    })
}

fn raw_col(k: Key, time: &str) -> String {
    match k {
        Key::Day => format!("to_char(({time} AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')"),
        Key::User => "username".into(),
        Key::Protocol => "protocol".into(),
        Key::Direction => "direction".into(),
        Key::Host => "server_host".into(),
        Key::Module => "COALESCE(module, '')".into(),
        Key::Status => "status".into(),
        Key::Client => "COALESCE(abbrev(client_ip), client_hash, client_host, '')".into(),
        Key::Country => "COALESCE(country, '')".into(),
        Key::City => "COALESCE(city || ', ' || country, city, '')".into(),
    }
}

impl Store for PgStore {
    fn aggregate(&mut self, q: &Aggregate) -> Result<Vec<Group>, StoreError> {
        let use_rollup = q.keys.iter().all(|k| rollup_col(*k).is_some());
        let (table, count, cols, filter): (&str, &str, Vec<String>, String) = if use_rollup {
            (
                "daily_transfers",
                "transfers",
                q.keys.iter().map(|k| rollup_col(*k).unwrap_or("''").to_string()).collect(),
                DAY_FILTER.to_string(),
            )
        } else {
            ("transfers", "1", q.keys.iter().map(|k| raw_col(*k, "end_ts")).collect(), time_filter("end_ts"))
        };
        let select_keys = if cols.is_empty() { "''".to_string() } else { cols.join(", ") };
        let group = if cols.is_empty() { String::new() } else { format!("GROUP BY {}", cols.join(", ")) };
        let sql = format!(
            "SELECT {select_keys}, {} FROM {table} WHERE {filter} {group}",
            crate::rollup::transfer_metrics_sql(count, "::bigint")
        );
        let nk = q.keys.len().max(1);
        let mut out = crate::rollup::Groups::default();
        let rows = self.client.query(&sql, &[&q.since, &q.until]).map_err(self.err("run report"))?;
        let g = |r: &::postgres::Row, i: usize| r.get::<_, Option<i64>>(nk + i).unwrap_or(0) as u64;
        for r in &rows {
            let keys: Vec<String> =
                (0..q.keys.len()).map(|i| r.get::<_, Option<String>>(i).unwrap_or_default()).collect();
            out.transfers(keys, std::array::from_fn(|i| g(r, i)));
        }
        if q.keys.iter().all(|k| k.applies_to_logins()) {
            let raw = q.keys.iter().any(|k| k.needs_raw());
            let (table, count) = if raw { ("logins", "1") } else { ("daily_logins", "logins") };
            let cols: Vec<String> = q
                .keys
                .iter()
                .map(|k| if raw { raw_col(*k, "time_ts") } else { rollup_col(*k).unwrap_or("''").to_string() })
                .collect();
            let filter = if raw { time_filter("time_ts") } else { DAY_FILTER.to_string() };
            let select_keys = if cols.is_empty() { "''".to_string() } else { cols.join(", ") };
            let group = if cols.is_empty() { String::new() } else { format!("GROUP BY {}", cols.join(", ")) };
            let sql = format!(
                "SELECT {select_keys}, SUM(CASE WHEN outcome = 'ok' THEN {count} ELSE 0 END)::bigint, \
                 SUM(CASE WHEN outcome <> 'ok' THEN {count} ELSE 0 END)::bigint FROM {table} \
                 WHERE {filter} {group}"
            );
            let rows = self.client.query(&sql, &[&q.since, &q.until]).map_err(self.err("run report"))?;
            for r in &rows {
                let keys: Vec<String> =
                    (0..q.keys.len()).map(|i| r.get::<_, Option<String>>(i).unwrap_or_default()).collect();
                let ok = r.get::<_, Option<i64>>(nk).unwrap_or(0) as u64;
                let failed = r.get::<_, Option<i64>>(nk + 1).unwrap_or(0) as u64;
                out.logins(keys, ok, failed);
            }
        }
        Ok(out.finish(q.keys.is_empty()))
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

    fn top_files(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::rollup::DayCount>, StoreError> {
        self.day_counts(&with_raw_dialect(crate::rollup::sql::top_files_sql), since, until, limit)
    }

    fn failed_transfers(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::rollup::FailedTransfer>, StoreError> {
        let sql = with_raw_dialect(crate::rollup::sql::failed_transfers_sql);
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

    fn failed_login_clients(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::rollup::DayCount>, StoreError> {
        self.day_counts(&with_raw_dialect(crate::rollup::sql::failed_login_clients_sql), since, until, limit)
    }
}

/// The PostgreSQL spelling of the ranked-list queries: `$1`, `$2` the days
/// as in [`time_filter`], `$3` the limit.
fn with_raw_dialect<T>(f: impl FnOnce(&crate::rollup::sql::RawDialect<'_>) -> T) -> T {
    let transfer_day = raw_col(Key::Day, "end_ts");
    let login_day = raw_col(Key::Day, "time_ts");
    let transfer_range = time_filter("end_ts");
    let login_range = time_filter("time_ts");
    let client = raw_col(Key::Client, "end_ts");
    f(&crate::rollup::sql::RawDialect {
        transfer_day: &transfer_day,
        login_day: &login_day,
        transfer_range: &transfer_range,
        login_range: &login_range,
        transfer_us: "(extract(epoch FROM end_ts) * 1000000)::bigint",
        user: "username",
        client: &client,
        limit: "$3",
        cast: "::bigint",
    })
}

impl PgStore {
    /// Runs a ranked per-day list query ([`crate::rollup::DayCount`] columns).
    fn day_counts(
        &mut self,
        sql: &str,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<crate::rollup::DayCount>, StoreError> {
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
}
