//! Running a campaign: corpus replay first, then mutants until an execution
//! or time budget is spent; panics are caught, deduplicated by where they
//! happened, and their inputs kept for a regression test.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::mutate::Mutator;
use crate::targets::Target;

/// When a campaign stops.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    /// Executions, corpus replay included.
    pub execs: u64,
    /// Wall time, if limited.
    pub time: Option<Duration>,
    /// Where to write the last input before it runs (to catch a hang).
    pub save_last: Option<PathBuf>,
}

/// One distinct panic.
#[derive(Debug, Clone)]
pub struct Crash {
    /// The panic message with its location.
    pub message: String,
    /// The first input that caused it.
    pub input: Vec<u8>,
    /// How many inputs caused it.
    pub hits: u64,
}

/// What a campaign did.
#[derive(Debug, Default)]
pub struct Stats {
    /// Inputs run, corpus replay included.
    pub execs: u64,
    /// Corpus entries replayed.
    pub replayed: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Distinct panics (by location).
    pub crashes: Vec<Crash>,
    /// The slowest single input and its time.
    pub slowest: (Duration, Vec<u8>),
}

/// Inputs run by all campaigns of this process so far: a watchdog that sees
/// it stand still knows a target hangs (and, the engine being
/// deterministic, on which execution).
pub static EXECS: AtomicU64 = AtomicU64::new(0);

impl Stats {
    /// Inputs that panicked, all locations together.
    pub fn panics(&self) -> u64 {
        self.crashes.iter().map(|c| c.hits).sum()
    }
}

thread_local! {
    /// Set while a target runs on this thread: its panics are recorded here
    /// instead of printed.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
    static QUIET: RefCell<bool> = const { RefCell::new(false) };
}

/// Installs (once) a panic hook that records the message and location of a
/// target's panic and stays silent; panics elsewhere reach the old hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(|q| *q.borrow()) {
                let msg = match (info.payload().downcast_ref::<&str>(), info.payload().downcast_ref::<String>()) {
                    (Some(s), _) => s.to_string(),
                    (_, Some(s)) => s.clone(),
                    _ => "(non-string panic)".to_string(),
                };
                let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
                CAUGHT.with(|c| *c.borrow_mut() = Some(format!("{at}: {msg}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `target` on one input; the panic message if it panicked.
pub fn run_one(target: &Target, input: &[u8]) -> Option<String> {
    install_hook();
    QUIET.with(|q| *q.borrow_mut() = true);
    let r = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    QUIET.with(|q| *q.borrow_mut() = false);
    r.err().map(|_| CAUGHT.with(|c| c.borrow_mut().take()).unwrap_or_default())
}

/// The files of the corpus directories, in name order (missing directories
/// are skipped).
pub fn load_corpus(dirs: &[PathBuf]) -> std::io::Result<Vec<Vec<u8>>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else { continue };
        for e in rd {
            let p = e?.path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    files.iter().map(std::fs::read).collect()
}

/// Runs a campaign: every corpus entry once, then mutants of them until the
/// budget is spent. `progress` is called about every `every` with the
/// stats so far.
pub fn campaign(
    target: &Target,
    corpus: &[Vec<u8>],
    seed: u64,
    budget: Budget,
    every: Duration,
    progress: &mut dyn FnMut(&Stats),
) -> Stats {
    let start = Instant::now();
    let mut stats = Stats::default();
    let mut last_report = start;
    let record = |stats: &mut Stats, input: &[u8]| {
        if let Some(p) = budget.save_last.as_ref().filter(|_| stats.execs + 1 == budget.execs) {
            if let Err(e) = std::fs::write(p, input) {
                eprintln!("{}: {e}", p.display());
            }
        }
        EXECS.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        let panicked = run_one(target, input);
        let took = t0.elapsed();
        stats.execs += 1;
        if took > stats.slowest.0 {
            stats.slowest = (took, input.to_vec());
        }
        if let Some(message) = panicked {
            let at = message.split(": ").next().unwrap_or_default().to_string();
            match stats.crashes.iter_mut().find(|c| c.message.split(": ").next() == Some(at.as_str())) {
                Some(c) => c.hits += 1,
                None => stats.crashes.push(Crash { message, input: input.to_vec(), hits: 1 }),
            }
        }
    };
    for input in corpus {
        if stats.execs >= budget.execs {
            break;
        }
        record(&mut stats, input);
        stats.replayed += 1;
    }
    let empty: Vec<Vec<u8>> = vec![Vec::new()];
    let pool = if corpus.is_empty() { &empty[..] } else { corpus };
    let mut m = Mutator::new(seed, target.dict);
    let mut buf: Vec<u8> = Vec::new();
    let mut last: Vec<u8> = Vec::new();
    while stats.execs < budget.execs {
        let other = &pool[m.rng().below(pool.len())];
        // Mostly a corpus entry; a third of the time the previous mutant,
        // so edits stack.
        if last.is_empty() || !m.rng().one_in(3) {
            let base = &pool[m.rng().below(pool.len())];
            m.mutate(base, other, &mut buf);
        } else {
            m.mutate(&last, other, &mut buf);
        }
        record(&mut stats, &buf);
        std::mem::swap(&mut last, &mut buf);
        if stats.execs % 1024 == 0 {
            let now = Instant::now();
            if budget.time.is_some_and(|t| now - start >= t) {
                break;
            }
            if now - last_report >= every {
                stats.elapsed = now - start;
                progress(&stats);
                last_report = now;
            }
        }
    }
    stats.elapsed = start.elapsed();
    stats
}

/// Writes a crash's input as `<dir>/<target>-<hash>` and returns the path.
pub fn save_crash(dir: &Path, target: &Target, crash: &Crash) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let hash = crash.input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let path = dir.join(format!("{}-{hash:016x}", target.name));
    std::fs::write(&path, &crash.input)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boom(data: &[u8]) {
        if data.starts_with(b"boom") {
            panic!("boom at {}", data.len());
        }
    }

    const BOOM: Target = Target { name: "boom", about: "test", run: boom, dict: &[b"boom"] };

    #[test]
    fn panics_are_caught_and_grouped() {
        assert_eq!(run_one(&BOOM, b"fine"), None);
        let msg = run_one(&BOOM, b"boom!").unwrap();
        assert!(msg.ends_with("boom at 5"), "{msg}");
        let corpus = vec![b"boom1".to_vec(), b"boom22".to_vec(), b"ok".to_vec()];
        let s = campaign(&BOOM, &corpus, 1, Budget { execs: 3, ..Budget::default() }, Duration::MAX, &mut |_| {});
        assert_eq!((s.execs, s.replayed, s.panics(), s.crashes.len()), (3, 3, 2, 1));
        assert_eq!(s.crashes[0].input, b"boom1");
    }

    #[test]
    fn budget_counts_executions() {
        let s = campaign(
            &BOOM,
            &[b"x".to_vec()],
            9,
            Budget { execs: 5000, ..Budget::default() },
            Duration::MAX,
            &mut |_| {},
        );
        assert_eq!(s.execs, 5000);
    }
}
