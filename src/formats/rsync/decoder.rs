//! rsyncd connections joined by pid.
//!
//! rsyncd forks one process per connection, so the pid (with the server
//! host) identifies a connection until the next `connect from` on that pid.
//! Per-file lines become transfers at once. A connection that asked for a
//! transfer but logged no per-file line (the default `transfer logging =
//! no`) becomes one session-level transfer from its `sent … received …`
//! summary, in the direction of its request, as rsyncstats counts them; an
//! `rsync error` turns it into an interrupted transfer. Bytes are never
//! counted twice: once a server is seen logging per-file lines, summaries of
//! its connections are not transfers.
//!
//! The open connections are saved between runs: a connection goes on in the
//! next cron run, or in the next file after a rotation. Pids are reused, so
//! a saved connection must only meet lines that follow it
//! ([`Joins::Continuing`]): a copy of the log read from its start has the
//! same pids early on, and its `connect from` would close the saved
//! connections as interrupted.
//!
//! Finished connections are closed in bulk (`RsyncDecoder::prune`) once
//! the open ones of all server hosts together reach a threshold, so memory
//! (and the state saved with every commit) stays flat however many hosts
//! one log holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::formats::Format;
use crate::enrich::hostkey::IdKey;
use crate::formats::prefix::Prefixed;
use crate::formats::rsync::{escaped, is_rsync_program, parse_message, unescape, FileLine, LogFormat, Record, Request};
use crate::model::{
    same_bytes, text_hash, Direction, Event, FastHash, Granularity, Login, LoginOutcome, Micros, Names, Protocol, Status,
    Transfer, ANONYMOUS,
};
use crate::sessions::{client_ip, Decoder, Joins, LineContext, Outcome, Texts};

const TAG_FILE: u8 = 1;
const TAG_LOGIN: u8 = 2;
const TAG_AUTH_FAILED: u8 = 3;
const TAG_SESSION: u8 = 4;

/// How long an open connection without its final lines is kept before it
/// is closed as interrupted (relative to the newest line of its server).
const STALE_MICROS: Micros = 24 * 3600 * 1_000_000;

/// Open connections of all server hosts together above which finished and
/// idle ones are closed; the threshold then doubles with what stays open,
/// so pruning costs amortised O(1) per connection and memory stays bounded
/// whatever the number of hosts.
const PRUNE_AT: usize = 1024;

/// Time after its summary or error line after which a connection is
/// surely over (its last lines follow within the same second).
const GRACE_MICROS: Micros = 60 * 1_000_000;

/// Idle time after which a connection that requested nothing is dropped.
const IDLE_MICROS: Micros = 3600 * 1_000_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Session {
    /// `pid@start-seconds`, the session id stored with its events.
    sid: Arc<str>,
    started: Micros,
    last: Micros,
    /// Client address as logged, and parsed.
    addr: Arc<str>,
    ip: Option<IpAddr>,
    host: Option<Arc<str>>,
    request: Option<Request>,
    module: Option<Arc<str>>,
    path: Option<String>,
    user: Option<Arc<str>>,
    /// Per-file lines of any kind (files, dirs, deletes).
    items: u32,
    /// Files transferred.
    files: u32,
    /// Bytes of those files (wire bytes when known, else length).
    file_bytes: u64,
    /// `(sent, received, total, time, id)` of the summary line.
    summary: Option<(u64, u64, u64, Micros, u64)>,
    /// `(code, time, id)` of the first `rsync error`.
    error: Option<(u32, Micros, u64)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostState {
    /// The server writes per-file lines (`transfer logging = yes`).
    transfer_logging: bool,
    /// Newest line time seen.
    newest: Micros,
    sessions: Vec<(u32, Session)>,
}

/// Decoder for rsyncd logs.
#[derive(Debug)]
pub struct RsyncDecoder {
    format: LogFormat,
    /// Per server host (in the order first seen), its open connections.
    hosts: Vec<HostIndex>,
    /// Where each server host, as logged, is in `hosts`.
    host_at: HashMap<Box<[u8]>, usize, FastHash>,
    /// The server host of the previous line, as logged, and its place in
    /// `hosts` (out of range: none): the next line's is nearly always the
    /// same, found by comparing it rather than hashing it.
    last_host: (Vec<u8>, usize),
    /// User names, modules and the login method, shared by the events.
    names: Names,
    /// Client addresses as logged, shared by the sessions.
    addrs: Addrs,
    /// The login method of every rsync login.
    password: Arc<str>,
    /// What closing connections are given ([`close`]).
    closed: Closed,
    /// Open connections of all hosts.
    open: usize,
    /// `open` at which the next [`prune`](RsyncDecoder::prune) runs.
    prune_at: usize,
    /// Places in `hosts` in name order (closing order must not depend on a
    /// hash map's), kept as hosts are added.
    order: Vec<usize>,
    /// The pids a prune closes, a buffer kept between prunes.
    closing: Vec<u32>,
    /// [`sort_pids`]'s second buffer, kept between prunes.
    sorting: Vec<u32>,
    /// The most events one prune emitted: the room a batch just handed
    /// over is given on top of its capacity ([`RsyncDecoder::make_room`]).
    prune_room: usize,
    /// The capacity the engine gave the last batch given that room: a
    /// batch with more has had it (the same batch, or a stored one the
    /// engine fills again).
    roomy: usize,
    /// The shared texts were made anew for the batch being filled
    /// ([`RsyncDecoder::renew`]).
    renewed: bool,
}

/// Client addresses as logged, each with its parse ([`client_ip`]) and
/// the client host name last logged with it: a client connects again and
/// again, and its address text and host name are then shared (by its
/// sessions and their events) and not parsed or copied again. Bounded like
/// [`Names`], and kept like them by the hash of the text, compared inline
/// ([`same_bytes`]): an address whose hash another holds takes its place,
/// and one that is no UTF-8 (whose text differs) is made anew each time.
#[derive(Debug, Default)]
struct Addrs {
    by_hash: HashMap<u64, Addr, FastHash>,
    /// The text [`session_id`] writes a new session's id in.
    sid: String,
}

/// A client address as logged (text), parsed, and the client host name
/// last logged with it.
#[derive(Debug)]
struct Addr {
    text: Arc<str>,
    ip: Option<IpAddr>,
    host: Option<Arc<str>>,
}

impl Addrs {
    /// The text and the address of client address `b` as logged, and the
    /// client host name `host` logged with it ([`client_host`]).
    fn get(&mut self, b: &[u8], host: &[u8]) -> (Arc<str>, Option<IpAddr>, Option<Arc<str>>) {
        let h = text_hash(b);
        let a = match self.by_hash.get_mut(&h) {
            Some(a) if same_bytes(a.text.as_bytes(), b) => a,
            _ => {
                if self.by_hash.len() >= Names::MAX {
                    self.by_hash.clear();
                }
                let a = Addr { text: crate::model::text(b).into(), ip: client_ip(b), host: None };
                let slot = self.by_hash.entry(h).insert_entry(a);
                slot.into_mut()
            }
        };
        let host = match &a.host {
            Some(h) if same_bytes(h.as_bytes(), host) => Some(h.clone()),
            _ => client_host(host).inspect(|h| a.host = Some(h.clone())),
        };
        (a.text.clone(), a.ip, host)
    }
}

#[derive(Debug, Default)]
struct HostIndex {
    name: Arc<str>,
    transfer_logging: bool,
    newest: Micros,
    sessions: HashMap<u32, Session, FastHash>,
    /// `newest` at the previous prune: a host whose newest line did not
    /// move since is idle and its map is shrunk (maps do not shrink on
    /// their own, and many hosts read one after the other would each keep
    /// the room of their busiest moment).
    pruned_at: Micros,
}

impl Session {
    /// Whether its end was read (summary or error line), or it never asked
    /// for anything: what is left is its closing at the end of the run.
    fn ended(&self) -> bool {
        self.summary.is_some() || self.error.is_some() || self.request.is_none()
    }
}

impl RsyncDecoder {
    /// A decoder matching per-file lines with `format`.
    pub fn new(format: LogFormat) -> RsyncDecoder {
        RsyncDecoder {
            format,
            hosts: Vec::new(),
            host_at: HashMap::default(),
            last_host: (Vec::new(), usize::MAX),
            names: Names::default(),
            addrs: Addrs::default(),
            password: Arc::from("password"),
            closed: Closed { anonymous: Arc::from(ANONYMOUS), no_sid: Arc::from("") },
            open: 0,
            prune_at: PRUNE_AT,
            order: Vec::new(),
            closing: Vec::new(),
            sorting: Vec::new(),
            prune_room: 0,
            roomy: 0,
            renewed: false,
        }
    }
}

/// The path `b` as logged, its escapes decoded ([`unescape`]), in a
/// recycled string ([`Texts`]).
fn path_text(texts: &mut Texts, b: &[u8]) -> String {
    texts.string(&unescape(b))
}

/// The client host name `h` as logged, if it is one.
fn client_host(h: &[u8]) -> Option<Arc<str>> {
    match h {
        b"UNDETERMINED" | b"UNKNOWN" | b"" => None,
        h => Some(crate::model::text(h).into()),
    }
}

fn new_session(addrs: &mut Addrs, texts: &mut Texts, pid: u32, time: Micros, addr: &[u8], host: &[u8]) -> Session {
    let sid = session_id(&mut addrs.sid, texts, pid, time);
    let (addr, ip, host) = addrs.get(addr, host);
    // Every field given: `..Session::default()` made (and dropped) a
    // default session id and address too.
    Session {
        sid,
        started: time,
        last: time,
        addr,
        ip,
        host,
        request: None,
        module: None,
        path: None,
        user: None,
        items: 0,
        files: 0,
        file_bytes: 0,
        summary: None,
        error: None,
    }
}

/// `pid@start-seconds`, the session id, written without the formatting
/// machinery (one per connection) in `buf`, a text kept for it (from
/// bytes, it was validated as UTF-8 again), then over a session id the
/// store thread handed back ([`Texts::shared`]) when there is one.
fn session_id(buf: &mut String, texts: &mut Texts, pid: u32, time: Micros) -> Arc<str> {
    let (mut p, mut s) = (itoa::Buffer::new(), itoa::Buffer::new());
    buf.clear();
    buf.push_str(p.format(pid));
    buf.push('@');
    buf.push_str(s.format(time.div_euclid(1_000_000)));
    texts.shared(buf)
}

/// The client host name `host` gives an event of client address `ip`,
/// unless the event would not keep it ([`LineContext::keep_hosts`]).
fn host_for(keep_hosts: bool, ip: Option<IpAddr>, host: impl FnOnce() -> Option<Arc<str>>) -> Option<Arc<str>> {
    if keep_hosts || ip.is_none() {
        host()
    } else {
        None
    }
}

/// The shared name of `b` as logged, its escapes decoded ([`unescape`]);
/// a name without escapes is looked for by its bytes, not validated as
/// UTF-8 again. A name seen lately is found before `b` is searched for
/// escapes: those names hold no backslash ([`Names::recent`]), so `b`
/// equal to one has none.
fn intern(names: &mut Names, b: &[u8]) -> Arc<str> {
    if let Some(a) = names.recent(b) {
        return a;
    }
    if escaped(b) {
        names.get(&unescape(b))
    } else {
        names.get_bytes(b)
    }
}

/// The module (interned) and the path of a `module/path` request.
fn split_module(names: &mut Names, texts: &mut Texts, mp: &[u8]) -> (Arc<str>, Option<String>) {
    match memchr::memchr(b'/', mp) {
        Some(i) => (intern(names, &mp[..i]), Some(&mp[i + 1..]).filter(|p| !p.is_empty()).map(|p| path_text(texts, p))),
        None => (intern(names, mp), None),
    }
}

fn auth_outcome(reason: &[u8]) -> LoginOutcome {
    if reason.starts_with(b"no matching rule")
        || reason.starts_with(b"secret not found")
        || reason.starts_with(b"missing secret")
    {
        LoginOutcome::InvalidUser
    } else {
        LoginOutcome::Failed
    }
}

impl RsyncDecoder {
    /// The place in `hosts` of server host `bytes` (as logged), added if new.
    fn host_index(&mut self, bytes: &[u8]) -> usize {
        let (last, at) = &self.last_host;
        if *at < self.hosts.len() && same_bytes(last, bytes) {
            return *at;
        }
        let at = match self.host_at.get(bytes) {
            Some(&at) => at,
            None => {
                let name: Arc<str> = Arc::from(String::from_utf8_lossy(bytes).as_ref());
                self.hosts.push(HostIndex { name, ..HostIndex::default() });
                self.host_at.insert(bytes.into(), self.hosts.len() - 1);
                self.sort_hosts();
                self.hosts.len() - 1
            }
        };
        let last = &mut self.last_host;
        last.0.clear();
        last.0.extend_from_slice(bytes);
        last.1 = at;
        at
    }

    /// Makes the texts that every event shares anew — the server hosts'
    /// names and the login method — as a new batch starts (`out` handed
    /// over empty). Each event holds a counted reference to them: this
    /// thread increments the counts as it fills a batch, and the store
    /// thread decrements them as it drops a stored one, at the same time,
    /// so a count shared by every event moved between the two cores'
    /// caches at nearly every event. With texts of their own per batch,
    /// each thread counts on its own. (Measured with the two in turn, 25
    /// to 41 runs each, medians: `events` 1.1–4.3 % less wall time in five
    /// comparisons. Renewing the user names, modules and client addresses
    /// too, a thousand allocations per batch in the allocation test, gained
    /// no more.)
    fn renew(&mut self) {
        self.renewed = true;
        for hi in &mut self.hosts {
            hi.name = Arc::from(&*hi.name);
        }
        self.password = Arc::from(&*self.password);
    }

    /// Puts the hosts in name order again (one was added).
    fn sort_hosts(&mut self) {
        let hosts = &self.hosts;
        self.order.clear();
        self.order.extend(0..hosts.len());
        self.order.sort_by(|&a, &b| hosts[a].name.cmp(&hosts[b].name));
    }

    /// Gives a batch just handed over (empty, with a capacity chosen by the
    /// engine) room for one more prune's events: a prune pushes up to a
    /// thousand events at once, and one that overflows a nearly full batch
    /// would move the whole batch to a larger allocation. The empty batch
    /// is replaced by one with that room, nothing to move; the room is what
    /// a prune emitted at most, at most a quarter of the batch, so memory
    /// stays as flat as the exact reserve of [`prune_host`] keeps it.
    fn make_room(&mut self, out: &mut Vec<Event>) {
        if !out.is_empty() || out.capacity() == 0 || self.prune_room == 0 {
            return;
        }
        let given = out.capacity();
        if self.roomy > 0 && given > self.roomy {
            return;
        }
        *out = Vec::with_capacity(given + self.prune_room.min(given / 4));
        self.roomy = given;
    }

    /// Handles a line whose prefix `p` was parsed already (the syslog
    /// router parsed it to pick the decoder).
    pub fn prefixed(&mut self, cx: &mut LineContext, line: &[u8], p: &Prefixed<'_>, out: &mut Vec<Event>) -> Outcome {
        if p.program.is_some_and(|prog| !is_rsync_program(prog)) {
            return Outcome::Ignored;
        }
        self.of_rsync(cx, line, p, out)
    }

    /// [`RsyncDecoder::prefixed`] of a line whose program is known to be
    /// rsync's, or that names none (the syslog router checked it: not
    /// checked again per line).
    pub fn of_rsync(&mut self, cx: &mut LineContext, line: &[u8], p: &Prefixed<'_>, out: &mut Vec<Event>) -> Outcome {
        if out.is_empty() {
            if !self.renewed {
                self.renew();
            }
        } else {
            self.renewed = false;
        }
        self.make_room(out);
        let Some(pid) = p.pid else {
            return Outcome::Rejected("rsyncd line without a [pid]");
        };
        let record = match parse_message(p.msg, &self.format) {
            Ok(r) => r,
            Err(reason) => return Outcome::Rejected(reason),
        };
        let server_bytes: &[u8] = p.host.unwrap_or(cx.server_host.as_bytes());
        let at = self.host_index(server_bytes);
        let hi = &mut self.hosts[at];
        hi.newest = hi.newest.max(p.time);
        let time = p.time;
        match record {
            Record::Connect { host, addr } => {
                let mut hi = hi;
                if let Some(mut old) = hi.sessions.remove(&pid) {
                    // The same connect line read again (a copy of lines already
                    // read) restarts that connection; it has not ended.
                    if !(old.started == time && old.addr.as_bytes() == addr) {
                        close(&hi.name, pid, &mut old, hi.transfer_logging, &self.closed, &cx.ids.key(), out);
                    }
                    self.open -= 1;
                }
                if self.open >= self.prune_at {
                    self.open = self.prune(&cx.ids.key(), &mut cx.texts, out);
                    self.prune_at = (self.open * 2).max(PRUNE_AT);
                    hi = &mut self.hosts[at];
                }
                hi.sessions.insert(pid, new_session(&mut self.addrs, &mut cx.texts, pid, time, addr, host));
                self.open += 1;
            }
            Record::Request { request, module_path, user, host, addr } => {
                let s = hi.sessions.entry(pid).or_insert_with(|| {
                    self.open += 1;
                    new_session(&mut self.addrs, &mut cx.texts, pid, time, addr, host)
                });
                s.last = time;
                let (module, path) = split_module(&mut self.names, &mut cx.texts, module_path);
                s.request = Some(request);
                s.module = Some(module);
                s.path = path;
                s.user = user.map(|u| intern(&mut self.names, u));
                if let Some(u) = &s.user {
                    let id = cx.ids.id_prefixed(p, server_bytes, line, TAG_LOGIN);
                    out.push(Event::Login(Login {
                        id,
                        time,
                        protocol: Protocol::Rsync,
                        user: u.clone(),
                        client_ip: s.ip,
                        client_host: host_for(cx.keep_hosts, s.ip, || s.host.clone()),
                        outcome: LoginOutcome::Ok,
                        method: Some(self.password.clone()),
                        session: Some(s.sid.clone()),
                        server_host: hi.name.clone(),
                        source: Format::Rsyncd.source(),
                        origin: None,
                    }));
                }
            }
            Record::AuthFailed { module: _, user, reason, host, addr } => {
                let sess = hi.sessions.get(&pid);
                let id = cx.ids.id_prefixed(p, server_bytes, line, TAG_AUTH_FAILED);
                let (_, client_ip, client_host) = self.addrs.get(addr, host);
                out.push(Event::Login(Login {
                    id,
                    time,
                    protocol: Protocol::Rsync,
                    user: intern(&mut self.names, user.unwrap_or(b"unknown")),
                    client_ip,
                    client_host: host_for(cx.keep_hosts, client_ip, || client_host),
                    outcome: if user.is_some() { auth_outcome(reason) } else { LoginOutcome::Failed },
                    method: Some(self.password.clone()),
                    session: sess.map(|s| s.sid.clone()),
                    server_host: hi.name.clone(),
                    source: Format::Rsyncd.source(),
                    origin: None,
                }));
            }
            Record::Summary { sent, received, total } => {
                if let Some(s) = hi.sessions.get_mut(&pid) {
                    s.last = time;
                    let id = cx.ids.id_prefixed(p, server_bytes, line, TAG_SESSION);
                    s.summary = Some((sent, received, total, time, id));
                }
            }
            Record::Error { code } => {
                if let Some(s) = hi.sessions.get_mut(&pid) {
                    s.last = time;
                    if s.error.is_none() {
                        let id = cx.ids.id_prefixed(p, server_bytes, line, TAG_SESSION);
                        s.error = Some((code, time, id));
                    }
                }
            }
            Record::File(f) => {
                hi.transfer_logging = true;
                let id = cx.ids.id_prefixed(p, server_bytes, line, TAG_FILE);
                let s = hi.sessions.get_mut(&pid);
                let keep_hosts = cx.keep_hosts;
                return file_event(f, id, time, &hi.name, s, (&mut self.names, &mut cx.texts, keep_hosts), out);
            }
            Record::Refused => {
                if let Some(s) = hi.sessions.get_mut(&pid) {
                    s.last = time;
                }
            }
            Record::Other => {
                if let Some(s) = hi.sessions.get_mut(&pid) {
                    s.last = time;
                }
                return Outcome::Ignored;
            }
        }
        Outcome::Used
    }
}

impl Decoder for RsyncDecoder {
    /// Per server host, sorted: its open connections by pid.
    type State = Vec<(String, HostState)>;

    const JOINS: Joins = Joins::Continuing;

    fn scope(&self) -> &'static str {
        "rsyncd"
    }

    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome {
        let Some(p) = cx.prefix.parse(line, &mut cx.clock) else {
            return Outcome::Rejected("no rsyncd log-file or syslog prefix");
        };
        self.prefixed(cx, line, &p, out)
    }

    fn finish(&mut self, ids: &IdKey, out: &mut Vec<Event>) {
        for &at in &self.order {
            let hi = &mut self.hosts[at];
            let newest = hi.newest;
            let logging = hi.transfer_logging;
            let mut done: Vec<u32> = hi
                .sessions
                .iter()
                .filter(|(_, s)| s.ended() || newest.saturating_sub(s.last) > STALE_MICROS)
                .map(|(pid, _)| *pid)
                .collect();
            done.sort_unstable();
            for pid in done {
                if let Some(mut s) = hi.sessions.remove(&pid) {
                    close(&hi.name, pid, &mut s, logging, &self.closed, ids, out);
                }
            }
        }
        self.recount();
    }

    fn rekey_ids(&mut self, f: &dyn Fn(u64) -> u64) {
        for s in self.hosts.iter_mut().flat_map(|hi| hi.sessions.values_mut()) {
            if let Some(x) = &mut s.summary {
                x.4 = f(x.4);
            }
            if let Some(x) = &mut s.error {
                x.2 = f(x.2);
            }
        }
    }

    fn save(&self) -> Self::State {
        let mut v: Vec<(String, HostState)> = self
            .hosts
            .iter()
            .map(|hi| {
                let mut sessions: Vec<(u32, Session)> = hi.sessions.iter().map(|(p, s)| (*p, s.clone())).collect();
                sessions.sort_by_key(|(p, _)| *p);
                (hi.name.to_string(), HostState { transfer_logging: hi.transfer_logging, newest: hi.newest, sessions })
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn open_sessions(&self) -> Vec<crate::sessions::OpenSession> {
        // Those ended but held until the end of the run (a follower's
        // stop) are not open.
        let open = self.hosts.iter().flat_map(|hi| {
            hi.sessions.values().filter(|s| !s.ended()).map(|s| (&hi.name, s.started))
        });
        open.map(|(h, since)| crate::sessions::OpenSession { server_host: Some(h.to_string()), since }).collect()
    }

    fn restore(&mut self, state: Self::State) {
        self.hosts.clear();
        self.host_at.clear();
        self.last_host = (Vec::new(), usize::MAX);
        for (h, st) in state {
            let hi = HostIndex {
                transfer_logging: st.transfer_logging,
                newest: st.newest,
                sessions: st.sessions.into_iter().collect(),
                pruned_at: st.newest,
                name: Arc::from(h),
            };
            // A host named twice: the last one holds, as it always did.
            match self.host_at.get(hi.name.as_bytes()) {
                Some(&at) => self.hosts[at] = hi,
                None => {
                    self.host_at.insert(hi.name.as_bytes().into(), self.hosts.len());
                    self.hosts.push(hi);
                }
            }
        }
        self.sort_hosts();
        self.recount();
        self.prune_at = PRUNE_AT;
    }
}

impl RsyncDecoder {
    /// Counts the open connections again (after a bulk close or a restore).
    fn recount(&mut self) {
        self.open = self.hosts.iter().map(|hi| hi.sessions.len()).sum();
    }
}

impl RsyncDecoder {
    /// Closes, host by host in name order, connections that can no longer
    /// matter: finished ones past their grace time, idle ones that
    /// requested nothing, and stale ones; shrinks the maps of hosts idle
    /// since the previous prune. Returns the connections still open.
    fn prune(&mut self, ids: &IdKey, texts: &mut Texts, out: &mut Vec<Event>) -> usize {
        let emitted = out.len();
        let mut open = 0;
        for &at in &self.order {
            let hi = &mut self.hosts[at];
            prune_host(hi, (&mut self.closing, &mut self.sorting), &self.closed, ids, (texts, out));
            if hi.newest == hi.pruned_at {
                hi.sessions.shrink_to_fit();
            }
            hi.pruned_at = hi.newest;
            open += hi.sessions.len();
        }
        self.prune_room = self.prune_room.max(out.len() - emitted);
        open
    }
}

/// [`RsyncDecoder::prune`]'s closing of one host's connections (`old`:
/// a buffer for their pids, and one to sort them with). They are closed
/// where they are in the map and then dropped from it in one pass: taken
/// out one by one, each session was moved twice.
fn prune_host(
    hi: &mut HostIndex,
    (old, sorting): (&mut Vec<u32>, &mut Vec<u32>),
    closed: &Closed,
    ids: &IdKey,
    (texts, out): (&mut Texts, &mut Vec<Event>),
) {
    let newest = hi.newest;
    // What closing a session leaves of it (times, request, summary,
    // error) still says it is over.
    let over = |s: &Session| {
        let idle = newest.saturating_sub(s.last);
        ((s.summary.is_some() || s.error.is_some()) && idle > GRACE_MICROS)
            || (s.request.is_none() && idle > IDLE_MICROS)
            || idle > STALE_MICROS
    };
    old.clear();
    old.extend(hi.sessions.iter().filter(|(_, s)| over(s)).map(|(p, _)| *p));
    if old.is_empty() {
        return;
    }
    sort_pids(old, sorting);
    for (i, &pid) in old.iter().enumerate() {
        if let Some(s) = hi.sessions.get_mut(&pid) {
            if out.len() == out.capacity() {
                // Room for at most one event each of those left, exactly:
                // `out` is a batch about to be handed over once full, and
                // letting it double its capacity for a thousand events
                // would hold twice the memory in every batch in flight.
                // (Reserved once an event needs it: a connection that
                // logged its files owes none. A batch handed over since the
                // previous prune has room already, see
                // [`RsyncDecoder::make_room`].)
                out.reserve_exact(old.len() - i);
            }
            close(&hi.name, pid, s, hi.transfer_logging, closed, ids, out);
        }
    }
    // A path no event took (a connection that logged its files) is
    // filled again by a later connection.
    hi.sessions.retain(|_, s| {
        let over = over(s);
        if let Some(p) = s.path.take_if(|_| over) {
            texts.put(p);
        }
        !over
    });
}

/// Sorts the pids a prune closes (a thousand or so, distinct) in
/// ascending order: a radix sort a byte at a time, over the bytes the
/// largest one has, with `tmp` as its second buffer (a comparison sort
/// took more than closing the connections did).
fn sort_pids(v: &mut Vec<u32>, tmp: &mut Vec<u32>) {
    if v.len() < 64 {
        v.sort_unstable();
        return;
    }
    let max = v.iter().copied().max().unwrap_or(0);
    tmp.clear();
    tmp.resize(v.len(), 0);
    let mut shift = 0;
    while shift < 32 && max >> shift != 0 {
        let mut at = [0usize; 256];
        for &x in v.iter() {
            at[(x >> shift) as usize & 0xff] += 1;
        }
        let mut sum = 0;
        for n in at.iter_mut() {
            (*n, sum) = (sum, sum + *n);
        }
        for &x in v.iter() {
            let slot = &mut at[(x >> shift) as usize & 0xff];
            tmp[*slot] = x;
            *slot += 1;
        }
        std::mem::swap(v, tmp);
        shift += 8;
    }
}

fn file_event(
    f: FileLine<'_>,
    id: u64,
    time: Micros,
    server: &Arc<str>,
    mut s: Option<&mut Session>,
    (names, texts, keep_hosts): (&mut Names, &mut Texts, bool),
    out: &mut Vec<Event>,
) -> Outcome {
    if let Some(s) = s.as_deref_mut() {
        s.last = time;
        s.items = s.items.saturating_add(1);
    }
    let direction = match (f.op, f.itemize) {
        (_, Some(i)) if i.starts_with(b"*deleting") => Direction::Delete,
        (Some(b"del."), _) => Direction::Delete,
        (_, Some(i)) => {
            // YXcstpoguax: Y = '<' sent, '>' received; X = file type.
            if i.get(1) != Some(&b'f') {
                return Outcome::Ignored;
            }
            match i[0] {
                b'<' => Direction::Download,
                b'>' => Direction::Upload,
                _ => return Outcome::Ignored,
            }
        }
        (Some(b"send"), None) => Direction::Download,
        (Some(b"recv"), None) => Direction::Upload,
        _ => return Outcome::Rejected("unknown %o operation (expected send, recv or del.)"),
    };
    let sess = s.as_deref();
    let user = match f.user {
        Some(u) if !u.is_empty() => intern(names, u),
        Some(_) => names.get(ANONYMOUS),
        None => sess.and_then(|s| s.user.clone()).unwrap_or_else(|| names.get(ANONYMOUS)),
    };
    let ip = match (f.addr, sess) {
        (Some(a), Some(s)) if same_bytes(a, s.addr.as_bytes()) => s.ip,
        (Some(a), _) => client_ip(a),
        (None, s) => s.and_then(|s| s.ip),
    };
    let host = host_for(keep_hosts, ip, || match (f.host, sess.and_then(|s| s.host.as_ref())) {
        (Some(h), Some(sh)) if same_bytes(sh.as_bytes(), h) => Some(sh.clone()),
        (Some(h), _) => client_host(h),
        (None, sh) => sh.cloned(),
    });
    let module = f.module.map(|m| intern(names, m)).or_else(|| sess.and_then(|s| s.module.clone()));
    let (bytes, wire) = match direction {
        Direction::Delete => (0, None),
        _ => (f.length.or(f.bytes).unwrap_or(0), f.bytes),
    };
    if direction != Direction::Delete {
        if let Some(s) = s.as_deref_mut() {
            s.files = s.files.saturating_add(1);
            s.file_bytes = s.file_bytes.saturating_add(wire.unwrap_or(bytes));
        }
    }
    let session = s.as_deref().map(|s| s.sid.clone());
    out.push(Event::Transfer(Transfer {
        id,
        end: time,
        start: None,
        protocol: Protocol::Rsync,
        direction,
        status: Status::Completed,
        bytes,
        wire_bytes: wire,
        file_size: if direction == Direction::Delete { None } else { f.length },
        path: f.file.map(|p| path_text(texts, p)),
        module,
        user,
        client_ip: ip,
        client_host: host,
        session,
        server_host: server.clone(),
        source: Format::Rsyncd.source(),
        origin: None,
        granularity: Granularity::File,
    }));
    Outcome::Used
}

/// What [`close`] gives connections.
#[derive(Debug)]
struct Closed {
    /// The user of a connection that logged none.
    anonymous: Arc<str>,
    /// An empty text, in the place of the session id a closed connection's
    /// event took (this decoder's own: a clone of the id, whose count the
    /// thread that drops the events changes too, cost a cache miss).
    no_sid: Arc<str>,
}

/// Emits what a finished connection owes beyond its per-file lines,
/// taking its texts: the session is dropped next. (Its times, request,
/// summary and error stay.)
fn close(
    server: &Arc<str>,
    pid: u32,
    s: &mut Session,
    transfer_logging: bool,
    closed: &Closed,
    ids: &IdKey,
    out: &mut Vec<Event>,
) {
    let Some(request) = s.request else { return };
    let direction = match request {
        Request::Pull => Direction::Download,
        Request::Push => Direction::Upload,
    };
    let summary_bytes = s.summary.map(|(sent, received, ..)| match request {
        Request::Pull => sent,
        Request::Push => received,
    });
    let (status, bytes, time, id, file_size) = match (s.error, s.summary) {
        // Interrupted: what the summary counted beyond the files logged.
        (Some((_, etime, eid)), summary) => (
            Status::Interrupted,
            summary_bytes.unwrap_or(0).saturating_sub(s.file_bytes),
            summary.map_or(etime, |x| x.3.max(etime)),
            eid,
            summary.map(|x| x.2),
        ),
        (None, Some((_, _, total, stime, sidh))) => {
            if s.items > 0 || transfer_logging {
                return;
            }
            (Status::Completed, summary_bytes.unwrap_or(0), stime, sidh, Some(total))
        }
        (None, None) => {
            // Never finished: the log ends or moved on without the summary.
            if s.files > 0 {
                return;
            }
            let id =
                ids.hash(xxhash_rust::xxh3::xxh3_64_with_seed(format!("{server}/{pid}/{}", s.started).as_bytes(), 7));
            (Status::Interrupted, 0, s.last, id, None)
        }
    };
    out.push(Event::Transfer(Transfer {
        id,
        end: time,
        start: Some(s.started),
        protocol: Protocol::Rsync,
        direction,
        status,
        bytes,
        wire_bytes: summary_bytes,
        file_size,
        path: s.path.take(),
        module: s.module.take(),
        user: s.user.take().unwrap_or_else(|| closed.anonymous.clone()),
        client_ip: s.ip,
        client_host: s.host.take(),
        session: Some(std::mem::replace(&mut s.sid, closed.no_sid.clone())),
        server_host: server.clone(),
        source: Format::Rsyncd.source(),
        origin: None,
        granularity: Granularity::Session,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_sort_like_a_comparison_sort() {
        let mut tmp = Vec::new();
        let mut x: u32 = 12345;
        for n in [0, 1, 63, 64, 65, 1000, 3000] {
            for bits in [8, 16, 22, 32] {
                let mut v: Vec<u32> = (0..n)
                    .map(|_| {
                        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        if bits == 32 { x } else { x >> (32 - bits) }
                    })
                    .collect();
                let mut want = v.clone();
                want.sort_unstable();
                sort_pids(&mut v, &mut tmp);
                assert_eq!(v, want, "{n} {bits}");
            }
        }
    }

    use crate::formats::rsync::DEFAULT_LOG_FORMAT;
    use crate::sessions::{logins, transfers};

    use crate::time::{days_from_civil, rfc3339, TimeZone};

    fn run_with(format: &str, data: &[u8], reference_day: (i32, u32, u32)) -> (Vec<Event>, Vec<Outcome>) {
        let mut d = RsyncDecoder::new(LogFormat::compile(format).unwrap());
        let (y, m, dd) = reference_day;
        let mut cx = crate::sessions::test_context(TimeZone::Utc, days_from_civil(y, m, dd) * 86_400, "srv");
        let mut out = Vec::new();
        let mut outcomes = Vec::new();
        for line in data.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            outcomes.push(d.line(&mut cx, line, &mut out));
        }
        d.finish(&cx.ids.key(), &mut out);
        (out, outcomes)
    }

    fn run(data: &[u8]) -> Vec<Event> {
        run_with(DEFAULT_LOG_FORMAT, data, (2026, 11, 20)).0
    }

    #[test]
    fn default_format_log_file() {
        let ev = run(include_bytes!("../../../testdata/rsync/default-logfile.log"));
        let t = transfers(&ev);
        let summary: Vec<_> = t
            .iter()
            .map(|t| {
                (
                    t.direction,
                    t.status,
                    t.bytes,
                    &*t.user,
                    t.path.as_deref().unwrap_or(""),
                    t.client_ip.map(|i| i.to_string()).unwrap_or_default(),
                    t.granularity,
                )
            })
            .collect();
        use Direction::*;
        use Granularity::*;
        use Status::*;
        assert_eq!(
            summary,
            vec![
                (Download, Completed, 734_003_200, "anonymous", "iso/my disk (v2).iso", "192.0.2.10".into(), File),
                (Download, Completed, 1200, "anonymous", "iso/\u{dc}nicode.txt", "192.0.2.10".into(), File),
                (Download, Completed, 7, "anonymous", "iso/line\nbreak.txt", "192.0.2.10".into(), File),
                (Upload, Completed, 5000, "alice", "report 2026.pdf", "2001:db8::42".into(), File),
                (Upload, Completed, 0, "alice", "empty.txt", "2001:db8::42".into(), File),
                (Delete, Completed, 0, "alice", "old/obsolete file.txt", "2001:db8::42".into(), File),
                (Download, Completed, 10, "anonymous", "late.txt", "192.0.2.13".into(), File),
                (Upload, Interrupted, 0, "alice", "big/", "192.0.2.11".into(), Session),
                (Download, Interrupted, 1_048_576, "anonymous", "big.img", "192.0.2.12".into(), Session),
            ]
        );
        assert_eq!(t[0].module.as_deref(), Some("pub"));
        assert_eq!(t[0].client_host, None, "UNDETERMINED is not a host name");
        assert_eq!(t[3].client_host.as_deref(), Some("mirror.example.org"));
        assert_eq!(t[6].end, t[6].end);
        assert_eq!(rfc3339(t[6].end), "2026-03-02T00:00:02Z");
        assert_eq!(t[8].file_size, Some(20_000_000));
        assert!(t.iter().all(|t| &*t.server_host == "srv" && t.protocol == Protocol::Rsync));
        let l: Vec<_> = logins(&ev).iter().map(|l| (&*l.user, l.outcome)).collect();
        assert_eq!(
            l,
            vec![
                ("alice", LoginOutcome::Ok),
                ("mallory", LoginOutcome::Failed),
                ("root", LoginOutcome::InvalidUser),
                ("unknown", LoginOutcome::Failed),
                ("alice", LoginOutcome::Ok),
            ]
        );
        let mut ids: Vec<u64> = ev.iter().map(|e| e.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ev.len(), "ids are unique");
    }

    #[test]
    fn host_names_are_left_out_of_events_that_would_not_keep_them() {
        // A host name with an address, then one with an address that
        // does not parse (kept: the client hash is then made of the name).
        let data = b"2026/03/01 10:00:04 [102] connect from mirror.example.org (2001:db8::42)
2026/03/01 10:00:04 [102] rsync to incoming/ from alice@mirror.example.org (2001:db8::42)
2026/03/01 10:00:05 [102] recv mirror.example.org [2001:db8::42] incoming (alice) a.txt 5
2026/03/01 10:00:06 [103] connect from odd.example.org (not-an-address)
2026/03/01 10:00:06 [103] rsync to incoming/ from bob@odd.example.org (not-an-address)
2026/03/01 10:00:07 [103] recv odd.example.org [not-an-address] incoming (bob) b.txt 7
2026/03/01 10:00:08 [104] connect from other.example.org (192.0.2.20)
2026/03/01 10:00:08 [104] auth failed on module incoming from other.example.org (192.0.2.20) for eve: password mismatch
";
        let hosts = |keep_hosts: bool| {
            let mut d = RsyncDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap());
            let mut cx = crate::sessions::test_context(TimeZone::Utc, days_from_civil(2026, 3, 1) * 86_400, "srv");
            cx.keep_hosts = keep_hosts;
            let mut out = Vec::new();
            for line in data.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                assert_eq!(d.line(&mut cx, line, &mut out), Outcome::Used);
            }
            let host = |e: &Event| match e {
                Event::Transfer(t) => (t.client_ip.is_some(), t.client_host.as_deref().map(str::to_owned)),
                Event::Login(l) => (l.client_ip.is_some(), l.client_host.as_deref().map(str::to_owned)),
            };
            out.iter().map(host).collect::<Vec<_>>()
        };
        let named = |a: bool, h: &str| (a, Some(h.to_owned()));
        assert_eq!(
            hosts(true),
            vec![
                named(true, "mirror.example.org"),
                named(true, "mirror.example.org"),
                named(false, "odd.example.org"),
                named(false, "odd.example.org"),
                named(true, "other.example.org"),
            ]
        );
        assert_eq!(
            hosts(false),
            vec![
                (true, None),
                (true, None),
                named(false, "odd.example.org"),
                named(false, "odd.example.org"),
                (true, None),
            ]
        );
    }

    #[test]
    fn summary_only_sessions_are_session_level_transfers() {
        let ev = run(include_bytes!("../../../testdata/rsync/summary-only-rfc3339.log"));
        let t = transfers(&ev);
        let got: Vec<_> = t
            .iter()
            .map(|t| (&*t.server_host, t.direction, t.bytes, &*t.user, rfc3339(t.end), t.granularity))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "resif-vm31",
                    Direction::Download,
                    100,
                    "anonymous",
                    "2019-03-05T02:31:01Z".into(),
                    Granularity::Session
                ),
                (
                    "resif-vm30",
                    Direction::Upload,
                    19_414_234,
                    "resifportal",
                    "2019-03-05T02:28:04Z".into(),
                    Granularity::Session
                ),
                (
                    "resif-vm30",
                    Direction::Download,
                    5_000_000,
                    "anonymous",
                    "2019-03-05T02:30:09.999999Z".into(),
                    Granularity::Session
                ),
                (
                    "resif-vm31",
                    Direction::Upload,
                    777,
                    "anonymous",
                    "2019-03-05T02:33:05Z".into(),
                    Granularity::Session
                ),
            ]
        );
        assert_eq!(t[1].module.as_deref(), Some("PORTAL-PRODUCTS-RW"));
        assert_eq!(t[1].path.as_deref(), Some("seedlinkplots/"));
        assert_eq!(t[1].file_size, Some(19_609_565));
        assert_eq!(t[2].client_ip.unwrap().to_string(), "2001:660:5301::6");
        let l = logins(&ev);
        assert_eq!(l.len(), 1);
        assert_eq!((&*l[0].user, l[0].outcome), ("resifportal", LoginOutcome::Ok));
    }

    #[test]
    fn bsd_syslog_year_rollover_and_other_programs() {
        let (ev, outcomes) =
            run_with(DEFAULT_LOG_FORMAT, include_bytes!("../../../testdata/rsync/bsd-syslog.log"), (2027, 1, 2));
        assert_eq!(outcomes[2], Outcome::Ignored, "sshd line in a mixed syslog");
        let t = transfers(&ev);
        assert_eq!(t.len(), 1);
        assert_eq!(rfc3339(t[0].end), "2027-01-01T00:00:03Z");
        assert_eq!(t[0].path.as_deref(), Some("pool/main/a/apt 2.0.deb"));
        assert_eq!(&*t[0].server_host, "mirror1");
        let l = logins(&ev);
        assert_eq!(l.len(), 1);
        assert_eq!(rfc3339(l[0].time), "2027-01-01T00:00:05Z");
    }

    #[test]
    fn itemized_custom_format() {
        let (ev, _) = run_with(
            "%t %a %h %o %m %u %f %l %b %i",
            include_bytes!("../../../testdata/rsync/custom-itemize.log"),
            (2026, 11, 20),
        );
        let t = transfers(&ev);
        let got: Vec<_> = t
            .iter()
            .map(|t| (t.direction, t.status, t.bytes, t.wire_bytes, t.path.as_deref().unwrap_or(""), &*t.user))
            .collect();
        assert_eq!(
            got,
            vec![
                (Direction::Upload, Status::Completed, 7777, Some(7817), "tree/sub/logo.svg", "anonymous"),
                (Direction::Delete, Status::Completed, 0, None, "tree/sub/old.txt", "anonymous"),
                (Direction::Download, Status::Completed, 227_333, Some(6741), "delta/metrics.json", "erin"),
                (Direction::Upload, Status::Completed, 1000, Some(1040), "up/done.bin", "frank"),
                (Direction::Upload, Status::Interrupted, 0, None, "up/", "frank"),
            ]
        );
    }

    #[test]
    fn bad_lines_are_rejected_not_fatal() {
        let (ev, outcomes) =
            run_with(DEFAULT_LOG_FORMAT, include_bytes!("../../../testdata/rsync/bad-lines.log"), (2026, 3, 2));
        let rejected = outcomes.iter().filter(|o| matches!(o, Outcome::Rejected(_))).count();
        assert_eq!(rejected, 4);
        let t = transfers(&ev);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].path.as_deref(), Some("ok \u{fffd} name.bin"));
    }

    #[test]
    fn state_survives_save_and_restore() {
        let data: &[u8] = include_bytes!("../../../testdata/rsync/summary-only-rfc3339.log");
        let lines: Vec<&[u8]> = data.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
        let whole = run(data);
        for cut in 1..lines.len() {
            let mk = || crate::sessions::test_context(TimeZone::Utc, 0, "srv");
            let fmt = LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap();
            let mut out = Vec::new();
            let mut a = RsyncDecoder::new(fmt.clone());
            let mut cx = mk();
            for l in &lines[..cut] {
                a.line(&mut cx, l, &mut out);
            }
            let saved = crate::sessions::AnyDecoder::save_text(&a, &Default::default());
            let mut b = RsyncDecoder::new(fmt);
            crate::sessions::AnyDecoder::restore_text(&mut b, &saved).unwrap();
            let mut cx = mk();
            for l in &lines[cut..] {
                b.line(&mut cx, l, &mut out);
            }
            b.finish(&cx.ids.key(), &mut out);
            let mut x: Vec<u64> = out.iter().map(|e| e.id()).collect();
            let mut y: Vec<u64> = whole.iter().map(|e| e.id()).collect();
            x.sort_unstable();
            y.sort_unstable();
            assert_eq!(x, y, "cut after line {cut}");
        }
    }

    #[test]
    fn a_name_found_lately_is_not_taken_for_an_escaped_one() {
        let mut names = Names::default();
        assert_eq!(&*intern(&mut names, b"x#041"), "x#041");
        assert_eq!(&*intern(&mut names, b"x\\#041"), "x!");
        // Decoded, a backslash: its text is never found by its bytes.
        assert_eq!(&*intern(&mut names, b"x\\#134#041"), "x\\#041");
        assert_eq!(&*intern(&mut names, b"x\\#041"), "x!");
        let plain = intern(&mut names, b"x#041");
        assert_eq!(&*plain, "x#041");
        assert!(Arc::ptr_eq(&plain, &intern(&mut names, b"x#041")));
    }

    #[test]
    fn session_ids_read_as_formatted() {
        for (pid, time) in [(0, 0), (4195, 1_705_273_205_000_000), (u32::MAX, i64::MAX), (7, -1), (1, i64::MIN), (12, 999_999)] {
            assert_eq!(&*session_id(&mut String::new(), &mut Texts::default(), pid, time), format!("{pid}@{}", time.div_euclid(1_000_000)));
        }
    }

    /// `n` finished connections, two minutes apart, taking turns among
    /// `hosts` server hosts: connect, request and summary each.
    fn finished_connections(n: u32, hosts: u32) -> Vec<u8> {
        let mut log = Vec::new();
        for k in 0..n {
            let t = k * 120;
            let (day, h, m) = (5 + t / 86_400, t / 3600 % 24, t / 60 % 60);
            let head = format!("2019-03-{day:02}T{h:02}:{m:02}:00+00:00 host-{} rsyncd[{}]", k % hosts, 1000 + k);
            log.extend_from_slice(format!("{head}: connect from UNKNOWN (192.0.2.7)\n").as_bytes());
            log.extend_from_slice(format!("{head}: rsync on pub/a/ from UNKNOWN (192.0.2.7)\n").as_bytes());
            log.extend_from_slice(format!("{head}: sent 10 bytes  received {k} bytes  total size 99\n").as_bytes());
        }
        log
    }

    /// The bound on open connections holds for all hosts together: nine
    /// hosts with 200 connections each are pruned as one host with 1,800
    /// would be, and the events are those of a run that never pruned.
    #[test]
    fn prune_bound_spans_all_hosts() {
        let log = finished_connections(1800, 9);
        let mut d = RsyncDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap());
        let mut cx = crate::sessions::test_context(TimeZone::Utc, 0, "srv");
        let mut out = Vec::new();
        for line in log.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            assert_eq!(d.line(&mut cx, line, &mut out), Outcome::Used);
        }
        // The 1,025th connect (host-7's) pruned all but the newest of each
        // other host (within its grace time): 1,024 - 8 closed, 8 + 776 open.
        assert_eq!(transfers(&out).len(), 1016);
        assert_eq!(out.capacity(), 1016, "room for the closed ones exactly, not doubled");
        assert_eq!((d.open, d.prune_at), (784, PRUNE_AT));
        assert_eq!(d.hosts.iter().map(|h| h.sessions.len()).sum::<usize>(), 784);
        // A restored decoder counts them too.
        let saved = crate::sessions::AnyDecoder::save_text(&d, &Default::default());
        let mut r = RsyncDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap());
        crate::sessions::AnyDecoder::restore_text(&mut r, &saved).unwrap();
        assert_eq!((r.open, r.prune_at), (784, PRUNE_AT));
        d.finish(&cx.ids.key(), &mut out);
        assert_eq!(d.open, 0);
        // Each connection is one download of its 10 bytes sent.
        let mut per_host = std::collections::BTreeMap::new();
        for t in transfers(&out) {
            let e = per_host.entry(t.server_host.to_string()).or_insert((0, 0));
            *e = (e.0 + 1, e.1 + t.bytes);
        }
        let want: std::collections::BTreeMap<_, _> = (0..9).map(|h| (format!("host-{h}"), (200, 2000))).collect();
        assert_eq!(per_host, want);
        let mut ids: Vec<u64> = out.iter().map(|e| e.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 1800);
    }

    /// A batch handed over after a prune is given the room of one more, so
    /// the next prune that fills it does not move it: batches of 2,000
    /// events fed by prunes of 1,024 keep the capacity given at their
    /// start (2,000 + 500), and the events are those of one unbounded batch.
    #[test]
    fn batches_get_room_for_a_prune() {
        let log = finished_connections(5000, 1);
        let lines: Vec<&[u8]> = log.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
        // `None`: one batch, grown as pushes grow a `Vec`.
        let decode = |batch: Option<usize>| {
            let mut d = RsyncDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap());
            let mut cx = crate::sessions::test_context(TimeZone::Utc, 0, "srv");
            let new_batch = || batch.map_or_else(Vec::new, Vec::with_capacity);
            let (mut out, mut all, mut capacities) = (new_batch(), Vec::new(), Vec::new());
            for line in &lines {
                d.line(&mut cx, line, &mut out);
                if batch.is_some_and(|b| out.len() >= b) {
                    capacities.push(out.capacity());
                    all.append(&mut std::mem::replace(&mut out, new_batch()));
                }
            }
            d.finish(&cx.ids.key(), &mut out);
            capacities.push(out.capacity());
            all.append(&mut out);
            (all.iter().map(Event::id).collect::<Vec<_>>(), capacities)
        };
        let (ids, capacities) = decode(Some(2000));
        // The first batch grew by the exact reserve (no prune seen before).
        assert_eq!(capacities, vec![2048, 2500, 2500]);
        assert_eq!(ids, decode(None).0);
        assert_eq!(ids.len(), 5000);
    }

    /// Connections that stay open raise the threshold to twice their
    /// number (amortised pruning), counted over all hosts.
    #[test]
    fn prune_threshold_doubles_with_what_stays_open() {
        let mut log = Vec::new();
        // 1,100 connections that asked for something and never ended, all
        // within the same minute, on two hosts.
        for k in 0..1100u32 {
            let head = format!("2019-03-05T10:00:{:02}+00:00 host-{} rsyncd[{}]", k % 60, k % 2, 1000 + k);
            log.extend_from_slice(format!("{head}: connect from UNKNOWN (192.0.2.7)\n").as_bytes());
            log.extend_from_slice(format!("{head}: rsync on pub/ from UNKNOWN (192.0.2.7)\n").as_bytes());
        }
        let mut d = RsyncDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap());
        let mut cx = crate::sessions::test_context(TimeZone::Utc, 0, "srv");
        let mut out = Vec::new();
        for line in log.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            d.line(&mut cx, line, &mut out);
        }
        assert!(out.is_empty(), "nothing was closed");
        assert_eq!((d.open, d.prune_at), (1100, 2048));
    }

    /// A host idle since the previous prune gives its map's room back.
    #[test]
    fn idle_host_map_shrinks() {
        // 1,000 connections of host-0, then 1,100 of host-1 (its own times).
        let mut log = finished_connections(1000, 1);
        log.extend_from_slice(&String::from_utf8(finished_connections(1100, 1)).unwrap().replace("host-0", "host-1").into_bytes());
        let mut d = RsyncDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap());
        let mut cx = crate::sessions::test_context(TimeZone::Utc, 0, "srv");
        let mut out = Vec::new();
        let host0 = |d: &RsyncDecoder| {
            let h = &d.hosts[d.host_at[&b"host-0"[..]]];
            (h.sessions.len(), h.sessions.capacity())
        };
        let lines: Vec<&[u8]> = log.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
        for line in &lines[..3000] {
            d.line(&mut cx, line, &mut out);
        }
        assert_eq!(host0(&d).0, 1000);
        assert!(host0(&d).1 >= 1000);
        for line in &lines[3000..] {
            d.line(&mut cx, line, &mut out);
        }
        // Two prunes: at host-1's 25th connect (host-0 still moved since
        // the start, keeps its newest connection), at its 1,048th (host-0
        // idle: its map shrinks to its one connection).
        assert_eq!(host0(&d).0, 1);
        assert!(host0(&d).1 < 16, "capacity {}", host0(&d).1);
        assert_eq!(transfers(&out).len(), 999 + 1047);
    }

    /// Fuzzing found: the byte total of a connection overflowed (a panic in
    /// debug builds) when its file lines added up past `u64::MAX`.
    #[test]
    fn file_byte_total_saturates() {
        let ev = run(b"2026/03/01 10:00:01 [101] connect from UNDETERMINED (192.0.2.10)\n\
            2026/03/01 10:00:01 [101] rsync on pub/ from UNDETERMINED (192.0.2.10)\n\
            2026/03/01 10:00:02 [101] send UNDETERMINED [192.0.2.10] pub () a 18446744073709551615\n\
            2026/03/01 10:00:02 [101] send UNDETERMINED [192.0.2.10] pub () b 18446744073709551615\n\
            2026/03/01 10:00:03 [101] sent 1 bytes  received 2 bytes  total size 3\n");
        let bytes: Vec<u64> = transfers(&ev).iter().map(|t| t.bytes).collect();
        assert_eq!(bytes, vec![u64::MAX, u64::MAX]);
    }

    /// Fuzzing found: a restored state with times far apart made the idle
    /// time overflow (a panic in debug builds); such a session is stale.
    #[test]
    fn restored_extreme_times_do_not_overflow() {
        let mut d = RsyncDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap());
        let state = format!(
            r#"[["srv",{{"transfer_logging":false,"newest":{},"sessions":[[7,{{"sid":"7@0","started":{},"last":{},"addr":"192.0.2.1","ip":null,"host":null,"request":"Pull","module":null,"path":null,"user":null,"items":4294967295,"files":4294967295,"file_bytes":18446744073709551615,"summary":null,"error":null}}]]}}]]"#,
            i64::MAX,
            i64::MIN,
            i64::MIN
        );
        crate::sessions::AnyDecoder::restore_text(&mut d, &state).unwrap();
        let mut cx = crate::sessions::test_context(TimeZone::Utc, 0, "srv");
        let mut out = Vec::new();
        let line = b"2026/03/01 10:00:02 [7] send UNDETERMINED [192.0.2.1] pub () a 5";
        assert_eq!(d.line(&mut cx, line, &mut out), Outcome::Used);
        d.finish(&crate::sessions::test_id_key(), &mut out);
        // The stale session is closed.
        assert_eq!(
            crate::sessions::AnyDecoder::save_text(&d, &Default::default()),
            r#"{"horizon":{},"state":[["srv",{"transfer_logging":true,"newest":9223372036854775807,"sessions":[]}]]}"#
        );
        assert_eq!(transfers(&out).iter().map(|t| t.bytes).collect::<Vec<_>>(), vec![5]);
    }
}
