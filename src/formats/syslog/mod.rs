//! A syslog file (auth.log, daemon.log, syslog) holds lines of many
//! programs. Each line goes to the decoder of its program — rsyncd to the
//! rsync decoder, sshd/sftp-server/internal-sftp to the OpenSSH decoder —
//! and lines of other programs are skipped (counted as lines without
//! events, not as errors). Lines without any prefix are sshd `-E` lines and
//! go to the OpenSSH decoder, which dates them from the syslog's PAM lines.
//! The saved state is theirs, joined as they join it
//! ([`Joins::Continuing`]).

use serde::{Deserialize, Serialize};

use crate::enrich::hostkey::IdKey;
use crate::formats::openssh::decoder::OpensshDecoder;
use crate::formats::openssh::is_openssh_program;
use crate::formats::prefix::prefix_shape;
use crate::formats::rsync::decoder::RsyncDecoder;
use crate::formats::rsync::{is_rsync_program, LogFormat};
use crate::formats::Format;
use crate::model::Event;
use crate::sessions::{Decoder, Joins, LineContext, Outcome};

/// Routes syslog lines by program name.
#[derive(Debug)]
pub struct SyslogDecoder {
    rsync: RsyncDecoder,
    ssh: OpensshDecoder,
}

/// What a [`SyslogDecoder`] carries: its two decoders' states.
#[derive(Serialize, Deserialize)]
pub struct State {
    rsync: AsText<<RsyncDecoder as Decoder>::State>,
    ssh: AsText<<OpensshDecoder as Decoder>::State>,
}

/// A state stored as the JSON text of its own (the layout of stores written
/// before states were typed); an empty text is no state.
struct AsText<T>(Option<T>);

impl<T: Serialize> Serialize for AsText<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = match &self.0 {
            Some(v) => serde_json::to_string(v).map_err(serde::ser::Error::custom)?,
            None => String::new(),
        };
        s.serialize_str(&text)
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for AsText<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(AsText(None));
        }
        serde_json::from_str(&text).map(|v| AsText(Some(v))).map_err(serde::de::Error::custom)
    }
}

impl SyslogDecoder {
    /// A router whose rsync decoder reads per-file lines with `format`.
    pub fn new(format: LogFormat) -> SyslogDecoder {
        SyslogDecoder { rsync: RsyncDecoder::new(format), ssh: OpensshDecoder::default() }
    }
}

impl Decoder for SyslogDecoder {
    type State = State;

    const JOINS: Joins = Joins::Continuing;

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
            Some(prog) if is_rsync_program(prog) => self.rsync.of_rsync(cx, line, &p, out),
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

    fn save(&self) -> State {
        State { rsync: AsText(Some(self.rsync.save())), ssh: AsText(Some(self.ssh.save())) }
    }

    fn open_sessions(&self) -> Vec<crate::sessions::OpenSession> {
        let mut open = self.rsync.open_sessions();
        open.extend(self.ssh.open_sessions());
        open
    }

    fn restore(&mut self, st: State) {
        if let Some(s) = st.rsync.0 {
            self.rsync.restore(s);
        }
        if let Some(s) = st.ssh.0 {
            self.ssh.restore(s);
        }
    }
}

/// The registry entry of the syslog format: a file is read as syslog when
/// it holds sshd/sftp-server lines, or when most of its rsyncd lines carry
/// a syslog program name, and these lines outnumber any other format's.
pub const SPEC: crate::formats::Spec = crate::formats::Spec {
    name: "syslog",
    description: "syslog file with several programs (auth.log, daemon.log, syslog): rsyncd lines read as rsyncd, \
                  sshd/sftp-server/internal-sftp as openssh, other programs skipped",
    detect: crate::formats::Detect::Mix(|t| {
        let (ssh, rsync, syslog_rsync) =
            (t.lines(Format::Openssh), t.lines(Format::Rsyncd), t.with_program(Format::Rsyncd));
        let mixed = ssh > 0 || (syslog_rsync > 0 && syslog_rsync * 2 >= rsync);
        mixed && ssh + rsync >= t.most_except(&[Format::Openssh, Format::Rsyncd])
    }),
    stamp: crate::formats::prefix::stamp,
    decoder: |t| Box::new(SyslogDecoder::new(t.rsync.clone())),
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
        let text = serde_json::to_string(&state).unwrap();
        crate::sessions::AnyDecoder::restore_text(&mut again, &text).unwrap();
        assert_eq!(serde_json::to_string(&again.save()).unwrap(), text);
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
