//! The PostgreSQL store: for years of history and several ingesting hosts.
//!
//! Each commit is one transaction holding the events, their rollup deltas,
//! the ledger and the open sessions. Events are streamed with binary COPY
//! (rows encoded here into large buffers and written through the blocking
//! `postgres` wrapper of tokio-postgres' COPY, since the store runs on its
//! own thread). Two paths, one result:
//!
//! * **fast path** — COPY straight into the month-partitioned raw tables;
//!   the primary key `(time, event_id)` refuses the whole COPY if any event
//!   is already stored (or being stored by a concurrent ingest, which it
//!   waits for). If it succeeds every event was new, so the rollup deltas
//!   are computed here from the batch and upserted in a few statements.
//! * **exact path** — on that refusal (SQLSTATE 23505) the transaction is
//!   rolled back and redone through a temporary stage table: COPY into the
//!   stage, then one statement moves it with `INSERT … ON CONFLICT DO
//!   NOTHING RETURNING` and feeds exactly the rows it inserted into the
//!   rollups.
//!
//! Re-imports, rotated copies and two concurrent ingests of the same lines
//! never double count: a row is counted only by the transaction that
//! inserted it. The fast path exists because the stage costs PostgreSQL
//! three times the work per row (measured: README, Performance).
//!
//! Month partitions are created on demand (in a short transaction of their
//! own, under an advisory lock, before the data transaction); there is no
//! default partition. Retention drops whole partitions.
//!
//! Every statement is fixed text with bound parameters or COPY; the only
//! text built at run time is partition names and bounds, made from integers.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use ::postgres::{Client, NoTls, Transaction};

use super::{
    Admin, Aggregate, Checkpoint, Commit, Committed, Group, Key, LedgerEntry, Pruned, RekeyState, Sink, Store,
};
use crate::config::PgSpec;
use crate::enrich::hostkey::{HostKey, ID_SCHEME};
use crate::error::StoreError;
use crate::model::{client_key, Event, Login, Transfer};
use crate::time::{day_number, day_string};

/// Schema migrations, applied in order; the index + 1 is the version.
const MIGRATIONS: &[&str] =
    &[include_str!("../../sql/postgres/0001_init.sql"), include_str!("../../sql/postgres/0002_store_meta.sql")];
/// Advisory lock held while migrating ("xfstat" + 1).
const MIGRATION_LOCK: i64 = 0x7866_7374_6174_0001;
/// Advisory lock held while creating partitions.
const PARTITION_LOCK: i64 = 0x7866_7374_6174_0002;
/// Unix µs of PostgreSQL's epoch, 2000-01-01 00:00 UTC.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// Raw tables and the time column they are partitioned by.
const RAW_TABLES: [(&str, &str); 2] = [("transfers", "end_ts"), ("logins", "time_ts")];

/// A PostgreSQL store.
pub struct PgStore {
    client: Client,
    target: String,
    /// Months (year × 12 + month − 1) whose partitions exist.
    months: HashSet<i64>,
    staged: bool,
}

/// Moves the staged transfers into the raw table and rolls up exactly the
/// rows inserted.
const MOVE_TRANSFERS: &str = "\
WITH ins AS (
    INSERT INTO transfers SELECT * FROM stage_transfers ON CONFLICT DO NOTHING
    RETURNING end_ts, server_host, protocol, direction, status, module, username, bytes,
              COALESCE(abbrev(client_ip), client_hash, client_host) AS client),
roll AS (
    INSERT INTO daily_transfers AS d (day, server_host, protocol, direction, status, module, username, transfers, bytes)
    SELECT (end_ts AT TIME ZONE 'UTC')::date, server_host, protocol, direction, status, COALESCE(module, ''),
           username, count(*), sum(bytes)::bigint
    FROM ins GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (day, server_host, protocol, direction, status, module, username)
    DO UPDATE SET transfers = d.transfers + EXCLUDED.transfers, bytes = d.bytes + EXCLUDED.bytes),
cl AS (
    INSERT INTO daily_clients (day, server_host, client)
    SELECT DISTINCT (end_ts AT TIME ZONE 'UTC')::date, server_host, client FROM ins WHERE client IS NOT NULL
    ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING)
SELECT count(*) FROM ins";

/// The same for logins.
const MOVE_LOGINS: &str = "\
WITH ins AS (
    INSERT INTO logins SELECT * FROM stage_logins ON CONFLICT DO NOTHING
    RETURNING time_ts, server_host, protocol, username, outcome,
              COALESCE(abbrev(client_ip), client_hash, client_host) AS client),
roll AS (
    INSERT INTO daily_logins AS d (day, server_host, protocol, username, outcome, logins)
    SELECT (time_ts AT TIME ZONE 'UTC')::date, server_host, protocol, username, outcome, count(*)
    FROM ins GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (day, server_host, protocol, username, outcome) DO UPDATE SET logins = d.logins + EXCLUDED.logins),
cl AS (
    INSERT INTO daily_clients (day, server_host, client)
    SELECT DISTINCT (time_ts AT TIME ZONE 'UTC')::date, server_host, client FROM ins WHERE client IS NOT NULL
    ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING)
SELECT count(*) FROM ins";

/// Maps a driver error to a store error naming the database (no password)
/// and the step that failed.
fn pg_err<'a>(target: &'a str, what: &'static str) -> impl Fn(::postgres::Error) -> StoreError + 'a {
    move |source| StoreError::Postgres { target: target.to_string(), what, source }
}

/// Month index (year × 12 + month − 1) of a Unix µs time.
fn month_of(us: i64) -> i64 {
    let days = us.div_euclid(86_400_000_000);
    let (y, m, _) = crate::time::civil_from_days(days);
    y as i64 * 12 + (m as i64 - 1)
}

fn month_start(idx: i64) -> String {
    format!("{:04}-{:02}-01 00:00:00+00", idx.div_euclid(12), idx.rem_euclid(12) + 1)
}

/// Unix µs of the start of month `idx`.
fn month_start_us(idx: i64) -> i64 {
    let (y, m) = (idx.div_euclid(12), idx.rem_euclid(12) + 1);
    crate::time::days_from_civil(y as i32, m as u32, 1) * 86_400_000_000
}

fn partition_name(table: &str, idx: i64) -> String {
    format!("{table}_y{:04}m{:02}", idx.div_euclid(12), idx.rem_euclid(12) + 1)
}

/// The month index a partition name stands for.
fn partition_month(table: &str, name: &str) -> Option<i64> {
    let rest = name.strip_prefix(table)?.strip_prefix("_y")?;
    let (y, m) = rest.split_once('m')?;
    let (y, m): (i64, i64) = (y.parse().ok()?, m.parse().ok()?);
    (1..=12).contains(&m).then_some(y * 12 + m - 1)
}

impl PgStore {
    /// Connects, and creates or migrates the schema.
    pub fn open(spec: &PgSpec) -> Result<PgStore, StoreError> {
        let target = spec.describe.clone();
        let client = spec.config.connect(NoTls).map_err(|source| StoreError::Postgres {
            target: target.clone(),
            what: "connect",
            source,
        })?;
        let mut store = PgStore { client, target, months: HashSet::new(), staged: false };
        store
            .client
            .batch_execute("SET TIME ZONE 'UTC'; SET client_min_messages = warning")
            .map_err(store.err("set up the session"))?;
        store.migrate()?;
        Ok(store)
    }

    fn err(&self, what: &'static str) -> impl Fn(::postgres::Error) -> StoreError + '_ {
        move |source| StoreError::Postgres { target: self.target.clone(), what, source }
    }

    /// Applies pending migrations under an advisory lock (several ingesters
    /// may start at once); refuses a database from a newer binary.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        self.client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).map_err(err("take migration lock"))?;
        let result = (|| {
            let mut tx = self.client.transaction().map_err(err("begin migration"))?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
                .map_err(err("create schema_version"))?;
            let current: i32 = tx
                .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
                .map_err(err("read schema version"))?
                .get(0);
            let supported = MIGRATIONS.len() as i64;
            if current as i64 > supported {
                return Err(StoreError::NewerPgSchema { target: target.clone(), found: current as i64, supported });
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
                tx.batch_execute(sql).map_err(err("apply migration"))?;
                tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&(i as i32 + 1)])
                    .map_err(err("record migration"))?;
            }
            tx.commit().map_err(err("commit migration"))
        })();
        let unlock = self.client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
        result?;
        unlock.map_err(err("release migration lock"))?;
        Ok(())
    }

    /// Creates the partitions of the months these events fall in.
    fn ensure_partitions(&mut self, events: &[Event]) -> Result<(), StoreError> {
        let mut missing: Vec<i64> =
            events.iter().map(|e| month_of(e.time())).filter(|m| !self.months.contains(m)).collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let mut tx = self.client.transaction().map_err(err("begin partition creation"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK]).map_err(err("take partition lock"))?;
        for &m in &missing {
            for (table, _) in RAW_TABLES {
                // Names and bounds are made from integers only.
                tx.batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {} PARTITION OF {table} FOR VALUES FROM ('{}') TO ('{}')",
                    partition_name(table, m),
                    month_start(m),
                    month_start(m + 1)
                ))
                .map_err(err("create partition"))?;
            }
        }
        tx.commit().map_err(err("commit partition creation"))?;
        self.months.extend(missing);
        Ok(())
    }
}

/// Rows in PostgreSQL's binary COPY format, encoded straight into a
/// buffer that is sent in large writes (tokio-postgres' `BinaryCopyInWriter`
/// costs a blocking round through the driver's runtime per row, which was
/// 40 % of the store thread's time).
struct CopyBuf {
    buf: Vec<u8>,
}

impl CopyBuf {
    const FLUSH_AT: usize = 1 << 20;

    fn new() -> CopyBuf {
        let mut buf = Vec::with_capacity(Self::FLUSH_AT + 4096);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        CopyBuf { buf }
    }
    fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }
    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.i64(v),
            None => self.null(),
        }
    }
    fn ts(&mut self, us: i64) {
        self.i64(us - PG_EPOCH_US);
    }
    fn f64(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.i64(v.to_bits() as i64),
            None => self.null(),
        }
    }
    fn text(&mut self, v: &str) {
        self.buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(v.as_bytes());
    }
    fn opt_text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }
    fn inet(&mut self, ip: Option<IpAddr>, prefix: Option<u8>) {
        match ip {
            None => self.null(),
            Some(IpAddr::V4(a)) => {
                self.buf.extend_from_slice(&8i32.to_be_bytes());
                self.buf.extend_from_slice(&[2, prefix.unwrap_or(32).min(32), 0, 4]);
                self.buf.extend_from_slice(&a.octets());
            }
            Some(IpAddr::V6(a)) => {
                self.buf.extend_from_slice(&20i32.to_be_bytes());
                self.buf.extend_from_slice(&[3, prefix.unwrap_or(128).min(128), 0, 16]);
                self.buf.extend_from_slice(&a.octets());
            }
        }
    }
    fn flush_if_full(&mut self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        if self.buf.len() >= Self::FLUSH_AT {
            w.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
    fn finish(mut self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        w.write_all(&self.buf)
    }
}

/// Why a COPY failed: the server's error when there is one (a unique
/// violation must stay recognisable), else the I/O error.
fn copy_error(e: std::io::Error) -> CopyError {
    match e.into_inner().map(|inner| inner.downcast::<::postgres::Error>()) {
        Some(Ok(pg)) => CopyError::Pg(*pg),
        Some(Err(_)) | None => CopyError::Io,
    }
}

enum CopyError {
    Pg(::postgres::Error),
    Io,
}

/// COPYs the batch's transfers (or logins) into `table` (the raw table or
/// the stage; a fixed name, never log text).
fn copy_events(
    tx: &mut Transaction<'_>,
    table: &'static str,
    events: &[Event],
    logins: bool,
) -> Result<u64, ::postgres::Error> {
    copy_rows(tx, &format!("COPY {table} FROM STDIN (FORMAT binary)"), |b, w| {
        for ev in events {
            match ev {
                Event::Transfer(t) if !logins => encode_transfer(b, t),
                Event::Login(l) if logins => encode_login(b, l),
                _ => continue,
            }
            b.flush_if_full(w)?;
        }
        Ok(())
    })
}

/// Runs the binary `COPY … FROM STDIN` statement `sql` with the rows
/// `encode` writes (flushing full buffers to the writer it is given).
fn copy_rows(
    tx: &mut Transaction<'_>,
    sql: &str,
    encode: impl FnOnce(&mut CopyBuf, &mut ::postgres::CopyInWriter<'_>) -> std::io::Result<()>,
) -> Result<u64, ::postgres::Error> {
    let mut w = tx.copy_in(sql)?;
    let mut b = CopyBuf::new();
    let written = encode(&mut b, &mut w).and_then(|()| b.finish(&mut w));
    match written.map_err(copy_error) {
        Ok(()) => w.finish(),
        Err(CopyError::Pg(e)) => Err(e),
        // An I/O error that is not the server's: finishing reports the
        // server side of it (the COPY is aborted either way).
        Err(CopyError::Io) => w.finish(),
    }
}

fn copy_transfers(tx: &mut Transaction<'_>, table: &'static str, events: &[Event]) -> Result<u64, ::postgres::Error> {
    copy_events(tx, table, events, false)
}

fn copy_logins(tx: &mut Transaction<'_>, table: &'static str, events: &[Event]) -> Result<u64, ::postgres::Error> {
    copy_events(tx, table, events, true)
}

fn encode_transfer(b: &mut CopyBuf, t: &Transfer) {
    let o = t.origin.as_deref();
    b.row(24);
    b.ts(t.end);
    b.i64(t.id as i64);
    match t.start {
        Some(s) => b.ts(s),
        None => b.null(),
    }
    b.text(t.protocol.as_str());
    b.text(t.direction.as_str());
    b.text(t.status.as_str());
    b.i64(t.bytes as i64);
    b.opt_i64(t.wire_bytes.map(|v| v as i64));
    b.opt_i64(t.file_size.map(|v| v as i64));
    b.opt_text(t.path.as_deref());
    b.opt_text(t.module.as_deref());
    b.text(&t.user);
    b.inet(t.client_ip, o.and_then(|o| o.ip_prefix));
    b.opt_text(t.client_host.as_deref());
    b.opt_text(t.session.as_deref());
    b.text(&t.server_host);
    b.text(t.source.as_str());
    b.text(if t.granularity == crate::model::Granularity::File { "file" } else { "session" });
    b.opt_text(o.and_then(|o| o.country.as_deref()));
    b.opt_text(o.and_then(|o| o.city.as_deref()));
    b.f64(o.and_then(|o| o.latitude));
    b.f64(o.and_then(|o| o.longitude));
    b.opt_text(o.and_then(|o| o.geohash.as_deref()));
    b.opt_text(o.and_then(|o| o.client_hash.as_deref()));
}

fn encode_login(b: &mut CopyBuf, l: &Login) {
    let o = l.origin.as_deref();
    b.row(17);
    b.ts(l.time);
    b.i64(l.id as i64);
    b.text(l.protocol.as_str());
    b.text(&l.user);
    b.inet(l.client_ip, o.and_then(|o| o.ip_prefix));
    b.opt_text(l.client_host.as_deref());
    b.text(l.outcome.as_str());
    b.opt_text(l.method.as_deref());
    b.opt_text(l.session.as_deref());
    b.text(&l.server_host);
    b.text(l.source.as_str());
    b.opt_text(o.and_then(|o| o.country.as_deref()));
    b.opt_text(o.and_then(|o| o.city.as_deref()));
    b.f64(o.and_then(|o| o.latitude));
    b.f64(o.and_then(|o| o.longitude));
    b.opt_text(o.and_then(|o| o.geohash.as_deref()));
    b.opt_text(o.and_then(|o| o.client_hash.as_deref()));
}

impl Sink for PgStore {
    fn describe(&self) -> String {
        self.target.clone()
    }

    fn checkpoint(&mut self, fingerprint: u64) -> Result<Option<Checkpoint>, StoreError> {
        let row = self
            .client
            .query_opt(&format!("SELECT {LEDGER_COLUMNS} FROM ledger WHERE fingerprint = $1"), &[&(fingerprint as i64)])
            .map_err(self.err("read ledger"))?;
        Ok(row.map(|r| checkpoint_of(fingerprint, &r)))
    }

    fn ledger(&mut self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.ledger_entries()
    }

    fn key_ids(&mut self, key: &HostKey, rekey_state: &mut RekeyState<'_>) -> Result<u64, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let mut tx = self.client.transaction().map_err(err("begin id re-keying"))?;
        // One ingester re-keys; the others wait and then find it done.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(err("take migration lock"))?;
        let mut meta = |k: &str| -> Result<Option<String>, ::postgres::Error> {
            Ok(tx.query_opt("SELECT value FROM store_meta WHERE key = $1", &[&k])?.map(|r| r.get(0)))
        };
        let scheme = meta("id_scheme").map_err(err("read id scheme"))?;
        let check = meta("id_key_check").map_err(err("read id scheme"))?;
        if !super::id_scheme_action(&target, scheme, check, key)? {
            return Ok(0);
        }
        let ids = key.id_key();
        let rekey = |v: i64| ids.hash(v as u64) as i64;
        // The new id of every stored id, computed here (the key never
        // reaches the server) and joined in by one UPDATE per table.
        tx.batch_execute(
            "CREATE TEMP TABLE xferstats_rekey (t timestamptz NOT NULL, old bigint NOT NULL, new bigint NOT NULL) \
             ON COMMIT DROP",
        )
        .map_err(err("re-key event ids"))?;
        let mut rows = 0;
        for (table, time) in [("transfers", "end_ts"), ("logins", "time_ts")] {
            let mut stored: Vec<(i64, i64)> = Vec::new();
            let micros = format!("(EXTRACT(EPOCH FROM {time}) * 1000000)::bigint");
            let portal = tx
                .bind(&format!("SELECT {micros}, event_id FROM {table} ORDER BY {time}"), &[])
                .map_err(err("read event ids"))?;
            loop {
                let batch = tx.query_portal(&portal, 65_536).map_err(err("read event ids"))?;
                if batch.is_empty() {
                    break;
                }
                stored.extend(batch.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))));
            }
            tx.batch_execute("TRUNCATE xferstats_rekey").map_err(err("re-key event ids"))?;
            copy_rows(&mut tx, "COPY xferstats_rekey (t, old, new) FROM STDIN (FORMAT binary)", |b, w| {
                for group in stored.chunk_by(|a, b| a.0 == b.0) {
                    let old: Vec<u64> = group.iter().map(|&(_, id)| id as u64).collect();
                    for (new, &(t, id)) in crate::sessions::rekey_unkeyed_ids(&ids, &old).into_iter().zip(group) {
                        b.row(3);
                        b.ts(t);
                        b.i64(id);
                        b.i64(new as i64);
                        b.flush_if_full(w)?;
                    }
                }
                Ok(())
            })
            .map_err(err("re-key event ids"))?;
            rows += tx
                .execute(
                    &format!(
                        "UPDATE {table} x SET event_id = m.new FROM xferstats_rekey m \
                         WHERE x.{time} = m.t AND x.event_id = m.old"
                    ),
                    &[],
                )
                .map_err(err("re-key event ids"))?;
        }
        let ledger: Vec<(i64, i64, String)> = tx
            .query("SELECT fingerprint, tail_hash, ids_state FROM ledger", &[])
            .map_err(err("re-key ledger"))?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        for (fp, tail, state) in ledger {
            // 0 is the tail hash that never matches (after an overlong line).
            let tail = if tail == 0 { 0 } else { rekey(tail) };
            tx.execute(
                "UPDATE ledger SET fingerprint = $1, tail_hash = $2, ids_state = $3 WHERE fingerprint = $4",
                &[&rekey(fp), &tail, &crate::sessions::rekey_ids_state(&ids, &state), &fp],
            )
            .map_err(err("re-key ledger"))?;
        }
        let states: Vec<(String, String)> = tx
            .query("SELECT scope, state FROM session_state", &[])
            .map_err(err("read session state"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for (scope, stored) in states {
            let new =
                rekey_state(&scope, &stored).map_err(|reason| StoreError::State { scope: scope.clone(), reason })?;
            tx.execute("UPDATE session_state SET state = $1 WHERE scope = $2", &[&new, &scope])
                .map_err(err("re-key session state"))?;
        }
        tx.execute(
            "INSERT INTO store_meta (key, value) VALUES ('id_scheme', $1), ('id_key_check', $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&ID_SCHEME, &key.key_check()],
        )
        .map_err(err("record id scheme"))?;
        tx.commit().map_err(err("commit id re-keying"))?;
        if rows > 0 {
            tracing::info!("{target}: re-keyed {rows} event ids written before ids were keyed with the host key");
        }
        Ok(rows)
    }

    fn state(&mut self, scope: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .client
            .query_opt("SELECT state FROM session_state WHERE scope = $1", &[&scope])
            .map_err(self.err("read session state"))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn commit(&mut self, c: &Commit<'_>) -> Result<Committed, StoreError> {
        use ::postgres::error::SqlState;
        self.ensure_partitions(c.events)?;
        // Rollup rows are written in key order, so concurrent ingests
        // rarely deadlock; when they do, the server aborts one transaction
        // and it is simply run again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.commit_fast(c) {
                Err(StoreError::Postgres { source, .. }) if source.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    tracing::debug!("some events are stored already; committing through the stage table");
                    self.commit_exact(c)
                }
                other => other,
            };
            match result {
                Err(StoreError::Postgres { source, .. })
                    if attempt < 5
                        && matches!(source.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED
                            || *c == SqlState::T_R_SERIALIZATION_FAILURE) =>
                {
                    tracing::info!("{source}; retrying the batch (attempt {})", attempt + 1);
                    std::thread::sleep(std::time::Duration::from_millis(50 * attempt));
                }
                other => return other,
            }
        }
    }
}

impl PgStore {
    /// COPY straight into the raw tables; fails with a unique violation if
    /// any event is stored already (nothing is then committed).
    fn commit_fast(&mut self, c: &Commit<'_>) -> Result<Committed, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let started = std::time::Instant::now();
        let mut tx = self.client.transaction().map_err(err("begin transaction"))?;
        let horizon = pruned_before(&mut tx).map_err(err("read prune horizon"))?;
        let (events, skipped) = super::beyond_horizon(c.events, horizon);
        let (n_transfers, n_logins) = count(&events);
        if n_transfers > 0 {
            copy_transfers(&mut tx, "transfers", &events).map_err(err("copy transfers"))?;
        }
        if n_logins > 0 {
            copy_logins(&mut tx, "logins", &events).map_err(err("copy logins"))?;
        }
        let copied = started.elapsed();
        let deltas = Deltas::of(&events);
        deltas.upsert(&mut tx).map_err(err("update rollups"))?;
        let done = Committed { new: n_transfers + n_logins, dup: skipped };
        finish(&mut tx, c, done).map_err(err("update ledger"))?;
        crate::testhook::maybe_crash("commit");
        tx.commit().map_err(err("commit"))?;
        tracing::debug!(events = done.new, ?copied, total = ?started.elapsed(), "committed (COPY)");
        Ok(done)
    }

    /// Through the stage tables: only the events not stored yet are
    /// inserted and rolled up.
    fn commit_exact(&mut self, c: &Commit<'_>) -> Result<Committed, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        if !self.staged {
            self.client
                .batch_execute(
                    "CREATE TEMP TABLE IF NOT EXISTS stage_transfers (LIKE transfers) ON COMMIT DELETE ROWS; \
                     CREATE TEMP TABLE IF NOT EXISTS stage_logins (LIKE logins) ON COMMIT DELETE ROWS",
                )
                .map_err(err("create stage tables"))?;
            self.staged = true;
        }
        let mut tx = self.client.transaction().map_err(err("begin transaction"))?;
        let horizon = pruned_before(&mut tx).map_err(err("read prune horizon"))?;
        let (events, skipped) = super::beyond_horizon(c.events, horizon);
        let (n_transfers, n_logins) = count(&events);
        let mut done = Committed { new: 0, dup: skipped };
        if n_transfers > 0 {
            copy_transfers(&mut tx, "stage_transfers", &events).map_err(err("copy transfers"))?;
            let new: i64 = tx.query_one(MOVE_TRANSFERS, &[]).map_err(err("insert transfers"))?.get(0);
            done.new += new as u64;
            done.dup += n_transfers - new as u64;
        }
        if n_logins > 0 {
            copy_logins(&mut tx, "stage_logins", &events).map_err(err("copy logins"))?;
            let new: i64 = tx.query_one(MOVE_LOGINS, &[]).map_err(err("insert logins"))?.get(0);
            done.new += new as u64;
            done.dup += n_logins - new as u64;
        }
        finish(&mut tx, c, done).map_err(err("update ledger"))?;
        crate::testhook::maybe_crash("commit");
        tx.commit().map_err(err("commit"))?;
        Ok(done)
    }
}

/// The prune horizon (µs), if the store was ever pruned.
fn pruned_before(tx: &mut Transaction<'_>) -> Result<Option<i64>, ::postgres::Error> {
    Ok(tx
        .query_opt("SELECT value FROM store_meta WHERE key = 'pruned_before'", &[])?
        .and_then(|r| r.get::<_, String>(0).parse().ok()))
}

fn count(events: &[Event]) -> (u64, u64) {
    let t = events.iter().filter(|e| matches!(e, Event::Transfer(_))).count() as u64;
    (t, events.len() as u64 - t)
}

/// Ledger and session states, in the commit's transaction.
fn finish(tx: &mut Transaction<'_>, c: &Commit<'_>, done: Committed) -> Result<(), ::postgres::Error> {
    if let Some(cp) = c.checkpoint {
        tx.execute(
            "INSERT INTO ledger (fingerprint, name, format, \"offset\", lines, tail_hash, ids_state, events_new, \
             events_dup, rejected, first_import, last_import) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             now(), now()) ON CONFLICT (fingerprint) DO UPDATE SET name = EXCLUDED.name, \
             format = EXCLUDED.format, \"offset\" = EXCLUDED.\"offset\", lines = EXCLUDED.lines, \
             tail_hash = EXCLUDED.tail_hash, ids_state = EXCLUDED.ids_state, \
             events_new = ledger.events_new + EXCLUDED.events_new, \
             events_dup = ledger.events_dup + EXCLUDED.events_dup, rejected = EXCLUDED.rejected, \
             last_import = EXCLUDED.last_import",
            &[
                &(cp.fingerprint as i64),
                &cp.name,
                &cp.format,
                &(cp.offset as i64),
                &(cp.lines as i64),
                &(cp.tail_hash as i64),
                &cp.ids,
                &(done.new as i64),
                &(done.dup as i64),
                &(cp.rejected as i64),
            ],
        )?;
    }
    for (scope, state) in c.states {
        tx.execute(
            "INSERT INTO session_state (scope, state, updated) VALUES ($1, $2, now()) \
             ON CONFLICT (scope) DO UPDATE SET state = EXCLUDED.state, updated = EXCLUDED.updated",
            &[scope, state],
        )?;
    }
    Ok(())
}

type TransferKey<'a> = (i64, &'a str, &'static str, &'static str, &'static str, &'a str, &'a str);
type LoginKey<'a> = (i64, &'a str, &'static str, &'a str, &'static str);

/// Rollup deltas of a batch whose every event is new.
#[derive(Default)]
struct Deltas<'a> {
    transfers: BTreeMap<TransferKey<'a>, (i64, i64)>,
    logins: BTreeMap<LoginKey<'a>, i64>,
    clients: std::collections::BTreeSet<(i64, &'a str, String)>,
}

impl<'a> Deltas<'a> {
    fn of(events: &'a [Event]) -> Deltas<'a> {
        let mut d = Deltas::default();
        for ev in events {
            match ev {
                Event::Transfer(t) => {
                    let day = day_number(t.end);
                    let e = d
                        .transfers
                        .entry((
                            day,
                            &*t.server_host,
                            t.protocol.as_str(),
                            t.direction.as_str(),
                            t.status.as_str(),
                            t.module.as_deref().unwrap_or(""),
                            t.user.as_str(),
                        ))
                        .or_default();
                    e.0 += 1;
                    e.1 += t.bytes as i64;
                    let o = t.origin.as_deref();
                    if let Some(k) = client_key(
                        t.client_ip,
                        o.and_then(|o| o.ip_prefix),
                        o.and_then(|o| o.client_hash.as_deref()),
                        t.client_host.as_deref(),
                    ) {
                        d.clients.insert((day, &*t.server_host, k));
                    }
                }
                Event::Login(l) => {
                    let day = day_number(l.time);
                    *d.logins
                        .entry((day, &*l.server_host, l.protocol.as_str(), l.user.as_str(), l.outcome.as_str()))
                        .or_default() += 1;
                    let o = l.origin.as_deref();
                    if let Some(k) = client_key(
                        l.client_ip,
                        o.and_then(|o| o.ip_prefix),
                        o.and_then(|o| o.client_hash.as_deref()),
                        l.client_host.as_deref(),
                    ) {
                        d.clients.insert((day, &*l.server_host, k));
                    }
                }
            }
        }
        d
    }

    /// One statement per rollup table, the rows passed as arrays.
    fn upsert(&self, tx: &mut Transaction<'_>) -> Result<(), ::postgres::Error> {
        let day = |d: i64| day_string(d * 86_400_000_000);
        if !self.transfers.is_empty() {
            let n = self.transfers.len();
            let (mut days, mut hosts, mut protos, mut dirs) =
                (Vec::with_capacity(n), Vec::new(), Vec::new(), Vec::new());
            let (mut statuses, mut modules, mut users) = (Vec::new(), Vec::new(), Vec::new());
            let (mut counts, mut bytes) = (Vec::new(), Vec::new());
            for ((d, host, proto, dir, status, module, user), (count, b)) in &self.transfers {
                days.push(day(*d));
                hosts.push(*host);
                protos.push(*proto);
                dirs.push(*dir);
                statuses.push(*status);
                modules.push(*module);
                users.push(*user);
                counts.push(*count);
                bytes.push(*b);
            }
            tx.execute(
                "INSERT INTO daily_transfers AS d (day, server_host, protocol, direction, status, module, username, \
                 transfers, bytes) SELECT day::date, h, p, dir, st, m, u, n, b FROM unnest($1::text[], $2::text[], \
                 $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int8[], $9::int8[]) \
                 AS x(day, h, p, dir, st, m, u, n, b) \
                 ON CONFLICT (day, server_host, protocol, direction, status, module, username) \
                 DO UPDATE SET transfers = d.transfers + EXCLUDED.transfers, bytes = d.bytes + EXCLUDED.bytes",
                &[&days, &hosts, &protos, &dirs, &statuses, &modules, &users, &counts, &bytes],
            )?;
        }
        if !self.logins.is_empty() {
            let (mut days, mut hosts, mut protos) = (Vec::new(), Vec::new(), Vec::new());
            let (mut users, mut outcomes, mut counts) = (Vec::new(), Vec::new(), Vec::new());
            for ((d, host, proto, user, outcome), count) in &self.logins {
                days.push(day(*d));
                hosts.push(*host);
                protos.push(*proto);
                users.push(*user);
                outcomes.push(*outcome);
                counts.push(*count);
            }
            tx.execute(
                "INSERT INTO daily_logins AS d (day, server_host, protocol, username, outcome, logins) \
                 SELECT day::date, h, p, u, o, n FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
                 $5::text[], $6::int8[]) AS x(day, h, p, u, o, n) \
                 ON CONFLICT (day, server_host, protocol, username, outcome) DO UPDATE SET logins = d.logins + \
                 EXCLUDED.logins",
                &[&days, &hosts, &protos, &users, &outcomes, &counts],
            )?;
        }
        if !self.clients.is_empty() {
            let mut cols: (Vec<String>, Vec<&str>, Vec<&str>) = Default::default();
            for (d, host, client) in &self.clients {
                cols.0.push(day(*d));
                cols.1.push(host);
                cols.2.push(client);
            }
            tx.execute(
                "INSERT INTO daily_clients (day, server_host, client) SELECT day::date, h, c \
                 FROM unnest($1::text[], $2::text[], $3::text[]) AS x(day, h, c) ON CONFLICT DO NOTHING",
                &[&cols.0, &cols.1, &cols.2],
            )?;
        }
        Ok(())
    }
}

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
            super::transfer_metrics_sql(count, "::bigint")
        );
        let nk = q.keys.len().max(1);
        let mut out = super::Groups::default();
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
    ) -> Result<Vec<super::DayCount>, StoreError> {
        self.day_counts(&with_raw_dialect(super::top_files_sql), since, until, limit)
    }

    fn failed_transfers(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<super::FailedTransfer>, StoreError> {
        let sql = with_raw_dialect(super::failed_transfers_sql);
        let rows = self.client.query(&sql, &[&since, &until, &i64::from(limit)]).map_err(self.err("run report"))?;
        Ok(rows
            .iter()
            .map(|r| super::FailedTransfer {
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
    ) -> Result<Vec<super::DayCount>, StoreError> {
        self.day_counts(&with_raw_dialect(super::failed_login_clients_sql), since, until, limit)
    }
}

/// The PostgreSQL spelling of the ranked-list queries: `$1`, `$2` the days
/// as in [`time_filter`], `$3` the limit.
fn with_raw_dialect<T>(f: impl FnOnce(&super::RawDialect<'_>) -> T) -> T {
    let transfer_day = raw_col(Key::Day, "end_ts");
    let login_day = raw_col(Key::Day, "time_ts");
    let transfer_range = time_filter("end_ts");
    let login_range = time_filter("time_ts");
    let client = raw_col(Key::Client, "end_ts");
    f(&super::RawDialect {
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
    /// Runs a ranked per-day list query ([`super::DayCount`] columns).
    fn day_counts(
        &mut self,
        sql: &str,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<super::DayCount>, StoreError> {
        let rows = self.client.query(sql, &[&since, &until, &i64::from(limit)]).map_err(self.err("run report"))?;
        Ok(rows
            .iter()
            .map(|r| super::DayCount {
                day: r.get(0),
                key: r.get(1),
                country: r.get(2),
                count: r.get::<_, Option<i64>>(3).unwrap_or(0) as u64,
                bytes: r.get::<_, Option<i64>>(4).unwrap_or(0) as u64,
            })
            .collect())
    }
}

impl Admin for PgStore {
    fn schema_version(&mut self) -> Result<i64, StoreError> {
        let row = self
            .client
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
            .map_err(self.err("read schema version"))?;
        Ok(row.get::<_, i32>(0) as i64)
    }

    fn prune_raw(&mut self, before: i64) -> Result<Pruned, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let cutoff = month_of(before);
        let mut tx = self.client.transaction().map_err(err("begin prune"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK]).map_err(err("take partition lock"))?;
        let mut pruned = Pruned::default();
        for (table, _) in RAW_TABLES {
            let rows = tx
                .query(
                    "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                     JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1 ORDER BY 1",
                    &[&table],
                )
                .map_err(err("list partitions"))?;
            for r in rows {
                let name: String = r.get(0);
                // A partition goes only if its whole month is before the cut.
                let Some(m) = partition_month(table, &name).filter(|m| *m < cutoff) else { continue };
                let n: i64 = tx
                    .query_one(&format!("SELECT count(*) FROM {}", partition_name(table, m)), &[])
                    .map_err(err("count partition rows"))?
                    .get(0);
                tx.batch_execute(&format!("DROP TABLE {}", partition_name(table, m))).map_err(err("drop partition"))?;
                if table == "transfers" {
                    pruned.transfers += n as u64;
                } else {
                    pruned.logins += n as u64;
                }
                pruned.partitions.push(name);
            }
        }
        let old = pruned_before(&mut tx).map_err(err("read prune horizon"))?;
        let horizon = month_start_us(cutoff);
        tx.execute(
            "INSERT INTO store_meta (key, value) VALUES ('pruned_before', $1) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&old.map_or(horizon, |o| o.max(horizon)).to_string()],
        )
        .map_err(err("record prune horizon"))?;
        tx.commit().map_err(err("commit prune"))?;
        self.months.clear();
        Ok(pruned)
    }

    fn rebuild_rollups(&mut self, since: &str) -> Result<u64, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let mut tx = self.client.transaction().map_err(err("begin rebuild"))?;
        // Ingests wait while the rollups are rebuilt, so none is counted
        // twice or lost.
        tx.batch_execute("LOCK TABLE daily_transfers, daily_logins, daily_clients IN EXCLUSIVE MODE")
            .map_err(err("lock rollups"))?;
        let row = tx
            .query_one(
                "SELECT to_char(LEAST((SELECT MIN(end_ts) FROM transfers), (SELECT MIN(time_ts) FROM logins)) \
                 AT TIME ZONE 'UTC', 'YYYY-MM-DD'), \
                 (SELECT to_char(MIN(day), 'YYYY-MM-DD') FROM (SELECT day FROM daily_transfers UNION ALL \
                 SELECT day FROM daily_logins) d WHERE day >= $1::text::date)",
                &[&since],
            )
            .map_err(err("find raw range"))?;
        if let Some(h) = pruned_before(&mut tx).map_err(err("read prune horizon"))? {
            let since_us = crate::time::parse_day(since).map_or(i64::MIN, |d| d * 86_400_000_000);
            if since_us < h {
                return Err(StoreError::Refused(format!(
                    "{}: raw events before {} were pruned; rebuilding from {since} would lose their rollups \
                     (use --since {} or later)",
                    self.target,
                    day_string(h),
                    day_string(h)
                )));
            }
        }
        let raw_first: Option<String> = row.get(0);
        let rollup_first: Option<String> = row.get(1);
        if let Some(r) = rollup_first {
            if raw_first.as_deref().is_none_or(|f| r.as_str() < f) {
                return Err(StoreError::Refused(format!(
                    "{}: the raw events of {r} and later days up to {} were pruned; rebuilding from {since} would \
                     lose their rollups (use --since {})",
                    self.target,
                    raw_first.as_deref().unwrap_or("today"),
                    raw_first.as_deref().unwrap_or("a later day")
                )));
            }
        }
        let mut written = 0u64;
        for sql in [
            "DELETE FROM daily_transfers WHERE day >= $1::text::date",
            "DELETE FROM daily_logins WHERE day >= $1::text::date",
            "DELETE FROM daily_clients WHERE day >= $1::text::date",
        ] {
            tx.execute(sql, &[&since]).map_err(err("clear rollups"))?;
        }
        for sql in [
            "INSERT INTO daily_transfers (day, server_host, protocol, direction, status, module, username, transfers, \
             bytes) SELECT (end_ts AT TIME ZONE 'UTC')::date, server_host, protocol, direction, status, \
             COALESCE(module, ''), username, count(*), sum(bytes)::bigint FROM transfers \
             WHERE end_ts >= ($1::text::date)::timestamp AT TIME ZONE 'UTC' GROUP BY 1, 2, 3, 4, 5, 6, 7",
            "INSERT INTO daily_logins (day, server_host, protocol, username, outcome, logins) \
             SELECT (time_ts AT TIME ZONE 'UTC')::date, server_host, protocol, username, outcome, count(*) \
             FROM logins WHERE time_ts >= ($1::text::date)::timestamp AT TIME ZONE 'UTC' GROUP BY 1, 2, 3, 4, 5",
            "INSERT INTO daily_clients (day, server_host, client) \
             SELECT (end_ts AT TIME ZONE 'UTC')::date, server_host, COALESCE(abbrev(client_ip), client_hash, \
             client_host) FROM transfers WHERE end_ts >= ($1::text::date)::timestamp AT TIME ZONE 'UTC' \
             AND COALESCE(abbrev(client_ip), client_hash, client_host) IS NOT NULL \
             UNION SELECT (time_ts AT TIME ZONE 'UTC')::date, server_host, COALESCE(abbrev(client_ip), \
             client_hash, client_host) FROM logins WHERE time_ts >= ($1::text::date)::timestamp AT TIME ZONE 'UTC' \
             AND COALESCE(abbrev(client_ip), client_hash, client_host) IS NOT NULL",
        ] {
            written += tx.execute(sql, &[&since]).map_err(err("rebuild rollups"))?;
        }
        tx.commit().map_err(err("commit rebuild"))?;
        Ok(written)
    }
}

// The ledger listing of `Sink::ledger` (issue 14: `xferstats status`, the
// follower's catch-up), and the ledger columns it shares with
// `Sink::checkpoint`.

/// The ledger columns [`checkpoint_of`] reads, in its order.
const LEDGER_COLUMNS: &str = "name, format, \"offset\", lines, tail_hash, ids_state, events_new, events_dup, rejected";

/// The [`LEDGER_COLUMNS`] of a row as the checkpoint of `fingerprint`.
fn checkpoint_of(fingerprint: u64, r: &::postgres::Row) -> Checkpoint {
    Checkpoint {
        fingerprint,
        name: r.get(0),
        format: r.get(1),
        offset: r.get::<_, i64>(2) as u64,
        lines: r.get::<_, i64>(3) as u64,
        tail_hash: r.get::<_, i64>(4) as u64,
        ids: r.get(5),
        events_new: r.get::<_, i64>(6) as u64,
        events_dup: r.get::<_, i64>(7) as u64,
        rejected: r.get::<_, i64>(8) as u64,
    }
}

impl PgStore {
    fn ledger_entries(&mut self) -> Result<Vec<LedgerEntry>, StoreError> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {LEDGER_COLUMNS}, fingerprint, \
                     to_char(last_import AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
                     FROM ledger ORDER BY last_import DESC, name"
                ),
                &[],
            )
            .map_err(self.err("list ledger"))?;
        Ok(rows
            .iter()
            .map(|r| LedgerEntry { checkpoint: checkpoint_of(r.get::<_, i64>(9) as u64, r), last_import: r.get(10) })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_partition_names() {
        // 2026-03-01 10:00:00 UTC
        let t = 1_772_359_200_000_000;
        let m = month_of(t);
        assert_eq!(partition_name("transfers", m), "transfers_y2026m03");
        assert_eq!(month_start(m), "2026-03-01 00:00:00+00");
        assert_eq!(month_start(m + 10), "2027-01-01 00:00:00+00");
        assert_eq!(partition_month("transfers", "transfers_y2026m03"), Some(m));
        assert_eq!(partition_month("transfers", "logins_y2026m03"), None);
        assert_eq!(partition_month("transfers", "transfers_y2026m13"), None);
        assert_eq!(month_of(-1), 1969 * 12 + 11);
    }
}
