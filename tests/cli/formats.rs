//! Per-file format detection and the FTP/SFTPGo formats through the CLI.

use predicates::str::contains;

use crate::util::{fixture, stderr, Env};

#[test]
fn each_file_gets_its_own_format() {
    let env = Env::new();
    let files = [
        fixture("rsync/default-logfile.log"),
        fixture("xferlog/traps.xferlog"),
        fixture("vsftpd/traps.log"),
        fixture("sftpgo/sftpgo.log"),
    ];
    let mut args = vec!["-v"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    // The SFTPGo fixture ends with a non-JSON line: rejected, exit 1.
    let a = env.ingest(&args).code(1);
    let err = stderr(&a);
    for (name, format) in [
        ("default-logfile.log", "rsyncd"),
        ("traps.xferlog", "xferlog"),
        ("traps.log", "vsftpd"),
        ("sftpgo.log", "sftpgo"),
    ] {
        assert!(err.contains(&format!("{name}: {format},")), "{name} as {format}: {err}");
    }
    assert!(err.contains("sftpgo.log:13: not a JSON object: this is not json"), "{err}");
    let v = env.report_json("protocol");
    let protos: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["protocol"].as_str().unwrap()).collect();
    assert_eq!(protos, ["ftp", "ftps", "http", "rsync", "scp", "sftp", "ssh"]);
}

#[test]
fn forced_format_and_the_formats_list() {
    let env = Env::new();
    env.cmd().arg("formats").assert().success().stdout(contains("xferlog")).stdout(contains("sftpgo"));
    // Forcing the wrong format rejects every line instead of guessing.
    let f = fixture("xferlog/traps.xferlog");
    let a = env.ingest(&["--format", "vsftpd", f.to_str().unwrap()]).code(1);
    assert!(stderr(&a).contains("10 rejected lines"), "{}", stderr(&a));
}

/// Every registered format is listed by `xferstats formats`, accepted by
/// `--format`, and named in README's `--format` row.
#[test]
fn every_registered_format_is_listed_accepted_and_documented() {
    use xferstats::formats::REGISTRY;
    let env = Env::new();
    let out = env.cmd().arg("formats").assert().success().get_output().stdout.clone();
    let listed: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect();
    let names: Vec<&str> = REGISTRY.iter().map(|s| s.name).collect();
    assert_eq!(listed, names);
    assert_eq!(names.len(), 8);
    let empty = env.write("empty.log", b"");
    for name in &names {
        let a = env.ingest(&["-v", "--format", name, empty.to_str().unwrap()]).success();
        assert!(stderr(&a).contains(&format!("empty.log: {name}, 0 lines: empty")), "{name}: {}", stderr(&a));
    }
    env.ingest(&["--format", "no-such-format", empty.to_str().unwrap()]).code(2);
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let row = readme.lines().find(|l| l.starts_with("| `--format NAME`")).expect("README documents --format");
    for name in &names {
        assert!(row.contains(&format!("`{name}`")), "README's --format row lacks {name}");
    }
}

/// mod_sftp names the client on its `connected` line only: a login whose
/// `connected` line one cron run reads and whose `authenticated` line the
/// next run reads keeps its address (the pid → address map is saved).
#[test]
fn proftpd_sftp_login_split_across_runs_keeps_its_address() {
    let env = Env::new();
    let lines = [
        "2026-11-08 16:21:21,170 mod_sftp/1.1.1[200]: client (203.0.113.23:44221) connected to server (192.0.2.1:2200)\n",
        "2026-11-08 16:21:21,176 mod_sftp/1.1.1[200]: sending acceptable userauth methods: password\n",
        "2026-11-08 16:21:21,219 mod_sftp/1.1.1[200]: user 'grace' authenticated via 'password' method\n",
    ];
    let log = env.write("sftp.log", lines[0].as_bytes());
    let path = log.to_str().unwrap();
    env.ingest(&["--format", "proftpd", "--ip-mode", "full", path]).success();
    env.write("sftp.log", lines.concat().as_bytes());
    let a = env.ingest(&["--format", "proftpd", "--ip-mode", "full", path]).success();
    assert!(stderr(&a).contains("1 new events"), "{}", stderr(&a));
    let v = env.report_json("user,client");
    let rows: Vec<(&str, &str, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["user"].as_str().unwrap(), r["client"].as_str().unwrap(), r["logins_ok"].as_u64().unwrap()))
        .collect();
    assert_eq!(rows, [("grace", "203.0.113.23", 1)]);
}

#[test]
fn a_mixed_syslog_file_routes_each_program() {
    let env = Env::new();
    let f = fixture("syslog/mixed.log");
    let a = env.ingest(&["-v", f.to_str().unwrap()]).success();
    let err = stderr(&a);
    assert!(err.contains("mixed.log: syslog, 15 lines"), "{err}");
    assert!(err.contains("4 new events"), "{err}");
    let v = env.report_json("protocol");
    let protos: Vec<(&str, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["protocol"].as_str().unwrap(), r["transfers"].as_u64().unwrap()))
        .collect();
    assert_eq!(protos, [("rsync", 1), ("sftp", 1), ("ssh", 0)]);
}
