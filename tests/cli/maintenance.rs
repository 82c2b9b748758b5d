//! `prune`, `rollup --rebuild` and `db migrate` on the SQLite store (the
//! PostgreSQL ones are in `postgres.rs`).

use crate::util::{fixture, Env};

#[test]
fn sqlite_prune_rebuild_and_migrate() {
    let env = Env::new();
    let f = fixture("rsync/default-logfile.log");
    env.ingest(&[f.to_str().unwrap()]).success();
    let by_day = env.report_json("day,user");
    let a = env.cmd().args(["db", "migrate"]).assert().success();
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("schema version 3"));
    // Damage the rollups, rebuild them from the raw rows.
    {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        conn.execute_batch("UPDATE daily_transfers SET transfers = 0; DELETE FROM daily_logins").unwrap();
    }
    env.cmd().args(["rollup", "--rebuild", "--since", "2026-01-01"]).assert().success();
    assert_eq!(env.report_json("day,user"), by_day);
    // Prune everything older than 30 days (the fixture is from March 2026):
    // the rollups stay, the raw rows go.
    let a = env.cmd().args(["prune", "--raw-older-than", "30d"]).assert().success();
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("9 transfers, 5 logins"));
    assert_eq!(env.report_json("day,user"), by_day);
    assert_eq!(env.report_json("client"), serde_json::json!([]));
    // Rebuilding over pruned days is refused.
    let a = env.cmd().args(["rollup", "--rebuild", "--since", "2026-01-01"]).assert().code(4);
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("pruned"));
    assert_eq!(env.report_json("day,user"), by_day);
    env.cmd().args(["prune", "--raw-older-than", "soon"]).assert().code(2);
    // Events older than the prune horizon are not stored again, even from a
    // copy with another first line (their rollups already count them).
    let mut copy = b"2026/03/01 09:00:00 [99] rsyncd version 3.5.0 starting, listening on port 873\n".to_vec();
    copy.extend_from_slice(&std::fs::read(&f).unwrap());
    let copy = env.write("copy.log", &copy);
    let a = env.ingest(&[copy.to_str().unwrap()]).success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains(" 0 new events") && err.contains("were pruned"), "{err}");
    assert_eq!(env.report_json("day,user"), by_day);
}
