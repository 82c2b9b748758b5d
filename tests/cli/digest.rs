//! `xferstats digest`: the table posted to a webhook (a listener of the
//! test on loopback) as Slack/Mattermost `text` or generic JSON, mailed
//! through a stand-in `sendmail` (a real script that records its arguments
//! and the message), with the numbers of `report --by day,user --format
//! json`; failed deliveries exit 5 and never show the webhook's secret.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::util::{fixture, Env};

const FIXTURES: [&str; 3] = ["rsync/default-logfile.log", "openssh/auth.log", "xferlog/traps.xferlog"];

/// A store with the fixtures, and the day with the most users.
fn store() -> (Env, String) {
    let env = Env::new();
    let files: Vec<String> = FIXTURES.iter().map(|f| fixture(f).display().to_string()).collect();
    env.ingest(&files.iter().map(String::as_str).collect::<Vec<_>>());
    let rows = env.report_json("day,user");
    let mut days: std::collections::BTreeMap<String, usize> = Default::default();
    for r in rows.as_array().unwrap() {
        *days.entry(r["day"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let day = days.into_iter().max_by_key(|(d, n)| (*n, d.clone())).unwrap().0;
    (env, day)
}

/// A receiver that answers one request with `status`; the request line
/// and body come back through the handle.
fn receiver(status: &'static str) -> (String, std::thread::JoinHandle<(String, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = s.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(n > 0, "request ended early");
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .expect("content-length");
        while buf.len() < head_end + len {
            let n = s.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
        }
        let answer = if status.starts_with("200") { "ok" } else { "no_service" };
        write!(s, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}", answer.len())
            .unwrap();
        (head, String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string())
    });
    (addr, h)
}

fn printed(env: &Env, day: &str) -> String {
    let out = env.cmd().args(["digest", "--day", day]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_json_payload_has_the_numbers_of_the_report() {
    let (env, day) = store();
    let (addr, h) = receiver("200 OK");
    let url = format!("http://{addr}/hooks/T0/B0/s3cretpath");
    let a = env.cmd().args(["digest", "--day", &day, "--payload", "json"]).env("XFERSTATS_DIGEST_URL", &url).assert();
    let err = crate::util::stderr(&a.success());
    assert!(err.contains(&format!("posted to http://{addr}/…")) && !err.contains("s3cret"), "{err}");
    let (head, body) = h.join().unwrap();
    assert!(head.starts_with("POST /hooks/T0/B0/s3cretpath HTTP/1.1\r\n"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let p: Value = serde_json::from_str(&body).unwrap();
    let report: Value = serde_json::from_slice(
        &env.report(&["--by", "day,user", "--since", &day, "--until", &day, "--format", "json"]),
    )
    .unwrap();
    assert!(report.as_array().unwrap().len() > 1);
    assert_eq!(p["users"], report);
    assert_eq!(p["day"], day.as_str());
    for k in ["logins_ok", "logins_failed", "uploads", "downloads", "bytes_up", "bytes_down"] {
        let sum: u64 = report.as_array().unwrap().iter().map(|r| r[k].as_u64().unwrap()).sum();
        assert_eq!(p["total"][k], sum, "{k}");
    }
    assert_eq!(p["text"], printed(&env, &day));
}

#[test]
fn the_slack_payload_is_the_printed_table() {
    let (env, day) = store();
    let (addr, h) = receiver("200 OK");
    env.cmd().args(["-q", "digest", "--day", &day, "--send", &format!("http://{addr}/hook")]).assert().success();
    let (_, body) = h.join().unwrap();
    let p: Value = serde_json::from_str(&body).unwrap();
    let text = p["text"].as_str().unwrap();
    let (title, table) = text.split_once('\n').unwrap();
    assert_eq!(title, format!("*xferstats digest for {day} (UTC) on {}*", host()));
    assert_eq!(table, format!("```\n{}```", printed(&env, &day)));
    assert_eq!(p.as_object().unwrap().len(), 1, "only text");
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

/// A stand-in for sendmail: records its arguments and the message, exits
/// with `code`.
fn sendmail(env: &Env, code: u8) -> std::path::PathBuf {
    let script = env.path("sendmail");
    let (args, mail) = (env.path("args"), env.path("mail"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" > '{}'\ncat > '{}'\n[ {code} = 0 ] || echo 'sendmail: queue full' >&2\nexit {code}\n",
            args.display(),
            mail.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn the_mail_goes_through_sendmail_with_proper_headers() {
    let (env, day) = store();
    let sm = sendmail(&env, 0);
    env.cmd()
        .args(["digest", "--day", &day, "--mail-to", "ops@example.org", "--mail-to", "partner@example.net"])
        .args(["--mail-from", "xferstats@example.org"])
        .env("XFERSTATS_SENDMAIL", &sm)
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(env.path("args")).unwrap(), "-t -oi\n");
    let mail = std::fs::read_to_string(env.path("mail")).unwrap();
    let (head, body) = mail.split_once("\n\n").unwrap();
    let h: Vec<&str> = head.lines().collect();
    assert_eq!(h[0], "To: ops@example.org, partner@example.net");
    assert_eq!(h[1], "From: xferstats@example.org");
    assert_eq!(h[2], format!("Subject: xferstats digest for {day} (UTC) on {}", host()));
    assert!(h[3].starts_with("Date: ") && h[3].ends_with(" +0000"), "{}", h[3]);
    assert_eq!(
        &h[4..7],
        ["MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: 8bit"]
    );
    assert_eq!(body, printed(&env, &day));
}

#[test]
fn failed_deliveries_exit_5_and_keep_the_secret() {
    let (env, day) = store();
    // Nothing listens.
    let port = crate::pg::free_port().unwrap();
    let a =
        env.cmd().args(["digest", "--day", &day, "--send", &format!("http://127.0.0.1:{port}/T/B/s3cret")]).assert();
    let err = crate::util::stderr(&a.code(5));
    assert!(err.contains(&format!("posting the digest to http://127.0.0.1:{port}/…: cannot connect")), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    // A receiver that refuses.
    let (addr, h) = receiver("500 Internal Server Error");
    let a = env.cmd().args(["digest", "--day", &day, "--send", &format!("http://{addr}/T/B/s3cret?token=x")]).assert();
    let err = crate::util::stderr(&a.code(5));
    h.join().unwrap();
    assert!(err.contains(&format!("posting the digest to http://{addr}/…: HTTP 500: no_service")), "{err}");
    assert!(!err.contains("s3cret") && !err.contains("token"), "{err}");
    // A sendmail that fails, and one that is missing.
    let sm = sendmail(&env, 75);
    let a = env
        .cmd()
        .args(["digest", "--day", &day, "--mail-to", "ops@example.org"])
        .env("XFERSTATS_SENDMAIL", &sm)
        .assert();
    let err = crate::util::stderr(&a.code(5));
    assert!(err.contains("exit status: 75: sendmail: queue full"), "{err}");
    let a = env
        .cmd()
        .args(["digest", "--day", &day, "--mail-to", "ops@example.org", "--sendmail", "/nonexistent/sendmail"])
        .assert();
    assert!(crate::util::stderr(&a.code(5)).contains("/nonexistent/sendmail: cannot run it"));
    // A header injection is a usage error.
    let a = env.cmd().args(["digest", "--day", &day, "--mail-to", "a@b\nBcc: x@y", "--sendmail"]).arg(&sm).assert();
    assert!(crate::util::stderr(&a.code(2)).contains("not a mail address"));
}

#[test]
fn relative_days_and_printing() {
    let (env, day) = store();
    let out = env.cmd().args(["digest", "--day", &day, "--format", "json"]).output().unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let report: Value = serde_json::from_slice(
        &env.report(&["--by", "day,user", "--since", &day, "--until", &day, "--format", "json"]),
    )
    .unwrap();
    assert_eq!(rows, report);
    let today = env.cmd().env("XFERSTATS_TEST_TODAY", &day).args(["digest", "--day", "today"]).output().unwrap();
    assert_eq!(String::from_utf8(today.stdout).unwrap(), printed(&env, &day));
}

/// The packaged unit dist/systemd/xferstats-digest.service: its
/// `Environment=` and `EnvironmentFile=` variables and its `ExecStart=`
/// argv, with the installed paths replaced by the test's (`map`: installed
/// path → test path). Only the environment the unit gives is passed on.
fn packaged_digest(map: &[(&str, &Path)]) -> std::process::Command {
    let unit =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/systemd/xferstats-digest.service"))
            .unwrap();
    let local = |s: &str| map.iter().fold(s.to_string(), |s, (from, to)| s.replace(from, to.to_str().unwrap()));
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut argv = None;
    for line in unit.lines() {
        if let Some(v) = line.strip_prefix("Environment=") {
            let (k, v) = v.trim_matches('"').split_once('=').unwrap();
            vars.push((k.to_string(), local(v)));
        } else if let Some(f) = line.strip_prefix("EnvironmentFile=") {
            // `-`: a missing file is no error.
            let (optional, f) = f.strip_prefix('-').map_or((false, f), |f| (true, f));
            match std::fs::read_to_string(local(f)) {
                Ok(text) => {
                    for l in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
                        let (k, v) = l.split_once('=').unwrap();
                        vars.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
                    }
                }
                Err(_) => assert!(optional, "{f} missing"),
            }
        } else if let Some(cmd) = line.strip_prefix("ExecStart=") {
            argv = Some(local(cmd).split_whitespace().map(str::to_string).collect::<Vec<_>>());
        }
    }
    let argv = argv.expect("ExecStart");
    let mut c = std::process::Command::new(&argv[0]);
    c.args(&argv[1..]).env_clear().envs(vars);
    c
}

/// The day after `day` (YYYY-MM-DD), for `--day yesterday`.
fn next_day(day: &str) -> String {
    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    (d + chrono::Days::new(1)).format("%Y-%m-%d").to_string()
}

/// The timer's service as packaged: the exact ExecStart (yesterday's digest,
/// no receiver on the command line) with the configuration file it reads —
/// the store and the [digest] section's webhook — and the environment
/// file it reads, whose XFERSTATS_DIGEST_URL wins over the file's URL;
/// the numbers posted are those of `report --by day,user --format json`,
/// and the webhook's secret path is never printed.
#[test]
fn the_packaged_timer_posts_yesterdays_report() {
    let (env, day) = store();
    let bin = assert_cmd::cargo::cargo_bin("xferstats");
    let report: Value = serde_json::from_slice(
        &env.report(&["--by", "day,user", "--since", &day, "--until", &day, "--format", "json"]),
    )
    .unwrap();
    let (cfg, env_file) = (env.path("xferstats.toml"), env.path("default-xferstats"));
    let state = env.state_dir();
    let map = [
        ("/usr/bin/xferstats", bin.as_path()),
        ("/etc/xferstats/xferstats.toml", cfg.as_path()),
        ("/etc/default/xferstats", env_file.as_path()),
        ("/var/lib/xferstats", state.as_path()),
    ];
    let check = |body: &str| {
        let p: Value = serde_json::from_str(body).unwrap();
        assert_eq!(p["day"], day.as_str());
        assert_eq!(p["users"], report);
        for k in ["logins_ok", "logins_failed", "uploads", "downloads", "bytes_up", "bytes_down"] {
            let sum: u64 = report.as_array().unwrap().iter().map(|r| r[k].as_u64().unwrap()).sum();
            assert_eq!(p["total"][k], sum, "{k}");
        }
    };
    // Today is the day after the fixtures' busiest day (a hook of the
    // tests); nothing else is added to the unit's environment.
    let run = || packaged_digest(&map).env("XFERSTATS_TEST_TODAY", next_day(&day)).output().unwrap();
    // The URL in the configuration file; no environment file.
    let (addr, h) = receiver("200 OK");
    std::fs::write(
        &cfg,
        format!(
            "db = \"sqlite:{}\"\n\n[digest]\nsend = \"http://{addr}/hooks/T0/B0/s3cretpath\"\npayload = \"json\"\n",
            env.db().display()
        ),
    )
    .unwrap();
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("digest for {day} posted to http://{addr}/…")) && !err.contains("s3cret"), "{err}");
    let (head, body) = h.join().unwrap();
    assert!(head.starts_with("POST /hooks/T0/B0/s3cretpath HTTP/1.1\r\n"), "{head}");
    check(&body);
    // `config check` shows the section, the URL masked.
    let a = env.cmd_with_key_file().arg("--config").arg(&cfg).args(["config", "check"]).assert().success();
    let shown = String::from_utf8(a.get_output().stdout.clone()).unwrap();
    assert!(
        shown.contains(&format!(
            "\n[digest]  # line 3\nsend = \"http://{addr}/****\"  # file, line 4\npayload = \"json\"\n"
        )),
        "{shown}"
    );
    assert!(!shown.contains("s3cret"), "{shown}");
    // The environment file's URL wins (the file's now points nowhere).
    let (addr2, h) = receiver("200 OK");
    std::fs::write(
        &env_file,
        format!("# set by the admin\nXFERSTATS_DIGEST_URL=http://{addr2}/hooks/T1/B1/0therS3cret\n"),
    )
    .unwrap();
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("0therS3cret"), "{err}");
    let (head, body) = h.join().unwrap();
    assert!(head.starts_with("POST /hooks/T1/B1/0therS3cret HTTP/1.1\r\n"), "{head}");
    check(&body);
    // Without a receiver the table goes to the journal (standard output).
    std::fs::remove_file(&env_file).unwrap();
    std::fs::write(&cfg, format!("db = \"sqlite:{}\"\n", env.db().display())).unwrap();
    let out = run();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), printed(&env, &day));
}

/// `[digest]` sections: errors name file:line and key, never the URL;
/// `--print` prints whatever the file names.
#[test]
fn the_digest_section_is_checked_and_print_overrides_it() {
    let (env, day) = store();
    let bad = |text: &str, want: &str| {
        let cfg = env.write("bad.toml", text.as_bytes());
        let a = env.cmd().arg("--config").arg(&cfg).args(["config", "check"]).assert().code(2);
        let err = crate::util::stderr(&a);
        assert!(err.contains(want), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    };
    bad("[digest]\nsend = \"ftp://h.example/s3cret\"\n", "bad.toml:2: digest.send: ");
    bad("\n[digest]\npayload = \"xml\"\n", "bad.toml:3: digest.payload: 'xml': slack or json");
    bad("[digest]\nmail_to = [\"a@b\\nBcc: x@y\"]\n", "bad.toml:2: digest.mail_to: ");
    bad("[digest]\nmail_to = []\n", "bad.toml:2: digest.mail_to: an empty list");
    bad("[digest]\nsend_to = \"x\"\n", "bad.toml:2: digest.send_to: unknown field");
    // mail_to from the file, through the stand-in sendmail; --print prints.
    let sm = sendmail(&env, 0);
    let cfg = env.write(
        "x.toml",
        format!(
            "[digest]\nmail_to = [\"ops@example.org\"]\nmail_from = \"xs@example.org\"\nsendmail = \"{}\"\n",
            sm.display()
        )
        .as_bytes(),
    );
    let out = env.cmd().arg("--config").arg(&cfg).args(["digest", "--day", &day, "--print"]).output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), printed(&env, &day));
    assert!(!env.path("mail").exists());
    env.cmd().arg("--config").arg(&cfg).args(["digest", "--day", &day]).assert().success();
    let mail = std::fs::read_to_string(env.path("mail")).unwrap();
    assert!(mail.starts_with("To: ops@example.org\nFrom: xs@example.org\n"), "{mail}");
}
