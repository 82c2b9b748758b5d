//! Deterministic generator of realistic rsyncd logs, for benchmarks and for
//! timing `xferstats ingest`.
//!
//! Shared by `benches/parse.rs` and `examples/gen_corpus.rs` through
//! `#[path = "..."] mod corpus;` (no extra crates: a xorshift PRNG and
//! hand-written date arithmetic). The same `(style, target_bytes, seed)`
//! always gives the same bytes.
//!
//! What the logs hold, modelled on a real rsync 3.x daemon with `transfer
//! logging = yes` and the default `log format = %o %h [%a] %m (%u) %f %l`:
//!
//! * interleaved connections, each on its own pid (pids grow by small steps
//!   and wrap at 32768 like a default `pid_max`);
//! * `connect from`, `rsync allowed access on module`, `rsync on|to
//!   MOD/path from [user@]HOST (IP)`, `building|receiving file list`,
//!   `created directory`, per-file `send`/`recv`/`del.` lines, and the
//!   `sent N bytes  received M bytes  total size T` summary;
//! * failed logins (`auth failed on module team …`), refused modules,
//!   module listings, and the odd interrupted transfer (`rsync error: …`);
//! * about 2,000 distinct clients (IPv4, IPv6 and v4-mapped IPv6), host
//!   names `UNDETERMINED`/`UNKNOWN` or reverse names;
//! * file names with spaces, parentheses and brackets;
//! * time advancing by about one second every few lines.
//!
//! The three prefix styles rsyncd output is found in are supported: its own
//! `log file`, BSD syslog and RFC 3339 syslog (the last two with a few lines
//! of other programs mixed in, as in a shared `/var/log/syslog`).

#![allow(dead_code)]

use std::io::{self, Write};

/// Prefix style of the generated lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Style {
    /// rsyncd `log file`: `2026/11/08 07:31:44 [25900] msg`.
    LogFile,
    /// BSD syslog: `Nov  8 07:31:44 mirror1 rsyncd[25900]: msg`.
    Bsd,
    /// RFC 3339 syslog: `2026-11-08T08:31:44.123456+01:00 mirror1.example.net rsyncd[25900]: msg`.
    Rfc3339,
}

impl Style {
    /// Every style.
    pub const ALL: [Style; 3] = [Style::LogFile, Style::Bsd, Style::Rfc3339];

    /// Name used on command lines and in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Style::LogFile => "logfile",
            Style::Bsd => "bsd",
            Style::Rfc3339 => "rfc3339",
        }
    }

    /// Host field of the syslog styles (the server, not the client).
    pub fn syslog_host(self) -> &'static str {
        match self {
            Style::LogFile => "",
            Style::Bsd => "mirror1",
            Style::Rfc3339 => "mirror1.example.net",
        }
    }

    /// Looks a style up by [`Style::name`].
    pub fn from_name(s: &str) -> Option<Style> {
        Style::ALL.into_iter().find(|st| st.name().eq_ignore_ascii_case(s))
    }
}

/// Seed of the benchmark corpus (and `gen_corpus` without `--seed`).
pub const DEFAULT_SEED: u64 = 0x5eed_2026;

/// UTC second of the first generated line: 2026-11-08 07:31:44.
pub fn start_unix() -> i64 {
    days_from_civil(2026, 11, 8) * 86_400 + 7 * 3600 + 31 * 60 + 44
}

/// A reference instant (UTC seconds) to build a `Clock` with: later than
/// every line of a corpus of up to a few GB, and in the year after the
/// corpus starts, so BSD syslog years are inferred as 2026.
pub fn reference_unix() -> i64 {
    start_unix() + 60 * 86_400
}

/// A corpus of at least `target_bytes` bytes (whole lines; it ends with a
/// newline).
pub fn generate(style: Style, target_bytes: usize, seed: u64) -> Vec<u8> {
    let mut g = Generator::new(style, seed);
    let mut out = Vec::with_capacity(target_bytes + 4096);
    while out.len() < target_bytes {
        g.line(&mut out);
    }
    out
}

/// Writes the corpus [`generate`] returns to `w`, in 1 MiB pieces; returns
/// the bytes written.
pub fn write_to(style: Style, target_bytes: usize, seed: u64, mut w: impl Write) -> io::Result<u64> {
    let mut g = Generator::new(style, seed);
    let mut buf = Vec::with_capacity((1 << 20) + 4096);
    let mut written = 0usize;
    while written < target_bytes {
        buf.clear();
        while buf.len() < 1 << 20 && written + buf.len() < target_bytes {
            g.line(&mut buf);
        }
        w.write_all(&buf)?;
        written += buf.len();
    }
    w.flush()?;
    Ok(written as u64)
}

// ---------------------------------------------------------------------------
// Randomness and calendar.

/// xorshift64* (Vigna): small, fast, good enough for test data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so nearby seeds differ and 0 works.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`; modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        (self.next() >> 11) % n
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len() as u64) as usize]
    }

    /// A byte count spread over 100 B – 4 GB (log-uniform-ish).
    fn size(&mut self) -> u64 {
        let digits = self.range(2, 9) as u32;
        let lo = 10u64.pow(digits - 1);
        lo + self.below(lo * 9) + if digits == 9 { self.below(3_000_000_000) } else { 0 }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// ---------------------------------------------------------------------------
// Content pools.

const CLIENTS: usize = 2_000;
const PID_MAX: u32 = 32_768;
/// Offset of the RFC 3339 style's local time, seconds east of UTC.
const RFC3339_OFFSET: i64 = 3600;

struct Client {
    host: String,
    ip: String,
}

fn make_clients(rng: &mut Rng) -> Vec<Client> {
    const DOMAINS: [&str; 8] = [
        "dyn.example.net",
        "cust.example.com",
        "pool.example.org",
        "dsl.example.de",
        "fiber.example.fr",
        "cloud.example.io",
        "campus.example.edu",
        "static.example.jp",
    ];
    const NAMED: [&str; 8] = ["mirror", "build", "backup", "ci-runner", "ws", "nas", "lab", "gw"];
    (0..CLIENTS)
        .map(|i| {
            let kind = rng.below(100);
            let ip = if kind < 62 {
                // Spread over documentation and public-looking ranges.
                match rng.below(10) {
                    0 => format!("203.0.113.{}", rng.range(1, 254)),
                    1 => format!("198.51.100.{}", rng.range(1, 254)),
                    _ => format!("{}.{}.{}.{}", rng.range(11, 223), rng.below(256), rng.below(256), rng.range(1, 254)),
                }
            } else if kind < 67 {
                format!("::ffff:{}.{}.{}.{}", rng.range(11, 223), rng.below(256), rng.below(256), rng.range(1, 254))
            } else if kind < 85 {
                format!("2001:db8:{:x}:{:x}::{:x}", rng.below(0x10000), rng.below(0x10000), rng.range(1, 0xffff))
            } else {
                format!(
                    "2a0{}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
                    rng.range(1, 9),
                    rng.below(0x10000),
                    rng.below(0x10000),
                    rng.below(0x10000),
                    rng.below(0x10000),
                    rng.below(0x10000),
                    rng.below(0x10000),
                    rng.range(1, 0xffff)
                )
            };
            let host = match rng.below(100) {
                0..=54 => "UNDETERMINED".to_string(),
                55..=59 => "UNKNOWN".to_string(),
                60..=84 => format!("host-{}-{:x}.{}", i, rng.below(0x10000), DOMAINS[rng.below(8) as usize]),
                _ => {
                    format!("{}{:02}.{}", NAMED[rng.below(8) as usize], rng.below(100), DOMAINS[rng.below(8) as usize])
                }
            };
            // A repeated address in the pool is harmless (NAT, real logs have
            // them too); the pool holds about 1,950 distinct addresses.
            Client { host, ip }
        })
        .collect()
}

const MIRROR_DIRS: [&str; 10] = [
    "pub/linux/iso",
    "pub/linux/updates/x86_64",
    "pub/docs",
    "pub/dir",
    "releases/2026",
    "releases/2026/rc 2",
    "media/photos 2026",
    "data/sensors/raw",
    "data/Open Data (EU)",
    "software/tools",
];

const STEMS: [&str; 16] = [
    "my file",
    "report",
    "Budget 2027 (v3)",
    "meeting notes",
    "backup",
    "release candidate",
    "chunk",
    "disk image",
    "photo",
    "[WIP] roadmap",
    "draft final FINAL",
    "data set",
    "access",
    "IMG",
    "install-media",
    "Q4 figures",
];

const EXTS: [&str; 14] =
    ["iso", "tgz", "bin", "xlsx", "md", "pdf", "jpg", "json", "log", "part", "tar.zst", "img", "csv", "txt"];

const TEAM_USERS: [&str; 5] = ["erin", "frank", "deploy", "backup-bot", "ci"];

/// Appends a file name like `my file 12.iso` or `IMG_0042.jpg`.
fn file_name(rng: &mut Rng, out: &mut Vec<u8>) {
    let stem = rng.pick(&STEMS);
    let ext = rng.pick(&EXTS);
    let n = rng.below(10_000);
    let _ = match rng.below(5) {
        0 => write!(out, "{stem}-{n:04}.{ext}"),
        1 => write!(out, "{stem}_{n}.{ext}"),
        2 => write!(out, "{stem}.{ext}"),
        _ => write!(out, "{stem} {n}.{ext}"),
    };
}

// ---------------------------------------------------------------------------
// Sessions.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `rsync on MOD/…`: the daemon sends.
    Pull,
    /// `rsync to MOD/…`: the daemon receives.
    Push,
    /// Fails authentication on `team`.
    AuthFail,
    /// Denied / unknown module.
    Refused,
    /// `rsync host::` module listing.
    List,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Connect,
    Allowed,
    Request,
    FileList,
    CreatedDir,
    Files,
    Summary,
    Error,
    Done,
}

struct Session {
    pid: u32,
    client: usize,
    kind: Kind,
    module: &'static str,
    user: Option<&'static str>,
    /// Directory under the module (no trailing slash).
    dir: String,
    step: Step,
    files_left: u32,
    /// Bytes moved by the per-file lines so far.
    moved: u64,
    /// Ends with `rsync error` (interrupted).
    interrupted: bool,
}

/// Line generator: one call, one line.
pub struct Generator {
    style: Style,
    rng: Rng,
    clients: Vec<Client>,
    sessions: Vec<Session>,
    /// Wanted number of concurrent connections; drifts between 1 and 8.
    concurrency: usize,
    next_pid: u32,
    /// UTC seconds and sub-second micros of the current line.
    now: i64,
    micros: u32,
    lines: u64,
    /// Rendered time stamp of second `stamp_for` (without fraction).
    stamp_buf: Vec<u8>,
    stamp_for: i64,
    upload_seq: u32,
}

impl Generator {
    /// A generator writing `style` lines from `seed`.
    pub fn new(style: Style, seed: u64) -> Generator {
        let mut rng = Rng::new(seed);
        let clients = make_clients(&mut rng);
        Generator {
            style,
            rng,
            clients,
            sessions: Vec::new(),
            concurrency: 3,
            next_pid: 25_898,
            now: start_unix(),
            micros: 0,
            lines: 0,
            stamp_buf: Vec::new(),
            stamp_for: i64::MIN,
            upload_seq: 0,
        }
    }

    /// Appends one line (with its newline) to `out`.
    pub fn line(&mut self, out: &mut Vec<u8>) {
        if self.lines == 0 {
            self.prefix(out, 25_898);
            out.extend_from_slice(b"rsyncd version 3.4.1 starting, listening on port 873\n");
            self.lines += 1;
            return;
        }
        self.advance_time();
        self.lines += 1;
        if self.style != Style::LogFile && self.rng.chance(15) {
            self.foreign(out);
            return;
        }
        if self.rng.chance(20) {
            self.concurrency = self.rng.range(1, 8) as usize;
        }
        let start = self.sessions.is_empty() || (self.sessions.len() < self.concurrency && self.rng.chance(250));
        if start {
            self.start_session();
        }
        let i = if start { self.sessions.len() - 1 } else { self.rng.below(self.sessions.len() as u64) as usize };
        let pid = self.sessions[i].pid;
        self.prefix(out, pid);
        let done = self.step(i, out);
        out.push(b'\n');
        if done {
            self.sessions.swap_remove(i);
        }
    }

    /// About one second every three lines, with the occasional quiet gap.
    fn advance_time(&mut self) {
        let r = self.rng.below(1000);
        let step = match r {
            0..=659 => 0,
            660..=989 => 1,
            990..=998 => self.rng.range(2, 30),
            _ => self.rng.range(60, 300),
        };
        if step > 0 {
            self.now += step as i64;
            self.micros = self.rng.below(50_000) as u32;
        } else {
            self.micros = (self.micros + 1 + self.rng.below(60_000) as u32).min(999_999);
        }
    }

    fn alloc_pid(&mut self) -> u32 {
        loop {
            self.next_pid += self.rng.range(1, 4) as u32;
            if self.next_pid >= PID_MAX {
                self.next_pid = 300 + self.rng.below(200) as u32;
            }
            let p = self.next_pid;
            if !self.sessions.iter().any(|s| s.pid == p) {
                return p;
            }
        }
    }

    fn start_session(&mut self) {
        let pid = self.alloc_pid();
        // Frequent clients come back: a skewed pick over the pool.
        let a = self.rng.below(CLIENTS as u64);
        let b = self.rng.below(CLIENTS as u64);
        let client = if self.rng.chance(500) { a.min(b) } else { a } as usize;
        let r = self.rng.below(1000);
        let (kind, module, user) = match r {
            0..=539 => (Kind::Pull, "mirror", None),
            540..=699 => (Kind::Push, "drop", None),
            700..=819 => (Kind::Push, "team", Some(self.rng.pick(&TEAM_USERS))),
            820..=919 => (Kind::Pull, "team", Some(self.rng.pick(&TEAM_USERS))),
            920..=964 => (Kind::AuthFail, "team", None),
            965..=984 => (Kind::Refused, "restricted", None),
            _ => (Kind::List, "", None),
        };
        let dir = match (kind, module) {
            (Kind::Pull, "mirror") => self.rng.pick(&MIRROR_DIRS).to_string(),
            (Kind::Pull, _) => format!("projects/p{:03}/out", self.rng.below(200)),
            (Kind::Push, _) => {
                self.upload_seq += 1;
                match self.rng.below(3) {
                    0 => format!("uploads-{:05x}", self.upload_seq),
                    1 => format!("backup {}", self.upload_seq),
                    _ => format!("incoming/run-{}/sub dir", self.upload_seq),
                }
            }
            _ => String::new(),
        };
        let files = match self.rng.below(100) {
            0..=39 => self.rng.range(1, 3),
            40..=79 => self.rng.range(4, 12),
            80..=96 => self.rng.range(13, 40),
            _ => self.rng.range(41, 150),
        } as u32;
        let interrupted = matches!(kind, Kind::Pull | Kind::Push) && self.rng.chance(25);
        self.sessions.push(Session {
            pid,
            client,
            kind,
            module,
            user,
            dir,
            step: Step::Connect,
            files_left: files,
            moved: 0,
            interrupted,
        });
    }

    /// Writes the next message of session `i`; true when it was its last.
    fn step(&mut self, i: usize, out: &mut Vec<u8>) -> bool {
        let rng = &mut self.rng;
        let s = &mut self.sessions[i];
        let c = &self.clients[s.client];
        let (host, ip) = (c.host.as_str(), c.ip.as_str());
        let _ = match s.step {
            Step::Connect => {
                s.step = match s.kind {
                    Kind::Refused => Step::Request,
                    Kind::List => Step::Request,
                    _ => Step::Allowed,
                };
                write!(out, "connect from {host} ({ip})")
            }
            Step::Allowed => {
                s.step = Step::Request;
                write!(out, "rsync allowed access on module {} from {host} ({ip})", s.module)
            }
            Step::Request => match s.kind {
                Kind::AuthFail => {
                    s.step = Step::Done;
                    match rng.below(4) {
                        0 => write!(out, "auth failed on module team from {host} ({ip}) for trent: no matching rule"),
                        1 => write!(out, "auth failed on module team from {host} ({ip}): invalid challenge response"),
                        _ => write!(
                            out,
                            "auth failed on module team from {host} ({ip}) for {}: password mismatch",
                            rng.pick(&["frank", "erin", "admin", "root"])
                        ),
                    }
                }
                Kind::Refused => {
                    s.step = Step::Done;
                    if rng.chance(500) {
                        write!(out, "rsync denied on module restricted from {host} ({ip})")
                    } else {
                        write!(out, "unknown module 'archive' tried from {host} ({ip})")
                    }
                }
                Kind::List => {
                    s.step = Step::Done;
                    write!(out, "module-list request from {host} ({ip})")
                }
                Kind::Pull | Kind::Push => {
                    s.step = Step::FileList;
                    let verb = if s.kind == Kind::Pull { "on" } else { "to" };
                    let user = s.user.map(|u| format!("{u}@")).unwrap_or_default();
                    write!(out, "rsync {verb} {}/{}/ from {user}{host} ({ip})", s.module, s.dir)
                }
            },
            Step::FileList => {
                if s.kind == Kind::Pull {
                    s.step = Step::Files;
                    write!(out, "building file list")
                } else {
                    s.step = Step::CreatedDir;
                    write!(out, "receiving file list")
                }
            }
            Step::CreatedDir => {
                s.step = Step::Files;
                if rng.chance(600) {
                    write!(out, "created directory /{}", s.dir)
                } else {
                    // A push into an existing directory: straight to a file.
                    file_line(rng, s, host, ip, out)
                }
            }
            Step::Files => file_line(rng, s, host, ip, out),
            Step::Summary => {
                s.step = if s.interrupted { Step::Error } else { Step::Done };
                let overhead = 30 + rng.below(3_000) + s.moved / 500;
                let (sent, received) = if s.kind == Kind::Pull {
                    (s.moved + overhead, 20 + rng.below(2_000))
                } else {
                    (20 + rng.below(2_000), s.moved + overhead)
                };
                let total = s.moved + if rng.chance(300) { rng.size() } else { 0 };
                write!(out, "sent {sent} bytes  received {received} bytes  total size {total}")
            }
            Step::Error => {
                s.step = Step::Done;
                if s.kind == Kind::Pull {
                    write!(out, "rsync error: error in socket IO (code 10) at io.c(949) [sender=3.4.1]")
                } else {
                    write!(
                        out,
                        "rsync error: received SIGINT, SIGTERM, or SIGHUP (code 20) at io.c(1892) [receiver=3.4.1]"
                    )
                }
            }
            Step::Done => unreachable!("finished sessions are removed"),
        };
        s.step == Step::Done
    }

    /// A syslog line of another program (BSD and RFC 3339 styles only).
    fn foreign(&mut self, out: &mut Vec<u8>) {
        self.stamp(out);
        let pid = 400 + self.rng.below(30_000);
        let host = self.style.syslog_host();
        let _ = match self.rng.below(3) {
            0 => writeln!(out, " {host} CRON[{pid}]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)"),
            1 => writeln!(out, " {host} systemd[1]: Started session-{pid}.scope - Session {pid} of User backup."),
            _ => writeln!(out, " {host} kernel: [{}.{:06}] EXT4-fs (sdb1): mounted filesystem", pid, self.micros),
        };
    }

    /// Writes the line prefix for `pid`, up to the message.
    fn prefix(&mut self, out: &mut Vec<u8>, pid: u32) {
        self.stamp(out);
        let _ = match self.style {
            Style::LogFile => write!(out, " [{pid}] "),
            Style::Bsd | Style::Rfc3339 => write!(out, " {} rsyncd[{pid}]: ", self.style.syslog_host()),
        };
    }

    /// Writes the time stamp of the current line.
    fn stamp(&mut self, out: &mut Vec<u8>) {
        if self.stamp_for != self.now {
            self.stamp_for = self.now;
            self.stamp_buf.clear();
            let local = self.now + if self.style == Style::Rfc3339 { RFC3339_OFFSET } else { 0 };
            let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
            let sod = local.rem_euclid(86_400);
            let (h, mi, se) = (sod / 3600, sod / 60 % 60, sod % 60);
            let _ = match self.style {
                Style::LogFile => write!(self.stamp_buf, "{y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{se:02}"),
                Style::Bsd => write!(self.stamp_buf, "{} {d:>2} {h:02}:{mi:02}:{se:02}", MONTHS[mo as usize - 1]),
                Style::Rfc3339 => write!(self.stamp_buf, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}"),
            };
        }
        out.extend_from_slice(&self.stamp_buf);
        if self.style == Style::Rfc3339 {
            let _ = write!(out, ".{:06}+01:00", self.micros);
        }
    }
}

/// One per-file line in the default log format, or the session's summary
/// (or error) once its files are done.
fn file_line(rng: &mut Rng, s: &mut Session, host: &str, ip: &str, out: &mut Vec<u8>) -> io::Result<()> {
    if s.interrupted && rng.chance(150) {
        // Cut off mid-transfer: the broken pipe, then summary and error.
        s.files_left = 0;
        s.step = Step::Summary;
        return write!(
            out,
            "rsync: [{}] write error: Broken pipe (32)",
            if s.kind == Kind::Pull { "sender" } else { "receiver" }
        );
    }
    s.files_left = s.files_left.saturating_sub(1);
    if s.files_left == 0 {
        s.step = Step::Summary;
    }
    let user = s.user.unwrap_or("");
    let push = s.kind == Kind::Push;
    let (op, len) = if push && rng.chance(60) {
        ("del.", 0)
    } else if push {
        ("recv", rng.size())
    } else {
        ("send", rng.size())
    };
    s.moved += len;
    write!(out, "{op} {host} [{ip}] {} ({user}) {}/", s.module, s.dir)?;
    if rng.chance(200) {
        let _ = write!(out, "{}/", rng.pick(&["sub", "old versions", "2026-11", "a b c"]));
    }
    file_name(rng, out);
    write!(out, " {len}")
}

// Run by `cargo test --bench corpus` (cargo also builds this file as a bench
// target of its own); no `use super::*`, which would be unused where this
// file is a module of a harness-less bench.
#[cfg(test)]
mod tests {
    #[test]
    fn deterministic_and_line_aligned() {
        for style in super::Style::ALL {
            let a = super::generate(style, 200_000, 7);
            assert_eq!(a, super::generate(style, 200_000, 7));
            assert_ne!(a, super::generate(style, 200_000, 8));
            assert!(a.len() >= 200_000 && a.ends_with(b"\n"));
            let mut w = Vec::new();
            super::write_to(style, 200_000, 7, &mut w).unwrap();
            assert_eq!(a, w);
        }
    }

    #[test]
    fn every_line_is_read() {
        use xferstats::formats::prefix::PrefixParser;
        use xferstats::formats::rsync::{parse_message, LogFormat, DEFAULT_LOG_FORMAT};
        use xferstats::time::{Clock, TimeZone};
        let format = LogFormat::compile(DEFAULT_LOG_FORMAT).unwrap();
        for style in super::Style::ALL {
            let data = super::generate(style, 500_000, 3);
            let (mut prefix, mut clock) = (PrefixParser::new(), Clock::new(TimeZone::Utc, super::reference_unix()));
            for line in data.strip_suffix(b"\n").unwrap().split(|&b| b == b'\n') {
                let text = String::from_utf8_lossy(line);
                let p = prefix.parse(line, &mut clock).unwrap_or_else(|| panic!("no prefix: {text}"));
                if p.program.is_some_and(|prog| prog != b"rsyncd") {
                    continue;
                }
                assert!(p.time >= super::start_unix() * 1_000_000, "{text}");
                assert!(parse_message(p.msg, &format).is_ok(), "{text}");
            }
        }
    }

    #[test]
    fn calendar_round_trips() {
        for z in [-1, 0, 19_000, 20_765, 20_820, 60_000] {
            let (y, m, d) = super::civil_from_days(z);
            assert_eq!(super::days_from_civil(y, m, d), z);
        }
        assert_eq!(super::days_from_civil(2026, 11, 8), 20_765);
        assert_eq!(super::civil_from_days(20_765), (2026, 11, 8));
    }
}
