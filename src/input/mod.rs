//! Inputs: files (plain, gzip, zstd — told apart by magic bytes, not by
//! name) and stdin, read in line-aligned chunks on a reader thread so that
//! decompression overlaps parsing and memory stays bounded whatever the
//! input size.
//!
//! Each input is identified by a fingerprint of its first line, not by its
//! name: `log`, its renamed `log.1` and its compressed `log.2.gz` are one
//! input to the checkpoint ledger, so re-reading any of them resumes where
//! the last run stopped.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64;

use crate::enrich::hostkey::IdKey;

use crate::error::InputError;

/// Bytes handed to the parser at a time.
pub const CHUNK: usize = 1 << 20;
/// Longest line read; longer lines are skipped and reported.
pub const MAX_LINE: usize = 1 << 20;
/// How much of the head is read up front for detection and fingerprint.
const HEAD: usize = 64 * 1024;
/// Bytes before a checkpoint's offset whose hash proves the file is the
/// one the checkpoint was written for.
pub const TAIL_CHECK: usize = 256;

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file.
    Path(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl Source {
    /// Name for messages.
    pub fn name(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Stdin => "<stdin>".to_string(),
        }
    }

    fn path(&self) -> PathBuf {
        match self {
            Source::Path(p) => p.clone(),
            Source::Stdin => PathBuf::from("-"),
        }
    }
}

/// Compression of an input, from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (`1f 8b`), possibly several members.
    Gzip,
    /// Zstandard (`28 b5 2f fd`).
    Zstd,
}

impl Compression {
    fn sniff(magic: &[u8]) -> Compression {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// Name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// Counts raw (compressed) bytes read, for progress.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

enum Body {
    Plain(Counting<File>),
    Stream(Box<dyn Read + Send>),
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Body::Plain(f) => f.read(buf),
            Body::Stream(r) => r.read(buf),
        }
    }
}

/// An opened input with its head already read.
pub struct Input {
    /// Where it comes from.
    pub source: Source,
    /// Its compression.
    pub compression: Compression,
    /// Size on disk, for progress (plain and compressed files).
    pub size: Option<u64>,
    /// Modification time (Unix seconds), the reference for year inference.
    pub mtime: Option<i64>,
    /// The first bytes of the decompressed content.
    pub head: Vec<u8>,
    /// Raw bytes read so far.
    pub raw_read: Arc<AtomicU64>,
    body: Body,
    /// Decompressed offset of the first byte of `body` not yet read.
    pos: u64,
    /// Whether the stream ended inside the head.
    head_eof: bool,
    /// Decompressed offset `head` starts at (after a resume).
    skipped: u64,
}

fn read_full(r: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    let start = buf.len();
    buf.resize(start + want, 0);
    let mut filled = start;
    while filled < start + want {
        match r.read(&mut buf[filled..]) {
            Ok(0) => {
                buf.truncate(filled);
                return Ok(true);
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(filled);
                return Err(e);
            }
        }
    }
    Ok(false)
}

impl Input {
    /// Opens an input and reads its head.
    pub fn open(source: Source) -> Result<Input, InputError> {
        let open_err = |e| InputError::Open { path: source.path(), source: e };
        let raw_read = Arc::new(AtomicU64::new(0));
        let (raw, size, mtime): (Box<dyn Read + Send>, Option<u64>, Option<i64>) = match &source {
            Source::Path(p) => {
                let f = File::open(p).map_err(open_err)?;
                let md = f.metadata().map_err(open_err)?;
                if md.is_dir() {
                    return Err(open_err(io::Error::other("is a directory")));
                }
                let mtime = md
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64);
                (Box::new(f), Some(md.len()), mtime)
            }
            Source::Stdin => (Box::new(io::stdin()), None, None),
        };
        let mut counting = Counting { inner: raw, count: raw_read.clone() };
        let mut magic = Vec::with_capacity(4);
        read_full(&mut counting, &mut magic, 4).map_err(open_err)?;
        let compression = Compression::sniff(&magic);
        let chained = io::Cursor::new(magic).chain(counting);
        let mut body = match compression {
            Compression::Gzip => Body::Stream(Box::new(flate2::read::MultiGzDecoder::new(chained))),
            Compression::Zstd => Body::Stream(Box::new(zstd::stream::read::Decoder::new(chained).map_err(open_err)?)),
            Compression::None => match &source {
                Source::Path(p) => {
                    // Reopen so that a later seek works on the file itself.
                    let f = File::open(p).map_err(open_err)?;
                    raw_read.store(0, Ordering::Relaxed);
                    Body::Plain(Counting { inner: f, count: raw_read.clone() })
                }
                Source::Stdin => Body::Stream(Box::new(chained)),
            },
        };
        let mut head = Vec::new();
        let head_eof = read_full(&mut body, &mut head, HEAD).map_err(|e| InputError::Read {
            path: source.path(),
            offset: 0,
            source: e,
        })?;
        let pos = head.len() as u64;
        Ok(Input { source, compression, size, mtime, head, raw_read, body, pos, head_eof, skipped: 0 })
    }

    /// Fingerprint of the content: a keyed hash of its first line (or of the whole
    /// head when it holds no complete line). `None` for an empty input.
    pub fn fingerprint(&self, key: &IdKey) -> Option<u64> {
        if self.head.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', &self.head).map_or(self.head.len(), |p| p + 1);
        Some(content_hash(key, &self.head[..end]))
    }

    /// The complete lines of the head, for format detection.
    pub fn head_lines(&self) -> impl Iterator<Item = &[u8]> {
        let end = memchr::memrchr(b'\n', &self.head).map_or(0, |p| p + 1);
        let complete = if self.head_eof { &self.head[..] } else { &self.head[..end] };
        complete.split(|&c| c == b'\n').filter(|l| !l.is_empty()).map(|l| l.strip_suffix(b"\r").unwrap_or(l))
    }

    /// Whether the input can still grow (a plain file); a final line without
    /// a newline is then left for the next run.
    pub fn can_grow(&self) -> bool {
        matches!(self.body, Body::Plain(_))
    }

    /// Moves to decompressed `offset`, checking that the `TAIL_CHECK` bytes
    /// before it hash (keyed) to `tail_hash`. Returns false when the content there
    /// differs, i.e. the file is not the one the checkpoint was written for;
    /// the input must then be opened again to read it from the start.
    pub fn resume_at(&mut self, offset: u64, tail_hash: u64, key: &IdKey) -> Result<bool, InputError> {
        let check_from = offset.saturating_sub(TAIL_CHECK as u64);
        let mut tail = Vec::with_capacity(TAIL_CHECK);
        if offset <= self.head.len() as u64 {
            tail.extend_from_slice(&self.head[check_from as usize..offset as usize]);
        } else {
            let (path, pos0) = (self.source.path(), self.pos);
            let err = |e| InputError::Read { path: path.clone(), offset: pos0, source: e };
            match &mut self.body {
                Body::Plain(f) => {
                    let len = f.inner.metadata().map_err(err)?.len();
                    if len < offset {
                        return Ok(false);
                    }
                    f.inner.seek(SeekFrom::Start(check_from)).map_err(err)?;
                }
                Body::Stream(r) => {
                    let skip = check_from - self.pos;
                    let copied = io::copy(&mut r.by_ref().take(skip), &mut io::sink()).map_err(err)?;
                    if copied < skip {
                        return Ok(false);
                    }
                }
            }
            self.pos = check_from;
            let want = (offset - check_from) as usize;
            let mut buf = Vec::new();
            read_full(&mut self.body, &mut buf, want).map_err(err)?;
            self.pos += buf.len() as u64;
            tail = buf;
        }
        if tail.len() as u64 != offset - check_from || content_hash(key, &tail) != tail_hash {
            return Ok(false);
        }
        if offset <= self.head.len() as u64 {
            self.head.drain(..offset as usize);
        } else {
            self.head.clear();
        }
        self.skipped = offset;
        Ok(true)
    }

    /// Starts the reader thread; chunks arrive in order on the receiver.
    pub fn chunks(self) -> Chunks {
        let Input { head, body, skipped, source, raw_read, .. } = self;
        let (tx, rx) = sync_channel::<Chunk>(4);
        let name = source.path();
        let handle = std::thread::Builder::new()
            .name("xferstats-reader".into())
            .spawn(move || read_chunks(head, skipped, body, &name, tx))
            .expect("spawning the reader thread");
        Chunks { rx, _handle: handle, raw_read }
    }
}

/// Line-aligned pieces of an input.
#[derive(Debug)]
pub enum Chunk {
    /// Complete lines (ends with `\n`); `start` is the decompressed offset.
    Lines {
        /// Offset of `data[0]`.
        start: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A line longer than [`MAX_LINE`], skipped.
    Overlong {
        /// Its offset.
        start: u64,
        /// Its length including the newline.
        len: u64,
    },
    /// End of input; `data` is a last line without newline (may be empty).
    End {
        /// Offset of `data[0]`.
        start: u64,
        /// The unterminated tail.
        data: Vec<u8>,
    },
    /// Reading failed at `offset`.
    Error {
        /// Offset reached.
        offset: u64,
        /// The error.
        error: InputError,
    },
}

/// Receiver of an input's chunks.
pub struct Chunks {
    rx: Receiver<Chunk>,
    _handle: std::thread::JoinHandle<()>,
    /// Raw bytes read so far.
    pub raw_read: Arc<AtomicU64>,
}

impl Iterator for Chunks {
    type Item = Chunk;
    fn next(&mut self) -> Option<Chunk> {
        self.rx.recv().ok()
    }
}

fn read_chunks(head: Vec<u8>, skipped: u64, mut body: Body, name: &Path, tx: std::sync::mpsc::SyncSender<Chunk>) {
    // `buf` always starts at decompressed offset `start`.
    let mut start = skipped;
    let mut buf = head;
    let mut eof = false;
    let mut overlong: Option<u64> = None;
    loop {
        if !eof && buf.len() < CHUNK {
            let want = CHUNK - buf.len();
            match read_full(&mut body, &mut buf, want) {
                Ok(e) => eof = e,
                Err(e) => {
                    // Hand over the complete lines read before the error.
                    if overlong.is_none() {
                        if let Some(nl) = memchr::memrchr(b'\n', &buf) {
                            buf.truncate(nl + 1);
                            let len = buf.len() as u64;
                            if tx.send(Chunk::Lines { start, data: std::mem::take(&mut buf) }).is_err() {
                                return;
                            }
                            start += len;
                        }
                    }
                    let offset = start + buf.len() as u64;
                    let _ = tx.send(Chunk::Error {
                        offset,
                        error: InputError::Read { path: name.to_path_buf(), offset, source: e },
                    });
                    return;
                }
            }
        }
        if let Some(ol_start) = overlong {
            // Discard up to and including the next newline.
            match memchr::memchr(b'\n', &buf) {
                Some(nl) => {
                    let len = start + nl as u64 + 1 - ol_start;
                    start += nl as u64 + 1;
                    buf.drain(..=nl);
                    overlong = None;
                    if tx.send(Chunk::Overlong { start: ol_start, len }).is_err() {
                        return;
                    }
                }
                None => {
                    start += buf.len() as u64;
                    buf.clear();
                    if eof {
                        let len = start - ol_start;
                        let _ = tx.send(Chunk::Overlong { start: ol_start, len });
                        let _ = tx.send(Chunk::End { start, data: Vec::new() });
                        return;
                    }
                }
            }
            continue;
        }
        match memchr::memrchr(b'\n', &buf) {
            Some(nl) => {
                let rest = buf.split_off(nl + 1);
                let data = std::mem::replace(&mut buf, rest);
                let len = data.len() as u64;
                if tx.send(Chunk::Lines { start, data }).is_err() {
                    return;
                }
                start += len;
            }
            None if eof => {
                let _ = tx.send(Chunk::End { start, data: buf });
                return;
            }
            None if buf.len() >= MAX_LINE => {
                overlong = Some(start);
            }
            None => {}
        }
        if eof && buf.is_empty() {
            let _ = tx.send(Chunk::End { start, data: Vec::new() });
            return;
        }
    }
}

/// Keyed hash of the [`TAIL_CHECK`] bytes before `offset` within `data`
/// that starts at `data_start`; `None` if `data` does not hold them.
pub fn tail_hash(data: &[u8], data_start: u64, offset: u64, key: &IdKey) -> Option<u64> {
    let from = offset.saturating_sub(TAIL_CHECK as u64);
    if from < data_start || offset > data_start + data.len() as u64 {
        return None;
    }
    Some(content_hash(key, &data[(from - data_start) as usize..(offset - data_start) as usize]))
}

/// The stored hash of log content (fingerprints, tail hashes): keyed, as
/// the content holds client addresses.
pub fn content_hash(key: &IdKey, bytes: &[u8]) -> u64 {
    key.hash(xxh3_64(bytes))
}
