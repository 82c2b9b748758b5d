//! Model-based test of reading logs that rotate between runs: seeded random
//! sequences of appends, partial lines, rename rotations, gzip of rotated
//! files, copytruncate, truncate-and-rewrite and runs of `xferstats ingest`
//! over the files present (as cron with a glob would). After every run the
//! store holds exactly the complete lines ever seen by a run (each line one
//! xferlog event), no line was read twice (nothing "already present"), and
//! the ledger entry of every file ends after its last complete line.

use std::collections::{BTreeMap, BTreeSet};

use xferstats::enrich::hostkey::HostKey;
use xferstats::input::{Input, Source};

use crate::util::{gzip, Env, TEST_HOST_KEY};

/// Rotated files kept (`log.1` … `log.KEEP`, gzipped or not).
const KEEP: u32 = 3;
/// Operations per sequence.
const STEPS: usize = 40;

/// splitmix64: a small deterministic generator, no dependency.
pub struct Prng(pub u64);

impl Prng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// xferlog line `n`: one download of `/data/f<n>`, `n` seconds into 2026.
pub fn line(n: u64) -> String {
    let (h, m, s) = (n / 3600, n / 60 % 60, n % 60);
    format!("Thu Jan  1 {h:02}:{m:02}:{s:02} 2026 1 192.0.2.7 {} /data/f{n} b _ o r alice ftp 0 * c\n", 100 + n)
}

/// One file of the model: its (decompressed) content.
#[derive(Clone)]
struct File {
    content: Vec<u8>,
    gz: bool,
}

impl File {
    /// Bytes up to and including the last newline.
    fn complete(&self) -> &[u8] {
        let end = self.content.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
        &self.content[..end]
    }
}

struct Model {
    env: Env,
    rng: Prng,
    next: u64,
    /// Files by name (`log`, `log.1`, `log.2.gz`, …).
    files: BTreeMap<String, File>,
    /// The files as last written to disk.
    disk: BTreeMap<String, File>,
    /// Events the store must hold: the paths of the complete lines runs saw.
    stored: BTreeSet<String>,
    /// A line of `log` written in part: the rest still to write.
    partial: Option<Vec<u8>>,
    runs: u32,
}

impl Model {
    fn new(seed: u64) -> Model {
        Model {
            env: Env::new(),
            rng: Prng(seed),
            next: 0,
            files: BTreeMap::new(),
            disk: BTreeMap::new(),
            stored: BTreeSet::new(),
            partial: None,
            runs: 0,
        }
    }

    /// Writes the model's files to disk: a plain file that only grew by
    /// appending what is new (the reader must see a file grow, not a new
    /// file), any other change whole.
    fn sync(&mut self) {
        let dir = self.env.dir.path().to_path_buf();
        for name in self.disk.keys() {
            if !self.files.contains_key(name) {
                std::fs::remove_file(dir.join(name)).unwrap();
            }
        }
        for (name, f) in &self.files {
            let p = dir.join(name);
            match self.disk.get(name) {
                Some(old) if old.content == f.content && old.gz == f.gz => {}
                Some(old) if !f.gz && !old.gz && f.content.starts_with(&old.content) => {
                    use std::io::Write;
                    let mut w = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
                    w.write_all(&f.content[old.content.len()..]).unwrap();
                }
                _ if f.gz => std::fs::write(&p, gzip(&f.content)).unwrap(),
                _ => std::fs::write(&p, &f.content).unwrap(),
            }
        }
        self.disk = self.files.clone();
    }

    fn log(&mut self) -> &mut Vec<u8> {
        &mut self.files.entry("log".into()).or_insert(File { content: Vec::new(), gz: false }).content
    }

    fn new_line(&mut self) -> Vec<u8> {
        self.next += 1;
        line(self.next).into_bytes()
    }

    /// The writer finishes the line it is writing.
    fn complete_partial(&mut self) {
        if let Some(rest) = self.partial.take() {
            self.log().extend_from_slice(&rest);
        }
    }

    fn append(&mut self) {
        self.complete_partial();
        for _ in 0..1 + self.rng.below(4) {
            let l = self.new_line();
            self.log().extend_from_slice(&l);
        }
    }

    fn append_partial(&mut self) {
        self.complete_partial();
        let mut l = self.new_line();
        let rest = l.split_off(1 + self.rng.below(l.len() as u64 - 1) as usize);
        self.log().extend_from_slice(&l);
        self.partial = Some(rest);
    }

    /// `log.i` → `log.i+1` (the oldest dropped), keeping compression.
    fn shift(&mut self) {
        for i in (1..=KEEP).rev() {
            for gz in ["", ".gz"] {
                if let Some(f) = self.files.remove(&format!("log.{i}{gz}")) {
                    if i < KEEP {
                        self.files.insert(format!("log.{}{gz}", i + 1), f);
                    }
                }
            }
        }
    }

    fn rename_rotate(&mut self) {
        self.complete_partial();
        self.shift();
        if let Some(f) = self.files.remove("log") {
            self.files.insert("log.1".into(), f);
        }
    }

    fn copytruncate(&mut self) {
        self.complete_partial();
        self.shift();
        if let Some(f) = self.files.get_mut("log") {
            let copy = f.clone();
            f.content.clear();
            self.files.insert("log.1".into(), copy);
        }
    }

    fn gzip_rotated(&mut self) {
        let plain = (1..=KEEP).map(|i| format!("log.{i}")).find(|n| self.files.contains_key(n));
        if let Some(name) = plain {
            let mut f = self.files.remove(&name).unwrap();
            f.gz = true;
            self.files.insert(format!("{name}.gz"), f);
        }
    }

    fn truncate_rewrite(&mut self) {
        self.partial = None;
        self.log().clear();
        self.append();
    }

    /// `xferstats ingest` over the files present, then the checks.
    fn run(&mut self, history: &str) {
        self.sync();
        if self.files.is_empty() {
            return; // the glob matches nothing
        }
        self.runs += 1;
        let names: Vec<String> = self.files.keys().cloned().collect();
        let paths: Vec<String> = names.iter().map(|n| self.env.path(n).to_str().unwrap().to_string()).collect();
        let mut args: Vec<&str> = vec!["--format", "xferlog"];
        args.extend(paths.iter().map(String::as_str));
        let before = self.stored.len();
        for f in self.files.values() {
            for l in f.complete().split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                let path = std::str::from_utf8(l).unwrap().split(' ').nth(9).unwrap();
                self.stored.insert(path.to_string());
            }
        }
        let out = self.env.ingest(&args).success();
        let summary = crate::util::stderr(&out);
        let count = |what: &str| -> u64 {
            let at = summary.find(what).unwrap_or_else(|| panic!("{what} in {summary}"));
            summary[..at].rsplit(' ').next().unwrap().parse().unwrap()
        };
        let at = format!("after {history}");
        assert_eq!(count(" already present"), 0, "a line read twice {at}: {summary}");
        assert_eq!(count(" new events"), (self.stored.len() - before) as u64, "{at}: {summary}");

        let conn = rusqlite::Connection::open(self.env.db()).unwrap();
        let mut q = conn.prepare("SELECT path FROM transfers").unwrap();
        let got: BTreeSet<String> = q.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(got, self.stored, "{at}");

        let key = HostKey::new(TEST_HOST_KEY.as_bytes()).id_key();
        for (name, f) in &self.files {
            let complete = f.complete();
            if !complete.contains(&b'\n') {
                continue;
            }
            // The file's identity as an import computes it (its first
            // kilobyte of lines, or its first line while shorter).
            let input = Input::open(Source::Path(self.env.path(name)), std::time::Duration::from_secs(1)).unwrap();
            let fp = input.fingerprint(&key).unwrap() as i64;
            let (offset, lines): (i64, i64) = conn
                .query_row("SELECT offset, lines FROM ledger WHERE fingerprint = ?1", [fp], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap_or_else(|e| panic!("ledger entry of {name} {at}: {e}"));
            let want_lines = complete.iter().filter(|&&c| c == b'\n').count() as i64;
            assert_eq!((offset, lines), (complete.len() as i64, want_lines), "ledger of {name} {at}");
        }
    }
}

fn sequence(seed: u64) {
    let mut m = Model::new(seed);
    let mut history = Vec::new();
    for _ in 0..STEPS {
        let op = match m.rng.below(10) {
            0..=2 => {
                m.append();
                "append"
            }
            3 => {
                m.append_partial();
                "partial"
            }
            4 => {
                m.rename_rotate();
                "rotate"
            }
            5 => {
                m.gzip_rotated();
                "gzip"
            }
            6 => {
                m.copytruncate();
                "copytruncate"
            }
            7 => {
                m.truncate_rewrite();
                "truncate-rewrite"
            }
            _ => {
                history.push("run");
                m.run(&format!("seed {seed}: {}", history.join(" ")));
                continue;
            }
        };
        history.push(op);
        m.sync();
    }
    history.push("run");
    m.run(&format!("seed {seed}: {}", history.join(" ")));
    assert!(m.runs >= 3 && m.next > 20, "seed {seed} exercised too little");
}

#[test]
fn every_complete_line_is_read_exactly_once_across_rotations() {
    for seed in 1..=6 {
        sequence(seed);
    }
}
