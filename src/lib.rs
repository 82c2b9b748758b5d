//! xferstats turns file-transfer logs into exact, idempotent statistics.
//!
//! The pipeline reads as its stages:
//!
//! * [`input`] — files, stdin, pipes and FIFOs (each opened and read once),
//!   gzip/zstd by magic bytes, line-aligned chunks, fingerprints for
//!   checkpoints;
//! * [`formats`] — one folder per log format: its parser (pure functions
//!   from bytes to records) and its decoder (lines into [`model::Event`]s,
//!   joining a session's lines where needed), listed in
//!   [`formats::REGISTRY`] ([`formats::prefix`] holds the shared
//!   syslog/log-file prefixes);
//! * [`sessions`] — what the decoders share: the [`sessions::Decoder`]
//!   trait and its saved state, the line context, event ids;
//! * [`enrich`] — GeoIP location, geohash, keyed client hash, and the
//!   IP-privacy mode applied before anything is stored;
//! * [`sinks`] — stores behind the [`sinks::Sink`] and [`sinks::Store`]
//!   traits (SQLite by default), one folder each, named by `--db` through
//!   [`sinks::SCHEMES`]; [`sinks::events`] writes the events to stdout
//!   instead (`xferstats events`);
//! * [`rollup`] — the daily rollup keys, the metrics and the report types,
//!   defined once for every store and `report`;
//! * [`report`] — daily digest and grouped reports;
//! * [`metrics`] — Prometheus metrics derived from the store's totals.
//! * [`actions`] — hooks and failed-login alerts: deliveries queued in the
//!   store's outbox with the events they are about, sent by a worker after
//!   the commit.
//! * [`status`] — the ledger's inputs and how far each file is ahead of it.
//!
//! [`ingest::ingest`] drives the first five; [`follow::follow`] keeps the
//! same engine running over growing logs; the binary only turns command
//! line arguments into an [`ingest::IngestOptions`] or a
//! [`report::ReportOptions`] and calls in.

pub mod actions;
pub mod config;
pub mod enrich;
pub mod error;
pub mod filemode;
pub mod follow;
pub mod forget;
pub mod formats;
pub mod ingest;
pub mod input;
pub mod metrics;
pub mod model;
pub mod progress;
pub mod report;
pub mod rollup;
pub mod sanitize;
pub mod sessions;
pub mod sinks;
pub mod status;
#[doc(hidden)]
pub mod testhook;
pub mod time;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the import finished but some lines were rejected or an input
/// was not a recognised log.
pub const EXIT_REJECTED: u8 = 1;
/// Exit code: bad command line or configuration.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: an input could not be opened or read (what was read before
/// the error is committed).
pub const EXIT_INPUT: u8 = 3;
/// Exit code: the store failed; nothing of the batch in flight was committed.
pub const EXIT_STORE: u8 = 4;
/// Exit code: the digest could not be delivered (webhook unreachable or
/// answering other than 2xx, `sendmail` failed).
pub const EXIT_DELIVERY: u8 = 5;
