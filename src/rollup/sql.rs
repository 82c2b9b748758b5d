//! SQL of the daily rollups and the report queries, written once for the
//! SQL stores (SQLite, PostgreSQL) from the key and metric lists of
//! [`crate::rollup`], with the pieces in which their dialects differ
//! ([`Dialect`]). Every text here is built from fixed names; values are
//! always bound parameters.

use super::{Aggregate, Key, Metric, CELL_CHARS, LOGIN_KEYS, TRANSFER_KEYS, VALUE_SETS};

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
    /// Rows of a rollup from the rebuild's first day on (the same
    /// parameter).
    pub rebuild_day: &'static str,
    /// The month (`YYYY-MM`) of a rollup-typed day expression.
    pub month_of: fn(&str) -> String,
    /// The first day of the month of a rollup-typed day expression.
    pub month_start: fn(&str) -> String,
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
            Key::Month | Key::Client | Key::Country | Key::City | Key::Cell | Key::File => return None,
            k => self.raw_name(k),
        })
    }

    /// The column of a key in the raw tables.
    fn raw_name(&self, k: Key) -> &'static str {
        match k {
            Key::User => self.user,
            Key::Host => "server_host",
            Key::File => "path",
            k => k.name(),
        }
    }

    /// The report expression of a key over a raw table with time column
    /// `time`.
    pub fn raw_col(&self, k: Key, time: &str) -> String {
        match k {
            Key::Day => (self.day_text)(time),
            Key::Month => (self.month_of)(&(self.day_of)(time)),
            Key::Module => "COALESCE(module, '')".into(),
            Key::Client => self.client.into(),
            Key::Country => "COALESCE(country, '')".into(),
            Key::City => "COALESCE(city || ', ' || country, city, '')".into(),
            Key::Cell => format!("COALESCE(substr(geohash, 1, {CELL_CHARS}), '')"),
            Key::File => "COALESCE(path, '')".into(),
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

    /// `INSERT INTO daily_values AS d (<keys>, <metrics>)`.
    pub fn values_insert(&self) -> String {
        let metrics: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        format!("INSERT INTO daily_values AS d (field, day, v1, v2, {})", metrics.join(", "))
    }

    /// The upsert tail that adds a `daily_values` delta row to a stored one.
    pub fn values_on_conflict(&self) -> String {
        let set: Vec<String> = Metric::ALL.iter().map(|m| format!("{0} = d.{0} + excluded.{0}", m.name())).collect();
        format!("ON CONFLICT (field, day, v1, v2) DO UPDATE SET {}", set.join(", "))
    }

    /// Adds to `daily_values` the value rows of the raw rows of `from` (a
    /// table, or a CTE with the columns of `r.raw`) that meet `filter`
    /// (`""` for all): one `GROUP BY` per set of [`VALUE_SETS`].
    pub fn values_roll_sql(&self, r: &Rollup, from: &str, filter: &str) -> String {
        self.signed_values_roll_sql(r, from, filter, "")
    }

    /// Subtracts from `daily_values` the value rows of the raw rows of `r`
    /// that meet `filter` (before they are deleted), as
    /// [`Dialect::unroll_sql`] does for a daily rollup; rows of nothing are
    /// left with zeros (see [`Dialect::values_drop_empty_sql`]).
    pub fn values_unroll_sql(&self, r: &Rollup, filter: &str) -> String {
        self.signed_values_roll_sql(r, r.raw, filter, "-")
    }

    /// Deletes the `daily_values` rows that count nothing (after
    /// [`Dialect::values_unroll_sql`]): every event counts a transfer, a
    /// deletion or a login.
    pub fn values_drop_empty_sql(&self) -> String {
        let nothing: Vec<String> = [Metric::Transfers, Metric::Deletes, Metric::LoginsOk, Metric::LoginsFailed]
            .iter()
            .map(|m| format!("{} = 0", m.name()))
            .collect();
        format!("DELETE FROM daily_values WHERE {}", nothing.join(" AND "))
    }

    /// [`Dialect::values_roll_sql`] with `sign` (`""` or `"-"`) before
    /// every sum.
    fn signed_values_roll_sql(&self, r: &Rollup, from: &str, filter: &str, sign: &str) -> String {
        let selects: Vec<String> = VALUE_SETS
            .iter()
            .filter(|set| r.raw == TRANSFERS.raw || super::set_has_logins(set))
            .map(|set| self.values_select(r, set, from, filter, false, sign))
            .collect();
        self.values_insert_all(&selects)
    }

    /// Deletes the `daily_values` rows of the monthly sets (or of the
    /// daily ones) from the rebuild's first day on (its one parameter).
    pub fn values_clear_sql(&self, monthly: bool) -> String {
        format!("DELETE FROM daily_values WHERE {} AND field IN ({})", self.rebuild_day, super::set_names_sql(monthly))
    }

    /// Rewrites `daily_values` for `r`'s events, of the monthly sets (the
    /// pairs) or of the others: the sets whose keys the daily rollup `r`
    /// has from it (it keeps the days whose raw rows were pruned), the
    /// others (country, cell) from the raw rows; from the rebuild's first
    /// day on (a month's first day for the monthly sets) when `from_day`,
    /// else everything.
    pub fn values_rebuild_sql(&self, r: &Rollup, monthly: bool, from_day: bool) -> String {
        let raw_filter = if from_day { (self.rebuild_from)(self.time_of(r)) } else { String::new() };
        let day_filter = if from_day { self.rebuild_day } else { "" };
        let selects: Vec<String> = VALUE_SETS
            .iter()
            .filter(|set| r.raw == TRANSFERS.raw || super::set_has_logins(set))
            .filter(|set| super::set_is_monthly(set) == monthly)
            .map(|set| {
                if set.iter().all(|k| r.keys.contains(k)) {
                    self.values_select(r, set, r.table, day_filter, true, "")
                } else {
                    self.values_select(r, set, r.raw, &raw_filter, false, "")
                }
            })
            .collect();
        self.values_insert_all(&selects)
    }

    /// The value rows of one set from the raw rows of `r` (or, `rolled`,
    /// from the daily rollup `r`) in `from` that meet `filter`, each sum
    /// preceded by `sign`.
    fn values_select(&self, r: &Rollup, set: &[Key], from: &str, filter: &str, rolled: bool, sign: &str) -> String {
        let time = self.time_of(r);
        let transfers = r.raw == TRANSFERS.raw;
        let count = if rolled { r.values[0].0 } else { "1" };
        let sums: Vec<String> = Metric::ALL
            .iter()
            .map(|m| {
                if Metric::TRANSFERS.contains(m) == transfers {
                    format!("{sign}{}", m.sql_sum(count, self.cast))
                } else {
                    format!("0{}", self.cast)
                }
            })
            .collect();
        let col = |k: Key| if rolled { self.rollup_name(k).to_string() } else { self.raw_col(k, time) };
        let mut day = if rolled { "day".to_string() } else { (self.day_of)(time) };
        if super::set_is_monthly(set) {
            day = (self.month_start)(&day);
        }
        let v2 = set.get(1).map_or("''".to_string(), |k| col(*k));
        let group = if set.len() == 2 { "2, 3, 4" } else { "2, 3" };
        let filter = if filter.is_empty() { String::new() } else { format!(" WHERE {filter}") };
        format!(
            "SELECT '{}', {day}, {}, {v2}, {} FROM {from}{filter} GROUP BY {group}",
            super::set_name(set),
            col(set[0]),
            sums.join(", ")
        )
    }

    /// One insert of the union of value `selects`, added to stored rows.
    fn values_insert_all(&self, selects: &[String]) -> String {
        format!(
            "{} SELECT * FROM ({}) AS r WHERE true {}",
            self.values_insert(),
            selects.join(" UNION ALL "),
            self.values_on_conflict()
        )
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
    /// value rollup when the keys are the day and one of its sets, else from
    /// the rollup when every key is a rollup key; logins likewise.
    pub fn aggregate_sql(&self, q: &Aggregate) -> (String, Option<String>) {
        if let Some((set, cols)) = super::value_set(&q.keys, q.since.as_deref(), q.until.as_deref()) {
            let logins = super::set_has_logins(set) && q.keys.iter().all(|k| k.applies_to_logins());
            return (
                self.values_sql(set, &q.keys, &cols, &Metric::TRANSFERS),
                logins.then(|| self.values_sql(set, &q.keys, &cols, &Metric::LOGINS)),
            );
        }
        let transfers = self.group_sql(q, &TRANSFERS, &Metric::TRANSFERS);
        let logins = q.keys.iter().all(|k| k.applies_to_logins()).then(|| self.group_sql(q, &LOGINS, &Metric::LOGINS));
        (transfers, logins)
    }

    /// The report queries of `q`, each with the metrics it selects:
    /// [`Dialect::aggregate_sql`]'s, or one query of every metric when the
    /// keys are a value set's whole row key and logins count in it (each
    /// row then read once).
    pub fn report_queries(&self, q: &Aggregate) -> Vec<(String, &'static [Metric])> {
        if let Some((set, cols)) = super::value_set(&q.keys, q.since.as_deref(), q.until.as_deref()) {
            let logins = super::set_has_logins(set) && q.keys.iter().all(|k| k.applies_to_logins());
            if logins && whole_rows(set, &q.keys) {
                return vec![(self.values_sql(set, &q.keys, &cols, &Metric::ALL), &Metric::ALL)];
            }
        }
        let (transfers, logins) = self.aggregate_sql(q);
        let mut out = vec![(transfers, &Metric::TRANSFERS[..])];
        out.extend(logins.map(|l| (l, &Metric::LOGINS[..])));
        out
    }

    fn values_sql(&self, set: &[Key], keys: &[Key], cols: &[Option<usize>], metrics: &[Metric]) -> String {
        let cols: Vec<String> = keys
            .iter()
            .zip(cols)
            .map(|(k, c)| match c {
                None if *k == Key::Month => (self.month_of)("day"),
                None => self.rollup_day.to_string(),
                Some(0) => "v1".to_string(),
                Some(_) => "v2".to_string(),
            })
            .collect();
        let select_keys = if cols.is_empty() { "''".to_string() } else { cols.join(", ") };
        // A monthly set's day is its month's first: grouped by it, the
        // rows come in key order, without a sort.
        let monthly = super::set_is_monthly(set);
        let by: Vec<&str> =
            cols.iter().zip(keys).map(|(c, k)| if monthly && *k == Key::Month { "day" } else { c.as_str() }).collect();
        let whole_rows = whole_rows(set, keys);
        let group = if cols.is_empty() || whole_rows { String::new() } else { format!(" GROUP BY {}", by.join(", ")) };
        let sums: Vec<String> = metrics
            .iter()
            .map(|m| if whole_rows { m.name().to_string() } else { format!("SUM({}){}", m.name(), self.cast) })
            .collect();
        format!(
            "SELECT {select_keys}, {} FROM daily_values WHERE field = '{}' AND {}{group}",
            sums.join(", "),
            super::set_name(set),
            self.day_filter
        )
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

/// Whether report `keys` are the whole row key of value `set` (its day, or
/// month for a monthly set, and its fields): one row per group, read as it
/// is rather than summed.
fn whole_rows(set: &[Key], keys: &[Key]) -> bool {
    let time = if super::set_is_monthly(set) { Key::Month } else { Key::Day };
    keys.len() == set.len() + 1 && keys.contains(&time) && set.iter().all(|k| keys.contains(k))
}

/// The query of a ranked per-day list.
pub(crate) fn day_counts_sql(d: &Dialect, list: super::DayList) -> String {
    match list {
        super::DayList::TopFiles => top_files_sql(d),
        super::DayList::FailedLoginClients => failed_login_clients_sql(d),
    }
}

/// Per-month transfers and bytes of the `limit` files with the most uploads
/// and downloads in the range, from the raw events: `month, path, '',
/// count, bytes`.
fn top_files_sql(d: &Dialect) -> String {
    format!(
        "WITH top AS (SELECT path FROM transfers WHERE {range} AND direction <> 'delete' AND path IS NOT NULL \
         GROUP BY path ORDER BY COUNT(*) DESC, path LIMIT {limit}) \
         SELECT {month}, transfers.path, '', COUNT(*){cast}, SUM(bytes){cast} FROM transfers JOIN top ON top.path = transfers.path \
         WHERE {range} AND direction <> 'delete' GROUP BY 1, 2 ORDER BY 1, 2",
        range = (d.time_filter)(d.transfer_time),
        limit = d.limit,
        month = (d.month_of)(&(d.day_of)(d.transfer_time)),
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

/// How many distinct clients `daily_clients` holds in the report's day
/// range: a skip from client to client over its (client, day) index, with
/// one look-up of the range per client (a plain `COUNT(DISTINCT)` would
/// read a row per client and day).
pub(crate) fn distinct_clients_sql(d: &Dialect) -> String {
    format!(
        "WITH RECURSIVE c(client) AS (SELECT MIN(client) FROM daily_clients UNION ALL \
         SELECT (SELECT MIN(client) FROM daily_clients WHERE client > c.client) FROM c WHERE c.client IS NOT NULL) \
         SELECT COUNT(*){cast} FROM c WHERE client IS NOT NULL AND client <> '' AND EXISTS \
         (SELECT 1 FROM daily_clients x WHERE x.client = c.client AND {range})",
        cast = d.cast,
        range = d.day_filter,
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
        let q = Aggregate { keys: vec![Key::Month, Key::User, Key::Host], since: None, until: None };
        let (t, l) = SQLITE.aggregate_sql(&q);
        // The set's whole row key: its rows as they are.
        assert!(t.starts_with("SELECT substr(day, 1, 7), v1, v2, transfers, completed, "), "{t}");
        assert!(t.ends_with("FROM daily_values WHERE field = 'user,host' AND (?1 IS NULL OR day >= ?1) AND (?2 IS NULL OR day <= ?2) AND coalesce(?3, ?4, 0) IS NOT NULL"), "{t}");
        assert!(l
            .unwrap()
            .starts_with("SELECT substr(day, 1, 7), v1, v2, logins_ok, logins_failed FROM daily_values "));
        // Part of it: summed, a monthly set grouped by its first day (no sort).
        let (t, _) = SQLITE.aggregate_sql(&Aggregate { keys: vec![Key::Month, Key::Host], ..q.clone() });
        assert!(t.starts_with("SELECT substr(day, 1, 7), v1, SUM(transfers), "), "{t}");
        assert!(t.ends_with(" GROUP BY substr(day, 1, 7), v1"), "{t}");
        let (t, _) = PG.aggregate_sql(&Aggregate { keys: vec![Key::Host, Key::User], ..q.clone() });
        assert!(t.starts_with("SELECT v2, v1, SUM(transfers)::bigint, "), "{t}");
        assert!(t.ends_with(" GROUP BY v2, v1"), "{t}");
        let (t, _) = PG.aggregate_sql(&Aggregate { keys: vec![Key::User, Key::Host, Key::Month], ..q.clone() });
        assert!(t.starts_with("SELECT v1, v2, to_char(day, 'YYYY-MM'), transfers, "), "{t}");
        // Those rows with their logins in one query; else two.
        let both = SQLITE.report_queries(&q);
        assert_eq!(both.len(), 1);
        assert_eq!(both[0].1, Metric::ALL);
        assert!(both[0].0.contains(", deletes, logins_ok, logins_failed FROM daily_values "), "{}", both[0].0);
        let two = SQLITE.report_queries(&Aggregate { keys: vec![Key::Month, Key::Host], ..q.clone() });
        assert_eq!(two.iter().map(|(_, m)| *m).collect::<Vec<_>>(), [&Metric::TRANSFERS[..], &Metric::LOGINS[..]]);
        assert_eq!(SQLITE.report_queries(&Aggregate { keys: vec![Key::Day, Key::Module], ..q.clone() }).len(), 1);
        // Not over part of a month: from the raw rows.
        let q = Aggregate { keys: q.keys, since: Some("2026-03-02".into()), until: None };
        assert!(SQLITE.aggregate_sql(&q).0.contains(" FROM transfers WHERE "));
        let q = Aggregate { keys: vec![Key::Module, Key::Day], since: None, until: None };
        let (t, l) = PG.aggregate_sql(&q);
        assert!(t.starts_with("SELECT v1, to_char(day, 'YYYY-MM-DD'), transfers, completed, "), "{t}");
        assert_eq!(l, None, "logins have no module");
        let (t, _) = PG.aggregate_sql(&Aggregate { keys: vec![Key::Module, Key::Month], ..q });
        assert!(t.starts_with("SELECT v1, to_char(day, 'YYYY-MM'), SUM(transfers)::bigint, "), "{t}");
        let q = Aggregate { keys: vec![Key::Day, Key::User, Key::Status], since: None, until: None };
        let (t, l) = SQLITE.aggregate_sql(&q);
        assert!(
            t.starts_with("SELECT day, user, status, SUM(CASE WHEN direction <> 'delete' THEN transfers ELSE 0 END), "),
            "{t}"
        );
        assert!(t.contains(" FROM daily_transfers WHERE "), "{t}");
        assert_eq!(l, None, "logins have no status");
        let q = Aggregate { keys: vec![Key::Day, Key::User, Key::Protocol, Key::Host], since: None, until: None };
        let l = SQLITE.aggregate_sql(&q).1.unwrap();
        assert!(l.ends_with("FROM daily_logins WHERE (?1 IS NULL OR day >= ?1) AND (?2 IS NULL OR day <= ?2) AND coalesce(?3, ?4, 0) IS NOT NULL GROUP BY day, user, protocol, server_host"), "{l}");
        let q = Aggregate { keys: vec![Key::City], since: None, until: None };
        let (t, l) = PG.aggregate_sql(&q);
        assert!(t.contains("SUM(CASE WHEN direction = 'upload' THEN bytes ELSE 0 END)::bigint"), "{t}");
        assert!(t.contains(" FROM transfers WHERE "), "{t}");
        assert!(l.unwrap().contains("SUM(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END)::bigint FROM logins"));
        let q = Aggregate { keys: vec![Key::Status], since: None, until: None };
        assert_eq!(SQLITE.aggregate_sql(&q).1, None, "logins have no status");
    }

    #[test]
    fn value_rollup_sql() {
        let sql = SQLITE.values_roll_sql(&LOGINS, "logins", "time_us >= ?1");
        assert!(sql.starts_with("INSERT INTO daily_values AS d (field, day, v1, v2, transfers, completed, "), "{sql}");
        assert!(sql.contains("SELECT 'user,country', date(date(time_us / 1000000, 'unixepoch'), 'start of month'), user, COALESCE(country, ''), 0, 0, 0, 0, 0, 0, 0, 0, 0, SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), SUM(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END) FROM logins WHERE time_us >= ?1 GROUP BY 2, 3, 4 UNION ALL "), "{sql}");
        assert!(!sql.contains("'module"), "logins have no module: {sql}");
        assert!(sql.ends_with(") AS r WHERE true ON CONFLICT (field, day, v1, v2) DO UPDATE SET transfers = d.transfers + excluded.transfers, completed = d.completed + excluded.completed, interrupted = d.interrupted + excluded.interrupted, failed = d.failed + excluded.failed, uploads = d.uploads + excluded.uploads, downloads = d.downloads + excluded.downloads, bytes_up = d.bytes_up + excluded.bytes_up, bytes_down = d.bytes_down + excluded.bytes_down, deletes = d.deletes + excluded.deletes, logins_ok = d.logins_ok + excluded.logins_ok, logins_failed = d.logins_failed + excluded.logins_failed"), "{sql}");
        let sql = PG.values_roll_sql(&TRANSFERS, "ins", "");
        assert!(sql.contains("SELECT 'cell', (end_ts AT TIME ZONE 'UTC')::date, COALESCE(substr(geohash, 1, 3), ''), '', SUM(CASE WHEN direction <> 'delete' THEN 1 ELSE 0 END)::bigint, "), "{sql}");
        assert_eq!(sql.matches(" UNION ALL ").count(), VALUE_SETS.len() - 1);
        // A rebuild takes what the daily rollups have from them.
        let sql = SQLITE.values_rebuild_sql(&TRANSFERS, true, true);
        let pair = "SELECT 'user,host', date(day, 'start of month'), user, server_host, SUM(CASE WHEN direction <> 'delete' THEN transfers ELSE 0 END), ";
        assert!(sql.contains(pair), "{sql}");
        let rolled = " FROM daily_transfers WHERE day >= date(?1 / 1000000, 'unixepoch') GROUP BY 2, 3, 4 UNION ALL ";
        assert!(sql.contains(rolled), "{sql}");
        let raw = "SELECT 'user,country', date(date(end_us / 1000000, 'unixepoch'), 'start of month'), user, ";
        assert!(sql.contains(raw), "{sql}");
        assert!(sql.contains(" FROM transfers WHERE end_us >= ?1 GROUP BY 2, 3, 4 UNION ALL "), "{sql}");
        assert!(!sql.contains("'user', "), "one-key sets apart: {sql}");
        let sql = SQLITE.values_rebuild_sql(&TRANSFERS, false, true);
        let raw = "SELECT 'country', date(end_us / 1000000, 'unixepoch'), COALESCE(country, ''), '', ";
        assert!(sql.contains(raw), "{sql}");
        assert!(sql.contains(" FROM transfers WHERE end_us >= ?1 GROUP BY 2, 3 UNION ALL "), "{sql}");
        let sql = PG.values_rebuild_sql(&LOGINS, false, false);
        assert!(sql.contains("SELECT 'protocol', day, protocol, '', 0::bigint, "), "{sql}");
        assert!(sql.contains("SUM(CASE WHEN outcome = 'ok' THEN logins ELSE 0 END)::bigint"), "{sql}");
        assert!(!sql.contains(" WHERE day") && !sql.contains("$1"), "{sql}");
        let sql = PG.values_rebuild_sql(&LOGINS, true, false);
        assert!(sql.contains("SELECT 'user,host', date_trunc('month', day)::date, username, server_host, "), "{sql}");
    }
}
