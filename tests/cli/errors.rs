//! An error line names what failed and says its cause once: the library's
//! errors carry their OS or driver cause both in their text and as their
//! source, and the chain printed by the binary must not repeat it.

use crate::pg::free_port;
use crate::util::{fixture, stderr, Env, INGEST};

/// `xferstats ARGS…` fails with `code`; its stderr.
fn fails(env: &Env, args: &[&std::ffi::OsStr], code: i32) -> String {
    stderr(
        &env.cmd_with_key_file().env("XFERSTATS_HOST_KEY", crate::util::TEST_HOST_KEY).args(args).assert().code(code),
    )
}

#[test]
fn a_path_under_a_regular_file_says_its_cause_once() {
    let env = Env::new();
    let file = env.write("plain", b"not a directory\n");
    let log = fixture("rsync/default-logfile.log");
    let f = file.display();

    let err = fails(&env, &["--db".as_ref(), file.join("x.db").as_ref(), "ingest".as_ref(), log.as_ref()], 4);
    assert_eq!(err, format!("xferstats: error: {f}: cannot create database directory: {f} is a file\n"));

    let err = fails(&env, &["--db".as_ref(), file.join("x.db").as_ref(), "report".as_ref()], 4);
    assert_eq!(err, format!("xferstats: error: {f}/x.db: cannot read the database: Not a directory (os error 20)\n"));

    let mut key_file = env.cmd_with_key_file();
    key_file.env("XFERSTATS_STATE_DIR", file.join("state")).args(INGEST).arg(&log);
    let err = stderr(&key_file.assert().code(2));
    assert_eq!(
        err,
        format!("xferstats: error: {f}/state/host.key: cannot read the host key: Not a directory (os error 20)\n")
    );
}

#[test]
fn a_refused_postgresql_connection_says_its_cause_once() {
    let port = free_port().expect("a free loopback port");
    let url = format!("postgres://u@127.0.0.1:{port}/x");
    let env = Env::new();
    let log = fixture("rsync/default-logfile.log");
    let err = fails(&env, &["--db".as_ref(), url.as_ref(), "ingest".as_ref(), log.as_ref()], 4);
    assert_eq!(
        err,
        format!(
            "xferstats: error: postgres {url}: connect: error connecting to server: Connection refused (os error 111) \
             (check that the server runs and listens on the host and port of --db)\n"
        )
    );
}

#[test]
fn an_unreachable_influxdb_is_one_line_per_outage_and_one_error() {
    let port = free_port().expect("a free loopback port");
    let target = format!("influxdb://127.0.0.1:{port}/x");
    let env = Env::new();
    let log = fixture("rsync/default-logfile.log");
    let url = format!("{target}?retries=3&backoff=10ms");
    let err = fails(&env, &["--db".as_ref(), url.as_ref(), "ingest".as_ref(), log.as_ref()], 4);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(
        lines[0],
        format!(" WARN {target}: write failed: cannot connect: Connection refused (os error 111); retrying up to 3 time(s) over 70ms")
    );
    let (head, tail) = lines[1].split_once("; gave up after 4 attempt(s) over ").expect(&err);
    assert_eq!(
        head,
        format!("xferstats: error: {target}: write failed: cannot connect: Connection refused (os error 111)")
    );
    assert!(tail.ends_with("ms (check that the server runs and listens on the host and port of --db)"), "{err}");
    assert_eq!(err.matches("Connection refused").count(), 2, "{err}");
}

#[test]
fn a_missing_input_has_its_own_error_line_before_the_summary() {
    let env = Env::new();
    let missing = env.path("missing.log");
    let log = fixture("rsync/default-logfile.log");
    let a = env.cmd().args(INGEST).arg(&missing).arg(&log).assert().code(3);
    let err = stderr(&a);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        format!("xferstats: error: {}: cannot open: No such file or directory (os error 2)", missing.display())
    );
    assert!(lines[1].starts_with("ingested 2 file(s), 40 lines "), "{err}");
    assert_eq!(lines.len(), 2, "the missing input is not listed again: {err}");
    // Under -q the error line is all there is.
    let a = env.cmd().arg("-q").args(INGEST).arg(&missing).assert().code(3);
    assert_eq!(
        stderr(&a),
        format!("xferstats: error: {}: cannot open: No such file or directory (os error 2)\n", missing.display())
    );
}

/// The words of `xferstats ARGS… --help` with only the variables `vars`
/// set of those that options read.
fn help(args: &[&str], vars: &[(&str, &str)]) -> String {
    let mut c = assert_cmd::Command::cargo_bin("xferstats").unwrap();
    for v in ["XFERSTATS_DB", "XFERSTATS_STATE_DIR", "XFERSTATS_GEOIP", "XFERSTATS_IP_MODE"] {
        c.env_remove(v);
    }
    c.envs(vars.iter().copied()).args(args).arg("--help");
    let out = String::from_utf8(c.assert().success().get_output().stdout.clone()).unwrap();
    // Words only: clap wraps lines wherever the terminal width says.
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_store_urls_are_described_once_and_env_hints_only_when_set() {
    let top = help(&[], &[]);
    assert_eq!(top.matches("Stores (--db URL, or XFERSTATS_DB):").count(), 1, "{top}");
    assert_eq!(top.matches("PGHOST").count(), 1, "{top}");
    assert_eq!(top.matches("influxdb2://host:8086/ORG/BUCKET?daily_bucket=B").count(), 1, "{top}");
    for sub in [&["ingest"][..], &["report"], &["prune"], &["rollup"], &["db", "migrate"]] {
        let h = help(sub, &[]);
        assert!(!h.contains("PGHOST") && !h.contains("INFLUX_TOKEN"), "{sub:?}: {h}");
        assert!(h.contains("every form is listed at the end of `xferstats --help`"), "{sub:?}: {h}");
        assert!(!h.contains("[env:"), "{sub:?}: {h}");
    }
    // A variable that is set is shown with its value, except the store
    // URL, which may hold a password.
    let h = help(&["ingest"], &[("XFERSTATS_STATE_DIR", "/srv/xs"), ("XFERSTATS_DB", "postgres://u:pw@h/db")]);
    assert!(h.contains("[env: XFERSTATS_STATE_DIR=/srv/xs]"), "{h}");
    assert!(h.contains("[env: XFERSTATS_DB]") && !h.contains("pw@"), "{h}");
    assert!(!h.contains("XFERSTATS_IP_MODE"), "{h}");
    let h = help(&["ingest"], &[("XFERSTATS_IP_MODE", "full")]);
    assert!(h.contains("[env: XFERSTATS_IP_MODE=full]"), "{h}");
}
