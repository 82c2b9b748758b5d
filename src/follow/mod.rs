//! `xferstats follow`: the ingest engine kept running over growing logs.
//!
//! Why it is exact where log shippers lose or double lines: the follower
//! reads through the same engine and ledger as batch ingest
//! ([`crate::ingest`]), so every commit carries the events, the input's
//! checkpoint and the open sessions in one store transaction, and a file
//! is known by its content (fingerprint of the first line, keyed hash of
//! the bytes before the offset, checked on every read) — never by inode or
//! name. `follow` and `ingest` continue where the other stopped.
//!
//! How rotations are met:
//! * each file picked up is held open; a name that now points to another
//!   file (rename + create, rename + gzip, SFTPGo's time-stamped rename, a
//!   file removed and created again, a new file on a reused inode) leaves
//!   the old file *detached*: it is read through its descriptor until it
//!   has not grown for `--rotate-wait`, then its last line is taken even
//!   without a newline, and it is closed;
//! * a file whose content changes under the same descriptor (copytruncate,
//!   truncate-and-rewrite) is *hunted*: its rotated copies in the same
//!   directory (`paths::copy_of`) are searched for the old content (same fingerprint) and the lines
//!   after the last read are read from that copy, then the new content from
//!   its start;
//! * compressed rotations (`log.2.gz`) matched by a glob resume from the
//!   ledger like any input, so they add nothing already read;
//! * a rotated copy of a followed name that the follower never held open
//!   (rotated while it was down, or created and rotated between two of its
//!   looks) is read from where the ledger left its content, before the
//!   newer files picked up with it (`Follower::copy_rules` says which).
//!
//! Commits: a change wakes the loop (inotify through the `notify` crate, or
//! a `--poll` tick); what was appended is read and committed at once, but
//! no more often than every quarter of `--flush-interval`, so a busy log
//! is committed in batches and a quiet one within milliseconds. While the
//! store is down, commits queue in memory up to `--buffer-limit`, then
//! reading pauses (the log stays on disk) until the store answers again.

mod paths;
mod signals;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::enrich::Enricher;
use crate::error::{Error, InputError, StoreError};
use crate::formats::Format;
use crate::ingest::{
    drive, look_or, read_opened, Engine, IngestOptions, InputReport, InputStatus, NoProgress, Reconnect,
};
use crate::input::{Compression, Input, Source};
use crate::sanitize::sanitize;
use crate::sinks::Sink;

pub use paths::{expand, matches};

/// What to follow and how.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// How lines are read and decoded (its `inputs` are not used).
    pub ingest: IngestOptions,
    /// Paths, globs and directories, looked up again at every scan.
    pub patterns: Vec<PathBuf>,
    /// Poll every this often instead of waiting for inotify events
    /// (network file systems).
    pub poll: Option<Duration>,
    /// Longest time from a line's append to its commit.
    pub flush_interval: Duration,
    /// How long a rotated-away file must not have grown before its last
    /// line is taken without a newline and it is closed.
    pub rotate_wait: Duration,
    /// Log bytes read but not yet committed (store outage) at which reading
    /// pauses.
    pub buffer_limit: u64,
}

/// What a follow run did until it was stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowReport {
    /// Events added.
    pub events_new: u64,
    /// Events already stored.
    pub events_dup: u64,
    /// Lines read.
    pub lines: u64,
}

/// What wakes the follower's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A watched directory changed.
    Changed,
    /// SIGTERM or SIGINT: commit and stop.
    Stop,
    /// SIGHUP: reopen the GeoIP database.
    Reload,
}

/// How often the names are looked up again even without an inotify event
/// (a directory created later, a missed event).
const RESCAN: Duration = Duration::from_secs(5);
/// The name of the follower's record of followed names in the store
/// ([`Engine::host_record`]).
const FOLLOWED: &str = "follow";
/// How often queued commits are offered to a store that did not take them.
const PUMP: Duration = Duration::from_millis(100);

/// SIGTERM, SIGINT and SIGHUP routed to a follower. Installed first thing
/// (before the store is opened), so that a stop request during start-up
/// is taken as one, not as the default death by signal.
pub struct Signals {
    tx: Sender<Wake>,
    rx: Receiver<Wake>,
    stop: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> Result<Signals, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        signals::install(tx.clone(), stop.clone()).map_err(|e| Error::Input(InputError::Watch { source: e }))?;
        Ok(Signals { tx, rx, stop })
    }
}

/// Follows `opts.patterns` into `sink` until SIGTERM/SIGINT (through
/// `signals`); `reopen` opens the store again after an outage.
pub fn follow(
    opts: &FollowOptions,
    enricher: Enricher,
    sink: &mut (dyn Sink + Send),
    reopen: &(dyn Fn() -> Result<Box<dyn Sink + Send>, StoreError> + Sync),
    signals: Signals,
) -> Result<FollowReport, Error> {
    let Signals { tx, rx, stop } = signals;
    let reconnect = Reconnect { buffer_limit: opts.buffer_limit, open: reopen, stop: &stop };
    let (lines, done) = drive(&opts.ingest, enricher, sink, Some(reconnect), |engine| {
        let mut f = Follower::new(opts, tx)?;
        f.run(engine, &rx)?;
        Ok(f.lines)
    })?;
    Ok(FollowReport { events_new: done.new, events_dup: done.dup, lines })
}

/// A file picked up, held open.
struct Tracked {
    /// The name it was last seen under.
    path: PathBuf,
    file: File,
    /// (device, inode): only to tell which name points to it now.
    id: (u64, u64),
    /// Content identity at the last read (`None`: empty so far).
    fingerprint: Option<u64>,
    format: Option<Format>,
    compression: Compression,
    /// (size, mtime in ns) at the last read: unchanged means nothing new.
    seen: Option<(u64, i64)>,
    /// Decompressed offset consumed (from its checkpoint).
    offset: u64,
    /// Whether a followed name still points to it.
    attached: bool,
    /// Last time it was seen to grow (or was detached).
    grew_at: Instant,
    /// Read to its end as rotated away: to be closed.
    finished: bool,
    /// The followed name it is a rotated copy of, when it was picked up as
    /// one (not read under the name in this run).
    copy_of: Option<PathBuf>,
}

/// The rest of a content replaced in place, to be read from its copy.
struct Hunt {
    dir: PathBuf,
    /// File name of the file replaced in place.
    followed: std::ffi::OsString,
    /// The file replaced in place, which is not its own copy.
    exclude: (u64, u64),
    fingerprint: u64,
    name: PathBuf,
    until: Instant,
}

struct Follower<'o> {
    opts: &'o FollowOptions,
    tracked: Vec<Tracked>,
    hunts: Vec<Hunt>,
    watcher: Option<(notify::RecommendedWatcher, Vec<PathBuf>)>,
    lines: u64,
    /// Files read to their end and closed, by (device, inode), with their
    /// (size, mtime): compressed files (they do not grow: a glob over years
    /// of archives holds no descriptors) and rotated copies. They are not
    /// read again unless they change.
    done: HashMap<(u64, u64), (u64, i64)>,
    /// Per followed name (a plain path, by [`name_key`]): the oldest
    /// modification time of a rotated copy of it to read — every copy
    /// (`i64::MIN`) for a name the ledger knew at the start, else those
    /// written since the name was first followed.
    copies_since: HashMap<PathBuf, i64>,
    /// The format each name was last read in (from the ledger at the
    /// start, then from every read), by [`name_key`]: a file whose head
    /// names no format is read in the format of its name or of the name it
    /// is a rotated copy of. An rsyncd log rotated amid a burst of transfer
    /// lines (which no format is detected by) would otherwise wait unread
    /// for a line that names its format.
    formats: HashMap<PathBuf, Format>,
}

/// A name as the same key however it was given: its directory
/// canonicalised.
fn name_key(p: &Path) -> PathBuf {
    let dir = paths::watched_dir(p);
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    dir.join(p.file_name().unwrap_or_default())
}

/// Counts a read's lines into `lines`; reports its rejected lines and
/// failure.
fn note(lines: &mut u64, engine: &mut Engine<'_>, rep: &InputReport) {
    *lines += rep.lines;
    for s in engine.report.samples.drain(..) {
        tracing::warn!("{}:{}: {}: {}", sanitize(&s.input), s.line, s.reason, s.text);
    }
    if let InputStatus::Failed(e) = &rep.status {
        tracing::warn!("{}", sanitize(e));
    }
}

fn signature(md: &std::fs::Metadata) -> (u64, i64) {
    (md.len(), md.mtime() * 1_000_000_000 + md.mtime_nsec())
}

fn shown(p: &Path) -> String {
    sanitize(&p.display().to_string()).into_owned()
}

impl<'o> Follower<'o> {
    fn new(opts: &'o FollowOptions, tx: Sender<Wake>) -> Result<Follower<'o>, Error> {
        let watcher = match opts.poll {
            Some(_) => None,
            None => {
                let w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
                    if ev.is_ok() {
                        let _ = tx.send(Wake::Changed);
                    }
                })
                .map_err(|e| Error::Input(InputError::Watch { source: std::io::Error::other(e) }))?;
                Some((w, Vec::new()))
            }
        };
        Ok(Follower {
            opts,
            tracked: Vec::new(),
            hunts: Vec::new(),
            watcher,
            lines: 0,
            done: Default::default(),
            copies_since: Default::default(),
            formats: Default::default(),
        })
    }

    /// The format `path` was last read in, or else the one of a name it
    /// is a rotated copy of ([`paths::copy_of`]).
    fn hint(&self, path: &Path) -> Option<Format> {
        let key = name_key(path);
        self.formats.get(&key).copied().or_else(|| {
            let (dir, name) = (key.parent()?, key.file_name()?);
            let copied = self.formats.iter().filter(|(k, _)| k.parent() == Some(dir));
            copied.filter(|(k, _)| k.file_name().is_some_and(|n| paths::copy_of(n, name))).map(|(_, f)| *f).next()
        })
    }

    /// Notes the format `path` was read in.
    fn read_as(&mut self, path: &Path, format: Option<Format>) {
        if let Some(f) = format {
            self.formats.insert(name_key(path), f);
        }
    }

    /// Watches the directories of the patterns not watched yet (those that
    /// exist by now).
    fn watch(&mut self) {
        use notify::Watcher;
        let Some((w, done)) = &mut self.watcher else { return };
        for pat in &self.opts.patterns {
            let dir = paths::watched_dir(pat);
            if done.contains(&dir) {
                continue;
            }
            match w.watch(&dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => done.push(dir),
                Err(e) => tracing::debug!("cannot watch {} yet: {e}", shown(&dir)),
            }
        }
    }

    /// Which rotated copies of each followed name (`auth.log.1`,
    /// `auth.log.2.gz`, `auth-20261129.log`) are read, so that lines
    /// appended and rotated away while the follower was down, or between
    /// two of its looks (a file created and rotated while it waited for a
    /// store), are not lost: for a name read before (the ledger has an
    /// input of the same stem in the same directory), every copy, each from
    /// where the ledger says its content was left; for a name only
    /// recorded as followed (`since`: new, or a follower stopped before its
    /// first commit of it), the copies written since it was first
    /// followed. A first start does not import a directory's history.
    /// Globs and directories name their copies themselves. Also loads the
    /// format each name was last read in.
    fn copy_rules(&mut self, engine: &mut Engine<'_>, since: &HashMap<PathBuf, i64>) -> Result<(), Error> {
        let ledger = engine.sink.ledger()?;
        let mut by_time: Vec<_> = ledger.iter().collect();
        by_time.sort_by(|a, b| a.last_import.cmp(&b.last_import));
        for e in by_time {
            self.read_as(Path::new(&e.checkpoint.name), Format::from_name(&e.checkpoint.format).ok());
        }
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        for pat in self.opts.patterns.iter().filter(|p| !paths::is_glob(p) && !p.is_dir()) {
            let Some(name) = pat.file_name() else { continue };
            let here = canonical(&paths::watched_dir(pat));
            let known = ledger.iter().any(|e| {
                let p = Path::new(&e.checkpoint.name);
                p.file_name().is_some_and(|n| n == name || paths::copy_of(name, n))
                    && canonical(&paths::watched_dir(p)) == here
            });
            // A second early: file times come from a coarser clock.
            let oldest = match (known, since.get(&name_key(pat))) {
                (true, _) => i64::MIN,
                (false, Some(&t)) => t - 1,
                (false, None) => continue,
            };
            self.copies_since.insert(name_key(pat), oldest);
        }
        Ok(())
    }

    /// Records the followed names (plain paths) not recorded before, with
    /// the time they are first followed, in the store before anything is
    /// read; returns the record. A restart reads the copies of such a name
    /// written since (see [`Follower::copy_rules`]), even if the follower
    /// before it was killed before it committed anything of the name.
    fn record_names(&mut self, engine: &mut Engine<'_>) -> Result<HashMap<PathBuf, i64>, Error> {
        let mut since: HashMap<PathBuf, i64> = match engine.host_record(FOLLOWED)? {
            Some(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::warn!("the record of followed names does not read ({e}): starting it anew");
                HashMap::new()
            }),
            None => HashMap::new(),
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut added = false;
        for pat in self.opts.patterns.iter().filter(|p| !paths::is_glob(p) && !p.is_dir()) {
            if let std::collections::hash_map::Entry::Vacant(v) = since.entry(name_key(pat)) {
                v.insert(now as i64);
                added = true;
            }
        }
        if added {
            let text = serde_json::to_string(&since)
                .map_err(|e| Error::Store(StoreError::State { scope: FOLLOWED.into(), reason: e.to_string() }))?;
            engine.save_host_record(FOLLOWED, text)?;
        }
        Ok(since)
    }

    fn run(&mut self, engine: &mut Engine<'_>, rx: &Receiver<Wake>) -> Result<(), Error> {
        let since = self.record_names(engine)?;
        self.copy_rules(engine, &since)?;
        let gap = (self.opts.flush_interval / 4).min(Duration::from_millis(250));
        let now = Instant::now();
        let mut last_cycle = now.checked_sub(gap).unwrap_or(now);
        let mut last_scan = last_cycle;
        let mut dirty = true;
        let mut paused: Option<Instant> = None;
        loop {
            // Sleep until something changes or a timer is due.
            let now = Instant::now();
            // Timers that want a cycle: never sooner than `gap` after the
            // last one (a timer already due must not spin the loop).
            let mut due = last_scan + self.opts.poll.unwrap_or(RESCAN);
            for t in self.tracked.iter().filter(|t| !t.attached) {
                due = due.min(t.grew_at + self.opts.rotate_wait);
            }
            if dirty || !self.hunts.is_empty() {
                due = due.min(last_cycle + gap);
            }
            let mut due = due.max(last_cycle + gap);
            // Open sessions are ended only at the stop, as a batch import
            // ends them at its end: ending them while idle would cut a
            // session whose next line is still to come.
            match engine.sink.buffered() {
                0 => {}
                // Paused: only the queue (and signals) matter.
                b if b >= self.opts.buffer_limit => due = now + PUMP,
                _ => due = due.min(now + PUMP),
            }
            let mut wakes = Vec::new();
            match rx.recv_timeout(due.saturating_duration_since(now)) {
                Ok(w) => wakes.push(w),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => wakes.push(Wake::Stop),
            }
            wakes.extend(rx.try_iter());
            for w in &wakes {
                match w {
                    Wake::Changed => dirty = true,
                    Wake::Reload => {
                        tracing::info!("SIGHUP: reopening the GeoIP database");
                        engine.refresh_geoip();
                    }
                    Wake::Stop => {}
                }
            }
            if wakes.contains(&Wake::Stop) {
                tracing::info!("stopping: committing what was read");
                // Whatever this process read: a stop ends the sessions as
                // the end of a batch import does.
                engine.close_all_sessions()?;
                return Ok(());
            }
            engine.sink.pump()?;
            if engine.sink.buffered() >= self.opts.buffer_limit {
                // Back-pressure: the store is behind; the log waits on disk.
                // Said at most once a minute: a large backlog pauses often.
                if paused.is_none_or(|at: Instant| at.elapsed() >= Duration::from_secs(60)) {
                    paused = Some(Instant::now());
                    tracing::info!(
                        "{} MiB read but not committed (--buffer-limit): reading paused until the store takes them",
                        engine.sink.buffered() >> 20
                    );
                }
                continue;
            }
            let now = Instant::now();
            if now >= last_scan + self.opts.poll.unwrap_or(RESCAN) || now >= due {
                dirty = true;
            }
            if dirty && now >= last_cycle + gap {
                last_cycle = now;
                last_scan = now;
                self.cycle(engine)?;
                // A read stopped by a full buffer goes on once it drains.
                dirty = engine.sink.buffered() >= self.opts.buffer_limit;
            }
        }
    }

    /// Looks the names up, reads what changed; whether any line was read.
    fn cycle(&mut self, engine: &mut Engine<'_>) -> Result<bool, Error> {
        self.watch();
        self.scan(engine);
        let mut read = false;
        for i in 0..self.tracked.len() {
            read |= self.read(engine, i)?;
        }
        self.tracked.retain(|t| !t.finished);
        read |= self.hunt(engine)?;
        Ok(read)
    }

    /// Opens `path` to follow it: its content's first time (for the order
    /// of reading) and the file.
    fn open(&self, engine: &Engine<'_>, path: PathBuf, copy_of: Option<PathBuf>) -> Option<(Option<i64>, Tracked)> {
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!("{}: {e}", shown(&path));
                return None;
            }
        };
        // The name may have moved on between the stat and the open.
        let md = file.metadata().ok()?;
        let id = (md.dev(), md.ino());
        let (format, first_time, fingerprint, compression) = match Input::reopen(Source::Path(path.clone()), &file) {
            Ok(input) => {
                let l = look_or(&input, engine.opts, self.hint(&path));
                (l.format, l.first_time, input.fingerprint(&engine.ids_key), input.compression)
            }
            Err(_) => (None, None, None, Compression::None),
        };
        let format_name = format.map_or("format not recognised yet", |f| f.name());
        match &copy_of {
            None => tracing::info!("picked up {} ({format_name})", shown(&path)),
            Some(name) => {
                tracing::debug!("looking at {}, a rotated copy of {} ({format_name})", shown(&path), shown(name))
            }
        }
        let t = Tracked {
            path,
            file,
            id,
            fingerprint,
            format,
            compression,
            seen: None,
            offset: 0,
            // A copy is read to its end and closed, as a file rotated away.
            attached: copy_of.is_none(),
            grew_at: Instant::now(),
            finished: false,
            copy_of,
        };
        Some((first_time, t))
    }

    /// Picks up new files under the names and the rotated copies of the
    /// names not read in this run ([`Follower::copy_rules`]), notes files
    /// rotated away.
    fn scan(&mut self, engine: &Engine<'_>) {
        let mut present = Vec::new();
        let mut picked: Vec<(Option<i64>, Tracked)> = Vec::new();
        for path in expand(&self.opts.patterns) {
            let Ok(md) = std::fs::metadata(&path) else { continue };
            if !md.is_file() {
                continue;
            }
            let id = (md.dev(), md.ino());
            present.push(id);
            if self.done.get(&id) == Some(&signature(&md)) {
                continue;
            }
            if let Some(t) = self.tracked.iter_mut().find(|t| t.id == id) {
                if t.path != path {
                    if t.attached {
                        tracing::info!("{} renamed to {}", shown(&t.path), shown(&path));
                    }
                    t.path = path;
                }
                t.attached = true;
                continue;
            }
            if picked.iter().any(|(_, t)| t.id == id) {
                continue;
            }
            picked.extend(self.open(engine, path, None));
        }
        // The copies are looked for after the names were opened: a file
        // rotated from then on is held open already, one rotated before
        // (while the follower was down, or between two looks) is here.
        // Each directory is listed once per look, however many of its
        // names are followed (`/var/log/messages` and `/var/log/secure`).
        let mut copies = Vec::new();
        let mut dirs: HashMap<&Path, Vec<(&OsStr, &PathBuf, i64)>> = HashMap::new();
        for (key, &oldest) in &self.copies_since {
            let (Some(dir), Some(name)) = (key.parent(), key.file_name()) else { continue };
            dirs.entry(dir).or_default().push((name, key, oldest));
        }
        let mut found: Vec<(PathBuf, PathBuf, i64)> = Vec::new();
        for (dir, names) in dirs {
            for e in std::fs::read_dir(dir).into_iter().flatten().filter_map(Result::ok) {
                let file = e.file_name();
                for &(_, key, oldest) in names.iter().filter(|(name, ..)| paths::copy_of(name, &file)) {
                    found.push((dir.join(&file), key.clone(), oldest));
                }
            }
        }
        for (path, key, oldest) in found {
            let Ok(md) = std::fs::metadata(&path) else { continue };
            let id = (md.dev(), md.ino());
            if !md.is_file() || md.mtime() < oldest || present.contains(&id) {
                continue;
            }
            copies.push(id);
            if self.done.get(&id) == Some(&signature(&md))
                || self.tracked.iter().any(|t| t.id == id)
                || picked.iter().any(|(_, t)| t.id == id)
            {
                continue;
            }
            picked.extend(self.open(engine, path, Some(key)));
        }
        self.done.retain(|id, _| present.contains(id) || copies.contains(id));
        for t in self.tracked.iter_mut().filter(|t| t.attached && !present.contains(&t.id)) {
            t.attached = false;
            t.grew_at = Instant::now();
            // Its new name, if it was renamed within its directory.
            let dir = t.path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            let renamed = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .find(|e| e.metadata().is_ok_and(|md| md.is_file() && (md.dev(), md.ino()) == t.id));
            match renamed {
                Some(e) => {
                    let to = dir.join(e.file_name());
                    tracing::info!("{} rotated to {}; reading it to its end", shown(&t.path), shown(&to));
                    t.path = to;
                }
                None => tracing::info!(
                    "{} rotated away or removed; reading it to its end through the open descriptor",
                    shown(&t.path)
                ),
            }
        }
        // Oldest content first, as batch ingest reads (a session split
        // across a rotation joins up). Lines a second apart are common, so
        // on the same first time a rotated copy goes before the file under
        // the name (which replaced it), and copies by age.
        picked.sort_by_cached_key(|(first, t)| {
            let modified = t.file.metadata().map_or(i64::MAX, |md| signature(&md).1);
            (first.is_none(), *first, t.copy_of.is_none(), modified)
        });
        self.tracked.extend(picked.into_iter().map(|(_, t)| t));
    }

    /// Reads what tracked file `i` gained; whether any line was read.
    fn read(&mut self, engine: &mut Engine<'_>, i: usize) -> Result<bool, Error> {
        let key = engine.ids_key;
        let hint = self.hint(&self.tracked[i].path);
        let t = &mut self.tracked[i];
        let md = match t.file.metadata() {
            Ok(md) => md,
            Err(e) => {
                tracing::warn!("{}: {e}; no longer followed", shown(&t.path));
                t.finished = true;
                return Ok(false);
            }
        };
        let sig = signature(&md);
        let last = !t.attached && t.grew_at.elapsed() >= self.opts.rotate_wait;
        if t.seen == Some(sig) && !last {
            return Ok(false);
        }
        if t.seen.is_some_and(|(len, _)| len != sig.0) {
            t.grew_at = Instant::now();
        }
        let last = last && t.seen.is_some_and(|(len, _)| len == sig.0);
        let mut input = match Input::reopen(Source::Path(t.path.clone()), &t.file) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!("{e}; no longer followed");
                t.finished = true;
                return Ok(false);
            }
        };
        let fingerprint = input.fingerprint(&key);
        let plain = input.compression == Compression::None;
        // The same content as before (its fingerprint, or the first-line
        // fingerprint it had while shorter than the fingerprint span).
        let same = input.has_fingerprint(&key, t.fingerprint);
        // Nothing read of the old content (a first line still partial when
        // picked up, whose fingerprint changes as it completes): nothing
        // to look for in a copy.
        let replaced = t.fingerprint.is_some() && t.offset > 0 && (!same || (plain && sig.0 < t.offset));
        let l = look_or(&input, engine.opts, hint);
        let format = if same && t.format.is_some() { t.format } else { l.format };
        let old = (t.fingerprint, t.offset);
        if replaced {
            tracing::info!(
                "{} was truncated or rewritten in place (copytruncate?): reading the rest of its old content from a copy",
                shown(&t.path)
            );
            self.hunt_for(i, old.0);
            self.hunt(engine)?;
        }
        if last {
            input.seal();
        }
        let t = &self.tracked[i];
        let (rep, cp) = read_opened(engine, t.path.display().to_string(), input, format, l.head, &NoProgress)?;
        note(&mut self.lines, engine, &rep);
        self.read_as(&self.tracked[i].path.clone(), rep.format);
        let t = &mut self.tracked[i];
        // Content that was not read on from its checkpoint although its
        // first line is the same: rewritten in place.
        if !replaced && plain && same && rep.resumed_from < old.1 {
            tracing::info!("{} was rewritten in place: reading it again from its start", shown(&t.path));
            self.hunt_for(i, old.0);
        }
        let t = &mut self.tracked[i];
        t.fingerprint = fingerprint;
        t.format = rep.format;
        t.compression = rep.compression.unwrap_or(Compression::None);
        t.offset = cp.map_or(0, |c| c.offset);
        // Read to its end, unless the buffer filled first.
        t.seen = (engine.sink.buffered() < self.opts.buffer_limit).then_some(sig);
        if let (Some(name), true) = (&t.copy_of, rep.lines > 0) {
            tracing::info!(
                "caught up with {}: {} line(s) of {} rotated there unread",
                shown(&t.path),
                rep.lines,
                shown(name)
            );
        }
        if last {
            if t.copy_of.is_none() {
                tracing::info!("finished {} (no longer written)", shown(&t.path));
            }
            self.done.insert(t.id, sig);
            t.finished = true;
        } else if t.compression != Compression::None && rep.status == InputStatus::Read && t.seen.is_some() {
            self.done.insert(t.id, sig);
            t.finished = true;
        }
        Ok(rep.lines > 0)
    }

    /// Starts looking for the copy of tracked file `i`'s old content.
    fn hunt_for(&mut self, i: usize, fingerprint: Option<u64>) {
        let t = &self.tracked[i];
        let Some(fingerprint) = fingerprint else { return };
        let dir = t.path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let followed = t.path.file_name().unwrap_or(OsStr::new("")).to_owned();
        let until = Instant::now() + 2 * self.opts.rotate_wait;
        self.hunts.push(Hunt { dir, followed, exclude: t.id, fingerprint, name: t.path.clone(), until });
    }

    /// Reads the old contents hunted for from their copies, if there by
    /// now; whether any line was read.
    fn hunt(&mut self, engine: &mut Engine<'_>) -> Result<bool, Error> {
        let mut read = false;
        let mut i = 0;
        while i < self.hunts.len() {
            let h = &self.hunts[i];
            let mut found = false;
            let mut candidates: Vec<(i64, PathBuf)> = std::fs::read_dir(&h.dir)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .filter(|e| paths::copy_of(&h.followed, &e.file_name()))
                .filter_map(|e| {
                    let md = std::fs::metadata(e.path()).ok()?;
                    (md.is_file() && (md.dev(), md.ino()) != h.exclude).then(|| (md.mtime(), e.path()))
                })
                .collect();
            // The newest copy is the likeliest.
            candidates.sort_by(|a, b| b.cmp(a));
            for (_, path) in candidates {
                let Ok(input) = Input::open(Source::Path(path.clone()), engine.opts.fifo_wait) else { continue };
                if !input.has_fingerprint(&engine.ids_key, Some(h.fingerprint)) {
                    continue;
                }
                let name = h.name.clone();
                let l = look_or(&input, engine.opts, self.hint(&name));
                let (rep, _) = read_opened(engine, path.display().to_string(), input, l.format, l.head, &NoProgress)?;
                note(&mut self.lines, engine, &rep);
                self.read_as(&path, rep.format);
                read |= rep.lines > 0;
                if rep.status == InputStatus::Read {
                    tracing::info!(
                        "read {} line(s) left after the last read of {} from its copy {}",
                        rep.lines,
                        shown(&name),
                        shown(&path)
                    );
                    found = true;
                }
                // A copy still being written (compressed) is tried again.
                break;
            }
            let h = &self.hunts[i];
            if found {
                self.hunts.remove(i);
            } else if Instant::now() >= h.until {
                tracing::info!(
                    "no copy of the old content of {} found: it was truncated without one (lines written after the last read, if any, are in no file)",
                    shown(&h.name)
                );
                self.hunts.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(read)
    }
}
