//! The delivery worker: sends what the outbox holds, after the commit that
//! queued it.
//!
//! One delivery at a time, oldest first. A command gets the payload on
//! stdin and as `XFERSTATS_*` variables (the xferstats process's own
//! `XFERSTATS_*` variables and store passwords are not passed on) and must
//! exit 0 within the hook's timeout; a POST must get a 2xx answer. A failure
//! is tried again after 1, 2, 4, … s (at most 5 min; an HTTP `Retry-After`
//! in seconds is honoured when longer); after the hook's last attempt the
//! delivery is parked until `xferstats hooks retry`. Claiming a delivery
//! leases it for its timeout plus five seconds, so that two workers on one
//! store never send it at once, and a worker killed mid-delivery leaves it
//! to be sent again once the lease ran out (the one window in which a
//! receiver can see a delivery twice; the event id tells it).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::actions::hook::{body, env_vars, Action, Hook};
use crate::actions::Hooks;
use crate::error::StoreError;
use crate::sinks::{Attempt, Backend, Delivery};

/// Longest pause between two attempts.
const MAX_BACKOFF: i64 = 300_000_000;
/// Lease beyond a delivery's timeout.
const LEASE_MARGIN: i64 = 5_000_000;
/// Deliveries claimed at once: one, so that the lease covers exactly the
/// delivery under way.
const CLAIM: u32 = 1;
/// The longest a worker thread sleeps before it looks at the outbox again
/// (commits of the import it runs beside queue new deliveries).
const POLL: Duration = Duration::from_millis(500);
/// Bytes of a failed command's stderr (or an HTTP answer) kept as its
/// error.
const ERROR_TAIL: usize = 300;

/// Variables of the xferstats process not passed on to hook commands.
const SECRET_VARS: [&str; 4] = ["PGPASSWORD", "INFLUX_TOKEN", "INFLUXDB_PASS", "DATABASE_URL"];

/// What a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Deliveries that succeeded.
    pub delivered: u64,
    /// Attempts that failed (to be tried again, or parked).
    pub failed: u64,
    /// Deliveries parked after their last attempt.
    pub parked: u64,
}

/// Delivers the outbox of one store for a set of hooks.
pub struct Worker {
    hooks: Arc<Hooks>,
    store: Box<dyn Backend>,
    http: Option<(tokio::runtime::Runtime, reqwest::Client)>,
    /// Totals so far.
    pub stats: WorkerStats,
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

impl Worker {
    /// A worker over `store` (a connection of its own) for `hooks`.
    pub fn new(hooks: Arc<Hooks>, store: Box<dyn Backend>) -> Worker {
        Worker { hooks, store, http: None, stats: WorkerStats::default() }
    }

    /// Sends every delivery due now (and those that fall due meanwhile);
    /// returns when none is due.
    pub fn deliver_due(&mut self) -> Result<(), StoreError> {
        let hooks = Arc::clone(&self.hooks);
        let names = hooks.names();
        let lease = hooks.hooks.iter().map(|h| h.timeout.as_micros() as i64).max().unwrap_or(0) + LEASE_MARGIN;
        loop {
            let due = self.store.outbox().claim_due(&names, now_us(), lease, CLAIM)?;
            if due.is_empty() {
                return Ok(());
            }
            for d in due {
                let hook = hooks.get(&d.hook).expect("claimed for a known hook");
                crate::testhook::maybe_crash("deliver");
                let outcome = self.attempt(hook, &d);
                let attempt = match outcome {
                    Ok(()) => {
                        crate::testhook::maybe_crash("delivered");
                        self.stats.delivered += 1;
                        Attempt::Delivered
                    }
                    Err((error, retry_after)) => {
                        self.stats.failed += 1;
                        let tries = d.attempts + 1;
                        let next = (tries < hook.attempts).then(|| {
                            let backoff = (1_000_000i64 << (tries - 1).min(20)).min(MAX_BACKOFF);
                            now_us() + backoff.max(retry_after.unwrap_or(0))
                        });
                        if next.is_none() {
                            self.stats.parked += 1;
                            tracing::warn!(
                                "hook {}: delivery {} parked after {tries} attempts: {error}",
                                hook.name,
                                d.id
                            );
                        } else {
                            tracing::info!("hook {}: delivery {} failed (attempt {tries}): {error}", hook.name, d.id);
                        }
                        Attempt::Failed { error, next }
                    }
                };
                self.store.outbox().finish_delivery(d.id, &attempt)?;
            }
        }
    }

    /// When the next pending delivery falls due (µs), if any.
    pub fn next_due(&mut self) -> Result<Option<i64>, StoreError> {
        let hooks = Arc::clone(&self.hooks);
        self.store.outbox().next_due(&hooks.names())
    }

    /// Delivers until nothing is pending or `deadline` passed (a pending
    /// delivery due after it is left for later).
    pub fn deliver_until(&mut self, deadline: Instant) -> Result<(), StoreError> {
        loop {
            self.deliver_due()?;
            let Some(next) = self.next_due()? else { return Ok(()) };
            let wait = Duration::from_micros((next - now_us()).max(0) as u64);
            if Instant::now() + wait > deadline {
                return Ok(());
            }
            std::thread::sleep(wait.min(POLL));
        }
    }

    /// One attempt: `Ok` when delivered, else the error and the answer's
    /// `Retry-After` (µs).
    fn attempt(&mut self, hook: &Hook, d: &Delivery) -> Result<(), (String, Option<i64>)> {
        match &hook.action {
            Action::Exec(argv) => run_command(argv, hook.timeout, &d.payload).map_err(|e| (e, None)),
            Action::Post { url, .. } => {
                let (rt, client) = match &mut self.http {
                    Some(h) => h,
                    None => {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|e| (format!("cannot start the HTTP client: {e}"), None))?;
                        let client = reqwest::Client::builder()
                            .user_agent(concat!("xferstats/", env!("CARGO_PKG_VERSION")))
                            .build()
                            .map_err(|e| (format!("cannot start the HTTP client: {e}"), None))?;
                        self.http.insert((rt, client))
                    }
                };
                let request = client
                    .post(url.as_str())
                    .timeout(hook.timeout)
                    .header("Content-Type", "application/json")
                    .header("Idempotency-Key", d.event_id.to_string())
                    .body(body(hook, &d.payload));
                rt.block_on(async {
                    // Errors name the host only: the URL may hold a token.
                    let host = crate::actions::hook::mask_url(url);
                    let answer = request.send().await.map_err(|e| (format!("{host}: {}", e.without_url()), None))?;
                    let status = answer.status();
                    if status.is_success() {
                        return Ok(());
                    }
                    let retry_after = answer
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<i64>().ok())
                        .map(|s| s.saturating_mul(1_000_000));
                    let text = answer.text().await.unwrap_or_default();
                    Err((format!("{host}: HTTP {status}: {}", tail(text.as_bytes())), retry_after))
                })
            }
        }
    }
}

/// The last bytes of `b`, sanitised, for an error.
fn tail(b: &[u8]) -> String {
    let b = b.trim_ascii();
    let start = b.len().saturating_sub(ERROR_TAIL);
    crate::sanitize::sanitize_bytes(&b[start..], ERROR_TAIL)
}

/// Runs `argv` with `payload` on stdin and as variables; `Ok` on exit 0
/// within `timeout` (killed after it).
fn run_command(argv: &[String], timeout: Duration, payload: &str) -> Result<(), String> {
    let fields = serde_json::from_str(payload).unwrap_or_default();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("XFERSTATS_") || SECRET_VARS.contains(&k)) {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env_vars(&fields));
    let program = crate::sanitize::sanitize(&argv[0]).into_owned();
    let mut child = cmd.spawn().map_err(|e| format!("{program}: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = payload.as_bytes().to_vec();
    // A command that does not read its stdin must not block the worker.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    // Most hooks are quick: look again after 1 ms, then less and less often.
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("{program}: killed after the {} s timeout", timeout.as_secs()));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => break Err(format!("{program}: {e}")),
        }
    };
    let _ = writer.join();
    let err = reader.join().unwrap_or_default();
    match status? {
        s if s.success() => Ok(()),
        s => Err(format!("{program}: {s}: {}", tail(&err))),
    }
}

/// Delivers beside a long-running follower until `stop` is set: what falls
/// due, looking at the outbox every half second. A store error (a
/// PostgreSQL restart) is said once per outage and the store opened again
/// with backoff, so deliveries resume with the store; what is pending at
/// the stop stays queued for the next start or `xferstats hooks deliver`.
pub fn deliver_while(
    hooks: Arc<Hooks>,
    open: &dyn Fn() -> Result<Box<dyn Backend>, StoreError>,
    stop: &std::sync::atomic::AtomicBool,
) -> WorkerStats {
    use std::sync::atomic::Ordering;
    let mut stats = WorkerStats::default();
    let mut worker: Option<Worker> = None;
    let (mut wait, mut down) = (POLL, false);
    while !stop.load(Ordering::Relaxed) {
        let result = match worker.as_mut() {
            Some(w) => w.deliver_due(),
            None => open().map(|store| {
                worker = Some(Worker { stats: std::mem::take(&mut stats), ..Worker::new(hooks.clone(), store) });
            }),
        };
        match result {
            Ok(()) => {
                if down {
                    tracing::warn!("hook deliveries: the store answers again");
                }
                (wait, down) = (POLL, false);
            }
            Err(e) => {
                if !down {
                    tracing::warn!(
                        "hook deliveries paused, the store failed: {}",
                        crate::sanitize::sanitize(&e.to_string())
                    );
                }
                down = true;
                if let Some(w) = worker.take() {
                    stats = w.stats;
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
        // Sleep in short steps so that a stop is seen at once.
        let until = Instant::now() + wait;
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
    }
    worker.map_or(stats, |w| w.stats)
}

enum Msg {
    /// Something was committed: look at the outbox now.
    Notify,
    /// The import is over: deliver until nothing is pending or the time
    /// is up.
    Finish(Instant),
}

/// A [`Worker`] on a thread of its own: beside an import, or beside a
/// long-running follower (call [`WorkerHandle::notify`] after each commit,
/// [`WorkerHandle::finish`] to stop).
pub struct WorkerHandle {
    tx: Sender<Msg>,
    thread: std::thread::JoinHandle<Result<WorkerStats, StoreError>>,
}

impl WorkerHandle {
    /// Starts `worker` on a thread: it delivers what falls due, looking at
    /// the outbox at least every half second.
    pub fn spawn(mut worker: Worker) -> WorkerHandle {
        let (tx, rx): (Sender<Msg>, Receiver<Msg>) = channel();
        let thread = std::thread::Builder::new()
            .name("xferstats-hooks".into())
            .spawn(move || {
                let mut deadline = None;
                loop {
                    worker.deliver_due()?;
                    if let Some(d) = deadline {
                        worker.deliver_until(d)?;
                        return Ok(worker.stats);
                    }
                    match rx.recv_timeout(POLL) {
                        Ok(Msg::Notify) | Err(RecvTimeoutError::Timeout) => {}
                        Ok(Msg::Finish(d)) => deadline = Some(d),
                        Err(RecvTimeoutError::Disconnected) => return Ok(worker.stats),
                    }
                }
            })
            .expect("spawning the hook delivery thread");
        WorkerHandle { tx, thread }
    }

    /// Wakes the worker (a commit queued deliveries).
    pub fn notify(&self) {
        let _ = self.tx.send(Msg::Notify);
    }

    /// Delivers what is pending for at most `wait` more, then stops; what
    /// it did. Deliveries still pending stay queued for the next worker.
    pub fn finish(self, wait: Duration) -> Result<WorkerStats, StoreError> {
        let _ = self.tx.send(Msg::Finish(Instant::now() + wait));
        self.thread.join().unwrap_or_else(|_| {
            Err(StoreError::State { scope: "hooks".into(), reason: "the hook delivery thread panicked".into() })
        })
    }
}
