//! ProFTPD's SystemLog (`proftpd.log`) and mod_sftp's SFTPLog (`sftp.log`):
//! the login lines the TransferLog (xferlog) does not have.
//!
//! SystemLog: `2026-11-08 16:21:16,469 vm proftpd[26277] 127.0.0.1 (127.0.1.21[127.0.1.21]): USER erin: Login successful.`
//! SFTPLog:   `2026-11-08 16:21:21,219 mod_sftp/1.1.1[26291]: user 'grace' authenticated via 'password' method`.
//!
//! Time stamps are local (`--timezone`), with milliseconds after a comma.
//! SFTP/SCP logins succeed only in the SFTPLog; their failures are in both
//! logs, so only the SystemLog's are counted (reading both files never
//! counts an attempt twice).

pub mod decoder;

use crate::time::{parse_ymd_hms, Civil};

/// A classified ProFTPD line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// SystemLog `USER u: Login successful.` / `ANON u: Login successful.`
    LoginOk {
        /// User as logged (`ftp` for anonymous).
        user: &'a [u8],
        /// Anonymous login.
        anonymous: bool,
    },
    /// SystemLog `USER u (Login failed): reason`.
    LoginFailed {
        /// User.
        user: &'a [u8],
    },
    /// SystemLog `USER u: no such user found from …`.
    NoSuchUser {
        /// User.
        user: &'a [u8],
    },
    /// SFTPLog `client (ip:port) connected to server (…)`.
    SftpConnected {
        /// Client address with port.
        client: &'a [u8],
    },
    /// SFTPLog `user 'u' authenticated via 'm' method`.
    SftpAuthenticated {
        /// User.
        user: &'a [u8],
        /// Method.
        method: &'a [u8],
    },
    /// Anything else.
    Other,
}

/// A ProFTPD line split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// Local time.
    pub time: Civil,
    /// Host (SystemLog only).
    pub host: Option<&'a [u8]>,
    /// Process id.
    pub pid: u32,
    /// Client address (SystemLog `(name[ip])`).
    pub client: Option<&'a [u8]>,
    /// The message.
    pub message: Message<'a>,
}

fn parse_time(b: &[u8]) -> Option<Civil> {
    // `2026-11-08 16:21:16,469`
    let mut c = parse_ymd_hms(b)?;
    if b.get(19) != Some(&b',') || b[4] != b'-' {
        return None;
    }
    let ms = b.get(20..23)?;
    if !ms.iter().all(u8::is_ascii_digit) {
        return None;
    }
    c.micros = ((ms[0] - b'0') as u32 * 100 + (ms[1] - b'0') as u32 * 10 + (ms[2] - b'0') as u32) * 1000;
    Some(c)
}

fn between<'a>(b: &'a [u8], open: &[u8], close: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let s = memchr::memmem::find(b, open)? + open.len();
    let e = memchr::memmem::find(&b[s..], close)? + s;
    Some((&b[s..e], &b[e + close.len()..]))
}

/// Parses one SystemLog or SFTPLog line.
pub fn parse(line: &[u8]) -> Result<Line<'_>, &'static str> {
    let time = parse_time(line).ok_or("no ProFTPD time stamp (`2026-11-08 16:21:16,469`)")?;
    let rest = line.get(24..).ok_or("truncated ProFTPD line")?;
    if let Some(r) = rest.strip_prefix(b"mod_sftp/") {
        let (pid, msg) = between(r, b"[", b"]: ").ok_or("malformed SFTPLog line")?;
        let pid = crate::formats::prefix::parse_u32(pid).ok_or("bad pid")?;
        let message = if let Some(m) = msg.strip_prefix(b"user '") {
            match (between(m, b"", b"' authenticated via '"), m) {
                (Some((user, tail)), _) => {
                    let method = tail.strip_suffix(b"' method").unwrap_or(tail);
                    Message::SftpAuthenticated { user, method }
                }
                _ => Message::Other,
            }
        } else if let Some(m) = msg.strip_prefix(b"client (") {
            match memchr::memmem::find(m, b") connected to server") {
                Some(e) => Message::SftpConnected { client: &m[..e] },
                None => Message::Other,
            }
        } else {
            Message::Other
        };
        return Ok(Line { time, host: None, pid, client: None, message });
    }
    // `vm proftpd[26277] 127.0.0.1 (127.0.1.21[127.0.1.21]): msg` or `… 127.0.0.1: msg`
    let sp = memchr::memchr(b' ', rest).ok_or("malformed SystemLog line")?;
    let host = &rest[..sp];
    let r = rest[sp + 1..].strip_prefix(b"proftpd[").ok_or("not a proftpd line")?;
    let close = memchr::memchr(b']', r).ok_or("malformed SystemLog line")?;
    let pid = crate::formats::prefix::parse_u32(&r[..close]).ok_or("bad pid")?;
    let r = &r[close + 1..];
    let colon = memchr::memmem::find(r, b": ").ok_or("malformed SystemLog line")?;
    let head = &r[..colon];
    let msg = &r[colon + 2..];
    let client = between(head, b"[", b"])").map(|(c, _)| c);
    let message = if let Some(m) = msg.strip_prefix(b"USER ") {
        if let Some(u) = m.strip_suffix(b": Login successful.") {
            Message::LoginOk { user: u, anonymous: false }
        } else if let Some(i) = memchr::memmem::find(m, b" (Login failed)") {
            Message::LoginFailed { user: &m[..i] }
        } else if let Some(i) = memchr::memmem::find(m, b": no such user found") {
            Message::NoSuchUser { user: &m[..i] }
        } else {
            Message::Other
        }
    } else if let Some(m) = msg.strip_prefix(b"ANON ") {
        match m.strip_suffix(b": Login successful.") {
            Some(u) => Message::LoginOk { user: u, anonymous: true },
            None => Message::Other,
        }
    } else {
        Message::Other
    };
    Ok(Line { time, host: Some(host), pid, client, message })
}

/// The registry entry of the proftpd format.
pub const SPEC: crate::formats::Spec = crate::formats::Spec {
    name: "proftpd",
    description: "ProFTPD SystemLog (proftpd.log) and mod_sftp SFTPLog (sftp.log): logins",
    detect: crate::formats::Detect::Lines(|p| parse(p.line).is_ok()),
    stamp: |line, _, _, clock| {
        parse(line).ok().map(|l| crate::formats::Stamp { time: clock.local_to_utc(&l.time), host: l.host })
    },
    decoder: |_| Box::new(decoder::ProftpdDecoder::default()),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_and_sftp_log_lines() {
        let l = parse(b"2026-11-08 16:21:16,469 vm proftpd[26277] 127.0.0.1 (127.0.1.21[127.0.1.21]): USER erin: Login successful.").unwrap();
        assert_eq!((l.host, l.pid, l.client), (Some(&b"vm"[..]), 26277, Some(&b"127.0.1.21"[..])));
        assert_eq!(l.message, Message::LoginOk { user: b"erin", anonymous: false });
        assert_eq!(l.time.micros, 469_000);
        let l = parse(b"2026-11-08 16:21:16,882 vm proftpd[26279] 127.0.0.1 (127.0.1.50[127.0.1.50]): ANON ftp: Login successful.").unwrap();
        assert_eq!(l.message, Message::LoginOk { user: b"ftp", anonymous: true });
        let l = parse(b"2026-11-08 16:21:20,358 vm proftpd[26285] 127.0.0.1 (127.0.1.22[127.0.1.22]): USER frank (Login failed): Incorrect password").unwrap();
        assert_eq!(l.message, Message::LoginFailed { user: b"frank" });
        let l = parse(b"2026-11-08 16:21:20,763 vm proftpd[26287] 127.0.0.1 (127.99.0.7[127.99.0.7]): USER trent: no such user found from 127.99.0.7 [127.99.0.7] to 127.0.0.1:2121").unwrap();
        assert_eq!(l.message, Message::NoSuchUser { user: b"trent" });
        let l = parse(
            b"2026-11-08 16:21:15,382 vm proftpd[26274] 127.0.0.1: ProFTPD 1.3.8 (stable) standalone mode STARTUP",
        )
        .unwrap();
        assert_eq!((l.message, l.client), (Message::Other, None));
        let l =
            parse(b"2026-11-08 16:21:21,219 mod_sftp/1.1.1[26291]: user 'grace' authenticated via 'password' method")
                .unwrap();
        assert_eq!(l.message, Message::SftpAuthenticated { user: b"grace", method: b"password" });
        let l = parse(b"2026-11-08 16:21:21,170 mod_sftp/1.1.1[26291]: client (127.0.1.23:44221) connected to server (127.0.0.1:2200)").unwrap();
        assert_eq!(l.message, Message::SftpConnected { client: b"127.0.1.23:44221" });
        assert!(parse(b"Nov  8 16:21:21 vm sshd[1]: x").is_err());
    }
}
