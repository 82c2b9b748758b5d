//! SFTPGo JSON logs (`sftpgo.log`, zerolog): one JSON object per line.
//!
//! Traps (format notes §A3, §0 #14): the time has no zone (local unless
//! `--log-utc-time`); `error` is present only on failure; upload
//! `size_bytes` is what this transfer received; `connection_failed` is
//! logged at debug level and its `login_type` was spelt `no_auth_tryed`
//! before v2.5.1; `virtual_path` exists only on recent versions; the 2019
//! field set has no `remote_addr` and no `protocol`. Unknown fields are
//! ignored.

pub mod decoder;

use std::borrow::Cow;

use serde::Deserialize;

use crate::model::Micros;
use crate::time::{parse_rfc3339, parse_ymd_hms, Civil, Clock};

/// The fields xferstats reads from one SFTPGo log object. Strings borrow
/// from the line unless they hold escapes.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct SftpgoLine<'a> {
    /// `info`, `debug`, `error`, …
    #[serde(borrow, default)]
    pub level: Option<Cow<'a, str>>,
    /// `2026-10-01T16:53:57.751`.
    #[serde(borrow)]
    pub time: Cow<'a, str>,
    /// `Upload`, `Download`, `Remove`, `login`, `connection_failed`, …
    #[serde(borrow)]
    pub sender: Cow<'a, str>,
    /// Client `ip:port` (transfer and command logs).
    #[serde(borrow, default)]
    pub remote_addr: Option<Cow<'a, str>>,
    /// Client address (`connection_failed`).
    #[serde(borrow, default)]
    pub client_ip: Option<Cow<'a, str>>,
    /// Client address (`login`).
    #[serde(borrow, default)]
    pub ip: Option<Cow<'a, str>>,
    /// Transfer duration.
    #[serde(default)]
    pub elapsed_ms: Option<i64>,
    /// Bytes of the transfer.
    #[serde(default)]
    pub size_bytes: Option<i64>,
    /// User.
    #[serde(borrow, default)]
    pub username: Option<Cow<'a, str>>,
    /// File system path.
    #[serde(borrow, default)]
    pub file_path: Option<Cow<'a, str>>,
    /// Path as the client sees it (recent versions).
    #[serde(borrow, default)]
    pub virtual_path: Option<Cow<'a, str>>,
    /// Connection id (`SFTP_…`).
    #[serde(borrow, default)]
    pub connection_id: Option<Cow<'a, str>>,
    /// `SFTP`, `SCP`, `FTP`, `DAV`, `HTTP`, `SSH`, …
    #[serde(borrow, default)]
    pub protocol: Option<Cow<'a, str>>,
    /// Present only on failure.
    #[serde(borrow, default)]
    pub error: Option<Cow<'a, str>>,
    /// Authentication method of a failed connection.
    #[serde(borrow, default)]
    pub login_type: Option<Cow<'a, str>>,
    /// Authentication method of a login.
    #[serde(borrow, default)]
    pub method: Option<Cow<'a, str>>,
}

/// Parses one line; `Err` names what is wrong.
pub fn parse(line: &[u8]) -> Result<SftpgoLine<'_>, &'static str> {
    if line.first() != Some(&b'{') {
        return Err("not a JSON object");
    }
    serde_json::from_slice(line).map_err(|_| "not an SFTPGo JSON log object (needs time and sender)")
}

/// The time of a line: UTC micros when it carries a zone, else the civil
/// time to read in `--timezone`.
pub enum LineTime {
    /// Zoned: already UTC.
    Utc(Micros),
    /// Zone-less local time.
    Local(Civil),
}

impl LineTime {
    /// The UTC time, a local one read with `clock`.
    pub fn utc(self, clock: &mut Clock) -> Micros {
        match self {
            LineTime::Utc(t) => t,
            LineTime::Local(c) => clock.local_to_utc(&c),
        }
    }
}

/// Reads SFTPGo's `2006-01-02T15:04:05.000` (or an RFC 3339 time).
pub fn parse_time(s: &str) -> Option<LineTime> {
    let b = s.as_bytes();
    if let Some((t, n)) = parse_rfc3339(b) {
        if n == b.len() {
            return Some(LineTime::Utc(t));
        }
    }
    let mut c = parse_ymd_hms(b)?;
    if b[4] != b'-' {
        return None;
    }
    match b.get(19) {
        None => {}
        Some(b'.') => {
            let frac = &b[20..];
            if frac.is_empty() || frac.len() > 9 || !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let mut us: u32 = 0;
            for i in 0..6 {
                us = us * 10 + frac.get(i).map_or(0, |d| (d - b'0') as u32);
            }
            c.micros = us;
        }
        Some(_) => return None,
    }
    Some(LineTime::Local(c))
}

/// Whether a line looks like an SFTPGo log object (for detection).
pub fn looks_like(line: &[u8]) -> bool {
    parse(line).map(|l| parse_time(&l.time).is_some()).unwrap_or(false)
}

/// The registry entry of the sftpgo format.
pub const SPEC: crate::formats::Spec = crate::formats::Spec {
    name: "sftpgo",
    description: "SFTPGo JSON log (transfers, Remove, login, connection_failed; 2019 field set too)",
    detect: crate::formats::Detect::Lines(|p| p.line.first() == Some(&b'{') && looks_like(p.line)),
    stamp: |line, _, _, clock| {
        parse(line).ok().and_then(|l| Some(crate::formats::Stamp::at(parse_time(&l.time)?.utc(clock))))
    },
    decoder: |_| Box::new(decoder::SftpgoDecoder::default()),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_login_and_failed_connection() {
        let l = parse(br#"{"level":"info","time":"2026-10-01T16:53:57.751","sender":"Upload","local_addr":"127.0.0.1:2299","remote_addr":"127.0.0.1:37628","elapsed_ms":0,"size_bytes":4000,"username":"dtd-push","file_path":"/data/in/t.zip","virtual_path":"/t.zip","connection_id":"SFTP_1","protocol":"SFTP"}"#).unwrap();
        assert_eq!(
            (l.sender.as_ref(), l.size_bytes, l.virtual_path.as_deref()),
            ("Upload", Some(4000), Some("/t.zip"))
        );
        let l = parse(br#"{"level":"debug","time":"2022-11-01T15:35:45.590","sender":"connection_failed","client_ip":"171.223.103.180","username":"","login_type":"no_auth_tryed","protocol":"SSH","error":"ssh: no common algorithm"}"#).unwrap();
        assert_eq!(l.login_type.as_deref(), Some("no_auth_tryed"));
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"level":"info"}"#).is_err());
        match parse_time("2026-10-01T16:53:57.751") {
            Some(LineTime::Local(c)) => assert_eq!((c.hour, c.micros), (16, 751_000)),
            _ => panic!("zone-less time"),
        }
        assert!(matches!(parse_time("2026-10-01T16:53:57.751Z"), Some(LineTime::Utc(_))));
        assert!(parse_time("yesterday").is_none());
    }
}
