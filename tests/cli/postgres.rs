//! The PostgreSQL store against a real throwaway server (`pg.rs`): same
//! reports as SQLite, exactly-once under concurrency and lost connections,
//! schema and partitions, and no password in any output. Re-imports,
//! crashes, kills, prunes and rebuilds run on every store in `stores.rs`.

use std::path::PathBuf;
use std::time::Duration;

use crate::pg::{fresh, PG_PASSWORD};
use crate::stores::Store;
use crate::util::{fixture, gzip, realogs, stderr, synthetic_log, Env, TEST_HOST_KEY};

const KEYS: [&str; 6] =
    ["", "day,user", "day,user,protocol,direction,status,module,host", "client", "country,city", "day,client,status"];

#[test]
fn reports_are_identical_to_sqlite() {
    let Some(db) = fresh("same") else { return };
    let env = Env::new();
    let mut inputs: Vec<(PathBuf, Vec<&str>)> = vec![
        (fixture("rsync/default-logfile.log"), vec![]),
        (fixture("geoip/clients.log"), vec!["--ip-mode", "full"]),
        (fixture("xferlog/traps.xferlog"), vec![]),
        (fixture("openssh/auth.log"), vec![]),
        (fixture("vsftpd/traps.log"), vec![]),
    ];
    if let Some(r) = realogs() {
        inputs.push((r.join("rsync/rsyncd-default.log"), vec![]));
        inputs.push((r.join("ssh/syslog/auth.log"), vec!["--ip-mode", "truncate"]));
        inputs.push((r.join("vsftpd/own/vsftpd.log"), vec![]));
    }
    for (path, extra) in &inputs {
        if !path.exists() {
            continue;
        }
        let mut args = extra.clone();
        args.push(path.to_str().unwrap());
        env.ingest(&args).code(predicates::ord::lt(2));
        db.ingest(&args).code(predicates::ord::lt(2));
    }
    for by in KEYS {
        let args: &[&str] = if by.is_empty() { &["--format", "json"] } else { &["--format", "json", "--by", by] };
        let b = db.report(args);
        assert_eq!(String::from_utf8_lossy(&env.report(args)), String::from_utf8_lossy(&b), "--by {by}");
        assert!(
            serde_json::from_slice::<serde_json::Value>(&b).unwrap().as_array().is_some_and(|v| !v.is_empty()),
            "--by {by}: empty"
        );
    }
    // The table output too.
    assert_eq!(env.report(&["--by", "day,user"]), db.report(&["--by", "day,user"]));
    // And the HTML page, whose top files, failed transfers and failed-login
    // clients are the stores' own queries.
    let html = ["--format", "html"];
    assert!(env.report(&html) == db.report(&html), "the HTML report differs from SQLite's");
    db.check();
}

#[test]
fn concurrent_ingests_of_overlapping_files_count_once() {
    let Some(once) = fresh("conc_once") else { return };
    let env = Env::new();
    let data = synthetic_log(3000);
    once.ingest(&[env.write("once.log", &data).to_str().unwrap()]).success();
    let expected = once.report_json("day,user,client,status");

    for round in 0..3 {
        let db = once.another("conc");
        // Two copies under different names (same fingerprint) and a third
        // with another first line, by three processes at once.
        let a = env.write(&format!("a{round}.log"), &data);
        let b = env.write(&format!("b{round}.log.gz"), &gzip(&data));
        let mut c_data = b"2026/05/01 00:00:00 [1] rsyncd version 3.5.0 starting, listening on port 873\n".to_vec();
        c_data.extend_from_slice(&data);
        let c = env.write(&format!("c{round}.log"), &c_data);
        let children: Vec<_> = [a, b, c]
            .iter()
            .map(|p| db.spawn_ingest(&["--batch-size".as_ref(), "500".as_ref(), p.as_os_str()]))
            .collect();
        for ch in children {
            let out = ch.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(db.report_json("day,user,client,status"), expected, "round {round}");
        db.check();
    }
}

/// Two hosts import their rsyncd logs into one database at the same moment,
/// each log cut inside open sessions (a connection whose `sent … received`
/// line is not written yet), then, again at the same moment, the rest: each
/// host's open sessions are its own, so the totals equal those of the two
/// logs imported whole, one after the other.
#[test]
fn concurrent_ingests_of_two_hosts_keep_their_open_sessions() {
    let Some(once) = fresh("hosts_once") else { return };
    let env = Env::new();
    // Each host's own log (other client addresses) of a server without
    // per-file lines (each connection is counted from its summary), cut
    // right after the `rsync to` request of connection 201.
    let alpha: String = String::from_utf8(synthetic_log(400))
        .unwrap()
        .split_inclusive('\n')
        .filter(|l| !l.contains("] recv "))
        .collect();
    let beta = alpha.replace("(10.", "(11.").replace("[10.", "[11.");
    let cut = |text: &str| {
        let i = text.find("rsync to team/dir201/").unwrap();
        i + text[i..].find('\n').unwrap() + 1
    };
    let hosts = [("alpha", alpha.as_bytes(), cut(&alpha)), ("beta", beta.as_bytes(), cut(&beta))];
    // Concurrent imports meet once both have read the saved open sessions:
    // neither commits before the other has read them.
    let spawn = |url: &str, host: &str, log: &std::path::Path, meet: Option<&std::path::Path>| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("xferstats"))
            .env_remove("XFERSTATS_DB")
            .env_remove("XFERSTATS_IP_MODE")
            .env("XFERSTATS_STATE_DIR", env.state_dir())
            .env("XFERSTATS_HOST_KEY", TEST_HOST_KEY)
            .env("XFERSTATS_GEOIP", "off")
            .envs(meet.map(|dir| ("XFERSTATS_TEST_RENDEZVOUS", format!("state-read:{}:2", dir.display()))))
            .args(["--db", url, "ingest", "--timezone", "UTC", "--progress", "never", "--server-host", host])
            .arg(log)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn xferstats")
    };
    for (host, data, _) in hosts {
        let whole = env.write(&format!("{host}-whole.log"), data);
        let out = spawn(&once.url, host, &whole, None).wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let expected = once.report_json("day,host,user,status");
    for round in 0..2 {
        let db = once.another("hosts");
        for whole in [false, true] {
            let meet = env.path(&format!("meet-{round}-{whole}"));
            std::fs::create_dir(&meet).unwrap();
            let children: Vec<_> = hosts
                .iter()
                .map(|(host, data, cut)| {
                    let log = env.write(&format!("{host}{round}.log"), if whole { data } else { &data[..*cut] });
                    spawn(&db.url, host, &log, Some(&meet))
                })
                .collect();
            for ch in children {
                let out = ch.wait_with_output().unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            }
        }
        assert_eq!(db.report_json("day,host,user,status"), expected, "round {round}");
        db.check();
    }
}

#[test]
fn a_lost_connection_commits_nothing_of_the_batch() {
    let Some(db) = fresh("lost") else { return };
    let log = db.write("rsyncd.log", &synthetic_log(2000));
    db.cmd().args(["db", "migrate"]).assert().success();
    // Hold the rollup table so the ingest's first commit waits; then cut
    // its connection from the server side.
    let mut holder = ::postgres::Client::connect(&db.url, ::postgres::NoTls).unwrap();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE daily_transfers IN ACCESS EXCLUSIVE MODE").unwrap();
    let child = db.spawn_ingest(&[log.as_os_str()]);
    let mut killed = 0;
    for _ in 0..600 {
        killed = db
            .psql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'xferstats' \
                 AND wait_event_type = 'Lock'",
            )
            .parse::<i32>()
            .unwrap();
        if killed > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(killed, 1, "the ingest never waited on the lock");
    tx.rollback().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("postgres xferstats@127.0.0.1") || err.contains("postgres://xferstats@127.0.0.1"), "{err}");
    assert!(!err.contains(PG_PASSWORD), "{err}");
    // Nothing of the batch's transfers, rollups of them or ledger was
    // committed (the logins that the import's second connection commits
    // first may be); a re-run completes it exactly.
    assert_eq!(db.psql("SELECT (SELECT count(*) FROM transfers) + (SELECT count(*) FROM ledger)"), "0");
    db.ingest(&[log.to_str().unwrap()]).success();
    let once = db.another("lost_once");
    once.ingest(&[log.to_str().unwrap()]).success();
    assert_eq!(db.report_json("day,user,client"), once.report_json("day,user,client"));
}

#[test]
fn password_never_appears_in_any_output() {
    let Some(db) = fresh("secret") else { return };
    let (pg, name) = (db.pg, &db.name);
    let f = fixture("rsync/default-logfile.log");
    let outputs = vec![
        db.ingest(&["-v", f.to_str().unwrap()]).success().get_output().clone(),
        db.cmd().args(["report", "--by", "day"]).assert().success().get_output().clone(),
        db.cmd().args(["db", "migrate"]).assert().success().get_output().clone(),
        // Wrong password, closed port, missing database: exit 4, no password.
        db.cmd_on(db.url.replace(PG_PASSWORD, "wrong-password-123"))
            .args(["report"])
            .assert()
            .code(4)
            .get_output()
            .clone(),
        db.cmd_on(format!("postgres://xferstats:{PG_PASSWORD}@127.0.0.1:1/{name}"))
            .args(["ingest", f.to_str().unwrap()])
            .assert()
            .code(4)
            .get_output()
            .clone(),
        db.cmd_on(pg.url("no_such_database")).args(["report"]).assert().code(4).get_output().clone(),
        db.cmd_on(format!("postgres://xferstats:{PG_PASSWORD}@127.0.0.1:notaport/x"))
            .args(["report"])
            .assert()
            .code(2)
            .get_output()
            .clone(),
    ];
    for o in &outputs {
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(!all.contains(PG_PASSWORD) && !all.contains("wrong-password-123"), "{all}");
    }
    let err = String::from_utf8_lossy(&outputs[4].stderr);
    assert!(err.contains("127.0.0.1:1") && err.contains("connect"), "{err}");
    // The PG* variables with `--db postgres:`.
    let out = db
        .cmd_with_key_file()
        .env("XFERSTATS_HOST_KEY", TEST_HOST_KEY)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg.port().to_string())
        .env("PGUSER", "xferstats")
        .env("PGPASSWORD", PG_PASSWORD)
        .env("PGDATABASE", name)
        .args(["--db", "postgres:", "report", "--by", "day", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, db.report(&["--by", "day", "--format", "json"]));
}

#[test]
fn schema_migrations_partitions_and_newer_schema() {
    let Some(db) = fresh("schema") else { return };
    let a = db.cmd().args(["db", "migrate"]).assert().success();
    assert!(stderr(&a).contains("schema version 5"), "{}", stderr(&a));
    db.cmd().args(["db", "migrate"]).assert().success();
    assert_eq!(db.psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version"), "1,2,3,4,5");
    // No partition and no default partition before data arrives; a month
    // each after.
    assert_eq!(db.psql("SELECT count(*) FROM pg_inherits"), "0");
    db.ingest(&[fixture("rsync/default-logfile.log").to_str().unwrap()]).success();
    assert_eq!(
        db.psql("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE c.relkind = 'r'"),
        "logins_y2026m03,transfers_y2026m03"
    );
    assert_eq!(db.psql("SELECT data_type FROM information_schema.columns WHERE table_name = 'transfers' AND column_name = 'client_ip'"), "inet");
    // Migration 4 fills the value rollup of a store written before it.
    let by = ["day,user", "host,protocol", "day"].map(|k| db.report(&["--by", k, "--format", "json"]));
    db.psql(
        "DROP TABLE daily_values; DROP INDEX daily_clients_by_client; DELETE FROM schema_version WHERE version = 4",
    );
    db.cmd().args(["db", "migrate"]).assert().success();
    assert_eq!(by, ["day,user", "host,protocol", "day"].map(|k| db.report(&["--by", k, "--format", "json"])));
    assert_ne!(db.psql("SELECT count(*) FROM daily_values WHERE field = 'user,host'"), "0");
    // A database from a newer xferstats is refused.
    db.psql("INSERT INTO schema_version VALUES (99)");
    let a = db.cmd().args(["report"]).assert().code(4);
    let err = stderr(&a);
    assert!(err.contains("schema version 99 is newer"), "{err}");
}

#[test]
fn nul_bytes_in_log_text_are_stored_alike() {
    let Some(db) = fresh("nul") else { return };
    let env = Env::new();
    let log = env.write(
        "xferlog",
        b"Tue Apr  5 12:35:58 2016 1 203.0.113.9 4061858 /data/a\0b.json b _ i r us\0er ftp 0 * c\n\
          Tue Apr  5 12:36:58 2016 1 203.0.113.9 100 /data/plain.json b _ o r user ftp 0 * c\n",
    );
    env.ingest(&[log.to_str().unwrap()]).success();
    db.ingest(&[log.to_str().unwrap()]).success();
    for by in ["day,user", "user,client"] {
        let args = ["--format", "json", "--by", by];
        assert_eq!(
            String::from_utf8_lossy(&env.report(&args)),
            String::from_utf8_lossy(&db.report(&args)),
            "--by {by}"
        );
    }
    assert_eq!(db.psql("SELECT count(*) FROM transfers WHERE username = 'us\u{fffd}er'"), "1");
}

/// An import whose transactions are taken in parts (as large imports take
/// theirs, here of 3 events) across months whose partitions do not exist
/// yet (what the open transaction holds is committed before they are
/// made): the same reports as SQLite, rollups equal to the raw rows, and
/// the file read again adds nothing.
#[test]
fn transactions_in_parts_across_months_count_exactly() {
    let Some(db) = fresh("parts_months") else { return };
    let parts = Env::with_store(&db.url).in_parts(3);
    let env = Env::new();
    let mut log = String::new();
    for i in 0..60u32 {
        let (day, pid, ip) = (["2026/04/30", "2026/05/01", "2026/06/01"][i as usize / 20], 2000 + i, i % 9);
        log += &upload(i, &format!("{day} 23:{:02}:{:02}", i / 60 % 60, i % 60), pid, ip, i % 4);
    }
    let p = env.write("rsyncd.log", log.as_bytes());
    env.ingest(&[p.to_str().unwrap()]).success();
    let a = parts.ingest(&[p.to_str().unwrap()]).success();
    assert!(stderr(&a).contains("120 new events, 0 already present"), "{}", stderr(&a));
    assert_same_reports(&env, &parts);
    let months = "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i \
                  JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relkind = 'r' AND c.relname LIKE 'logins%'";
    assert_eq!(db.psql(months), "logins_y2026m04,logins_y2026m05,logins_y2026m06");
    db.check();
    // A copy with another first line (no ledger match): every part goes
    // through the stage tables and adds nothing.
    let shifted = format!("2026/04/30 22:00:00 [99] rsyncd version 3.5.0 starting, listening on port 873\n{log}");
    let copy = env.write("shifted.log", shifted.as_bytes());
    let a = parts.ingest(&[copy.to_str().unwrap()]).success();
    assert!(stderr(&a).contains("0 new events, 120 already present"), "{}", stderr(&a));
    assert_eq!(
        String::from_utf8_lossy(&env.report(&["--format", "json"])),
        String::from_utf8_lossy(&parts.report(&["--format", "json"]))
    );
    db.check();
}

/// A batch import stores each part's logins on a second connection, whose
/// transaction commits (with their rollups) before the first one's (with
/// the transfers, the ledger and the part's clients): a crash between the
/// two leaves the logins stored and no checkpoint; the re-run reads the log
/// again, finds them stored and adds only the transfers and the clients —
/// the same reports as SQLite.
#[test]
fn logins_committed_on_the_second_connection_before_a_crash_count_once() {
    use std::os::unix::process::ExitStatusExt;
    let Some(db) = fresh("second_conn") else { return };
    let parts = Env::with_store(&db.url).in_parts(8);
    let env = Env::new();
    let mut log = String::new();
    for i in 0..20u32 {
        log += &upload(i, &format!("2026/05/01 10:{i:02}:00"), 4000 + i, i % 6, i % 3);
    }
    let p = env.write("rsyncd.log", log.as_bytes());
    let path = p.to_str().unwrap();
    env.ingest(&[path]).success();
    // Aborted just before the first connection's COMMIT.
    let out = parts.cmd().env("XFERSTATS_TEST_CRASH", "commit:1").args(crate::util::INGEST).arg(path).output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(6),
        "the crash point was not reached: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let held = "SELECT (SELECT count(*) FROM logins) || ' ' || (SELECT count(*) FROM transfers) || ' ' || \
                (SELECT count(*) FROM ledger) || ' ' || (SELECT coalesce(sum(logins), 0) FROM daily_logins) || ' ' || \
                (SELECT count(*) FROM daily_clients)";
    // The logins and their rollups are committed; the transfers, the
    // ledger and every client of the part went with the first connection.
    assert_eq!(db.psql(held), "20 0 0 20 0");
    let a = parts.ingest(&[path]).success();
    assert!(stderr(&a).contains("20 new events, 20 already present"), "{}", stderr(&a));
    assert_same_reports(&env, &parts);
    assert_eq!(db.psql(held), "20 20 1 20 6");
    db.check();
}

/// A role allowed one connection: the import's second connection is
/// refused, and the import says so once and stores everything on the one —
/// the same reports as SQLite.
#[test]
fn a_refused_second_connection_leaves_one_for_the_whole_import() {
    let Some(db) = fresh("one_conn") else { return };
    let role = format!("one_conn_{}", std::process::id());
    db.psql(&format!("CREATE ROLE {role} LOGIN PASSWORD 'one-secret' CONNECTION LIMIT 1"));
    db.psql(&format!("ALTER DATABASE \"{}\" OWNER TO {role}", db.name));
    let url = db.url.replace(&format!("{}:{PG_PASSWORD}@", crate::pg::PG_USER), &format!("{role}:one-secret@"));
    assert_ne!(url, db.url);
    let parts = Env::with_store(&url).in_parts(8);
    let env = Env::new();
    let log = env.write("rsyncd.log", &synthetic_log(60));
    let path = log.to_str().unwrap();
    env.ingest(&[path]).success();
    let a = parts.ingest(&[path]).success();
    let err = stderr(&a);
    assert_eq!(err.matches("a second connection could not be opened").count(), 1, "{err}");
    assert!(err.contains("too many connections"), "{err}");
    assert!(!err.contains("one-secret"), "{err}");
    assert_same_reports(&env, &parts);
    db.check();
}

/// Rollup rows COPYed into days that hold rows already — as when a
/// concurrent import adds them between the store's look-up and its COPY;
/// here the look-up is switched off — are refused by the primary key,
/// rolled back and upserted instead: the same reports as SQLite, and the
/// rollups equal the raw rows.
#[test]
fn rollup_copies_refused_by_stored_keys_are_upserted() {
    let Some(db) = fresh("blind_rollups") else { return };
    let parts = Env::with_store(&db.url).in_parts(7);
    let env = Env::new();
    let session = |i: u32| upload(i, &format!("2026/05/0{} 10:{:02}:00", 1 + i % 2, i), 3000 + i, i % 5, i % 3);
    let first: String = (0..20).map(session).collect();
    let p = env.write("rsyncd.log", first.as_bytes());
    let path = p.to_str().unwrap();
    env.ingest(&[path]).success();
    parts.ingest(&[path]).success();
    // The file grows by sessions of the same days, users and clients.
    let all: String = first + &(20..40).map(session).collect::<String>();
    env.write("rsyncd.log", all.as_bytes());
    env.ingest(&[path]).success();
    let mut c = parts.cmd();
    c.args(crate::util::INGEST).arg(path).env("XFERSTATS_TEST_BLIND_ROLLUPS", "1");
    let a = c.assert().success();
    assert!(stderr(&a).contains("40 new events, 0 already present"), "{}", stderr(&a));
    assert_same_reports(&env, &parts);
    db.check();
}

/// The four rsyncd log-file lines of connection `i` (pid `pid`, client
/// 10.0.0.`ip`) uploading `team/d{i}/f.bin`, 10 + `i` bytes, as
/// `user{user}` at `ts`.
fn upload(i: u32, ts: &str, pid: u32, ip: u32, user: u32) -> String {
    format!(
        "{ts} [{pid}] connect from UNDETERMINED (10.0.0.{ip})\n\
         {ts} [{pid}] rsync to team/d{i}/ from user{user}@UNDETERMINED (10.0.0.{ip})\n\
         {ts} [{pid}] recv UNDETERMINED [10.0.0.{ip}] team (user{user}) d{i}/f.bin {size}\n\
         {ts} [{pid}] sent 10 bytes  received 500 bytes  total size 400\n",
        size = 10 + i
    )
}

/// Every `report --format json` breakdown of `a` equals `b`'s.
fn assert_same_reports(a: &Env, b: &Env) {
    for by in KEYS {
        let args: &[&str] = if by.is_empty() { &["--format", "json"] } else { &["--format", "json", "--by", by] };
        assert_eq!(String::from_utf8_lossy(&a.report(args)), String::from_utf8_lossy(&b.report(args)), "--by {by}");
    }
}
