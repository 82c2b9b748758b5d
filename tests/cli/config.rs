//! The configuration file (`--config`, `XFERSTATS_CONFIG`): precedence
//! flags, then environment, then file, then defaults; per-input sections
//! that let one run read a default and a custom-format rsyncd log; `config
//! check` (errors with file:line and key, secrets masked).

use std::path::Path;

use crate::realogs::{actual, expected};
use crate::util::{fixture, realogs, stderr, Env};

/// `xferstats` of `env` without `--db` and with `conf` as configuration file.
fn with_config(env: &Env, conf: &Path) -> assert_cmd::Command {
    let mut c = env.cmd_with_key_file();
    c.env("XFERSTATS_CONFIG", conf);
    c
}

/// The `--by host` values of `env`'s store.
fn hosts(env: &Env) -> Vec<String> {
    env.report_json("host").as_array().unwrap().iter().map(|r| r["host"].as_str().unwrap().to_string()).collect()
}

#[test]
fn one_run_reads_a_default_and_a_custom_rsyncd_log_by_their_sections() {
    let Some(root) = realogs() else { return };
    let env = Env::new();
    let conf = env.write(
        "xferstats.toml",
        format!(
            "db = {db:?}\ntimezone = \"UTC\"\nserver_host = \"vm\"\n\n\
             [[input]]\npath = \"{r}/rsyncd-custom.log*\"\nformat = \"rsyncd\"\n\
             rsync_log_format = \"%t %a %h %o %m %u %f %l %b %i\"\n\n\
             [[input]]\npath = \"{r}/rsyncd-default.log*\"\n",
            db = env.db().display().to_string(),
            r = root.join("rsync").display()
        )
        .as_bytes(),
    );
    let a = with_config(&env, &conf).args(["ingest", "--progress", "never"]).assert().success();
    let err = stderr(&a);
    assert!(err.contains("ingested 2 file(s)") && err.contains(" 0 rejected lines"), "{err}");
    let mut want = expected("rsync-default");
    for (key, row) in expected("rsync-custom") {
        let w = want.entry(key).or_default();
        for (k, v) in row {
            *w.entry(k).or_default() += v;
        }
    }
    assert_eq!(actual(&env), want);
}

#[test]
fn a_file_named_on_the_command_line_gets_its_sections_options_unless_a_flag_sets_them() {
    let log = fixture("rsync/default-logfile.log");
    let section = |env: &Env| {
        env.write(
            "c.toml",
            format!("server_host = \"top\"\n[[input]]\npath = \"{}\"\nserver_host = \"section\"\n", log.display())
                .as_bytes(),
        )
    };
    let ingest = |env: &Env, conf: &Path, extra: &[&str]| {
        env.cmd()
            .env("XFERSTATS_CONFIG", conf)
            .args(["ingest", "--progress", "never", "--timezone", "UTC"])
            .args(extra)
            .arg(&log)
            .assert()
            .success();
    };
    let env = Env::new();
    ingest(&env, &section(&env), &[]);
    assert_eq!(hosts(&env), ["section"]);

    let env = Env::new();
    ingest(&env, &section(&env), &["--server-host", "flag"]);
    assert_eq!(hosts(&env), ["flag"]);

    // No section matches: the file's top-level value.
    let env = Env::new();
    let conf = env.write("c.toml", b"server_host = \"top\"\n[[input]]\npath = \"/nowhere/*.log\"\n");
    ingest(&env, &conf, &[]);
    assert_eq!(hosts(&env), ["top"]);
}

#[test]
fn the_store_is_taken_from_flag_then_environment_then_file_then_default() {
    let env = Env::new();
    let (file_db, env_db, flag_db) = (env.path("file.db"), env.path("env.db"), env.path("flag.db"));
    let conf = env.write(
        "c.toml",
        format!("db = {:?}\nstate_dir = {:?}\n", file_db.display().to_string(), env.path("st").display().to_string())
            .as_bytes(),
    );
    let check = |c: &mut assert_cmd::Command| {
        let out = c.args(["config", "check"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let file_only = || {
        let mut c = with_config(&env, &conf);
        c.env_remove("XFERSTATS_STATE_DIR");
        c
    };
    let out = check(&mut file_only());
    assert!(out.contains(&format!("db = {:?}  # file, line 1\n", file_db.display().to_string())), "{out}");
    assert!(
        out.contains(&format!("state_dir = {:?}  # file, line 2\n", env.path("st").display().to_string())),
        "{out}"
    );
    let out = check(file_only().env("XFERSTATS_DB", &env_db));
    assert!(out.contains(&format!("db = {:?}  # environment XFERSTATS_DB\n", env_db.display().to_string())), "{out}");
    let out = check(file_only().env("XFERSTATS_DB", &env_db).arg("--db").arg(&flag_db));
    assert!(out.contains(&format!("db = {:?}  # command line\n", flag_db.display().to_string())), "{out}");
    let out = check(env.cmd_with_key_file().env("XFERSTATS_STATE_DIR", env.path("st2")));
    assert!(out.contains("# configuration file: (none)\n"), "{out}");
    assert!(out.contains("  # default\n") && out.contains("# environment XFERSTATS_STATE_DIR"), "{out}");

    // What runs uses the same order: the environment's store, not the file's.
    file_only().env("XFERSTATS_DB", &env_db).args(["db", "migrate"]).assert().success();
    assert!(env_db.exists() && !file_db.exists());
    file_only().args(["db", "migrate"]).assert().success();
    assert!(file_db.exists());
}

#[test]
fn ip_mode_comes_from_the_file_unless_its_environment_variable_is_set() {
    let log = fixture("rsync/default-logfile.log");
    let clients = |env_mode: Option<&str>| {
        let env = Env::new();
        let conf = env.write("c.toml", b"ip_mode = \"full\"\n");
        let mut c = env.cmd();
        c.env("XFERSTATS_CONFIG", &conf);
        if let Some(m) = env_mode {
            c.env("XFERSTATS_IP_MODE", m);
        }
        c.args(["ingest", "--progress", "never", "--timezone", "UTC"]).arg(&log).assert().success();
        let r = env.report_json("client");
        r.as_array().unwrap().iter().map(|r| r["client"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let full = clients(None);
    assert!(full.iter().any(|c| c == "192.0.2.10"), "{full:?}");
    assert_eq!(clients(Some("truncate")), ["192.0.2.0/24", "198.51.100.0/24", "2001:db8::/48"]);
}

#[test]
fn config_check_names_file_line_and_key_of_an_error() {
    let env = Env::new();
    let conf = env
        .write("bad.toml", b"# ok\ngeoip = \"off\"\n\n[[input]]\npath = \"/var/log/x\"\ntimezone = \"Mars/Olympus\"\n");
    let a = with_config(&env, &conf).args(["config", "check"]).assert().code(2);
    let err = stderr(&a);
    let want = format!("xferstats: error: {}:6: input.timezone: 'Mars/Olympus': not UTC", conf.display());
    assert!(err.starts_with(&want), "{err}");
    // Every subcommand refuses an invalid file, not only `config check`.
    let conf = env.write("unknown.toml", b"db_path = \"/x\"\n");
    let a = with_config(&env, &conf).args(["report"]).assert().code(2);
    let err = stderr(&a);
    assert!(err.contains(&format!("{}:1: db_path: unknown field `db_path`", conf.display())), "{err}");
}

#[test]
fn config_check_masks_passwords_and_tokens() {
    let env = Env::new();
    let conf = env.write("c.toml", b"db = \"postgres://xfer:s3cr3t-pw@127.0.0.1:1/stats\"\n");
    let a = with_config(&env, &conf).args(["config", "check"]).assert().success();
    let out = String::from_utf8(a.get_output().stdout.clone()).unwrap();
    assert!(out.contains("db = \"postgres://xfer:****@127.0.0.1:1/stats\"  # file, line 1"), "{out}");
    let a = with_config(&env, &conf)
        .env("XFERSTATS_DB", "influxdb://stats:t0k3n@127.0.0.1:1/xfer?rp=raw")
        .args(["config", "check"])
        .assert()
        .success();
    let out = String::from_utf8(a.get_output().stdout.clone()).unwrap();
    assert!(
        out.contains("db = \"influxdb://stats:****@127.0.0.1:1/xfer?rp=raw\"  # environment XFERSTATS_DB"),
        "{out}"
    );
    assert!(!out.contains("s3cr3t") && !out.contains("t0k3n"), "{out}");
}

#[test]
fn a_named_file_must_exist_and_an_empty_name_reads_none() {
    let env = Env::new();
    let a = with_config(&env, &env.path("missing.toml")).args(["config", "check"]).assert().code(2);
    assert!(stderr(&a).contains("missing.toml"), "{}", stderr(&a));
    env.cmd_with_key_file().env("XFERSTATS_CONFIG", "").args(["config", "check"]).assert().success();
}

#[test]
fn ingest_without_files_needs_input_sections() {
    let env = Env::new();
    let a = env.cmd().args(["ingest", "--progress", "never"]).assert().code(2);
    assert!(
        stderr(&a).contains("no input: name files on the command line or add [[input]] sections"),
        "{}",
        stderr(&a)
    );
    // Sections whose globs match nothing: nothing to read, not an error.
    let conf = env.write("c.toml", b"[[input]]\npath = \"/nowhere/*.log\"\n");
    let a = env.cmd().env("XFERSTATS_CONFIG", &conf).args(["ingest", "--progress", "never"]).assert().success();
    assert!(stderr(&a).contains("ingested 0 file(s)"), "{}", stderr(&a));
}
