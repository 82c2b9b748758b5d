//! ProFTPD SystemLog and SFTPLog logins. The SFTPLog names the client once
//! per connection (`client (ip:port) connected`), so its address is kept
//! per pid until the `authenticated` line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::formats::proftpd::{self, Message};
use crate::model::{Event, Login, LoginOutcome, Micros, Protocol, SourceFormat, ANONYMOUS};
use crate::sessions::{client_ip, Decoder, LineContext, Outcome, ServerName};

const TAG_LOGIN: u8 = 51;

/// Decoder for ProFTPD's SystemLog and mod_sftp's SFTPLog.
#[derive(Debug, Default)]
pub struct ProftpdDecoder {
    /// SFTPLog pid → client address (bounded: cleared past 65,536 entries).
    sftp_clients: HashMap<u32, IpAddr>,
    server: ServerName,
}

impl Decoder for ProftpdDecoder {
    /// The SFTPLog's pid → client address of connections not yet
    /// authenticated, by pid: a login whose `connected` line was read by
    /// one run and its `authenticated` line by the next keeps its address.
    type State = Vec<(u32, IpAddr)>;

    fn save(&self) -> Self::State {
        let mut v: Vec<(u32, IpAddr)> = self.sftp_clients.iter().map(|(p, a)| (*p, *a)).collect();
        v.sort_unstable();
        v
    }

    fn restore(&mut self, state: Self::State) {
        self.sftp_clients = state.into_iter().collect();
    }

    fn scope(&self) -> &'static str {
        "proftpd"
    }

    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome {
        let l = match proftpd::parse(line) {
            Ok(l) => l,
            Err(reason) => return Outcome::Rejected(reason),
        };
        let host = l.host.unwrap_or(cx.server_host.as_bytes());
        let server = self.server.get(host);
        let (user, outcome, protocol, client, method) = match l.message {
            Message::Other => return Outcome::Ignored,
            Message::SftpConnected { client } => {
                if self.sftp_clients.len() >= 65_536 {
                    self.sftp_clients.clear();
                }
                match client_ip(client) {
                    Some(a) => self.sftp_clients.insert(l.pid, a),
                    None => self.sftp_clients.remove(&l.pid),
                };
                return Outcome::Used;
            }
            Message::SftpAuthenticated { user, method } => (
                String::from_utf8_lossy(user).into_owned(),
                LoginOutcome::Ok,
                Protocol::Sftp,
                self.sftp_clients.remove(&l.pid),
                Some(String::from_utf8_lossy(method).into_owned()),
            ),
            Message::LoginOk { user, anonymous } => (
                if anonymous { ANONYMOUS.to_string() } else { String::from_utf8_lossy(user).into_owned() },
                LoginOutcome::Ok,
                Protocol::Ftp,
                l.client.and_then(client_ip),
                Some(if anonymous { "anonymous" } else { "password" }.to_string()),
            ),
            Message::LoginFailed { user } => (
                String::from_utf8_lossy(user).into_owned(),
                LoginOutcome::Failed,
                Protocol::Ftp,
                l.client.and_then(client_ip),
                Some("password".to_string()),
            ),
            Message::NoSuchUser { user } => (
                String::from_utf8_lossy(user).into_owned(),
                LoginOutcome::InvalidUser,
                Protocol::Ftp,
                l.client.and_then(client_ip),
                None,
            ),
        };
        let time: Micros = cx.clock.local_to_utc(&l.time);
        out.push(Event::Login(Login {
            id: cx.ids.id(time, server.as_bytes(), line, TAG_LOGIN),
            time,
            protocol,
            user,
            client_ip: client,
            client_host: None,
            outcome,
            method,
            session: Some(Arc::from(l.pid.to_string())),
            server_host: server,
            source: SourceFormat::Proftpd,
            origin: None,
        }));
        Outcome::Used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::time::{rfc3339, TimeZone};

    #[test]
    fn system_and_sftp_logs() {
        let mut d = ProftpdDecoder::default();
        let mut cx = crate::sessions::test_context(TimeZone::Utc, 0, "unused");
        let mut out = Vec::new();
        let data = [
            &include_bytes!("../../../testdata/proftpd/proftpd.log")[..],
            include_bytes!("../../../testdata/proftpd/sftp.log"),
        ];
        for line in data.concat().split(|&c| c == b'\n') {
            if !line.is_empty() {
                assert!(!matches!(d.line(&mut cx, line, &mut out), Outcome::Rejected(_)));
            }
        }
        let l: Vec<_> = out
            .iter()
            .map(|e| match e {
                Event::Login(l) => {
                    (l.user.as_str(), l.outcome, l.protocol, l.client_ip.map(|i| i.to_string()).unwrap_or_default())
                }
                Event::Transfer(_) => panic!("no transfers in these logs"),
            })
            .collect();
        assert_eq!(
            l,
            vec![
                ("erin", LoginOutcome::Ok, Protocol::Ftp, "203.0.113.7".to_string()),
                ("anonymous", LoginOutcome::Ok, Protocol::Ftp, "198.51.100.50".to_string()),
                ("frank", LoginOutcome::Failed, Protocol::Ftp, "2001:db8::22".to_string()),
                ("trent", LoginOutcome::InvalidUser, Protocol::Ftp, "198.51.100.7".to_string()),
                // SFTP: the success from the SFTPLog; its failure is the SystemLog's.
                ("grace", LoginOutcome::Ok, Protocol::Sftp, "203.0.113.23".to_string()),
            ]
        );
        if let Event::Login(l) = &out[0] {
            assert_eq!(rfc3339(l.time), "2026-11-08T16:21:16.469000Z");
            assert_eq!(&*l.server_host, "ftp1");
        }
    }
}
