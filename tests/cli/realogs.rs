//! The rsync logs of `../shared/samples/realogs` reproduce `expected.json`
//! exactly, for everything a log can express: per day and user the number
//! of transfers (completed, interrupted), uploads, downloads, the bytes of
//! completed transfers, successful and failed logins. (Bytes of interrupted
//! transfers are the partial file at the receiver in the ground truth; the
//! daemon logs what it sent, so they are not compared.)

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{realogs, Env};

pub type Row = BTreeMap<&'static str, u64>;

pub fn actual(env: &Env) -> BTreeMap<(String, String), Row> {
    let mut out: BTreeMap<(String, String), Row> = BTreeMap::new();
    for r in env.report_json("day,user").as_array().unwrap() {
        let key = (r["day"].as_str().unwrap().to_string(), r["user"].as_str().unwrap().to_string());
        let g = |k: &str| r[k].as_u64().unwrap();
        let row = out.entry(key).or_default();
        row.insert("transfers", g("transfers"));
        row.insert("transfers_completed", g("completed"));
        row.insert("transfers_interrupted", g("interrupted"));
        row.insert("uploads", g("uploads"));
        row.insert("downloads", g("downloads"));
        row.insert("successful_logins", g("logins_ok"));
        row.insert("failed_logins", g("logins_failed"));
        row.insert("bytes_up_completed", 0);
        row.insert("bytes_down_completed", 0);
    }
    for r in env.report_json("day,user,status").as_array().unwrap() {
        if r["status"] != "completed" {
            continue;
        }
        let key = (r["day"].as_str().unwrap().to_string(), r["user"].as_str().unwrap().to_string());
        let row = out.get_mut(&key).unwrap();
        *row.get_mut("bytes_up_completed").unwrap() += r["bytes_up"].as_u64().unwrap();
        *row.get_mut("bytes_down_completed").unwrap() += r["bytes_down"].as_u64().unwrap();
    }
    out
}

pub fn expected(variant: &str) -> BTreeMap<(String, String), Row> {
    let root = realogs().unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(root.join("expected.json")).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for (day, users) in v["by_variant"][variant]["per_day_per_user"].as_object().unwrap() {
        for (user, m) in users.as_object().unwrap() {
            let mut row = Row::new();
            for k in [
                "transfers",
                "transfers_completed",
                "transfers_interrupted",
                "uploads",
                "downloads",
                "successful_logins",
                "failed_logins",
                "bytes_up_completed",
                "bytes_down_completed",
            ] {
                row.insert(k, m[k].as_u64().unwrap());
            }
            assert_eq!(m["transfers_refused"], 0, "rsync logs have no refused transfers");
            out.insert((day.clone(), user.clone()), row);
        }
    }
    out
}

fn check(variant: &str, log: &str, extra: &[&str]) {
    let Some(root) = realogs() else { return };
    let env = Env::new();
    let path = root.join("rsync").join(log);
    let mut args: Vec<&str> = extra.to_vec();
    let p = path.to_str().unwrap();
    args.push(p);
    let a = env.ingest(&args).success();
    let err = crate::util::stderr(&a);
    assert!(err.contains("0 rejected lines"), "{err}");
    assert_eq!(actual(&env), expected(variant));
}

#[test]
fn rsyncd_default_log_matches_ground_truth() {
    check("rsync-default", "rsyncd-default.log", &[]);
}

#[test]
fn rsyncd_custom_log_format_matches_ground_truth() {
    check("rsync-custom", "rsyncd-custom.log", &["--rsync-log-format", "%t %a %h %o %m %u %f %l %b %i"]);
}

#[test]
fn both_rsync_logs_in_one_store_keep_their_totals() {
    let Some(root) = realogs() else { return };
    let env = Env::new();
    env.ingest(&[root.join("rsync/rsyncd-default.log").to_str().unwrap()]).success();
    env.ingest(&[
        "--rsync-log-format",
        "%t %a %h %o %m %u %f %l %b %i",
        root.join("rsync/rsyncd-custom.log").to_str().unwrap(),
    ])
    .success();
    let v: Value = serde_json::from_slice(&std::fs::read(root.join("expected.json")).unwrap()).unwrap();
    let tot = |k: &str| {
        v["by_variant"]["rsync-default"]["totals"][k].as_u64().unwrap()
            + v["by_variant"]["rsync-custom"]["totals"][k].as_u64().unwrap()
    };
    let all = env.report_json("protocol");
    let r = &all[0];
    assert_eq!(r["protocol"], "rsync");
    assert_eq!(r["transfers"].as_u64().unwrap(), tot("transfers"));
    assert_eq!(r["uploads"].as_u64().unwrap(), tot("uploads"));
    assert_eq!(r["downloads"].as_u64().unwrap(), tot("downloads"));
    assert_eq!(r["logins_ok"].as_u64().unwrap(), tot("successful_logins"));
    assert_eq!(r["logins_failed"].as_u64().unwrap(), tot("failed_logins"));
}

/// Expected totals of an xferlog, derived from `manifest.json` with what the
/// format can express (the sample README's "cannot express" list): refused
/// transfers leave no line; an aborted FTP upload is logged as complete with
/// the bytes received; an aborted download is logged incomplete with what
/// the server sent (so only completed downloads' bytes are compared); there
/// are no logins; ProFTPD logs deletions (`d`), vsftpd does not.
pub fn xferlog_expected(variant: &str, deletes: bool) -> BTreeMap<(String, String), Row> {
    manifest_expected(variant, deletes, true, false)
}

/// Per day and user totals of `variant` from `manifest.json`: refused
/// transfers are not in the logs; with `no_legacy_scp` (OpenSSH) neither is
/// legacy `scp -O`, of which sshd logs only the session; with
/// `aborted_upload_complete` (FTP stream mode) an aborted upload is logged
/// as complete.
fn manifest_expected(
    variant: &str,
    deletes: bool,
    aborted_upload_complete: bool,
    no_legacy_scp: bool,
) -> BTreeMap<(String, String), Row> {
    let root = realogs().unwrap();
    let m: Value = serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    let mut out: BTreeMap<(String, String), Row> = BTreeMap::new();
    let blank = || -> Row {
        ["transfers", "completed", "interrupted", "uploads", "downloads", "bytes_up", "bytes_down_completed", "deletes"]
            .into_iter()
            .map(|k| (k, 0))
            .collect()
    };
    for t in m["transfers"].as_array().unwrap() {
        if t["variant"] != variant || t["status"] == "refused" || (no_legacy_scp && t["client"] == "scp -O") {
            continue;
        }
        let key = (t["day"].as_str().unwrap().to_string(), t["user"].as_str().unwrap().to_string());
        let row = out.entry(key).or_insert_with(blank);
        let up = t["direction"] == "upload";
        let looks_complete = t["status"] == "completed" || (aborted_upload_complete && up && t["protocol"] == "ftp");
        *row.get_mut("transfers").unwrap() += 1;
        *row.get_mut(if looks_complete { "completed" } else { "interrupted" }).unwrap() += 1;
        *row.get_mut(if up { "uploads" } else { "downloads" }).unwrap() += 1;
        let bytes = t["bytes"].as_u64().unwrap();
        if up {
            *row.get_mut("bytes_up").unwrap() += bytes;
        } else if t["status"] == "completed" {
            *row.get_mut("bytes_down_completed").unwrap() += bytes;
        }
    }
    if deletes {
        for e in m["other_events"].as_array().unwrap() {
            if e["variant"] == variant && e["op"] == "delete" {
                let key = (e["day"].as_str().unwrap().to_string(), e["user"].as_str().unwrap().to_string());
                *out.entry(key).or_insert_with(blank).get_mut("deletes").unwrap() += 1;
            }
        }
    }
    out
}

pub fn xferlog_actual(env: &Env) -> BTreeMap<(String, String), Row> {
    let mut out: BTreeMap<(String, String), Row> = BTreeMap::new();
    for r in env.report_json("day,user,status").as_array().unwrap() {
        let key = (r["day"].as_str().unwrap().to_string(), r["user"].as_str().unwrap().to_string());
        let row = out.entry(key).or_default();
        let g = |k: &str| r[k].as_u64().unwrap();
        for (k, v) in [
            ("transfers", g("transfers")),
            ("completed", g("completed")),
            ("interrupted", g("interrupted")),
            ("uploads", g("uploads")),
            ("downloads", g("downloads")),
            ("bytes_up", g("bytes_up")),
            ("deletes", g("deletes")),
        ] {
            *row.entry(k).or_default() += v;
        }
        let done = if r["status"] == "completed" { g("bytes_down") } else { 0 };
        *row.entry("bytes_down_completed").or_default() += done;
    }
    out
}

#[test]
fn vsftpd_xferlog_matches_ground_truth() {
    let Some(root) = realogs() else { return };
    let env = Env::new();
    let a = env.ingest(&[root.join("vsftpd/std/xferlog").to_str().unwrap()]).success();
    assert!(crate::util::stderr(&a).contains("18 new events"), "{}", crate::util::stderr(&a));
    assert_eq!(xferlog_actual(&env), xferlog_expected("vsftpd-std", false));
}

#[test]
fn proftpd_xferlog_matches_ground_truth() {
    let Some(root) = realogs() else { return };
    let env = Env::new();
    env.ingest(&[root.join("proftpd/xferlog").to_str().unwrap()]).success();
    assert_eq!(xferlog_actual(&env), xferlog_expected("proftpd", true));
    let by_proto = env.report_json("protocol");
    let protos: Vec<&str> = by_proto.as_array().unwrap().iter().map(|r| r["protocol"].as_str().unwrap()).collect();
    assert_eq!(protos, ["ftp", "scp", "sftp"]);
}

#[test]
fn vsftpd_own_log_matches_ground_truth() {
    let Some(root) = realogs() else { return };
    let env = Env::new();
    env.ingest(&[root.join("vsftpd/own/vsftpd.log").to_str().unwrap()]).success();
    // Transfers: the same rules as xferlog (refused leave no line, an
    // aborted upload is `OK UPLOAD` with the bytes received); deletes are logged.
    assert_eq!(xferlog_actual(&env), xferlog_expected("vsftpd-own", true));
    assert_eq!(logins_actual(&env), logins_expected("vsftpd-own"));
}

/// Successful and failed logins per day and user, as expected.json counts them.
fn logins_expected(variant: &str) -> BTreeMap<(String, String), (u64, u64)> {
    let root = realogs().unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(root.join("expected.json")).unwrap()).unwrap();
    let mut expected = BTreeMap::new();
    for (day, users) in v["by_variant"][variant]["per_day_per_user"].as_object().unwrap() {
        for (user, m) in users.as_object().unwrap() {
            let (ok, failed) = (m["successful_logins"].as_u64().unwrap(), m["failed_logins"].as_u64().unwrap());
            if ok + failed > 0 {
                expected.insert((day.clone(), user.clone()), (ok, failed));
            }
        }
    }
    expected
}

fn logins_actual(env: &Env) -> BTreeMap<(String, String), (u64, u64)> {
    let mut actual = BTreeMap::new();
    for r in env.report_json("day,user").as_array().unwrap() {
        let (ok, failed) = (r["logins_ok"].as_u64().unwrap(), r["logins_failed"].as_u64().unwrap());
        if ok + failed > 0 {
            actual.insert(
                (r["day"].as_str().unwrap().to_string(), r["user"].as_str().unwrap().to_string()),
                (ok, failed),
            );
        }
    }
    actual
}

/// OpenSSH with sshd and sftp-server both logging to syslog, in both time
/// stamp styles: transfers (a `forced close` is interrupted, with the bytes
/// that reached the server for uploads), deletes and logins per day and user.
#[test]
fn openssh_syslog_logs_match_ground_truth() {
    let Some(root) = realogs() else { return };
    for log in ["ssh/syslog/auth.log", "ssh/syslog/auth-rfc3339.log"] {
        let env = Env::new();
        let a = env.ingest(&[root.join(log).to_str().unwrap()]).success();
        assert!(crate::util::stderr(&a).contains("0 rejected lines"), "{log}: {}", crate::util::stderr(&a));
        assert_eq!(xferlog_actual(&env), manifest_expected("ssh-syslog", true, false, true), "{log}");
        assert_eq!(logins_actual(&env), logins_expected("ssh-syslog"), "{log}");
    }
}

/// ProFTPD's three logs together: the TransferLog's transfers, the
/// SystemLog's FTP logins and failures, the SFTPLog's SFTP/SCP logins —
/// per day and user, with no attempt counted twice.
#[test]
fn proftpd_logs_together_match_ground_truth() {
    let Some(root) = realogs() else { return };
    let env = Env::new();
    let files = ["proftpd/proftpd.log", "proftpd/sftp.log", "proftpd/xferlog"].map(|f| root.join(f));
    let args: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    env.ingest(&args).success();
    assert_eq!(xferlog_actual(&env), xferlog_expected("proftpd", true));
    assert_eq!(logins_actual(&env), logins_expected("proftpd"));
}

/// sshd writing its own lines to an `-E` file (no time stamps at all) while
/// internal-sftp and PAM go to syslog: both files together, in one run or
/// in two runs in either order, give the totals of the ground truth.
#[test]
fn openssh_split_e_file_and_syslog_match_ground_truth() {
    let Some(root) = realogs() else { return };
    for (variant, dir) in [("ssh-E-info", "ssh/E-info"), ("ssh-E-verbose", "ssh/E-verbose")] {
        for syslog in ["auth.log", "auth-rfc3339.log"] {
            let e_file = root.join(dir).join("sshd.log");
            let sys = root.join(dir).join(syslog);
            let (e_file, sys) = (e_file.to_str().unwrap(), sys.to_str().unwrap());
            for runs in [vec![vec![e_file, sys]], vec![vec![e_file], vec![sys]], vec![vec![sys], vec![e_file]]] {
                let env = Env::new();
                for files in &runs {
                    let a = env.ingest(files).success();
                    assert!(crate::util::stderr(&a).contains("0 rejected lines"), "{}", crate::util::stderr(&a));
                }
                let what = format!("{variant} {syslog} {runs:?}");
                assert_eq!(xferlog_actual(&env), manifest_expected(variant, true, false, true), "{what}");
                assert_eq!(logins_actual(&env), logins_expected(variant), "{what}");
            }
        }
    }
}

/// ProFTPD's ExtendedLog, with the default LogFormat (every command) and
/// with a custom one (`--proftpd-log-format`): the same transfers and
/// deletes as the ground truth, by the xferlog rules.
#[test]
fn proftpd_extended_logs_match_ground_truth() {
    let Some(root) = realogs() else { return };
    let custom = r#"%{iso8601} %a %u %{protocol} %m "%f" %{file-size} %b %{transfer-status} %T"#;
    for (log, format) in [("proftpd/extended.log", None), ("proftpd/xfer-ext.log", Some(custom))] {
        let env = Env::new();
        let path = root.join(log);
        let mut args = vec!["-v"];
        if let Some(f) = format {
            args.extend(["--proftpd-log-format", f]);
        }
        args.push(path.to_str().unwrap());
        let a = env.ingest(&args).success();
        assert!(crate::util::stderr(&a).contains("proftpd-extended"), "{}", crate::util::stderr(&a));
        assert_eq!(xferlog_actual(&env), xferlog_expected("proftpd", true), "{log}");
    }
}

/// Every log of the samples imported together gives the ground truth of
/// all server runs at once: the same syslog messages in two time-stamp
/// renderings (`auth.log`, `auth-rfc3339.log`) and ProFTPD's transfers in
/// its TransferLog and both ExtendedLogs count once. The two logs that need
/// an option of their own (a custom rsyncd `log format`, a custom ProFTPD
/// `LogFormat`) follow in runs with it; the ExtendedLog's transfers are
/// already stored then. A run of everything again adds nothing.
#[test]
fn every_sample_log_in_one_run_gives_the_ground_truth() {
    let Some(root) = realogs() else { return };
    let env = Env::new();
    let custom_rsync = root.join("rsync/rsyncd-custom.log");
    let custom_proftpd = root.join("proftpd/xfer-ext.log");
    let mut logs: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["proftpd", "rsync", "ssh/E-info", "ssh/E-verbose", "ssh/syslog", "vsftpd/own", "vsftpd/std"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap();
            if (name.ends_with(".log") || name == "xferlog") && p != custom_rsync && p != custom_proftpd {
                logs.push(p);
            }
        }
    }
    logs.sort();
    assert_eq!(logs.len(), 15);
    let args: Vec<&str> = logs.iter().map(|p| p.to_str().unwrap()).collect();
    let a = env.ingest(&args).success();
    assert!(
        crate::util::stderr(&a).contains(": 353 new events, 143 already present, 0 rejected lines"),
        "{}",
        crate::util::stderr(&a)
    );
    let rsync_format = ["--rsync-log-format", "%t %a %h %o %m %u %f %l %b %i"];
    env.ingest(&[&rsync_format[..], &[custom_rsync.to_str().unwrap()]].concat()).success();
    let proftpd_format =
        ["--proftpd-log-format", r#"%{iso8601} %a %u %{protocol} %m "%f" %{file-size} %b %{transfer-status} %T"#];
    let a = env.ingest(&[&proftpd_format[..], &[custom_proftpd.to_str().unwrap()]].concat()).success();
    assert!(crate::util::stderr(&a).contains(": 0 new events, 28 already present"), "{}", crate::util::stderr(&a));

    let variants = [
        "proftpd",
        "rsync-custom",
        "rsync-default",
        "ssh-E-info",
        "ssh-E-verbose",
        "ssh-syslog",
        "vsftpd-own",
        "vsftpd-std",
    ];
    let mut transfers: BTreeMap<(String, String), Row> = BTreeMap::new();
    let mut logins: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for v in variants {
        // What the logs can say: no refused transfers, no legacy scp from
        // sshd, an aborted FTP upload as complete; vsftpd's xferlog has
        // neither deletes nor logins.
        for (k, row) in manifest_expected(v, v != "vsftpd-std", true, v.starts_with("ssh")) {
            let sum = transfers.entry(k).or_default();
            for (m, n) in row {
                *sum.entry(m).or_default() += n;
            }
        }
        if v != "vsftpd-std" {
            for (k, (ok, failed)) in logins_expected(v) {
                let sum = logins.entry(k).or_default();
                sum.0 += ok;
                sum.1 += failed;
            }
        }
    }
    // The bytes of an interrupted rsync upload are the partial file in the
    // ground truth, what the daemon sent in its log (the rsync tests compare
    // completed bytes only): left out on both sides.
    let manifest: Value = serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    for t in manifest["transfers"].as_array().unwrap() {
        if t["protocol"] == "rsync" && t["status"] == "interrupted" && t["direction"] == "upload" {
            let key = (t["day"].as_str().unwrap().to_string(), t["user"].as_str().unwrap().to_string());
            *transfers.get_mut(&key).unwrap().get_mut("bytes_up").unwrap() -= t["bytes"].as_u64().unwrap();
        }
    }
    let mut actual = xferlog_actual(&env);
    for r in env.report_json("day,user,protocol,status").as_array().unwrap() {
        if r["protocol"] == "rsync" && r["status"] == "interrupted" {
            let key = (r["day"].as_str().unwrap().to_string(), r["user"].as_str().unwrap().to_string());
            *actual.get_mut(&key).unwrap().get_mut("bytes_up").unwrap() -= r["bytes_up"].as_u64().unwrap();
        }
    }
    assert_eq!(actual, transfers);
    assert_eq!(logins_actual(&env), logins);

    let before = env.report_json("day,user,status,protocol,direction");
    let all: Vec<&str> =
        args.iter().copied().chain([custom_rsync.to_str().unwrap(), custom_proftpd.to_str().unwrap()]).collect();
    let a = env.ingest(&all).code(1);
    assert!(crate::util::stderr(&a).contains(": 0 new events"), "{}", crate::util::stderr(&a));
    assert_eq!(env.report_json("day,user,status,protocol,direction"), before);
}
