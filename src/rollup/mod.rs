//! The daily rollups and the report vocabulary, defined once: the grouping
//! keys ([`Key`]), the metrics ([`Metrics`]), what a report asks
//! ([`Aggregate`]) and gets ([`Group`], [`DayCount`], [`FailedTransfer`]).
//! Every store and `report` use these, so a key or a metric is added in
//! one place.

mod deltas;
pub(crate) mod sql;
mod totals;

pub use deltas::{login_row, transfer_row, Deltas, LoginKey, Sums, TransferKey, ValueKey};
pub(crate) use totals::join_into;
pub use totals::{Table, Totals};

/// A grouping key of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// UTC day `YYYY-MM-DD`.
    Day,
    /// UTC month `YYYY-MM`.
    Month,
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
    /// Client location as a geohash cell of [`CELL_CHARS`] characters
    /// (about 156 × 156 km at the equator), from GeoIP.
    Cell,
    /// Path of the transferred file (transfers only; `""` when unknown).
    File,
}

/// Length of the geohash of [`Key::Cell`]: coarse enough that a cell is a
/// region, not a street, whatever the IP mode.
pub const CELL_CHARS: usize = 3;

impl Key {
    /// Every key.
    pub const ALL: [Key; 13] = [
        Key::Day,
        Key::Month,
        Key::User,
        Key::Protocol,
        Key::Direction,
        Key::Host,
        Key::Module,
        Key::Client,
        Key::Status,
        Key::Country,
        Key::City,
        Key::Cell,
        Key::File,
    ];

    /// Name used by `--by` and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Key::Day => "day",
            Key::Month => "month",
            Key::User => "user",
            Key::Protocol => "protocol",
            Key::Direction => "direction",
            Key::Host => "host",
            Key::Module => "module",
            Key::Client => "client",
            Key::Status => "status",
            Key::Country => "country",
            Key::City => "city",
            Key::Cell => "cell",
            Key::File => "file",
        }
    }

    /// Parses a `--by` key.
    pub fn from_name(s: &str) -> Option<Key> {
        Key::ALL.iter().copied().find(|k| k.name() == s.trim())
    }

    /// Whether logins have this key: a key of the login rollup, or one
    /// only the raw tables have (those hold it for logins too) but the file.
    pub fn applies_to_logins(self) -> bool {
        LOGIN_KEYS.contains(&self) || (self.needs_raw() && self != Key::File)
    }

    /// Whether the key is only in the raw event tables (not the rollups).
    pub fn needs_raw(self) -> bool {
        !TRANSFER_KEYS.contains(&self)
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

impl Metrics {
    /// The metrics of one transfer (or deletion), as the SQL conditions of
    /// [`Metric`] count a raw row.
    pub fn of_transfer(direction: crate::model::Direction, status: crate::model::Status, bytes: u64) -> Metrics {
        use crate::model::{Direction as D, Status as S};
        let moved = u64::from(direction != D::Delete);
        let (up, down) = (u64::from(direction == D::Upload), u64::from(direction == D::Download));
        Metrics {
            transfers: moved,
            completed: moved * u64::from(status == S::Completed),
            interrupted: moved * u64::from(status == S::Interrupted),
            failed: moved * u64::from(status == S::Failed),
            uploads: up,
            downloads: down,
            bytes_up: up * bytes,
            bytes_down: down * bytes,
            deletes: u64::from(direction == D::Delete),
            ..Metrics::default()
        }
    }

    /// The metrics of one login.
    pub fn of_login(outcome: crate::model::LoginOutcome) -> Metrics {
        let ok = outcome == crate::model::LoginOutcome::Ok;
        Metrics { logins_ok: u64::from(ok), logins_failed: u64::from(!ok), ..Metrics::default() }
    }

    /// The metrics of a row of sums of `metrics` (as
    /// [`sql::Dialect::aggregate_sql`] selects them; the others zero), or
    /// `None` when it counts nothing.
    pub(crate) fn of_sums(metrics: &[Metric], values: impl IntoIterator<Item = u64>) -> Option<Metrics> {
        let mut m = Metrics::default();
        for (metric, v) in metrics.iter().zip(values) {
            *metric.slot(&mut m) += v;
        }
        (m != Metrics::default()).then_some(m)
    }

    /// Adds `other`'s metrics to these.
    pub fn add(&mut self, other: &Metrics) {
        for m in Metric::ALL {
            *m.slot(self) += m.of(other);
        }
    }
}

/// One of the [`Metrics`], by name: the list every output and every query
/// of them is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Uploads + downloads.
    Transfers,
    /// Transfers completed.
    Completed,
    /// Transfers interrupted.
    Interrupted,
    /// Transfers failed.
    Failed,
    /// Uploads.
    Uploads,
    /// Downloads.
    Downloads,
    /// Bytes uploaded.
    BytesUp,
    /// Bytes downloaded.
    BytesDown,
    /// Deletions.
    Deletes,
    /// Accepted logins.
    LoginsOk,
    /// Rejected logins.
    LoginsFailed,
}

impl Metric {
    /// The transfer metrics, in report order.
    pub const TRANSFERS: [Metric; 9] = [
        Metric::Transfers,
        Metric::Completed,
        Metric::Interrupted,
        Metric::Failed,
        Metric::Uploads,
        Metric::Downloads,
        Metric::BytesUp,
        Metric::BytesDown,
        Metric::Deletes,
    ];
    /// The login metrics, in report order (after the transfer metrics).
    pub const LOGINS: [Metric; 2] = [Metric::LoginsOk, Metric::LoginsFailed];
    /// Every metric, in report order: [`Metric::TRANSFERS`], then
    /// [`Metric::LOGINS`].
    pub const ALL: [Metric; 11] = {
        let mut all = [Metric::Transfers; 11];
        let mut i = 0;
        while i < all.len() {
            all[i] = if i < 9 { Metric::TRANSFERS[i] } else { Metric::LOGINS[i - 9] };
            i += 1;
        }
        all
    };

    /// Name in JSON, CSV and the HTML page (`bytes_up`).
    pub fn name(self) -> &'static str {
        self.def().0
    }

    /// Column header of the tables (`bytes up`).
    pub fn label(self) -> String {
        self.name().replace('_', " ")
    }

    /// Whether the metric counts bytes (shown in SI units in tables).
    pub fn is_bytes(self) -> bool {
        matches!(self, Metric::BytesUp | Metric::BytesDown)
    }

    /// The metric's value in `m`.
    pub fn of(self, m: &Metrics) -> u64 {
        let mut m = *m;
        *self.slot(&mut m)
    }

    fn slot(self, m: &mut Metrics) -> &mut u64 {
        match self {
            Metric::Transfers => &mut m.transfers,
            Metric::Completed => &mut m.completed,
            Metric::Interrupted => &mut m.interrupted,
            Metric::Failed => &mut m.failed,
            Metric::Uploads => &mut m.uploads,
            Metric::Downloads => &mut m.downloads,
            Metric::BytesUp => &mut m.bytes_up,
            Metric::BytesDown => &mut m.bytes_down,
            Metric::Deletes => &mut m.deletes,
            Metric::LoginsOk => &mut m.logins_ok,
            Metric::LoginsFailed => &mut m.logins_failed,
        }
    }

    /// `SUM(…)` of the metric over rows of which each counts `count`
    /// (`1` for raw rows, the rollup's count column), then `cast`.
    pub(crate) fn sql_sum(self, count: &str, cast: &str) -> String {
        let (_, condition, bytes) = self.def();
        let summand = if bytes { "bytes" } else { count };
        format!("SUM(CASE WHEN {condition} THEN {summand} ELSE 0 END){cast}")
    }

    /// Name, the SQL condition a row must meet to count, and whether it
    /// sums bytes rather than counting rows.
    fn def(self) -> (&'static str, &'static str, bool) {
        match self {
            Metric::Transfers => ("transfers", "direction <> 'delete'", false),
            Metric::Completed => ("completed", "direction <> 'delete' AND status = 'completed'", false),
            Metric::Interrupted => ("interrupted", "direction <> 'delete' AND status = 'interrupted'", false),
            Metric::Failed => ("failed", "direction <> 'delete' AND status = 'failed'", false),
            Metric::Uploads => ("uploads", "direction = 'upload'", false),
            Metric::Downloads => ("downloads", "direction = 'download'", false),
            Metric::BytesUp => ("bytes_up", "direction = 'upload'", true),
            Metric::BytesDown => ("bytes_down", "direction = 'download'", true),
            Metric::Deletes => ("deletes", "direction = 'delete'", false),
            Metric::LoginsOk => ("logins_ok", "outcome = 'ok'", false),
            Metric::LoginsFailed => ("logins_failed", "outcome <> 'ok'", false),
        }
    }
}

/// The keys of the daily transfer rollup (`daily_transfers`), in
/// primary-key order; what else a report groups by needs the raw rows.
pub const TRANSFER_KEYS: [Key; 7] =
    [Key::Day, Key::Host, Key::Protocol, Key::Direction, Key::Status, Key::Module, Key::User];

/// The keys of the daily login rollup (`daily_logins`), in primary-key
/// order; the login outcome follows them (the login metrics split on it).
pub const LOGIN_KEYS: [Key; 4] = [Key::Day, Key::Host, Key::Protocol, Key::User];

/// The key sets of the value rollup (`daily_values`): for each day and
/// each value of a one-key set, and for each month and each pair of values
/// of a two-key set or each file, every metric. Reports grouped by the day
/// or month and a one-key set, or by the month and a pair (in any order) or
/// the file, read it: its size depends on days × distinct values, not on
/// traffic. The pairs are what drill-down by one field needs for the
/// others, the files the HTML report's top files; both kept per month, as
/// per day they would hold nearly a row per event where values are many.
pub const VALUE_SETS: [&[Key]; 17] = [
    &[Key::User],
    &[Key::Host],
    &[Key::Module],
    &[Key::Protocol],
    &[Key::Country],
    &[Key::Cell],
    &[Key::User, Key::Host],
    &[Key::User, Key::Module],
    &[Key::User, Key::Protocol],
    &[Key::User, Key::Country],
    &[Key::Host, Key::Module],
    &[Key::Host, Key::Protocol],
    &[Key::Host, Key::Country],
    &[Key::Module, Key::Protocol],
    &[Key::Module, Key::Country],
    &[Key::Protocol, Key::Country],
    &[Key::File],
];

/// The name of a value set as `daily_values.field` stores it (`user`,
/// `user,host`).
pub fn set_name(set: &[Key]) -> String {
    set.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
}

/// The [`set_name`] of each of [`VALUE_SETS`], in order (named once, not
/// per rollup row).
pub static SET_NAMES: std::sync::LazyLock<[String; VALUE_SETS.len()]> =
    std::sync::LazyLock::new(|| VALUE_SETS.map(set_name));

/// Whether logins count in a value set (logins have no module).
pub fn set_has_logins(set: &[Key]) -> bool {
    set.iter().all(|k| k.applies_to_logins())
}

/// Whether the rows of a value set are per month (the pairs and the
/// files), not per day.
pub fn set_is_monthly(set: &[Key]) -> bool {
    set.len() == 2 || set == [Key::File]
}

/// The `daily_values.field` names of the monthly sets (`true`) or of the
/// daily ones, as an SQL list: `'user,host', …`.
pub(crate) fn set_names_sql(monthly: bool) -> String {
    let names: Vec<String> =
        VALUE_SETS.iter().filter(|s| set_is_monthly(s) == monthly).map(|s| format!("'{}'", set_name(s))).collect();
    names.join(", ")
}

/// The value set that answers a report by `keys` over days `since..=until`,
/// and for each key its column in the set (0 or 1; `None` for the day or
/// month). A report by the day or month alone, or by no key, reads the
/// protocol set (every event has a protocol). A pair or the file answers
/// reports by the month or none over whole months only (`since` a first, `until` a last
/// day of a month, or open).
pub fn value_set(
    keys: &[Key],
    since: Option<&str>,
    until: Option<&str>,
) -> Option<(&'static [Key], Vec<Option<usize>>)> {
    let time = |k: &Key| matches!(k, Key::Day | Key::Month);
    let fields: Vec<Key> = keys.iter().copied().filter(|k| !time(k)).collect();
    if keys.iter().filter(|k| time(k)).count() > 1 {
        return None;
    }
    let set = if fields.is_empty() {
        VALUE_SETS[3]
    } else {
        VALUE_SETS.into_iter().find(|s| s.len() == fields.len() && fields.iter().all(|f| s.contains(f)))?
    };
    if set_is_monthly(set) {
        let first = since.is_none_or(|d| d.ends_with("-01"));
        let last =
            until.is_none_or(|d| crate::time::parse_day(d).is_some_and(|n| crate::time::civil_from_days(n + 1).2 == 1));
        if keys.contains(&Key::Day) || !first || !last {
            return None;
        }
    }
    let cols = keys.iter().map(|k| set.iter().position(|s| s == k).filter(|_| !time(k))).collect();
    Some((set, cols))
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

/// Report groups accumulated from the rows of the SQL stores' queries, so
/// that every store merges transfer and login rows the same way.
#[derive(Default)]
pub(crate) struct Groups(std::collections::BTreeMap<Vec<String>, Metrics>);

impl Groups {
    /// Adds a row of [`crate::sinks::Store::aggregate_rows`] to its group.
    pub(crate) fn add(&mut self, keys: &[&str], metrics: &Metrics) {
        self.0.entry(keys.iter().map(|k| k.to_string()).collect()).or_default().add(metrics);
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

/// A ranked per-day list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayList {
    /// The files with the most uploads and downloads: transfers and bytes,
    /// per month (`day` is `YYYY-MM`), from the raw events.
    TopFiles,
    /// The clients with the most failed logins: failed logins.
    FailedLoginClients,
}

/// One row of a ranked per-day list ([`crate::sinks::Store::top_files`],
/// [`crate::sinks::Store::failed_login_clients`]): what `key` did on `day`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    /// UTC day `YYYY-MM-DD` (clients), or month `YYYY-MM` (files).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_in_report_order() {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        let contract = "transfers,completed,interrupted,failed,uploads,downloads,bytes_up,bytes_down,deletes,\
                        logins_ok,logins_failed";
        assert_eq!(names.join(","), contract);
        let mut m = Metrics { bytes_up: 5, logins_failed: 2, ..Default::default() };
        m.add(&Metrics { bytes_up: 1, deletes: 3, ..Default::default() });
        assert_eq!((Metric::BytesUp.of(&m), Metric::Deletes.of(&m), Metric::LoginsFailed.of(&m)), (6, 3, 2));
        assert_eq!(Metric::BytesDown.label(), "bytes down");
    }

    #[test]
    fn rollup_keys_decide_what_needs_raw_rows() {
        let raw: Vec<Key> = Key::ALL.into_iter().filter(|k| k.needs_raw()).collect();
        assert_eq!(raw, [Key::Month, Key::Client, Key::Country, Key::City, Key::Cell, Key::File]);
        let logins: Vec<Key> = Key::ALL.into_iter().filter(|k| k.applies_to_logins()).collect();
        assert_eq!(
            logins,
            [
                Key::Day,
                Key::Month,
                Key::User,
                Key::Protocol,
                Key::Host,
                Key::Client,
                Key::Country,
                Key::City,
                Key::Cell
            ]
        );
    }

    #[test]
    fn value_sets_answer_the_day_and_one_set() {
        let all = |keys: &[Key]| value_set(keys, None, None);
        let (set, cols) = all(&[Key::Day, Key::User]).unwrap();
        assert_eq!((set_name(set), cols), ("user".to_string(), vec![None, Some(0)]));
        let (set, cols) = all(&[Key::Country, Key::Month, Key::User]).unwrap();
        assert_eq!((set_name(set), cols), ("user,country".to_string(), vec![Some(1), None, Some(0)]));
        assert!(all(&[Key::Country, Key::Day, Key::User]).is_none(), "pairs are kept per month");
        let (set, cols) = all(&[Key::Day]).unwrap();
        assert_eq!((set_name(set), cols), ("protocol".to_string(), vec![None]));
        assert_eq!(all(&[]).map(|s| set_name(s.0)), Some("protocol".to_string()));
        assert!(all(&[Key::Day, Key::Status]).is_none());
        assert!(all(&[Key::User, Key::Host, Key::Module]).is_none());
        assert!(all(&[Key::Day, Key::Month]).is_none());
        // Pairs over whole months only.
        let pair = [Key::User, Key::Host];
        assert!(value_set(&pair, Some("2026-02-01"), Some("2026-02-28")).is_some());
        assert!(value_set(&pair, Some("2026-02-02"), None).is_none());
        assert!(value_set(&pair, None, Some("2024-02-28")).is_none(), "2024 is a leap year");
        assert!(value_set(&[Key::User], Some("2026-02-02"), Some("2026-02-03")).is_some());
        assert!(!set_has_logins(&[Key::Host, Key::Module]) && set_has_logins(&[Key::Cell]));
    }

    #[test]
    fn metrics_of_one_event() {
        use crate::model::{Direction, LoginOutcome, Status};
        let m = Metrics::of_transfer(Direction::Upload, Status::Interrupted, 7);
        assert_eq!(m, Metrics { transfers: 1, interrupted: 1, uploads: 1, bytes_up: 7, ..Default::default() });
        let m = Metrics::of_transfer(Direction::Delete, Status::Completed, 0);
        assert_eq!(m, Metrics { deletes: 1, ..Default::default() });
        assert_eq!(Metrics::of_login(LoginOutcome::Failed), Metrics { logins_failed: 1, ..Default::default() });
    }
}
