//! The event model every format produces and every store consumes.
//!
//! Formats turn log lines into [`Event`]s; nothing downstream knows which log a
//! value came from except through an event's `source` ([`SourceFormat`]).
//! Keeping one model for rsync, SFTP and FTP is what lets a report add up
//! uploads from three different daemons without special cases.
//!
//! Times are Unix microseconds in UTC. Byte counts are `u64`.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

/// Stable 64-bit identifier of an event, derived from the log content that
/// produced it (never from a file name or offset). Re-reading the same lines
/// from a renamed or compressed copy yields the same ids, which is how stores
/// refuse duplicates. It is keyed with the host key
/// ([`crate::sessions::IdGen`]): it confirms no candidate line without it.
pub type EventId = u64;

/// Unix time in microseconds, UTC.
pub type Micros = i64;

/// The transfer protocol the event was observed on. (The discriminants are
/// stable codes some stores bind instead of the name.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// rsync daemon protocol (`rsync://`, port 873).
    Rsync = 0,
    /// SSH file transfer protocol.
    Sftp,
    /// scp over SSH.
    Scp,
    /// Plain FTP.
    Ftp,
    /// FTP over TLS.
    Ftps,
    /// SSH login without a known subsystem.
    Ssh,
    /// HTTP(S) (e.g. SFTPGo WebClient).
    Http,
}

impl Protocol {
    /// Lower-case name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rsync => "rsync",
            Protocol::Sftp => "sftp",
            Protocol::Scp => "scp",
            Protocol::Ftp => "ftp",
            Protocol::Ftps => "ftps",
            Protocol::Ssh => "ssh",
            Protocol::Http => "http",
        }
    }
}

/// Direction from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client to server.
    Upload = 0,
    /// Server to client.
    Download,
    /// A file removed on the server; never counted as traffic.
    Delete,
}

impl Direction {
    /// Lower-case name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
            Direction::Delete => "delete",
        }
    }
}

/// How a transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The whole file arrived.
    Completed = 0,
    /// The session ended before the file was complete (client killed,
    /// connection lost, forced close).
    Interrupted,
    /// The server refused or failed the transfer.
    Failed,
}

impl Status {
    /// Lower-case name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Interrupted => "interrupted",
            Status::Failed => "failed",
        }
    }
}

/// Result of one authentication attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginOutcome {
    /// Accepted.
    Ok,
    /// Rejected credentials of an existing user.
    Failed,
    /// The user name does not exist on the server.
    InvalidUser,
}

impl LoginOutcome {
    /// Lower-case name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Ok => "ok",
            LoginOutcome::Failed => "failed",
            LoginOutcome::InvalidUser => "invalid_user",
        }
    }
}

/// Which log format produced an event: its format (`formats::Format`,
/// whose `source()` makes it), one byte per event. It is stored, printed
/// and serialised as the format's registered name (`as_str`, with the
/// registry in `formats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceFormat(pub(crate) u8);

/// Whether a transfer describes one file or a whole session's byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One file (rsync `transfer logging`, sftp close, xferlog line).
    File = 0,
    /// A session's total (rsync `sent … received …` without per-file lines).
    Session,
}

impl Granularity {
    /// Lower-case name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::File => "file",
            Granularity::Session => "session",
        }
    }
}

/// One file moved (or deleted) by a client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transfer {
    /// Content-derived id, see [`EventId`].
    pub id: EventId,
    /// When the transfer ended (the log line's time), UTC µs.
    pub end: Micros,
    /// When it started, when the log says so.
    pub start: Option<Micros>,
    /// Protocol it ran over.
    pub protocol: Protocol,
    /// Upload, download or delete.
    pub direction: Direction,
    /// Completed, interrupted or failed.
    pub status: Status,
    /// Payload bytes that moved (file length for a completed rsync file,
    /// the session byte count for a session-level transfer). Deletes carry 0.
    pub bytes: u64,
    /// Bytes on the wire for this file when the log has them (rsync `%b`).
    pub wire_bytes: Option<u64>,
    /// Full size of the file (or file set, for session-level transfers).
    pub file_size: Option<u64>,
    /// File path as logged, decoded from the log's escapes.
    pub path: Option<String>,
    /// rsync module, FTP/SFTP virtual root, … (shared: a decoder interns
    /// the names it sees, see [`Names`]).
    pub module: Option<Arc<str>>,
    /// Login name; `anonymous` for unauthenticated access.
    pub user: Arc<str>,
    /// Client address.
    pub client_ip: Option<IpAddr>,
    /// Client host name as logged (`UNDETERMINED`/`UNKNOWN` are dropped;
    /// shared: a decoder may give every event of a client the same copy).
    pub client_host: Option<Arc<str>>,
    /// Identifier of the session within the server (e.g. `pid@start`).
    pub session: Option<Arc<str>>,
    /// Server host the log was written on.
    pub server_host: Arc<str>,
    /// Format of the log the event came from.
    pub source: SourceFormat,
    /// Per file or per session.
    pub granularity: Granularity,
    /// Where the client is, added by enrichment (`None` before it, or when
    /// the log names no client).
    pub origin: Option<Arc<Origin>>,
}

/// One authentication attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Login {
    /// Content-derived id, see [`EventId`].
    pub id: EventId,
    /// When it happened, UTC µs.
    pub time: Micros,
    /// Protocol the login was for.
    pub protocol: Protocol,
    /// Name the client gave.
    pub user: Arc<str>,
    /// Client address.
    pub client_ip: Option<IpAddr>,
    /// Client host name as logged (shared, as in [`Transfer`]).
    pub client_host: Option<Arc<str>>,
    /// Accepted, rejected or unknown user.
    pub outcome: LoginOutcome,
    /// Authentication method (`password`, `publickey`, module name for
    /// rsync, …) when the log says so.
    pub method: Option<Arc<str>>,
    /// Session identifier.
    pub session: Option<Arc<str>>,
    /// Server host the log was written on.
    pub server_host: Arc<str>,
    /// Format of the log the event came from.
    pub source: SourceFormat,
    /// Where the client is, added by enrichment.
    pub origin: Option<Arc<Origin>>,
}

/// What enrichment knows of a client, shared by every event of that client
/// (one lookup per distinct address).
///
/// Geo fields come from the full address before the IP-privacy mode drops
/// or truncates it; the event's `client_ip` then holds only what the mode
/// lets a store keep.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Origin {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<Box<str>>,
    /// City name (English).
    pub city: Option<Box<str>>,
    /// Latitude, degrees.
    pub latitude: Option<f64>,
    /// Longitude, degrees.
    pub longitude: Option<f64>,
    /// Geohash of the location at the configured precision.
    pub geohash: Option<Box<str>>,
    /// Keyed hash of the client address (or host name when the log has no
    /// address), when the IP mode keeps one.
    pub client_hash: Option<Box<str>>,
    /// Set when `client_ip` was truncated to a network of this many bits.
    pub ip_prefix: Option<u8>,
}

/// Anything a log line (or a joined group of lines) can mean for statistics.
///
/// Enrichment (GeoIP, client-host hash, IP privacy) is applied by a later
/// stage ([`crate::enrich`]) to the `origin`, `client_ip` and `client_host`
/// fields; formats leave `origin` empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Event {
    /// A file transfer or deletion.
    Transfer(Transfer),
    /// An authentication attempt.
    Login(Login),
}

impl Event {
    /// The event's id.
    pub fn id(&self) -> EventId {
        match self {
            Event::Transfer(t) => t.id,
            Event::Login(l) => l.id,
        }
    }

    /// The event's time (end of transfer, time of login).
    pub fn time(&self) -> Micros {
        match self {
            Event::Transfer(t) => t.end,
            Event::Login(l) => l.time,
        }
    }
}

/// The client a store counts as one (distinct clients per day): the
/// address as the IP mode stored it, else its keyed hash, else the host
/// name; the same text as `COALESCE(abbrev(client_ip), client_hash,
/// client_host)` in PostgreSQL and `COALESCE(client_ip, client_hash,
/// client_host)` in SQLite.
pub fn client_key(ip: Option<IpAddr>, prefix: Option<u8>, hash: Option<&str>, host: Option<&str>) -> Option<String> {
    match ip {
        Some(a) => Some(ip_text(a, prefix)),
        None => hash.or(host).map(str::to_string),
    }
}

/// The text of a client address as stored, identical to PostgreSQL's
/// `abbrev(inet)`: RFC 5952 compression, except that an IPv6 address whose
/// first 96 bits are zero and whose 7th group is not, or an IPv4-mapped one,
/// is written with a dotted IPv4 tail (`::1.2.3.4`, `::ffff:1.2.3.4`), as
/// BIND's `inet_ntop` does. `prefix` (a truncated address) adds `/bits`.
pub fn ip_text(ip: IpAddr, prefix: Option<u8>) -> String {
    let mut s = String::new();
    let _ = write_ip_text(&mut s, ip, prefix);
    s
}

/// Writes [`ip_text`] to `out` (nothing allocated).
pub fn write_ip_text(out: &mut impl fmt::Write, ip: IpAddr, prefix: Option<u8>) -> fmt::Result {
    match ip {
        IpAddr::V4(a) => write!(out, "{a}")?,
        IpAddr::V6(a) => {
            let w = a.segments();
            let v4 = std::net::Ipv4Addr::new((w[6] >> 8) as u8, w[6] as u8, (w[7] >> 8) as u8, w[7] as u8);
            if w[..6] == [0; 6] && w[6] != 0 {
                write!(out, "::{v4}")?
            } else if w[..5] == [0; 5] && w[5] == 0xffff {
                write!(out, "::ffff:{v4}")?
            } else {
                write!(out, "{a}")?
            }
        }
    }
    if let Some(bits) = prefix.filter(|b| *b < if ip.is_ipv4() { 32 } else { 128 }) {
        write!(out, "/{bits}")?;
    }
    Ok(())
}

impl Event {
    /// Replaces NUL characters in the event's text fields with U+FFFD:
    /// PostgreSQL text cannot hold them, and every store must store the
    /// same thing.
    pub fn scrub_nul(&mut self) {
        self.scrub_nul_with(|s| !s.contains('\0'));
    }

    /// [`Event::scrub_nul`], asking `clean` whether a shared name (user,
    /// module, method, client host) holds no NUL: a caller that sees the
    /// same names over and over can answer from the names it checked
    /// before, without reading them again.
    pub fn scrub_nul_with(&mut self, mut clean: impl FnMut(&Arc<str>) -> bool) {
        fn fix(s: &mut String) {
            if s.contains('\0') {
                *s = s.replace('\0', "\u{fffd}");
            }
        }
        fn fix_opt(s: &mut Option<String>) {
            if let Some(s) = s {
                fix(s);
            }
        }
        let mut fix_shared = |s: &mut Arc<str>| {
            if !clean(s) {
                *s = s.replace('\0', "\u{fffd}").into();
            }
        };
        match self {
            Event::Transfer(t) => {
                fix_shared(&mut t.user);
                fix_opt(&mut t.path);
                t.module.iter_mut().chain(&mut t.client_host).for_each(fix_shared);
            }
            Event::Login(l) => {
                fix_shared(&mut l.user);
                l.method.iter_mut().chain(&mut l.client_host).for_each(fix_shared);
            }
        }
    }
}

/// Interned text a log repeats on nearly every line (user names, modules,
/// authentication methods): each distinct name is allocated once and then
/// shared by every event that carries it, so that decoding a line
/// allocates no text for them. Bounded: it starts over past
/// [`Names::MAX`] names (a log of random user names cannot grow it).
///
/// Kept by the hash of the text ([`text_hash`]), the text compared inline
/// ([`same_bytes`]) rather than by `memcmp`; a name whose hash another
/// holds takes its place. The names last found by their bytes are also
/// kept in `Names::RECENT` slots by a cheap mix of their length and
/// first and last bytes (`recent_slot`): most lookups end there,
/// without hashing the whole text and probing the map.
#[derive(Debug, Default)]
pub struct Names {
    by_hash: std::collections::HashMap<u64, Arc<str>, FastHash>,
    /// The names last found by [`Names::get_bytes`], each in its slot;
    /// only names without a backslash ([`Names::recent`]). Empty until
    /// the first.
    recent: Vec<Option<Arc<str>>>,
}

/// The slot of bytes `b` among [`Names::RECENT`]: their length and their
/// first and last four bytes (or first, middle and last byte), mixed by a
/// multiplication (Fibonacci hashing).
#[inline(always)]
fn recent_slot(b: &[u8]) -> usize {
    let n = b.len();
    let w4 = |at: usize| u64::from(u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")));
    let k = match n {
        0 => 0,
        1..=3 => u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
        _ => w4(0) | w4(n - 4) << 32,
    } ^ (n as u64).rotate_right(12);
    (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - Names::RECENT.trailing_zeros())) as usize
}

impl Names {
    /// Names kept at most.
    pub const MAX: usize = 65_536;

    /// Slots of the names last found (a power of two).
    const RECENT: usize = 256;

    /// The shared copy of log bytes `b` as text ([`text`]).
    pub fn get_bytes(&mut self, b: &[u8]) -> Arc<str> {
        if let Some(a) = self.recent(b) {
            return a;
        }
        // A name kept is valid UTF-8, so bytes equal to it are that very
        // text: found without validating them.
        let a = match self.by_hash.get(&text_hash(b)) {
            Some(a) if same_bytes(a.as_bytes(), b) => a.clone(),
            _ => self.get(&text(b)),
        };
        if !a.as_bytes().contains(&b'\\') {
            if self.recent.is_empty() {
                self.recent.resize(Self::RECENT, None);
            }
            self.recent[recent_slot(a.as_bytes())] = Some(a.clone());
        }
        a
    }

    /// The shared name of bytes `b` if it is one of those last found by
    /// [`Names::get_bytes`], by its bytes alone (no hashing of the whole
    /// text). Those names hold no backslash, so neither does `b` when it
    /// is found: a decoder that decodes escapes may look here first.
    #[inline]
    pub fn recent(&self, b: &[u8]) -> Option<Arc<str>> {
        let a = self.recent.get(recent_slot(b))?.as_ref()?;
        same_bytes(a.as_bytes(), b).then(|| a.clone())
    }

    /// The shared copy of `s`.
    pub fn get(&mut self, s: &str) -> Arc<str> {
        let h = text_hash(s.as_bytes());
        if let Some(a) = self.by_hash.get(&h) {
            if same_bytes(a.as_bytes(), s.as_bytes()) {
                return a.clone();
            }
        }
        if self.by_hash.len() >= Self::MAX {
            self.by_hash.clear();
            self.recent.clear();
        }
        let a: Arc<str> = Arc::from(s);
        self.by_hash.insert(h, a.clone());
        a
    }
}

/// The hash a map of texts on the per-line path keys them by (one-shot
/// xxh3; see [`FastHash`]).
#[inline]
pub fn text_hash(b: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(b)
}

/// Whether `a` and `b` are the same bytes. The texts compared per line
/// (host names, addresses, user names) are short, and `==` on them is a
/// call to `memcmp`, which was the join thread's most frequent call:
/// up to 32 bytes are compared here as two or four overlapping words.
#[inline(always)]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w8 = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let w4 = |s: &[u8], at: usize| u32::from_ne_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    match n {
        0 => true,
        // The first, middle and last byte: every one of up to 3.
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        8..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        17..=32 => {
            ((w8(a, 0) ^ w8(b, 0))
                | (w8(a, 8) ^ w8(b, 8))
                | (w8(a, n - 16) ^ w8(b, n - 16))
                | (w8(a, n - 8) ^ w8(b, n - 8)))
                == 0
        }
        _ => a == b,
    }
}

/// The hasher of the in-memory maps on the per-line path (names, pids,
/// server hosts, client addresses): std's default SipHash, and the
/// streaming xxh3 hasher (which sets up and copies a state of several
/// hundred bytes per key), cost more than the rest of a map lookup. Text
/// is hashed with one-shot xxh3, integers with one folded multiply. Its
/// keys come from logs, like those of the maps it replaced the streaming
/// xxh3 hasher in: it is not seeded per process.
pub type FastHash = std::hash::BuildHasherDefault<FastHasher>;

/// The [`Hasher`](std::hash::Hasher) of [`FastHash`].
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn mix(&mut self, v: u64) {
        // Folded multiply: the high and low halves of the 128-bit product.
        let p = u128::from(self.0 ^ v) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }
}

impl std::hash::Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.mix(u64::from(v));
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.mix(u64::from(v));
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.mix(u64::from(v));
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.mix(v as u64);
    }
}

/// Log bytes as text: valid UTF-8 as it is (validated a word at a time,
/// the common case), else with U+FFFD for each invalid sequence.
pub fn lossy(b: &[u8]) -> String {
    text(b).into_owned()
}

/// [`lossy`] without a copy when `b` is valid UTF-8 (to be shared as an
/// `Arc<str>`, made in one allocation from it).
pub fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// The user name stored for unauthenticated access.
pub const ANONYMOUS: &str = "anonymous";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_hash_tells_keys_apart() {
        use std::hash::BuildHasher;
        let h = FastHash::default();
        assert_eq!(h.hash_one("pub"), h.hash_one("pub"));
        assert_ne!(h.hash_one("pub"), h.hash_one("pu"));
        assert_ne!(h.hash_one(("a", "bc")), h.hash_one(("ab", "c")));
        assert_ne!(h.hash_one(0u32), h.hash_one(1u32));
        // Consecutive pids spread over the low bits a table indexes by.
        let low: std::collections::HashSet<u64> = (4000u32..4064).map(|p| h.hash_one(p) & 63).collect();
        assert!(low.len() > 32, "{}", low.len());
        let mut names = Names::default();
        let a = names.get("alice");
        assert!(Arc::ptr_eq(&a, &names.get_bytes(b"alice")));
    }

    #[test]
    fn names_found_lately_are_found_by_their_bytes_and_only_without_a_backslash() {
        let mut names = Names::default();
        assert!(names.recent(b"alice").is_none());
        let a = names.get_bytes(b"alice");
        assert!(Arc::ptr_eq(&a, &names.recent(b"alice").unwrap()));
        assert!(Arc::ptr_eq(&a, &names.get_bytes(b"alice")));
        // Other bytes in the same slot are not that name.
        let slot = recent_slot(b"alice");
        let other = (0..100_000u32).map(|k| format!("u{k}")).find(|t| recent_slot(t.as_bytes()) == slot).unwrap();
        assert!(names.recent(other.as_bytes()).is_none());
        let o = names.get_bytes(other.as_bytes());
        assert_eq!(*o, *other);
        assert!(names.recent(b"alice").is_none());
        assert!(Arc::ptr_eq(&a, &names.get_bytes(b"alice")));
        // Every length's slot reads the bytes it mixes.
        for t in ["", "a", "ab", "abc", "abcd", "abcdefgh", "CL-VALIDATED-DATA", "FR-VALIDATED-DATA"] {
            assert_eq!(&*names.get_bytes(t.as_bytes()), t);
            assert_eq!(names.recent(t.as_bytes()).as_deref(), Some(t));
        }
        // A name with a backslash is not kept there (found in the map,
        // shared as before); bytes that are no UTF-8 are not their text.
        let back = names.get_bytes(b"a\\#041");
        assert!(names.recent(b"a\\#041").is_none());
        assert!(Arc::ptr_eq(&back, &names.get_bytes(b"a\\#041")));
        let lossy = names.get_bytes(b"b\xffd");
        assert!(names.recent(b"b\xffd").is_none());
        assert!(Arc::ptr_eq(&lossy, &names.recent("b\u{fffd}d".as_bytes()).unwrap()));
        assert!(Arc::ptr_eq(&lossy, &names.get_bytes(b"b\xffd")));
        // Starting over forgets them too.
        for k in 0..=Names::MAX {
            names.get(&format!("n{k}"));
        }
        assert!(names.recent(b"alice").is_none());
    }

    #[test]
    fn names_are_shared_and_a_hash_collision_gives_the_right_text() {
        let mut names = Names::default();
        let (a, b) = (names.get("alice"), names.get("bob"));
        assert!(Arc::ptr_eq(&a, &names.get("alice")) && Arc::ptr_eq(&b, &names.get("bob")));
        assert_eq!(names.get(""), "".into());
        // Another text under bob's hash, as a collision would leave it.
        names.by_hash.insert(text_hash(b"bob"), Arc::from("eve"));
        let bob = names.get("bob");
        assert_eq!(&*bob, "bob");
        assert!(Arc::ptr_eq(&bob, &names.get("bob")));
        for k in 0..=Names::MAX + 1 {
            names.get(&k.to_string());
        }
        assert!(names.by_hash.len() <= Names::MAX);
        assert_eq!(&*names.get("alice"), "alice");
        // Bytes that are no UTF-8 get their text, shared.
        let lossy = names.get_bytes(b"b\xffd");
        assert_eq!(&*lossy, "b\u{fffd}d");
        assert!(Arc::ptr_eq(&lossy, &names.get_bytes(b"b\xffd")));
        assert!(Arc::ptr_eq(&lossy, &names.get("b\u{fffd}d")));
        assert_eq!(&*names.get_bytes(b"b\xfed"), "b\u{fffd}d");
    }

    #[test]
    fn same_bytes_is_slice_equality() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..=40 {
            let a = &base[..n];
            let copy = a.to_vec();
            assert!(same_bytes(a, &copy), "{n}");
            for m in 0..=40 {
                assert_eq!(same_bytes(a, &base[..m]), n == m, "{n} {m}");
            }
            // Every single byte changed is seen.
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 0x20;
                assert!(!same_bytes(a, &b), "{n} {i}");
            }
        }
    }

    #[test]
    fn address_text_matches_postgres_abbrev() {
        // Expected values printed by PostgreSQL 15's abbrev(inet).
        for (ip, prefix, pg) in [
            ("::102:304", None, "::1.2.3.4"),
            ("::1:0", None, "::0.1.0.0"),
            ("::1", None, "::1"),
            ("::", None, "::"),
            ("::2", None, "::2"),
            ("2001:db8::1", None, "2001:db8::1"),
            ("::ffff:1.2.3.4", None, "::ffff:1.2.3.4"),
            ("::ffff:0:1", None, "::ffff:0.0.0.1"),
            ("0:0:0:0:0:1:0:0", None, "::1:0:0"),
            ("1::", None, "1::"),
            ("::1.0.0.0", Some(104), "::1.0.0.0/104"),
            ("2a01:cb00::", Some(48), "2a01:cb00::/48"),
            ("152.77.1.0", Some(24), "152.77.1.0/24"),
            ("152.77.1.6", Some(32), "152.77.1.6"),
        ] {
            assert_eq!(ip_text(ip.parse().unwrap(), prefix), pg, "{ip}");
        }
    }
}
