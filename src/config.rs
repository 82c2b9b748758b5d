//! Validated configuration shared by the subcommands: where the store is,
//! which host the logs come from.

pub mod file;

use std::path::PathBuf;

use crate::error::ConfigError;
pub use crate::sinks::postgres::PgSpec;

pub use crate::sinks::influx::spec::{InfluxApi, InfluxSpec, DEFAULT_DB as INFLUX_DEFAULT_DB};

/// Environment variable naming the store (same syntax as `--db`).
pub const DB_ENV: &str = "XFERSTATS_DB";
/// Environment variable naming the state directory (`--state-dir`).
pub const STATE_DIR_ENV: &str = "XFERSTATS_STATE_DIR";

/// A store location.
#[derive(Debug, Clone)]
pub enum StoreSpec {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(Box<PgSpec>),
    /// An InfluxDB server (1.x, 2.x or 3.x) plus its local state file.
    Influx(Box<InfluxSpec>),
}

impl PartialEq for StoreSpec {
    fn eq(&self, other: &StoreSpec) -> bool {
        match (self, other) {
            (StoreSpec::Sqlite(a), StoreSpec::Sqlite(b)) => a == b,
            (StoreSpec::Postgres(a), StoreSpec::Postgres(b)) => a.describe == b.describe,
            (StoreSpec::Influx(a), StoreSpec::Influx(b)) => a == b,
            _ => false,
        }
    }
}

impl StoreSpec {
    /// Parses `sqlite:PATH`, `sqlite://PATH`, a bare path,
    /// `postgres://…`/`postgresql://…`, or `postgres:` (libpq `PG*`
    /// environment variables), `influxdb://…`/`influxdb2://…` (or
    /// `influxdb:`/`influxdb2:` from the environment, see [`InfluxSpec`]).
    pub fn parse(s: &str) -> Result<StoreSpec, ConfigError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(ConfigError::Store(s.to_string()));
        }
        if t.starts_with("postgres://") || t.starts_with("postgresql://") {
            return Ok(StoreSpec::Postgres(Box::new(PgSpec::parse(Some(t), |k| std::env::var(k).ok())?)));
        }
        if t == "postgres:" || t == "postgresql:" {
            return Ok(StoreSpec::Postgres(Box::new(PgSpec::parse(None, |k| std::env::var(k).ok())?)));
        }
        if t.starts_with("influxdb:") || t.starts_with("influxdb2:") {
            return Ok(StoreSpec::Influx(Box::new(InfluxSpec::parse(t, |k| std::env::var(k).ok())?)));
        }
        if let Some(rest) = t.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(ConfigError::Store(s.to_string()));
            }
            return Ok(StoreSpec::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = t.split_once("://") {
            if !scheme.contains('/') {
                return Err(ConfigError::Store(scheme.to_string() + "://…"));
            }
        }
        Ok(StoreSpec::Sqlite(PathBuf::from(t)))
    }

    /// The default: `xferstats.db` in the state directory.
    pub fn default_location(state_dir: &std::path::Path) -> StoreSpec {
        StoreSpec::Sqlite(state_dir.join("xferstats.db"))
    }

    /// Display form (never holds a password).
    pub fn describe(&self) -> String {
        match self {
            StoreSpec::Sqlite(p) => format!("sqlite:{}", p.display()),
            StoreSpec::Postgres(p) => p.describe.clone(),
            StoreSpec::Influx(i) => i.describe.clone(),
        }
    }

    /// Resolves locations relative to the state directory (the InfluxDB
    /// store's local state file).
    pub fn with_state_dir(mut self, state_dir: &std::path::Path) -> StoreSpec {
        if let StoreSpec::Influx(i) = &mut self {
            i.default_state(state_dir);
        }
        self
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// The default state directory (default database, generated host key):
/// `/var/lib/xferstats` for root, else `$XDG_DATA_HOME/xferstats`
/// (`~/.local/share/xferstats`).
pub fn default_dir() -> PathBuf {
    if is_root() {
        return PathBuf::from("/var/lib/xferstats");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("xferstats");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/xferstats"),
        None => PathBuf::from(".xferstats"),
    }
}

/// This machine's host name, the default server host of log files that do
/// not name one.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_specs() {
        assert_eq!(StoreSpec::parse("sqlite:/a/b.db").unwrap(), StoreSpec::Sqlite("/a/b.db".into()));
        assert_eq!(StoreSpec::parse("sqlite:///a/b.db").unwrap(), StoreSpec::Sqlite("/a/b.db".into()));
        assert_eq!(StoreSpec::parse("x.db").unwrap(), StoreSpec::Sqlite("x.db".into()));
        assert!(StoreSpec::parse("mysql://u:p@h/db").is_err());
        assert!(StoreSpec::parse("").is_err());
    }

    #[test]
    fn postgres_specs_never_show_the_password() {
        let s = StoreSpec::parse("postgres://stats:hunter2@db.example:5433/xfer").unwrap();
        assert_eq!(s.describe(), "postgres://stats@db.example:5433/xfer");
        assert!(!format!("{s:?}").contains("hunter2"));
        let s = StoreSpec::parse("postgresql://stats@127.0.0.1/xfer?connect_timeout=3").unwrap();
        assert_eq!(s.describe(), "postgres://stats@127.0.0.1:5432/xfer");
        let env = |k: &str| match k {
            "PGHOST" => Some("10.0.0.5".to_string()),
            "PGPORT" => Some("6543".to_string()),
            "PGUSER" => Some("ing".to_string()),
            "PGPASSWORD" => Some("pw-secret".to_string()),
            "PGDATABASE" => Some("stats".to_string()),
            _ => None,
        };
        let p = PgSpec::parse(None, env).unwrap();
        assert_eq!(p.describe, "postgres://ing@10.0.0.5:6543/stats");
        assert_eq!(p.config.get_password(), Some(&b"pw-secret"[..]));
        let e = StoreSpec::parse("postgres://u:topsecret@h:notaport/db").unwrap_err().to_string();
        assert!(!e.contains("topsecret"), "{e}");
    }
}
