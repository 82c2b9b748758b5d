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
