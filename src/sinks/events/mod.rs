//! The event stream: `xferstats events` writes the enriched events to
//! standard output (NDJSON or CSV) instead of storing them, for jq, Vector
//! or a data lake — and as the honest measure of parse + join + enrich.
//!
//! It is a [`Sink`] so that it runs the ingest engine unchanged (the same
//! inputs, decoders, sessions, enrichment, IP-privacy mode, rejected-line
//! report and exit codes); it only has no memory: no ledger, no saved
//! sessions, so every run reads its inputs from the start and joins the
//! sessions within the run. Each event is written with the columns the
//! stores get ([`COLUMNS`]); the formatting runs on the engine's store
//! thread, overlapping the parsing of the next batch, into one reused
//! buffer (nothing allocated per event).

mod write;

use std::io::Write;

use crate::enrich::hostkey::{HostKey, ID_SCHEME};
use crate::error::StoreError;
use crate::sinks::{Checkpoint, Commit, Committed, RekeyState, Sink};

pub use write::COLUMNS;

/// Output is handed to the writer in pieces of about this size.
const FLUSH_AT: usize = 1 << 16;

/// Events handed over at a time. The engine's 10,000 (2 MB of events, a
/// core's whole L2 cache here) took 4-5 % more wall time and 3-5 % more
/// CPU time than 2,500 in medians of 40-50 alternating runs over the
/// 115 MB benchmark log, four times; 2,500 came out best in three of those
/// (1,500, 2,000, 3,000, 4,000 and 5,000 also measured; 4,000 in the
/// fourth).
const BATCH_EVENTS: usize = 2_500;

/// The text of the event this many places ahead is asked for
/// ([`write::prefetch`]) before an event is written.
const PREFETCH_AHEAD: usize = 4;

/// How events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EventFormat {
    /// One JSON object a line; fields that do not apply to the event's
    /// kind are left out, absent values are `null`.
    #[default]
    Ndjson,
    /// RFC 4180 CSV: a header line, then one row per event with every
    /// column; text that starts with `=`, `+`, `-`, `@`, tab or CR gets a
    /// leading `'` (spreadsheet formula injection).
    Csv,
}

/// A [`Sink`] that writes events to `out` and keeps nothing.
pub struct EventStream<W: Write + Send> {
    out: W,
    /// What `out` is, for messages.
    target: String,
    format: EventFormat,
    /// The batch being formatted (reused).
    buf: Vec<u8>,
    /// What the writer keeps between events (reused).
    scratch: write::Scratch,
    /// The CSV header was written.
    header: bool,
    /// Its outbox, always empty.
    outbox: NoOutbox,
}

impl EventStream<std::io::Stdout> {
    /// The stream to standard output.
    pub fn stdout(format: EventFormat) -> Self {
        EventStream::new(std::io::stdout(), "standard output".to_string(), format)
    }
}

impl<W: Write + Send> EventStream<W> {
    /// A stream to `out`, named `target` in messages.
    pub fn new(out: W, target: String, format: EventFormat) -> Self {
        EventStream {
            out,
            target,
            format,
            buf: Vec::with_capacity(FLUSH_AT * 2),
            scratch: write::Scratch::default(),
            header: false,
            outbox: NoOutbox,
        }
    }

    /// The writer (after [`Sink::finish`], everything was written to it).
    pub fn into_inner(self) -> W {
        self.out
    }

    fn write_out(&mut self) -> Result<(), StoreError> {
        let done = self.out.write_all(&self.buf);
        self.buf.clear();
        done.map_err(|source| StoreError::Write { target: self.target.clone(), source })
    }
}

impl<W: Write + Send> Sink for EventStream<W> {
    fn describe(&self) -> String {
        self.target.clone()
    }

    /// Nothing is remembered: every input is read from its start.
    fn checkpoint(&mut self, _: u64) -> Result<Option<Checkpoint>, StoreError> {
        Ok(None)
    }

    /// Ids are keyed as in a new store, so an event's id is the one a store
    /// created today gives it.
    fn key_ids(&mut self, _: &HostKey, _: &mut RekeyState<'_>) -> Result<&'static str, StoreError> {
        Ok(ID_SCHEME)
    }

    /// No saved sessions: sessions are joined within the run.
    fn state(&mut self, _: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// No saved sessions: none are written out for it.
    fn keeps_states(&self) -> bool {
        false
    }

    /// No saved sessions, nothing in a ledger.
    fn states(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(Vec::new())
    }

    fn ledger(&mut self) -> Result<Vec<crate::sinks::LedgerEntry>, StoreError> {
        Ok(Vec::new())
    }

    /// No hook fires from the event stream (`events` refuses hooks): its
    /// outbox is always empty.
    fn outbox(&mut self) -> &mut dyn crate::sinks::Outbox {
        &mut self.outbox
    }

    /// 2,500 (this module's `BATCH_EVENTS`): nothing is committed, and a
    /// batch small enough to stay in the cores' caches on its way is
    /// written sooner.
    fn batch_events(&self) -> Option<usize> {
        Some(BATCH_EVENTS)
    }

    fn commit(&mut self, commit: &Commit<'_>) -> Result<Committed, StoreError> {
        if self.format == EventFormat::Csv && !self.header {
            write::csv_header(&mut self.buf);
            self.header = true;
        }
        for (k, e) in commit.events.iter().enumerate() {
            if let Some(ahead) = commit.events.get(k + PREFETCH_AHEAD) {
                write::prefetch(ahead);
            }
            match self.format {
                EventFormat::Ndjson => write::ndjson(&mut self.buf, &mut self.scratch, e, commit.input),
                EventFormat::Csv => write::csv(&mut self.buf, &mut self.scratch, e, commit.input),
            }
            if self.buf.len() >= FLUSH_AT {
                self.write_out()?;
            }
        }
        self.write_out()?;
        self.out.flush().map_err(|source| StoreError::Write { target: self.target.clone(), source })?;
        Ok(Committed { new: commit.events.len() as u64, dup: 0 })
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        if self.format == EventFormat::Csv && !self.header {
            write::csv_header(&mut self.buf);
            self.header = true;
        }
        self.write_out()?;
        self.out.flush().map_err(|source| StoreError::Write { target: self.target.clone(), source })
    }
}

/// The outbox of a sink that keeps no deliveries.
struct NoOutbox;

impl crate::sinks::Outbox for NoOutbox {
    fn claim_due(&mut self, _: &[&str], _: i64, _: i64, _: u32) -> Result<Vec<crate::sinks::Delivery>, StoreError> {
        Ok(Vec::new())
    }

    fn finish_delivery(&mut self, _: i64, _: &crate::sinks::Attempt) -> Result<(), StoreError> {
        Ok(())
    }

    fn outbox_counts(&mut self) -> Result<[(&'static str, u64); 3], StoreError> {
        Ok(crate::sinks::OUTBOX_STATES.map(|s| (s, 0)))
    }

    fn outbox_list(&mut self, _: &str, _: u32) -> Result<Vec<crate::sinks::OutboxEntry>, StoreError> {
        Ok(Vec::new())
    }

    fn requeue(&mut self, _: Option<i64>, _: i64) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn next_due(&mut self, _: &[&str]) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
}
