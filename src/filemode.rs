//! Modes of the files and directories xferstats creates.
//!
//! A database holds user names and file paths, and client addresses in
//! `--ip-mode full`: a new one is private, mode 0600 in directories created
//! 0700 (less if the umask is stricter), so other local users cannot read
//! it. `--db-mode` chooses another mode, 0640 say, for a group of readers
//! (a Grafana host, an auditor); a mode given that way is applied exactly,
//! umask or not, as `mkdir -m` does. Directories get the mode plus the
//! search bit wherever it grants reading (0640 → 0750).
//!
//! SQLite creates the `-wal`, `-shm` and `-journal` companions of a
//! database with the database file's own mode, so creating the file with
//! its mode before SQLite opens it covers them all.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::ConfigError;

/// The mode of new database files and directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbMode {
    bits: u32,
    /// Given by the user: applied exactly, not filtered by the umask.
    explicit: bool,
}

impl Default for DbMode {
    /// 0600, filtered by the umask.
    fn default() -> Self {
        DbMode { bits: 0o600, explicit: false }
    }
}

impl std::str::FromStr for DbMode {
    type Err = ConfigError;

    /// An octal mode such as `0640` or `640`: permission bits only, and the
    /// owner must be able to read and write (xferstats writes the file).
    fn from_str(s: &str) -> Result<DbMode, ConfigError> {
        let bad = |reason: &str| ConfigError::DbMode { value: s.to_string(), reason: reason.to_string() };
        let digits = s.trim();
        if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(bad("not an octal mode like 0640"));
        }
        let bits = u32::from_str_radix(digits, 8).map_err(|_| bad("not an octal mode like 0640"))?;
        if bits > 0o777 {
            return Err(bad("only permission bits (at most 0777)"));
        }
        if bits & 0o600 != 0o600 {
            return Err(bad("the owner needs read and write permission (0600)"));
        }
        Ok(DbMode { bits, explicit: true })
    }
}

impl std::fmt::Display for DbMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o}", self.bits)
    }
}

impl DbMode {
    /// The mode of new files.
    pub fn file_mode(self) -> u32 {
        self.bits
    }

    /// The mode of new directories: the file mode plus the search bit of
    /// every class that may read (0600 → 0700, 0640 → 0750).
    pub fn dir_mode(self) -> u32 {
        let b = self.bits;
        b | ((b & 0o444) >> 2)
    }

    /// Creates `dir` and its missing parents with [`DbMode::dir_mode`];
    /// existing directories are left as they are.
    pub fn create_dir_all(self, dir: &Path) -> io::Result<()> {
        let mut missing = Vec::new();
        for p in dir.ancestors().take_while(|p| !p.as_os_str().is_empty()) {
            match fs::metadata(p) {
                Ok(m) if m.is_dir() => break,
                Ok(_) => {
                    return Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{} is a file", p.display())))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(p),
                Err(e) => return Err(e),
            }
        }
        for d in missing.into_iter().rev() {
            match fs::DirBuilder::new().mode(self.dir_mode()).create(d) {
                Ok(()) if self.explicit => fs::set_permissions(d, fs::Permissions::from_mode(self.dir_mode()))?,
                Ok(()) => {}
                // Created meanwhile by another process.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Creates the empty file `path` with [`DbMode::file_mode`]; returns
    /// false, changing nothing, if it exists already.
    pub fn create_file(self, path: &Path) -> io::Result<bool> {
        match fs::OpenOptions::new().write(true).create_new(true).mode(self.bits).open(path) {
            Ok(f) => {
                if self.explicit {
                    f.set_permissions(fs::Permissions::from_mode(self.bits))?;
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn parses_octal_permission_modes() {
        assert_eq!("0640".parse::<DbMode>().unwrap().file_mode(), 0o640);
        assert_eq!("644".parse::<DbMode>().unwrap().file_mode(), 0o644);
        assert_eq!("0600".parse::<DbMode>().unwrap().to_string(), "0600");
        for bad in ["", "0x640", "0648", "rw-r-----", "4640", "01777", "0440", "0200", "00640"] {
            assert!(bad.parse::<DbMode>().is_err(), "{bad}");
        }
        let e = "0440".parse::<DbMode>().unwrap_err().to_string();
        assert_eq!(e, "--db-mode '0440': the owner needs read and write permission (0600)");
    }

    #[test]
    fn directories_get_search_bits_where_reading_is_allowed() {
        assert_eq!(DbMode::default().dir_mode(), 0o700);
        assert_eq!("0640".parse::<DbMode>().unwrap().dir_mode(), 0o750);
        assert_eq!("0644".parse::<DbMode>().unwrap().dir_mode(), 0o755);
        assert_eq!("0660".parse::<DbMode>().unwrap().dir_mode(), 0o770);
        assert_eq!("0620".parse::<DbMode>().unwrap().dir_mode(), 0o720);
    }

    #[test]
    fn creates_missing_directories_and_new_files_only() {
        let t = tempfile::tempdir().unwrap();
        let mode: DbMode = "0640".parse().unwrap();
        let parent = mode_of(t.path());
        let deep = t.path().join("a/b/c");
        mode.create_dir_all(&deep).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode_of(&t.path().join(d)), 0o750, "{d}");
        }
        // The existing parent keeps its mode.
        assert_eq!(mode_of(t.path()), parent);
        let f = deep.join("x.db");
        assert!(mode.create_file(&f).unwrap());
        assert_eq!(mode_of(&f), 0o640);
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!mode.create_file(&f).unwrap());
        assert_eq!(mode_of(&f), 0o600);
        // Relative paths and the current directory.
        DbMode::default().create_dir_all(Path::new("")).unwrap();
        // A file in the way.
        let e = mode.create_dir_all(&f).unwrap_err();
        assert_eq!(e.to_string(), format!("{} is a file", f.display()));
        let e = mode.create_dir_all(&f.join("sub")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotADirectory);
    }
}
