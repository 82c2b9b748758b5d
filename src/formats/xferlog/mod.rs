//! xferlog (wu-ftpd format), written by ProFTPD (`TransferLog`, also for
//! mod_sftp's `sftp`/`scp` sessions), vsftpd (`xferlog_std_format=YES`) and
//! Pure-FTPd (`--altlog xferlog:`).
//!
//! One line per transfer, 18 fields separated by runs of whitespace:
//! `DDD MMM dd hh:mm:ss YYYY secs host bytes path type flag dir mode user
//! service auth uid status`. Traps (format notes §A4 and §0 #7–10): the day
//! is space-padded by vsftpd and zero-padded by ProFTPD; the time stamp is
//! local and marks the *end* of the transfer; the host can be `::ffff:a.b.c.d`
//! or a name; direction `d` is a deletion (ProFTPD), never traffic; access
//! mode `a` puts the anonymous e-mail password in the user field (it is
//! stored as `anonymous`); status `i` is incomplete; extra trailing fields
//! exist in the wild; whitespace in names was replaced by `_` (lossy).

pub mod decoder;

use crate::formats::prefix::parse_u64;
use crate::time::{month_from_abbr, num2, Civil};

/// One xferlog line, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XferLine<'a> {
    /// End of the transfer, local time.
    pub end: Civil,
    /// Transfer time in whole seconds.
    pub seconds: u64,
    /// Remote host (address or name).
    pub host: &'a [u8],
    /// Bytes transferred (deletes: size of the deleted file).
    pub bytes: u64,
    /// File name (whitespace already replaced by `_` by the server).
    pub path: &'a [u8],
    /// `o` outgoing (download), `i` incoming (upload), `d` deleted.
    pub direction: u8,
    /// `a` anonymous, `r` real, `g` guest.
    pub access: u8,
    /// User name (for anonymous access: the password given).
    pub user: &'a [u8],
    /// `ftp`, `ftps`, `sftp`, `scp`, …
    pub service: &'a [u8],
    /// `c` complete, `i` incomplete.
    pub completion: u8,
}

/// Splits `b` on runs of spaces/tabs into at most `N` fields.
fn fields<const N: usize>(b: &[u8]) -> ([&[u8]; N], usize) {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut n = 0;
    let mut i = 0;
    while i < b.len() && n < N {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
            i += 1;
        }
        if start < i {
            out[n] = &b[start..i];
            n += 1;
        }
    }
    (out, n)
}

fn single(f: &[u8]) -> Option<u8> {
    (f.len() == 1).then(|| f[0])
}

/// Parses one xferlog line; `Err` names what is wrong.
pub fn parse(line: &[u8]) -> Result<XferLine<'_>, &'static str> {
    let (f, n) = fields::<18>(line);
    if n < 18 {
        return Err("xferlog line with fewer than 18 fields");
    }
    // f[0] weekday, f[1] month, f[2] day, f[3] time, f[4] year
    let month = month_from_abbr(f[1]).ok_or("xferlog: bad month")?;
    let day = match f[2].len() {
        1 => num2(&[b'0', f[2][0]], 0),
        2 => num2(f[2], 0),
        _ => None,
    }
    .ok_or("xferlog: bad day")?;
    let t = f[3];
    if t.len() != 8 || t[2] != b':' || t[5] != b':' {
        return Err("xferlog: bad time of day");
    }
    let year =
        crate::formats::prefix::parse_u32(f[4]).filter(|y| (1970..=9999).contains(y)).ok_or("xferlog: bad year")?;
    let end = Civil {
        year: year as i32,
        month,
        day,
        hour: num2(t, 0).ok_or("xferlog: bad hour")?,
        min: num2(t, 3).ok_or("xferlog: bad minute")?,
        sec: num2(t, 6).ok_or("xferlog: bad second")?,
        micros: 0,
    };
    if !end.valid() {
        return Err("xferlog: bad date");
    }
    let seconds = parse_u64(f[5]).ok_or("xferlog: transfer time is not a number")?;
    let bytes = parse_u64(f[7]).ok_or("xferlog: file size is not a number")?;
    let direction = single(f[11]).filter(|c| b"oid".contains(c)).ok_or("xferlog: direction is not o, i or d")?;
    let access = single(f[12]).filter(|c| b"arg".contains(c)).ok_or("xferlog: access mode is not a, r or g")?;
    let completion = single(f[17]).filter(|c| b"ci".contains(c)).ok_or("xferlog: completion is not c or i")?;
    Ok(XferLine {
        end,
        seconds,
        host: f[6],
        bytes,
        path: f[8],
        direction,
        access,
        user: f[13],
        service: f[14],
        completion,
    })
}

/// Whether a line looks like xferlog (for format detection).
pub fn looks_like(line: &[u8]) -> bool {
    parse(line).is_ok()
}

/// The registry entry of the xferlog format.
pub const SPEC: crate::formats::Spec = crate::formats::Spec {
    name: "xferlog",
    description: "xferlog / wu-ftpd transfer log (ProFTPD TransferLog incl. sftp/scp, vsftpd \
                  xferlog_std_format=YES, Pure-FTPd altlog xferlog)",
    detect: crate::formats::Detect::Lines(|p| looks_like(p.line)),
    stamp: |line, _, _, clock| parse(line).ok().map(|l| crate::formats::Stamp::at(clock.local_to_utc(&l.end))),
    decoder: |_| Box::new(decoder::XferlogDecoder::default()),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vsftpd_padded_day_and_mapped_address() {
        let l = parse(
            b"Tue Apr  5 12:35:58 2016 1 ::ffff:150.135.84.81 4061858 /gantry_data/x.json b _ i r lemnatec ftp 0 * c",
        )
        .unwrap();
        assert_eq!((l.end.year, l.end.month, l.end.day, l.end.hour), (2016, 4, 5, 12));
        assert_eq!(l.host, b"::ffff:150.135.84.81");
        assert_eq!(l.bytes, 4_061_858);
        assert_eq!((l.direction, l.access, l.completion), (b'i', b'r', b'c'));
    }

    #[test]
    fn proftpd_sftp_delete_anonymous_and_trailing_fields() {
        let l = parse(b"Sun Dec 30 01:38:57 2018 0 80.237.119.90 22062 /var/www/file.php b _ o r username sftp 0 * c")
            .unwrap();
        assert_eq!(l.service, b"sftp");
        let l =
            parse(b"Sun Nov 08 16:21:16 2026 0 127.0.1.21 23456 /x/meeting_notes.md b _ d r erin ftp 0 * c").unwrap();
        assert_eq!(l.direction, b'd');
        let l = parse(b"Sun Nov 08 16:21:16 2026 0 127.0.1.50 9876 /in/a.txt b _ i a visitor@example.net ftp 0 * c")
            .unwrap();
        assert_eq!((l.access, l.user), (b'a', &b"visitor@example.net"[..]));
        let l = parse(b"Thu Jul 19 07:03:26 2018 6 10.10.31.98 25135004 /f.tmp b _ i r nmc ftp 0 * c 10.30.16.111")
            .unwrap();
        assert_eq!(l.seconds, 6);
    }

    #[test]
    fn rejects_broken_lines() {
        assert!(parse(b"Sun Nov 08 16:21:16 2026 0 127.0.1.21").is_err());
        assert!(parse(b"Sun Foo 08 16:21:16 2026 0 h 1 /p b _ i r u ftp 0 * c").is_err());
        assert!(parse(b"Sun Nov 08 16:21:16 2026 0 h 1 /p b _ x r u ftp 0 * c").is_err());
        assert!(parse(b"Sun Nov 08 16:21:16 2026 0 h many /p b _ i r u ftp 0 * c").is_err());
    }
}
