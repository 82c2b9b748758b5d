//! Test switches: crash points for the tests that kill an import half-way,
//! a rendezvous for the tests of concurrent imports ([`rendezvous`]), and
//! the unkeyed ids of old stores ([`unkeyed_ids`]), the day reports
//! take as today ([`today`]), small parts of transactions
//! ([`part_events`]), and rollup COPYs that meet stored keys
//! ([`blind_rollups`]).
//!
//! `XFERSTATS_TEST_CRASH=POINT:N` aborts the process (as SIGKILL would:
//! no destructors, no rollback) the N-th time execution reaches `POINT`.
//! Points: `commit` (inside a store transaction, before COMMIT),
//! `committed` (right after a commit), `deliver` (a hook delivery claimed,
//! before it is sent) and `delivered` (sent, before it is marked done). Unset in production; reading the
//! variable costs one lookup per process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static COUNT: AtomicU64 = AtomicU64::new(0);

/// Aborts if the crash point `point` is armed and reached for the N-th time.
pub fn maybe_crash(point: &str) {
    let target = TARGET.get_or_init(|| {
        let v = std::env::var("XFERSTATS_TEST_CRASH").ok()?;
        let (p, n) = v.split_once(':')?;
        Some((p.to_string(), n.parse().ok()?))
    });
    if let Some((p, n)) = target {
        if p == point && COUNT.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            std::process::abort();
        }
    }
}

/// `XFERSTATS_TEST_UNKEYED_IDS=1` makes an import write event ids,
/// fingerprints and tail hashes unkeyed and record no id scheme, exactly as
/// xferstats did before they were keyed: the tests build such stores to
/// check their upgrade and to show the brute-force attack that keying stops.
pub fn unkeyed_ids() -> bool {
    static SET: OnceLock<bool> = OnceLock::new();
    *SET.get_or_init(|| std::env::var_os("XFERSTATS_TEST_UNKEYED_IDS").is_some_and(|v| v == "1"))
}

/// `XFERSTATS_TEST_RENDEZVOUS=POINT:DIR:N`: the first time execution
/// reaches `POINT`, the process leaves a file in `DIR` and waits until `DIR`
/// holds `N` files (60 s at most), so that `N` concurrent imports all pass
/// `POINT` before any goes on. Point: `state-read` (an import has read the
/// open sessions it resumes). Unset in production.
pub fn rendezvous(point: &str) {
    static DONE: OnceLock<()> = OnceLock::new();
    let Ok(v) = std::env::var("XFERSTATS_TEST_RENDEZVOUS") else { return };
    let mut parts = v.splitn(3, ':');
    let (Some(p), Some(dir), Some(n)) = (parts.next(), parts.next(), parts.next()) else { return };
    let Ok(n) = n.parse::<usize>() else { return };
    if p != point || DONE.set(()).is_err() {
        return;
    }
    let dir = std::path::Path::new(dir);
    let _ = std::fs::write(dir.join(std::process::id().to_string()), b"");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(dir).map_or(0, |d| d.count()) < n && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `XFERSTATS_TEST_TODAY=YYYY-MM-DD` sets the UTC day reports take as
/// today (`today`, `yesterday`, `-7d`, the last complete day of the digest),
/// so the tests of relative days do not depend on the clock. Unset in
/// production.
pub fn today() -> Option<i64> {
    static SET: OnceLock<Option<i64>> = OnceLock::new();
    *SET.get_or_init(|| crate::time::parse_day(&std::env::var("XFERSTATS_TEST_TODAY").ok()?))
}

/// `XFERSTATS_TEST_PART_EVENTS=N`: a store that takes a transaction in
/// parts ([`crate::sinks::Sink::part`]) takes them of N events, so that
/// tests of a few hundred events cover transactions of several parts.
pub fn part_events() -> Option<usize> {
    static N: OnceLock<Option<usize>> = OnceLock::new();
    *N.get_or_init(|| std::env::var("XFERSTATS_TEST_PART_EVENTS").ok()?.parse().ok().filter(|n| *n > 0))
}

/// `XFERSTATS_TEST_BLIND_ROLLUPS=1`: the PostgreSQL store takes no rollup
/// day for stored when it writes the rollups, so that its COPYs meet stored
/// keys (as when a concurrent import adds them meanwhile) and fall back to
/// upserts. Unset in production.
pub fn blind_rollups() -> bool {
    static SET: OnceLock<bool> = OnceLock::new();
    *SET.get_or_init(|| std::env::var_os("XFERSTATS_TEST_BLIND_ROLLUPS").is_some_and(|v| v == "1"))
}
