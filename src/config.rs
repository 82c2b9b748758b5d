//! Validated configuration shared by the subcommands: where the store is,
//! which host the logs come from.

use std::path::PathBuf;

use crate::error::ConfigError;

/// Environment variable naming the store (same syntax as `--db`).
pub const DB_ENV: &str = "XFERSTATS_DB";
/// Environment variable naming the state directory (`--state-dir`).
pub const STATE_DIR_ENV: &str = "XFERSTATS_STATE_DIR";

/// A store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// An SQLite database file.
    Sqlite(PathBuf),
}

impl StoreSpec {
    /// Parses `sqlite:PATH`, `sqlite://PATH` or a bare path.
    pub fn parse(s: &str) -> Result<StoreSpec, ConfigError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(ConfigError::Store(s.to_string()));
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

    /// Display form (never holds secrets for SQLite).
    pub fn describe(&self) -> String {
        match self {
            StoreSpec::Sqlite(p) => format!("sqlite:{}", p.display()),
        }
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
}
