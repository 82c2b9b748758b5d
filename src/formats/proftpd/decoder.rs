//! ProFTPD SystemLog and SFTPLog logins. The SFTPLog names the client once
//! per connection (`client (ip:port) connected`), so its address is kept
//! per pid until the `authenticated` line.
//!
//! That map is the decoder's state, saved between runs (a login whose
//! `connected` line one cron run reads and whose `authenticated` line the
//! next reads keeps its address). SFTPLog lines name no server host: the
//! map is the ingesting host's (`--server-host`, the scope of the saved
//! state). Its joins are bounded in time instead of by input
//! ([`Joins::Bounded`]): an `authenticated` line takes the address of its
//! pid's `connected` line only from the [`LOGIN_WINDOW`] before it, as
//! ProFTPD drops a connection that has not logged in by then. So lines of
//! any input may meet the saved map — the next file after a rotation, the
//! SystemLog read in the same run — and a pid reused in another file or a
//! copy, earlier or much later, never takes a stale address.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::formats::Format;
use crate::formats::proftpd::{self, Message};
use crate::model::{Event, Login, LoginOutcome, Micros, Protocol, ANONYMOUS};
use crate::sessions::{client_ip, Decoder, Joins, LineContext, Outcome, ServerName};

const TAG_LOGIN: u8 = 51;

/// Longest time from an SFTP `connected` line to its `authenticated` line
/// (twice ProFTPD's default `TimeoutLogin` of 300 s).
pub const LOGIN_WINDOW: Micros = 600 * 1_000_000;

/// SFTPLog connections kept at most; past it, those older than the login
/// window go (and all of them if that is not enough).
const MAX_CLIENTS: usize = 65_536;

/// Decoder for ProFTPD's SystemLog and mod_sftp's SFTPLog.
#[derive(Debug, Default)]
pub struct ProftpdDecoder {
    /// SFTPLog connections not yet authenticated: (pid, time of the
    /// `connected` line) → client address.
    sftp_clients: BTreeMap<(u32, Micros), IpAddr>,
    server: ServerName,
}

impl ProftpdDecoder {
    /// Forgets the connections of `pid` up to `time`.
    fn drop_connections(&mut self, pid: u32, time: Micros) {
        let over: Vec<(u32, Micros)> =
            self.sftp_clients.range((pid, Micros::MIN)..=(pid, time)).map(|(k, _)| *k).collect();
        for k in over {
            self.sftp_clients.remove(&k);
        }
    }
}

impl Decoder for ProftpdDecoder {
    /// The SFTPLog's connections not yet authenticated: pid, client
    /// address, time of the `connected` line.
    type State = Vec<(u32, IpAddr, Micros)>;

    const JOINS: Joins = Joins::Bounded;

    fn save(&self) -> Self::State {
        self.sftp_clients.iter().map(|(&(p, t), &a)| (p, a, t)).collect()
    }

    fn restore(&mut self, state: Self::State) {
        self.sftp_clients = state.into_iter().map(|(p, a, t)| ((p, t), a)).collect();
    }

    /// The SFTPLog's connections waiting for their login line (the state
    /// does not keep their server host).
    fn open_sessions(&self) -> Vec<crate::sessions::OpenSession> {
        let open = self.sftp_clients.keys().map(|&(_, since)| since);
        open.map(|since| crate::sessions::OpenSession { server_host: None, since }).collect()
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
                let time = cx.clock.local_to_utc(&l.time);
                if self.sftp_clients.len() >= MAX_CLIENTS {
                    self.sftp_clients.retain(|&(_, t), _| time.saturating_sub(t) <= LOGIN_WINDOW);
                    if self.sftp_clients.len() >= MAX_CLIENTS {
                        self.sftp_clients.clear();
                    }
                }
                // The pid's earlier connections are over; later ones (a
                // copy or an older file read after the log) stay.
                self.drop_connections(l.pid, time);
                if let Some(a) = client_ip(client) {
                    self.sftp_clients.insert((l.pid, time), a);
                }
                return Outcome::Used;
            }
            Message::SftpAuthenticated { user, method } => {
                let time = cx.clock.local_to_utc(&l.time);
                // The pid's latest connection up to this line, if recent.
                let latest = self.sftp_clients.range((l.pid, Micros::MIN)..=(l.pid, time)).next_back();
                let client = latest.and_then(|(&(_, t), &a)| (time.saturating_sub(t) <= LOGIN_WINDOW).then_some(a));
                self.drop_connections(l.pid, time);
                (
                    crate::model::lossy(user),
                    LoginOutcome::Ok,
                    Protocol::Sftp,
                    client,
                    Some(crate::model::lossy(method)),
                )
            }
            Message::LoginOk { user, anonymous } => (
                if anonymous { ANONYMOUS.to_string() } else { crate::model::lossy(user) },
                LoginOutcome::Ok,
                Protocol::Ftp,
                l.client.and_then(client_ip),
                Some(if anonymous { "anonymous" } else { "password" }.to_string()),
            ),
            Message::LoginFailed { user } => (
                crate::model::lossy(user),
                LoginOutcome::Failed,
                Protocol::Ftp,
                l.client.and_then(client_ip),
                Some("password".to_string()),
            ),
            Message::NoSuchUser { user } => (
                crate::model::lossy(user),
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
            user: user.into(),
            client_ip: client,
            client_host: None,
            outcome,
            method: method.map(Into::into),
            session: Some(Arc::from(l.pid.to_string())),
            server_host: server,
            source: Format::Proftpd.source(),
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
                    (&*l.user, l.outcome, l.protocol, l.client_ip.map(|i| i.to_string()).unwrap_or_default())
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

    /// The saved pid map joins only lines within the login window after
    /// their `connected` line: a reused pid in a copy (older lines) neither
    /// takes nor overwrites a saved address, nor does a late one.
    #[test]
    fn sftp_addresses_join_within_the_login_window() {
        let at = |hms: &str, pid: u32, msg: &str| format!("2026-11-08 {hms},000 mod_sftp/1.1.1[{pid}]: {msg}");
        let conn = |ip: &str| format!("client ({ip}:40000) connected to server (192.0.2.1:2200)");
        let auth = |u: &str| format!("user '{u}' authenticated via 'password' method");
        let mut cx = crate::sessions::test_context(TimeZone::Utc, 0, "ftp1");
        let mut run = |d: &mut ProftpdDecoder, lines: &[String]| {
            let mut out = Vec::new();
            for l in lines {
                assert_eq!(d.line(&mut cx, l.as_bytes(), &mut out), Outcome::Used);
            }
            crate::sessions::logins(&out)
                .iter()
                .map(|l| (l.user.clone(), l.client_ip.map(|a| a.to_string())))
                .collect::<Vec<_>>()
        };
        let mut first = ProftpdDecoder::default();
        run(
            &mut first,
            &[
                at("16:00:00", 7, &auth("early")),
                at("16:00:00", 8, &conn("192.0.2.80")),
                at("17:00:00", 7, &conn("192.0.2.70")),
            ],
        );
        let saved = first.save();
        // A copy of the same lines: pid 7's old lines neither take the
        // saved address nor overwrite it.
        let mut copy = ProftpdDecoder::default();
        copy.restore(saved.clone());
        let got = run(&mut copy, &[at("15:59:00", 7, &conn("198.51.100.1")), at("16:00:00", 7, &auth("early"))]);
        assert_eq!(got, [("early".into(), Some("198.51.100.1".to_string()))]);
        assert_eq!(copy.save(), saved);
        // The next run: pid 7 within the window takes its address; pid 8,
        // connected an hour before, is past it.
        let mut next = ProftpdDecoder::default();
        next.restore(saved);
        let got = run(&mut next, &[at("17:00:01", 7, &auth("grace")), at("17:00:02", 8, &auth("late"))]);
        assert_eq!(got, [("grace".into(), Some("192.0.2.70".to_string())), ("late".into(), None)]);
        assert!(next.save().is_empty());
    }
}
