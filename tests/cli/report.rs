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
    // user logins failed-logins uploads downloads bytes-up bytes-down
    assert_eq!(&cols[..5], ["alice", "2", "0", "3", "0"], "{s}");
    let out = env.cmd().args(["report", "--since", "2026-03-03", "--format", "json"]).output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "[]");
    env.cmd()
        .args(["report", "--since", "last week"])
        .assert()
        .code(2)
        .stderr(contains("--since 'last week': expected a day YYYY-MM-DD, today, yesterday or -Nd (N days ago)"));
}

/// The report as text, with `today` set to `today`.
fn report_on(env: &Env, today: &str, args: &[&str]) -> String {
    let out = env.cmd().env("XFERSTATS_TEST_TODAY", today).arg("report").args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

const DAY_HEADER: &str =
    "day,transfers,completed,interrupted,failed,uploads,downloads,bytes_up,bytes_down,deletes,logins_ok,logins_failed\n";

#[test]
fn relative_days_and_reversed_range() {
    let env = loaded();
    let day1 = "2026-03-01,7,5,2,0,3,4,5000,735052983,1,2,3\n";
    let day2 = "2026-03-02,1,1,0,0,0,1,0,10,0,0,0\n";
    let csv =
        |today: &str, args: &[&str]| report_on(&env, today, &[&["--by", "day", "--format", "csv"], args].concat());
    assert_eq!(csv("2026-03-02", &["--since", "today"]), format!("{DAY_HEADER}{day2}"));
    assert_eq!(csv("2026-03-02", &["--since", "yesterday", "--until", "yesterday"]), format!("{DAY_HEADER}{day1}"));
    assert_eq!(csv("2026-03-08", &["--since", "-7d"]), format!("{DAY_HEADER}{day1}{day2}"));
    assert_eq!(csv("2026-03-08", &["--since", "-6d"]), format!("{DAY_HEADER}{day2}"));
    assert_eq!(csv("2026-03-08", &["--until", "-7d"]), format!("{DAY_HEADER}{day1}"));
    assert_eq!(csv("2026-03-08", &["--since", "2026-03-01", "--until", "-7d"]), format!("{DAY_HEADER}{day1}"));
    // A reversed range is an error naming both flags, also when one is relative.
    for (since, until) in [("2026-03-02", "2026-03-01"), ("today", "-1d")] {
        env.cmd()
            .env("XFERSTATS_TEST_TODAY", "2026-03-02")
            .args(["report", "--since", since, "--until", until])
            .assert()
            .code(2)
            .stdout("")
            .stderr(
                "xferstats: error: --since 2026-03-02 is after --until 2026-03-01: the period holds no day (swap them?)\n",
            );
    }
}

#[test]
fn digest_is_of_the_last_complete_day() {
    let env = loaded();
    // Today is 2026-03-02: its events so far are not the digest's.
    let s = report_on(&env, "2026-03-02", &[]);
    assert_eq!(
        s,
        "xferstats daily digest for 2026-03-01 (UTC)\n\n\
         user       logins  failed logins  uploads  downloads  bytes up  bytes down\n\
         ---------  ------  -------------  -------  ---------  --------  ----------\n\
         alice           2              0        3          0    5.0 kB         0 B\n\
         anonymous       0              0        0          4       0 B    735.1 MB\n\
         mallory         0              1        0          0       0 B         0 B\n\
         root            0              1        0          0       0 B         0 B\n\
         unknown         0              1        0          0       0 B         0 B\n\
         ---------  ------  -------------  -------  ---------  --------  ----------\n\
         total           2              3        3          4    5.0 kB    735.1 MB\n"
    );
    assert!(report_on(&env, "2026-03-02", &["--day", "today"]).starts_with("xferstats daily digest for 2026-03-02"));
    assert!(report_on(&env, "2026-03-09", &["--day", "-8d"]).starts_with("xferstats daily digest for 2026-03-01"));
    // Days later, the last complete day with events is still 2026-03-02.
    assert!(report_on(&env, "2026-03-10", &[]).starts_with("xferstats daily digest for 2026-03-02"));
    let md = report_on(&env, "2026-03-02", &["--format", "markdown"]);
    assert!(md.contains("| user | logins | failed logins | uploads |"), "{md}");
    let json = report_on(&env, "2026-03-02", &["--format", "json"]);
    assert!(json.contains("\"day\": \"2026-03-01\"") && !json.contains("2026-03-02"), "{json}");
    env.cmd().args(["report", "--day", "today", "--by", "user"]).assert().code(2).stderr(contains("--day"));
}

#[test]
fn filters_and_top_on_every_format() {
    let env = loaded();
    let user_header =
        "user,transfers,completed,interrupted,failed,uploads,downloads,bytes_up,bytes_down,deletes,logins_ok,logins_failed\n";
    assert_eq!(
        report_on(&env, "2026-03-10", &["--by", "user", "--format", "csv", "--user", "alice"]),
        format!("{user_header}alice,3,2,1,0,3,0,5000,0,1,2,0\n")
    );
    // A filter key that is not grouped by is summed over.
    assert_eq!(
        report_on(
            &env,
            "2026-03-10",
            &["--by", "day", "--format", "csv", "--protocol", "rsync", "--user", "anonymous"]
        ),
        format!("{DAY_HEADER}2026-03-01,4,3,1,0,0,4,0,735052983,0,0,0\n2026-03-02,1,1,0,0,0,1,0,10,0,0,0\n")
    );
    // Logins have no module: a module filter drops the login metrics.
    assert_eq!(
        report_on(&env, "2026-03-10", &["--by", "direction", "--format", "csv", "--module", "incoming"]),
        "direction,transfers,completed,interrupted,failed,uploads,downloads,bytes_up,bytes_down,deletes\n\
         delete,0,0,0,0,0,0,0,0,1\n\
         upload,3,2,1,0,3,0,5000,0,0\n"
    );
    assert_eq!(report_on(&env, "2026-03-10", &["--by", "user", "--format", "json", "--host", "elsewhere"]), "[]\n");
    // --top: the N with the most bytes, then transfers, then logins.
    let v: serde_json::Value =
        serde_json::from_str(&report_on(&env, "2026-03-10", &["--by", "user", "--format", "json", "--top", "2"]))
            .unwrap();
    let users: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["user"].as_str().unwrap()).collect();
    assert_eq!(users, ["anonymous", "alice"]);
    assert_eq!(
        report_on(&env, "2026-03-10", &["--by", "user", "--format", "csv", "--top", "1", "--user", "alice"]),
        format!("{user_header}alice,3,2,1,0,3,0,5000,0,1,2,0\n")
    );
    // The table sums the rest into one row; the total is of every row.
    assert_eq!(
        report_on(&env, "2026-03-10", &["--by", "user", "--top", "2"]),
        "user       transfers  completed  interrupted  failed  uploads  downloads  bytes up  bytes down  deletes  logins ok  logins failed\n\
         ---------  ---------  ---------  -----------  ------  -------  ---------  --------  ----------  -------  ---------  -------------\n\
         anonymous          5          4            1       0        0          5       0 B    735.1 MB        0          0              0\n\
         alice              3          2            1       0        3          0    5.0 kB         0 B        1          2              0\n\
         (3 more)           0          0            0       0        0          0       0 B         0 B        0          0              3\n\
         ---------  ---------  ---------  -----------  ------  -------  ---------  --------  ----------  -------  ---------  -------------\n\
         total              8          6            2       0        3          5    5.0 kB    735.1 MB        1          2              3\n"
    );
    // The digest takes them too.
    let s = report_on(&env, "2026-03-02", &["--format", "markdown", "--top", "1", "--protocol", "rsync"]);
    assert_eq!(
        s,
        "## xferstats daily digest, 2026-03-01 (UTC)\n\n\
         | user | logins | failed logins | uploads | downloads | bytes up | bytes down |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n\
         | anonymous | 0 | 0 | 0 | 4 | 0 B | 735.1 MB |\n\
         | (4 more) | 2 | 3 | 3 | 0 | 5.0 kB | 0 B |\n\
         | total | 2 | 3 | 3 | 4 | 5.0 kB | 735.1 MB |\n"
    );
    env.cmd().args(["report", "--top", "0"]).assert().code(2).stderr(contains("--top"));
}

#[test]
fn empty_values_are_labelled_in_tables_only() {
    let env = Env::new();
    env.ingest(&[fixture("openssh/auth.log").to_str().unwrap()]).success();
    let md = report_on(&env, "2026-03-10", &["--by", "module,country", "--format", "markdown"]);
    assert_eq!(
        md,
        "| module | country | transfers | completed | interrupted | failed | uploads | downloads | bytes up | bytes down | deletes |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n\
         | (none) | (unknown) | 5 | 4 | 1 | 0 | 3 | 2 | 4.3 MB | 345.7 kB | 1 |\n\
         | total |  | 5 | 4 | 1 | 0 | 3 | 2 | 4.3 MB | 345.7 kB | 1 |\n"
    );
    let table = report_on(&env, "2026-03-10", &["--by", "country"]);
    assert!(table.lines().nth(2).unwrap().starts_with("(unknown)  "), "{table}");
    let csv = report_on(&env, "2026-03-10", &["--by", "module", "--format", "csv"]);
    assert_eq!(csv.lines().nth(1), Some(",5,4,1,0,3,2,4337153,345688,1"));
    // The label selects the empty value; JSON keeps "".
    let v: serde_json::Value = serde_json::from_str(&report_on(
        &env,
        "2026-03-10",
        &["--by", "module", "--module", "(none)", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(v[0]["module"], "");
    assert_eq!(v[0]["transfers"], 5);
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
