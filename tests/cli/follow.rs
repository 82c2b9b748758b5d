//! `xferstats follow`: a follower started in the background while the test
//! appends and rotates, in every rotation style, and the store polled until
//! the expected rows are there (no timing assertion: a generous timeout is
//! only a failure's way out). Each line is one xferlog event with its own
//! file name, so the store's row count is the number of distinct lines
//! read; the ledger's `events_dup` and `rejected` say whether a line was
//! read twice or cut.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::rotation::line;
use crate::util::{gzip, Env, Running};

/// How long a step may take before the test fails (a loaded CI machine).
const PATIENCE: Duration = Duration::from_secs(90);

/// Waits until `ok()` holds; panics with `what` and the follower's log.
pub fn wait_until(what: &str, log: &Path, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        if start.elapsed() > PATIENCE {
            panic!("timed out waiting for {what}; follow's log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_until`] of a condition that says why it does not hold yet: the
/// last reason is in the panic message.
pub fn wait_until_why(what: &str, log: &Path, mut ok: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    while let Err(why) = ok() {
        if start.elapsed() > PATIENCE {
            panic!(
                "timed out waiting for {what} ({why}); follow's log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `sig` to the child.
pub fn signal(child: &Running, sig: &str) {
    let ok = std::process::Command::new("kill").args(["-s", sig, &child.id().to_string()]).status().unwrap();
    assert!(ok.success(), "kill -s {sig}");
}

/// Whether the process catches SIGTERM yet (its handler is installed:
/// `SigCgt` of /proc/PID/status has bit 15 − 1).
fn catches_sigterm(child: &Running) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|m| m & (1 << 14) != 0)
}

/// SIGTERM once the follower handles it, then the exit status (waited for
/// with `PATIENCE`).
pub fn terminate(mut child: Running, log: &Path) -> std::process::ExitStatus {
    wait_until("follow to handle SIGTERM", log, || catches_sigterm(&child) || child.try_wait().unwrap().is_some());
    signal(&child, "TERM");
    let mut status = None;
    wait_until("follow to exit after SIGTERM", log, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

/// A SQLite store's `SELECT` of one number (0 before the store exists).
fn sqlite_number(db: &Path, sql: &str) -> i64 {
    if !db.exists() {
        return 0;
    }
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)).ok().flatten().unwrap_or(0)
}

/// The writer's side: lines appended, files rotated, the lines counted.
struct Logs {
    dir: PathBuf,
    next: u64,
    /// Complete lines written so far.
    written: i64,
}

impl Logs {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Appends `n` new complete lines to `name` (created if missing).
    fn append(&mut self, name: &str, n: u64) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.path(name)).unwrap();
        for _ in 0..n {
            f.write_all(line(self.next).as_bytes()).unwrap();
            self.next += 1;
            self.written += 1;
        }
    }

    /// Appends the first `cut` bytes of the next line (no newline); returns
    /// the rest.
    fn append_partial(&mut self, name: &str, cut: usize) -> String {
        let l = line(self.next);
        self.next += 1;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.path(name)).unwrap();
        f.write_all(&l.as_bytes()[..cut]).unwrap();
        l[cut..].to_string()
    }

    /// Ends the line `append_partial` began.
    fn complete(&mut self, name: &str, rest: &str) {
        let mut f = std::fs::OpenOptions::new().append(true).open(self.path(name)).unwrap();
        f.write_all(rest.as_bytes()).unwrap();
        self.written += 1;
    }

    fn rename(&self, from: &str, to: &str) {
        std::fs::rename(self.path(from), self.path(to)).unwrap();
    }

    /// `gzip name` as logrotate does it: `name.gz` written, `name` removed.
    fn gzip(&self, name: &str) {
        let data = std::fs::read(self.path(name)).unwrap();
        std::fs::write(self.path(&format!("{name}.gz")), gzip(&data)).unwrap();
        std::fs::remove_file(self.path(name)).unwrap();
    }

    /// logrotate's copytruncate: copy, then truncate in place.
    fn copytruncate(&self, name: &str, copy: &str) {
        std::fs::copy(self.path(name), self.path(copy)).unwrap();
        std::fs::OpenOptions::new().write(true).open(self.path(name)).unwrap().set_len(0).unwrap();
    }
}

/// Runs every rotation style of issue 14.1 against one follower (`poll`:
/// with `--poll`) and checks after each that exactly the complete lines
/// written are stored, none twice, none cut.
fn every_rotation_style(poll: bool) {
    let env = Env::new();
    let dir = env.path("logs");
    std::fs::create_dir(&dir).unwrap();
    let err = env.path("follow.err");
    let mut logs = Logs { dir: dir.clone(), next: 0, written: 0 };
    let db = env.db();
    let stored = || sqlite_number(&db, "SELECT COUNT(*) FROM transfers");
    let mut args: Vec<&OsStr> =
        vec![OsStr::new("--rotate-wait"), OsStr::new("1"), OsStr::new("--flush-interval"), OsStr::new("0.2")];
    if poll {
        args.push(OsStr::new("--poll=100"));
    }
    let (xfer, sftpgo) = (dir.join("xfer.log"), dir.join("sftpgo.log"));
    args.extend([xfer.as_os_str(), sftpgo.as_os_str()]);
    // A file that exists before the follower starts, one that appears later.
    logs.append("xfer.log", 3);
    let child = env.spawn_follow(&args, &err);
    let settle = |logs: &Logs, what: &str| {
        let want = logs.written;
        wait_until(&format!("{want} events after {what}"), &err, || stored() == want);
    };
    settle(&logs, "the start");
    logs.append("sftpgo.log", 2);
    settle(&logs, "a file appearing");

    // A partial last line waits for its newline.
    let rest = logs.append_partial("xfer.log", 20);
    logs.append("sftpgo.log", 1);
    settle(&logs, "a partial line");
    logs.complete("xfer.log", &rest);
    settle(&logs, "its newline");

    // rename + create, rsyslog's delaycompress: log → log.1 (still written
    // to by the old descriptor), then log.1 → log.2.gz at the next turn.
    logs.append("xfer.log", 2);
    logs.rename("xfer.log", "xfer.log.1");
    logs.append("xfer.log.1", 1);
    logs.append("xfer.log", 2);
    settle(&logs, "rename + create");
    logs.rename("xfer.log.1", "xfer.log.2");
    logs.gzip("xfer.log.2");
    logs.append("xfer.log", 1);
    logs.rename("xfer.log", "xfer.log.1");
    logs.append("xfer.log", 1);
    settle(&logs, "delaycompress");

    // rename + gzip at once: the old file is gone, its tail read through
    // the open descriptor.
    logs.append("xfer.log", 2);
    logs.rename("xfer.log", "xfer.log.0");
    logs.gzip("xfer.log.0");
    logs.append("xfer.log", 2);
    settle(&logs, "rename + gzip");

    // copytruncate: the lines after the last read are read from the copy.
    logs.append("xfer.log", 3);
    logs.copytruncate("xfer.log", "xfer.log.ct");
    logs.append("xfer.log", 2);
    settle(&logs, "copytruncate");

    // truncate and rewrite in place, without a copy.
    settle(&logs, "before the truncation");
    std::fs::OpenOptions::new().write(true).open(logs.path("xfer.log")).unwrap().set_len(0).unwrap();
    logs.append("xfer.log", 2);
    settle(&logs, "truncate-and-rewrite");

    // A file removed and created again (its inode free for reuse once the
    // follower closed the old one).
    std::fs::remove_file(logs.path("xfer.log")).unwrap();
    wait_until("every file rotated away to be finished", &err, || {
        let log = std::fs::read_to_string(&err).unwrap_or_default();
        log.matches("reading it to its end").count() == log.matches("finished").count()
    });
    logs.append("xfer.log", 2);
    settle(&logs, "a new file on a free inode");
    std::fs::remove_file(logs.path("xfer.log")).unwrap();
    logs.append("xfer.log", 2);
    settle(&logs, "disappear and reappear");

    // SFTPGo: time-stamped rename, gzip later.
    logs.append("sftpgo.log", 2);
    logs.rename("sftpgo.log", "sftpgo-2026-11-29T19-00-00.000.log");
    logs.append("sftpgo.log", 1);
    settle(&logs, "SFTPGo's rename");
    logs.gzip("sftpgo-2026-11-29T19-00-00.000.log");
    logs.append("sftpgo.log", 1);
    settle(&logs, "SFTPGo's gzip");

    // A partial last line of a file rotated away is taken after
    // --rotate-wait.
    let _ = logs.append_partial("sftpgo.log", line(logs.next).len() - 1);
    logs.written += 1;
    logs.rename("sftpgo.log", "sftpgo-2026-11-29T20-00-00.000.log");
    settle(&logs, "a rotated-away partial line");

    let status = terminate(child, &err);
    let log = std::fs::read_to_string(&err).unwrap();
    assert!(status.success(), "{status}: {log}");
    assert_eq!(stored(), logs.written, "{log}");
    assert_eq!(sqlite_number(&db, "SELECT SUM(events_dup) FROM ledger"), 0, "a line read twice: {log}");
    assert_eq!(sqlite_number(&db, "SELECT SUM(rejected) FROM ledger"), 0, "a line cut: {log}");
    for said in ["picked up", "rotated away", "finished", "follow stopped"] {
        assert!(log.contains(said), "-v says {said:?}: {log}");
    }
}

#[test]
fn every_rotation_style_with_inotify() {
    every_rotation_style(false);
}

#[test]
fn every_rotation_style_with_polling() {
    every_rotation_style(true);
}

/// `ingest` and `follow` continue exactly where the other stopped.
#[test]
fn follow_and_ingest_share_the_ledger() {
    let env = Env::new();
    let err = env.path("follow.err");
    let mut logs = Logs { dir: env.path(""), next: 0, written: 0 };
    let db = env.db();
    let stored = || sqlite_number(&db, "SELECT COUNT(*) FROM transfers");
    logs.append("x.log", 4);
    let path = logs.path("x.log");
    env.ingest(&[path.to_str().unwrap()]).success();
    logs.append("x.log", 3);
    let child = env.spawn_follow(&[path.as_os_str()], &err);
    wait_until("follow to read on after ingest", &err, || stored() == 7);
    logs.append("x.log", 2);
    wait_until("the appended lines", &err, || stored() == 9);
    assert!(terminate(child, &err).success());
    logs.append("x.log", 1);
    let out = env.ingest(&[path.to_str().unwrap()]).success();
    let text = crate::util::stderr(&out);
    assert!(text.contains("1 new events, 0 already present"), "{text}");
    assert_eq!(stored(), 10);
    assert_eq!(sqlite_number(&db, "SELECT SUM(events_dup) FROM ledger"), 0);
}

/// Lines appended and rotated away while the follower was killed
/// (SIGKILL) are read at its restart from the rotated copies, from where
/// the ledger says their content was left; a first start does not import
/// the rotated history of a name never followed.
#[test]
fn a_restart_catches_up_with_rotations_while_down() {
    let env = Env::new();
    let err = env.path("follow.err");
    let mut logs = Logs { dir: env.path("logs"), next: 0, written: 0 };
    std::fs::create_dir(&logs.dir).unwrap();
    let db = env.db();
    let stored = || sqlite_number(&db, "SELECT COUNT(*) FROM transfers");
    // History of another name, never followed: left alone.
    logs.append("other.log.1", 2);
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options().write(true).open(logs.path("other.log.1")).unwrap().set_modified(hour_ago).unwrap();
    let history = logs.written;
    logs.append("x.log", 3);
    let (x, other) = (logs.path("x.log"), logs.path("other.log"));
    let args = [x.as_os_str(), other.as_os_str()];
    let mut child = env.spawn_follow(&args, &err);
    wait_until("the first lines", &err, || stored() == 3);
    child.kill().unwrap();
    child.wait().unwrap();
    // While down: appended, renamed and gzipped; appended, copytruncated.
    logs.append("x.log", 2);
    logs.rename("x.log", "x.log.1");
    logs.gzip("x.log.1");
    logs.append("x.log", 2);
    logs.copytruncate("x.log", "x.log.1");
    logs.append("x.log", 1);
    let child = env.spawn_follow(&args, &err);
    wait_until("the lines written while down", &err, || stored() == logs.written - history);
    assert!(terminate(child, &err).success());
    assert_eq!(stored(), logs.written - history);
    assert_eq!(sqlite_number(&db, "SELECT SUM(events_dup) FROM ledger"), 0);
    assert!(std::fs::read_to_string(&err).unwrap().contains("caught up with"));
}

/// PostgreSQL stopped while lines keep coming: the follower reads on into
/// its buffer up to `--buffer-limit`, then pauses (the log waits on disk),
/// says so once, reconnects when the server is back, and every line is
/// stored once.
#[test]
fn a_store_outage_is_ridden_out_with_back_pressure() {
    let Some(pg) = crate::pg::private() else { return };
    let name = pg.fresh_db("outage");
    let env = Env::with_store(pg.url(&name));
    let err = env.path("follow.err");
    let mut logs = Logs { dir: env.path(""), next: 0, written: 0 };
    let up = std::sync::atomic::AtomicBool::new(true);
    let stored = || {
        if !up.load(std::sync::atomic::Ordering::SeqCst) {
            return -1;
        }
        pg.psql(&name, "SELECT COUNT(*) FROM transfers").parse::<i64>().unwrap()
    };
    env.cmd().args(["db", "migrate"]).assert().success();
    logs.append("x.log", 10);
    let path = logs.path("x.log");
    let child = env.spawn_follow(&[OsStr::new("--buffer-limit"), OsStr::new("1"), path.as_os_str()], &err);
    wait_until("the first lines", &err, || stored() == 10);
    up.store(false, std::sync::atomic::Ordering::SeqCst);
    pg.stop();
    // About 3 MB of lines: more than the 1 MiB buffer.
    for _ in 0..30 {
        logs.append("x.log", 1_000);
    }
    let said = |what: &str| std::fs::read_to_string(&err).unwrap().matches(what).count();
    wait_until("the buffer to fill", &err, || said("reading paused") == 1);
    pg.restart();
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_until("every line after the outage", &err, || stored() == logs.written);
    assert!(terminate(child, &err).success());
    assert_eq!(stored(), logs.written);
    assert_eq!(pg.psql(&name, "SELECT SUM(events_dup) FROM ledger"), "0");
    let log = std::fs::read_to_string(&err).unwrap();
    assert_eq!(said("store unavailable"), 1, "one message per outage: {log}");
    assert_eq!(said("answers again"), 1, "{log}");
}

/// SIGHUP reopens the GeoIP database and keeps following; SIGINT stops
/// like SIGTERM (exit 0, what was read committed).
#[test]
fn sighup_keeps_following_and_sigint_stops() {
    let env = Env::new();
    let err = env.path("follow.err");
    let mut logs = Logs { dir: env.path(""), next: 0, written: 0 };
    let db = env.db();
    let stored = || sqlite_number(&db, "SELECT COUNT(*) FROM transfers");
    logs.append("x.log", 1);
    let path = logs.path("x.log");
    let mut child = env.spawn_follow(&[path.as_os_str()], &err);
    wait_until("the first line", &err, || stored() == 1);
    signal(&child, "HUP");
    wait_until("the reload", &err, || std::fs::read_to_string(&err).unwrap().contains("SIGHUP"));
    logs.append("x.log", 1);
    wait_until("a line after SIGHUP", &err, || stored() == 2);
    signal(&child, "INT");
    let mut status = None;
    wait_until("follow to exit after SIGINT", &err, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert!(status.unwrap().success());
}

/// Standard input is not a file to follow.
#[test]
fn follow_refuses_stdin() {
    let env = Env::new();
    let out = env.cmd().args(["follow", "-"]).assert().code(2);
    assert!(crate::util::stderr(&out).contains("standard input"));
}

/// `status` lists the ledger's inputs with the lag of the file under each
/// name, as a table and as JSON; a name holding another file now is said.
#[test]
fn status_shows_offsets_and_lag() {
    let env = Env::new();
    let mut logs = Logs { dir: env.path("logs"), next: 0, written: 0 };
    std::fs::create_dir(&logs.dir).unwrap();
    logs.append("a.log", 3);
    logs.append("b.log", 2);
    let (a, b) = (logs.path("a.log"), logs.path("b.log"));
    env.ingest(&[a.to_str().unwrap(), b.to_str().unwrap()]).success();
    logs.append("a.log", 1);
    let grown = line(logs.next - 1).len() as u64;
    std::fs::remove_file(&b).unwrap();
    logs.append("b.log", 1);
    let out = env.cmd().args(["status", "--format", "json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inputs = v["inputs"].as_array().unwrap();
    let find = |p: &Path| inputs.iter().find(|i| i["name"] == p.to_str().unwrap()).unwrap().clone();
    let (ja, jb) = (find(&a), find(&b));
    assert_eq!(
        (ja["format"].as_str(), ja["lines"].as_u64(), ja["lag_bytes"].as_u64()),
        (Some("xferlog"), Some(3), Some(grown))
    );
    assert_eq!(ja["offset"].as_u64(), Some(std::fs::metadata(&a).unwrap().len() - grown));
    assert_eq!(
        (jb["file"].as_str(), jb["lag_bytes"].as_u64(), jb["events_new"].as_u64()),
        (Some("replaced"), None, Some(2))
    );
    let text = String::from_utf8(env.cmd().arg("status").output().unwrap().stdout).unwrap();
    assert!(text.contains(&format!("{grown} B")) && text.contains("name holds another file now"), "{text}");
}

/// A session read line by line, with pauses longer than `--rotate-wait`
/// between its lines (the follower reads each line alone), comes out as
/// in one batch import: open sessions are not cut while idle.
#[test]
fn sessions_read_line_by_line_count_as_in_one_batch() {
    let Some(root) = crate::util::realogs() else { return };
    let sample = std::fs::read(root.join("rsync/rsyncd-default.log")).unwrap();
    let env = Env::new();
    let err = env.path("follow.err");
    let path = env.path("r.log");
    let db = env.db();
    let lines: Vec<&[u8]> = sample.split_inclusive(|&c| c == b'\n').collect();
    // The sessions with errors, interrupted transfers among them.
    let (head, rest) = lines.split_at(79);
    std::fs::write(&path, head.concat()).unwrap();
    let child = env.spawn_follow(&["--rotate-wait".as_ref(), "0.1".as_ref(), path.as_os_str()], &err);
    let read_to = |len: usize| sqlite_number(&db, "SELECT MAX(\"offset\") FROM ledger") == len as i64;
    let mut len = head.concat().len();
    wait_until("the head", &err, || read_to(len));
    for l in &rest[..25] {
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(l).unwrap();
        len += l.len();
        wait_until("the line", &err, || read_to(len));
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&rest[25..].concat()).unwrap();
    wait_until("the rest", &err, || read_to(sample.len()));
    assert!(terminate(child, &err).success());
    let by = "day,user,protocol";
    assert_eq!(env.report_json(by), crate::util::import_once(&sample, by));
}

/// A follower stopped before it read anything still ends the sessions
/// its killed predecessor left open, as the end of a batch import does.
#[test]
fn a_stop_ends_the_sessions_a_killed_follower_left_open() {
    let Some(root) = crate::util::realogs() else { return };
    let sample = std::fs::read(root.join("rsync/rsyncd-default.log")).unwrap();
    let env = Env::new();
    let err = env.path("follow.err");
    let path = env.path("r.log");
    std::fs::write(&path, &sample).unwrap();
    let db = env.db();
    let mut child = env.spawn_follow(&[path.as_os_str()], &err);
    let len = sample.len() as i64;
    wait_until("the whole log", &err, || sqlite_number(&db, "SELECT MAX(\"offset\") FROM ledger") == len);
    child.kill().unwrap();
    child.wait().unwrap();
    let idle = env.path("nothing.log");
    assert!(terminate(env.spawn_follow(&[idle.as_os_str()], &err), &err).success());
    let by = "day,user,protocol";
    assert_eq!(env.report_json(by), crate::util::import_once(&sample, by));
}

/// A log rotated amid a burst of rsyncd transfer lines (which name no
/// format: a custom `log format` makes them anything) is read as the
/// rsyncd log its name held: live after a rename + create, after a
/// restart from the ledger (SIGKILL, then rename + gzip while down); and
/// `ingest` (once the file's head names its format) continues where
/// `follow` stopped. Nothing waits unread for a line that names the
/// format, nothing is read twice.
#[test]
fn a_rotated_log_whose_head_names_no_format_is_read_as_before() {
    let Some(root) = crate::util::realogs() else { return };
    let sample = std::fs::read(root.join("rsync/rsyncd-default.log")).unwrap();
    let lines: Vec<&[u8]> = sample.split_inclusive(|&c| c == b'\n').collect();
    // Lines 31–70 of the sample are one session's transfer lines.
    assert!(lines[30..70].iter().all(|l| l.windows(6).any(|w| w == b"] recv")));
    let env = Env::new();
    let err = env.path("follow.err");
    let dir = env.path("logs");
    std::fs::create_dir(&dir).unwrap();
    let (path, db) = (dir.join("r.log"), env.db());
    let write = |from: usize, to: usize| {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        f.write_all(&lines[from..to].concat()).unwrap();
    };
    // Whether `r.log`'s present content (lines `from..to`) is read to its end.
    let read = |from: usize, to: usize| {
        let (len, name) = (lines[from..to].concat().len(), path.to_str().unwrap());
        let sql = format!(
            "SELECT COUNT(*) FROM ledger WHERE name = '{name}' AND \"offset\" = {len} AND lines = {}",
            to - from
        );
        sqlite_number(&db, &sql) == 1
    };
    let dir_of = |name: &str| dir.join(name);
    write(0, 35);
    let mut child = env.spawn_follow(&[path.as_os_str()], &err);
    wait_until("the head", &err, || read(0, 35));
    std::fs::rename(&path, dir_of("r.log.1")).unwrap();
    write(35, 50);
    wait_until("the new file of transfer lines", &err, || read(35, 50));
    child.kill().unwrap();
    child.wait().unwrap();
    // While down: rename + gzip, a new file of transfer lines again.
    std::fs::rename(&path, dir_of("r.log.2")).unwrap();
    let copy = std::fs::read(dir_of("r.log.2")).unwrap();
    std::fs::write(dir_of("r.log.2.gz"), gzip(&copy)).unwrap();
    std::fs::remove_file(dir_of("r.log.2")).unwrap();
    write(50, 65);
    let child = env.spawn_follow(&[path.as_os_str()], &err);
    wait_until("the file written while down", &err, || read(50, 65));
    write(65, 102);
    wait_until("the lines appended", &err, || read(50, 102));
    assert!(terminate(child, &err).success());
    write(102, lines.len());
    let out = env.ingest(&[path.to_str().unwrap()]).success();
    let text = crate::util::stderr(&out);
    assert!(text.contains(&format!("{} lines", lines.len() - 102)), "{text}");
    assert_eq!(sqlite_number(&db, "SELECT SUM(events_dup) FROM ledger"), 0);
    assert_eq!(sqlite_number(&db, "SELECT COUNT(*) FROM ledger WHERE format <> 'rsyncd'"), 0);
    let by = "day,user,protocol";
    assert_eq!(env.report_json(by), crate::util::import_once(&sample, by));
}

/// Lines of a real sample as `logs/NAME` written and rotated where no
/// follower held it open, for the tests below.
struct Unseen {
    sample: Vec<u8>,
    /// The lines in the rotated copy.
    split: usize,
    env: Env,
    err: PathBuf,
    dir: PathBuf,
    path: PathBuf,
    db: PathBuf,
}

impl Unseen {
    /// The OpenSSH sample as `auth.log`, its first half rotated.
    fn new() -> Option<Unseen> {
        let sample = std::fs::read(crate::util::realogs()?.join("ssh/syslog/auth.log")).unwrap();
        let split = sample.split_inclusive(|&c| c == b'\n').count() / 2;
        Some(Unseen::of(sample, split, "auth.log"))
    }

    fn of(sample: Vec<u8>, split: usize, name: &str) -> Unseen {
        let env = Env::new();
        let (err, dir, db) = (env.path("follow.err"), env.path("logs"), env.db());
        std::fs::create_dir(&dir).unwrap();
        Unseen { sample, split, path: dir.join(name), env, err, dir, db }
    }

    fn lines(&self) -> Vec<&[u8]> {
        self.sample.split_inclusive(|&c| c == b'\n').collect()
    }

    /// The first `split` lines written to the name, rotated to `NAME.1`,
    /// the rest written to a new file under the name.
    fn write_and_rotate(&self) {
        let lines = self.lines();
        std::fs::write(&self.path, lines[..self.split].concat()).unwrap();
        let mut copy = self.path.as_os_str().to_owned();
        copy.push(".1");
        std::fs::rename(&self.path, copy).unwrap();
        std::fs::write(&self.path, lines[self.split..].concat()).unwrap();
    }

    /// A follower started on the missing name and killed once it recorded
    /// the name; while it is down the file is written and rotated; the
    /// restart reads both.
    fn rotated_while_down(&self) {
        let mut child = self.env.spawn_follow(&[self.path.as_os_str()], &self.err);
        let recorded = "SELECT COUNT(*) FROM session_state WHERE scope LIKE 'follow@%'";
        wait_until("the followed names recorded", &self.err, || sqlite_number(&self.db, recorded) == 1);
        child.kill().unwrap();
        child.wait().unwrap();
        self.write_and_rotate();
        let child = self.env.spawn_follow(&[self.path.as_os_str()], &self.err);
        self.check(child, 0);
    }

    /// Waits for every line read (`other` more from other files), stops
    /// the follower; the copy was caught up with, nothing doubled, and the
    /// report of the sample's protocols equals a one-file import's.
    fn check(&self, child: Running, other: i64) {
        let read = "SELECT COALESCE(SUM(lines), 0) FROM ledger";
        let want = self.lines().len() as i64 + other;
        wait_until("both files read", &self.err, || sqlite_number(&self.db, read) == want);
        assert!(terminate(child, &self.err).success());
        assert!(std::fs::read_to_string(&self.err).unwrap().contains("caught up with"));
        assert_eq!(sqlite_number(&self.db, "SELECT SUM(events_dup) FROM ledger"), 0);
        let by = "day,user,protocol";
        let mut got = self.env.report_json(by);
        got.as_array_mut().unwrap().retain(|r| r["protocol"] != "ftp");
        assert_eq!(got, crate::util::import_once(&self.sample, by));
    }
}

/// A follower killed before its first commit of a name (the file did not
/// exist yet) still followed it: the names are recorded in the store at
/// the start, so a file written and rotated while it was down is read at
/// the restart from its copy, before the new file (a session spanning the
/// two stays whole).
#[test]
fn a_name_followed_before_its_first_commit_is_caught_up_after_a_restart() {
    let Some(u) = Unseen::new() else { return };
    u.rotated_while_down();
}

/// The copy and the new file begin in the same second (rsyncd lines are
/// often that close): the copy, which holds the older lines, is read
/// first, so the rsync connection they share (pid 26945: its start in the
/// copy, its summary in the new file) is counted as in one batch.
#[test]
fn a_copy_is_read_before_the_new_file_begun_in_the_same_second() {
    let Some(root) = crate::util::realogs() else { return };
    let sample = std::fs::read(root.join("rsync/rsyncd-default.log")).unwrap();
    let lines: Vec<&[u8]> = sample.split_inclusive(|&c| c == b'\n').collect();
    // Lines 133–136 of the sample (09:22:20) in the copy, 137– after.
    assert!(lines[132].starts_with(b"2026/11/09 09:22:20") && lines[136].starts_with(b"2026/11/09 09:22:20"));
    let u = Unseen::of(lines[132..].concat(), 4, "rsyncd.log");
    u.rotated_while_down();
}

/// A file created and rotated between two looks of a running follower
/// (here: polling every 3 s) was never held open: it is found among the
/// rotated copies of its name and read before the new file.
#[test]
fn a_file_created_and_rotated_between_two_looks_is_read_from_its_copy() {
    let Some(u) = Unseen::new() else { return };
    // A file present at the start (one FTP transfer): once it is read, the
    // first look (and what the start reads) is done.
    let xferlog = std::fs::read(crate::util::realogs().unwrap().join("vsftpd/std/xferlog")).unwrap();
    let other = u.dir.join("xferlog");
    std::fs::write(&other, xferlog.split_inclusive(|&c| c == b'\n').next().unwrap()).unwrap();
    let child = u.env.spawn_follow(&[OsStr::new("--poll=3000"), u.path.as_os_str(), other.as_os_str()], &u.err);
    wait_until("the first look", &u.err, || sqlite_number(&u.db, "SELECT COUNT(*) FROM ledger WHERE lines = 1") == 1);
    u.write_and_rotate();
    u.check(child, 1);
}

/// `status` counts the open sessions of the saved decoder states per
/// server host and format, with the oldest: those `ingest` left open, and
/// those of a follower while it runs (as a table and as JSON).
#[test]
fn status_counts_open_sessions_per_server_host() {
    let Some(root) = crate::util::realogs() else { return };
    let env = Env::new();
    let err = env.path("follow.err");
    let head = |p: &str, n: usize| -> Vec<u8> {
        let data = std::fs::read(root.join(p)).unwrap();
        data.split_inclusive(|&c| c == b'\n').take(n).collect::<Vec<_>>().concat()
    };
    // erin's sftp session on host `files1`, open after its 12th line.
    let auth = String::from_utf8(head("ssh/syslog/auth.log", 12)).unwrap().replace(" vm ", " files1 ");
    let a = env.write("auth.log", auth.as_bytes());
    env.ingest(&[a.to_str().unwrap()]).success();
    // frank's rsync connection (log-file lines: the --server-host, vm),
    // open after line 50.
    let rsync = head("rsync/rsyncd-default.log", 50);
    let r = env.write("rsyncd.log", &rsync);
    let child = env.spawn_follow(&[r.as_os_str()], &err);
    let db = env.db();
    let sql = format!("SELECT COUNT(*) FROM ledger WHERE \"offset\" = {}", rsync.len());
    wait_until("the rsyncd log", &err, || sqlite_number(&db, &sql) == 1);
    let out = env.cmd().args(["status", "--format", "json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["open_sessions"],
        serde_json::json!([
            {"server_host": "files1", "format": "syslog", "count": 1, "oldest_since": "2026-11-08T14:03:29Z"},
            {"server_host": "vm", "format": "rsyncd", "count": 1, "oldest_since": "2026-11-08T07:31:45Z"},
        ])
    );
    let text = String::from_utf8(env.cmd().arg("status").output().unwrap().stdout).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip_while(|l| !l.starts_with("SERVER HOST"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [["files1", "syslog", "1", "2026-11-08T14:03:29Z"], ["vm", "rsyncd", "1", "2026-11-08T07:31:45Z"]],
        "{text}"
    );
    assert!(terminate(child, &err).success());
}

/// A follower fires the hooks of what it commits (each download once,
/// delivered while it follows, none again after a restart) and serves the
/// store's totals on `--metrics-listen`.
#[test]
fn hooks_fire_and_metrics_are_served_while_following() {
    let env = Env::new();
    let err = env.path("follow.err");
    let out = env.path("hooks");
    let mut logs = Logs { dir: env.path(""), next: 0, written: 0 };
    let db = env.db();
    let stored = || sqlite_number(&db, "SELECT COUNT(*) FROM transfers");
    logs.append("x.log", 3);
    let path = logs.path("x.log");
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let hook = format!("download,exec={}", crate::hooks::recorder(&out));
    let args: [&OsStr; 7] = [
        "--hooks-backfill".as_ref(),
        "--hook".as_ref(),
        hook.as_ref(),
        "--metrics-listen".as_ref(),
        addr.as_ref(),
        "--poll=100".as_ref(),
        path.as_os_str(),
    ];
    // Deliveries recorded so far (a payload is complete once its variables
    // are written beside it).
    let delivered = || {
        std::fs::read_dir(&out)
            .map_or(0, |d| d.filter(|e| e.as_ref().unwrap().path().extension() == Some("env".as_ref())).count())
    };
    let child = env.spawn_follow(&args, &err);
    wait_until("the first lines and their hooks", &err, || stored() == 3 && delivered() == 3);
    logs.append("x.log", 2);
    wait_until("the appended lines and their hooks", &err, || stored() == 5 && delivered() == 5);
    let (status, text) = crate::metrics::http_get(&addr, "/metrics");
    assert!(status.contains("200"), "{status}");
    let transfers: f64 = text
        .lines()
        .filter(|l| l.starts_with("xferstats_transfers_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(transfers, 5.0, "{text}");
    assert!(text.lines().any(|l| l == "xferstats_store_errors_total 0"), "{text}");
    assert!(terminate(child, &err).success());
    // A restart reads nothing new and fires nothing again.
    let child = env.spawn_follow(&args[..3].iter().chain([&args[6]]).copied().collect::<Vec<_>>(), &err);
    logs.append("x.log", 1);
    wait_until("the line appended after the restart", &err, || delivered() == 6);
    assert!(terminate(child, &err).success());
    let ids: std::collections::BTreeSet<String> =
        crate::hooks::recorded(&out).iter().map(|(p, _)| p["event_id"].as_str().unwrap().to_string()).collect();
    assert_eq!((stored(), ids.len()), (6, 6));
    let log = std::fs::read_to_string(&err).unwrap();
    assert!(log.contains("hooks: 5 delivered"), "{log}");
}
