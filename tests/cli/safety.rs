//! Security and robustness of what xferstats shows and creates: no
//! log-derived character that could rewrite a terminal or a report row is
//! printed raw in any output, and the files it creates are private unless
//! asked otherwise.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use predicates::str::contains;
use xferstats::sanitize::is_unsafe;

use crate::util::{fixture, Env};

/// One character of each class no output may show raw: C0, DEL, C1,
/// format characters (bidi, zero-width, BOM, tags) and the line/paragraph
/// separators.
const CLASSES: &[char] = &[
    '\u{1b}',
    '\u{7}',
    '\u{7f}',
    '\u{85}',
    '\u{9b}',
    '\u{ad}',
    '\u{61c}',
    '\u{200b}',
    '\u{200e}',
    '\u{2028}',
    '\u{2029}',
    '\u{202e}',
    '\u{2066}',
    '\u{feff}',
    '\u{e0041}',
];

/// Users `u0<c>x`, `u1<c>x`, … (rsyncd failed logins), one per class.
fn users() -> Vec<String> {
    CLASSES.iter().enumerate().map(|(i, c)| format!("u{i:02}{c}x")).collect()
}

fn evil_log(env: &Env) -> std::path::PathBuf {
    let mut log = String::new();
    for (i, u) in users().iter().enumerate() {
        log.push_str(&format!(
            "2026/03/01 10:00:{i:02} [{i}] auth failed on module m from UNKNOWN (198.51.100.7) for {u}: password mismatch\n"
        ));
    }
    env.write("evil.log", log.as_bytes())
}

/// What `sanitize` shows for the character `c`.
fn shown(c: char) -> String {
    if (c as u32) < 0x100 {
        format!("\\x{:02x}", c as u32)
    } else {
        format!("\\u{{{:x}}}", c as u32)
    }
}

fn raw_unsafe(text: &str) -> Vec<char> {
    text.chars().filter(|&c| is_unsafe(c) && c != '\n').collect()
}

#[test]
fn reports_escape_every_class_in_every_format() {
    let env = Env::new();
    let log = evil_log(&env);
    env.ingest(&[log.to_str().unwrap()]).success();
    for by in [None, Some("user"), Some("day,user")] {
        for fmt in ["table", "markdown", "csv"] {
            let mut cmd = env.cmd();
            cmd.args(["report", "--format", fmt]);
            if let Some(by) = by {
                cmd.args(["--by", by]);
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "{fmt} {by:?}: {}", String::from_utf8_lossy(&out.stderr));
            let s = String::from_utf8(out.stdout).unwrap();
            assert_eq!(raw_unsafe(&s), Vec::<char>::new(), "{fmt} {by:?}: {s}");
            for (i, c) in CLASSES.iter().enumerate() {
                let want = format!("u{i:02}{}x", shown(*c));
                assert!(s.contains(&want), "{fmt} {by:?}: {want} missing in {s}");
            }
            // One line per user, the header(s) and the total: no character
            // split a row.
            let rows = s.lines().filter(|l| l.contains("u0") || l.contains("u1")).count();
            assert_eq!(rows, CLASSES.len(), "{fmt} {by:?}: {s}");
        }
        // JSON: escaped as \uXXXX, and parses back to the stored names.
        let mut cmd = env.cmd();
        cmd.args(["report", "--format", "json"]);
        if let Some(by) = by {
            cmd.args(["--by", by]);
        }
        let out = cmd.output().unwrap();
        let s = String::from_utf8(out.stdout).unwrap();
        assert_eq!(raw_unsafe(&s), Vec::<char>::new(), "json {by:?}: {s}");
        assert!(s.contains(r#""u11\u202ex""#) && s.contains(r#""u14\udb40\udc41x""#), "json {by:?}: {s}");
        let rows: serde_json::Value = serde_json::from_str(&s).unwrap();
        let got: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["user"].as_str().unwrap()).collect();
        assert_eq!(got, users(), "json {by:?}");
    }
}

#[test]
fn import_summary_escapes_every_class() {
    let env = Env::new();
    let mut log = String::new();
    for c in CLASSES {
        log.push_str(&format!("not a log line {c} here\n"));
    }
    let name = "evil\u{202e}gol.log";
    let p = env.write(name, log.as_bytes());
    let out = env.cmd().args(["-v", "ingest", "--format", "rsyncd", "--timezone", "UTC"]).arg(&p).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(raw_unsafe(&err), Vec::<char>::new(), "{err}");
    assert!(err.contains("evil\\u{202e}gol.log: rsyncd, 15 lines, 15 rejected"), "{err}");
    assert!(
        err.contains("evil\\u{202e}gol.log:1: no rsyncd log-file or syslog prefix: not a log line \\x1b here"),
        "{err}"
    );
    assert!(
        err.contains("evil\\u{202e}gol.log:3: no rsyncd log-file or syslog prefix: not a log line \\x7f here"),
        "{err}"
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

fn companions(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|s| {
            let mut p = db.as_os_str().to_os_string();
            p.push(s);
            PathBuf::from(p)
        })
        .collect()
}

/// Runs `ingest` of the rsyncd sample with the state directory `state`
/// (host key generated there), `--db db` and the extra global `args`.
fn ingest_sample(env: &Env, db: &Path, state: &Path, args: &[&str]) {
    let mut c = env.cmd_with_key_file();
    c.env("XFERSTATS_STATE_DIR", state).arg("--db").arg(db).args(args);
    c.args(["ingest", "--timezone", "UTC", "--progress", "never"]).arg(fixture("rsync/default-logfile.log"));
    c.assert().success();
}

#[test]
fn new_databases_and_directories_are_private() {
    let env = Env::new();
    let db = env.path("srv/stats/x.db");
    let state = env.path("var/state");
    // An existing directory keeps its mode.
    std::fs::create_dir(env.path("srv")).unwrap();
    std::fs::set_permissions(env.path("srv"), std::fs::Permissions::from_mode(0o711)).unwrap();
    ingest_sample(&env, &db, &state, &[]);
    // The database and the companions SQLite keeps beside it.
    for f in companions(&db) {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    for d in ["srv/stats", "var", "var/state"] {
        assert_eq!(mode(&env.path(d)), 0o700, "{d}");
    }
    assert_eq!(mode(&env.path("srv")), 0o711);
    assert_eq!(mode(&state.join("host.key")), 0o600);
}

#[test]
fn db_mode_sets_files_and_directories_exactly() {
    let env = Env::new();
    let db = env.path("shared/x.db");
    let state = env.path("state");
    // Under a umask that would otherwise take the group's bits away.
    let mut c = std::process::Command::new("sh");
    c.arg("-c").arg("umask 077; exec \"$0\" \"$@\"").arg(assert_cmd::cargo::cargo_bin("xferstats"));
    c.env_remove("XFERSTATS_HOST_KEY").env_remove("XFERSTATS_DB").env_remove("XFERSTATS_IP_MODE");
    c.env("TZ", "UTC").env("XFERSTATS_STATE_DIR", &state).env("XFERSTATS_GEOIP", "off");
    c.args(["--db-mode", "0640", "--db"]).arg(&db);
    c.args(["ingest", "--timezone", "UTC", "--progress", "never"]).arg(fixture("rsync/default-logfile.log"));
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in companions(&db) {
        assert_eq!(mode(&f), 0o640, "{}", f.display());
    }
    assert_eq!(mode(&env.path("shared")), 0o750);
    // The state directory holds the default database: the group may enter
    // it, the key stays the owner's.
    assert_eq!(mode(&state), 0o750);
    assert_eq!(mode(&state.join("host.key")), 0o600);
    // Existing files keep their mode.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    ingest_sample(&env, &db, &state, &["--db-mode", "0644"]);
    assert_eq!(mode(&db), 0o600);
}

#[test]
fn db_mode_must_be_an_octal_mode_the_owner_can_write() {
    let env = Env::new();
    for (bad, why) in
        [("rw-r-----", "not an octal mode"), ("0440", "owner needs read and write"), ("4755", "at most 0777")]
    {
        env.cmd().args(["--db-mode", bad, "db", "migrate"]).assert().code(2).stderr(contains(why));
    }
    assert!(!env.db().exists());
}

#[test]
fn influx_state_files_are_private() {
    let env = Env::new();
    let state = env.path("state");
    // Opening the store creates its state file; no request is made.
    let mut c = env.cmd_with_key_file();
    c.env("XFERSTATS_STATE_DIR", &state).args(["--db", "influxdb://127.0.0.1:9/stats", "db", "migrate"]);
    c.assert().success();
    let files: Vec<PathBuf> = std::fs::read_dir(&state).unwrap().map(|e| e.unwrap().path()).collect();
    let db = files.iter().find(|p| p.to_string_lossy().ends_with(".db")).expect("a state file");
    for f in companions(db) {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(&state), 0o700);
}

/// The effective user id of this process.
fn euid() -> u32 {
    std::fs::metadata("/proc/self").expect("/proc").uid()
}

/// `report --by day,user --format json --db DB_ARG` on the database file
/// `db`, run by a user who can read it but not write it or its directory:
/// as root, the binary (copied where that user can run it) under `setpriv`
/// as nobody; else this user after taking write permission away.
fn report_as_reader(env: &Env, db: &Path, db_arg: &std::ffi::OsStr) -> std::process::Output {
    let dir = db.parent().unwrap();
    if euid() == 0 {
        let bin = env.path("xferstats");
        std::fs::copy(assert_cmd::cargo::cargo_bin("xferstats"), &bin).unwrap();
        std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&bin);
        c.env("TZ", "UTC").env("XFERSTATS_STATE_DIR", env.path("nobody-state")).env_remove("XFERSTATS_DB");
        c.arg("--db").arg(db_arg).args(["report", "--by", "day,user", "--format", "json"]);
        // Another test's fork may still hold the copy's write descriptor
        // for a moment (ETXTBSY until its exec): try again.
        for _ in 0..50 {
            let out = c.output().expect("setpriv (util-linux) runs");
            if !String::from_utf8_lossy(&out.stderr).contains("Text file busy") {
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{}: text file busy for 5 s", bin.display())
    } else {
        let ro = std::fs::Permissions::from_mode(0o444);
        for f in companions(db).iter().filter(|f| f.exists()) {
            std::fs::set_permissions(f, ro.clone()).unwrap();
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let out = env
            .cmd_with_key_file()
            .arg("--db")
            .arg(db_arg)
            .args(["report", "--by", "day,user", "--format", "json"])
            .output();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        out.unwrap()
    }
}

fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn report_works_for_a_reader_without_write_access() {
    let env = Env::new();
    let db = env.path("stats/x.db");
    ingest_sample(&env, &db, &env.state_dir(), &["--db-mode", "0644"]);
    let mut c = env.cmd_with_key_file();
    let want = c.arg("--db").arg(&db).args(["report", "--by", "day,user", "--format", "json"]).output().unwrap();
    assert!(want.status.success(), "{}", String::from_utf8_lossy(&want.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&want.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 6, "{rows}");

    // As xferstats leaves it: the database with its (empty) WAL and index.
    let before = listing(db.parent().unwrap());
    assert_eq!(before.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["x.db", "x.db-shm", "x.db-wal"]);
    let out = report_as_reader(&env, &db, db.as_os_str());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), String::from_utf8(want.stdout.clone()).unwrap());
    assert_eq!(listing(db.parent().unwrap()), before, "the reader changed the directory");

    // The database file alone (copied, or left by an older xferstats).
    for f in &companions(&db)[1..] {
        std::fs::remove_file(f).unwrap();
    }
    let out = report_as_reader(&env, &db, db.as_os_str());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), String::from_utf8(want.stdout).unwrap());
    assert_eq!(listing(db.parent().unwrap()), [("x.db".to_string(), before[0].1)]);
}

#[test]
fn report_reads_an_influxdb_state_file_without_write_access() {
    let env = Env::new();
    let state = env.path("influx/state.db");
    let url = format!("influxdb://127.0.0.1:9/stats?state={}", state.display());
    // Opening the store for writing creates the state file; no request.
    env.cmd_with_key_file().args(["--db-mode", "0644", "--db", &url, "db", "migrate"]).assert().success();
    let before = listing(state.parent().unwrap());
    let out = report_as_reader(&env, &state, url.as_ref());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "[]\n");
    assert_eq!(listing(state.parent().unwrap()), before, "the reader changed the directory");
    // The state file alone.
    for f in &companions(&state)[1..] {
        std::fs::remove_file(f).unwrap();
    }
    let out = report_as_reader(&env, &state, url.as_ref());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "[]\n");
}

#[test]
fn report_on_an_older_schema_asks_for_a_migration() {
    let env = Env::new();
    env.ingest(&[fixture("rsync/default-logfile.log").to_str().unwrap()]).success();
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute("DELETE FROM schema_version WHERE version > 1", []).unwrap();
    drop(conn);
    env.cmd()
        .args(["report", "--by", "day"])
        .assert()
        .code(4)
        .stderr(contains("schema version 1, this xferstats needs"))
        .stderr(contains("run `xferstats db migrate`"));
}
