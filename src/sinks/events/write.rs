//! One event as an NDJSON line or a CSV row, into a reused buffer.

use std::io::Write;
use std::net::IpAddr;

use crate::model::{write_ip_text, Event, Origin};

/// The columns, in order: the stores' columns of both kinds (a transfer's
/// `end_us` is `time_us` here), `kind` first; `input` is the ledger
/// fingerprint of the input the event came from, as a store records it.
pub const COLUMNS: [&str; N] = [
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

/// A field of one event.
#[derive(Clone, Copy)]
enum Value<'a> {
    /// Not a field of this kind of event.
    Absent,
    /// A field of this kind without a value.
    Null,
    Int(i64),
    Float(f64),
    /// A name of a fixed vocabulary (protocol, status, …).
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

/// The values of `e`, read from the input with fingerprint `input`, in
/// [`COLUMNS`] order.
fn values(e: &Event, input: Option<u64>) -> [Value<'_>; N] {
    use Value::*;
    let mut v = [Absent; N];
    v[27] = opt(input, |f| Int(f as i64));
    match e {
        Event::Transfer(t) => {
            let own = [
                Name("transfer"),
                Int(t.id as i64),
                Int(t.end),
                opt(t.start, Int),
                Name(t.protocol.as_str()),
                Name(t.direction.as_str()),
                Name(t.status.as_str()),
                Absent,
                Absent,
                Int(t.bytes as i64),
                opt(t.wire_bytes, |v| Int(v as i64)),
                opt(t.file_size, |v| Int(v as i64)),
                text(t.path.as_deref()),
                text(t.module.as_deref()),
            ];
            v[..14].copy_from_slice(&own);
            v[26] = Name(t.granularity.as_str());
            let who =
                Who { user: &t.user, ip: t.client_ip, host: t.client_host.as_deref(), origin: t.origin.as_deref() };
            who.fill(&mut v, t.session.as_deref(), &t.server_host, t.source.as_str());
            v
        }
        Event::Login(l) => {
            v[0] = Name("login");
            v[1] = Int(l.id as i64);
            v[2] = Int(l.time);
            v[4] = Name(l.protocol.as_str());
            v[7] = Name(l.outcome.as_str());
            v[8] = text(l.method.as_deref());
            let who =
                Who { user: &l.user, ip: l.client_ip, host: l.client_host.as_deref(), origin: l.origin.as_deref() };
            who.fill(&mut v, l.session.as_deref(), &l.server_host, l.source.as_str());
            v
        }
    }
}

/// The client side of an event, the same for both kinds.
struct Who<'a> {
    user: &'a str,
    ip: Option<IpAddr>,
    host: Option<&'a str>,
    origin: Option<&'a Origin>,
}

impl<'a> Who<'a> {
    /// Sets the columns both kinds have, `user` to `source`.
    fn fill(self, v: &mut [Value<'a>; N], session: Option<&'a str>, server_host: &'a str, source: &'static str) {
        let o = self.origin;
        let shared = [
            Value::Text(self.user),
            opt(self.ip, |ip| Value::Ip(ip, o.and_then(|o| o.ip_prefix))),
            text(self.host),
            text(o.and_then(|o| o.client_hash.as_deref())),
            text(o.and_then(|o| o.country.as_deref())),
            text(o.and_then(|o| o.city.as_deref())),
            opt(o.and_then(|o| o.latitude), Value::Float),
            opt(o.and_then(|o| o.longitude), Value::Float),
            text(o.and_then(|o| o.geohash.as_deref())),
            text(session),
            Value::Text(server_host),
            Value::Name(source),
        ];
        v[14..26].copy_from_slice(&shared);
    }
}

/// `ip` as the stores write it, in `scratch`.
fn ip_str(scratch: &mut String, ip: IpAddr, prefix: Option<u8>) -> &str {
    scratch.clear();
    let _ = write_ip_text(scratch, ip, prefix);
    scratch
}

/// Appends `e`, read from the input `input`, as one JSON object and a
/// newline.
pub(super) fn ndjson(buf: &mut Vec<u8>, scratch: &mut String, e: &Event, input: Option<u64>) {
    buf.push(b'{');
    let mut first = true;
    for (name, v) in COLUMNS.iter().zip(values(e, input)) {
        if matches!(v, Value::Absent) {
            continue;
        }
        if !first {
            buf.push(b',');
        }
        first = false;
        buf.push(b'"');
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(b"\":");
        json_value(buf, scratch, v);
    }
    buf.extend_from_slice(b"}\n");
}

/// Appends `v` as a JSON value (`null` for a float that is not finite).
fn json_value(buf: &mut Vec<u8>, scratch: &mut String, v: Value<'_>) {
    match v {
        Value::Absent | Value::Null => buf.extend_from_slice(b"null"),
        Value::Int(n) => int(buf, n),
        Value::Float(x) if x.is_finite() => float(buf, x),
        Value::Float(_) => buf.extend_from_slice(b"null"),
        Value::Name(s) | Value::Text(s) => json_str(buf, s),
        Value::Ip(ip, prefix) => json_str(buf, ip_str(scratch, ip, prefix)),
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
            let m = p.round();
            if m / p10 == a {
                if x < 0.0 {
                    buf.push(b'-');
                }
                return decimal(buf, m as u64, d);
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

/// Appends `s` as a JSON string. Beyond what JSON requires, DEL and the
/// C1 controls are escaped too: the output may reach a terminal. Runs of
/// bytes that need no escape are copied whole.
fn json_str(buf: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    buf.reserve(b.len() + 2);
    buf.push(b'"');
    let mut from = 0;
    let mut i = 0;
    while let Some(n) = b[i..].iter().position(|&c| JSON_STOP[usize::from(c)]) {
        i += n;
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
pub(super) fn csv(buf: &mut Vec<u8>, scratch: &mut String, e: &Event, input: Option<u64>) {
    for (i, v) in values(e, input).into_iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        csv_value(buf, scratch, v);
    }
    buf.extend_from_slice(b"\r\n");
}

/// Appends `v` as a CSV field (empty for a float that is not finite).
fn csv_value(buf: &mut Vec<u8>, scratch: &mut String, v: Value<'_>) {
    match v {
        Value::Absent | Value::Null => {}
        Value::Int(n) => int(buf, n),
        Value::Float(x) if x.is_finite() => float(buf, x),
        Value::Float(_) => {}
        Value::Name(s) => buf.extend_from_slice(s.as_bytes()),
        Value::Text(s) => csv_text(buf, s),
        Value::Ip(ip, prefix) => buf.extend_from_slice(ip_str(scratch, ip, prefix).as_bytes()),
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
    let class = b.iter().fold(0, |k, &c| k | CSV_CLASS[usize::from(c)]);
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
    fn floats_that_are_not_finite_are_null_or_empty() {
        let mut ip = String::new();
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
