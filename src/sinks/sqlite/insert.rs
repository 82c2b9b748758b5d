//! Raw rows and their rollup deltas, as one commit inserts them.

use std::collections::HashMap;

use rusqlite::Connection;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::bind::{Binding, RawStatement};
use super::query::DIALECT;
use super::SqliteStore;
use crate::model::{Event, Origin, Transfer};
use crate::rollup::{self, Deltas, Metric, Table, Totals};
use crate::sinks::Committed;

impl SqliteStore {
    /// Inserts events and adds what the inserted ones add to the rollups
    /// to `totals` ([`write_totals`] writes them), through `stmts`
    /// (prepared on first use, then kept with the connection). In fast mode
    /// transfers go 32 to a statement and `None` is returned if a group
    /// turns out to be partly stored already (a re-read overlap), `totals`
    /// untouched: the caller then rolls back and repeats in careful mode,
    /// one row per statement, to learn exactly which rows are new. Every row
    /// records `input`, the ledger fingerprint of the input it came from.
    pub(super) fn insert_events(
        tx: &Connection,
        stmts: &mut Option<Statements>,
        events: &[Event],
        input: Option<u64>,
        ips: &mut IpText,
        careful: bool,
        totals: &mut Totals,
    ) -> rusqlite::Result<Option<Committed>> {
        let stmts = match stmts {
            Some(s) => s,
            None => stmts.insert(Statements::prepare(tx)?),
        };
        // Client addresses as text, for all events first: the bindings
        // below borrow them.
        ips.prepare(events);
        let ips = &*ips;
        let mut new = vec![false; events.len()];
        // The rollup deltas are summed on a thread of their own while
        // SQLite inserts, as if every event were new — which they are but
        // in a re-read overlap, where they are summed again afterwards
        // from the rows inserted.
        let (inserted, speculative) = std::thread::scope(|scope| {
            let helper = (!careful && events.len() >= SPECULATE_EVENTS)
                .then(|| {
                    std::thread::Builder::new()
                        .name("xferstats-sums".into())
                        .spawn_scoped(scope, || sum(events, None, ips))
                        .ok()
                })
                .flatten();
            let inserted = insert_rows(stmts, events, input, ips, careful, &mut new);
            let sums = helper.map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            (inserted, sums)
        });
        let Some(done) = inserted? else { return Ok(None) };
        totals.merge(match speculative {
            Some(sums) if done.dup == 0 => sums,
            _ => sum(events, Some(&new), ips),
        });
        Ok(Some(done))
    }
}

/// Events of a commit from which its rollup deltas are summed on a thread
/// of their own (fewer are not worth starting one).
const SPECULATE_EVENTS: usize = 1024;

/// Inserts the rows of `events` and marks in `new` those inserted; `None`
/// in fast mode when a group of transfers is partly stored already (see
/// [`SqliteStore::insert_events`]).
fn insert_rows(
    stmts: &mut Statements,
    events: &[Event],
    input: Option<u64>,
    ips: &IpText,
    careful: bool,
    new: &mut [bool],
) -> rusqlite::Result<Option<Committed>> {
    let mut done = Committed::default();
    let input = input.map(|f| f as i64);
    // Transfers go in multi-row statements (fewer statement executions);
    // the rows changed say which were inserted, and those alone feed the
    // rollup.
    let transfers: Vec<(usize, &Transfer)> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Event::Transfer(t) => Some((i, t)),
            Event::Login(_) => None,
        })
        .collect();
    for group in transfers.chunks(ROWS_PER_INSERT) {
        if group.len() == ROWS_PER_INSERT && !careful {
            let mut b = stmts.multi.bind();
            for (i, (_, t)) in group.iter().enumerate() {
                bind_transfer(&mut b, i * TRANSFER_COLS, t, input, ips);
            }
            let n = b.execute()?;
            if n != group.len() && n != 0 {
                return Ok(None);
            }
            group.iter().for_each(|(i, _)| new[*i] = n != 0);
        } else {
            for (i, t) in group {
                let mut b = stmts.single.bind();
                bind_transfer(&mut b, 0, t, input, ips);
                new[*i] = b.execute()? == 1;
            }
        }
    }
    for (i, ev) in events.iter().enumerate() {
        let Event::Login(l) = ev else { continue };
        let o = l.origin.as_deref();
        let ip = ips.get(l.client_ip, o.and_then(|o| o.ip_prefix));
        let mut b = stmts.login.bind();
        b.int(1, Some(l.id as i64));
        b.int(2, Some(l.time));
        b.text(3, Some(l.protocol.as_str()));
        b.text(4, Some(&l.user));
        b.text(5, ip);
        b.text(6, l.client_host.as_deref());
        b.text(7, Some(l.outcome.as_str()));
        b.text(8, l.method.as_deref());
        b.text(9, l.session.as_deref());
        b.text(10, Some(&l.server_host));
        b.text(11, Some(l.source.as_str()));
        bind_origin(&mut b, 11, o);
        b.int(18, input);
        new[i] = b.execute()? == 1;
    }
    for n in &*new {
        if *n {
            done.new += 1;
        } else {
            done.dup += 1;
        }
    }
    Ok(Some(done))
}

/// The rollup rows and the clients per day of `events`, of those marked in
/// `new` if given (the rows a commit inserted).
fn sum(events: &[Event], new: Option<&[bool]>, ips: &IpText) -> Totals {
    let mut deltas = Deltas::default();
    let mut clients = Clients::default();
    for (i, ev) in events.iter().enumerate() {
        if new.is_some_and(|n| !n[i]) {
            continue;
        }
        let (time, ip, origin, host) = match ev {
            Event::Transfer(t) => {
                deltas.transfer(t);
                (t.end, t.client_ip, t.origin.as_deref(), t.client_host.as_deref())
            }
            Event::Login(l) => {
                deltas.login(l);
                (l.time, l.client_ip, l.origin.as_deref(), l.client_host.as_deref())
            }
        };
        let hash = origin.and_then(|o| o.client_hash.as_deref());
        clients.add(time, ips.get(ip, origin.and_then(|o| o.ip_prefix)).or(hash).or(host));
    }
    let mut totals = Totals::default();
    totals.add(&deltas);
    for (day, seen) in &clients.0 {
        let day = crate::time::day_string(day * 86_400_000_000);
        for client in seen {
            totals.add_client(client, &day);
        }
    }
    totals
}

/// Adds the rollup rows of `totals` to the daily tables and forgets them,
/// [`ROLLUP_ROWS`] rows to a statement (the keys of a table's rows are
/// distinct, so each row meets only what is stored).
pub(super) fn write_totals(
    conn: &Connection,
    stmts: &mut Option<Statements>,
    totals: &mut Totals,
) -> rusqlite::Result<()> {
    let stmts = match stmts {
        Some(s) => s,
        None => stmts.insert(Statements::prepare(conn)?),
    };
    for table in Table::ALL {
        let upsert = match table {
            Table::Transfers => &mut stmts.daily_transfers,
            Table::Logins => &mut stmts.daily_logins,
            Table::Values => &mut stmts.daily_values,
        };
        upsert.write(&totals.rows(table), |b, base, (keys, values)| {
            for (i, k) in keys.iter().enumerate() {
                b.text(base + i + 1, Some(k));
            }
            for (i, v) in values.iter().enumerate() {
                b.int(base + keys.len() + i + 1, Some(*v));
            }
        })?;
    }
    stmts.client.write(&totals.clients(), |b, base, (client, day)| {
        b.text(base + 1, Some(client));
        b.text(base + 2, Some(day));
    })?;
    totals.clear();
    Ok(())
}

/// Rows per multi-row rollup statement.
const ROLLUP_ROWS: usize = 32;

/// A rollup write prepared for one row and for [`ROLLUP_ROWS`] rows.
pub(super) struct RowsStatement {
    one: RawStatement,
    many: RawStatement,
    /// Parameters per row.
    cols: usize,
}

impl RowsStatement {
    /// `head VALUES (row)… tail`, rows of `cols` parameters.
    fn prepare(conn: &Connection, head: &str, cols: usize, tail: &str) -> rusqlite::Result<RowsStatement> {
        let sql = |rows: usize| {
            let row = format!("({})", vec!["?"; cols].join(","));
            format!("{head} VALUES {} {tail}", vec![row.as_str(); rows].join(","))
        };
        Ok(RowsStatement {
            one: RawStatement::prepare(conn, &sql(1))?,
            many: RawStatement::prepare(conn, &sql(ROLLUP_ROWS))?,
            cols,
        })
    }

    /// Runs the statement for every row of `rows`, `bind` binding a row's
    /// parameters after parameter `base`.
    fn write<'a, R>(
        &mut self,
        rows: &'a [R],
        bind: impl Fn(&mut Binding<'_, 'a>, usize, &'a R),
    ) -> rusqlite::Result<()> {
        let mut chunks = rows.chunks_exact(ROLLUP_ROWS);
        for chunk in &mut chunks {
            let mut b = self.many.bind();
            for (i, row) in chunk.iter().enumerate() {
                bind(&mut b, i * self.cols, row);
            }
            b.execute()?;
        }
        for row in chunks.remainder() {
            let mut b = self.one.bind();
            bind(&mut b, 0, row);
            b.execute()?;
        }
        Ok(())
    }
}

/// The clients of the rows a commit inserted, per day, as `daily_clients`
/// keeps them (the stored address or network, else the keyed hash, else
/// the host name).
#[derive(Default)]
struct Clients<'a>(HashMap<i64, std::collections::HashSet<&'a str, Xxh3DefaultBuilder>, Xxh3DefaultBuilder>);

impl<'a> Clients<'a> {
    fn add(&mut self, time: i64, client: Option<&'a str>) {
        let Some(c) = client.filter(|c| !c.is_empty()) else { return };
        self.0.entry(crate::time::day_number(time)).or_default().insert(c);
    }
}

/// The upsert of the daily rollup `r`: key values, then values.
fn rollup_upsert(conn: &Connection, r: &rollup::sql::Rollup) -> rusqlite::Result<RowsStatement> {
    let cols = DIALECT.key_count(r) + r.values.len();
    RowsStatement::prepare(conn, &DIALECT.insert_into(r), cols, &DIALECT.add_on_conflict(r))
}

/// Rows per multi-row transfer insert.
const ROWS_PER_INSERT: usize = 32;
/// Bound columns per transfer row.
const TRANSFER_COLS: usize = 25;

/// One row of the transfer insert. Low-cardinality text columns are bound
/// as small integers and turned into string constants by SQLite (no copy
/// per row); the codes are the `code()`s of the model enums.
const TRANSFER_ROW: &str = "(?,?,?,\
    CASE ? WHEN 0 THEN 'rsync' WHEN 1 THEN 'sftp' WHEN 2 THEN 'scp' WHEN 3 THEN 'ftp' WHEN 4 THEN 'ftps' \
    WHEN 5 THEN 'ssh' ELSE 'http' END,\
    CASE ? WHEN 0 THEN 'upload' WHEN 1 THEN 'download' ELSE 'delete' END,\
    CASE ? WHEN 0 THEN 'completed' WHEN 1 THEN 'interrupted' ELSE 'failed' END,\
    ?,?,?,?,?,?,?,?,?,?,?,\
    CASE ? WHEN 0 THEN 'file' ELSE 'session' END,?,?,?,?,?,?,?)";

fn multi_insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT OR IGNORE INTO transfers (event_id, end_us, start_us, protocol, direction, status, bytes, \
         wire_bytes, file_size, path, module, user, client_ip, client_host, session, server_host, source, \
         granularity, country, city, latitude, longitude, geohash, client_hash, input) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str(TRANSFER_ROW);
    }
    sql
}

/// The statements of a commit's rows, prepared once per connection.
pub(super) struct Statements {
    /// [`ROWS_PER_INSERT`] transfers.
    multi: RawStatement,
    /// One transfer.
    single: RawStatement,
    /// One login.
    login: RawStatement,
    /// The upserts of `daily_transfers`, `daily_logins`, `daily_values`
    /// (field, day, v1, v2, then the metrics in [`Metric::ALL`] order).
    daily_transfers: RowsStatement,
    daily_logins: RowsStatement,
    daily_values: RowsStatement,
    /// Clients seen on a day.
    client: RowsStatement,
}

impl Statements {
    fn prepare(conn: &rusqlite::Connection) -> rusqlite::Result<Statements> {
        Ok(Statements {
            multi: RawStatement::prepare(conn, &multi_insert_sql(ROWS_PER_INSERT))?,
            single: RawStatement::prepare(conn, &multi_insert_sql(1))?,
            login: RawStatement::prepare(
                conn,
                "INSERT OR IGNORE INTO logins (event_id, time_us, protocol, user, client_ip, client_host, \
                 outcome, method, session, server_host, source, country, city, latitude, longitude, geohash, \
                 client_hash, input) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
                 ?16, ?17, ?18)",
            )?,
            daily_transfers: rollup_upsert(conn, &rollup::sql::TRANSFERS)?,
            daily_logins: rollup_upsert(conn, &rollup::sql::LOGINS)?,
            daily_values: RowsStatement::prepare(
                conn,
                &DIALECT.values_insert(),
                4 + Metric::ALL.len(),
                &DIALECT.values_on_conflict(),
            )?,
            client: RowsStatement::prepare(conn, "INSERT OR IGNORE INTO daily_clients (client, day)", 2, "")?,
        })
    }
}

/// Binds the columns of transfer `t` from parameter `base + 1` on.
fn bind_transfer<'a>(b: &mut Binding<'_, 'a>, base: usize, t: &'a Transfer, input: Option<i64>, ips: &'a IpText) {
    let p = base + 1;
    let o = t.origin.as_deref();
    b.int(p, Some(t.id as i64));
    b.int(p + 1, Some(t.end));
    b.int(p + 2, t.start);
    b.int(p + 3, Some(t.protocol as i64));
    b.int(p + 4, Some(t.direction as i64));
    b.int(p + 5, Some(t.status as i64));
    b.int(p + 6, Some(t.bytes as i64));
    b.int(p + 7, t.wire_bytes.map(|v| v as i64));
    b.int(p + 8, t.file_size.map(|v| v as i64));
    b.text(p + 9, t.path.as_deref());
    b.text(p + 10, t.module.as_deref());
    b.text(p + 11, Some(&t.user));
    b.text(p + 12, ips.get(t.client_ip, o.and_then(|o| o.ip_prefix)));
    b.text(p + 13, t.client_host.as_deref());
    b.text(p + 14, t.session.as_deref());
    b.text(p + 15, Some(&t.server_host));
    b.text(p + 16, Some(t.source.as_str()));
    b.int(p + 17, Some(t.granularity as i64));
    bind_origin(b, p + 17, o);
    b.int(p + 24, input);
}

/// Binds the enrichment columns (country, city, latitude, longitude,
/// geohash, client hash) from parameter `after + 1` on.
fn bind_origin<'a>(b: &mut Binding<'_, 'a>, after: usize, o: Option<&'a Origin>) {
    b.text(after + 1, o.and_then(|o| o.country.as_deref()));
    b.text(after + 2, o.and_then(|o| o.city.as_deref()));
    b.real(after + 3, o.and_then(|o| o.latitude));
    b.real(after + 4, o.and_then(|o| o.longitude));
    b.text(after + 5, o.and_then(|o| o.geohash.as_deref()));
    b.text(after + 6, o.and_then(|o| o.client_hash.as_deref()));
}

/// Text of client addresses already bound (`addr` or, for a truncated
/// address, `addr/bits`): an import sees each client many times, and
/// formatting an address costs more than a lookup. The texts of a commit's
/// addresses stay while it binds them (SQLite reads them in place); a
/// commit that finds 65,536 or more kept starts over.
#[derive(Default)]
pub(super) struct IpText {
    map: HashMap<(std::net::IpAddr, Option<u8>), String, Xxh3DefaultBuilder>,
}

impl IpText {
    /// Makes the text of every client address of `events` ready for
    /// [`IpText::get`].
    fn prepare(&mut self, events: &[Event]) {
        if self.map.len() >= 65_536 {
            self.map.clear();
        }
        for ev in events {
            let (ip, o) = match ev {
                Event::Transfer(t) => (t.client_ip, t.origin.as_deref()),
                Event::Login(l) => (l.client_ip, l.origin.as_deref()),
            };
            let Some(ip) = ip else { continue };
            let prefix = o.and_then(|o| o.ip_prefix);
            self.map.entry((ip, prefix)).or_insert_with(|| crate::model::ip_text(ip, prefix));
        }
    }

    /// The text of an address [`IpText::prepare`] saw.
    fn get(&self, ip: Option<std::net::IpAddr>, prefix: Option<u8>) -> Option<&str> {
        self.map.get(&(ip?, prefix)).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Direction, Granularity, Login, LoginOutcome, Protocol, Status};
    use crate::sinks::{Admin, Commit, Sink};

    /// Events of many users, clients and days: more rollup rows than
    /// [`ROLLUP_ROWS`], not a multiple of it.
    fn events(from: u64) -> Vec<Event> {
        (from..from + 700)
            .map(|i| {
                let time = 1_700_000_000_000_000 + (i % 9) as i64 * 86_400_000_000 + i as i64;
                let host: Option<std::sync::Arc<str>> = Some(format!("host{}", i % 37).into());
                if i % 3 == 0 {
                    Event::Login(Login {
                        id: i,
                        time,
                        protocol: Protocol::Ssh,
                        user: format!("user{}", i % 23).into(),
                        client_ip: None,
                        client_host: host,
                        outcome: if i % 2 == 0 { LoginOutcome::Ok } else { LoginOutcome::Failed },
                        method: Some("password".into()),
                        session: None,
                        server_host: "h".into(),
                        source: crate::formats::Format::Openssh.source(),
                        origin: None,
                    })
                } else {
                    Event::Transfer(Transfer {
                        id: i,
                        end: time,
                        start: None,
                        protocol: Protocol::Rsync,
                        direction: if i % 2 == 0 { Direction::Upload } else { Direction::Download },
                        status: Status::Completed,
                        bytes: i * 1000,
                        wire_bytes: None,
                        file_size: Some(i * 1000),
                        path: Some(format!("dir{}/f{i}", i % 11)),
                        module: Some(format!("m{}", i % 5).into()),
                        user: format!("user{}", i % 23).into(),
                        client_ip: None,
                        client_host: host,
                        session: None,
                        server_host: "h".into(),
                        source: crate::formats::Format::Rsyncd.source(),
                        granularity: Granularity::File,
                        origin: None,
                    })
                }
            })
            .collect()
    }

    fn dump(conn: &Connection) -> Vec<String> {
        let mut rows = Vec::new();
        for table in ["daily_transfers", "daily_logins", "daily_values", "daily_clients"] {
            let mut st = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
            let n = st.column_count();
            let mut found: Vec<String> = st
                .query_map([], |r| {
                    let cols: Vec<String> =
                        (0..n).map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap())).collect();
                    Ok(format!("{table} {}", cols.join(" ")))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(found.len() > ROLLUP_ROWS, "{table}: {}", found.len());
            found.sort();
            rows.extend(found);
        }
        rows
    }

    /// The rollup rows written 32 to a statement (and the rest one by one),
    /// over two commits that meet each other's keys, are what a rebuild
    /// from the raw rows makes of them.
    #[test]
    fn rollups_written_in_multi_row_statements_equal_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("x.db")).unwrap();
        for from in [0, 700] {
            let events = events(from);
            let c = Commit { events: &events, input: None, checkpoint: None, states: &[], outbox: &[] };
            assert_eq!(store.commit(&c).unwrap().new, 700);
        }
        let written = dump(store.connection());
        store.rebuild_rollups("1970-01-01").unwrap();
        assert_eq!(written, dump(store.connection()));
    }
}
