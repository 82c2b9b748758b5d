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
    assert!(stderr(&a).contains("schema version 4"), "{}", stderr(&a));
    assert_eq!(env.report_json("day,user"), by_day);
}
