//! The rotation-torture test of issue 14.6: a writer replays the lines of
//! the shared real samples (one log per format: rsyncd, syslog auth.log,
//! vsftpd, xferlog, ProFTPD, ProFTPD ExtendedLog, SFTPGo) in bursts and
//! pauses, with lines split in two writes, while a rotator cycles through
//! every rotation style of issue 14.1; `xferstats follow` is SIGKILLed at
//! random moments and restarted (at least ten times), and on PostgreSQL the
//! server is stopped for seconds. Afterwards the report by day, user and
//! protocol equals a batch import of the sample files, and the raw event
//! counts are equal: nothing lost, nothing doubled. Bounded to a couple of
//! minutes; the random choices are seeded (printed on failure).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xferstats::enrich::hostkey::HostKey;
use xferstats::input::content_hash;

use crate::follow::{terminate, wait_until_why};
use crate::rotation::Prng;
use crate::util::{gzip, realogs, Env, Running, TEST_HOST_KEY};

/// Kills of the follower at least.
const KILLS: u32 = 10;

/// The sample replayed into each followed log (by name in the log dir).
fn streams() -> Option<Vec<(&'static str, PathBuf)>> {
    let r = realogs()?;
    let sftpgo = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sftpgo/sftpgo.log");
    Some(vec![
        ("rsyncd.log", r.join("rsync/rsyncd-default.log")),
        ("auth.log", r.join("ssh/syslog/auth.log")),
        ("vsftpd.log", r.join("vsftpd/own/vsftpd.log")),
        ("xferlog", r.join("vsftpd/std/xferlog")),
        ("proftpd.log", r.join("proftpd/proftpd.log")),
        ("extended.log", r.join("proftpd/extended.log")),
        ("sftpgo.log", sftpgo),
    ])
}

/// The rotation styles of issue 14.1, cycled through.
#[derive(Debug, Clone, Copy)]
enum Style {
    /// rsyslog: `log` → `log.1`; the last `.1` → `.N.gz` first.
    DelayCompress,
    /// `log` → `log.N.gz` at once.
    RenameGzip,
    /// Copy to `log.N`, truncate `log`.
    CopyTruncate,
    /// Truncated and written again, no copy (after everything was read).
    TruncateRewrite,
    /// Removed; the next line creates it on a free inode (after
    /// everything was read).
    InodeReuse,
    /// SFTPGo's lumberjack: `name-TIMESTAMP.ext`, gzipped at the next turn.
    Timestamped,
    /// Moved out of the directory for a while, then written again (after
    /// everything was read).
    Disappear,
}

const STYLES: [Style; 7] = [
    Style::DelayCompress,
    Style::RenameGzip,
    Style::CopyTruncate,
    Style::TruncateRewrite,
    Style::InodeReuse,
    Style::Timestamped,
    Style::Disappear,
];

/// What the tests read of a store: one number.
type Number<'a> = &'a (dyn Fn(&str) -> i64 + Sync);

/// Whether the store's ledger has read every complete line of every file
/// in `dir` (plain or gzipped), per content: the furthest copy of each
/// content counts.
fn all_read(dir: &Path, number: Number<'_>) -> Result<(), String> {
    let key = HostKey::new(TEST_HOST_KEY.as_bytes()).id_key();
    let mut furthest: BTreeMap<i64, (usize, String)> = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let Ok(raw) = std::fs::read(e.path()) else { continue };
        let data = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            let mut d = flate2::read::MultiGzDecoder::new(&raw[..]);
            if std::io::Read::read_to_end(&mut d, &mut out).is_err() {
                return Err(format!("{} is still being written", e.path().display()));
            }
            out
        } else {
            raw
        };
        let Some(first) = data.iter().position(|&c| c == b'\n') else { continue };
        let complete = data.iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
        // The input's fingerprint: the complete lines of its first
        // kilobyte once it holds one, else its first line.
        let span = data.get(..1024).and_then(|s| s.iter().rposition(|&c| c == b'\n'));
        let fp = content_hash(&key, &data[..=span.unwrap_or(first)]) as i64;
        let f = furthest.entry(fp).or_default();
        if complete >= f.0 {
            *f = (complete, e.file_name().to_string_lossy().into_owned());
        }
    }
    for (fp, (len, name)) in &furthest {
        let offset = number(&format!("SELECT \"offset\" FROM ledger WHERE fingerprint = {fp}"));
        if offset != *len as i64 {
            return Err(format!("{name}: ledger offset {offset} of {len} complete bytes (fingerprint {fp})"));
        }
    }
    Ok(())
}

/// The writer and rotator.
struct Writer<'a> {
    dir: PathBuf,
    rng: Prng,
    /// Per stream: its name, the sample's lines, how many were written.
    streams: Vec<(&'static str, Vec<Vec<u8>>, usize)>,
    turn: usize,
    /// Suffix counter of rotated names.
    seq: u32,
    /// Files whose gzip is due at their next rotation (delaycompress, SFTPGo).
    to_gzip: Vec<PathBuf>,
    number: Number<'a>,
    log: PathBuf,
    /// Set while waiting for the follower to read everything: no kills
    /// then (a loaded machine could otherwise kill every start before it
    /// caught up).
    hold: &'a AtomicBool,
}

impl Writer<'_> {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Appends up to `n` lines of stream `s`, the last possibly in two
    /// writes; whether any was left.
    fn write(&mut self, s: usize, n: usize) -> bool {
        let (name, lines, done) = &self.streams[s];
        let (name, from) = (*name, *done);
        let upto = (from + n).min(lines.len());
        if from == upto {
            return false;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.path(name)).unwrap();
        for (k, l) in self.streams[s].1[from..upto].iter().enumerate() {
            if k + 1 == upto - from && l.len() > 4 && self.rng.below(3) == 0 {
                // The reader may see the first half alone.
                let cut = 1 + self.rng.below(l.len() as u64 - 2) as usize;
                f.write_all(&l[..cut]).unwrap();
                f.flush().unwrap();
                std::thread::sleep(Duration::from_millis(self.rng.below(30)));
                f.write_all(&l[cut..]).unwrap();
            } else {
                f.write_all(l).unwrap();
            }
        }
        self.streams[s].2 = upto;
        true
    }

    /// Rotates stream `s`'s log in `style`.
    fn rotate(&mut self, s: usize, style: Style) {
        let name = self.streams[s].0;
        let p = self.path(name);
        if !p.exists() {
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        let gz_later = |w: &mut Writer<'_>, at: PathBuf| {
            for old in std::mem::take(&mut w.to_gzip) {
                if old.exists() {
                    gzip_file(&old);
                }
            }
            w.to_gzip.push(at);
        };
        match style {
            Style::DelayCompress => {
                let to = self.path(&format!("{name}.{seq}"));
                std::fs::rename(&p, &to).unwrap();
                gz_later(self, to);
            }
            Style::RenameGzip => {
                let to = self.path(&format!("{name}.{seq}"));
                std::fs::rename(&p, &to).unwrap();
                gzip_file(&to);
            }
            Style::CopyTruncate => {
                std::fs::copy(&p, self.path(&format!("{name}.{seq}"))).unwrap();
                std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(0).unwrap();
            }
            Style::TruncateRewrite | Style::InodeReuse | Style::Disappear => {
                // Without a copy, lines not read yet would be lost for
                // any reader: wait until the follower has them.
                let (dir, number) = (self.dir.clone(), self.number);
                self.hold.store(true, Ordering::SeqCst);
                wait_until_why("everything read before a destructive rotation", &self.log, || all_read(&dir, number));
                self.hold.store(false, Ordering::SeqCst);
                match style {
                    Style::TruncateRewrite => {
                        std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(0).unwrap();
                    }
                    Style::InodeReuse => std::fs::remove_file(&p).unwrap(),
                    _ => {
                        let away = self.dir.with_extension(format!("away{seq}"));
                        std::fs::rename(&p, &away).unwrap();
                        std::thread::sleep(Duration::from_millis(self.rng.below(1500)));
                        std::fs::remove_file(&away).unwrap();
                    }
                }
            }
            Style::Timestamped => {
                let (stem, ext) = name.split_once('.').unwrap_or((name, "log"));
                let to = self.path(&format!("{stem}-2026-11-29T19-{:02}-{:02}.000.{ext}", seq / 60 % 60, seq % 60));
                std::fs::rename(&p, &to).unwrap();
                gz_later(self, to);
            }
        }
    }
}

/// `gzip FILE`: `FILE.gz` written, then `FILE` removed.
fn gzip_file(p: &Path) {
    let data = std::fs::read(p).unwrap();
    let mut gz = p.as_os_str().to_owned();
    gz.push(".gz");
    std::fs::write(&gz, gzip(&data)).unwrap();
    std::fs::remove_file(p).unwrap();
}

/// The sample's lines, each with its newline.
fn lines_of(p: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(p).unwrap();
    data.split_inclusive(|&c| c == b'\n').map(<[u8]>::to_vec).collect()
}

/// Runs the torture against `env`'s store; `number` reads one number from
/// it; `outage` stops the store server for a while (called once, mid-run).
fn torture(env: &Env, number: Number<'_>, outage: Option<&(dyn Fn() + Sync)>) {
    let Some(streams) = streams() else { return };
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("torture seed {seed}");
    let dir = env.path("logs");
    std::fs::create_dir(&dir).unwrap();
    let log = env.path("follow.err");
    let names: Vec<PathBuf> = streams.iter().map(|(n, _)| dir.join(n)).collect();
    let mut args: Vec<&OsStr> =
        vec![OsStr::new("--rotate-wait"), OsStr::new("1"), OsStr::new("--flush-interval"), OsStr::new("0.5")];
    // SFTPGo's logs by glob (its time-stamped copies included), the others
    // by name.
    let glob = dir.join("sftpgo*");
    args.extend(names.iter().filter(|p| !p.ends_with("sftpgo.log")).map(|p| p.as_os_str()));
    args.push(glob.as_os_str());
    let child: Mutex<Option<Running>> = Mutex::new(Some(env.spawn_follow(&args, &log)));
    let done = AtomicBool::new(false);
    let kills = AtomicU32::new(0);
    let hold = AtomicBool::new(false);
    let mut w = Writer {
        dir: dir.clone(),
        rng: Prng(seed),
        streams: streams.iter().map(|(n, p)| (*n, lines_of(p), 0)).collect(),
        turn: 0,
        seq: 0,
        to_gzip: Vec::new(),
        number,
        log: log.clone(),
        hold: &hold,
    };
    /// Sets its flag when dropped: a failing writer stops the killer too.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    std::thread::scope(|scope| {
        let _stop_killer = Done(&done);
        // The killer: SIGKILL at random moments, restart (also after the
        // follower exited on its own, e.g. started during an outage).
        // A follower killed before it recorded the names it follows was
        // never a follower of them (a first start does not import what
        // was rotated before it): the first kill waits for that record.
        scope.spawn(|| {
            let mut rng = Prng(seed ^ 0xdead_beef);
            let mut next_kill = Instant::now() + Duration::from_millis(800 + rng.below(2500));
            let mut recorded = false;
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                recorded = recorded || number("SELECT COUNT(*) FROM session_state WHERE scope LIKE 'follow@%'") > 0;
                let mut c = child.lock().unwrap();
                let exited = c.as_mut().unwrap().try_wait().unwrap().is_some();
                if exited || (recorded && Instant::now() >= next_kill && !hold.load(Ordering::SeqCst)) {
                    if !exited {
                        let mut old = c.take().unwrap();
                        old.kill().unwrap();
                        old.wait().unwrap();
                        kills.fetch_add(1, Ordering::SeqCst);
                        next_kill = Instant::now() + Duration::from_millis(800 + rng.below(2500));
                    }
                    std::thread::sleep(Duration::from_millis(rng.below(300)));
                    *c = Some(env.spawn_follow(&args, &log));
                }
            }
        });
        let total: usize = w.streams.iter().map(|s| s.1.len()).sum();
        let mut written = 0;
        let mut rotations = 0;
        let mut outage_done = false;
        while written < total || kills.load(Ordering::SeqCst) < KILLS {
            let s = w.rng.below(w.streams.len() as u64) as usize;
            let n = 1 + w.rng.below(25) as usize;
            if w.write(s, n) {
                written = w.streams.iter().map(|s| s.2).sum();
            }
            // Bursts and pauses.
            let pause = if w.rng.below(4) == 0 { 0 } else { w.rng.below(450) };
            std::thread::sleep(Duration::from_millis(pause));
            if w.rng.below(6) == 0 {
                let style = STYLES[w.turn % STYLES.len()];
                w.turn += 1;
                let s = w.rng.below(w.streams.len() as u64) as usize;
                w.rotate(s, style);
                rotations += 1;
            }
            if let (false, Some(outage)) = (outage_done, outage) {
                if written * 5 >= total * 2 {
                    // The writer goes on meanwhile.
                    outage_done = true;
                    scope.spawn(outage);
                }
            }
        }
        assert!(rotations >= STYLES.len(), "{rotations} rotations");
        hold.store(true, Ordering::SeqCst);
        wait_until_why("the follower to read everything", &log, || all_read(&dir, number));
        done.store(true, Ordering::SeqCst);
    });
    let last = child.lock().unwrap().take().unwrap();
    let status = terminate(last, &log);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status}; seed {seed}");
    let said = |what: &str| text.matches(what).count();
    eprintln!(
        "{} kills; follow said: {} rotated, {} copies read, {} caught up after a restart, {} outages, {} finished",
        kills.load(Ordering::SeqCst),
        said("rotated"),
        said("from its copy"),
        said("caught up"),
        said("store unavailable"),
        said("finished ")
    );

    // The reference: a batch import of the same samples.
    let batch = Env::new();
    let samples: Vec<String> = streams.iter().map(|(_, p)| p.display().to_string()).collect();
    batch.ingest(&samples.iter().map(String::as_str).collect::<Vec<_>>());
    let conn = rusqlite::Connection::open(batch.db()).unwrap();
    let count = |t: &str| conn.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get::<_, i64>(0)).unwrap();
    let (transfers, logins) = (count("transfers"), count("logins"));
    assert!(transfers > 100 && logins > 50, "the samples hold events");
    let by = "day,user,protocol";
    let (got, want) = (env.report_json(by), batch.report_json(by));
    if got != want {
        let (g, w) = (got.as_array().unwrap(), want.as_array().unwrap());
        let only = |a: &Vec<serde_json::Value>, b: &Vec<serde_json::Value>| -> Vec<String> {
            a.iter().filter(|r| !b.contains(r)).map(|r| r.to_string()).collect()
        };
        std::fs::write(env.path("../torture-follow.log"), &text).ok();
        panic!(
            "seed {seed}: the report differs from the batch import's\nfollow only:\n{}\nbatch only:\n{}",
            only(g, w).join("\n"),
            only(w, g).join("\n")
        );
    }
    assert_eq!(number("SELECT COUNT(*) FROM transfers"), transfers, "seed {seed}");
    assert_eq!(number("SELECT COUNT(*) FROM logins"), logins, "seed {seed}");
}

#[test]
fn rotation_torture_on_sqlite() {
    let env = Env::new();
    let db = env.db();
    let number = move |sql: &str| -> i64 {
        if !db.exists() {
            return -1;
        }
        let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)).ok().flatten().unwrap_or(-1)
    };
    torture(&env, &number, None);
}

#[test]
fn rotation_torture_on_postgres_with_an_outage() {
    let Some(pg) = crate::pg::private() else { return };
    let name = pg.fresh_db("torture");
    let env = Env::with_store(pg.url(&name));
    let up = AtomicBool::new(true);
    let number = |sql: &str| -> i64 {
        if !up.load(Ordering::SeqCst) {
            return -1;
        }
        // The server may stop between the check above and the query.
        pg.try_psql(&name, sql).ok().and_then(|out| out.parse().ok()).unwrap_or(-1)
    };
    let outage = || {
        up.store(false, Ordering::SeqCst);
        pg.stop();
        std::thread::sleep(Duration::from_secs(4));
        pg.restart();
        up.store(true, Ordering::SeqCst);
    };
    torture(&env, &number, Some(&outage));
}
