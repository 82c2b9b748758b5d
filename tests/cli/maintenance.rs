//! `db migrate` on the SQLite store (the PostgreSQL one is in
//! `postgres.rs`; `prune` and `rollup --rebuild` run on every store in
//! `stores.rs`).

use crate::util::{fixture, stderr, Env};

#[test]
fn sqlite_migrate_prints_the_schema_version() {
    let env = Env::new();
    env.ingest(&[fixture("rsync/default-logfile.log").to_str().unwrap()]).success();
    let by_day = env.report_json("day,user");
    let a = env.cmd().args(["db", "migrate"]).assert().success();
    assert!(stderr(&a).contains("schema version 8"), "{}", stderr(&a));
    assert_eq!(env.report_json("day,user"), by_day);
}

/// Migration 5 fills the value rollup and the daily clients of a store
/// written before it: from the daily rollups where they have the keys (so
/// days whose raw events were pruned keep their numbers), else from the
/// raw events.
#[test]
fn sqlite_migration_5_fills_the_value_rollup() {
    let env = Env::new();
    env.ingest(&[fixture("rsync/default-logfile.log").to_str().unwrap()]).success();
    env.ingest(&[fixture("openssh/auth.log").to_str().unwrap()]).success();
    let reports: Vec<_> = ["day,user", "host,module", "day", "protocol,user"].map(|by| env.report_json(by)).to_vec();
    let clients = env.report_json("client").as_array().unwrap().iter().filter(|r| r["client"] != "").count();
    assert!(clients > 0);
    let html = |env: &Env| {
        let out = env.path("r.html");
        env.cmd().args(["report", "--format", "html", "-o", out.to_str().unwrap()]).assert().success();
        std::fs::read_to_string(out).unwrap().len()
    };
    let page = html(&env);
    {
        // Without version 5, as a store migrated before the value rollup
        // existed (the hook outbox, version 6, came first) is left.
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        conn.execute_batch(
            "DROP TABLE daily_values; DROP TABLE daily_clients; DELETE FROM schema_version WHERE version = 5",
        )
        .unwrap();
    }
    let a = env.cmd().args(["db", "migrate"]).assert().success();
    assert!(stderr(&a).contains("schema version 8"), "{}", stderr(&a));
    for (by, before) in ["day,user", "host,module", "day", "protocol,user"].iter().zip(&reports) {
        assert_eq!(&env.report_json(by), before, "--by {by}");
    }
    assert_eq!(html(&env), page, "the same page");
    // Raw rows gone (as after a prune) before the migration: what the
    // daily rollups hold stays whole.
    {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        conn.execute_batch(
            "DROP TABLE daily_values; DROP TABLE daily_clients; DELETE FROM schema_version WHERE version = 5; \
             DELETE FROM transfers; DELETE FROM logins",
        )
        .unwrap();
    }
    env.cmd().args(["db", "migrate"]).assert().success();
    assert_eq!(env.report_json("day,user"), reports[0]);
    assert_eq!(env.report_json("country"), serde_json::json!([]));
}
