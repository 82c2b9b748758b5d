//! A throwaway PostgreSQL cluster for the tests that need a real server.
//!
//! `cluster()` starts one cluster per test process on first use (initdb into
//! a temp dir, a free loopback port, password authentication over TCP) and
//! shares it between all tests; every test takes its own database with
//! `fresh_db`. An `atexit` handler stops the server and removes the temp dir
//! when the test process exits; clusters left behind by killed test processes
//! are reaped by the next start.
//!
//! Without PostgreSQL binaries (`/usr/lib/postgresql/*/bin/initdb`) the tests
//! are skipped loudly, or fail when `XFERSTATS_REQUIRE_PG` is set (as in CI).
//! As root, the server runs as the `postgres` OS user (`runuser`), since
//! PostgreSQL refuses to run as root.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::util::Env;

/// The password of the superuser `PG_USER` (tests check that it never
/// appears in output).
pub const PG_PASSWORD: &str = "s3cret-Pg-pw-42";

/// The superuser of the cluster.
pub const PG_USER: &str = "xferstats";

const REQUIRE_VAR: &str = "XFERSTATS_REQUIRE_PG";
const INSTALL_ROOT: &str = "/usr/lib/postgresql";
const DIR_PREFIX: &str = "xferstats-pg-";
const OWNER_FILE: &str = "owner.pid";
const START_ATTEMPTS: usize = 5;

extern "C" {
    fn atexit(cb: extern "C" fn()) -> i32;
    fn geteuid() -> u32;
}

/// The cluster of this test process: `Ok(None)` when PostgreSQL is not
/// installed (and not required), `Err` when the start failed.
static CLUSTER: OnceLock<Result<Option<PgCluster>, String>> = OnceLock::new();

/// Counter for `fresh_db` names.
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

pub struct PgCluster {
    bin: PathBuf,
    psql: PathBuf,
    /// Run the PostgreSQL tools as the `postgres` OS user (we are root).
    as_postgres: bool,
    port: u16,
    data: PathBuf,
    log: PathBuf,
    stopped: AtomicBool,
    /// Last field: removed after `Drop::drop` stopped the server.
    dir: tempfile::TempDir,
}

/// The shared cluster, started on first use; `None` (after a loud SKIPPED
/// line on stderr) when PostgreSQL is not installed and
/// `XFERSTATS_REQUIRE_PG` is not set. Panics when the cluster cannot start.
pub fn cluster() -> Option<&'static PgCluster> {
    match CLUSTER.get_or_init(init) {
        Ok(c) => c.as_ref(),
        Err(e) => panic!("PostgreSQL test cluster unavailable: {e}"),
    }
}

fn init() -> Result<Option<PgCluster>, String> {
    let bin = match find_bin_dir() {
        Some(bin) => bin,
        None => {
            if std::env::var_os(REQUIRE_VAR).is_some() {
                return Err(format!("no PostgreSQL binaries ({INSTALL_ROOT}/*/bin/initdb) but {REQUIRE_VAR} is set"));
            }
            // Straight to the stderr handle: `eprintln!` would be captured
            // (and hidden) by the test harness for a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: no PostgreSQL binaries ({INSTALL_ROOT}/*/bin/initdb); install package postgresql \
                 or set {REQUIRE_VAR}=1 to require"
            );
            return Ok(None);
        }
    };
    let cluster = PgCluster::start(bin)?;
    // SAFETY: registers a plain `extern "C" fn` without arguments.
    if unsafe { atexit(stop_at_exit) } != 0 {
        cluster.shutdown();
        return Err("atexit registration failed".into());
    }
    Ok(Some(cluster))
}

extern "C" fn stop_at_exit() {
    if let Some(Ok(Some(c))) = CLUSTER.get() {
        c.shutdown();
        // The static is never dropped, so remove the temp dir here.
        let _ = fs::remove_dir_all(c.dir.path());
    }
}

/// The `bin` directory of the highest installed PostgreSQL version.
fn find_bin_dir() -> Option<PathBuf> {
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in fs::read_dir(INSTALL_ROOT).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(version) = name.split('.').map(str::parse).collect::<Result<Vec<u32>, _>>() else {
            continue;
        };
        let bin = entry.path().join("bin");
        if !["initdb", "pg_ctl", "postgres"].iter().all(|b| bin.join(b).is_file()) {
            continue;
        }
        if best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, bin));
        }
    }
    best.map(|(_, bin)| bin)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { geteuid() == 0 }
}

/// A cluster of the calling test's own, which it may stop and start again
/// (a store outage) without disturbing the shared one; stopped and removed
/// when dropped. `None` as for [`cluster`].
pub fn private() -> Option<PgCluster> {
    let bin = match find_bin_dir() {
        Some(bin) => bin,
        None if std::env::var_os(REQUIRE_VAR).is_some() => panic!("no PostgreSQL binaries but {REQUIRE_VAR} is set"),
        None => {
            let _ = writeln!(std::io::stderr(), "SKIPPED: no PostgreSQL binaries ({INSTALL_ROOT}/*/bin/initdb)");
            return None;
        }
    };
    Some(PgCluster::start(bin).unwrap_or_else(|e| panic!("private PostgreSQL cluster: {e}")))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| format!("local_addr: {e}"))
}

fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `cmd` to completion, `Err` with its output when it fails.
fn run(mut cmd: Command, what: &str) -> Result<Output, String> {
    let out = cmd.output().map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("{what} failed: {}", describe(&out)))
    }
}

/// `bin/tool`, through `runuser -u postgres --` when we are root, in `dir`
/// (readable by the server user) and without inherited libpq variables.
fn tool(bin: &Path, name: &str, as_postgres: bool, dir: &Path) -> Command {
    let mut c = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(name));
        c
    } else {
        Command::new(bin.join(name))
    };
    c.current_dir(dir);
    scrub_env(&mut c);
    c
}

fn scrub_env(c: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            c.env_remove(k);
        }
    }
    c.env("LC_ALL", "C");
}

/// Stops and removes clusters whose test process is gone (killed before
/// its `atexit` handler ran).
fn reap_stale(root: &Path, bin: &Path, as_postgres: bool) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let Some(pid) = fs::read_to_string(dir.join(OWNER_FILE)).ok().and_then(|s| s.trim().parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let data = dir.join("data");
        if data.join("postmaster.pid").exists() {
            let mut c = tool(bin, "pg_ctl", as_postgres, root);
            c.arg("-D").arg(&data).args(["-m", "immediate", "-t", "30", "stop"]);
            let _ = c.output();
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

impl PgCluster {
    fn start(bin: PathBuf) -> Result<PgCluster, String> {
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("id").args(["-u", "postgres"]).output().is_ok_and(|o| o.status.success());
            if !ok {
                return Err("running as root needs the `postgres` OS user (package postgresql)".into());
            }
        }
        // As root the server user must reach the dir: /tmp, not $TMPDIR. A
        // long $TMPDIR would also overflow the socket path (107 bytes).
        let tmp = std::env::temp_dir();
        let root = if as_postgres || tmp.as_os_str().len() > 60 { PathBuf::from("/tmp") } else { tmp };
        reap_stale(&root, &bin, as_postgres);

        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir_in(&root)
            .map_err(|e| format!("temp dir in {}: {e}", root.display()))?;
        fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
            .map_err(|e| format!("write {OWNER_FILE}: {e}"))?;
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        fs::create_dir(&sock).map_err(|e| format!("create {}: {e}", sock.display()))?;
        let pwfile = dir.path().join("pwfile");
        fs::write(&pwfile, format!("{PG_PASSWORD}\n")).map_err(|e| format!("write pwfile: {e}"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("chmod {}: {e}", dir.path().display()))?;
        }
        if as_postgres {
            let mut c = Command::new("chown");
            c.args(["-R", "postgres:"]).arg(dir.path());
            run(c, "chown -R postgres:")?;
        }

        let mut c = tool(&bin, "initdb", as_postgres, dir.path());
        c.arg("-D").arg(&data).args(["--no-locale", "--encoding=UTF8", "--no-sync", "--auth-local=trust"]);
        c.args(["--auth-host=scram-sha-256", "-U", PG_USER]).arg(format!("--pwfile={}", pwfile.display()));
        run(c, "initdb")?;
        let _ = fs::remove_file(&pwfile);

        let psql = [bin.join("psql"), PathBuf::from("/usr/bin/psql")]
            .into_iter()
            .find(|p| p.is_file())
            .ok_or_else(|| format!("no psql in {} nor /usr/bin", bin.display()))?;
        let log = dir.path().join("server.log");
        let mut cluster = PgCluster { bin, psql, as_postgres, port: 0, data, log, stopped: AtomicBool::new(true), dir };

        // The free port can be taken by someone else before the server binds
        // it: try again with another one.
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            cluster.port = free_port()?;
            let opts = cluster.server_opts();
            let mut c = cluster.pg_ctl();
            c.arg("-l").arg(&cluster.log).args(["-w", "-t", "60", "-o", &opts, "start"]);
            let out = c.output().map_err(|e| format!("pg_ctl start: cannot run: {e}"))?;
            if out.status.success() {
                cluster.stopped.store(false, Ordering::SeqCst);
                return Ok(cluster);
            }
            last_log = fs::read_to_string(&cluster.log).unwrap_or_default();
            // Make sure a half-started server is gone before the next try.
            cluster.stopped.store(false, Ordering::SeqCst);
            cluster.shutdown();
            if !last_log.contains("could not bind") && !last_log.contains("could not create any TCP/IP sockets") {
                return Err(format!(
                    "pg_ctl start failed: {}\nserver log {}:\n{last_log}",
                    describe(&out),
                    cluster.log.display()
                ));
            }
            let _ = fs::remove_file(&cluster.log);
        }
        Err(format!("no free port after {START_ATTEMPTS} attempts; last server log:\n{last_log}"))
    }

    fn pg_ctl(&self) -> Command {
        let mut c = tool(&self.bin, "pg_ctl", self.as_postgres, self.dir.path());
        c.arg("-D").arg(&self.data);
        c
    }

    /// Stops the server (immediately, it is throwaway); idempotent.
    fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut c = self.pg_ctl();
        c.args(["-m", "immediate", "-t", "30", "stop"]);
        let _ = c.output();
    }

    /// Stops the server now (an outage; clients are disconnected, committed
    /// transactions kept — the test server does not sync its commits, so an
    /// immediate stop would lose them); [`PgCluster::restart`] ends it.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut c = self.pg_ctl();
        c.args(["-m", "fast", "-t", "30", "stop"]);
        run(c, "pg_ctl stop").unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the server stopped by [`PgCluster::stop`] again, on its port.
    pub fn restart(&self) {
        let mut c = self.pg_ctl();
        c.arg("-l").arg(&self.log).args(["-w", "-t", "60", "-o", &self.server_opts(), "start"]);
        run(c, "pg_ctl start").unwrap_or_else(|e| panic!("{e}"));
        self.stopped.store(false, Ordering::SeqCst);
    }

    /// The server options: loopback on `port`, the socket directory, no
    /// durability (throwaway).
    fn server_opts(&self) -> String {
        format!(
            "-c listen_addresses=127.0.0.1 -p {} -k '{}' -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=50",
            self.port,
            self.dir.path().join("sock").display()
        )
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://xferstats:PASSWORD@127.0.0.1:PORT/db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// `postgres://xferstats@127.0.0.1:PORT/db` (the server asks for the
    /// password: give it by other means, e.g. `PGPASSWORD`).
    pub fn url_without_password(&self, db: &str) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a new empty database `<prefix>_<pid>_<n>` and returns its
    /// name. `prefix` is lowercase ASCII letters, digits and `_`.
    pub fn fresh_db(&self, prefix: &str) -> String {
        assert!(
            !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database prefix {prefix:?}: use lowercase ASCII letters, digits and _"
        );
        let n = NEXT_DB.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}_{}_{n}", std::process::id());
        assert!(name.len() <= 63, "database name {name:?} is longer than 63 bytes");
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        name
    }

    /// Runs `sql` with psql over TCP (password authentication) in `db` and
    /// returns its trimmed output (unaligned, tuples only: `|` between
    /// columns, a line per row). Panics with psql's stderr on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`PgCluster::psql`], with a failure (the server down, say) as the
    /// error text instead of a panic.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let mut c = Command::new(&self.psql);
        scrub_env(&mut c);
        c.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"]);
        c.arg(self.port.to_string()).args(["-U", PG_USER, "-d", db, "-c", sql]);
        c.env("PGPASSWORD", PG_PASSWORD).env("PGCONNECT_TIMEOUT", "10");
        let out = c.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.psql.display()));
        if !out.status.success() {
            return Err(format!(
                "psql -d {db} -c {sql:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Runs the SQL file `file` with psql (as `psql` runs it: `-v NAME=VALUE`
    /// variables, `:name` interpolation) in `db` as the superuser; panics
    /// with psql's stderr on failure.
    pub fn psql_file(&self, db: &str, file: &Path, vars: &[(&str, &str)]) -> String {
        let mut c = Command::new(&self.psql);
        scrub_env(&mut c);
        c.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"]);
        c.arg(self.port.to_string()).args(["-U", PG_USER, "-d", db]);
        for (k, v) in vars {
            c.arg("-v").arg(format!("{k}={v}"));
        }
        c.arg("-f").arg(file);
        c.env("PGPASSWORD", PG_PASSWORD).env("PGCONNECT_TIMEOUT", "10");
        let out = c.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.psql.display()));
        assert!(
            out.status.success(),
            "psql -d {db} -f {} failed ({}): {}",
            file.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A fresh database of the shared cluster and a test environment whose
/// commands use it: the set-up of every PostgreSQL test. Derefs to the
/// [`Env`].
pub struct PgDb {
    pub pg: &'static PgCluster,
    /// The database name.
    pub name: String,
    /// Its URL, with the password.
    pub url: String,
    pub env: Env,
}

/// A new database `<prefix>_<pid>_<n>` (see [`PgCluster::fresh_db`]), or
/// `None` when PostgreSQL is not installed and not required.
pub fn fresh(prefix: &str) -> Option<PgDb> {
    let pg = cluster()?;
    let name = pg.fresh_db(prefix);
    let url = pg.url(&name);
    Some(PgDb { pg, env: Env::with_store(&url), name, url })
}

impl PgDb {
    /// Another fresh database on the same cluster.
    pub fn another(&self, prefix: &str) -> PgDb {
        fresh(prefix).expect("the cluster is running")
    }

    /// `psql` in this database.
    pub fn psql(&self, sql: &str) -> String {
        self.pg.psql(&self.name, sql)
    }
}

impl std::ops::Deref for PgDb {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[test]
fn harness_starts_a_server() {
    let Some(pg) = cluster() else { return };
    let db = pg.fresh_db("harness");
    assert_eq!(pg.psql(&db, "select 1"), "1");
    assert_eq!(pg.psql(&db, "SHOW listen_addresses"), "127.0.0.1");
    assert_eq!(pg.psql(&db, "select current_database()"), db);
    assert_eq!(pg.psql(&db, "SHOW port"), pg.port().to_string());
    assert_ne!(pg.fresh_db("harness"), db, "fresh_db names are unique");
    assert!(pg.url(&db).contains(PG_PASSWORD));
    assert!(pg.url(&db).ends_with(&format!("127.0.0.1:{}/{db}", pg.port())));
    assert!(!pg.url_without_password(&db).contains(PG_PASSWORD));
    // TCP connections need the password (only the Unix socket is trusted).
    let mut c = Command::new(&pg.psql);
    scrub_env(&mut c);
    c.args(["-X", "-w", "-h", "127.0.0.1", "-p", &pg.port().to_string(), "-U", PG_USER, "-d", &db, "-c", "select 1"]);
    let out = c.env("PGPASSFILE", "/nonexistent").output().expect("psql runs");
    assert!(!out.status.success(), "psql without password connected over TCP");
}
