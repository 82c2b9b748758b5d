//! The PostgreSQL store against a real throwaway server (`pg.rs`): same
//! reports as SQLite, exactly-once under re-imports, concurrency and kills,
//! retention and rollup rebuilds, and no password in any output.

use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

use crate::pg::{cluster, PgCluster, PG_PASSWORD};
use crate::util::{fixture, gzip, realogs, synthetic_log, Env, TEST_HOST_KEY};

/// `xferstats --db URL` with the test environment of `Env::cmd`.
fn pg_cmd(env: &Env, url: &str) -> Command {
    let mut c = env.cmd_with_key_file();
    c.env("XFERSTATS_HOST_KEY", TEST_HOST_KEY).arg("--db").arg(url);
    c
}

fn ingest(env: &Env, url: &str, args: &[&str]) -> assert_cmd::assert::Assert {
    pg_cmd(env, url)
        .args(["ingest", "--timezone", "UTC", "--server-host", "vm", "--progress", "never"])
        .args(args)
        .assert()
}

fn report(env: &Env, url: &str, by: &str) -> Vec<u8> {
    let mut c = pg_cmd(env, url);
    c.args(["report", "--format", "json"]);
    if !by.is_empty() {
        c.args(["--by", by]);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "report failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Rollups equal the raw rows, and daily_clients equals the distinct
/// clients of the raw rows.
fn assert_rollups_match_raw(pg: &PgCluster, db: &str) {
    let diff = pg.psql(
        db,
        "SELECT count(*) FROM ((SELECT (end_ts AT TIME ZONE 'UTC')::date, server_host, protocol, direction, status, \
         COALESCE(module, ''), username, count(*), sum(bytes)::bigint FROM transfers GROUP BY 1,2,3,4,5,6,7 \
         EXCEPT SELECT * FROM daily_transfers) UNION ALL (SELECT * FROM daily_transfers EXCEPT \
         SELECT (end_ts AT TIME ZONE 'UTC')::date, server_host, protocol, direction, status, COALESCE(module, ''), \
         username, count(*), sum(bytes)::bigint FROM transfers GROUP BY 1,2,3,4,5,6,7)) d",
    );
    assert_eq!(diff, "0", "daily_transfers differs from the raw rows");
    let diff = pg.psql(
        db,
        "SELECT count(*) FROM ((SELECT (time_ts AT TIME ZONE 'UTC')::date, server_host, protocol, username, outcome, \
         count(*) FROM logins GROUP BY 1,2,3,4,5 EXCEPT SELECT * FROM daily_logins) UNION ALL \
         (SELECT * FROM daily_logins EXCEPT SELECT (time_ts AT TIME ZONE 'UTC')::date, server_host, protocol, \
         username, outcome, count(*) FROM logins GROUP BY 1,2,3,4,5)) d",
    );
    assert_eq!(diff, "0", "daily_logins differs from the raw rows");
    let diff = pg.psql(
        db,
        "SELECT count(*) FROM ((SELECT * FROM daily_clients EXCEPT (SELECT (end_ts AT TIME ZONE 'UTC')::date, \
         server_host, COALESCE(abbrev(client_ip), client_hash, client_host) FROM transfers UNION \
         SELECT (time_ts AT TIME ZONE 'UTC')::date, server_host, COALESCE(abbrev(client_ip), client_hash, \
         client_host) FROM logins)) UNION ALL ((SELECT (end_ts AT TIME ZONE 'UTC')::date, server_host, \
         COALESCE(abbrev(client_ip), client_hash, client_host) FROM transfers UNION \
         SELECT (time_ts AT TIME ZONE 'UTC')::date, server_host, COALESCE(abbrev(client_ip), client_hash, \
         client_host) FROM logins) EXCEPT SELECT * FROM daily_clients)) d WHERE true",
    );
    assert_eq!(diff, "0", "daily_clients differs from the raw rows");
}

const KEYS: [&str; 6] =
    ["", "day,user", "day,user,protocol,direction,status,module,host", "client", "country,city", "day,client,status"];

#[test]
fn reports_are_identical_to_sqlite() {
    let Some(pg) = cluster() else { return };
    let env = Env::new();
    let db = pg.fresh_db("same");
    let url = pg.url(&db);
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
        ingest(&env, &url, &args).code(predicates::ord::lt(2));
    }
    for by in KEYS {
        let a = env
            .cmd()
            .args(["report", "--format", "json"])
            .args(if by.is_empty() { vec![] } else { vec!["--by", by] })
            .output()
            .unwrap();
        let b = report(&env, &url, by);
        assert_eq!(String::from_utf8_lossy(&a.stdout), String::from_utf8_lossy(&b), "--by {by}");
        assert!(json(&b).as_array().is_some_and(|v| !v.is_empty()), "--by {by}: empty");
    }
    // The table output too.
    let a = env.cmd().args(["report", "--by", "day,user"]).output().unwrap().stdout;
    let b = pg_cmd(&env, &url).args(["report", "--by", "day,user"]).output().unwrap().stdout;
    assert_eq!(a, b);
    assert_rollups_match_raw(pg, &db);
}

#[test]
fn reimports_and_copies_add_nothing() {
    let Some(pg) = cluster() else { return };
    let env = Env::new();
    let db = pg.fresh_db("reimport");
    let url = pg.url(&db);
    let data = synthetic_log(400);
    let log = env.write("rsyncd.log", &data);
    ingest(&env, &url, &[log.to_str().unwrap()]).success();
    let first = report(&env, &url, "day,user,client");
    let events = pg.psql(&db, "SELECT (SELECT count(*) FROM transfers) + (SELECT count(*) FROM logins)");
    // Same file, .gz copy under another name, and a copy whose first line
    // differs (new fingerprint: every event goes through the stage path).
    let gz = env.write("rsyncd.log.1.gz", &gzip(&data));
    let mut changed = b"2026/05/01 00:00:00 [1] rsyncd version 3.5.0 starting, listening on port 873\n".to_vec();
    changed.extend_from_slice(&data);
    let changed = env.write("other-copy.log", &changed);
    for p in [&log, &gz, &changed] {
        let a = ingest(&env, &url, &[p.to_str().unwrap()]).success();
        let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
        assert!(err.contains(" 0 new events"), "{err}");
    }
    assert_eq!(report(&env, &url, "day,user,client"), first);
    assert_eq!(pg.psql(&db, "SELECT (SELECT count(*) FROM transfers) + (SELECT count(*) FROM logins)"), events);
    assert_rollups_match_raw(pg, &db);
    // A grown file adds only its new lines.
    let more = synthetic_log(600);
    std::fs::write(&log, &more).unwrap();
    ingest(&env, &url, &[log.to_str().unwrap()]).success();
    let env2 = Env::new();
    let db2 = pg.fresh_db("reimport_once");
    let p2 = env2.write("once.log", &more);
    ingest(&env2, &pg.url(&db2), &[p2.to_str().unwrap()]).success();
    assert_eq!(report(&env, &url, "day,user,client"), report(&env2, &pg.url(&db2), "day,user,client"));
    assert_rollups_match_raw(pg, &db);
}

#[test]
fn concurrent_ingests_of_overlapping_files_count_once() {
    let Some(pg) = cluster() else { return };
    let env = Env::new();
    let data = synthetic_log(3000);
    let expected_db = pg.fresh_db("conc_once");
    let once = env.write("once.log", &data);
    ingest(&env, &pg.url(&expected_db), &[once.to_str().unwrap()]).success();
    let expected = report(&env, &pg.url(&expected_db), "day,user,client,status");

    for round in 0..3 {
        let db = pg.fresh_db("conc");
        let url = pg.url(&db);
        // Two copies under different names (same fingerprint) and a third
        // with another first line, by three processes at once.
        let a = env.write(&format!("a{round}.log"), &data);
        let b = env.write(&format!("b{round}.log.gz"), &gzip(&data));
        let mut c_data = b"2026/05/01 00:00:00 [1] rsyncd version 3.5.0 starting, listening on port 873\n".to_vec();
        c_data.extend_from_slice(&data);
        let c = env.write(&format!("c{round}.log"), &c_data);
        let children: Vec<_> = [a, b, c]
            .iter()
            .map(|p| env.spawn_ingest(url.as_ref(), &["--batch-size".as_ref(), "500".as_ref(), p.as_os_str()]))
            .collect();
        for ch in children {
            let out = ch.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(report(&env, &url, "day,user,client,status"), expected, "round {round}");
        assert_rollups_match_raw(pg, &db);
    }
}

/// Two hosts import their rsyncd logs into one database at the same moment,
/// each log cut inside open sessions (a connection whose `sent … received`
/// line is not written yet), then, again at the same moment, the rest: each host's open sessions are its own, so the totals
/// equal those of the two logs imported whole, one after the other.
#[test]
fn concurrent_ingests_of_two_hosts_keep_their_open_sessions() {
    let Some(pg) = cluster() else { return };
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
    let expected_db = pg.fresh_db("hosts_once");
    for (host, data, _) in hosts {
        let whole = env.write(&format!("{host}-whole.log"), data);
        let out = spawn(&pg.url(&expected_db), host, &whole, None).wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let expected = report(&env, &pg.url(&expected_db), "day,host,user,status");
    for round in 0..2 {
        let db = pg.fresh_db("hosts");
        let url = pg.url(&db);
        for whole in [false, true] {
            let meet = env.path(&format!("meet-{round}-{whole}"));
            std::fs::create_dir(&meet).unwrap();
            let children: Vec<_> = hosts
                .iter()
                .map(|(host, data, cut)| {
                    let log = env.write(&format!("{host}{round}.log"), if whole { data } else { &data[..*cut] });
                    spawn(&url, host, &log, Some(&meet))
                })
                .collect();
            for ch in children {
                let out = ch.wait_with_output().unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            }
        }
        let got = report(&env, &url, "day,host,user,status");
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected), "round {round}");
        assert_rollups_match_raw(pg, &db);
    }
}

#[test]
fn sigkill_at_several_moments_then_rerun() {
    let Some(pg) = cluster() else { return };
    let env = Env::new();
    let data = synthetic_log(4000);
    let log = env.write("rsyncd.log", &data);
    let once = pg.fresh_db("kill_once");
    ingest(&env, &pg.url(&once), &[log.to_str().unwrap()]).success();
    let expected = report(&env, &pg.url(&once), "day,user,client,status");
    for delay_ms in [20u64, 80, 200, 500] {
        let db = pg.fresh_db("kill");
        let url = pg.url(&db);
        let mut child = env.spawn_ingest(url.as_ref(), &["--batch-size".as_ref(), "300".as_ref(), log.as_os_str()]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        ingest(&env, &url, &["--batch-size", "300", log.to_str().unwrap()]).success();
        assert_eq!(report(&env, &url, "day,user,client,status"), expected, "killed after {delay_ms} ms");
        assert_rollups_match_raw(pg, &db);
    }
}

#[test]
fn a_lost_connection_commits_nothing_of_the_batch() {
    let Some(pg) = cluster() else { return };
    let env = Env::new();
    let db = pg.fresh_db("lost");
    let url = pg.url(&db);
    let data = synthetic_log(2000);
    let log = env.write("rsyncd.log", &data);
    pg_cmd(&env, &url).args(["db", "migrate"]).assert().success();
    // Hold the rollup table so the ingest's first commit waits; then cut
    // its connection from the server side.
    let mut holder = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE daily_transfers IN ACCESS EXCLUSIVE MODE").unwrap();
    let child = env.spawn_ingest(url.as_ref(), &[log.as_os_str()]);
    let mut killed = 0;
    for _ in 0..600 {
        killed = pg
            .psql(
                &db,
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
    // Nothing of the batch was committed; a re-run completes it exactly.
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM transfers"), "0");
    ingest(&env, &url, &[log.to_str().unwrap()]).success();
    let once = pg.fresh_db("lost_once");
    ingest(&env, &pg.url(&once), &[log.to_str().unwrap()]).success();
    assert_eq!(report(&env, &url, "day,user,client"), report(&env, &pg.url(&once), "day,user,client"));
}

#[test]
fn password_never_appears_in_any_output() {
    let Some(pg) = cluster() else { return };
    let env = Env::new();
    let db = pg.fresh_db("secret");
    let url = pg.url(&db);
    let f = fixture("rsync/default-logfile.log");
    let outputs = vec![
        ingest(&env, &url, &["-v", f.to_str().unwrap()]).success().get_output().clone(),
        pg_cmd(&env, &url).args(["report", "--by", "day"]).assert().success().get_output().clone(),
        pg_cmd(&env, &url).args(["db", "migrate"]).assert().success().get_output().clone(),
        // Wrong password, closed port, missing database: exit 4, no password.
        pg_cmd(&env, &url.replace(PG_PASSWORD, "wrong-password-123"))
            .args(["report"])
            .assert()
            .code(4)
            .get_output()
            .clone(),
        pg_cmd(&env, &format!("postgres://xferstats:{PG_PASSWORD}@127.0.0.1:1/{db}"))
            .args(["ingest", f.to_str().unwrap()])
            .assert()
            .code(4)
            .get_output()
            .clone(),
        pg_cmd(&env, &pg.url("no_such_database")).args(["report"]).assert().code(4).get_output().clone(),
        pg_cmd(&env, &format!("postgres://xferstats:{PG_PASSWORD}@127.0.0.1:notaport/x"))
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
    let out = env
        .cmd_with_key_file()
        .env("XFERSTATS_HOST_KEY", TEST_HOST_KEY)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg.port().to_string())
        .env("PGUSER", "xferstats")
        .env("PGPASSWORD", PG_PASSWORD)
        .env("PGDATABASE", &db)
        .args(["--db", "postgres:", "report", "--by", "day", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, report(&env, &url, "day"));
}

#[test]
fn schema_migrations_partitions_and_newer_schema() {
    let Some(pg) = cluster() else { return };
    let env = Env::new();
    let db = pg.fresh_db("schema");
    let url = pg.url(&db);
    let a = pg_cmd(&env, &url).args(["db", "migrate"]).assert().success();
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("schema version 2"));
    pg_cmd(&env, &url).args(["db", "migrate"]).assert().success();
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM schema_version"), "2");
    // No partition and no default partition before data arrives; a month
    // each after.
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM pg_inherits"), "0");
    ingest(&env, &url, &[fixture("rsync/default-logfile.log").to_str().unwrap()]).success();
    assert_eq!(
        pg.psql(&db, "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE c.relkind = 'r'"),
        "logins_y2026m03,transfers_y2026m03"
    );
    assert_eq!(pg.psql(&db, "SELECT data_type FROM information_schema.columns WHERE table_name = 'transfers' AND column_name = 'client_ip'"), "inet");
    // A database from a newer xferstats is refused.
    pg.psql(&db, "INSERT INTO schema_version VALUES (99)");
    let a = pg_cmd(&env, &url).args(["report"]).assert().code(4);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("schema version 99 is newer"), "{err}");
}

#[test]
fn prune_drops_partitions_and_rebuild_restores_rollups() {
    let Some(pg) = cluster() else { return };
    let env = Env::new();
    let db = pg.fresh_db("prune");
    let url = pg.url(&db);
    let f = fixture("rsync/default-logfile.log");
    ingest(&env, &url, &["--ip-mode", "full", f.to_str().unwrap()]).success();
    let by_day = report(&env, &url, "day,user");
    // Rebuild recomputes damaged rollups from the raw rows.
    pg.psql(
        &db,
        "UPDATE daily_transfers SET transfers = 0, bytes = 0; DELETE FROM daily_logins; DELETE FROM daily_clients",
    );
    pg_cmd(&env, &url).args(["rollup", "--rebuild", "--since", "2026-01-01"]).assert().success();
    assert_eq!(report(&env, &url, "day,user"), by_day);
    assert_rollups_match_raw(pg, &db);
    // Prune (March 2026 is more than 30 days old): partitions dropped,
    // rollups stay, raw-only reports are empty.
    let a = pg_cmd(&env, &url).args(["prune", "--raw-older-than", "30d"]).assert().success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("transfers_y2026m03") && err.contains("logins_y2026m03"), "{err}");
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM pg_inherits"), "0");
    assert_eq!(report(&env, &url, "day,user"), by_day);
    assert_eq!(json(&report(&env, &url, "client")), serde_json::json!([]));
    // A rebuild over pruned days is refused and changes nothing.
    let a = pg_cmd(&env, &url).args(["rollup", "--rebuild", "--since", "2026-01-01"]).assert().code(4);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("pruned"));
    assert_eq!(report(&env, &url, "day,user"), by_day);
    // Bad ages name the flag.
    pg_cmd(&env, &url).args(["prune", "--raw-older-than", "30x"]).assert().code(2);
    // Re-importing the pruned file adds nothing (the ledger remembers it),
    // nor does a copy with another first line: events before the prune
    // horizon are not stored again, their rollups already count them.
    ingest(&env, &url, &[f.to_str().unwrap()]).success();
    let mut copy = b"2026/03/01 09:00:00 [99] rsyncd version 3.5.0 starting, listening on port 873\n".to_vec();
    copy.extend_from_slice(&std::fs::read(&f).unwrap());
    let copy = env.write("copy.log", &copy);
    let a = ingest(&env, &url, &[copy.to_str().unwrap()]).success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains(" 0 new events") && err.contains("were pruned"), "{err}");
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM transfers"), "0");
    assert_eq!(report(&env, &url, "day,user"), by_day);
}

#[test]
fn nul_bytes_in_log_text_are_stored_alike() {
    let Some(pg) = cluster() else { return };
    let env = Env::new();
    let db = pg.fresh_db("nul");
    let url = pg.url(&db);
    let log = env.write(
        "xferlog",
        b"Tue Apr  5 12:35:58 2016 1 203.0.113.9 4061858 /data/a\0b.json b _ i r us\0er ftp 0 * c\n\
          Tue Apr  5 12:36:58 2016 1 203.0.113.9 100 /data/plain.json b _ o r user ftp 0 * c\n",
    );
    env.ingest(&[log.to_str().unwrap()]).success();
    ingest(&env, &url, &[log.to_str().unwrap()]).success();
    for by in ["day,user", "user,client"] {
        let a = env.cmd().args(["report", "--format", "json", "--by", by]).output().unwrap().stdout;
        assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&report(&env, &url, by)), "--by {by}");
    }
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM transfers WHERE username = 'us\u{fffd}er'"), "1");
}
