//! Enrichment end to end: GeoIP (the real GeoLite2 City database and tiny
//! generated ones), geohash, client hashes, the host key file, the IP
//! privacy modes, and the migration of a version-1 database.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use predicates::prelude::*;
use predicates::str::contains;
use serde_json::Value;

use crate::util::{fixture, geolite, stderr, Env, TEST_HOST_KEY};

const CLIENTS: &str = "geoip/clients.log";

/// Rows of both raw tables: (client_ip, client_host, country, city, geohash, client_hash).
type Row = (Option<String>, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);

fn rows(db: &Path) -> Vec<Row> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT client_ip, client_host, country, city, geohash, client_hash FROM transfers \
             UNION ALL SELECT client_ip, client_host, country, city, geohash, client_hash FROM logins \
             ORDER BY 1, 2",
        )
        .unwrap();
    let v = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .collect::<Result<Vec<Row>, _>>()
        .unwrap();
    v
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// A City database in the MaxMind layout, written with mmdb-writer:
/// 152.77.0.0/16 → Grenoble, FR; 2a01:cb00::/32 → Paris, FR.
pub fn tiny_city_db(env: &Env) -> PathBuf {
    let mut w = mmdb_writer::Writer::new("GeoLite2-City");
    let rec = |city: &str, lat: f64, lon: f64| {
        serde_json::json!({"city": {"names": {"en": city}}, "country": {"iso_code": "FR"},
                           "location": {"latitude": lat, "longitude": lon}})
    };
    w.insert("152.77.0.0/16".parse::<ipnet::IpNet>().unwrap(), &rec("Grenoble", 45.1733, 5.7238)).unwrap();
    w.insert("2a01:cb00::/32".parse::<ipnet::IpNet>().unwrap(), &rec("Paris", 48.8543, 2.3527)).unwrap();
    let p = env.path("tiny-city.mmdb");
    std::fs::write(&p, w.to_bytes().unwrap()).unwrap();
    p
}

fn ingest_clients(env: &Env, geoip: &Path, extra: &[&str]) {
    let mut args = vec!["--geoip", geoip.to_str().unwrap()];
    args.extend_from_slice(extra);
    let f = fixture(CLIENTS);
    args.push(f.to_str().unwrap());
    env.ingest(&args).success();
}

#[test]
fn real_geolite_database_locates_clients() {
    let Some(db) = geolite() else { return };
    let env = Env::new();
    ingest_clients(&env, &db, &["--ip-mode", "full"]);
    let got = rows(&env.db());
    let loc = |ip: &str| got.iter().find(|r| r.0.as_deref() == Some(ip)).unwrap().clone();
    let grenoble = loc("152.77.1.6");
    assert_eq!((grenoble.2, grenoble.3), (s("FR"), s("Grenoble")));
    let gh = grenoble.4.unwrap();
    assert!(gh.starts_with("u0h0") && gh.len() == 5, "{gh}");
    let paris = loc("2a01:cb00::1");
    assert_eq!((paris.2, paris.3, paris.4), (s("FR"), s("Paris"), s("u09tv")));
    // A country-level record: country and coordinates, no city.
    let us = loc("8.8.8.8");
    assert_eq!((us.2, us.3, us.4), (s("US"), None, s("9ydqy")));
    // Loopback and private addresses get no location, never a default one.
    for ip in ["127.0.0.1", "10.1.2.3"] {
        let r = loc(ip);
        assert_eq!((r.2, r.3, r.4), (None, None, None), "{ip}");
        assert!(r.5.is_some(), "{ip} still has a client hash");
    }

    // report --by country and --by city.
    let v = env.report_json("country");
    let fr = v.as_array().unwrap().iter().find(|r| r["country"] == "FR").unwrap();
    assert_eq!(
        (fr["downloads"].as_u64(), fr["bytes_down"].as_u64(), fr["logins_failed"].as_u64()),
        (Some(1), Some(1000), Some(1))
    );
    let v = env.report_json("city");
    let cities: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["city"].as_str().unwrap()).collect();
    assert_eq!(cities, ["", "Grenoble, FR", "Paris, FR"]);

    // Precision 12.
    let env = Env::new();
    ingest_clients(&env, &db, &["--ip-mode", "full", "--geohash-precision", "12"]);
    let gh = rows(&env.db()).into_iter().find(|r| r.0.as_deref() == Some("152.77.1.6")).unwrap().4.unwrap();
    assert_eq!(gh.len(), 12);
    assert!(gh.starts_with("u0h0f"), "{gh}");
}

/// Every file of the database (main, WAL, shared memory) as bytes.
fn database_bytes(env: &Env) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(env.dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("x.db") {
            all.extend(std::fs::read(&p).unwrap());
        }
    }
    all
}

fn contains_bytes(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn hmac_mode_stores_no_address_or_host_name() {
    let env = Env::new();
    let geo = tiny_city_db(&env);
    // Default mode; the fixture ends inside an open session whose state
    // (holding the address) is stored too.
    ingest_clients(&env, &geo, &[]);
    let bytes = database_bytes(&env);
    for needle in ["152.77.1.6", "2a01:cb00::1", "127.0.0.1", "10.1.2.3", "8.8.8.8", "dsl-7.pool", "pool.example.net"] {
        assert!(!contains_bytes(&bytes, needle), "{needle} found in the database");
    }
    let got = rows(&env.db());
    assert_eq!(got.len(), 6);
    assert!(got.iter().all(|r| r.0.is_none() && r.1.is_none()));
    assert!(got.iter().all(|r| r.5.as_ref().is_some_and(|h| h.len() == 22)));
    // Geo fields are still there, looked up before the address was dropped.
    assert_eq!(got.iter().filter(|r| r.3.as_deref() == Some("Grenoble")).count(), 1);
    // The key never reaches the database.
    assert!(!contains_bytes(&bytes, crate::util::TEST_HOST_KEY));

    // The sealed open session continues in the next run: the file grows
    // by the session's end and its transfer is counted once.
    let p = env.path("grow.log");
    std::fs::copy(fixture(CLIENTS), &p).unwrap();
    let geo_s = geo.to_str().unwrap();
    env.ingest(&["--geoip", geo_s, p.to_str().unwrap()]).success();
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    std::io::Write::write_all(
        &mut f,
        b"2026/03/01 10:00:10 [206] send dsl-7.pool.example.net [152.77.1.6] pub () big/e.bin 4000\n\
          2026/03/01 10:00:11 [206] sent 4100 bytes  received 60 bytes  total size 4000\n",
    )
    .unwrap();
    env.ingest(&["--geoip", geo_s, p.to_str().unwrap()]).success();
    let v = env.report_json("city");
    let g = v.as_array().unwrap().iter().find(|r| r["city"] == "Grenoble, FR").unwrap();
    assert_eq!((g["downloads"].as_u64(), g["bytes_down"].as_u64()), (Some(2), Some(5000)));
    assert!(!contains_bytes(&database_bytes(&env), "152.77.1.6"));
}

#[test]
fn generated_key_file_is_private_and_gives_stable_hashes() {
    let env = Env::new();
    let f = fixture(CLIENTS);
    let run = |db: &str| {
        env.cmd_with_key_file()
            .args(["--db", env.path(db).to_str().unwrap()])
            .args(["ingest", "--timezone", "UTC", "--server-host", "vm", "--progress", "never"])
            .arg(&f)
            .assert()
            .success()
    };
    let a = run("a.db");
    let key_path = env.state_dir().join("host.key");
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(key.trim().len(), 64);
    let b = run("b.db");
    for out in [&a, &b] {
        let o = out.get_output();
        assert!(!contains_bytes(&o.stdout, key.trim()) && !contains_bytes(&o.stderr, key.trim()));
    }
    let hashes = |db: &str| -> Vec<Option<String>> { rows(&env.path(db)).into_iter().map(|r| r.5).collect() };
    assert_eq!(hashes("a.db"), hashes("b.db"));
    assert!(hashes("a.db").iter().all(Option::is_some));
    // The same key text in XFERSTATS_HOST_KEY hashes alike (a fleet of
    // ingesters), another key does not.
    let with_env = |db: &str, k: &str| {
        env.cmd_with_key_file()
            .env("XFERSTATS_HOST_KEY", k)
            .args(["--db", env.path(db).to_str().unwrap()])
            .args(["ingest", "--timezone", "UTC", "--server-host", "vm", "--progress", "never"])
            .arg(&f)
            .assert()
            .success();
    };
    with_env("c.db", key.trim());
    assert_eq!(hashes("a.db"), hashes("c.db"));
    with_env("d.db", "some-other-key-of-enough-length");
    assert_ne!(hashes("a.db"), hashes("d.db"));
    let db = std::fs::read(env.path("a.db")).unwrap();
    assert!(!contains_bytes(&db, key.trim()));
}

#[test]
fn truncate_full_and_drop_modes() {
    let env = Env::new();
    let geo = tiny_city_db(&env);
    ingest_clients(&env, &geo, &["--ip-mode", "truncate"]);
    let got = rows(&env.db());
    let ips: Vec<Option<&str>> = got.iter().map(|r| r.0.as_deref()).collect();
    assert_eq!(
        ips,
        [
            Some("10.1.2.0/24"),
            Some("10.1.2.0/24"),
            Some("127.0.0.0/24"),
            Some("152.77.1.0/24"),
            Some("2a01:cb00::/48"),
            Some("8.8.8.0/24")
        ]
    );
    let grenoble = got.iter().find(|r| r.0.as_deref() == Some("152.77.1.0/24")).unwrap();
    assert_eq!(grenoble.1.as_deref(), Some("pool.example.net"));
    assert_eq!(grenoble.3.as_deref(), Some("Grenoble"));
    assert!(got.iter().all(|r| r.5.is_none()), "truncate keeps no hash");
    assert!(got.iter().all(|r| r.1.as_deref() != Some("localhost")), "a one-label host has no parent");
    let v = env.report_json("client");
    assert_eq!(v.as_array().unwrap().len(), 5);

    let env = Env::new();
    ingest_clients(&env, &geo, &["--ip-mode", "full"]);
    let got = rows(&env.db());
    assert!(got
        .iter()
        .any(|r| r.0.as_deref() == Some("152.77.1.6") && r.1.as_deref() == Some("dsl-7.pool.example.net")));
    assert!(got.iter().all(|r| r.5.is_some()));

    let env = Env::new();
    ingest_clients(&env, &geo, &["--ip-mode", "drop"]);
    let got = rows(&env.db());
    assert!(got.iter().all(|r| r.0.is_none() && r.1.is_none() && r.5.is_none()));
    assert_eq!(got.iter().filter(|r| r.3.as_deref() == Some("Grenoble")).count(), 1);
}

#[test]
fn bad_enrichment_options_name_the_flag() {
    let env = Env::new();
    let f = fixture(CLIENTS);
    let missing = env.path("missing.mmdb");
    let a = env.ingest(&["--geoip", missing.to_str().unwrap(), f.to_str().unwrap()]).code(2);
    let e = stderr(&a);
    assert!(e.contains("--geoip") && e.contains("missing.mmdb"), "{e}");
    assert!(!env.db().exists(), "nothing written before the configuration is valid");
    let junk = env.write("junk.mmdb", b"not a database at all");
    env.ingest(&["--geoip", junk.to_str().unwrap(), f.to_str().unwrap()]).code(2).stderr(contains("junk.mmdb"));
    env.ingest(&["--geohash-precision", "13", f.to_str().unwrap()]).code(2).stderr(contains("--geohash-precision"));
    env.ingest(&["--ip-mode", "hash", f.to_str().unwrap()]).code(2).stderr(contains("--ip-mode"));
    env.cmd()
        .env("XFERSTATS_HOST_KEY", "tooshort")
        .args(["ingest", f.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("XFERSTATS_HOST_KEY").and(contains("tooshort").not()));
    // --geoip off: no warning, no location.
    let a = env.ingest(&["--geoip", "off", f.to_str().unwrap()]).success();
    assert!(!stderr(&a).contains("GeoIP"), "{}", stderr(&a));
    assert!(rows(&env.db()).iter().all(|r| r.2.is_none()));
}

#[test]
fn a_version_1_database_is_migrated_in_place() {
    let env = Env::new();
    {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);",
        )
        .unwrap();
        conn.execute_batch(include_str!("../../sql/sqlite/0001_init.sql")).unwrap();
        conn.execute_batch(
            "INSERT INTO transfers (end_us, event_id, protocol, direction, status, bytes, user, client_ip, \
             server_host, source, granularity) VALUES (1772359200000000, 7, 'rsync', 'download', 'completed', \
             123, 'old', '192.0.2.99', 'vm', 'rsyncd', 'file'); \
             INSERT INTO daily_transfers VALUES ('2026-03-01', 'vm', 'rsync', 'download', 'completed', '', 'old', 1, 123);",
        )
        .unwrap();
    }
    let geo = tiny_city_db(&env);
    ingest_clients(&env, &geo, &[]);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let version: i64 = conn.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 8);
    // Rows of before migration 4 do not know their input.
    let input: Option<i64> =
        conn.query_row("SELECT input FROM transfers WHERE user = 'old'", [], |r| r.get(0)).unwrap();
    assert_eq!(input, None);
    let old: (String, Option<String>, i64) = conn
        .query_row("SELECT client_ip, country, event_id FROM transfers WHERE user = 'old'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    // Its unkeyed id was re-keyed (see tests/cli/ids.rs).
    let id = xferstats::enrich::hostkey::HostKey::new(TEST_HOST_KEY.as_bytes()).id_key().hash(7) as i64;
    assert_eq!(old, ("192.0.2.99".to_string(), None, id));
    let v: Value = env.report_json("user");
    let users: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["user"].as_str().unwrap()).collect();
    assert_eq!(users, ["alice", "anonymous", "mallory", "old"]);
    let v = env.report_json("city");
    assert!(v.as_array().unwrap().iter().any(|r| r["city"] == "Grenoble, FR"));
}
