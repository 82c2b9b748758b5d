//! vsftpd's own log: each line is complete, so no session join is needed.
//! (The login result comes from the privileged parent process, whose pid
//! differs from the session's command lines, so pids would not join them
//! anyway; the `[user]` tag on every line names the user.)

use std::sync::Arc;

use crate::formats::Format;
use crate::formats::vsftpd::{self, Action};
use crate::formats::xferlog::decoder::host_fields;
use crate::model::{
    Direction, Event, Granularity, Login, LoginOutcome, Names, Protocol, Status, Transfer, ANONYMOUS,
};
use crate::sessions::{Decoder, LineContext, Outcome, ServerName, StampCache};

const TAG_TRANSFER: u8 = 21;
const TAG_LOGIN: u8 = 22;

/// Decoder for `vsftpd.log`.
#[derive(Debug, Default)]
pub struct VsftpdDecoder {
    stamps: StampCache,
    server: ServerName,
    /// User names, shared by the events.
    names: Names,
}

/// vsftpd's anonymous account shows as `[ftp]` (its `ftp_username`) or as
/// the name typed, `anonymous`.
fn user_of(names: &mut Names, tag: Option<&[u8]>, anonymous: bool) -> Arc<str> {
    match tag {
        _ if anonymous => names.get(ANONYMOUS),
        Some(b"ftp") | Some(b"anonymous") | None => names.get(ANONYMOUS),
        Some(u) => names.get_bytes(u),
    }
}

impl Decoder for VsftpdDecoder {
    crate::sessions::no_state!();

    fn scope(&self) -> &'static str {
        "vsftpd"
    }

    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome {
        let l = match vsftpd::parse(line) {
            Ok(l) => l,
            Err(reason) => return Outcome::Rejected(reason),
        };
        if matches!(l.action, Action::Connect | Action::Other) || (l.action == Action::Delete && l.ok != Some(true)) {
            return Outcome::Ignored;
        }
        let raw = &line[..24];
        let time = self.stamps.get(raw, || cx.clock.local_to_utc(&l.time));
        let server = self.server.get(cx.server_host.as_bytes());
        let (client_ip, client_host) = host_fields(l.client);
        let session: Option<Arc<str>> = l.pid.map(|p| Arc::from(format!("{p}")));
        if l.action == Action::Login {
            let id = cx.ids.id(time, server.as_bytes(), line, TAG_LOGIN);
            out.push(Event::Login(Login {
                id,
                time,
                protocol: Protocol::Ftp,
                user: user_of(&mut self.names, l.user, l.anonymous),
                client_ip,
                client_host,
                outcome: if l.ok == Some(true) { LoginOutcome::Ok } else { LoginOutcome::Failed },
                method: Some(if l.anonymous { "anonymous" } else { "password" }.into()),
                session,
                server_host: server,
                source: Format::Vsftpd.source(),
                origin: None,
            }));
            return Outcome::Used;
        }
        let direction = match l.action {
            Action::Upload => Direction::Upload,
            Action::Download => Direction::Download,
            _ => Direction::Delete,
        };
        let bytes = l.bytes.unwrap_or(0);
        let status = match l.ok {
            Some(true) => Status::Completed,
            _ if bytes > 0 => Status::Interrupted,
            _ => Status::Failed,
        };
        let id = cx.ids.id(time, server.as_bytes(), line, TAG_TRANSFER);
        out.push(Event::Transfer(Transfer {
            id,
            end: time,
            start: None,
            protocol: Protocol::Ftp,
            direction,
            status,
            bytes: if direction == Direction::Delete { 0 } else { bytes },
            wire_bytes: None,
            file_size: None,
            path: l.path.map(crate::model::lossy),
            module: None,
            user: user_of(&mut self.names, l.user, false),
            client_ip,
            client_host,
            session,
            server_host: server,
            source: Format::Vsftpd.source(),
            origin: None,
            granularity: Granularity::File,
        }));
        Outcome::Used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::time::{rfc3339, TimeZone};

    #[test]
    fn fixture_traps() {
        let mut d = VsftpdDecoder::default();
        let mut cx = crate::sessions::test_context(TimeZone::Utc, 0, "ftp1");
        let mut out = Vec::new();
        let mut ignored = 0;
        for line in include_bytes!("../../../testdata/vsftpd/traps.log").split(|&c| c == b'\n') {
            if line.is_empty() {
                continue;
            }
            match d.line(&mut cx, line, &mut out) {
                Outcome::Ignored => ignored += 1,
                Outcome::Used => {}
                Outcome::Rejected(r) => panic!("{r}: {}", String::from_utf8_lossy(line)),
            }
        }
        assert_eq!(ignored, 7, "CONNECT, FTP command/response, RENAME, MKDIR, FAIL DELETE");
        let t = crate::sessions::transfers(&out);
        let got: Vec<_> = t.iter().map(|t| (t.direction, t.status, t.bytes, &*t.user)).collect();
        assert_eq!(
            got,
            vec![
                (Direction::Download, Status::Completed, 6, "daymoove"),
                (Direction::Download, Status::Completed, 0, "daymoove"),
                (Direction::Upload, Status::Completed, 65432, "daymoove"),
                (Direction::Delete, Status::Completed, 0, "daymoove"),
                (Direction::Download, Status::Interrupted, 13_448_630, "daymoove"),
                (Direction::Upload, Status::Completed, 9876, "anonymous"),
            ]
        );
        assert_eq!(t[0].client_ip.unwrap().to_string(), "192.168.56.134");
        assert_eq!(rfc3339(t[0].end), "2021-11-05T21:43:45Z");
        assert_eq!(t[5].client_ip.unwrap().to_string(), "2001:db8::50");
        assert_eq!(t[5].path.as_deref(), Some("/upload/[WIP] roadmap.txt"));
        let l: Vec<_> = crate::sessions::logins(&out).iter().map(|l| (&*l.user, l.outcome)).collect();
        assert_eq!(
            l,
            vec![
                ("daymoove", LoginOutcome::Ok),
                ("anonymous", LoginOutcome::Ok),
                ("mallory", LoginOutcome::Failed),
                ("bob", LoginOutcome::Ok),
            ]
        );
    }
}
