//! Inputs: files (plain, gzip, zstd — told apart by magic bytes, not by
//! name) and stdin, read in line-aligned chunks on a reader thread so that
//! decompression overlaps parsing and memory stays bounded whatever the
//! input size.
//!
//! Each input is opened once and each byte read once: the compression is
//! sniffed from the first bytes of the head, which is then handed on as the
//! start of the content, so stdin, pipes, process substitution (`<(zcat
//! f.gz)`) and FIFOs read exactly like the same bytes in a file. Only a
//! regular file can be read again (through a second descriptor of the same
//! open, never by name) or resumed at a checkpoint.
//!
//! Each input is identified by a fingerprint of its first kilobyte of
//! lines, not by its name: `log`, its renamed `log.1` and its compressed
//! `log.2.gz` are one input to the checkpoint ledger, so re-reading any of
//! them resumes where the last run stopped. The first line alone is not
//! enough: sshd `-E` files all begin `Server listening on ::1 port 22.`,
//! and files sharing one ledger entry would each be read again every run.
//! A file still shorter than that, and ledger entries written before, use
//! the first line ([`Input::first_line_fingerprint`]); resuming from one is
//! verified by the tail hash like any resume.
//!
//! [`LineReader`] (`lines.rs`) cuts the chunks into lines and keeps the
//! position a checkpoint records; it is the only reader of chunks.
//!
//! An input of a format whose lines all start with a syslog or log-file
//! prefix can have its chunks cut into lines and their prefixes parsed on
//! the reader thread too ([`Input::parse_ahead`]): that work then overlaps
//! the decoding and joining of the chunk before, which must stay on one
//! thread, in order.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::xxh3_64;

use crate::enrich::hostkey::IdKey;
use crate::formats::prefix::{Ahead, PrefixParser};
use crate::time::Clock;

use crate::error::InputError;

mod lines;

pub use lines::{Line, LineReader, Position};

/// Bytes handed to the parser at a time.
pub const CHUNK: usize = 1 << 20;
/// Longest line read; longer lines are skipped and reported.
pub const MAX_LINE: usize = 1 << 20;
/// How much of the head is read up front for detection and fingerprint.
const HEAD: usize = 64 * 1024;
/// How long a FIFO open may block before a warning names the FIFO.
const FIFO_NOTICE: Duration = Duration::from_secs(1);
/// The complete lines within this many first bytes identify an input
/// ([`Input::fingerprint`]).
pub const FINGERPRINT_SPAN: usize = 1024;
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

impl Body {
    /// [`read_full`] of the body. A plain file is read straight into the
    /// buffer's spare room: through [`Counting`]'s `read`, std would zero
    /// that room first (a memset of every chunk).
    fn read_full(&mut self, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
        match self {
            Body::Plain(c) => {
                let before = buf.len();
                let ended = read_full(&mut c.inner, buf, want);
                c.count.fetch_add((buf.len() - before) as u64, Ordering::Relaxed);
                ended
            }
            Body::Stream(r) => read_full(r, buf, want),
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
    /// A second descriptor of a regular file, to read it again from its
    /// start; `None` for a stream.
    rewind: Option<File>,
    /// Read as complete even if it is a plain file ([`Input::seal`]).
    sealed: bool,
    /// The parser and clock of its line prefixes, when they are parsed on
    /// the reader thread ([`Input::parse_ahead`]).
    ahead: Option<Box<(PrefixParser, Clock)>>,
}

/// Appends up to `want` bytes of `r` to `buf`; whether `r` ended first. On
/// an error, `buf` holds what was read before it. The room is reserved,
/// not zeroed: a small input costs what it holds, not a chunk's memset.
fn read_full(r: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    buf.reserve_exact(want);
    let n = r.by_ref().take(want as u64).read_to_end(buf)?;
    Ok(n < want)
}

/// What is known of an input before its first byte is read.
struct Known {
    size: Option<u64>,
    mtime: Option<i64>,
    rewind: Option<File>,
}

/// Opens a path for reading. Opening a FIFO blocks until a writer opens it
/// too, so that happens on a helper thread: after a second the FIFO is named
/// in a warning, after `wait` the open is given up (the helper is released
/// by opening the FIFO for writing once, which hands it an empty stream) and
/// the error names the wait.
fn open_path(p: &Path, wait: Duration) -> io::Result<File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    use std::sync::mpsc::RecvTimeoutError;
    if !std::fs::metadata(p).is_ok_and(|m| m.file_type().is_fifo()) {
        return File::open(p);
    }
    let (tx, rx) = sync_channel(1);
    let path = p.to_path_buf();
    let helper = std::thread::Builder::new().name("xferstats-fifo".into()).spawn(move || {
        let _ = tx.send(File::open(&path));
    })?;
    let started = Instant::now();
    let mut warned = false;
    loop {
        let left = wait.saturating_sub(started.elapsed());
        let step = if warned { left } else { left.min(FIFO_NOTICE) };
        match rx.recv_timeout(step) {
            Ok(opened) => {
                let _ = helper.join();
                return opened;
            }
            Err(RecvTimeoutError::Disconnected) => return Err(io::Error::other("the FIFO opener stopped")),
            Err(RecvTimeoutError::Timeout) if started.elapsed() < wait => {
                tracing::warn!(
                    "waiting up to {} s (--fifo-wait) for a writer on FIFO {}",
                    wait.as_secs(),
                    crate::sanitize::sanitize(&p.display().to_string())
                );
                warned = true;
            }
            Err(RecvTimeoutError::Timeout) => break,
        }
    }
    // Release the helper: it waits in open() for a writer, so be one.
    loop {
        let _writer = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(p);
        match rx.recv_timeout(Duration::from_millis(100)) {
            Err(RecvTimeoutError::Timeout) => continue,
            _ => break,
        }
    }
    let _ = helper.join();
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no writer opened this FIFO within {} s (--fifo-wait)", wait.as_secs()),
    ))
}

impl Input {
    /// Opens an input once and reads its head; the compression is sniffed
    /// from the head's first bytes, which stay part of the content. A FIFO
    /// without a writer is waited on for at most `fifo_wait` (a warning
    /// names it after a second), then reported as an error.
    pub fn open(source: Source, fifo_wait: Duration) -> Result<Input, InputError> {
        let open_err = |e| InputError::Open { path: source.path(), source: e };
        match &source {
            Source::Path(p) => {
                let f = open_path(p, fifo_wait).map_err(open_err)?;
                let md = f.metadata().map_err(open_err)?;
                if md.is_dir() {
                    return Err(open_err(io::Error::other("is a directory")));
                }
                if md.is_file() {
                    Input::from_file(source, f, &md)
                } else {
                    // A pipe, process substitution, FIFO or device: read
                    // once as a stream, like stdin.
                    Input::from_stream(source, Box::new(f))
                }
            }
            Source::Stdin => Input::from_stream(source, Box::new(io::stdin())),
        }
    }

    /// A regular file: seekable, so a checkpoint can resume it and a plain
    /// one can grow.
    fn from_file(source: Source, f: File, md: &std::fs::Metadata) -> Result<Input, InputError> {
        let mtime =
            md.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs() as i64);
        let rewind = f.try_clone().map_err(|e| InputError::Open { path: source.path(), source: e })?;
        let known = Known { size: Some(md.len()), mtime, rewind: Some(rewind) };
        Input::start(source, f, Body::Plain, known)
    }

    /// A stream (stdin, pipe, FIFO): read exactly once, never seeked.
    fn from_stream(source: Source, r: Box<dyn Read + Send>) -> Result<Input, InputError> {
        let known = Known { size: None, mtime: None, rewind: None };
        Input::start(source, r, |c| Body::Stream(Box::new(c)), known)
    }

    /// Reads the head of `raw`, sniffs its compression from the first bytes
    /// of it, and positions the body after the (decompressed) head: the
    /// bytes sniffed are never read twice, so a stream loses none of them.
    /// `plain` wraps `raw` when it is not compressed.
    fn start<R: Read + Send + 'static>(
        source: Source,
        raw: R,
        plain: impl FnOnce(Counting<R>) -> Body,
        known: Known,
    ) -> Result<Input, InputError> {
        let err = |e| InputError::Read { path: source.path(), offset: 0, source: e };
        let raw_read = Arc::new(AtomicU64::new(0));
        let mut raw = Counting { inner: raw, count: raw_read.clone() };
        let mut head = Vec::new();
        let mut head_eof = read_full(&mut raw, &mut head, HEAD).map_err(err)?;
        let compression = Compression::sniff(&head);
        let compressed = io::Cursor::new(head).chain(raw);
        let body = match compression {
            Compression::None => {
                let (cursor, raw) = compressed.into_inner();
                head = cursor.into_inner();
                plain(raw)
            }
            Compression::Gzip | Compression::Zstd => {
                let mut body = if compression == Compression::Gzip {
                    Body::Stream(Box::new(flate2::read::MultiGzDecoder::new(compressed)))
                } else {
                    Body::Stream(Box::new(zstd::stream::read::Decoder::new(compressed).map_err(err)?))
                };
                head = Vec::new();
                head_eof = read_full(&mut body, &mut head, HEAD).map_err(err)?;
                body
            }
        };
        let Known { size, mtime, rewind } = known;
        let pos = head.len() as u64;
        Ok(Input {
            source,
            compression,
            size,
            mtime,
            head,
            raw_read,
            body,
            pos,
            head_eof,
            skipped: 0,
            rewind,
            sealed: false,
            ahead: None,
        })
    }

    /// Whether the input is a regular file, which can be resumed at a
    /// checkpoint and read again from its start; a stream (stdin, pipe,
    /// FIFO) is read once, from its start.
    pub fn is_seekable(&self) -> bool {
        self.rewind.is_some()
    }

    /// The same file from its start again, through the descriptor opened
    /// first (not by name: the file may have been renamed since). Used when
    /// the content at a checkpoint differs.
    pub fn rewind(self) -> Result<Input, InputError> {
        match self.park() {
            Ok(parked) => parked.resume(),
            Err(stream) => Err(InputError::Read {
                path: stream.source.path(),
                offset: 0,
                source: io::Error::new(io::ErrorKind::Unsupported, "a stream cannot be read again"),
            }),
        }
    }

    /// Keeps only the descriptor of a regular file, dropping the head and
    /// any decompressor, to be read from its start later; `Err(self)` for a
    /// stream, which cannot be read again.
    pub fn park(self) -> Result<Parked, Box<Input>> {
        match self.rewind {
            Some(file) => Ok(Parked { source: self.source, file }),
            None => Err(Box::new(self)),
        }
    }
}

impl Input {
    /// A regular file the caller keeps open (a follower's descriptor), read
    /// from its start through a duplicate of the descriptor — whatever
    /// name the file has by now, or none.
    pub fn reopen(source: Source, file: &File) -> Result<Input, InputError> {
        let dup = file.try_clone().map_err(|e| InputError::Open { path: source.path(), source: e })?;
        Parked { source, file: dup }.resume()
    }

    /// Has the reader thread cut the chunks into lines and parse every
    /// line's prefix with `parser` and `clock`, in order, as the input's
    /// decoder would: each [`Line::Text`] then comes with its prefix parsed
    /// ahead, for [`PrefixParser::preset`]. Only for a format whose decoder
    /// parses the prefix of every line first, with a parser and clock like
    /// these (the results are then the same).
    pub fn parse_ahead(&mut self, parser: PrefixParser, clock: Clock) {
        self.ahead = Some(Box::new((parser, clock)));
    }

    /// Reads the input as complete: a last line without newline is
    /// returned as it is instead of being left for a later read (a
    /// follower's file rotated away and no longer written).
    pub fn seal(&mut self) {
        self.sealed = true;
    }
}

/// A regular file opened and looked at, waiting to be read: one descriptor,
/// no buffers.
#[derive(Debug)]
pub struct Parked {
    source: Source,
    file: File,
}

impl Parked {
    /// The file from its start, through the same open.
    pub fn resume(self) -> Result<Input, InputError> {
        let Parked { source, mut file } = self;
        let err = |e| InputError::Read { path: source.path(), offset: 0, source: e };
        file.seek(SeekFrom::Start(0)).map_err(err)?;
        let md = file.metadata().map_err(err)?;
        Input::from_file(source, file, &md)
    }
}

impl Input {
    /// Fingerprint of the content: a keyed hash of the complete lines within
    /// its first [`FINGERPRINT_SPAN`] bytes once it has that many; before
    /// (and when its first line is longer) the
    /// [`first_line_fingerprint`](Input::first_line_fingerprint). It does
    /// not change as the input grows past the span. `None` for an empty
    /// input.
    pub fn fingerprint(&self, key: &IdKey) -> Option<u64> {
        match self.head.get(..FINGERPRINT_SPAN).and_then(|span| Some(&span[..=memchr::memrchr(b'\n', span)?])) {
            Some(lines) => Some(content_hash(key, lines)),
            None => self.first_line_fingerprint(key),
        }
    }

    /// Whether `fp` is this input's fingerprint, or the first-line
    /// fingerprint it had while it was shorter than the fingerprint span (a
    /// followed log that has grown past it since: the same file).
    pub fn has_fingerprint(&self, key: &IdKey, fp: Option<u64>) -> bool {
        fp.is_some() && (self.fingerprint(key) == fp || self.first_line_fingerprint(key) == fp)
    }

    /// A keyed hash of the first line (or of the whole head when it holds
    /// no complete line): the fingerprint of a short input, and of every
    /// input in stores written before [`Input::fingerprint`] looked
    /// further. `None` for an empty input.
    pub fn first_line_fingerprint(&self, key: &IdKey) -> Option<u64> {
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
        matches!(self.body, Body::Plain(_)) && !self.sealed
    }

    /// Moves to decompressed `offset`, checking that the `TAIL_CHECK` bytes
    /// before it hash (keyed) to `tail_hash`; returns those bytes. `None`
    /// when the content there differs, i.e. the file is not the one the
    /// checkpoint was written for; the input must then be read again from
    /// its start ([`Input::rewind`]).
    fn resume_at(&mut self, offset: u64, tail_hash: u64, key: &IdKey) -> Result<Option<Vec<u8>>, InputError> {
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
                        return Ok(None);
                    }
                    f.inner.seek(SeekFrom::Start(check_from)).map_err(err)?;
                }
                Body::Stream(r) => {
                    let skip = check_from - self.pos;
                    let copied = io::copy(&mut r.by_ref().take(skip), &mut io::sink()).map_err(err)?;
                    if copied < skip {
                        return Ok(None);
                    }
                }
            }
            self.pos = check_from;
            let want = (offset - check_from) as usize;
            self.body.read_full(&mut tail, want).map_err(err)?;
            self.pos += tail.len() as u64;
        }
        if tail.len() as u64 != offset - check_from || content_hash(key, &tail) != tail_hash {
            return Ok(None);
        }
        if offset <= self.head.len() as u64 {
            self.head.drain(..offset as usize);
        } else {
            self.head.clear();
        }
        self.skipped = offset;
        Ok(Some(tail))
    }

    /// Starts the reader thread; chunks arrive in order on the receiver.
    fn chunks(self) -> Chunks {
        let Input { head, body, skipped, source, raw_read, ahead, .. } = self;
        let (tx, rx) = sync_channel::<Chunk>(QUEUED);
        let (spent, recycled) = sync_channel::<Spent>(RECYCLED);
        let name = source.path();
        let handle = std::thread::Builder::new()
            .name("xferstats-reader".into())
            .spawn(move || {
                read_chunks(head, skipped, body, &name, tx, Cutter { ahead, recycled, newlines: Vec::new() })
            })
            .expect("spawning the reader thread");
        Chunks { rx, spent, _handle: handle, raw_read }
    }
}

/// A line of a chunk, cut and its prefix parsed on the reader thread
/// ([`Input::parse_ahead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    /// Offset in the chunk of the line after it (after its newline).
    next: u32,
    /// The line's prefix (and length, without `\r\n`).
    ahead: Ahead,
}

/// Buffers of a chunk that was cut, handed back to the reader thread.
type Spent = (Vec<u8>, Vec<Cut>);

/// Line-aligned pieces of an input.
#[derive(Debug)]
enum Chunk {
    /// Complete lines (ends with `\n`); `start` is the decompressed offset.
    Lines {
        /// Offset of `data[0]`.
        start: u64,
        /// The bytes.
        data: Vec<u8>,
        /// Its lines, when cut on the reader thread (else empty).
        cuts: Vec<Cut>,
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
        /// It as a line, when cut on the reader thread (else empty).
        cuts: Vec<Cut>,
    },
    /// Reading failed (the error names the offset).
    Error {
        /// The error.
        error: InputError,
    },
}

/// Chunks read ahead of the line reader at most.
const QUEUED: usize = 4;

/// Chunk buffers handed back to the reader thread at most, to be filled
/// again: their memory is already mapped and paged in, so a chunk costs no
/// allocation, no page faults and no copy of a grown buffer. As many as
/// can be in use at once (the queue, the chunk being filled and the one
/// being cut): a buffer dropped because there was no room for it here was
/// allocated and paged in anew a little later (with two, ~1,700 page
/// faults per 115 MB, a fifth of the run's). The reader thread takes one
/// only when it needs one, so no more are made than with fewer.
const RECYCLED: usize = QUEUED + 2;

/// Receiver of an input's chunks.
struct Chunks {
    rx: Receiver<Chunk>,
    /// Hands cut chunks back to the reader thread.
    spent: std::sync::mpsc::SyncSender<Spent>,
    _handle: std::thread::JoinHandle<()>,
    /// Raw bytes read so far.
    raw_read: Arc<AtomicU64>,
}

impl Iterator for Chunks {
    type Item = Chunk;
    fn next(&mut self) -> Option<Chunk> {
        self.rx.recv().ok()
    }
}

impl Chunks {
    /// Gives the buffer of a chunk that was cut back to the reader thread
    /// (dropped when it holds enough already, or has ended).
    fn recycle(&self, mut data: Vec<u8>, mut cuts: Vec<Cut>) {
        if data.capacity() >= CHUNK {
            data.clear();
            cuts.clear();
            let _ = self.spent.try_send((data, cuts));
        }
    }
}

/// The reader thread's side of cutting chunks: the buffers handed back,
/// and the prefix parser when lines are cut there.
struct Cutter {
    ahead: Option<Box<(PrefixParser, Clock)>>,
    recycled: Receiver<Spent>,
    /// The newlines of the chunk being cut ([`newlines`]).
    newlines: Vec<u32>,
}

impl Cutter {
    /// A buffer for the next chunk: one handed back, or a new one.
    fn buffers(&self) -> Spent {
        self.recycled.try_recv().unwrap_or_else(|_| (Vec::with_capacity(CHUNK), Vec::new()))
    }

    /// The lines of `data` (complete ones, and a last one without newline)
    /// into `cuts`, each with its prefix parsed, when lines are cut here.
    /// Lines are cut as [`LineReader::next_line`] cuts them.
    fn cut(&mut self, data: &[u8], cuts: &mut Vec<Cut>) {
        let Some(ahead) = &mut self.ahead else { return };
        let (parser, clock) = &mut **ahead;
        newlines(data, &mut self.newlines);
        let mut pos = 0;
        let mut one = |line: &[u8], next: usize| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            cuts.push(Cut { next: next as u32, ahead: parser.parse_ahead(line, clock) });
        };
        for &nl in &self.newlines {
            let nl = nl as usize;
            one(&data[pos..nl], nl + 1);
            pos = nl + 1;
        }
        if pos < data.len() {
            one(&data[pos..], data.len());
        }
    }
}

/// The offsets of the newlines of `data` (at most [`CHUNK`] bytes) into
/// `out`, in order. It is searched 64 bytes at a time, each block into a
/// mask of its newlines: one `memchr` call per line (~115 bytes) cost
/// more to set up than its search.
fn newlines(data: &[u8], out: &mut Vec<u32>) {
    out.clear();
    let mut blocks = data.chunks_exact(64);
    let mut base = 0u32;
    for block in &mut blocks {
        let mut mask = newline_mask64(block.try_into().expect("64 bytes"));
        while mask != 0 {
            out.push(base + mask.trailing_zeros());
            mask &= mask - 1;
        }
        base += 64;
    }
    out.extend(blocks.remainder().iter().zip(base..).filter(|&(&c, _)| c == b'\n').map(|(_, at)| at));
}

/// Bit `i` set for each newline `b[i]`, 16 bytes at a time (SSE2, which
/// every x86-64 has).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn newline_mask64(b: &[u8; 64]) -> u64 {
    // SAFETY: the function only needs SSE2, which this build's target has
    // (the `cfg` above); it reads nothing but `b`.
    unsafe { newline_mask64_sse2(b) }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn newline_mask64_sse2(b: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    let newline = _mm_set1_epi8(b'\n' as i8);
    let mut mask = 0;
    for (i, sixteen) in b.chunks_exact(16).enumerate() {
        // SAFETY: an unaligned load of 16 bytes, all of them in `b`.
        let v = unsafe { _mm_loadu_si128(sixteen.as_ptr().cast::<__m128i>()) };
        mask |= u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, newline)) as u16) << (16 * i);
    }
    mask
}

/// [`newline_mask64`] a byte at a time.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn newline_mask64(b: &[u8; 64]) -> u64 {
    b.iter().enumerate().fold(0, |m, (i, &c)| m | (u64::from(c == b'\n') << i))
}

fn read_chunks(
    head: Vec<u8>,
    skipped: u64,
    mut body: Body,
    name: &Path,
    tx: std::sync::mpsc::SyncSender<Chunk>,
    mut cutter: Cutter,
) {
    // `buf` always starts at decompressed offset `start`.
    let mut start = skipped;
    let mut buf = head;
    let mut cuts = Vec::new();
    let mut eof = false;
    let mut overlong: Option<u64> = None;
    loop {
        if !eof && buf.len() < CHUNK {
            let want = CHUNK - buf.len();
            match body.read_full(&mut buf, want) {
                Ok(e) => eof = e,
                Err(e) => {
                    // Hand over the complete lines read before the error.
                    if overlong.is_none() {
                        if let Some(nl) = memchr::memrchr(b'\n', &buf) {
                            buf.truncate(nl + 1);
                            let len = buf.len() as u64;
                            cutter.cut(&buf, &mut cuts);
                            if tx.send(Chunk::Lines { start, data: std::mem::take(&mut buf), cuts }).is_err() {
                                return;
                            }
                            start += len;
                        }
                    }
                    let offset = start + buf.len() as u64;
                    let _ = tx
                        .send(Chunk::Error { error: InputError::Read { path: name.to_path_buf(), offset, source: e } });
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
                        let _ = tx.send(Chunk::End { start, data: Vec::new(), cuts: Vec::new() });
                        return;
                    }
                }
            }
            continue;
        }
        match memchr::memrchr(b'\n', &buf) {
            Some(nl) => {
                // The partial last line moves to the next buffer: one
                // handed back by the line reader, or a new one.
                let (mut next, next_cuts) = cutter.buffers();
                next.extend_from_slice(&buf[nl + 1..]);
                buf.truncate(nl + 1);
                let data = std::mem::replace(&mut buf, next);
                let len = data.len() as u64;
                cutter.cut(&data, &mut cuts);
                let cuts = std::mem::replace(&mut cuts, next_cuts);
                if tx.send(Chunk::Lines { start, data, cuts }).is_err() {
                    return;
                }
                start += len;
            }
            None if eof => {
                cutter.cut(&buf, &mut cuts);
                let _ = tx.send(Chunk::End { start, data: buf, cuts });
                return;
            }
            None if buf.len() >= MAX_LINE => {
                overlong = Some(start);
            }
            None => {}
        }
        if eof && buf.is_empty() {
            let _ = tx.send(Chunk::End { start, data: Vec::new(), cuts: Vec::new() });
            return;
        }
    }
}

/// The stored hash of log content (fingerprints, tail hashes): keyed, as
/// the content holds client addresses.
pub fn content_hash(key: &IdKey, bytes: &[u8]) -> u64 {
    key.hash(xxh3_64(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn all(input: Input) -> Vec<u8> {
        let mut out = Vec::new();
        for c in input.chunks() {
            match c {
                Chunk::Lines { data, .. } => out.extend_from_slice(&data),
                Chunk::End { data, .. } => {
                    out.extend_from_slice(&data);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        out
    }

    fn content() -> Vec<u8> {
        (0..20_000).flat_map(|i| format!("line {i} of the content\n").into_bytes()).collect()
    }

    /// A reader that hands out at most 3 bytes a call, is interrupted
    /// once, then fails after `fail_at` bytes (if any).
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        interrupted: bool,
        fail_at: Option<usize>,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.interrupted {
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.fail_at.is_some_and(|f| self.pos >= f) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(3).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn newlines_are_found_at_every_offset() {
        let found = |data: &[u8]| {
            let mut out = vec![7];
            newlines(data, &mut out);
            out.into_iter().map(|at| at as usize).collect::<Vec<_>>()
        };
        for len in [0, 1, 63, 64, 65, 127, 128, 130, 200] {
            let base: Vec<u8> = (0..len).map(|i| [b'a', b'\r', 0x8a, 0x0b, 0x09][i % 5]).collect();
            assert_eq!(found(&base), Vec::<usize>::new(), "{len}");
            for at in 0..len {
                let mut b = base.clone();
                b[at] = b'\n';
                let mut both = b.clone();
                both[len - 1] = b'\n';
                for data in [b, both] {
                    let want: Vec<usize> = (0..len).filter(|&i| data[i] == b'\n').collect();
                    assert_eq!(found(&data), want, "{len} {at}");
                }
            }
        }
        assert_eq!(found(&[b'\n'; 150]), (0..150).collect::<Vec<_>>());
    }

    #[test]
    fn read_full_appends_up_to_what_is_wanted_and_tells_the_end() {
        let trickle = |fail_at| Trickle { data: b"0123456789".to_vec(), pos: 0, interrupted: false, fail_at };
        let (mut r, mut buf) = (trickle(None), b"ab".to_vec());
        assert!(!read_full(&mut r, &mut buf, 4).unwrap());
        assert_eq!(buf, b"ab0123");
        assert!(!read_full(&mut r, &mut buf, 6).unwrap(), "exactly what was left: the end is not seen yet");
        assert_eq!(buf, b"ab0123456789");
        assert!(read_full(&mut r, &mut buf, 5).unwrap());
        assert_eq!(buf, b"ab0123456789");
        // An error keeps what was read before it.
        let (mut r, mut buf) = (trickle(Some(6)), Vec::new());
        assert_eq!(read_full(&mut r, &mut buf, 10).unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(buf, b"012345");
    }

    #[test]
    fn a_stream_is_sniffed_from_its_head_and_read_once() {
        let data = content();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        for (bytes, compression) in [(data.clone(), Compression::None), (gz, Compression::Gzip)] {
            let raw_len = bytes.len() as u64;
            let input = Input::from_stream(Source::Stdin, Box::new(io::Cursor::new(bytes))).unwrap();
            assert_eq!(input.compression, compression);
            assert!(!input.is_seekable() && !input.can_grow());
            assert!(input.head.starts_with(b"line 0 of the content\n"));
            let raw = input.raw_read.clone();
            assert_eq!(all(input), data);
            assert_eq!(raw.load(Ordering::Relaxed), raw_len);
        }
    }

    #[test]
    fn a_file_is_read_again_through_its_first_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, content()).unwrap();
        let input = Input::open(Source::Path(p.clone()), Duration::from_secs(1)).unwrap();
        assert!(input.is_seekable() && input.can_grow());
        assert_eq!(input.size, Some(content().len() as u64));
        // Renamed away and replaced: the rewind still reads the file opened.
        std::fs::rename(&p, dir.path().join("log.1")).unwrap();
        std::fs::write(&p, b"another file\n").unwrap();
        let input = input.rewind().unwrap();
        let key = IdKey::unkeyed();
        assert_eq!(input.first_line_fingerprint(&key), Some(content_hash(&key, b"line 0 of the content\n")));
        assert_eq!(all(input), content());
    }

    /// The input of `data` (a file: the head holds its first bytes).
    fn file_of(dir: &Path, name: &str, data: &[u8]) -> Input {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        Input::open(Source::Path(p), Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn the_fingerprint_covers_the_first_kilobyte_of_lines() {
        let dir = tempfile::tempdir().unwrap();
        let key = IdKey::unkeyed();
        let first = b"Server listening on ::1 port 2222.\n";
        let file = |name: &str, n: usize, tag: &str| {
            let mut data = first.to_vec();
            for i in 0..n {
                data.extend_from_slice(format!("Accepted password for {tag} from 192.0.2.{i} port 22\n").as_bytes());
            }
            file_of(dir.path(), name, &data)
        };
        // Short: the first line, as before.
        let short = file("short", 3, "a");
        assert_eq!(short.fingerprint(&key), Some(content_hash(&key, first)));
        // Same first line, other content past it: distinct identities.
        let (a, b) = (file("a", 40, "a"), file("b", 40, "b"));
        assert_ne!(a.fingerprint(&key), b.fingerprint(&key));
        assert_eq!(a.first_line_fingerprint(&key), b.first_line_fingerprint(&key));
        // Growing past the span changes nothing: complete lines up to it.
        let grown = file("grown", 400, "a");
        assert_eq!(a.fingerprint(&key), grown.fingerprint(&key));
        let head = &std::fs::read(dir.path().join("a")).unwrap()[..FINGERPRINT_SPAN];
        let cut = head.iter().rposition(|&c| c == b'\n').unwrap() + 1;
        assert_eq!(a.fingerprint(&key), Some(content_hash(&key, &head[..cut])));
        // A first line longer than the span: that line.
        let long = file_of(dir.path(), "long", &[vec![b'x'; 3000], b"\nnext\n".to_vec()].concat());
        assert_eq!(long.fingerprint(&key), long.first_line_fingerprint(&key));
        assert_eq!(file_of(dir.path(), "empty", b"").fingerprint(&key), None);
    }
}
