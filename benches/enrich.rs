//! What enrichment costs: the whole ingest (read, decode, enrich, SQLite
//! commit) of a synthetic rsyncd log with about 2,000 distinct clients,
//! with and without GeoIP, and the enrichment stage alone.
//!
//! GeoIP cases use `../shared/geoip/GeoLite2-City.mmdb` when it exists
//! (most of the corpus' public-looking addresses are in it); without it
//! they are skipped with a note.
//!
//! ```text
//! cargo bench --bench enrich
//! ```

#[path = "corpus.rs"]
mod corpus;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

use corpus::Style;
use xferstats::enrich::hostkey::HostKey;
use xferstats::enrich::{EnrichOptions, Enricher, GeoipChoice, IpMode};
use xferstats::formats::proftpd_extended::{ExtendedFormat, DEFAULT_FORMAT as PROFTPD_FORMAT};
use xferstats::formats::rsync::decoder::RsyncDecoder;
use xferstats::formats::rsync::{LogFormat, DEFAULT_LOG_FORMAT};
use xferstats::formats::Format;
use xferstats::ingest::{ingest, IngestOptions, NoProgress};
use xferstats::input::Source;
use xferstats::model::Event;
use xferstats::sessions::{Decoder, IdGen, LineContext};
use xferstats::sinks::sqlite::SqliteStore;
use xferstats::time::{Clock, TimeZone};

const CORPUS_BYTES: usize = 16 << 20;
const TEST_CORPUS_BYTES: usize = 256 << 10;

fn geolite() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/geoip/GeoLite2-City.mmdb");
    p.exists().then_some(p)
}

fn enricher(geoip: &GeoipChoice, mode: IpMode) -> Enricher {
    Enricher::new(&EnrichOptions {
        geoip: geoip.clone(),
        geohash_precision: 5,
        ip_mode: mode,
        key: HostKey::new(b"bench host key, long enough"),
        warn_once_in: None,
    })
    .expect("enricher")
}

/// The cases: (name, GeoIP, IP mode). `full` without GeoIP is the baseline
/// (no location, the address stored as is).
fn cases() -> Vec<(&'static str, GeoipChoice, IpMode)> {
    let mut v = vec![("baseline-full", GeoipChoice::Off, IpMode::Full), ("hmac", GeoipChoice::Off, IpMode::Hmac)];
    match geolite() {
        Some(p) => v.push(("geoip+hmac", GeoipChoice::Path(p), IpMode::Hmac)),
        None => eprintln!("note: ../shared/geoip/GeoLite2-City.mmdb not found; GeoIP cases skipped"),
    }
    v
}

fn decode_all(data: &[u8]) -> Vec<Event> {
    let mut d = RsyncDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).expect("format"));
    let mut cx = LineContext {
        clock: Clock::new(TimeZone::Utc, corpus::reference_unix()),
        prefix: xferstats::formats::prefix::PrefixParser::new(),
        ids: IdGen::new(HostKey::new(b"bench host key, 16+ chars").id_key()),
        server_host: "bench".into(),
        texts: Default::default(),
        // Enriched below in every IP mode, some of which keep host names.
        keep_hosts: true,
    };
    let mut out = Vec::new();
    for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        d.line(&mut cx, line, &mut out);
    }
    d.finish(&cx.ids.key(), &mut out);
    out
}

fn timed(iters: u64, acc: &Cell<(u64, Duration)>, mut f: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let t = Instant::now();
        f();
        total += t.elapsed();
    }
    let (n, d) = acc.get();
    acc.set((n + iters, d + total));
    total
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let mut c = Criterion::default().configure_from_args();
    let bytes = if benchmarking { CORPUS_BYTES } else { TEST_CORPUS_BYTES };
    let data = corpus::generate(Style::LogFile, bytes, corpus::DEFAULT_SEED);
    let events = decode_all(&data);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("rsyncd.log");
    std::fs::write(&log, &data).expect("write corpus");
    let distinct: std::collections::HashSet<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Transfer(t) => t.client_ip,
            Event::Login(l) => l.client_ip,
        })
        .collect();
    eprintln!(
        "corpus: {:.1} MB, {} events, {} distinct client addresses",
        data.len() as f64 / 1e6,
        events.len(),
        distinct.len()
    );

    let opts = IngestOptions {
        inputs: vec![Source::Path(log.clone())],
        format: Some(Format::Rsyncd),
        timezone: TimeZone::Utc,
        rsync_log_format: LogFormat::compile(DEFAULT_LOG_FORMAT).expect("format"),
        proftpd_log_format: ExtendedFormat::compile(PROFTPD_FORMAT).expect("format"),
        server_host: "bench".into(),
        batch_events: Some(10_000),
        plausible: xferstats::time::Plausible::default(),
        fifo_wait: Duration::from_secs(10),
        hooks: None,
    };

    let mut summary = Vec::new();
    for (name, geoip, mode) in cases() {
        let ing = Cell::new((0u64, Duration::ZERO));
        let stage = Cell::new((0u64, Duration::ZERO));

        let mut g = c.benchmark_group("ingest_enrich");
        g.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(if benchmarking { 20 } else { 1 }));
        g.throughput(Throughput::Elements(events.len() as u64));
        let mut run = 0u32;
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                timed(iters, &ing, || {
                    run += 1;
                    let db = dir.path().join(format!("{name}-{run}.db"));
                    let mut store = SqliteStore::open(&db).expect("store");
                    let report = ingest(&opts, enricher(&geoip, mode), &mut store, &NoProgress).expect("ingest");
                    assert_eq!(report.events_new, events.len() as u64);
                    drop(store);
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
                    }
                })
            })
        });
        g.finish();

        let mut g = c.benchmark_group("enrich_stage");
        g.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(if benchmarking { 5 } else { 1 }));
        g.throughput(Throughput::Elements(events.len() as u64));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A fresh enricher and batch each pass (copied outside
                    // the timing): every client is looked up once per pass,
                    // as in one import.
                    let mut batch = events.clone();
                    let mut e = enricher(&geoip, mode);
                    let t = Instant::now();
                    e.enrich(&mut batch);
                    total += t.elapsed();
                }
                let (n, d) = stage.get();
                stage.set((n + iters, d + total));
                total
            })
        });
        g.finish();
        summary.push((name, ing.get(), stage.get()));
    }
    c.final_summary();
    if !benchmarking {
        return;
    }
    eprintln!("\nmeans over all timed passes ({} events per pass):", events.len());
    eprintln!("{:<14} {:>14} {:>12} {:>16}", "case", "ingest ev/s", "vs baseline", "enrich-only ev/s");
    let base = summary.first().map(|(_, (n, d), _)| *n as f64 / d.as_secs_f64());
    for (name, (n, d), (sn, sd)) in summary {
        let ev = events.len() as f64;
        let rate = ev * n as f64 / d.as_secs_f64();
        let stage_rate = ev * sn as f64 / sd.as_secs_f64();
        let rel = base.map_or(f64::NAN, |b| (n as f64 / d.as_secs_f64()) / b * 100.0 - 100.0);
        eprintln!("{name:<14} {rate:>14.0} {rel:>+11.1}% {stage_rate:>16.0}");
    }
}
