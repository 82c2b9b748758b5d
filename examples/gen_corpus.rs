//! Writes a synthetic rsyncd log (the benchmark corpus) to a file, for
//! timing `xferstats ingest` on it:
//!
//! ```text
//! cargo run --release --example gen_corpus -- --style logfile|bsd|rfc3339 --mb 50 --out FILE [--seed N]
//! ```
//!
//! `--mb` counts MiB (2^20 bytes); the file ends at the first line boundary
//! past that size. `--out -` writes to standard output. The same style, size
//! and seed always give the same bytes; without `--seed`, `--mb 50` writes
//! exactly the corpus `cargo bench --bench parse` measures.

#[path = "../benches/corpus.rs"]
mod corpus;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use corpus::Style;

const USAGE: &str = "usage: gen_corpus --style logfile|bsd|rfc3339 --mb N --out FILE|- [--seed N]";

struct Args {
    style: Style,
    bytes: usize,
    out: String,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut style = None;
    let mut mb: Option<f64> = None;
    let mut out = None;
    let mut seed = corpus::DEFAULT_SEED;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        if key == "-h" || key == "--help" {
            return Err(String::new());
        }
        let mut value = || inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{key} needs a value"));
        match key.as_str() {
            "--style" => {
                let v = value()?;
                style = Some(Style::from_name(&v).ok_or_else(|| format!("unknown style {v:?}"))?);
            }
            "--mb" => {
                let v = value()?;
                mb = Some(v.parse().ok().filter(|m: &f64| *m > 0.0).ok_or_else(|| format!("bad --mb {v:?}"))?);
            }
            "--out" => out = Some(value()?),
            "--seed" => {
                let v = value()?;
                seed = v.parse().map_err(|_| format!("bad --seed {v:?}"))?;
            }
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    Ok(Args {
        style: style.ok_or("--style is required")?,
        bytes: (mb.ok_or("--mb is required")? * 1024.0 * 1024.0) as usize,
        out: out.ok_or("--out is required")?,
        seed,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("gen_corpus: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) };
        }
    };
    let started = Instant::now();
    let result = if args.out == "-" {
        corpus::write_to(args.style, args.bytes, args.seed, BufWriter::new(io::stdout().lock()))
    } else {
        File::create(&args.out)
            .and_then(|f| corpus::write_to(args.style, args.bytes, args.seed, BufWriter::with_capacity(1 << 20, f)))
    };
    match result {
        Ok(n) => {
            let _ = writeln!(
                io::stderr(),
                "gen_corpus: wrote {n} bytes ({:.1} MB) of {} style to {} in {:.2} s",
                n as f64 / 1e6,
                args.style.name(),
                args.out,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_corpus: {}: {e}", args.out);
            ExitCode::from(1)
        }
    }
}
