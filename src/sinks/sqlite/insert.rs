//! Raw rows and their rollup deltas, as one commit inserts them.

use std::collections::HashMap;

use rusqlite::{params, Transaction};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::query::DIALECT;
use super::SqliteStore;
use crate::model::{Event, Transfer};
use crate::rollup::{self, Deltas, Metric};
use crate::sinks::Committed;

impl SqliteStore {
    /// Inserts events and updates rollups. In fast mode transfers go 32 to a
    /// statement and `None` is returned if a group turns out to be partly
    /// stored already (a re-read overlap): the caller then rolls back and
    /// repeats in careful mode, one row per statement, to learn exactly
    /// which rows are new. Every row records `input`, the ledger
    /// fingerprint of the input it came from.
    pub(super) fn insert_events(
        tx: &Transaction<'_>,
        events: &[Event],
        input: Option<u64>,
        ips: &mut IpText,
        careful: bool,
    ) -> rusqlite::Result<Option<Committed>> {
        let mut done = Committed::default();
        let mut deltas = Deltas::default();
        let mut clients = Clients::default();

        // Transfers go in multi-row statements (fewer statement executions);
        // RETURNING names the rows actually inserted, which alone feed the
        // rollup.
        let transfers: Vec<&Transfer> = events
            .iter()
            .filter_map(|e| match e {
                Event::Transfer(t) => Some(t),
                Event::Login(_) => None,
            })
            .collect();
        static MULTI: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| multi_insert_sql(ROWS_PER_INSERT));
        static SINGLE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| multi_insert_sql(1));
        let mut multi = tx.prepare_cached(&MULTI)?;
        let mut single = tx.prepare_cached(&SINGLE)?;
        let mut inserted: Vec<bool> = Vec::with_capacity(ROWS_PER_INSERT);
        for group in transfers.chunks(ROWS_PER_INSERT) {
            inserted.clear();
            if group.len() == ROWS_PER_INSERT && !careful {
                for (i, t) in group.iter().enumerate() {
                    bind_transfer(&mut multi, i * TRANSFER_COLS, t, input, ips)?;
                }
                let n = multi.raw_execute()?;
                if n != group.len() && n != 0 {
                    return Ok(None);
                }
                inserted.resize(group.len(), n != 0);
            } else {
                for t in group {
                    bind_transfer(&mut single, 0, t, input, ips)?;
                    inserted.push(single.raw_execute()? == 1);
                }
            }
            for (t, new) in group.iter().zip(&inserted) {
                if *new {
                    done.new += 1;
                    deltas.transfer(t);
                    let o = t.origin.as_deref();
                    let hash = o.and_then(|o| o.client_hash.as_deref());
                    let ip = ips.text(t.client_ip, o.and_then(|o| o.ip_prefix));
                    clients.add(t.end, ip.or(hash).or(t.client_host.as_deref()));
                } else {
                    done.dup += 1;
                }
            }
        }

        let mut l_stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO logins (event_id, time_us, protocol, user, client_ip, client_host, \
             outcome, method, session, server_host, source, country, city, latitude, longitude, geohash, \
             client_hash, input) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18)",
        )?;
        for ev in events {
            let Event::Login(l) = ev else { continue };
            let o = l.origin.as_deref();
            let n = l_stmt.execute(params![
                l.id as i64,
                l.time,
                l.protocol.as_str(),
                l.user,
                ips.text(l.client_ip, o.and_then(|o| o.ip_prefix)),
                l.client_host,
                l.outcome.as_str(),
                l.method,
                l.session,
                l.server_host,
                l.source.as_str(),
                o.and_then(|o| o.country.as_deref()),
                o.and_then(|o| o.city.as_deref()),
                o.and_then(|o| o.latitude),
                o.and_then(|o| o.longitude),
                o.and_then(|o| o.geohash.as_deref()),
                o.and_then(|o| o.client_hash.as_deref()),
                input.map(|f| f as i64),
            ])?;
            if n == 1 {
                done.new += 1;
                deltas.login(l);
                let hash = o.and_then(|o| o.client_hash.as_deref());
                let ip = ips.text(l.client_ip, o.and_then(|o| o.ip_prefix));
                clients.add(l.time, ip.or(hash).or(l.client_host.as_deref()));
            } else {
                done.dup += 1;
            }
        }
        add_deltas(tx, &deltas)?;
        let mut stmt = tx.prepare_cached("INSERT OR IGNORE INTO daily_clients (client, day) VALUES (?1, ?2)")?;
        for (day, seen) in &clients.0 {
            let day = crate::time::day_string(day * 86_400_000_000);
            for client in seen {
                stmt.execute(params![client, day])?;
            }
        }
        Ok(Some(done))
    }
}

/// The clients of the rows a commit inserted, per day, as `daily_clients`
/// keeps them (the stored address or network, else the keyed hash, else
/// the host name).
#[derive(Default)]
struct Clients(HashMap<i64, std::collections::HashSet<String, Xxh3DefaultBuilder>, Xxh3DefaultBuilder>);

impl Clients {
    fn add(&mut self, time: i64, client: Option<&str>) {
        let Some(c) = client.filter(|c| !c.is_empty()) else { return };
        let seen = self.0.entry(crate::time::day_number(time)).or_default();
        // Most events are of a client already seen: no allocation for those.
        if !seen.contains(c) {
            seen.insert(c.to_string());
        }
    }
}

/// Adds the rollup deltas to the daily tables.
fn add_deltas(tx: &Transaction<'_>, deltas: &Deltas<'_>) -> rusqlite::Result<()> {
    static SQL: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
        [&rollup::sql::TRANSFERS, &rollup::sql::LOGINS].map(|r| {
            let n = DIALECT.key_count(r) + r.values.len();
            let params: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
            format!("{} VALUES ({}) {}", DIALECT.insert_into(r), params.join(", "), DIALECT.add_on_conflict(r))
        })
    });
    let mut stmt = tx.prepare_cached(&SQL[0])?;
    for (key, sums) in deltas.transfers() {
        let row = rollup::transfer_row(key);
        bind_row(&mut stmt, &row, &[sums.transfers, sums.bytes])?;
    }
    let mut stmt = tx.prepare_cached(&SQL[1])?;
    for (key, n) in deltas.logins() {
        bind_row(&mut stmt, &rollup::login_row(key), &[*n])?;
    }
    static VALUES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let params: Vec<String> = (1..=4 + Metric::ALL.len()).map(|i| format!("?{i}")).collect();
        format!("{} VALUES ({}) {}", DIALECT.values_insert(), params.join(", "), DIALECT.values_on_conflict())
    });
    let mut stmt = tx.prepare_cached(&VALUES)?;
    for (key, m) in deltas.values() {
        bind_row(&mut stmt, &key.row(), &Metric::ALL.map(|x| x.of(m) as i64))?;
    }
    Ok(())
}

/// Runs an upsert with the key values `keys`, then `values`.
fn bind_row(
    stmt: &mut rusqlite::CachedStatement<'_>,
    keys: &[std::borrow::Cow<'_, str>],
    values: &[i64],
) -> rusqlite::Result<()> {
    for (i, k) in keys.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, k.as_ref())?;
    }
    for (i, v) in values.iter().enumerate() {
        stmt.raw_bind_parameter(keys.len() + i + 1, v)?;
    }
    stmt.raw_execute().map(|_| ())
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

fn bind_transfer(
    stmt: &mut rusqlite::CachedStatement<'_>,
    base: usize,
    t: &Transfer,
    input: Option<u64>,
    ips: &mut IpText,
) -> rusqlite::Result<()> {
    let b = base + 1;
    stmt.raw_bind_parameter(b, t.id as i64)?;
    stmt.raw_bind_parameter(b + 1, t.end)?;
    stmt.raw_bind_parameter(b + 2, t.start)?;
    stmt.raw_bind_parameter(b + 3, t.protocol as i64)?;
    stmt.raw_bind_parameter(b + 4, t.direction as i64)?;
    stmt.raw_bind_parameter(b + 5, t.status as i64)?;
    stmt.raw_bind_parameter(b + 6, t.bytes as i64)?;
    stmt.raw_bind_parameter(b + 7, t.wire_bytes.map(|v| v as i64))?;
    stmt.raw_bind_parameter(b + 8, t.file_size.map(|v| v as i64))?;
    stmt.raw_bind_parameter(b + 9, t.path.as_deref())?;
    stmt.raw_bind_parameter(b + 10, t.module.as_deref())?;
    stmt.raw_bind_parameter(b + 11, &*t.user)?;
    let o = t.origin.as_deref();
    stmt.raw_bind_parameter(b + 12, ips.text(t.client_ip, o.and_then(|o| o.ip_prefix)))?;
    stmt.raw_bind_parameter(b + 13, t.client_host.as_deref())?;
    stmt.raw_bind_parameter(b + 14, t.session.as_deref())?;
    stmt.raw_bind_parameter(b + 15, &*t.server_host)?;
    stmt.raw_bind_parameter(b + 16, t.source.as_str())?;
    stmt.raw_bind_parameter(b + 17, t.granularity as i64)?;
    stmt.raw_bind_parameter(b + 18, o.and_then(|o| o.country.as_deref()))?;
    stmt.raw_bind_parameter(b + 19, o.and_then(|o| o.city.as_deref()))?;
    stmt.raw_bind_parameter(b + 20, o.and_then(|o| o.latitude))?;
    stmt.raw_bind_parameter(b + 21, o.and_then(|o| o.longitude))?;
    stmt.raw_bind_parameter(b + 22, o.and_then(|o| o.geohash.as_deref()))?;
    stmt.raw_bind_parameter(b + 23, o.and_then(|o| o.client_hash.as_deref()))?;
    stmt.raw_bind_parameter(b + 24, input.map(|f| f as i64))?;
    Ok(())
}

/// Text of client addresses already bound (`addr` or, for a truncated
/// address, `addr/bits`): an import sees each client many times, and
/// formatting an address costs more than a lookup. Bounded: it starts over
/// past 65,536 addresses.
#[derive(Default)]
pub(super) struct IpText {
    map: HashMap<(std::net::IpAddr, Option<u8>), String, Xxh3DefaultBuilder>,
}

impl IpText {
    fn text(&mut self, ip: Option<std::net::IpAddr>, prefix: Option<u8>) -> Option<&str> {
        let key = (ip?, prefix);
        if !self.map.contains_key(&key) {
            if self.map.len() >= 65_536 {
                self.map.clear();
            }
            let text = crate::model::ip_text(key.0, prefix);
            self.map.insert(key, text);
        }
        self.map.get(&key).map(String::as_str)
    }
}
