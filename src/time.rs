//! Time stamps: zone-less log times, time zones, year inference.
//!
//! Most transfer logs write local time without a zone (rsyncd log files,
//! xferlog, BSD syslog) and BSD syslog has no year either. Everything is
//! stored in UTC, so each input is read through a [`Clock`] that knows the
//! zone the log was written in (`--timezone`) and how to infer a missing year.
//!
//! Parsing is on the hot path: the digit parsers work on byte slices and the
//! zone offset is cached per local minute, so a line costs a few dozen
//! instructions and no allocation.

use std::str::FromStr;

use chrono::{Datelike as _, NaiveDate, Offset, TimeZone as _};
use chrono_tz::Tz;

use crate::error::ConfigError;
use crate::model::Micros;

const MICROS: i64 = 1_000_000;

/// A time zone in which zone-less log times are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeZone {
    /// Coordinated Universal Time.
    Utc,
    /// A fixed offset east of UTC, in seconds.
    Fixed(i32),
    /// An IANA zone with its daylight-saving rules.
    Named(Tz),
}

impl TimeZone {
    /// The machine's zone: `$TZ` if set, else `/etc/localtime`, else UTC.
    pub fn local() -> TimeZone {
        if let Ok(tz) = std::env::var("TZ") {
            let tz = tz.trim_start_matches(':');
            if let Ok(z) = tz.parse() {
                return z;
            }
        }
        iana_time_zone::get_timezone().ok().and_then(|name| name.parse().ok()).unwrap_or(TimeZone::Utc)
    }

    /// Offset east of UTC (seconds) that applies to the given local time.
    /// Ambiguous local times (DST fall-back) take the earlier instant; local
    /// times that do not exist (DST spring-forward gap) are read with the
    /// offset in force just before the gap.
    pub fn offset_for_local(&self, local: chrono::NaiveDateTime) -> i32 {
        match self {
            TimeZone::Utc => 0,
            TimeZone::Fixed(s) => *s,
            TimeZone::Named(tz) => match tz.from_local_datetime(&local) {
                chrono::LocalResult::Single(dt) => dt.offset().fix().local_minus_utc(),
                chrono::LocalResult::Ambiguous(a, b) => {
                    let (a, b) = (a.offset().fix(), b.offset().fix());
                    a.local_minus_utc().max(b.local_minus_utc())
                }
                chrono::LocalResult::None => {
                    let before = local - chrono::Duration::hours(3);
                    tz.offset_from_utc_datetime(&before).fix().local_minus_utc()
                }
            },
        }
    }
}

impl FromStr for TimeZone {
    type Err = ConfigError;

    /// Accepts `UTC`/`Z`, `local`, `+HH:MM`/`-HHMM`/`+HH`, or an IANA name
    /// such as `Europe/Paris`.
    ///
    /// ```
    /// use xferstats::time::TimeZone;
    ///
    /// assert_eq!("+02:00".parse::<TimeZone>().unwrap(), TimeZone::Fixed(7200));
    /// assert!("Europe/Paris".parse::<TimeZone>().is_ok());
    /// assert!("Mars/Olympus".parse::<TimeZone>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" || t.eq_ignore_ascii_case("gmt") {
            return Ok(TimeZone::Utc);
        }
        if t.eq_ignore_ascii_case("local") {
            return Ok(TimeZone::local());
        }
        if let Some(off) = parse_offset(t.as_bytes()) {
            return Ok(if off == 0 { TimeZone::Utc } else { TimeZone::Fixed(off) });
        }
        t.parse::<Tz>().map(TimeZone::Named).map_err(|_| ConfigError::TimeZone(s.to_string()))
    }
}

/// Parses `+HH:MM`, `+HHMM`, `+HH` (or `-`) into seconds east of UTC.
pub fn parse_offset(b: &[u8]) -> Option<i32> {
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let r = &b[1..];
    let (h, m) = match r.len() {
        2 => (num2(r, 0)?, 0),
        4 => (num2(r, 0)?, num2(r, 2)?),
        5 if r[2] == b':' => (num2(r, 0)?, num2(r, 3)?),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h as i32 * 3600 + m as i32 * 60))
}

#[inline]
fn digit(b: u8) -> Option<u32> {
    let d = b.wrapping_sub(b'0');
    (d < 10).then_some(d as u32)
}

#[inline]
pub(crate) fn num2(b: &[u8], at: usize) -> Option<u32> {
    Some(digit(*b.get(at)?)? * 10 + digit(*b.get(at + 1)?)?)
}

#[inline]
fn num4(b: &[u8], at: usize) -> Option<u32> {
    Some(num2(b, at)? * 100 + num2(b, at + 2)?)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y } as i64;
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A broken-down civil time as read from a log, before any zone is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year (may be inferred).
    pub year: i32,
    /// Month 1–12.
    pub month: u32,
    /// Day 1–31.
    pub day: u32,
    /// Hour 0–23.
    pub hour: u32,
    /// Minute.
    pub min: u32,
    /// Second 0–60.
    pub sec: u32,
    /// Microseconds.
    pub micros: u32,
}

impl Civil {
    /// Whether this is a real time: a day that exists in its month and year
    /// (no 30 February, no 29 February 2100), hours 0–23, minutes 0–59.
    pub fn valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.min < 60
            && self.sec <= 60
            && NaiveDate::from_ymd_opt(self.year, self.month, self.day).is_some()
    }

    /// Seconds since the epoch if this civil time were UTC.
    fn as_utc_seconds(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400 + (self.hour * 3600 + self.min * 60 + self.sec) as i64
    }
}

/// Parses `YYYY/MM/DD HH:MM:SS` (rsyncd `log file`, rsync `%t`) or the same
/// with `-` separators and `T` (ISO without zone). Returns the civil time.
pub fn parse_ymd_hms(b: &[u8]) -> Option<Civil> {
    if b.len() < 19 {
        return None;
    }
    let sep = b[4];
    if (sep != b'/' && sep != b'-') || b[7] != sep || (b[10] != b' ' && b[10] != b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let c = Civil {
        year: num4(b, 0)? as i32,
        month: num2(b, 5)?,
        day: num2(b, 8)?,
        hour: num2(b, 11)?,
        min: num2(b, 14)?,
        sec: num2(b, 17)?,
        micros: 0,
    };
    c.valid().then_some(c)
}

/// Parses an RFC 3339 time with fraction and offset (`Z`, `+HH:MM`, `+HHMM`)
/// at the start of `b`. Returns UTC micros and the length consumed.
pub fn parse_rfc3339(b: &[u8]) -> Option<(Micros, usize)> {
    let mut c = parse_ymd_hms(b)?;
    if b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut frac: u32 = 0;
        while let Some(d) = b.get(i).and_then(|&x| digit(x)) {
            if i - start < 6 {
                frac = frac * 10 + d;
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            frac *= 10;
        }
        c.micros = frac;
    }
    let off = match b.get(i)? {
        b'Z' | b'z' => {
            i += 1;
            0
        }
        b'+' | b'-' => {
            let end = b[i..].iter().position(|&x| x == b' ').map_or(b.len(), |p| i + p);
            let o = parse_offset(&b[i..end])?;
            i = end;
            o
        }
        _ => return None,
    };
    let secs = c.as_utc_seconds() - off as i64;
    Some((secs * MICROS + c.micros as i64, i))
}

const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// Month number (1–12) of an English three-letter abbreviation.
pub fn month_from_abbr(b: &[u8]) -> Option<u32> {
    let b: &[u8; 3] = b.get(..3)?.try_into().ok()?;
    MONTHS.iter().position(|m| *m == b).map(|p| p as u32 + 1)
}

/// Parses a BSD syslog time `Mon DD HH:MM:SS` (day space- or zero-padded)
/// at the start of `b`; the year is left 0 for the caller to infer.
pub fn parse_bsd(b: &[u8]) -> Option<Civil> {
    if b.len() < 15 || b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' {
        return None;
    }
    let month = month_from_abbr(b)?;
    let day = match (b[4], b[5]) {
        (b' ', d) => digit(d)?,
        _ => num2(b, 4)?,
    };
    let c = Civil { year: 0, month, day, hour: num2(b, 7)?, min: num2(b, 10)?, sec: num2(b, 13)?, micros: 0 };
    // Valid in some year (2000 is a leap year: 29 February passes).
    Civil { year: 2000, ..c }.valid().then_some(c)
}

/// Converts zone-less civil times of one input to UTC: applies the input's
/// zone (offset cached per local minute) and infers missing years.
#[derive(Debug, Clone)]
pub struct Clock {
    tz: TimeZone,
    cache_key: i64,
    cache_off: i32,
    /// Reference instant for year inference (file mtime or now), UTC seconds.
    reference: i64,
    /// Year and month of the last year-less time seen, for roll-over.
    last_year: Option<(i32, u32)>,
}

/// How many years before its reference a year-less time can be placed.
const MAX_YEARS_BACK: i32 = 100;

impl Clock {
    /// A clock reading local times in `tz`; `reference` (UTC seconds) is the
    /// newest a year-less time can be (usually the file's mtime).
    pub fn new(tz: TimeZone, reference: i64) -> Clock {
        Clock { tz, cache_key: i64::MIN, cache_off: 0, reference, last_year: None }
    }

    /// The zone this clock reads local times in.
    pub fn tz(&self) -> TimeZone {
        self.tz
    }

    /// UTC micros of a local civil time.
    pub fn local_to_utc(&mut self, c: &Civil) -> Micros {
        let local = c.as_utc_seconds();
        let off = match self.tz {
            TimeZone::Utc => 0,
            TimeZone::Fixed(s) => s,
            TimeZone::Named(_) => {
                let key = local.div_euclid(60);
                if key != self.cache_key {
                    let naive = NaiveDate::from_ymd_opt(c.year, c.month, c.day)
                        .and_then(|d| d.and_hms_opt(c.hour, c.min, c.sec.min(59)));
                    self.cache_off = naive.map_or(0, |n| self.tz.offset_for_local(n));
                    self.cache_key = key;
                }
                self.cache_off
            }
        };
        (local - off as i64) * MICROS + c.micros as i64
    }

    /// Fills in the year of a year-less (BSD syslog) time: the latest year
    /// that does not put the time more than a day after the reference, then
    /// carried forward line by line (a December → January step starts the
    /// next year).
    pub fn infer_year(&mut self, c: &mut Civil) {
        let ref_days = self.reference.div_euclid(86_400);
        let (ry, _, _) = civil_from_days(ref_days);
        let year = match self.last_year {
            Some((y, m)) if c.month + 6 < m => y + 1,
            Some((y, m)) if c.month > m + 6 => y - 1,
            Some((y, _)) => y,
            None => {
                let cand = days_from_civil(ry, c.month, c.day.min(28));
                if cand > ref_days + 1 {
                    ry - 1
                } else {
                    ry
                }
            }
        };
        // Months that keep jumping by more than half a year (forged or
        // garbled lines) would otherwise walk the year out of any calendar:
        // it stays within a century before the reference (such times are
        // then refused by the plausible window, not wrapped or looped on).
        let year = year.clamp(ry - MAX_YEARS_BACK, ry + 1);
        c.year = year;
        if c.month == 2 && c.day == 29 && NaiveDate::from_ymd_opt(year, 2, 29).is_none() {
            // 29 February only exists in leap years: pick the nearest one back.
            let mut y = year - 1;
            while NaiveDate::from_ymd_opt(y, 2, 29).is_none() {
                y -= 1;
            }
            c.year = y;
        }
        self.last_year = Some((c.year, c.month));
    }
}

/// The event times accepted as plausible: none before `earliest`, none more
/// than `max_future` after the input's reference instant (its modification
/// time, or now when that is later or unknown). A time outside is a
/// misread or forged line, and storing it would put a year 9999 into every
/// report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plausible {
    /// Earliest accepted time (UTC micros).
    pub earliest: Micros,
    /// How far past the reference a time may be (micros).
    pub max_future: Micros,
}

impl Default for Plausible {
    /// From 1990-01-01 to one day after the reference.
    fn default() -> Plausible {
        Plausible { earliest: days_from_civil(1990, 1, 1) * 86_400 * MICROS, max_future: 86_400 * MICROS }
    }
}

impl Plausible {
    /// Latest accepted time for an input modified at `mtime` (UTC seconds)
    /// when it is `now`.
    pub fn latest(&self, mtime: Option<i64>, now: i64) -> Micros {
        let reference = mtime.map_or(now, |m| m.min(now));
        reference.saturating_mul(MICROS).saturating_add(self.max_future)
    }

    /// Whether `t` lies in the window that ends at `latest`.
    pub fn contains(&self, t: Micros, latest: Micros) -> bool {
        (self.earliest..=latest).contains(&t)
    }

    /// Why `t` is not plausible given `latest`, or `None` when it is.
    pub fn reject(&self, t: Micros, latest: Micros) -> Option<String> {
        (!self.contains(t, latest)).then(|| {
            format!(
                "time {} outside the plausible window {} .. {} (--min-date, --max-future)",
                rfc3339(t),
                rfc3339(self.earliest),
                rfc3339(latest)
            )
        })
    }
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

/// `YYYY-MM-DD` of a UTC micro timestamp.
pub fn day_string(t: Micros) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400 * MICROS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since the epoch (UTC) of a micro timestamp.
pub fn day_number(t: Micros) -> i64 {
    t.div_euclid(86_400 * MICROS)
}

/// Parses a `YYYY-MM-DD` date into days since the epoch.
pub fn parse_day(s: &str) -> Option<i64> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    Some(days_from_civil(d.year_ce().1 as i32, d.month0() + 1, d.day0() + 1))
}

/// Today's UTC day, in days since the epoch (the clock can be set for the
/// tests with [`crate::testhook::today`]).
pub fn today() -> i64 {
    crate::testhook::today().unwrap_or_else(|| {
        let secs =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        secs.div_euclid(86_400)
    })
}

/// A report day: `YYYY-MM-DD`, `today`, `yesterday` or `-Nd` (N days
/// before `today`, itself in days since the epoch); days since the epoch.
pub fn parse_report_day(s: &str, today: i64) -> Option<i64> {
    match s.trim() {
        "today" => Some(today),
        "yesterday" => Some(today - 1),
        t => match t.strip_prefix('-').and_then(|r| r.strip_suffix('d')) {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                n.parse::<i64>().ok().filter(|n| *n <= 1_000_000).map(|n| today - n)
            }
            _ => parse_day(t),
        },
    }
}

/// RFC 3339 UTC rendering of a micro timestamp (for JSON and messages).
pub fn rfc3339(t: Micros) -> String {
    let secs = t.div_euclid(MICROS);
    let us = t.rem_euclid(MICROS);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let base = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
    if us == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{us:06}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_days() {
        let today = days_from_civil(2026, 11, 29);
        let day = |s| parse_report_day(s, today).map(|d| day_string(d * 86_400 * MICROS));
        assert_eq!(day("today").as_deref(), Some("2026-11-29"));
        assert_eq!(day(" yesterday").as_deref(), Some("2026-11-28"));
        assert_eq!(day("-7d").as_deref(), Some("2026-11-22"));
        assert_eq!(day("-0d").as_deref(), Some("2026-11-29"));
        assert_eq!(day("2026-03-01").as_deref(), Some("2026-03-01"));
        for bad in ["-d", "-7", "7d", "-7w", "-1x1d", "tomorrow", "-99999999999999999999d", ""] {
            assert_eq!(day(bad), None, "{bad}");
        }
    }

    #[test]
    fn plausible_window() {
        let w = Plausible::default();
        let now = days_from_civil(2026, 11, 29) * 86_400;
        let mtime = days_from_civil(2026, 3, 1) * 86_400;
        // One day past the modification time, or past now when it is later.
        assert_eq!(rfc3339(w.latest(Some(mtime), now)), "2026-03-02T00:00:00Z");
        assert_eq!(rfc3339(w.latest(Some(now + 86_400 * 30), now)), "2026-11-30T00:00:00Z");
        assert_eq!(rfc3339(w.latest(None, now)), "2026-11-30T00:00:00Z");
        let latest = w.latest(Some(mtime), now);
        assert_eq!(w.reject(w.earliest, latest), None);
        assert_eq!(w.reject(latest, latest), None);
        assert_eq!(
            w.reject(latest + 1, latest).as_deref(),
            Some(
                "time 2026-03-02T00:00:00.000001Z outside the plausible window 1990-01-01T00:00:00Z .. \
                 2026-03-02T00:00:00Z (--min-date, --max-future)"
            )
        );
        assert!(w.reject(w.earliest - 1, latest).is_some());
        assert!(w.reject(i64::MAX, latest).is_some());
    }

    #[test]
    fn bsd_times_that_exist_in_no_year_are_refused() {
        assert!(parse_bsd(b"Feb 29 10:00:00").is_some());
        for bad in
            [&b"Feb 30 10:00:00"[..], b"Apr 31 10:00:00", b"Jan 15 24:00:00", b"Jan 15 10:60:00", b"Jan  0 10:00:00"]
        {
            assert!(parse_bsd(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn civil_round_trip() {
        for z in [-800_000i64, -1, 0, 1, 19_000, 20_765, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2026, 11, 8), 20_765);
    }

    #[test]
    fn rfc3339_offsets_and_fractions() {
        let (t, n) = parse_rfc3339(b"2019-03-05T03:28:03+0100 resif").unwrap();
        assert_eq!(n, 24);
        assert_eq!(rfc3339(t), "2019-03-05T02:28:03Z");
        let (t, _) = parse_rfc3339(b"2026-11-01T00:00:05.123456+00:00 h").unwrap();
        assert_eq!(rfc3339(t), "2026-11-01T00:00:05.123456Z");
        let (t, _) = parse_rfc3339(b"2026-11-01T00:00:05.1Z").unwrap();
        assert_eq!(rfc3339(t), "2026-11-01T00:00:05.100000Z");
        let (t, _) = parse_rfc3339(b"2026-11-01T01:00:00-05:30 x").unwrap();
        assert_eq!(rfc3339(t), "2026-11-01T06:30:00Z");
        assert!(parse_rfc3339(b"2026-11-01T00:00:05 host").is_none());
        assert!(parse_rfc3339(b"2026-13-01T00:00:05Z").is_none());
    }

    #[test]
    fn bsd_padding() {
        let c = parse_bsd(b"Nov  8 14:03:28 vm").unwrap();
        assert_eq!((c.month, c.day, c.hour, c.min, c.sec), (11, 8, 14, 3, 28));
        let c = parse_bsd(b"Aug 02 13:28:15 vm").unwrap();
        assert_eq!((c.month, c.day), (8, 2));
        assert!(parse_bsd(b"Foo  8 14:03:28 vm").is_none());
    }

    #[test]
    fn year_inference_and_rollover() {
        // reference 2026-01-02: a December line belongs to 2025
        let reference = days_from_civil(2026, 1, 2) * 86_400;
        let mut clock = Clock::new(TimeZone::Utc, reference);
        let mut c = parse_bsd(b"Dec 31 23:59:59 x").unwrap();
        clock.infer_year(&mut c);
        assert_eq!(c.year, 2025);
        let mut c = parse_bsd(b"Jan  1 00:00:01 x").unwrap();
        clock.infer_year(&mut c);
        assert_eq!(c.year, 2026);
    }

    /// Found by reading while fuzzing: months that keep jumping by more
    /// than half a year walked the year back by one every two lines, out of
    /// chrono's range after ~500 k lines, where the 29 February search never
    /// ended.
    #[test]
    fn jumping_months_keep_the_year_within_a_century() {
        let reference = days_from_civil(2026, 6, 1) * 86_400;
        let mut clock = Clock::new(TimeZone::Utc, reference);
        let lines: [&[u8]; 4] =
            [b"Jan  1 00:00:00 x", b"Aug  1 00:00:00 x", b"Feb  1 00:00:00 x", b"Sep  1 00:00:00 x"];
        let mut lowest = i32::MAX;
        for i in 0..1_000_000 {
            let mut c = parse_bsd(lines[i % 4]).unwrap();
            clock.infer_year(&mut c);
            lowest = lowest.min(c.year);
        }
        assert_eq!(lowest, 2026 - MAX_YEARS_BACK);
        let mut c = parse_bsd(b"Feb 29 00:00:00 x").unwrap();
        clock.infer_year(&mut c);
        assert!(NaiveDate::from_ymd_opt(c.year, 2, 29).is_some() && c.year >= 2026 - MAX_YEARS_BACK - 8);
    }

    #[test]
    fn zones() {
        let paris: TimeZone = "Europe/Paris".parse().unwrap();
        let mut clock = Clock::new(paris, 0);
        let c = parse_ymd_hms(b"2026/07/01 12:00:00").unwrap();
        assert_eq!(rfc3339(clock.local_to_utc(&c)), "2026-07-01T10:00:00Z");
        let c = parse_ymd_hms(b"2026/01/01 12:00:00").unwrap();
        assert_eq!(rfc3339(clock.local_to_utc(&c)), "2026-01-01T11:00:00Z");
        // fall back: 02:30 happens twice, the earlier (summer time) wins
        let c = parse_ymd_hms(b"2026/10/25 02:30:00").unwrap();
        assert_eq!(rfc3339(clock.local_to_utc(&c)), "2026-10-25T00:30:00Z");
        // spring forward: 02:30 does not exist, read with the winter offset
        let c = parse_ymd_hms(b"2026/03/29 02:30:00").unwrap();
        assert_eq!(rfc3339(clock.local_to_utc(&c)), "2026-03-29T01:30:00Z");
        assert_eq!("+02:00".parse::<TimeZone>().unwrap(), TimeZone::Fixed(7200));
        assert_eq!("-0500".parse::<TimeZone>().unwrap(), TimeZone::Fixed(-18000));
        assert_eq!("UTC".parse::<TimeZone>().unwrap(), TimeZone::Utc);
        assert!("Mars/Olympus".parse::<TimeZone>().is_err());
    }
}
