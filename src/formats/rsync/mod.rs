//! rsync daemon (rsyncd) logs: messages after the prefix, turned into
//! [`Record`]s. Pure functions from bytes to records; joining the lines of a
//! connection (by pid) is the job of [`crate::formats::rsync::decoder`].
//!
//! Traps handled here (see the format notes, §A1): direction is the daemon's
//! (`rsync on` / `send` = client download, `rsync to` / `recv` = upload);
//! `del.` is a deletion; `%h` may be `UNDETERMINED` or `UNKNOWN`; `%a` may
//! be IPv6; `%u` is empty for anonymous modules; file names contain spaces
//! and, since rsync 3.5.0, `\#ooo` escapes for control and C1 bytes; the
//! `sent … received …` summary has two spaces between its clauses.

pub mod decoder;
pub mod logformat;

use std::borrow::Cow;

pub use logformat::{FileLine, LogFormat, DEFAULT_LOG_FORMAT};

use crate::formats::prefix::{ascii_without, digit_run, eight_digits_value, find_byte, parse_u64, rfind_byte};

/// What a session request asked for, from the daemon's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Request {
    /// `rsync on MOD/…`: the daemon sends, the client downloads.
    Pull,
    /// `rsync to MOD/…`: the daemon receives, the client uploads.
    Push,
}

/// One rsyncd message, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// `connect from HOST (ADDR)`: a new connection on this pid.
    Connect {
        /// Client host name as logged.
        host: &'a [u8],
        /// Client address.
        addr: &'a [u8],
    },
    /// `rsync on|to MOD/PATH from [USER@]HOST (ADDR)`.
    Request {
        /// Pull or push.
        request: Request,
        /// `MOD/path` as requested.
        module_path: &'a [u8],
        /// Authenticated user, if the module requires auth.
        user: Option<&'a [u8]>,
        /// Client host name.
        host: &'a [u8],
        /// Client address.
        addr: &'a [u8],
    },
    /// `sent N bytes  received M bytes  total size T` (daemon's view).
    Summary {
        /// Bytes the daemon sent (client download).
        sent: u64,
        /// Bytes the daemon received (client upload).
        received: u64,
        /// Total size of the file set.
        total: u64,
    },
    /// `auth failed on module MOD from HOST (ADDR) for USER: REASON`.
    AuthFailed {
        /// Module.
        module: &'a [u8],
        /// User, absent for `invalid challenge response`.
        user: Option<&'a [u8]>,
        /// Reason as logged.
        reason: &'a [u8],
        /// Client host name.
        host: &'a [u8],
        /// Client address.
        addr: &'a [u8],
    },
    /// `rsync denied on module …` / `unknown module '…' tried from …`:
    /// refused before authentication; neither a login nor a transfer.
    Refused,
    /// `rsync error: … (code N) …`: the session ended abnormally.
    Error {
        /// rsync exit code.
        code: u32,
    },
    /// A per-file line written with the `log format`.
    File(FileLine<'a>),
    /// A known message with no statistical meaning.
    Other,
}

/// Messages the daemon writes that carry nothing to count.
const OTHER_PREFIXES: &[&[u8]] = &[
    b"rsync allowed access on module ",
    b"building file list",
    b"receiving file list",
    b"created directory ",
    b"rsyncd version ",
    b"rsync: ",
    b"rsync warning: ",
    b"module-list request from ",
    b"max connections ",
    b"name lookup failed",
    b"forward name lookup ",
    b"params.c:",
    b"Unknown Parameter ",
    b"total: matches=",
    b"Number of ",
    b"skipping ",
    b"file has vanished",
    b"IO error encountered",
    b"deleting ",
    b"ERROR: ",
    b"WARNING: ",
    b"@ERROR",
    b"daemon ",
    b"chroot ",
    b"Failed to ",
    b"failed to ",
];

/// Whether a syslog tag is rsync's (`rsyncd`, `rsync`, …): it contains
/// `rsync`. (A tag is a few bytes: a plain scan, no substring searcher.)
pub fn is_rsync_program(prog: &[u8]) -> bool {
    prog.windows(5).any(|w| crate::model::same_bytes(w, b"rsync"))
}

/// Classifies one rsyncd message (the part after the prefix).
///
/// Returns the reason as `Err` when the message is neither a known daemon
/// message nor a line of `format`.
pub fn parse_message<'a>(msg: &'a [u8], format: &LogFormat) -> Result<Record<'a>, &'static str> {
    // The daemon's own messages start with five different bytes: only the
    // one whose first byte the message has is compared.
    match msg.first() {
        Some(b'c') => {
            if let Some(rest) = msg.strip_prefix(b"connect from ") {
                let (host, addr) = host_addr(rest).ok_or("malformed 'connect from' line")?;
                return Ok(Record::Connect { host, addr });
            }
        }
        Some(b'r') => {
            if let Some(rest) = msg.strip_prefix(b"rsync ") {
                let (request, rest) = if let Some(r) = rest.strip_prefix(b"on ") {
                    (Some(Request::Pull), r)
                } else if let Some(r) = rest.strip_prefix(b"to ") {
                    (Some(Request::Push), r)
                } else {
                    (None, rest)
                };
                if let Some(request) = request {
                    return parse_request(request, rest).ok_or("malformed 'rsync on|to' line");
                }
                if rest.starts_with(b"denied on module ") {
                    return Ok(Record::Refused);
                }
                if let Some(r) = rest.strip_prefix(b"error: ") {
                    let code = error_code(r).ok_or("malformed 'rsync error' line")?;
                    return Ok(Record::Error { code });
                }
            }
        }
        Some(b's') => {
            if let Some(rest) = msg.strip_prefix(b"sent ") {
                return parse_summary(rest).ok_or("malformed 'sent … received …' line");
            }
        }
        Some(b'a') => {
            if let Some(rest) = msg.strip_prefix(b"auth failed on module ") {
                return parse_auth_failed(rest).ok_or("malformed 'auth failed' line");
            }
        }
        Some(b'u') if msg.starts_with(b"unknown module ") => return Ok(Record::Refused),
        _ => {}
    }
    if let Some(line) = format.parse(msg) {
        return Ok(Record::File(line));
    }
    if OTHER_PREFIXES.iter().any(|p| msg.get(..p.len()).is_some_and(|m| crate::model::same_bytes(m, p))) || msg.is_empty() {
        return Ok(Record::Other);
    }
    Err("neither an rsyncd message nor a line of the log format (check --rsync-log-format)")
}

/// Splits `… HOST (ADDR)` at its end (searched from the end,
/// [`rfind_byte`]: an address and a host name are short).
fn host_addr(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = s.strip_suffix(b")")?;
    let open = rfind_byte(b'(', s)?;
    let addr = &s[open + 1..];
    let before = s[..open].strip_suffix(b" ")?;
    let host = match rfind_byte(b' ', before) {
        Some(sp) => &before[sp + 1..],
        None => before,
    };
    if addr.is_empty() || host.is_empty() {
        return None;
    }
    Some((host, addr))
}

fn parse_request(request: Request, rest: &[u8]) -> Option<Record<'_>> {
    let (host_full, addr) = host_addr(rest)?;
    // rest = MOD/PATH from [USER@]HOST (ADDR); the path may contain " from ".
    let host_start = rest.len() - (addr.len() + 3) - host_full.len();
    let before = rest[..host_start].strip_suffix(b" from ")?;
    let (user, host) = match rfind_byte(b'@', host_full) {
        Some(at) => (Some(&host_full[..at]), &host_full[at + 1..]),
        None => (None, host_full),
    };
    Some(Record::Request { request, module_path: before, user, host, addr })
}

fn parse_summary(rest: &[u8]) -> Option<Record<'_>> {
    // "N bytes  received M bytes  total size T"
    let (sent, rest) = number_then(rest, b" bytes")?;
    let rest = trim_start(rest).strip_prefix(b"received ")?;
    let (received, rest) = number_then(rest, b" bytes")?;
    let rest = trim_start(rest).strip_prefix(b"total size ")?.trim_ascii_end();
    // Nearly always plain digits to the end ([`leading_digits`]).
    let total = match leading_digits(rest) {
        (v, n) if n > 0 && n == rest.len() => v,
        _ => parse_grouped(rest)?,
    };
    Some(Record::Summary { sent, received, total })
}

/// The number before the first `suffix` (which starts with a space) and
/// what follows it.
fn number_then<'a>(s: &'a [u8], suffix: &[u8]) -> Option<(u64, &'a [u8])> {
    // Nearly always plain digits right before the suffix: parsed in the
    // pass that finds their end (at most 19, which cannot overflow), eight
    // at a time where the text has room for whole words.
    let (v, n) = leading_digits(s);
    if n > 0 && s.get(n..n + suffix.len()).is_some_and(|w| crate::model::same_bytes(w, suffix)) {
        return Some((v, &s[n + suffix.len()..]));
    }
    // Else (grouped digits, a long number, spaces): the first space is
    // nearly always the suffix's, a few digits in: no substring searcher,
    // and a byte loop (`memchr` cost more to start than this takes).
    let mut at = 0;
    let at = loop {
        at += s[at..].iter().position(|&c| c == b' ')?;
        if s[at..].starts_with(suffix) {
            break at;
        }
        at += 1;
    };
    Some((parse_grouped(&s[..at])?, &s[at + suffix.len()..]))
}

/// The value of the digits `s` starts with (at most 19) and how many
/// there are: the first 16 a word of 8 bytes at a time while the text has
/// one (all its digits found and combined in the lanes of the word), the
/// others a byte at a time.
#[inline(always)]
fn leading_digits(s: &[u8]) -> (u64, usize) {
    const POW10: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];
    let word = |at: usize| s.get(at..at + 8).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
    let (mut v, mut n) = (0u64, 0);
    if let Some(first) = word(0) {
        let k = digit_run(first);
        v = eight_digits_value(first, k);
        if k < 8 {
            return (v, k);
        }
        n = 8;
        if let Some(second) = word(8) {
            let m = digit_run(second);
            v = v * POW10[m] + eight_digits_value(second, m);
            if m < 8 {
                return (v, 8 + m);
            }
            n = 16;
        }
    }
    for &c in &s[n..s.len().min(19)] {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v * 10 + d as u64;
        n += 1;
    }
    (v, n)
}

/// A number that may carry locale grouping (`1,234` / `1.234`).
fn parse_grouped(b: &[u8]) -> Option<u64> {
    parse_u64(b).or_else(|| logformat::parse_number(b, 1))
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b' ').count();
    &s[n..]
}

fn parse_auth_failed(rest: &[u8]) -> Option<Record<'_>> {
    // MOD from HOST (ADDR) for USER: REASON   |   MOD from HOST (ADDR): REASON
    let sp = memchr::memchr(b' ', rest)?;
    let module = &rest[..sp];
    let rest = rest[sp..].strip_prefix(b" from ")?;
    let close = memchr::memmem::find(rest, b") ").or_else(|| memchr::memmem::find(rest, b"):"))?;
    let (host, addr) = host_addr(&rest[..=close])?;
    let tail = &rest[close + 1..];
    if let Some(t) = tail.strip_prefix(b" for ") {
        let colon = memchr::memmem::find(t, b": ")?;
        Some(Record::AuthFailed { module, user: Some(&t[..colon]), reason: &t[colon + 2..], host, addr })
    } else {
        let reason = tail.strip_prefix(b": ").unwrap_or(tail);
        Some(Record::AuthFailed { module, user: None, reason, host, addr })
    }
}

fn error_code(r: &[u8]) -> Option<u32> {
    let at = memchr::memmem::rfind(r, b"(code ")?;
    let rest = &r[at + 6..];
    let close = memchr::memchr(b')', rest)?;
    crate::formats::prefix::parse_u32(&rest[..close])
}

/// Whether `b` holds an rsync `\#` escape ([`unescape`] changes it).
pub fn escaped(b: &[u8]) -> bool {
    // Names (modules, users) and many paths are short: a look for a
    // backslash eight bytes at a time (nearly always none) is done before
    // `memchr` has started (it was most of interning a name), and before
    // a byte loop over pairs.
    if b.len() <= 32 {
        return has_backslash(b) && b.windows(2).any(|w| w[0] == b'\\' && w[1] == b'#');
    }
    memchr::memchr_iter(b'\\', b).any(|i| b.get(i + 1) == Some(&b'#'))
}

/// Whether `b` holds a backslash: the prefix parser's search of short
/// text, eight bytes at a time ([`find_byte`]).
fn has_backslash(b: &[u8]) -> bool {
    find_byte(b'\\', b).is_some()
}

/// Decodes rsync's `\#ooo` escapes (3.5.0+) into the raw bytes, then to
/// UTF-8 (invalid sequences become U+FFFD).
pub fn unescape(b: &[u8]) -> Cow<'_, str> {
    // Nearly always plain ASCII: one pass finds no backslash and nothing
    // to validate.
    if ascii_without(b'\\', b) {
        // SAFETY: ASCII bytes are UTF-8.
        return Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(b) });
    }
    if !escaped(b) {
        // Valid UTF-8 (nearly always) is validated a word at a time, where
        // `from_utf8_lossy` walks it chunk by chunk.
        return crate::model::text(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'#') && i + 4 < b.len() + 1 {
            let oct = b.get(i + 2..i + 5).filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)));
            if let Some(o) = oct {
                let v = (o[0] - b'0') as u32 * 64 + (o[1] - b'0') as u32 * 8 + (o[2] - b'0') as u32;
                if v <= 255 {
                    out.push(v as u8);
                    i += 5;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Whether the first lines of a file look like an rsyncd log.
pub fn looks_like(msg: &[u8], program: Option<&[u8]>) -> bool {
    if let Some(p) = program {
        if memchr::memmem::find(p, b"rsync").is_none() {
            return false;
        }
    }
    msg.starts_with(b"connect from ")
        || msg.starts_with(b"rsyncd version ")
        || msg.starts_with(b"rsync on ")
        || msg.starts_with(b"rsync to ")
        || msg.starts_with(b"rsync allowed access")
        || msg.starts_with(b"rsync error: ")
        || msg.starts_with(b"auth failed on module ")
        || msg.starts_with(b"unknown module ")
        || (msg.starts_with(b"sent ") && memchr::memmem::find(msg, b"total size").is_some())
}

/// The registry entry of the rsyncd format.
pub const SPEC: crate::formats::Spec = crate::formats::Spec {
    name: "rsyncd",
    description: "rsync daemon log (log file `YYYY/MM/DD HH:MM:SS [pid]`, BSD or RFC 3339 syslog); \
                  default or custom `log format` (--rsync-log-format)",
    detect: crate::formats::Detect::Lines(|p| p.prefix().is_some_and(|x| looks_like(x.msg, x.program))),
    stamp: crate::formats::prefix::stamp,
    decoder: |t| Box::new(decoder::RsyncDecoder::new(t.rsync.clone())),
};

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt() -> LogFormat {
        LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap()
    }

    #[test]
    fn backslashes_found_in_any_byte_of_a_word() {
        for n in 0..=40 {
            let plain = vec![b'a'; n];
            assert!(!has_backslash(&plain), "{n}");
            // Every byte value but the backslash, the high ones too.
            let others: Vec<u8> = (0..=255u8).filter(|&c| c != b'\\').cycle().take(n).collect();
            assert!(!has_backslash(&others), "{n}");
            for i in 0..n {
                let mut b = plain.clone();
                b[i] = b'\\';
                assert!(has_backslash(&b), "{n} {i}");
                let mut b = others.clone();
                b[i] = b'\\';
                assert!(has_backslash(&b), "{n} {i}");
            }
        }
        assert!(escaped(b"a\\#041b"));
        assert!(!escaped(b"a\\b#"));
    }

    #[test]
    fn leading_digits_are_read_a_word_at_a_time_as_a_byte_at_a_time() {
        fn bytewise(s: &[u8]) -> (u64, usize) {
            let n = s.iter().take(19).take_while(|c| c.is_ascii_digit()).count();
            (s[..n].iter().fold(0, |v, &c| v * 10 + u64::from(c - b'0')), n)
        }
        let digits = b"9081726354453627189009";
        for len in 0..=22 {
            for tail in [&b""[..], b" bytes  received 42", b"x", b"/", b":", b"\xff", b"\x00", b"\x3a bytes"] {
                let mut s = digits[..len].to_vec();
                s.extend_from_slice(tail);
                assert_eq!(leading_digits(&s), bytewise(&s), "{}", String::from_utf8_lossy(&s));
                // Every byte value right after the digits.
                for c in 0..=255u8 {
                    let mut t = digits[..len].to_vec();
                    t.extend_from_slice(&[c, b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8']);
                    assert_eq!(leading_digits(&t), bytewise(&t), "{len} {c}");
                }
            }
        }
        assert_eq!(leading_digits(b"000000000000000000123 x"), (1, 19));
        assert_eq!(leading_digits(b"18446744073709551615 bytes"), (1_844_674_407_370_955_161, 19));
    }

    #[test]
    fn numbers_before_a_suffix_and_a_total_size() {
        // The digit pass and the general parse agree.
        fn general(s: &[u8]) -> Option<(u64, &[u8])> {
            let at = (0..s.len()).find(|&i| s[i..].starts_with(b" bytes"))?;
            Some((parse_grouped(&s[..at])?, &s[at + 6..]))
        }
        let texts = [
            &b"99999"[..],
            b"1234567890",
            b"12345678901234567",
            b"1844674407370955161",
            b"12  ",
            b"0",
            b"18446744073709551615",
            b"18446744073709551616",
            b"1,234,567",
            b"12x",
            b"39154 bytes  received",
            b"0 bytes x",
            b"1,234,567 bytes  received",
            b"1.234 bytes",
            b"9999999999999999999 bytes",
            b"18446744073709551615 bytes",
            b"18446744073709551616 bytes",
            b"123456789012345678901 bytes",
            b"12 byte",
            b"12 bytes",
            b"12",
            b" bytes",
            b"12x bytes",
            b"12 12 bytes",
            b"",
        ];
        for s in texts {
            assert_eq!(number_then(s, b" bytes"), general(s), "{}", String::from_utf8_lossy(s));
            // As the total size that ends a summary line.
            let msg = [&b"1 bytes  received 2 bytes  total size "[..], s].concat();
            let want = parse_grouped(s.trim_ascii_end()).map(|total| Record::Summary { sent: 1, received: 2, total });
            assert_eq!(parse_summary(&msg), want, "{}", String::from_utf8_lossy(s));
        }
        assert_eq!(number_then(b"39154 bytes  received", b" bytes"), Some((39154, &b"  received"[..])));
        assert_eq!(number_then(b"18446744073709551615 bytes", b" bytes"), Some((u64::MAX, &b""[..])));
    }

    #[test]
    fn session_lines() {
        let f = fmt();
        assert_eq!(
            parse_message(b"connect from UNDETERMINED (127.0.1.50)", &f),
            Ok(Record::Connect { host: b"UNDETERMINED", addr: b"127.0.1.50" })
        );
        assert_eq!(
            parse_message(
                b"rsync to PORTAL-PRODUCTS-RW/seedlinkplots/ from resifportal@resif-vm30.ujf-grenoble.fr (152.77.1.6)",
                &f
            ),
            Ok(Record::Request {
                request: Request::Push,
                module_path: b"PORTAL-PRODUCTS-RW/seedlinkplots/",
                user: Some(b"resifportal"),
                host: b"resif-vm30.ujf-grenoble.fr",
                addr: b"152.77.1.6"
            })
        );
        assert_eq!(
            parse_message(b"rsync on mirror/a from b (c).iso from UNKNOWN (2001:db8::1)", &f),
            Ok(Record::Request {
                request: Request::Pull,
                module_path: b"mirror/a from b (c).iso",
                user: None,
                host: b"UNKNOWN",
                addr: b"2001:db8::1"
            })
        );
        assert_eq!(
            parse_message(b"sent 184494 bytes  received 19414234 bytes  total size 19609565", &f),
            Ok(Record::Summary { sent: 184_494, received: 19_414_234, total: 19_609_565 })
        );
        assert_eq!(
            parse_message(
                b"auth failed on module team from UNDETERMINED (127.0.1.22) for frank: password mismatch",
                &f
            ),
            Ok(Record::AuthFailed {
                module: b"team",
                user: Some(b"frank"),
                reason: b"password mismatch",
                host: b"UNDETERMINED",
                addr: b"127.0.1.22"
            })
        );
        assert_eq!(
            parse_message(b"auth failed on module dbbak from h.example (::1): invalid challenge response", &f),
            Ok(Record::AuthFailed {
                module: b"dbbak",
                user: None,
                reason: b"invalid challenge response",
                host: b"h.example",
                addr: b"::1"
            })
        );
        assert_eq!(
            parse_message(
                b"rsync error: received SIGINT, SIGTERM, or SIGHUP (code 20) at io.c(1892) [generator=3.5.0]",
                &f
            ),
            Ok(Record::Error { code: 20 })
        );
        assert_eq!(parse_message(b"rsync denied on module restricted from U (127.99.0.7)", &f), Ok(Record::Refused));
        assert_eq!(parse_message(b"unknown module 'archive' tried from U (127.99.0.7)", &f), Ok(Record::Refused));
        assert_eq!(parse_message(b"building file list", &f), Ok(Record::Other));
        assert_eq!(parse_message(b"rsync: [sender] write error: Broken pipe (32)", &f), Ok(Record::Other));
        assert!(parse_message(b"complete nonsense", &f).is_err());
    }

    #[test]
    fn escapes_are_decoded() {
        // raw UTF-8 lead byte followed by an escaped continuation byte: Ü
        let mut raw = b"docs/".to_vec();
        raw.push(0xc3);
        raw.extend_from_slice(b"\\#234n");
        assert_eq!(unescape(&raw).as_ref(), "docs/\u{dc}n");
        assert_eq!(unescape(b"a\\#012b").as_ref(), "a\nb");
        assert_eq!(unescape(b"plain \\# text").as_ref(), "plain \\# text");
        // Plain ASCII, short and long, is the text itself, not copied;
        // so is valid UTF-8 without escapes, and anything else is lossy.
        for plain in [&b"tree/7/file.dat"[..], b"PORTAL-PRODUCTS-RW/tree/2024/015/some file name.dat"] {
            assert!(matches!(unescape(plain), Cow::Borrowed(t) if t.as_bytes() == plain));
        }
        let utf8 = "tree/2024/donn\u{e9}es/r\u{e9}sum\u{e9}.txt".as_bytes();
        assert!(matches!(unescape(utf8), Cow::Borrowed(t) if t.as_bytes() == utf8));
        assert_eq!(unescape(b"tree/2024/bad\xff/name/long.dat").as_ref(), "tree/2024/bad\u{fffd}/name/long.dat");
    }

    #[test]
    fn an_escape_is_seen_in_short_and_long_text() {
        for n in [0, 1, 30, 31, 32, 33, 100] {
            let plain = vec![b'a'; n];
            assert!(!escaped(&plain), "{n}");
            for at in 0..n.saturating_sub(1) {
                let mut b = plain.clone();
                b[at] = b'\\';
                assert!(!escaped(&b), "{n} {at}");
                b[at + 1] = b'#';
                assert!(escaped(&b), "{n} {at}");
            }
        }
        assert!(!escaped(b"\\"));
        assert!(!escaped(b"#\\"));
    }
}
