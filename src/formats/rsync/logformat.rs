//! rsyncd `log format` strings, compiled once and matched against messages.
//!
//! The daemon writes one line per file in the format given by `log format`
//! (default `%o %h [%a] %m (%u) %f %l`). File names contain spaces and `%u`
//! can be empty, so splitting on whitespace is wrong (trap #3 of the format
//! notes). Instead the compiled format is matched from both ends: fields of
//! known shape (tokens, numbers, fixed-width stamps) are taken from the left
//! up to the first free-text field (`%f`, `%n`, `%P`, `%L`), then from the
//! right, and what remains in the middle is the file name.

use nom::{
    branch::alt,
    bytes::complete::{is_not, tag, take_while},
    character::complete::{anychar, char, digit0},
    combinator::{map, opt},
    multi::many0,
    sequence::tuple,
    IResult,
};

use crate::formats::prefix::{has_byte, parse_u32, parse_u64};
use crate::formats::template::{self, match_items, trim_spaces, Shape};

/// The default rsyncd `log format`.
pub const DEFAULT_LOG_FORMAT: &str = "%o %h [%a] %m (%u) %f %l";

/// One `%x` escape of rsyncd.conf's `log format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// `%t` date and time `YYYY/MM/DD HH:MM:SS`.
    Time,
    /// `%p` pid.
    Pid,
    /// `%o` operation `send`/`recv`/`del.`.
    Op,
    /// `%h` remote host name.
    Host,
    /// `%a` remote address.
    Addr,
    /// `%m` module.
    Module,
    /// `%u` authenticated user (may be empty).
    User,
    /// `%f` file name (long form).
    File,
    /// `%n` file name (short form).
    Name,
    /// `%l` file length.
    Length,
    /// `%b` bytes transferred.
    Bytes,
    /// `%c` checksum bytes.
    ChecksumBytes,
    /// `%i` itemized changes (11 characters).
    Itemize,
    /// `%M` modification time `YYYY/MM/DD-HH:MM:SS`.
    Mtime,
    /// `%B` permission bits (9 characters).
    Perms,
    /// `%U` uid.
    Uid,
    /// `%G` gid.
    Gid,
    /// `%L` ` -> symlink` / ` => hardlink` or empty.
    Link,
    /// `%P` module path.
    ModPath,
    /// `%C` full-file checksum.
    FullChecksum,
}

impl Escape {
    fn from_char(c: char) -> Option<Escape> {
        Some(match c {
            't' => Escape::Time,
            'p' => Escape::Pid,
            'o' => Escape::Op,
            'h' => Escape::Host,
            'a' => Escape::Addr,
            'm' => Escape::Module,
            'u' => Escape::User,
            'f' => Escape::File,
            'n' => Escape::Name,
            'l' => Escape::Length,
            'b' => Escape::Bytes,
            'c' => Escape::ChecksumBytes,
            'i' => Escape::Itemize,
            'M' => Escape::Mtime,
            'B' => Escape::Perms,
            'U' => Escape::Uid,
            'G' => Escape::Gid,
            'L' => Escape::Link,
            'P' => Escape::ModPath,
            'C' => Escape::FullChecksum,
            _ => return None,
        })
    }

    /// Free text that may contain spaces.
    fn spacey(self) -> bool {
        matches!(self, Escape::File | Escape::Name | Escape::Link | Escape::ModPath)
    }

    /// Width of fixed-size escapes.
    fn fixed_width(self) -> Option<usize> {
        match self {
            Escape::Time | Escape::Mtime => Some(19),
            Escape::Itemize => Some(11),
            Escape::Perms => Some(9),
            _ => None,
        }
    }
}

/// A compiled field: the escape plus its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Which escape.
    pub escape: Escape,
    /// Minimum width, padded with spaces.
    pub width: Option<usize>,
    /// `-`: left-aligned (padding after the value).
    pub left: bool,
    /// Apostrophes: 1 = thousands separators, 2 = K/M/G in 1000s, 3 = in 1024s.
    pub human: u8,
}

impl Field {
    /// How the matcher delimits its value.
    fn shape(&self) -> Shape {
        let trim = self.width.is_some();
        match (self.escape, self.escape.fixed_width(), self.width) {
            (_, Some(w), _) => Shape::Fixed(w),
            (Escape::Link, ..) => Shape::Marked { trim, marks: &[b" -> ", b" => "] },
            (e, ..) if e.spacey() => Shape::Spacey { trim },
            (_, None, Some(width)) => Shape::Padded { width, left: self.left },
            (_, None, None) => Shape::Token,
        }
    }
}

type Item = template::Item<Field>;

/// A `log format` compiled for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    source: String,
    items: Vec<Item>,
    /// A byte of the format's literals that is neither a space nor a
    /// letter or digit, when there is one ([`marker`]).
    marker: Option<u8>,
}

/// The first byte of `items`' literals that is neither a space nor a
/// letter or digit (`[` of the default format). Every literal of a format
/// is matched exactly in a line it parses, so a message without that byte
/// is no line of the format: the daemon's other messages (`rsync allowed
/// access …`, `building file list`, two of every connection's five lines)
/// are told so by one `memchr` instead of a match of the format's fields.
fn marker(items: &[Item]) -> Option<u8> {
    items
        .iter()
        .filter_map(|it| match it {
            Item::Lit(l) => Some(l),
            Item::Field(..) => None,
        })
        .flatten()
        .copied()
        .find(|c| !c.is_ascii_alphanumeric() && *c != b' ')
}

/// Values of one per-file line, borrowed from the message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileLine<'a> {
    /// `%o`.
    pub op: Option<&'a [u8]>,
    /// `%h`.
    pub host: Option<&'a [u8]>,
    /// `%a`.
    pub addr: Option<&'a [u8]>,
    /// `%m`.
    pub module: Option<&'a [u8]>,
    /// `%u` (empty when anonymous).
    pub user: Option<&'a [u8]>,
    /// `%f` (or `%n` when the format has no `%f`).
    pub file: Option<&'a [u8]>,
    /// `%l`.
    pub length: Option<u64>,
    /// `%b`.
    pub bytes: Option<u64>,
    /// `%i`.
    pub itemize: Option<&'a [u8]>,
    /// `%p`.
    pub pid: Option<u32>,
}

type PResult<'a, T> = IResult<&'a str, T>;

fn escape(i: &str) -> PResult<'_, Result<Item, String>> {
    map(
        tuple((char('%'), opt(char('-')), take_while(|c| c == '\''), digit0, take_while(|c| c == '\''), anychar)),
        |(_, left, q1, width, q2, c): (char, Option<char>, &str, &str, &str, char)| {
            if c == '%' {
                return Ok(Item::Lit(b"%".to_vec()));
            }
            let escape = Escape::from_char(c).ok_or_else(|| format!("unknown escape %{c}"))?;
            let f = Field {
                escape,
                width: width.parse().ok(),
                left: left.is_some(),
                human: (q1.len() + q2.len()).min(3) as u8,
            };
            Ok(Item::Field(f, f.shape()))
        },
    )(i)
}

fn literal(i: &str) -> PResult<'_, Result<Item, String>> {
    map(is_not("%"), |s: &str| Ok(Item::Lit(s.as_bytes().to_vec())))(i)
}

fn trailing_percent(i: &str) -> PResult<'_, Result<Item, String>> {
    map(tag("%"), |_| Err("a lone % at the end".to_string()))(i)
}

impl LogFormat {
    /// Compiles an rsyncd.conf `log format` string.
    ///
    /// ```
    /// use xferstats::formats::rsync::{LogFormat, DEFAULT_LOG_FORMAT};
    ///
    /// let f = LogFormat::compile(DEFAULT_LOG_FORMAT)?;
    /// let line = f.parse(b"send host.example [2001:db8::7] pub () dir/my file.iso 734003200").unwrap();
    /// assert_eq!(line.file, Some(&b"dir/my file.iso"[..]));
    /// assert_eq!(line.length, Some(734_003_200));
    /// assert_eq!(line.user, Some(&b""[..])); // anonymous module
    /// # Ok::<(), String>(())
    /// ```
    pub fn compile(format: &str) -> Result<LogFormat, String> {
        let (rest, parts) =
            many0(alt((escape, literal, trailing_percent)))(format).map_err(|e| format!("cannot parse: {e}"))?;
        if !rest.is_empty() {
            return Err(format!("cannot parse near '{rest}'"));
        }
        let mut items: Vec<Item> = Vec::new();
        for p in parts {
            match p? {
                Item::Lit(l) => match items.last_mut() {
                    Some(Item::Lit(prev)) => prev.extend_from_slice(&l),
                    _ => items.push(Item::Lit(l)),
                },
                f => items.push(f),
            }
        }
        let has = |e: Escape| items.iter().any(|it| matches!(it, Item::Field(f, _) if f.escape == e));
        if !has(Escape::File) && !has(Escape::Name) {
            return Err("needs %f or %n: a transfer line without a file name cannot be counted".into());
        }
        if !has(Escape::Op) && !has(Escape::Itemize) {
            return Err("needs %o or %i to tell uploads from downloads".into());
        }
        if !has(Escape::Length) && !has(Escape::Bytes) {
            return Err("needs %l or %b for the byte count".into());
        }
        // Two free-text fields need a literal between them to be told apart.
        for w in items.windows(2) {
            if w[0].spacey() && w[1].spacey() && !matches!(w[1], Item::Field(f, _) if f.escape == Escape::Link) {
                return Err("two file-name escapes with nothing between them".into());
            }
        }
        Ok(LogFormat { source: format.to_string(), marker: marker(&items), items })
    }

    /// The format string this was compiled from.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the format carries `%i` (then directories, symlinks and
    /// attribute-only changes are logged too and must be told apart).
    pub fn has_itemize(&self) -> bool {
        self.items.iter().any(|it| matches!(it, Item::Field(f, _) if f.escape == Escape::Itemize))
    }

    /// Matches a message against the format; `None` when it does not fit.
    #[inline]
    pub fn parse<'a>(&self, msg: &'a [u8]) -> Option<FileLine<'a>> {
        if self.marker.is_some_and(|m| !has_byte(m, msg)) {
            return None;
        }
        let mut out = FileLine::default();
        match_items(&self.items, msg, |f, v| store(&mut out, &f, v))?;
        Some(out)
    }
}

/// Parses a number written with `%l`/`%b` and their human-readable
/// modifiers (`1,234`, `1.234`, `1.21G`).
pub fn parse_number(v: &[u8], human: u8) -> Option<u64> {
    if human == 0 {
        return parse_u64(v);
    }
    if let Some(n) = parse_u64(v) {
        return Some(n);
    }
    if human == 1 {
        let mut n: u64 = 0;
        let mut any = false;
        for &c in v {
            match c {
                b'0'..=b'9' => {
                    n = n.checked_mul(10)?.checked_add((c - b'0') as u64)?;
                    any = true;
                }
                b',' | b'.' | b'\'' | b' ' => {}
                _ => return None,
            }
        }
        return any.then_some(n);
    }
    let (num, unit) = match v.last()? {
        c @ (b'K' | b'M' | b'G' | b'T' | b'P') => (&v[..v.len() - 1], *c),
        _ => (v, b' '),
    };
    let base: f64 = if human >= 3 { 1024.0 } else { 1000.0 };
    let mult = match unit {
        b'K' => base,
        b'M' => base.powi(2),
        b'G' => base.powi(3),
        b'T' => base.powi(4),
        b'P' => base.powi(5),
        _ => 1.0,
    };
    let s = std::str::from_utf8(num).ok()?.replace(',', ".");
    let x: f64 = s.parse().ok()?;
    Some((x * mult).round() as u64)
}

fn store<'a>(out: &mut FileLine<'a>, f: &Field, v: &'a [u8]) -> Option<()> {
    match f.escape {
        Escape::Op => out.op = Some(v),
        Escape::Host => out.host = Some(v),
        Escape::Addr => out.addr = Some(v),
        Escape::Module => out.module = Some(v),
        Escape::User => out.user = Some(v),
        Escape::File => out.file = Some(v),
        Escape::Name => {
            if out.file.is_none() {
                out.file = Some(v)
            }
        }
        Escape::Length => out.length = Some(parse_number(v, f.human)?),
        Escape::Bytes => out.bytes = Some(parse_number(v, f.human)?),
        Escape::ChecksumBytes | Escape::Uid | Escape::Gid => {
            if v != b"DEFAULT" {
                parse_number(v, f.human)?;
            }
        }
        Escape::Itemize => out.itemize = Some(v),
        Escape::Pid => out.pid = Some(parse_u32(trim_spaces(v))?),
        Escape::Time | Escape::Mtime | Escape::Perms | Escape::Link | Escape::ModPath | Escape::FullChecksum => {}
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_format_with_spaces_and_empty_user() {
        let f = LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap();
        let l = f.parse(b"send UNDETERMINED [127.0.1.50] mirror () docs/Budget 2027 (v3).xlsx 1567890").unwrap();
        assert_eq!(l.op, Some(&b"send"[..]));
        assert_eq!(l.host, Some(&b"UNDETERMINED"[..]));
        assert_eq!(l.addr, Some(&b"127.0.1.50"[..]));
        assert_eq!(l.module, Some(&b"mirror"[..]));
        assert_eq!(l.user, Some(&b""[..]));
        assert_eq!(l.file, Some(&b"docs/Budget 2027 (v3).xlsx"[..]));
        assert_eq!(l.length, Some(1_567_890));
        let l = f.parse(b"recv host.example [2001:db8::7] team (erin) a b  c 12").unwrap();
        assert_eq!(l.addr, Some(&b"2001:db8::7"[..]));
        assert_eq!(l.file, Some(&b"a b  c"[..]));
        assert!(f.parse(b"building file list").is_none());
        assert!(f.parse(b"send h [a] m (u) file notanumber").is_none());
    }

    #[test]
    fn custom_format_with_itemize() {
        let f = LogFormat::compile("%t %a %h %o %m %u %f %l %b %i").unwrap();
        assert!(f.has_itemize());
        let l = f
            .parse(b"2026/11/08 08:58:03 127.0.1.52 UNDETERMINED del. drop  tree-08b/sub/logo.svg 0 0 *deleting  ")
            .unwrap();
        assert_eq!(l.op, Some(&b"del."[..]));
        assert_eq!(l.user, Some(&b""[..]));
        assert_eq!(l.file, Some(&b"tree-08b/sub/logo.svg"[..]));
        assert_eq!(l.itemize, Some(&b"*deleting  "[..]));
        let l = f
            .parse(b"2026/11/09 10:05:47 127.0.1.21 UNDETERMINED recv team erin delta-09b/metrics.json 227333 6741 >f.st......")
            .unwrap();
        assert_eq!((l.length, l.bytes), (Some(227_333), Some(6741)));
        assert_eq!(l.user, Some(&b"erin"[..]));
    }

    #[test]
    fn widths_separators_and_percent() {
        let f = LogFormat::compile("%o %-10u|%'b|%''l %%%n%L").unwrap();
        let l = f.parse(b"send bob       |1,234,567|1.21G %dir/a b -> target").unwrap();
        assert_eq!(l.user, Some(&b"bob"[..]));
        assert_eq!(l.bytes, Some(1_234_567));
        assert_eq!(l.length, Some(1_210_000_000));
        assert_eq!(l.file, Some(&b"dir/a b"[..]));
        let f = LogFormat::compile("%i %n%L %8b").unwrap();
        let l = f.parse(b">f+++++++++ x y      123").unwrap();
        assert_eq!(l.file, Some(&b"x y"[..]));
        assert_eq!(l.bytes, Some(123));
    }

    #[test]
    fn a_message_without_the_marker_byte_is_no_line_of_the_format() {
        assert_eq!(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap().marker, Some(b'['));
        assert_eq!(LogFormat::compile("%t %a %h %o %m %u %f %l %b %i").unwrap().marker, None);
        assert_eq!(LogFormat::compile("%o %-10u|%'b|%''l %%%n%L").unwrap().marker, Some(b'|'));
        let formats =
            [DEFAULT_LOG_FORMAT, "%o %-10u|%'b|%''l %%%n%L", "%i %n%L %8b", "%o %h (%a) %f %l", "%o:%f:%l", "%o %f %l"];
        let messages: &[&[u8]] = &[
            b"send UNDETERMINED [127.0.1.50] mirror () docs/Budget 2027 (v3).xlsx 1567890",
            b"send UNDETERMINED 127.0.1.50] mirror () docs/x 1",
            b"send h [a mirror (u) f 1",
            b"rsync allowed access on module mirror from h (127.0.0.1)",
            b"building file list",
            b"receiving file list",
            b"send bob       |1,234,567|1.21G %dir/a b -> target",
            b"send bob |1|1 %dir",
            b">f+++++++++ x y      123",
            b"send h (a) f 12",
            b"send:f:12",
            b"send f 12",
            b"",
        ];
        for source in formats {
            let f = LogFormat::compile(source).unwrap();
            let unmarked = LogFormat { marker: None, ..f.clone() };
            for msg in messages {
                assert_eq!(f.parse(msg), unmarked.parse(msg), "{source} {}", String::from_utf8_lossy(msg));
            }
        }
    }

    #[test]
    fn rejects_unusable_formats() {
        assert!(LogFormat::compile("%o %h").is_err());
        assert!(LogFormat::compile("%f %l").is_err());
        assert!(LogFormat::compile("%o %f %q").is_err());
        assert!(LogFormat::compile("%o %f %l %").is_err());
        assert!(LogFormat::compile("%o %f%n %l").is_err());
    }
}
