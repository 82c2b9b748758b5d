//! ProFTPD ExtendedLog lines are self-contained: each transfer command is
//! one event. Logins are left to the SystemLog (see
//! [`crate::formats::proftpd_extended`]).

use crate::formats::Format;
use crate::formats::proftpd_extended::ExtendedFormat;
use crate::model::{Direction, Event, Granularity, Names, Protocol, Status, Transfer, ANONYMOUS};
use crate::sessions::{client_ip, Decoder, FtpTransfer, LineContext, Outcome, ServerName};

const TAG: u8 = 61;

/// Decoder for ProFTPD ExtendedLog files.
#[derive(Debug)]
pub struct ProftpdExtendedDecoder {
    format: ExtendedFormat,
    server: ServerName,
    /// User names, shared by the events.
    names: Names,
}

impl ProftpdExtendedDecoder {
    /// A decoder for lines written with `format`.
    pub fn new(format: ExtendedFormat) -> ProftpdExtendedDecoder {
        ProftpdExtendedDecoder { format, server: ServerName::default(), names: Names::default() }
    }
}

impl Decoder for ProftpdExtendedDecoder {
    crate::sessions::no_state!();

    fn scope(&self) -> &'static str {
        "proftpd-extended"
    }

    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome {
        let Some(l) = self.format.parse(line) else {
            return Outcome::Rejected("not a line of the ExtendedLog format (check --proftpd-log-format)");
        };
        let direction = match l.command.unwrap_or_default() {
            b"STOR" | b"STOU" | b"APPE" => Direction::Upload,
            b"RETR" => Direction::Download,
            b"DELE" => Direction::Delete,
            _ => return Outcome::Ignored,
        };
        let code = l.status.unwrap_or(b"-");
        let bytes = l.bytes.unwrap_or(0);
        let status = match (l.transfer_status, code.first()) {
            (Some(b"success"), _) => Status::Completed,
            (Some(_), _) if bytes > 0 => Status::Interrupted,
            (Some(_), _) => Status::Failed,
            (None, Some(b'2')) | (None, Some(b'-')) | (None, None) => Status::Completed,
            (None, Some(b'4')) if bytes > 0 => Status::Interrupted,
            (None, _) => Status::Failed,
        };
        if direction == Direction::Delete && status != Status::Completed {
            return Outcome::Ignored; // a refused DELE deleted nothing
        }
        let Some(logged) = l.time(&mut cx.clock) else { return Outcome::Rejected("no time") };
        // The row's time is that of xferlog (see `ftp_transfer_id`); the
        // start keeps what the log says.
        let end = cx.ids.whole_second(logged);
        let server = self.server.get(cx.server_host.as_bytes());
        let user = match l.user {
            None | Some(b"-") => self.names.get("unknown"),
            Some(b"ftp") | Some(b"anonymous") => self.names.get(ANONYMOUS),
            Some(u) => self.names.get_bytes(u),
        };
        let protocol = match l.protocol {
            Some(b"sftp") => Protocol::Sftp,
            Some(b"scp") => Protocol::Scp,
            Some(b"ftps") => Protocol::Ftps,
            _ => Protocol::Ftp,
        };
        let seconds: Option<f64> = l.transfer_time.and_then(|t| std::str::from_utf8(t).ok()?.parse().ok());
        let bytes = if direction == Direction::Delete { 0 } else { bytes };
        let what = FtpTransfer { user: &user, direction, bytes, path: l.file.unwrap_or_default() };
        out.push(Event::Transfer(Transfer {
            id: cx.ids.ftp_transfer_id(end, server.as_bytes(), line, TAG, what),
            end,
            // A negative, infinite or absurd %T leaves the start unknown.
            start: seconds
                .filter(|s| (0.0..i64::MAX as f64 / 1e6).contains(s))
                .and_then(|s| logged.checked_sub((s * 1e6) as i64)),
            protocol,
            direction,
            status,
            bytes,
            wire_bytes: None,
            file_size: if direction == Direction::Delete { l.bytes } else { l.file_size },
            path: l.file.map(crate::model::lossy),
            module: None,
            user,
            client_ip: l.ip.and_then(client_ip).or_else(|| l.host.and_then(client_ip)),
            client_host: l
                .host
                .filter(|h| client_ip(h).is_none() && *h != b"UNKNOWN")
                .map(|h| crate::model::text(h).into()),
            session: None,
            server_host: server,
            source: Format::ProftpdExtended.source(),
            origin: None,
            granularity: Granularity::File,
        }));
        Outcome::Used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::formats::proftpd_extended::DEFAULT_FORMAT;

    use crate::time::{rfc3339, TimeZone};

    #[test]
    fn default_format_fixture() {
        let mut d = ProftpdExtendedDecoder::new(ExtendedFormat::compile(DEFAULT_FORMAT).unwrap());
        let mut cx = crate::sessions::test_context(TimeZone::Utc, 0, "ftp1");
        let mut out = Vec::new();
        for line in include_bytes!("../../../testdata/proftpd/extended.log").split(|&c| c == b'\n') {
            if !line.is_empty() {
                assert!(!matches!(d.line(&mut cx, line, &mut out), Outcome::Rejected(_)));
            }
        }
        let got: Vec<_> = out
            .iter()
            .map(|e| match e {
                Event::Transfer(t) => {
                    (t.direction, t.status, t.bytes, &*t.user, t.path.as_deref().unwrap_or(""))
                }
                Event::Login(_) => panic!("logins come from the SystemLog"),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Direction::Upload, Status::Completed, 23456, "erin", "ftp 08f/meeting notes 2026.md"),
                (Direction::Download, Status::Completed, 23456, "erin", "ftp 08f/meeting notes 2026.md"),
                (Direction::Delete, Status::Completed, 0, "erin", "ftp 08f/meeting notes 2026.md"),
                (Direction::Download, Status::Completed, 1_567_890, "anonymous", "Budget 2027 (v3).xlsx"),
                (Direction::Download, Status::Interrupted, 14_006_990, "erin", "08f-backup-2026-11.tgz"),
                (Direction::Upload, Status::Completed, 222_333, "h.wu", "/home/h.wu/scp-08f.csv"),
            ]
        );
        if let Event::Transfer(t) = &out[0] {
            assert_eq!(rfc3339(t.end), "2026-11-08T15:21:16Z", "the zone of %t is applied");
        }
        if let Event::Transfer(t) = &out[2] {
            assert_eq!(t.file_size, Some(23456), "a DELE's %b is the deleted size");
        }
    }

    /// Fuzzing found: a `%T` of -9223372036854775808 (or `inf`) overflowed
    /// computing the start (a panic in debug builds); it is unknown then.
    #[test]
    fn absurd_transfer_time_leaves_the_start_unknown() {
        let format = r#"%{iso8601} %a %u %{protocol} %m "%f" %{file-size} %b %{transfer-status} %T"#;
        let mut d = ProftpdExtendedDecoder::new(ExtendedFormat::compile(format).unwrap());
        let mut cx = crate::sessions::test_context(TimeZone::Utc, 0, "ftp1");
        let mut out = Vec::new();
        for t in ["-9223372036854775808.003", "1e300", "inf", "-1", "NaN", "0.5"] {
            let line = format!(r#"2026-11-08 16:21:21,229 127.0.1.23 grace sftp RETR "/f" 4 4 success {t}"#);
            assert_eq!(d.line(&mut cx, line.as_bytes(), &mut out), Outcome::Used, "{line}");
        }
        let starts: Vec<Option<String>> = out
            .iter()
            .map(|e| match e {
                Event::Transfer(t) => t.start.map(rfc3339),
                Event::Login(_) => panic!("logins come from the SystemLog"),
            })
            .collect();
        assert_eq!(starts, vec![None, None, None, None, None, Some("2026-11-08T16:21:20.729000Z".to_string())]);
    }
}
