//! ProFTPD SystemLog and SFTPLog logins. The SFTPLog names the client once
//! per connection (`client (ip:port) connected`), so its address is kept
//! per pid until the `authenticated` line.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::{Decoder, LineContext, Outcome};
use crate::formats::proftpd::{self, Message};
use crate::model::{Event, Login, LoginOutcome, Micros, Protocol, SourceFormat, ANONYMOUS};

const TAG_LOGIN: u8 = 51;

/// Decoder for ProFTPD's SystemLog and mod_sftp's SFTPLog.
#[derive(Debug, Default)]
pub struct ProftpdDecoder {
    /// SFTPLog pid → client address (bounded: cleared past 65,536 entries).
    sftp_clients: HashMap<u32, IpAddr>,
    server: Option<Arc<str>>,
}

fn ip(s: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(s).ok()?;
    let ip = s.parse::<SocketAddr>().map(|a| a.ip()).or_else(|_| s.parse::<IpAddr>()).ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

impl Decoder for ProftpdDecoder {
    fn scope(&self) -> &'static str {
        "proftpd"
    }

    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome {
        let l = match proftpd::parse(line) {
            Ok(l) => l,
            Err(reason) => return Outcome::Rejected(reason),
        };
        let host = l.host.unwrap_or(cx.server_host.as_bytes());
        let server = match &self.server {
            Some(s) if s.as_bytes() == host => s.clone(),
            _ => {
                let s: Arc<str> = Arc::from(String::from_utf8_lossy(host).as_ref());
                self.server = Some(s.clone());
                s
            }
        };
        let (user, outcome, protocol, client, method) = match l.message {
            Message::Other => return Outcome::Ignored,
            Message::SftpConnected { client } => {
                if self.sftp_clients.len() >= 65_536 {
                    self.sftp_clients.clear();
                }
                match ip(client) {
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
                l.client.and_then(ip),
                Some(if anonymous { "anonymous" } else { "password" }.to_string()),
            ),
            Message::LoginFailed { user } => (
                String::from_utf8_lossy(user).into_owned(),
                LoginOutcome::Failed,
                Protocol::Ftp,
                l.client.and_then(ip),
                Some("password".to_string()),
            ),
            Message::NoSuchUser { user } => (
                String::from_utf8_lossy(user).into_owned(),
                LoginOutcome::InvalidUser,
                Protocol::Ftp,
                l.client.and_then(ip),
                None,
            ),
        };
        let time: Micros = cx.prefix.clock_mut().local_to_utc(&l.time);
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
        }));
        Outcome::Used
    }

    fn finish(&mut self, _out: &mut Vec<Event>) {}

    fn save(&self) -> String {
        String::new()
    }

    fn restore(&mut self, _state: &str) -> Result<(), String> {
        Ok(())
    }
}
