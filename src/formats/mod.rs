//! Log formats: one module per format, each a set of pure functions from
//! bytes to records. Shared line prefixes (syslog, daemon log files) live in
//! [`prefix`]. [`Format`] names the formats and picks one per file from its
//! first lines.

pub mod openssh;
pub mod prefix;
pub mod proftpd;
pub mod proftpd_extended;
pub mod rsync;
pub mod sftpgo;
pub mod syslog;
pub mod template;
pub mod vsftpd;
pub mod xferlog;

use std::fmt;

use crate::error::ConfigError;
use prefix::PrefixParser;

/// A supported log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// rsync daemon log: `log file` or syslog, any `log format`.
    Rsyncd,
    /// xferlog (ProFTPD incl. mod_sftp, vsftpd, Pure-FTPd).
    Xferlog,
    /// vsftpd's own log (`xferlog_std_format=NO`).
    Vsftpd,
    /// SFTPGo JSON log.
    Sftpgo,
    /// OpenSSH sftp-server/internal-sftp and sshd lines in syslog.
    Openssh,
    /// ProFTPD SystemLog and mod_sftp SFTPLog (logins).
    Proftpd,
    /// ProFTPD ExtendedLog with a `LogFormat` (transfers).
    ProftpdExtended,
    /// A syslog file: each line goes to the format of its program (rsyncd,
    /// sshd/sftp-server); other programs are skipped.
    Syslog,
}

impl Format {
    /// Every format, in detection order.
    pub const ALL: &'static [Format] = &[
        Format::Rsyncd,
        Format::Xferlog,
        Format::Vsftpd,
        Format::Sftpgo,
        Format::Openssh,
        Format::Proftpd,
        Format::ProftpdExtended,
        Format::Syslog,
    ];

    /// Name used by `--format` and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Rsyncd => "rsyncd",
            Format::Xferlog => "xferlog",
            Format::Vsftpd => "vsftpd",
            Format::Sftpgo => "sftpgo",
            Format::Openssh => "openssh",
            Format::Proftpd => "proftpd",
            Format::ProftpdExtended => "proftpd-extended",
            Format::Syslog => "syslog",
        }
    }

    /// One-line description for `xferstats formats`.
    pub fn description(self) -> &'static str {
        match self {
            Format::Rsyncd => {
                "rsync daemon log (log file `YYYY/MM/DD HH:MM:SS [pid]`, BSD or RFC 3339 syslog); \
                 default or custom `log format` (--rsync-log-format)"
            }
            Format::Xferlog => {
                "xferlog / wu-ftpd transfer log (ProFTPD TransferLog incl. sftp/scp, vsftpd \
                 xferlog_std_format=YES, Pure-FTPd altlog xferlog)"
            }
            Format::Vsftpd => "vsftpd's own log (xferlog_std_format=NO, with or without log_ftp_protocol=YES)",
            Format::Sftpgo => "SFTPGo JSON log (transfers, Remove, login, connection_failed; 2019 field set too)",
            Format::Openssh => {
                "OpenSSH sftp-server/internal-sftp (-l INFO/VERBOSE) and sshd logins in syslog (auth.log), \
                 BSD or RFC 3339 time stamps"
            }
            Format::Proftpd => "ProFTPD SystemLog (proftpd.log) and mod_sftp SFTPLog (sftp.log): logins",
            Format::ProftpdExtended => {
                "ProFTPD ExtendedLog with its LogFormat (--proftpd-log-format, default %h %l %u %t \"%r\" %s %b): \
                 STOR/RETR/APPE/DELE"
            }
            Format::Syslog => {
                "syslog file with several programs (auth.log, daemon.log, syslog): rsyncd lines read as rsyncd, \
                 sshd/sftp-server/internal-sftp as openssh, other programs skipped"
            }
        }
    }

    /// Looks a format up by name.
    pub fn from_name(name: &str) -> Result<Format, ConfigError> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| ConfigError::Format(name.to_string()))
    }

    /// Picks the format of a file from its first lines: the format most of
    /// the recognisable lines belong to, or `None` when no line matches.
    pub fn detect<'a>(
        lines: impl Iterator<Item = &'a [u8]>,
        prefix: &mut PrefixParser,
        proftpd: &proftpd_extended::ExtendedFormat,
    ) -> Option<Format> {
        let (mut syslog_rsync, mut ext) = (0usize, 0usize);
        let (mut rsync, mut xfer, mut vsf, mut sgo, mut ssh, mut pro) =
            (0usize, 0usize, 0usize, 0usize, 0usize, 0usize);
        for line in lines.take(200) {
            if line.first() == Some(&b'{') {
                if sftpgo::looks_like(line) {
                    sgo += 1;
                }
            } else if xferlog::looks_like(line) {
                xfer += 1;
            } else if vsftpd::looks_like(line) {
                vsf += 1;
            } else if proftpd::parse(line).is_ok() {
                pro += 1;
            } else if proftpd.parse(line).is_some() {
                ext += 1;
            } else if openssh::looks_like_untimed(line) {
                ssh += 1;
            } else if let Some(p) = prefix.parse(line) {
                if rsync::looks_like(p.msg, p.program) {
                    rsync += 1;
                    if p.program.is_some() {
                        syslog_rsync += 1;
                    }
                } else if p.program.is_some_and(openssh::is_openssh_program) {
                    ssh += 1;
                }
            }
        }
        // Syslog files may mix programs: route per line.
        let syslog = ssh > 0 || (syslog_rsync > 0 && syslog_rsync * 2 >= rsync);
        if syslog && ssh + rsync >= xfer.max(vsf).max(sgo).max(pro).max(ext) {
            return Some(Format::Syslog);
        }
        let best = [
            (rsync, Format::Rsyncd),
            (xfer, Format::Xferlog),
            (vsf, Format::Vsftpd),
            (sgo, Format::Sftpgo),
            (ssh, Format::Openssh),
            (pro, Format::Proftpd),
            (ext, Format::ProftpdExtended),
        ]
        .into_iter()
        .max_by_key(|(n, _)| *n)
        .filter(|(n, _)| *n > 0);
        best.map(|(_, f)| f)
    }
}

/// Whether a line is neither a syslog or daemon-log-file line (readable
/// time stamp or not) nor an sshd message without prefix: foreign to the
/// syslog and openssh formats, which skip other programs' lines.
pub fn is_foreign(line: &[u8]) -> bool {
    prefix::prefix_shape(line).is_none() && !openssh::looks_like_untimed(line)
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
