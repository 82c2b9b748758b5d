//! The InfluxDB store: what a real InfluxDB 1.x server and VictoriaMetrics
//! hold after an import (compared with a one-shot SQLite import of the same
//! logs), re-imports that must not add or lose points, and the exact HTTP
//! requests of both write APIs against a scripted listener. Crashes, kills
//! and prunes are in `stores.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};

use assert_cmd::Command;
use serde_json::Value;

use crate::influxd::{http, influxd, influxql, rows, victoria, Mock, Server};
use crate::util::{fixture, gzip, realogs, stderr, Env, TEST_HOST_KEY};

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The logs of the end-to-end tests: every format with transfers and
/// logins, traps of escaping, several transfers in one second.
fn inputs() -> Vec<std::path::PathBuf> {
    let mut v = vec![
        fixture("rsync/default-logfile.log"),
        fixture("xferlog/traps.xferlog"),
        fixture("openssh/auth.log"),
        fixture("influx/escapes.log"),
    ];
    if let Some(r) = realogs() {
        v.push(r.join("rsync/rsyncd-default.log"));
        v.push(r.join("proftpd/xferlog"));
    }
    v
}

pub(crate) fn cmd(env: &Env, url: &str) -> Command {
    let mut c = env.cmd_with_key_file();
    c.env("XFERSTATS_HOST_KEY", TEST_HOST_KEY).env_remove("INFLUX_TOKEN").arg("--db").arg(url);
    c
}

pub(crate) fn ingest(env: &Env, url: &str, files: &[std::path::PathBuf]) -> assert_cmd::assert::Assert {
    cmd(env, url)
        .args(["ingest", "--timezone", "UTC", "--server-host", "mirror 1,a=b", "--progress", "never"])
        .args(files)
        .assert()
}

/// `report --by day --format json` of a plain SQLite import of `files`.
fn sqlite_report(files: &[std::path::PathBuf]) -> Value {
    sqlite_import(files).report_json("day")
}

fn sqlite_import(files: &[std::path::PathBuf]) -> Env {
    let env = Env::new();
    env.cmd()
        .args(["ingest", "--timezone", "UTC", "--server-host", "mirror 1,a=b", "--progress", "never"])
        .args(files)
        .assert()
        .code(predicates::ord::le(1));
    env
}

/// Per UTC day: what a `--by day` JSON report says.
pub(crate) fn days_of(report: &Value) -> BTreeMap<String, Day> {
    let mut out = BTreeMap::new();
    for g in report.as_array().unwrap() {
        let n = |k: &str| g[k].as_u64().unwrap();
        out.insert(
            g["day"].as_str().unwrap().to_string(),
            Day {
                transfers: n("transfers"),
                deletes: n("deletes"),
                bytes_up: n("bytes_up"),
                bytes_down: n("bytes_down"),
                logins_ok: n("logins_ok"),
                logins_failed: n("logins_failed"),
            },
        );
    }
    out
}

/// Per UTC day: what the report of a plain SQLite import of `files` says.
fn sqlite_days(files: &[std::path::PathBuf]) -> BTreeMap<String, Day> {
    days_of(&sqlite_report(files))
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Day {
    transfers: u64,
    deletes: u64,
    bytes_up: u64,
    bytes_down: u64,
    logins_ok: u64,
    logins_failed: u64,
}

fn add(d: &mut Day, dir: &str, n: u64, bytes: u64) {
    match dir {
        "upload" => {
            d.transfers += n;
            d.bytes_up += bytes;
        }
        "download" => {
            d.transfers += n;
            d.bytes_down += bytes;
        }
        _ => d.deletes += n,
    }
}

fn day_of(time: &Value) -> String {
    time.as_str().unwrap()[..10].to_string()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| v.as_f64().unwrap() as u64)
}

/// A fresh database with retention policies `raw` (default) and `daily`.
pub(crate) fn fresh_db(s: &Server, raw_duration: &str) -> String {
    let db = format!("xfer_{}", NEXT_DB.fetch_add(1, Ordering::SeqCst));
    influxql(s, "", &format!("CREATE DATABASE {db}"));
    influxql(
        s,
        db.as_str(),
        &format!("CREATE RETENTION POLICY raw ON {db} DURATION {raw_duration} REPLICATION 1 DEFAULT"),
    );
    influxql(s, db.as_str(), &format!("CREATE RETENTION POLICY daily ON {db} DURATION INF REPLICATION 1"));
    db
}

/// What the server holds, summed per day three ways: from the raw points,
/// from the daily points, and the raw point count (which must equal the
/// events: no point overwrote another).
pub(crate) struct Held {
    raw: BTreeMap<String, Day>,
    daily: BTreeMap<String, Day>,
    raw_points: usize,
    /// Distinct clients per (day, host, proto, dir, status, module), from raw.
    raw_clients: BTreeMap<Vec<String>, u64>,
    /// The same, as the daily points say.
    daily_clients: BTreeMap<Vec<String>, u64>,
}

pub(crate) fn held(s: &Server, db: &str) -> Held {
    let mut h = Held {
        raw: BTreeMap::new(),
        daily: BTreeMap::new(),
        raw_points: 0,
        raw_clients: BTreeMap::new(),
        daily_clients: BTreeMap::new(),
    };
    let mut clients: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    let tag = |r: &serde_json::Map<String, Value>, k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    for r in rows(&influxql(s, db, "SELECT bytes, client, dir, status, host, proto, module FROM raw.xfer")) {
        h.raw_points += 1;
        let day = day_of(&r["time"]);
        add(h.raw.entry(day.clone()).or_default(), r["dir"].as_str().unwrap(), 1, u(&r["bytes"]));
        let key = vec![day, tag(&r, "host"), tag(&r, "proto"), tag(&r, "dir"), tag(&r, "status"), tag(&r, "module")];
        let set = clients.entry(key).or_default();
        if let Some(c) = r["client"].as_str() {
            set.insert(c.to_string());
        }
    }
    h.raw_clients = clients.into_iter().map(|(k, v)| (k, v.len() as u64)).collect();
    for r in rows(&influxql(s, db, "SELECT attempts, outcome FROM raw.login")) {
        h.raw_points += 1;
        let d = h.raw.entry(day_of(&r["time"])).or_default();
        if r["outcome"] == "ok" {
            d.logins_ok += 1;
        } else {
            d.logins_failed += 1;
        }
    }
    for r in rows(&influxql(
        s,
        db,
        "SELECT transfers, bytes, unique_clients, dir, status, host, proto, module FROM daily.xfer_daily",
    )) {
        let day = day_of(&r["time"]);
        add(h.daily.entry(day.clone()).or_default(), r["dir"].as_str().unwrap(), u(&r["transfers"]), u(&r["bytes"]));
        let key = vec![day, tag(&r, "host"), tag(&r, "proto"), tag(&r, "dir"), tag(&r, "status"), tag(&r, "module")];
        h.daily_clients.insert(key, u(&r["unique_clients"]));
    }
    for r in rows(&influxql(s, db, "SELECT logins, outcome FROM daily.login_daily")) {
        let d = h.daily.entry(day_of(&r["time"])).or_default();
        if r["outcome"] == "ok" {
            d.logins_ok += u(&r["logins"]);
        } else {
            d.logins_failed += u(&r["logins"]);
        }
    }
    h
}

pub(crate) fn assert_holds(h: &Held, want: &BTreeMap<String, Day>, events: usize) {
    assert_eq!(&h.raw, want, "raw points summed per day");
    assert_eq!(&h.daily, want, "daily points");
    assert_eq!(h.raw_points, events, "one raw point per event");
    assert_eq!(h.raw_clients, h.daily_clients, "unique_clients per day and tag set");
}

/// Events of a one-shot SQLite import (transfers incl. deletes + logins).
pub(crate) fn events_of(want: &BTreeMap<String, Day>) -> usize {
    want.values().map(|d| (d.transfers + d.deletes + d.logins_ok + d.logins_failed) as usize).sum()
}

#[test]
fn influxdb_1x_holds_exactly_what_was_imported_and_reimports_rewrite_it() {
    let Some(s) = influxd() else { return };
    let db = fresh_db(s, "INF");
    let env = Env::new();
    let url = format!("influxdb://127.0.0.1:{}/{db}?rp=raw&daily_rp=daily", s.port);
    let files = inputs();
    ingest(&env, &url, &files).code(predicates::ord::le(1));
    let reference = sqlite_report(&files);
    let want = days_of(&reference);
    let events = events_of(&want);
    assert!(events > 60, "{events}");
    let first = held(s, &db);
    assert_holds(&first, &want, events);
    // Three transfers of rsync pid 101 share 10:00:02 on one series: all kept.
    let same_second = rows(&influxql(
        s,
        &db,
        "SELECT bytes FROM raw.xfer WHERE time >= '2026-03-01T10:00:02Z' AND time < '2026-03-01T10:00:03Z'",
    ));
    assert_eq!(same_second.len(), 3, "{same_second:?}");
    // The report of the store reads the local state: the same as SQLite.
    let out = cmd(&env, &url).args(["report", "--format", "json", "--by", "day"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), reference);
    // The HTML report too (its ranked lists come from the local state).
    let html = cmd(&env, &url).args(["report", "--format", "html"]).output().unwrap();
    assert!(html.status.success());
    let sqlite_html = sqlite_import(&files).cmd().args(["report", "--format", "html"]).output().unwrap().stdout;
    assert!(html.stdout == sqlite_html, "the HTML report differs from SQLite's");

    // Re-import, a .gz copy, a copy with another first line: nothing added,
    // nothing lost.
    let log = std::fs::read(fixture("rsync/default-logfile.log")).unwrap();
    let gz = env.write("copy.log.gz", &gzip(&log));
    let mut other = b"2026/03/01 09:59:59 [99] rsyncd version 3.5.0 starting, listening on port 873\n".to_vec();
    other.extend_from_slice(&log);
    let other = env.write("other-first-line.log", &other);
    ingest(&env, &url, &files).code(predicates::ord::le(1));
    ingest(&env, &url, &[gz, other]).success();
    assert_holds(&held(s, &db), &want, events);
}

/// `follow` into InfluxDB 1.x writes the raw points and, after every
/// commit (a follower has no end of run), the daily points, as a batch
/// import does.
#[test]
fn follow_writes_raw_and_daily_points() {
    let Some(s) = influxd() else { return };
    let db = fresh_db(s, "INF");
    let f = Followed::new(s.port, &db);
    f.copy(&f.files);
    let err = f.env.path("follow.err");
    let child = f.env.spawn_follow(&["--rotate-wait".as_ref(), "1".as_ref(), f.dir.as_os_str()], &err);
    // Every input read (the sessions still open are ended at the stop).
    crate::follow::wait_until("every input read", &err, || f.all_read(f.files.len()));
    assert!(crate::follow::terminate(child, &err).success());
    assert_holds(&held(s, &db), &f.want, f.events);
}

/// A follow test's store (database `db` of the InfluxDB server on `port`),
/// the inputs, what a batch import of them holds, and an empty log
/// directory to follow.
struct Followed {
    env: Env,
    files: Vec<std::path::PathBuf>,
    want: BTreeMap<String, Day>,
    events: usize,
    dir: std::path::PathBuf,
}

impl Followed {
    fn new(port: u16, db: &str) -> Followed {
        let env = Env::with_store(format!("influxdb://127.0.0.1:{port}/{db}?rp=raw&daily_rp=daily"));
        let files = inputs();
        let want = days_of(&sqlite_report(&files));
        let events = events_of(&want);
        let dir = env.path("logs");
        std::fs::create_dir(&dir).unwrap();
        Followed { env, files, want, events, dir }
    }

    /// Copies `files` into the log directory.
    fn copy(&self, files: &[std::path::PathBuf]) {
        for f in files {
            std::fs::copy(f, self.dir.join(f.file_name().unwrap())).unwrap();
        }
    }

    /// Whether `status` lists `n` inputs, each read to its end.
    fn all_read(&self, n: usize) -> bool {
        let out = self.env.cmd().args(["status", "--format", "json"]).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["inputs"].as_array().is_some_and(|a| a.len() == n && a.iter().all(|i| i["lag_bytes"] == 0))
    }
}

/// InfluxDB stopped while `follow` runs and the logs grow: the follower
/// reads on into its buffer, says once that the store is unavailable and
/// once that it answers again, and the server ends up holding exactly
/// what a batch import holds.
#[test]
fn follow_rides_out_an_influxdb_outage() {
    let Some(s) = crate::influxd::private_influxd() else { return };
    let db = fresh_db(&s, "INF");
    let f = Followed::new(s.port, &db);
    let (before, during) = f.files.split_at(f.files.len() / 2);
    f.copy(before);
    let err = f.env.path("follow.err");
    let child = f.env.spawn_follow(&["--rotate-wait".as_ref(), "1".as_ref(), f.dir.as_os_str()], &err);
    crate::follow::wait_until("the first inputs", &err, || f.all_read(before.len()));
    s.stop();
    f.copy(during);
    let said = |what: &str| std::fs::read_to_string(&err).unwrap().matches(what).count();
    crate::follow::wait_until("the outage to be noticed", &err, || said("store unavailable") == 1);
    // Some seconds of outage while the follower retries.
    std::thread::sleep(std::time::Duration::from_secs(3));
    s.restart();
    crate::follow::wait_until("every input read after the outage", &err, || f.all_read(f.files.len()));
    assert!(crate::follow::terminate(child, &err).success());
    assert_holds(&held(&s, &db), &f.want, f.events);
    let log = std::fs::read_to_string(&err).unwrap();
    assert_eq!(said("store unavailable"), 1, "one message per outage: {log}");
    assert_eq!(said("answers again"), 1, "{log}");
}

#[test]
fn points_beyond_the_retention_policy_are_reported_not_fatal() {
    let Some(s) = influxd() else { return };
    let db = fresh_db(s, "1h");
    let env = Env::new();
    let url = format!("influxdb://127.0.0.1:{}/{db}?rp=raw&daily_rp=daily", s.port);
    let files = vec![fixture("rsync/default-logfile.log")];
    let a = ingest(&env, &url, &files).success();
    let err = stderr(&a);
    assert!(err.contains("older than its retention policy") && err.contains("dropped="), "{err}");
    let h = held(s, &db);
    assert_eq!(h.raw_points, 0, "the raw policy keeps one hour");
    assert_eq!(h.daily, sqlite_days(&files), "daily points land in their own policy");
}

#[test]
fn victoria_metrics_takes_the_v2_write() {
    let Some(vm) = victoria() else { return };
    let env = Env::new();
    let host = "vm-test-host";
    let url = format!("influxdb2://127.0.0.1:{}/org/xfer_raw?daily_bucket=xfer_daily", vm.port);
    let files = vec![fixture("rsync/default-logfile.log"), fixture("xferlog/traps.xferlog")];
    cmd(&env, &url)
        .env("INFLUX_TOKEN", "vm-ignores-it")
        .args(["ingest", "--timezone", "UTC", "--server-host", host, "--progress", "never"])
        .args(&files)
        .assert()
        .success();
    let (st, _) = http(vm.port, "GET", "/internal/force_flush", &[]).unwrap();
    assert_eq!(st, 200);
    let export = |name: &str| {
        let q = crate::influxd::form(&[("match[]", &format!("{name}{{host=\"{host}\"}}"))]);
        let (st, body) = http(vm.port, "GET", &format!("/api/v1/export?{q}"), &[]).unwrap();
        assert_eq!(st, 200, "{body}");
        body.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).collect::<Vec<_>>()
    };
    // Daily transfers per day, as VictoriaMetrics names them
    // (`measurement_field`, tags as labels).
    let mut days: BTreeMap<String, Day> = BTreeMap::new();
    for series in export("xfer_daily_transfers") {
        let dir = series["metric"]["dir"].as_str().unwrap().to_string();
        for (v, t) in series["values"].as_array().unwrap().iter().zip(series["timestamps"].as_array().unwrap()) {
            let day =
                chrono::DateTime::from_timestamp_millis(t.as_i64().unwrap()).unwrap().format("%Y-%m-%d").to_string();
            add(days.entry(day).or_default(), &dir, u(v), 0);
        }
    }
    let want: BTreeMap<String, (u64, u64)> = sqlite_days(&files)
        .into_iter()
        .filter(|(_, d)| d.transfers + d.deletes > 0)
        .map(|(k, d)| (k, (d.transfers, d.deletes)))
        .collect();
    let got: BTreeMap<String, (u64, u64)> = days.into_iter().map(|(k, d)| (k, (d.transfers, d.deletes))).collect();
    assert_eq!(got, want);
    // Raw points: one sample per transfer, timestamps kept to the
    // millisecond. String fields become series whose every value is 0: the
    // text (user, path, client, city, geohash) is lost.
    let samples: usize = export("xfer_bytes").iter().map(|s| s["values"].as_array().unwrap().len()).sum();
    let transfers: u64 = want.values().map(|(t, d)| t + d).sum();
    assert_eq!(samples as u64, transfers);
    let user = export("xfer_user");
    let values: Vec<&Value> = user.iter().flat_map(|s| s["values"].as_array().unwrap()).collect();
    assert_eq!(values.len() as u64, transfers);
    assert!(values.iter().all(|v| u(v) == 0), "{user:?}");
}

// ---- exact requests against a scripted listener ----

/// The lines of the raw requests, timestamps cut to the second (their
/// sub-second part comes from event ids).
fn cut_timestamps(body: &str) -> Vec<String> {
    body.lines()
        .map(|l| {
            let (rest, ts) = l.rsplit_once(' ').unwrap();
            assert_eq!(ts.len(), 19, "nanoseconds: {l}");
            format!("{rest} {}", &ts[..10])
        })
        .collect()
}

#[test]
fn v2_requests_are_exact() {
    let mock = Mock::start(vec![]);
    let env = Env::new();
    let url = format!("influxdb2://127.0.0.1:{}/my%20org/xfer_raw?daily_bucket=xfer_daily&batch=2", mock.port);
    let a = cmd(&env, &url)
        .env("INFLUX_TOKEN", "tok-secret-123")
        .args(["ingest", "--timezone", "UTC", "--server-host", "mirror 1,a=b", "--progress", "never", "-v"])
        .arg(fixture("influx/escapes.log"))
        .assert()
        .success();
    let out = String::from_utf8_lossy(&a.get_output().stdout).to_string() + &stderr(&a);
    assert!(!out.contains("tok-secret-123"), "{out}");
    let reqs = mock.requests();
    // 4 events in requests of 2 lines, then 3 daily lines in 2 requests.
    assert_eq!(reqs.len(), 4, "{reqs:#?}");
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path(), "/api/v2/write");
        assert_eq!(r.header("authorization"), Some("Token tok-secret-123"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert!(r.raw_len > 0 && r.raw_len != r.body.len());
    }
    let q = |r: &crate::influxd::Request| {
        let mut q = r.query();
        q.sort();
        q
    };
    let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
    assert_eq!(q(&reqs[0]), pairs(&[("bucket", "xfer_raw"), ("org", "my org"), ("precision", "ns")]));
    assert_eq!(q(&reqs[1]), q(&reqs[0]));
    assert_eq!(q(&reqs[2]), pairs(&[("bucket", "xfer_daily"), ("org", "my org"), ("precision", "s")]));
    assert_eq!(q(&reqs[3]), q(&reqs[2]));
    let client = "client=\"TkEwSJO06F3GQlsmhlgA8w\""; // HMAC of 192.0.2.77 under the test key
    let raw: Vec<String> = reqs[..2].iter().flat_map(|r| cut_timestamps(&r.body)).collect();
    let tags = "host=mirror\\ 1\\,a\\=b,module=pub\\,x\\=1,proto=rsync";
    let mut want = vec![
        format!(
            "xfer,dir=download,{tags},status=completed bytes=42i,file_size=42i,user=\"bob\",\
             path=\"dir/say \\\"hi\\\", x=1\\\\y.txt\",session=\"300@1772701200\",{client},event_id=\"ID\" 1772701201"
        ),
        format!(
            "xfer,dir=download,{tags},status=completed bytes=43i,file_size=43i,user=\"bob\",\
             path=\"dir/second file.txt\",session=\"300@1772701200\",{client},event_id=\"ID\" 1772701201"
        ),
        format!(
            "xfer,dir=upload,{tags},status=completed bytes=44i,file_size=44i,user=\"bob\",\
             path=\"up/new.txt\",session=\"300@1772701200\",{client},event_id=\"ID\" 1772701201"
        ),
    ];
    let mut got: Vec<String> = raw
        .iter()
        .filter(|l| l.starts_with("xfer,"))
        .map(|l| {
            let i = l.find("event_id=\"").unwrap() + 10;
            format!("{}ID{}", &l[..i], &l[i + 16..])
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        raw.iter().filter(|l| l.starts_with("login,host=mirror\\ 1\\,a\\=b,outcome=ok,proto=rsync ")).count(),
        1
    );
    assert_eq!(
        reqs[2].body.clone() + &reqs[3].body,
        "xfer_daily,dir=download,host=mirror\\ 1\\,a\\=b,module=pub\\,x\\=1,proto=rsync,status=completed \
         transfers=2i,bytes=85i,unique_clients=1i 1772668800\n\
         xfer_daily,dir=upload,host=mirror\\ 1\\,a\\=b,module=pub\\,x\\=1,proto=rsync,status=completed \
         transfers=1i,bytes=44i,unique_clients=1i 1772668800\n\
         login_daily,host=mirror\\ 1\\,a\\=b,outcome=ok,proto=rsync logins=1i,unique_clients=1i 1772668800\n"
    );
}

#[test]
fn v1_requests_carry_db_rp_and_basic_auth() {
    let mock = Mock::start(vec![]);
    let env = Env::new();
    let url = format!("influxdb://writer@127.0.0.1:{}/mirror?rp=raw&daily_rp=daily", mock.port);
    let a = cmd(&env, &url)
        .env("INFLUXDB_PASS", "pw-secret-9")
        .args(["ingest", "--timezone", "UTC", "--server-host", "h", "--progress", "never", "-v"])
        .arg(fixture("influx/escapes.log"))
        .assert()
        .success();
    assert!(!stderr(&a).contains("pw-secret-9"));
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    use base64::Engine as _;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("writer:pw-secret-9"));
    for r in &reqs {
        assert_eq!(r.path(), "/write");
        assert_eq!(r.header("authorization"), Some(basic.as_str()));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
    }
    let q = |r: &crate::influxd::Request| {
        let mut q = r.query();
        q.sort();
        q.into_iter().map(|(a, b)| format!("{a}={b}")).collect::<Vec<_>>().join("&")
    };
    assert_eq!(q(&reqs[0]), "db=mirror&precision=ns&rp=raw");
    assert_eq!(q(&reqs[1]), "db=mirror&precision=s&rp=daily");
    assert_eq!(reqs[0].body.lines().count(), 4);
}

#[test]
fn server_errors_are_retried_with_backoff() {
    let mock = Mock::start(vec![(503, "busy"), (500, r#"{"error":"timeout"}"#)]);
    let env = Env::new();
    let url = format!("influxdb2://127.0.0.1:{}/o/b?backoff=10ms&retries=3", mock.port);
    let a = cmd(&env, &url)
        .args(["ingest", "--timezone", "UTC", "--server-host", "h", "--progress", "never"])
        .arg(fixture("influx/escapes.log"))
        .assert()
        .success();
    let err = stderr(&a);
    // One line when the outage starts, one when its cause changes.
    let target = format!("influxdb2://127.0.0.1:{}/o/b", mock.port);
    assert!(
        err.contains(&format!("{target}: write failed: HTTP 503: busy; retrying up to 3 time(s) over 70ms\n")),
        "{err}"
    );
    assert!(err.contains(&format!("{target}: write still failing, now: HTTP 500: timeout; retrying\n")), "{err}");
    assert_eq!(err.matches(&target).count(), 3, "the two warnings and the summary: {err}");
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 4, "3 attempts of the raw write, then the daily write");
    assert_eq!(reqs[0].body, reqs[1].body);
    assert_eq!(reqs[1].body, reqs[2].body);
}

#[test]
fn a_refused_write_is_final_names_the_server_and_marks_nothing_imported() {
    let mock = Mock::start(vec![(400, r#"{"code":"invalid","message":"unable to parse 'xfer': missing fields"}"#)]);
    let env = Env::new();
    let url = format!("influxdb2://127.0.0.1:{}/o/b?backoff=10ms", mock.port);
    let run = || {
        cmd(&env, &url)
            .args(["ingest", "--timezone", "UTC", "--server-host", "h", "--progress", "never"])
            .arg(fixture("influx/escapes.log"))
            .assert()
    };
    let a = run().code(4);
    let err = stderr(&a);
    let target = format!("influxdb2://127.0.0.1:{}/o/b", mock.port);
    assert!(err.contains(&target) && err.contains("HTTP 400: unable to parse 'xfer': missing fields"), "{err}");
    assert_eq!(mock.requests().len(), 1, "a 4xx is not retried");
    // Nothing was marked imported: the next run sends every event again.
    run().success();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].body, reqs[0].body);
}

#[test]
fn an_unreachable_server_fails_after_the_retries_with_nothing_committed() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let env = Env::new();
    let url = format!("influxdb://127.0.0.1:{port}/x?retries=2&backoff=10ms&timeout=2s");
    let a = ingest(&env, &url, &[fixture("influx/escapes.log")]).code(4);
    let err = stderr(&a);
    assert!(
        err.contains(&format!("influxdb://127.0.0.1:{port}/x")) && err.contains("gave up after 3 attempt(s)"),
        "{err}"
    );
    let out = cmd(&env, &url).args(["report", "--format", "json"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]", "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn rollup_rebuild_rewrites_the_daily_points() {
    let mock = Mock::start(vec![]);
    let env = Env::new();
    let url = format!("influxdb2://127.0.0.1:{}/o/raw?daily_bucket=daily", mock.port);
    let run = |args: &[&str]| cmd(&env, &url).args(args).assert().success();
    run(&["db", "migrate"]);
    assert_eq!(mock.requests().len(), 0, "opening the store sends nothing");
    cmd(&env, &url)
        .args(["ingest", "--timezone", "UTC", "--server-host", "h", "--progress", "never"])
        .arg(fixture("rsync/default-logfile.log"))
        .assert()
        .success();
    let daily: Vec<String> = mock
        .requests()
        .iter()
        .filter(|r| r.query().contains(&("bucket".into(), "daily".into())))
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(daily.len(), 1);
    let before = mock.requests().len();
    run(&["rollup", "--rebuild", "--since", "2026-03-02"]);
    let after: Vec<String> = mock.requests().iter().skip(before).map(|r| r.body.clone()).collect();
    // Only the days since 2026-03-02, exactly as the ingest wrote them.
    let want: String = daily[0].lines().filter(|l| l.ends_with(" 1772409600")).map(|l| format!("{l}\n")).collect();
    assert!(!want.is_empty());
    assert_eq!(after, vec![want]);
}

/// Every InfluxQL query of `grafana/xferstats-influxdb.json`, expanded as
/// Grafana sends it (all values of every filter, 2026 as the time range),
/// runs without error on InfluxDB 1.x and returns data after an import
/// through this store: the dashboard and the store agree on measurements,
/// retention policies, tags and fields.
#[test]
fn grafana_influxql_queries_run_on_influxdb_1x() {
    let Some(s) = influxd() else { return };
    let db = fresh_db(s, "INF");
    let env = Env::new();
    let url = format!("influxdb://127.0.0.1:{}/{db}?rp=raw&daily_rp=daily", s.port);
    ingest(&env, &url, &inputs()).code(predicates::ord::le(1));
    let geo = crate::util::geolite().unwrap_or_else(|| crate::grafana::tiny_city_db(&env));
    cmd(&env, &url)
        .args(["ingest", "--timezone", "UTC", "--server-host", "mirror2", "--progress", "never", "--geoip"])
        .arg(&geo)
        .arg(fixture("geoip/clients.log"))
        .assert()
        .success();
    let dashboard = crate::grafana::grafana_dir().join("xferstats-influxdb.json");
    let queries = crate::grafana::influxql_queries(&dashboard);
    assert!(queries.len() >= 16, "{}", queries.len());
    for (title, q) in &queries {
        let got = rows(&influxql(s, &db, q));
        assert!(!got.is_empty(), "{title}: no rows for {q}");
    }
}

#[test]
fn daily_points_refused_stay_pending_until_the_next_run() {
    let mock = Mock::start(vec![(204, ""), (400, r#"{"error":"retention policy not found: daily"}"#)]);
    let env = Env::new();
    let url = format!("influxdb://127.0.0.1:{}/x?rp=raw&daily_rp=daily", mock.port);
    let a = ingest(&env, &url, &[fixture("influx/escapes.log")]).code(4);
    let err = stderr(&a);
    assert!(err.contains("daily points not written") && err.contains("retention policy not found: daily"), "{err}");
    // The events are stored: the re-run reads nothing new and only sends
    // the pending daily points.
    ingest(&env, &url, &[fixture("influx/escapes.log")]).success();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs[1].target.contains("rp=daily") && reqs[2].target.contains("rp=daily"));
    assert_eq!(reqs[1].body, reqs[2].body);
}
