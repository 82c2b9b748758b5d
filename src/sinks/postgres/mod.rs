//! The PostgreSQL store: for years of history and several ingesting hosts.
//!
//! Each commit is one transaction holding the events, their rollup deltas,
//! the ledger and the open sessions (a batch import's, two: see below). A
//! batch import takes a transaction of
//! up to 500,000 events in parts of 10,000 ([`crate::sinks::Sink::part`]):
//! memory holds one part, and the daily rollups — per key, not per event,
//! so a few thousand rows per part that mostly repeat the part before — are
//! written once per transaction instead of once per part (that was half of
//! the server's time). Events are streamed with binary COPY (rows encoded
//! here into large buffers and written through the blocking `postgres`
//! wrapper of tokio-postgres' COPY, since the store runs on its own
//! thread). Two paths per part, one result:
//!
//! * **fast path** — COPY straight into the month-partitioned raw tables;
//!   the primary key `(time, event_id)` refuses the whole COPY if any event
//!   is already stored (or being stored by a concurrent ingest, which it
//!   waits for). If it succeeds every event was new, so the rollup deltas
//!   are computed here from the part — while the server is still storing
//!   its rows — and summed until the commit writes them in a few
//!   statements: COPY for the rows of days the rollup has no row of yet,
//!   upserts for the others.
//! * **exact path** — on that refusal (SQLSTATE 23505) the part's COPY is
//!   rolled back to a savepoint and redone through a temporary stage
//!   table: COPY into the stage, then one statement moves it with `INSERT …
//!   ON CONFLICT DO NOTHING RETURNING` and feeds exactly the rows it
//!   inserted into the rollups.
//!
//! A batch import stores each part's logins on a second connection while
//! this one stores its transfers: two server backends at once, each
//! transaction with its own events' rollup deltas, the second committed
//! first (see the `side` module).
//!
//! Re-imports, rotated copies and two concurrent ingests of the same lines
//! never double count: a row is counted only by the transaction that
//! inserted it. The fast path exists because the stage costs PostgreSQL
//! three times the work per row (measured: README, Performance).
//!
//! Month partitions are created on demand (in a short transaction of their
//! own, under an advisory lock, before the data transaction; a transaction
//! in parts that reaches a new month commits what it holds first, without
//! a checkpoint — exact all the same, a re-read finds those events stored);
//! there is no default partition. Retention drops whole partitions.
//!
//! Every statement is fixed text with bound parameters or COPY; the only
//! text built at run time is partition names and bounds, made from integers.

mod admin;
mod commit;
mod copy;
mod outbox;
pub(crate) mod query;
mod rollup;
mod schema;
mod side;
pub mod spec;

use std::collections::HashSet;

use ::postgres::{Client, NoTls};

use crate::error::StoreError;
pub use spec::PgSpec;

/// Advisory lock held while migrating ("xfstat" + 1).
const MIGRATION_LOCK: i64 = 0x7866_7374_6174_0001;
/// Advisory lock held while creating partitions.
const PARTITION_LOCK: i64 = 0x7866_7374_6174_0002;
/// Raw tables and the time column they are partitioned by.
const RAW_TABLES: [(&str, &str); 2] = [("transfers", "end_ts"), ("logins", "time_ts")];

/// A PostgreSQL store.
pub struct PgStore {
    client: Client,
    target: String,
    /// Months (year × 12 + month − 1) whose partitions exist.
    months: HashSet<i64>,
    /// The data transaction, while one is open.
    open: Option<commit::Open>,
    /// The raw tables' COPY statements, once prepared.
    raw_copy: Option<copy::RawCopy>,
    /// The connection a batch import stores logins on while this one
    /// stores transfers (see [`side`]).
    side: side::Side,
    /// How to open it.
    config: ::postgres::Config,
}

/// Maps a driver error to a store error naming the database (no password)
/// and the step that failed.
fn pg_err<'a>(target: &'a str, what: &'static str) -> impl Fn(::postgres::Error) -> StoreError + 'a {
    move |source| StoreError::Postgres { target: target.to_string(), what, source }
}

impl PgStore {
    /// Connects, and creates or migrates the schema.
    pub fn open(spec: &PgSpec) -> Result<PgStore, StoreError> {
        let target = spec.describe.clone();
        let client = spec.config.connect(NoTls).map_err(|source| StoreError::Postgres {
            target: target.clone(),
            what: "connect",
            source,
        })?;
        let mut store = PgStore {
            client,
            target,
            months: HashSet::new(),
            open: None,
            raw_copy: None,
            side: side::Side::default(),
            config: spec.config.clone(),
        };
        store
            .client
            .batch_execute("SET TIME ZONE 'UTC'; SET client_min_messages = warning")
            .map_err(store.err("set up the session"))?;
        store.migrate()?;
        Ok(store)
    }

    fn err(&self, what: &'static str) -> impl Fn(::postgres::Error) -> StoreError + '_ {
        move |source| StoreError::Postgres { target: self.target.clone(), what, source }
    }
}
