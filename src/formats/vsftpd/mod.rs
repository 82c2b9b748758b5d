//! vsftpd's own log (`xferlog_std_format=NO`, `vsftpd.log`), with or without
//! `log_ftp_protocol=YES`:
//! `Sun Nov  8 21:15:06 2026 [pid 26356] [erin] OK UPLOAD: Client "127.0.1.21", "/path", 23456 bytes, 56005.50Kbyte/sec`.
//!
//! Traps (format notes §A4, §0 #16, and the sample README): the date is
//! ctime style (space-padded day) in local time; `[pid N]` is missing when
//! vsftpd logs to syslog; `, N bytes` is omitted when the size is 0; the
//! `[user]` tag is the typed name before login and `[ftp]` after an
//! anonymous login; non-ASCII bytes in paths became `?`; the client address
//! may be `::ffff:a.b.c.d`.

pub mod decoder;

use crate::formats::prefix::{parse_u32, parse_u64};
use crate::time::{month_from_abbr, num2, Civil};

/// What a vsftpd log line reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `CONNECT`.
    Connect,
    /// `LOGIN`.
    Login,
    /// `UPLOAD`.
    Upload,
    /// `DOWNLOAD`.
    Download,
    /// `DELETE`.
    Delete,
    /// Anything else (`MKDIR`, `RENAME`, `RMDIR`, `CHMOD`, `FTP command`,
    /// `FTP response`): nothing to count.
    Other,
}

/// One vsftpd log line, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsftpdLine<'a> {
    /// Local time.
    pub time: Civil,
    /// Process id, when logged to a file.
    pub pid: Option<u32>,
    /// The `[user]` tag.
    pub user: Option<&'a [u8]>,
    /// `Some(true)` for OK, `Some(false)` for FAIL, `None` without.
    pub ok: Option<bool>,
    /// What happened.
    pub action: Action,
    /// Client address as logged.
    pub client: &'a [u8],
    /// The quoted argument (path) after the client.
    pub path: Option<&'a [u8]>,
    /// `N bytes`, when logged.
    pub bytes: Option<u64>,
    /// An anonymous login (`anon password "…"` follows the client).
    pub anonymous: bool,
}

/// Parses the ctime-style date `Sun Nov  8 21:15:06 2026` (24 bytes).
pub fn parse_ctime(b: &[u8]) -> Option<Civil> {
    if b.len() < 24 || b[3] != b' ' || b[7] != b' ' || b[10] != b' ' || b[13] != b':' || b[16] != b':' || b[19] != b' '
    {
        return None;
    }
    let day = match (b[8], b[9]) {
        (b' ', d) => num2(&[b'0', d], 0)?,
        _ => num2(b, 8)?,
    };
    let c = Civil {
        year: parse_u32(&b[20..24])? as i32,
        month: month_from_abbr(&b[4..7])?,
        day,
        hour: num2(b, 11)?,
        min: num2(b, 14)?,
        sec: num2(b, 17)?,
        micros: 0,
    };
    c.valid().then_some(c)
}

fn quoted(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let b = b.strip_prefix(b"\"")?;
    // Paths cannot hold '"' unescaped in vsftpd's log; the value ends at the
    // last quote before `", ` or at the end of the line.
    let end = memchr::memmem::find(b, b"\", ").or_else(|| b.strip_suffix(b"\"").map(|v| v.len()))?;
    Some((&b[..end], &b[end + 1..]))
}

/// Parses one line; `Err` names what is wrong.
pub fn parse(line: &[u8]) -> Result<VsftpdLine<'_>, &'static str> {
    let time = parse_ctime(line).ok_or("no vsftpd date (`Sun Nov  8 21:15:06 2026`)")?;
    let mut rest = &line[24..];
    let mut pid = None;
    if let Some(r) = rest.strip_prefix(b" [pid ") {
        let close = memchr::memchr(b']', r).ok_or("unterminated [pid …]")?;
        pid = Some(parse_u32(&r[..close]).ok_or("bad pid")?);
        rest = &r[close + 1..];
    }
    let mut user = None;
    if let Some(r) = rest.strip_prefix(b" [") {
        let close = memchr::memmem::find(r, b"] ").ok_or("unterminated [user]")?;
        user = Some(&r[..close]);
        rest = &r[close + 1..];
    }
    let rest = rest.strip_prefix(b" ").ok_or("no message")?;
    let (ok, rest) = if let Some(r) = rest.strip_prefix(b"OK ") {
        (Some(true), r)
    } else if let Some(r) = rest.strip_prefix(b"FAIL ") {
        (Some(false), r)
    } else {
        (None, rest)
    };
    let colon = memchr::memmem::find(rest, b": Client \"").ok_or("no `: Client \"…\"`")?;
    let action = match &rest[..colon] {
        b"CONNECT" => Action::Connect,
        b"LOGIN" => Action::Login,
        b"UPLOAD" => Action::Upload,
        b"DOWNLOAD" => Action::Download,
        b"DELETE" => Action::Delete,
        _ => Action::Other,
    };
    let (client, mut rest) = quoted(&rest[colon + 9..]).ok_or("unterminated client address")?;
    let mut anonymous = false;
    let mut path = None;
    let mut bytes = None;
    while let Some(r) = rest.strip_prefix(b", ") {
        if let Some(r2) = r.strip_prefix(b"anon password ") {
            anonymous = true;
            rest = quoted(r2).map_or(&[][..], |(_, t)| t);
        } else if r.starts_with(b"\"") {
            let (p, t) = quoted(r).ok_or("unterminated path")?;
            path = Some(p);
            rest = t;
        } else {
            let end = memchr::memmem::find(r, b", ").unwrap_or(r.len());
            let item = &r[..end];
            if let Some(n) = item.strip_suffix(b" bytes") {
                bytes = Some(parse_u64(n).ok_or("byte count is not a number")?);
            }
            rest = &r[end..];
        }
    }
    Ok(VsftpdLine { time, pid, user, ok, action, client, path, bytes, anonymous })
}

/// Whether a line looks like vsftpd's own log (for format detection).
pub fn looks_like(line: &[u8]) -> bool {
    parse(line).is_ok()
}

/// The registry entry of the vsftpd format.
pub const SPEC: crate::formats::Spec = crate::formats::Spec {
    name: "vsftpd",
    description: "vsftpd's own log (xferlog_std_format=NO, with or without log_ftp_protocol=YES)",
    detect: crate::formats::Detect::Lines(|p| looks_like(p.line)),
    stamp: |line, _, _, clock| parse_ctime(line).map(|c| crate::formats::Stamp::at(clock.local_to_utc(&c))),
    decoder: |_| Box::new(decoder::VsftpdDecoder::default()),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_login_and_protocol_lines() {
        let l = parse(b"Sun Nov  8 21:15:06 2026 [pid 26356] [erin] OK UPLOAD: Client \"127.0.1.21\", \"/x/meeting notes 2026.md\", 23456 bytes, 56005.50Kbyte/sec").unwrap();
        assert_eq!((l.time.day, l.time.hour, l.pid), (8, 21, Some(26356)));
        assert_eq!((l.user, l.ok, l.action), (Some(&b"erin"[..]), Some(true), Action::Upload));
        assert_eq!((l.path, l.bytes), (Some(&b"/x/meeting notes 2026.md"[..]), Some(23456)));
        let l = parse(b"Sun Nov  8 21:15:06 2026 [pid 26358] [ftp] OK LOGIN: Client \"127.0.1.50\", anon password \"visitor@example.net\"").unwrap();
        assert!(l.anonymous);
        assert_eq!(l.action, Action::Login);
        let l = parse(b"Tue Nov  2 15:32:34 2021 [pid 2874] [audren] OK DOWNLOAD: Client \"::ffff:192.168.56.111\", \"/home/audren/ftp\", 0.00Kbyte/sec").unwrap();
        assert_eq!((l.bytes, l.client), (None, &b"::ffff:192.168.56.111"[..]));
        let l = parse(b"Sun Nov  8 21:15:06 2026 [pid 26355] FTP command: Client \"127.0.1.21\", \"FEAT\"").unwrap();
        assert_eq!((l.action, l.user, l.ok), (Action::Other, None, None));
        let l = parse(b"Mon Oct 25 12:39:25 2021 CONNECT: Client \"::ffff:192.168.56.1\"").unwrap();
        assert_eq!((l.action, l.pid), (Action::Connect, None));
        assert!(parse(b"Sun Nov  8 21:15:06 2026 [pid 1] [erin] OK UPLOAD Client").is_err());
        assert!(parse(b"garbage").is_err());
    }
}
