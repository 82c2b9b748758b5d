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
}

impl OriginTexts {
    /// Origins kept at most.
    const MAX: usize = 4096;

    /// The text of `o`, written by `write` (appending to the buffer it is
    /// given) the first time.
    fn get(&mut self, o: &Arc<Origin>, write: impl FnOnce(&mut Vec<u8>)) -> &[u8] {
        let key = Arc::as_ptr(o) as usize;
        let (start, end) = match self.at.get(&key) {
            Some(&(_, start, end)) => (start, end),
            None => {
                if self.at.len() >= Self::MAX {
                    self.at.clear();
                    self.text.clear();
                }
                let start = self.text.len();
                write(&mut self.text);
                self.at.insert(key, (o.clone(), start, self.text.len()));
                (start, self.text.len())
            }
        };
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
    let texts = [path, host, Some(user), session, Some(server_host)];
    for s in texts.into_iter().flatten() {
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

/// Appends `e`, read from the input `input`, as one JSON object and a
/// newline.
pub(super) fn ndjson(buf: &mut Vec<u8>, scratch: &mut Scratch, e: &Event, input: Option<u64>) {
    buf.push(b'{');
    values(
        e,
        input,
        &mut Ndjson { buf, scratch: &mut scratch.ip, origins: &mut scratch.json, input: &mut scratch.input },
    );
    buf.extend_from_slice(b"}\n");
}

/// The columns of one event as NDJSON (`CSV` false: `"name":value`,
/// comma-separated, absent ones left out) or as a CSV row (every one,
/// comma-separated).
struct Out<'w, const CSV: bool> {
    buf: &'w mut Vec<u8>,
    /// Scratch text of an address.
    scratch: &'w mut IpText,
    /// The origins written.
    origins: &'w mut OriginTexts,
    /// The text of the input's fingerprint.
    input: &'w mut IntText,
}

/// [`ndjson`]'s columns.
type Ndjson<'w> = Out<'w, false>;

/// [`csv`]'s columns.
type Csv<'w> = Out<'w, true>;

impl<'a, const CSV: bool> Columns<'a> for Out<'_, CSV> {
    #[inline(always)]
    fn col(&mut self, i: usize, v: Value<'a>) {
        if CSV && i > 0 {
            self.buf.push(b',');
        }
        if !CSV && !matches!(v, Value::Absent) {
            // `kind`, the first column, is always there: no comma before it.
            let key = KEYS[i].as_bytes();
            self.buf.extend_from_slice(if i == 0 { &key[1..] } else { key });
        }
        match v {
            // The input's fingerprint, the same for every event of a batch:
            // its text is kept (an integer in both formats).
            Value::Int(n) if i == INPUT => self.buf.extend_from_slice(self.input.get(n)),
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
            origin_values(Some(o), &mut Out::<CSV> { buf, scratch, origins, input })
        });
        self.buf.extend_from_slice(text);
    }
}

/// Appends `v` as a JSON value (`null` for a float that is not finite).
#[inline(always)]
fn json_value(buf: &mut Vec<u8>, scratch: &mut IpText, v: Value<'_>) {
    match v {
        Value::Absent | Value::Null => buf.extend_from_slice(b"null"),
        Value::Int(n) => int(buf, n),
        Value::Float(x) if x.is_finite() => float(buf, x),
        Value::Float(_) => buf.extend_from_slice(b"null"),
        Value::Name(s) => {
            debug_assert!(!s.bytes().any(|c| JSON_STOP[usize::from(c)]), "{s}");
            buf.push(b'"');
            buf.extend_from_slice(s.as_bytes());
            buf.push(b'"');
        }
        Value::Text(s) => json_str(buf, s),
        Value::Ip(ip, prefix) => json_str(buf, scratch.get(ip, prefix)),
    }
}

/// Appends `n` in decimal, as `{}` would.
fn int(buf: &mut Vec<u8>, n: i64) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
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
fn float(buf: &mut Vec<u8>, x: f64) {
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
                    buf.push(b'-');
                }
                return decimal(buf, m, d);
            }
        }
    }
    let _ = write!(buf, "{x}");
}

/// Appends `m·10^-d` with exactly `d` decimals (none and no point when
/// `d` is 0).
fn decimal(buf: &mut Vec<u8>, m: u64, d: usize) {
    let mut digits = itoa::Buffer::new();
    let s = digits.format(m).as_bytes();
    if d == 0 {
        buf.extend_from_slice(s);
    } else if s.len() > d {
        let (int, frac) = s.split_at(s.len() - d);
        buf.extend_from_slice(int);
        buf.push(b'.');
        buf.extend_from_slice(frac);
    } else {
        buf.extend_from_slice(b"0.");
        buf.extend(std::iter::repeat_n(b'0', d - s.len()));
        buf.extend_from_slice(s);
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

/// Each byte of a word read 8 bytes at a time ([`find`]).
const ONES: u64 = u64::from_ne_bytes([1; 8]);

/// The high bit of each byte of a word.
const HIGH: u64 = ONES << 7;

/// Nonzero when a byte of `w` is below `n` (at most 0x80): the borrow of
/// the first such byte's subtraction sets its high bit.
const fn below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * n as u64) & !w & HIGH
}

/// Nonzero when a byte of `w` is `c`.
const fn byte(w: u64, c: u8) -> u64 {
    below(w ^ (ONES * c as u64), 1)
}

/// The first index at or after `from` whose byte `stop` picks. Words of 8
/// bytes that `any` (nonzero when a word may hold such a byte) clears are
/// skipped whole; log text is rarely anything but plain.
#[inline(always)]
fn find(b: &[u8], mut from: usize, any: impl Fn(u64) -> u64, stop: impl Fn(u8) -> bool) -> Option<usize> {
    let word = |at: usize| u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    while from + 8 <= b.len() {
        if any(word(from)) != 0 {
            return b[from..].iter().position(|&c| stop(c)).map(|n| from + n);
        }
        from += 8;
    }
    // Fewer than 8 bytes left: the last 8, when there are, in one go.
    if from < b.len() && b.len() >= 8 && any(word(b.len() - 8)) == 0 {
        return None;
    }
    b[from..].iter().position(|&c| stop(c)).map(|n| from + n)
}

/// The first byte at or after `from` that [`json_str`] does not copy.
fn json_stop(b: &[u8], from: usize) -> Option<usize> {
    let any = |w| below(w, 0x20) | byte(w, b'"') | byte(w, b'\\') | byte(w, 0x7f) | byte(w, 0xc2);
    find(b, from, any, |c| JSON_STOP[usize::from(c)])
}

/// Appends `s` as a JSON string. Beyond what JSON requires, DEL and the
/// C1 controls are escaped too: the output may reach a terminal. Runs of
/// bytes that need no escape are copied whole.
fn json_str(buf: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    buf.reserve(b.len() + 2);
    buf.push(b'"');
    let mut from = 0;
    let mut i = 0;
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
        buf.extend_from_slice(&b[from..i]);
        buf.extend_from_slice(esc);
        i += len;
        from = i;
    }
    buf.extend_from_slice(&b[from..]);
    buf.push(b'"');
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
    values(e, input, &mut Csv { buf, scratch: &mut scratch.ip, origins: &mut scratch.csv, input: &mut scratch.input });
    buf.extend_from_slice(b"\r\n");
}

/// Appends `v` as a CSV field (empty for a float that is not finite).
#[inline(always)]
fn csv_value(buf: &mut Vec<u8>, scratch: &mut IpText, v: Value<'_>) {
    match v {
        Value::Absent | Value::Null => {}
        Value::Int(n) => int(buf, n),
        Value::Float(x) if x.is_finite() => float(buf, x),
        Value::Float(_) => {}
        Value::Name(s) => buf.extend_from_slice(s.as_bytes()),
        Value::Text(s) => csv_text(buf, s),
        Value::Ip(ip, prefix) => buf.extend_from_slice(scratch.get(ip, prefix).as_bytes()),
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
fn csv_text(buf: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let any = |w| below(w, 0x20) | byte(w, b',') | byte(w, b'"') | byte(w, 0x7f) | byte(w, 0xc2);
    let class = match find(b, 0, any, |c| CSV_CLASS[usize::from(c)] != 0) {
        None => 0,
        Some(at) => b[at..].iter().fold(0, |k, &c| k | CSV_CLASS[usize::from(c)]),
    };
    let quote = class & QUOTE != 0;
    if quote {
        buf.push(b'"');
    }
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        buf.push(b'\'');
    }
    if class & CHANGE == 0 {
        buf.extend_from_slice(b);
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
            buf.extend_from_slice(&b[from..i]);
            buf.extend_from_slice(with);
            i += len;
            from = i;
        }
        buf.extend_from_slice(&b[from..]);
    }
    if quote {
        buf.push(b'"');
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
        let mut next = rng(1);
        for _ in 0..10_000 {
            let n = next() as i64 >> (next() % 64);
            assert_eq!(int_text(n), n.to_string());
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
