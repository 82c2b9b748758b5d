//! `xferstats status`: what the ledger says of every input read — by
//! `ingest` or `follow` alike, since both commit to it — and how far each
//! file on disk is ahead of it (the lag a follower or the next cron run
//! has to read). The file under an input's name is compared by content
//! (fingerprint), so a name that now holds another file (rotated) is not
//! mistaken for the input.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::enrich::hostkey::IdKey;
use crate::error::Error;
use crate::input::{Compression, Input, Source};
use crate::sanitize::sanitize;
use crate::sinks::{LedgerEntry, Sink};

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

/// The table `xferstats status` prints.
pub fn write_text(store: &str, rows: &[InputState], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "store: {}", sanitize(store))?;
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
/// lines, events_new, events_dup, rejected, last_import, lag_bytes, file}]}`
/// (`lag_bytes` null unless the file is the input, plain; `file` one of
/// `same`, `compressed`, `replaced`, `missing`).
pub fn json(store: &str, rows: &[InputState]) -> serde_json::Value {
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
    serde_json::json!({ "store": store, "inputs": inputs })
}
