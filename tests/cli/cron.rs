//! A scheduled run stays quiet: plain text into a pipe (no ANSI colour),
//! the missing-GeoIP warning once per state directory, nothing about an
//! input without new lines unless `-v` asks.

use std::os::unix::fs::PermissionsExt;

use crate::util::{fixture, stderr, Env, INGEST};

/// `ingest ARGS…` with `XFERSTATS_GEOIP` unset (so `auto`) and `NO_COLOR`
/// unset, stderr into a pipe.
fn ingest_auto_geoip(env: &Env, args: &[&str]) -> assert_cmd::assert::Assert {
    let mut c = env.cmd();
    c.env_remove("XFERSTATS_GEOIP").env_remove("NO_COLOR").args(INGEST).args(args);
    c.assert()
}

/// True when a GeoIP database sits at one of the `auto` paths (then `auto`
/// finds it and there is no warning to test), said loudly.
fn geoip_installed() -> bool {
    let found = xferstats::enrich::geoip::GeoDb::find_default();
    if let Some(p) = &found {
        eprintln!("SKIPPED: {} exists, so --geoip auto finds a database and warns about nothing", p.display());
    }
    found.is_some()
}

const WARNING: &str = "no GeoIP database found";

#[test]
fn stderr_into_a_pipe_has_no_colour() {
    if geoip_installed() {
        return;
    }
    let env = Env::new();
    let log = fixture("rsync/default-logfile.log");
    let err = stderr(&ingest_auto_geoip(&env, &[log.to_str().unwrap()]).success());
    assert!(err.contains(&format!("WARN {WARNING}")), "{err}");
    assert!(!err.contains('\x1b'), "{err:?}");
}

#[test]
fn the_geoip_warning_is_given_once_per_state_directory() {
    if geoip_installed() {
        return;
    }
    let env = Env::new();
    let log = fixture("rsync/default-logfile.log");
    let log = log.to_str().unwrap();
    let marker = env.state_dir().join("geoip-warned");

    // -q shows no warning, so it leaves no marker either.
    let err = stderr(&ingest_auto_geoip(&env, &["-q", log]).success());
    assert_eq!(err, "");
    assert!(!marker.exists());

    let err = stderr(&ingest_auto_geoip(&env, &[log]).success());
    assert_eq!(err.matches(WARNING).count(), 1, "{err}");
    assert!(err.contains("(said once; -v repeats it)"), "{err}");
    let mode = std::fs::metadata(&marker).expect("marker left").permissions().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "marker mode {mode:o}");

    let err = stderr(&ingest_auto_geoip(&env, &[log]).success());
    assert!(!err.contains(WARNING), "{err}");

    let err = stderr(&ingest_auto_geoip(&env, &["-v", log]).success());
    assert_eq!(err.matches(WARNING).count(), 1, "{err}");
    assert!(!err.contains("WARN"), "{err}");
}

#[test]
fn an_input_with_nothing_new_is_listed_only_with_v() {
    let env = Env::new();
    let log = env.write("rsyncd.log", &std::fs::read(fixture("rsync/default-logfile.log")).unwrap());
    let log = log.to_str().unwrap();
    env.ingest(&[log]).success();

    let err = stderr(&env.ingest(&[log]).success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("ingested 1 file(s), 0 lines "), "{err}");
    assert!(!err.contains("rsyncd.log"), "{err}");

    let err = stderr(&env.ingest(&["-v", log]).success());
    assert!(err.contains("rsyncd.log: rsyncd, 0 lines, resumed at byte "), "{err}");
    assert!(err.contains(": already imported, nothing new"), "{err}");
}
