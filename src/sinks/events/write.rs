//! One event as an NDJSON line or a CSV row, into a reused buffer.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;

use crate::model::{write_ip_text, Event, FastHash, Origin};

/// Defines [`COLUMNS`] and [`KEYS`] from one list of names.
macro_rules! columns {
    ($($name:literal),* $(,)?) => {
        /// The columns, in order: the stores' columns of both kinds (a
        /// transfer's `end_us` is `time_us` here), `kind` first; `input` is
        /// the ledger fingerprint of the input the event came from, as a
        /// store records it.
        pub const COLUMNS: [&str; N] = [$($name),*];

        /// Each column as an NDJSON key after the previous field:
        /// `,"name":`.
        const KEYS: [&str; N] = [$(concat!(",\"", $name, "\":")),*];
    };
}

columns![
    "kind",
    "event_id",
    "time_us",
    "start_us",
    "protocol",
    "direction",
    "status",
    "outcome",
    "method",
    "bytes",
    "wire_bytes",
    "file_size",
    "path",
    "module",
    "user",
    "client_ip",
    "client_host",
    "client_hash",
    "country",
    "city",
    "latitude",
    "longitude",
    "geohash",
    "session",
    "server_host",
    "source",
    "granularity",
    "input",
];

/// How many columns.
const N: usize = 28;

/// The column of the input's fingerprint.
const INPUT: usize = 27;

/// A field of one event.
#[derive(Clone, Copy)]
enum Value<'a> {
    /// Not a field of this kind of event.
    Absent,
    /// A field of this kind without a value.
    Null,
    Int(i64),
    Float(f64),
    /// A name of a fixed vocabulary (protocol, status, …): plain ASCII,
    /// nothing to escape.
    Name(&'static str),
    /// Text from the log (or enrichment).
    Text(&'a str),
    /// A client address, with its prefix length when truncated.
    Ip(IpAddr, Option<u8>),
}

fn opt<'a, T>(v: Option<T>, f: impl FnOnce(T) -> Value<'a>) -> Value<'a> {
    v.map_or(Value::Null, f)
}

fn text(s: Option<&str>) -> Value<'_> {
    opt(s, Value::Text)
}

/// A writer of one event, column by column ([`values`]).
trait Columns<'a> {
    /// Column `i` of [`COLUMNS`] has the value `v`. Inlined (always) into
    /// [`values`], so that `i`, its key and the kind of `v` are constants
    /// there.
    fn col(&mut self, i: usize, v: Value<'a>);

    /// Columns 17 (`client_hash`) to 22 (`geohash`), all of them the
    /// client's origin `o`'s ([`origin_values`]).
    #[inline(always)]
    fn origin(&mut self, o: Option<&'a Arc<Origin>>)
    where
        Self: Sized,
    {
        origin_values(o.map(|o| &**o), self);
    }
}

/// Gives `f` columns 17 (`client_hash`) to 22 (`geohash`) of an event
/// whose client's origin is `o`.
#[inline(always)]
fn origin_values<'a>(o: Option<&'a Origin>, f: &mut impl Columns<'a>) {
    f.col(17, text(o.and_then(|o| o.client_hash.as_deref())));
    f.col(18, text(o.and_then(|o| o.country.as_deref())));
    f.col(19, text(o.and_then(|o| o.city.as_deref())));
    f.col(20, opt(o.and_then(|o| o.latitude), Value::Float));
    f.col(21, opt(o.and_then(|o| o.longitude), Value::Float));
    f.col(22, text(o.and_then(|o| o.geohash.as_deref())));
}

/// Gives `out` the index and value of every column of `e`, read from the
/// input with fingerprint `input`, in [`COLUMNS`] order: no array of
/// values is built per event.
#[inline(always)]
fn values<'a>(e: &'a Event, input: Option<u64>, out: &mut impl Columns<'a>) {
    use Value::*;
    let mut f = InOrder { out, next: 0 };
    match e {
        Event::Transfer(t) => {
            f.col(0, Name("transfer"));
            f.col(1, Int(t.id as i64));
            f.col(2, Int(t.end));
            f.col(3, opt(t.start, Int));
            f.col(4, Name(t.protocol.as_str()));
            f.col(5, Name(t.direction.as_str()));
            f.col(6, Name(t.status.as_str()));
            f.col(7, Absent);
            f.col(8, Absent);
            f.col(9, Int(t.bytes as i64));
            f.col(10, opt(t.wire_bytes, |v| Int(v as i64)));
            f.col(11, opt(t.file_size, |v| Int(v as i64)));
            f.col(12, text(t.path.as_deref()));
            f.col(13, text(t.module.as_deref()));
            let who = Who { user: &t.user, ip: t.client_ip, host: t.client_host.as_deref(), origin: t.origin.as_ref() };
            who.values(t.session.as_deref(), &t.server_host, t.source.as_str(), &mut f);
            f.col(26, Name(t.granularity.as_str()));
        }
        Event::Login(l) => {
            f.col(0, Name("login"));
            f.col(1, Int(l.id as i64));
            f.col(2, Int(l.time));
            f.col(3, Absent);
            f.col(4, Name(l.protocol.as_str()));
            f.col(5, Absent);
            f.col(6, Absent);
            f.col(7, Name(l.outcome.as_str()));
            f.col(8, text(l.method.as_deref()));
            for i in 9..14 {
                f.col(i, Absent);
            }
            let who = Who { user: &l.user, ip: l.client_ip, host: l.client_host.as_deref(), origin: l.origin.as_ref() };
            who.values(l.session.as_deref(), &l.server_host, l.source.as_str(), &mut f);
            f.col(26, Absent);
        }
    }
    f.col(INPUT, opt(input, |f| Int(f as i64)));
    debug_assert_eq!(f.next, N);
}

/// [`values`]' check (in debug builds) that it gives every column once,
/// in order.
struct InOrder<'o, C> {
    out: &'o mut C,
    /// The column expected next.
    next: usize,
}

impl<'a, C: Columns<'a>> Columns<'a> for InOrder<'_, C> {
    #[inline(always)]
    fn col(&mut self, i: usize, v: Value<'a>) {
        debug_assert_eq!(i, self.next, "every column once, in order");
        self.next = i + 1;
        self.out.col(i, v);
    }

    #[inline(always)]
    fn origin(&mut self, o: Option<&'a Arc<Origin>>) {
        debug_assert_eq!(self.next, 17, "every column once, in order");
        self.next = 23;
        self.out.origin(o);
    }
}

/// The client side of an event, the same for both kinds.
struct Who<'a> {
    user: &'a str,
    ip: Option<IpAddr>,
    host: Option<&'a str>,
    origin: Option<&'a Arc<Origin>>,
}

impl<'a> Who<'a> {
    /// Gives `f` the columns both kinds have, `user` (14) to `source`
    /// (25).
    #[inline(always)]
    fn values(self, session: Option<&'a str>, server_host: &'a str, source: &'static str, f: &mut impl Columns<'a>) {
        let o = self.origin;
        f.col(14, Value::Text(self.user));
        f.col(15, opt(self.ip, |ip| Value::Ip(ip, o.and_then(|o| o.ip_prefix))));
        f.col(16, text(self.host));
        f.origin(o);
        f.col(23, text(session));
        f.col(24, Value::Text(server_host));
        f.col(25, Value::Name(source));
    }
}

/// The text of the last client address written, kept: the events of a
/// session, often next to each other, share their client.
#[derive(Default)]
pub(super) struct IpText {
    /// The address and prefix length `text` is of.
    of: Option<(IpAddr, Option<u8>)>,
    text: String,
}

impl IpText {
    /// `ip` as the stores write it.
    fn get(&mut self, ip: IpAddr, prefix: Option<u8>) -> &str {
        if self.of != Some((ip, prefix)) {
            self.text.clear();
            let _ = write_ip_text(&mut self.text, ip, prefix);
            self.of = Some((ip, prefix));
        }
        &self.text
    }
}

/// The text of the last integer written of a column, kept: the input's
/// fingerprint ([`INPUT`]) is the same for every event of a batch.
#[derive(Default)]
pub(super) struct IntText {
    /// The integer `text` is of.
    of: Option<i64>,
    text: Vec<u8>,
}

impl IntText {
    /// `n` in decimal.
    #[inline(always)]
    fn get(&mut self, n: i64) -> &[u8] {
        if self.of != Some(n) {
            self.text.clear();
            int(&mut self.text, n);
            self.of = Some(n);
        }
        &self.text
    }
}

/// What the writers keep from one event to the next (reused).
#[derive(Default)]
pub(super) struct Scratch {
    /// The text of the last client address written.
    ip: IpText,
    /// The text of the input's fingerprint.
    input: IntText,
    /// Origins as NDJSON columns.
    json: OriginTexts,
    /// Origins as CSV columns.
    csv: OriginTexts,
}

/// The columns of clients' origins ([`origin_values`]) as one writer
/// writes them, kept per origin: enrichment shares one [`Origin`] among
/// the events of a client address, and writing its six fields (two of
/// them floats) for each event again was a large part of a writer's time.
/// Kept by the origin's address, with the origin itself (an `Arc`), so
/// that no other origin gets that address while its text is here.
/// Bounded: starts over past [`OriginTexts::MAX`] origins.
#[derive(Default)]
struct OriginTexts {
    /// Per origin address: the origin and where its text is in `text`.
    at: HashMap<usize, (Arc<Origin>, usize, usize), FastHash>,
    /// The texts, one after the other.
    text: Vec<u8>,
    /// The origins last looked up, [`OriginTexts::RECENT`] slots by
    /// address, each with where its text is (an origin in `at`, or 0):
    /// most lookups end here, without hashing. Empty until the first.
    recent: Vec<(usize, usize, usize)>,
}

impl OriginTexts {
    /// Origins kept at most.
    const MAX: usize = 4096;

    /// Slots of `recent` (a power of two).
    const RECENT: usize = 1024;

    /// The text of `o`, written by `write` (appending to the buffer it is
    /// given) the first time.
    fn get(&mut self, o: &Arc<Origin>, write: impl FnOnce(&mut Vec<u8>)) -> &[u8] {
        let key = Arc::as_ptr(o) as usize;
        // Fibonacci hashing: the top bits of the address times 2^64/φ.
        let slot = ((key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - Self::RECENT.trailing_zeros())) as usize;
        if let Some(&(k, start, end)) = self.recent.get(slot) {
            if k == key {
                return &self.text[start..end];
            }
        }
        let (start, end) = match self.at.get(&key) {
            Some(&(_, start, end)) => (start, end),
            None => {
                if self.at.len() >= Self::MAX {
                    self.at.clear();
                    self.text.clear();
                    self.recent.clear();
                }
                let start = self.text.len();
                write(&mut self.text);
                self.at.insert(key, (o.clone(), start, self.text.len()));
                (start, self.text.len())
            }
        };
        if self.recent.is_empty() {
            self.recent.resize(Self::RECENT, (0, 0, 0));
        }
        self.recent[slot] = (key, start, end);
        &self.text[start..end]
    }
}

/// Asks the CPU for the text the writers will read of `e` (but the names
/// of fixed vocabularies and modules, always at hand, and the origin,
/// whose text is kept: [`OriginTexts`]), so that it arrives while earlier
/// events are written: the events were built on another thread, and
/// waiting for their text was the largest part of the writers' time.
pub(super) fn prefetch(e: &Event) {
    let (path, host, user, session, server_host) = match e {
        Event::Transfer(t) => {
            (t.path.as_deref(), t.client_host.as_deref(), &*t.user, t.session.as_deref(), &*t.server_host)
        }
        Event::Login(l) => (None, l.client_host.as_deref(), &*l.user, l.session.as_deref(), &*l.server_host),
    };
    // An absent text asks for an empty one's address, which is harmless
    // (a prefetch never faults) and saves a branch.
    for s in [path.unwrap_or(""), host.unwrap_or(""), user, session.unwrap_or(""), server_host] {
        prefetch_bytes(s.as_bytes());
    }
}

/// Asks for the first bytes of `b` into the cache.
#[cfg(target_arch = "x86_64")]
fn prefetch_bytes(b: &[u8]) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: a prefetch is a hint: it never faults, whatever the address,
    // and changes nothing the program can see. SSE is part of x86_64.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(b.as_ptr().cast()) }
}

/// Elsewhere: nothing (the hardware guesses).
#[cfg(not(target_arch = "x86_64"))]
fn prefetch_bytes(_: &[u8]) {}

/// Where the writers append: a `Vec<u8>` (each write checks its
/// capacity: the texts of origins, tests) or a [`Room`] (one event, whose
/// room is reserved once).
trait Put {
    /// Appends `b`.
    fn put(&mut self, b: &[u8]);

    /// Appends `c`.
    fn byte(&mut self, c: u8);

    /// Appends the first `len` bytes of `t` (a [`Room`] copies all of
    /// them, a copy of known size, and keeps `len`).
    fn put_first(&mut self, t: &[u8; 8], len: usize);

    /// Makes room for `n` more bytes than the event was given (a
    /// [`Room`]; a `Vec` grows as it is written).
    fn reserve(&mut self, n: usize);
}

impl Put for Vec<u8> {
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }

    fn byte(&mut self, c: u8) {
        self.push(c);
    }

    fn put_first(&mut self, t: &[u8; 8], len: usize) {
        self.extend_from_slice(&t[..len]);
    }

    fn reserve(&mut self, _: usize) {}
}

/// One event appended to a `Vec<u8>` without a capacity check per write:
/// [`Room::new`] reserves the most the event can take ([`bound`]) once,
/// and every write after it stays within that (checked in debug builds,
/// which the tests run: every writer, every class of character, the
/// longest floats and addresses). The capacity checks of the 60-odd writes
/// of an event were about a fifth of the writer's instructions.
struct Room<'b> {
    buf: &'b mut Vec<u8>,
    /// Where `buf`'s bytes are (kept here: read from `buf` at every write,
    /// it was a tenth of the writer's instructions).
    at: *mut u8,
    /// The length of `buf` so far (set in it when the room is dropped).
    len: usize,
    /// Where the reserved room ends.
    end: usize,
}

impl<'b> Room<'b> {
    /// Room for `n` bytes at the end of `buf`.
    fn new(buf: &'b mut Vec<u8>, n: usize) -> Self {
        buf.reserve(n);
        let len = buf.len();
        Room { at: buf.as_mut_ptr(), buf, len, end: len + n }
    }

    /// Copies `b` to the end and keeps `keep` bytes of it.
    #[inline(always)]
    fn copy(&mut self, b: &[u8], keep: usize) {
        debug_assert!(keep <= b.len() && self.len + b.len() <= self.end, "a write beyond the reserved room");
        // SAFETY: `new` and `reserve` made `buf`'s capacity, at `at` (the
        // room borrows `buf`: nothing else moves it), reach `end`, and the
        // writes of an event stay below it ([`bound`]): `b` fits at `len`,
        // past the bytes any reference reads.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.at.add(self.len), b.len()) };
        self.len += keep;
    }
}

impl Put for Room<'_> {
    /// Short text (most of it) in two overlapping copies of known size
    /// instead of a call to `memcpy`.
    #[inline(always)]
    fn put(&mut self, b: &[u8]) {
        let n = b.len();
        let first = |k: usize| &b[..k];
        let last = |k: usize| &b[n - k..];
        match n {
            0..4 => b.iter().for_each(|&c| self.byte(c)),
            4..8 => {
                self.copy(first(4), n - 4);
                self.copy(last(4), 4);
            }
            8..=16 => {
                self.copy(first(8), n - 8);
                self.copy(last(8), 8);
            }
            _ => self.copy(b, n),
        }
    }

    #[inline(always)]
    fn byte(&mut self, c: u8) {
        self.copy(&[c], 1);
    }

    #[inline(always)]
    fn put_first(&mut self, t: &[u8; 8], len: usize) {
        self.copy(t, len);
    }

    fn reserve(&mut self, n: usize) {
        // SAFETY: as in `drop`.
        unsafe { self.buf.set_len(self.len) };
        self.end += n;
        self.buf.reserve(self.end - self.len);
        self.at = self.buf.as_mut_ptr();
    }
}

impl Drop for Room<'_> {
    fn drop(&mut self) {
        // SAFETY: the bytes up to `len` are within the capacity (`copy`)
        // and were all written.
        unsafe { self.buf.set_len(self.len) }
    }
}

/// The most bytes any of a [`Put`]'s writers appends for a client address
/// as text: an IPv6 address (39 characters) and `/127`.
const IP_MAX: usize = 43;

/// The most bytes any column takes in either format but for its text
/// ([`bound`]): its key (at least the CSV comma) and 24 bytes (an integer
/// takes at most 21, its sign and 20 digits: the 8 bytes copied for a
/// leading group of fewer digits reach no further than 9; `null`, quotes,
/// a CSV field's quotes and `'` fit).
const COLUMN_MAX: usize = {
    let (mut n, mut i) = (0, 0);
    while i < N {
        n += KEYS[i].len() + 24;
        i += 1;
    }
    n
};

/// The most bytes an event `e` of input `input` takes in either format,
/// its line end and NDJSON braces included, but for its origin's text
/// (copied whole, with room made for it then: [`Put::reserve`]): every
/// column's [`COLUMN_MAX`] and the most its text's writer appends beyond
/// it — a JSON string at most 6 bytes per byte (`\u00XX`), a CSV field 3
/// (U+FFFD).
#[inline(always)]
fn bound(e: &Event, input: Option<u64>) -> usize {
    struct Bound(usize);
    impl Columns<'_> for Bound {
        #[inline(always)]
        fn col(&mut self, _: usize, v: Value<'_>) {
            self.0 += match v {
                Value::Absent | Value::Null | Value::Int(_) => 0,
                Value::Float(_) => FLOAT_MAX,
                Value::Name(s) => s.len(),
                Value::Text(s) => 6 * s.len(),
                Value::Ip(..) => 6 * IP_MAX,
            };
        }

        /// The text of an origin is copied whole, with room made for it
        /// then; without one, its columns are `null`s ([`COLUMN_MAX`]).
        #[inline(always)]
        fn origin(&mut self, _: Option<&Arc<Origin>>) {}
    }
    let mut b = Bound(COLUMN_MAX + 3);
    values(e, input, &mut b);
    b.0
}

/// Appends `e`, read from the input `input`, as one JSON object and a
/// newline.
pub(super) fn ndjson(buf: &mut Vec<u8>, scratch: &mut Scratch, e: &Event, input: Option<u64>) {
    let buf = &mut Room::new(buf, bound(e, input));
    buf.byte(b'{');
    values(
        e,
        input,
        &mut Ndjson { buf, scratch: &mut scratch.ip, origins: &mut scratch.json, input: &mut scratch.input },
    );
    buf.put(b"}\n");
}

/// The columns of one event as NDJSON (`CSV` false: `"name":value`,
/// comma-separated, absent ones left out) or as a CSV row (every one,
/// comma-separated).
struct Out<'w, B, const CSV: bool> {
    buf: &'w mut B,
    /// Scratch text of an address.
    scratch: &'w mut IpText,
    /// The origins written.
    origins: &'w mut OriginTexts,
    /// The text of the input's fingerprint.
    input: &'w mut IntText,
}

/// [`ndjson`]'s columns.
type Ndjson<'w, B> = Out<'w, B, false>;

/// [`csv`]'s columns.
type Csv<'w, B> = Out<'w, B, true>;

impl<'a, B: Put, const CSV: bool> Columns<'a> for Out<'_, B, CSV> {
    #[inline(always)]
    fn col(&mut self, i: usize, v: Value<'a>) {
        if CSV && i > 0 {
            self.buf.byte(b',');
        }
        if !CSV && !matches!(v, Value::Absent) {
            // `kind`, the first column, is always there: no comma before it.
            let key = KEYS[i].as_bytes();
            self.buf.put(if i == 0 { &key[1..] } else { key });
        }
        match v {
            // The input's fingerprint, the same for every event of a batch:
            // its text is kept (an integer in both formats).
            Value::Int(n) if i == INPUT => self.buf.put(self.input.get(n)),
            v if CSV => csv_value(self.buf, self.scratch, v),
            Value::Absent => {}
            v => json_value(self.buf, self.scratch, v),
        }
    }

    #[inline(always)]
    fn origin(&mut self, o: Option<&'a Arc<Origin>>) {
        let Some(o) = o else {
            return origin_values(None, self);
        };
        let scratch = &mut *self.scratch;
        // Its columns written as any others (the writer of the text itself
        // keeps no origins: it is given none).
        let text = self.origins.get(o, |buf| {
            let (origins, input) = (&mut OriginTexts::default(), &mut IntText::default());
            origin_values(Some(o), &mut Out::<_, CSV> { buf, scratch, origins, input })
        });
        self.buf.reserve(text.len());
        self.buf.put(text);
    }
}

/// Appends `v` as a JSON value (`null` for a float that is not finite).
#[inline(always)]
fn json_value(buf: &mut impl Put, scratch: &mut IpText, v: Value<'_>) {
    match v {
        Value::Absent | Value::Null => buf.put(b"null"),
        Value::Int(n) => int(buf, n),
        Value::Float(x) if x.is_finite() => float(buf, x),
        Value::Float(_) => buf.put(b"null"),
        Value::Name(s) => {
            debug_assert!(!s.bytes().any(|c| JSON_STOP[usize::from(c)]), "{s}");
            buf.byte(b'"');
            buf.put(s.as_bytes());
            buf.byte(b'"');
        }
        Value::Text(s) => json_str(buf, s),
        Value::Ip(ip, prefix) => json_str(buf, scratch.get(ip, prefix)),
    }
}

/// Appends `n` in decimal, as `{}` would.
#[inline(always)]
fn int(buf: &mut impl Put, n: i64) {
    if n < 0 {
        buf.byte(b'-');
    }
    uint(buf, n.unsigned_abs());
}

/// Appends `u` in decimal, eight digits at a time ([`eight_digits`])
/// instead of a division per pair of digits.
#[inline(always)]
fn uint(buf: &mut impl Put, u: u64) {
    const E8: u64 = 100_000_000;
    let len = digit_count(u);
    // The leading group of digits comes out of `eight_digits` with leading
    // zeros first (the low bytes of its word): shifted out.
    let mut lead = |x: u64, group_len: usize| {
        buf.put_first(&(eight_digits(x as u32) >> (8 * (8 - group_len))).to_le_bytes(), group_len);
    };
    if len <= 8 {
        lead(u, len);
    } else if len <= 16 {
        lead(u / E8, len - 8);
        buf.put(&eight_digits((u % E8) as u32).to_le_bytes());
    } else {
        let high = u / E8;
        lead(high / E8, len - 16);
        buf.put(&eight_digits((high % E8) as u32).to_le_bytes());
        buf.put(&eight_digits((u % E8) as u32).to_le_bytes());
    }
}

/// 10^k for k in 0..20 (every power of ten a `u64` holds).
const POW10_U64: [u64; 20] = {
    let mut t = [1; 20];
    let mut k = 1;
    while k < 20 {
        t[k] = t[k - 1] * 10;
        k += 1;
    }
    t
};

/// How many decimal digits `u` has (1 for 0): `t`, ⌊log10 2⌋ times its
/// bit length (1233/4096 ≈ log10 2), is that count or one less.
#[inline(always)]
fn digit_count(u: u64) -> usize {
    let t = (((64 - (u | 1).leading_zeros()) * 1233) >> 12) as usize;
    t + usize::from((u | 1) >= POW10_U64[t])
}

/// The eight decimal digits of `x` (below 10^8, leading zeros included)
/// as ASCII in the bytes of a little-endian word, first digit lowest:
/// split into halves of four digits, those into pairs, those into digits,
/// each step in all lanes of the word at once (multiplications by
/// reciprocals, exact for the lanes' ranges: `·10486 >> 20` is `/100`
/// below 43,699, `·103 >> 10` is `/10` below 179).
#[inline(always)]
fn eight_digits(x: u32) -> u64 {
    let x = u64::from(x);
    let v = (x / 10_000) | ((x % 10_000) << 32);
    let hundreds = ((v * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let v = hundreds | ((v - hundreds * 100) << 16);
    let tens = ((v * 103) >> 10) & 0x000f_000f_000f_000f;
    let v = tens | ((v - tens * 10) << 8);
    v + u64::from_ne_bytes([b'0'; 8])
}

/// Exact powers of ten as `f64` (every one up to 1e22 is).
const POW10: [f64; 18] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17];

/// Appends the finite `x` as `{}` would: the shortest decimal that reads
/// back as `x`, never in exponent form.
///
/// Latitudes and longitudes (the only floats written) have a few decimals,
/// and for such a value the text is found without `core::fmt`: the first
/// `d` for which `m = round(|x|·10^d)` gives `m / 10^d == |x|` (IEEE
/// division rounds `m·10^-d` exactly as reading the text back would)
/// yields the fewest digits that read back as `x`. That is the text `{}`
/// prints as long as `|x|·10^d < 2^50`: for every `d' ≤ d` the computed
/// `round(|x|·10^d')` is then within 1/4 of the one decimal with `d'`
/// places in `x`'s rounding interval (narrower than 10^-d'), so no shorter
/// decimal was missed and there is no other of the same length to choose
/// from. Anything else (zero, whose sign `{}` prints, tiny or huge
/// magnitudes, many digits) goes through `{}` itself.
fn float(buf: &mut impl Put, x: f64) {
    let a = x.abs();
    if a > 0.0 {
        for (d, p10) in POW10.iter().enumerate() {
            let p = a * p10;
            if p >= (1u64 << 50) as f64 {
                break;
            }
            // round(p), exact: p + 0.5 < 2^51 is a multiple of p's ulp.
            let m = (p + 0.5) as u64;
            if m as f64 / p10 == a {
                if x < 0.0 {
                    buf.byte(b'-');
                }
                return decimal(buf, m, d);
            }
        }
    }
    let mut text = [0; FLOAT_MAX];
    let mut w = std::io::Cursor::new(&mut text[..]);
    // Never short: FLOAT_MAX holds the longest text of a finite f64.
    let _ = write!(w, "{x}");
    let len = w.position() as usize;
    buf.put(&text[..len]);
}

/// The longest text of a finite `f64` as `{}` writes it: the sign, `0.`
/// and 324 decimals (the last digit of the shortest text of a subnormal
/// is at most at 10^-324).
const FLOAT_MAX: usize = 327;

/// Appends `m·10^-d` with exactly `d` decimals (none and no point when
/// `d` is 0; `d` at most 17).
fn decimal(buf: &mut impl Put, m: u64, d: usize) {
    let p = POW10_U64[d];
    uint(buf, m / p);
    if d > 0 {
        buf.byte(b'.');
        let frac = m % p;
        for _ in digit_count(frac)..d {
            buf.byte(b'0');
        }
        uint(buf, frac);
    }
}

/// Bytes [`json_str`] does not copy as they are: quote, backslash, the C0
/// controls, DEL, and 0xC2 (the first byte of a C1 control).
const JSON_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = c < 0x20 || c == b'"' as usize || c == b'\\' as usize || c == 0x7f || c == 0xc2;
        c += 1;
    }
    t
};

/// Each byte of a word read 8 bytes at a time ([`special_swar`]).
#[cfg(any(test, not(target_arch = "x86_64")))]
const ONES: u64 = u64::from_ne_bytes([1; 8]);

/// The high bit of each byte of a word.
#[cfg(any(test, not(target_arch = "x86_64")))]
const HIGH: u64 = ONES << 7;

/// Nonzero when a byte of `w` is below `n` (at most 0x80): the borrow of
/// the first such byte's subtraction sets its high bit.
#[cfg(any(test, not(target_arch = "x86_64")))]
const fn below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * n as u64) & !w & HIGH
}

/// Nonzero when a byte of `w` is `c`.
#[cfg(any(test, not(target_arch = "x86_64")))]
const fn byte(w: u64, c: u8) -> u64 {
    below(w ^ (ONES * c as u64), 1)
}

/// The bytes the writers look for beyond the C0 controls: JSON's
/// ([`json_str`]) and CSV's ([`csv_text`]), DEL and 0xC2 among them.
type Specials = [u8; 4];

/// Whether a byte of `a` or `b` is a C0 control or one of `specials`: the
/// 16 bytes at once with SSE2 (part of x86_64).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn special(a: u64, b: u64, specials: Specials) -> bool {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86_64 (every such CPU has it, the target
    // enables it); these intrinsics read and write no memory.
    unsafe {
        let v = _mm_set_epi64x(b as i64, a as i64);
        let c0 = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let hit = specials.iter().fold(c0, |m, &c| _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8))));
        _mm_movemask_epi8(hit) != 0
    }
}

/// Elsewhere: a word at a time ([`special_swar`]).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn special(a: u64, b: u64, specials: Specials) -> bool {
    special_swar(a, specials) | special_swar(b, specials) != 0
}

/// Nonzero when a byte of `w` is a C0 control or one of `s`.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn special_swar(w: u64, s: Specials) -> u64 {
    below(w, 0x20) | byte(w, s[0]) | byte(w, s[1]) | byte(w, s[2]) | byte(w, s[3])
}

/// The first index at or after `from` whose byte `stop` picks, `stop`
/// being true for the C0 controls and `specials` and maybe others. Runs of
/// 16 bytes without a C0 control or one of `specials` ([`special`]) are
/// skipped whole; log text is rarely anything but plain.
#[inline(always)]
fn find(b: &[u8], mut from: usize, specials: Specials, stop: impl Fn(u8) -> bool) -> Option<usize> {
    let word = |at: usize| u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let len = b.len();
    while from + 16 <= len {
        if special(word(from), word(from + 8), specials) {
            return b[from..].iter().position(|&c| stop(c)).map(|n| from + n);
        }
        from += 16;
    }
    // Fewer than 16 bytes left: in one go, with some of the bytes before
    // `from` or some twice (an earlier byte looked for only costs the
    // search of the bytes left one at a time).
    let (a, z) = if from == len {
        return None;
    } else if len >= 16 {
        (word(len - 16), word(len - 8))
    } else if len - from >= 8 {
        (word(from), word(len - 8))
    } else if len >= 8 {
        (word(len - 8), word(len - 8))
    } else {
        let w = short_word(&b[from..]);
        (w, w)
    };
    if !special(a, z, specials) {
        return None;
    }
    b[from..].iter().position(|&c| stop(c)).map(|n| from + n)
}

/// The bytes of `r` (1 to 7 of them) in one word, some of them twice and
/// no other byte: two overlapping halves of four bytes, or the first,
/// middle and last byte.
#[inline(always)]
fn short_word(r: &[u8]) -> u64 {
    let n = r.len();
    if n >= 4 {
        let half = |at: usize| u64::from(u32::from_ne_bytes(r[at..at + 4].try_into().expect("4 bytes")));
        half(0) | half(n - 4) << 32
    } else {
        let (a, m, z) = (r[0], r[n / 2], r[n - 1]);
        u64::from_ne_bytes([a, m, z, a, a, a, a, a])
    }
}

/// The first byte at or after `from` that [`json_str`] does not copy.
#[inline(always)]
fn json_stop(b: &[u8], from: usize) -> Option<usize> {
    find(b, from, [b'"', b'\\', 0x7f, 0xc2], |c| JSON_STOP[usize::from(c)])
}

/// Appends `s` as a JSON string. Beyond what JSON requires, DEL and the
/// C1 controls are escaped too: the output may reach a terminal. Runs of
/// bytes that need no escape are copied whole.
#[inline(always)]
fn json_str(buf: &mut impl Put, s: &str) {
    let b = s.as_bytes();
    buf.byte(b'"');
    match json_stop(b, 0) {
        None => buf.put(b),
        Some(at) => json_escape(buf, b, at),
    }
    buf.byte(b'"');
}

/// Appends `b`, whose first byte to escape is at `at`, escaped
/// ([`json_str`]).
#[inline(never)]
fn json_escape(buf: &mut impl Put, b: &[u8], at: usize) {
    let mut from = 0;
    let mut i = at;
    while let Some(at) = json_stop(b, i) {
        i = at;
        let mut u = *b"\\u0000";
        let (esc, len): (&[u8], usize) = match b[i] {
            b'"' => (b"\\\"", 1),
            b'\\' => (b"\\\\", 1),
            b'\n' => (b"\\n", 1),
            b'\r' => (b"\\r", 1),
            b'\t' => (b"\\t", 1),
            0xc2 => match b.get(i + 1) {
                Some(&c1 @ 0x80..=0x9f) => (hex_escape(&mut u, c1), 2),
                // Another character starting with 0xC2: copied.
                _ => {
                    i += 1;
                    continue;
                }
            },
            c => (hex_escape(&mut u, c), 1),
        };
        buf.put(&b[from..i]);
        buf.put(esc);
        i += len;
        from = i;
    }
    buf.put(&b[from..]);
}

/// `u` (`\u00..`) completed with the lowercase hex of `c`.
fn hex_escape(u: &mut [u8; 6], c: u8) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    u[4] = HEX[usize::from(c >> 4)];
    u[5] = HEX[usize::from(c & 15)];
    u
}

/// Appends the CSV header line.
pub(super) fn csv_header(buf: &mut Vec<u8>) {
    buf.extend_from_slice(COLUMNS.join(",").as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// Appends `e`, read from the input `input`, as one CSV row (every
/// column; empty when absent).
pub(super) fn csv(buf: &mut Vec<u8>, scratch: &mut Scratch, e: &Event, input: Option<u64>) {
    let buf = &mut Room::new(buf, bound(e, input));
    values(e, input, &mut Csv { buf, scratch: &mut scratch.ip, origins: &mut scratch.csv, input: &mut scratch.input });
    buf.put(b"\r\n");
}

/// Appends `v` as a CSV field (empty for a float that is not finite).
#[inline(always)]
fn csv_value(buf: &mut impl Put, scratch: &mut IpText, v: Value<'_>) {
    match v {
        Value::Absent | Value::Null => {}
        Value::Int(n) => int(buf, n),
        Value::Float(x) if x.is_finite() => float(buf, x),
        Value::Float(_) => {}
        Value::Name(s) => buf.put(s.as_bytes()),
        Value::Text(s) => csv_text(buf, s),
        Value::Ip(ip, prefix) => buf.put(scratch.get(ip, prefix).as_bytes()),
    }
}

/// [`CSV_CLASS`]: the field must be quoted (`,` `"` LF CR).
const QUOTE: u8 = 1;
/// [`CSV_CLASS`]: the byte may not be copied as it is (`"`, a C0 control
/// but tab/LF/CR, DEL, 0xC2 the first byte of a C1 control).
const CHANGE: u8 = 2;

/// What each byte asks of [`csv_text`].
const CSV_CLASS: [u8; 256] = {
    let mut t = [0; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if matches!(b, b',' | b'"' | b'\n' | b'\r') {
            t[c] |= QUOTE;
        }
        if b == b'"' || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f || b == 0xc2 {
            t[c] |= CHANGE;
        }
        c += 1;
    }
    t
};

/// Appends log-derived text as a CSV field: quoted when it holds a comma,
/// quote or line break (quotes doubled); a leading `'` when it starts
/// like a spreadsheet formula (`=`, `+`, `-`, `@`, tab, CR); other control
/// characters (C0 but tab/LF/CR, DEL, C1) as U+FFFD, so that a CSV shown
/// on a terminal cannot drive it. Text with nothing to change (nearly
/// all) is copied whole.
fn csv_text(buf: &mut impl Put, s: &str) {
    let b = s.as_bytes();
    let class = match find(b, 0, [b',', b'"', 0x7f, 0xc2], |c| CSV_CLASS[usize::from(c)] != 0) {
        None => 0,
        Some(at) => b[at..].iter().fold(0, |k, &c| k | CSV_CLASS[usize::from(c)]),
    };
    let quote = class & QUOTE != 0;
    if quote {
        buf.byte(b'"');
    }
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        buf.byte(b'\'');
    }
    if class & CHANGE == 0 {
        buf.put(b);
    } else {
        let mut from = 0;
        let mut i = 0;
        while let Some(n) = b[i..].iter().position(|&c| CSV_CLASS[usize::from(c)] & CHANGE != 0) {
            i += n;
            let (with, len): (&[u8], usize) = match b[i] {
                b'"' => (b"\"\"", 1),
                0xc2 => match b.get(i + 1) {
                    Some(0x80..=0x9f) => ("\u{fffd}".as_bytes(), 2),
                    // Another character starting with 0xC2: copied.
                    _ => {
                        i += 1;
                        continue;
                    }
                },
                _ => ("\u{fffd}".as_bytes(), 1),
            };
            buf.put(&b[from..i]);
            buf.put(with);
            i += len;
            from = i;
        }
        buf.put(&b[from..]);
    }
    if quote {
        buf.byte(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_field(s: &str) -> String {
        let mut b = Vec::new();
        csv_text(&mut b, s);
        String::from_utf8(b).unwrap()
    }

    fn json(s: &str) -> String {
        let mut b = Vec::new();
        json_str(&mut b, s);
        String::from_utf8(b).unwrap()
    }

    /// `json_str` as its doc states it, a character at a time.
    fn json_spec(s: &str) -> String {
        let mut o = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => o.push_str("\\\""),
                '\\' => o.push_str("\\\\"),
                '\n' => o.push_str("\\n"),
                '\r' => o.push_str("\\r"),
                '\t' => o.push_str("\\t"),
                c if c.is_control() => o.push_str(&format!("\\u{:04x}", c as u32)),
                c => o.push(c),
            }
        }
        o.push('"');
        o
    }

    /// `csv_text` as its doc states it, a character at a time.
    fn csv_spec(s: &str) -> String {
        let quote = s.contains([',', '"', '\n', '\r']);
        let mut o = String::new();
        if quote {
            o.push('"');
        }
        if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            o.push('\'');
        }
        for c in s.chars() {
            match c {
                '"' => o.push_str("\"\""),
                '\t' | '\n' | '\r' => o.push(c),
                c if c.is_control() => o.push('\u{fffd}'),
                c => o.push(c),
            }
        }
        if quote {
            o.push('"');
        }
        o
    }

    /// Characters around every byte class the writers tell apart: C0,
    /// ASCII, DEL, the C1 controls and the other characters starting with
    /// 0xC2, two-, three- and four-byte UTF-8.
    fn chars() -> impl Iterator<Item = char> {
        (0..0x250u32).chain([0x7ff, 0x800, 0xfffd, 0x2028, 0x1f600, 0x10ffff]).filter_map(char::from_u32)
    }

    #[test]
    fn csv_fields_are_quoted_and_neutralised() {
        assert_eq!(csv_field("plain/path é.txt"), "plain/path é.txt");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-rf"), "'-rf");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("a=b"), "a=b");
        assert_eq!(csv_field("esc\u{1b}[31m\u{9b}"), "esc\u{fffd}[31m\u{fffd}");
    }

    #[test]
    fn csv_fields_edge_cases() {
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("\""), "\"\"\"\"");
        assert_eq!(csv_field("\r"), "\"'\r\"");
        assert_eq!(csv_field("\u{0}\u{1f}\u{7f}"), "\u{fffd}\u{fffd}\u{fffd}");
        // 0xC2 starts C1 controls (replaced) and other characters (kept).
        assert_eq!(csv_field("\u{80}\u{a0}\u{9f}\u{bf}"), "\u{fffd}\u{a0}\u{fffd}\u{bf}");
        assert_eq!(csv_field("x\u{85}"), "x\u{fffd}");
        assert_eq!(csv_field("日本語/ファイル"), "日本語/ファイル");
    }

    #[test]
    fn csv_fields_match_the_rule_for_every_character_class() {
        for c in chars() {
            for s in [c.to_string(), format!("a{c}b"), format!("{c}{c},"), format!("\"{c}\u{9b}")] {
                assert_eq!(csv_field(&s), csv_spec(&s), "{s:?}");
            }
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json("plain é"), "\"plain é\"");
        assert_eq!(json("q\"b\\"), "\"q\\\"b\\\\\"");
        assert_eq!(json("\n\r\t"), "\"\\n\\r\\t\"");
        assert_eq!(json("\u{1b}[31m\u{7f}\u{9b}x"), "\"\\u001b[31m\\u007f\\u009bx\"");
        for s in ["plain é", "q\"b\\", "\u{1b}\u{9b}\u{a0}\u{2028}", "\u{0}"] {
            assert_eq!(serde_json::from_str::<String>(&json(s)).unwrap(), s);
        }
    }

    #[test]
    fn json_strings_edge_cases() {
        assert_eq!(json(""), "\"\"");
        assert_eq!(json("\""), "\"\\\"\"");
        assert_eq!(json("\\\\"), "\"\\\\\\\\\"");
        assert_eq!(json("\u{0}\u{1}\u{1f}"), "\"\\u0000\\u0001\\u001f\"");
        // 0xC2 starts C1 controls (escaped) and other characters (kept),
        // also as the last byte but one.
        assert_eq!(json("\u{80}\u{a0}\u{9f}\u{bf}"), "\"\\u0080\u{a0}\\u009f\u{bf}\"");
        assert_eq!(json("x\u{a0}"), "\"x\u{a0}\"");
        assert_eq!(json("x\u{85}"), "\"x\\u0085\"");
        assert_eq!(json("日本語/ファイル 😀"), "\"日本語/ファイル 😀\"");
        // A str is valid UTF-8 by its type: no invalid sequence can reach
        // the writer (decoders replace them with U+FFFD).
        assert_eq!(json(&String::from_utf8_lossy(b"a\xffb")), "\"a\u{fffd}b\"");
    }

    #[test]
    fn json_strings_match_the_rule_for_every_character_class() {
        for c in chars() {
            for s in [c.to_string(), format!("a{c}b"), format!("{c}{c}\\"), format!("\"{c}\u{9b}")] {
                assert_eq!(json(&s), json_spec(&s), "{s:?}");
                assert_eq!(serde_json::from_str::<String>(&json(&s)).unwrap(), s);
            }
        }
    }

    #[test]
    fn special_bytes_are_found_at_every_offset_of_long_text() {
        // Text read 8 bytes at a time: a special character at each offset,
        // on and across word boundaries, alone, last, or after another.
        let specials = ['"', '\\', ',', '\n', '\r', '\t', '\u{0}', '\u{1f}', '\u{7f}', '\u{85}', '\u{a0}', 'é', '€'];
        for len in 0..40 {
            for at in 0..=len {
                for c in specials {
                    let mut s = "abcdefgh/ijklmnop-qrstuvwx.yzABCDEFGHIJKLMN".chars().take(len).collect::<String>();
                    s.insert(at, c);
                    let twice = format!("{s}{c}");
                    for s in [s, twice] {
                        assert_eq!(json(&s), json_spec(&s), "{s:?}");
                        assert_eq!(csv_field(&s), csv_spec(&s), "{s:?}");
                    }
                }
            }
            let plain = "x".repeat(len);
            assert_eq!(json(&plain), format!("\"{plain}\""));
            assert_eq!(csv_field(&plain), plain);
        }
    }

    #[test]
    fn special_bytes_are_found_in_words_as_one_at_a_time() {
        let specials = [[b'"', b'\\', 0x7f, 0xc2], [b',', b'"', 0x7f, 0xc2]];
        let mut next = rng(4);
        for _ in 0..20_000 {
            // Plain ASCII words with a byte or two of any value.
            let mut w = [0u8; 16];
            w.iter_mut().for_each(|c| *c = b'a' + (next() % 26) as u8);
            for _ in 0..next() % 3 {
                w[(next() % 16) as usize] = next() as u8;
            }
            let a = u64::from_ne_bytes(w[..8].try_into().unwrap());
            let z = u64::from_ne_bytes(w[8..].try_into().unwrap());
            for s in specials {
                let want = w.iter().any(|&c| c < 0x20 || s.contains(&c));
                assert_eq!(special(a, z, s), want, "{w:?}");
                assert_eq!(special_swar(a, s) | special_swar(z, s) != 0, want, "{w:?}");
            }
        }
    }

    fn int_text(n: i64) -> String {
        let mut b = Vec::new();
        int(&mut b, n);
        String::from_utf8(b).unwrap()
    }

    fn float_text(x: f64) -> String {
        let mut b = Vec::new();
        float(&mut b, x);
        String::from_utf8(b).unwrap()
    }

    /// xorshift64*: reproducible test values without a dependency.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed;
        move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            s.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for n in [0, 1, -1, 9, 10, -10, 1_700_000_000_000_000, i64::MIN, i64::MAX, i64::MIN + 1] {
            assert_eq!(int_text(n), n.to_string());
        }
        // Every length of both signs, and the ends of each length.
        for k in 0..19 {
            let p = 10i64.pow(k);
            for n in [p - 1, p, p + 1, 2 * p - 1, 5 * p, 9 * p] {
                assert_eq!(int_text(n), n.to_string());
                assert_eq!(int_text(-n), (-n).to_string());
            }
        }
        let mut next = rng(1);
        for _ in 0..10_000 {
            let n = next() as i64 >> (next() % 64);
            assert_eq!(int_text(n), n.to_string());
        }
    }

    #[test]
    fn unsigned_integers_and_their_digit_counts_are_exact() {
        let text = |u: u64| {
            let mut b = Vec::new();
            uint(&mut b, u);
            String::from_utf8(b).unwrap()
        };
        let mut edges = vec![0, u64::MAX, u64::MAX - 1, 1 << 63];
        for k in 0..64 {
            edges.extend([(1u64 << k) - 1, 1 << k, (1 << k) + 1]);
        }
        for p in POW10_U64 {
            edges.extend([p - 1, p, p + 1, p.saturating_mul(9), p.saturating_mul(10).saturating_sub(1)]);
        }
        let mut next = rng(3);
        edges.extend((0..10_000).map(|_| next() >> (next() % 64)));
        for u in edges {
            assert_eq!(text(u), u.to_string());
            assert_eq!(digit_count(u), u.to_string().len(), "{u}");
        }
    }

    #[test]
    fn eight_digits_are_the_padded_decimal() {
        // Every 997th value of the range (and both ends); the whole range
        // was checked once against `{:08}` in a release build.
        for x in (0..100_000_000).step_by(997).chain([99_999_999, 10_000, 9_999, 100, 99]) {
            assert_eq!(eight_digits(x).to_le_bytes(), format!("{x:08}").as_bytes(), "{x}");
        }
    }

    #[test]
    fn floats_are_written_as_display_writes_them() {
        let fixed = [
            0.1,
            0.2,
            0.1 + 0.2,
            1.0,
            -1.0,
            0.0,
            -0.0,
            1e21,
            1e22,
            1e15,
            1e16,
            123456789012345.6,
            (1u64 << 50) as f64,
            (1u64 << 50) as f64 - 0.5,
            (1u64 << 53) as f64,
            1e-7,
            -1e-7,
            0.000123,
            5e-324,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            37.751,
            -97.822,
            52.3759,
            4.8975,
            -33.8715,
            151.2006,
            -122.4194,
            180.0,
            -90.0,
            0.5,
            9.999999999999998,
            99.99999999999999,
            0.30000000000000004,
            1.0000000000000002,
            0.9999999999999999,
        ];
        for x in fixed {
            assert_eq!(float_text(x), x.to_string(), "{x:e}");
        }
        let mut next = rng(2);
        for _ in 0..200_000 {
            // Any bit pattern; decimals of up to 8 places at GeoIP's
            // magnitudes; and their neighbours one unit in the last place
            // away.
            let bits = f64::from_bits(next());
            let places = next() % 9;
            let dec = (next() % 36_000_000_000) as f64 / 10f64.powi(places as i32) - 180.0;
            for x in [
                bits,
                dec,
                f64::from_bits(dec.to_bits().wrapping_add(1)),
                f64::from_bits(dec.to_bits().wrapping_sub(1)),
            ] {
                if x.is_finite() {
                    assert_eq!(float_text(x), x.to_string(), "{x:e}");
                }
            }
        }
    }

    #[test]
    fn addresses_are_written_as_the_stores_write_them() {
        let mut ip = IpText::default();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        for (addr, prefix) in
            [(v4, None), (v4, None), (v4, Some(24)), (v6, Some(48)), (v6, None), (mapped, None), (v4, None)]
        {
            let mut want = String::new();
            write_ip_text(&mut want, addr, prefix).unwrap();
            assert_eq!(ip.get(addr, prefix), want);
        }
        let mut j = Vec::new();
        json_value(&mut j, &mut ip, Value::Ip(v4, Some(24)));
        assert_eq!(j, b"\"192.0.2.7/24\"");
    }

    /// [`Ndjson`] and [`Csv`] with every origin column written anew.
    struct Uncached<C>(C);

    impl<'a, C: Columns<'a>> Columns<'a> for Uncached<C> {
        fn col(&mut self, i: usize, v: Value<'a>) {
            self.0.col(i, v);
        }
    }

    #[test]
    fn origins_are_written_as_their_columns_are() {
        let origin = |n: u32| {
            Arc::new(Origin {
                country: Some("FR".into()),
                city: n.is_multiple_of(2).then(|| format!("Saint-Martin-d'H\u{e8}res \"{n}\"").into()),
                latitude: Some(45.1667 + f64::from(n) / 1e4),
                longitude: (!n.is_multiple_of(3)).then_some(-5.7167),
                geohash: Some("u0hqd".into()),
                client_hash: Some(format!("hash{n}").into()),
                ip_prefix: None,
            })
        };
        let event = |o: Option<&Arc<Origin>>| {
            let mut e = crate::enrich::tests::transfer(Some("192.0.2.7"), None);
            let Event::Transfer(t) = &mut e else { unreachable!() };
            t.origin = o.cloned();
            e
        };
        // Origins shared by several events, one without any, an empty one,
        // and more distinct ones than are kept (the texts start over).
        let mut origins: Vec<Option<Arc<Origin>>> = vec![None, Some(Arc::new(Origin::default()))];
        origins.extend((0..OriginTexts::MAX as u32 + 10).map(|n| Some(origin(n))));
        let order = (0..origins.len()).chain([0, 1, 2, 3, 2, 3, 4]).chain((0..origins.len()).rev());
        let mut scratch = Scratch::default();
        let mut ip = IpText::default();
        for k in order {
            let e = event(origins[k].as_ref());
            let (mut j, mut c) = (Vec::new(), Vec::new());
            ndjson(&mut j, &mut scratch, &e, Some(7));
            csv(&mut c, &mut scratch, &e, Some(7));
            let (mut want_j, mut want_c) = (b"{".to_vec(), Vec::new());
            let mut none = OriginTexts::default();
            let input = &mut IntText::default();
            values(
                &e,
                Some(7),
                &mut Uncached(Ndjson { buf: &mut want_j, scratch: &mut ip, origins: &mut none, input }),
            );
            want_j.extend_from_slice(b"}\n");
            let input = &mut IntText::default();
            values(&e, Some(7), &mut Uncached(Csv { buf: &mut want_c, scratch: &mut ip, origins: &mut none, input }));
            want_c.extend_from_slice(b"\r\n");
            assert_eq!(String::from_utf8(j).unwrap(), String::from_utf8(want_j).unwrap(), "{k}");
            assert_eq!(String::from_utf8(c).unwrap(), String::from_utf8(want_c).unwrap(), "{k}");
            assert!(scratch.json.at.len() <= OriginTexts::MAX && scratch.csv.at.len() <= OriginTexts::MAX);
        }
    }

    #[test]
    fn the_input_is_written_as_its_column_is() {
        let e = crate::enrich::tests::transfer(Some("192.0.2.7"), None);
        let mut scratch = Scratch::default();
        for input in [Some(7), Some(7), None, Some(u64::MAX), Some(1 << 63), Some(7), None] {
            let (mut j, mut c) = (Vec::new(), Vec::new());
            ndjson(&mut j, &mut scratch, &e, input);
            csv(&mut c, &mut scratch, &e, input);
            let want = input.map_or("null".to_string(), |f| (f as i64).to_string());
            assert!(j.ends_with(format!(",\"input\":{want}}}\n").as_bytes()), "{}", String::from_utf8_lossy(&j));
            let want = input.map_or(String::new(), |f| (f as i64).to_string());
            assert!(c.ends_with(format!(",file,{want}\r\n").as_bytes()), "{}", String::from_utf8_lossy(&c));
        }
    }

    #[test]
    fn the_longest_texts_are_within_their_bounds() {
        // The longest text of a finite float: a subnormal's last digit at
        // 10^-324, negative.
        assert_eq!(float_text(-5e-324).len(), FLOAT_MAX);
        for x in [f64::MIN, f64::MAX, -f64::MIN_POSITIVE, -2.225073858507201e-308, -1.2345678901234567e-300] {
            assert!(float_text(x).len() <= FLOAT_MAX, "{x:e}");
        }
        let mut ip = IpText::default();
        let v6: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap();
        assert_eq!(ip.get(v6, Some(127)).len(), IP_MAX);
        let v4: IpAddr = "::ffff:255.255.255.255".parse().unwrap();
        assert!(ip.get(v4, Some(127)).len() <= IP_MAX);
    }

    #[test]
    fn events_fit_the_room_reserved_for_them() {
        // Text whose every byte takes the most room in JSON (a control
        // character: `\u00XX`) or CSV (U+FFFD), the longest floats and
        // address, the longest integers; each write checks its room in a
        // debug build (`Room::copy`), and the whole is checked here too.
        fn worst<T: From<String>>(n: usize) -> T {
            format!("={}\u{85}\"", "\u{1}".repeat(5 * n)).into()
        }
        let origin = Arc::new(Origin {
            country: Some(worst(3)),
            city: Some(worst(40)),
            latitude: Some(-5e-324),
            longitude: Some(f64::MIN),
            geohash: Some(worst(2)),
            client_hash: Some(worst(5)),
            ip_prefix: Some(127),
        });
        let mut transfer = crate::enrich::tests::transfer(Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Some("h"));
        let Event::Transfer(t) = &mut transfer else { unreachable!() };
        (t.id, t.end, t.start, t.bytes) = (u64::MAX / 2 + 1, i64::MIN, Some(i64::MIN), u64::MAX);
        (t.wire_bytes, t.file_size) = (Some(u64::MAX), Some(u64::MAX));
        (t.path, t.module, t.user) = (Some(worst(1000)), Some(worst(7)), worst(9));
        (t.client_host, t.session, t.server_host) = (Some(worst(11)), Some(worst(13)), worst(3));
        let login = Event::Login(crate::model::Login {
            id: u64::MAX / 2 + 1,
            time: i64::MIN,
            protocol: crate::model::Protocol::Sftp,
            user: worst(17),
            client_ip: Some("255.255.255.255".parse().unwrap()),
            client_host: Some(worst(1)),
            outcome: crate::model::LoginOutcome::Failed,
            method: Some(worst(19)),
            session: Some(worst(23)),
            server_host: "".into(),
            source: crate::formats::Format::Rsyncd.source(),
            origin: None,
        });
        for mut e in [transfer, login] {
            for o in [Some(origin.clone()), None] {
                match &mut e {
                    Event::Transfer(t) => t.origin = o.clone(),
                    Event::Login(l) => l.origin = o.clone(),
                }
                let mut scratch = Scratch::default();
                let (mut j, mut c) = (Vec::new(), Vec::new());
                ndjson(&mut j, &mut scratch, &e, Some(u64::MAX));
                csv(&mut c, &mut scratch, &e, Some(u64::MAX));
                let origin_len = |texts: &OriginTexts| texts.text.len();
                assert!(j.len() <= bound(&e, Some(u64::MAX)) + origin_len(&scratch.json), "{}", j.len());
                assert!(c.len() <= bound(&e, Some(u64::MAX)) + origin_len(&scratch.csv), "{}", c.len());
                // And as the checked writers write it.
                let (mut want_j, mut want_c) = (b"{".to_vec(), Vec::new());
                let (mut ip, mut none) = (IpText::default(), OriginTexts::default());
                let input = &mut IntText::default();
                values(
                    &e,
                    Some(u64::MAX),
                    &mut Uncached(Ndjson { buf: &mut want_j, scratch: &mut ip, origins: &mut none, input }),
                );
                want_j.extend_from_slice(b"}\n");
                let input = &mut IntText::default();
                let out = Csv { buf: &mut want_c, scratch: &mut ip, origins: &mut none, input };
                values(&e, Some(u64::MAX), &mut Uncached(out));
                want_c.extend_from_slice(b"\r\n");
                assert_eq!((j, c), (want_j, want_c));
            }
        }
    }

    #[test]
    fn floats_that_are_not_finite_are_null_or_empty() {
        let mut ip = IpText::default();
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let (mut j, mut c) = (Vec::new(), Vec::new());
            json_value(&mut j, &mut ip, Value::Float(x));
            csv_value(&mut c, &mut ip, Value::Float(x));
            assert_eq!((&j[..], &c[..]), (&b"null"[..], &b""[..]));
        }
        let (mut j, mut c) = (Vec::new(), Vec::new());
        json_value(&mut j, &mut ip, Value::Float(-12.5));
        csv_value(&mut c, &mut ip, Value::Float(-12.5));
        assert_eq!((&j[..], &c[..]), (&b"-12.5"[..], &b"-12.5"[..]));
    }
}
