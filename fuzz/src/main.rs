//! `xferstats-fuzz`: runs fuzz campaigns and replays inputs.
//!
//! ```text
//! xferstats-fuzz list
//! xferstats-fuzz run TARGET [--execs N] [--seconds S] [--seed N] [--corpus DIR]... [--crashes DIR] [--save-last FILE]
//! xferstats-fuzz replay TARGET FILE|DIR...
//! xferstats-fuzz state-seed PICK LOG > corpus/state/NAME
//! ```
//!
//! `run` reads `corpus/TARGET` (beside this crate) unless `--corpus` names
//! directories, prints progress to stderr and one summary line to stdout,
//! writes each distinct crash's input to `--crashes` (default
//! `crashes/`), and exits 1 if anything panicked or one input took more
//! than five seconds, 3 if one hung (then `--execs N --save-last FILE` with the
//! same seed writes out execution N's input).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use xferstats_fuzz::engine::{campaign, load_corpus, run_one, save_crash, Budget, Stats, EXECS};
use xferstats_fuzz::targets::{find, state_seed, Target, TARGETS};

const USAGE: &str = "usage: xferstats-fuzz list
       xferstats-fuzz run TARGET [--execs N] [--seconds S] [--seed N] [--corpus DIR]... [--crashes DIR] [--save-last FILE]
       xferstats-fuzz replay TARGET FILE|DIR...
       xferstats-fuzz state-seed PICK LOG";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xferstats-fuzz: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn target(name: Option<&String>) -> Result<&'static Target, String> {
    let name = name.ok_or("no target named")?;
    find(name).ok_or_else(|| format!("no target '{name}' (see xferstats-fuzz list)"))
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    match args.first().map(String::as_str) {
        Some("list") => {
            for t in TARGETS {
                println!("{:<17} {}", t.name, t.about);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some("run") => fuzz(target(args.get(1))?, &args[2..]),
        Some("replay") => replay(target(args.get(1))?, &args[2..]),
        Some("state-seed") => {
            let pick: u8 = number("PICK", args.get(1))?;
            let log = args.get(2).ok_or("state-seed needs a log file")?;
            let data = std::fs::read(log).map_err(|e| format!("{log}: {e}"))?;
            std::io::Write::write_all(&mut std::io::stdout(), &state_seed(pick, &data)).map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        _ => Err("no command".into()),
    }
}

fn number<T: std::str::FromStr>(flag: &str, v: Option<&String>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.replace('_', "").parse().map_err(|_| format!("{flag} '{v}' is not a number"))
}

fn fuzz(t: &'static Target, args: &[String]) -> Result<ExitCode, String> {
    let mut budget = Budget { execs: u64::MAX, ..Budget::default() };
    let mut seed = 1u64;
    let mut corpus_dirs: Vec<PathBuf> = Vec::new();
    let mut crashes = crate_dir().join("crashes");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--execs" => budget.execs = number("--execs", it.next())?,
            "--seconds" => budget.time = Some(Duration::from_secs_f64(number("--seconds", it.next())?)),
            "--seed" => seed = number("--seed", it.next())?,
            "--corpus" => corpus_dirs.push(it.next().ok_or("--corpus needs a directory")?.into()),
            "--crashes" => crashes = it.next().ok_or("--crashes needs a directory")?.into(),
            "--save-last" => budget.save_last = Some(it.next().ok_or("--save-last needs a file")?.into()),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    if budget.execs == u64::MAX && budget.time.is_none() {
        return Err("give --execs or --seconds".into());
    }
    if corpus_dirs.is_empty() {
        corpus_dirs.push(crate_dir().join("corpus").join(t.name));
    }
    let corpus = load_corpus(&corpus_dirs).map_err(|e| format!("reading the corpus: {e}"))?;
    eprintln!("{}: {} corpus entries, seed {seed}", t.name, corpus.len());
    watchdog(t);
    let every = Duration::from_secs(30);
    let stats = campaign(t, &corpus, seed, budget, every, &mut |s| eprintln!("{}", summary(t, s)));
    println!("{}", summary(t, &stats));
    for c in &stats.crashes {
        let path = save_crash(&crashes, t, c).map_err(|e| format!("saving a crash: {e}"))?;
        eprintln!("crash ({} inputs): {}\n  input: {}", c.hits, c.message, path.display());
    }
    // A single input this slow is a hang or a quadratic path: keep it too.
    let slow = stats.slowest.0 >= SLOW;
    if slow {
        let path = crashes.join(format!("{}-slowest", t.name));
        std::fs::create_dir_all(&crashes)
            .and_then(|()| std::fs::write(&path, &stats.slowest.1))
            .map_err(|e| e.to_string())?;
        eprintln!("slow input ({:?}): {}", stats.slowest.0, path.display());
    }
    Ok(if stats.crashes.is_empty() && !slow { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Stops the process when one input runs for longer than [`HANG`]: says
/// which execution it was, so that `--execs N --save-last FILE` with the
/// same seed writes the input out.
fn watchdog(t: &'static Target) {
    std::thread::spawn(move || {
        let mut seen = EXECS.load(Ordering::Relaxed);
        loop {
            std::thread::sleep(HANG);
            let now = EXECS.load(Ordering::Relaxed);
            if now == seen {
                eprintln!("{}: execution {now} has run for more than {HANG:?}: a hang", t.name);
                std::process::exit(3);
            }
            seen = now;
        }
    });
}

/// Time without progress after which the watchdog stops a campaign.
const HANG: Duration = Duration::from_secs(20);

/// Time above which one input counts as a hang (wall time: a machine
/// busy with other work stretches it, so it is generous).
const SLOW: Duration = Duration::from_secs(5);

fn summary(t: &Target, s: &Stats) -> String {
    let secs = s.elapsed.as_secs_f64();
    format!(
        "target={} execs={} secs={secs:.1} execs_per_sec={:.0} panics={} distinct={} slowest_us={}",
        t.name,
        s.execs,
        s.execs as f64 / secs.max(1e-9),
        s.panics(),
        s.crashes.len(),
        s.slowest.0.as_micros()
    )
}

fn replay(t: &'static Target, paths: &[String]) -> Result<ExitCode, String> {
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths.iter().map(Path::new) {
        if p.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(p.to_path_buf());
        }
    }
    let mut failed = 0;
    for f in &files {
        let data = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        if let Some(msg) = run_one(t, &data) {
            failed += 1;
            println!("{}: PANIC {msg}", f.display());
        }
    }
    println!("{}: {} inputs replayed, {failed} panicked", t.name, files.len());
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
