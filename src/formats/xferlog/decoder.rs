//! xferlog lines are complete transfers on their own: no session to join.
//! This decoder turns each into an event (FTP, FTPS, or SFTP/SCP for
//! ProFTPD's mod_sftp service names).

use std::net::IpAddr;
use std::sync::Arc;

use crate::formats::Format;
use crate::formats::xferlog;
use crate::model::{Direction, Event, Granularity, Names, Protocol, Status, Transfer, ANONYMOUS};
use crate::sessions::{client_ip, Decoder, FtpTransfer, LineContext, Outcome, ServerName, StampCache};

const TAG: u8 = 11;

/// Decoder for xferlog files.
#[derive(Debug, Default)]
pub struct XferlogDecoder {
    stamps: StampCache,
    server: ServerName,
    /// User names, shared by the events.
    names: Names,
}

fn protocol(service: &[u8]) -> Protocol {
    match service {
        b"sftp" => Protocol::Sftp,
        b"scp" => Protocol::Scp,
        b"ftps" => Protocol::Ftps,
        _ => Protocol::Ftp,
    }
}

/// Client address and host name from xferlog's remote-host field.
pub(crate) fn host_fields(h: &[u8]) -> (Option<IpAddr>, Option<Arc<str>>) {
    match client_ip(h) {
        Some(ip) => (Some(ip), None),
        None => (None, Some(crate::model::text(h).into())),
    }
}

impl Decoder for XferlogDecoder {
    crate::sessions::no_state!();

    fn scope(&self) -> &'static str {
        "xferlog"
    }

    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome {
        let l = match xferlog::parse(line) {
            Ok(l) => l,
            Err(reason) => return Outcome::Rejected(reason),
        };
        let raw = &line[..line.len().min(24)];
        let end = self.stamps.get(raw, || cx.clock.local_to_utc(&l.end));
        let server = self.server.get(cx.server_host.as_bytes());
        let direction = match l.direction {
            b'o' => Direction::Download,
            b'i' => Direction::Upload,
            _ => Direction::Delete,
        };
        let (client_ip, client_host) = host_fields(l.host);
        let user = match l.access {
            b'a' => self.names.get(ANONYMOUS),
            _ => self.names.get_bytes(l.user),
        };
        let bytes = if direction == Direction::Delete { 0 } else { l.bytes };
        let what = FtpTransfer { user: &user, direction, bytes, path: l.path };
        let id = cx.ids.ftp_transfer_id(end, server.as_bytes(), line, TAG, what);
        out.push(Event::Transfer(Transfer {
            id,
            end,
            // An absurd transfer time (beyond the range of a time stamp)
            // leaves the start unknown.
            start: i64::try_from(l.seconds)
                .ok()
                .and_then(|s| s.checked_mul(1_000_000))
                .and_then(|d| end.checked_sub(d)),
            protocol: protocol(l.service),
            direction,
            status: if l.completion == b'c' { Status::Completed } else { Status::Interrupted },
            bytes,
            wire_bytes: None,
            file_size: (direction == Direction::Delete).then_some(l.bytes),
            path: Some(crate::model::lossy(l.path)),
            module: None,
            user,
            client_ip,
            client_host,
            session: None,
            server_host: server,
            source: Format::Xferlog.source(),
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
    fn fixture_traps() {
        let mut d = XferlogDecoder::default();
        let mut cx = crate::sessions::test_context("Europe/Paris".parse().unwrap(), 0, "ftp1");
        let mut out = Vec::new();
        for line in include_bytes!("../../../testdata/xferlog/traps.xferlog").split(|&c| c == b'\n') {
            if !line.is_empty() {
                assert_eq!(d.line(&mut cx, line, &mut out), Outcome::Used);
            }
        }
        let t: Vec<&Transfer> = out
            .iter()
            .map(|e| match e {
                Event::Transfer(t) => t,
                Event::Login(_) => panic!("xferlog has no logins"),
            })
            .collect();
        assert_eq!(t.len(), 10);
        // Local time in --timezone (CEST in April), stored in UTC; start = end - seconds.
        assert_eq!(rfc3339(t[0].end), "2016-04-05T10:35:58Z");
        assert_eq!(rfc3339(t[0].start.unwrap()), "2016-04-05T10:35:57Z");
        assert_eq!(t[0].client_ip.unwrap().to_string(), "150.135.84.81");
        assert_eq!((t[0].direction, t[0].bytes, &*t[0].user), (Direction::Upload, 4_061_858, "lemnatec"));
        assert_eq!((t[1].protocol, t[1].direction), (Protocol::Sftp, Direction::Download));
        assert_eq!((t[2].client_ip, t[2].client_host.as_deref()), (None, Some("localhost")));
        assert_eq!(t[4].bytes, 25_135_004, "a 19th field is tolerated");
        assert_eq!((t[5].direction, t[5].bytes, t[5].file_size), (Direction::Delete, 0, Some(23456)));
        assert_eq!(t[5].client_ip.unwrap().to_string(), "2001:db8::21");
        assert_eq!(&*t[6].user, "anonymous", "the e-mail password never reaches the user column");
        assert_eq!(t[7].status, Status::Interrupted);
        assert_eq!((t[8].protocol, t[8].bytes, t[8].status), (Protocol::Scp, 0, Status::Completed));
        assert_eq!((t[9].protocol, &*t[9].user), (Protocol::Ftps, "guest1"));
        assert!(t.iter().all(|t| &*t.server_host == "ftp1" && t.source == Format::Xferlog.source()));
    }

    /// Fuzzing found: a transfer time beyond the range of a time stamp
    /// overflowed computing the start (a panic in debug builds); the start
    /// is then unknown.
    #[test]
    fn absurd_transfer_time_leaves_the_start_unknown() {
        let mut d = XferlogDecoder::default();
        let mut cx = crate::sessions::test_context(crate::time::TimeZone::Utc, 0, "ftp1");
        let mut out = Vec::new();
        for secs in ["18446744073709551615", "9223372036854775807", "9300000000000"] {
            let line = format!("Mon Apr  5 12:35:58 2016 {secs} 192.0.2.1 12 /f b _ o r u ftp 0 * c");
            assert_eq!(d.line(&mut cx, line.as_bytes(), &mut out), Outcome::Used, "{line}");
        }
        let line = b"Mon Apr  5 12:35:58 2016 2 192.0.2.1 12 /f b _ o r u ftp 0 * c";
        assert_eq!(d.line(&mut cx, line, &mut out), Outcome::Used);
        let starts: Vec<Option<String>> = out
            .iter()
            .map(|e| match e {
                Event::Transfer(t) => t.start.map(rfc3339),
                Event::Login(_) => panic!("xferlog has no logins"),
            })
            .collect();
        assert_eq!(starts, vec![None, None, None, Some("2016-04-05T12:35:56Z".to_string())]);
    }
}
