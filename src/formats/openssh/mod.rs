//! OpenSSH: `sftp-server` / `internal-sftp` transaction lines (at `-l INFO`
//! or `VERBOSE`) and the sshd authentication lines around them. Pure
//! functions from a syslog message to a [`Message`]; joining an SFTP
//! session's lines by (host, program, pid) is [`crate::formats::openssh::decoder`].
//!
//! Traps (format notes §A2, §0 #11–13): sftp-server logs nothing at its
//! default level; the `close` line has no user or address (join on the pid
//! with `session opened for local user U from [IP]`); `bytes read` is a
//! download and `bytes written` an upload; `forced close` means the session
//! ended with the file open (interrupted); paths are `strnvis`-escaped
//! (`\303\251`, `\n`); the program is `sftp-server` or `internal-sftp`;
//! sshd `Accepted …` lines come from another pid than the SFTP child.

pub mod decoder;

use std::borrow::Cow;

/// One OpenSSH message, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// sftp: `session opened for local user U from [IP]`.
    SessionOpened {
        /// Local user.
        user: &'a [u8],
        /// Client address (or `UNKNOWN`).
        addr: &'a [u8],
    },
    /// sftp: `session closed for local user U from [IP]`.
    SessionClosed,
    /// sftp: `open "P" flags F mode M`.
    Open {
        /// Escaped path.
        path: &'a [u8],
    },
    /// sftp: `[forced ]close "P" bytes read R written W`.
    Close {
        /// Escaped path.
        path: &'a [u8],
        /// Bytes the client read (download).
        read: u64,
        /// Bytes the client wrote (upload).
        written: u64,
        /// `forced close`: the session ended with the file open.
        forced: bool,
    },
    /// sftp: `remove name "P"`.
    Remove {
        /// Escaped path.
        path: &'a [u8],
    },
    /// sshd: `Accepted METHOD for USER from IP port N ssh2…`.
    Accepted {
        /// Method (`password`, `publickey`, `keyboard-interactive/pam`, …).
        method: &'a [u8],
        /// User.
        user: &'a [u8],
        /// Client address.
        addr: &'a [u8],
    },
    /// sshd: `Failed METHOD for [invalid user ]USER from IP port N ssh2`,
    /// `repeat` times (`message repeated N times: [ … ]`).
    Failed {
        /// Method.
        method: &'a [u8],
        /// User.
        user: &'a [u8],
        /// Client address.
        addr: &'a [u8],
        /// The user does not exist.
        invalid: bool,
        /// Attempts this line stands for.
        repeat: u32,
    },
    /// PAM `session opened for user U(uid=…)`: a login succeeded (the time
    /// anchor for an `Accepted` line of an sshd `-E` file).
    PamSessionOpened {
        /// User.
        user: &'a [u8],
    },
    /// PAM `authentication failure; … rhost=IP [user=U]` or `PAM N more
    /// authentication failures; …`: `count` failed attempts (the time anchor
    /// for `Failed` lines of an sshd `-E` file).
    PamAuthFailure {
        /// User, absent for unknown users.
        user: Option<&'a [u8]>,
        /// Client address.
        rhost: &'a [u8],
        /// Attempts.
        count: u32,
    },
    /// A line of these programs with nothing to count (disconnects,
    /// VERBOSE noise, `sent status`, rename, mkdir, …).
    Other,
}

fn pam_field<'a>(msg: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = memchr::memmem::find(msg, key)? + key.len();
    let rest = &msg[at..];
    let end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|v| !v.is_empty())
}

fn quoted(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let b = b.strip_prefix(b"\"")?;
    // strnvis escapes '"' inside names as \", so the closing quote is the
    // first '"' not preceded by a backslash.
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some((&b[..i], &b[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Classifies a message of `sftp-server`/`internal-sftp`.
pub fn parse_sftp(msg: &[u8]) -> Result<Message<'_>, &'static str> {
    if let Some(r) = msg.strip_prefix(b"session opened for local user ") {
        let sp = memchr::memmem::find(r, b" from [").ok_or("malformed 'session opened' line")?;
        let addr = r[sp + 7..].strip_suffix(b"]").ok_or("malformed 'session opened' line")?;
        return Ok(Message::SessionOpened { user: &r[..sp], addr });
    }
    if msg.starts_with(b"session closed for local user ") {
        return Ok(Message::SessionClosed);
    }
    if let Some(r) = msg.strip_prefix(b"open ") {
        let (path, _) = quoted(r).ok_or("malformed 'open' line")?;
        return Ok(Message::Open { path });
    }
    let (forced, r) = match msg.strip_prefix(b"forced close ") {
        Some(r) => (true, Some(r)),
        None => (false, msg.strip_prefix(b"close ")),
    };
    if let Some(r) = r {
        let (path, rest) = quoted(r).ok_or("malformed 'close' line")?;
        let rest = rest.strip_prefix(b" bytes read ").ok_or("malformed 'close' line")?;
        let sp = memchr::memmem::find(rest, b" written ").ok_or("malformed 'close' line")?;
        let read = crate::formats::prefix::parse_u64(&rest[..sp]).ok_or("bad 'bytes read'")?;
        let written = crate::formats::prefix::parse_u64(rest[sp + 9..].trim_ascii_end()).ok_or("bad 'written'")?;
        return Ok(Message::Close { path, read, written, forced });
    }
    if let Some(r) = msg.strip_prefix(b"remove name ") {
        let (path, _) = quoted(r).ok_or("malformed 'remove' line")?;
        return Ok(Message::Remove { path });
    }
    Ok(Message::Other)
}

/// Splits `USER from IP port N…` (the user may hold spaces for invalid
/// users, so the address is found from the right).
fn user_from(r: &[u8]) -> Option<(&[u8], &[u8])> {
    let from = memchr::memmem::rfind(r, b" from ")?;
    let user = &r[..from];
    let rest = &r[from + 6..];
    let port = memchr::memmem::find(rest, b" port ")?;
    Some((user, &rest[..port]))
}

/// Most attempts one line may stand for (`message repeated N times`, `PAM
/// N more authentication failures`). Real counts stay far below (sshd's
/// `MaxAuthTries` is 6 by default); a larger one is a damaged or forged
/// line, rejected rather than expanded into that many events.
pub const MAX_REPEAT: u32 = 1000;

/// Classifies a message of `sshd` (or `sshd-session`).
pub fn parse_sshd(msg: &[u8]) -> Result<Message<'_>, &'static str> {
    let (repeat, msg) = match msg.strip_prefix(b"message repeated ") {
        Some(r) => {
            let sp = memchr::memchr(b' ', r).ok_or("malformed 'message repeated'")?;
            let n = crate::formats::prefix::parse_u32(&r[..sp]).ok_or("malformed 'message repeated'")?;
            if n > MAX_REPEAT {
                return Err("implausible 'message repeated' count");
            }
            let inner = memchr::memmem::find(r, b"[ ").map(|i| &r[i + 2..]).ok_or("malformed 'message repeated'")?;
            let inner = inner.trim_ascii_end();
            (n, inner.strip_suffix(b"]").unwrap_or(inner).trim_ascii_end())
        }
        None => (1, msg),
    };
    if let Some(r) = msg.strip_prefix(b"Accepted ") {
        let sp = memchr::memmem::find(r, b" for ").ok_or("malformed 'Accepted' line")?;
        let (user, addr) = user_from(&r[sp + 5..]).ok_or("malformed 'Accepted' line")?;
        return Ok(Message::Accepted { method: &r[..sp], user, addr });
    }
    if let Some(r) = msg.strip_prefix(b"pam_unix(sshd:session): session opened for user ") {
        let end = memchr::memchr(b'(', r).unwrap_or(r.len());
        return Ok(Message::PamSessionOpened { user: &r[..end] });
    }
    if msg.starts_with(b"pam_unix(sshd:auth): authentication failure;") {
        let rhost = pam_field(msg, b" rhost=").unwrap_or(b"");
        return Ok(Message::PamAuthFailure { user: pam_field(msg, b" user="), rhost, count: 1 });
    }
    if let Some(r) = msg.strip_prefix(b"PAM ") {
        if let Some(sp) = memchr::memmem::find(r, b" more authentication failure") {
            let count = crate::formats::prefix::parse_u32(&r[..sp]).unwrap_or(1);
            if count > MAX_REPEAT {
                return Err("implausible 'PAM N more authentication failures' count");
            }
            let rhost = pam_field(msg, b" rhost=").unwrap_or(b"");
            return Ok(Message::PamAuthFailure { user: pam_field(msg, b" user="), rhost, count });
        }
    }
    if let Some(r) = msg.strip_prefix(b"Failed ") {
        let Some(sp) = memchr::memmem::find(r, b" for ") else { return Ok(Message::Other) };
        let (mut user, addr) = user_from(&r[sp + 5..]).ok_or("malformed 'Failed' line")?;
        let invalid = user.starts_with(b"invalid user ");
        if invalid {
            user = &user[13..];
        }
        return Ok(Message::Failed { method: &r[..sp], user, addr, invalid, repeat });
    }
    Ok(Message::Other)
}

/// Decodes `strnvis` escapes (`\ooo` octal, `\n`, `\t`, `\\`, `\"`) into
/// UTF-8 (invalid sequences become U+FFFD).
pub fn unvis(b: &[u8]) -> Cow<'_, str> {
    if memchr::memchr(b'\\', b).is_none() {
        return String::from_utf8_lossy(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let n = &b[i + 1..];
            if n.len() >= 3 && n[..3].iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (n[0] - b'0') as u32 * 64 + (n[1] - b'0') as u32 * 8 + (n[2] - b'0') as u32;
                if v <= 255 {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
            let c = match n[0] {
                b'n' => Some(b'\n'),
                b't' => Some(b'\t'),
                b'r' => Some(b'\r'),
                b'\\' => Some(b'\\'),
                b'"' => Some(b'"'),
                b's' => Some(b' '),
                _ => None,
            };
            if let Some(c) = c {
                out.push(c);
                i += 2;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Strips the `sshd[pid]: ` / `sshd-session[pid]: ` tag some OpenSSH
/// versions write at the start of `-E` file lines.
pub fn strip_untimed_tag(line: &[u8]) -> &[u8] {
    for prog in [&b"sshd["[..], b"sshd-session["] {
        if let Some(r) = line.strip_prefix(prog) {
            if let Some(close) = memchr::memmem::find(r, b"]: ") {
                if r[..close].iter().all(u8::is_ascii_digit) {
                    return &r[close + 3..];
                }
            }
        }
    }
    line
}

/// Whether a line looks like one of an sshd `-E` file (no time stamp).
pub fn looks_like_untimed(line: &[u8]) -> bool {
    let line = strip_untimed_tag(line);
    const STARTS: &[&[u8]] = &[
        b"Server listening on ",
        b"Accepted ",
        b"Failed password for ",
        b"Failed publickey for ",
        b"Failed keyboard-interactive",
        b"Invalid user ",
        b"Connection from ",
        b"Connection closed by ",
        b"Received disconnect from ",
        b"Disconnected from ",
        b"Received signal ",
    ];
    STARTS.iter().any(|s| line.starts_with(s))
}

/// Whether a program name is OpenSSH's (for routing and detection).
pub fn is_openssh_program(p: &[u8]) -> bool {
    matches!(p, b"sshd" | b"sshd-session" | b"sftp-server" | b"internal-sftp")
}

/// The registry entry of the openssh format.
pub const SPEC: crate::formats::Spec = crate::formats::Spec {
    name: "openssh",
    description: "OpenSSH sftp-server/internal-sftp (-l INFO/VERBOSE) and sshd logins in syslog (auth.log), \
                  BSD or RFC 3339 time stamps",
    detect: crate::formats::Detect::Lines(|p| {
        looks_like_untimed(p.line) || p.prefix().and_then(|x| x.program).is_some_and(is_openssh_program)
    }),
    stamp: crate::formats::prefix::stamp,
    decoder: |_| Box::new(decoder::OpensshDecoder::default()),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sftp_lines() {
        assert_eq!(
            parse_sftp(b"session opened for local user erin from [127.0.1.21]"),
            Ok(Message::SessionOpened { user: b"erin", addr: b"127.0.1.21" })
        );
        assert_eq!(
            parse_sftp(br#"close "/a b/\303\251.bin" bytes read 0 written 65432"#),
            Ok(Message::Close { path: br"/a b/\303\251.bin", read: 0, written: 65432, forced: false })
        );
        assert_eq!(
            parse_sftp(br#"forced close "/p.img" bytes read 0 written 2872320"#),
            Ok(Message::Close { path: b"/p.img", read: 0, written: 2_872_320, forced: true })
        );
        assert_eq!(parse_sftp(br#"remove name "/x""#), Ok(Message::Remove { path: b"/x" }));
        assert_eq!(parse_sftp(b"sent status No such file"), Ok(Message::Other));
        assert_eq!(unvis(br"/a/\303\234n\303\257c.bin").as_ref(), "/a/Ünïc.bin");
        assert_eq!(unvis(br"a\nb\\c").as_ref(), "a\nb\\c");
    }

    #[test]
    fn sshd_lines() {
        assert_eq!(
            parse_sshd(b"Accepted publickey for bob from 203.0.113.7 port 51234 ssh2: ED25519 SHA256:abc"),
            Ok(Message::Accepted { method: b"publickey", user: b"bob", addr: b"203.0.113.7" })
        );
        assert_eq!(
            parse_sshd(b"Failed password for invalid user admin from 2001:db8::9 port 40022 ssh2"),
            Ok(Message::Failed { method: b"password", user: b"admin", addr: b"2001:db8::9", invalid: true, repeat: 1 })
        );
        assert_eq!(
            parse_sshd(b"message repeated 2 times: [ Failed password for grace from 127.0.1.23 port 35645 ssh2]"),
            Ok(Message::Failed { method: b"password", user: b"grace", addr: b"127.0.1.23", invalid: false, repeat: 2 })
        );
        assert_eq!(parse_sshd(b"Invalid user trent from 127.99.0.7 port 55913"), Ok(Message::Other));
        assert_eq!(
            strip_untimed_tag(b"sshd[123]: Accepted password for a from ::1 port 2 ssh2"),
            b"Accepted password for a from ::1 port 2 ssh2"
        );
        assert_eq!(strip_untimed_tag(b"sshd-session[9]: Failed x"), b"Failed x");
        assert!(looks_like_untimed(b"sshd[123]: Server listening on :: port 22."));
        assert_eq!(
            parse_sshd(b"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=127.0.1.23  user=grace"),
            Ok(Message::PamAuthFailure { user: Some(b"grace"), rhost: b"127.0.1.23", count: 1 })
        );
        assert_eq!(
            parse_sshd(b"PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=127.0.1.23  user=grace"),
            Ok(Message::PamAuthFailure { user: Some(b"grace"), rhost: b"127.0.1.23", count: 2 })
        );
        assert_eq!(
            parse_sshd(b"pam_unix(sshd:session): session opened for user erin(uid=1001) by (uid=0)"),
            Ok(Message::PamSessionOpened { user: b"erin" })
        );
    }

    /// Fuzzing found: a forged count made the decoder expand one line into
    /// four billion attempts (minutes of CPU, or events until memory ran
    /// out). Counts above [`MAX_REPEAT`] reject the line.
    #[test]
    fn implausible_repeat_counts_are_rejected() {
        let failed =
            |n: u32| format!("message repeated {n} times: [ Failed password for a from 192.0.2.5 port 1 ssh2]");
        let pam = |n: u32| {
            format!(
                "PAM {n} more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.5  user=a"
            )
        };
        assert!(matches!(parse_sshd(failed(MAX_REPEAT).as_bytes()), Ok(Message::Failed { repeat: MAX_REPEAT, .. })));
        assert!(matches!(
            parse_sshd(pam(MAX_REPEAT).as_bytes()),
            Ok(Message::PamAuthFailure { count: MAX_REPEAT, .. })
        ));
        assert_eq!(parse_sshd(failed(MAX_REPEAT + 1).as_bytes()), Err("implausible 'message repeated' count"));
        assert_eq!(parse_sshd(pam(u32::MAX).as_bytes()), Err("implausible 'PAM N more authentication failures' count"));
    }
}
