//! The exactly-once scenarios, each written once and run against every
//! store (SQLite, PostgreSQL, InfluxDB 1.x), as ripgrep's `rgtest!` runs a
//! test per regex engine: `stores::SCENARIO::STORE`.
//!
//! A store under test is a [`Store`]: a fresh empty store whose commands
//! come from its [`Env`], a count of the events it holds, and its own
//! consistency check (rollups equal the raw events; an InfluxDB server
//! holds what its local state reports). Reports compare within one kind of
//! store (`postgres.rs` compares PostgreSQL with SQLite).

use std::io::Write;
use std::ops::Deref;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::influx::{assert_holds, days_of, events_of, fresh_db, held};
use crate::influxd::{influxd, Server};
use crate::pg::{fresh, PgDb};
use crate::util::{fixture, gzip, stderr, synthetic_log, zstd, Env, INGEST};

const BY: &str = "day,user,direction,status,module,client,host";

/// A store under test.
pub trait Store: Deref<Target = Env> + Sized {
    /// A fresh empty store; `None` when its server is not installed and not
    /// required (the harness says SKIPPED).
    fn fresh() -> Option<Self>;
    /// Events (transfers and logins) committed; `None` while the store
    /// cannot be read yet (an import starting).
    fn try_events(&self) -> Option<u64>;
    /// Rollups equal the raw events (InfluxDB: the server's raw and daily
    /// points equal the local state's report too). Not after a prune.
    fn check(&self);
    /// Sets wrong numbers in the rollups (for `rollup --rebuild`).
    fn damage_rollups(&self);
    /// What is particular to the store after `prune` printed `stderr`.
    fn pruned(&self, _stderr: &str) {}

    /// Events committed.
    fn events(&self) -> u64 {
        self.try_events().expect("the store is readable")
    }
}

pub struct Sqlite(Env);

impl Deref for Sqlite {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.0
    }
}

/// Transfers plus logins in the SQLite file `db`.
fn sqlite_events(db: &Path) -> Option<u64> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.query_row("SELECT (SELECT count(*) FROM transfers) + (SELECT count(*) FROM logins)", [], |r| r.get(0)).ok()
}

/// The daily rollups of the SQLite file `db` equal its raw events.
pub fn sqlite_rollups_match_raw(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let q = |sql: &str| -> Vec<(String, i64, i64)> {
        let mut st = conn.prepare(sql).unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(|r| r.unwrap()).collect()
    };
    let raw = q("SELECT date(end_us / 1000000, 'unixepoch') || '/' || server_host || '/' || protocol || '/' || direction || '/' || status || '/' || \
                 COALESCE(module, '') || '/' || user, COUNT(*), SUM(bytes) FROM transfers GROUP BY 1 ORDER BY 1");
    let roll = q("SELECT day || '/' || server_host || '/' || protocol || '/' || direction || '/' || status || '/' || \
                  module || '/' || user, SUM(transfers), SUM(bytes) FROM daily_transfers GROUP BY 1 ORDER BY 1");
    assert!(!raw.is_empty());
    assert_eq!(raw, roll, "daily_transfers differs from the raw rows");
    let raw = q("SELECT date(time_us / 1000000, 'unixepoch') || '/' || server_host || '/' || user || '/' || outcome, \
                 COUNT(*), 0 FROM logins \
                 GROUP BY 1 ORDER BY 1");
    let roll = q("SELECT day || '/' || server_host || '/' || user || '/' || outcome, SUM(logins), 0 \
                  FROM daily_logins GROUP BY 1 ORDER BY 1");
    assert!(!raw.is_empty());
    assert_eq!(raw, roll, "daily_logins differs from the raw rows");
    // The value rollup, for a one-key set and a pair, transfers and logins.
    // (Pairs are kept per month.)
    for (field, v1, v2, month) in [
        ("cell", "COALESCE(substr(geohash, 1, 3), '')", "''", ""),
        ("user,country", "user", "COALESCE(country, '')", ", 'start of month'"),
    ] {
        let raw = q(&format!(
            "SELECT d || '/' || a || '/' || b, SUM(t), SUM(l) FROM (SELECT date(end_us / 1000000, 'unixepoch'{month}) \
             AS d, {v1} AS a, {v2} AS b, direction <> 'delete' AS t, 0 AS l FROM transfers UNION ALL \
             SELECT date(time_us / 1000000, 'unixepoch'{month}), {v1}, {v2}, 0, 1 FROM logins) GROUP BY 1 ORDER BY 1"
        ));
        let roll = q(&format!(
            "SELECT day || '/' || v1 || '/' || v2, SUM(transfers), SUM(logins_ok + logins_failed) FROM daily_values \
             WHERE field = '{field}' GROUP BY 1 ORDER BY 1"
        ));
        assert_eq!(raw, roll, "daily_values {field} differs from the raw rows");
    }
    let clients = "COALESCE(client_ip, client_hash, client_host)";
    let raw = q(&format!(
        "SELECT c || '/' || d, 0, 0 FROM (SELECT {clients} AS c, date(end_us / 1000000, 'unixepoch') AS d FROM transfers \
         UNION SELECT {clients}, date(time_us / 1000000, 'unixepoch') FROM logins) WHERE c IS NOT NULL ORDER BY 1"
    ));
    assert_eq!(raw, q("SELECT client || '/' || day, 0, 0 FROM daily_clients ORDER BY 1"), "daily_clients differs");
}

fn sqlite_damage_rollups(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "UPDATE daily_transfers SET transfers = 0, bytes = 0; DELETE FROM daily_logins; \
         UPDATE daily_values SET transfers = 7, logins_ok = 0; DELETE FROM daily_clients",
    )
    .unwrap();
}

impl Store for Sqlite {
    fn fresh() -> Option<Sqlite> {
        Some(Sqlite(Env::new()))
    }
    fn try_events(&self) -> Option<u64> {
        sqlite_events(&self.db())
    }
    fn check(&self) {
        sqlite_rollups_match_raw(&self.db());
    }
    fn damage_rollups(&self) {
        sqlite_damage_rollups(&self.db());
    }
}

impl Store for PgDb {
    fn fresh() -> Option<PgDb> {
        fresh("store")
    }
    fn try_events(&self) -> Option<u64> {
        let mut c = postgres::Client::connect(&self.url, postgres::NoTls).ok()?;
        let row = c.query_one("SELECT (SELECT count(*) FROM transfers) + (SELECT count(*) FROM logins)", &[]).ok()?;
        Some(row.get::<_, i64>(0) as u64)
    }
    /// Rollups equal the raw rows, and daily_clients equals the distinct
    /// clients of the raw rows.
    fn check(&self) {
        let diff = self.psql(
            "SELECT count(*) FROM ((SELECT (end_ts AT TIME ZONE 'UTC')::date, server_host, protocol, direction, status, \
             COALESCE(module, ''), username, count(*), sum(bytes)::bigint FROM transfers GROUP BY 1,2,3,4,5,6,7 \
             EXCEPT SELECT * FROM daily_transfers) UNION ALL (SELECT * FROM daily_transfers EXCEPT \
             SELECT (end_ts AT TIME ZONE 'UTC')::date, server_host, protocol, direction, status, COALESCE(module, ''), \
             username, count(*), sum(bytes)::bigint FROM transfers GROUP BY 1,2,3,4,5,6,7)) d",
        );
        assert_eq!(diff, "0", "daily_transfers differs from the raw rows");
        let diff = self.psql(
            "SELECT count(*) FROM ((SELECT (time_ts AT TIME ZONE 'UTC')::date, server_host, protocol, username, outcome, \
             count(*) FROM logins GROUP BY 1,2,3,4,5 EXCEPT SELECT * FROM daily_logins) UNION ALL \
             (SELECT * FROM daily_logins EXCEPT SELECT (time_ts AT TIME ZONE 'UTC')::date, server_host, protocol, \
             username, outcome, count(*) FROM logins GROUP BY 1,2,3,4,5)) d",
        );
        assert_eq!(diff, "0", "daily_logins differs from the raw rows");
        let diff = self.psql(
            "SELECT count(*) FROM ((SELECT * FROM daily_clients EXCEPT (SELECT (end_ts AT TIME ZONE 'UTC')::date, \
             server_host, COALESCE(abbrev(client_ip), client_hash, client_host) FROM transfers UNION \
             SELECT (time_ts AT TIME ZONE 'UTC')::date, server_host, COALESCE(abbrev(client_ip), client_hash, \
             client_host) FROM logins)) UNION ALL ((SELECT (end_ts AT TIME ZONE 'UTC')::date, server_host, \
             COALESCE(abbrev(client_ip), client_hash, client_host) FROM transfers UNION \
             SELECT (time_ts AT TIME ZONE 'UTC')::date, server_host, COALESCE(abbrev(client_ip), client_hash, \
             client_host) FROM logins) EXCEPT SELECT * FROM daily_clients)) d WHERE true",
        );
        assert_eq!(diff, "0", "daily_clients differs from the raw rows");
        // (Pairs are kept per month.)
        for (field, v1, v2, unit) in [
            ("cell", "COALESCE(substr(geohash, 1, 3), '')", "''", "day"),
            ("user,country", "username", "COALESCE(country, '')", "month"),
        ] {
            let raw = format!(
                "SELECT d, a, b, SUM(t)::bigint, SUM(l)::bigint FROM (SELECT date_trunc('{unit}', end_ts AT TIME ZONE \
                 'UTC')::date AS d, {v1} AS a, {v2} AS b, (direction <> 'delete')::int AS t, 0 AS l FROM transfers \
                 UNION ALL SELECT date_trunc('{unit}', time_ts AT TIME ZONE 'UTC')::date, {v1}, {v2}, 0, 1 FROM logins) r \
                 GROUP BY 1, 2, 3"
            );
            let roll = format!(
                "SELECT day, v1, v2, transfers, logins_ok + logins_failed FROM daily_values WHERE field = '{field}'"
            );
            let diff =
                self.psql(&format!("SELECT count(*) FROM (({raw} EXCEPT {roll}) UNION ALL ({roll} EXCEPT {raw})) d"));
            assert_eq!(diff, "0", "daily_values {field} differs from the raw rows");
        }
    }
    fn damage_rollups(&self) {
        self.psql(
            "UPDATE daily_transfers SET transfers = 0, bytes = 0; DELETE FROM daily_logins; DELETE FROM daily_clients; \
             UPDATE daily_values SET transfers = 7",
        );
    }
    /// Whole month partitions dropped, none left.
    fn pruned(&self, stderr: &str) {
        assert!(stderr.contains("transfers_y2026m03") && stderr.contains("logins_y2026m03"), "{stderr}");
        assert_eq!(self.psql("SELECT count(*) FROM pg_inherits"), "0");
    }
}

/// A store whose commands' environment can be replaced: the stores whose
/// imports [`InParts`] runs in parts.
pub trait WithEnv: Store {
    fn map_env(self, f: impl FnOnce(Env) -> Env) -> Self;
}

impl WithEnv for Sqlite {
    fn map_env(self, f: impl FnOnce(Env) -> Env) -> Sqlite {
        Sqlite(f(self.0))
    }
}

impl WithEnv for PgDb {
    fn map_env(self, f: impl FnOnce(Env) -> Env) -> PgDb {
        PgDb { env: f(self.env), ..self }
    }
}

/// A fresh store `S` whose imports take every transaction in parts of 7
/// events (`XFERSTATS_TEST_PART_EVENTS`), as large imports take theirs in
/// parts of 10,000: the scenarios then cover transactions of many parts
/// (crash points, SIGKILL, stage-table parts, hook rows).
pub struct InParts<S>(S);

impl<S: Store> Deref for InParts<S> {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.0
    }
}

impl<S: WithEnv> Store for InParts<S> {
    fn fresh() -> Option<InParts<S>> {
        Some(InParts(S::fresh()?.map_env(|env| env.in_parts(7))))
    }
    fn try_events(&self) -> Option<u64> {
        self.0.try_events()
    }
    fn check(&self) {
        self.0.check()
    }
    fn damage_rollups(&self) {
        self.0.damage_rollups()
    }
    fn pruned(&self, stderr: &str) {
        self.0.pruned(stderr)
    }
}

/// A fresh database (raw and daily retention policies) on the InfluxDB 1.x
/// server; its local state is the SQLite file `db()` of the environment.
pub struct Influx {
    server: &'static Server,
    name: String,
    env: Env,
}

impl Deref for Influx {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

impl Store for Influx {
    fn fresh() -> Option<Influx> {
        let server = influxd()?;
        let name = fresh_db(server, "INF");
        let env = Env::new();
        let url =
            format!("influxdb://127.0.0.1:{}/{name}?rp=raw&daily_rp=daily&state={}", server.port, env.db().display());
        Some(Influx { server, name, env: env.using(url) })
    }
    fn try_events(&self) -> Option<u64> {
        sqlite_events(&self.db())
    }
    fn check(&self) {
        sqlite_rollups_match_raw(&self.db());
        let want = days_of(&self.report_json("day"));
        assert_holds(&held(self.server, &self.name), &want, events_of(&want));
    }
    fn damage_rollups(&self) {
        sqlite_damage_rollups(&self.db());
    }
}

/// Runs each scenario against each store: `MODULE::SCENARIO::{sqlite,
/// sqlite_in_parts, postgres, postgres_in_parts, influxdb1}` (the calling
/// module has `Sqlite` and `Influx` in scope; other test modules call it as
/// `crate::every_store!`).
#[macro_export]
macro_rules! every_store {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn sqlite() {
                super::$scenario::<super::Sqlite>();
            }
            #[test]
            fn sqlite_in_parts() {
                super::$scenario::<$crate::stores::InParts<super::Sqlite>>();
            }
            #[test]
            fn postgres() {
                super::$scenario::<$crate::pg::PgDb>();
            }
            #[test]
            fn postgres_in_parts() {
                super::$scenario::<$crate::stores::InParts<$crate::pg::PgDb>>();
            }
            #[test]
            fn influxdb1() {
                super::$scenario::<super::Influx>();
            }
        }
    )*};
}

every_store!(
    copies_add_nothing,
    a_grown_file_adds_its_new_lines,
    a_copy_joins_no_saved_session,
    crash_points_then_rerun,
    sigkill_mid_import_then_rerun,
    prune_and_rebuild,
    the_ledger_counts_every_event_of_an_input
);

/// An input's ledger entry (`status`) counts every event stored from it:
/// also those of its sessions that end only with the run (an rsync
/// connection's events are emitted when it is pruned or the run ends).
/// Reading it again adds nothing, to the store or to the count.
fn the_ledger_counts_every_event_of_an_input<S: Store>() {
    let Some(s) = S::fresh() else { return };
    let log = fixture("rsync/default-logfile.log");
    let counted = |s: &S| {
        let out = s.cmd().args(["status", "--format", "json"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (v["inputs"].as_array().map(Vec::len), v["inputs"][0]["events_new"].as_u64())
    };
    let a = s.ingest(&[log.to_str().unwrap()]).success();
    assert!(stderr(&a).contains(": 14 new events"), "{}", stderr(&a));
    assert_eq!((s.events(), counted(&s)), (14, (Some(1), Some(14))));
    let a = s.ingest(&[log.to_str().unwrap()]).success();
    assert!(stderr(&a).contains(": 0 new events"), "{}", stderr(&a));
    assert_eq!((s.events(), counted(&s)), (14, (Some(1), Some(14))));
}

/// Totals of `data` imported once into a fresh store of kind `S`, and its
/// event count.
fn once<S: Store>(data: &[u8], args: &[&str]) -> (Value, u64) {
    let s = S::fresh().unwrap();
    let p = s.write("once.log", data);
    s.ingest(&[args, &[p.to_str().unwrap()]].concat()).success();
    (s.report_json(BY), s.events())
}

/// Re-importing a file, renamed, .gz, .zst, compressed without extension,
/// and a copy with another first line (no ledger match: every event goes
/// through the content ids) adds nothing.
fn copies_add_nothing<S: Store>() {
    let Some(s) = S::fresh() else { return };
    let data = std::fs::read(fixture("rsync/default-logfile.log")).unwrap();
    let log = s.write("rsyncd.log", &data);
    let a = s.ingest(&[log.to_str().unwrap()]).success();
    assert!(stderr(&a).contains("14 new events, 0 already present"), "{}", stderr(&a));
    let first = s.report_json(BY);
    let events = s.events();
    assert_eq!(events, 14);
    s.check();
    let renamed = s.write("rsyncd.log.1", &data);
    let gz = s.write("rsyncd.log.2.gz", &gzip(&data));
    let zst = s.write("rsyncd.log.3.zst", &zstd(&data));
    let odd = s.write("no-extension", &gzip(&data));
    let mut shifted = b"2026/03/01 09:59:59 [99] rsyncd version 3.5.0 starting, listening on port 873\n".to_vec();
    shifted.extend_from_slice(&data);
    let shifted = s.write("shifted.log", &shifted);
    let copies = [&log, &renamed, &gz, &zst, &odd, &shifted].map(|p| p.to_str().unwrap().to_string());
    for args in [&copies[..1], &copies[1..5], &copies[5..]] {
        let a = s.ingest(&args.iter().map(String::as_str).collect::<Vec<_>>()).success();
        assert!(stderr(&a).contains(" 0 new events"), "{args:?}: {}", stderr(&a));
        assert_eq!(s.report_json(BY), first, "{args:?}");
        assert_eq!(s.events(), events, "{args:?}");
    }
    s.check();
}

/// A file that grew (cut inside a session) adds only its new lines.
fn a_grown_file_adds_its_new_lines<S: Store>() {
    let Some(s) = S::fresh() else { return };
    let data = synthetic_log(400);
    let (expected, events) = once::<S>(&data, &[]);
    let cut = data.len() / 2 + 3;
    let cut = data[..cut].iter().rposition(|&c| c == b'\n').unwrap() + 1;
    let p = s.write("rsyncd.log", &data[..cut]);
    s.ingest(&[p.to_str().unwrap()]).success();
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(&data[cut..]).unwrap();
    drop(f);
    let a = s.ingest(&["-v", p.to_str().unwrap()]).success();
    assert!(stderr(&a).contains("resumed at byte"), "{}", stderr(&a));
    assert_eq!(s.report_json(BY), expected);
    assert_eq!(s.events(), events);
    s.check();
}

/// Saved open sessions join only the lines that continue them. A log cut
/// inside three open connections whose pids were used earlier in the same
/// file: a copy of it with one more line at its top (no ledger match, read
/// from its start) must not close those connections with its early lines
/// of the same pids — alone, or in one run with the file that continues
/// them. The continuation itself — the same file grown, or the next file
/// after a rename rotation, in a later run or in the same run — closes them
/// up: totals exactly those of the whole log read once.
fn a_copy_joins_no_saved_session<S: Store>() {
    if S::fresh().is_none() {
        return;
    }
    let old = std::fs::read(fixture("rsync/reused-pids.log.1")).unwrap();
    let new = std::fs::read(fixture("rsync/reused-pids.log")).unwrap();
    let whole = [&old[..], &new[..]].concat();
    let (expected, events) = once::<S>(&whole, &[]);
    // 7 logins, 7 transfers: 2 of them interrupted, by an rsync error.
    assert_eq!(events, 14);
    let copied = [&b"2026-03-02T00:00:00+0000 mirror1 kernel: e1000e: eth0 NIC Link is Up\n"[..], &old[..]].concat();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let nothing_new = |s: &S, args: &[String], before: &Value| {
        let a = s.ingest(&args.iter().map(String::as_str).collect::<Vec<_>>()).success();
        assert!(stderr(&a).contains(" 0 new events"), "{args:?}: {}", stderr(&a));
        assert_eq!(&s.report_json(BY), before, "{args:?}");
    };

    // Grown file: the copy between the two runs adds nothing.
    let s = S::fresh().unwrap();
    let log = s.write("rsyncd.log", &old);
    s.ingest(&[&path(&log)]).success();
    let cut = s.report_json(BY);
    nothing_new(&s, &[path(&s.write("copy.log", &copied))], &cut);
    std::fs::write(&log, &whole).unwrap();
    let a = s.ingest(&["-v", &path(&log)]).success();
    assert!(stderr(&a).contains("resumed at byte"), "{}", stderr(&a));
    assert_eq!(s.report_json(BY), expected);
    assert_eq!(s.events(), events);
    s.check();

    // Rename rotation in a later run, the copy in the run before and in
    // the same run.
    let s = S::fresh().unwrap();
    let log = s.write("rsyncd.log", &old);
    s.ingest(&[&path(&log)]).success();
    let copy = s.write("copy.log", &copied);
    nothing_new(&s, &[path(&copy)], &cut);
    let rotated = s.path("rsyncd.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    s.write("rsyncd.log", &new);
    s.ingest(&[&path(&copy), &path(&log), &path(&rotated)]).success();
    assert_eq!(s.report_json(BY), expected);
    assert_eq!(s.events(), events);

    // Both files and the copy in one run.
    let s = S::fresh().unwrap();
    let files = [s.write("copy.log", &copied), s.write("rsyncd.log", &new), s.write("rsyncd.log.1", &old)];
    s.ingest(&files.iter().map(|p| p.to_str().unwrap()).collect::<Vec<_>>()).success();
    assert_eq!(s.report_json(BY), expected);
    assert_eq!(s.events(), events);
    s.check();
}

/// An abort inside a store transaction (`commit`: before COMMIT) or right
/// after one (`committed`) — no destructors, no rollback — then a re-run:
/// exact totals.
fn crash_points_then_rerun<S: Store>() {
    if S::fresh().is_none() {
        return;
    }
    let data = synthetic_log(120);
    let (expected, events) = once::<S>(&data, &[]);
    for point in ["commit", "committed"] {
        for n in [1, 2, 5, 9] {
            let s = S::fresh().unwrap();
            let p = s.write("rsyncd.log", &data);
            let out = s
                .cmd()
                .env("XFERSTATS_TEST_CRASH", format!("{point}:{n}"))
                .args(INGEST)
                .args(["--batch-size", "50"])
                .arg(&p)
                .output()
                .unwrap();
            assert_eq!(out.status.signal(), Some(SIGABRT), "{point}:{n}: the crash point was not reached");
            s.ingest(&["--batch-size", "50", p.to_str().unwrap()]).success();
            assert_eq!(s.report_json(BY), expected, "crash at {point}:{n}");
            assert_eq!(s.events(), events, "crash at {point}:{n}");
            s.check();
        }
    }
}

/// What `std::process::abort` raises.
const SIGABRT: i32 = 6;
const SIGKILL: i32 = 9;

/// SIGKILL once the store holds a given number of events (so the kill
/// lands mid-import, between or inside batches, not at a chosen point),
/// then a re-run: exact totals.
fn sigkill_mid_import_then_rerun<S: Store>() {
    if S::fresh().is_none() {
        return;
    }
    let data = synthetic_log(2000);
    let (expected, total) = once::<S>(&data, &["--batch-size", "200"]);
    for threshold in [1, total / 4, total / 2] {
        let s = S::fresh().unwrap();
        let p = s.write("rsyncd.log", &data);
        let mut child = s.spawn_ingest(&["--batch-size".as_ref(), "200".as_ref(), p.as_os_str()]);
        while s.try_events().is_none_or(|n| n < threshold) {
            assert!(child.try_wait().unwrap().is_none(), "the import ended before {threshold} events were stored");
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let held = s.events();
        assert_eq!(status.signal(), Some(SIGKILL), "the kill after {threshold} events landed after the import ended");
        assert!(held >= threshold && held < total, "killed mid-import: {held} of {total} events stored");
        s.ingest(&["--batch-size", "200", p.to_str().unwrap()]).success();
        assert_eq!(s.report_json(BY), expected, "killed after {threshold} events");
        assert_eq!(s.events(), total, "killed after {threshold} events");
        s.check();
    }
}

/// `rollup --rebuild` repairs the rollups; `prune` removes the raw events
/// and keeps the rollups; a rebuild over pruned days is refused; events
/// before the prune horizon are not stored again.
fn prune_and_rebuild<S: Store>() {
    let Some(s) = S::fresh() else { return };
    let f = fixture("rsync/default-logfile.log");
    s.ingest(&["--ip-mode", "full", f.to_str().unwrap()]).success();
    let by_day = s.report_json("day,user");
    s.check();
    s.damage_rollups();
    s.cmd().args(["rollup", "--rebuild", "--since", "2026-01-01"]).assert().success();
    assert_eq!(s.report_json("day,user"), by_day);
    s.check();
    // March 2026 is more than 30 days old: the raw events go, the rollups
    // stay, raw-only reports are empty.
    let a = s.cmd().args(["prune", "--raw-older-than", "30d"]).assert().success();
    let err = stderr(&a);
    assert!(err.contains("9 transfers, 5 logins"), "{err}");
    s.pruned(&err);
    assert_eq!(s.events(), 0);
    assert_eq!(s.report_json("day,user"), by_day);
    assert_eq!(s.report_json("client"), serde_json::json!([]));
    // A rebuild over pruned days is refused and changes nothing.
    let a = s.cmd().args(["rollup", "--rebuild", "--since", "2026-01-01"]).assert().code(4);
    assert!(stderr(&a).contains("pruned"), "{}", stderr(&a));
    assert_eq!(s.report_json("day,user"), by_day);
    // Bad ages name the flag.
    for age in ["30x", "soon"] {
        let a = s.cmd().args(["prune", "--raw-older-than", age]).assert().code(2);
        assert!(stderr(&a).contains("--raw-older-than"), "{}", stderr(&a));
    }
    // Re-importing the pruned file adds nothing (the ledger remembers it),
    // nor does a copy with another first line (its rollups count them).
    s.ingest(&[f.to_str().unwrap()]).success();
    let mut copy = b"2026/03/01 09:00:00 [99] rsyncd version 3.5.0 starting, listening on port 873\n".to_vec();
    copy.extend_from_slice(&std::fs::read(&f).unwrap());
    let copy = s.write("copy.log", &copy);
    let a = s.ingest(&[copy.to_str().unwrap()]).success();
    let err = stderr(&a);
    assert!(err.contains(" 0 new events") && err.contains("were pruned"), "{err}");
    assert_eq!(s.events(), 0);
    assert_eq!(s.report_json("day,user"), by_day);
}
