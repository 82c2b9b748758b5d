//! Size and speed of `report --format html` on a large store: builds (once)
//! an SQLite store of synthetic events — one year, 1,000 users, 50 servers,
//! 20 modules, 5 protocols, 60 countries, 20,000 clients in about 420
//! geohash cells, 50,000 files —
//! then times the HTML report of the whole year and prints its size.
//!
//! ```text
//! cargo run --release --example html_report -- [--events 10000000] [--db PATH] [--out FILE]
//! ```
//!
//! `benches/html_report.sh` runs it under `nice`. The store is written
//! through the library's own commit path (raw rows and daily rollups
//! together), in time order, without log parsing (`benches/parse.rs` and
//! `examples/gen_corpus.rs` measure that). A store that already exists is
//! reused as it is.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use xferstats::model::{Direction, Event, Granularity, Login, LoginOutcome, Origin, Protocol, Status, Transfer};
use xferstats::sinks::sqlite::SqliteStore;
use xferstats::sinks::{Commit, Sink};

const USERS: u64 = 1_000;
const HOSTS: u64 = 50;
const MODULES: u64 = 20;
const CLIENTS: u64 = 20_000;
const FILES: u64 = 50_000;
const DAYS: i64 = 365;
/// 2025-01-01T00:00:00Z, µs.
const START: i64 = 1_735_689_600_000_000;
const COUNTRIES: [&str; 60] = [
    "US", "DE", "FR", "GB", "NL", "JP", "CN", "BR", "IN", "CA", "AU", "SE", "NO", "FI", "DK", "PL", "CZ", "AT", "CH",
    "IT", "ES", "PT", "BE", "IE", "RU", "UA", "TR", "IL", "ZA", "EG", "NG", "KE", "MA", "AR", "CL", "CO", "MX", "PE",
    "KR", "TW", "SG", "ID", "TH", "VN", "PH", "MY", "NZ", "GR", "RO", "HU", "BG", "RS", "HR", "SK", "SI", "LT", "LV",
    "EE", "IS", "LU",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Skewed towards small values (a few busy users, files, clients).
    fn skewed(&mut self, n: u64) -> u64 {
        let x = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((x * x * x) * n as f64) as u64
    }
}

/// A made-up 5-character geohash of client `c`: about 420 cells of 3
/// characters (7 per country), the last 2 characters spread.
fn geohash(c: u64) -> String {
    const B32: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let country = c * 7919 % 60;
    [country % 32, country / 32 * 8 + c % 7, (c / 7) % 32, (c / 224) % 32, (c / 7168) % 32]
        .iter()
        .map(|i| B32[*i as usize] as char)
        .collect()
}

fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == name {
            return it.next();
        }
    }
    None
}

fn build(db: &std::path::Path, events: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut store = SqliteStore::open(db)?;
    let hosts: Vec<Arc<str>> = (0..HOSTS).map(|h| Arc::from(format!("mirror{h:02}.example.net"))).collect();
    let origins: Vec<Arc<Origin>> = (0..CLIENTS)
        .map(|c| {
            Arc::new(Origin {
                country: Some(COUNTRIES[(c * 7919 % 60) as usize].into()),
                geohash: Some(geohash(c).into()),
                client_hash: Some(format!("h{c:021}").into()),
                ..Origin::default()
            })
        })
        .collect();
    let protocols = [Protocol::Rsync, Protocol::Sftp, Protocol::Ftp, Protocol::Ftps, Protocol::Scp];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let per_day = events / DAYS as u64;
    let started = Instant::now();
    let mut batch: Vec<Event> = Vec::with_capacity(50_000);
    let mut id: u64 = 0;
    for day in 0..DAYS {
        let step = 86_400_000_000 / per_day.max(1) as i64;
        for i in 0..per_day {
            id += 1;
            let time = START + day * 86_400_000_000 + i as i64 * step;
            let user = rng.skewed(USERS);
            let client = (user * 20 + rng.below(20)) % CLIENTS;
            let host = hosts[((user + rng.below(3)) % HOSTS) as usize].clone();
            let protocol = protocols[(user % 5) as usize];
            let origin = Some(origins[client as usize].clone());
            let name = format!("user{user:04}");
            let ev = if rng.below(10) == 0 {
                Event::Login(Login {
                    id,
                    time,
                    protocol,
                    user: name.into(),
                    client_ip: None,
                    client_host: None,
                    outcome: if rng.below(100) < 85 { LoginOutcome::Ok } else { LoginOutcome::Failed },
                    method: None,
                    session: None,
                    server_host: host,
                    source: xferstats::formats::Format::Rsyncd.source(),
                    origin,
                })
            } else {
                let r = rng.below(100);
                let direction = if r < 70 {
                    Direction::Download
                } else if r < 95 {
                    Direction::Upload
                } else {
                    Direction::Delete
                };
                let s = rng.below(100);
                let status = if s < 97 {
                    Status::Completed
                } else if s < 99 {
                    Status::Interrupted
                } else {
                    Status::Failed
                };
                let bytes = if direction == Direction::Delete { 0 } else { 1 + rng.below(1 << 30) };
                Event::Transfer(Transfer {
                    id,
                    end: time,
                    start: None,
                    protocol,
                    direction,
                    status,
                    bytes,
                    wire_bytes: None,
                    file_size: None,
                    path: Some(format!("pub/data/set{:03}/file{:05}.tar.gz", rng.below(200), rng.skewed(FILES))),
                    module: Some(format!("mod{:02}", rng.skewed(MODULES)).into()),
                    user: name.into(),
                    client_ip: Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + client as u32))),
                    client_host: None,
                    session: None,
                    server_host: host,
                    source: xferstats::formats::Format::Rsyncd.source(),
                    granularity: Granularity::File,
                    origin,
                })
            };
            batch.push(ev);
            if batch.len() == batch.capacity() {
                store.commit(&Commit { events: &batch, input: None, checkpoint: None, states: &[], outbox: &[] })?;
                batch.clear();
            }
        }
        if day % 30 == 29 {
            eprintln!("… {} days, {id} events, {:.0} s", day + 1, started.elapsed().as_secs_f64());
        }
    }
    store.commit(&Commit { events: &batch, input: None, checkpoint: None, states: &[], outbox: &[] })?;
    eprintln!("built {} events in {:.1} s", id, started.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> ExitCode {
    let events: u64 = arg("--events").and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let db = PathBuf::from(arg("--db").unwrap_or_else(|| format!("target/html-bench-{events}.db")));
    let out = PathBuf::from(arg("--out").unwrap_or_else(|| "target/html-bench.html".into()));
    if !db.exists() {
        if let Err(e) = build(&db, events) {
            eprintln!("html_report: building {}: {e}", db.display());
            let _ = std::fs::remove_file(&db);
            return ExitCode::FAILURE;
        }
    }
    // Opening migrates a store written by an older xferstats (filling the
    // rollups it lacks): timed apart.
    let opened = Instant::now();
    let mut store = match SqliteStore::open(&db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("html_report: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("opened {} in {:.1} s", db.display(), opened.elapsed().as_secs_f64());
    let started = Instant::now();
    let mut page = Vec::new();
    let opts = xferstats::report::ReportOptions {
        by: None,
        since: None,
        until: None,
        day: None,
        filters: Vec::new(),
        top: None,
        format: xferstats::report::OutputFormat::Html,
    };
    if let Err(e) = xferstats::report::html::render(&mut store, &opts, &mut page) {
        eprintln!("html_report: {e}");
        return ExitCode::FAILURE;
    }
    let secs = started.elapsed().as_secs_f64();
    if let Err(e) = std::fs::write(&out, &page) {
        eprintln!("html_report: writing {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "store {} ({} MB): HTML report {} bytes ({:.2} MB) in {secs:.2} s → {}",
        db.display(),
        std::fs::metadata(&db).map(|m| m.len() / 1_000_000).unwrap_or(0),
        page.len(),
        page.len() as f64 / 1e6,
        out.display()
    );
    ExitCode::SUCCESS
}
