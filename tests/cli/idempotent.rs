//! The cron case on SQLite: grown files, rotations and stdin never change
//! the totals (re-imports and copies on every store: `stores.rs`).

use std::io::Write;

use serde_json::Value;

use crate::util::{fixture, gzip, import_once, stderr, synthetic_log, Env};

const BY: &str = "day,user,direction,status,module,client,host";

fn whole(data: &[u8]) -> Value {
    import_once(data, BY)
}

#[test]
fn a_grown_file_adds_only_its_new_lines() {
    let data = synthetic_log(200);
    let expected = whole(&data);
    let lines: Vec<&[u8]> = data.split_inclusive(|&c| c == b'\n').collect();
    // Cut at several points, including inside sessions.
    for cut in [1, 7, 333, lines.len() / 2 + 3, lines.len() - 1] {
        let env = Env::new();
        let p = env.path("rsyncd.log");
        std::fs::write(&p, lines[..cut].concat()).unwrap();
        env.ingest(&[p.to_str().unwrap()]).success();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&lines[cut..].concat()).unwrap();
        drop(f);
        let a = env.ingest(&["-v", p.to_str().unwrap()]).success();
        if cut > 1 {
            assert!(stderr(&a).contains("resumed at byte"), "{}", stderr(&a));
        }
        assert_eq!(env.report_json(BY), expected, "cut at line {cut}");
    }
}

#[test]
fn a_session_split_across_a_rotation_is_joined() {
    let data = std::fs::read(fixture("rsync/default-logfile.log")).unwrap();
    let expected = whole(&data);
    let lines: Vec<&[u8]> = data.split_inclusive(|&c| c == b'\n').collect();
    for cut in [5, 13, 30, 38] {
        let env = Env::new();
        let old = env.write("rsyncd.log.1.gz", &gzip(&lines[..cut].concat()));
        let new = env.write("rsyncd.log", &lines[cut..].concat());
        // Given newest first: xferstats reads the oldest content first.
        env.ingest(&[new.to_str().unwrap(), old.to_str().unwrap()]).success();
        assert_eq!(env.report_json(BY), expected, "rotated after line {cut}");
        // Separately, in two runs (yesterday's rotation, today's log).
        let env = Env::new();
        let old = env.write("rsyncd.log.1", &lines[..cut].concat());
        let new = env.write("rsyncd.log", &lines[cut..].concat());
        env.ingest(&[old.to_str().unwrap()]).success();
        env.ingest(&[new.to_str().unwrap()]).success();
        assert_eq!(env.report_json(BY), expected, "two runs, rotated after line {cut}");
    }
}

#[test]
fn stdin_is_read_like_a_file() {
    let data = std::fs::read(fixture("rsync/default-logfile.log")).unwrap();
    let expected = whole(&data);
    let env = Env::new();
    env.cmd()
        .args(["ingest", "--timezone", "UTC", "--server-host", "vm", "-"])
        .write_stdin(gzip(&data))
        .assert()
        .success();
    assert_eq!(env.report_json(BY), expected);
    // Piping a prefix that ends inside open sessions, then the whole log:
    // the lines read twice add nothing, the pending sessions finish once.
    let env = Env::new();
    for cut in [600usize, 1500, 2600, data.len()] {
        let end = data[..cut].iter().rposition(|&c| c == b'\n').map_or(cut, |p| p + 1);
        env.cmd()
            .args(["ingest", "--timezone", "UTC", "--server-host", "vm", "-"])
            .write_stdin(data[..end].to_vec())
            .assert()
            .success();
    }
    assert_eq!(env.report_json(BY), expected);
}

#[test]
fn rollups_equal_the_raw_events() {
    let env = Env::new();
    let p = env.write("s.log", &synthetic_log(300));
    env.ingest(&[p.to_str().unwrap(), fixture("rsync/default-logfile.log").to_str().unwrap()]).success();
    crate::stores::sqlite_rollups_match_raw(&env.db());
}

/// Two logs that begin with the same line (as sshd `-E` files all begin
/// `Server listening on …`) are two inputs to the ledger: a second run
/// resumes each at its end instead of reading them again.
#[test]
fn logs_sharing_a_first_line_are_not_read_again() {
    let env = Env::new();
    let first = b"2026/05/01 00:00:00 [999] rsyncd version 3.2.7 starting, listening on port 873\n";
    let a = env.write("a.log", &[&first[..], &synthetic_log(20)].concat());
    let other = String::from_utf8(synthetic_log(20)).unwrap().replace("team", "crew");
    let b = env.write("b.log", &[&first[..], other.as_bytes()].concat());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let totals = |env: &Env| env.report_json(BY);
    env.ingest(&[a, b]).success();
    let once = totals(&env);
    let run = env.ingest(&["-v", a, b]).success();
    let err = stderr(&run);
    for (p, len) in [(a, std::fs::metadata(a).unwrap().len()), (b, std::fs::metadata(b).unwrap().len())] {
        assert!(
            err.contains(&format!("{p}: rsyncd, 0 lines, resumed at byte {len}: already imported, nothing new\n")),
            "{err}"
        );
    }
    assert!(!err.contains("content differs"), "{err}");
    assert!(err.contains(": 0 new events, 0 already present, 0 rejected lines"), "{err}");
    assert_eq!(totals(&env), once);
}
