//! `xferstats report`: digest, grouping keys, formats, date filters.

use predicates::str::contains;

use crate::util::{fixture, Env};

fn loaded() -> Env {
    let env = Env::new();
    env.ingest(&[fixture("rsync/default-logfile.log").to_str().unwrap()]).success();
    env
}

#[test]
fn json_contract() {
    let env = loaded();
    let v = env.report_json("day,user");
    let first = v[0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "day",
            "user",
            "transfers",
            "completed",
            "interrupted",
            "failed",
            "uploads",
            "downloads",
            "bytes_up",
            "bytes_down",
            "deletes",
            "logins_ok",
            "logins_failed"
        ]
    );
    let alice = v.as_array().unwrap().iter().find(|r| r["user"] == "alice").unwrap();
    assert_eq!(alice["day"], "2026-03-01");
    assert_eq!(alice["transfers"], 3);
    assert_eq!(alice["completed"], 2);
    assert_eq!(alice["interrupted"], 1);
    assert_eq!(alice["uploads"], 3);
    assert_eq!(alice["bytes_up"], 5000);
    assert_eq!(alice["deletes"], 1);
    assert_eq!(alice["logins_ok"], 2);
    // Failed logins of users without transfers still appear.
    let mallory = v.as_array().unwrap().iter().find(|r| r["user"] == "mallory").unwrap();
    assert_eq!(mallory["logins_failed"], 1);
    assert_eq!(mallory["transfers"], 0);
    // Keys that do not apply to logins drop the login metrics.
    let v = env.report_json("direction");
    assert!(v[0].get("logins_ok").is_none());
    let dirs: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["direction"].as_str().unwrap()).collect();
    assert_eq!(dirs, ["delete", "download", "upload"]);
    // client comes from raw events, logins included; the default IP mode
    // (hmac) shows the keyed hash, never the address.
    let v = env.report_json("client");
    let c = v.as_array().unwrap().iter().find(|r| r["logins_failed"] == 3).unwrap();
    let hash = c["client"].as_str().unwrap();
    assert_eq!(hash.len(), 22, "{hash}");
    assert!(!v.to_string().contains("198.51.100.7"));
}

#[test]
fn digest_of_latest_day_and_date_filters() {
    let env = loaded();
    let out = env.cmd().arg("report").output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("daily digest for 2026-03-02"), "{s}");
    assert!(s.lines().any(|l| l.starts_with("anonymous") && l.contains("10 B")), "{s}");
    assert!(s.lines().any(|l| l.starts_with("total")), "{s}");
    let out = env.cmd().args(["report", "--until", "2026-03-01"]).output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("daily digest for 2026-03-01"), "{s}");
    let alice = s.lines().find(|l| l.starts_with("alice")).unwrap();
    let cols: Vec<&str> = alice.split_whitespace().collect();
    // user connections failures uploads downloads bytes-up bytes-down
    assert_eq!(&cols[..5], ["alice", "2", "0", "3", "0"], "{s}");
    let out = env.cmd().args(["report", "--since", "2026-03-03", "--format", "json"]).output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "[]");
    env.cmd().args(["report", "--since", "yesterday"]).assert().code(2).stderr(contains("--since"));
}

#[test]
fn table_markdown_and_csv() {
    let env = loaded();
    let out = env.cmd().args(["report", "--by", "day", "--format", "csv"]).output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        s,
        "day,transfers,completed,interrupted,failed,uploads,downloads,bytes_up,bytes_down,deletes,logins_ok,logins_failed\n\
         2026-03-01,7,5,2,0,3,4,5000,735052983,1,2,3\n\
         2026-03-02,1,1,0,0,0,1,0,10,0,0,0\n"
    );
    let out = env.cmd().args(["report", "--by", "day", "--format", "markdown"]).output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.starts_with("| day | transfers |"), "{s}");
    assert!(s.contains("| 2026-03-02 | 1 |"), "{s}");
    let out = env.cmd().args(["report", "--by", "module"]).output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.lines().any(|l| l.starts_with("incoming")), "{s}");
}

#[test]
fn log_derived_text_is_sanitised_in_reports() {
    let env = Env::new();
    let p = env.write(
        "evil.log",
        b"2026/03/01 10:00:06 [1] connect from UNKNOWN (198.51.100.7)\n\
          2026/03/01 10:00:06 [1] auth failed on module m from UNKNOWN (198.51.100.7) for \x1b]0;pwned\x07x: password mismatch\n",
    );
    env.ingest(&[p.to_str().unwrap()]).success();
    for fmt in ["table", "csv", "markdown"] {
        let out = env.cmd().args(["report", "--by", "user", "--format", fmt]).output().unwrap();
        let s = String::from_utf8(out.stdout).unwrap();
        assert!(!s.contains('\u{1b}') && !s.contains('\u{7}'), "{fmt}: {s:?}");
        assert!(s.contains("\\x1b]0;pwned\\x07x"), "{fmt}: {s}");
    }
}

#[test]
fn help_names_the_default_database() {
    let env = Env::new();
    env.cmd().arg("--help").assert().success().stdout(contains("/var/lib/xferstats"));
    env.cmd().args(["ingest", "--help"]).assert().success().stdout(contains("--rsync-log-format"));
    env.cmd().arg("formats").assert().success().stdout(contains("rsyncd"));
}

#[test]
fn report_without_a_database_says_what_to_do() {
    let env = Env::new();
    env.cmd().arg("report").assert().code(2).stderr(contains("no database yet"));
}
