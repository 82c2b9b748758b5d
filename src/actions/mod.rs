//! Acting on what the logs say: hooks, failed-login alerts and their
//! delivery.
//!
//! A stage of its own because it sits after the store, not beside it: a
//! hook must fire exactly once per event, and only the store knows whether
//! an event is new (a re-read log, its rotated copy or an overlapping input
//! yields the same events, already stored). So the engine turns each batch's
//! events into candidate deliveries ([`Hooks::rows`]), the store's commit
//! writes those of the events it stores for the first time into its outbox
//! in the same transaction ([`crate::sinks::Commit::outbox`]), and a
//! [`Worker`] delivers the outbox after the commit, marking each delivery
//! done after exit 0 or HTTP 2xx, retrying with backoff and parking it after
//! its last attempt.
//!
//! * [`hook`] — the one list of triggers, hook keys and payload fields; a
//!   hook's filters, action and the JSON payload (and `XFERSTATS_*`
//!   variables) of an event;
//! * [`alert`] — the failed-login rule (N within W per client or user), one
//!   alert per window;
//! * [`deliver`] — the worker: commands and HTTP POSTs, backoff, parking,
//!   a thread for ingest (and for a long-running follower).
//!
//! A long-running importer (a follower) uses the same pieces: its engine
//! queues deliveries through [`crate::ingest::IngestOptions::hooks`], and it
//! runs a [`WorkerHandle::spawn`] of a [`Worker`] over a connection of its
//! own, calls [`WorkerHandle::notify`] after each commit and
//! [`WorkerHandle::finish`] when it stops.
//!
//! The one window: if the process dies after a receiver accepted a
//! delivery and before its `done` mark is committed, the delivery is sent
//! again by the next worker (after its claim lease ran out). Every payload
//! carries the event id (`event_id`, and the `Idempotency-Key` HTTP header)
//! so that a receiver can drop that repeat.

pub mod alert;
pub mod deliver;
pub mod hook;

pub use alert::AlertWindows;
pub use deliver::{deliver_while, Worker, WorkerHandle, WorkerStats};
pub use hook::{Action, Hook, HookError, Hooks, Trigger};
