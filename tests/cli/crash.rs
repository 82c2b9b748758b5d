//! A crash or kill at any point leaves the store as it was before the batch
//! in flight, and a re-run gives exact totals.

use std::time::Duration;

use crate::util::{import_once, synthetic_log, Env};

const BY: &str = "day,user,direction,status,module,client,host";

fn clean_totals(data: &[u8]) -> serde_json::Value {
    import_once(data, BY)
}

#[test]
fn abort_inside_and_after_commits_then_rerun() {
    let data = synthetic_log(120);
    let expected = clean_totals(&data);
    for point in ["commit", "committed"] {
        for n in [1, 2, 5, 9] {
            let env = Env::new();
            let p = env.write("rsyncd.log", &data);
            let out = env
                .cmd()
                .env("XFERSTATS_TEST_CRASH", format!("{point}:{n}"))
                .args(["ingest", "--timezone", "UTC", "--server-host", "vm", "--batch-size", "50"])
                .arg(&p)
                .output()
                .unwrap();
            assert!(!out.status.success(), "{point}:{n} should have aborted");
            env.ingest(&["--batch-size", "50", p.to_str().unwrap()]).success();
            assert_eq!(env.report_json(BY), expected, "crash at {point}:{n}");
        }
    }
}

#[test]
fn sigkill_at_several_moments_then_rerun() {
    let data = synthetic_log(4_000);
    let expected = clean_totals(&data);
    for delay_ms in [5u64, 30, 80, 200] {
        let env = Env::new();
        let p = env.write("rsyncd.log", &data);
        let mut child =
            env.spawn_ingest(env.db().as_os_str(), &["--batch-size".as_ref(), "200".as_ref(), p.as_os_str()]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        env.ingest(&["--batch-size", "200", p.to_str().unwrap()]).success();
        assert_eq!(env.report_json(BY), expected, "killed after {delay_ms} ms");
    }
}
