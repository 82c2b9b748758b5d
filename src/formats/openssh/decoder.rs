//! OpenSSH SFTP sessions joined by (server host, pid), and sshd logins.
//!
//! An `internal-sftp`/`sftp-server` process logs `session opened for local
//! user U from [IP]`, then `open`/`close` pairs, then `session closed`; the
//! `close` line carries the byte counts but neither user nor address, so
//! they come from the session. Each sshd `Failed …` line is one attempt
//! (`message repeated N times` is N); PAM's `authentication failure` lines
//! and `Invalid user` describe the same attempts and are not counted again.
//!
//! sshd's `-E` file has no time stamp, no host and no pid at all. Its
//! `Accepted`/`Failed` lines are held until the syslog file of the same
//! server supplies the PAM line of the same attempt (`session opened for
//! user U`, `authentication failure … user=U` or `rhost=IP`, `PAM N more
//! authentication failures`), whose time and host they then take — in
//! order, per user (per address for unknown users). PAM lines of an sshd
//! that logs its own auth lines to syslog are recognised by pid and never
//! anchor anything. Both queues are bounded and carried to the next run,
//! so the two files may come in either order or in different runs.
//!
//! Sessions and queues are joined by pid and by order, with no bound in
//! time, so the saved state only meets lines that follow it
//! ([`Joins::Continuing`]): the next run of the same file, the next file
//! after a rotation, an `-E` file (no time stamps: it continues anything).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::formats::Format;
use crate::enrich::hostkey::IdKey;
use crate::formats::openssh::{self, is_openssh_program, unvis, Message};
use crate::model::{
    Direction, Event, Granularity, Login, LoginOutcome, Micros, Protocol, Status, Transfer,
};
use crate::sessions::{client_ip, Decoder, Joins, LineContext, Outcome};

const TAG_UP: u8 = 41;
const TAG_DOWN: u8 = 42;
const TAG_DELETE: u8 = 43;
const TAG_LOGIN: u8 = 44;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SftpSession {
    sid: Arc<str>,
    user: String,
    ip: Option<IpAddr>,
    started: Micros,
    /// Open files: escaped path → time of the `open` line.
    opens: Vec<(String, Micros)>,
}

/// Kind of an authentication attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Auth {
    Ok,
    Failed,
    Invalid,
}

/// An `Accepted`/`Failed` line of an sshd `-E` file, waiting for its time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Untimed {
    kind: Auth,
    user: String,
    ip: Option<IpAddr>,
    method: String,
    line: Vec<u8>,
}

/// A PAM line that dates one attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Anchor {
    kind: Auth,
    user: Option<String>,
    ip: Option<IpAddr>,
    time: Micros,
    host: Arc<str>,
    pid: u32,
}

/// Most untimed attempts, anchors and timed sshd pids kept.
const AUTH_QUEUE: usize = 10_000;

/// Decoder for OpenSSH logs (syslog with BSD or RFC 3339 time stamps, and
/// sshd `-E` files).
#[derive(Debug, Default)]
pub struct OpensshDecoder {
    /// (server host, pid) → session.
    sessions: HashMap<(Arc<str>, u32), SftpSession>,
    hosts: HashMap<Vec<u8>, Arc<str>>,
    untimed: VecDeque<Untimed>,
    anchors: VecDeque<Anchor>,
    /// sshd processes seen logging their own auth lines to syslog, oldest
    /// first, and the same as a set for lookups.
    timed_pids: VecDeque<(Arc<str>, u32)>,
    timed_set: HashSet<(Arc<str>, u32)>,
    /// User names and login methods, shared by the events.
    names: crate::model::Names,
}

/// What an [`OpensshDecoder`] carries from one run to the next.
#[derive(Serialize, Deserialize)]
pub struct State {
    sessions: Vec<(String, u32, SftpSession)>,
    untimed: VecDeque<Untimed>,
    anchors: VecDeque<Anchor>,
    timed_pids: VecDeque<(String, u32)>,
}

impl OpensshDecoder {
    /// Emits every waiting `-E` attempt that now has an anchor.
    fn match_auth(&mut self, cx: &mut LineContext, out: &mut Vec<Event>) {
        let mut i = 0;
        while i < self.untimed.len() {
            let u = &self.untimed[i];
            let found = self.anchors.iter().position(|a| {
                a.kind == u.kind
                    && match u.kind {
                        Auth::Invalid => a.ip == u.ip,
                        _ => a.user.as_deref() == Some(&*u.user),
                    }
            });
            let Some(j) = found else {
                i += 1;
                continue;
            };
            let a = self.anchors.remove(j).expect("found above");
            let u = self.untimed.remove(i).expect("index in range");
            out.push(Event::Login(Login {
                id: cx.ids.id(a.time, a.host.as_bytes(), &u.line, TAG_LOGIN),
                time: a.time,
                protocol: Protocol::Ssh,
                user: self.names.get(&u.user),
                client_ip: u.ip.or(a.ip),
                client_host: None,
                outcome: match u.kind {
                    Auth::Ok => LoginOutcome::Ok,
                    Auth::Failed => LoginOutcome::Failed,
                    Auth::Invalid => LoginOutcome::InvalidUser,
                },
                method: Some(self.names.get(&u.method)),
                session: Some(Arc::from(format!("sshd {}", a.pid))),
                server_host: a.host,
                source: Format::Openssh.source(),
                origin: None,
            }));
        }
    }

    fn push_anchor(&mut self, a: Anchor) {
        if self.anchors.len() >= AUTH_QUEUE {
            self.anchors.pop_front();
        }
        self.anchors.push_back(a);
    }

    fn timed(&self, host: &Arc<str>, pid: u32) -> bool {
        self.timed_set.contains(&(host.clone(), pid))
    }

    /// An sshd process that logs its own auth lines: its PAM lines are not
    /// anchors.
    fn mark_timed(&mut self, host: &Arc<str>, pid: u32) {
        if !self.timed(host, pid) {
            if self.timed_pids.len() >= AUTH_QUEUE {
                if let Some(old) = self.timed_pids.pop_front() {
                    self.timed_set.remove(&old);
                }
            }
            self.timed_pids.push_back((host.clone(), pid));
            self.timed_set.insert((host.clone(), pid));
        }
        self.anchors.retain(|a| !(a.pid == pid && a.host == *host));
    }

    /// A line of an sshd `-E` file (no time stamp; some versions put
    /// `sshd[pid]: ` or `sshd-session[pid]: ` before the message).
    fn untimed_line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome {
        let msg = openssh::strip_untimed_tag(line);
        let (kind, method, user, addr, repeat) = match openssh::parse_sshd(msg) {
            Ok(Message::Accepted { method, user, addr }) => (Auth::Ok, method, user, addr, 1),
            Ok(Message::Failed { method, user, addr, invalid, repeat }) => {
                (if invalid { Auth::Invalid } else { Auth::Failed }, method, user, addr, repeat)
            }
            Ok(_) => return Outcome::Ignored,
            Err(reason) => return Outcome::Rejected(reason),
        };
        for _ in 0..repeat {
            if self.untimed.len() >= AUTH_QUEUE {
                self.untimed.pop_front();
            }
            self.untimed.push_back(Untimed {
                kind,
                user: crate::model::lossy(user),
                ip: client_ip(addr),
                method: crate::model::lossy(method),
                line: line.to_vec(),
            });
        }
        self.match_auth(cx, out);
        Outcome::Used
    }

    fn host(&mut self, h: &[u8]) -> Arc<str> {
        if let Some(a) = self.hosts.get(h) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(String::from_utf8_lossy(h).as_ref());
        self.hosts.insert(h.to_vec(), a.clone());
        a
    }
}

impl Decoder for OpensshDecoder {
    /// Open SFTP sessions, `-E` attempts waiting for their time, anchors.
    type State = State;

    const JOINS: Joins = Joins::Continuing;

    fn scope(&self) -> &'static str {
        "openssh"
    }

    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome {
        let Some(p) = cx.prefix.parse(line, &mut cx.clock) else {
            return match crate::formats::prefix::prefix_shape(line) {
                // sshd's own line whose time stamp does not read.
                Some(Some(prog)) if is_openssh_program(prog) => {
                    Outcome::Rejected("unreadable time stamp in the syslog prefix")
                }
                Some(_) => Outcome::Ignored,
                None => self.untimed_line(cx, line, out),
            };
        };
        let Some(program) = p.program else { return Outcome::Rejected("no program name") };
        if !is_openssh_program(program) {
            return Outcome::Ignored;
        }
        let sftp = program == b"sftp-server" || program == b"internal-sftp";
        let msg = if sftp { openssh::parse_sftp(p.msg) } else { openssh::parse_sshd(p.msg) };
        let msg = match msg {
            Ok(m) => m,
            Err(reason) => return Outcome::Rejected(reason),
        };
        let server = self.host(p.host.unwrap_or(cx.server_host.as_bytes()));
        let time = p.time;
        let pid = p.pid.unwrap_or(0);
        match msg {
            Message::Other => {
                if !sftp && p.msg.starts_with(b"Invalid user ") {
                    self.mark_timed(&server, pid);
                }
                return Outcome::Ignored;
            }
            Message::PamSessionOpened { user } => {
                if self.timed(&server, pid) {
                    return Outcome::Ignored;
                }
                self.push_anchor(Anchor {
                    kind: Auth::Ok,
                    user: Some(crate::model::lossy(user)),
                    ip: None,
                    time,
                    host: server,
                    pid,
                });
                self.match_auth(cx, out);
            }
            Message::PamAuthFailure { user, rhost, count } => {
                if self.timed(&server, pid) {
                    return Outcome::Ignored;
                }
                for _ in 0..count {
                    self.push_anchor(Anchor {
                        kind: if user.is_some() { Auth::Failed } else { Auth::Invalid },
                        user: user.map(crate::model::lossy),
                        ip: client_ip(rhost),
                        time,
                        host: server.clone(),
                        pid,
                    });
                }
                self.match_auth(cx, out);
            }
            Message::SessionOpened { user, addr } => {
                let sess = SftpSession {
                    sid: Arc::from(format!("{pid}@{}", time.div_euclid(1_000_000))),
                    user: crate::model::lossy(user),
                    ip: client_ip(addr),
                    started: time,
                    opens: Vec::new(),
                };
                self.sessions.insert((server, pid), sess);
            }
            Message::SessionClosed => {
                self.sessions.remove(&(server, pid));
            }
            Message::Open { path } => {
                if let Some(s) = self.sessions.get_mut(&(server, pid)) {
                    let path = crate::model::lossy(path);
                    s.opens.retain(|(p, _)| *p != path);
                    s.opens.push((path, time));
                }
            }
            Message::Close { path, read, written, forced } => {
                let key = (server.clone(), pid);
                let sess = self.sessions.get_mut(&key);
                let start = sess.as_ref().and_then(|s| {
                    let raw = String::from_utf8_lossy(path);
                    s.opens.iter().rev().find(|(p, _)| *p == raw).map(|(_, t)| *t)
                });
                if let Some(s) = sess {
                    let raw = String::from_utf8_lossy(path);
                    s.opens.retain(|(p, _)| *p != raw);
                }
                if read == 0 && written == 0 {
                    return Outcome::Ignored; // a probe: open and close without data
                }
                let s = self.sessions.get(&key);
                let decoded = unvis(path).into_owned();
                for (direction, bytes, tag) in
                    [(Direction::Upload, written, TAG_UP), (Direction::Download, read, TAG_DOWN)]
                {
                    if bytes == 0 {
                        continue;
                    }
                    out.push(Event::Transfer(Transfer {
                        id: cx.ids.id(time, server.as_bytes(), line, tag),
                        end: time,
                        start,
                        protocol: Protocol::Sftp,
                        direction,
                        status: if forced { Status::Interrupted } else { Status::Completed },
                        bytes,
                        wire_bytes: None,
                        file_size: None,
                        path: Some(decoded.clone()),
                        module: None,
                        user: self.names.get(s.map_or("unknown", |s| s.user.as_str())),
                        client_ip: s.and_then(|s| s.ip),
                        client_host: None,
                        session: s.map(|s| s.sid.clone()),
                        server_host: server.clone(),
                        source: Format::Openssh.source(),
                        origin: None,
                        granularity: Granularity::File,
                    }));
                }
            }
            Message::Remove { path } => {
                let s = self.sessions.get(&(server.clone(), pid));
                out.push(Event::Transfer(Transfer {
                    id: cx.ids.id(time, server.as_bytes(), line, TAG_DELETE),
                    end: time,
                    start: None,
                    protocol: Protocol::Sftp,
                    direction: Direction::Delete,
                    status: Status::Completed,
                    bytes: 0,
                    wire_bytes: None,
                    file_size: None,
                    path: Some(unvis(path).into_owned()),
                    module: None,
                    user: self.names.get(s.map_or("unknown", |s| s.user.as_str())),
                    client_ip: s.and_then(|s| s.ip),
                    client_host: None,
                    session: s.map(|s| s.sid.clone()),
                    server_host: server,
                    source: Format::Openssh.source(),
                    origin: None,
                    granularity: Granularity::File,
                }));
            }
            Message::Accepted { .. } | Message::Failed { .. } => {
                let (method, user, addr, outcome, repeat) = match msg {
                    Message::Accepted { method, user, addr } => (method, user, addr, LoginOutcome::Ok, 1),
                    Message::Failed { method, user, addr, invalid, repeat } => {
                        let outcome = if invalid { LoginOutcome::InvalidUser } else { LoginOutcome::Failed };
                        (method, user, addr, outcome, repeat)
                    }
                    _ => unreachable!("matched above"),
                };
                self.mark_timed(&server, pid);
                let session: Arc<str> = Arc::from(format!("sshd {pid}"));
                for _ in 0..repeat {
                    out.push(Event::Login(Login {
                        id: cx.ids.id(time, server.as_bytes(), line, TAG_LOGIN),
                        time,
                        protocol: Protocol::Ssh,
                        user: self.names.get_bytes(user),
                        client_ip: client_ip(addr),
                        client_host: None,
                        outcome,
                        method: Some(self.names.get_bytes(method)),
                        session: Some(session.clone()),
                        server_host: server.clone(),
                        source: Format::Openssh.source(),
                        origin: None,
                    }));
                }
            }
        }
        Outcome::Used
    }

    fn finish(&mut self, _ids: &IdKey, _out: &mut Vec<Event>) {
        // Files still open when the log ends are either still being moved or
        // will show up as `forced close`: nothing to emit yet. Sessions idle
        // for long are dropped to keep the state small.
        let newest = self.sessions.values().map(|s| s.started).max().unwrap_or(0);
        self.sessions.retain(|_, s| newest - s.started < 7 * 24 * 3600 * 1_000_000);
    }

    fn save(&self) -> State {
        let mut sessions: Vec<(String, u32, SftpSession)> =
            self.sessions.iter().map(|((h, p), s)| (h.to_string(), *p, s.clone())).collect();
        sessions.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        let state = State {
            sessions,
            untimed: self.untimed.clone(),
            anchors: self.anchors.clone(),
            timed_pids: self.timed_pids.iter().map(|(h, p)| (h.to_string(), *p)).collect(),
        };
        state
    }

    fn open_sessions(&self) -> Vec<crate::sessions::OpenSession> {
        let open = self.sessions.iter().map(|((h, _), s)| (h, s.started));
        open.map(|(h, since)| crate::sessions::OpenSession { server_host: Some(h.to_string()), since }).collect()
    }

    fn restore(&mut self, st: State) {
        self.sessions = st.sessions.into_iter().map(|(h, p, s)| ((Arc::from(h), p), s)).collect();
        self.untimed = st.untimed;
        self.anchors = st.anchors;
        self.timed_pids = st.timed_pids.into_iter().map(|(h, p)| (Arc::from(h), p)).collect();
        self.timed_set = self.timed_pids.iter().cloned().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::time::{days_from_civil, rfc3339, TimeZone};

    #[test]
    fn fixture_sessions_and_logins() {
        let mut d = OpensshDecoder::default();
        let mut cx = crate::sessions::test_context(TimeZone::Utc, days_from_civil(2026, 11, 20) * 86_400, "unused");
        let mut out = Vec::new();
        for line in include_bytes!("../../../testdata/openssh/auth.log").split(|&c| c == b'\n') {
            if !line.is_empty() {
                assert!(!matches!(d.line(&mut cx, line, &mut out), Outcome::Rejected(_)));
            }
        }
        let t = crate::sessions::transfers(&out);
        let got: Vec<_> = t
            .iter()
            .map(|t| (t.direction, t.status, t.bytes, &*t.user, t.path.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            vec![
                (Direction::Upload, Status::Completed, 1_464_813, "bob", "/home/bob/café menu.txt"),
                (Direction::Download, Status::Completed, 345_678, "bob", "/home/bob/report.pdf"),
                (Direction::Delete, Status::Completed, 0, "bob", "/home/bob/old\nline.txt"),
                (Direction::Upload, Status::Interrupted, 2_872_320, "bob", "/home/bob/big.img"),
                (Direction::Upload, Status::Completed, 20, "carol", "/srv/x.bin"),
                (Direction::Download, Status::Completed, 10, "carol", "/srv/x.bin"),
            ]
        );
        assert_eq!(t[0].client_ip.unwrap().to_string(), "2001:db8::7");
        assert_eq!(rfc3339(t[0].start.unwrap()), "2026-11-01T00:00:03Z", "start from the open line");
        assert_eq!(&*t[0].server_host, "host");
        assert_eq!(rfc3339(t[5].end), "2026-11-01T00:01:01.000001Z");
        let l: Vec<_> = crate::sessions::logins(&out).iter().map(|l| (&*l.user, l.outcome)).collect();
        // One attempt per Failed line (3 for carol via "message repeated");
        // Invalid user and PAM lines are the same attempts, not more.
        assert_eq!(
            l,
            vec![
                ("bob", LoginOutcome::Ok),
                ("admin", LoginOutcome::InvalidUser),
                ("carol", LoginOutcome::Failed),
                ("carol", LoginOutcome::Failed),
                ("carol", LoginOutcome::Failed),
            ]
        );
        let mut ids: Vec<u64> = out.iter().map(|e| e.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), out.len());
    }
}
