//! Helpers: a temp dir per test, the binary with a test database, JSON
//! reports, compressed copies.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// The host key of the tests.
pub const TEST_HOST_KEY: &str = "xferstats-test-host-key-0123456789";

pub struct Env {
    pub dir: tempfile::TempDir,
    /// `--db` of the commands: the SQLite file `db()` unless set.
    store: Option<OsString>,
    /// `XFERSTATS_TEST_PART_EVENTS` of the commands, if set.
    part_events: Option<usize>,
}

/// `ingest` with the options every test uses.
pub const INGEST: [&str; 7] = ["ingest", "--timezone", "UTC", "--server-host", "vm", "--progress", "never"];

impl Env {
    pub fn new() -> Env {
        Env { dir: tempfile::tempdir().expect("temp dir"), store: None, part_events: None }
    }

    /// An environment whose commands use `--db store` (a PostgreSQL or
    /// InfluxDB URL) instead of the SQLite file.
    pub fn with_store(store: impl Into<OsString>) -> Env {
        Env::new().using(store)
    }

    /// This environment with `--db store`.
    pub fn using(self, store: impl Into<OsString>) -> Env {
        Env { store: Some(store.into()), ..self }
    }

    /// This environment with transactions taken in parts of `n` events by
    /// the stores that take them in parts (`XFERSTATS_TEST_PART_EVENTS`).
    pub fn in_parts(self, n: usize) -> Env {
        Env { part_events: Some(n), ..self }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The SQLite file of the test (the store of `cmd` unless `with_store`).
    pub fn db(&self) -> PathBuf {
        self.path("x.db")
    }

    /// The state directory of the test (host key).
    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// `xferstats` with UTC, the test's own state directory, no GeoIP
    /// unless asked for, and no inherited xferstats or InfluxDB variable.
    fn bare(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("xferstats"));
        for var in [
            "XFERSTATS_DB",
            "XFERSTATS_TEST_CRASH",
            "XFERSTATS_HOST_KEY",
            "XFERSTATS_IP_MODE",
            "XFERSTATS_TEST_UNKEYED_IDS",
            "XFERSTATS_TEST_TODAY",
            "XFERSTATS_TEST_PART_EVENTS",
            "XFERSTATS_TEST_BLIND_ROLLUPS",
            "INFLUX_TOKEN",
        ] {
            c.env_remove(var);
        }
        if let Some(n) = self.part_events {
            c.env("XFERSTATS_TEST_PART_EVENTS", n.to_string());
        }
        c.env("TZ", "UTC").env("XFERSTATS_STATE_DIR", self.state_dir()).env("XFERSTATS_GEOIP", "off");
        // No configuration file, not even an installed /etc/xferstats one.
        c.env("XFERSTATS_CONFIG", "");
        c
    }

    /// `bare` with the test store and one host key for all tests (so
    /// client hashes compare across databases; `cmd_with_key_file` tests
    /// the generated key).
    fn with_db(&self) -> std::process::Command {
        match &self.store {
            Some(s) => self.on(s),
            None => self.on(self.db().as_os_str()),
        }
    }

    /// `bare` with `--db store` and the tests' host key.
    fn on(&self, store: &OsStr) -> std::process::Command {
        let mut c = self.bare();
        c.env("XFERSTATS_HOST_KEY", TEST_HOST_KEY).arg("--db").arg(store);
        c
    }

    /// `cmd` with `--db store` instead of the test's store.
    pub fn cmd_on(&self, store: impl AsRef<OsStr>) -> Command {
        Command::from_std(self.on(store.as_ref()))
    }

    /// `xferstats --db <store>` with the test environment (see `bare` and
    /// `with_db`).
    pub fn cmd(&self) -> Command {
        Command::from_std(self.with_db())
    }

    /// `cmd` as a plain `std::process::Command` (for servers the test
    /// spawns, pipes of the test's own).
    pub fn std_cmd(&self) -> std::process::Command {
        self.with_db()
    }

    /// Like `cmd`, with the host key from the state directory's key file,
    /// and without `--db`.
    pub fn cmd_with_key_file(&self) -> Command {
        Command::from_std(self.bare())
    }

    /// Runs `ingest --timezone UTC --server-host vm ARGS…`.
    pub fn ingest(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        let mut c = self.cmd();
        c.args(INGEST);
        c.args(args);
        c.assert()
    }

    /// A background `xferstats --db <store> ingest --timezone UTC
    /// --server-host vm ARGS…` process with the test environment (for
    /// kills and concurrency); stdout discarded, stderr piped.
    pub fn spawn_ingest(&self, args: &[&std::ffi::OsStr]) -> std::process::Child {
        self.with_db()
            .args(INGEST)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn xferstats")
    }

    /// A background `xferstats --db <store> -v follow --timezone UTC
    /// --server-host vm ARGS…` with the test environment; its stderr is
    /// appended to `stderr_to`.
    pub fn spawn_follow(&self, args: &[&std::ffi::OsStr], stderr_to: &Path) -> Running {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(stderr_to).expect("follow log");
        Running(
            self.with_db()
                .args(["-v", "follow", "--timezone", "UTC", "--server-host", "vm"])
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn xferstats follow"),
        )
    }

    /// The standard output of a successful `report ARGS…`.
    pub fn report(&self, args: &[&str]) -> Vec<u8> {
        let out = self.cmd().arg("report").args(args).output().expect("report runs");
        assert!(out.status.success(), "report {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// `report --format json --by BY` (no `--by` when empty).
    pub fn report_json(&self, by: &str) -> Value {
        let args: &[&str] = if by.is_empty() { &["--format", "json"] } else { &["--format", "json", "--by", by] };
        serde_json::from_slice(&self.report(args)).expect("report is JSON")
    }

    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).expect("write fixture");
        p
    }
}

/// A background process that is killed when dropped, so that a failing
/// test leaves no follower running.
pub struct Running(pub std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

/// The shared real-server samples, when present. CI sets
/// `XFERSTATS_REQUIRE_SAMPLES=1`, which turns a missing folder into a failure.
pub fn realogs() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples/realogs");
    let present = p.join("expected.json").exists();
    required(p, present, "XFERSTATS_REQUIRE_SAMPLES")
}

/// The shared GeoLite2 City database, or `None` (a failure when
/// XFERSTATS_REQUIRE_SAMPLES is set, as in CI).
pub fn geolite() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/geoip/GeoLite2-City.mmdb");
    let present = p.exists();
    required(p, present, "XFERSTATS_REQUIRE_SAMPLES")
}

/// `p` when `present`; else `None` with a SKIPPED line, or a failure when
/// the environment variable `require` is set (as in CI).
pub fn required(p: PathBuf, present: bool, require: &str) -> Option<PathBuf> {
    if present {
        return Some(p);
    }
    if std::env::var_os(require).is_some() {
        panic!("{} is missing but {require} is set", p.display());
    }
    eprintln!("SKIPPED: {} not found (set {require}=1 to require it)", p.display());
    None
}

/// `len` pseudo-random bytes (xorshift, fixed seed: the same every run).
pub fn junk(len: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// A synthetic default-format rsyncd log of `sessions` connections, each
/// with a login and three files, one of the ten anonymous and summary-only.
pub fn synthetic_log(sessions: u32) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..sessions {
        let pid = 1000 + i;
        let t = i / 4;
        let ts =
            format!("2026/05/{:02} {:02}:{:02}:{:02}", 1 + (t / 86_400) % 28, (t / 3600) % 24, (t / 60) % 60, t % 60);
        let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        s += &format!("{ts} [{pid}] connect from UNDETERMINED ({ip})\n");
        if i % 10 == 0 {
            s += &format!("{ts} [{pid}] rsync on pub/dir{i}/ from UNDETERMINED ({ip})\n");
            s += &format!("{ts} [{pid}] sent {} bytes  received 100 bytes  total size 1000\n", 1000 + i);
            continue;
        }
        s += &format!("{ts} [{pid}] rsync to team/dir{i}/ from user{}@UNDETERMINED ({ip})\n", i % 7);
        for f in 0..3 {
            s += &format!(
                "{ts} [{pid}] recv UNDETERMINED [{ip}] team (user{}) dir{i}/file {f}.bin {}\n",
                i % 7,
                100 + f + i
            );
        }
        s += &format!("{ts} [{pid}] sent 10 bytes  received 5000 bytes  total size 4000\n");
    }
    s.into_bytes()
}

/// Totals of `data` imported once into a fresh store, grouped by `by`.
pub fn import_once(data: &[u8], by: &str) -> Value {
    let env = Env::new();
    let p = env.write("once.log", data);
    env.ingest(&[p.to_str().unwrap()]).success();
    env.report_json(by)
}
