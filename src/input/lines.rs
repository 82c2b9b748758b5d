//! The line reader: an input's chunks cut into lines, with the bookkeeping
//! every reader of a log needs in one place — line numbers, byte offsets,
//! `\r\n` endings, lines too long to read, the last line still being
//! written, and the position a checkpoint records (offset, lines, and the
//! keyed hash of the bytes before the offset that proves on resume that the
//! file is still the one read).
//!
//! Batch ingest drives it to the end of each input; a follower (`xferstats
//! follow`) can drive the same reader over a growing file. Lines are slices
//! of the chunk being read: no line is copied or allocated. A chunk the
//! reader thread cut already ([`Input::parse_ahead`]) is not searched for
//! newlines again: its lines come with their prefixes parsed.

use super::{content_hash, Chunk, Chunks, Cut, Input, TAIL_CHECK};
use crate::enrich::hostkey::IdKey;
use crate::error::InputError;
use crate::formats::prefix::Ahead;

/// Where a reader stands: what a checkpoint records of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Decompressed bytes consumed, always at a line boundary.
    pub offset: u64,
    /// Lines consumed (including skipped over-long ones).
    pub lines: u64,
    /// Keyed hash of the [`TAIL_CHECK`] bytes before `offset` (all of them
    /// when `offset` is smaller); 0, which matches nothing, when the reader
    /// does not hold them (right after an over-long line).
    pub tail_hash: u64,
}

/// One line of an input.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line, without its `\n` and a `\r` before it.
    Text {
        /// 1-based number, counted from the start of the input.
        number: u64,
        /// Its bytes.
        bytes: &'a [u8],
        /// Its prefix, parsed on the reader thread ([`Input::parse_ahead`]).
        ahead: Option<Ahead>,
    },
    /// A line longer than [`super::MAX_LINE`], skipped unread.
    Overlong {
        /// 1-based number, counted from the start of the input.
        number: u64,
        /// Its length, newline included.
        len: u64,
    },
}

/// Reads an input line by line.
pub struct LineReader {
    chunks: Chunks,
    key: IdKey,
    /// Whether the input can still grow: a last line without newline is
    /// then left for a later read instead of being returned.
    can_grow: bool,
    /// The chunk being cut, `data[pos..]` not yet returned.
    data: Vec<u8>,
    pos: usize,
    /// Its lines as the reader thread cut them (empty when it did not),
    /// `cuts[cut..]` not yet returned.
    cuts: Vec<Cut>,
    cut: usize,
    /// Decompressed offset of `data[0]`.
    start: u64,
    /// Up to [`TAIL_CHECK`] bytes just before `start` (fewer at the start of
    /// the input or after an over-long line).
    tail: Vec<u8>,
    /// Lines consumed.
    lines: u64,
    /// A last line without newline was left.
    unterminated: bool,
    /// The input ended (or failed).
    done: bool,
}

impl LineReader {
    /// Reads `input` from its start.
    pub fn new(input: Input, key: IdKey) -> LineReader {
        LineReader::at(input, key, 0, Vec::new())
    }

    /// Reads `input` from `at`, a position an earlier reader of the same
    /// content recorded, if the bytes before it still hash to its tail
    /// hash; otherwise hands `input` back (the content differs: it must be
    /// read again from its start).
    pub fn resume(mut input: Input, at: Position, key: IdKey) -> Result<Result<LineReader, Input>, InputError> {
        match input.resume_at(at.offset, at.tail_hash, &key)? {
            Some(tail) => Ok(Ok(LineReader::at(input, key, at.lines, tail))),
            None => Ok(Err(input)),
        }
    }

    fn at(input: Input, key: IdKey, lines: u64, tail: Vec<u8>) -> LineReader {
        let can_grow = input.can_grow();
        let start = input.skipped;
        LineReader {
            chunks: input.chunks(),
            key,
            can_grow,
            data: Vec::new(),
            pos: 0,
            cuts: Vec::new(),
            cut: 0,
            start,
            tail,
            lines,
            unterminated: false,
            done: false,
        }
    }

    /// The next line; `Ok(None)` at the end of the input. A read error ends
    /// the input: the lines before it were all returned.
    #[inline]
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>, InputError> {
        if self.pos == self.data.len() {
            match self.load()? {
                Loaded::Lines => {}
                Loaded::Overlong(len) => {
                    self.lines += 1;
                    return Ok(Some(Line::Overlong { number: self.lines, len }));
                }
                Loaded::End => return Ok(None),
            }
        }
        self.lines += 1;
        if let Some(&Cut { next, ahead }) = self.cuts.get(self.cut) {
            self.cut += 1;
            let line = &self.data[self.pos..self.pos + ahead.line_len()];
            self.pos = next as usize;
            return Ok(Some(Line::Text { number: self.lines, bytes: line, ahead: Some(ahead) }));
        }
        let rest = &self.data[self.pos..];
        let line = match memchr::memchr(b'\n', rest) {
            Some(nl) => {
                self.pos += nl + 1;
                &rest[..nl]
            }
            None => {
                // Only the last chunk of an input that cannot grow ends
                // without a newline (`load` keeps no other).
                self.pos = self.data.len();
                rest
            }
        };
        Ok(Some(Line::Text { number: self.lines, bytes: line.strip_suffix(b"\r").unwrap_or(line), ahead: None }))
    }

    /// Moves to the next chunk of the input.
    fn load(&mut self) -> Result<Loaded, InputError> {
        if self.done {
            return Ok(Loaded::End);
        }
        self.retire();
        match self.chunks.next() {
            Some(Chunk::Lines { start, data, cuts }) => {
                debug_assert_eq!(start, self.start);
                self.data = data;
                self.cuts = cuts;
                Ok(Loaded::Lines)
            }
            Some(Chunk::Overlong { start, len }) => {
                debug_assert_eq!(start, self.start);
                // Its bytes are gone: no tail before the next offsets.
                self.tail.clear();
                self.start = start + len;
                Ok(Loaded::Overlong(len))
            }
            Some(Chunk::End { start, data, cuts }) => {
                debug_assert_eq!(start, self.start);
                self.done = true;
                if data.is_empty() {
                    Ok(Loaded::End)
                } else if self.can_grow {
                    self.unterminated = true;
                    Ok(Loaded::End)
                } else {
                    self.data = data;
                    self.cuts = cuts;
                    Ok(Loaded::Lines)
                }
            }
            Some(Chunk::Error { error, .. }) => {
                self.done = true;
                Err(error)
            }
            None => {
                self.done = true;
                Ok(Loaded::End)
            }
        }
    }

    /// Forgets the chunk just cut, keeping its last bytes as the tail.
    fn retire(&mut self) {
        let data = std::mem::take(&mut self.data);
        keep_tail(&mut self.tail, &data);
        self.start += data.len() as u64;
        self.pos = 0;
        self.cut = 0;
        self.chunks.recycle(data, std::mem::take(&mut self.cuts));
    }

    /// Where the reader stands: after the last line returned.
    pub fn position(&self) -> Position {
        let offset = self.offset();
        let want = offset.min(TAIL_CHECK as u64) as usize;
        let tail_hash = if self.pos >= want {
            content_hash(&self.key, &self.data[self.pos - want..self.pos])
        } else if self.tail.len() + self.pos >= want {
            let mut joined = [0u8; TAIL_CHECK];
            let from_tail = want - self.pos;
            joined[..from_tail].copy_from_slice(&self.tail[self.tail.len() - from_tail..]);
            joined[from_tail..want].copy_from_slice(&self.data[..self.pos]);
            content_hash(&self.key, &joined[..want])
        } else {
            0
        };
        Position { offset, lines: self.lines, tail_hash }
    }

    /// Decompressed offset after the last line returned.
    #[inline]
    pub fn offset(&self) -> u64 {
        self.start + self.pos as u64
    }

    /// Lines returned so far, counted from the start of the input.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Raw (compressed) bytes read so far, for progress.
    pub fn raw_read(&self) -> u64 {
        self.chunks.raw_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the input ended in a line without newline that was left for
    /// a later read (the input can still grow).
    pub fn unterminated(&self) -> bool {
        self.unterminated
    }
}

/// What the next chunk holds.
enum Loaded {
    Lines,
    Overlong(u64),
    End,
}

/// Appends `data` to `tail`, keeping its last [`TAIL_CHECK`] bytes.
fn keep_tail(tail: &mut Vec<u8>, data: &[u8]) {
    if data.len() >= TAIL_CHECK {
        tail.clear();
        tail.extend_from_slice(&data[data.len() - TAIL_CHECK..]);
    } else {
        tail.extend_from_slice(data);
        let excess = tail.len().saturating_sub(TAIL_CHECK);
        tail.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Source, CHUNK, MAX_LINE};
    use super::*;
    use std::time::Duration;

    fn open(path: &std::path::Path) -> Input {
        Input::open(Source::Path(path.to_path_buf()), Duration::from_secs(1)).unwrap()
    }

    fn stream(bytes: Vec<u8>) -> Input {
        Input::from_stream(Source::Stdin, Box::new(std::io::Cursor::new(bytes))).unwrap()
    }

    /// A line read: number, text (`None` for a skipped one), offset after.
    type Read = (u64, Option<Vec<u8>>, u64);

    /// Every line, the position at the end and whether a last line was left.
    fn read_all(mut r: LineReader) -> (Vec<Read>, Position, bool) {
        let mut out = Vec::new();
        while let Some(line) = r.next_line().unwrap() {
            match line {
                Line::Text { number, bytes, .. } => out.push((number, Some(bytes.to_vec()), 0)),
                Line::Overlong { number, .. } => out.push((number, None, 0)),
            }
            out.last_mut().unwrap().2 = r.offset();
        }
        (out, r.position(), r.unterminated())
    }

    #[test]
    fn lines_carry_numbers_and_offsets_and_lose_their_cr() {
        let key = IdKey::unkeyed();
        let (lines, end, unterminated) = read_all(LineReader::new(stream(b"a\r\nbb\n\r\nlast\r".to_vec()), key));
        let text = |s: &[u8]| Some(s.to_vec());
        assert_eq!(lines, vec![(1, text(b"a"), 3), (2, text(b"bb"), 6), (3, text(b""), 8), (4, text(b"last"), 13)]);
        assert_eq!(end, Position { offset: 13, lines: 4, tail_hash: content_hash(&key, b"a\r\nbb\n\r\nlast\r") });
        assert!(!unterminated);
    }

    #[test]
    fn a_growing_file_leaves_its_last_line_and_an_overlong_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut data = b"first\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        data.extend_from_slice(b"\nafter\npartial");
        std::fs::write(&p, &data).unwrap();
        let key = IdKey::unkeyed();
        let (lines, end, unterminated) = read_all(LineReader::new(open(&p), key));
        let over = MAX_LINE as u64 + 11;
        assert_eq!(
            lines,
            vec![(1, Some(b"first".to_vec()), 6), (2, None, 6 + over), (3, Some(b"after".to_vec()), 6 + over + 6)]
        );
        // The bytes before the offset went with the skipped line: no tail
        // hash that could match.
        assert_eq!(end, Position { offset: 6 + over + 6, lines: 3, tail_hash: 0 });
        assert!(unterminated);
    }

    #[test]
    fn lines_cut_ahead_are_the_lines_cut_here_with_their_prefixes_parsed() {
        use crate::formats::prefix::PrefixParser;
        use crate::time::{days_from_civil, Clock, TimeZone};
        // Several chunks of lines of each prefix style and none, CRLF
        // endings, an over-long line, and a last line without newline.
        let mut data = Vec::new();
        for i in 0..60_000u32 {
            let line = match i % 5 {
                0 => format!("Dec 31 23:59:{:02} vm rsyncd[{i}]: line {i}\r\n", i % 60),
                1 => format!("Jan  1 00:00:{:02} vm sshd: line {i}\n", i % 60),
                2 => format!("2026-11-01T00:00:{:02}.5+01:00 vm rsyncd[{i}]: line {i}\n", i % 60),
                3 => format!("2026/11/01 00:00:{:02} [{i}] line {i}\n", i % 60),
                _ => format!("no prefix {i}\n"),
            };
            data.extend_from_slice(line.as_bytes());
            if i == 30_000 {
                data.extend(std::iter::repeat_n(b'x', MAX_LINE + 1));
                data.push(b'\n');
            }
        }
        data.extend_from_slice(b"Jan  2 00:00:00 vm last: no newline");
        let key = IdKey::unkeyed();
        let clock = Clock::new(TimeZone::Utc, days_from_civil(2026, 11, 20) * 86_400);
        let mut input = stream(data.clone());
        input.parse_ahead(PrefixParser::new(), clock.clone());
        let mut ahead = LineReader::new(input, key);
        let mut here = LineReader::new(stream(data), key);
        let (mut parser, mut clock, mut n) = (PrefixParser::new(), clock, 0);
        loop {
            let (a, h) = (ahead.next_line().unwrap(), here.next_line().unwrap());
            match (a, h) {
                (None, None) => break,
                (
                    Some(Line::Text { number, bytes, ahead: Some(pre) }),
                    Some(Line::Text { number: m, bytes: b, ahead: None }),
                ) => {
                    assert_eq!((number, bytes), (m, b));
                    assert_eq!(pre.prefixed(bytes), parser.parse(b, &mut clock), "line {number}");
                    n += 1;
                }
                (a, h) => assert_eq!(a, h),
            }
            assert_eq!(ahead.position(), here.position());
        }
        assert_eq!(n, 60_001);
        assert_eq!(ahead.position(), here.position());
    }

    #[test]
    fn a_position_taken_anywhere_resumes_exactly_there() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        // Lines across several chunks, so that positions fall at chunk
        // starts, inside chunks and within TAIL_CHECK of a chunk start.
        let data: Vec<u8> = (0..150_000).flat_map(|i| format!("line {i:06} of the log\n").into_bytes()).collect();
        std::fs::write(&p, &data).unwrap();
        let key = IdKey::unkeyed();
        let mut r = LineReader::new(open(&p), key);
        let mut positions = Vec::new();
        while let Some(line) = r.next_line().unwrap() {
            let Line::Text { number, .. } = line else { panic!("no over-long line here") };
            if number % 29_989 == 1 || r.offset() % CHUNK as u64 <= 3 * 23 {
                positions.push(r.position());
            }
        }
        assert!(positions.len() > 10);
        for at in positions {
            let from = at.offset as usize;
            assert_eq!(at.tail_hash, content_hash(&key, &data[from.saturating_sub(TAIL_CHECK)..from]));
            let resumed = LineReader::resume(open(&p), at, key).unwrap().ok().expect("resumes");
            let (lines, end, _) = read_all(resumed);
            assert_eq!(lines.first().map(|l| l.0), Some(at.lines + 1));
            assert_eq!(end, Position { offset: data.len() as u64, lines: 150_000, ..end });
            // A position taken right after resuming (less than TAIL_CHECK
            // bytes read) resumes too.
            let mut resumed = LineReader::resume(open(&p), at, key).unwrap().ok().unwrap();
            resumed.next_line().unwrap();
            let next = resumed.position();
            assert!(LineReader::resume(open(&p), next, key).unwrap().is_ok(), "resume at {}", next.offset);
        }
        let wrong = Position { offset: 23, lines: 1, tail_hash: 1 };
        assert!(LineReader::resume(open(&p), wrong, key).unwrap().is_err());
    }
}
