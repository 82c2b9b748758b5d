//! A syslog file (auth.log, daemon.log, syslog) holds lines of many
//! programs. Each line goes to the decoder of its program — rsyncd to the
//! rsync decoder, sshd/sftp-server/internal-sftp to the OpenSSH decoder —
//! and lines of other programs are skipped (counted as lines without
//! events, not as errors). Lines without any prefix are sshd `-E` lines and
//! go to the OpenSSH decoder, which dates them from the syslog's PAM lines.

use serde::{Deserialize, Serialize};

use super::openssh::OpensshDecoder;
use super::rsync::RsyncDecoder;
use super::{Decoder, LineContext, Outcome};
use crate::enrich::hostkey::IdKey;
use crate::formats::openssh::is_openssh_program;
use crate::formats::rsync::LogFormat;
use crate::model::Event;

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

impl Decoder for SyslogDecoder {
    fn scope(&self) -> &'static str {
        "syslog"
    }

    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome {
        let Some(p) = cx.prefix.parse(line) else {
            // An sshd -E file line has no prefix at all.
            return self.ssh.line(cx, line, out);
        };
        match p.program {
            Some(prog) if memchr::memmem::find(prog, b"rsync").is_some() => self.rsync.line(cx, line, out),
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
        for line in include_bytes!("../../testdata/syslog/mixed.log").split(|&c| c == b'\n') {
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
}
