//! The fuzz targets: each takes arbitrary bytes, runs one parser (and the
//! decoder behind it) through the library's public API, and panics only on
//! a bug — a panic inside the library, or a broken invariant asserted here.
//!
//! Line formats read the input as log lines. Formats whose layout is
//! configured (rsync `log format`, ProFTPD `LogFormat`) take it from the
//! first line, falling back to the default when it does not compile, so
//! every input exercises both the compiler and the matcher. Decoders see the
//! first half of the lines, save their state, are restored into a fresh
//! decoder that sees the rest — the cron-split case — and the state saved at
//! the end must restore again.

use std::sync::OnceLock;

use chrono::NaiveDate;
use xferstats::formats::openssh::decoder::OpensshDecoder;
use xferstats::formats::prefix::{parse_u32, parse_u64, Ahead, PrefixParser, PrefixStyle, Prefixed};
use xferstats::formats::proftpd::decoder::ProftpdDecoder;
use xferstats::formats::proftpd_extended::decoder::ProftpdExtendedDecoder;
use xferstats::formats::proftpd_extended::{ExtendedFormat, DEFAULT_FORMAT};
use xferstats::formats::rsync::decoder::RsyncDecoder;
use xferstats::formats::rsync::logformat::parse_number;
use xferstats::formats::rsync::{LogFormat, DEFAULT_LOG_FORMAT};
use xferstats::formats::sftpgo::decoder::SftpgoDecoder;
use xferstats::formats::syslog::SyslogDecoder;
use xferstats::formats::template::{match_items, Item, Shape};
use xferstats::formats::vsftpd::decoder::VsftpdDecoder;
use xferstats::formats::xferlog::decoder::XferlogDecoder;
use xferstats::formats::Templates;
use xferstats::formats::{openssh, proftpd, rsync, sftpgo, vsftpd, xferlog, Format};
use xferstats::model::Event;
use xferstats::sessions::{AnyDecoder, Horizon, IdGen, LineContext};
use xferstats::sinks::{PgSpec, StoreSpec};
use xferstats::time::{self, Clock, TimeZone};

/// One fuzz target.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Name on the command line and of its corpus directory.
    pub name: &'static str,
    /// What it exercises.
    pub about: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]),
    /// Tokens added to the mutation dictionary.
    pub dict: &'static [&'static [u8]],
}

/// Every target, in the order the smoke run and the README list them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "rsync",
        about: "rsyncd lines (log-file and syslog prefixes) through parse_message and RsyncDecoder; line 1 is the log format",
        run: rsync_lines,
        dict: &[b"%t %a %h %o %m %u %f %l %b %i", b"%o %h [%a] %m (%u) %f %l", b">f+++++++++", b"cd+++++++++", b"*deleting"],
    },
    Target {
        name: "rsync_logformat",
        about: "rsyncd `log format` compile, then matching per-file messages and human-readable numbers",
        run: rsync_logformat,
        dict: &[b"%'l", b"%''b", b"%-10o", b"%10f", b"%M", b"%L", b"%c", b"%U", b"%G", b"%P", b"%C", b" -> "],
    },
    Target {
        name: "openssh",
        about: "sftp-server/internal-sftp and sshd messages, unvis, untimed tags, OpensshDecoder",
        run: openssh_lines,
        dict: &[b"sftp-server", b"internal-sftp", b"Postponed", b"remove name \"", b"rename old \"", b"\\040"],
    },
    Target {
        name: "xferlog",
        about: "xferlog lines through xferlog::parse and XferlogDecoder",
        run: xferlog_lines,
        dict: &[b" b _ o r ", b" a _ i a ", b" ftp 0 * c", b" sftp 1 * i", b" d "],
    },
    Target {
        name: "vsftpd",
        about: "vsftpd's own log through vsftpd::parse, its ctime reader and VsftpdDecoder",
        run: vsftpd_lines,
        dict: &[b" [pid 1] [ftp] OK UPLOAD: Client \"", b"\", \"/f\", 10 bytes, 1.00Kbyte/sec", b"CONNECT:", b"DELETE:"],
    },
    Target {
        name: "proftpd",
        about: "ProFTPD SystemLog / mod_sftp SFTPLog through proftpd::parse and ProftpdDecoder",
        run: proftpd_lines,
        dict: &[b"USER ", b"Login successful.", b"mod_sftp/1.0.1", b"(127.0.0.1[127.0.0.1])", b"no such user"],
    },
    Target {
        name: "proftpd_extended",
        about: "ProFTPD ExtendedLog: LogFormat compile (line 1), template match, ProftpdExtendedDecoder",
        run: proftpd_extended_lines,
        dict: &[b"%{iso8601} %a %u %{protocol} %m \"%f\" %{file-size} %b %{transfer-status} %T", b"%h", b"%s", b"%T"],
    },
    Target {
        name: "sftpgo",
        about: "SFTPGo JSON lines through sftpgo::parse, parse_time and SftpgoDecoder",
        run: sftpgo_lines,
        dict: &[b"\"sender\":\"Remove\"", b"\"elapsed_ms\":", b"\"connection_failed\"", b"\"level\":\"error\""],
    },
    Target {
        name: "syslog",
        about: "mixed syslog files through SyslogDecoder (rsyncd + OpenSSH per line); line 1 is the rsync log format",
        run: syslog_lines,
        dict: &[b"<13>1 ", b"rsyncd", b"sshd", b"CRON[1]:"],
    },
    Target {
        name: "prefix",
        about: "syslog and log-file prefixes, and the time-stamp readers (RFC 3339, BSD, YYYY/MM/DD, offsets, years)",
        run: prefix_lines,
        dict: &[b"<34>", b"1 2026-11-08T08:00:00Z host prog 1 - - ", b"Nov  8 08:00:00 host prog[1]: "],
    },
    Target {
        name: "template",
        about: "template::match_items over items built from line 1 (tab-separated: %T token, %S spacey, %N fixed)",
        run: template,
        dict: &[b"\t%T\t", b"\t%S\t", b"\t%3\t", b"\t%0\t"],
    },
    Target { name: "detect", about: "format detection over the first lines of a file", run: detect, dict: &[] },
    Target {
        name: "state",
        about: "decoder state restored from the store (byte 1 picks rsync/openssh/syslog), then used and saved again",
        run: state,
        dict: &[b"{\"rsync\":\"", b"\"ssh\":\"", b"\"sessions\":[", b"\"hosts\":", b"[[\"h\",{"],
    },
    Target {
        name: "store_url",
        about: "store URLs (sqlite, postgres libpq URLs, PG* environment); line 1 is the URL, then KEY=VALUE",
        run: store_url,
        dict: &[b"PGHOST=", b"PGPORT=", b"PGUSER=", b"PGPASSWORD=", b"PGCONNECT_TIMEOUT=", b"?sslmode=", b"host=/run"],
    },
    Target {
        name: "influx_url",
        about: "InfluxDB 1.x/2.x store URLs and their environment; line 1 is the URL, then KEY=VALUE",
        run: influx_url,
        dict: &[b"INFLUXDB_HOST=", b"INFLUXDB_PORT=", b"INFLUX_TOKEN=", b"INFLUX_ORG=", b"INFLUX_BUCKET=", b"INFLUXDB_SSL="],
    },
    Target {
        name: "args",
        about: "--timezone names/offsets, --since/--until days, --format names, time renderers",
        run: args,
        dict: &[b"Europe/London", b"Australia/Lord_Howe", b"+14:00", b"-12", b"GMT", b"2026-13-01", b"+262143-12-31"],
    },
];

/// The target called `name`.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Lines of an input as ingest reads them: split at `\n`, `\r` dropped.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    data.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// The first line and the rest.
fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn paris() -> TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    *TZ.get_or_init(|| "Europe/Paris".parse().expect("Europe/Paris is a zone"))
}

/// The key of the ids the decoders make (any fixed key: ids are not checked).
fn id_key() -> xferstats::enrich::hostkey::IdKey {
    xferstats::enrich::hostkey::HostKey::new(b"xferstats-fuzz host key").id_key()
}

/// 2026-11-08T00:00:00Z: the newest a year-less time may be.
const REFERENCE: i64 = 1_794_096_000;

/// The context ingest hands a decoder: a zone with daylight saving (so its
/// gaps and folds are reached), a fixed reference instant, a server name.
fn context() -> LineContext {
    LineContext {
        clock: Clock::new(paris(), REFERENCE),
        prefix: PrefixParser::new(),
        ids: IdGen::new(id_key()),
        server_host: "vm".into(),
        texts: Default::default(),
        keep_hosts: true,
    }
}

/// Feeds the lines to a decoder split in two runs with a save/restore in
/// between, as two cron runs would; every saved state must restore.
fn decode_split<'a>(make: &dyn Fn() -> Box<dyn AnyDecoder>, data: impl Iterator<Item = &'a [u8]> + Clone) {
    let n = data.clone().count();
    let mut cx = context();
    let mut out: Vec<Event> = Vec::new();
    let mut first = make();
    for line in data.clone().take(n / 2) {
        first.line(&mut cx, line, &mut out);
    }
    first.finish(&id_key(), &mut out);
    let saved = first.save_text(&Horizon::default());
    let mut second = make();
    if let Err(e) = second.restore_text(&saved) {
        panic!("state saved by {} does not restore: {e}\nstate: {saved}", second.scope());
    }
    for line in data.skip(n / 2) {
        second.line(&mut cx, line, &mut out);
    }
    second.finish(&id_key(), &mut out);
    let end = second.save_text(&Horizon::default());
    if let Err(e) = make().restore_text(&end) {
        panic!("state saved by {} does not restore: {e}\nstate: {end}", second.scope());
    }
}

fn rsync_format(line: &[u8]) -> LogFormat {
    LogFormat::compile(&String::from_utf8_lossy(line))
        .unwrap_or_else(|_| LogFormat::compile(DEFAULT_LOG_FORMAT).expect("the default compiles"))
}

fn rsync_lines(data: &[u8]) {
    let (head, rest) = first_line(data);
    let format = rsync_format(head);
    let (mut prefix, mut clock) = (PrefixParser::new(), Clock::new(paris(), REFERENCE));
    for line in lines(rest) {
        if let Some(p) = prefix.parse(line, &mut clock) {
            rsync::looks_like(p.msg, p.program);
            let _ = rsync::parse_message(p.msg, &format);
            rsync::unescape(p.msg);
        }
    }
    decode_split(&|| Box::new(RsyncDecoder::new(format.clone())), lines(rest));
}

fn rsync_logformat(data: &[u8]) {
    let (head, rest) = first_line(data);
    let Ok(format) = LogFormat::compile(&String::from_utf8_lossy(head)) else { return };
    assert_eq!(format.as_str(), String::from_utf8_lossy(head), "as_str gives the source back");
    format.has_itemize();
    for line in lines(rest) {
        format.parse(line);
        for human in 0..4 {
            parse_number(line, human);
        }
    }
}

fn openssh_lines(data: &[u8]) {
    let (mut prefix, mut clock) = (PrefixParser::new(), Clock::new(paris(), REFERENCE));
    for line in lines(data) {
        openssh::looks_like_untimed(line);
        let untimed = openssh::strip_untimed_tag(line);
        let _ = openssh::parse_sftp(untimed);
        let _ = openssh::parse_sshd(untimed);
        if let Some(p) = prefix.parse(line, &mut clock) {
            if let Some(prog) = p.program {
                openssh::is_openssh_program(prog);
            }
            let _ = openssh::parse_sftp(p.msg);
            let _ = openssh::parse_sshd(p.msg);
            openssh::unvis(p.msg);
        }
    }
    decode_split(&|| Box::<OpensshDecoder>::default(), lines(data));
}

fn xferlog_lines(data: &[u8]) {
    for line in lines(data) {
        xferlog::looks_like(line);
        let _ = xferlog::parse(line);
    }
    decode_split(&|| Box::<XferlogDecoder>::default(), lines(data));
}

fn vsftpd_lines(data: &[u8]) {
    for line in lines(data) {
        vsftpd::looks_like(line);
        vsftpd::parse_ctime(line);
        let _ = vsftpd::parse(line);
    }
    decode_split(&|| Box::<VsftpdDecoder>::default(), lines(data));
}

fn proftpd_lines(data: &[u8]) {
    for line in lines(data) {
        let _ = proftpd::parse(line);
    }
    decode_split(&|| Box::<ProftpdDecoder>::default(), lines(data));
}

fn proftpd_extended_lines(data: &[u8]) {
    let (head, rest) = first_line(data);
    let format = ExtendedFormat::compile(&String::from_utf8_lossy(head))
        .unwrap_or_else(|_| ExtendedFormat::compile(DEFAULT_FORMAT).expect("the default compiles"));
    for line in lines(rest) {
        format.parse(line);
    }
    decode_split(&|| Box::new(ProftpdExtendedDecoder::new(format.clone())), lines(rest));
}

fn sftpgo_lines(data: &[u8]) {
    for line in lines(data) {
        sftpgo::looks_like(line);
        let _ = sftpgo::parse(line);
        sftpgo::parse_time(&String::from_utf8_lossy(line));
    }
    decode_split(&|| Box::<SftpgoDecoder>::default(), lines(data));
}

fn syslog_lines(data: &[u8]) {
    let (head, rest) = first_line(data);
    let format = rsync_format(head);
    decode_split(&|| Box::new(SyslogDecoder::new(format.clone())), lines(rest));
}

fn prefix_lines(data: &[u8]) {
    let zones = [TimeZone::Utc, TimeZone::Fixed(-(12 * 3600 + 45 * 60)), paris()];
    let mut parsers: Vec<(PrefixParser, Clock)> =
        zones.iter().map(|&z| (PrefixParser::new(), Clock::new(z, REFERENCE))).collect();
    // The same, parsing ahead (on the reader thread, to offsets).
    let mut ahead = parsers.clone();
    let mut clock = Clock::new(paris(), REFERENCE);
    for line in lines(data) {
        for ((p, c), (q, d)) in parsers.iter_mut().zip(&mut ahead) {
            // The caches (time stamp, syslog header) give what a parse
            // afresh gives; all but a BSD time, whose year the lines
            // before may have moved.
            let fresh = PrefixParser::new().parse(line, &mut c.clone());
            let parsed = p.parse(line, c);
            match (parsed, fresh) {
                (Some(a), Some(b)) if a.style == PrefixStyle::BsdSyslog => {
                    assert_eq!(Prefixed { time: b.time, ..a }, b, "cached")
                }
                _ => assert_eq!(parsed, fresh, "cached"),
            }
            // A prefix parsed ahead (offsets, on the reader thread) gives
            // the same back.
            assert_eq!(Ahead::of(line, parsed.as_ref()).prefixed(line), parsed, "parsed ahead");
            assert_eq!(q.parse_ahead(line, d), Ahead::of(line, parsed.as_ref()), "parse_ahead");
            if let Some(p) = parsed {
                time::rfc3339(p.time);
            }
        }
        parse_u32(line);
        parse_u64(line);
        time::parse_offset(line);
        time::month_from_abbr(line);
        if let Some((t, n)) = time::parse_rfc3339(line) {
            assert!(n <= line.len(), "parse_rfc3339 consumed {n} of {} bytes", line.len());
            time::rfc3339(t);
            time::day_string(t);
        }
        for mut c in [time::parse_bsd(line), time::parse_ymd_hms(line), vsftpd::parse_ctime(line)].into_iter().flatten()
        {
            clock.infer_year(&mut c);
            let t = clock.local_to_utc(&c);
            time::rfc3339(t);
        }
    }
}

/// Builds template items from tab-separated specs: `%T` token, `%S` free
/// text, `%N` (digits) fixed width, anything else a literal.
fn template_items(spec: &[u8]) -> Vec<Item<usize>> {
    spec.split(|&b| b == b'\t')
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .map(|(i, s)| match s {
            b"%T" => Item::Field(i, Shape::Token),
            b"%S" => Item::Field(i, Shape::Spacey { trim: false }),
            [b'%', n @ ..] if !n.is_empty() && n.len() <= 3 && n.iter().all(u8::is_ascii_digit) => {
                Item::Field(i, Shape::Fixed(parse_u32(n).unwrap_or(0) as usize))
            }
            lit => Item::Lit(lit.to_vec()),
        })
        .collect()
}

fn template(data: &[u8]) {
    let (head, rest) = first_line(data);
    let items = template_items(head);
    for line in lines(rest) {
        let mut seen: Vec<(usize, &[u8])> = Vec::new();
        let r = match_items(&items, line, |f, v| {
            // Refuse one value length, as a field with a bad value does.
            if v.len() == 13 {
                return None;
            }
            seen.push((f, v));
            Some(())
        });
        if r.is_some() {
            let fields = items.iter().filter(|i| matches!(i, Item::Field(..))).count();
            assert!(seen.len() <= fields, "{} values for {fields} fields", seen.len());
            for (_, v) in &seen {
                let inside = line.as_ptr_range();
                assert!(v.is_empty() || inside.contains(&v.as_ptr()), "a value outside the line");
            }
        }
    }
}

fn detect(data: &[u8]) {
    let (mut prefix, mut clock) = (PrefixParser::new(), Clock::new(paris(), REFERENCE));
    let proftpd = ExtendedFormat::compile(DEFAULT_FORMAT).expect("the default compiles");
    let rsync = LogFormat::compile(DEFAULT_LOG_FORMAT).expect("the default compiles");
    Format::detect(lines(data), &mut prefix, &mut clock, &Templates { rsync: &rsync, proftpd: &proftpd });
    let _ = Format::from_name(&String::from_utf8_lossy(first_line(data).0));
}

/// Lines fed to a restored decoder: a connection and a session that may
/// join what the state holds.
const STATE_LINES: &[&[u8]] = &[
    b"2026/11/08 08:58:04 [25942] sent 1000 bytes  received 200 bytes  total size 5000",
    b"2026/11/08 08:58:05 [25942] rsync error: some files could not be transferred (code 23) at main.c(1)",
    b"Nov  8 08:58:06 vm sftp-server[4242]: close \"/home/a/f\" bytes read 0 written 10",
    b"Nov  8 08:58:07 vm sftp-server[4242]: session closed for local user a from [127.0.0.1]",
    b"Nov  8 08:58:08 vm rsyncd[25942]: sent 10 bytes  received 20 bytes  total size 30",
];

/// A decoder that keeps state: `pick` % 3 is rsync, OpenSSH or syslog.
fn stateful(pick: u8) -> Box<dyn AnyDecoder> {
    match pick % 3 {
        0 => Box::new(RsyncDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).expect("the default compiles"))),
        1 => Box::<OpensshDecoder>::default(),
        _ => Box::new(SyslogDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).expect("the default compiles"))),
    }
}

/// A `state` seed: the state decoder `pick` saves after two thirds of
/// `log`, behind the byte that picks it.
pub fn state_seed(pick: u8, log: &[u8]) -> Vec<u8> {
    let mut d = stateful(pick);
    let mut cx = context();
    let mut out = Vec::new();
    let n = lines(log).count();
    for line in lines(log).take(n * 2 / 3) {
        d.line(&mut cx, line, &mut out);
    }
    let mut seed = vec![pick];
    seed.extend_from_slice(d.save_text(&Horizon::default()).as_bytes());
    seed
}

fn state(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let make = || stateful(pick);
    let mut d = make();
    if d.restore_text(&text).is_err() {
        return;
    }
    let mut cx = context();
    let mut out = Vec::new();
    let saved = d.save_text(&Horizon::default());
    if let Err(e) = make().restore_text(&saved) {
        panic!("a restored state saved again does not restore: {e}\nstate: {saved}");
    }
    for line in STATE_LINES {
        d.line(&mut cx, line, &mut out);
    }
    d.finish(&id_key(), &mut out);
    let saved = d.save_text(&Horizon::default());
    if let Err(e) = make().restore_text(&saved) {
        panic!("state saved after use does not restore: {e}\nstate: {saved}");
    }
}

/// Line 1 and an environment made of the `KEY=VALUE` lines after it.
fn url_and_env(data: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(data);
    let mut it = text.split('\n');
    let url = it.next().unwrap_or_default().to_string();
    let env = it.filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    (url, env)
}

fn store_url(data: &[u8]) {
    let (url, env) = url_and_env(data);
    let getenv = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Ok(spec) = StoreSpec::parse_with(&url, &getenv) {
        spec.describe();
        spec.with_state_dir(std::path::Path::new("/var/lib/xferstats")).describe();
    }
    if let Ok(pg) = PgSpec::parse(Some(&url), getenv) {
        let _ = format!("{pg:?}");
    }
    if let Err(e) = PgSpec::parse(None, getenv) {
        e.to_string();
    }
}

fn influx_url(data: &[u8]) {
    let (url, env) = url_and_env(data);
    let getenv = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match StoreSpec::parse_with(&url, &getenv) {
        Ok(StoreSpec::Influx(mut spec)) => {
            spec.target();
            spec.default_state(std::path::Path::new("/var/lib/xferstats"));
            let _ = format!("{spec:?} {:?}", spec.api);
        }
        Ok(_) => {}
        Err(e) => {
            e.to_string();
        }
    }
}

fn args(data: &[u8]) {
    let probes = [
        NaiveDate::from_ymd_opt(2026, 3, 29).and_then(|d| d.and_hms_opt(2, 30, 0)),
        NaiveDate::from_ymd_opt(2026, 10, 25).and_then(|d| d.and_hms_opt(2, 30, 0)),
        NaiveDate::from_ymd_opt(1, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)),
        NaiveDate::from_ymd_opt(262_000, 12, 31).and_then(|d| d.and_hms_opt(23, 59, 59)),
    ];
    for line in String::from_utf8_lossy(data).split('\n') {
        if let Ok(tz) = line.parse::<TimeZone>() {
            for p in probes.iter().flatten() {
                tz.offset_for_local(*p);
            }
        }
        // As the binary's --since/--until do.
        if let Some(d) = time::parse_day(line) {
            time::day_string(d * 86_400_000_000);
        }
        let _ = Format::from_name(line);
        if let Ok(t) = line.trim().parse::<i64>() {
            time::rfc3339(t);
            time::day_string(t);
            time::day_number(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TARGETS.len());
    }

    #[test]
    fn template_specs() {
        let items = template_items(b"[\t%T\t] \t%S\t!\t%12");
        assert_eq!(
            items,
            vec![
                Item::Lit(b"[".to_vec()),
                Item::Field(1, Shape::Token),
                Item::Lit(b"] ".to_vec()),
                Item::Field(3, Shape::Spacey { trim: false }),
                Item::Lit(b"!".to_vec()),
                Item::Field(5, Shape::Fixed(12)),
            ]
        );
    }

    #[test]
    fn url_and_env_split() {
        let (url, env) = url_and_env(b"postgres://u@h/db\nPGPORT=1=2\nnoise\n");
        assert_eq!(url, "postgres://u@h/db");
        assert_eq!(env, vec![("PGPORT".to_string(), "1=2".to_string())]);
    }
}
