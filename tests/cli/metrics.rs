//! `xferstats metrics`: the Prometheus exposition checked by `promtool
//! check metrics` (Debian package `prometheus`), its values against `report
//! --format json` and the store, the textfile scraped by a real
//! `prometheus-node-exporter`, and `--listen` served over loopback, on
//! SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::util::{fixture, stderr, Env};

/// The fixtures every test imports (several formats and protocols).
const FIXTURES: [&str; 5] = [
    "rsync/default-logfile.log",
    "openssh/auth.log",
    "xferlog/traps.xferlog",
    "vsftpd/traps.log",
    "rsync/bad-lines.log",
];

/// `/usr/bin/NAME`, or `None` (a failure when XFERSTATS_REQUIRE_PROMETHEUS
/// is set, as in CI).
fn tool(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin").join(name);
    let present = p.exists();
    crate::util::required(p, present, "XFERSTATS_REQUIRE_PROMETHEUS")
}

/// `promtool check metrics` on `text` (no findings, exit 0).
fn promtool_check(text: &str) {
    let Some(promtool) = tool("promtool") else { return };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{text}");
}

/// A sample's key: the metric name and its labels, sorted by name (as
/// node-exporter re-orders them).
type Series = (String, Vec<(String, String)>);

/// The samples of an exposition.
fn parse(text: &str) -> BTreeMap<Series, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut labels: Vec<(String, String)> = labels
            .split("\",")
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once("=\"").expect("label");
                (k.to_string(), v.trim_end_matches('"').to_string())
            })
            .collect();
        labels.sort();
        out.insert((name.to_string(), labels), value.parse().expect("value"));
    }
    out
}

/// The value of `name{labels}` (0 when absent).
fn value(m: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut l: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    l.sort();
    m.get(&(name.to_string(), l)).copied().unwrap_or(0.0) as u64
}

/// The sum of every series of `name`.
fn sum(m: &BTreeMap<Series, f64>, name: &str) -> u64 {
    m.iter().filter(|((n, _), _)| n == name).map(|(_, v)| *v as u64).sum()
}

fn metrics_text(env: &Env, args: &[&str]) -> String {
    let out = env.cmd().arg("metrics").args(args).output().unwrap();
    assert!(out.status.success(), "metrics: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn ingest_fixtures(env: &Env) -> String {
    let files: Vec<String> = FIXTURES.iter().map(|f| fixture(f).display().to_string()).collect();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    stderr(&env.ingest(&args))
}

/// Every number the metrics give, checked against `report --format json`
/// (and the ingest summary for the ledger's lines).
fn assert_metrics_match_reports(env: &Env, text: &str, summary: &str) {
    promtool_check(text);
    let m = parse(text);
    for g in env.report_json("protocol,direction,status").as_array().unwrap() {
        let l = [("protocol", s(&g["protocol"])), ("direction", s(&g["direction"])), ("status", s(&g["status"]))];
        let n = |k: &str| g[k].as_u64().unwrap();
        if s(&g["direction"]) == "delete" {
            continue;
        }
        assert_eq!(value(&m, "xferstats_transfers_total", &l), n("transfers"), "{g}");
        assert_eq!(value(&m, "xferstats_transfer_bytes_total", &l), n("bytes_up") + n("bytes_down"), "{g}");
    }
    let by_protocol = env.report_json("protocol");
    for g in by_protocol.as_array().unwrap() {
        let p = s(&g["protocol"]);
        for (outcome, k) in [("ok", "logins_ok"), ("failed", "logins_failed")] {
            let l = [("protocol", p), ("outcome", outcome)];
            assert_eq!(value(&m, "xferstats_logins_total", &l), g[k].as_u64().unwrap(), "{g}");
        }
        assert_eq!(value(&m, "xferstats_deletes_total", &[("protocol", p)]), g["deletes"].as_u64().unwrap());
    }
    let total = |k: &str| by_protocol.as_array().unwrap().iter().map(|g| g[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum(&m, "xferstats_transfers_total"), total("transfers"));
    assert_eq!(sum(&m, "xferstats_transfer_bytes_total"), total("bytes_up") + total("bytes_down"));
    assert_eq!(sum(&m, "xferstats_logins_total"), total("logins_ok") + total("logins_failed"));
    assert_eq!(sum(&m, "xferstats_user_transfers_total"), total("transfers"));
    assert_eq!(sum(&m, "xferstats_user_transfer_bytes_total"), total("bytes_up") + total("bytes_down"));
    // The lines of the fixtures, and the rejected ones of the summary.
    let lines: u64 = FIXTURES
        .iter()
        .map(|f| String::from_utf8_lossy(&std::fs::read(fixture(f)).unwrap()).lines().count() as u64)
        .sum();
    assert_eq!(sum(&m, "xferstats_ingest_lines_total"), lines);
    let rejected: u64 = summary
        .split(" rejected lines")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rejected count in {summary}"));
    assert!(rejected > 0);
    assert_eq!(sum(&m, "xferstats_ingest_lines_rejected_total"), rejected);
    assert!(value(&m, "xferstats_last_commit_timestamp_seconds", &[]) > 1_700_000_000);
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

/// The users' series with `--top-users 2`: the two with the most bytes,
/// the others summed as `other`.
fn assert_top_users(env: &Env, text: &str) {
    let m = parse(text);
    let mut users: Vec<Value> = env.report_json("user").as_array().unwrap().clone();
    users.retain(|u| u["transfers"].as_u64().unwrap() > 0);
    let bytes = |u: &Value| u["bytes_up"].as_u64().unwrap() + u["bytes_down"].as_u64().unwrap();
    users.sort_by_key(|u| std::cmp::Reverse(bytes(u)));
    assert!(users.len() > 3);
    let (top, rest) = users.split_at(2);
    for u in top {
        let name = s(&u["user"]);
        let up = [("user", name), ("direction", "upload")];
        assert_eq!(value(&m, "xferstats_user_transfer_bytes_total", &up), u["bytes_up"].as_u64().unwrap());
        assert_eq!(value(&m, "xferstats_user_transfers_total", &up), u["uploads"].as_u64().unwrap());
        let down = [("user", name), ("direction", "download")];
        assert_eq!(value(&m, "xferstats_user_transfer_bytes_total", &down), u["bytes_down"].as_u64().unwrap());
    }
    let other = [("user", "other"), ("direction", "download")];
    let rest_down: u64 = rest.iter().map(|u| u["bytes_down"].as_u64().unwrap()).sum();
    assert_eq!(value(&m, "xferstats_user_transfer_bytes_total", &other), rest_down);
    let series = m.keys().filter(|(n, _)| n == "xferstats_user_transfers_total").count();
    assert_eq!(series, 3 * 2, "two users and other, two directions each");
}

/// Counters of the store, without the time gauges (which move with every
/// commit) and the error counter of a serving process.
fn counters(text: &str) -> BTreeMap<Series, f64> {
    parse(text).into_iter().filter(|((n, _), _)| n.ends_with("_total") && n != "xferstats_store_errors_total").collect()
}

#[test]
fn metrics_equal_the_reports_and_survive_replays() {
    let env = Env::new();
    let summary = ingest_fixtures(&env);
    let text = metrics_text(&env, &[]);
    assert_metrics_match_reports(&env, &text, &summary);
    assert_top_users(&env, &metrics_text(&env, &["--top-users", "2"]));

    // A replay (the same files, a renamed copy) changes no counter.
    ingest_fixtures(&env);
    let copy = env.path("renamed.log");
    std::fs::copy(fixture("openssh/auth.log"), &copy).unwrap();
    env.ingest(&[copy.to_str().unwrap()]);
    assert_eq!(counters(&metrics_text(&env, &[])), counters(&text));

    // New events only add.
    env.ingest(&[fixture("sftpgo/sftpgo.log").to_str().unwrap()]);
    let after = counters(&metrics_text(&env, &[]));
    for (k, v) in counters(&text) {
        assert!(after.get(&k).copied().unwrap_or(0.0) >= v, "{k:?} went down");
    }
    assert!(after.values().sum::<f64>() > counters(&text).values().sum::<f64>());
}

#[test]
fn hook_deliveries_come_from_the_outbox() {
    let env = Env::new();
    let log = fixture("rsync/default-logfile.log");
    env.ingest(&[log.to_str().unwrap()]);
    let none = parse(&metrics_text(&env, &[]));
    for state in ["pending", "done", "parked"] {
        assert_eq!(value(&none, "xferstats_hook_deliveries", &[("state", state)]), 0, "{state}");
    }
    // Real hooks on the logins of another log: one that succeeds, one
    // parked at its first failure, one that keeps failing (pending or
    // parked, as far as the delivery got within --hooks-wait).
    let other = fixture("openssh/auth.log");
    env.ingest(&[
        "--hooks-backfill",
        "--hooks-wait",
        "1",
        "--hook",
        "login,name=ok,exec=true",
        "--hook",
        "login,name=bad,attempts=1,exec=false",
        "--hook",
        "login,name=later,attempts=9,exec=false",
        other.to_str().unwrap(),
    ]);
    let status = env.cmd().args(["hooks", "status", "--format", "json"]).assert().success();
    let status: serde_json::Value = serde_json::from_slice(&status.get_output().stdout).unwrap();
    let text = metrics_text(&env, &[]);
    promtool_check(&text);
    let m = parse(&text);
    let mut total = 0;
    for state in ["pending", "done", "parked"] {
        let n = value(&m, "xferstats_hook_deliveries", &[("state", state)]);
        assert_eq!(n, status[state].as_u64().unwrap(), "{state}");
        total += n;
    }
    assert!(total > 0 && total % 3 == 0, "three hooks, one delivery each per login: {total}");
    assert!(value(&m, "xferstats_hook_deliveries", &[("state", "parked")]) >= total / 3);
}

/// An HTTP/1.0 GET of `path` on `addr` (no chunked answer): status line
/// and body.
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("HTTP response");
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// Kills the child when dropped.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GETs `url_path` until the server answers (it was just started).
fn get_when_up(addr: &str, path: &str) -> (String, String) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return http_get(addr, path);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("nothing listens on {addr}");
}

#[test]
fn node_exporter_reads_the_textfile() {
    let env = Env::new();
    ingest_fixtures(&env);
    let dir = env.path("textfile");
    std::fs::create_dir(&dir).unwrap();
    let prom = dir.join("xferstats.prom");
    env.cmd().args(["metrics", "--textfile"]).arg(&prom).assert().success();
    let text = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "only the .prom file is left");
    assert_eq!(text, metrics_text(&env, &[]));
    let Some(exporter) = tool("prometheus-node-exporter") else { return };
    let addr = format!("127.0.0.1:{}", crate::pg::free_port().unwrap());
    let child = Command::new(exporter)
        .args(["--collector.disable-defaults", "--collector.textfile"])
        .arg(format!("--collector.textfile.directory={}", dir.display()))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node exporter starts");
    let _exporter = Killed(child);
    let (status, body) = get_when_up(&addr, "/metrics");
    assert!(status.ends_with(" 200 OK"), "{status}");
    let ours: String = body.lines().filter(|l| l.starts_with("xferstats_")).map(|l| format!("{l}\n")).collect();
    let scraped = parse(&ours);
    assert_eq!(scraped, parse(&text));
    assert!(body.contains("node_textfile_scrape_error 0"), "{body}");
}

#[test]
fn listen_serves_the_store_totals_per_scrape() {
    let env = Env::new();
    env.ingest(&[fixture("rsync/default-logfile.log").to_str().unwrap()]);
    let mut child = env
        .std_cmd()
        .args(["metrics", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let _server = Killed(child);
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.strip_suffix("/metrics\n"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let (status, body) = http_get(&addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    promtool_check(&body);
    let expected = metrics_text(&env, &[]);
    assert_eq!(counters(&body), counters(&expected));
    assert!(body.contains("\nxferstats_store_errors_total 0\n"), "{body}");
    assert_eq!(http_get(&addr, "/").0, "HTTP/1.1 404 Not Found");
    // A commit in between is in the next scrape.
    env.ingest(&[fixture("openssh/auth.log").to_str().unwrap()]);
    let (_, body) = http_get(&addr, "/metrics");
    assert_eq!(counters(&body), counters(&metrics_text(&env, &[])));
    assert_ne!(counters(&body), counters(&expected));
}

#[test]
fn postgres_metrics_equal_sqlite_and_the_reports() {
    let Some(db) = crate::pg::fresh("metrics") else { return };
    let summary = ingest_fixtures(&db);
    let text = metrics_text(&db, &[]);
    assert_metrics_match_reports(&db, &text, &summary);
    assert_top_users(&db, &metrics_text(&db, &["--top-users", "2"]));
    let lite = Env::new();
    ingest_fixtures(&lite);
    assert_eq!(counters(&text), counters(&metrics_text(&lite, &[])));
    let event = |t: &str| value(&parse(t), "xferstats_last_event_timestamp_seconds", &[]);
    assert_eq!(event(&text), event(&metrics_text(&lite, &[])));
    db.psql(
        "INSERT INTO hook_outbox (hook, event_id, event_time_us, trigger, payload, state, next_attempt_us, created) \
         VALUES ('h', 1, 0, 'login', '{}', 'parked', 0, now())",
    );
    let m = parse(&metrics_text(&db, &[]));
    assert_eq!(value(&m, "xferstats_hook_deliveries", &[("state", "parked")]), 1);
    assert_eq!(value(&m, "xferstats_hook_deliveries", &[("state", "pending")]), 0);
}

#[test]
fn influxdb_metrics_come_from_the_state_file_and_equal_sqlite() {
    let Some(server) = crate::influxd::influxd() else { return };
    let db = crate::influx::fresh_db(server, "INF");
    let env = Env::new();
    let url = format!("influxdb://127.0.0.1:{}/{db}?rp=raw&daily_rp=daily", server.port);
    let files: Vec<PathBuf> = FIXTURES.iter().map(|f| fixture(f)).collect();
    crate::influx::ingest(&env, &url, &files).code(1);
    let out = crate::influx::cmd(&env, &url).arg("metrics").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    promtool_check(&text);
    let lite = Env::new();
    ingest_fixtures(&lite);
    assert_eq!(counters(&text), counters(&metrics_text(&lite, &[])));
}
