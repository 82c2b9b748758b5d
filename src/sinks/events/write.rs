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
        match v {
            Value::Absent | Value::Null => buf.extend_from_slice(b"null"),
            Value::Int(n) => {
                let _ = write!(buf, "{n}");
            }
            Value::Float(x) if x.is_finite() => {
                let _ = write!(buf, "{x}");
            }
            Value::Float(_) => buf.extend_from_slice(b"null"),
            Value::Name(s) | Value::Text(s) => json_str(buf, s),
            Value::Ip(ip, prefix) => json_str(buf, ip_str(scratch, ip, prefix)),
        }
    }
    buf.extend_from_slice(b"}\n");
}

/// Appends `s` as a JSON string. Beyond what JSON requires, DEL and the
/// C1 controls are escaped too: the output may reach a terminal.
fn json_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let b = s.as_bytes();
    let mut from = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (esc, len): (Option<&[u8]>, usize) = match c {
            b'"' => (Some(b"\\\""), 1),
            b'\\' => (Some(b"\\\\"), 1),
            b'\n' => (Some(b"\\n"), 1),
            b'\r' => (Some(b"\\r"), 1),
            b'\t' => (Some(b"\\t"), 1),
            0..=0x1f | 0x7f => (None, 1),
            0xc2 if matches!(b.get(i + 1), Some(0x80..=0x9f)) => (None, 2),
            _ => {
                i += 1;
                continue;
            }
        };
        buf.extend_from_slice(&b[from..i]);
        match esc {
            Some(e) => buf.extend_from_slice(e),
            None => {
                let code = if len == 2 { b[i + 1] } else { c };
                let _ = write!(buf, "\\u{:04x}", code);
            }
        }
        i += len;
        from = i;
    }
    buf.extend_from_slice(&b[from..]);
    buf.push(b'"');
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
        match v {
            Value::Absent | Value::Null => {}
            Value::Int(n) => {
                let _ = write!(buf, "{n}");
            }
            Value::Float(x) if x.is_finite() => {
                let _ = write!(buf, "{x}");
            }
            Value::Float(_) => {}
            Value::Name(s) => buf.extend_from_slice(s.as_bytes()),
            Value::Text(s) => csv_text(buf, s),
            Value::Ip(ip, prefix) => buf.extend_from_slice(ip_str(scratch, ip, prefix).as_bytes()),
        }
    }
    buf.extend_from_slice(b"\r\n");
}

/// Appends log-derived text as a CSV field: quoted when it holds a comma,
/// quote or line break (quotes doubled); a leading `'` when it starts
/// like a spreadsheet formula (`=`, `+`, `-`, `@`, tab, CR); other control
/// characters (C0 but tab/LF/CR, DEL, C1) as U+FFFD, so that a CSV shown
/// on a terminal cannot drive it.
fn csv_text(buf: &mut Vec<u8>, s: &str) {
    let quote = s.bytes().any(|c| matches!(c, b',' | b'"' | b'\n' | b'\r'));
    if quote {
        buf.push(b'"');
    }
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        buf.push(b'\'');
    }
    for ch in s.chars() {
        match ch {
            '"' => buf.extend_from_slice(b"\"\""),
            '\t' | '\n' | '\r' => buf.push(ch as u8),
            c if c.is_control() => buf.extend_from_slice("\u{fffd}".as_bytes()),
            c if c.is_ascii() => buf.push(c as u8),
            c => {
                let mut tmp = [0u8; 4];
                buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
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
    fn json_strings_are_escaped() {
        assert_eq!(json("plain é"), "\"plain é\"");
        assert_eq!(json("q\"b\\"), "\"q\\\"b\\\\\"");
        assert_eq!(json("\n\r\t"), "\"\\n\\r\\t\"");
        assert_eq!(json("\u{1b}[31m\u{7f}\u{9b}x"), "\"\\u001b[31m\\u007f\\u009bx\"");
        for s in ["plain é", "q\"b\\", "\u{1b}\u{9b}\u{a0}\u{2028}", "\u{0}"] {
            assert_eq!(serde_json::from_str::<String>(&json(s)).unwrap(), s);
        }
    }
}
