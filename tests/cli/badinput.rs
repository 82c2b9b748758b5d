//! Bad input is counted and reported, never aborts the import, and ends
//! with the documented exit code (1 rejected lines / unrecognised input,
//! 2 usage, 3 unreadable input).

use predicates::str::contains;

use crate::util::{fixture, gzip, junk, stderr, Env};

#[test]
fn rejected_lines_are_reported_with_samples() {
    let env = Env::new();
    let a = env.ingest(&[fixture("rsync/bad-lines.log").to_str().unwrap()]).code(1);
    let err = stderr(&a);
    assert!(err.contains("4 rejected lines"), "{err}");
    assert!(err.contains("bad-lines.log:2: no rsyncd log-file or syslog prefix: this is not a log line"), "{err}");
    assert!(
        err.contains("bad-lines.log:3: no rsyncd log-file or syslog prefix: \u{fffd}\u{fffd}\\x00garbage\\x1b[31m"),
        "{err}"
    );
    assert!(err.contains("bad-lines.log:5: neither an rsyncd message nor a line of the log format"), "{err}");
    // Binary bytes and escape sequences are shown escaped, never raw.
    assert!(!err.contains('\u{1b}'), "raw ESC reached the terminal: {err:?}");
    assert!(err.contains("\\x1b[31m"), "{err}");
    // Only three samples per input.
    assert!(err.contains("rejected lines (first 3):"), "{err}");
    assert!(!err.contains("bad-lines.log:6:"), "{err}");
    let rows = env.report_json("day");
    assert_eq!(rows[0]["downloads"], 1);
}

#[test]
fn binary_garbage_is_not_guessed() {
    let env = Env::new();
    let p = env.write("random.bin", &junk(100_000));
    let good = fixture("rsync/default-logfile.log");
    let a = env.ingest(&[p.to_str().unwrap(), good.to_str().unwrap()]).code(1);
    assert!(stderr(&a).contains("random.bin: -, 0 lines: not a recognised transfer log"), "{}", stderr(&a));
    assert!(stderr(&a).contains("14 new events"), "the good file is still imported: {}", stderr(&a));
}

#[test]
fn invalid_utf8_names_are_kept_lossily() {
    let env = Env::new();
    let p = env.write(
        "latin1.log",
        b"2026/03/01 10:00:01 [1] connect from UNDETERMINED (192.0.2.10)\n\
          2026/03/01 10:00:01 [1] rsync on pub/ from UNDETERMINED (192.0.2.10)\n\
          2026/03/01 10:00:02 [1] send UNDETERMINED [192.0.2.10] pub () caf\xe9.txt 42\n",
    );
    env.ingest(&[p.to_str().unwrap()]).success();
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let path: String = conn.query_row("SELECT path FROM transfers", [], |r| r.get(0)).unwrap();
    assert_eq!(path, "caf\u{fffd}.txt");
}

#[test]
fn a_ten_megabyte_line_is_skipped() {
    let env = Env::new();
    let mut data = std::fs::read(fixture("rsync/default-logfile.log")).unwrap();
    let mut huge = b"2026/03/01 10:00:02 [101] send UNDETERMINED [192.0.2.10] pub () ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    huge.extend_from_slice(b" 5\n");
    let at = data.iter().position(|&c| c == b'\n').unwrap() + 1;
    data.splice(at..at, huge);
    let p = env.write("huge.log", &data);
    let a = env.ingest(&[p.to_str().unwrap()]).code(1);
    let err = stderr(&a);
    assert!(err.contains("huge.log:2: line longer than 1 MiB"), "{err}");
    assert!(err.contains("14 new events"), "{err}");
}

#[test]
fn a_truncated_gzip_names_the_file_and_exits_3() {
    let env = Env::new();
    let data = crate::util::synthetic_log(3000);
    let gz = gzip(&data);
    let p = env.write("cut.log.gz", &gz[..gz.len() / 2]);
    let a = env.ingest(&[p.to_str().unwrap()]).code(3);
    let err = stderr(&a);
    // The error has a line of its own, before the summary, which lists
    // what was read.
    let first = err.lines().next().unwrap();
    assert!(first.starts_with(&format!("xferstats: error: {}: read error after ", p.display())), "{err}");
    assert!(first.ends_with("incomplete deflate stream"), "{err}");
    assert!(err.lines().nth(1).unwrap().starts_with("ingested 1 file(s), 8517 lines"), "{err}");
    assert!(err.contains("cut.log.gz: rsyncd (gzip), 8517 lines: stopped by the error above\n"), "{err}");
    // What was committed is consistent: the complete copy resumes and the
    // totals equal a clean import.
    let full = env.write("full.log.gz", &gz);
    env.ingest(&[full.to_str().unwrap()]).success();
    let clean = Env::new();
    let q = clean.write("x.log", &data);
    clean.ingest(&[q.to_str().unwrap()]).success();
    assert_eq!(env.report_json("day,user,direction"), clean.report_json("day,user,direction"));
}

#[test]
fn empty_and_unreadable_inputs() {
    let env = Env::new();
    let empty = env.write("empty.log", b"");
    let a = env.ingest(&["-v", empty.to_str().unwrap()]).success();
    assert!(stderr(&a).contains("empty.log: -, 0 lines: empty"), "{}", stderr(&a));
    let missing = env.path("missing.log");
    let a = env.ingest(&[missing.to_str().unwrap()]).code(3);
    assert!(stderr(&a).contains("missing.log: cannot open"), "{}", stderr(&a));
    let dir = env.path("adir");
    std::fs::create_dir(&dir).unwrap();
    env.ingest(&[dir.to_str().unwrap()]).code(3).stderr(contains("is a directory"));
}

#[test]
fn bad_options_exit_2_naming_the_flag() {
    let env = Env::new();
    let f = fixture("rsync/default-logfile.log");
    let f = f.to_str().unwrap();
    let bare = || {
        let mut c = assert_cmd::Command::cargo_bin("xferstats").unwrap();
        c.env_remove("XFERSTATS_DB");
        c
    };
    env.cmd().args(["ingest", "--timezone", "Mars/Olympus", f]).assert().code(2).stderr(contains("--timezone"));
    env.cmd()
        .args(["ingest", "--rsync-log-format", "%o %h", f])
        .assert()
        .code(2)
        .stderr(contains("--rsync-log-format '%o %h': needs %f or %n"));
    env.cmd().args(["ingest", "--format", "nope", f]).assert().code(2).stderr(contains("--format 'nope'"));
    env.cmd().args(["report", "--by", "colour"]).assert().code(2);
    let a = bare().args(["--db", "mysql://u:secret@h/db", "report"]).assert().code(2).stderr(contains("unknown store"));
    assert!(!crate::util::stderr(&a).contains("secret"), "a password in --db is never printed");
}

#[test]
fn an_unwritable_store_exits_4() {
    let env = Env::new();
    let f = fixture("rsync/default-logfile.log");
    let blocker = env.write("file-not-dir", b"x");
    let mut c = assert_cmd::Command::cargo_bin("xferstats").unwrap();
    c.env_remove("XFERSTATS_DB")
        .args(["--db"])
        .arg(blocker.join("x.db"))
        .args(["ingest", "--timezone", "UTC"])
        .arg(&f)
        .assert()
        .code(4)
        .stderr(contains("cannot create database directory"));
}

#[test]
fn an_unterminated_last_line_waits_for_the_next_run() {
    let env = Env::new();
    let data = std::fs::read(fixture("rsync/default-logfile.log")).unwrap();
    let cut = data.len() - 1; // drop the final newline
    let p = env.write("live.log", &data[..cut]);
    let a = env.ingest(&[p.to_str().unwrap()]).success();
    assert!(stderr(&a).contains("last line has no newline yet"), "{}", stderr(&a));
    std::fs::write(&p, &data).unwrap();
    env.ingest(&[p.to_str().unwrap()]).success();
    let clean = Env::new();
    let q = clean.write("x.log", &data);
    clean.ingest(&[q.to_str().unwrap()]).success();
    assert_eq!(env.report_json("day,user,direction"), clean.report_json("day,user,direction"));
    // A compressed copy cannot grow: its last line counts at once.
    let env = Env::new();
    let gz = env.write("x.gz", &gzip(&data[..cut]));
    env.ingest(&[gz.to_str().unwrap()]).success();
    assert_eq!(env.report_json("day,user,direction"), clean.report_json("day,user,direction"));
}
