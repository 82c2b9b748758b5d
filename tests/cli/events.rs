//! `xferstats events`: the enriched events on standard output, field for
//! field what a store gets from the same inputs.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Output, Stdio};

use rusqlite::types::Value as Sql;
use serde_json::{Map, Value};

use crate::util::{fixture, geolite, gzip, synthetic_log, zstd, Env, INGEST};

/// `events` with the options every test uses.
const EVENTS: [&str; 7] = ["events", "--timezone", "UTC", "--server-host", "vm", "--progress", "never"];

/// One fixture of each format family (the ProFTPD family as its two logs).
const FAMILIES: [&str; 10] = [
    "rsync/default-logfile.log",
    "rsync/summary-only-rfc3339.log",
    "syslog/mixed.log",
    "openssh/auth.log",
    "xferlog/traps.xferlog",
    "vsftpd/traps.log",
    "proftpd/proftpd.log",
    "proftpd/extended.log",
    "sftpgo/sftpgo.log",
    "rsync/custom-itemize.log",
];

fn events(env: &Env, args: &[&str]) -> Output {
    env.cmd().args(EVENTS).args(args).output().expect("events runs")
}

fn ndjson(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).expect("UTF-8");
    let mut v: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("one JSON object a line")).collect();
    v.sort_by_key(|e| (e["kind"].as_str().unwrap().to_string(), e["event_id"].as_i64().unwrap()));
    v
}

/// Every raw row of the SQLite store `db`, as `events` names the columns.
fn sqlite_rows(db: &std::path::Path) -> Vec<Value> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut rows = Vec::new();
    for sql in [
        "SELECT 'transfer' AS kind, event_id, end_us AS time_us, start_us, protocol, direction, status, bytes, \
         wire_bytes, file_size, path, module, user, client_ip, client_host, client_hash, country, city, latitude, \
         longitude, geohash, session, server_host, source, granularity, input FROM transfers",
        "SELECT 'login' AS kind, event_id, time_us, protocol, outcome, method, user, client_ip, client_host, \
         client_hash, country, city, latitude, longitude, geohash, session, server_host, source, input FROM logins",
    ] {
        let mut st = conn.prepare(sql).unwrap();
        let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
        let got = st
            .query_map([], |r| {
                let mut m = Map::new();
                for (i, n) in names.iter().enumerate() {
                    let v = match r.get::<_, Sql>(i)? {
                        Sql::Null => Value::Null,
                        Sql::Integer(n) => n.into(),
                        Sql::Real(x) => x.into(),
                        Sql::Text(s) => s.into(),
                        Sql::Blob(_) => panic!("no blob columns"),
                    };
                    m.insert(n.clone(), v);
                }
                Ok(Value::Object(m))
            })
            .unwrap();
        rows.extend(got.map(Result::unwrap));
    }
    rows.sort_by_key(|e| (e["kind"].as_str().unwrap().to_string(), e["event_id"].as_i64().unwrap()));
    rows
}

/// `events` and `ingest` of the same inputs with the same options: the
/// same exit code, and the events are the store's rows field for field.
fn same_as_store(env: &Env, args: &[&str]) -> Vec<Value> {
    let out = events(env, args);
    let ingested = env.cmd().args(INGEST).args(args).output().unwrap();
    assert_eq!(out.status.code(), ingested.status.code(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = ndjson(&out.stdout);
    assert_eq!(got, sqlite_rows(&env.db()), "{args:?}");
    got
}

#[test]
fn each_format_family_matches_the_store() {
    for f in FAMILIES {
        let env = Env::new();
        let p = fixture(f);
        let got = same_as_store(&env, &[p.to_str().unwrap()]);
        assert!(!got.is_empty(), "{f}");
    }
}

#[test]
fn exact_ndjson_of_the_first_event() {
    let env = Env::new();
    let out = events(&env, &[fixture("rsync/default-logfile.log").to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 14);
    assert_eq!(
        text.lines().next().unwrap(),
        r#"{"kind":"transfer","event_id":9060177604928270495,"time_us":1772359202000000,"start_us":null,"protocol":"rsync","direction":"download","status":"completed","bytes":734003200,"wire_bytes":null,"file_size":734003200,"path":"iso/my disk (v2).iso","module":"pub","user":"anonymous","client_ip":null,"client_host":null,"client_hash":"CAvm2QPQQKAtepGWD7pauQ","country":null,"city":null,"latitude":null,"longitude":null,"geohash":null,"session":"101@1772359201","server_host":"vm","source":"rsyncd","granularity":"file","input":-8701280068545068911}"#
    );
    // The text escapes survive: a line break in a path is `\n` in JSON.
    assert!(text.contains(r#""path":"iso/line\nbreak.txt""#), "{text}");
}

#[test]
fn several_inputs_join_sessions_and_report_rejected_lines() {
    let env = Env::new();
    let (a, b) = (fixture("rsync/bad-lines.log"), fixture("openssh/auth.log"));
    let got = same_as_store(&env, &[a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(got.len(), 12);
    let out = events(&env, &[a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("4 rejected lines") && err.contains("rejected lines (first 3):"), "{err}");
    // A missing input: exit 3, the others still written.
    let out = events(&env, &["/nonexistent/x.log", b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 11);
}

#[test]
fn stdin_and_compressed_inputs() {
    let env = Env::new();
    let plain = fixture("vsftpd/traps.log");
    let data = std::fs::read(&plain).unwrap();
    let want = events(&env, &[plain.to_str().unwrap()]).stdout;
    let gz = env.write("traps.log.gz", &gzip(&data));
    assert_eq!(events(&env, &[gz.to_str().unwrap()]).stdout, want);
    let zst = env.write("traps.log.zst", &zstd(&data));
    assert_eq!(events(&env, &[zst.to_str().unwrap()]).stdout, want);
    let out = env.cmd().args(EVENTS).arg("-").write_stdin(gzip(&data)).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, want);
}

/// The addresses in `log` (every word that parses as one).
fn addresses(log: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(log);
    let mut v: Vec<String> = text
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
        .filter(|w| w.contains(['.', ':']) && w.parse::<IpAddr>().is_ok())
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn ip_privacy_modes() {
    let Some(geo) = geolite() else { return };
    let log = fixture("geoip/clients.log");
    let ips = addresses(&std::fs::read(&log).unwrap());
    assert!(ips.len() >= 4, "{ips:?}");
    let (geo, log) = (geo.to_str().unwrap(), log.to_str().unwrap());
    for mode in ["hmac", "truncate", "drop", "full"] {
        let env = Env::new();
        let got = same_as_store(&env, &["--geoip", geo, "--ip-mode", mode, log]);
        let text = String::from_utf8(events(&env, &["--geoip", geo, "--ip-mode", mode, log]).stdout).unwrap();
        assert!(got.iter().any(|e| e["country"].is_string()), "{mode}: located");
        let field = |name: &str| got.iter().filter(|e| !e[name].is_null()).count();
        match mode {
            "full" => {
                assert_eq!(field("client_ip"), got.len(), "{mode}");
                assert_eq!(field("client_hash"), got.len(), "{mode}");
                // Host names reach the modes that keep them (the decoder
                // leaves them out for the others).
                assert!(got.iter().any(|e| e["client_host"] == "dsl-7.pool.example.net"), "{mode}");
            }
            _ => {
                // No address of the log is recoverable from the stream.
                for ip in &ips {
                    assert!(!text.contains(ip.as_str()), "{mode}: {ip} in {text}");
                }
                match mode {
                    "hmac" => {
                        assert_eq!((field("client_ip"), field("client_host"), field("client_hash")), (0, 0, got.len()))
                    }
                    "drop" => assert_eq!((field("client_ip"), field("client_host"), field("client_hash")), (0, 0, 0)),
                    _ => {
                        assert_eq!(field("client_hash"), 0);
                        assert!(got.iter().any(|e| e["client_host"] == "pool.example.net"), "{mode}");
                        assert!(got.iter().all(|e| {
                            let ip = e["client_ip"].as_str().unwrap();
                            ip.ends_with("/24") || ip.ends_with("/48")
                        }));
                    }
                }
            }
        }
    }
}

#[test]
fn the_batch_size_does_not_change_the_stream() {
    // 3,000 connections: ~10,000 events, in batches of 2,500 by default.
    let env = Env::new();
    let log = env.dir.path().join("big.log");
    std::fs::write(&log, synthetic_log(3_000)).unwrap();
    let log = log.to_str().unwrap();
    let out = |args: &[&str]| {
        let o = events(&env, &[args, &[log]].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let default = out(&[]);
    assert!(ndjson(&default).len() > 2 * 2_500);
    for size in ["1", "999", "10000", "1000000"] {
        assert!(out(&["--batch-size", size]) == default, "--batch-size {size}");
    }
}

/// The fields of an RFC 4180 document's records (CRLF line ends).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CRLF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(row.is_empty() && field.is_empty(), "ends with CRLF");
    rows
}

#[test]
fn csv_is_escaped_and_neutralises_formulas() {
    let env = Env::new();
    let log = env.write(
        "tricky.log",
        b"2026/05/01 10:00:00 [7] connect from UNDETERMINED (192.0.2.7)\n\
          2026/05/01 10:00:00 [7] rsync to team/ from -rf@UNDETERMINED (192.0.2.7)\n\
          2026/05/01 10:00:01 [7] recv UNDETERMINED [192.0.2.7] team (-rf) =1+1,\"q\".csv 10\n\
          2026/05/01 10:00:01 [7] recv UNDETERMINED [192.0.2.7] team (-rf) @x\xc2\x9b\x1b[2J.txt 20\n\
          2026/05/01 10:00:02 [7] sent 1 bytes  received 30 bytes  total size 30\n",
    );
    let json = ndjson(&events(&env, &[log.to_str().unwrap()]).stdout);
    let out = events(&env, &["--format", "csv", log.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(",\"'=1+1,\"\"q\"\".csv\","), "{text}");
    assert!(text.contains(",'@x\u{fffd}\u{fffd}[2J.txt,"), "{text}");
    let rows = parse_csv(&text);
    let header = &rows[0];
    assert_eq!(header.len(), 28);
    assert_eq!(rows.len() - 1, json.len());
    // Every CSV field is the JSON value (less the neutralising quote and
    // the control characters), every row has every column.
    for row in &rows[1..] {
        assert_eq!(row.len(), header.len());
        let id: i64 = row[1].parse().unwrap();
        let e = json.iter().find(|e| e["event_id"] == id).expect("same events");
        for (name, field) in header.iter().zip(row) {
            let want = match &e[name.as_str()] {
                Value::Null => String::new(),
                Value::String(s) => {
                    let s: String = s.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
                    if s.starts_with(['=', '+', '-', '@']) {
                        format!("'{s}")
                    } else {
                        s
                    }
                }
                v => v.to_string(),
            };
            assert_eq!(field, &want, "{name}");
        }
    }
    assert!(json.iter().all(|e| e["user"] == "-rf"));
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let env = Env::new();
    let log = env.write("big.log", &synthetic_log(20_000));
    let mut c = env.std_cmd().args(EVENTS).arg(&log).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(c.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("{\"kind\":\"login\""), "{first}");
    let out = c.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn reread_is_refused_without_a_store() {
    let env = Env::new();
    let out = events(&env, &["--reread", fixture("rsync/default-logfile.log").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reread"), "{}", String::from_utf8_lossy(&out.stderr));
}
