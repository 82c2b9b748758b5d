//! Identical lines within one second cost what distinct lines cost.
//!
//! Imports, side by side in one run, 1 M identical xferlog lines of one
//! second and 1 M distinct lines (ten per second) into fresh SQLite files
//! through the whole pipeline, and prints both times and their ratio (the
//! bar: under 2). Repeats used to get unrelated ids, so each commit inserted
//! all over that second's part of the index: quadratic (51 s against 4.4 s).
//! Timing is printed, never asserted.
//!
//! ```text
//! cargo bench --bench identical_lines            # 1,000,000 lines each
//! cargo bench --bench identical_lines -- 200000  # another count
//! ```

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use xferstats::enrich::hostkey::HostKey;
use xferstats::enrich::{EnrichOptions, Enricher, GeoipChoice, IpMode};
use xferstats::formats::proftpd_extended::{ExtendedFormat, DEFAULT_FORMAT as PROFTPD_FORMAT};
use xferstats::formats::rsync::{LogFormat, DEFAULT_LOG_FORMAT};
use xferstats::formats::Format;
use xferstats::ingest::{ingest, IngestOptions, NoProgress};
use xferstats::input::Source;
use xferstats::sinks::sqlite::SqliteStore;

/// Lines of each file under `cargo bench`; `cargo test --benches` runs a
/// smoke test of this many / 100.
const LINES: u64 = 1_000_000;

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// The xferlog time stamp of Unix second `t` (UTC).
fn stamp(t: u64) -> String {
    let days = t / 86_400;
    let (y, m, d) = xferstats::time::civil_from_days(days as i64);
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let s = t % 86_400;
    format!(
        "{} {} {d:2} {:02}:{:02}:{:02} {y}",
        DAYS[(days % 7) as usize],
        MONTHS[m as usize - 1],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Writes `n` xferlog lines: all the same (one second), or distinct paths
/// ten per second.
fn write_log(path: &Path, n: u64, identical: bool) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create log"));
    let t0 = 1_459_859_758;
    for i in 0..n {
        let (t, name) = if identical { (t0, 0) } else { (t0 + i / 10, i) };
        writeln!(f, "{} 1 198.51.100.7 4061858 /data/file{name}.bin b _ i r user ftp 0 * c", stamp(t))
            .expect("write log");
    }
    f.flush().expect("write log");
}

/// One whole import of `log` into a fresh SQLite file.
fn import(log: &Path, db: &Path) -> (Duration, u64) {
    let opts = IngestOptions {
        inputs: vec![Source::Path(log.to_path_buf())],
        format: Some(Format::Xferlog),
        timezone: xferstats::time::TimeZone::Utc,
        rsync_log_format: LogFormat::compile(DEFAULT_LOG_FORMAT).expect("format"),
        proftpd_log_format: ExtendedFormat::compile(PROFTPD_FORMAT).expect("format"),
        server_host: "bench".into(),
        batch_events: Some(10_000),
        plausible: xferstats::time::Plausible::default(),
        fifo_wait: Duration::from_secs(10),
        hooks: None,
    };
    let enricher = Enricher::new(&EnrichOptions {
        geoip: GeoipChoice::Off,
        geohash_precision: 5,
        ip_mode: IpMode::Hmac,
        key: HostKey::new(b"bench host key, long enough"),
        warn_once_in: None,
    })
    .expect("enricher");
    let mut store = SqliteStore::open(db).expect("store");
    let t = Instant::now();
    let report = ingest(&opts, enricher, &mut store, &NoProgress).expect("ingest");
    (t.elapsed(), report.events_new)
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let n = std::env::args().skip(1).find_map(|a| a.parse::<u64>().ok()).unwrap_or(if benchmarking {
        LINES
    } else {
        LINES / 100
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let mut times = Vec::new();
    for (name, identical) in [("identical, one second", true), ("distinct, ten per second", false)] {
        let log = dir.path().join(format!("{identical}.xferlog"));
        write_log(&log, n, identical);
        let (took, events) = import(&log, &dir.path().join(format!("{identical}.db")));
        assert_eq!(events, n, "every line is an event");
        println!(
            "{n} lines, {name}: {:.2} s ({:.0} k events/s)",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64() / 1e3
        );
        times.push(took.as_secs_f64());
    }
    println!("ratio identical / distinct: {:.2} (the bar: under 2)", times[0] / times[1]);
}
