//! Stores. Every store sits behind [`Sink`] (the ingest side, pushed to by
//! the engine as in ripgrep's searcher → sink) and [`Store`] (the report
//! side). A commit is atomic: the new events, the rollup rows of exactly
//! those events, the input's checkpoint and the open-session state land
//! together or not at all, which is what makes a killed import re-runnable
//! without double counting.
//!
//! Each store is a folder (`sqlite/`, `postgres/`, `influx/`) with its
//! `--db` URL spec, schema and row encoder; [`SCHEMES`] is the one table
//! from `--db` schemes to stores, and [`open`] opens what it names.
//! [`events`] is a [`Sink`] without a store: the event stream of
//! `xferstats events`.

pub mod events;
pub mod influx;
pub mod postgres;
pub mod sqlite;

use std::path::PathBuf;

pub use influx::spec::InfluxSpec;
pub use postgres::PgSpec;

use crate::enrich::hostkey::{HostKey, ID_SCHEME, ID_SCHEME_V1};
use crate::error::{ConfigError, StoreError};
use crate::model::Event;
use crate::rollup::{Aggregate, DayCount, DayList, FailedTransfer, Group, Metrics};

/// What an earlier run consumed of one input (identified by fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Fingerprint of the input ([`crate::input::Input::fingerprint`]).
    pub fingerprint: u64,
    /// Name the input was last read under.
    pub name: String,
    /// Format it was read as.
    pub format: String,
    /// Decompressed bytes consumed (always at a line boundary).
    pub offset: u64,
    /// Lines consumed.
    pub lines: u64,
    /// Keyed hash of the bytes just before `offset` (see `input::TAIL_CHECK`).
    pub tail_hash: u64,
    /// Saved event-id generator state of the input (keyed line hashes).
    pub ids: String,
    /// Events this input added so far (as read back; commits add to it).
    pub events_new: u64,
    /// Events of this input that were already stored (as read back).
    pub events_dup: u64,
    /// Lines of this input rejected so far (cumulative, as written).
    pub rejected: u64,
}

/// One input of the ledger as `xferstats status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Where the input stands.
    pub checkpoint: Checkpoint,
    /// When it was last imported (RFC 3339, UTC).
    pub last_import: String,
}

/// One atomic unit of work for a store.
#[derive(Debug)]
pub struct Commit<'a> {
    /// Events to add (those already present are skipped).
    pub events: &'a [Event],
    /// Ledger fingerprint of the input the events came from, stored with
    /// each new row (what `forget` removes); `None` when unknown.
    pub input: Option<u64>,
    /// Where the input stands after these events.
    pub checkpoint: Option<&'a Checkpoint>,
    /// Decoder states `(scope, state)` after these events.
    pub states: &'a [(&'a str, String)],
    /// Hook deliveries of these events ([`crate::actions`]): each is
    /// written to the outbox in the same transaction if, and only if, its
    /// event is stored by this commit (not stored before, not beyond the
    /// prune horizon).
    pub outbox: &'a [HookRow],
}

/// A hook delivery to queue with its event.
#[derive(Debug, Clone, PartialEq)]
pub struct HookRow {
    /// The hook's name.
    pub hook: String,
    /// The stored event the delivery belongs to (for an alert: the failed
    /// login that completed its window); the idempotency key.
    pub event_id: u64,
    /// That event's time (µs): with the id, its key in the raw tables.
    pub event_time: i64,
    /// Whether that event is a login (else a transfer).
    pub login: bool,
    /// The trigger's name.
    pub trigger: &'static str,
    /// The JSON payload (addresses as the IP mode stores them).
    pub payload: String,
}

/// A queued delivery, as the worker sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Outbox row id.
    pub id: i64,
    /// The hook's name.
    pub hook: String,
    /// The event id (idempotency key).
    pub event_id: u64,
    /// The JSON payload.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// A parked (or pending) delivery, as `xferstats hooks status` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OutboxEntry {
    /// Outbox row id (what `xferstats hooks retry ID` takes).
    pub id: i64,
    /// The hook's name.
    pub hook: String,
    /// The trigger.
    pub trigger: String,
    /// The event id, as decimal text (JSON numbers lose 64-bit precision).
    pub event_id: String,
    /// The event's time, RFC 3339.
    pub event_time: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure, sanitised.
    pub last_error: Option<String>,
}

/// What a delivery attempt came to, for [`Outbox::finish_delivery`].
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Delivered: the row becomes `done`.
    Delivered,
    /// Failed; tried again at `next` (µs), or parked when `next` is
    /// `None`.
    Failed {
        /// Why (shown by `hooks status`).
        error: String,
        /// When to try again; `None` parks the delivery.
        next: Option<i64>,
    },
}

/// The hook outbox of a store (SQLite, PostgreSQL, and InfluxDB's local
/// state file): read and updated by the delivery worker and `xferstats
/// hooks`, written only by [`Sink::commit`].
pub trait Outbox {
    /// Claims up to `limit` pending deliveries of the hooks `hooks` due at
    /// `now` (µs), oldest first: each claimed row's next attempt moves to
    /// `now + lease` (µs), so that no other worker takes it meanwhile.
    fn claim_due(&mut self, hooks: &[&str], now: i64, lease: i64, limit: u32) -> Result<Vec<Delivery>, StoreError>;
    /// Records the outcome of an attempt at delivery `id`.
    fn finish_delivery(&mut self, id: i64, attempt: &Attempt) -> Result<(), StoreError>;
    /// Rows per state (`pending`, `done`, `parked`), in that order.
    fn outbox_counts(&mut self) -> Result<[(&'static str, u64); 3], StoreError>;
    /// The `limit` oldest rows in `state`.
    fn outbox_list(&mut self, state: &str, limit: u32) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Makes parked deliveries pending again, due now (µs): the one with
    /// row id `id`, or all when `None`; returns how many.
    fn requeue(&mut self, id: Option<i64>, now: i64) -> Result<u64, StoreError>;
    /// When the next pending delivery of `hooks` is due (µs), if any.
    fn next_due(&mut self, hooks: &[&str]) -> Result<Option<i64>, StoreError>;
}

/// The outbox states, in the order [`Outbox::outbox_counts`] gives them.
pub const OUTBOX_STATES: [&str; 3] = ["pending", "done", "parked"];

/// The migrations of `known` (version, SQL; ascending, numbers may have
/// gaps: versions are reserved per change, and a store is migrated by the
/// numbers it lacks, not by position) that a store which applied `applied`
/// still needs, in order; `Err((found, supported))` when it applied a
/// version `found` this binary does not know (written by a newer one).
pub(crate) fn pending_migrations<'m>(
    known: &[(i64, &'m str)],
    applied: &[i64],
) -> Result<Vec<(i64, &'m str)>, (i64, i64)> {
    let supported = known.last().map_or(0, |m| m.0);
    if let Some(&unknown) = applied.iter().find(|v| !known.iter().any(|k| k.0 == **v)) {
        return Err((unknown, supported));
    }
    Ok(known.iter().filter(|k| !applied.contains(&k.0)).copied().collect())
}

/// Re-keys the ids in a stored open-session state: `(scope, state)` to
/// the new state, or why it is unreadable.
pub type RekeyState<'a> = dyn FnMut(&str, &str) -> Result<String, String> + 'a;

/// What a commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// Events added.
    pub new: u64,
    /// Events that were already stored.
    pub dup: u64,
}

/// The ingest side of a store.
pub trait Sink {
    /// Where the store is, for messages (no secrets).
    fn describe(&self) -> String;
    /// The checkpoint of the input with this fingerprint, if any.
    fn checkpoint(&mut self, fingerprint: u64) -> Result<Option<Checkpoint>, StoreError>;
    /// Prepares the store for ids keyed with `key` before anything is read
    /// or written: records the id scheme and a check value of the key in a
    /// new store; re-keys, in one transaction, a store written with unkeyed
    /// hashes (every event id, ledger fingerprint, tail hash, id state and
    /// open-session state becomes what the same lines now hash to, see
    /// [`crate::sessions::rekey_unkeyed_ids`]); refuses a store keyed with another key
    /// ([`StoreError::HostKeyChanged`]). Returns the store's id scheme
    /// ([`crate::enrich::hostkey::ID_SCHEME`] for a new store,
    /// [`ID_SCHEME_V1`] for one that held events or ledger entries
    /// before). `state` re-keys the ids in an open-session
    /// state (scope, stored text) of such a store; its error names why the
    /// state is unreadable.
    fn key_ids(&mut self, key: &HostKey, state: &mut RekeyState<'_>) -> Result<&'static str, StoreError>;
    /// Saved decoder state of a scope.
    fn state(&mut self, scope: &str) -> Result<Option<String>, StoreError>;
    /// Every saved decoder state, `(scope, stored text)`, by scope
    /// (`xferstats status`).
    fn states(&mut self) -> Result<Vec<(String, String)>, StoreError>;
    /// Every input of the ledger, most recently imported first (`xferstats
    /// status`, and the follower's look for rotated copies after a
    /// restart).
    fn ledger(&mut self) -> Result<Vec<LedgerEntry>, StoreError>;
    /// Commits events, rollups, checkpoint and states in one transaction
    /// (with the parts sent before it, see [`Sink::part`]).
    fn commit(&mut self, commit: &Commit<'_>) -> Result<Committed, StoreError>;
    /// `Some(n)`: the store takes a transaction of many events in parts of
    /// `n` events ([`Sink::part`]), so that a batch import's transactions
    /// can be large (fewer rollup writes) while no more than a part's
    /// events are in memory. `None` (the default): every transaction
    /// whole, in one [`Sink::commit`].
    fn part_events(&self) -> Option<usize> {
        None
    }
    /// `Some(n)`: a store that takes every transaction whole takes batches
    /// of `n` events best (unless `--batch-size` says otherwise). `None`
    /// (the default): the engine's [`crate::ingest::BATCH_EVENTS`].
    fn batch_events(&self) -> Option<usize> {
        None
    }
    /// Stores the events and hook rows of `part` (no checkpoint, no states)
    /// in the transaction that the next [`Sink::commit`] commits, opening
    /// it if need be; returns what it stored. Only called when
    /// [`Sink::part_events`] says so (this default commits it at once,
    /// which is exact as well: a run that stops before the next checkpoint
    /// reads the part again and finds its events stored).
    fn part(&mut self, part: &Commit<'_>) -> Result<Committed, StoreError> {
        self.commit(part)
    }
    /// Whether the store keeps the decoders' open sessions it is given
    /// ([`Commit::states`]); one that does not (the event stream) is given
    /// none, and the engine does not write them out for every commit.
    fn keeps_states(&self) -> bool {
        true
    }
    /// Work left after the last commit of a run (the InfluxDB store's daily
    /// points). Stores that finish everything in `commit` do nothing.
    fn finish(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The store's hook outbox.
    fn outbox(&mut self) -> &mut dyn Outbox;
}

/// The report side of a store.
pub trait Store {
    /// Groups and sums transfers and logins. Transfer metrics come from the
    /// daily rollups when the keys allow it, else from raw events.
    fn aggregate(&mut self, q: &Aggregate) -> Result<Vec<Group>, StoreError>;
    /// The rows [`Store::aggregate`] merges into its groups, as the store
    /// reads them, each passed to `row` (key values in `q.keys` order, and
    /// metrics) without collecting them: a group with transfers and logins
    /// comes as two rows, which add up to it; rows that count nothing are
    /// left out. What reads many groups to sum them again (the HTML page)
    /// uses this rather than build every group first. The default passes
    /// the groups of `aggregate`.
    fn aggregate_rows(&mut self, q: &Aggregate, row: &mut dyn FnMut(&[&str], &Metrics)) -> Result<(), StoreError> {
        for g in self.aggregate(q)? {
            let keys: Vec<&str> = g.keys.iter().map(String::as_str).collect();
            row(&keys, &g.metrics);
        }
        Ok(())
    }
    /// The newest day with any event within the range.
    fn latest_day(&mut self, since: Option<&str>, until: Option<&str>) -> Result<Option<String>, StoreError>;
    /// A ranked per-day list of the range: its `limit` first keys, day by
    /// day.
    fn day_counts(
        &mut self,
        list: DayList,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DayCount>, StoreError>;
    /// Per-month transfers and bytes of the `limit` most transferred files
    /// (uploads and downloads) of the range, from the raw events.
    fn top_files(&mut self, since: Option<&str>, until: Option<&str>, limit: u32) -> Result<Vec<DayCount>, StoreError> {
        self.day_counts(DayList::TopFiles, since, until, limit)
    }
    /// The files of one month (`YYYY-MM-01`) in the value rollup, as
    /// (file, transfers, bytes), files of no transfer or no path left out:
    /// with `names` empty the `limit` with the most transfers among those
    /// with at least `at_least` (most first), else those of `names`.
    fn month_files(
        &mut self,
        month: &str,
        at_least: u64,
        limit: u32,
        names: &[String],
    ) -> Result<Vec<(String, u64, u64)>, StoreError>;
    /// The `limit` latest interrupted or failed transfers of the range,
    /// newest first.
    fn failed_transfers(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<FailedTransfer>, StoreError>;
    /// Per-day failed logins of the `limit` clients with the most failed
    /// logins in the range (client as the IP mode stored it).
    fn failed_login_clients(
        &mut self,
        since: Option<&str>,
        until: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DayCount>, StoreError> {
        self.day_counts(DayList::FailedLoginClients, since, until, limit)
    }
    /// How many distinct clients (as the IP mode stored them) have events
    /// in the range. Stores with daily client lists override this scan of
    /// the raw events.
    fn distinct_clients(&mut self, since: Option<&str>, until: Option<&str>) -> Result<u64, StoreError> {
        let q = Aggregate {
            keys: vec![crate::rollup::Key::Client],
            since: since.map(Into::into),
            until: until.map(Into::into),
        };
        Ok(self.aggregate(&q)?.iter().filter(|g| !g.keys[0].is_empty()).count() as u64)
    }
    /// What the Prometheus metrics need besides the rollups: the ledger's
    /// lines per format, its last commit, the newest stored event, and the
    /// hook outbox by state when the store has one (index reads and small
    /// tables, no scan of the raw events).
    fn status(&mut self) -> Result<crate::metrics::StoreStatus, StoreError>;
}

/// Splits off the events older than a store's prune horizon: their raw
/// rows are gone and their rollups may already count them, so they are not
/// stored again. Returns the events to store (borrowed when none is old)
/// and how many were skipped.
pub fn beyond_horizon(events: &[Event], horizon: Option<i64>) -> (std::borrow::Cow<'_, [Event]>, u64) {
    match horizon {
        Some(h) if events.iter().any(|e| e.time() < h) => {
            let kept: Vec<Event> = events.iter().filter(|e| e.time() >= h).cloned().collect();
            let skipped = (events.len() - kept.len()) as u64;
            tracing::warn!(
                "{skipped} event(s) before {} skipped: raw events before that day were pruned and the daily \
                 rollups may already count them",
                crate::time::day_string(h)
            );
            (std::borrow::Cow::Owned(kept), skipped)
        }
        _ => (std::borrow::Cow::Borrowed(events), 0),
    }
}

/// The id scheme of a store keyed with `key`, or `None` when
/// [`Sink::key_ids`] must re-key it (it has no recorded id scheme: unkeyed
/// hashes, or new), from its `store_meta` values `id_scheme` and
/// `id_key_check`; an error when it is keyed with another key or by an
/// unknown scheme.
pub(crate) fn id_scheme_action(
    store: &str,
    scheme: Option<String>,
    check: Option<String>,
    key: &HostKey,
) -> Result<Option<&'static str>, StoreError> {
    let known = [ID_SCHEME, ID_SCHEME_V1];
    match scheme.as_deref() {
        None => Ok(None),
        Some(s) => match known.into_iter().find(|k| *k == s) {
            Some(k) if check.as_deref() == Some(key.key_check().as_str()) => Ok(Some(k)),
            Some(_) => Err(StoreError::HostKeyChanged { store: store.to_string() }),
            None => Err(StoreError::IdScheme { store: store.to_string(), scheme: s.to_string() }),
        },
    }
}

/// The id scheme [`Sink::key_ids`] records after keying a store: a store
/// that held events or ledger entries (written before ids were keyed, so
/// with ids of raw lines) gets [`ID_SCHEME_V1`], a new one [`ID_SCHEME`].
pub(crate) fn scheme_after_rekey(had_content: bool) -> &'static str {
    if had_content {
        ID_SCHEME_V1
    } else {
        ID_SCHEME
    }
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Raw transfer rows removed.
    pub transfers: u64,
    /// Raw login rows removed.
    pub logins: u64,
    /// Partitions dropped (PostgreSQL), by name.
    pub partitions: Vec<String>,
}

/// What `forget` removed of one input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Name the input was last read under (from its ledger entry).
    pub name: String,
    /// Raw transfer rows removed (and subtracted from the rollups).
    pub transfers: u64,
    /// Raw login rows removed (and subtracted from the rollups).
    pub logins: u64,
}

/// Maintenance of a store.
pub trait Admin {
    /// The schema version (migrations are applied when a store is opened).
    fn schema_version(&mut self) -> Result<i64, StoreError>;
    /// Removes raw events older than `before` (µs); rollups stay. A store
    /// with partitions removes only whole partitions that end before it.
    fn prune_raw(&mut self, before: i64) -> Result<Pruned, StoreError>;
    /// Recomputes the daily rollups of days `since..` from the raw rows.
    /// Refuses when raw rows of some of those days were pruned (the rollup
    /// would lose them). Returns the rollup rows written.
    fn rebuild_rollups(&mut self, since: &str) -> Result<u64, StoreError>;
    /// Forgets the input with the ledger fingerprint `fingerprint`, in one
    /// transaction: removes the events stored from it, subtracts them from
    /// the daily rollups and drops its ledger entry (its checkpoint and id
    /// state), so that it is read again in full. `None` when the ledger has
    /// no such input. Refuses an input some of whose events cannot be told
    /// apart (stored before events recorded their input) or were pruned.
    fn forget(&mut self, fingerprint: u64) -> Result<Option<Forgotten>, StoreError>;
}

/// Why `forget` refuses an input whose ledger entry counts `recorded` new
/// events of which only `found` are stored with its fingerprint; `None`
/// when all are there.
pub(crate) fn forget_refusal(store: &str, name: &str, recorded: u64, found: u64) -> Option<StoreError> {
    let name = crate::sanitize::sanitize_bytes(name.as_bytes(), 200);
    (found < recorded).then(|| {
        StoreError::Refused(if found == 0 {
            format!(
                "{store}: the {recorded} events of {name} were stored before events recorded their input \
                 (schema version 4 of SQLite, 3 of PostgreSQL); forget cannot tell them from other inputs' events \
                 and changes nothing"
            )
        } else {
            format!(
                "{store}: {} of the {recorded} events of {name} are no longer stored (pruned, or stored before \
                 events recorded their input); forget would leave them in the daily rollups and changes nothing",
                recorded - found
            )
        })
    })
}

/// Everything a store does.
pub trait Backend: Sink + Store + Admin + Send {}
impl<T: Sink + Store + Admin + Send> Backend for T {}

/// A store location.
#[derive(Debug, Clone)]
pub enum StoreSpec {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(Box<PgSpec>),
    /// An InfluxDB server (1.x, 2.x or 3.x) plus its local state file.
    Influx(Box<InfluxSpec>),
}

impl PartialEq for StoreSpec {
    fn eq(&self, other: &StoreSpec) -> bool {
        match (self, other) {
            (StoreSpec::Sqlite(a), StoreSpec::Sqlite(b)) => a == b,
            (StoreSpec::Postgres(a), StoreSpec::Postgres(b)) => a.describe == b.describe,
            (StoreSpec::Influx(a), StoreSpec::Influx(b)) => a == b,
            _ => false,
        }
    }
}
impl StoreSpec {
    /// Parses a `--db` value: `NAME:…` of a row of [`SCHEMES`], or a bare
    /// path (the row that takes bare paths); the environment is the
    /// process's (see [`StoreSpec::parse_with`]).
    pub fn parse(s: &str) -> Result<StoreSpec, ConfigError> {
        StoreSpec::parse_with(s, &|k: &str| std::env::var(k).ok())
    }

    /// [`StoreSpec::parse`] with the environment variables `env` gives.
    pub fn parse_with(s: &str, env: &Env<'_>) -> Result<StoreSpec, ConfigError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(ConfigError::Store(s.to_string()));
        }
        for scheme in &SCHEMES {
            if let Some(rest) = t.strip_prefix(scheme.name).and_then(|r| r.strip_prefix(':')) {
                return (scheme.parse)(scheme.name, rest, env);
            }
        }
        if let Some((scheme, _)) = t.split_once("://") {
            if !scheme.contains('/') {
                return Err(ConfigError::Store(scheme.to_string() + "://…"));
            }
        }
        match SCHEMES.iter().find(|s| s.bare_paths) {
            Some(scheme) => (scheme.parse)("", t, env),
            None => Err(ConfigError::Store(s.to_string())),
        }
    }

    /// The default: `xferstats.db` in the state directory.
    pub fn default_location(state_dir: &std::path::Path) -> StoreSpec {
        StoreSpec::Sqlite(state_dir.join("xferstats.db"))
    }

    /// Display form (never holds a password).
    pub fn describe(&self) -> String {
        match self {
            StoreSpec::Sqlite(p) => format!("sqlite:{}", p.display()),
            StoreSpec::Postgres(p) => p.describe.clone(),
            StoreSpec::Influx(i) => i.describe.clone(),
        }
    }

    /// Resolves locations relative to the state directory (the InfluxDB
    /// store's local state file).
    pub fn with_state_dir(mut self, state_dir: &std::path::Path) -> StoreSpec {
        if let StoreSpec::Influx(i) = &mut self {
            i.default_state(state_dir);
        }
        self
    }
}

/// Reads an environment variable (the process's, or a test's).
pub type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// One `--db` scheme: `NAME:…` names a store of its kind.
pub struct Scheme {
    /// What comes before the `:`.
    pub name: &'static str,
    /// Whether a `--db` without a scheme (a path) is this store's.
    pub bare_paths: bool,
    /// Its forms, for the message about an unknown store (none for an
    /// alias).
    pub forms: &'static [&'static str],
    /// Its entries in the list of stores at the end of `xferstats --help`:
    /// (forms, what they name); none for an alias.
    pub help: &'static [(&'static str, &'static str)],
    /// Parses what follows `NAME:` (`NAME` empty: a bare path).
    pub parse: fn(name: &'static str, rest: &str, env: &Env<'_>) -> Result<StoreSpec, ConfigError>,
}

/// The stores `--db` can name, by scheme. Nothing else matches on schemes:
/// parsing, the `--db` help and the unknown-store message read this table.
pub const SCHEMES: [Scheme; 5] = [
    Scheme {
        name: "sqlite",
        bare_paths: true,
        forms: &["sqlite:PATH", "a file path"],
        help: &[(
            "sqlite:PATH, sqlite://PATH, PATH",
            "SQLite database file (default: xferstats.db in the state directory)",
        )],
        parse: sqlite::spec::parse_scheme,
    },
    Scheme {
        name: "postgres",
        bare_paths: false,
        forms: &["postgres://…", "postgres:"],
        help: &[
            ("postgres://user:password@host:port/dbname, postgresql://…", "PostgreSQL, libpq URL syntax"),
            ("postgres:", "PostgreSQL from the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE"),
        ],
        parse: postgres::spec::parse_scheme,
    },
    Scheme { name: "postgresql", bare_paths: false, forms: &[], help: &[], parse: postgres::spec::parse_scheme },
    Scheme {
        name: "influxdb",
        bare_paths: false,
        forms: &["influxdb://…", "influxdb:"],
        help: &[
            (
                "influxdb://user@host:8086/db?rp=raw&daily_rp=daily",
                "InfluxDB 1.x (password in the URL or INFLUXDB_PASS)",
            ),
            ("influxdb:", "InfluxDB 1.x from INFLUXDB_HOST, _PORT, _USER, _PASS, _DB, _SSL, _VERIFY_SSL"),
        ],
        parse: influx::spec::parse_v1,
    },
    Scheme {
        name: "influxdb2",
        bare_paths: false,
        forms: &["influxdb2://…", "influxdb2:"],
        help: &[
            ("influxdb2://host:8086/ORG/BUCKET?daily_bucket=B", "InfluxDB 2.x/3.x (token in INFLUX_TOKEN)"),
            ("influxdb2:", "InfluxDB 2.x/3.x from INFLUX_URL, _ORG, _TOKEN, _BUCKET"),
        ],
        parse: influx::spec::parse_v2,
    },
];

/// The `--db` forms [`SCHEMES`] take, as a list for messages.
pub fn scheme_forms() -> String {
    let forms: Vec<&str> = SCHEMES.iter().flat_map(|s| s.forms.iter().copied()).collect();
    match forms.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => forms.join(""),
    }
}

/// The list of stores at the end of `xferstats --help` (the one place the
/// `--db` forms are described), from [`SCHEMES`].
pub fn stores_help() -> String {
    let mut out = format!("Stores (--db URL, or {}):", crate::config::DB_ENV);
    for (forms, what) in SCHEMES.iter().flat_map(|s| s.help.iter()) {
        out.push_str(&format!("\n  {forms}\n      {what}"));
    }
    out.push_str("\nInfluxDB keeps its ledger in a local state file in the state directory.");
    out
}

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// To write: what is missing is created (local files and directories
    /// with this mode) and migrations are applied.
    Write(crate::filemode::DbMode),
    /// To read only (reports): local files are opened read-only, nothing is
    /// created or migrated, and their directory need not be writable.
    /// PostgreSQL is opened as for writing (its roles decide).
    Read,
}

/// Opens the store `spec` names (for writing: creating and migrating as
/// needed).
pub fn open(spec: &StoreSpec, access: Access) -> Result<Box<dyn Backend>, StoreError> {
    Ok(match (spec, access) {
        (StoreSpec::Sqlite(p), Access::Write(mode)) => Box::new(sqlite::SqliteStore::open_with(p, mode)?),
        (StoreSpec::Sqlite(p), Access::Read) => Box::new(sqlite::SqliteStore::open_read_only(p)?),
        (StoreSpec::Postgres(p), _) => Box::new(self::postgres::PgStore::open(p)?),
        (StoreSpec::Influx(i), _) => Box::new(influx::InfluxStore::open(i, access)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_applied_by_number_with_gaps() {
        let known = [(1, "a"), (2, "b"), (4, "d"), (6, "f")];
        assert_eq!(pending_migrations(&known, &[]).unwrap(), known.to_vec());
        assert_eq!(pending_migrations(&known, &[1, 2]).unwrap(), vec![(4, "d"), (6, "f")]);
        assert_eq!(pending_migrations(&known, &[1, 2, 4, 6]).unwrap(), vec![]);
        // A version merged in below one already applied is still applied.
        assert_eq!(pending_migrations(&known, &[1, 2, 6]).unwrap(), vec![(4, "d")]);
        assert_eq!(pending_migrations(&known, &[1, 2, 4, 6, 7]), Err((7, 6)));
        assert_eq!(pending_migrations(&known, &[1, 3]), Err((3, 6)));
    }

    #[test]
    fn store_specs() {
        assert_eq!(StoreSpec::parse("sqlite:/a/b.db").unwrap(), StoreSpec::Sqlite("/a/b.db".into()));
        assert_eq!(StoreSpec::parse("sqlite:///a/b.db").unwrap(), StoreSpec::Sqlite("/a/b.db".into()));
        assert_eq!(StoreSpec::parse("x.db").unwrap(), StoreSpec::Sqlite("x.db".into()));
        assert!(StoreSpec::parse("mysql://u:p@h/db").is_err());
        assert!(StoreSpec::parse("").is_err());
    }

    #[test]
    fn postgres_specs_never_show_the_password() {
        let s = StoreSpec::parse("postgres://stats:hunter2@db.example:5433/xfer").unwrap();
        assert_eq!(s.describe(), "postgres://stats@db.example:5433/xfer");
        assert!(!format!("{s:?}").contains("hunter2"));
        let s = StoreSpec::parse("postgresql://stats@127.0.0.1/xfer?connect_timeout=3").unwrap();
        assert_eq!(s.describe(), "postgres://stats@127.0.0.1:5432/xfer");
        let env = |k: &str| match k {
            "PGHOST" => Some("10.0.0.5".to_string()),
            "PGPORT" => Some("6543".to_string()),
            "PGUSER" => Some("ing".to_string()),
            "PGPASSWORD" => Some("pw-secret".to_string()),
            "PGDATABASE" => Some("stats".to_string()),
            _ => None,
        };
        let p = PgSpec::parse(None, env).unwrap();
        assert_eq!(p.describe, "postgres://ing@10.0.0.5:6543/stats");
        assert_eq!(p.config.get_password(), Some(&b"pw-secret"[..]));
        let e = StoreSpec::parse("postgres://u:topsecret@h:notaport/db").unwrap_err().to_string();
        assert!(!e.contains("topsecret"), "{e}");
    }

    #[test]
    fn the_scheme_table_is_what_db_reads() {
        let env = |k: &str| (k == "INFLUX_ORG" || k == "INFLUX_BUCKET").then(|| "x".to_string());
        let kind = |s: &str| match StoreSpec::parse_with(s, &env).unwrap() {
            StoreSpec::Sqlite(_) => "sqlite",
            StoreSpec::Postgres(_) => "postgres",
            StoreSpec::Influx(i) if matches!(i.api, influx::spec::InfluxApi::V1 { .. }) => "influxdb",
            StoreSpec::Influx(_) => "influxdb2",
        };
        for (db, store) in [
            ("sqlite:x.db", "sqlite"),
            ("//srv/x.db", "sqlite"),
            ("postgres:", "postgres"),
            ("postgresql://u@h/db", "postgres"),
            ("influxdb:", "influxdb"),
            ("influxdb2://h:1/o/b", "influxdb2"),
        ] {
            assert_eq!(kind(db), store, "{db}");
        }
        assert_eq!(StoreSpec::parse_with("//srv/x.db", &env).unwrap(), StoreSpec::Sqlite("//srv/x.db".into()));
        let e = StoreSpec::parse_with("mysql://u@h/db", &env).unwrap_err().to_string();
        let help = stores_help();
        for s in SCHEMES.iter().filter(|s| !s.forms.is_empty()) {
            assert!(e.contains(&format!("{}:", s.name)), "{e}");
            assert!(help.contains(&format!("\n  {}:", s.name)), "{help}");
        }
        assert_eq!(
            e,
            "--db 'mysql://…': unknown store (expected sqlite:PATH, a file path, postgres://…, postgres:, \
             influxdb://…, influxdb:, influxdb2://… or influxdb2:)"
        );
        let e = StoreSpec::parse_with("postgres:db", &env).unwrap_err().to_string();
        assert_eq!(e, "--db postgres://…: invalid PostgreSQL connection URL: expected postgres://… or postgres: alone");
    }
}
