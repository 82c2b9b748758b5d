//! The CI fuzz smoke run: every target replays its whole corpus, then runs
//! a fixed number of mutants from a fixed seed (the same inputs every time),
//! and nothing may panic. `XFERSTATS_FUZZ_SMOKE_EXECS` sets the number of
//! mutants per target (default 3000).

use std::path::PathBuf;
use std::time::Duration;

use xferstats_fuzz::engine::{campaign, load_corpus, Budget};
use xferstats_fuzz::targets::TARGETS;

#[test]
fn every_target_survives_its_corpus_and_fixed_mutants() {
    let mutants: u64 = std::env::var("XFERSTATS_FUZZ_SMOKE_EXECS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let mut failures = Vec::new();
    for t in TARGETS {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus").join(t.name);
        let corpus = load_corpus(&[dir]).unwrap();
        assert!(!corpus.is_empty(), "{}: empty corpus", t.name);
        let budget = Budget { execs: corpus.len() as u64 + mutants, ..Budget::default() };
        let s = campaign(t, &corpus, 0x5eed, budget, Duration::MAX, &mut |_| {});
        println!("{:<17} {} corpus + {} mutants, {} panics", t.name, s.replayed, s.execs - s.replayed, s.panics());
        assert_eq!(s.replayed, corpus.len() as u64);
        for c in s.crashes {
            failures.push(format!(
                "{}: {} ({} inputs), first: {:?}",
                t.name,
                c.message,
                c.hits,
                String::from_utf8_lossy(&c.input)
            ));
        }
    }
    assert!(failures.is_empty(), "panics:\n{}", failures.join("\n"));
}
