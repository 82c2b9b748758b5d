//! The daily rollups and the report vocabulary, defined once: the grouping
//! keys ([`Key`]), the metrics ([`Metrics`]), what a report asks
//! ([`Aggregate`]) and gets ([`Group`], [`DayCount`], [`FailedTransfer`]).
//! Every store and `report` use these, so a key or a metric is added in
//! one place.

pub(crate) mod sql;

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

/// One row of a ranked per-day list ([`crate::sinks::Store::top_files`],
/// [`crate::sinks::Store::failed_login_clients`]): what `key` did on `day`.
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
