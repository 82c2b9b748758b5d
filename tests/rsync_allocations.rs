//! Heap allocations of the rsyncd decoder per line, counted by a global
//! allocator of this test binary (its own process: the count covers only
//! the thread that decodes).
//!
//! The standard is no per-line allocation on the hot path beyond the text
//! an event must own: once its maps are grown and the names and client
//! addresses it sees are interned, a connection costs its session id and
//! the path it requested (one each, shared by its login and its transfer;
//! the path is one the store thread handed back, or one a closed connection
//! that logged its files gave back, when there is one; the session id is
//! one the store thread handed back when there is one),
//! and a per-file line the file's path. Client host names, users, modules,
//! addresses and server hosts are shared; a prune reuses its buffers and
//! the batch it fills keeps its allocation. Per batch, the decoder makes
//! the server host's name and the login method anew, so that the thread
//! that fills a batch and the one that drops the last do not count
//! references to the same texts: two allocations a batch
//! ([`RENEWED`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use xferstats::enrich::hostkey::HostKey;
use xferstats::formats::prefix::PrefixParser;
use xferstats::formats::rsync::decoder::RsyncDecoder;
use xferstats::formats::rsync::{LogFormat, DEFAULT_LOG_FORMAT};
use xferstats::model::Event;
use xferstats::sessions::{Decoder, IdGen, LineContext, Outcome, Texts};
use xferstats::time::{Clock, TimeZone};

/// The system allocator, counting the allocations of each thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: nothing to count while the thread's slot is torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed on to `System` unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The texts made anew for each batch begun: the server host's name and
/// the login method.
const RENEWED: u64 = 2;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Connections of a busy server, as syslog writes them: `n` connections
/// from `clients` addresses (each with its host name, one in eight
/// `UNKNOWN`), starting every 20 s, each with a request of a user, and
/// `files` per-file lines (`transfer logging`) or else a summary.
fn connections(from: u32, n: u32, clients: u32, files: u32) -> Vec<u8> {
    let mut log = Vec::new();
    for k in from..from + n {
        // From 2024-01-15T00:00:00Z.
        let t = u64::from(k) * 20;
        let (day, h, m, s) = (15 + t / 86_400, t / 3600 % 24, t / 60 % 60, t % 60);
        let head = format!("2024-01-{day:02}T{h:02}:{m:02}:{s:02}+0000 mirror1 rsyncd[{}]", 1000 + k % 30_000);
        let c = k % clients;
        let host = if c.is_multiple_of(8) { "UNKNOWN".to_string() } else { format!("client{c}.example.org") };
        let addr = format!("198.51.{}.{}", c / 250, c % 250);
        let (user, module) = (["alice", "bob", "carol"][(k % 3) as usize], ["pub", "data"][(k % 2) as usize]);
        let mut line = |msg: String| log.extend_from_slice(format!("{head}: {msg}\n").as_bytes());
        line(format!("connect from {host} ({addr})"));
        line(format!("rsync allowed access on module {module} from {host} ({addr})"));
        line(format!("rsync on {module}/tree/{} from {user}@{host} ({addr})", k % 40));
        line("building file list".into());
        for f in 0..files {
            line(format!("send {host} [{addr}] {module} ({user}) tree/{}/file-{k}-{f}.dat {}", k % 40, 1000 + f));
        }
        line(format!("sent {} bytes  received 712 bytes  total size 99999", 5000 + k));
    }
    log
}

/// Decodes `log`, emptying the batch when it holds 10,000 events (as the
/// engine hands a batch over, its allocation kept; with `store`, its
/// paths and session ids handed back as the store thread hands them back); returns the
/// allocations made meanwhile and the events emitted.
fn decode(
    d: &mut RsyncDecoder,
    cx: &mut LineContext,
    out: &mut Vec<Event>,
    log: &[u8],
    store: Option<&Texts>,
) -> (u64, usize) {
    let (before, mut events) = (allocations(), 0);
    for line in log.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let outcome = d.line(cx, line, out);
        assert!(!matches!(outcome, Outcome::Rejected(_)), "{}", String::from_utf8_lossy(line));
        if out.len() >= 10_000 {
            events += out.len();
            match store {
                Some(store) => store.keep_paths(out),
                None => out.clear(),
            }
        }
    }
    (allocations() - before, events + out.len())
}

fn context() -> LineContext {
    LineContext {
        clock: Clock::new(TimeZone::Utc, 1_705_276_800),
        prefix: PrefixParser::new(),
        ids: IdGen::new(HostKey::new(b"allocation test host key").id_key()),
        server_host: "srv".into(),
        texts: Default::default(),
        keep_hosts: true,
    }
}

/// Allocations per connection and per file line once warm: `files` per
/// connection, 20,000 connections measured after 10,000 of warm-up.
fn per_connection(files: u32) -> (u64, usize) {
    let mut d = RsyncDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap());
    let mut cx = context();
    let mut out = Vec::with_capacity(10_000);
    decode(&mut d, &mut cx, &mut out, &connections(0, 10_000, 500, files), None);
    out.clear();
    let log = connections(10_000, 20_000, 500, files);
    decode(&mut d, &mut cx, &mut out, &log, None)
}

/// [`per_connection`] with the paths and session ids of each emptied batch
/// handed back as the store thread hands them back, once those in flight (in open
/// connections and in the batch being filled) have been made: 20,000
/// connections measured after 30,000.
fn per_connection_recycled(files: u32) -> (u64, usize) {
    let mut d = RsyncDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap());
    let mut cx = context();
    let store = cx.texts.share();
    let mut out = Vec::with_capacity(10_000);
    decode(&mut d, &mut cx, &mut out, &connections(0, 30_000, 500, files), Some(&store));
    store.keep_paths(&mut out);
    let log = connections(30_000, 20_000, 500, files);
    decode(&mut d, &mut cx, &mut out, &log, Some(&store))
}

#[test]
fn a_summary_only_connection_allocates_its_session_id_and_path() {
    let (allocations, events) = per_connection(0);
    // A login and a session-level transfer each, and the transfers of the
    // 420 connections of the warm-up still open at its end.
    assert_eq!(events, 40_420);
    // And the texts renewed for the 5 batches begun.
    assert_eq!(allocations, 2 * 20_000 + 5 * RENEWED);
}

#[test]
fn a_file_line_allocates_its_path() {
    let (allocations, events) = per_connection(3);
    // A login and three file transfers each.
    assert_eq!(events, 80_000);
    // A session id, a requested path and three file paths each, but for
    // the requested paths that closed connections (which logged their
    // files: no event took the path) gave back to later ones; and the
    // texts renewed for the 8 batches begun.
    assert_eq!(allocations, 2 * 20_000 + 3 * 20_000 - 4_363 + 8 * RENEWED);
}

#[test]
fn paths_and_session_ids_handed_back_are_filled_again() {
    // A connection allocates nothing: its path and its session id are
    // ones handed back, but for the 218 paths and 380 session ids made
    // while none waited (a batch is handed back once full, the texts in
    // flight grow with the open connections between two prunes).
    let (allocations, events) = per_connection_recycled(0);
    assert_eq!(events, 39_399);
    // And the texts renewed for the 4 batches begun.
    assert_eq!(allocations, 218 + 380 + 4 * RENEWED);
    // So is each file's path (13 made while none waited). A connection
    // that logged its files holds its session id until it is closed,
    // after its events were stored: that id is freed where it is closed,
    // not handed back, so 3,311 are made anew.
    let (allocations, events) = per_connection_recycled(3);
    assert_eq!(events, 80_000);
    assert_eq!(allocations, 13 + 3_311 + 8 * RENEWED);
}
