//! Inputs that are not regular files — process substitution, pipes of a
//! decompressor, FIFOs — give exactly the totals of the same bytes in a
//! file; a FIFO without a writer does not hold up the other inputs. Lines of
//! a known program that cannot be read, and events outside the plausible
//! time window, are rejected with their reason (SQLite and PostgreSQL).

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::pg::fresh;
use crate::util::{gzip, junk, stderr, synthetic_log, zstd, Env, TEST_HOST_KEY};

/// Runs `xferstats --db DB ingest … SOURCE` through `bash -c`, where SOURCE
/// is shell text such as `<(cat "$1")`; `$1` is `file`.
fn ingest_via_bash(env: &Env, source: &str, file: &Path) -> assert_cmd::assert::Assert {
    let script = format!("exec \"$XS\" --db \"$DB\" ingest --timezone UTC --server-host vm --progress never {source}");
    let mut c = assert_cmd::Command::new("bash");
    for var in ["XFERSTATS_DB", "XFERSTATS_TEST_CRASH", "XFERSTATS_IP_MODE"] {
        c.env_remove(var);
    }
    c.env("TZ", "UTC")
        .env("XFERSTATS_STATE_DIR", env.state_dir())
        .env("XFERSTATS_GEOIP", "off")
        .env("XFERSTATS_HOST_KEY", TEST_HOST_KEY)
        .env("XS", assert_cmd::cargo::cargo_bin("xferstats"))
        .env("DB", env.db())
        .args(["-c", &script, "bash"])
        .arg(file);
    c.assert()
}

/// The summary's first line without its duration, speed and store.
fn totals(a: &assert_cmd::assert::Assert) -> String {
    let err = stderr(a);
    let first = err.lines().next().unwrap_or_default();
    let (head, rest) = first.split_once(" in ").unwrap_or((first, ""));
    let counts = rest.split_once("): ").map_or("", |(_, c)| c);
    let counts = counts.split_once(" → ").map_or(counts, |(c, _)| c);
    format!("{head}: {counts}")
}

/// A log larger than the head read for detection (64 KiB) and than one
/// chunk (1 MiB), so that a lost head or chunk shows in the totals.
fn big_log() -> Vec<u8> {
    let data = synthetic_log(12_000);
    assert!(data.len() > 2 << 20, "{}", data.len());
    data
}

/// Totals and the per-user report of `data` imported as a regular file.
fn as_file(data: &[u8]) -> (String, Value) {
    let env = Env::new();
    let p = env.write("f.log", data);
    let a = env.ingest(&[p.to_str().unwrap()]).success();
    (totals(&a), env.report_json("day,user,direction"))
}

#[test]
fn process_substitution_reads_like_the_file() {
    let data = big_log();
    let (want_totals, want) = as_file(&data);
    assert_eq!(
        want_totals,
        "ingested 1 file(s), 68400 lines (5.9 MB): 43200 new events, 0 already present, 0 rejected lines"
    );
    let files = Env::new();
    let plain = files.write("f.log", &data);
    let gz = files.write("f.log.gz", &gzip(&data));
    let zst = files.write("f.log.zst", &zstd(&data));
    for (source, file) in [
        ("<(cat \"$1\")", &plain),
        ("<(gzip -dc \"$1\")", &gz),
        ("<(cat \"$1\")", &gz),
        ("<(cat \"$1\")", &zst),
        ("- < \"$1\"", &gz),
    ] {
        let env = Env::new();
        let a = ingest_via_bash(&env, source, file).success();
        assert_eq!(totals(&a), want_totals, "{source} of {}", file.display());
        assert_eq!(env.report_json("day,user,direction"), want, "{source} of {}", file.display());
    }
}

#[test]
fn a_long_list_of_files_is_read_completely() {
    // More inputs than are kept open between the look at their heads and
    // their reading: the rest are opened again by name.
    let env = Env::new();
    let mut names = Vec::new();
    for i in 0..300u32 {
        let ts = format!("2026/04/{:02} {:02}:{:02}:00", 1 + i % 28, i / 28, i % 60);
        let log = format!(
            "{ts} [{i}] connect from UNDETERMINED (192.0.2.1)\n\
             {ts} [{i}] rsync on pub/ from UNDETERMINED (192.0.2.1)\n\
             {ts} [{i}] send UNDETERMINED [192.0.2.1] pub () f{i}.bin {}\n",
            1000 + i
        );
        names.push(env.write(&format!("rsyncd.log.{i}"), log.as_bytes()).to_str().unwrap().to_string());
    }
    let args: Vec<&str> = names.iter().map(String::as_str).collect();
    let a = env.ingest(&args).success();
    assert_eq!(
        totals(&a),
        "ingested 300 file(s), 900 lines (0.1 MB): 300 new events, 0 already present, 0 rejected lines"
    );
    let rows = env.report_json("direction");
    assert_eq!((rows[0]["downloads"].as_u64(), rows[0]["bytes_down"].as_u64()), (Some(300), Some(344_850)), "{rows}");
}

fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo runs");
    assert!(st.success(), "mkfifo {}", path.display());
}

#[test]
fn a_fifo_fed_by_a_slow_writer_reads_like_the_file() {
    let data = big_log();
    let (want_totals, want) = as_file(&data);
    let env = Env::new();
    let fifo = env.path("fifo");
    mkfifo(&fifo);
    let writer = {
        let (fifo, data) = (fifo.clone(), data.clone());
        std::thread::spawn(move || {
            // Opens after the reader started waiting, then trickles.
            std::thread::sleep(std::time::Duration::from_millis(300));
            let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).expect("open the FIFO for writing");
            for piece in data.chunks(7_919) {
                f.write_all(piece).expect("write to the FIFO");
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        })
    };
    let a = env.ingest(&[fifo.to_str().unwrap()]).success();
    writer.join().unwrap();
    assert_eq!(totals(&a), want_totals);
    assert_eq!(env.report_json("day,user,direction"), want);
    // Read once more: a stream is always read from its start, and content
    // ids refuse what is stored.
    let writer = {
        let (fifo, data) = (fifo.clone(), data.clone());
        std::thread::spawn(move || std::fs::write(&fifo, &data).expect("write to the FIFO"))
    };
    let a = env.ingest(&[fifo.to_str().unwrap()]).success();
    writer.join().unwrap();
    assert!(stderr(&a).contains("68400 lines (5.9 MB) in"), "{}", stderr(&a));
    assert!(stderr(&a).contains(": 0 new events, 43200 already present, 0 rejected"), "{}", stderr(&a));
    // The same content as a file resumes after what the FIFO read.
    let p = env.write("f.log", &data);
    let a = env.ingest(&[p.to_str().unwrap()]).success();
    assert!(stderr(&a).contains("ingested 1 file(s), 0 lines"), "{}", stderr(&a));
}

#[test]
fn a_fifo_without_a_writer_is_named_and_the_other_inputs_are_read() {
    let env = Env::new();
    let fifo = env.path("no-writer.fifo");
    mkfifo(&fifo);
    let data = synthetic_log(40);
    let (_, want) = as_file(&data);
    let p = env.write("f.log", &data);
    let a = env.ingest(&["--fifo-wait", "2", fifo.to_str().unwrap(), p.to_str().unwrap()]).code(3);
    let err = stderr(&a);
    let name = fifo.display();
    assert!(err.contains(&format!("waiting up to 2 s (--fifo-wait) for a writer on FIFO {name}")), "{err}");
    assert!(
        err.contains(&format!("{name}: cannot open: no writer opened this FIFO within 2 s (--fifo-wait)")),
        "{err}"
    );
    assert!(err.contains("ingested 2 file(s), 228 lines (0.0 MB)"), "{err}");
    assert_eq!(env.report_json("day,user,direction"), want);
}

/// Three rsyncd sessions in RFC 3339 syslog; the third's summary line has
/// an hour of 200, then a 29 February 2100 (no such day), among other
/// programs' lines (one with a broken time stamp too).
const SYSLOG: &str = "\
2024-01-15T20:04:36+0100 host rsyncd[4500]: connect from a.example (192.0.2.1)
2024-01-15T20:04:36+0100 host rsyncd[4500]: rsync on data/x from a.example (192.0.2.1)
2024-01-15T20:04:37+0100 host rsyncd[4500]: sent 100 bytes  received 20 bytes  total size 80
2024-01-15T20:04:37+0100 host CRON[1]: (root) CMD (x)
2024-01-15T20:04:37+0100 host rsyncd[4501]: connect from a.example (192.0.2.1)
2024-01-15T20:04:37+0100 host rsyncd[4501]: rsync on data/y from a.example (192.0.2.1)
2024-01-15T20:04:38+0100 host rsyncd[4501]: sent 200 bytes  received 20 bytes  total size 80
2024-01-15T20:04:38+0100 host rsyncd[4502]: connect from a.example (192.0.2.1)
2024-01-15T20:04:38+0100 host rsyncd[4502]: rsync on data/z from a.example (192.0.2.1)
2024-01-15T200:04:38+0100 host rsyncd[4502]: sent 755894 bytes  received 20 bytes  total size 80
2100-02-29T10:00:00+0100 host rsyncd[4502]: sent 755894 bytes  received 20 bytes  total size 80
2024-01-15T2x:04:39+0100 host CRON[1]: (root) CMD (x)
";

#[test]
fn syslog_lines_of_known_programs_with_unreadable_times_are_rejected() {
    for format in ["auto", "syslog"] {
        let env = Env::new();
        let p = env.write("daemon.log", SYSLOG.as_bytes());
        let a = env.ingest(&["--format", format, p.to_str().unwrap()]).code(1);
        let err = stderr(&a);
        assert!(err.contains("12 lines (0.0 MB)"), "{format}: {err}");
        assert!(err.contains(": 2 new events, 0 already present, 2 rejected lines"), "{format}: {err}");
        for (n, text) in [(10, "2024-01-15T200:04:38+0100 host"), (11, "2100-02-29T10:00:00+0100 host")] {
            let want = format!("daemon.log:{n}: unreadable time stamp in the syslog prefix: {text} rsyncd[4502]: sent");
            assert!(err.contains(&want), "{format}: {want}\n{err}");
        }
        let rows = env.report_json("day");
        assert_eq!((rows[0]["downloads"].as_u64(), rows[0]["bytes_down"].as_u64()), (Some(2), Some(300)), "{rows}");
    }
    // Read as rsyncd, the rsync decoder says the same lines have no prefix
    // (and so has the other program's line with a broken time).
    let env = Env::new();
    let p = env.write("daemon.log", SYSLOG.as_bytes());
    let a = env.ingest(&["--format", "rsyncd", p.to_str().unwrap()]).code(1);
    let err = stderr(&a);
    assert!(err.contains(": 2 new events, 0 already present, 3 rejected lines"), "{err}");
    assert!(err.contains("daemon.log:10: no rsyncd log-file or syslog prefix: 2024-01-15T200:04:38"), "{err}");
    // sshd lines with times that do not exist, in auth.log.
    for format in ["auto", "openssh", "syslog"] {
        let env = Env::new();
        let p = env.write(
            "auth.log",
            b"Jan 15 20:04:36 host sshd[7]: Accepted password for alice from 192.0.2.1 port 5000 ssh2\n\
          Feb 30 20:04:36 host sshd[8]: Accepted password for bob from 192.0.2.1 port 5001 ssh2\n\
          Jan 15 25:04:36 host sshd[9]: Accepted password for carol from 192.0.2.1 port 5002 ssh2\n\
          Jan 15 20:04:37 host CRON[1]: (root) CMD (x)\n",
        );
        let a = env.ingest(&["--format", format, p.to_str().unwrap()]).code(1);
        let err = stderr(&a);
        assert!(err.contains(", 2 rejected lines"), "{format}: {err}");
        assert!(
            err.contains("auth.log:2: unreadable time stamp in the syslog prefix: Feb 30 20:04:36"),
            "{format}: {err}"
        );
        assert!(
            err.contains("auth.log:3: unreadable time stamp in the syslog prefix: Jan 15 25:04:36"),
            "{format}: {err}"
        );
    }
}

/// A good line and a line dated on a day that does not exist, per format.
const IMPOSSIBLE_DAYS: [(&str, &str, &str); 5] = [
    (
        "xferlog",
        "Tue Apr  5 12:35:58 2016 1 192.0.2.1 4061858 /a.json b _ i r lemnatec ftp 0 * c",
        "Tue Feb 30 12:35:58 2016 1 192.0.2.1 4061858 /b.json b _ i r lemnatec ftp 0 * c",
    ),
    (
        "vsftpd",
        "Fri Nov  5 21:43:45 2021 [pid 35179] [ann] OK DOWNLOAD: Client \"192.0.2.1\", \"/a.txt\", 6 bytes, 7.85Kbyte/sec",
        "Fri Feb 30 21:43:45 2021 [pid 35179] [ann] OK DOWNLOAD: Client \"192.0.2.1\", \"/b.txt\", 6 bytes, 7.85Kbyte/sec",
    ),
    (
        "proftpd",
        "2026-11-08 16:21:16,469 ftp1 proftpd[101] 192.0.2.1 (c.example[203.0.113.7]): USER erin: Login successful.",
        "2026-02-30 16:21:16,469 ftp1 proftpd[104] 192.0.2.1 (c.example[203.0.113.7]): USER erin: Login successful.",
    ),
    (
        "proftpd-extended",
        "203.0.113.7 UNKNOWN erin [08/Nov/2026:16:21:16 +0100] \"STOR ftp a.md\" 226 23456",
        "203.0.113.7 UNKNOWN erin [30/Feb/2026:16:21:16 +0100] \"STOR ftp b.md\" 226 23456",
    ),
    (
        "sftpgo",
        r#"{"level":"info","time":"2026-10-01T16:53:57.751","sender":"Upload","remote_addr":"127.0.0.1:1","elapsed_ms":0,"size_bytes":4000,"username":"u","virtual_path":"/a.zip","connection_id":"SFTP_1","protocol":"SFTP"}"#,
        r#"{"level":"info","time":"2026-02-30T16:53:57.751","sender":"Upload","remote_addr":"127.0.0.1:1","elapsed_ms":0,"size_bytes":4000,"username":"u","virtual_path":"/b.zip","connection_id":"SFTP_1","protocol":"SFTP"}"#,
    ),
];

#[test]
fn impossible_days_are_rejected_in_every_format() {
    for (format, good, bad) in IMPOSSIBLE_DAYS {
        for forced in ["auto", format] {
            let env = Env::new();
            let p = env.write("f.log", format!("{good}\n{bad}\n").as_bytes());
            let a = env.ingest(&["--format", forced, p.to_str().unwrap()]).code(1);
            let err = stderr(&a);
            assert!(err.contains(&format!("f.log: {format}, 2 lines, 1 rejected")), "{forced}: {err}");
            assert!(err.contains(": 1 new events, 0 already present, 1 rejected lines"), "{forced}: {err}");
            assert!(err.contains("f.log:2: "), "{forced}: {err}");
        }
    }
}

#[test]
fn random_bytes_forced_as_syslog_or_openssh_exit_1() {
    let mut junk = junk(300_000);
    junk.push(b'\n');
    let lines = junk.iter().filter(|&&c| c == b'\n').count();
    for format in ["syslog", "openssh"] {
        let env = Env::new();
        let p = env.write("random.bin", &junk);
        let a = env.ingest(&["--format", format, p.to_str().unwrap()]).code(1);
        let err = stderr(&a);
        let want =
            format!("random.bin: {format}, {lines} lines: {lines} of its {lines} lines are not {format} lines and none was used (wrong --format?)");
        assert!(err.contains(&want), "{want}\n{err}");
        assert!(err.contains(": 0 new events, 0 already present, 0 rejected lines"), "{err}");
    }
    // A syslog file of other programs only is not a mismatch: nothing to
    // count, exit 0.
    let env = Env::new();
    let p = env.write(
        "cron.log",
        b"Jan 15 20:04:37 host CRON[1]: (root) CMD (x)\nJan 15 20:04:38 host CRON[2]: (root) CMD (y)\n",
    );
    env.ingest(&["--format", "syslog", p.to_str().unwrap()]).success();
}

/// One session each on 2026-03-01, 9999-12-31 and 1970-01-01.
const DATES: &str = "\
2026/03/01 10:00:01 [1] connect from UNDETERMINED (192.0.2.10)
2026/03/01 10:00:01 [1] rsync on pub/ from UNDETERMINED (192.0.2.10)
2026/03/01 10:00:02 [1] send UNDETERMINED [192.0.2.10] pub () a.txt 42
9999/12/31 10:00:01 [2] connect from UNDETERMINED (192.0.2.11)
9999/12/31 10:00:01 [2] rsync on pub/ from UNDETERMINED (192.0.2.11)
9999/12/31 10:00:02 [2] send UNDETERMINED [192.0.2.11] pub () b.txt 43
1970/01/01 00:00:01 [3] connect from UNDETERMINED (192.0.2.12)
1970/01/01 00:00:01 [3] rsync on pub/ from UNDETERMINED (192.0.2.12)
1970/01/01 00:00:02 [3] send UNDETERMINED [192.0.2.12] pub () c.txt 44
";

fn assert_implausible_rejected(err: &str) {
    assert!(err.contains("9 lines (0.0 MB)"), "{err}");
    assert!(err.contains(": 1 new events, 0 already present, 2 rejected lines"), "{err}");
    for (n, t, line) in [
        (6, "9999-12-31T10:00:02Z", "9999/12/31 10:00:02 [2] send"),
        (9, "1970-01-01T00:00:02Z", "1970/01/01 00:00:02 [3] send"),
    ] {
        let want = format!("dates.log:{n}: time {t} outside the plausible window 1990-01-01T00:00:00Z .. ");
        assert!(err.contains(&want), "{want}\n{err}");
        assert!(err.contains(&format!(" (--min-date, --max-future): {line}")), "{err}");
    }
}

#[test]
fn implausible_dates_are_rejected_on_sqlite() {
    let env = Env::new();
    let p = env.write("dates.log", DATES.as_bytes());
    let a = env.ingest(&[p.to_str().unwrap()]).code(1);
    assert_implausible_rejected(&stderr(&a));
    let out = env.cmd().arg("report").output().unwrap();
    let digest = String::from_utf8_lossy(&out.stdout);
    assert!(digest.starts_with("xferstats daily digest for 2026-03-01 (UTC)"), "{digest}");
    let rows = env.report_json("day");
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["day"], "2026-03-01");
    // The window is configurable: both are accepted when it covers them.
    let env = Env::new();
    let p = env.write("dates.log", DATES.as_bytes());
    let a = env.ingest(&["--min-date", "1969-12-31", "--max-future", "500000w", p.to_str().unwrap()]).success();
    assert!(stderr(&a).contains(": 3 new events, 0 already present, 0 rejected lines"), "{}", stderr(&a));
    // Bad values are usage errors naming the flag.
    env.ingest(&["--max-future", "soon", p.to_str().unwrap()])
        .code(2)
        .stderr(predicates::str::contains("--max-future 'soon': expected a number of hours, days or weeks"));
    env.ingest(&["--min-date", "1990-13-01", p.to_str().unwrap()])
        .code(2)
        .stderr(predicates::str::contains("--min-date '1990-13-01': expected a date YYYY-MM-DD"));
}

#[test]
fn implausible_dates_are_rejected_on_postgres() {
    let Some(db) = fresh("dates") else { return };
    let p = db.write("dates.log", DATES.as_bytes());
    let a = db.ingest(&[p.to_str().unwrap()]).code(1);
    assert_implausible_rejected(&stderr(&a));
    assert_eq!(
        db.psql("SELECT string_agg(DISTINCT (end_ts AT TIME ZONE 'UTC')::date::text, ',') FROM transfers"),
        "2026-03-01"
    );
    let digest = String::from_utf8_lossy(&db.report(&[])).into_owned();
    assert!(digest.starts_with("xferstats daily digest for 2026-03-01 (UTC)"), "{digest}");
}
