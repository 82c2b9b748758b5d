//! A syslog file (auth.log, daemon.log, syslog) holds lines of many
//! programs. Each line goes to the decoder of its program — rsyncd to the
//! rsync decoder, sshd/sftp-server/internal-sftp to the OpenSSH decoder —
//! and lines of other programs are skipped (counted as lines without
//! events, not as errors). Lines without any prefix are sshd `-E` lines and
//! go to the OpenSSH decoder, which dates them from the syslog's PAM lines.

use serde::{Deserialize, Serialize};

use crate::enrich::hostkey::IdKey;
use crate::formats::openssh::decoder::OpensshDecoder;
use crate::formats::openssh::is_openssh_program;
use crate::formats::prefix::prefix_shape;
use crate::formats::rsync::decoder::RsyncDecoder;
use crate::formats::rsync::LogFormat;
use crate::formats::Format;
use crate::model::Event;
use crate::sessions::{Decoder, LineContext, Outcome};

/// Routes syslog lines by program name.
#[derive(Debug)]
pub struct SyslogDecoder {
    rsync: RsyncDecoder,
    ssh: OpensshDecoder,
}

#[derive(Serialize, Deserialize)]
struct State {
    rsync: String,
    ssh: String,
}

impl SyslogDecoder {
    /// A router whose rsync decoder reads per-file lines with `format`.
    pub fn new(format: LogFormat) -> SyslogDecoder {
        SyslogDecoder { rsync: RsyncDecoder::new(format), ssh: OpensshDecoder::default() }
    }
}

/// Whether a syslog tag is rsync's (`rsyncd`, `rsync`, …).
fn is_rsync_program(prog: &[u8]) -> bool {
    memchr::memmem::find(prog, b"rsync").is_some()
}

impl Decoder for SyslogDecoder {
    fn scope(&self) -> &'static str {
        "syslog"
    }

    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome {
        let Some(p) = cx.prefix.parse(line, &mut cx.clock) else {
            return match prefix_shape(line) {
                // A line of a program read here whose time stamp does not
                // read: an error, not another program's line.
                Some(Some(prog)) if is_rsync_program(prog) || is_openssh_program(prog) => {
                    Outcome::Rejected("unreadable time stamp in the syslog prefix")
                }
                Some(Some(_)) => Outcome::Ignored,
                // A daemon log-file line: the rsync decoder says why.
                Some(None) => self.rsync.line(cx, line, out),
                // An sshd -E file line has no prefix at all.
                None => self.ssh.line(cx, line, out),
            };
        };
        match p.program {
            Some(prog) if is_rsync_program(prog) => self.rsync.line(cx, line, out),
            Some(prog) if is_openssh_program(prog) => self.ssh.line(cx, line, out),
            Some(_) => Outcome::Ignored,
            None => Outcome::Rejected("syslog line without a program name"),
        }
    }

    fn finish(&mut self, ids: &IdKey, out: &mut Vec<Event>) {
        self.rsync.finish(ids, out);
        self.ssh.finish(ids, out);
    }

    fn rekey_ids(&mut self, f: &dyn Fn(crate::model::EventId) -> crate::model::EventId) {
        self.rsync.rekey_ids(f);
    }

    fn save(&self) -> String {
        serde_json::to_string(&State { rsync: self.rsync.save(), ssh: self.ssh.save() }).unwrap_or_default()
    }

    fn restore(&mut self, state: &str) -> Result<(), String> {
        let st: State = serde_json::from_str(state).map_err(|e| e.to_string())?;
        if !st.rsync.is_empty() {
            self.rsync.restore(&st.rsync)?;
        }
        if !st.ssh.is_empty() {
            self.ssh.restore(&st.ssh)?;
        }
        Ok(())
    }
}

/// The registry entry of the syslog format: a file is read as syslog when
/// it holds sshd/sftp-server lines, or when most of its rsyncd lines carry
/// a syslog program name, and these lines outnumber any other format's.
pub const SPEC: crate::formats::Spec = crate::formats::Spec {
    format: Format::Syslog,
    name: "syslog",
    description: "syslog file with several programs (auth.log, daemon.log, syslog): rsyncd lines read as rsyncd, \
                  sshd/sftp-server/internal-sftp as openssh, other programs skipped",
    detect: crate::formats::Detect::Mix(|t| {
        let (ssh, rsync, syslog_rsync) =
            (t.lines(Format::Openssh), t.lines(Format::Rsyncd), t.with_program(Format::Rsyncd));
        let mixed = ssh > 0 || (syslog_rsync > 0 && syslog_rsync * 2 >= rsync);
        mixed && ssh + rsync >= t.most_except(&[Format::Openssh, Format::Rsyncd])
    }),
    first_time: crate::formats::prefix::first_time,
    decoder: |t| Box::new(SyslogDecoder::new(t.rsync.clone())),
    source: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    use crate::formats::rsync::DEFAULT_LOG_FORMAT;

    use crate::time::{days_from_civil, TimeZone};

    #[test]
    fn mixed_syslog_routes_by_program() {
        let mut d = SyslogDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap());
        let mut cx = crate::sessions::test_context(TimeZone::Utc, days_from_civil(2026, 11, 20) * 86_400, "x");
        let mut out = Vec::new();
        let mut outcomes = Vec::new();
        for line in include_bytes!("../../../testdata/syslog/mixed.log").split(|&c| c == b'\n') {
            if !line.is_empty() {
                outcomes.push(d.line(&mut cx, line, &mut out));
            }
        }
        let state = d.save();
        d.finish(&cx.ids.key(), &mut out);
        assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Ignored).count(), 3, "{outcomes:?}");
        assert!(!outcomes.iter().any(|o| matches!(o, Outcome::Rejected(_))));
        let kinds: Vec<String> = out
            .iter()
            .map(|e| match e {
                Event::Transfer(t) => format!("{} {} {}", t.source.as_str(), t.direction.as_str(), t.bytes),
                Event::Login(l) => format!("{} login {} {}", l.source.as_str(), l.user, l.outcome.as_str()),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "openssh login bob ok",
                "rsyncd download 1234",
                "openssh upload 99",
                "rsyncd login carol failed",
                // pid 22 has only a summary, but this server logs per-file
                // lines (pid 20): summaries are not counted again.
            ]
        );
        let mut again = SyslogDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap());
        again.restore(&state).unwrap();
    }

    #[test]
    fn unreadable_time_stamps_of_known_programs_are_rejected() {
        let mut d = SyslogDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap());
        let mut cx = crate::sessions::test_context(TimeZone::Utc, days_from_civil(2026, 11, 20) * 86_400, "x");
        let mut out = Vec::new();
        let rejected = Outcome::Rejected("unreadable time stamp in the syslog prefix");
        for (line, want) in [
            (
                &b"2024-01-15T200:04:38+0100 host rsyncd[4502]: sent 755894 bytes  received 20 bytes  total size 80"[..],
                rejected,
            ),
            (b"2100-02-29T10:00:00Z host rsyncd[4502]: sent 1 bytes  received 2 bytes  total size 3", rejected),
            (b"Feb 30 10:00:00 host sshd[7]: Accepted password for a from 192.0.2.1 port 2 ssh2", rejected),
            (b"Nov 31 10:00:00 host internal-sftp[7]: session opened for local user a from [192.0.2.1]", rejected),
            (b"Feb 30 10:00:00 host CRON[1]: (root) CMD (x)", Outcome::Ignored),
        ] {
            assert_eq!(d.line(&mut cx, line, &mut out), want, "{}", String::from_utf8_lossy(line));
        }
        assert!(out.is_empty());
    }
}
