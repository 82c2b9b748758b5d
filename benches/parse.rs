//! Throughput of the rsyncd read path over a synthetic corpus (see
//! `corpus.rs`) of at least 50 MB per prefix style.
//!
//! * `rsyncd_decode/<style>`: the full parse + sessionize path `xferstats
//!   ingest` runs per line (`RsyncDecoder::line`, events dropped in batches
//!   of ~10k as a store commit would), without reading files or the store;
//! * `rsyncd_parse/<style>`: only the pure parsers, `PrefixParser::parse` +
//!   `formats::rsync::parse_message`.
//!
//! Criterion reports bytes/s; events/s (and lines/s) of the decode group are
//! printed after it from the same runs. Run with `cargo bench --bench parse`
//! (add `-- rsyncd_parse` to run one group); `cargo bench --bench parse --
//! --test` runs each benchmark once as a smoke test.

#[path = "corpus.rs"]
mod corpus;

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};

use corpus::Style;
use xferstats::formats::prefix::PrefixParser;
use xferstats::formats::rsync::decoder::RsyncDecoder;
use xferstats::formats::rsync::{parse_message, LogFormat, DEFAULT_LOG_FORMAT};
use xferstats::sessions::{Decoder, IdGen, LineContext, Outcome};
use xferstats::time::{Clock, TimeZone};

/// Corpus size per style when benchmarking: 50 MiB (52.4 MB).
const CORPUS_BYTES: usize = 50 << 20;
/// Corpus size when `cargo test --benches` runs this (no `--bench` flag;
/// criterion then runs each benchmark once, unoptimised).
const TEST_CORPUS_BYTES: usize = 2 << 20;
/// Events handed out between two clears of the event buffer.
const CLEAR_EVERY: usize = 10_000;

#[derive(Debug, Default, Clone, Copy)]
struct PassStats {
    lines: u64,
    used: u64,
    ignored: u64,
    rejected: u64,
    events: u64,
}

fn context() -> LineContext {
    LineContext {
        clock: Clock::new(TimeZone::Utc, corpus::reference_unix()),
        prefix: PrefixParser::new(),
        ids: IdGen::new(xferstats::enrich::hostkey::HostKey::new(b"bench host key, 16+ chars").id_key()),
        server_host: "bench".into(),
        texts: Default::default(),
        // As ingest in its default IP mode (`hmac`).
        keep_hosts: false,
    }
}

/// One pass of the full path over `corpus`, as `ingest` drives it.
fn decode_pass(corpus: &[u8], format: &LogFormat, mut first_reject: Option<&mut Option<String>>) -> PassStats {
    let mut decoder = RsyncDecoder::new(format.clone());
    let mut cx = context();
    let mut events = Vec::with_capacity(CLEAR_EVERY + 1024);
    let mut st = PassStats::default();
    let mut pos = 0usize;
    for nl in memchr::memchr_iter(b'\n', corpus) {
        let line = &corpus[pos..nl];
        pos = nl + 1;
        st.lines += 1;
        match decoder.line(&mut cx, line, &mut events) {
            Outcome::Used => st.used += 1,
            Outcome::Ignored => st.ignored += 1,
            Outcome::Rejected(reason) => {
                st.rejected += 1;
                if let Some(slot) = first_reject.as_deref_mut().filter(|s| s.is_none()) {
                    *slot = Some(format!("{reason}: {}", String::from_utf8_lossy(line)));
                }
            }
        }
        if events.len() >= CLEAR_EVERY {
            st.events += events.len() as u64;
            black_box(&events);
            events.clear();
        }
    }
    decoder.finish(&cx.ids.key(), &mut events);
    st.events += events.len() as u64;
    black_box(&events);
    st
}

/// One pass of the pure parsers: prefix, then message classification.
fn parse_pass(corpus: &[u8], format: &LogFormat) -> (u64, u64) {
    let (mut prefix, mut clock) = (PrefixParser::new(), Clock::new(TimeZone::Utc, corpus::reference_unix()));
    let (mut ok, mut bad) = (0u64, 0u64);
    let mut pos = 0usize;
    for nl in memchr::memchr_iter(b'\n', corpus) {
        let line = &corpus[pos..nl];
        pos = nl + 1;
        match prefix.parse(line, &mut clock).map(|p| parse_message(p.msg, format)) {
            Some(Ok(r)) => {
                black_box(&r);
                ok += 1;
            }
            _ => bad += 1,
        }
    }
    (ok, bad)
}

struct Prepared {
    style: Style,
    data: Vec<u8>,
    stats: PassStats,
}

fn prepare(style: Style, format: &LogFormat, benchmarking: bool) -> Prepared {
    let t = Instant::now();
    let target = if benchmarking { CORPUS_BYTES } else { TEST_CORPUS_BYTES };
    let data = corpus::generate(style, target, corpus::DEFAULT_SEED);
    assert!(data.len() >= target, "corpus too small: {} bytes", data.len());
    if benchmarking {
        assert!(data.len() >= 50_000_000, "benchmark corpus under 50 MB: {} bytes", data.len());
    }
    let gen_secs = t.elapsed().as_secs_f64();
    let mut first_reject = None;
    let stats = decode_pass(&data, format, Some(&mut first_reject));
    eprintln!(
        "corpus {:<8} {} bytes ({:.1} MB, generated in {:.2} s): {} lines, {} used, {} ignored, {} rejected, {} events per pass",
        style.name(),
        data.len(),
        data.len() as f64 / 1e6,
        gen_secs,
        stats.lines,
        stats.used,
        stats.ignored,
        stats.rejected,
        stats.events
    );
    if let Some(r) = first_reject {
        eprintln!("  warning: the decoder rejects generated lines, first: {r}");
    }
    Prepared { style, data, stats }
}

/// Runs `f` `iters` times and adds the time to `acc`.
fn timed(iters: u64, acc: &Cell<(u64, Duration)>, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    let d = t.elapsed();
    let (n, total) = acc.get();
    acc.set((n + iters, total + d));
    d
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    // A pass over 50 MB takes 0.15–1 s: ten flat samples (one or a few
    // passes each) keep `cargo bench --bench parse` near a minute and a
    // half on two cores, build included.
    g.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
    g
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let mut c = Criterion::default().configure_from_args();
    let format = LogFormat::compile(DEFAULT_LOG_FORMAT).expect("default log format compiles");
    let mut summary = Vec::new();
    for style in Style::ALL {
        let p = prepare(style, &format, benchmarking);
        let bytes = p.data.len() as u64;
        let decode = Cell::new((0u64, Duration::ZERO));
        let parse = Cell::new((0u64, Duration::ZERO));

        let mut g = configure(&mut c, "rsyncd_decode");
        g.measurement_time(Duration::from_secs(10)).throughput(Throughput::Bytes(bytes));
        g.bench_with_input(BenchmarkId::from_parameter(style.name()), &p.data, |b, data| {
            b.iter_custom(|iters| {
                timed(iters, &decode, || {
                    let st = decode_pass(data, &format, None);
                    assert_eq!(st.events, p.stats.events, "passes differ");
                })
            })
        });
        g.finish();

        let mut g = configure(&mut c, "rsyncd_parse");
        g.measurement_time(Duration::from_secs(4)).throughput(Throughput::Bytes(bytes));
        g.bench_with_input(BenchmarkId::from_parameter(style.name()), &p.data, |b, data| {
            b.iter_custom(|iters| {
                timed(iters, &parse, || {
                    black_box(parse_pass(data, &format));
                })
            })
        });
        g.finish();

        summary.push((p.style, bytes, p.stats, decode.get(), parse.get()));
    }
    c.final_summary();
    if !benchmarking {
        return;
    }

    eprintln!("\nmeans over all timed passes (warm-up included):");
    eprintln!(
        "{:<8} {:>9} {:>12} {:>12} {:>14} {:>12}",
        "style", "MB/pass", "decode MB/s", "events/s", "lines/s", "parse MB/s"
    );
    for (style, bytes, st, (dn, dt), (pn, pt)) in summary {
        if dn == 0 {
            continue;
        }
        let dsec = dt.as_secs_f64() / dn as f64;
        let psec = if pn > 0 { pt.as_secs_f64() / pn as f64 } else { f64::NAN };
        eprintln!(
            "{:<8} {:>9.1} {:>12.1} {:>12.0} {:>14.0} {:>12.1}",
            style.name(),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / dsec,
            st.events as f64 / dsec,
            st.lines as f64 / dsec,
            bytes as f64 / 1e6 / psec
        );
    }
}
