//! What the Debian package ships besides the binary: the systemd units of
//! dist/systemd (hardened: `systemd-analyze security --offline=true`
//! exposure ≤ 2.0 each), the configuration file dist/xferstats.toml (valid),
//! the man pages and shell completions the binary generates.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::Env;

/// The highest exposure a shipped service unit may have (Vector's hardened
/// unit scores 2.2).
const MAX_EXPOSURE: f64 = 2.0;

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist")
}

/// Whether `systemd-analyze` runs here; without it the unit check is
/// skipped unless `XFERSTATS_REQUIRE_SYSTEMD` is set (CI sets it).
fn systemd_analyze() -> bool {
    let present = Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("XFERSTATS_REQUIRE_SYSTEMD").is_none(),
            "XFERSTATS_REQUIRE_SYSTEMD is set but systemd-analyze does not run"
        );
        eprintln!("SKIPPED: systemd-analyze is not installed");
    }
    present
}

/// The overall exposure `systemd-analyze security --offline=true` gives
/// the unit file `unit`.
fn exposure(unit: &Path) -> f64 {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .output()
        .expect("systemd-analyze runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("Overall exposure level for")).unwrap_or_else(|| {
        panic!("no exposure for {}: {text}{}", unit.display(), String::from_utf8_lossy(&out.stderr))
    });
    let value = line.rsplit_once(": ").and_then(|(_, v)| v.split_whitespace().next()).unwrap();
    value.parse().unwrap_or_else(|_| panic!("exposure in {line:?}"))
}

#[test]
fn shipped_service_units_have_an_exposure_of_at_most_2() {
    if !systemd_analyze() {
        return;
    }
    for name in ["xferstats-ingest.service", "xferstats-follow.service"] {
        let e = exposure(&dist().join("systemd").join(name));
        assert!(e <= MAX_EXPOSURE, "{name}: exposure {e} > {MAX_EXPOSURE}");
    }
}

#[test]
fn service_units_run_as_the_package_user_with_a_state_directory() {
    for name in ["xferstats-ingest.service", "xferstats-follow.service"] {
        let unit = std::fs::read_to_string(dist().join("systemd").join(name)).unwrap();
        for line in [
            "User=xferstats",
            "SupplementaryGroups=adm",
            "StateDirectory=xferstats",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "--config /etc/xferstats/xferstats.toml",
        ] {
            assert!(unit.contains(line), "{name} lacks {line}");
        }
    }
    let timer = std::fs::read_to_string(dist().join("systemd/xferstats-ingest.timer")).unwrap();
    assert!(timer.contains("OnCalendar=hourly") && timer.contains("Persistent=true"), "{timer}");
}

#[test]
fn the_shipped_configuration_file_is_valid() {
    let env = Env::new();
    let a = env
        .cmd_with_key_file()
        .env("XFERSTATS_CONFIG", dist().join("xferstats.toml"))
        .args(["config", "check"])
        .assert()
        .success();
    let out = String::from_utf8(a.get_output().stdout.clone()).unwrap();
    assert!(out.contains("path = \"/var/log/rsyncd.log*\""), "{out}");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let env = Env::new();
    for (shell, marker) in
        [("bash", "complete -F _xferstats"), ("zsh", "#compdef xferstats"), ("fish", "complete -c xferstats")]
    {
        let a = env.cmd_with_key_file().args(["completions", shell]).assert().success();
        let out = String::from_utf8(a.get_output().stdout.clone()).unwrap();
        assert!(out.contains(marker) && out.contains("ingest"), "{shell}: {out}");
        assert!(out.contains("follow") && out.contains("status") && out.contains("rotate-wait"), "{shell}: {out}");
    }
    env.cmd_with_key_file().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn man_pages_for_the_command_and_every_subcommand() {
    let env = Env::new();
    let dir = env.path("man");
    env.cmd_with_key_file().arg("man-pages").arg(&dir).assert().success();
    let mut pages: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    pages.sort();
    for page in [
        "xferstats.1",
        "xferstats-ingest.1",
        "xferstats-events.1",
        "xferstats-report.1",
        "xferstats-config-check.1",
        "xferstats-completions.1",
        "xferstats-follow.1",
        "xferstats-status.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page} not in {pages:?}");
    }
    assert!(!pages.iter().any(|p| p.contains("man-pages") || p.contains("help")), "{pages:?}");
    let main = std::fs::read_to_string(dir.join("xferstats.1")).unwrap();
    assert!(main.contains(".TH xferstats 1") && main.contains("ingest"), "{main}");
}

#[test]
fn the_debian_changelog_is_at_the_crate_version() {
    let changelog = std::fs::read_to_string(dist().join("debian/changelog")).unwrap();
    let first = changelog.lines().next().unwrap();
    let want = format!("xferstats ({}-1) ", env!("CARGO_PKG_VERSION"));
    assert!(first.starts_with(&want), "dist/debian/changelog starts {first:?}, not {want:?}: add an entry");
}
