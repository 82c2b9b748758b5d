//! `xferstats status`: what the ledger says of every input read — by
//! `ingest` or `follow` alike, since both commit to it — and how far each
//! file on disk is ahead of it (the lag a follower or the next cron run
//! has to read). The file under an input's name is compared by content
//! (fingerprint), so a name that now holds another file (rotated) is not
//! mistaken for the input. The open sessions the saved decoder states
//! hold are counted per server host and format, with the oldest: what a
//! follower (or the next run) still waits on.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::enrich::hostkey::{HostKey, IdKey};
use crate::error::Error;
use crate::formats::proftpd_extended::{ExtendedFormat, DEFAULT_FORMAT};
use crate::formats::rsync::{LogFormat, DEFAULT_LOG_FORMAT};
use crate::formats::Templates;
use crate::input::{Compression, Input, Source};
use crate::model::Micros;
use crate::sanitize::sanitize;
use crate::sinks::{LedgerEntry, Sink};
use crate::time::rfc3339;

/// How the file under an input's name compares with its ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lag {
    /// The same content, this many bytes past what was read (plain files).
    Bytes(u64),
    /// The same content, compressed: it does not grow.
    Compressed,
    /// The name now holds other content (rotated or replaced).
    Replaced,
    /// No file under the name (rotated away, removed, or on another host).
    Missing,
}

impl Lag {
    fn text(&self) -> String {
        match self {
            Lag::Bytes(n) => format!("{n} B"),
            Lag::Compressed => "- (compressed)".into(),
            Lag::Replaced => "- (name holds another file now)".into(),
            Lag::Missing => "- (no such file)".into(),
        }
    }
}

/// One input of the ledger, with its lag.
#[derive(Debug, Clone)]
pub struct InputState {
    /// The ledger entry.
    pub entry: LedgerEntry,
    /// The file under its name now.
    pub lag: Lag,
}

/// Every input of `store`'s ledger with the lag of the file under its name
/// (fingerprints keyed with `key`, as the store's).
pub fn inputs(store: &mut dyn Sink, key: &IdKey) -> Result<Vec<InputState>, Error> {
    let ledger = store.ledger()?;
    Ok(ledger.into_iter().map(|entry| InputState { lag: lag(&entry, key), entry }).collect())
}

/// The open sessions of one format on one server host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessions {
    /// The server host of their lines.
    pub server_host: String,
    /// The decoder's format (its state scope).
    pub format: String,
    /// How many are open.
    pub count: u64,
    /// When the oldest opened.
    pub oldest: Micros,
}

/// The open sessions in `store`'s saved decoder states (unsealed with
/// `key`), per server host and format, sorted. A state that does not read
/// (another host key, damaged) is skipped with a warning naming it.
pub fn open_sessions(store: &mut dyn Sink, key: &HostKey) -> Result<Vec<OpenSessions>, Error> {
    let (rsync, proftpd) = (LogFormat::compile(DEFAULT_LOG_FORMAT), ExtendedFormat::compile(DEFAULT_FORMAT));
    let (Ok(rsync), Ok(proftpd)) = (rsync, proftpd) else { unreachable!("the default layouts compile") };
    let templates = Templates { rsync: &rsync, proftpd: &proftpd };
    let mut out: Vec<OpenSessions> = Vec::new();
    for (scope, stored) in store.states()? {
        let decoder = match crate::ingest::restore_scope(&templates, key, &scope, &stored) {
            Ok(Some((d, _))) => d,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("open sessions of {}: unreadable ({})", sanitize(&scope), sanitize(&e));
                continue;
            }
        };
        // Lines without a host name are the ingesting host's (the scope's).
        let ingesting = scope.split_once('@').map_or("-", |(_, h)| h);
        for s in decoder.open_sessions() {
            let host = s.server_host.as_deref().unwrap_or(ingesting);
            match out.iter_mut().find(|o| o.server_host == host && o.format == decoder.scope()) {
                Some(o) => (o.count, o.oldest) = (o.count + 1, o.oldest.min(s.since)),
                None => out.push(OpenSessions {
                    server_host: host.to_string(),
                    format: decoder.scope().to_string(),
                    count: 1,
                    oldest: s.since,
                }),
            }
        }
    }
    out.sort_by(|a, b| (&a.server_host, &a.format).cmp(&(&b.server_host, &b.format)));
    Ok(out)
}

fn lag(entry: &LedgerEntry, key: &IdKey) -> Lag {
    let path = Path::new(&entry.checkpoint.name);
    let Ok(input) = Input::open(Source::Path(path.to_path_buf()), Duration::ZERO) else { return Lag::Missing };
    if input.fingerprint(key) != Some(entry.checkpoint.fingerprint) {
        return Lag::Replaced;
    }
    match (input.compression, input.size) {
        (Compression::None, Some(size)) => Lag::Bytes(size.saturating_sub(entry.checkpoint.offset)),
        _ => Lag::Compressed,
    }
}

/// The tables `xferstats status` prints: inputs, then open sessions.
pub fn write_text(
    store: &str,
    rows: &[InputState],
    sessions: &[OpenSessions],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "store: {}", sanitize(store))?;
    write_inputs(rows, out)?;
    writeln!(out)?;
    if sessions.is_empty() {
        return writeln!(out, "no open sessions");
    }
    writeln!(out, "{:<32} {:<16} {:>6}  OLDEST OPEN SINCE", "SERVER HOST", "FORMAT", "OPEN")?;
    for s in sessions {
        let (host, format) = (sanitize(&s.server_host), sanitize(&s.format));
        writeln!(out, "{host:<32} {format:<16} {:>6}  {}", s.count, rfc3339(s.oldest))?;
    }
    Ok(())
}

fn write_inputs(rows: &[InputState], out: &mut dyn Write) -> std::io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "no input read yet");
    }
    writeln!(out, "{:<44} {:<16} {:>12} {:>10}  {:<20}  LAG", "INPUT", "FORMAT", "OFFSET", "LINES", "LAST IMPORT")?;
    for r in rows {
        let c = &r.entry.checkpoint;
        writeln!(
            out,
            "{:<44} {:<16} {:>12} {:>10}  {:<20}  {}",
            sanitize(&c.name),
            sanitize(&c.format),
            c.offset,
            c.lines,
            sanitize(&r.entry.last_import),
            r.lag.text()
        )?;
    }
    Ok(())
}

/// The same as JSON: `{"store": …, "inputs": [{name, format, offset,
/// lines, events_new, events_dup, rejected, last_import, lag_bytes, file}],
/// "open_sessions": [{server_host, format, count, oldest_since}]}`
/// (`lag_bytes` null unless the file is the input, plain; `file` one of
/// `same`, `compressed`, `replaced`, `missing`; `oldest_since` RFC 3339).
pub fn json(store: &str, rows: &[InputState], sessions: &[OpenSessions]) -> serde_json::Value {
    let inputs: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let c = &r.entry.checkpoint;
            let (lag, file) = match r.lag {
                Lag::Bytes(n) => (Some(n), "same"),
                Lag::Compressed => (None, "compressed"),
                Lag::Replaced => (None, "replaced"),
                Lag::Missing => (None, "missing"),
            };
            serde_json::json!({
                "name": c.name,
                "format": c.format,
                "offset": c.offset,
                "lines": c.lines,
                "events_new": c.events_new,
                "events_dup": c.events_dup,
                "rejected": c.rejected,
                "last_import": r.entry.last_import,
                "lag_bytes": lag,
                "file": file,
            })
        })
        .collect();
    let sessions: Vec<serde_json::Value> = sessions
        .iter()
        .map(|s| {
            serde_json::json!({
                "server_host": s.server_host,
                "format": s.format,
                "count": s.count,
                "oldest_since": rfc3339(s.oldest),
            })
        })
        .collect();
    serde_json::json!({ "store": store, "inputs": inputs, "open_sessions": sessions })
}
