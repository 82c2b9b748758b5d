//! The daily rollups of the PostgreSQL store, from the one key list of
//! [`crate::rollup`]: the deltas of a batch that was stored whole (fast
//! path), the rows a staged insert actually added (exact path), and the
//! distinct clients per day (`daily_clients`, a table only this store has).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::LazyLock;

use ::postgres::types::ToSql;
use ::postgres::{GenericClient, Transaction};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::copy::copy_rows;
use super::query::DIALECT;
use crate::model::{write_ip_text, Event};
use crate::rollup::sql::{Rollup, LOGINS, TRANSFERS};
use crate::rollup::{join_into, login_row, transfer_row, Deltas, Metric};
use crate::time::day_number;

/// The client of a raw row, as `daily_clients` keeps it.
pub(super) const CLIENT: &str = "COALESCE(abbrev(client_ip), client_hash, client_host)";

/// Moves the staged rows of a rollup's raw table into it and rolls up
/// exactly the rows inserted; returns their count. The clients of every
/// staged row are added, stored before or not (`daily_clients` is a set):
/// a part stored on two connections has all its clients in the first
/// one's transaction (see `side`), and a re-read after a crash between the
/// two commits adds those of the logins the second one stored.
fn move_sql(r: &Rollup) -> String {
    let time = DIALECT.time_of(r);
    let n = DIALECT.key_count(r);
    let order: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    format!(
        "WITH ins AS (INSERT INTO {raw} SELECT * FROM stage_{raw} ON CONFLICT DO NOTHING \
         RETURNING {cols}, country, geohash{path}), \
         roll AS ({insert} {select} ORDER BY {order} {conflict}), \
         vals AS ({values}), \
         cl AS (INSERT INTO daily_clients (day, server_host, client) \
         SELECT DISTINCT {day}, server_host, {CLIENT} FROM stage_{raw} WHERE {CLIENT} IS NOT NULL ORDER BY 1, 2, 3 \
         ON CONFLICT DO NOTHING) \
         SELECT count(*) FROM ins",
        raw = r.raw,
        cols = DIALECT.raw_columns(r),
        insert = DIALECT.insert_into(r),
        select = DIALECT.roll_select(r, "ins", ""),
        order = order.join(", "),
        conflict = DIALECT.add_on_conflict(r),
        values = DIALECT.values_roll_sql(r, "ins", ""),
        path = if r.raw == TRANSFERS.raw { ", path" } else { "" },
        day = (DIALECT.day_of)(time),
    )
}

/// [`move_sql`] of transfers and of logins.
pub(super) static MOVE: LazyLock<[String; 2]> = LazyLock::new(|| [move_sql(&TRANSFERS), move_sql(&LOGINS)]);

/// Adds the rows given as column arrays (key columns as text, the day
/// first, then the values), sorted by key.
fn upsert_sql(r: &Rollup) -> String {
    let nk = DIALECT.key_count(r);
    let n = nk + r.values.len();
    let names: Vec<String> = (1..=n).map(|i| format!("c{i}")).collect();
    let arrays: Vec<String> = (1..=n).map(|i| format!("${i}::{}[]", if i <= nk { "text" } else { "int8" })).collect();
    let mut select = names.clone();
    select[0] = "c1::date".into();
    format!(
        "{} SELECT {} FROM unnest({}) AS x({}) {}",
        DIALECT.insert_into(r),
        select.join(", "),
        arrays.join(", "),
        names.join(", "),
        DIALECT.add_on_conflict(r)
    )
}

static UPSERT: LazyLock<[String; 2]> = LazyLock::new(|| [upsert_sql(&TRANSFERS), upsert_sql(&LOGINS)]);

/// Adds `daily_values` rows given as column arrays: field, day, v1, v2 as
/// text, then the metrics in [`Metric::ALL`] order.
static VALUES_UPSERT: LazyLock<String> = LazyLock::new(|| {
    let n = 4 + Metric::ALL.len();
    let names: Vec<String> = (1..=n).map(|i| format!("c{i}")).collect();
    let arrays: Vec<String> = (1..=n).map(|i| format!("${i}::{}[]", if i <= 4 { "text" } else { "int8" })).collect();
    let mut select = names.clone();
    select[1] = "c2::date".into();
    format!(
        "{} SELECT {} FROM unnest({}) AS x({}) {}",
        DIALECT.values_insert(),
        select.join(", "),
        arrays.join(", "),
        names.join(", "),
        DIALECT.values_on_conflict()
    )
});

/// Rewrites the rollups (and clients) from the raw rows, from the day `$1`
/// on; returns the rows written.
pub(super) fn rebuild(tx: &mut Transaction<'_>, since: &str) -> Result<u64, ::postgres::Error> {
    let mut written = 0;
    for r in [&TRANSFERS, &LOGINS] {
        written += tx.execute(&DIALECT.rebuild_sql(r), &[&since])?;
    }
    let clients: Vec<String> = [&TRANSFERS, &LOGINS]
        .map(|r| {
            let time = DIALECT.time_of(r);
            format!(
                "SELECT {}, server_host, {CLIENT} FROM {} WHERE {} AND {CLIENT} IS NOT NULL",
                (DIALECT.day_of)(time),
                r.raw,
                (DIALECT.rebuild_from)(time)
            )
        })
        .to_vec();
    let sql = format!("INSERT INTO daily_clients (day, server_host, client) {}", clients.join(" UNION "));
    written += tx.execute(&sql, &[&since])?;
    Ok(written + roll_values(tx, Some(since))?)
}

/// Rewrites the value rollup of the days from `since` on, and of its whole
/// month for the monthly sets (`None`: fills it all), the daily rollups
/// being complete for those days; returns the rows written.
pub(super) fn roll_values(tx: &mut Transaction<'_>, since: Option<&str>) -> Result<u64, ::postgres::Error> {
    let mut written = 0;
    for monthly in [false, true] {
        let from = since.map(|d| if monthly { format!("{}-01", d.get(..7).unwrap_or(d)) } else { d.to_string() });
        if let Some(from) = &from {
            tx.execute(&DIALECT.values_clear_sql(monthly), &[from])?;
        }
        for r in [&TRANSFERS, &LOGINS] {
            let sql = DIALECT.values_rebuild_sql(r, monthly, from.is_some());
            written += match &from {
                Some(from) => tx.execute(&sql, &[from])?,
                None => tx.execute(&sql, &[])?,
            };
        }
    }
    Ok(written)
}

/// The rollup deltas of the events that the fast path stored in one
/// transaction, summed over its parts and owned (a part's events are gone
/// by the time its transaction commits): per rollup table the key columns
/// joined with NUL (log text holds none: events are scrubbed of it), which
/// sorts as the columns do, and the values; and the distinct clients per
/// day, with the number of parts that had each. Written by
/// [`Pending::write`] just before the commit, so the rollup rows are locked
/// only for its last moments, and each key once however many parts added
/// to it.
/// What of a part's rollup deltas one connection's transaction takes: all,
/// or when the part is stored on two connections (see `side`), the
/// transfers' deltas with every client of the part (`daily_clients` is a
/// set: a client is kept once whoever adds it, and the exact path adds the
/// clients of every row it meets, stored before or not), or the logins'
/// deltas alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Share {
    Whole,
    Transfers,
    Logins,
}

#[derive(Debug, Default)]
pub(super) struct Pending {
    /// daily_transfers, daily_logins, daily_values.
    tables: [Rows; 3],
    /// daily_clients: a client per day and host, and the parts that had it.
    clients: Rows,
}

/// Rollup rows by joined key (a hasher as fast as the one the deltas use:
/// these keys are hashed once per part that has them).
type Rows = HashMap<String, Vec<i64>, Xxh3DefaultBuilder>;

impl Pending {
    /// Adds the deltas of `events`, every one of them new.
    pub(super) fn add(&mut self, events: &[Event]) {
        self.apply(events, 1, Share::Whole);
    }

    /// [`Pending::add`] of one connection's share of `events` when a part
    /// is stored on two (see `side`).
    pub(super) fn add_share(&mut self, events: &[Event], share: Share) {
        self.apply(events, 1, share);
    }

    /// Takes back what [`Pending::add`] of the same events added (their
    /// COPY failed after all): rows and clients that only they had are
    /// gone again, since every event adds at least one to some value of
    /// each row it has.
    pub(super) fn remove(&mut self, events: &[Event]) {
        self.apply(events, -1, Share::Whole);
    }

    /// Takes back what [`Pending::add_share`] of the same events added.
    pub(super) fn remove_share(&mut self, events: &[Event], share: Share) {
        self.apply(events, -1, share);
    }

    /// Adds (`sign` 1) or takes back (−1) the deltas of `share` of
    /// `events`.
    fn apply(&mut self, events: &[Event], sign: i64, share: Share) {
        let mut deltas = Deltas::default();
        // The distinct clients per day and host of these events, found
        // without writing any text; only those are then written as keys.
        let mut seen: HashSet<(i64, &str, Client<'_>), Xxh3DefaultBuilder> = HashSet::default();
        for ev in events {
            let (time, host, ip, origin, client_host) = match ev {
                Event::Transfer(_) if share == Share::Logins => continue,
                Event::Transfer(t) => {
                    deltas.transfer(t);
                    (t.end, &*t.server_host, t.client_ip, t.origin.as_deref(), t.client_host.as_deref())
                }
                Event::Login(l) => {
                    if share != Share::Transfers {
                        deltas.login(l);
                    }
                    if share == Share::Logins {
                        continue;
                    }
                    (l.time, &*l.server_host, l.client_ip, l.origin.as_deref(), l.client_host.as_deref())
                }
            };
            // As `client_key` gives it.
            let client = match ip {
                Some(a) => Some(Client::Ip(a, origin.and_then(|o| o.ip_prefix))),
                None => origin.and_then(|o| o.client_hash.as_deref()).or(client_host).map(Client::Text),
            };
            if let Some(c) = client {
                seen.insert((day_number(time), host, c));
            }
        }
        let mut key = String::new();
        for (day, host, client) in seen {
            key.clear();
            let (y, m, d) = crate::time::civil_from_days(day);
            let _ = write!(key, "{y:04}-{m:02}-{d:02}\0{host}\0");
            match client {
                Client::Ip(a, prefix) => {
                    let _ = write_ip_text(&mut key, a, prefix);
                }
                Client::Text(t) => key.push_str(t),
            }
            add_row(&mut self.clients, &key, &[sign]);
        }
        let [transfers, logins, values] = &mut self.tables;
        for (k, s) in deltas.transfers() {
            merge(transfers, &mut key, transfer_row(k).iter().map(|c| &**c), &[sign * s.transfers, sign * s.bytes]);
        }
        for (k, n) in deltas.logins() {
            merge(logins, &mut key, login_row(k).iter().map(|c| &**c), &[sign * *n]);
        }
        for (k, m) in deltas.values() {
            merge(values, &mut key, k.row().iter().map(|c| &**c), &Metric::ALL.map(|x| sign * x.of(&m) as i64));
        }
    }

    /// Adds the deltas to the rollups and forgets them: per table, the rows
    /// in key order (rows written in one order keep concurrent writers from
    /// deadlocking), those of days (and hosts, or fields) the table has no
    /// row of yet COPYed in, the others added by upsert (see
    /// [`write_rows`]).
    pub(super) fn write(&mut self, tx: &mut impl GenericClient) -> Result<(), ::postgres::Error> {
        for table in 0..self.tables.len() {
            self.write_table(tx, table)?;
        }
        self.write_clients(tx)
    }

    /// [`Pending::write`] of the tables that the second connection of a
    /// batch import never writes (`daily_transfers`, `daily_clients`; see
    /// `side`): written while it writes its own and commits.
    pub(super) fn write_first_only(&mut self, tx: &mut impl GenericClient) -> Result<(), ::postgres::Error> {
        self.write_table(tx, 0)?;
        self.write_clients(tx)
    }

    fn write_table(&mut self, tx: &mut impl GenericClient, table: usize) -> Result<(), ::postgres::Error> {
        let mut rows: Vec<(String, Vec<i64>)> = self.tables[table].drain().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        write_rows(tx, &TARGETS[table], &rows)
    }

    fn write_clients(&mut self, tx: &mut impl GenericClient) -> Result<(), ::postgres::Error> {
        let mut clients: Vec<(String, Vec<i64>)> = self.clients.drain().map(|(c, _)| (c, Vec::new())).collect();
        clients.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        write_rows(tx, &TARGETS[3], &clients)
    }
}

/// A rollup table as [`Pending::write`] writes it: rows keyed by text
/// columns joined with NUL, the first two of which name a group (day and
/// host, or field and day) whose presence is looked up before the rows are
/// written.
struct Target {
    /// Adds rows given as column arrays (an [`upsert_sql`]).
    upsert: String,
    /// COPYs rows in: the key columns, then the values.
    copy: String,
    /// The groups (two text arrays) of which the table has rows.
    probe: String,
    /// Which of the two group columns is the day.
    day: usize,
}

impl Target {
    fn new(table: &str, keys: &str, values: &[&str], upsert: String) -> Target {
        let cols: Vec<&str> = keys.split(", ").take(2).collect();
        let day = cols.iter().position(|c| *c == "day").unwrap_or(0);
        let cast = |i: usize| if i == day { "::date" } else { "" };
        let values: String = values.iter().map(|v| format!(", {v}")).collect();
        Target {
            upsert,
            copy: format!("COPY {table} ({keys}{values}) FROM STDIN (FORMAT binary)"),
            probe: format!(
                "SELECT g.a, g.b FROM unnest($1::text[], $2::text[]) AS g(a, b) WHERE EXISTS \
                 (SELECT 1 FROM {table} t WHERE t.{} = g.a{} AND t.{} = g.b{})",
                cols[0],
                cast(0),
                cols[1],
                cast(1)
            ),
            day,
        }
    }
}

/// daily_transfers, daily_logins, daily_values, daily_clients.
static TARGETS: LazyLock<[Target; 4]> = LazyLock::new(|| {
    let rollup = |r: &Rollup, i: usize| {
        let values: Vec<&str> = r.values.iter().map(|(c, _)| *c).collect();
        Target::new(r.table, &DIALECT.key_columns(r), &values, UPSERT[i].clone())
    };
    let metrics: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    [
        rollup(&TRANSFERS, 0),
        rollup(&LOGINS, 1),
        Target::new("daily_values", "field, day, v1, v2", &metrics, VALUES_UPSERT.clone()),
        Target::new(
            "daily_clients",
            "day, server_host, client",
            &[],
            "INSERT INTO daily_clients (day, server_host, client) SELECT day::date, h, c \
             FROM unnest($1::text[], $2::text[], $3::text[]) AS x(day, h, c) ON CONFLICT DO NOTHING"
                .into(),
        ),
    ]
});

/// The group of a joined key (its first two columns), and the day of that
/// group as a day number when it is a plain `YYYY-MM-DD`.
fn group_of(key: &str, day: usize) -> (&str, Option<i64>) {
    let mut cols = key.match_indices('\0').map(|(i, _)| i);
    let (first, second) = (cols.next().unwrap_or(key.len()), cols.next().unwrap_or(key.len()));
    let text = match day {
        0 => &key[..first],
        _ => key.get(first + 1..second).unwrap_or_default(),
    };
    (&key[..second], parse_day(text))
}

/// The day number of a plain `YYYY-MM-DD` of the common era (as the rollup
/// keys write days): what the server makes of the text, so that the day
/// can be sent as a binary date. Anything else is left to the server.
fn parse_day(s: &str) -> Option<i64> {
    let plain = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() })
        && !s.starts_with("0000");
    plain.then(|| crate::time::parse_day(s)).flatten()
}

/// Writes `rows` (sorted by key) into `target`'s table. The rows of groups
/// the table has no row of yet are COPYed in — a plain insert of new rows
/// costs the server half of an upsert's work; a concurrent writer that
/// adds one of those keys meanwhile makes the COPY fail on the primary key,
/// and then all the rows are upserted after all (rolled back to the one
/// savepoint taken before the first run). The other rows are upserted.
/// Each run of consecutive rows of one kind is one statement, the runs in
/// key order.
fn write_rows(
    tx: &mut impl GenericClient,
    target: &Target,
    rows: &[(String, Vec<i64>)],
) -> Result<(), ::postgres::Error> {
    use ::postgres::error::SqlState;
    if rows.is_empty() {
        return Ok(());
    }
    let groups: Vec<(&str, Option<i64>)> = rows.iter().map(|(k, _)| group_of(k, target.day)).collect();
    let mut probe: (Vec<&str>, Vec<&str>) = Default::default();
    for (i, (g, _)) in groups.iter().enumerate() {
        if i == 0 || groups[i - 1].0 != *g {
            let (a, b) = g.split_once('\0').unwrap_or((g, ""));
            probe.0.push(a);
            probe.1.push(b);
        }
    }
    let stored: HashSet<String> = match crate::testhook::blind_rollups() {
        true => HashSet::new(),
        false => tx
            .query(&target.probe, &[&probe.0, &probe.1])?
            .iter()
            .map(|r| format!("{}\0{}", r.get::<_, &str>(0), r.get::<_, &str>(1)))
            .collect(),
    };
    // Whether a row can be COPYed: its group is not stored, its day plain
    // (the same for all rows of a group).
    let mut fresh: Vec<bool> = Vec::with_capacity(rows.len());
    for (i, &(g, day)) in groups.iter().enumerate() {
        let same = i > 0 && groups[i - 1].0 == g;
        fresh.push(if same { fresh[i - 1] } else { day.is_some() && !stored.contains(g) });
    }
    let upsert_rows = |tx: &mut _, run: &[(String, Vec<i64>)]| {
        upsert(tx, &target.upsert, run.iter().map(|(k, v)| (k.split('\0').map(Cow::Borrowed).collect(), v.clone())))
    };
    let copies = fresh.contains(&true);
    if copies {
        tx.batch_execute("SAVEPOINT rollup")?;
    }
    let mut written = Ok(());
    let mut start = 0;
    while start < rows.len() && written.is_ok() {
        let kind = fresh[start];
        let end = start + fresh[start..].iter().take_while(|&&f| f == kind).count();
        let run = &rows[start..end];
        written = match kind {
            true => copy_rows(tx, &target.copy, |b, w| {
                for (i, (key, values)) in run.iter().enumerate() {
                    b.row((key.matches('\0').count() + 1 + values.len()) as i16);
                    for (c, col) in key.split('\0').enumerate() {
                        match (c == target.day, groups[start + i].1) {
                            (true, Some(day)) => b.date(day),
                            _ => b.text(col),
                        }
                    }
                    values.iter().for_each(|v| b.i64(*v));
                    b.flush_if_full(w)?;
                }
                Ok(())
            })
            .map(|_| ()),
            false => upsert_rows(tx, run),
        };
        start = end;
    }
    match written {
        Ok(()) if copies => tx.batch_execute("RELEASE SAVEPOINT rollup"),
        Ok(()) => Ok(()),
        Err(e) if copies && e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT rollup; RELEASE SAVEPOINT rollup")?;
            upsert_rows(tx, rows)
        }
        Err(e) => Err(e),
    }
}

/// The client of an event as `daily_clients` keeps it, before it is
/// written as text (see [`crate::model::client_key`]).
#[derive(PartialEq, Eq, Hash)]
enum Client<'a> {
    /// An address or network.
    Ip(IpAddr, Option<u8>),
    /// The keyed hash, else the host name.
    Text(&'a str),
}

/// Adds `values` to the row of the key `cols` (joined in `key`, a buffer
/// reused: a key already present costs no allocation).
fn merge<'a>(table: &mut Rows, key: &mut String, cols: impl Iterator<Item = &'a str>, values: &[i64]) {
    join_into(key, cols);
    add_row(table, key, values);
}

/// Adds `values` to the row of `key`; a row left with nothing but zeros
/// (taken back by [`Pending::remove`]) is dropped.
fn add_row(table: &mut Rows, key: &str, values: &[i64]) {
    let row = match table.get_mut(key) {
        Some(row) => row,
        None => table.entry(key.to_string()).or_insert_with(|| vec![0; values.len()]),
    };
    for (sum, v) in row.iter_mut().zip(values) {
        *sum += v;
    }
    if row.iter().all(|v| *v == 0) {
        table.remove(key);
    }
}

/// Runs an [`upsert_sql`] statement with `rows` (key values, values) turned
/// into column arrays; nothing when there are no rows.
fn upsert<'a>(
    tx: &mut impl GenericClient,
    sql: &str,
    rows: impl Iterator<Item = (Vec<Cow<'a, str>>, Vec<i64>)>,
) -> Result<(), ::postgres::Error> {
    let mut keys: Vec<Vec<String>> = Vec::new();
    let mut values: Vec<Vec<i64>> = Vec::new();
    for (k, v) in rows {
        keys.resize_with(k.len(), Vec::new);
        values.resize_with(v.len(), Vec::new);
        for (col, x) in keys.iter_mut().zip(k) {
            col.push(x.into_owned());
        }
        for (col, x) in values.iter_mut().zip(v) {
            col.push(x);
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    let params: Vec<&(dyn ToSql + Sync)> =
        keys.iter().map(|c| c as &(dyn ToSql + Sync)).chain(values.iter().map(|c| c as &(dyn ToSql + Sync))).collect();
    tx.execute(sql, &params).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key columns joined with NUL.
    fn joined<'a>(cols: impl Iterator<Item = &'a str>) -> String {
        let mut key = String::new();
        join_into(&mut key, cols);
        key
    }

    #[test]
    fn groups_and_days_of_joined_keys() {
        let day = crate::time::days_from_civil(2026, 5, 1);
        assert_eq!(group_of("2026-05-01\0h1\0rsync\0upload", 0), ("2026-05-01\0h1", Some(day)));
        assert_eq!(group_of("user\x002026-05-01\0alice\0", 1), ("user\x002026-05-01", Some(day)));
        assert_eq!(group_of("2026-05-01\0h1\0c", 0), ("2026-05-01\0h1", Some(day)));
        // Days not as the store writes them are never COPYed.
        assert_eq!(group_of("20260-05-01\0h\0c", 0).1, None);
        assert_eq!(group_of("2026-02-30\0h\0c", 0).1, None);
        assert_eq!(group_of("2026-+5-01\0h\0c", 0).1, None);
        assert_eq!(group_of("file\0x\0y", 1).1, None);
        assert_eq!(group_of("", 0), ("", None));
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("0000-01-01"), None);
        assert_eq!(parse_day(" 2026-05-01"), None);
        assert_eq!(parse_day("2000-01-01"), Some(10_957));
    }

    fn transfer(day: i64, user: &str, ip: u8, bytes: u64) -> Event {
        Event::Transfer(crate::model::Transfer {
            id: 1,
            end: day * 86_400_000_000 + 3_600_000_000,
            start: None,
            protocol: crate::model::Protocol::Rsync,
            direction: crate::model::Direction::Download,
            status: crate::model::Status::Completed,
            bytes,
            wire_bytes: None,
            file_size: None,
            path: Some("f".into()),
            module: None,
            user: user.into(),
            client_ip: Some(IpAddr::from([10, 0, 0, ip])),
            client_host: None,
            session: None,
            server_host: "h".into(),
            source: crate::formats::Format::Rsyncd.source(),
            granularity: crate::model::Granularity::File,
            origin: None,
        })
    }

    /// What a pending set holds, sorted.
    fn rows(p: &Pending) -> Vec<Vec<(String, Vec<i64>)>> {
        p.tables
            .iter()
            .chain([&p.clients])
            .map(|t| {
                let mut rows: Vec<_> = t.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                rows.sort();
                rows
            })
            .collect()
    }

    #[test]
    fn removed_deltas_leave_what_was_there_before() {
        let mut p = Pending::default();
        let first = [transfer(20_000, "a", 1, 10), transfer(20_000, "b", 2, 5)];
        p.add(&first);
        let before = rows(&p);
        assert_eq!(before[0].len(), 2);
        assert_eq!(
            before[3],
            [("2024-10-04\0h\x0010.0.0.1".to_string(), vec![1]), ("2024-10-04\0h\x0010.0.0.2".into(), vec![1])]
        );
        // Keys the first events had and keys of their own.
        let second = [transfer(20_000, "a", 1, 7), transfer(20_001, "c", 3, 1), transfer(20_000, "a", 2, 1)];
        p.add(&second);
        assert_eq!(p.tables[0]["2024-10-04\0h\0rsync\0download\0completed\0\0a"], [3, 18]);
        assert_eq!(p.clients["2024-10-04\0h\x0010.0.0.2"], [2]);
        p.remove(&second);
        assert_eq!(rows(&p), before);
        p.remove(&first);
        assert!(rows(&p).iter().all(Vec::is_empty));
    }

    fn login(day: i64, user: &str, ip: u8) -> Event {
        Event::Login(crate::model::Login {
            id: 2,
            time: day * 86_400_000_000 + 7_200_000_000,
            protocol: crate::model::Protocol::Rsync,
            user: user.into(),
            client_ip: Some(IpAddr::from([10, 0, 0, ip])),
            client_host: None,
            outcome: crate::model::LoginOutcome::Ok,
            method: None,
            session: None,
            server_host: "h".into(),
            source: crate::formats::Format::Rsyncd.source(),
            origin: None,
        })
    }

    /// The two connections' shares of a part add up to what one connection
    /// sums of it (the clients all in the transfers' share), and each is
    /// taken back alone.
    #[test]
    fn the_deltas_of_each_kind_add_up_to_the_whole() {
        let events =
            [transfer(20_000, "a", 1, 10), login(20_000, "a", 1), login(20_000, "b", 2), transfer(20_001, "c", 3, 4)];
        let mut whole = Pending::default();
        whole.add(&events);
        let (mut transfers, mut logins) = (Pending::default(), Pending::default());
        transfers.add_share(&events, Share::Transfers);
        logins.add_share(&events, Share::Logins);
        assert!(transfers.tables[1].is_empty() && logins.tables[0].is_empty() && logins.clients.is_empty());
        let mut sum = Pending::default();
        for part in [&transfers, &logins] {
            for (table, of) in
                sum.tables.iter_mut().chain([&mut sum.clients]).zip(part.tables.iter().chain([&part.clients]))
            {
                for (key, values) in of {
                    let row = table.entry(key.clone()).or_insert_with(|| vec![0; values.len()]);
                    row.iter_mut().zip(values).for_each(|(s, v)| *s += v);
                }
            }
        }
        assert_eq!(rows(&sum), rows(&whole));
        transfers.remove_share(&events, Share::Transfers);
        logins.remove_share(&events, Share::Logins);
        assert!(rows(&transfers).iter().chain(rows(&logins).iter()).all(Vec::is_empty));
    }

    #[test]
    fn rollup_targets_copy_the_columns_their_upserts_name() {
        for t in TARGETS.iter() {
            let copied = t.copy.split(['(', ')']).nth(1).expect("column list");
            assert!(t.upsert.contains(copied), "{} / {}", t.copy, t.upsert);
        }
        assert_eq!(TARGETS[2].day, 1);
        assert!(TARGETS[3].probe.contains("t.day = g.a::date AND t.server_host = g.b)"), "{}", TARGETS[3].probe);
    }

    #[test]
    fn joined_keys_sort_as_their_columns_and_merge_by_adding() {
        let mut keys = [["ab", "c"], ["a", "bc"], ["a", ""], ["", "z"]];
        let mut joined_keys: Vec<String> = keys.iter().map(|k| joined(k.iter().copied())).collect();
        keys.sort();
        joined_keys.sort();
        assert_eq!(joined_keys, keys.map(|k| joined(k.into_iter())));
        let mut table = Rows::default();
        let mut key = String::new();
        merge(&mut table, &mut key, ["2026-05-01", "u"].into_iter(), &[1, 10]);
        merge(&mut table, &mut key, ["2026-05-01", "u"].into_iter(), &[2, 5]);
        assert_eq!(table.len(), 1);
        assert_eq!(table["2026-05-01\0u"], [3, 15]);
    }
}
