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
        format!("xferstats: error: postgres {url}: connect: error connecting to server: Connection refused (os error 111)\n")
    );
}
