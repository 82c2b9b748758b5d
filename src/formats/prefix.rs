//! Line prefixes shared by several formats: the rsyncd `log file` prefix
//! (`YYYY/MM/DD HH:MM:SS [pid] `), BSD syslog (`Mon DD HH:MM:SS host tag[pid]: `,
//! no year) and RFC 3339 syslog (`2026-11-01T00:00:05.123+01:00 host tag[pid]: `).
//!
//! A log can hold any of the three; the style is recognised per line from
//! its first bytes, so files whose writer changed (rsyslog reconfigured) still
//! read. The last time stamp is cached: consecutive lines of one second cost a
//! 19-byte comparison instead of a date conversion (and lines of one minute
//! the seconds' difference). So is the last syslog header with a pid (`host
//! tag[`): a line that repeats it reads only its pid, not every separator.
//!
//! The parse of a line's prefix can run ahead of the decoder, on the thread
//! that reads the input ([`Ahead`]): the same parser and clock, over the
//! same lines in the same order, give the same results (the stamp cache and
//! the year inference depend only on the lines before), handed over as
//! offsets into the line and given back by [`PrefixParser::parse`] in place
//! of its own parse ([`PrefixParser::preset`]).

use crate::model::{same_bytes, Micros};
use crate::time::{parse_bsd, parse_rfc3339, parse_ymd_hms, Clock};

/// Which prefix a line carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrefixStyle {
    /// `YYYY/MM/DD HH:MM:SS [pid] ` written by a daemon's own log file.
    LogFile,
    /// `Mon DD HH:MM:SS host tag[pid]: ` (RFC 3164).
    BsdSyslog,
    /// `YYYY-MM-DDTHH:MM:SS[.frac]±HH:MM host tag[pid]: ` (RFC 5424 time).
    Rfc3339Syslog,
}

/// A line split into its prefix fields and the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefixed<'a> {
    /// UTC micros.
    pub time: Micros,
    /// Syslog host field, if any.
    pub host: Option<&'a [u8]>,
    /// Syslog tag (program), if any.
    pub program: Option<&'a [u8]>,
    /// Process id, if any.
    pub pid: Option<u32>,
    /// The message after the prefix.
    pub msg: &'a [u8],
    /// Which prefix style the line had.
    pub style: PrefixStyle,
    /// What follows the time stamp of a syslog line, as [`syslog_body`]
    /// gives it (`None` for a daemon log file's line): the content id
    /// ([`crate::sessions::IdGen::id_prefixed`]) without reading the prefix again.
    pub body: Option<&'a [u8]>,
}

/// What [`PrefixParser::parse`] gave for a line, without borrowing it:
/// offsets into the line ([`Ahead::prefixed`] rebuilds the [`Prefixed`]).
/// `msg` and `body` run to the end of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ahead {
    /// Length of the line parsed: a check that it is handed back with it.
    len: u32,
    /// `None`: no known prefix.
    parsed: Option<Offsets>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Offsets {
    time: Micros,
    host: Option<(u32, u32)>,
    program: Option<(u32, u32)>,
    pid: Option<u32>,
    msg: u32,
    style: PrefixStyle,
    body: Option<u32>,
}

impl Ahead {
    /// `parsed`, what the parse of `line` gave, as offsets into `line`.
    pub fn of(line: &[u8], parsed: Option<&Prefixed<'_>>) -> Ahead {
        let base = line.as_ptr() as usize;
        let at = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        let span = |s: &[u8]| (at(s), s.len() as u32);
        let parsed = parsed.map(|p| Offsets {
            time: p.time,
            host: p.host.map(span),
            program: p.program.map(span),
            pid: p.pid,
            msg: at(p.msg),
            style: p.style,
            body: p.body.map(at),
        });
        Ahead { len: line.len() as u32, parsed }
    }

    /// Length of the line it was made of.
    #[inline]
    pub fn line_len(&self) -> usize {
        self.len as usize
    }

    /// The [`Prefixed`] of `line`, the line this was made of.
    #[inline(always)]
    pub fn prefixed<'a>(&self, line: &'a [u8]) -> Option<Prefixed<'a>> {
        let o = self.parsed.as_ref()?;
        let span = |(at, len): (u32, u32)| &line[at as usize..(at + len) as usize];
        Some(Prefixed {
            time: o.time,
            host: o.host.map(span),
            program: o.program.map(span),
            pid: o.pid,
            msg: &line[o.msg as usize..],
            style: o.style,
            body: o.body.map(|at| &line[at as usize..]),
        })
    }
}

impl Default for PrefixParser {
    fn default() -> PrefixParser {
        PrefixParser::new()
    }
}

/// Parses prefixes of one input, keeping its time-stamp cache. The clock
/// (zone, year inference) is the input's and travels in the line context:
/// each call borrows it.
#[derive(Debug, Clone)]
pub struct PrefixParser {
    last_raw: [u8; 40],
    last_len: usize,
    last_time: Micros,
    /// RFC 3339 syslog times cut to the second ([`PrefixParser::whole_seconds`]).
    whole_seconds: bool,
    /// The prefix of the line at this address, parsed ahead
    /// ([`PrefixParser::preset`]).
    preset: Option<(usize, Ahead)>,
    /// `host tag[` of the last syslog line with a pid: the lines of a log
    /// repeat it, and a line that starts with it has its host and tag
    /// where that line had them ([`PrefixParser::syslog`]).
    header: [u8; 32],
    /// Bytes of `header` in use (0: none).
    header_len: usize,
    /// Length of the host in `header`.
    header_host: usize,
}

impl PrefixParser {
    /// A parser at the start of an input.
    pub fn new() -> PrefixParser {
        PrefixParser {
            last_raw: [0; 40],
            last_len: 0,
            last_time: 0,
            whole_seconds: false,
            preset: None,
            header: [0; 32],
            header_len: 0,
            header_host: 0,
        }
    }

    /// A parser that reads RFC 3339 syslog times to the whole second, as
    /// precise as a BSD syslog time stamp: under content ids (see
    /// [`crate::sessions::IdGen::id`]) one message written in both
    /// renderings is then one event, with one time, in the store.
    pub fn whole_seconds(whole: bool) -> PrefixParser {
        PrefixParser { whole_seconds: whole, ..PrefixParser::new() }
    }

    #[inline]
    fn cached(&self, raw: &[u8]) -> Option<Micros> {
        (self.last_len == raw.len() && same_bytes(&self.last_raw[..raw.len()], raw)).then_some(self.last_time)
    }

    /// The time of `raw` from the cached stamp when the two differ only in
    /// their seconds (bytes 17–18 of a daemon log file's and of an RFC 3339
    /// stamp): same minute, zone and fraction, so the times differ by the
    /// seconds (a zone's offset is per minute, see
    /// [`Clock::local_to_utc`]). Consecutive lines a few seconds apart then
    /// skip the date conversion too; seconds past 59 take the full parse.
    /// The cache then holds `raw`.
    #[inline]
    fn next_second(&mut self, raw: &[u8]) -> Option<Micros> {
        let last = &self.last_raw[..self.last_len];
        if last.len() != raw.len()
            || raw.len() < 19
            || !same_bytes(&raw[..17], &last[..17])
            || !same_bytes(&raw[19..], &last[19..])
        {
            return None;
        }
        let t = self.last_time + (second(raw)? - second(last)?) * 1_000_000;
        self.remember(raw, t);
        Some(t)
    }

    /// The time of an RFC 3339 line whose stamp is the cached one but for
    /// its seconds, as [`PrefixParser::cached`] and
    /// [`PrefixParser::next_second`] give it, with the length of the
    /// stamp; without looking for the space that ends it: the cached stamp
    /// holds none (the first 17 bytes equal tell an RFC 3339 stamp, cut at
    /// its first space), so the space after as many bytes of `line` is its
    /// first. `None`: ask them.
    #[inline(always)]
    fn same_minute(&mut self, line: &[u8]) -> Option<(Micros, usize)> {
        let n = self.last_len;
        let last = &self.last_raw[..n];
        if n < 19
            || line.len() <= n
            || line[n] != b' '
            || !same_bytes(&line[..17], &last[..17])
            || !same_bytes(&line[19..n], &last[19..])
        {
            return None;
        }
        let t = self.last_time + (second(line)? - second(last)?) * 1_000_000;
        self.last_raw[17..19].copy_from_slice(&line[17..19]);
        self.last_time = t;
        Some((t, n))
    }

    #[inline]
    fn remember(&mut self, raw: &[u8], t: Micros) {
        if raw.len() <= self.last_raw.len() {
            self.last_raw[..raw.len()].copy_from_slice(raw);
            self.last_len = raw.len();
            self.last_time = t;
        }
    }

    /// Has [`PrefixParser::parse`] of `line` give what `ahead` says of it,
    /// parsed ahead by another parser (of the same kind, with a clock like
    /// the one it is given, over every line before), until the next preset.
    /// A decoder may parse a line twice (the syslog router, then the
    /// decoder it routes to): a parser that parsed it itself gives the same
    /// the second time from its cache, without touching the clock, and so
    /// does this one. Any other slice is parsed as usual.
    #[inline]
    pub fn preset(&mut self, line: &[u8], ahead: Ahead) {
        self.preset = Some((line.as_ptr() as usize, ahead));
    }

    /// Splits `line` into prefix and message, reading zone-less times with
    /// `clock`; `None` when no known prefix starts the line. (One parser
    /// goes with one clock: its cache holds times converted by it.)
    /// Inlined into its callers: a prefix parsed ahead is then rebuilt
    /// where it is used, without a call or a copy of it through memory.
    #[inline(always)]
    pub fn parse<'a>(&mut self, line: &'a [u8], clock: &mut Clock) -> Option<Prefixed<'a>> {
        match &self.preset {
            Some((at, ahead)) if *at == line.as_ptr() as usize && ahead.len as usize == line.len() => {
                ahead.prefixed(line)
            }
            _ => self.parse_here(line, clock),
        }
    }

    /// What [`PrefixParser::parse`] gives for `line`, as offsets into it:
    /// the parse ahead, on the thread that reads the input.
    /// The common line — an RFC 3339 stamp of the cached minute, then
    /// the cached syslog header — goes to offsets without a [`Prefixed`]
    /// between; any other as `PrefixParser::parse_here` parses it.
    #[inline]
    pub fn parse_ahead(&mut self, line: &[u8], clock: &mut Clock) -> Ahead {
        if line.first().is_some_and(u8::is_ascii_digit) && line.get(4) == Some(&b'-') {
            // What `rfc3339` does, in the same order.
            if let Some((time, sp)) = self.same_minute(line) {
                let body = sp + 1;
                let style = PrefixStyle::Rfc3339Syslog;
                if let Some(r) = self.repeated(&line[body..]) {
                    let at = |n: usize| (body + n) as u32;
                    let parsed = Offsets {
                        time,
                        host: Some((at(0), r.host as u32)),
                        program: Some((at(r.host + 1), (r.header - r.host - 2) as u32)),
                        pid: Some(r.pid),
                        msg: at(r.msg),
                        style,
                        body: Some(at(0)),
                    };
                    return Ahead { len: line.len() as u32, parsed: Some(parsed) };
                }
                return Ahead::of(line, self.syslog(&line[body..], time, style).as_ref());
            }
        }
        Ahead::of(line, self.parse_here(line, clock).as_ref())
    }

    /// [`PrefixParser::parse`] on this thread.
    #[inline(never)]
    fn parse_here<'a>(&mut self, line: &'a [u8], clock: &mut Clock) -> Option<Prefixed<'a>> {
        let first = *line.first()?;
        if first.is_ascii_digit() {
            match line.get(4)? {
                b'/' => self.log_file(line, clock),
                b'-' => self.rfc3339(line),
                _ => None,
            }
        } else if first.is_ascii_uppercase() {
            self.bsd(line, clock)
        } else {
            None
        }
    }

    fn log_file<'a>(&mut self, line: &'a [u8], clock: &mut Clock) -> Option<Prefixed<'a>> {
        let raw = line.get(..19)?;
        let time = match self.cached(raw).or_else(|| self.next_second(raw)) {
            Some(t) => t,
            None => {
                let c = parse_ymd_hms(raw)?;
                let t = clock.local_to_utc(&c);
                self.remember(raw, t);
                t
            }
        };
        let rest = line.get(19..)?.strip_prefix(b" [")?;
        let close = find_byte(b']', rest)?;
        let pid = parse_u32(&rest[..close])?;
        let msg = rest[close + 1..].strip_prefix(b" ").unwrap_or(&rest[close + 1..]);
        Some(Prefixed { time, host: None, program: None, pid: Some(pid), msg, style: PrefixStyle::LogFile, body: None })
    }

    fn rfc3339<'a>(&mut self, line: &'a [u8]) -> Option<Prefixed<'a>> {
        if let Some((time, sp)) = self.same_minute(line) {
            return self.syslog(&line[sp + 1..], time, PrefixStyle::Rfc3339Syslog);
        }
        let sp = find_byte(b' ', line)?;
        let raw = &line[..sp];
        let time = match self.cached(raw).or_else(|| self.next_second(raw)) {
            Some(t) => t,
            None => {
                let (t, n) = parse_rfc3339(raw)?;
                if n != raw.len() {
                    return None;
                }
                let t = if self.whole_seconds { t - t.rem_euclid(1_000_000) } else { t };
                self.remember(raw, t);
                t
            }
        };
        self.syslog(&line[sp + 1..], time, PrefixStyle::Rfc3339Syslog)
    }

    fn bsd<'a>(&mut self, line: &'a [u8], clock: &mut Clock) -> Option<Prefixed<'a>> {
        let raw = line.get(..15)?;
        let time = match self.cached(raw) {
            Some(t) => t,
            None => {
                let mut c = parse_bsd(raw)?;
                clock.infer_year(&mut c);
                let t = clock.local_to_utc(&c);
                self.remember(raw, t);
                t
            }
        };
        let p = self.syslog(line.get(16..)?, time, PrefixStyle::BsdSyslog)?;
        // `syslog_body` also wants the space after the stamp.
        Some(Prefixed { body: p.body.filter(|_| line[15] == b' '), ..p })
    }
}

impl PrefixParser {
    /// [`syslog_rest`] of `rest`, from the cached `host tag[` when `rest`
    /// starts with it and goes on with the digits of a pid and `]:`: the
    /// host and tag are then those of the line cached, whose host held no
    /// space and whose tag no space, `:` or `[` (so the first space, `:`
    /// and `[` here are where they were there), and the same follows from
    /// the pid on. A line that starts otherwise takes the whole parse and
    /// is cached in turn when it has a pid.
    #[inline]
    fn syslog<'a>(&mut self, rest: &'a [u8], time: Micros, style: PrefixStyle) -> Option<Prefixed<'a>> {
        if let Some(r) = self.repeated(rest) {
            return Some(Prefixed {
                time,
                host: Some(&rest[..r.host]),
                program: Some(&rest[r.host + 1..r.header - 1]),
                pid: Some(r.pid),
                msg: &rest[r.msg..],
                style,
                body: Some(rest),
            });
        }
        let p = syslog_rest(rest, time, style)?;
        if let (Some(host), Some(program), Some(_)) = (p.host, p.program, p.pid) {
            let n = host.len() + program.len() + 2;
            if n <= self.header.len() {
                self.header[..n].copy_from_slice(&rest[..n]);
                self.header_len = n;
                self.header_host = host.len();
            }
        }
        Some(p)
    }
}

/// Where the fields of a syslog body that starts with the cached header
/// are ([`PrefixParser::repeated`]), as offsets into the body.
#[derive(Debug, Clone, Copy)]
struct Repeated {
    /// Length of the host.
    host: usize,
    /// Length of the header (`host tag[`).
    header: usize,
    pid: u32,
    /// Offset of the message.
    msg: usize,
}

impl PrefixParser {
    /// The fields of `rest` when it starts with the cached `host tag[`
    /// and goes on with the digits of a pid and `]:` (see
    /// [`PrefixParser::syslog`]).
    #[inline(always)]
    fn repeated(&self, rest: &[u8]) -> Option<Repeated> {
        let n = self.header_len;
        let pid_on = rest.get(n..).and_then(<[u8]>::first_chunk::<9>)?;
        if n == 0 || !same_bytes(&rest[..n], &self.header[..n]) {
            return None;
        }
        // The pid's digits, 8 bytes at once. Up to 7 digits (Linux pids
        // have at most 7); a longer pid, or a line that ends sooner, takes
        // the parse.
        let w = u64::from_le_bytes(*pid_on.first_chunk::<8>().expect("8 of 9 bytes"));
        let digits = digit_run(w);
        if !(1..=7).contains(&digits) || pid_on[digits] != b']' || pid_on[digits + 1] != b':' {
            return None;
        }
        let pid = eight_digits_value(w, digits) as u32;
        let after = n + digits + 2;
        let msg = after + usize::from(rest.get(after) == Some(&b' '));
        Some(Repeated { host: self.header_host, header: n, pid, msg })
    }
}

/// How many of the bytes of `w` (first byte lowest) are ASCII digits
/// before the first that is not: a digit has `3` in its high half, and
/// still has after adding 6. (A carry out of a byte crosses only into the
/// bytes after it, past a byte that is no digit.)
#[inline(always)]
pub(crate) fn digit_run(w: u64) -> usize {
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const THREE: u64 = 0x3030_3030_3030_3030;
    let not_digit = ((w & HIGH) ^ THREE) | ((w.wrapping_add(0x0606_0606_0606_0606) & HIGH) ^ THREE);
    (not_digit.trailing_zeros() / 8) as usize
}

/// The value of the first `n` bytes of `w`, ASCII digits (first byte
/// lowest, most significant): shifted to the top of the word (the rest
/// are leading zeros), then pairs, fours and eights combined in its lanes
/// by a multiply each.
#[inline(always)]
pub(crate) fn eight_digits_value(w: u64, n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    let v = (w & 0x0f0f_0f0f_0f0f_0f0f) << (8 * (8 - n));
    let v = (v.wrapping_mul(10 * 256 + 1)) >> 8;
    let v = ((v & 0x00ff_00ff_00ff_00ff).wrapping_mul(100 * 65_536 + 1)) >> 16;
    ((v & 0x0000_ffff_0000_ffff).wrapping_mul(10_000 * (1 << 32) + 1)) >> 32
}

/// Seconds of a daemon log file's or RFC 3339 stamp (bytes 17–18), when
/// they are 00–59.
#[inline]
fn second(b: &[u8]) -> Option<i64> {
    let (tens, units) = (b[17].wrapping_sub(b'0'), b[18].wrapping_sub(b'0'));
    (tens <= 5 && units <= 9).then(|| i64::from(tens * 10 + units))
}

/// The shape of a prefix, without reading its time stamp: `Some(program)`
/// when `line` starts like one of the three prefixes (`None` as program for
/// a daemon log file's), whether or not its time is a real one. A line of a
/// known program whose time does not read is then rejected rather than
/// taken for a line of no program.
pub fn prefix_shape(line: &[u8]) -> Option<Option<&[u8]>> {
    let first = *line.first()?;
    if first.is_ascii_digit() {
        match line.get(4)? {
            b'/' => line.get(19..)?.starts_with(b" [").then_some(None),
            b'-' => {
                let sp = find_byte(b' ', line)?;
                syslog_rest(&line[sp + 1..], 0, PrefixStyle::Rfc3339Syslog).map(|p| p.program)
            }
            _ => None,
        }
    } else if first.is_ascii_uppercase() && line.get(3) == Some(&b' ') && line.get(15) == Some(&b' ') {
        syslog_rest(line.get(16..)?, 0, PrefixStyle::BsdSyslog).map(|p| p.program)
    } else {
        None
    }
}

/// What follows the time stamp of a syslog line (`host tag[pid]: msg`),
/// the same whichever time-stamp template (BSD or RFC 3339) rsyslog wrote
/// it with; `None` for a line without a syslog prefix (a daemon log file's
/// included, whose lines have no host).
pub fn syslog_body(line: &[u8]) -> Option<&[u8]> {
    let first = *line.first()?;
    let at = if first.is_ascii_digit() && line.get(4) == Some(&b'-') {
        find_byte(b' ', line)? + 1
    } else if first.is_ascii_uppercase() && line.get(3) == Some(&b' ') && line.get(15) == Some(&b' ') {
        16
    } else {
        return None;
    };
    let body = line.get(at..)?;
    syslog_rest(body, 0, PrefixStyle::BsdSyslog).map(|_| body)
}

/// `host tag[pid]: msg` or `host tag: msg` after a syslog time stamp.
fn syslog_rest(rest: &[u8], time: Micros, style: PrefixStyle) -> Option<Prefixed<'_>> {
    let body = rest;
    let sp = find_byte(b' ', rest)?;
    let host = &rest[..sp];
    let rest = &rest[sp + 1..];
    let colon = find_byte(b':', rest)?;
    let tag = &rest[..colon];
    let msg = rest[colon + 1..].strip_prefix(b" ").unwrap_or(&rest[colon + 1..]);
    let (program, pid) = match find_byte(b'[', tag) {
        Some(open) if tag.last() == Some(&b']') => (&tag[..open], Some(parse_u32(&tag[open + 1..tag.len() - 1])?)),
        _ => (tag, None),
    };
    if program.is_empty() || find_byte(b' ', program).is_some() || host.is_empty() {
        return None;
    }
    Some(Prefixed { time, host: Some(host), program: Some(program), pid, msg, style, body: Some(body) })
}

/// The first `c` in `b`. The separators of a prefix are a few bytes
/// apart, where a call to `memchr` costs more than the search: its first
/// 32 bytes are searched here, inline, a word of 8 bytes at a time, and
/// only a longer search goes to `memchr`.
#[inline(always)]
pub(crate) fn find_byte(c: u8, b: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    let mut at = 0;
    while at + 8 <= b.len() && at < 32 {
        // Bytes equal to `c` become 0; the lowest byte that borrows in
        // the subtraction is the first of them (a byte above it may
        // borrow from it, none below).
        let w = u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes")) ^ (ONES * u64::from(c));
        let zero = w.wrapping_sub(ONES) & !w & (ONES << 7);
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = &b[at..];
    let found = if rest.len() < 8 { rest.iter().position(|&x| x == c) } else { memchr::memchr(c, rest) };
    found.map(|n| at + n)
}

/// The last `c` in `b`. A client address and host name end an rsync
/// line a few bytes apart, where a call to `memrchr` costs more than the
/// search: searched here from the end, 16 bytes at a time (SSE2, which
/// every x86-64 has); a text shorter than 16 bytes as two overlapping
/// words of 8 or a byte at a time.
#[inline(always)]
pub(crate) fn rfind_byte(c: u8, b: &[u8]) -> Option<usize> {
    let n = b.len();
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if n >= 16 {
        // SAFETY: the function only needs SSE2, which this build's target
        // has (the `cfg` above); it reads nothing but `b`.
        return unsafe { rfind_byte_sse2(c, b) };
    }
    if n >= 8 {
        // Bytes equal to `c` become 0, and only they get their top bit set
        // (no carry crosses bytes): the highest one marked is the last.
        const LOW7: u64 = u64::from_ne_bytes([0x7f; 8]);
        let zeros = |at: usize| {
            let w = u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes")) ^ u64::from_ne_bytes([c; 8]);
            !(((w & LOW7).wrapping_add(LOW7)) | w | LOW7)
        };
        return [n - 8, 0]
            .into_iter()
            .find_map(|at| Some(zeros(at)).filter(|&z| z != 0).map(|z| at + 7 - (z.leading_zeros() / 8) as usize));
    }
    b.iter().rposition(|&x| x == c)
}

/// Whether `b` holds `c`, nearly always to learn that it does not (a
/// message without the log format's marker byte): the whole text read 16
/// bytes at a time (SSE2, which every x86-64 has) without a call to
/// `memchr`; a text shorter than 16 bytes as [`find_byte`] reads it.
#[inline(always)]
pub(crate) fn has_byte(c: u8, b: &[u8]) -> bool {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if b.len() >= 16 {
        // SAFETY: the function only needs SSE2, which this build's target
        // has (the `cfg` above); it reads nothing but `b`.
        return unsafe { has_byte_sse2(c, b) };
    }
    find_byte(c, b).is_some()
}

/// Whether every byte of `b` is ASCII and none is `c` (a logged path
/// without rsync's escapes and nothing to validate as UTF-8), 16 bytes at
/// a time (SSE2, which every x86-64 has); a text shorter than 16 bytes a
/// byte at a time.
#[inline(always)]
pub(crate) fn ascii_without(c: u8, b: &[u8]) -> bool {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if b.len() >= 16 {
        // SAFETY: the function only needs SSE2, which this build's target
        // has (the `cfg` above); it reads nothing but `b`.
        return unsafe { ascii_without_sse2(c, b) };
    }
    b.iter().all(|&x| x < 0x80 && x != c)
}

/// [`ascii_without`] of a text of at least 16 bytes.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn ascii_without_sse2(c: u8, b: &[u8]) -> bool {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    debug_assert!(b.len() >= 16);
    let needle = _mm_set1_epi8(c as i8);
    // Bytes from 0x80 up have their top bit set already; `c` gets all its
    // bits set by the comparison.
    let marked = |i: usize| {
        // SAFETY: an unaligned load of 16 bytes, all of them in `b`.
        let v = unsafe { _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>()) };
        _mm_or_si128(v, _mm_cmpeq_epi8(v, needle))
    };
    // The last 16 bytes, then every whole 16 from the start (the last of
    // them may overlap those).
    let mut any = marked(b.len() - 16);
    let mut i = 0;
    while i + 16 <= b.len() {
        any = _mm_or_si128(any, marked(i));
        i += 16;
    }
    _mm_movemask_epi8(any) == 0
}

/// [`has_byte`] of a text of at least 16 bytes.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn has_byte_sse2(c: u8, b: &[u8]) -> bool {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    debug_assert!(b.len() >= 16);
    let needle = _mm_set1_epi8(c as i8);
    // SAFETY: unaligned loads of 16 bytes, all of them in `b`.
    let at = |i: usize| unsafe { _mm_cmpeq_epi8(_mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>()), needle) };
    // The last 16 bytes, then every whole 16 from the start (the last
    // of them may overlap those).
    let mut hits = at(b.len() - 16);
    let mut i = 0;
    while i + 16 <= b.len() {
        hits = _mm_or_si128(hits, at(i));
        i += 16;
    }
    _mm_movemask_epi8(hits) != 0
}

/// [`rfind_byte`] of a text of at least 16 bytes.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn rfind_byte_sse2(c: u8, b: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    debug_assert!(b.len() >= 16);
    let needle = _mm_set1_epi8(c as i8);
    let mut end = b.len();
    loop {
        // The 16 bytes before `end`; at the start, the first 16 (those
        // from `end` on were searched already: no `c` there).
        let start = end.saturating_sub(16);
        // SAFETY: an unaligned load of 16 bytes, all of them in `b`
        // (`start + 16` is `end`, or 16 when `start` is 0).
        let v = unsafe { _mm_loadu_si128(b.as_ptr().add(start).cast::<__m128i>()) };
        let hits = _mm_movemask_epi8(_mm_cmpeq_epi8(v, needle)) as u32;
        if hits != 0 {
            return Some(start + 31 - hits.leading_zeros() as usize);
        }
        if start == 0 {
            return None;
        }
        end = start;
    }
}

/// Parses an unsigned decimal without sign or separators.
#[inline]
pub fn parse_u32(b: &[u8]) -> Option<u32> {
    if b.len() > 10 {
        return None;
    }
    parse_u64(b).and_then(|v| u32::try_from(v).ok())
}

/// Parses an unsigned decimal `u64` without sign or separators.
#[inline]
pub fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    // Up to 19 digits cannot overflow; only the 20th is checked.
    let (head, last) = if b.len() == 20 { (&b[..19], Some(b[19])) } else { (b, None) };
    let mut v: u64 = 0;
    for &c in head {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    match last {
        None => Some(v),
        Some(c) => {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v.checked_mul(10)?.checked_add(d as u64)
        }
    }
}

/// The time and host of a line with a syslog or log-file prefix (the
/// registry's `stamp` of the formats read through prefixes).
pub fn stamp<'a>(
    line: &'a [u8],
    _: &crate::formats::Templates<'_>,
    parser: &mut PrefixParser,
    clock: &mut Clock,
) -> Option<crate::formats::Stamp<'a>> {
    parser.parse(line, clock).map(|p| crate::formats::Stamp { time: p.time, host: p.host })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{days_from_civil, rfc3339, TimeZone};

    #[test]
    fn byte_searches_find_the_first_and_the_last_at_every_offset() {
        for len in 0..80 {
            let hay: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert_eq!(find_byte(b' ', &hay), None, "{len}");
            assert_eq!(rfind_byte(b' ', &hay), None, "{len}");
            assert!(!has_byte(b'[', &hay), "{len}");
            for at in 0..len {
                for c in [b' ', b':', b'(', b'@', b'[', 0x00, 0x80, 0xff, b'\x01'] {
                    let mut h = hay.clone();
                    h[at] = c;
                    // A second one after it, and bytes next to `c` around.
                    if at + 3 < len {
                        h[at + 3] = c;
                        h[at + 1] = c.wrapping_add(1);
                    }
                    if at > 0 {
                        h[at - 1] = c.wrapping_sub(1);
                    }
                    assert_eq!(find_byte(c, &h), h.iter().position(|&x| x == c), "{len} {at} {c}");
                    assert_eq!(rfind_byte(c, &h), h.iter().rposition(|&x| x == c), "{len} {at} {c}");
                    assert!(has_byte(c, &h), "{len} {at} {c}");
                    let next = c.wrapping_add(2);
                    assert_eq!(has_byte(next, &h), h.contains(&next), "{len} {at} {c}");
                    assert_eq!(rfind_byte(next, &h), h.iter().rposition(|&x| x == next), "{len} {at} {c}");
                }
            }
        }
    }

    #[test]
    fn ascii_without_sees_any_other_byte_at_every_offset() {
        for len in 0..80 {
            let hay: Vec<u8> = (0..len).map(|i| b' ' + (i % 95) as u8).filter(|&x| x != b'\\').collect();
            assert!(ascii_without(b'\\', &hay), "{len}");
            for at in 0..hay.len() {
                for x in [b'\\', 0x80, 0xc3, 0xff, 0x7f, 0x00] {
                    let mut h = hay.clone();
                    h[at] = x;
                    assert_eq!(ascii_without(b'\\', &h), x < 0x80 && x != b'\\', "{len} {at} {x}");
                }
            }
        }
    }

    #[test]
    fn decimal_numbers_parse_to_their_type_limits() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"9999999999999999999"), Some(9_999_999_999_999_999_999));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"99999999999999999999"), None);
        assert_eq!(parse_u64(b"1844674407370955161x"), None);
        assert_eq!(parse_u64(b"000000000000000000001"), None);
        for bad in [&b""[..], b"-1", b"+1", b"1 2", b"1_000", b"12a"] {
            assert_eq!(parse_u64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"00000000001"), None);
    }

    /// A parser with its clock, and a shorthand to parse with both.
    struct P(PrefixParser, Clock);

    impl P {
        fn parse<'a>(&mut self, line: &'a [u8]) -> Option<Prefixed<'a>> {
            self.0.parse(line, &mut self.1)
        }
    }

    fn parser() -> P {
        P(PrefixParser::new(), Clock::new(TimeZone::Utc, days_from_civil(2026, 11, 20) * 86_400))
    }

    #[test]
    fn syslog_body_is_what_follows_the_time_stamp() {
        let body = b"vm sshd[25971]: pam_unix(sshd:session): session opened for user erin";
        let bsd = [&b"Nov  8 10:12:38 "[..], body].concat();
        let rfc = [&b"2026-11-08T10:12:38.416198+00:00 "[..], body].concat();
        assert_eq!(syslog_body(&bsd), Some(&body[..]));
        assert_eq!(syslog_body(&rfc), Some(&body[..]));
        // A daemon log file's line, an sshd -E line, a line without a tag.
        assert_eq!(syslog_body(b"2026/03/01 10:00:06 [1] connect from x (192.0.2.1)"), None);
        assert_eq!(syslog_body(b"Server listening on ::1 port 2222."), None);
        assert_eq!(syslog_body(b"Nov  8 10:12:38 vm"), None);
        assert_eq!(syslog_body(b""), None);
        // The parsed prefix carries the same body.
        let mut p = parser();
        let odd: &[u8] = b"Nov  8 10:12:38xvm sshd[1]: no space after the stamp";
        let log_file: &[u8] = b"2026/03/01 10:00:06 [1] connect from x (192.0.2.1)";
        for line in [&bsd[..], &rfc, log_file, odd] {
            let parsed = p.parse(line).expect("a prefix");
            assert_eq!(parsed.body, syslog_body(line), "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn stamps_a_few_seconds_apart_read_as_parsed_afresh() {
        let lines: &[&[u8]] = &[
            b"2026-11-08T10:12:38+01:00 vm rsyncd[1]: a",
            b"2026-11-08T10:12:39+01:00 vm rsyncd[1]: a",
            b"2026-11-08T10:12:07+01:00 vm rsyncd[1]: a",
            b"2026-11-08T10:12:59+01:00 vm rsyncd[1]: a",
            b"2026-11-08T10:12:60+01:00 vm rsyncd[1]: a",
            b"2026-11-08T10:13:00+01:00 vm rsyncd[1]: a",
            b"2026-11-08T10:13:00.250+01:00 vm rsyncd[1]: a",
            b"2026-11-08T10:13:04.250+01:00 vm rsyncd[1]: a",
            b"2026-11-08T10:13:04.250+02:00 vm rsyncd[1]: a",
            b"2026-11-08T10:13:0x+02:00 vm rsyncd[1]: a",
            b"2026-11-08T10:13:09Z vm rsyncd[1]: a",
            b"2026/10/25 02:59:58 [1] a",
            b"2026/10/25 02:59:59 [1] a",
            b"2026/10/25 02:00:00 [1] a",
            b"2026/10/25 02:00:31 [1] a",
            b"2026/10/25 03:00:01 [1] a",
            b"2026/10/25 03:00:02 [1] a",
            // Not digits where the seconds are (fuzzing found an overflow).
            b"2026/10/25 03:00:-9 [1] a",
            b"2026/10/25 03:00:\xff\xff [1] a",
            b"2026/10/25 03:00:99 [1] a",
        ];
        for tz in [TimeZone::Utc, TimeZone::Fixed(3600), TimeZone::Named(chrono_tz::Europe::Paris)] {
            for whole in [false, true] {
                let reference = days_from_civil(2026, 11, 20) * 86_400;
                let (mut cached, mut clock) = (PrefixParser::whole_seconds(whole), Clock::new(tz, reference));
                for line in lines {
                    let fresh = PrefixParser::whole_seconds(whole).parse(line, &mut Clock::new(tz, reference));
                    let got = cached.parse(line, &mut clock);
                    assert_eq!(got, fresh, "{}", String::from_utf8_lossy(line));
                }
            }
        }
    }

    #[test]
    fn eight_digits_read_as_a_number() {
        for n in [0u64, 7, 42, 4_194_304, 9_999_999, 12_345_678, 99_999_999] {
            let text = format!("{n:08}");
            let w = u64::from_le_bytes(text.as_bytes().try_into().unwrap());
            assert_eq!(digit_run(w), 8, "{text}");
            assert_eq!(eight_digits_value(w, 8), n, "{text}");
        }
    }

    #[test]
    fn repeated_syslog_headers_read_as_parsed_afresh() {
        let lines: &[&[u8]] = &[
            b"2026-11-08T10:12:38+01:00 vm rsyncd[1]: a",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[27]:b",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[1234567]: c",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[12345678]: c",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[0]: c",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[0042]: c",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[9999999]: c",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[12/]: c",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[12\xb0]: c",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[12]:",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[12]: ",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[123456789]: c",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[1234567890]: d",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[4294967296]: e",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[]: f",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[12]x: g",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[12] : h",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[12]",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[12]:",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[12",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[1x]: i",
            b"2026-11-08T10:12:38+01:00 vm rsyncd: j",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[",
            b"2026-11-08T10:12:38+01:00 vm rsyncd[3]: k",
            b"2026-11-08T10:12:38+01:00 vm2 rsyncd[3]: l",
            b"2026-11-08T10:12:38+01:00 vm rsyncd2[3]: m",
            b"2026-11-08T10:12:38+01:00 vm sshd[3]: n",
            b"2026-11-08T10:12:38+01:00 a-very-long-host-name-of-forty-bytes.example rsyncd[3]: o",
            b"2026-11-08T10:12:38+01:00 a-very-long-host-name-of-forty-bytes.example rsyncd[4]: p",
            b"Nov  8 10:12:38 vm sshd[3]: q",
            b"Nov  8 10:12:39 vm sshd[4]: r",
            b"Nov  8 10:12:39xvm sshd[4]: s",
            b"2026-11-08T10:12:39 vm sshd[4]: t",
            b"2026-11-08T10:12:39+01:00 vm sshd[5]: u",
            b"2026-11-08T10:12:39+01:00  vm sshd[5]: v",
            b"2026-11-08T10:12:3 +01:00 vm sshd[5]: w",
            b"2026-11-08T10:12:40+01:00x vm sshd[5]: x",
            b"2026-11-08T10:12:41+01:0 vm sshd[5]: y",
            b"2026-11-08T10:12:41+01:00 vm sshd[5]: z",
        ];
        let (mut cached, mut clock) = (PrefixParser::new(), Clock::new(TimeZone::Utc, 0));
        let (mut ahead, mut ahead_clock) = (PrefixParser::new(), Clock::new(TimeZone::Utc, 0));
        for line in lines {
            let fresh = PrefixParser::new().parse(line, &mut Clock::new(TimeZone::Utc, 0));
            assert_eq!(cached.parse(line, &mut clock), fresh, "{}", String::from_utf8_lossy(line));
            let offsets = ahead.parse_ahead(line, &mut ahead_clock);
            assert_eq!(offsets, Ahead::of(line, fresh.as_ref()), "{}", String::from_utf8_lossy(line));
        }
        assert_eq!(cached.header_len, "vm sshd[".len(), "the last header with a pid is cached");
    }

    #[test]
    fn log_file_prefix() {
        let mut p = parser();
        let l = p.parse(b"2026/11/08 07:31:44 [25900] connect from UNDETERMINED (127.0.1.50)").unwrap();
        assert_eq!(rfc3339(l.time), "2026-11-08T07:31:44Z");
        assert_eq!(l.pid, Some(25900));
        assert_eq!(l.msg, b"connect from UNDETERMINED (127.0.1.50)");
        assert_eq!(l.style, PrefixStyle::LogFile);
        assert!(p.parse(b"2026/11/08 07:31:44 25900 connect").is_none());
    }

    #[test]
    fn syslog_prefixes() {
        let mut p = parser();
        let l = p
            .parse(b"2019-03-05T03:28:03+0100 resif-vm30 rsyncd[27615]: sent 1 bytes  received 2 bytes  total size 3")
            .unwrap();
        assert_eq!(rfc3339(l.time), "2019-03-05T02:28:03Z");
        assert_eq!(l.host, Some(&b"resif-vm30"[..]));
        assert_eq!(l.program, Some(&b"rsyncd"[..]));
        assert_eq!(l.pid, Some(27615));
        let l = p.parse(b"Nov  1 00:00:05 host rsyncd[123]: connect from x (::1)").unwrap();
        assert_eq!(rfc3339(l.time), "2026-11-01T00:00:05Z");
        assert_eq!(l.style, PrefixStyle::BsdSyslog);
        let l = p.parse(b"Nov  1 00:00:05 host kernel: something").unwrap();
        assert_eq!((l.program, l.pid), (Some(&b"kernel"[..]), None));
    }

    #[test]
    fn shape_without_a_readable_time() {
        let mut p = parser();
        for (line, program) in [
            (&b"2024-01-15T200:04:38+0100 host rsyncd[4502]: sent 755894 bytes"[..], Some(&b"rsyncd"[..])),
            (b"2100-02-29T10:00:00Z host sshd[1]: Accepted password for a from ::1 port 2 ssh2", Some(b"sshd")),
            (b"Feb 30 25:61:00 host sftp-server[7]: open \"/x\" flags READ mode 0666", Some(b"sftp-server")),
        ] {
            assert!(p.parse(line).is_none(), "{}", String::from_utf8_lossy(line));
            assert_eq!(prefix_shape(line), Some(program));
        }
        assert_eq!(prefix_shape(b"2026/13/08 07:31:44 [25900] connect from x"), Some(None));
        assert_eq!(prefix_shape(b"Accepted password for a from ::1 port 2 ssh2"), None);
        assert_eq!(prefix_shape(b"\x8f2026-01-01 garbage"), None);
        assert_eq!(prefix_shape(b""), None);
    }
}
