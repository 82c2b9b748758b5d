//! Joining lines into events.
//!
//! A format's parser classifies single lines; a [`Decoder`] holds what a log
//! spreads over several lines (an rsync connection's pid, an SFTP session) and
//! emits [`Event`]s. What it carries from one run to the next is a declared
//! type, [`Decoder::State`], that it must hand over ([`Decoder::save`]) and
//! take back ([`Decoder::restore`]): it is saved with every batch the store
//! commits and restored by the next run, so a session split across two cron
//! runs or two rotated files is neither lost nor counted twice. The engine
//! holds decoders of any format as [`AnyDecoder`]s, their state as text.
//!
//! Saved sessions may only meet the lines that follow the ones they were
//! built from: a copy of a log read again from its start (a different first
//! line defeats the ledger) holds the same pids, and its early lines would
//! join, or close, sessions saved at the log's end. Each decoder declares
//! how its joins are kept to their own lines ([`Decoder::JOINS`]): bounded
//! by the lines themselves (a time window), or by input. In the second case
//! the state is saved with its [`Horizon`], per server host the
//! time of the newest event the decoder produced. An input resumed from its
//! checkpoint continues the saved sessions (it is the file they were read
//! from, grown); an input read from its start continues them only when no
//! line of its head is older than the horizon earlier runs saved for that
//! line's host (the next file after a rotation), and when its first lines
//! are none of the first lines of another input of the same run (a run may
//! read files that overlap in time, several daemons of one host writing
//! their own; a copy repeats lines). Any other input — a copy with a
//! different first line, an older rotated file imported after newer ones —
//! is read by a decoder of its own, which carries nothing in or
//! out: it adds the events its own lines make (the copy's are refused as
//! already stored) and its sessions still open at the end are dropped, so a
//! reused pid of a copy never joins, or closes, a saved session.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::enrich::hostkey::IdKey;
use crate::formats::prefix::{PrefixParser, Prefixed};
use crate::model::{Event, EventId, Micros};
use crate::time::Clock;

/// What became of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The line meant something (an event now or later).
    Used,
    /// A well-formed line with nothing to count (banner, other program).
    Ignored,
    /// The line could not be read; the reason is reported with a sample.
    Rejected(&'static str),
}

/// Per-input context handed to a decoder with each line.
#[derive(Debug)]
pub struct LineContext {
    /// The input's clock: zone of zone-less time stamps, year inference.
    pub clock: Clock,
    /// Syslog/log-file prefix parser (time-stamp cache) of the input.
    pub prefix: PrefixParser,
    /// Event-id generator of the input.
    pub ids: IdGen,
    /// Server host for lines that do not name one (log-file prefixes).
    pub server_host: String,
    /// Strings of stored events to fill again with the texts of new ones.
    pub texts: Texts,
    /// Whether events keep the client's host name when they have its
    /// address ([`IpMode::keeps_hosts`](crate::enrich::IpMode::keeps_hosts)).
    /// When not, a decoder may leave it out of them: enrichment would drop
    /// it, and only a host name without an address is read there (for the
    /// client hash). The name then does not travel with every event to the
    /// store thread to be dropped there: its shared count changed cores
    /// twice per event (about 1 % of the CPU time of `events`).
    pub keep_hosts: bool,
}

/// Strings for the paths events own, recycled: the store thread hands back
/// the paths of the events it has stored ([`Texts::keep_paths`]) and a
/// decoder fills one of them again ([`Texts::string`]) instead of
/// allocating a new one (a connection's requested path was one of its two
/// allocations on the thread that joins lines, each one costlier than the
/// parse of a line, its memory having been freed on another thread). At
/// most [`Texts::MAX`] wait on each side, none longer than
/// [`Texts::LONGEST`] bytes, so memory stays bounded; a context of its own
/// (`Texts::default()`, no store thread) simply allocates.
///
/// Shared texts (an rsync connection's session id, the other allocation of
/// a connection) come back the same way: a stored event's session id that
/// no other event or open session holds any more is handed back whole, and
/// [`Texts::shared`] writes a new text of the same length over it. At most
/// [`Texts::MAX`] of at most [`Texts::SHARED_LONGEST`] bytes wait on each
/// side.
#[derive(Debug, Default)]
pub struct Texts {
    /// Strings to fill, taken from `shared` when it runs out.
    local: Vec<String>,
    /// Shared texts to write over, by their length (index), taken from
    /// `shared` when the one of a length runs out.
    local_shared: [Vec<Arc<str>>; Texts::SHARED_LONGEST + 1],
    /// How many texts `local_shared` holds.
    local_shared_len: usize,
    /// The emptied list of the last take of shared texts, swapped in for
    /// the next one (the store thread fills it again).
    spare_shared: Vec<Arc<str>>,
    /// What the store thread handed back.
    shared: Arc<Mutex<Kept>>,
    /// Strings made before `shared` is looked at again, after it had none.
    wait: u32,
    /// Shared texts made before `shared` is looked at again, after it had
    /// none of the length asked for.
    wait_shared: u32,
}

/// Swaps `mine` (empty) with one of the lists the store thread handed
/// back (`theirs`), unless it is handing some back right now; after
/// finding none, looks again only `wait` takes later (its atomic
/// operations cost a fair part of an allocation).
fn take_back<T>(
    shared: &Mutex<Kept>,
    wait: &mut u32,
    mine: &mut Vec<T>,
    theirs: impl FnOnce(&mut Kept) -> &mut Vec<T>,
) {
    if *wait > 0 {
        *wait -= 1;
        return;
    }
    if let Ok(mut kept) = shared.try_lock() {
        std::mem::swap(theirs(&mut kept), mine);
    }
    if mine.is_empty() {
        *wait = 32;
    }
}

/// What the store thread hands back to [`Texts`].
#[derive(Debug, Default)]
struct Kept {
    /// Transfers' paths.
    paths: Vec<String>,
    /// Session ids no one else holds.
    shared: Vec<Arc<str>>,
}

impl Texts {
    /// Strings kept at most on each side.
    pub const MAX: usize = 10_000;
    /// The largest capacity of a string kept.
    pub const LONGEST: usize = 128;
    /// The longest shared text kept (an rsync session id `pid@seconds` is
    /// at most 10 + 1 + 20 bytes).
    pub const SHARED_LONGEST: usize = 31;

    /// Another end of the same recycling (the store thread's, or the next
    /// input's context), with no strings of its own yet.
    pub fn share(&self) -> Texts {
        Texts { shared: self.shared.clone(), ..Texts::default() }
    }

    /// `s` as an owned string, in a recycled one when there is one.
    #[inline]
    pub fn string(&mut self, s: &str) -> String {
        if self.local.is_empty() {
            self.refill();
        }
        match self.local.pop() {
            Some(mut t) => {
                t.clear();
                t.push_str(s);
                t
            }
            None => s.to_string(),
        }
    }

    /// Keeps `s` to be filled again, while there is room.
    pub fn put(&mut self, s: String) {
        if self.local.len() < Self::MAX && s.capacity() <= Self::LONGEST {
            self.local.push(s);
        }
    }

    /// Takes the strings the store thread handed back ([`take_back`]).
    fn refill(&mut self) {
        take_back(&self.shared, &mut self.wait, &mut self.local, |kept| &mut kept.paths);
    }

    /// `s` as a shared text, written over a handed-back one of its length
    /// when there is one (no allocation), else a new one.
    #[inline]
    pub fn shared(&mut self, s: &str) -> Arc<str> {
        let n = s.len();
        if n == 0 || n > Self::SHARED_LONGEST {
            return Arc::from(s);
        }
        if self.local_shared[n].is_empty() {
            self.refill_shared();
        }
        let Some(mut kept) = self.local_shared[n].pop() else {
            return Arc::from(s);
        };
        self.local_shared_len -= 1;
        match Arc::get_mut(&mut kept) {
            Some(text) => {
                // SAFETY: all the bytes of `text` are replaced by those of
                // `s`, a `str` of the same length, so it stays UTF-8.
                unsafe { text.as_bytes_mut() }.copy_from_slice(s.as_bytes());
                kept
            }
            // Handed back only when no one else held it, and no one could
            // clone it since: not reached.
            None => Arc::from(s),
        }
    }

    /// Takes the shared texts the store thread handed back (as
    /// [`Texts::refill`] its strings), each to the list of its length.
    fn refill_shared(&mut self) {
        take_back(&self.shared, &mut self.wait_shared, &mut self.spare_shared, |kept| &mut kept.shared);
        for text in self.spare_shared.drain(..) {
            if self.local_shared_len < Self::MAX {
                self.local_shared_len += 1;
                self.local_shared[text.len()].push(text);
            }
        }
    }

    /// Drops stored events (the store thread's end), keeping the paths of
    /// transfers for [`Texts::string`] and the session ids that no one
    /// else holds for [`Texts::shared`] while there is room.
    pub fn keep_paths(&self, events: &mut Vec<Event>) {
        let Ok(mut kept) = self.shared.lock() else {
            events.clear();
            return;
        };
        let Kept { paths, shared } = &mut *kept;
        if paths.len() >= Self::MAX && shared.len() >= Self::MAX {
            events.clear();
            return;
        }
        // One pass: each event is dropped where it is once its texts are
        // taken (a pass to take them and one to drop the events read the
        // batch twice).
        events.retain_mut(|e| {
            let session = match e {
                Event::Transfer(t) => {
                    if paths.len() < Self::MAX {
                        if let Some(p) = t.path.take_if(|p| p.capacity() <= Self::LONGEST) {
                            paths.push(p);
                        }
                    }
                    &mut t.session
                }
                Event::Login(l) => &mut l.session,
            };
            if shared.len() < Self::MAX {
                // The last holder: the other events of its connection, and
                // the connection itself, are gone.
                let last =
                    |s: &mut Arc<str>| (1..=Self::SHARED_LONGEST).contains(&s.len()) && Arc::get_mut(s).is_some();
                if let Some(s) = session.take_if(last) {
                    shared.push(s);
                }
            }
            false
        });
    }
}

/// Turns lines of one format into events, keeping cross-line state.
pub trait Decoder {
    /// What the decoder carries from one run to the next (its open
    /// sessions); `()` for formats whose lines stand alone. There is no
    /// default: a decoder says what it keeps, and the store keeps that.
    type State: Serialize + DeserializeOwned;
    /// How its saved state is kept from joining lines it must not.
    const JOINS: Joins;
    /// Name of the state scope in the store (one per format; the store
    /// keeps it per ingesting host).
    fn scope(&self) -> &'static str;
    /// Handles one line (without its newline).
    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome;
    /// End of a run: emits what sessions that are over still owe; sessions
    /// that may continue in a later run stay in the state. (Formats whose
    /// lines stand alone have nothing to do.) `ids` keys ids made here.
    fn finish(&mut self, _ids: &IdKey, _out: &mut Vec<Event>) {}
    /// Re-keys the event ids held in open sessions with `f`: once, when a
    /// store written with unkeyed ids is upgraded (formats that compute ids
    /// only when they emit have none).
    fn rekey_ids(&mut self, _f: &dyn Fn(EventId) -> EventId) {}
    /// The state to keep for the next run.
    fn save(&self) -> Self::State;
    /// Takes back a state [`Decoder::save`] gave.
    fn restore(&mut self, state: Self::State);
    /// The sessions its state holds open (`xferstats status`).
    fn open_sessions(&self) -> Vec<OpenSession>;
}

/// A session a decoder holds open, waiting for its next lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession {
    /// The server host of its lines; `None` when the state does not name
    /// it (lines without a host name: the ingesting host's).
    pub server_host: Option<String>,
    /// When it opened.
    pub since: Micros,
}

/// Declares, inside an `impl Decoder`, that a format's lines stand alone:
/// its [`Decoder::State`] is `()`.
macro_rules! no_state {
    () => {
        type State = ();
        const JOINS: $crate::sessions::Joins = $crate::sessions::Joins::Nothing;
        fn save(&self) {}
        fn restore(&mut self, (): ()) {}
        fn open_sessions(&self) -> Vec<$crate::sessions::OpenSession> {
            Vec::new()
        }
    };
}
pub(crate) use no_state;

/// Which lines a decoder's saved state may join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joins {
    /// Every line stands alone: there is no state.
    Nothing,
    /// Any input's lines: each join is bounded by the lines themselves (a
    /// time window), so that an older or a copied line cannot complete a
    /// saved session.
    Bounded,
    /// Only the lines of an input that continues the ones the state was
    /// read from (see the module docs); other inputs get a decoder of their
    /// own.
    Continuing,
}

/// A decoder of any format, its [`Decoder::State`] as JSON text: what the
/// engine holds and the store saves.
pub trait AnyDecoder {
    /// [`Decoder::scope`].
    fn scope(&self) -> &'static str;
    /// [`Decoder::JOINS`].
    fn joins(&self) -> Joins;
    /// [`Decoder::line`].
    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome;
    /// [`Decoder::finish`].
    fn finish(&mut self, ids: &IdKey, out: &mut Vec<Event>);
    /// [`Decoder::rekey_ids`].
    fn rekey_ids(&mut self, f: &dyn Fn(EventId) -> EventId);
    /// The saved state, with the horizon it was read up to, as text.
    fn save_text(&self, horizon: &Horizon) -> String;
    /// Restores a state saved as text (an empty text: nothing saved) and
    /// gives its horizon (empty for a state saved before horizons were).
    fn restore_text(&mut self, state: &str) -> Result<Horizon, String>;
    /// [`Decoder::open_sessions`].
    fn open_sessions(&self) -> Vec<OpenSession>;
}

/// The saved text of a decoder: its state and its horizon.
#[derive(Serialize)]
struct SavedRef<'a, T> {
    horizon: &'a Horizon,
    state: T,
}

/// [`SavedRef`] read back.
#[derive(Deserialize)]
struct Saved<T> {
    horizon: Horizon,
    state: T,
}

impl<D: Decoder> AnyDecoder for D {
    fn scope(&self) -> &'static str {
        Decoder::scope(self)
    }
    fn joins(&self) -> Joins {
        D::JOINS
    }
    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome {
        Decoder::line(self, cx, line, out)
    }
    fn finish(&mut self, ids: &IdKey, out: &mut Vec<Event>) {
        Decoder::finish(self, ids, out)
    }
    fn rekey_ids(&mut self, f: &dyn Fn(EventId) -> EventId) {
        Decoder::rekey_ids(self, f)
    }
    fn save_text(&self, horizon: &Horizon) -> String {
        serde_json::to_string(&SavedRef { horizon, state: self.save() }).unwrap_or_default()
    }
    fn restore_text(&mut self, text: &str) -> Result<Horizon, String> {
        if text.is_empty() {
            return Ok(Horizon::default());
        }
        // A state saved before horizons were is the bare state.
        let saved = serde_json::from_str::<Saved<D::State>>(text).or_else(|e| {
            serde_json::from_str(text).map(|state| Saved { horizon: Horizon::default(), state }).map_err(|_| e)
        });
        let Saved { horizon, state } = saved.map_err(|e| e.to_string())?;
        self.restore(state);
        Ok(horizon)
    }
    fn open_sessions(&self) -> Vec<OpenSession> {
        Decoder::open_sessions(self)
    }
}

/// Per server host, the time of the newest event a decoder produced: how
/// far its sessions have read that host's log (see the module docs).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Horizon(BTreeMap<Arc<str>, Micros>);

impl Horizon {
    /// Takes in the events of `events` (called for every line, most of
    /// which have none).
    #[inline]
    pub fn note(&mut self, events: &[Event]) {
        if !events.is_empty() {
            self.note_some(events);
        }
    }

    /// [`Horizon::note`] of one or more events.
    fn note_some(&mut self, events: &[Event]) {
        for e in events {
            let (host, time) = match e {
                Event::Transfer(t) => (&t.server_host, t.end),
                Event::Login(l) => (&l.server_host, l.time),
            };
            // A decoder shares one name among its host's events: found by
            // its address when the map holds that very copy (its only or
            // first host, nearly always), without comparing text.
            if let Some(mut first) = self.0.first_entry() {
                if Arc::ptr_eq(first.key(), host) {
                    let n = first.get_mut();
                    *n = (*n).max(time);
                    continue;
                }
            }
            match self.0.get_mut(&**host) {
                Some(n) => *n = (*n).max(time),
                None => {
                    self.0.insert(host.clone(), time);
                }
            }
        }
    }

    /// Whether an input whose head has, per server host, these oldest time
    /// stamps continues what this horizon has read: none is older than the
    /// newest event of its host (hosts not read yet are new).
    pub fn continued_by(&self, head: &[(String, Micros)]) -> bool {
        head.iter().all(|(host, t)| self.0.get(host.as_str()).is_none_or(|n| t >= n))
    }

    /// Whether the horizon has read any host of `head`.
    pub fn knows_any(&self, head: &[(String, Micros)]) -> bool {
        head.iter().any(|(host, _)| self.0.contains_key(host.as_str()))
    }
}

/// The UTC time of the last time stamp text seen: consecutive lines of one
/// second share it and skip the date conversion.
#[derive(Debug, Default)]
pub struct StampCache {
    raw: Vec<u8>,
    time: Micros,
}

impl StampCache {
    /// The time of stamp text `raw`, computed by `convert` when it differs
    /// from the previous one.
    pub fn get(&mut self, raw: &[u8], convert: impl FnOnce() -> Micros) -> Micros {
        if !crate::model::same_bytes(raw, &self.raw) {
            self.time = convert();
            self.raw.clear();
            self.raw.extend_from_slice(raw);
        }
        self.time
    }
}

/// A line context for tests: time zone, reference instant (for years),
/// default server host.
#[cfg(test)]
pub(crate) fn test_context(tz: crate::time::TimeZone, reference: i64, host: &str) -> LineContext {
    LineContext {
        clock: Clock::new(tz, reference),
        prefix: PrefixParser::new(),
        ids: IdGen::new(test_id_key()),
        server_host: host.into(),
        texts: Texts::default(),
        keep_hosts: true,
    }
}

/// The id key of unit tests.
#[cfg(test)]
pub(crate) fn test_id_key() -> IdKey {
    crate::enrich::hostkey::HostKey::new(b"unit tests' host key").id_key()
}

/// The transfers among decoded events (tests).
#[cfg(test)]
pub(crate) fn transfers(ev: &[crate::model::Event]) -> Vec<&crate::model::Transfer> {
    ev.iter()
        .filter_map(|e| match e {
            crate::model::Event::Transfer(t) => Some(t),
            crate::model::Event::Login(_) => None,
        })
        .collect()
}

/// The logins among decoded events (tests).
#[cfg(test)]
pub(crate) fn logins(ev: &[crate::model::Event]) -> Vec<&crate::model::Login> {
    ev.iter()
        .filter_map(|e| match e {
            crate::model::Event::Login(l) => Some(l),
            crate::model::Event::Transfer(_) => None,
        })
        .collect()
}

/// The server host of a decoder's events, shared (`Arc`) by all of them
/// and rebuilt only when it changes.
#[derive(Debug, Default)]
pub struct ServerName(Option<Arc<str>>);

impl ServerName {
    /// The name for `host` (as logged, or the configured default).
    pub fn get(&mut self, host: &[u8]) -> Arc<str> {
        match &self.0 {
            Some(s) if crate::model::same_bytes(s.as_bytes(), host) => s.clone(),
            _ => {
                let s: Arc<str> = Arc::from(String::from_utf8_lossy(host).as_ref());
                self.0 = Some(s.clone());
                s
            }
        }
    }
}

/// A client address as logs write it — `1.2.3.4`, `2001:db8::1`,
/// `::ffff:1.2.3.4` (stored as IPv4), `1.2.3.4:5678`, `[2001:db8::1]:5678`
/// — or `None` when it is not an address (a host name, `UNKNOWN`).
pub fn client_ip(b: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(b).ok()?;
    let ip = match s.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => match s.parse::<SocketAddr>() {
            Ok(sa) => sa.ip(),
            Err(_) => s.strip_prefix('[')?.strip_suffix(']')?.parse().ok()?,
        },
    };
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

/// Derives [`EventId`]s from line content.
///
/// The id is a hash of the server host, the raw line and a tag for the kind
/// of event; identical lines within one second of one input get an ordinal,
/// so two real transfers logged identically both count while the same line
/// read again (renamed or compressed copy, a second syslog file) does not.
///
/// Ids are keyed ([`IdKey::hash`] of the unkeyed xxh3 `h` of host, tag and
/// line), so a stored id confirms no candidate line without the host key.
/// The `k`-th repeat of a line within the second gets the keyed hash plus
/// `k`: repeats have neighbouring ids and go into a store's index side by
/// side (random ids within one second made a million repeats quadratic:
/// every commit rewrote pages all over that second's part of the index).
/// The saved state ([`IdGen::save`], kept in the ledger) holds only the
/// keyed hashes of the lines of the current second and their counts.
#[derive(Clone)]
pub struct IdGen {
    key: IdKey,
    state: IdState,
    /// [`IdGen::ftp_transfer_id`]'s last server host and its seed, hashed
    /// once per host rather than once per line.
    ftp_seed: Option<(Vec<u8>, u64)>,
    /// [`IdGen::ftp_transfer_id`]'s reused buffer of the hashed fields.
    ftp_buf: Vec<u8>,
    /// [`IdGen::id`]'s seeds: hashed once per server host and tag, and
    /// once per second, rather than once per line.
    seeds: IdSeeds,
}

/// The seeds [`IdGen::id`] hashes a line with, kept for the next line.
#[derive(Clone, Default)]
struct IdSeeds {
    /// The server host the seeds are of.
    host: Vec<u8>,
    /// Per tag below 16, its seed with `host` (0: not computed yet).
    by_tag: [u64; 16],
    /// The last second and its hash.
    second: Option<(i64, u64)>,
}

impl IdSeeds {
    /// `xxh3(host, seed: tag)`.
    #[inline]
    fn of(&mut self, host: &[u8], tag: u8) -> u64 {
        if !crate::model::same_bytes(&self.host, host) {
            self.host.clear();
            self.host.extend_from_slice(host);
            self.by_tag = [0; 16];
        }
        let Some(slot) = self.by_tag.get_mut(tag as usize) else {
            return xxh3_64_with_seed(host, tag as u64);
        };
        if *slot == 0 {
            *slot = xxh3_64_with_seed(host, tag as u64);
        }
        *slot
    }

    /// `xxh3(second as little-endian bytes, seed: 0)`.
    #[inline]
    fn of_second(&mut self, second: i64) -> u64 {
        match self.second {
            Some((s, h)) if s == second => h,
            _ => self.second.insert((second, xxh3_64_with_seed(&second.to_le_bytes(), 0))).1,
        }
    }
}

/// The seed of [`IdGen::ftp_transfer_id`]: one kind of event, whichever
/// log it is read from.
const FTP_TRANSFER_TAG: u64 = 0x4654_5058;

/// The xferlog letter of a direction (`i`, `o`, `d`).
fn direction_code(d: crate::model::Direction) -> u8 {
    match d {
        crate::model::Direction::Upload => b'i',
        crate::model::Direction::Download => b'o',
        crate::model::Direction::Delete => b'd',
    }
}

/// What [`IdGen::ftp_transfer_id`] identifies a transfer by.
#[derive(Debug, Clone, Copy)]
pub struct FtpTransfer<'a> {
    /// The user as stored (`anonymous` for an anonymous login).
    pub user: &'a str,
    /// Upload, download or deletion.
    pub direction: crate::model::Direction,
    /// Bytes moved (0 for a deletion).
    pub bytes: u64,
    /// The file; only its name counts.
    pub path: &'a [u8],
}

/// The saved part of an [`IdGen`]: the current second and, per keyed line
/// hash, how many identical lines it had.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(from = "SavedIdState", into = "SavedIdState")]
struct IdState {
    second: i64,
    seen: Seen,
}

/// [`IdState`] as it is saved: the keyed hashes of the second as one map.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct SavedIdState {
    second: i64,
    seen: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
}

impl From<SavedIdState> for IdState {
    fn from(s: SavedIdState) -> IdState {
        IdState { second: s.second, seen: Seen { few: Vec::new(), many: s.seen } }
    }
}

impl From<IdState> for SavedIdState {
    fn from(s: IdState) -> SavedIdState {
        let Seen { few, mut many } = s.seen;
        many.extend(few);
        SavedIdState { second: s.second, seen: many }
    }
}

/// The keyed hashes of one second's lines and how many lines each had.
/// A second holds a few events: the first [`Seen::FEW`] hashes are kept in
/// a list looked through in order (a hash map's probe and insert, and its
/// clearing every second, cost more than the rest of an id), the others in
/// a map. A hash is in one of them.
#[derive(Debug, Default, Clone)]
struct Seen {
    few: Vec<(u64, u32)>,
    many: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
}

impl Seen {
    /// Hashes kept in the list.
    const FEW: usize = 16;

    /// Forgets every hash (a new second).
    fn clear(&mut self) {
        self.few.clear();
        if !self.many.is_empty() {
            self.many.clear();
        }
    }

    /// Counts one more line of hash `h`; returns the lines it had before.
    #[inline]
    fn bump(&mut self, h: u64) -> u32 {
        if let Some((_, n)) = self.few.iter_mut().find(|(k, _)| *k == h) {
            *n += 1;
            return *n - 1;
        }
        if self.few.len() < Self::FEW && self.many.is_empty() {
            self.few.push((h, 1));
            return 0;
        }
        let n = self.many.entry(h).or_insert(0);
        *n += 1;
        *n - 1
    }
}

/// Hasher for keys that already are hashes (keyed hashes): passes them on.
#[derive(Debug, Default, Clone, Copy)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

impl std::fmt::Debug for IdGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdGen").field("key", &self.key).field("state", &self.state).finish_non_exhaustive()
    }
}

impl IdGen {
    /// A generator at the start of an input.
    pub fn new(key: IdKey) -> IdGen {
        IdGen { key, state: IdState::default(), ftp_seed: None, ftp_buf: Vec::new(), seeds: IdSeeds::default() }
    }

    /// A generator resuming from [`IdGen::save`]'s text (an unreadable
    /// state starts afresh: at worst a repeat of the checkpoint's second
    /// is counted as already stored).
    pub fn restore(key: IdKey, saved: &str) -> IdGen {
        IdGen {
            key,
            state: serde_json::from_str(saved).unwrap_or_default(),
            ftp_seed: None,
            ftp_buf: Vec::new(),
            seeds: IdSeeds::default(),
        }
    }

    /// The key of its line hashes.
    pub fn key(&self) -> IdKey {
        self.key
    }

    /// The state to keep with a checkpoint.
    pub fn save(&self) -> String {
        serde_json::to_string(&self.state).unwrap_or_default()
    }

    /// Id of the event of kind `tag` produced by `line` at `time`.
    ///
    /// Under the content scheme ([`IdKey::content_ids`]) a syslog line is
    /// identified by what follows its time stamp (host, program, pid,
    /// message) and the second of `time`, so the same message written with
    /// a BSD and with an RFC 3339 time stamp (two rsyslog templates, a
    /// local file and a central collector) is one event. Other lines, and
    /// every line in a store of the raw-line scheme, by the line itself.
    pub fn id(&mut self, time: Micros, host: &[u8], line: &[u8], tag: u8) -> EventId {
        let body = if self.key.content_ids() { crate::formats::prefix::syslog_body(line) } else { None };
        self.id_of_body(time, host, line, body, tag)
    }

    /// [`IdGen::id`] of a line whose prefix `p` was parsed already (its
    /// time is the event's): its syslog body is not looked for again.
    pub fn id_prefixed(&mut self, p: &Prefixed<'_>, host: &[u8], line: &[u8], tag: u8) -> EventId {
        debug_assert_eq!(p.body, crate::formats::prefix::syslog_body(line));
        let body = if self.key.content_ids() { p.body } else { None };
        self.id_of_body(p.time, host, line, body, tag)
    }

    /// [`IdGen::id`] with the syslog body of `line` under the content
    /// scheme (`None`: the line itself is hashed).
    fn id_of_body(&mut self, time: Micros, host: &[u8], line: &[u8], body: Option<&[u8]>, tag: u8) -> EventId {
        let seed = self.seeds.of(host, tag);
        let h = match body {
            Some(body) => xxh3_64_with_seed(body, seed ^ self.seeds.of_second(time.div_euclid(1_000_000))),
            None => xxh3_64_with_seed(line, seed),
        };
        self.next(time, h)
    }

    /// Id of an FTP transfer or deletion that ProFTPD writes to its
    /// TransferLog (xferlog) and to its ExtendedLog: under the content
    /// scheme made from what both say of it — the second it ended, user,
    /// direction, bytes (not for a deletion) and file name (spaces as `_`,
    /// as xferlog writes them) — so that the two logs of one server count
    /// it once; in a store of the raw-line scheme, [`IdGen::id`] of `line`.
    pub fn ftp_transfer_id(&mut self, time: Micros, host: &[u8], line: &[u8], tag: u8, t: FtpTransfer<'_>) -> EventId {
        if !self.key.content_ids() {
            return self.id(time, host, line, tag);
        }
        let name = memchr::memrchr(b'/', t.path).map_or(t.path, |at| &t.path[at + 1..]);
        let seed = match &self.ftp_seed {
            Some((h, seed)) if h.as_slice() == host => *seed,
            _ => self.ftp_seed.insert((host.to_vec(), xxh3_64_with_seed(host, FTP_TRANSFER_TAG))).1,
        };
        // One-shot hash of the fields laid end to end in a reused buffer:
        // the same digest as hashing them piece by piece, without a
        // streaming hasher's state copied per line.
        let buf = &mut self.ftp_buf;
        let mut fixed = [0u8; 17];
        fixed[..8].copy_from_slice(&time.div_euclid(1_000_000).to_le_bytes());
        fixed[8] = direction_code(t.direction);
        fixed[9..].copy_from_slice(&t.bytes.to_le_bytes());
        buf.clear();
        buf.extend_from_slice(&fixed);
        buf.extend_from_slice(t.user.as_bytes());
        buf.push(0);
        // The name's words each followed by `_`: spaces as xferlog writes them.
        match memchr::memchr(b' ', name) {
            None => buf.extend_from_slice(name),
            Some(_) => buf.extend(name.iter().map(|&c| if c == b' ' { b'_' } else { c })),
        }
        buf.push(b'_');
        let h = xxh3_64_with_seed(buf, seed);
        self.next(time, h)
    }

    /// The time to store for an event identified by
    /// [`IdGen::ftp_transfer_id`]: under the content scheme cut to the
    /// second, the precision of xferlog, so that the event read from a
    /// log with finer times (`%{iso8601}`) is the same row.
    pub fn whole_second(&self, time: Micros) -> Micros {
        if self.key.content_ids() {
            time - time.rem_euclid(1_000_000)
        } else {
            time
        }
    }

    /// The id of the content hash `h` at `time`: its keyed hash, plus an
    /// ordinal for its repeats within the second.
    fn next(&mut self, time: Micros, h: u64) -> EventId {
        let sec = time.div_euclid(1_000_000);
        let st = &mut self.state;
        if sec != st.second {
            st.second = sec;
            st.seen.clear();
        }
        let base = self.key.hash(h);
        let ord = st.seen.bump(base);
        match ord {
            0 => base,
            _ if self.key.is_unkeyed() => legacy_ordinal(h, ord),
            _ => base.wrapping_add(ord as u64),
        }
    }
}

/// The id of the `ord`-th repeat of the line with unkeyed hash `h` in the
/// unkeyed scheme of stores written before ids were keyed.
fn legacy_ordinal(h: u64, ord: u32) -> u64 {
    xxh3_64_with_seed(&ord.to_le_bytes(), h)
}

/// The keyed ids of a group of ids stored under the unkeyed scheme that
/// share one event time, in the same order. A repeated line's ids there are
/// `h`, `legacy_ordinal(h, 1)`, `legacy_ordinal(h, 2)`…; they become what
/// [`IdGen::id`] now gives the same lines (`key.hash(h)` plus the ordinal).
/// Any other id `x` becomes `key.hash(x)`.
pub fn rekey_unkeyed_ids(key: &IdKey, group: &[u64]) -> Vec<u64> {
    if group.len() < 2 {
        return group.iter().map(|&x| key.hash(x)).collect();
    }
    let set: std::collections::HashSet<u64> = group.iter().copied().collect();
    let mut repeats: HashMap<u64, u64> = HashMap::new();
    for &h in group {
        let mut ord = 1;
        while set.contains(&legacy_ordinal(h, ord)) {
            repeats.insert(legacy_ordinal(h, ord), key.hash(h).wrapping_add(ord as u64));
            ord += 1;
        }
    }
    group.iter().map(|x| repeats.get(x).copied().unwrap_or_else(|| key.hash(*x))).collect()
}

/// Re-keys an id generator state saved before hashes were keyed (its line
/// hashes were the unkeyed ones): each line hash `h` becomes
/// `key.hash(h)`, as [`IdGen::id`] now computes it.
pub fn rekey_ids_state(key: &IdKey, saved: &str) -> String {
    let Ok(mut st) = serde_json::from_str::<SavedIdState>(saved) else { return saved.to_string() };
    st.seen = st.seen.into_iter().map(|(h, n)| (key.hash(h), n)).collect();
    serde_json::to_string(&st).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_counts_like_a_map_past_its_list_and_after_a_restore() {
        let mut reference: HashMap<u64, u32> = HashMap::new();
        let mut seen = Seen::default();
        // 40 distinct hashes, each seen up to 3 times, interleaved.
        for i in 0..120u64 {
            let h = (i * 7919) % 40;
            let want = *reference.get(&h).unwrap_or(&0);
            reference.insert(h, want + 1);
            assert_eq!(seen.bump(h), want, "{i}");
        }
        assert_eq!(seen.few.len(), Seen::FEW);
        let saved: SavedIdState = IdState { second: 5, seen: seen.clone() }.into();
        assert_eq!(saved.seen.len(), 40);
        assert!(saved.seen.iter().all(|(h, n)| reference[h] == *n));
        let mut restored = IdState::from(saved).seen;
        for h in [0, 39, 77] {
            assert_eq!(restored.bump(h), reference.get(&h).copied().unwrap_or(0));
        }
        seen.clear();
        assert_eq!(seen.bump(3), 0);
        assert!(seen.many.is_empty());
    }

    /// An rsync login of user `u` on `host` at `time`.
    fn login_of(host: &str, time: Micros, session: Option<Arc<str>>) -> Event {
        Event::Login(crate::model::Login {
            id: 0,
            time,
            protocol: crate::model::Protocol::Rsync,
            user: "u".into(),
            client_ip: None,
            client_host: None,
            outcome: crate::model::LoginOutcome::Ok,
            method: None,
            session,
            server_host: Arc::from(host),
            source: crate::formats::Format::Rsyncd.source(),
            origin: None,
        })
    }

    #[test]
    fn session_ids_no_one_else_holds_are_handed_back_and_written_over() {
        let login = |session: Option<Arc<str>>| login_of("h", 0, session);
        let mut texts = Texts::default();
        let store = texts.share();
        let (held, alone, pair): (Arc<str>, Arc<str>, Arc<str>) = ("7@100".into(), "8@100".into(), "42@100".into());
        let (alone_at, pair_at) = (Arc::as_ptr(&alone) as *const u8, Arc::as_ptr(&pair) as *const u8);
        let long: Arc<str> = "9".repeat(Texts::SHARED_LONGEST + 1).into();
        let mut events = vec![
            login(Some(held.clone())),
            login(Some(alone)),
            login(Some(pair.clone())),
            login(Some(pair)),
            login(Some(long)),
            login(None),
        ];
        store.keep_paths(&mut events);
        assert!(events.is_empty());
        // Still held elsewhere (an open connection): dropped, not kept.
        assert_eq!(Arc::strong_count(&held), 1);
        // Written over: the same allocations, the new texts.
        let again = texts.shared("9@200");
        assert_eq!((&*again, Arc::as_ptr(&again) as *const u8), ("9@200", alone_at));
        let again = texts.shared("10@200");
        assert_eq!((&*again, Arc::as_ptr(&again) as *const u8), ("10@200", pair_at));
        // None of that length left, none too long kept: new texts.
        assert_eq!(&*texts.shared("1@200"), "1@200");
        let long = "1".repeat(Texts::SHARED_LONGEST + 1);
        assert_eq!(*texts.shared(&long), *long);
        assert_eq!(&*texts.shared(""), "");
        assert_eq!(texts.local_shared_len, 0);
    }

    #[test]
    fn a_head_continues_a_horizon_when_no_line_of_a_known_host_is_older() {
        let login = |host: &str, time| login_of(host, time, None);
        let mut h = Horizon::default();
        h.note(&[login("a", 50), login("a", 40), login("b", 10)]);
        let head = |v: &[(&str, Micros)]| v.iter().map(|(h, t)| (h.to_string(), *t)).collect::<Vec<_>>();
        assert!(h.continued_by(&head(&[("a", 50), ("b", 10)])));
        assert!(h.continued_by(&head(&[("c", 0)])));
        assert!(!h.continued_by(&head(&[("a", 49), ("b", 99)])));
        assert!(!h.continued_by(&head(&[("b", 9)])));
        assert!(h.knows_any(&head(&[("c", 0), ("b", 0)])));
        assert!(!h.knows_any(&head(&[("c", 0)])));
        assert!(Horizon::default().continued_by(&head(&[("a", 0)])));
        // One shared name per host, as decoders give them, interleaved: the
        // first host's events are found by its copy, the others' by name.
        let login_of = |host: &Arc<str>, time| {
            let mut e = login("", time);
            let Event::Login(l) = &mut e else { unreachable!() };
            l.server_host = host.clone();
            e
        };
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let mut shared = Horizon::default();
        shared.note(&[login_of(&a, 5), login_of(&b, 30), login_of(&a, 20), login_of(&b, 10), login("a", 7)]);
        shared.note(&[login_of(&a, 3), login_of(&b, 40), login("b", 35)]);
        assert_eq!(
            shared.0.into_iter().map(|(h, t)| (h.to_string(), t)).collect::<Vec<_>>(),
            [("a".to_string(), 20), ("b".to_string(), 40)]
        );
    }

    #[test]
    fn saved_text_holds_the_horizon_and_reads_a_bare_state() {
        let mut d = crate::formats::proftpd::decoder::ProftpdDecoder::default();
        let mut h = Horizon::default();
        h.0.insert(Arc::from("ftp1"), 7);
        let text = AnyDecoder::save_text(&d, &h);
        assert_eq!(text, r#"{"horizon":{"ftp1":7},"state":[]}"#);
        assert_eq!(AnyDecoder::restore_text(&mut d, &text).unwrap(), h);
        // Saved before horizons were: the bare state, no horizon.
        assert_eq!(AnyDecoder::restore_text(&mut d, "[]").unwrap(), Horizon::default());
        assert_eq!(AnyDecoder::restore_text(&mut d, "").unwrap(), Horizon::default());
        assert!(AnyDecoder::restore_text(&mut d, r#"{"horizon":{},"state":{}}"#).is_err());
    }

    #[test]
    fn client_addresses() {
        let ip = |s: &str| client_ip(s.as_bytes()).map(|i| i.to_string());
        assert_eq!(ip("::ffff:150.135.84.81").as_deref(), Some("150.135.84.81"));
        assert_eq!(ip("[2001:db8::7]:50522").as_deref(), Some("2001:db8::7"));
        assert_eq!(ip("192.0.2.1:22").as_deref(), Some("192.0.2.1"));
        assert_eq!(ip("[::1]").as_deref(), Some("::1"));
        assert_eq!(ip("UNKNOWN"), None);
        assert_eq!(ip("localhost"), None);
    }

    #[test]
    fn cached_seeds_give_the_ids_of_a_fresh_generator() {
        let key = test_id_key();
        let mut g = IdGen::new(key);
        let line = b"Nov  8 10:12:38 vm sshd[1]: x";
        let plain = b"2026/03/01 10:00:06 [1] connect from x (192.0.2.1)";
        for (t, host, tag) in
            [(1_000_000, &b"a"[..], 1), (1_000_000, b"a", 2), (2_000_000, b"b", 1), (2_000_000, b"a", 1)]
                .into_iter()
                .chain([(3_000_000, &b"a"[..], 200), (3_000_000, b"", 0)])
        {
            assert_eq!(g.id(t, host, line, tag), IdGen::new(key).id(t, host, line, tag));
            assert_eq!(g.id(t, host, plain, tag), IdGen::new(key).id(t, host, plain, tag));
        }
    }

    #[test]
    fn identical_lines_in_one_second_get_distinct_ids() {
        let key = test_id_key();
        let mut g = IdGen::new(key);
        let a = g.id(1_000_000, b"h", b"line", 1);
        let b = g.id(1_000_000, b"h", b"line", 1);
        assert_ne!(a, b);
        let mut g2 = IdGen::new(key);
        assert_eq!(g2.id(1_000_000, b"h", b"line", 1), a);
        assert_ne!(g2.id(1_000_000, b"h2", b"line", 1), b);
        assert_ne!(IdGen::new(key).id(0, b"h", b"line", 2), a);
        // A generator restored mid-second continues the ordinals.
        let mut g3 = IdGen::restore(key, &g.save());
        assert_eq!(g3.id(1_000_000, b"h", b"line", 1), g.id(1_000_000, b"h", b"line", 1));
    }

    #[test]
    fn content_ids_of_syslog_lines_ignore_the_time_stamp_rendering() {
        let bsd = b"Nov  8 10:12:38 vm sshd[25971]: Accepted password for erin from 127.0.1.21 port 1 ssh2";
        let rfc =
            b"2026-11-08T10:12:38.416198+00:00 vm sshd[25971]: Accepted password for erin from 127.0.1.21 port 1 ssh2";
        let t = 1_794_146_000_000_000;
        let key = test_id_key();
        assert!(key.content_ids());
        let id = |key: IdKey, line: &[u8], t: i64| IdGen::new(key).id(t, b"vm", line, 1);
        assert_eq!(id(key, bsd, t), id(key, rfc, t + 416_198));
        // Another second, host or pid is another event.
        assert_ne!(id(key, bsd, t), id(key, bsd, t + 1_000_000));
        assert_ne!(id(key, bsd, t), IdGen::new(key).id(t, b"vm2", bsd, 1));
        let other_pid = b"Nov  8 10:12:38 vm sshd[25972]: Accepted password for erin from 127.0.1.21 port 1 ssh2";
        assert_ne!(id(key, bsd, t), id(key, other_pid, t));
        // A store of the raw-line scheme: the line itself.
        let v1 = key.for_scheme(crate::enrich::hostkey::ID_SCHEME_V1);
        assert_ne!(id(v1, bsd, t), id(v1, rfc, t + 416_198));
        assert_eq!(id(v1, bsd, t), key.hash(xxh3_64_with_seed(bsd, xxh3_64_with_seed(b"vm", 1))));
        // Lines without a syslog prefix hash as before in both schemes.
        let plain = b"2026/03/01 10:00:06 [1] connect from x (192.0.2.1)";
        assert_eq!(id(key, plain, t), id(v1, plain, t));
    }

    #[test]
    fn ftp_transfer_ids_agree_between_xferlog_and_the_extended_log() {
        use crate::model::Direction;
        let key = test_id_key();
        let t = 1_794_146_000_000_000;
        let of = |key: IdKey, line: &[u8], path: &[u8], bytes: u64, direction: Direction| {
            let what = FtpTransfer { user: "erin", direction, bytes, path };
            IdGen::new(key).ftp_transfer_id(t, b"vm", line, 11, what)
        };
        let xferlog = of(key, b"a", b"/srv/homes/erin/ftp_08f/meeting_notes_2026.md", 23456, Direction::Upload);
        let extended = of(key, b"b", b"ftp 08f/meeting notes 2026.md", 23456, Direction::Upload);
        assert_eq!(xferlog, extended);
        // The digest of the fields hashed piece by piece with a streaming
        // hasher, as ids were first made: the same ids.
        let mut h = xxhash_rust::xxh3::Xxh3::with_seed(xxh3_64_with_seed(b"vm", FTP_TRANSFER_TAG));
        h.update(&(t / 1_000_000).to_le_bytes());
        h.update(&[direction_code(Direction::Upload)]);
        h.update(&23456u64.to_le_bytes());
        h.update(b"erin\0");
        for part in [&b"meeting"[..], b"notes", b"2026.md"] {
            h.update(part);
            h.update(b"_");
        }
        assert_eq!(xferlog, IdGen::new(key).next(t, h.digest()));
        assert_ne!(xferlog, of(key, b"a", b"ftp 08f/meeting notes 2026.md", 23457, Direction::Upload));
        assert_ne!(xferlog, of(key, b"a", b"ftp 08f/meeting notes 2026.md", 23456, Direction::Download));
        // Raw-line scheme: the id of the line, as before.
        let v1 = key.for_scheme(crate::enrich::hostkey::ID_SCHEME_V1);
        assert_eq!(of(v1, b"a", b"x", 1, Direction::Upload), IdGen::new(v1).id(t, b"vm", b"a", 11));
        assert_eq!(IdGen::new(key).whole_second(t + 471_000), t);
        assert_eq!(IdGen::new(v1).whole_second(t + 471_000), t + 471_000);
    }

    #[test]
    fn saved_state_holds_keyed_hashes_only() {
        let key = test_id_key();
        let mut g = IdGen::new(key);
        g.id(1_000_000, b"h", b"line", 1);
        let unkeyed = xxh3_64_with_seed(b"line", xxh3_64_with_seed(b"h", 1));
        let saved = g.save();
        assert_eq!(saved, format!(r#"{{"second":1,"seen":{{"{}":1}}}}"#, key.hash(unkeyed)));
        assert!(!saved.contains(&unkeyed.to_string()));
        // A state saved by the unkeyed scheme re-keys to the same text.
        let legacy = format!(r#"{{"second":1,"seen":{{"{unkeyed}":1}}}}"#);
        assert_eq!(rekey_ids_state(&key, &legacy), saved);
    }

    #[test]
    fn repeats_get_neighbouring_ids() {
        let key = test_id_key();
        let mut g = IdGen::new(key);
        let ids: Vec<u64> = (0..4).map(|_| g.id(1_000_000, b"h", b"line", 1)).collect();
        let base = key.hash(xxh3_64_with_seed(b"line", xxh3_64_with_seed(b"h", 1)));
        assert_eq!(ids, vec![base, base.wrapping_add(1), base.wrapping_add(2), base.wrapping_add(3)]);
    }

    #[test]
    fn unkeyed_ids_rekey_to_what_the_lines_now_hash_to() {
        // One second of an unkeyed store: a line three times, two others.
        let lines: [&[u8]; 6] = [b"a", b"b", b"a", b"c", b"a", b"b"];
        let mut old = IdGen::new(IdKey::unkeyed());
        let stored: Vec<u64> = lines.iter().map(|l| old.id(5_000_000, b"h", l, 1)).collect();
        let key = test_id_key();
        let mut new = IdGen::new(key);
        let expected: Vec<u64> = lines.iter().map(|l| new.id(5_000_000, b"h", l, 1)).collect();
        assert_eq!(rekey_unkeyed_ids(&key, &stored), expected);
        // Any order of the group gives the same mapping.
        let mut rev = stored.clone();
        rev.reverse();
        let mut back = rekey_unkeyed_ids(&key, &rev);
        back.reverse();
        assert_eq!(back, expected);
        assert_eq!(rekey_unkeyed_ids(&key, &stored[..1]), vec![key.hash(stored[0])]);
    }
}
