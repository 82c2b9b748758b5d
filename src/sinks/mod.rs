//! Stores. Every store sits behind [`Sink`] (the ingest side, pushed to by
//! the engine as in ripgrep's searcher → sink) and [`Store`] (the report
//! side). A commit is atomic: the new events, the rollup rows of exactly
//! those events, the input's checkpoint and the open-session state land
//! together or not at all, which is what makes a killed import re-runnable
//! without double counting.

pub mod influx;
pub mod postgres;
pub mod sqlite;

use crate::config::StoreSpec;
use crate::enrich::hostkey::{HostKey, ID_SCHEME};
use crate::error::StoreError;
use crate::model::Event;

/// What an earlier run consumed of one input (identified by fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Fingerprint of the input (keyed hash of its first line).
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
    /// Where the input stands after these events.
    pub checkpoint: Option<&'a Checkpoint>,
    /// Decoder states `(scope, state)` after these events.
    pub states: &'a [(&'a str, String)],
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
    /// ([`StoreError::HostKeyChanged`]). Returns the raw events re-keyed.
    /// `state` re-keys the ids in an open-session state (scope, stored
    /// text) of such a store; its error names why the state is unreadable.
    fn key_ids(&mut self, key: &HostKey, state: &mut RekeyState<'_>) -> Result<u64, StoreError>;
    /// Saved decoder state of a scope.
    fn state(&mut self, scope: &str) -> Result<Option<String>, StoreError>;
    /// Every input of the ledger, most recently imported first (`xferstats
    /// status`, and the follower's look for rotated copies after a
    /// restart).
    fn ledger(&mut self) -> Result<Vec<LedgerEntry>, StoreError>;
    /// Commits events, rollups, checkpoint and states in one transaction.
    fn commit(&mut self, commit: &Commit<'_>) -> Result<Committed, StoreError>;
    /// Work left after the last commit of a run (the InfluxDB store's daily
    /// points). Stores that finish everything in `commit` do nothing.
    fn finish(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A grouping key of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// UTC day `YYYY-MM-DD`.
    Day,
    /// Login name.
    User,
    /// Protocol.
    Protocol,
    /// upload / download / delete.
    Direction,
    /// Server host.
    Host,
    /// Module (rsync) or virtual root.
    Module,
    /// Client as stored under the IP mode: address, network, keyed hash,
    /// or host name when the log has no address.
    Client,
    /// completed / interrupted / failed.
    Status,
    /// Client country (ISO code, from GeoIP).
    Country,
    /// Client city, as `City, CC` (from GeoIP).
    City,
}

impl Key {
    /// Every key.
    pub const ALL: [Key; 10] = [
        Key::Day,
        Key::User,
        Key::Protocol,
        Key::Direction,
        Key::Host,
        Key::Module,
        Key::Client,
        Key::Status,
        Key::Country,
        Key::City,
    ];

    /// Name used by `--by` and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Key::Day => "day",
            Key::User => "user",
            Key::Protocol => "protocol",
            Key::Direction => "direction",
            Key::Host => "host",
            Key::Module => "module",
            Key::Client => "client",
            Key::Status => "status",
            Key::Country => "country",
            Key::City => "city",
        }
    }

    /// Parses a `--by` key.
    pub fn from_name(s: &str) -> Option<Key> {
        Key::ALL.iter().copied().find(|k| k.name() == s.trim())
    }

    /// Whether logins have this key.
    pub fn applies_to_logins(self) -> bool {
        matches!(self, Key::Day | Key::User | Key::Protocol | Key::Host | Key::Client | Key::Country | Key::City)
    }

    /// Whether the key is only in the raw event tables (not the rollups).
    pub fn needs_raw(self) -> bool {
        matches!(self, Key::Client | Key::Country | Key::City)
    }
}

/// A `--by` key; an unknown one is a [`crate::error::ConfigError::ReportKey`].
impl std::str::FromStr for Key {
    type Err = crate::error::ConfigError;

    fn from_str(s: &str) -> Result<Key, Self::Err> {
        Key::from_name(s).ok_or_else(|| crate::error::ConfigError::ReportKey(s.to_string()))
    }
}

/// Metrics of one report group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Uploads + downloads.
    pub transfers: u64,
    /// Transfers completed.
    pub completed: u64,
    /// Transfers interrupted.
    pub interrupted: u64,
    /// Transfers failed.
    pub failed: u64,
    /// Uploads.
    pub uploads: u64,
    /// Downloads.
    pub downloads: u64,
    /// Bytes uploaded.
    pub bytes_up: u64,
    /// Bytes downloaded.
    pub bytes_down: u64,
    /// Deletions.
    pub deletes: u64,
    /// Accepted logins.
    pub logins_ok: u64,
    /// Rejected logins (wrong password or unknown user).
    pub logins_failed: u64,
}

/// A report question: group by `keys` over days `since..=until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// Grouping keys, in output order.
    pub keys: Vec<Key>,
    /// First day (inclusive), `YYYY-MM-DD`.
    pub since: Option<String>,
    /// Last day (inclusive), `YYYY-MM-DD`.
    pub until: Option<String>,
}

/// One group of a report: key values (in `Aggregate::keys` order) and
/// metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Key values.
    pub keys: Vec<String>,
    /// Metrics.
    pub metrics: Metrics,
}

/// The transfer metrics of a report query, in the order [`Groups`] reads
/// them: `count` is what one row counts (`1` for raw rows, `transfers` for
/// rollups), `cast` a suffix for each sum (`::bigint` in PostgreSQL).
pub(crate) fn transfer_metrics_sql(count: &str, cast: &str) -> String {
    format!(
        "SUM(CASE WHEN direction <> 'delete' THEN {count} ELSE 0 END){cast}, \
         SUM(CASE WHEN direction <> 'delete' AND status = 'completed' THEN {count} ELSE 0 END){cast}, \
         SUM(CASE WHEN direction <> 'delete' AND status = 'interrupted' THEN {count} ELSE 0 END){cast}, \
         SUM(CASE WHEN direction <> 'delete' AND status = 'failed' THEN {count} ELSE 0 END){cast}, \
         SUM(CASE WHEN direction = 'upload' THEN {count} ELSE 0 END){cast}, \
         SUM(CASE WHEN direction = 'download' THEN {count} ELSE 0 END){cast}, \
         SUM(CASE WHEN direction = 'upload' THEN bytes ELSE 0 END){cast}, \
         SUM(CASE WHEN direction = 'download' THEN bytes ELSE 0 END){cast}, \
         SUM(CASE WHEN direction = 'delete' THEN {count} ELSE 0 END){cast}"
    )
}

/// Report groups accumulated from the rows of the SQL stores' queries, so
/// that every store merges transfer and login rows the same way.
#[derive(Default)]
pub(crate) struct Groups(std::collections::BTreeMap<Vec<String>, Metrics>);

impl Groups {
    /// Adds a transfer row: the nine sums of [`transfer_metrics_sql`].
    pub(crate) fn transfers(&mut self, keys: Vec<String>, v: [u64; 9]) {
        let m = self.0.entry(keys).or_default();
        m.transfers += v[0];
        m.completed += v[1];
        m.interrupted += v[2];
        m.failed += v[3];
        m.uploads += v[4];
        m.downloads += v[5];
        m.bytes_up += v[6];
        m.bytes_down += v[7];
        m.deletes += v[8];
    }

    /// Adds a login row (an all-zero row of a group without transfers is
    /// dropped).
    pub(crate) fn logins(&mut self, keys: Vec<String>, ok: u64, failed: u64) {
        if ok == 0 && failed == 0 && !self.0.contains_key(&keys) {
            return;
        }
        let m = self.0.entry(keys).or_default();
        m.logins_ok += ok;
        m.logins_failed += failed;
    }

    /// The groups in key order. An empty table still yields one all-zero
    /// row without keys; it is dropped.
    pub(crate) fn finish(self, keyless: bool) -> Vec<Group> {
        self.0
            .into_iter()
            .filter(|(k, m)| !(keyless && *m == Metrics::default() && k.is_empty()))
            .map(|(keys, metrics)| Group { keys, metrics })
            .collect()
    }
}

/// One row of a ranked per-day list ([`Store::top_files`],
/// [`Store::failed_login_clients`]): what `key` did on `day`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    /// UTC day `YYYY-MM-DD`.
    pub day: String,
    /// File path, or client as stored under the IP mode.
    pub key: String,
    /// Client country (ISO code) for clients; empty for files.
    pub country: String,
    /// Transfers of the file, or failed logins of the client.
    pub count: u64,
    /// Bytes moved (files); 0 for clients.
    pub bytes: u64,
}

/// A transfer that did not complete, for the list of recent failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTransfer {
    /// When it ended, µs since the epoch.
    pub end: i64,
    /// Login name.
    pub user: String,
    /// Server host.
    pub host: String,
    /// Module or virtual root ('' when none).
    pub module: String,
    /// Protocol.
    pub protocol: String,
    /// upload / download / delete.
    pub direction: String,
    /// interrupted / failed.
    pub status: String,
    /// File path ('' when not logged).
    pub path: String,
    /// Client as stored under the IP mode.
    pub client: String,
    /// Client country (ISO code) or ''.
    pub country: String,
}

/// The SQL pieces in which the SQL stores' raw tables differ, so that the
/// ranked-list queries are written once ([`top_files_sql`],
/// [`failed_transfers_sql`], [`failed_login_clients_sql`]).
pub(crate) struct RawDialect<'a> {
    /// Day (`YYYY-MM-DD`) of a transfer row.
    pub transfer_day: &'a str,
    /// Day of a login row.
    pub login_day: &'a str,
    /// Range filter over transfer rows.
    pub transfer_range: &'a str,
    /// Range filter over login rows.
    pub login_range: &'a str,
    /// End time of a transfer row in µs (a bigint).
    pub transfer_us: &'a str,
    /// The user column.
    pub user: &'a str,
    /// The client expression (as [`Key::Client`] reports it).
    pub client: &'a str,
    /// Placeholder of the row limit.
    pub limit: &'a str,
    /// Suffix of each sum (`::bigint` in PostgreSQL).
    pub cast: &'a str,
}

/// Per-day transfers and bytes of the `limit` files with the most uploads
/// and downloads in the range: `day, path, '', count, bytes`.
pub(crate) fn top_files_sql(d: &RawDialect<'_>) -> String {
    format!(
        "WITH top AS (SELECT path FROM transfers WHERE {range} AND direction <> 'delete' AND path IS NOT NULL \
         GROUP BY path ORDER BY COUNT(*) DESC, path LIMIT {limit}) \
         SELECT {day}, transfers.path, '', COUNT(*){cast}, SUM(bytes){cast} FROM transfers JOIN top ON top.path = transfers.path \
         WHERE {range} AND direction <> 'delete' GROUP BY 1, 2 ORDER BY 1, 2",
        range = d.transfer_range,
        limit = d.limit,
        day = d.transfer_day,
        cast = d.cast,
    )
}

/// The `limit` latest transfers in the range that did not complete, newest
/// first, in [`FailedTransfer`] field order.
pub(crate) fn failed_transfers_sql(d: &RawDialect<'_>) -> String {
    format!(
        "SELECT {us}, {user}, server_host, COALESCE(module, ''), protocol, direction, status, COALESCE(path, ''), \
         {client}, COALESCE(country, '') FROM transfers WHERE {range} AND status <> 'completed' \
         ORDER BY 1 DESC LIMIT {limit}",
        us = d.transfer_us,
        user = d.user,
        client = d.client,
        range = d.transfer_range,
        limit = d.limit,
    )
}

/// Per-day failed logins of the `limit` clients with the most failed logins
/// in the range: `day, client, country, count, 0`.
pub(crate) fn failed_login_clients_sql(d: &RawDialect<'_>) -> String {
    format!(
        "WITH top AS (SELECT {client} AS client FROM logins WHERE {range} AND outcome <> 'ok' \
         GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT {limit}) \
         SELECT {day}, {client}, COALESCE(country, ''), COUNT(*){cast}, 0{cast} FROM logins \
         JOIN top ON top.client = {client} WHERE {range} AND outcome <> 'ok' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        client = d.client,
        range = d.login_range,
        limit = d.limit,
        day = d.login_day,
        cast = d.cast,
    )
}

/// The report side of a store.
pub trait Store {
    /// Groups and sums transfers and logins. Transfer metrics come from the
    /// daily rollups when the keys allow it, else from raw events.
    fn aggregate(&mut self, q: &Aggregate) -> Result<Vec<Group>, StoreError>;
    /// The newest day with any event within the range.
    fn latest_day(&mut self, since: Option<&str>, until: Option<&str>) -> Result<Option<String>, StoreError>;
    /// Per-day transfers and bytes of the `limit` most transferred files
    /// (uploads and downloads) of the range, from the raw events.
    fn top_files(&mut self, since: Option<&str>, until: Option<&str>, limit: u32) -> Result<Vec<DayCount>, StoreError>;
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
    ) -> Result<Vec<DayCount>, StoreError>;
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

/// Whether [`Sink::key_ids`] must re-key a store (it has no recorded id
/// scheme: unkeyed hashes, or new), from its
/// `store_meta` values `id_scheme` and `id_key_check`; an error when it is
/// keyed with another key or by an unknown scheme.
pub(crate) fn id_scheme_action(
    store: &str,
    scheme: Option<String>,
    check: Option<String>,
    key: &HostKey,
) -> Result<bool, StoreError> {
    match scheme.as_deref() {
        None => Ok(true),
        Some(ID_SCHEME) if check.as_deref() == Some(key.key_check().as_str()) => Ok(false),
        Some(ID_SCHEME) => Err(StoreError::HostKeyChanged { store: store.to_string() }),
        Some(other) => Err(StoreError::IdScheme { store: store.to_string(), scheme: other.to_string() }),
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
}

/// Everything a store does.
pub trait Backend: Sink + Store + Admin + Send {}
impl<T: Sink + Store + Admin + Send> Backend for T {}

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
