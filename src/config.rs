//! Configuration shared by the subcommands: the state directory, the
//! environment variables, which host the logs come from. (Where the store
//! is: [`crate::sinks::StoreSpec`].)

pub mod file;

use std::path::PathBuf;

/// Environment variable naming the store (same syntax as `--db`).
pub const DB_ENV: &str = "XFERSTATS_DB";
/// Environment variable naming the state directory (`--state-dir`).
pub const STATE_DIR_ENV: &str = "XFERSTATS_STATE_DIR";

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
