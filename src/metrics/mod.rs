//! Prometheus metrics, derived from the store.
//!
//! Exporters that count log lines in memory (mtail, a `CounterVec` in a
//! daemon) start from zero after a restart and miss what happened while
//! they were down. Here every counter is what the store holds: the totals
//! of its daily rollups and of its ledger ([`Metrics::from_store`]), read
//! again for every scrape by `metrics --listen` and `follow
//! --metrics-listen` (a state kept in memory can instead be advanced by
//! exactly what each commit added, [`Metrics::record_commit`]). Only
//! `xferstats_store_errors_total` is the process's own ([`STORE_ERRORS`]
//! and failed metric reads). After a restart or a replay they equal
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
use crate::model::LoginOutcome;
use crate::rollup::{Aggregate, Deltas, Key};
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

/// What one commit added, for [`Metrics::record_commit`].
#[derive(Debug)]
pub struct CommitRecord<'a> {
    /// The rollup deltas of the events the commit inserted (not those
    /// already stored).
    pub deltas: &'a Deltas<'a>,
    /// The format of the input.
    pub format: &'a str,
    /// Lines the commit consumed.
    pub lines: u64,
    /// Lines of those rejected.
    pub rejected: u64,
    /// The newest event of the commit (µs).
    pub newest_event_us: Option<i64>,
    /// When it committed (µs).
    pub at_us: i64,
}

/// The metrics state: the store's totals, advanced per commit.
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

/// Index of a direction in the per-user pairs: upload 0, download 1.
fn dir_index(direction: &str) -> Option<usize> {
    match direction {
        "upload" => Some(0),
        "download" => Some(1),
        _ => None,
    }
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
    pub fn empty(top_users: usize) -> Metrics {
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

    /// Advances the totals by what one commit added. A user without a
    /// series of their own gets one while fewer than `top_users` have
    /// one; after that new users count under `other` until the next
    /// [`Metrics::from_store`], so that no series of this process goes
    /// down.
    pub fn record_commit(&mut self, c: &CommitRecord<'_>) {
        for (k, s) in c.deltas.transfers() {
            let (count, bytes) = (s.transfers.max(0) as u64, s.bytes.max(0) as u64);
            let direction = k.direction.as_str();
            if direction == "delete" {
                *self.deletes.entry(k.protocol.as_str().to_string()).or_default() += count;
                continue;
            }
            let e = self
                .transfers
                .entry((k.protocol.as_str().to_string(), direction.to_string(), k.status.as_str().to_string()))
                .or_default();
            e.count += count;
            e.bytes += bytes;
            let Some(d) = dir_index(direction) else { continue };
            let slot = if self.users.contains_key(k.user) || self.users.len() < self.top_users {
                &mut self.users.entry(k.user.to_string()).or_default()[d]
            } else {
                &mut self.other[d]
            };
            slot.count += count;
            slot.bytes += bytes;
        }
        for (k, n) in c.deltas.logins() {
            let ok = k.outcome == LoginOutcome::Ok;
            *self.logins.entry((k.protocol.as_str().to_string(), outcome_label(ok))).or_default() += (*n).max(0) as u64;
        }
        let e = self.lines.entry(c.format.to_string()).or_default();
        e.0 += c.lines;
        e.1 += c.rejected;
        self.last_commit_us = Some(self.last_commit_us.map_or(c.at_us, |t| t.max(c.at_us)));
        if let Some(newest) = c.newest_event_us {
            self.last_event_us = Some(self.last_event_us.map_or(newest, |t| t.max(newest)));
            self.lag_us = Some((c.at_us - newest).max(0));
        }
    }

    /// Counts a store error met by this process (the live server's
    /// `xferstats_store_errors_total`, shown from then on).
    pub fn record_store_error(&mut self) {
        *self.store_errors.get_or_insert(0) += 1;
    }

    /// Store errors counted so far by [`Metrics::record_store_error`] (or
    /// carried over by [`Metrics::carry_errors`]).
    pub fn store_errors(&self) -> Option<u64> {
        self.store_errors
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
    use crate::model::{Direction, Granularity, Login, Protocol, Status, Transfer};

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

    fn transfer(id: u64, user: &str, direction: Direction, bytes: u64) -> Transfer {
        Transfer {
            id,
            end: 86_400_000_000 + id as i64,
            start: None,
            protocol: Protocol::Sftp,
            direction,
            status: Status::Completed,
            bytes,
            wire_bytes: None,
            file_size: None,
            path: None,
            module: None,
            user: user.into(),
            client_ip: None,
            client_host: None,
            session: None,
            server_host: "h".into(),
            source: crate::formats::Format::Openssh.source(),
            granularity: Granularity::File,
            origin: None,
        }
    }

    fn login(id: u64, user: &str, outcome: LoginOutcome) -> Login {
        Login {
            id,
            time: 86_400_000_000 + id as i64,
            protocol: Protocol::Sftp,
            user: user.into(),
            client_ip: None,
            client_host: None,
            outcome,
            method: None,
            session: None,
            server_host: "h".into(),
            source: crate::formats::Format::Openssh.source(),
            origin: None,
        }
    }

    /// The store's totals after a commit equal those before it advanced by
    /// `record_commit` with the deltas of the events it inserted (not the
    /// one already stored), and the lines its checkpoint added.
    #[test]
    fn record_commit_keeps_the_state_equal_to_the_store() {
        use crate::model::Event;
        use crate::sinks::{Checkpoint, Commit, Sink};
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::sinks::sqlite::SqliteStore::open(&dir.path().join("x.db")).unwrap();
        let cp = |lines, rejected| Checkpoint {
            fingerprint: 7,
            name: "auth.log".into(),
            format: "openssh".into(),
            offset: lines * 10,
            lines,
            tail_hash: 0,
            ids: String::new(),
            events_new: 0,
            events_dup: 0,
            rejected,
        };
        let first = [
            Event::Transfer(transfer(1, "a", Direction::Upload, 1000)),
            Event::Transfer(transfer(2, "b", Direction::Download, 500)),
            Event::Transfer(transfer(3, "c", Direction::Upload, 7)),
            Event::Login(login(4, "a", LoginOutcome::Ok)),
        ];
        let c1 = cp(10, 1);
        store
            .commit(&Commit { events: &first, input: Some(7), checkpoint: Some(&c1), states: &[], outbox: &[] })
            .unwrap();
        let mut live = Metrics::from_store(&mut store, 2).unwrap();
        let second = [
            first[1].clone(),
            Event::Transfer(transfer(5, "a", Direction::Download, 30)),
            Event::Transfer(transfer(6, "d", Direction::Upload, 3)),
            Event::Transfer(transfer(7, "c", Direction::Delete, 0)),
            Event::Login(login(8, "zz", LoginOutcome::Failed)),
        ];
        let c2 = cp(16, 3);
        let done = store
            .commit(&Commit { events: &second, input: Some(7), checkpoint: Some(&c2), states: &[], outbox: &[] })
            .unwrap();
        assert_eq!((done.new, done.dup), (4, 1));
        let mut d = Deltas::default();
        for e in &second[1..] {
            match e {
                Event::Transfer(t) => d.transfer(t),
                Event::Login(l) => d.login(l),
            }
        }
        live.record_commit(&CommitRecord {
            deltas: &d,
            format: "openssh",
            lines: 6,
            rejected: 2,
            newest_event_us: Some(86_400_000_008),
            at_us: 0,
        });
        let stored = Metrics::from_store(&mut store, 2).unwrap();
        assert_eq!(
            (&live.transfers, &live.deletes, &live.logins, &live.users, &live.other, &live.lines),
            (&stored.transfers, &stored.deletes, &stored.logins, &stored.users, &stored.other, &stored.lines)
        );
        assert_eq!(live.last_event_us, stored.last_event_us);
        assert_eq!(live.other[0], Sum { count: 2, bytes: 10 }, "c and d are beyond the top 2");
    }

    #[test]
    fn commits_advance_the_totals_and_users_are_capped() {
        let t = |user, direction, bytes| transfer(1, user, direction, bytes);
        let events = [
            t("a", Direction::Upload, 10),
            t("b", Direction::Download, 5),
            t("c", Direction::Upload, 7),
            t("a", Direction::Delete, 0),
        ];
        let login = login(2, "x", LoginOutcome::InvalidUser);
        let mut d = Deltas::default();
        for e in &events {
            d.transfer(e);
        }
        d.login(&login);
        // Two series of users: the first two in the deltas' key order (uploads
        // before downloads); b counts under other.
        let mut m = Metrics::empty(2);
        m.record_commit(&CommitRecord {
            deltas: &d,
            format: "openssh",
            lines: 9,
            rejected: 1,
            newest_event_us: Some(86_400_000_000),
            at_us: 86_430_500_000,
        });
        let text = m.render();
        for line in [
            "xferstats_transfers_total{protocol=\"sftp\",direction=\"upload\",status=\"completed\"} 2",
            "xferstats_transfer_bytes_total{protocol=\"sftp\",direction=\"upload\",status=\"completed\"} 17",
            "xferstats_deletes_total{protocol=\"sftp\"} 1",
            "xferstats_logins_total{protocol=\"sftp\",outcome=\"failed\"} 1",
            "xferstats_user_transfer_bytes_total{user=\"a\",direction=\"upload\"} 10",
            "xferstats_user_transfer_bytes_total{user=\"c\",direction=\"upload\"} 7",
            "xferstats_user_transfer_bytes_total{user=\"other\",direction=\"download\"} 5",
            "xferstats_ingest_lines_total{format=\"openssh\"} 9",
            "xferstats_ingest_lines_rejected_total{format=\"openssh\"} 1",
            "xferstats_last_commit_timestamp_seconds 86430.5",
            "xferstats_ingest_lag_seconds 30.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("store_errors"), "a one-shot state has no error counter");
        m.record_store_error();
        assert!(m.render().contains("\nxferstats_store_errors_total 1\n"));
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
