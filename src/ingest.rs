//! The ingest engine: inputs → format → decoder → store, with checkpoints.
//!
//! Inputs are read in the order their first lines were written (so `log.2.gz
//! log.1 log` given in any order is read oldest first and a session split
//! across a rotation joins up). Each input resumes from its checkpoint. Every
//! commit carries the events, the input's new checkpoint and the decoders'
//! open sessions in one store transaction — after a crash the next run
//! starts exactly where the last commit ended.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::enrich::hostkey::{HostKey, IdKey};
use crate::enrich::{Enricher, IpMode};
use crate::error::Error;
use crate::formats::prefix::PrefixParser;
use crate::formats::proftpd_extended::ExtendedFormat;
use crate::formats::rsync::LogFormat;
use crate::formats::{Format, Templates};
use crate::input::{Compression, Input, Line, LineReader, Parked, Position, Source, CHUNK};
use crate::model::{Event, Micros};
use crate::sanitize::sanitize_bytes;
use crate::sessions::{AnyDecoder, Horizon, IdGen, Joins, LineContext, Outcome, Texts};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

use crate::error::StoreError;
use crate::sinks::{Checkpoint, Commit, Committed, HookRow, LedgerEntry, RekeyState, Sink};
use crate::time::{Clock, Plausible, TimeZone};

/// A batch is committed once the lines it was decoded from reach this many
/// bytes, even with fewer events than `--batch-size`.
const BATCH_BYTES: usize = 64 << 20;

/// Events per store transaction unless the store asks for another number
/// ([`Sink::batch_events`]) or `--batch-size` says otherwise.
pub const BATCH_EVENTS: usize = 10_000;

/// … into a store that takes a transaction in parts ([`Sink::part_events`])
/// in a batch import: memory holds a part, and the daily rollups are
/// written once per transaction, so larger transactions cost less (the
/// transaction still ends after `BATCH_BYTES` of log).
pub const PARTED_BATCH_EVENTS: usize = 500_000;

/// Rejected-line samples kept per input.
const SAMPLES_PER_INPUT: usize = 3;

/// What to ingest and how to read it.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Inputs in the order given.
    pub inputs: Vec<Source>,
    /// Forced format, or `None` to detect per input.
    pub format: Option<Format>,
    /// Zone of zone-less time stamps.
    pub timezone: TimeZone,
    /// rsyncd `log format` of per-file lines.
    pub rsync_log_format: LogFormat,
    /// ProFTPD `LogFormat` of ExtendedLog files.
    pub proftpd_log_format: ExtendedFormat,
    /// Server host for logs that do not name one.
    pub server_host: String,
    /// Events per store transaction; `None`: [`BATCH_EVENTS`], or
    /// [`PARTED_BATCH_EVENTS`] into a store that takes transactions in
    /// parts.
    pub batch_events: Option<usize>,
    /// Event times accepted; a line with an event outside is rejected.
    pub plausible: Plausible,
    /// How long to wait for a writer on a FIFO before giving it up.
    pub fifo_wait: Duration,
    /// Hooks whose deliveries the commits queue ([`crate::actions`]);
    /// `None`: none (`--no-hooks`, or none configured).
    pub hooks: Option<std::sync::Arc<crate::actions::Hooks>>,
}

/// Progress reporting hooks (a terminal bar, or nothing).
pub trait Progress {
    /// An input starts; `size` is its on-disk size when known.
    fn start(&self, name: &str, size: Option<u64>);
    /// Raw bytes of the current input read so far.
    fn advance(&self, raw: u64);
    /// The current input is done.
    fn finish(&self);
}

/// No progress output.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// How reading one input ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputStatus {
    /// Read to the end.
    Read,
    /// Empty: nothing to do.
    Empty,
    /// No known format in its first lines; not read.
    Unrecognised,
    /// Read with a forced format, but (nearly) every line is foreign to it
    /// and none was used: the format does not fit the input.
    Mismatch {
        /// Lines that are not of the format.
        foreign: u64,
    },
    /// Read from its start, but (nearly) every line was rejected and none
    /// was used (see [`unusable`]): not marked as read, so the same input
    /// read again with the right options is read in full.
    Unusable {
        /// The option that is probably missing or wrong.
        hint: String,
    },
    /// Opening or reading failed; what was read before is committed.
    Failed(String),
}

/// Outcome for one input.
#[derive(Debug, Clone)]
pub struct InputReport {
    /// Name as given.
    pub name: String,
    /// Format it was read as.
    pub format: Option<Format>,
    /// Compression detected.
    pub compression: Option<Compression>,
    /// How it ended.
    pub status: InputStatus,
    /// Offset an earlier run had consumed (resumed from there).
    pub resumed_from: u64,
    /// Lines read in this run.
    pub lines: u64,
    /// Decompressed bytes read in this run.
    pub bytes: u64,
    /// Lines rejected in this run.
    pub rejected: u64,
    /// Lines well-formed but without anything to count.
    pub ignored: u64,
    /// A last line without newline was left for the next run.
    pub unterminated: bool,
}

impl InputReport {
    fn new(name: String, format: Option<Format>, status: InputStatus) -> InputReport {
        InputReport {
            name,
            format,
            compression: None,
            status,
            resumed_from: 0,
            lines: 0,
            bytes: 0,
            rejected: 0,
            ignored: 0,
            unterminated: false,
        }
    }
}

/// A rejected line, for the summary.
#[derive(Debug, Clone)]
pub struct RejectSample {
    /// Input name.
    pub input: String,
    /// Line number (1-based, counted from the start of the input).
    pub line: u64,
    /// Why.
    pub reason: Cow<'static, str>,
    /// The line, sanitised and shortened.
    pub text: String,
}

/// Result of an ingest run.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// Store description.
    pub store: String,
    /// Per input.
    pub inputs: Vec<InputReport>,
    /// Events added.
    pub events_new: u64,
    /// Events already present.
    pub events_dup: u64,
    /// Samples of rejected lines.
    pub samples: Vec<RejectSample>,
    /// Wall time.
    pub elapsed: Duration,
}

impl IngestReport {
    /// Lines read.
    pub fn lines(&self) -> u64 {
        self.inputs.iter().map(|i| i.lines).sum()
    }
    /// Bytes read.
    pub fn bytes(&self) -> u64 {
        self.inputs.iter().map(|i| i.bytes).sum()
    }
    /// Lines rejected.
    pub fn rejected(&self) -> u64 {
        self.inputs.iter().map(|i| i.rejected).sum()
    }

    /// The documented exit code: 3 if an input could not be read, 1 if
    /// lines were rejected or an input was not recognised, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.inputs.iter().any(|i| matches!(i.status, InputStatus::Failed(_))) {
            crate::EXIT_INPUT
        } else if self.rejected() > 0
            || self.inputs.iter().any(|i| {
                matches!(
                    i.status,
                    InputStatus::Unrecognised | InputStatus::Mismatch { .. } | InputStatus::Unusable { .. }
                )
            })
        {
            crate::EXIT_REJECTED
        } else {
            crate::EXIT_OK
        }
    }

    /// One `xferstats: error: …` line per input that could not be read
    /// (missing, unreadable, a directory, a read error part-way): printed
    /// before the summary, and alone under `-q`.
    pub fn error_lines(&self) -> String {
        let mut s = String::new();
        for i in &self.inputs {
            if let InputStatus::Failed(e) = &i.status {
                s.push_str("xferstats: error: ");
                s.push_str(&sanitize_bytes(e.as_bytes(), 300));
                s.push('\n');
            }
        }
        s
    }

    /// The human summary printed after an import, after the error lines of
    /// the inputs that failed ([`IngestReport::error_lines`]).
    pub fn render(&self, verbose: bool) -> String {
        use std::fmt::Write;
        let mut s = self.error_lines();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mb = self.bytes() as f64 / 1e6;
        let _ = writeln!(
            s,
            "ingested {} file(s), {} lines ({:.1} MB) in {:.2} s ({:.0} MB/s): {} new events, {} already present, {} rejected lines → {}",
            self.inputs.len(),
            self.lines(),
            mb,
            secs,
            mb / secs,
            self.events_new,
            self.events_dup,
            self.rejected(),
            self.store
        );
        for i in &self.inputs {
            let name = sanitize_bytes(i.name.as_bytes(), 200);
            let note = match &i.status {
                InputStatus::Read if i.lines == 0 && i.resumed_from > 0 => "already imported, nothing new".to_string(),
                InputStatus::Read => String::new(),
                InputStatus::Empty => "empty".to_string(),
                InputStatus::Unrecognised => {
                    "not a recognised transfer log (no line of its head matches a format; --format forces one)"
                        .to_string()
                }
                InputStatus::Mismatch { foreign } => format!(
                    "{foreign} of its {} lines are not {} lines and none was used (wrong --format?){}",
                    i.lines,
                    i.format.map_or("-", |f| f.name()),
                    if i.resumed_from == 0 { "; not marked as read" } else { "" }
                ),
                InputStatus::Unusable { hint } => format!(
                    "{} of its {} lines rejected and none used: not marked as read (read again in full next time); \
                     probably {hint}",
                    i.rejected, i.lines
                ),
                InputStatus::Failed(_) => "stopped by the error above".to_string(),
            };
            // Nothing new in an input read before is the normal case of a
            // scheduled run: only `-v` says so.
            // A failed input has its own error line above the summary; one
            // that failed part-way is listed too, for what was read of it.
            if matches!(i.status, InputStatus::Failed(_)) && i.lines == 0 {
                continue;
            }
            let routine = note.is_empty() || matches!(i.status, InputStatus::Read);
            let interesting = !routine || i.rejected > 0 || i.unterminated;
            if verbose || interesting {
                let _ = write!(
                    s,
                    "  {name}: {}{}, {} lines",
                    i.format.map_or("-", |f| f.name()),
                    i.compression.map_or(String::new(), |c| if c == Compression::None {
                        String::new()
                    } else {
                        format!(" ({})", c.name())
                    }),
                    i.lines
                );
                if i.resumed_from > 0 {
                    let _ = write!(s, ", resumed at byte {}", i.resumed_from);
                }
                if i.rejected > 0 {
                    let _ = write!(s, ", {} rejected", i.rejected);
                }
                if verbose && i.ignored > 0 {
                    let _ = write!(s, ", {} without events", i.ignored);
                }
                if !note.is_empty() {
                    let _ = write!(s, ": {note}");
                }
                if i.unterminated {
                    let _ = write!(s, " (last line has no newline yet; left for the next run)");
                }
                s.push('\n');
            }
        }
        if !self.samples.is_empty() {
            let _ = writeln!(s, "rejected lines (first {}):", self.samples.len());
            for r in &self.samples {
                let _ =
                    writeln!(s, "  {}:{}: {}: {}", sanitize_bytes(r.input.as_bytes(), 200), r.line, r.reason, r.text);
            }
        }
        s
    }
}

/// Regular files looked at are kept open (descriptor only) up to this many
/// inputs; beyond, they are closed and opened again by name to be read.
const KEEP_OPEN: usize = 256;

/// What stays of an input between the look at its head and its reading.
enum Held {
    /// A stream (stdin, pipe, FIFO), which cannot be opened again: kept as
    /// it is, head included.
    Stream(Input),
    /// A regular file: its descriptor.
    Parked(Parked),
    /// A regular file of a long list: closed, opened again by name.
    Closed,
}

struct Prepared {
    source: Source,
    held: Held,
    /// Fingerprint of the head looked at.
    fingerprint: Option<u64>,
    format: Option<Format>,
    first_time: Option<i64>,
    head: Head,
    order: usize,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn clock_for(input: &Input, tz: TimeZone) -> Clock {
    Clock::new(tz, input.mtime.unwrap_or_else(now_secs))
}

/// A request to the store worker. The store runs on its own thread so that
/// parsing the next batch overlaps committing the last one; requests are
/// served in order, so a checkpoint read sees every commit sent before it.
enum Request {
    Checkpoint(u64, SyncSender<Result<Option<Checkpoint>, StoreError>>),
    State(String, SyncSender<Result<Option<String>, StoreError>>),
    Ledger(SyncSender<Result<Vec<LedgerEntry>, StoreError>>),
    Commit {
        events: Vec<Event>,
        input: Option<u64>,
        checkpoint: Option<Checkpoint>,
        states: Vec<(String, String)>,
        outbox: Vec<HookRow>,
    },
    /// A part of the transaction the next commit commits ([`Sink::part`]).
    Part {
        events: Vec<Event>,
        input: Option<u64>,
        outbox: Vec<HookRow>,
    },
    /// The alert windows an earlier run saved, for the enrich stage (which
    /// keeps them); not given to the store.
    Alerts(crate::actions::AlertWindows),
}

/// Commits waiting for the store worker (follow mode): while the store is
/// unreachable the engine reads on into this queue, up to a limit the
/// follower checks ([`SinkHandle::buffered`]), instead of blocking.
#[derive(Default)]
struct Queue {
    /// Commits in order, with the log bytes each was read from.
    waiting: VecDeque<(Request, u64)>,
    /// Sum of those bytes.
    bytes: u64,
    /// The newest checkpoint queued or sent per fingerprint: what the store
    /// will hold once the queue is through, so that reading resumes
    /// without asking a store that may be down.
    checkpoints: HashMap<u64, Checkpoint>,
}

/// The engine's side of the store worker.
pub(crate) struct SinkHandle {
    tx: SyncSender<Request>,
    /// `None`: every request blocks until the worker takes it (ingest).
    queue: Option<Queue>,
}

/// The worker stopped (its own error is reported instead of this one).
fn worker_gone() -> Error {
    Error::Store(StoreError::State { scope: "store".into(), reason: "the store worker stopped".into() })
}

impl SinkHandle {
    /// The checkpoint of `fingerprint`: the newest queued (follow mode), or
    /// the store's.
    pub(crate) fn checkpoint(&mut self, fingerprint: u64) -> Result<Option<Checkpoint>, Error> {
        if let Some(cp) = self.queued(fingerprint) {
            return Ok(Some(cp));
        }
        self.drain()?;
        let (reply, answer) = sync_channel(1);
        self.tx.send(Request::Checkpoint(fingerprint, reply)).map_err(|_| worker_gone())?;
        answer.recv().map_err(|_| worker_gone())?.map_err(Error::Store)
    }

    /// Whether the engine follows growing logs (commits queued): what it
    /// reads of a file comes in pieces, and a first piece of nothing but
    /// rejected lines says nothing of the file.
    fn following(&self) -> bool {
        self.queue.is_some()
    }

    /// The newest checkpoint of `fingerprint` queued or sent (follow mode),
    /// known without asking the store.
    fn queued(&self, fingerprint: u64) -> Option<Checkpoint> {
        self.queue.as_ref().and_then(|q| q.checkpoints.get(&fingerprint)).cloned()
    }

    fn state(&mut self, scope: String) -> Result<Option<String>, Error> {
        self.drain()?;
        let (reply, answer) = sync_channel(1);
        self.tx.send(Request::State(scope, reply)).map_err(|_| worker_gone())?;
        answer.recv().map_err(|_| worker_gone())?.map_err(Error::Store)
    }

    /// The store's ledger, once every commit sent before is in.
    pub(crate) fn ledger(&mut self) -> Result<Vec<LedgerEntry>, Error> {
        self.drain()?;
        let (reply, answer) = sync_channel(1);
        self.tx.send(Request::Ledger(reply)).map_err(|_| worker_gone())?;
        answer.recv().map_err(|_| worker_gone())?.map_err(Error::Store)
    }

    /// Sends a commit read from `bytes` log bytes: straight to the worker,
    /// or (follow mode) through the queue.
    fn commit(&mut self, req: Request, bytes: u64) -> Result<(), Error> {
        let Some(q) = &mut self.queue else {
            return self.tx.send(req).map_err(|_| worker_gone());
        };
        if let Request::Commit { checkpoint: Some(cp), .. } = &req {
            q.checkpoints.insert(cp.fingerprint, cp.clone());
        }
        q.waiting.push_back((req, bytes));
        q.bytes += bytes;
        self.pump()
    }

    /// Hands queued commits to the worker as far as it takes them now.
    pub(crate) fn pump(&mut self) -> Result<(), Error> {
        let Some(q) = &mut self.queue else { return Ok(()) };
        while let Some((req, bytes)) = q.waiting.pop_front() {
            match self.tx.try_send(req) {
                Ok(()) => q.bytes -= bytes,
                Err(TrySendError::Full(req)) => {
                    q.waiting.push_front((req, bytes));
                    break;
                }
                Err(TrySendError::Disconnected(_)) => return Err(worker_gone()),
            }
        }
        Ok(())
    }

    /// Blocks until every queued commit is with the worker.
    pub(crate) fn drain(&mut self) -> Result<(), Error> {
        let Some(q) = &mut self.queue else { return Ok(()) };
        while let Some((req, bytes)) = q.waiting.pop_front() {
            self.tx.send(req).map_err(|_| worker_gone())?;
            q.bytes -= bytes;
        }
        Ok(())
    }

    /// Log bytes read whose commits wait in the queue (0 outside follow
    /// mode).
    pub(crate) fn buffered(&self) -> u64 {
        self.queue.as_ref().map_or(0, |q| q.bytes)
    }
}

/// How a long-running engine (follow mode) rides out a store outage: the
/// failed request is retried with backoff on a store opened anew, until
/// it succeeds or `stop` is set; meanwhile commits queue up to
/// `buffer_limit` log bytes.
pub(crate) struct Reconnect<'a> {
    /// Log bytes read but not committed at which reading stops.
    pub(crate) buffer_limit: u64,
    /// Opens the store again.
    pub(crate) open: &'a (dyn Fn() -> Result<Box<dyn Sink + Send>, StoreError> + Sync),
    /// Set when the follower is asked to stop: the retries give up.
    pub(crate) stop: &'a AtomicBool,
}

/// First and longest wait between two attempts to reach a store that
/// failed.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));

/// The store the worker talks to: the one it was given, or the one it
/// opened again after an outage.
struct Active<'s> {
    given: &'s mut (dyn Sink + Send),
    reopened: Option<Box<dyn Sink + Send>>,
    reconnect: Option<Reconnect<'s>>,
    /// When the current outage began (`None`: the store answers).
    outage: Option<Instant>,
}

impl Active<'_> {
    /// Runs `op` on the store; with a [`Reconnect`], retries a failure on a
    /// store opened anew, with backoff, saying so once per outage.
    fn run<T>(&mut self, mut op: impl FnMut(&mut (dyn Sink + Send)) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut wait = BACKOFF.0;
        loop {
            let sink: &mut (dyn Sink + Send) = match &mut self.reopened {
                Some(s) => s.as_mut(),
                None => &mut *self.given,
            };
            let err = match op(sink) {
                Ok(v) => {
                    if let Some(since) = self.outage.take() {
                        tracing::warn!(
                            "the store answers again after {:.0} s of outage; committing what was read meanwhile",
                            since.elapsed().as_secs_f64()
                        );
                    }
                    return Ok(v);
                }
                Err(e) => e,
            };
            let Some(rc) = &self.reconnect else { return Err(err) };
            crate::metrics::STORE_ERRORS.fetch_add(1, Ordering::Relaxed);
            if self.outage.is_none() {
                self.outage = Some(Instant::now());
                tracing::warn!(
                    "store unavailable ({}); reading on into memory up to --buffer-limit, then pausing; \
                     retrying until it answers",
                    crate::error::chain_text(&err)
                );
            }
            let until = Instant::now() + wait;
            while Instant::now() < until {
                if rc.stop.load(Ordering::Relaxed) {
                    return Err(err);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            wait = (wait * 2).min(BACKOFF.1);
            match (rc.open)() {
                Ok(s) => self.reopened = Some(s),
                Err(e) => tracing::debug!("reconnecting: {e}"),
            }
        }
    }
}

/// Serves requests until the engine hangs up or a commit fails, each
/// batch enriched first by `stage` on this thread; returns the totals of
/// the commits and the error that stopped it.
fn sink_worker(
    mut sink: Active<'_>,
    mut stage: EnrichStage,
    rx: Receiver<Request>,
    spare: SyncSender<Vec<Event>>,
    texts: Texts,
) -> (Committed, Option<StoreError>) {
    let mut total = Committed::default();
    // A stored batch's events are dropped here, their paths kept for the
    // decoders ([`Texts`]), and its emptied allocation handed back to the
    // engine for a later batch ([`Engine::next_batch`]).
    let recycle = |mut events: Vec<Event>| {
        texts.keep_paths(&mut events);
        let _ = spare.try_send(events);
    };
    for mut req in rx {
        if !stage.prepare(&mut req) {
            continue;
        }
        match req {
            Request::Checkpoint(fp, reply) => {
                let _ = reply.send(sink.run(|s| s.checkpoint(fp)));
            }
            Request::State(scope, reply) => {
                let _ = reply.send(sink.run(|s| s.state(&scope)));
            }
            Request::Ledger(reply) => {
                let _ = reply.send(sink.run(|s| s.ledger()));
            }
            // Kept by the enrich stage.
            Request::Alerts(_) => {}
            Request::Part { events, input, outbox } => {
                let part = Commit { events: &events, input, checkpoint: None, states: &[], outbox: &outbox };
                match sink.run(|s| s.part(&part)) {
                    Ok(done) => {
                        total.new += done.new;
                        total.dup += done.dup;
                    }
                    Err(e) => return (total, Some(e)),
                }
                recycle(events);
            }
            Request::Commit { events, input, checkpoint, states, outbox } => {
                let (scopes, texts): (Vec<String>, Vec<String>) = states.into_iter().unzip();
                let states: Vec<(&str, String)> = scopes.iter().map(String::as_str).zip(texts).collect();
                let commit = Commit {
                    events: &events,
                    input,
                    checkpoint: checkpoint.as_ref(),
                    states: &states,
                    outbox: &outbox,
                };
                match sink.run(|s| s.commit(&commit)) {
                    Ok(done) => {
                        total.new += done.new;
                        total.dup += done.dup;
                        crate::testhook::maybe_crash("committed");
                    }
                    Err(e) => return (total, Some(e)),
                }
                recycle(events);
                // A follower has no end of run: the work a store leaves for
                // it (InfluxDB's daily points) is done after every commit.
                if sink.reconnect.is_some() {
                    if let Err(e) = sink.run(|s| s.finish()) {
                        return (total, Some(e));
                    }
                }
            }
        }
    }
    (total, sink.run(|s| s.finish()).err())
}

/// The enrich stage, on the store thread before each batch is stored:
/// what is done to a batch once its lines are decoded — GeoIP, client
/// hash and IP mode ([`Enricher`]), NUL bytes scrubbed, the hook
/// deliveries and the alert windows they feed — is done there, off the
/// thread that reads, decodes and joins lines (the slowest stage of a
/// run). A thread of its own between the two, as it was, cost more than
/// it overlapped: one more hand-over of every batch between cores, and
/// four threads on two cores (`events` took 5–13 % longer, SQLite 5 %,
/// in medians of 5 to 21 runs of the two builds in turn).
/// Requests are served in order, so commits keep their order and a
/// checkpoint or state read still sees every commit sent before it.
struct EnrichStage {
    enricher: Enricher,
    hooks: Option<std::sync::Arc<crate::actions::Hooks>>,
    /// The open failed-login windows of the alert hooks, saved with every
    /// commit beside the decoders' open sessions.
    alerts: crate::actions::AlertWindows,
    /// The scope they are saved under, when a hook has an alert rule.
    alerts_scope: Option<String>,
    /// Set by [`Engine::refresh_geoip`] (SIGHUP): the GeoIP file is looked
    /// at again before the next batch.
    refresh: std::sync::Arc<AtomicBool>,
}

impl EnrichStage {
    fn new(opts: &IngestOptions, enricher: Enricher, refresh: std::sync::Arc<AtomicBool>) -> EnrichStage {
        EnrichStage {
            enricher,
            hooks: opts.hooks.clone(),
            alerts: crate::actions::AlertWindows::default(),
            alerts_scope: has_rules(opts).then(|| alerts_scope(&opts.server_host)),
            refresh,
        }
    }

    /// Readies one of the engine's requests for the store: a batch's
    /// events enriched and its commit completed. False for what the stage
    /// keeps (the alert windows), which is not for the store.
    fn prepare(&mut self, req: &mut Request) -> bool {
        match req {
            Request::Commit { events, states, outbox, .. } => {
                *outbox = self.enrich(events);
                if let Some(scope) = &self.alerts_scope {
                    let state = self.alerts.save();
                    let key = self.enricher.key();
                    let sealed = if self.enricher.ip_mode() != IpMode::Full { key.seal(&state) } else { state };
                    states.push((scope.clone(), sealed));
                    states.sort();
                }
            }
            Request::Part { events, outbox, .. } => *outbox = self.enrich(events),
            Request::Alerts(windows) => {
                self.alerts = std::mem::take(windows);
                return false;
            }
            Request::Checkpoint(..) | Request::State(..) | Request::Ledger(_) => {}
        }
        true
    }

    /// Enriches a batch in place; its hook deliveries.
    fn enrich(&mut self, events: &mut [Event]) -> Vec<HookRow> {
        if self.refresh.swap(false, Ordering::Relaxed) {
            self.enricher.refresh_geoip();
        }
        self.enricher.enrich(events);
        match &self.hooks {
            Some(h) => h.rows(events, now_secs() * 1_000_000, &mut self.alerts),
            None => Vec::new(),
        }
    }
}

/// Whether a hook of `opts` has an alert rule (whose windows are kept).
fn has_rules(opts: &IngestOptions) -> bool {
    opts.hooks.as_ref().is_some_and(|h| h.hooks.iter().any(|h| h.rule.is_some()))
}

/// A decoder and how far it has read (see [`crate::sessions`]).
struct Chain {
    decoder: Box<dyn AnyDecoder>,
    horizon: Horizon,
}

/// The decoders of one format in a run: the one restored from the store
/// and saved back, and those of inputs that do not continue it (see
/// [`crate::sessions`]), which carry nothing in or out.
struct Chains {
    saved: Chain,
    /// The saved chain's horizon as restored: what earlier runs read.
    restored: Horizon,
    /// Hashes of the head lines of the inputs of this run.
    seen: HashSet<u64>,
    apart: Vec<Chain>,
    /// The saved chain's state as last handed to the store (sealed when
    /// states are), until a chain is handed out to read lines or the run
    /// ends its sessions: commits in between send it again unchanged
    /// instead of serialising and sealing it anew.
    stored: Option<String>,
}

impl Chains {
    /// The chain an input continues (0: the saved one): the saved one when
    /// the input resumes from its checkpoint, when the format's joins are
    /// not kept by input, or when its head is not older than what earlier
    /// runs read and repeats no head line of this run's inputs (inputs of
    /// one run may overlap in time: several daemons of one host writing
    /// files of their own); else a chain of this run's inputs apart that its
    /// head continues, or a new one.
    fn pick(&mut self, resumed: bool, head: &Head, new: impl FnOnce() -> Box<dyn AnyDecoder>) -> usize {
        debug_assert!(head.scan.is_none() || !self.compares_stamps(), "head stamps read before they are compared");
        let repeats = head.lines.iter().any(|h| self.seen.contains(h));
        self.seen.extend(&head.lines);
        if resumed
            || self.saved.decoder.joins() != Joins::Continuing
            || (!repeats && self.restored.continued_by(&head.stamps))
        {
            return 0;
        }
        let head = &head.stamps;
        if let Some(i) = self.apart.iter().position(|c| c.horizon.knows_any(head) && c.horizon.continued_by(head)) {
            return i + 1;
        }
        self.apart.push(Chain { decoder: new(), horizon: Horizon::default() });
        self.apart.len()
    }

    /// Whether [`Chains::pick`] may compare an input's head stamps (see
    /// [`Head::read_stamps`]): the format's joins are kept by input, and
    /// earlier runs or inputs of this run apart have read something.
    fn compares_stamps(&self) -> bool {
        self.saved.decoder.joins() == Joins::Continuing
            && (self.restored != Horizon::default() || !self.apart.is_empty())
    }

    /// Chain `i` of [`Chains::pick`], to read lines with.
    fn get(&mut self, i: usize) -> &mut Chain {
        self.stored = None;
        match i {
            0 => &mut self.saved,
            i => &mut self.apart[i - 1],
        }
    }
}

/// The engine's state: options, the store worker, the decoders with their
/// open sessions, the batch being built. Batch ingest runs it over its
/// inputs once; the follower keeps it across reads of growing files.
pub(crate) struct Engine<'a> {
    pub(crate) opts: &'a IngestOptions,
    pub(crate) sink: SinkHandle,
    decoders: HashMap<Format, Chains, crate::model::FastHash>,
    /// The host key: it seals the open sessions ([`Engine::states`]).
    key: HostKey,
    /// The IP mode: whether the open sessions are sealed.
    ip_mode: IpMode,
    /// Asks the enrich stage to look at the GeoIP file again.
    refresh: std::sync::Arc<AtomicBool>,
    /// Keys every stored content hash (event ids, fingerprints).
    pub(crate) ids_key: IdKey,
    pub(crate) report: IngestReport,
    events: Vec<Event>,
    /// Per format, the checkpoint of the input its decoder read last: the
    /// events its sessions owe at the end of the run came from it, and are
    /// counted in its ledger entry.
    last_input: HashMap<Format, Checkpoint>,
    /// Events per store transaction.
    batch_events: usize,
    /// Events per part of a transaction, if the store takes them in parts
    /// (batch import only: a follower's transactions are small).
    part_events: Option<usize>,
    /// Events sent in parts since the last commit.
    parted: usize,
    /// Log bytes per batch at most.
    batch_bytes: u64,
    /// Queued log bytes (follow mode's buffer) at which reading an input
    /// stops for now.
    buffer_limit: u64,
    /// Whether prefixes are parsed on the reader thread where the format
    /// allows ([`parses_prefix_first`]); off only to compare both ways.
    parse_ahead: bool,
    /// Batches the store worker has stored, emptied, to be filled again
    /// ([`Engine::next_batch`]).
    spare: Receiver<Vec<Event>>,
    /// The strings the store worker hands back with them, for the
    /// decoders' line contexts to fill again ([`Texts`]).
    texts: Texts,
    /// Whether the store keeps the decoders' states ([`Sink::keeps_states`]):
    /// else commits carry none (serialising and sealing every open session
    /// per commit was ~4 % of the thread that joins lines).
    keeps_states: bool,
}

impl<'a> Engine<'a> {
    /// The decoders of format `f`, the saved one restored on first use.
    fn decoders(&mut self, f: Format) -> Result<&mut Chains, Error> {
        if !self.decoders.contains_key(&f) {
            let mut d = new_decoder(self.opts, f);
            let scope = state_scope(d.scope(), &self.opts.server_host);
            // A store written before states were kept per ingesting host
            // has one per format: its first run on each host takes it up.
            let stored = match self.sink.state(scope)? {
                Some(s) => Some(s),
                None => self.sink.state(d.scope().to_string())?,
            };
            let mut horizon = Horizon::default();
            if let Some(stored) = stored {
                let state = self.key.unseal(&stored);
                horizon = state
                    .and_then(|state| d.restore_text(&state))
                    .map_err(|reason| StoreError::State { scope: d.scope().to_string(), reason })?;
            }
            let restored = horizon.clone();
            let chains = Chains {
                saved: Chain { decoder: d, horizon },
                restored,
                seen: HashSet::new(),
                apart: Vec::new(),
                stored: None,
            };
            self.decoders.insert(f, chains);
            crate::testhook::rendezvous("state-read");
        }
        Ok(self.decoders.get_mut(&f).expect("inserted above"))
    }

    /// The decoders' open sessions, sealed with the host key unless the IP
    /// mode stores addresses anyway (they hold client addresses); none for
    /// a store that keeps none. (The enrich stage adds the alert windows.)
    fn states(&mut self) -> Vec<(String, String)> {
        if !self.keeps_states {
            return Vec::new();
        }
        let seal = self.ip_mode != IpMode::Full;
        let key = &self.key;
        let mut v: Vec<_> = self
            .decoders
            .values_mut()
            .map(|c| {
                let scope = state_scope(c.saved.decoder.scope(), &self.opts.server_host);
                let stored = c.stored.get_or_insert_with(|| {
                    let state = c.saved.decoder.save_text(&c.saved.horizon);
                    if seal {
                        key.seal(&state)
                    } else {
                        state
                    }
                });
                (scope, stored.clone())
            })
            .collect();
        v.sort();
        v
    }

    /// Restores the alert windows an earlier run saved, in the enrich
    /// stage (before any commit).
    fn restore_alerts(&mut self) -> Result<(), Error> {
        if !has_rules(self.opts) {
            return Ok(());
        }
        let scope = alerts_scope(&self.opts.server_host);
        if let Some(stored) = self.sink.state(scope.clone())? {
            let alerts = self
                .key
                .unseal(&stored)
                .and_then(|s| crate::actions::AlertWindows::restore(&s))
                .map_err(|reason| StoreError::State { scope, reason })?;
            self.sink.commit(Request::Alerts(alerts), 0)?;
        }
        Ok(())
    }

    /// Has the GeoIP file looked at again (SIGHUP) before the next batch
    /// is enriched.
    pub(crate) fn refresh_geoip(&self) {
        self.refresh.store(true, Ordering::Relaxed);
    }

    /// A record of the ingesting host kept beside the decoders' states under
    /// `name` (a name no format's scope has: decoders, `status` and
    /// re-keying pass it by), such as the names a follower follows.
    pub(crate) fn host_record(&mut self, name: &str) -> Result<Option<String>, Error> {
        self.sink.state(state_scope(name, &self.opts.server_host))
    }

    /// Saves [`Engine::host_record`] `name` in a commit of its own, in
    /// order with the others.
    pub(crate) fn save_host_record(&mut self, name: &str, text: String) -> Result<(), Error> {
        let states = vec![(state_scope(name, &self.opts.server_host), text)];
        let req = Request::Commit { events: Vec::new(), input: None, checkpoint: None, states, outbox: Vec::new() };
        self.sink.commit(req, 0)
    }

    /// Hands the batch, the input's checkpoint and the open sessions to the
    /// store worker as one commit (enriched on the way, [`EnrichStage`]);
    /// `bytes` is how much of the log it was read from. (Ledger counts are added by the store;
    /// `rejected` is cumulative.) The events are stored as the
    /// checkpoint's input's.
    fn commit(&mut self, checkpoint: Option<&Checkpoint>, bytes: u64) -> Result<(), Error> {
        self.commit_of(checkpoint.map(|c| c.fingerprint), checkpoint, bytes)
    }

    /// [`Engine::commit`] of events that came from the input `input`.
    fn commit_of(&mut self, input: Option<u64>, checkpoint: Option<&Checkpoint>, bytes: u64) -> Result<(), Error> {
        let (events, outbox) = (std::mem::take(&mut self.events), Vec::new());
        self.parted = 0;
        let req = Request::Commit { events, input, checkpoint: checkpoint.cloned(), states: self.states(), outbox };
        let sent = self.sink.commit(req, bytes);
        self.next_batch();
        sent
    }

    /// Hands the events read so far (from the input `input`) to the store
    /// as a part of the transaction the next commit commits.
    fn part(&mut self, input: u64) -> Result<(), Error> {
        let (events, outbox) = (std::mem::take(&mut self.events), Vec::new());
        self.parted += events.len();
        let sent = self.sink.commit(Request::Part { events, input: Some(input), outbox }, 0);
        self.next_batch();
        sent
    }

    /// Gives the engine an empty batch to fill once the last one was handed
    /// over: one the store worker has stored and handed back when there is
    /// one (in a batch import there is, from the third batch on), else a
    /// new one. A new allocation of a batch's size (megabytes) is fresh
    /// memory from the kernel: the first touch of each of its pages was a
    /// page fault on the thread that joins lines.
    fn next_batch(&mut self) {
        let capacity = self.part_events.unwrap_or(self.batch_events).min(self.batch_events).min(1 << 16);
        self.events = match self.spare.try_recv() {
            Ok(v) if v.capacity() >= capacity => v,
            _ => Vec::with_capacity(capacity),
        };
    }

    /// [`Engine::close_sessions`] for every format with open sessions in
    /// the store, also those this engine has read nothing of (a follower
    /// stopped right after its start).
    pub(crate) fn close_all_sessions(&mut self) -> Result<(), Error> {
        for f in Format::all() {
            let scope = state_scope(new_decoder(self.opts, f).scope(), &self.opts.server_host);
            if !self.decoders.contains_key(&f) && self.sink.state(scope)?.is_some() {
                self.decoders(f)?;
            }
        }
        self.close_sessions()
    }

    /// Ends the sessions the decoders hold as a batch import ends them at
    /// its end (those complete or timed out), and commits their events:
    /// each format's in a commit of their own, as the events of the input
    /// its decoder read last.
    pub(crate) fn close_sessions(&mut self) -> Result<(), Error> {
        // Sessions closed at the end have no line of their own to reject;
        // their events outside the window are dropped all the same.
        let latest = self.opts.plausible.latest(None, now_secs());
        let mut formats: Vec<Format> = self.decoders.keys().copied().collect();
        formats.sort_by_key(|f| f.name());
        for f in formats {
            let mut finished = Vec::new();
            // Chains apart end with the run: what they owe is emitted, their
            // open sessions are dropped (the saved chain has read past them).
            let c = self.decoders.get_mut(&f).expect("listed above");
            c.stored = None;
            for d in std::iter::once(&mut c.saved).chain(&mut c.apart) {
                d.decoder.finish(&self.ids_key, &mut finished);
            }
            let before = finished.len();
            finished.retain(|e| self.opts.plausible.contains(e.time(), latest));
            if finished.len() < before {
                tracing::warn!(
                    "{} event(s) of sessions still open at the end dropped: time outside the plausible window",
                    before - finished.len()
                );
            }
            self.events.extend(finished);
            // Committed with the input's checkpoint as it stands (nothing
            // more was read), so that its ledger entry counts them too.
            let cp = self.last_input.get(&f).cloned();
            self.commit(cp.as_ref(), 0)?;
        }
        Ok(())
    }
}

impl IngestOptions {
    /// The configured line layouts, for the format registry.
    pub fn templates(&self) -> Templates<'_> {
        Templates { rsync: &self.rsync_log_format, proftpd: &self.proftpd_log_format }
    }
}

/// A fresh decoder of format `f`.
fn new_decoder(opts: &IngestOptions, f: Format) -> Box<dyn AnyDecoder> {
    (f.spec().decoder)(&opts.templates())
}

/// The key of a decoder's saved state in the store: its scope and the
/// ingesting host (`--server-host`), so that hosts importing the same format
/// into one store at the same moment never overwrite each other's open
/// sessions.
fn state_scope(scope: &str, server_host: &str) -> String {
    format!("{scope}@{server_host}")
}

/// The key of the alert windows in the store, per ingesting host as the
/// decoders' states.
fn alerts_scope(server_host: &str) -> String {
    state_scope("alerts", server_host)
}

/// The open sessions `stored` of scope `scope`, saved before ids were
/// keyed, with the ids they hold keyed by `key` (sealed again if they were).
pub fn rekey_state(templates: &Templates<'_>, key: &HostKey, scope: &str, stored: &str) -> Result<String, String> {
    let Some((mut d, horizon)) = restore_scope(templates, key, scope, stored)? else {
        return Ok(stored.to_string());
    };
    let ids = key.id_key();
    d.rekey_ids(&|id| ids.hash(id));
    let state = d.save_text(&horizon);
    Ok(if key.is_sealed(stored) { key.seal(&state) } else { state })
}

/// A decoder restored from a stored state, with its horizon.
pub(crate) type Restored = (Box<dyn AnyDecoder>, Horizon);

/// A decoder of stored state `stored` of scope `scope` (sealed or not),
/// restored, with its horizon; `None` for a scope no format has.
pub(crate) fn restore_scope(
    templates: &Templates<'_>,
    key: &HostKey,
    scope: &str,
    stored: &str,
) -> Result<Option<Restored>, String> {
    let format_scope = scope.split_once('@').map_or(scope, |(s, _)| s);
    let Some(mut d) = Format::all().map(|f| (f.spec().decoder)(templates)).find(|d| d.scope() == format_scope) else {
        return Ok(None);
    };
    let horizon = d.restore_text(&key.unseal(stored)?)?;
    Ok(Some((d, horizon)))
}

/// The key of the content hashes (event ids, ledger fingerprints) of
/// `sink`, prepared for `key` by [`Sink::key_ids`] (`rekey` re-keys the
/// open sessions of a store written with unkeyed hashes).
pub fn store_ids_key<S: Sink + ?Sized>(
    sink: &mut S,
    key: &HostKey,
    rekey: &mut RekeyState<'_>,
) -> Result<IdKey, Error> {
    if crate::testhook::unkeyed_ids() {
        return Ok(IdKey::unkeyed());
    }
    Ok(key.id_key().for_scheme(sink.key_ids(key, rekey)?))
}

/// Ingests `opts.inputs` into `sink`, every batch passing through
/// `enricher` (GeoIP, client hash, IP privacy) on its way.
///
/// Per-input problems (unreadable, truncated, unrecognised, bad lines) are
/// recorded in the report and do not stop the run; a store error does, with
/// nothing of the batch in flight committed.
pub fn ingest(
    opts: &IngestOptions,
    enricher: Enricher,
    sink: &mut (dyn Sink + Send),
    progress: &dyn Progress,
) -> Result<IngestReport, Error> {
    let started = Instant::now();
    let (mut report, done) = drive(opts, enricher, sink, None, |engine| {
        run(engine, progress)?;
        Ok(std::mem::take(&mut engine.report))
    })?;
    report.events_new = done.new;
    report.events_dup = done.dup;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Runs `body` on an engine whose store worker serves `sink`: prepares the
/// store's ids for the host key, starts the worker, and when `body` is
/// done hands every commit over and waits for the worker. With
/// `reconnect` (follow mode) commits go through a queue and the worker
/// rides out store outages. Returns what `body` returned and the totals
/// committed; a store error wins over `body`'s own.
pub(crate) fn drive<T>(
    opts: &IngestOptions,
    enricher: Enricher,
    sink: &mut (dyn Sink + Send),
    reconnect: Option<Reconnect<'_>>,
    body: impl FnOnce(&mut Engine<'_>) -> Result<T, Error>,
) -> Result<(T, Committed), Error> {
    let store = sink.describe();
    let ids_key = store_ids_key(sink, enricher.key(), &mut |scope, state| {
        rekey_state(&opts.templates(), enricher.key(), scope, state)
    })?;
    let queue = reconnect.is_some().then(Queue::default);
    let buffer_limit = reconnect.as_ref().map_or(u64::MAX, |r| r.buffer_limit);
    // A batch is at most a quarter of the buffer, so the buffer fills in
    // steps and reading stops near its limit.
    let batch_bytes = (BATCH_BYTES as u64).min(buffer_limit / 4).max(1);
    // Large transactions in parts into a store that takes them so (not
    // when following: a follower's queue holds whole commits).
    let part_events = sink.part_events().filter(|_| reconnect.is_none());
    let keeps_states = sink.keeps_states();
    let batch_events = opts
        .batch_events
        .unwrap_or(match part_events {
            Some(_) => PARTED_BATCH_EVENTS,
            None => sink.batch_events().unwrap_or(BATCH_EVENTS),
        })
        .max(1);
    // Bounded memory: one batch (or part) is read, one waits for the store
    // thread, one is enriched and committed there — three at most. A
    // follower's engine hands its commits over without waiting
    // (`SinkHandle::pump`), so one more may wait, besides its queue.
    let (tx, rx) = sync_channel::<Request>(1 + usize::from(queue.is_some()));
    // Stored batches wait here to be filled again: as many as may be in
    // flight in a batch import, so none is dropped. A new one is made only
    // when none waits, all others being in flight: four batches at most,
    // as before. (A follower's queue holds what it holds; three emptied
    // batches at most wait besides.)
    let (spare_tx, spare) = sync_channel::<Vec<Event>>(3);
    let texts = Texts::default();
    let kept = texts.share();
    let (key, ip_mode) = (enricher.key().clone(), enricher.ip_mode());
    let refresh = std::sync::Arc::new(AtomicBool::new(false));
    let stage = EnrichStage::new(opts, enricher, refresh.clone());
    std::thread::scope(|scope| {
        let active = Active { given: sink, reopened: None, reconnect, outage: None };
        let worker = std::thread::Builder::new()
            .name("xferstats-store".into())
            .spawn_scoped(scope, move || sink_worker(active, stage, rx, spare_tx, kept))
            .expect("spawning the store thread");
        let mut engine = Engine {
            opts,
            sink: SinkHandle { tx, queue },
            decoders: HashMap::default(),
            key,
            ip_mode,
            refresh,
            ids_key,
            report: IngestReport { store, ..IngestReport::default() },
            events: Vec::with_capacity(part_events.unwrap_or(batch_events).min(batch_events).min(1 << 16)),
            batch_events,
            part_events,
            parted: 0,
            batch_bytes,
            buffer_limit,
            last_input: HashMap::new(),
            parse_ahead: true,
            spare,
            texts,
            keeps_states,
        };
        let result =
            engine.restore_alerts().and_then(|()| body(&mut engine)).and_then(|v| engine.sink.drain().map(|()| v));
        drop(engine);
        let (done, err) = worker.join().unwrap_or_else(|_| {
            (Committed::default(), Some(StoreError::State { scope: "store".into(), reason: "panicked".into() }))
        });
        if let Some(e) = err {
            return Err(Error::Store(e));
        }
        Ok((result?, done))
    })
}

fn run(engine: &mut Engine<'_>, progress: &dyn Progress) -> Result<(), Error> {
    let opts = engine.opts;
    let ids_key = engine.ids_key;
    // Look at every input's head in parallel (format, time of the first
    // line). Each input is opened once: streams (stdin, pipes, FIFOs) stay
    // as they are, regular files keep only their descriptor (no head, no
    // decompressor) and are read from their start through it. A glob of a
    // thousand rotated files must not hold a thousand descriptors: beyond
    // KEEP_OPEN inputs, regular files are closed and opened again by name.
    // A FIFO without a writer blocks only its own look, `fifo_wait` at most.
    let keep_open = opts.inputs.len() <= KEEP_OPEN;
    let looked: Vec<Result<Prepared, InputReport>> = opts
        .inputs
        .par_iter()
        .enumerate()
        .map(|(order, src)| match Input::open(src.clone(), opts.fifo_wait) {
            Ok(input) => {
                let Look { format, first_time, head } = look(&input, opts);
                tracing::debug!(input = %crate::sanitize::sanitize(&src.name()), compression = input.compression.name(), format = ?format.map(|f| f.name()), "detected");
                let fingerprint = input.fingerprint(&ids_key);
                let held = match input.park() {
                    Err(stream) => Held::Stream(*stream),
                    Ok(parked) if keep_open => Held::Parked(parked),
                    Ok(_) => Held::Closed,
                };
                Ok(Prepared { source: src.clone(), held, fingerprint, format, first_time, head, order })
            }
            Err(e) => Err(InputReport::new(src.name(), None, InputStatus::Failed(e.to_string()))),
        })
        .collect();
    let mut prepared = Vec::new();
    for l in looked {
        match l {
            Ok(p) => prepared.push(p),
            Err(r) => engine.report.inputs.push(r),
        }
    }
    // Oldest content first; stdin and time-less inputs keep their place after.
    prepared.sort_by_key(|p| (p.first_time.is_none(), p.first_time, p.order));
    for p in prepared {
        let r = read_input(engine, p, progress)?;
        engine.report.inputs.push(r);
    }
    engine.close_sessions()
}

/// What the head of an input tells.
pub(crate) struct Look {
    /// Its format (forced, or detected from the complete lines of its head).
    pub(crate) format: Option<Format>,
    /// The time of its first line, for ordering.
    pub(crate) first_time: Option<i64>,
    /// What tells whether it continues the saved sessions.
    pub(crate) head: Head,
}

/// What tells whether an input continues the saved sessions.
#[derive(Default)]
pub(crate) struct Head {
    /// Per server host, the oldest time stamp of the head: read only for
    /// an input whose chain depends on them ([`Head::read_stamps`]).
    stamps: Vec<(String, Micros)>,
    /// Hashes of its first time-stamped lines ([`HEAD_LINES`]).
    lines: Vec<u64>,
    /// The format the stamps are read as, and the line state detection
    /// left, until they are read.
    scan: Option<(Format, PrefixParser, Clock)>,
}

impl Head {
    /// Reads the stamps from `input`, the input looked at: every line of
    /// its head is parsed for them, so this is done only when
    /// [`Chains::compares_stamps`].
    fn read_stamps(&mut self, input: &Input, opts: &IngestOptions) {
        let Some((format, mut parser, mut clock)) = self.scan.take() else { return };
        let (stamp, templates) = (format.spec().stamp, opts.templates());
        for s in input.head_lines().filter_map(|l| stamp(l, &templates, &mut parser, &mut clock)) {
            let host = s.host.unwrap_or(opts.server_host.as_bytes());
            match self.stamps.iter_mut().find(|(h, _)| h.as_bytes() == host) {
                Some((_, t)) => *t = (*t).min(s.time),
                None => self.stamps.push((String::from_utf8_lossy(host).into_owned(), s.time)),
            }
        }
    }
}

/// Time-stamped head lines of an input that tell a copy of another input
/// of the same run.
const HEAD_LINES: usize = 8;

/// Looks at the head of an opened input.
pub(crate) fn look(input: &Input, opts: &IngestOptions) -> Look {
    look_or(input, opts, None)
}

/// [`look`], taking `fallback` as the format when the head detects as none
/// (a follower's log whose new content starts with lines that name no
/// format, such as rsyncd transfer lines).
pub(crate) fn look_or(input: &Input, opts: &IngestOptions, fallback: Option<Format>) -> Look {
    let (mut parser, mut clock, templates) = (PrefixParser::new(), clock_for(input, opts.timezone), opts.templates());
    let format = match opts.format {
        Some(f) => Some(f),
        None => Format::detect(input.head_lines(), &mut parser, &mut clock, &templates).or(fallback),
    };
    let (mut first_time, mut head) = (None, Head::default());
    if let Some(f) = format {
        let stamp = f.spec().stamp;
        head.scan = Some((f, parser.clone(), clock.clone()));
        let stamped = input.head_lines().filter_map(|l| Some((l, stamp(l, &templates, &mut parser, &mut clock)?)));
        for (l, s) in stamped.take(HEAD_LINES) {
            first_time.get_or_insert(s.time);
            head.lines.push(xxhash_rust::xxh3::xxh3_64(l));
        }
    }
    Look { format, first_time, head }
}

/// The format the complete lines of an input's head detect as (what
/// [`look`] finds when no format is forced).
fn detect(input: &Input, opts: &IngestOptions) -> Option<Format> {
    let (mut parser, mut clock) = (PrefixParser::new(), clock_for(input, opts.timezone));
    Format::detect(input.head_lines(), &mut parser, &mut clock, &opts.templates())
}

/// Whether an input read from its start is unusable as read: at least one
/// line rejected, none used, and rejected lines at least 90 % of its lines
/// (the rest: lines without anything to count). Such an input is not
/// marked as read, so that reading it again with the right options reads
/// it in full.
pub fn unusable(lines: u64, rejected: u64, ignored: u64) -> bool {
    rejected > 0 && rejected + ignored == lines && rejected * 10 >= lines * 9
}

/// The option probably missing when an input read as `format` is
/// [`unusable`]: the format its head detects as, if another, else the
/// option that describes that format's line layout.
fn missing_option(format: Format, detected: Option<Format>) -> String {
    match detected {
        Some(d) if d != format => format!("--format {} (its first lines read as {})", d.name(), d.name()),
        _ => match format {
            Format::Rsyncd => "--rsync-log-format (a custom rsyncd `log format`) or another --format".to_string(),
            Format::ProftpdExtended => "--proftpd-log-format (its `LogFormat`) or another --format".to_string(),
            f => format!("another --format than {} or --timezone", f.name()),
        },
    }
}

fn read_input(engine: &mut Engine<'_>, p: Prepared, progress: &dyn Progress) -> Result<InputReport, Error> {
    let opts = engine.opts;
    let Prepared { source, held, fingerprint: looked_at, mut format, mut head, .. } = p;
    let name = source.name();
    let opened = match held {
        Held::Stream(input) => Ok(input),
        Held::Parked(parked) => parked.resume(),
        Held::Closed => Input::open(source.clone(), opts.fifo_wait),
    };
    let input = match opened {
        Ok(i) => i,
        Err(e) => return Ok(InputReport::new(name, format, InputStatus::Failed(e.to_string()))),
    };
    if input.fingerprint(&engine.ids_key) != looked_at {
        // Opened again by name and replaced (rotated) since its head was
        // looked at, or grown from empty: its own head decides.
        let again = look(&input, opts);
        (format, head) = (again.format, again.head);
    }
    Ok(read_opened(engine, name, input, format, head, progress)?.0)
}

/// Reads an opened input of `format` (`None`: not recognised; `head` from
/// [`look`]) from where
/// the ledger says its content was last read, committing as batches fill
/// and at its end. Returns what happened and where the input now stands
/// (`None` when it was empty or not recognised).
pub(crate) fn read_opened(
    engine: &mut Engine<'_>,
    name: String,
    input: Input,
    format: Option<Format>,
    mut head: Head,
    progress: &dyn Progress,
) -> Result<(InputReport, Option<Checkpoint>), Error> {
    let opts = engine.opts;
    let key = engine.ids_key;
    let mut rep = InputReport::new(name.clone(), format, InputStatus::Read);
    rep.compression = Some(input.compression);
    let Some(fingerprint) = input.fingerprint(&key) else {
        rep.status = InputStatus::Empty;
        return Ok((rep, None));
    };
    let Some(format) = format else {
        rep.status = InputStatus::Unrecognised;
        return Ok((rep, None));
    };
    // A forced format's input: what its head detects as, for the hint of
    // an input that turns out unusable.
    let detected = opts.format.and_then(|_| detect(&input, opts));
    let mut cp = Checkpoint {
        fingerprint,
        name: name.clone(),
        format: format.name().to_string(),
        offset: 0,
        lines: 0,
        tail_hash: 0,
        ids: String::new(),
        events_new: 0,
        events_dup: 0,
        rejected: 0,
    };
    let mut ids = IdGen::new(key);
    let mut resumed = false;
    // A stream (stdin, pipe, FIFO) cannot be re-read if the tail check
    // fails: it is always read from its start and content ids refuse what
    // is already stored. Its ledger entry is written like a file's (offset,
    // lines, tail hash), so the same content given later as a file resumes
    // after it.
    let (size, clock) = (input.size, clock_for(&input, opts.timezone));
    let latest = opts.plausible.latest(input.mtime, now_secs());
    // A ledger entry of the first line (a store written before fingerprints
    // looked further, or the input before it grew past the span) is the
    // fallback; the tail hash verifies it like any checkpoint.
    // What the follower has queued is looked at first, for both (a followed
    // log that grew past the span, while the store is down).
    let first_line = input.first_line_fingerprint(&key).filter(|f| *f != fingerprint);
    let found = match engine.sink.queued(fingerprint).or_else(|| first_line.and_then(|f| engine.sink.queued(f))) {
        Some(queued) => Some(queued),
        None => match engine.sink.checkpoint(fingerprint)? {
            None => match first_line {
                Some(first_line) => engine.sink.checkpoint(first_line)?,
                None => None,
            },
            found => found,
        },
    };
    // Found under its first line: saved under its fingerprint at the end of
    // this read, even with nothing new (the ledger follows the input).
    let migrate = found.as_ref().is_some_and(|c| c.fingerprint != fingerprint);
    if engine.decoders(format)?.compares_stamps() {
        head.read_stamps(&input, opts);
    }
    // The formats read through line prefixes have them parsed on the
    // reader thread, by a parser and clock like the ones of the line
    // context, over the same lines (see `Input::parse_ahead`).
    let prefix = PrefixParser::whole_seconds(key.content_ids());
    let ahead = engine.parse_ahead && parses_prefix_first(format);
    let ahead = |mut input: Input| {
        if ahead {
            input.parse_ahead(prefix.clone(), clock.clone());
        }
        input
    };
    let mut reader = match found.filter(|_| input.is_seekable()) {
        None => LineReader::new(ahead(input), key),
        Some(old) => match LineReader::resume(
            ahead(input),
            Position { offset: old.offset, lines: old.lines, tail_hash: old.tail_hash },
            key,
        )
        .map_err(Error::Input)?
        {
            Ok(reader) => {
                tracing::debug!(input = %crate::sanitize::sanitize(&name), offset = old.offset, "resuming from checkpoint");
                rep.resumed_from = old.offset;
                resumed = true;
                ids = IdGen::restore(key, &old.ids);
                cp = Checkpoint { fingerprint, name: name.clone(), format: format.name().to_string(), ..old };
                reader
            }
            Err(input) => {
                tracing::info!(input = %crate::sanitize::sanitize(&name), "content differs from the checkpoint with the same start; reading from the start");
                LineReader::new(ahead(input.rewind().map_err(Error::Input)?), key)
            }
        },
    };
    let base_rejected = cp.rejected;
    // A forced syslog/openssh format ignores other programs' lines; count
    // the lines that are no syslog or sshd line at all, to tell a wrong
    // --format from a log without transfers.
    let count_foreign = opts.format.is_some() && matches!(format, Format::Syslog | Format::Openssh);
    let mut foreign = 0u64;
    let mut cx = LineContext {
        clock,
        prefix,
        ids,
        server_host: opts.server_host.clone(),
        texts: engine.texts.share(),
        keep_hosts: engine.ip_mode.keeps_hosts(),
    };
    let chain = engine.decoders(format)?.pick(resumed, &head, || new_decoder(opts, format));
    if chain > 0 {
        tracing::info!(input = %crate::sanitize::sanitize(&name), "older than the saved open sessions: read with sessions of its own");
    }
    progress.start(&name, size);
    let (first_offset, first_line) = (reader.offset(), reader.lines());
    let mut committed_at = first_offset;
    let mut progress_at = first_offset;
    loop {
        let (number, decoded, text) = match reader.next_line() {
            Ok(Some(Line::Text { number, bytes, ahead })) => {
                if let Some(ahead) = ahead {
                    cx.prefix.preset(bytes, ahead);
                }
                let chain = engine.decoders.get_mut(&format).expect("created before reading").get(chain);
                let decoded = decode(chain, &mut cx, bytes, &mut engine.events, &opts.plausible, latest);
                if count_foreign && decoded.is_ignored() && crate::formats::is_foreign(bytes) {
                    foreign += 1;
                }
                (number, decoded, Text::Line(bytes))
            }
            Ok(Some(Line::Overlong { number, len })) => {
                let rejected = Outcome::Rejected("line longer than 1 MiB");
                (number, Decoded { outcome: rejected, implausible: None }, Text::Skipped(len))
            }
            Ok(None) => break,
            Err(e) => {
                rep.status = InputStatus::Failed(e.to_string());
                break;
            }
        };
        decoded.tally(&mut rep, &mut engine.report.samples, number, || text.sample());
        let offset = reader.offset();
        if offset >= progress_at {
            progress.advance(reader.raw_read());
            progress_at = offset + CHUNK as u64;
        }
        // Batches are bounded in events and in the bytes of the lines they
        // came from (long paths), so memory stays flat whatever the input.
        // Parts of a transaction are bounded in events too.
        if engine.parted + engine.events.len() >= engine.batch_events
            || (offset - committed_at >= engine.batch_bytes && !engine.events.is_empty())
        {
            checkpoint(&mut cp, &reader, &cx, base_rejected + rep.rejected);
            engine.commit(Some(&cp), offset - committed_at)?;
            committed_at = offset;
            if engine.sink.buffered() >= engine.buffer_limit {
                // The store is behind (follow mode): the rest waits on disk.
                break;
            }
        } else if engine.part_events.is_some_and(|n| engine.events.len() >= n) {
            engine.part(fingerprint)?;
        }
    }
    rep.lines = reader.lines() - first_line;
    rep.bytes = reader.offset() - first_offset;
    rep.unterminated = reader.unterminated();
    let used = rep.lines - rep.ignored - rep.rejected;
    if count_foreign && rep.status == InputStatus::Read && used == 0 && foreign > 0 && foreign * 10 >= rep.lines * 9 {
        rep.status = InputStatus::Mismatch { foreign };
    } else if rep.status == InputStatus::Read
        && !engine.sink.following()
        && rep.resumed_from == 0
        && committed_at == first_offset
        && unusable(rep.lines, rep.rejected, rep.ignored)
    {
        rep.status = InputStatus::Unusable { hint: missing_option(format, detected) };
    }
    // An input read in vain from its start is not marked as read (nothing
    // was committed of it: a batch commits only with events, and no line
    // was used).
    let in_vain =
        rep.resumed_from == 0 && matches!(rep.status, InputStatus::Mismatch { .. } | InputStatus::Unusable { .. });
    if in_vain {
        if !engine.events.is_empty() {
            engine.commit_of(Some(fingerprint), None, reader.offset() - committed_at)?;
        }
    } else if reader.offset() != committed_at || !engine.events.is_empty() || migrate {
        checkpoint(&mut cp, &reader, &cx, base_rejected + rep.rejected);
        engine.commit(Some(&cp), reader.offset() - committed_at)?;
    }
    if !in_vain {
        engine.last_input.insert(format, cp.clone());
    }
    progress.finish();
    Ok((rep, Some(cp)))
}

/// Whether the decoder of `format` parses the prefix of every line it is
/// given first, with the line context's parser and clock
/// (`cx.prefix.parse(line, &mut cx.clock)`), and uses them for nothing
/// else (the syslog router parses some lines a second time, as the decoder
/// it routes to: see [`PrefixParser::preset`]): the prefixes can then be
/// parsed ahead on the reader thread ([`Input::parse_ahead`]) with the same
/// results.
fn parses_prefix_first(format: Format) -> bool {
    matches!(format, Format::Syslog | Format::Rsyncd | Format::Openssh)
}

/// What a rejected-line sample shows of a line.
enum Text<'a> {
    /// The line read.
    Line(&'a [u8]),
    /// An over-long line skipped unread, of this length.
    Skipped(u64),
}

impl Text<'_> {
    fn sample(&self) -> String {
        match self {
            Text::Line(bytes) => sanitize_bytes(bytes, 160),
            Text::Skipped(len) => format!("({len} bytes skipped)"),
        }
    }
}

/// Sets `cp` to where `reader` stands, with the ids and the (cumulative)
/// rejected lines up to there.
fn checkpoint(cp: &mut Checkpoint, reader: &LineReader, cx: &LineContext, rejected: u64) {
    let Position { offset, lines, tail_hash } = reader.position();
    cp.offset = offset;
    cp.lines = lines;
    cp.tail_hash = tail_hash;
    cp.ids = cx.ids.save();
    cp.rejected = rejected;
}

/// A line's outcome once its events passed the plausibility window.
struct Decoded {
    outcome: Outcome,
    /// Time and window of an event outside it (the line is rejected).
    implausible: Option<(i64, Plausible, i64)>,
}

/// Decodes one line; events outside the plausible window (earliest ..
/// `latest`) are dropped and the line is rejected for them.
fn decode(
    chain: &mut Chain,
    cx: &mut LineContext,
    line: &[u8],
    events: &mut Vec<Event>,
    plausible: &Plausible,
    latest: i64,
) -> Decoded {
    let before = events.len();
    let mut outcome = chain.decoder.line(cx, line, events);
    let mut implausible = None;
    let mut i = before;
    while i < events.len() {
        let t = events[i].time();
        if !plausible.contains(t, latest) {
            implausible.get_or_insert((t, *plausible, latest));
            events.remove(i);
        } else {
            i += 1;
        }
    }
    if implausible.is_some() {
        outcome = Outcome::Rejected("time outside the plausible window");
    }
    chain.horizon.note(&events[before..]);
    Decoded { outcome, implausible }
}

impl Decoded {
    fn is_ignored(&self) -> bool {
        self.outcome == Outcome::Ignored
    }

    /// Counts the line; the first rejected lines of each input are kept as
    /// samples.
    fn tally(self, rep: &mut InputReport, samples: &mut Vec<RejectSample>, line: u64, text: impl FnOnce() -> String) {
        match self.outcome {
            Outcome::Used => {}
            Outcome::Ignored => rep.ignored += 1,
            Outcome::Rejected(reason) => {
                rep.rejected += 1;
                if rep.rejected <= SAMPLES_PER_INPUT as u64 {
                    let reason = match self.implausible {
                        Some((t, window, latest)) => Cow::Owned(window.reject(t, latest).unwrap_or_default()),
                        None => Cow::Borrowed(reason),
                    };
                    samples.push(RejectSample { input: rep.name.clone(), line, reason, text: text() });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_is_unusable_when_nearly_every_line_is_rejected_and_none_used() {
        assert!(unusable(18, 18, 0));
        assert!(unusable(10, 9, 1));
        assert!(!unusable(10, 8, 2), "80 % rejected");
        assert!(!unusable(10, 9, 0), "one line used");
        assert!(!unusable(5, 0, 5), "nothing rejected: a log without transfers");
        assert!(!unusable(0, 0, 0));
    }

    /// A transfer from `ip`, its path holding a NUL byte.
    fn transfer(ip: &str) -> Event {
        let mut e = crate::enrich::tests::transfer(Some(ip), Some("dsl-7.pool.example.net"));
        let Event::Transfer(t) = &mut e else { unreachable!() };
        t.path = Some("a\0b".into());
        e
    }

    #[test]
    fn the_enrich_stage_completes_batches_and_keeps_the_alert_windows() {
        use crate::enrich::{EnrichOptions, GeoipChoice};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("city.mmdb");
        crate::enrich::testdb::maxmind_db(&db, "GeoLite2-City", "Grenoble");
        let enrich_opts = |ip_mode| EnrichOptions {
            geoip: GeoipChoice::Path(db.clone()),
            geohash_precision: 5,
            ip_mode,
            key: HostKey::new(b"0123456789abcdef-test"),
            warn_once_in: None,
        };
        // What the engine did itself before: the same enricher on the same
        // batch.
        let mut expected = vec![transfer("152.77.1.6"), transfer("10.1.2.3")];
        Enricher::new(&enrich_opts(IpMode::Truncate)).unwrap().enrich(&mut expected);
        expected.iter_mut().for_each(Event::scrub_nul);

        let mut stage = EnrichStage {
            enricher: Enricher::new(&enrich_opts(IpMode::Truncate)).unwrap(),
            hooks: None,
            alerts: crate::actions::AlertWindows::default(),
            alerts_scope: Some("alerts@vm".into()),
            refresh: std::sync::Arc::new(AtomicBool::new(true)),
        };
        let (reply, _answer) = sync_channel(1);
        let states = vec![("rsyncd@vm".to_string(), "{}".to_string())];
        let events = vec![transfer("152.77.1.6"), transfer("10.1.2.3")];
        let requests = [
            Request::Alerts(crate::actions::AlertWindows::default()),
            Request::Part { events: vec![transfer("152.77.1.6")], input: Some(7), outbox: Vec::new() },
            Request::State("rsyncd@vm".into(), reply),
            Request::Commit { events, input: Some(7), checkpoint: None, states, outbox: Vec::new() },
        ];
        let got: Vec<Request> = requests.into_iter().filter_map(|mut r| stage.prepare(&mut r).then_some(r)).collect();
        assert!(!stage.refresh.load(Ordering::Relaxed), "the GeoIP file was looked at again");
        assert_eq!(got.len(), 3, "the alert windows stay in the stage");
        let Request::Part { events, input: Some(7), outbox } = &got[0] else { panic!("the part first") };
        assert_eq!((events, outbox.len()), (&expected[..1].to_vec(), 0));
        assert!(matches!(&got[1], Request::State(scope, _) if scope == "rsyncd@vm"));
        let Request::Commit { events, input: Some(7), checkpoint: None, states, outbox } = &got[2] else {
            panic!("the commit last")
        };
        assert_eq!((events, outbox.len()), (&expected, 0));
        // The alert windows join the open sessions, sealed (not `full`),
        // in the order of the scopes.
        let scopes: Vec<&str> = states.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(scopes, ["alerts@vm", "rsyncd@vm"]);
        let key = HostKey::new(b"0123456789abcdef-test");
        assert_eq!(key.unseal(&states[0].1).unwrap(), crate::actions::AlertWindows::default().save());
    }

    #[test]
    fn the_engine_fills_stored_batches_again() {
        // One event a batch: each batch a new allocation, unless the store
        // worker hands the stored ones back. Four are about at most (read,
        // waiting for the store, stored, waiting to be filled again), and the last
        // batch, of the sessions closed at the end, grows into a new one.
        let log = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rsync/default-logfile.log");
        let mut seen = Vec::new();
        for batch in [1, 1000] {
            let out = crate::sinks::events::EventStream::new(Vec::new(), "test".into(), Default::default());
            let mut sink = Recording {
                out,
                checkpoints: Vec::new(),
                resume: None,
                keeps_states: false,
                states: Vec::new(),
                batches: Vec::new(),
            };
            drive(&options(vec![log.clone()], None, batch), test_enricher(), &mut sink, None, |engine| {
                run(engine, &NoProgress)
            })
            .unwrap();
            seen.push((String::from_utf8(sink.out.into_inner()).unwrap(), sink.batches));
        }
        let (one, all) = (&seen[0], &seen[1]);
        assert_eq!(one.0, all.0, "the same events");
        assert!(one.1.len() >= 10, "{} batches", one.1.len());
        let places: HashSet<usize> = one.1.iter().copied().collect();
        assert!(places.len() <= 5, "{} batches in {} places: {:x?}", one.1.len(), places.len(), one.1);
    }

    /// A sink that keeps the NDJSON of the events and every checkpoint
    /// committed, and answers a checkpoint query with `resume`.
    struct Recording {
        out: crate::sinks::events::EventStream<Vec<u8>>,
        checkpoints: Vec<Checkpoint>,
        resume: Option<Checkpoint>,
        /// What it answers to [`Sink::keeps_states`].
        keeps_states: bool,
        /// The scopes of the states committed.
        states: Vec<String>,
        /// Where the events of each commit with events were.
        batches: Vec<usize>,
    }

    impl Sink for Recording {
        fn describe(&self) -> String {
            self.out.describe()
        }
        fn checkpoint(&mut self, fingerprint: u64) -> Result<Option<Checkpoint>, StoreError> {
            Ok(self.resume.clone().filter(|c| c.fingerprint == fingerprint))
        }
        fn key_ids(&mut self, key: &HostKey, rekey: &mut RekeyState<'_>) -> Result<&'static str, StoreError> {
            self.out.key_ids(key, rekey)
        }
        fn state(&mut self, scope: &str) -> Result<Option<String>, StoreError> {
            self.out.state(scope)
        }
        fn states(&mut self) -> Result<Vec<(String, String)>, StoreError> {
            self.out.states()
        }
        fn ledger(&mut self) -> Result<Vec<LedgerEntry>, StoreError> {
            self.out.ledger()
        }
        fn outbox(&mut self) -> &mut dyn crate::sinks::Outbox {
            self.out.outbox()
        }
        fn commit(&mut self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
            self.checkpoints.extend(commit.checkpoint.cloned());
            self.states.extend(commit.states.iter().map(|(scope, _)| scope.to_string()));
            if !commit.events.is_empty() {
                self.batches.push(commit.events.as_ptr() as usize);
            }
            self.out.commit(commit)
        }
        fn keeps_states(&self) -> bool {
            self.keeps_states
        }
    }

    #[test]
    fn a_store_that_keeps_no_states_is_given_none_and_the_same_events() {
        let log = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rsync/default-logfile.log");
        let opts = options(vec![log], None, 3);
        let mut seen = Vec::new();
        for keeps_states in [true, false] {
            let out = crate::sinks::events::EventStream::new(Vec::new(), "test".into(), Default::default());
            let mut sink = Recording {
                out,
                checkpoints: Vec::new(),
                resume: None,
                keeps_states,
                states: Vec::new(),
                batches: Vec::new(),
            };
            drive(&opts, test_enricher(), &mut sink, None, |engine| run(engine, &NoProgress)).unwrap();
            seen.push((String::from_utf8(sink.out.into_inner()).unwrap(), sink.checkpoints, sink.states));
        }
        let (kept, none) = (&seen[0], &seen[1]);
        assert!(kept.2.len() >= 3 && kept.2.iter().all(|s| s == "rsyncd@vm"), "{:?}", kept.2);
        assert!(none.2.is_empty(), "{:?}", none.2);
        assert!(kept.0.lines().count() >= 3);
        assert_eq!((&kept.0, &kept.1), (&none.0, &none.1));
        // The event stream itself is such a store.
        let stream = crate::sinks::events::EventStream::new(Vec::new(), "test".into(), Default::default());
        assert!(!stream.keeps_states());
    }

    /// An enricher without GeoIP that keeps full addresses.
    fn test_enricher() -> Enricher {
        use crate::enrich::{EnrichOptions, GeoipChoice};
        Enricher::new(&EnrichOptions {
            geoip: GeoipChoice::Off,
            geohash_precision: 5,
            ip_mode: IpMode::Full,
            key: HostKey::new(b"0123456789abcdef-test"),
            warn_once_in: None,
        })
        .unwrap()
    }

    fn options(inputs: Vec<std::path::PathBuf>, format: Option<Format>, batch: usize) -> IngestOptions {
        IngestOptions {
            inputs: inputs.into_iter().map(Source::Path).collect(),
            format,
            timezone: TimeZone::Utc,
            rsync_log_format: LogFormat::compile(crate::formats::rsync::logformat::DEFAULT_LOG_FORMAT).unwrap(),
            proftpd_log_format: ExtendedFormat::compile(crate::formats::proftpd_extended::DEFAULT_FORMAT).unwrap(),
            server_host: "vm".into(),
            batch_events: Some(batch),
            plausible: Plausible::default(),
            fifo_wait: Duration::from_secs(1),
            hooks: None,
        }
    }

    /// What a run shows: the events (NDJSON), the checkpoints committed,
    /// the per-input reports and the rejected-line samples.
    type Seen = (String, Vec<Checkpoint>, String, String);

    /// Reads `opts` with prefixes parsed on the reader thread or not,
    /// resuming at `resume`.
    fn read(opts: &IngestOptions, parse_ahead: bool, resume: Option<Checkpoint>) -> Seen {
        let enricher = test_enricher();
        let out = crate::sinks::events::EventStream::new(Vec::new(), "test".into(), Default::default());
        let mut sink = Recording {
            out,
            checkpoints: Vec::new(),
            resume,
            keeps_states: true,
            states: Vec::new(),
            batches: Vec::new(),
        };
        let (report, _) = drive(opts, enricher, &mut sink, None, |engine| {
            engine.parse_ahead = parse_ahead;
            run(engine, &NoProgress)?;
            Ok(std::mem::take(&mut engine.report))
        })
        .unwrap();
        let ndjson = String::from_utf8(sink.out.into_inner()).unwrap();
        (ndjson, sink.checkpoints, format!("{:?}", report.inputs), format!("{:?}", report.samples))
    }

    /// Both ways give the same events, outcomes and checkpoints.
    fn same_both_ways(opts: &IngestOptions, resume: Option<Checkpoint>) -> Seen {
        let plain = read(opts, false, resume.clone());
        let ahead = read(opts, true, resume);
        let (name, from) = (&opts.inputs, plain.1.first().map(|c| c.offset));
        for (k, (a, p)) in ahead.0.lines().zip(plain.0.lines()).enumerate() {
            assert_eq!(a, p, "event {k} of {name:?} from {from:?}, parsed ahead and not");
        }
        assert_eq!(ahead.0.len(), plain.0.len(), "events of {name:?}");
        assert_eq!(ahead.1, plain.1, "checkpoints of {name:?}");
        assert_eq!(ahead.2, plain.2, "reports of {name:?}");
        assert_eq!(ahead.3, plain.3, "samples of {name:?}");
        plain
    }

    #[test]
    fn prefixes_parsed_ahead_give_what_the_decoder_parses_itself_on_the_real_logs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/samples/realogs");
        if !dir.join("expected.json").exists() {
            assert!(std::env::var_os("XFERSTATS_REQUIRE_SAMPLES").is_none(), "{} missing", dir.display());
            eprintln!("SKIPPED: no {}", dir.display());
            return;
        }
        let mut files = Vec::new();
        let mut dirs = vec![dir];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_none_or(|x| x == "log") && !p.ends_with("README.md") {
                    files.push(p);
                }
            }
        }
        files.sort();
        assert!(files.len() >= 15, "{files:?}");
        let mut prefixed = 0;
        for f in files {
            // One at a time, and with small batches: many checkpoints.
            let (events, checkpoints, reports, _) = same_both_ways(&options(vec![f.clone()], None, 7), None);
            prefixed +=
                usize::from(reports.contains("Syslog") || reports.contains("Rsyncd") || reports.contains("Openssh"));
            // Resumed in its middle, both ways alike.
            if let Some(mid) = checkpoints.get(checkpoints.len() / 2).filter(|_| !events.is_empty()) {
                same_both_ways(&options(vec![f], None, 7), Some(mid.clone()));
            }
        }
        assert!(prefixed >= 8, "{prefixed} files read through prefixes");
    }

    #[test]
    fn prefixes_parsed_ahead_across_chunks_resumes_and_odd_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("syslog");
        let mut log = Vec::new();
        // Two years of BSD stamps (the year is inferred, Dec → Jan wraps),
        // RFC 3339 and log-file stamps, CRLF endings, foreign lines, a
        // known program's unreadable stamp, an over-long line, lines split
        // across the reader's 1 MiB chunks, and a last line without newline.
        let months = ["Nov", "Dec", "Jan", "Feb"];
        for i in 0..60_000u32 {
            let (m, d, h, s) = (months[(i / 15_000) as usize], 1 + (i / 600) % 28, (i / 60) % 24, i % 60);
            let pid = 1000 + i / 5;
            let line = match i % 11 {
                0 => format!("{m} {d:2} {h:02}:{:02}:{s:02} vm rsyncd[{pid}]: connect from h{i}.example.net (152.77.1.{})", i % 60, i % 250),
                1 => format!("{m} {d:2} {h:02}:{:02}:{s:02} vm rsyncd[{pid}]: rsync on pub/ from h{i}.example.net (152.77.1.{})\r", i % 60, i % 250),
                2 | 3 => format!("{m} {d:2} {h:02}:{:02}:{s:02} vm rsyncd[{pid}]: send h{i}.example.net [152.77.1.{}] pub (anon) f/{i}.iso {}", i % 60, i % 250, i * 7),
                4 => format!("{m} {d:2} {h:02}:{:02}:{s:02} vm rsyncd[{pid}]: sent {} bytes  received 42 bytes  total size {}", i % 60, i * 9, i * 7),
                5 => format!("2026-11-{:02}T{h:02}:{:02}:{s:02}.{:06}+01:00 vm rsyncd[{pid}]: connect from x (10.0.0.{})", 1 + d % 28, i % 60, i, i % 250),
                6 => format!("2026/11/{:02} {h:02}:{:02}:{s:02} [{pid}] connect from y (10.1.0.{})", 1 + d % 28, i % 60, i % 250),
                7 => format!("{m} {d:2} {h:02}:{:02}:{s:02} vm CRON[{pid}]: (root) CMD (true)", i % 60),
                8 => format!("Nox 99 99:99:99 vm rsyncd[{pid}]: bad stamp"),
                9 => "not a log line at all".to_string(),
                // sshd lines from December on: the syslog decoder parses
                // their prefix a second time (and the year of a first one
                // in December is inferred differently by a fresh clock).
                _ if i < 15_000 => format!("{m} {d:2} {h:02}:{:02}:{s:02} vm other[{pid}]: x", i % 60),
                _ => format!("{m} {d:2} {h:02}:{:02}:{s:02} vm sshd[{pid}]: Accepted password for u{} from 152.77.2.{} port 22 ssh2", i % 60, i % 7, i % 250),
            };
            log.extend_from_slice(line.as_bytes());
            log.push(b'\n');
            if i == 20_000 {
                log.extend(std::iter::repeat_n(b'x', crate::input::MAX_LINE + 5));
                log.push(b'\n');
            }
        }
        log.extend_from_slice(b"Feb 28 23:59:59 vm rsyncd[1]: connect from last (152.77.1.1)");
        std::fs::write(&path, &log).unwrap();
        // The year of a BSD stamp and the latest plausible time follow the
        // file's modification time: fixed, or the December lines (placed
        // after November) would count as they fall before or after one day
        // past the clock of the test run.
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_040_000); // 2026-11-30 12:00 UTC
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
        assert!(log.len() > 4 * CHUNK);
        for format in [Format::Syslog, Format::Rsyncd, Format::Openssh] {
            let opts = options(vec![path.clone()], Some(format), 499);
            let (events, checkpoints, _, samples) = same_both_ways(&opts, None);
            if format == Format::Syslog {
                assert_eq!(events.lines().count(), 3_036);
                assert_eq!(samples.matches("RejectSample").count(), SAMPLES_PER_INPUT, "{samples}");
                // Seven while reading, and the input's checkpoint again
                // with the events of the sessions that end with the run.
                assert_eq!(checkpoints.len(), 8);
                assert_eq!(checkpoints[6], checkpoints[7]);
            }
            // Resumed at checkpoints in the middle of chunks, before and
            // after the over-long line.
            for cp in checkpoints.iter().step_by(checkpoints.len() / 3 + 1) {
                same_both_ways(&opts, Some(cp.clone()));
            }
        }
    }

    #[test]
    fn the_hint_names_the_detected_format_or_the_layout_option() {
        assert_eq!(
            missing_option(Format::Vsftpd, Some(Format::Xferlog)),
            "--format xferlog (its first lines read as xferlog)"
        );
        assert!(missing_option(Format::Rsyncd, Some(Format::Rsyncd)).starts_with("--rsync-log-format"));
        assert!(missing_option(Format::ProftpdExtended, None).starts_with("--proftpd-log-format"));
    }
}
