//! Recoverable imports (issue 17.1): an input read with the wrong options
//! is either not marked as read (nearly every line rejected) or can be
//! forgotten (`xferstats forget`) and read again; totals are exact
//! afterwards, on SQLite and PostgreSQL, and other inputs' events and open
//! sessions stay.

use std::path::{Path, PathBuf};

use predicates::str::contains;
use serde_json::Value;

use crate::pg::PgDb;
use crate::realogs::{xferlog_actual, xferlog_expected};
use crate::stores::{Sqlite, Store};
use crate::util::{realogs, stderr, Env};

/// The `log format` of the sample `rsyncd-custom.log`.
const CUSTOM: &str = "%t %a %h %o %m %u %f %l %b %i";

/// `xferstats forget FILES…` in `env`.
fn forget(env: &Env, files: &[&Path]) -> assert_cmd::assert::Assert {
    env.cmd().arg("forget").args(files).assert()
}

/// vsftpd's xferlog read as `--format vsftpd`: every line rejected, not
/// marked as read, the hint names `--format xferlog`; read again with it,
/// the totals are the ground truth's.
fn wrong_format_is_not_marked_as_read<S: Store>() {
    let (Some(root), Some(env)) = (realogs(), S::fresh()) else { return };
    let log = root.join("vsftpd/std/xferlog");
    let a = env.ingest(&["--format", "vsftpd", log.to_str().unwrap()]).code(1);
    let err = stderr(&a);
    assert!(
        err.contains(
            "18 of its 18 lines rejected and none used: not marked as read (read again in full next time); \
             probably --format xferlog (its first lines read as xferlog)"
        ),
        "{err}"
    );
    let a = env.ingest(&["--format", "xferlog", log.to_str().unwrap()]).success();
    assert!(stderr(&a).contains("18 new events"), "{}", stderr(&a));
    assert_eq!(xferlog_actual(&env), xferlog_expected("vsftpd-std", false));
    // Nothing was left of the first reading: the ledger entry is the
    // second one's, and forgetting it empties the rollups too.
    forget(&env, &[&log]).success().stderr(contains("18 transfers and 0 logins removed"));
    assert_eq!(env.report_json("day,user"), Value::Array(Vec::new()));
}

#[test]
fn a_wrong_format_leaves_the_input_unread_on_sqlite() {
    wrong_format_is_not_marked_as_read::<Sqlite>();
}

#[test]
fn a_wrong_format_leaves_the_input_unread_on_postgres() {
    wrong_format_is_not_marked_as_read::<PgDb>();
}

/// The first `lines` lines of `log`.
fn head_of(log: &[u8], lines: usize) -> Vec<u8> {
    let end = log.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(lines - 1).map(|(i, _)| i + 1).unwrap();
    log[..end].to_vec()
}

/// The totals compared: (report JSON field, expected.json field).
const TOTALS: [(&str, &str); 7] = [
    ("transfers", "transfers"),
    ("completed", "transfers_completed"),
    ("interrupted", "transfers_interrupted"),
    ("uploads", "uploads"),
    ("downloads", "downloads"),
    ("logins_ok", "successful_logins"),
    ("logins_failed", "failed_logins"),
];

/// [`TOTALS`] of the two rsync samples together, from expected.json.
fn rsync_totals(root: &Path) -> Vec<(&'static str, u64)> {
    let v: Value = serde_json::from_slice(&std::fs::read(root.join("expected.json")).unwrap()).unwrap();
    let t = |k: &str| -> u64 {
        ["rsync-default", "rsync-custom"].iter().map(|s| v["by_variant"][s]["totals"][k].as_u64().unwrap()).sum()
    };
    TOTALS.iter().map(|(field, expected)| (*field, t(expected))).collect()
}

/// [`TOTALS`] of a store that holds rsync events only.
fn totals(env: &Env) -> Vec<(&'static str, u64)> {
    let r = &env.report_json("protocol")[0];
    assert_eq!(r["protocol"], "rsync");
    TOTALS.iter().map(|(field, _)| (*field, r[field].as_u64().unwrap())).collect()
}

/// `rsyncd-custom.log` read without `--rsync-log-format`, between the two
/// halves of the default log (cut inside an open session of the same
/// format): forgotten and read again with the option, the totals are the
/// samples' and the store reports exactly what a correct import gives.
fn forget_and_read_again<S: Store>() {
    let (Some(root), Some(store)) = (realogs(), S::fresh()) else { return };
    let env: &Env = &store;
    let default = std::fs::read(root.join("rsync/rsyncd-default.log")).unwrap();
    let custom = root.join("rsync/rsyncd-custom.log");
    // Lines 1-22 end inside the open session of pid 25906 (its summary is
    // line 27).
    let growing: PathBuf = env.write("rsyncd.log", &head_of(&default, 22));
    env.ingest(&[growing.to_str().unwrap()]).success();
    let before = env.report_json("day,user,status");
    let first = totals(env);
    // The wrong reading: its per-file lines are rejected, the rest is used.
    env.ingest(&[custom.to_str().unwrap()]).code(1);
    let wrong = totals(env);
    assert_ne!(wrong, first, "the wrong reading stored something");
    // A second forget, or one of a file never read, has nothing to do.
    let a = forget(env, &[&custom]).success();
    assert!(stderr(&a).starts_with("forgot "), "{}", stderr(&a));
    assert_eq!(env.report_json("day,user,status"), before, "only the custom log's events went");
    forget(env, &[&custom]).code(1).stderr(contains("not in the ledger"));
    env.ingest(&["--rsync-log-format", CUSTOM, custom.to_str().unwrap()]).success();
    // The rest of the default log continues its open session.
    std::fs::write(&growing, &default).unwrap();
    let a = env.ingest(&[growing.to_str().unwrap()]).success();
    assert!(stderr(&a).contains("0 rejected lines"), "{}", stderr(&a));
    assert_eq!(totals(env), rsync_totals(&root));
    let clean = Env::new();
    clean.ingest(&[root.join("rsync/rsyncd-default.log").to_str().unwrap()]).success();
    clean.ingest(&["--rsync-log-format", CUSTOM, custom.to_str().unwrap()]).success();
    for by in ["day,user,status,direction,module", "client", "day,host"] {
        assert_eq!(env.report_json(by), clean.report_json(by), "--by {by}");
    }
    store.check();
}

#[test]
fn forget_then_read_again_is_exact_on_sqlite() {
    forget_and_read_again::<Sqlite>();
}

#[test]
fn forget_then_read_again_is_exact_on_postgres() {
    forget_and_read_again::<PgDb>();
}

#[test]
fn forget_refuses_events_that_do_not_know_their_input() {
    let Some(root) = realogs() else { return };
    let env = Env::new();
    let log = root.join("rsync/rsyncd-default.log");
    env.ingest(&[log.to_str().unwrap()]).success();
    let before = env.report_json("day,user");
    // As a store written before schema version 4 has them.
    let db = rusqlite::Connection::open(env.db()).unwrap();
    db.execute_batch("UPDATE transfers SET input = NULL; UPDATE logins SET input = NULL").unwrap();
    drop(db);
    forget(&env, &[&log]).code(4).stderr(contains(
        "were stored before events recorded their input (schema version 4 of SQLite, 3 of PostgreSQL); forget \
         cannot tell them from other inputs' events and changes nothing",
    ));
    assert_eq!(env.report_json("day,user"), before);
    let a = env.ingest(&[log.to_str().unwrap()]).success();
    assert!(stderr(&a).contains("0 new events"), "still marked as read: {}", stderr(&a));
}

#[test]
fn ingest_reread_forgets_and_reads_in_one_run() {
    let Some(root) = realogs() else { return };
    let env = Env::new();
    let custom = root.join("rsync/rsyncd-custom.log");
    let p = custom.to_str().unwrap();
    env.ingest(&[p]).code(1);
    // Without --reread the right option changes nothing: already read.
    let a = env.ingest(&["--rsync-log-format", CUSTOM, p]).success();
    assert!(stderr(&a).contains("0 new events"), "{}", stderr(&a));
    let a = env.ingest(&["--reread", "--rsync-log-format", CUSTOM, p]).success();
    assert!(stderr(&a).contains("forgot "), "{}", stderr(&a));
    let clean = Env::new();
    clean.ingest(&["--rsync-log-format", CUSTOM, p]).success();
    assert_eq!(env.report_json("day,user,status,direction"), clean.report_json("day,user,status,direction"));
    // A file never read is simply read.
    let other = Env::new();
    other.ingest(&["--reread", "--rsync-log-format", CUSTOM, p]).success();
    assert_eq!(other.report_json("day,user,status,direction"), clean.report_json("day,user,status,direction"));
}

#[test]
fn forget_of_a_file_never_read_changes_nothing() {
    let env = Env::new();
    forget(&env, &[&crate::util::fixture("rsync/default-logfile.log")])
        .code(2)
        .stderr(contains("no database yet; run `xferstats ingest FILE…` first"));
    assert!(!env.db().exists());
    let log = crate::util::fixture("rsync/default-logfile.log");
    let other =
        env.write("other.log", b"2026/03/01 10:00:00 [1] rsyncd version 3.2.7 starting, listening on port 873\n");
    env.ingest(&[log.to_str().unwrap()]).success();
    let before = env.report_json("day,user");
    forget(&env, &[&other]).code(1).stderr(contains("not in the ledger of sqlite:"));
    forget(&env, &[&env.path("missing.log")]).code(3);
    assert_eq!(env.report_json("day,user"), before);
}

#[test]
fn influxdb_refuses_forget_and_changes_nothing() {
    let Some(s) = crate::influxd::influxd() else { return };
    let db = crate::influx::fresh_db(s, "INF");
    let env = Env::new();
    let url = format!("influxdb://127.0.0.1:{}/{db}?rp=raw&daily_rp=daily", s.port);
    let log = crate::util::fixture("rsync/default-logfile.log");
    crate::influx::ingest(&env, &url, std::slice::from_ref(&log)).success();
    let report = |env: &Env| crate::influx::cmd(env, &url).args(["report", "--format", "json", "--by", "day"]).output();
    let before = report(&env).unwrap().stdout;
    crate::influx::cmd(&env, &url).arg("forget").arg(&log).assert().code(4).stderr(contains(
        "forget is not supported for InfluxDB (its points do not record the input they came from); drop the \
         database or bucket and the state file, and import again",
    ));
    assert_eq!(report(&env).unwrap().stdout, before);
    let a = crate::influx::ingest(&env, &url, &[log]).success();
    assert!(stderr(&a).contains("0 new events"), "still marked as read: {}", stderr(&a));
}

/// An input forgotten while a session of its own is still open (the saved
/// state holds it) and read again in full counts that session once.
#[test]
fn an_input_forgotten_inside_its_own_open_session_reads_again_exactly() {
    let Some(root) = realogs() else { return };
    let env = Env::new();
    let full = std::fs::read(root.join("rsync/rsyncd-custom.log")).unwrap();
    // Lines 1-9 end inside the session of pid 25930 (its summary is line 11).
    let log = env.write("custom.log", &head_of(&full, 9));
    env.ingest(&["--rsync-log-format", CUSTOM, log.to_str().unwrap()]).success();
    forget(&env, &[&log]).success();
    std::fs::write(&log, &full).unwrap();
    env.ingest(&["--rsync-log-format", CUSTOM, log.to_str().unwrap()]).success();
    let clean = Env::new();
    clean.ingest(&["--rsync-log-format", CUSTOM, root.join("rsync/rsyncd-custom.log").to_str().unwrap()]).success();
    for by in ["day,user,status,direction,module", "client"] {
        assert_eq!(env.report_json(by), clean.report_json(by), "--by {by}");
    }
}

/// A store written with unkeyed ids is re-keyed by forget's first look, its
/// events' inputs with their ledger entries: the input is still found.
#[test]
fn forget_finds_an_input_of_a_store_re_keyed_on_the_way() {
    let env = Env::new();
    let log = crate::util::fixture("rsync/default-logfile.log");
    let p = log.to_str().unwrap();
    env.cmd().env("XFERSTATS_TEST_UNKEYED_IDS", "1").args(crate::util::INGEST).arg(p).assert().success();
    let a = forget(&env, &[&log]).success();
    assert!(stderr(&a).starts_with("forgot "), "{}", stderr(&a));
    assert_eq!(env.report_json("day,user"), Value::Array(Vec::new()));
}
