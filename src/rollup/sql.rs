//! SQL of the daily rollups and the report queries, written once for the
//! SQL stores (SQLite, PostgreSQL) from the key and metric lists of
//! [`crate::rollup`], with the pieces in which their dialects differ
//! ([`Dialect`]). Every text here is built from fixed names; values are
//! always bound parameters.

use super::{Aggregate, Key, Metric, LOGIN_KEYS, TRANSFER_KEYS};

/// How a SQL store spells what differs between the dialects.
pub(crate) struct Dialect {
    /// The login name column.
    pub user: &'static str,
    /// The time column of a transfer row.
    pub transfer_time: &'static str,
    /// The time column of a login row.
    pub login_time: &'static str,
    /// The UTC day of a raw time column, as the rollups' `day` stores it.
    pub day_of: fn(&str) -> String,
    /// The UTC day of a raw time column as `YYYY-MM-DD` text.
    pub day_text: fn(&str) -> String,
    /// The rollups' `day` as `YYYY-MM-DD` text.
    pub rollup_day: &'static str,
    /// Day range over the rollups (the report's parameters).
    pub day_filter: &'static str,
    /// Time range over a raw time column (the report's parameters).
    pub time_filter: fn(&str) -> String,
    /// Rows of a raw time column from the rebuild's first day on (its one
    /// parameter).
    pub rebuild_from: fn(&str) -> String,
    /// The client of a raw row (as [`Key::Client`] reports it).
    pub client: &'static str,
    /// End time of a transfer row in µs (a bigint).
    pub transfer_us: &'static str,
    /// Placeholder of the ranked lists' row limit.
    pub limit: &'static str,
    /// Suffix of each sum (`::bigint` in PostgreSQL).
    pub cast: &'static str,
}

/// One daily rollup table.
pub(crate) struct Rollup {
    /// The rollup table.
    pub table: &'static str,
    /// The raw table it sums.
    pub raw: &'static str,
    /// Its report keys, in primary-key order.
    pub keys: &'static [Key],
    /// Key columns after those (the login outcome).
    pub extra: &'static [&'static str],
    /// Value columns and what they sum (a `{cast}` suffix is added to sums).
    pub values: &'static [(&'static str, &'static str)],
}

/// `daily_transfers`.
pub(crate) const TRANSFERS: Rollup = Rollup {
    table: "daily_transfers",
    raw: "transfers",
    keys: &TRANSFER_KEYS,
    extra: &[],
    values: &[("transfers", "count(*)"), ("bytes", "SUM(bytes)")],
};

/// `daily_logins`.
pub(crate) const LOGINS: Rollup = Rollup {
    table: "daily_logins",
    raw: "logins",
    keys: &LOGIN_KEYS,
    extra: &["outcome"],
    values: &[("logins", "count(*)")],
};

impl Dialect {
    /// The column of a key in the rollup tables (`None`: raw tables only).
    pub fn rollup_col(&self, k: Key) -> Option<&'static str> {
        Some(match k {
            Key::Day => self.rollup_day,
            Key::Client | Key::Country | Key::City => return None,
            k => self.raw_name(k),
        })
    }

    /// The column of a key in the raw tables.
    fn raw_name(&self, k: Key) -> &'static str {
        match k {
            Key::User => self.user,
            Key::Host => "server_host",
            k => k.name(),
        }
    }

    /// The report expression of a key over a raw table with time column
    /// `time`.
    pub fn raw_col(&self, k: Key, time: &str) -> String {
        match k {
            Key::Day => (self.day_text)(time),
            Key::Module => "COALESCE(module, '')".into(),
            Key::Client => self.client.into(),
            Key::Country => "COALESCE(country, '')".into(),
            Key::City => "COALESCE(city || ', ' || country, city, '')".into(),
            k => self.raw_name(k).into(),
        }
    }

    /// The time column of a rollup's raw table.
    pub fn time_of(&self, r: &Rollup) -> &'static str {
        if r.raw == "transfers" {
            self.transfer_time
        } else {
            self.login_time
        }
    }

    /// How many key columns a rollup has.
    pub fn key_count(&self, r: &Rollup) -> usize {
        r.keys.len() + r.extra.len()
    }

    /// The key columns of a rollup, comma-separated.
    pub fn key_columns(&self, r: &Rollup) -> String {
        let mut cols: Vec<&str> = r.keys.iter().map(|k| self.rollup_name(*k)).collect();
        cols.extend(r.extra);
        cols.join(", ")
    }

    fn rollup_name(&self, k: Key) -> &'static str {
        if k == Key::Day {
            "day"
        } else {
            self.raw_name(k)
        }
    }

    /// The raw columns a rollup reads (for a `RETURNING` list): the time,
    /// the key columns, and the summed columns.
    pub fn raw_columns(&self, r: &Rollup) -> String {
        let mut cols = vec![self.time_of(r)];
        cols.extend(r.keys.iter().filter(|k| **k != Key::Day).map(|k| self.raw_name(*k)));
        cols.extend(r.extra);
        if r.values.iter().any(|(_, v)| v.contains("bytes")) {
            cols.push("bytes");
        }
        cols.join(", ")
    }

    /// `INSERT INTO <rollup> AS d (<keys>, <values>)`.
    pub fn insert_into(&self, r: &Rollup) -> String {
        let values: Vec<&str> = r.values.iter().map(|(c, _)| *c).collect();
        format!("INSERT INTO {} AS d ({}, {})", r.table, self.key_columns(r), values.join(", "))
    }

    /// The upsert tail that adds a delta row to a stored one.
    pub fn add_on_conflict(&self, r: &Rollup) -> String {
        let set: Vec<String> = r.values.iter().map(|(c, _)| format!("{c} = d.{c} + excluded.{c}")).collect();
        format!("ON CONFLICT ({}) DO UPDATE SET {}", self.key_columns(r), set.join(", "))
    }

    /// The rollup rows of the raw rows of `from` (a table or a CTE with
    /// the [`Dialect::raw_columns`]) that meet `filter` (`""` for all).
    pub fn roll_select(&self, r: &Rollup, from: &str, filter: &str) -> String {
        self.signed_roll_select(r, from, filter, "")
    }

    /// [`Dialect::roll_select`] with `sign` (`""` or `"-"`) before each sum.
    fn signed_roll_select(&self, r: &Rollup, from: &str, filter: &str, sign: &str) -> String {
        let time = self.time_of(r);
        let mut cols: Vec<String> =
            r.keys.iter().map(|k| if *k == Key::Day { (self.day_of)(time) } else { self.raw_col(*k, time) }).collect();
        cols.extend(r.extra.iter().map(|c| c.to_string()));
        let n = cols.len();
        cols.extend(r.values.iter().map(|(_, v)| {
            if v.starts_with("SUM") {
                format!("{sign}{v}{}", self.cast)
            } else {
                format!("{sign}{v}")
            }
        }));
        let group: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        let filter = if filter.is_empty() { String::new() } else { format!(" WHERE {filter}") };
        format!("SELECT {} FROM {from}{filter} GROUP BY {}", cols.join(", "), group.join(", "))
    }

    /// Rewrites a rollup from its raw rows, from the day bound as the one
    /// parameter on (the old rows of those days were deleted first).
    pub fn rebuild_sql(&self, r: &Rollup) -> String {
        format!("{} {}", self.insert_into(r), self.roll_select(r, r.raw, &(self.rebuild_from)(self.time_of(r))))
    }

    /// Subtracts from a rollup the raw rows of its raw table that meet
    /// `filter` (before they are deleted): the rollup rows they were
    /// counted in are left with what the other rows sum to, rows of nothing
    /// with zeros (see [`Dialect::drop_empty_sql`]).
    pub fn unroll_sql(&self, r: &Rollup, filter: &str) -> String {
        format!(
            "{} {} {}",
            self.insert_into(r),
            self.signed_roll_select(r, r.raw, filter, "-"),
            self.add_on_conflict(r)
        )
    }

    /// Deletes the rollup rows that count nothing (after
    /// [`Dialect::unroll_sql`]).
    pub fn drop_empty_sql(&self, r: &Rollup) -> String {
        format!("DELETE FROM {} WHERE {} = 0", r.table, r.values[0].0)
    }

    /// The report queries of `q`: the transfer metrics, and the login
    /// metrics when every key applies to logins. Transfers come from the
    /// rollup when every key is a rollup key; logins likewise.
    pub fn aggregate_sql(&self, q: &Aggregate) -> (String, Option<String>) {
        let transfers = self.group_sql(q, &TRANSFERS, &Metric::TRANSFERS);
        let logins = q.keys.iter().all(|k| k.applies_to_logins()).then(|| self.group_sql(q, &LOGINS, &Metric::LOGINS));
        (transfers, logins)
    }

    fn group_sql(&self, q: &Aggregate, r: &Rollup, metrics: &[Metric]) -> String {
        let rolled = q.keys.iter().all(|k| !k.needs_raw());
        let time = self.time_of(r);
        let (table, count, filter) = if rolled {
            (r.table, r.values[0].0, self.day_filter.to_string())
        } else {
            (r.raw, "1", (self.time_filter)(time))
        };
        let cols: Vec<String> = q
            .keys
            .iter()
            .map(|k| if rolled { self.rollup_col(*k).unwrap_or("''").to_string() } else { self.raw_col(*k, time) })
            .collect();
        let select_keys = if cols.is_empty() { "''".to_string() } else { cols.join(", ") };
        let group = if cols.is_empty() { String::new() } else { format!("GROUP BY {}", cols.join(", ")) };
        let sums: Vec<String> = metrics.iter().map(|m| m.sql_sum(count, self.cast)).collect();
        format!("SELECT {select_keys}, {} FROM {table} WHERE {filter} {group}", sums.join(", "))
    }
}

/// The query of a ranked per-day list.
pub(crate) fn day_counts_sql(d: &Dialect, list: super::DayList) -> String {
    match list {
        super::DayList::TopFiles => top_files_sql(d),
        super::DayList::FailedLoginClients => failed_login_clients_sql(d),
    }
}

/// Per-day transfers and bytes of the `limit` files with the most uploads
/// and downloads in the range: `day, path, '', count, bytes`.
fn top_files_sql(d: &Dialect) -> String {
    format!(
        "WITH top AS (SELECT path FROM transfers WHERE {range} AND direction <> 'delete' AND path IS NOT NULL \
         GROUP BY path ORDER BY COUNT(*) DESC, path LIMIT {limit}) \
         SELECT {day}, transfers.path, '', COUNT(*){cast}, SUM(bytes){cast} FROM transfers JOIN top ON top.path = transfers.path \
         WHERE {range} AND direction <> 'delete' GROUP BY 1, 2 ORDER BY 1, 2",
        range = (d.time_filter)(d.transfer_time),
        limit = d.limit,
        day = (d.day_text)(d.transfer_time),
        cast = d.cast,
    )
}

/// The `limit` latest transfers in the range that did not complete, newest
/// first, in [`super::FailedTransfer`] field order.
pub(crate) fn failed_transfers_sql(d: &Dialect) -> String {
    format!(
        "SELECT {us}, {user}, server_host, COALESCE(module, ''), protocol, direction, status, COALESCE(path, ''), \
         {client}, COALESCE(country, '') FROM transfers WHERE {range} AND status <> 'completed' \
         ORDER BY 1 DESC LIMIT {limit}",
        us = d.transfer_us,
        user = d.user,
        client = d.client,
        range = (d.time_filter)(d.transfer_time),
        limit = d.limit,
    )
}

/// Per-day failed logins of the `limit` clients with the most failed logins
/// in the range: `day, client, country, count, 0`.
fn failed_login_clients_sql(d: &Dialect) -> String {
    format!(
        "WITH top AS (SELECT {client} AS client FROM logins WHERE {range} AND outcome <> 'ok' \
         GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT {limit}) \
         SELECT {day}, {client}, COALESCE(country, ''), COUNT(*){cast}, 0{cast} FROM logins \
         JOIN top ON top.client = {client} WHERE {range} AND outcome <> 'ok' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        client = d.client,
        range = (d.time_filter)(d.login_time),
        limit = d.limit,
        day = (d.day_text)(d.login_time),
        cast = d.cast,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::postgres::query::DIALECT as PG;
    use crate::sinks::sqlite::query::DIALECT as SQLITE;

    /// The primary key of `table` in the stored schema text.
    fn primary_key(schema: &str, table: &str) -> String {
        let start = schema.find(&format!("CREATE TABLE {table} (")).unwrap();
        let body = &schema[start..];
        let body = &body[..body.find(");").unwrap()];
        let pk = &body[body.find("PRIMARY KEY (").unwrap() + 13..];
        pk[..pk.find(')').unwrap()].to_string()
    }

    #[test]
    fn rollup_keys_are_the_stored_primary_keys() {
        let sqlite = include_str!("../../sql/sqlite/0001_init.sql");
        let pg = include_str!("../../sql/postgres/0001_init.sql");
        for (d, schema) in [(&SQLITE, sqlite), (&PG, pg)] {
            for r in [&TRANSFERS, &LOGINS] {
                assert_eq!(d.key_columns(r), primary_key(schema, r.table), "{}", r.table);
            }
        }
    }

    #[test]
    fn generated_rollup_sql() {
        assert_eq!(
            SQLITE.rebuild_sql(&TRANSFERS),
            "INSERT INTO daily_transfers AS d (day, server_host, protocol, direction, status, module, user, \
             transfers, bytes) SELECT date(end_us / 1000000, 'unixepoch'), server_host, protocol, direction, \
             status, COALESCE(module, ''), user, count(*), SUM(bytes) FROM transfers WHERE end_us >= ?1 \
             GROUP BY 1, 2, 3, 4, 5, 6, 7"
        );
        assert_eq!(
            PG.rebuild_sql(&LOGINS),
            "INSERT INTO daily_logins AS d (day, server_host, protocol, username, outcome, logins) SELECT \
             (time_ts AT TIME ZONE 'UTC')::date, server_host, protocol, username, outcome, count(*) FROM logins \
             WHERE time_ts >= ($1::text::date)::timestamp AT TIME ZONE 'UTC' GROUP BY 1, 2, 3, 4, 5"
        );
        assert_eq!(
            PG.add_on_conflict(&TRANSFERS),
            "ON CONFLICT (day, server_host, protocol, direction, status, module, username) DO UPDATE SET \
             transfers = d.transfers + excluded.transfers, bytes = d.bytes + excluded.bytes"
        );
        assert_eq!(PG.raw_columns(&LOGINS), "time_ts, server_host, protocol, username, outcome");
        assert_eq!(
            PG.raw_columns(&TRANSFERS),
            "end_ts, server_host, protocol, direction, status, module, username, bytes"
        );
    }

    #[test]
    fn report_queries_use_the_rollups_when_the_keys_allow() {
        let q = Aggregate { keys: vec![Key::Day, Key::User], since: None, until: None };
        let (t, l) = SQLITE.aggregate_sql(&q);
        assert!(
            t.starts_with("SELECT day, user, SUM(CASE WHEN direction <> 'delete' THEN transfers ELSE 0 END), "),
            "{t}"
        );
        assert!(t.contains(" FROM daily_transfers WHERE "), "{t}");
        let l = l.unwrap();
        assert!(l.ends_with("FROM daily_logins WHERE (?1 IS NULL OR day >= ?1) AND (?2 IS NULL OR day <= ?2) AND coalesce(?3, ?4, 0) IS NOT NULL GROUP BY day, user"), "{l}");
        let q = Aggregate { keys: vec![Key::Country], since: None, until: None };
        let (t, l) = PG.aggregate_sql(&q);
        assert!(t.contains("SUM(CASE WHEN direction = 'upload' THEN bytes ELSE 0 END)::bigint"), "{t}");
        assert!(t.contains(" FROM transfers WHERE "), "{t}");
        assert!(l.unwrap().contains("SUM(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END)::bigint FROM logins"));
        let q = Aggregate { keys: vec![Key::Status], since: None, until: None };
        assert_eq!(SQLITE.aggregate_sql(&q).1, None, "logins have no status");
    }
}
