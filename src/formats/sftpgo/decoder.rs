//! SFTPGo logs every transfer, command and login as one self-contained JSON
//! object, keyed by `connection_id`; no join is needed.

use std::sync::Arc;

use crate::formats::Format;
use crate::formats::sftpgo;
use crate::model::{
    Direction, Event, Granularity, Login, LoginOutcome, Names, Protocol, Status, Transfer, ANONYMOUS,
};
use crate::sessions::{client_ip, Decoder, LineContext, Outcome, ServerName};

const TAG_TRANSFER: u8 = 31;
const TAG_LOGIN: u8 = 32;

/// Decoder for `sftpgo.log`.
#[derive(Debug, Default)]
pub struct SftpgoDecoder {
    server: ServerName,
    /// User names, shared by the events.
    names: Names,
}

fn protocol(p: Option<&str>) -> Protocol {
    match p {
        Some("SCP") => Protocol::Scp,
        Some("FTP") => Protocol::Ftp,
        Some("DAV") | Some("HTTP") | Some("HTTPShare") => Protocol::Http,
        Some("SSH") => Protocol::Ssh,
        // SFTP, and the 2019 field set that had no protocol (SFTP only then).
        _ => Protocol::Sftp,
    }
}

impl Decoder for SftpgoDecoder {
    crate::sessions::no_state!();

    fn scope(&self) -> &'static str {
        "sftpgo"
    }

    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome {
        let l = match sftpgo::parse(line) {
            Ok(l) => l,
            Err(reason) => return Outcome::Rejected(reason),
        };
        let direction = match l.sender.as_ref() {
            "Upload" => Some(Direction::Upload),
            "Download" => Some(Direction::Download),
            "Remove" => Some(Direction::Delete),
            "login" | "connection_failed" => None,
            _ => return Outcome::Ignored,
        };
        let Some(time) = sftpgo::parse_time(&l.time).map(|t| t.utc(&mut cx.clock)) else {
            return Outcome::Rejected("SFTPGo time is not YYYY-MM-DDTHH:MM:SS.mmm");
        };
        let server = self.server.get(cx.server_host.as_bytes());
        let user = l.username.as_deref().filter(|u| !u.is_empty());
        let session: Option<Arc<str>> = l.connection_id.as_deref().map(Arc::from);
        let Some(direction) = direction else {
            let ok = l.sender == "login";
            let addr = if ok { l.ip.as_deref() } else { l.client_ip.as_deref() };
            let method = if ok { l.method.as_deref() } else { l.login_type.as_deref() };
            let id = cx.ids.id(time, server.as_bytes(), line, TAG_LOGIN);
            out.push(Event::Login(Login {
                id,
                time,
                protocol: protocol(l.protocol.as_deref()),
                user: self.names.get(user.unwrap_or("unknown")),
                client_ip: addr.and_then(|a| client_ip(a.as_bytes())),
                client_host: None,
                outcome: if ok { LoginOutcome::Ok } else { LoginOutcome::Failed },
                method: method.map(|m| self.names.get(m)),
                session,
                server_host: server,
                source: Format::Sftpgo.source(),
                origin: None,
            }));
            return Outcome::Used;
        };
        let bytes = l.size_bytes.unwrap_or(0).max(0) as u64;
        let status = if l.error.is_some() { Status::Failed } else { Status::Completed };
        let id = cx.ids.id(time, server.as_bytes(), line, TAG_TRANSFER);
        out.push(Event::Transfer(Transfer {
            id,
            end: time,
            // An absurd elapsed_ms leaves the start unknown.
            start: l.elapsed_ms.filter(|e| *e >= 0).and_then(|e| e.checked_mul(1000)).and_then(|e| time.checked_sub(e)),
            protocol: protocol(l.protocol.as_deref()),
            direction,
            status,
            bytes: if direction == Direction::Delete { 0 } else { bytes },
            wire_bytes: None,
            file_size: None,
            path: l.virtual_path.as_deref().or(l.file_path.as_deref()).map(str::to_string),
            module: None,
            user: self.names.get(user.unwrap_or(ANONYMOUS)),
            client_ip: l.remote_addr.as_deref().and_then(|a| client_ip(a.as_bytes())),
            client_host: None,
            session,
            server_host: server,
            source: Format::Sftpgo.source(),
            origin: None,
            granularity: Granularity::File,
        }));
        Outcome::Used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::time::rfc3339;

    #[test]
    fn fixture_field_sets() {
        let mut d = SftpgoDecoder::default();
        let mut cx = crate::sessions::test_context("+02:00".parse().unwrap(), 0, "sftpgo1");
        let mut out = Vec::new();
        let outcomes: Vec<Outcome> = include_bytes!("../../../testdata/sftpgo/sftpgo.log")
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| d.line(&mut cx, l, &mut out))
            .collect();
        assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Ignored).count(), 2, "Rename and an app log");
        assert!(matches!(outcomes.last(), Some(Outcome::Rejected(_))), "non-JSON line");
        let t = crate::sessions::transfers(&out);
        let got: Vec<_> = t
            .iter()
            .map(|t| (t.direction, t.status, t.bytes, &*t.user, t.protocol, t.path.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            vec![
                (Direction::Upload, Status::Completed, 4000, "dtd-push", Protocol::Sftp, "/timetable_full.zip"),
                (Direction::Upload, Status::Failed, 0, "dtd-push", Protocol::Sftp, "/big.zip"),
                (Direction::Download, Status::Completed, 1_048_576, "alice", Protocol::Sftp, "/a b.bin"),
                (Direction::Delete, Status::Completed, 0, "alice", Protocol::Sftp, "/old.bin"),
                (
                    Direction::Upload,
                    Status::Completed,
                    21_686_268,
                    "localtest",
                    Protocol::Http,
                    "/srv/sftpgo/data/localtest/targetfile1"
                ),
                (Direction::Download, Status::Completed, 512, "seed", Protocol::Sftp, "/home/seed/report.csv"),
            ]
        );
        // Zone-less local time read in --timezone (+02:00), stored in UTC.
        assert_eq!(rfc3339(t[0].end), "2026-10-01T14:53:57.751000Z");
        assert_eq!(rfc3339(t[2].start.unwrap()), "2026-10-01T14:54:09.688000Z");
        assert_eq!(t[2].client_ip.unwrap().to_string(), "2001:db8::7");
        assert_eq!(t[0].session.as_deref(), Some("SFTP_adb66d8d_1"));
        assert_eq!(t[5].client_ip, None, "the 2019 field set has no address");
        let l: Vec<_> = crate::sessions::logins(&out)
            .iter()
            .map(|l| (&*l.user, l.outcome, l.method.as_deref(), l.protocol))
            .collect();
        assert_eq!(
            l,
            vec![
                ("dtd-push", LoginOutcome::Ok, Some("keyboard-interactive"), Protocol::Ssh),
                ("unknown", LoginOutcome::Failed, Some("no_auth_tryed"), Protocol::Ssh),
                ("test", LoginOutcome::Failed, Some("password"), Protocol::Ssh),
                ("unknown", LoginOutcome::Failed, Some("no_auth_tried"), Protocol::Ftp),
            ]
        );
    }

    /// Fuzzing found: an `elapsed_ms` near `i64::MAX` overflowed computing
    /// the start (a panic in debug builds); it is unknown then.
    #[test]
    fn absurd_elapsed_time_leaves_the_start_unknown() {
        let mut d = SftpgoDecoder::default();
        let mut cx = crate::sessions::test_context(crate::time::TimeZone::Utc, 0, "sftpgo1");
        let mut out = Vec::new();
        for ms in ["9223372036854775807", "9223372036854776", "1500"] {
            let line = format!(
                r#"{{"level":"info","time":"2026-10-01T16:54:10.500","sender":"Download","remote_addr":"192.0.2.7:1","elapsed_ms":{ms},"size_bytes":1,"username":"a","file_path":"/f","connection_id":"SFTP_1","protocol":"SFTP"}}"#
            );
            assert_eq!(d.line(&mut cx, line.as_bytes(), &mut out), Outcome::Used, "{line}");
        }
        let starts: Vec<Option<String>> =
            crate::sessions::transfers(&out).iter().map(|t| t.start.map(rfc3339)).collect();
        assert_eq!(starts, vec![None, None, Some("2026-10-01T16:54:09Z".to_string())]);
    }
}
