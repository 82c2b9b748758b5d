//! What `follow PATH|GLOB|DIR…` names, looked up again at every scan: a
//! path names itself (whether it exists yet or not), a directory its
//! regular files, a glob (`*`, `?` in the last component) the files of its
//! directory whose names match. Also the directories to watch for changes.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Whether a path's last component holds a wildcard.
pub fn is_glob(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n.as_bytes().iter().any(|&c| c == b'*' || c == b'?'))
}

/// The directory whose entries decide what `pattern` names (and which is
/// watched): the pattern itself for a directory, else its parent.
pub fn watched_dir(pattern: &Path) -> PathBuf {
    if !is_glob(pattern) && pattern.is_dir() {
        return pattern.to_path_buf();
    }
    match pattern.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The files `patterns` name now, each once, in the order found (a
/// directory's and a glob's in name order).
pub fn expand(patterns: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for pat in patterns {
        let glob = is_glob(pat);
        if !glob && !pat.is_dir() {
            if !out.contains(pat) {
                out.push(pat.clone());
            }
            continue;
        }
        let dir = watched_dir(pat);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        // Names as the pattern gave its directory (`x.log`, not `./x.log`).
        let base = if glob { pat.parent().unwrap_or(Path::new("")) } else { pat.as_path() };
        let name_pat = if glob { pat.file_name() } else { None };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
            .filter(|e| match name_pat {
                Some(p) => matches(p.as_bytes(), e.file_name().as_bytes()),
                // A directory: its files, not hidden ones.
                None => !e.file_name().as_bytes().starts_with(b"."),
            })
            .map(|e| base.join(e.file_name()))
            .collect();
        found.sort();
        for p in found {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Shell-style match of a whole name: `*` any run of bytes, `?` one byte,
/// everything else itself. A leading `.` is matched only by a `.`.
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    if name.starts_with(b".") && !pattern.starts_with(b".") {
        return false;
    }
    // Iterative matching with one backtrack point (the last `*`).
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Whether `candidate` is the name of a rotated copy of the file named
/// `followed`: the name with a suffix (`auth.log.1`, `auth.log.2.gz`,
/// `auth.log-20261129`), or its stem — up to the first `.` — followed by
/// `-` or `_` (SFTPGo/lumberjack's `sftpgo-2026-11-29T19-00-00.000.log.gz`
/// of `sftpgo.log`, logrotate's `dateext` with `extension`).
pub fn copy_of(followed: &OsStr, candidate: &OsStr) -> bool {
    let (f, c) = (followed.as_bytes(), candidate.as_bytes());
    if c.len() > f.len() && c.starts_with(f) {
        return true;
    }
    let stem = match memchr::memchr(b'.', &f[1.min(f.len())..]) {
        Some(i) => &f[..i + 1],
        None => f,
    };
    c.len() > stem.len() + 1 && c.starts_with(stem) && matches!(c[stem.len()], b'-' | b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_names() {
        for (p, n, want) in [
            ("*.log", "auth.log", true),
            ("*.log", "auth.log.1", false),
            ("auth.log*", "auth.log.2.gz", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*", ".hidden", false),
            (".*", ".hidden", true),
            ("sftpgo*.log*", "sftpgo-2026-11-29T19-00-00.000.log.gz", true),
            ("*a*b", "xaxxbxb", true),
            ("*a*b", "xaxxbx", false),
        ] {
            assert_eq!(matches(p.as_bytes(), n.as_bytes()), want, "{p} vs {n}");
        }
    }

    #[test]
    fn rotated_copies_are_told_by_name() {
        let copy = |f: &str, c: &str| copy_of(OsStr::new(f), OsStr::new(c));
        for c in ["auth.log.1", "auth.log.2.gz", "auth.log-20261129", "auth-20261129.log"] {
            assert!(copy("auth.log", c), "{c}");
        }
        assert!(copy("sftpgo.log", "sftpgo-2026-11-29T19-00-00.000.log.gz"));
        assert!(copy("xferlog", "xferlog.3"));
        for c in ["auth.log", "auth.db", "author.log", "x.db-wal", "auth-"] {
            assert!(!copy("auth.log", c), "{c}");
        }
    }

    #[test]
    fn a_directory_names_its_files_and_a_glob_its_matches() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.log", "a.log", "a.log.1", ".hidden"] {
            std::fs::write(dir.path().join(n), b"x\n").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let d = dir.path().to_path_buf();
        let names = |v: Vec<PathBuf>| {
            v.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect::<Vec<_>>()
        };
        assert_eq!(names(expand(std::slice::from_ref(&d))), ["a.log", "a.log.1", "b.log"]);
        assert_eq!(names(expand(&[d.join("*.log"), d.join("a.log")])), ["a.log", "b.log"]);
        assert_eq!(names(expand(&[d.join("missing.log")])), ["missing.log"]);
        assert_eq!(watched_dir(&d.join("*.log")), d);
        assert_eq!(watched_dir(&d), d);
    }
}
