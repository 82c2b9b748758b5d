//! Joining lines into events.
//!
//! A format's parser classifies single lines; a [`Decoder`] holds what a log
//! spreads over several lines (an rsync connection's pid, an SFTP session) and
//! emits [`Event`]s. Its state survives the end of a run: it is saved with
//! every batch the store commits and restored by the next run, so a session
//! split across two cron runs or two rotated files is neither lost nor
//! counted twice.

pub mod openssh;
pub mod proftpd;
pub mod proftpd_extended;
pub mod rsync;
pub mod sftpgo;
pub mod syslog;
pub mod vsftpd;
pub mod xferlog;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::formats::prefix::PrefixParser;
use crate::model::{Event, EventId, Micros};

/// What became of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The line meant something (an event now or later).
    Used,
    /// A well-formed line with nothing to count (banner, other program).
    Ignored,
    /// The line could not be read; the reason is reported with a sample.
    Rejected(&'static str),
}

/// Per-input context handed to a decoder with each line.
#[derive(Debug)]
pub struct LineContext {
    /// Prefix parser with the input's clock.
    pub prefix: PrefixParser,
    /// Event-id generator of the input.
    pub ids: IdGen,
    /// Server host for lines that do not name one (log-file prefixes).
    pub server_host: String,
}

/// Turns lines of one format into events, keeping cross-line state.
pub trait Decoder {
    /// Name of the state scope in the store (one per format).
    fn scope(&self) -> &'static str;
    /// Handles one line (without its newline).
    fn line(&mut self, cx: &mut LineContext, line: &[u8], out: &mut Vec<Event>) -> Outcome;
    /// End of a run: emits what sessions that are over still owe; sessions
    /// that may continue in a later run stay in the state. (Formats whose
    /// lines stand alone have nothing to do.)
    fn finish(&mut self, _out: &mut Vec<Event>) {}
    /// Serialises the open sessions (empty for formats without any).
    fn save(&self) -> String {
        String::new()
    }
    /// Restores state saved by [`Decoder::save`].
    fn restore(&mut self, _state: &str) -> Result<(), String> {
        Ok(())
    }
}

/// The UTC time of the last time stamp text seen: consecutive lines of one
/// second share it and skip the date conversion.
#[derive(Debug, Default)]
pub struct StampCache {
    raw: Vec<u8>,
    time: Micros,
}

impl StampCache {
    /// The time of stamp text `raw`, computed by `convert` when it differs
    /// from the previous one.
    pub fn get(&mut self, raw: &[u8], convert: impl FnOnce() -> Micros) -> Micros {
        if raw != self.raw.as_slice() {
            self.time = convert();
            self.raw.clear();
            self.raw.extend_from_slice(raw);
        }
        self.time
    }
}

/// A line context for tests: time zone, reference instant (for years),
/// default server host.
#[cfg(test)]
pub(crate) fn test_context(tz: crate::time::TimeZone, reference: i64, host: &str) -> LineContext {
    LineContext {
        prefix: PrefixParser::new(crate::time::Clock::new(tz, reference)),
        ids: IdGen::default(),
        server_host: host.into(),
    }
}

/// The transfers among decoded events (tests).
#[cfg(test)]
pub(crate) fn transfers(ev: &[crate::model::Event]) -> Vec<&crate::model::Transfer> {
    ev.iter()
        .filter_map(|e| match e {
            crate::model::Event::Transfer(t) => Some(t),
            crate::model::Event::Login(_) => None,
        })
        .collect()
}

/// The logins among decoded events (tests).
#[cfg(test)]
pub(crate) fn logins(ev: &[crate::model::Event]) -> Vec<&crate::model::Login> {
    ev.iter()
        .filter_map(|e| match e {
            crate::model::Event::Login(l) => Some(l),
            crate::model::Event::Transfer(_) => None,
        })
        .collect()
}

/// The server host of a decoder's events, shared (`Arc`) by all of them
/// and rebuilt only when it changes.
#[derive(Debug, Default)]
pub struct ServerName(Option<Arc<str>>);

impl ServerName {
    /// The name for `host` (as logged, or the configured default).
    pub fn get(&mut self, host: &[u8]) -> Arc<str> {
        match &self.0 {
            Some(s) if s.as_bytes() == host => s.clone(),
            _ => {
                let s: Arc<str> = Arc::from(String::from_utf8_lossy(host).as_ref());
                self.0 = Some(s.clone());
                s
            }
        }
    }
}

/// A client address as logs write it — `1.2.3.4`, `2001:db8::1`,
/// `::ffff:1.2.3.4` (stored as IPv4), `1.2.3.4:5678`, `[2001:db8::1]:5678`
/// — or `None` when it is not an address (a host name, `UNKNOWN`).
pub fn client_ip(b: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(b).ok()?;
    let ip = match s.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => match s.parse::<SocketAddr>() {
            Ok(sa) => sa.ip(),
            Err(_) => s.strip_prefix('[')?.strip_suffix(']')?.parse().ok()?,
        },
    };
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

/// Derives [`EventId`]s from line content.
///
/// The id is a hash of the server host, the raw line and a tag for the kind
/// of event; identical lines within one second of one input get an ordinal,
/// so two real transfers logged identically both count while the same line
/// read again (renamed or compressed copy, a second syslog file) does not.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct IdGen {
    second: i64,
    seen: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
}

/// Hasher for keys that already are hashes (xxh3 output): passes them on.
#[derive(Debug, Default, Clone, Copy)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

impl IdGen {
    /// Id of the event of kind `tag` produced by `line` at `time`.
    pub fn id(&mut self, time: Micros, host: &[u8], line: &[u8], tag: u8) -> EventId {
        let sec = time.div_euclid(1_000_000);
        if sec != self.second {
            self.second = sec;
            self.seen.clear();
        }
        let h = xxh3_64_with_seed(line, xxh3_64_with_seed(host, tag as u64));
        let n = self.seen.entry(h).or_insert(0);
        let ord = *n;
        *n += 1;
        if ord == 0 {
            h
        } else {
            xxh3_64_with_seed(&ord.to_le_bytes(), h)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses() {
        let ip = |s: &str| client_ip(s.as_bytes()).map(|i| i.to_string());
        assert_eq!(ip("::ffff:150.135.84.81").as_deref(), Some("150.135.84.81"));
        assert_eq!(ip("[2001:db8::7]:50522").as_deref(), Some("2001:db8::7"));
        assert_eq!(ip("192.0.2.1:22").as_deref(), Some("192.0.2.1"));
        assert_eq!(ip("[::1]").as_deref(), Some("::1"));
        assert_eq!(ip("UNKNOWN"), None);
        assert_eq!(ip("localhost"), None);
    }

    #[test]
    fn identical_lines_in_one_second_get_distinct_ids() {
        let mut g = IdGen::default();
        let a = g.id(1_000_000, b"h", b"line", 1);
        let b = g.id(1_000_000, b"h", b"line", 1);
        assert_ne!(a, b);
        let mut g2 = IdGen::default();
        assert_eq!(g2.id(1_000_000, b"h", b"line", 1), a);
        assert_ne!(g2.id(1_000_000, b"h2", b"line", 1), b);
        assert_ne!(IdGen::default().id(0, b"h", b"line", 2), a);
    }
}
