//! Throughput of the FTP log decoders (`xferlog`, `vsftpd`) over generated
//! corpora of ~50 MB each: `cargo bench --bench ftp`. Criterion reports
//! bytes/s; events per pass are printed once per format.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

use xferstats::formats::prefix::PrefixParser;
use xferstats::sessions::vsftpd::VsftpdDecoder;
use xferstats::sessions::xferlog::XferlogDecoder;
use xferstats::sessions::{Decoder, IdGen, LineContext};
use xferstats::time::{Clock, TimeZone};

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn client(r: u64) -> String {
    if r % 3 == 0 {
        format!("2001:db8:{:x}::{:x}", (r >> 8) % 4096, r % 2000)
    } else {
        format!("::ffff:198.51.{}.{}", (r >> 8) % 200, r % 250)
    }
}

/// xferlog lines (vsftpd-style padded days) up to `target` bytes.
fn xferlog_corpus(target: usize) -> Vec<u8> {
    let mut out = String::with_capacity(target + 256);
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut t = 0u64;
    while out.len() < target {
        let r = rng(&mut s);
        t += r % 3;
        let (day, h, m, sec) = (1 + (t / 86_400) % 28, (t / 3600) % 24, (t / 60) % 60, t % 60);
        let dir = ["o", "i", "o", "d"][(r % 4) as usize];
        let (mode, user) =
            if r % 5 == 0 { ("a", "visitor@example.net".to_string()) } else { ("r", format!("user{}", r % 97)) };
        out.push_str(&format!(
            "{} Nov {:>2} {:02}:{:02}:{:02} 2026 {} {} {} /srv/ftp/pub/dir_{}/file_{}.iso b _ {} {} {} {} 0 * {}\n",
            DAYS[(day % 7) as usize],
            day,
            h,
            m,
            sec,
            r % 30,
            client(r >> 3),
            r % 100_000_000,
            r % 50,
            r % 10_000,
            dir,
            mode,
            user,
            ["ftp", "sftp", "ftp", "scp"][((r >> 5) % 4) as usize],
            if r % 17 == 0 { "i" } else { "c" }
        ));
    }
    out.into_bytes()
}

/// vsftpd.log lines (with protocol logging) up to `target` bytes.
fn vsftpd_corpus(target: usize) -> Vec<u8> {
    let mut out = String::with_capacity(target + 256);
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut t = 0u64;
    while out.len() < target {
        let r = rng(&mut s);
        t += r % 2;
        let (day, h, m, sec) = (1 + (t / 86_400) % 28, (t / 3600) % 24, (t / 60) % 60, t % 60);
        let date = format!("{} Nov {:>2} {:02}:{:02}:{:02} 2026", DAYS[(day % 7) as usize], day, h, m, sec);
        let ip = client(r >> 3);
        let user = if r % 5 == 0 { "ftp".to_string() } else { format!("user{}", r % 97) };
        let pid = 1000 + r % 30_000;
        let line = match r % 6 {
            0 => format!("{date} [pid {pid}] FTP command: Client \"{ip}\", \"RETR file {}.bin\"\n", r % 999),
            1 => format!("{date} [pid {pid}] FTP response: Client \"{ip}\", \"226 Transfer complete.\"\n"),
            2 => format!("{date} [pid {pid}] [{user}] OK LOGIN: Client \"{ip}\"\n"),
            3 => format!(
                "{date} [pid {pid}] [{user}] OK UPLOAD: Client \"{ip}\", \"/home/{user}/in box/f {}.dat\", {} bytes, 1234.56Kbyte/sec\n",
                r % 999,
                r % 10_000_000
            ),
            _ => format!(
                "{date} [pid {pid}] [{user}] OK DOWNLOAD: Client \"{ip}\", \"/pub/release {}.iso\", {} bytes, 99999.12Kbyte/sec\n",
                r % 999,
                r % 100_000_000
            ),
        };
        out.push_str(&line);
    }
    out.into_bytes()
}

fn pass(decoder: &mut dyn Decoder, data: &[u8]) -> usize {
    let mut cx = LineContext {
        prefix: PrefixParser::new(Clock::new(TimeZone::Utc, 0)),
        ids: IdGen::default(),
        server_host: "bench".into(),
    };
    let mut events = Vec::with_capacity(10_000);
    let mut total = 0;
    for line in data.split(|&c| c == b'\n') {
        if line.is_empty() {
            continue;
        }
        black_box(decoder.line(&mut cx, line, &mut events));
        if events.len() >= 10_000 {
            total += events.len();
            events.clear();
        }
    }
    total + events.len()
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let size = if benchmarking { 50 << 20 } else { 1 << 20 };
    let mut c = Criterion::default().configure_from_args();
    let corpora: [(&str, Vec<u8>); 2] = [("xferlog", xferlog_corpus(size)), ("vsftpd", vsftpd_corpus(size))];
    let mut g = c.benchmark_group("ftp_decode");
    g.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(6));
    for (name, data) in &corpora {
        let new = || -> Box<dyn Decoder> {
            match *name {
                "xferlog" => Box::new(XferlogDecoder::default()),
                _ => Box::new(VsftpdDecoder::default()),
            }
        };
        let events = pass(new().as_mut(), data);
        eprintln!("{name}: {} MB, {events} events per pass", data.len() / 1_000_000);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), data, |b, data| b.iter(|| pass(new().as_mut(), data)));
    }
    g.finish();
    c.final_summary();
}
