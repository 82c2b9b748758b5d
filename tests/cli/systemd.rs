//! What the Debian package ships besides the binary: the systemd units of
//! dist/systemd (hardened: `systemd-analyze security --offline=true`
//! exposure ≤ 2.0 each, also the digest's with its sendmail drop-in;
//! `systemd-analyze verify` clean), the configuration file
//! dist/xferstats.toml (valid), the man pages and shell completions the
//! binary generates.

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
    exposure_of(&[unit.as_os_str()]).0
}

/// The overall exposure `systemd-analyze security --offline=true ARGS`
/// gives, and the whole report.
fn exposure_of(args: &[&std::ffi::OsStr]) -> (f64, String) {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .args(args)
        .output()
        .expect("systemd-analyze runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for"))
        .unwrap_or_else(|| panic!("no exposure for {args:?}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    let value = line.rsplit_once(": ").and_then(|(_, v)| v.split_whitespace().next()).unwrap();
    (value.parse().unwrap_or_else(|_| panic!("exposure in {line:?}")), text)
}

const SERVICES: [&str; 3] = ["xferstats-ingest.service", "xferstats-follow.service", "xferstats-digest.service"];

#[test]
fn service_units_run_as_the_package_user_with_a_state_directory() {
    for name in SERVICES {
        let unit = std::fs::read_to_string(dist().join("systemd").join(name)).unwrap();
        // The digest reads the store, not the logs: not in group adm.
        let adm = name != "xferstats-digest.service";
        assert_eq!(unit.contains("SupplementaryGroups=adm"), adm, "{name}");
        for line in [
            "User=xferstats",
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
    // The morning digest: yesterday's, at 07:00 (within 10 minutes), a
    // missed run made up at boot.
    let timer = std::fs::read_to_string(dist().join("systemd/xferstats-digest.timer")).unwrap();
    for line in ["OnCalendar=*-*-* 07:00:00", "RandomizedDelaySec=10min", "Persistent=true", "WantedBy=timers.target"] {
        assert!(timer.lines().any(|l| l == line), "xferstats-digest.timer lacks {line}");
    }
    let unit = std::fs::read_to_string(dist().join("systemd/xferstats-digest.service")).unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/bin/xferstats --config /etc/xferstats/xferstats.toml digest --day yesterday\n")
    );
    assert!(unit.contains("\nEnvironmentFile=-/etc/default/xferstats\n") && !unit.contains("[Install]"), "{unit}");
}

/// The units as `systemd-analyze verify` checks them: copies in `dir` whose
/// ExecStart runs the binary under test (the installed /usr/bin/xferstats
/// may be missing or older).
fn units_for_verify(dir: &Path) -> Vec<PathBuf> {
    let bin = assert_cmd::cargo::cargo_bin("xferstats");
    let mut units = Vec::new();
    for e in std::fs::read_dir(dist().join("systemd")).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".service") || name.ends_with(".timer") {
            let text = std::fs::read_to_string(&path).unwrap().replace("/usr/bin/xferstats", bin.to_str().unwrap());
            std::fs::write(dir.join(&name), text).unwrap();
            units.push(dir.join(name));
        }
    }
    units.sort();
    units
}

#[test]
fn units_pass_systemd_analyze_verify() {
    if !systemd_analyze() {
        return;
    }
    let env = Env::new();
    let units = units_for_verify(env.dir.path());
    assert_eq!(units.len(), 5, "{units:?}");
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&units).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
}

/// The drop-in for mail through Postfix (shipped as an example) relaxes
/// what postdrop needs and nothing else: the exposure stays ≤ 2.0, above
/// the unit's own.
#[test]
fn the_sendmail_drop_in_keeps_the_digest_unit_hardened() {
    if !systemd_analyze() {
        return;
    }
    let env = Env::new();
    let root = env.path("root");
    let system = root.join("etc/systemd/system");
    std::fs::create_dir_all(system.join("xferstats-digest.service.d")).unwrap();
    std::fs::copy(dist().join("systemd/xferstats-digest.service"), system.join("xferstats-digest.service")).unwrap();
    let mut root_arg = std::ffi::OsString::from("--root=");
    root_arg.push(&root);
    let unit: &std::ffi::OsStr = "xferstats-digest.service".as_ref();
    let base = exposure_of(&[&root_arg, unit]);
    std::fs::copy(
        dist().join("systemd/xferstats-digest-sendmail.conf"),
        system.join("xferstats-digest.service.d/sendmail.conf"),
    )
    .unwrap();
    let (relaxed, report) = exposure_of(&[&root_arg, unit]);
    assert_eq!(base.0, exposure(&dist().join("systemd/xferstats-digest.service")));
    assert!(relaxed > base.0 && relaxed <= MAX_EXPOSURE, "{} → {relaxed}", base.0);
    // What it relaxes shows in the report.
    for item in ["✗ NoNewPrivileges=", "✗ RestrictAddressFamilies=~AF_NETLINK"] {
        assert!(report.lines().any(|l| l.starts_with(item)), "{item}: {report}");
        assert!(!base.1.lines().any(|l| l.starts_with(item)), "{item}: {}", base.1);
    }
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
