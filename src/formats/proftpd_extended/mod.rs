//! ProFTPD `ExtendedLog` lines written with a `LogFormat` (default
//! `%h %l %u %t "%r" %s %b`), compiled once from `--proftpd-log-format`.
//!
//! Only file transfers and deletions are read from it (`STOR`/`STOU`/`APPE`
//! upload, `RETR` download, `DELE` delete); logins come from the SystemLog,
//! so reading both logs never counts an attempt twice. Traps (sample
//! README): `%b` of a `DELE` is the deleted file's size; the user is `-`
//! before login and the real account (`ftp`) after an anonymous login; an
//! aborted FTP upload still gets status 226; legacy scp has status `-`;
//! non-transfer commands of the logged classes appear with `-` fields.

pub mod decoder;

use nom::{
    branch::alt,
    bytes::complete::{is_not, tag, take_until},
    character::complete::anychar,
    combinator::map,
    multi::many0,
    sequence::{delimited, preceded},
    IResult,
};

use crate::formats::prefix::parse_u64;
use crate::formats::template::{match_items, Item, Shape};
use crate::model::Micros;
use crate::time::{month_from_abbr, num2, parse_offset, parse_ymd_hms, Civil, Clock};

/// The default `LogFormat` of ProFTPD.
pub const DEFAULT_FORMAT: &str = r#"%h %l %u %t "%r" %s %b"#;

/// A `LogFormat` variable xferstats reads; the rest are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// `%a` client IP.
    RemoteIp,
    /// `%h` client host name.
    RemoteHost,
    /// `%u` user.
    User,
    /// `%t` `[08/Nov/2026:16:21:16 +0000]`.
    ClfTime,
    /// `%{iso8601}` `2026-11-08 16:21:16,470` (local).
    Iso8601,
    /// `%r` full command line.
    Request,
    /// `%m` command.
    Command,
    /// `%f` / `%F` file.
    File,
    /// `%s` response code.
    Status,
    /// `%b` bytes transferred.
    Bytes,
    /// `%{file-size}`.
    FileSize,
    /// `%{transfer-status}`.
    TransferStatus,
    /// `%T` transfer seconds.
    TransferTime,
    /// `%{protocol}`.
    Protocol,
    /// Anything else (one token).
    Skip,
    /// Anything else that may hold spaces (`%S`, `%J`).
    SkipText,
}

/// A compiled `LogFormat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedFormat {
    items: Vec<Item<Var>>,
}

/// One ExtendedLog line, borrowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtLine<'a> {
    /// Zoned time (UTC µs) from `%t`.
    pub utc: Option<i64>,
    /// Local time from `%{iso8601}`.
    pub local: Option<Civil>,
    /// Client address.
    pub ip: Option<&'a [u8]>,
    /// Client host name.
    pub host: Option<&'a [u8]>,
    /// User.
    pub user: Option<&'a [u8]>,
    /// FTP command.
    pub command: Option<&'a [u8]>,
    /// File.
    pub file: Option<&'a [u8]>,
    /// Response code.
    pub status: Option<&'a [u8]>,
    /// Bytes.
    pub bytes: Option<u64>,
    /// File size.
    pub file_size: Option<u64>,
    /// `success`, `failed`, `cancelled`, `timeout`.
    pub transfer_status: Option<&'a [u8]>,
    /// Seconds (fraction allowed).
    pub transfer_time: Option<&'a [u8]>,
    /// `ftp`, `ftps`, `sftp`, `scp`.
    pub protocol: Option<&'a [u8]>,
}

fn var(name: &str) -> (Var, Shape) {
    match name {
        "a" => (Var::RemoteIp, Shape::Token),
        "h" => (Var::RemoteHost, Shape::Token),
        "u" => (Var::User, Shape::Token),
        "t" => (Var::ClfTime, Shape::Fixed(28)),
        "iso8601" => (Var::Iso8601, Shape::Fixed(23)),
        "r" => (Var::Request, Shape::Spacey { trim: false }),
        "m" => (Var::Command, Shape::Token),
        "f" | "F" => (Var::File, Shape::Spacey { trim: false }),
        "s" => (Var::Status, Shape::Token),
        "b" => (Var::Bytes, Shape::Token),
        "file-size" => (Var::FileSize, Shape::Token),
        "transfer-status" => (Var::TransferStatus, Shape::Token),
        "T" => (Var::TransferTime, Shape::Token),
        "protocol" => (Var::Protocol, Shape::Token),
        "S" | "J" => (Var::SkipText, Shape::Spacey { trim: false }),
        _ => (Var::Skip, Shape::Token),
    }
}

enum Part<'a> {
    Lit(&'a str),
    Var(&'a str),
}

fn part(i: &str) -> IResult<&str, Part<'_>> {
    alt((
        map(delimited(tag("%{"), take_until("}"), tag("}")), Part::Var),
        map(
            preceded(tag("%"), anychar),
            |c| if c == '%' { Part::Lit("%") } else { Part::Var(&i[1..1 + c.len_utf8()]) },
        ),
        map(is_not("%"), Part::Lit),
    ))(i)
}

impl ExtLine<'_> {
    /// The line's UTC time: `%t`'s, else `%{iso8601}`'s read with `clock`.
    pub fn time(&self, clock: &mut Clock) -> Option<Micros> {
        match (self.utc, self.local) {
            (Some(t), _) => Some(t),
            (None, Some(c)) => Some(clock.local_to_utc(&c)),
            (None, None) => None,
        }
    }
}

impl ExtendedFormat {
    /// Compiles a ProFTPD `LogFormat` string.
    pub fn compile(format: &str) -> Result<ExtendedFormat, String> {
        let (rest, parts) = many0(part)(format).map_err(|e| format!("cannot parse: {e}"))?;
        if !rest.is_empty() {
            return Err(format!("cannot parse near '{rest}'"));
        }
        let mut items: Vec<Item<Var>> = Vec::new();
        for p in parts {
            match p {
                Part::Lit(l) => match items.last_mut() {
                    Some(Item::Lit(prev)) => prev.extend_from_slice(l.as_bytes()),
                    _ => items.push(Item::Lit(l.as_bytes().to_vec())),
                },
                Part::Var(v) => {
                    let (v, shape) = var(v);
                    items.push(Item::Field(v, shape));
                }
            }
        }
        let has = |want: &[Var]| items.iter().any(|it| matches!(it, Item::Field(v, _) if want.contains(v)));
        if !has(&[Var::ClfTime, Var::Iso8601]) {
            return Err("needs %t or %{iso8601} for the time".into());
        }
        if !has(&[Var::Request, Var::Command]) {
            return Err("needs %r or %m for the command".into());
        }
        if !has(&[Var::Bytes]) {
            return Err("needs %b for the byte count".into());
        }
        Ok(ExtendedFormat { items })
    }

    /// Matches one line; `None` when it does not fit the format.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Option<ExtLine<'a>> {
        let mut out = ExtLine::default();
        // Through `dyn`: one copy of the value handling, not one per place
        // the matcher stores a field (it is large; inlined it is slower).
        let store: &mut dyn FnMut(Var, &'a [u8]) -> Option<()> = &mut |v, val| {
            let dash = val == b"-";
            match v {
                Var::RemoteIp => out.ip = Some(val),
                Var::RemoteHost => out.host = Some(val),
                Var::User => out.user = Some(val),
                Var::ClfTime => out.utc = Some(clf_time(val)?),
                Var::Iso8601 => out.local = Some(iso_time(val)?),
                Var::Request => {
                    let sp = memchr::memchr(b' ', val).unwrap_or(val.len());
                    out.command = Some(&val[..sp]);
                    if sp < val.len() {
                        out.file = Some(&val[sp + 1..]);
                    }
                }
                Var::Command => out.command = Some(val),
                Var::File => {
                    if !dash {
                        out.file = Some(val)
                    }
                }
                Var::Status => out.status = Some(val),
                Var::Bytes => out.bytes = if dash { None } else { Some(parse_u64(val)?) },
                Var::FileSize => out.file_size = if dash { None } else { Some(parse_u64(val)?) },
                Var::TransferStatus => out.transfer_status = (!dash).then_some(val),
                Var::TransferTime => out.transfer_time = (!dash).then_some(val),
                Var::Protocol => out.protocol = Some(val),
                Var::Skip | Var::SkipText => {}
            }
            Some(())
        };
        match_items(&self.items, line, store)?;
        Some(out)
    }
}

/// `[08/Nov/2026:16:21:16 +0000]` → UTC µs.
fn clf_time(b: &[u8]) -> Option<i64> {
    if b.len() != 28 || b[0] != b'[' || b[27] != b']' || b[3] != b'/' || b[7] != b'/' || b[12] != b':' {
        return None;
    }
    let c = Civil {
        year: crate::formats::prefix::parse_u32(&b[8..12])? as i32,
        month: month_from_abbr(&b[4..7])?,
        day: num2(b, 1)?,
        hour: num2(b, 13)?,
        min: num2(b, 16)?,
        sec: num2(b, 19)?,
        micros: 0,
    };
    if !c.valid() {
        return None;
    }
    let off = parse_offset(&b[22..27])?;
    let days = crate::time::days_from_civil(c.year, c.month, c.day);
    Some((days * 86_400 + (c.hour * 3600 + c.min * 60 + c.sec) as i64 - off as i64) * 1_000_000)
}

/// `2026-11-08 16:21:16,470` (local).
fn iso_time(b: &[u8]) -> Option<Civil> {
    let mut c = parse_ymd_hms(b)?;
    if b.len() != 23 || b[19] != b',' {
        return None;
    }
    c.micros = (parse_u64(&b[20..23])? * 1000) as u32;
    Some(c)
}

/// The registry entry of the proftpd-extended format.
pub const SPEC: crate::formats::Spec = crate::formats::Spec {
    name: "proftpd-extended",
    description: "ProFTPD ExtendedLog with its LogFormat (--proftpd-log-format, default %h %l %u %t \"%r\" %s %b): \
                  STOR/RETR/APPE/DELE",
    detect: crate::formats::Detect::Lines(|p| p.templates.proftpd.parse(p.line).is_some()),
    stamp: |line, t, _, clock| t.proftpd.parse(line)?.time(clock).map(crate::formats::Stamp::at),
    decoder: |t| Box::new(decoder::ProftpdExtendedDecoder::new(t.proftpd.clone())),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_custom_formats() {
        let f = ExtendedFormat::compile(DEFAULT_FORMAT).unwrap();
        let l = f
            .parse(br#"127.0.1.21 UNKNOWN erin [08/Nov/2026:16:21:16 +0000] "STOR ftp 08f/meeting notes 2026.md" 226 23456"#)
            .unwrap();
        assert_eq!((l.command, l.file), (Some(&b"STOR"[..]), Some(&b"ftp 08f/meeting notes 2026.md"[..])));
        assert_eq!((l.status, l.bytes, l.user), (Some(&b"226"[..]), Some(23456), Some(&b"erin"[..])));
        assert_eq!(crate::time::rfc3339(l.utc.unwrap()), "2026-11-08T16:21:16Z");
        let l = f.parse(br#"127.0.1.22 UNKNOWN - [08/Nov/2026:16:21:20 +0000] "PASS (hidden)" 530 -"#).unwrap();
        assert_eq!((l.command, l.bytes), (Some(&b"PASS"[..]), None));
        let f =
            ExtendedFormat::compile(r#"%{iso8601} %a %u %{protocol} %m "%f" %{file-size} %b %{transfer-status} %T"#)
                .unwrap();
        let l = f
            .parse(br#"2026-11-08 16:21:27,693 127.0.1.21 erin ftp RETR "/home/erin/08f-backup 2026-11.tgz" - 14006990 failed 2.561"#)
            .unwrap();
        assert_eq!((l.command, l.file_size, l.bytes), (Some(&b"RETR"[..]), None, Some(14_006_990)));
        assert_eq!((l.transfer_status, l.protocol), (Some(&b"failed"[..]), Some(&b"ftp"[..])));
        assert_eq!(l.local.unwrap().micros, 693_000);
        assert!(ExtendedFormat::compile("%h %u").is_err());
        assert!(f.parse(b"garbage").is_none());
    }
}
