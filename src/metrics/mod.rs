//! Prometheus metrics, derived from the store.
//!
//! Exporters that count log lines in memory (mtail, a `CounterVec` in a
//! daemon) start from zero after a restart and miss what happened while
//! they were down. Here every counter is what the store holds: the totals
//! of its daily rollups and of its ledger ([`Metrics::from_store`]), read
//! again for every scrape by `metrics --listen` and `follow
//! --metrics-listen`. Only `xferstats_store_errors_total` is the process's
//! own ([`STORE_ERRORS`] and failed metric reads). After a restart or a
//! replay they equal
//! the SQL sums again; they only go down when `xferstats forget` takes an
//! import back out of the store.
//!
//! [`Family`] is the one list of metric families: their names, types,
//! labels and help text, which [`Metrics::render`] writes in the Prometheus
//! text exposition format (0.0.4). Per-user series are capped: the
//! `top_users` users with the most bytes get their own series, every other
//! user is summed under `user="other"`, so a store with 100,000 users still
//! gives at most `top_users + 1` series per per-user family.
//! [`write_textfile`] writes the exposition atomically for node-exporter's
//! textfile collector; [`server`] serves it over HTTP.

pub mod server;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// Failed store operations of this process outside metric reads: a
/// follower's commits and checkpoint reads that failed during an outage
/// (each attempt counts), added to `xferstats_store_errors_total` when it
/// serves `--metrics-listen`.
pub static STORE_ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

use crate::error::StoreError;
use crate::rollup::{Aggregate, Key};
use crate::sinks::Store;

/// Default number of users with series of their own.
pub const DEFAULT_TOP_USERS: usize = 50;

/// The `user` label value of the users beyond the top N.
pub const OTHER_USER: &str = "other";

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (except when `forget` removes an import).
    Counter,
    /// A value that goes up and down.
    Gauge,
}

/// A metric family: the one list every output is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Uploads and downloads by protocol, direction, status.
    Transfers,
    /// Payload bytes of uploads and downloads by protocol, direction, status.
    TransferBytes,
    /// Deletions by protocol.
    Deletes,
    /// Authentication attempts by protocol and outcome.
    Logins,
    /// Uploads and downloads of the top users (and `other`).
    UserTransfers,
    /// Bytes of the top users (and `other`).
    UserTransferBytes,
    /// Lines read by format (inputs in the ledger).
    LinesRead,
    /// Lines rejected by format (inputs in the ledger).
    LinesRejected,
    /// Time of the last commit.
    LastCommit,
    /// Time of the newest stored event.
    LastEvent,
    /// How far the newest event lagged behind its commit.
    IngestLag,
    /// Store errors this process met (live serving only).
    StoreErrors,
    /// Hook deliveries in the outbox by state.
    HookDeliveries,
}

impl Family {
    /// Every family, in output order.
    pub const ALL: [Family; 13] = [
        Family::Transfers,
        Family::TransferBytes,
        Family::Deletes,
        Family::Logins,
        Family::UserTransfers,
        Family::UserTransferBytes,
        Family::LinesRead,
        Family::LinesRejected,
        Family::LastCommit,
        Family::LastEvent,
        Family::IngestLag,
        Family::StoreErrors,
        Family::HookDeliveries,
    ];

    /// Name, type, labels and help text.
    pub fn def(self) -> (&'static str, Kind, &'static [&'static str], &'static str) {
        use Kind::{Counter, Gauge};
        const PDS: &[&str] = &["protocol", "direction", "status"];
        match self {
            Family::Transfers => ("xferstats_transfers_total", Counter, PDS, "Uploads and downloads stored."),
            Family::TransferBytes => {
                ("xferstats_transfer_bytes_total", Counter, PDS, "Payload bytes of the uploads and downloads stored.")
            }
            Family::Deletes => ("xferstats_deletes_total", Counter, &["protocol"], "Files deleted on the server."),
            Family::Logins => (
                "xferstats_logins_total",
                Counter,
                &["protocol", "outcome"],
                "Authentication attempts (outcome ok or failed; failed includes unknown users).",
            ),
            Family::UserTransfers => (
                "xferstats_user_transfers_total",
                Counter,
                &["user", "direction"],
                "Uploads and downloads of the users with the most bytes; the others are summed as user=\"other\".",
            ),
            Family::UserTransferBytes => (
                "xferstats_user_transfer_bytes_total",
                Counter,
                &["user", "direction"],
                "Payload bytes of the users with the most bytes; the others are summed as user=\"other\".",
            ),
            Family::LinesRead => (
                "xferstats_ingest_lines_total",
                Counter,
                &["format"],
                "Log lines read, of the inputs marked as read (the ledger).",
            ),
            Family::LinesRejected => (
                "xferstats_ingest_lines_rejected_total",
                Counter,
                &["format"],
                "Log lines rejected, of the inputs marked as read (the ledger).",
            ),
            Family::LastCommit => {
                ("xferstats_last_commit_timestamp_seconds", Gauge, &[], "Unix time of the last commit of an import.")
            }
            Family::LastEvent => {
                ("xferstats_last_event_timestamp_seconds", Gauge, &[], "Unix time of the newest stored event.")
            }
            Family::IngestLag => (
                "xferstats_ingest_lag_seconds",
                Gauge,
                &[],
                "Seconds between the newest stored event and the last commit.",
            ),
            Family::StoreErrors => {
                ("xferstats_store_errors_total", Counter, &[], "Store errors met by this process since it started.")
            }
            Family::HookDeliveries => {
                ("xferstats_hook_deliveries", Gauge, &["state"], "Hook deliveries in the outbox, by state.")
            }
        }
    }

    /// The metric name.
    pub fn name(self) -> &'static str {
        self.def().0
    }
}

/// What the metrics need of a store besides its rollups
/// ([`Store::status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStatus {
    /// Per format: lines read and lines rejected, summed over the ledger.
    pub lines: Vec<(String, u64, u64)>,
    /// The last commit of an import (µs), from the ledger.
    pub last_commit_us: Option<i64>,
    /// The newest stored event (µs).
    pub newest_event_us: Option<i64>,
    /// `state, count(*)` of the hook outbox; `None` when the store has none.
    pub hook_deliveries: Option<Vec<(String, u64)>>,
}

/// Counts and bytes of one series pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sum {
    count: u64,
    bytes: u64,
}

/// The metrics state: the store's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    transfers: BTreeMap<(String, String, String), Sum>,
    deletes: BTreeMap<String, u64>,
    logins: BTreeMap<(String, &'static str), u64>,
    top_users: usize,
    users: BTreeMap<String, [Sum; 2]>,
    other: [Sum; 2],
    lines: BTreeMap<String, (u64, u64)>,
    last_commit_us: Option<i64>,
    last_event_us: Option<i64>,
    lag_us: Option<i64>,
    store_errors: Option<u64>,
    hooks: Option<BTreeMap<String, u64>>,
}

const DIRECTIONS: [&str; 2] = ["upload", "download"];

/// The `outcome` label of a login outcome.
fn outcome_label(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "failed"
    }
}

impl Metrics {
    /// The state of an empty store, `top_users` users to get series of
    /// their own.
    fn empty(top_users: usize) -> Metrics {
        Metrics {
            transfers: BTreeMap::new(),
            deletes: BTreeMap::new(),
            logins: BTreeMap::new(),
            top_users,
            users: BTreeMap::new(),
            other: Default::default(),
            lines: BTreeMap::new(),
            last_commit_us: None,
            last_event_us: None,
            lag_us: None,
            store_errors: None,
            hooks: None,
        }
    }

    /// The totals of `store`: transfers, deletes and logins from the daily
    /// rollups (two grouped reads, as `report` makes them), the ledger's
    /// lines per format, the last commit, the newest event and the hook
    /// outbox. The `top_users` users with the most bytes (then transfers)
    /// get series of their own.
    pub fn from_store(store: &mut dyn Store, top_users: usize) -> Result<Metrics, StoreError> {
        let mut agg = |keys: Vec<Key>| store.aggregate(&Aggregate { keys, since: None, until: None });
        let mut m = Metrics::empty(top_users);
        for g in agg(vec![Key::Protocol, Key::Direction, Key::Status])? {
            let [protocol, direction, status] = <[String; 3]>::try_from(g.keys).unwrap_or_default();
            let x = &g.metrics;
            if direction == "delete" {
                *m.deletes.entry(protocol).or_default() += x.deletes;
            } else if x.transfers > 0 {
                let s = m.transfers.entry((protocol, direction, status)).or_default();
                s.count += x.transfers;
                s.bytes += x.bytes_up + x.bytes_down;
            }
        }
        // Logins per protocol and transfers per user from one read: the
        // logins summed over users, the transfers over protocols.
        let mut users: BTreeMap<String, crate::rollup::Metrics> = BTreeMap::new();
        for g in agg(vec![Key::Protocol, Key::User])? {
            let [protocol, user] = <[String; 2]>::try_from(g.keys).unwrap_or_default();
            for (ok, n) in [(true, g.metrics.logins_ok), (false, g.metrics.logins_failed)] {
                if n > 0 {
                    *m.logins.entry((protocol.clone(), outcome_label(ok))).or_default() += n;
                }
            }
            users.entry(user).or_default().add(&g.metrics);
        }
        let mut users: Vec<_> = users.into_iter().filter(|(_, x)| x.transfers > 0).collect();
        users.sort_by(|a, b| crate::report::rank(&b.1).cmp(&crate::report::rank(&a.1)).then_with(|| a.0.cmp(&b.0)));
        for (i, (user, x)) in users.into_iter().enumerate() {
            let pair = [Sum { count: x.uploads, bytes: x.bytes_up }, Sum { count: x.downloads, bytes: x.bytes_down }];
            let slot = if i < top_users { m.users.entry(user).or_default() } else { &mut m.other };
            for (s, p) in slot.iter_mut().zip(pair) {
                s.count += p.count;
                s.bytes += p.bytes;
            }
        }
        let status = store.status()?;
        for (format, read, rejected) in status.lines {
            let e = m.lines.entry(format).or_default();
            e.0 += read;
            e.1 += rejected;
        }
        m.last_commit_us = status.last_commit_us;
        m.last_event_us = status.newest_event_us;
        if let (Some(c), Some(e)) = (m.last_commit_us, m.last_event_us) {
            m.lag_us = Some((c - e).max(0));
        }
        m.hooks = status.hook_deliveries.map(|v| v.into_iter().collect());
        Ok(m)
    }

    /// Shows `xferstats_store_errors_total` with `n` errors (0: a live
    /// process that has met none yet).
    pub fn carry_errors(&mut self, n: u64) {
        self.store_errors = Some(n);
    }

    /// The Prometheus text exposition (format 0.0.4) of every family that
    /// has something to say: `# HELP`, `# TYPE`, then the samples, label
    /// values sanitised and escaped.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in Family::ALL {
            let samples = self.samples(f);
            let (name, kind, labels, help) = f.def();
            let always = matches!(f, Family::Transfers | Family::TransferBytes | Family::Logins);
            if samples.is_empty() && !always {
                continue;
            }
            let kind = match kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (values, v) in samples {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (l, v)) in labels.iter().zip(&values).enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{l}=\"{}\"", escape_label(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {v}");
            }
        }
        out
    }

    /// The samples of a family: label values (in the family's label order)
    /// and the value as text.
    fn samples(&self, f: Family) -> Vec<(Vec<String>, String)> {
        let secs = |us: i64| {
            let s = us.div_euclid(1_000_000);
            match us.rem_euclid(1_000_000) {
                0 => s.to_string(),
                frac => format!("{s}.{frac:06}").trim_end_matches('0').to_string(),
            }
        };
        let users = || self.users.iter().map(|(u, p)| (u.as_str(), p)).chain([(OTHER_USER, &self.other)]);
        let per_user = |bytes: bool| {
            users()
                .flat_map(|(u, p)| {
                    DIRECTIONS.iter().zip(p).map(move |(d, s)| {
                        (vec![u.to_string(), d.to_string()], if bytes { s.bytes } else { s.count }.to_string())
                    })
                })
                .collect()
        };
        let one = |v: Option<String>| v.map(|v| vec![(Vec::new(), v)]).unwrap_or_default();
        match f {
            Family::Transfers | Family::TransferBytes => self
                .transfers
                .iter()
                .map(|((p, d, s), sum)| {
                    let v = if f == Family::Transfers { sum.count } else { sum.bytes };
                    (vec![p.clone(), d.clone(), s.clone()], v.to_string())
                })
                .collect(),
            Family::Deletes => self.deletes.iter().map(|(p, n)| (vec![p.clone()], n.to_string())).collect(),
            Family::Logins => {
                self.logins.iter().map(|((p, o), n)| (vec![p.clone(), o.to_string()], n.to_string())).collect()
            }
            Family::UserTransfers => per_user(false),
            Family::UserTransferBytes => per_user(true),
            Family::LinesRead | Family::LinesRejected => self
                .lines
                .iter()
                .map(|(fmt, (r, j))| (vec![fmt.clone()], if f == Family::LinesRead { r } else { j }.to_string()))
                .collect(),
            Family::LastCommit => one(self.last_commit_us.map(secs)),
            Family::LastEvent => one(self.last_event_us.map(secs)),
            Family::IngestLag => one(self.lag_us.map(secs)),
            Family::StoreErrors => one(self.store_errors.map(|n| n.to_string())),
            // Every state of an outbox, 0 when it has no delivery in it
            // (a series that appears only with its first delivery cannot
            // be alerted on).
            Family::HookDeliveries => match &self.hooks {
                None => Vec::new(),
                Some(hooks) => {
                    let mut states: BTreeMap<String, u64> =
                        crate::sinks::OUTBOX_STATES.iter().map(|s| (s.to_string(), 0)).collect();
                    for (state, n) in hooks {
                        *states.entry(state.clone()).or_default() += n;
                    }
                    states.into_iter().map(|(state, n)| (vec![state], n.to_string())).collect()
                }
            },
        }
    }
}

/// A label value as the text format needs it: sanitised like every output
/// of log-derived text, then `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    crate::sanitize::sanitize(v).replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Writes `text` to `path` atomically: a temporary file in the same
/// directory (not ending in `.prom`, so node-exporter's textfile collector
/// never reads it half-written), flushed to disk, then renamed over `path`.
/// The file is readable by all (mode 0644 less the umask): node-exporter
/// runs as its own user.
pub fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| std::io::Error::other("not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prometheus_conventions() {
        let mut seen = std::collections::BTreeSet::new();
        for f in Family::ALL {
            let (name, kind, labels, help) = f.def();
            assert!(seen.insert(name), "{name} twice");
            assert!(name.starts_with("xferstats_") && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert_eq!(kind == Kind::Counter, name.ends_with("_total"), "{name}");
            assert!(!help.is_empty() && labels.iter().all(|l| !l.is_empty()));
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c"), "a\\\"b\\\\c");
        assert_eq!(escape_label("x\ny\u{1b}"), "x\\\\x0ay\\\\x1b");
    }

    #[test]
    fn the_textfile_is_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("xferstats.prom");
        write_textfile(&p, "a 1\n").unwrap();
        write_textfile(&p, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a 2\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }
}
