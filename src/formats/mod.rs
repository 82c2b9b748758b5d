//! Log formats: one folder per format (`src/formats/<name>/`: its parser,
//! and its decoder, which turns lines into events and joins the lines of a
//! session where the format needs it), each declaring one [`Spec`]. The
//! `registry!` list below names each once — its [`Format`] variant and its
//! folder — and makes [`REGISTRY`]; every list of formats — `--format`
//! names, `xferstats formats`, detection, decoders, the time stamps used to
//! order inputs, the source names stored with events — is read from it. Shared line prefixes (syslog, daemon log
//! files) live in [`prefix`], the two-ended template matcher of the
//! user-configured formats in [`template`].

pub mod prefix;
pub mod template;

use std::fmt;

use crate::error::ConfigError;
use crate::model::{Micros, SourceFormat};
use crate::sessions::AnyDecoder;
use crate::time::Clock;
use prefix::{PrefixParser, Prefixed};
use proftpd_extended::ExtendedFormat;
use rsync::LogFormat;

/// Declares the formats, one line each: the [`Format`] variant (its doc is
/// the variant's) and the folder `src/formats/<folder>/`, whose `SPEC` is
/// the registry entry. The order is the detection order.
macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident => $folder:ident,)*) => {
        $(pub mod $folder;)*

        /// A supported log format (the key of its [`Spec`] in [`REGISTRY`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Format {
            $($(#[$doc])* $variant,)*
        }

        /// Every format, in detection order: a line of a file's head counts
        /// for the first format whose [`Detect::Lines`] test accepts it.
        pub static REGISTRY: &[Spec] = &[$($folder::SPEC,)*];

        impl Format {
            /// Every format, in [`REGISTRY`] order.
            const ALL: &[Format] = &[$(Format::$variant,)*];
        }
    };
}

registry! {
    /// SFTPGo JSON log.
    Sftpgo => sftpgo,
    /// xferlog (ProFTPD incl. mod_sftp, vsftpd, Pure-FTPd).
    Xferlog => xferlog,
    /// vsftpd's own log (`xferlog_std_format=NO`).
    Vsftpd => vsftpd,
    /// ProFTPD SystemLog and mod_sftp SFTPLog (logins).
    Proftpd => proftpd,
    /// ProFTPD ExtendedLog with a `LogFormat` (transfers).
    ProftpdExtended => proftpd_extended,
    /// OpenSSH sftp-server/internal-sftp and sshd lines in syslog.
    Openssh => openssh,
    /// rsync daemon log: `log file` or syslog, any `log format`.
    Rsyncd => rsync,
    /// A syslog file: each line goes to the format of its program (rsyncd,
    /// sshd/sftp-server); other programs are skipped.
    Syslog => syslog,
}

/// One format's registry entry: everything the rest of the program needs
/// to know about it.
#[derive(Clone, Copy)]
pub struct Spec {
    /// Name used by `--format` and in messages, and stored with the
    /// format's events ([`Format::source`]).
    pub name: &'static str,
    /// One-line description for `xferstats formats`.
    pub description: &'static str,
    /// How detection recognises it.
    pub detect: Detect,
    /// The UTC time of a line, if it has one, and the server host it names
    /// (orders inputs oldest first; tells whether an input continues the
    /// saved sessions, see [`crate::sessions`]).
    pub stamp: for<'a> fn(&'a [u8], &Templates<'_>, &mut PrefixParser, &mut Clock) -> Option<Stamp<'a>>,
    /// A fresh decoder.
    pub decoder: fn(&Templates<'_>) -> Box<dyn AnyDecoder>,
}

/// A line's time stamp and the server host it names, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp<'a> {
    /// UTC time.
    pub time: Micros,
    /// Server host of the line (`None`: the ingesting host's name).
    pub host: Option<&'a [u8]>,
}

impl Stamp<'_> {
    /// A stamp of a line that names no host.
    pub fn at(time: Micros) -> Stamp<'static> {
        Stamp { time, host: None }
    }
}

/// How detection recognises a format in a file's first lines.
#[derive(Clone, Copy)]
pub enum Detect {
    /// A line of the format.
    Lines(fn(&mut Probe<'_, '_>) -> bool),
    /// A mix of other formats' lines, decided from the counts (checked
    /// before the single formats).
    Mix(fn(&Tally) -> bool),
}

/// The user-configured line layouts some formats need.
#[derive(Debug, Clone, Copy)]
pub struct Templates<'a> {
    /// rsyncd `log format` of per-file lines.
    pub rsync: &'a LogFormat,
    /// ProFTPD `LogFormat` of ExtendedLog files.
    pub proftpd: &'a ExtendedFormat,
}

/// A line under test by [`Detect::Lines`], its prefix parsed once on demand.
pub struct Probe<'a, 'p> {
    /// The line.
    pub line: &'a [u8],
    /// The configured layouts.
    pub templates: &'p Templates<'p>,
    parser: &'p mut PrefixParser,
    clock: &'p mut Clock,
    prefix: Option<Option<Prefixed<'a>>>,
}

impl<'a> Probe<'a, '_> {
    /// The line's syslog or log-file prefix, if it has one.
    pub fn prefix(&mut self) -> Option<Prefixed<'a>> {
        let (line, parser, clock) = (self.line, &mut *self.parser, &mut *self.clock);
        *self.prefix.get_or_insert_with(|| parser.parse(line, clock))
    }
}

/// Lines of a file's head per format, for [`Detect::Mix`].
pub struct Tally {
    /// Per [`REGISTRY`] entry: lines it recognised.
    lines: Vec<usize>,
    /// Per entry: those of them with a syslog program name.
    with_program: Vec<usize>,
}

impl Tally {
    /// Lines recognised as `f`.
    pub fn lines(&self, f: Format) -> usize {
        self.lines[f.index()]
    }

    /// Lines recognised as `f` that name a syslog program.
    pub fn with_program(&self, f: Format) -> usize {
        self.with_program[f.index()]
    }

    /// The most lines any format outside `except` recognised.
    pub fn most_except(&self, except: &[Format]) -> usize {
        Format::ALL.iter().zip(&self.lines).filter(|(f, _)| !except.contains(f)).map(|(_, &n)| n).max().unwrap_or(0)
    }
}

impl Format {
    /// Position of its entry in [`REGISTRY`].
    fn index(self) -> usize {
        self as usize
    }

    /// Its registry entry.
    pub fn spec(self) -> &'static Spec {
        &REGISTRY[self.index()]
    }

    /// Every format, in detection order.
    pub fn all() -> impl Iterator<Item = Format> {
        Format::ALL.iter().copied()
    }

    /// Name used by `--format` and in messages.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// One-line description for `xferstats formats`.
    pub fn description(self) -> &'static str {
        self.spec().description
    }

    /// Looks a format up by name.
    pub fn from_name(name: &str) -> Result<Format, ConfigError> {
        Format::all().find(|f| f.name().eq_ignore_ascii_case(name)).ok_or_else(|| ConfigError::Format(name.to_string()))
    }

    /// Picks the format of a file from its first lines: a mix format whose
    /// test holds, else the format most of the recognisable lines belong to
    /// (ties go to the earlier entry), or `None` when no line matches.
    pub fn detect<'a>(
        lines: impl Iterator<Item = &'a [u8]>,
        parser: &mut PrefixParser,
        clock: &mut Clock,
        templates: &Templates<'_>,
    ) -> Option<Format> {
        let mut tally = Tally { lines: vec![0; REGISTRY.len()], with_program: vec![0; REGISTRY.len()] };
        for line in lines.take(200) {
            let mut probe = Probe { line, templates, parser: &mut *parser, clock: &mut *clock, prefix: None };
            let hit = REGISTRY.iter().position(|s| match s.detect {
                Detect::Lines(test) => test(&mut probe),
                Detect::Mix(_) => false,
            });
            if let Some(i) = hit {
                tally.lines[i] += 1;
                if probe.prefix.flatten().is_some_and(|p| p.program.is_some()) {
                    tally.with_program[i] += 1;
                }
            }
        }
        if let Some(mix) = Format::all().find(|f| matches!(f.spec().detect, Detect::Mix(test) if test(&tally))) {
            return Some(mix);
        }
        let (i, &n) = tally.lines.iter().enumerate().rev().max_by_key(|(_, &n)| n)?;
        (n > 0).then_some(Format::ALL[i])
    }
}

/// Whether a line is neither a syslog or daemon-log-file line (readable
/// time stamp or not) nor an sshd message without prefix: foreign to the
/// syslog and openssh formats, which skip other programs' lines.
pub fn is_foreign(line: &[u8]) -> bool {
    prefix::prefix_shape(line).is_none() && !openssh::looks_like_untimed(line)
}

impl Format {
    /// The source of the format's events. (A router's lines are stored
    /// under the formats it routes to.)
    pub const fn source(self) -> SourceFormat {
        SourceFormat(self as u8)
    }
}

impl SourceFormat {
    /// Name as stored and accepted by `--format`: its format's name.
    pub fn as_str(self) -> &'static str {
        REGISTRY[self.0 as usize].name
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for SourceFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stores hold the source names of events: they never change.
    #[test]
    fn every_format_has_its_entry_and_its_stored_name() {
        let names: Vec<&str> = Format::all().map(Format::name).collect();
        let stored = ["sftpgo", "xferlog", "vsftpd", "proftpd", "proftpd-extended", "openssh", "rsyncd", "syslog"];
        assert_eq!(names, stored);
        assert_eq!(REGISTRY.len(), Format::ALL.len());
        for f in Format::all() {
            assert_eq!(Format::from_name(f.name()).unwrap(), f);
            assert_eq!(Format::from_name(&f.name().to_uppercase()).unwrap(), f);
            assert_eq!(f.source().as_str(), f.name());
        }
        assert!(Format::from_name("auto").is_err());
    }
}
