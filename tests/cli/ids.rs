//! Keyed event ids: what a store holds cannot confirm a client address
//! without the host key, and stores written with the unkeyed ids of earlier
//! versions are re-keyed without counting anything twice (SQLite: a store
//! written by that version, committed in `testdata/legacy/`, and one written
//! through the test switch; PostgreSQL: the test switch).

use std::path::Path;

use serde_json::Value;
use xferstats::enrich::hostkey::HostKey;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::pg::fresh;
use crate::util::{fixture, stderr, Env, TEST_HOST_KEY};

/// The tag xferlog ids are hashed with (public: it is in the source).
const XFERLOG_TAG: u64 = 11;

/// The attacked client: one address of 172.16.0.0/16.
const CLIENT: &str = "172.16.201.77";

/// Switch of the test builds that writes unkeyed ids, as earlier versions.
const UNKEYED: &str = "XFERSTATS_TEST_UNKEYED_IDS";

/// An xferlog line of `ip` with what the attacker reads from a stored row.
fn xferlog_line(ip: &str) -> String {
    format!("Tue Apr  5 12:35:58 2016 3 {ip} 4061858 /data/report.pdf b _ o r alice ftp 0 * c")
}

/// What an attacker holding only the database sees of the one stored row:
/// its event id and the ledger's fingerprint and tail hash.
fn stored_hashes(db: &Path) -> (u64, u64, u64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let id: i64 = conn.query_row("SELECT event_id FROM transfers", [], |r| r.get(0)).unwrap();
    let (fp, tail): (i64, i64) =
        conn.query_row("SELECT fingerprint, tail_hash FROM ledger", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    (id as u64, fp as u64, tail as u64)
}

/// The addresses of 172.16.0.0/16 whose line reproduces one of `stored`
/// when hashed by `hash` (the attacker's guess of how the store hashes: the
/// unkeyed id and fingerprint, or those under a key of their own).
fn brute_force(stored: (u64, u64, u64), hash: impl Fn(u64) -> u64) -> Vec<String> {
    let mut found = Vec::new();
    for n in 0..=u16::MAX {
        let ip = format!("172.16.{}.{}", n >> 8, n & 255);
        let line = xferlog_line(&ip);
        let id = hash(xxh3_64_with_seed(line.as_bytes(), xxh3_64_with_seed(b"vm", XFERLOG_TAG)));
        let file = hash(xxh3_64(format!("{line}\n").as_bytes()));
        if id == stored.0 || file == stored.1 || file == stored.2 {
            found.push(ip);
        }
    }
    found
}

#[test]
fn a_slash16_brute_force_finds_nothing_in_a_keyed_store() {
    let env = Env::new();
    let log = env.write("xferlog", format!("{}\n", xferlog_line(CLIENT)).as_bytes());
    env.ingest(&[log.to_str().unwrap()]).success();
    // The row holds everything of the line but the address (hmac mode).
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let (ip, path, user): (Option<String>, String, String) = conn
        .query_row("SELECT client_ip, path, user FROM transfers", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    assert_eq!((ip, path.as_str(), user.as_str()), (None, "/data/report.pdf", "alice"));
    let stored = stored_hashes(&env.db());

    // Without the key: the unkeyed hashes, or the keyed ones under any key
    // but the host's, match no address of the /16.
    assert_eq!(brute_force(stored, |h| h), Vec::<String>::new());
    let guess = HostKey::new(b"the attacker's guess of the key").id_key();
    assert_eq!(brute_force(stored, |h| guess.hash(h)), Vec::<String>::new());
    // With it, the id is the keyed hash of exactly that line.
    let key = HostKey::new(TEST_HOST_KEY.as_bytes()).id_key();
    assert_eq!(brute_force(stored, |h| key.hash(h)), vec![CLIENT.to_string()]);

    // The same attack on a store with unkeyed ids finds the address.
    let old = Env::new();
    let log = old.write("xferlog", format!("{}\n", xferlog_line(CLIENT)).as_bytes());
    old.cmd()
        .env(UNKEYED, "1")
        .args(["ingest", "--timezone", "UTC", "--server-host", "vm", log.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(brute_force(stored_hashes(&old.db()), |h| h), vec![CLIENT.to_string()]);
}

/// The report keys of the upgrade tests.
const BY: &str = "day,user,protocol,direction,status,host,client";

/// The logs of the committed old store (`testdata/legacy/unkeyed-ids.db`,
/// written by xferstats 0.1.0 before ids were keyed, with the tests' host
/// key and `--server-host vm`): the first 2,000 bytes of
/// `rsync/default-logfile.log` as `part.log` (the last line cut), then
/// `xferlog/traps.xferlog` and `openssh/auth.log` whole.
fn legacy_inputs(env: &Env) -> Vec<String> {
    let rsync = std::fs::read(fixture("rsync/default-logfile.log")).unwrap();
    let grown = env.write("part.log", &rsync);
    vec![
        grown.to_str().unwrap().to_string(),
        fixture("xferlog/traps.xferlog").to_str().unwrap().to_string(),
        fixture("openssh/auth.log").to_str().unwrap().to_string(),
    ]
}

/// gzip copies of `inputs` (other first bytes: no checkpoint, read from the
/// start).
fn gzipped_copies(env: &Env, inputs: &[String]) -> Vec<String> {
    let copy = |(i, p): (usize, &String)| {
        env.write(&format!("copy{i}.gz"), &crate::util::gzip(&std::fs::read(p).unwrap())).to_str().unwrap().to_string()
    };
    inputs.iter().enumerate().map(copy).collect()
}

fn totals_of_one_keyed_import(inputs: &[String]) -> Value {
    let env = Env::new();
    let args: Vec<&str> = inputs.iter().map(String::as_str).collect();
    env.ingest(&args).success();
    env.report_json(BY)
}

fn meta(db: &Path, key: &str) -> Option<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT value FROM store_meta WHERE key = ?1", [key], |r| r.get(0)).ok()
}

#[test]
fn a_store_of_the_old_version_is_rekeyed_and_counts_nothing_twice() {
    let env = Env::new();
    std::fs::copy(fixture("legacy/unkeyed-ids.db"), env.db()).unwrap();
    assert_eq!(meta(&env.db(), "id_scheme"), None);
    let inputs = legacy_inputs(&env);
    let expected = totals_of_one_keyed_import(&inputs);

    // The grown rsyncd log resumes where the old version stopped (its
    // fingerprint, tail hash and id state were re-keyed), the open session
    // it left is closed, the other two logs add nothing.
    let args: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let a = env.ingest(&["-v"].iter().copied().chain(args.iter().copied()).collect::<Vec<_>>()).success();
    let err = stderr(&a);
    assert!(err.contains("part.log: rsyncd, 16 lines, resumed at byte 1992"), "{err}");
    assert!(err.contains("traps.xferlog: xferlog, 0 lines, resumed at byte 1016: already imported"), "{err}");
    assert_eq!(env.report_json(BY), expected);
    assert_eq!(meta(&env.db(), "id_scheme").as_deref(), Some("siphash24-hmac1"));

    // Copies read from the start (other names, so no checkpoint) add nothing.
    let copies: Vec<String> = inputs
        .iter()
        .enumerate()
        .map(|(i, p)| env.write(&format!("copy{i}"), &std::fs::read(p).unwrap()).to_str().unwrap().to_string())
        .collect();
    let gz = gzipped_copies(&env, &inputs);
    let all: Vec<&str> = copies.iter().chain(&gz).map(String::as_str).collect();
    let a = env.ingest(&all).success();
    assert!(stderr(&a).contains(": 0 new events"), "{}", stderr(&a));
    assert_eq!(env.report_json(BY), expected);
}

/// An xferlog file with a line repeated three times within one second (the
/// repeats' ids are re-keyed as a group) after the traps fixture.
fn with_repeats(env: &Env) -> String {
    let mut data = std::fs::read(fixture("xferlog/traps.xferlog")).unwrap();
    for _ in 0..3 {
        data.extend_from_slice(format!("{}\n", xferlog_line("192.0.2.9")).as_bytes());
    }
    env.write("repeats.xferlog", &data).to_str().unwrap().to_string()
}

/// An empty SQLite store of the raw-line id scheme (`siphash24-hmac1`, the
/// stores of the version before content ids) keyed with the tests' key:
/// imports into it compute the ids that version computed.
fn line_id_store() -> Env {
    let env = Env::new();
    env.cmd().args(["db", "migrate"]).assert().success();
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute(
        "INSERT INTO store_meta (key, value) VALUES ('id_scheme', 'siphash24-hmac1'), ('id_key_check', ?1)",
        [HostKey::new(TEST_HOST_KEY.as_bytes()).key_check()],
    )
    .unwrap();
    env
}

#[test]
fn a_store_written_with_unkeyed_ids_is_rekeyed_once() {
    let env = Env::new();
    let log = with_repeats(&env);
    // The ids of raw lines a keyed import gave before content ids: a store
    // written before ids were keyed keeps them (they cannot be recomputed
    // from what it holds).
    let fresh = line_id_store();
    fresh.ingest(&[&log]).success();
    env.cmd().env(UNKEYED, "1").args(["ingest", "--timezone", "UTC", "--server-host", "vm", &log]).assert().success();
    let unkeyed = stored_ids(&env.db());
    assert_ne!(unkeyed, stored_ids(&fresh.db()));
    let a = env.ingest(&[&log]).success();
    assert!(stderr(&a).contains(": 0 new events"), "{}", stderr(&a));
    // The ids are those a keyed import of the same lines gives.
    assert_eq!(stored_ids(&env.db()), stored_ids(&fresh.db()));
    assert_eq!(meta(&env.db(), "id_key_check"), meta(&fresh.db(), "id_key_check"));
    // Once: a second run changes nothing.
    env.ingest(&[&log]).success();
    assert_eq!(stored_ids(&env.db()), stored_ids(&fresh.db()));
    assert_eq!(env.report_json(BY), fresh.report_json(BY));
}

fn stored_ids(db: &Path) -> Vec<u64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut st = conn.prepare("SELECT event_id FROM transfers UNION ALL SELECT event_id FROM logins").unwrap();
    let mut v: Vec<u64> = st.query_map([], |r| r.get::<_, i64>(0)).unwrap().map(|r| r.unwrap() as u64).collect();
    v.sort_unstable();
    v
}

#[test]
fn another_host_key_is_refused() {
    let env = Env::new();
    let log = fixture("xferlog/traps.xferlog");
    env.ingest(&[log.to_str().unwrap()]).success();
    let before = env.report_json(BY);
    let other = env.write("other.log", &std::fs::read(fixture("openssh/auth.log")).unwrap());
    let a = env
        .cmd()
        .env("XFERSTATS_HOST_KEY", "another key of 16+ characters")
        .args(["ingest", "--timezone", "UTC", "--server-host", "vm", log.to_str().unwrap(), other.to_str().unwrap()])
        .assert()
        .code(4);
    let err = stderr(&a);
    assert!(err.contains("another host key") && !err.contains("another key of 16+"), "{err}");
    assert_eq!(env.report_json(BY), before);
}

#[test]
fn postgres_store_written_with_unkeyed_ids_is_rekeyed() {
    let Some(db) = fresh("unkeyed") else { return };
    let env = &db.env;
    let mut inputs = legacy_inputs(env);
    inputs.push(with_repeats(env));
    let fresh = line_id_store();
    fresh.ingest(&inputs.iter().map(String::as_str).collect::<Vec<_>>()).success();
    let expected = fresh.report_json(BY);
    let pg_ingest = |args: &[&str], unkeyed: bool| {
        let mut c = env.cmd();
        if unkeyed {
            c.env(UNKEYED, "1");
        }
        c.args(["ingest", "-v", "--timezone", "UTC", "--server-host", "vm", "--progress", "never"]).args(args);
        c.assert()
    };
    // The old version's import: the cut rsyncd log, the others whole.
    std::fs::write(&inputs[0], &std::fs::read(&inputs[0]).unwrap()[..2000]).unwrap();
    let all: Vec<&str> = inputs.iter().map(String::as_str).collect();
    pg_ingest(&all, true).success();
    assert_eq!(db.psql("SELECT count(*) FROM store_meta WHERE key = 'id_scheme'"), "0");
    let unkeyed: i64 = db.psql("SELECT sum(event_id % 1000) FROM transfers").parse().unwrap();

    // The log grows; the upgrade resumes it and adds nothing else.
    std::fs::copy(fixture("rsync/default-logfile.log"), &inputs[0]).unwrap();
    let a = pg_ingest(&all, false).success();
    let err = stderr(&a);
    assert!(err.contains("part.log: rsyncd, 16 lines, resumed at byte 1992"), "{err}");
    assert_eq!(db.psql("SELECT value FROM store_meta WHERE key = 'id_scheme'"), "siphash24-hmac1");
    let rekeyed: i64 = db.psql("SELECT sum(event_id % 1000) FROM transfers").parse().unwrap();
    assert_ne!(unkeyed, rekeyed);
    let gz = gzipped_copies(env, &inputs);
    let a = pg_ingest(&gz.iter().map(String::as_str).collect::<Vec<_>>(), false).success();
    assert!(stderr(&a).contains(": 0 new events"), "{}", stderr(&a));
    assert_eq!(db.report_json(BY), expected);
    // The same ids as a keyed import of the same lines into SQLite.
    let ids = db.psql("SELECT event_id FROM transfers UNION ALL SELECT event_id FROM logins");
    let mut ids: Vec<u64> = ids.lines().map(|l| l.parse::<i64>().unwrap() as u64).collect();
    ids.sort_unstable();
    assert_eq!(ids, stored_ids(&fresh.db()));
}

/// `testdata/openssh/auth.log` and the same lines with RFC 3339 time stamps
/// (rsyslog's other template), with sub-second digits the BSD rendering
/// lacks; the year is the one the import infers for the BSD lines.
fn two_renderings(env: &Env) -> (String, String) {
    let bsd = fixture("openssh/auth.log");
    let probe = Env::new();
    probe.ingest(&[bsd.to_str().unwrap()]).success();
    let day = probe.report_json("day")[0]["day"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(&bsd).unwrap();
    let mut rfc = String::new();
    for (i, line) in text.lines().enumerate() {
        if !line.starts_with("Nov ") {
            rfc += &format!("{line}\n"); // already RFC 3339
            continue;
        }
        let (stamp, rest) = line.split_at(15);
        let day_of_month: u32 = stamp[4..6].trim().parse().unwrap();
        rfc += &format!("{}-11-{day_of_month:02}T{}.{:06}+00:00{rest}\n", &day[..4], &stamp[7..], 1 + i * 37_013);
    }
    let rfc = env.write("auth-rfc3339.log", rfc.as_bytes());
    (bsd.to_str().unwrap().to_string(), rfc.to_str().unwrap().to_string())
}

#[test]
fn one_message_in_two_time_stamp_renderings_counts_once() {
    let env = Env::new();
    let (bsd, rfc) = two_renderings(&env);
    let alone = Env::new();
    alone.ingest(&[&bsd]).success();
    let expected = alone.report_json(BY);
    assert_eq!(meta(&alone.db(), "id_scheme").as_deref(), Some("siphash24-hmac2"));
    // In one run, and in two runs in the other order.
    let a = env.ingest(&[&bsd, &rfc]).success();
    assert!(stderr(&a).contains(": 11 new events, 11 already present, 0 rejected lines"), "{}", stderr(&a));
    assert_eq!(env.report_json(BY), expected);
    let other = Env::new();
    other.ingest(&[&rfc]).success();
    let a = other.ingest(&[&bsd]).success();
    assert!(stderr(&a).contains(": 0 new events, 11 already present"), "{}", stderr(&a));
    assert_eq!(other.report_json(BY), expected);
    // RFC 3339 syslog times are stored to the second, as BSD ones.
    let conn = rusqlite::Connection::open(other.db()).unwrap();
    let fractions: i64 =
        conn.query_row("SELECT count(*) FROM transfers WHERE end_us % 1000000 != 0", [], |r| r.get(0)).unwrap();
    assert_eq!(fractions, 0);
}

#[test]
fn a_store_of_line_ids_keeps_them_and_counts_no_line_twice() {
    let env = line_id_store();
    let (bsd, rfc) = two_renderings(&env);
    env.ingest(&[&bsd]).success();
    let once = env.report_json(BY);
    // The same lines read again from their start (standard input has no
    // checkpoint) add nothing: the store's ids are still those of lines.
    let a = env.cmd().args(crate::util::INGEST).arg("-").write_stdin(std::fs::read(&bsd).unwrap()).assert().success();
    assert!(stderr(&a).contains(": 0 new events, 11 already present"), "{}", stderr(&a));
    assert_eq!(env.report_json(BY), once);
    assert_eq!(meta(&env.db(), "id_scheme").as_deref(), Some("siphash24-hmac1"));
    // Only a store of content ids knows the other rendering for the same
    // messages: here the events of the lines that differ are new (the two
    // lines the fixture already writes in RFC 3339 are the same lines).
    let a = env.ingest(&[&rfc]).success();
    assert!(stderr(&a).contains(": 9 new events, 2 already present"), "{}", stderr(&a));
}
