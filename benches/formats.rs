//! Throughput of the decoders of the SFTP/FTP formats (`xferlog`, `vsftpd`,
//! `sftpgo`, `openssh` through the syslog router, `proftpd-extended`) over
//! generated corpora of ~50 MB each: `cargo bench --bench formats` (rsyncd
//! has its own bench, `parse`). Criterion reports bytes/s; events per pass
//! are printed once per format.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

use xferstats::formats::prefix::PrefixParser;
use xferstats::formats::proftpd_extended::decoder::ProftpdExtendedDecoder;
use xferstats::formats::proftpd_extended::{ExtendedFormat, DEFAULT_FORMAT};
use xferstats::formats::rsync::{LogFormat, DEFAULT_LOG_FORMAT};
use xferstats::formats::sftpgo::decoder::SftpgoDecoder;
use xferstats::formats::syslog::SyslogDecoder;
use xferstats::formats::vsftpd::decoder::VsftpdDecoder;
use xferstats::formats::xferlog::decoder::XferlogDecoder;
use xferstats::sessions::{AnyDecoder, IdGen, LineContext, Outcome};
use xferstats::time::{Clock, TimeZone};

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

fn rng(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn client(r: u64) -> String {
    if r.is_multiple_of(3) {
        format!("2001:db8:{:x}::{:x}", (r >> 8) % 4096, r % 2000)
    } else {
        format!("::ffff:198.51.{}.{}", (r >> 8) % 200, r % 250)
    }
}

/// xferlog lines (vsftpd-style padded days) up to `target` bytes.
fn xferlog_corpus(target: usize) -> Vec<u8> {
    let mut out = String::with_capacity(target + 256);
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut t = 0u64;
    while out.len() < target {
        let r = rng(&mut s);
        t += r % 3;
        let (day, h, m, sec) = (1 + (t / 86_400) % 28, (t / 3600) % 24, (t / 60) % 60, t % 60);
        let dir = ["o", "i", "o", "d"][(r % 4) as usize];
        let (mode, user) = if r.is_multiple_of(5) {
            ("a", "visitor@example.net".to_string())
        } else {
            ("r", format!("user{}", r % 97))
        };
        out.push_str(&format!(
            "{} Nov {:>2} {:02}:{:02}:{:02} 2026 {} {} {} /srv/ftp/pub/dir_{}/file_{}.iso b _ {} {} {} {} 0 * {}\n",
            DAYS[(day % 7) as usize],
            day,
            h,
            m,
            sec,
            r % 30,
            client(r >> 3),
            r % 100_000_000,
            r % 50,
            r % 10_000,
            dir,
            mode,
            user,
            ["ftp", "sftp", "ftp", "scp"][((r >> 5) % 4) as usize],
            if r.is_multiple_of(17) { "i" } else { "c" }
        ));
    }
    out.into_bytes()
}

/// vsftpd.log lines (with protocol logging) up to `target` bytes.
fn vsftpd_corpus(target: usize) -> Vec<u8> {
    let mut out = String::with_capacity(target + 256);
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut t = 0u64;
    while out.len() < target {
        let r = rng(&mut s);
        t += r % 2;
        let (day, h, m, sec) = (1 + (t / 86_400) % 28, (t / 3600) % 24, (t / 60) % 60, t % 60);
        let date = format!("{} Nov {:>2} {:02}:{:02}:{:02} 2026", DAYS[(day % 7) as usize], day, h, m, sec);
        let ip = client(r >> 3);
        let user = if r.is_multiple_of(5) { "ftp".to_string() } else { format!("user{}", r % 97) };
        let pid = 1000 + r % 30_000;
        let line = match r % 6 {
            0 => format!("{date} [pid {pid}] FTP command: Client \"{ip}\", \"RETR file {}.bin\"\n", r % 999),
            1 => format!("{date} [pid {pid}] FTP response: Client \"{ip}\", \"226 Transfer complete.\"\n"),
            2 => format!("{date} [pid {pid}] [{user}] OK LOGIN: Client \"{ip}\"\n"),
            3 => format!(
                "{date} [pid {pid}] [{user}] OK UPLOAD: Client \"{ip}\", \"/home/{user}/in box/f {}.dat\", {} bytes, 1234.56Kbyte/sec\n",
                r % 999,
                r % 10_000_000
            ),
            _ => format!(
                "{date} [pid {pid}] [{user}] OK DOWNLOAD: Client \"{ip}\", \"/pub/release {}.iso\", {} bytes, 99999.12Kbyte/sec\n",
                r % 999,
                r % 100_000_000
            ),
        };
        out.push_str(&line);
    }
    out.into_bytes()
}

/// SFTPGo JSON lines up to `target` bytes.
fn sftpgo_corpus(target: usize) -> Vec<u8> {
    let mut out = String::with_capacity(target + 512);
    let mut s = 0x1234_5678_9abc_def1u64;
    let mut t = 0u64;
    while out.len() < target {
        let r = rng(&mut s);
        t += r % 2;
        let time = format!(
            "2026-11-{:02}T{:02}:{:02}:{:02}.{:03}",
            1 + (t / 86_400) % 28,
            (t / 3600) % 24,
            (t / 60) % 60,
            t % 60,
            r % 1000
        );
        let user = format!("user{}", r % 97);
        let ip = if r.is_multiple_of(3) {
            format!("[2001:db8::{:x}]", r % 2000)
        } else {
            format!("198.51.{}.{}", (r >> 8) % 200, r % 250)
        };
        let line = match r % 5 {
            0 => format!(
                r#"{{"level":"info","time":"{time}","sender":"login","ip":"{}","username":"{user}","method":"password","protocol":"SSH","connection_id":"c{}","client":"SSH-2.0-OpenSSH_9.6","encrypted":true}}"#,
                ip.trim_matches(|c| c == '[' || c == ']'),
                r % 9999
            ),
            1 => format!(
                r#"{{"level":"info","time":"{time}","sender":"Download","local_addr":"10.0.0.5:2022","remote_addr":"{ip}:{}","elapsed_ms":{},"size_bytes":{},"username":"{user}","file_path":"/srv/{user}/a b {}.bin","virtual_path":"/a b {}.bin","connection_id":"SFTP_c{}_1","protocol":"SFTP"}}"#,
                40000 + r % 20000,
                r % 9999,
                r % 100_000_000,
                r % 999,
                r % 999,
                r % 9999
            ),
            _ => format!(
                r#"{{"level":"info","time":"{time}","sender":"Upload","local_addr":"10.0.0.5:2022","remote_addr":"{ip}:{}","elapsed_ms":{},"size_bytes":{},"username":"{user}","file_path":"/srv/{user}/in {}.zip","virtual_path":"/in {}.zip","connection_id":"SFTP_c{}_2","protocol":"SFTP"}}"#,
                40000 + r % 20000,
                r % 9999,
                r % 10_000_000,
                r % 999,
                r % 999,
                r % 9999
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.into_bytes()
}

/// OpenSSH syslog (sshd + internal-sftp + other programs) up to `target`.
fn openssh_corpus(target: usize) -> Vec<u8> {
    let mut out = String::with_capacity(target + 512);
    let mut s = 0x0bad_cafe_dead_beefu64;
    let mut t = 0u64;
    let mut pid = 1000u64;
    while out.len() < target {
        let r = rng(&mut s);
        t += 1 + r % 3;
        pid = 1000 + (pid + 7) % 60_000;
        let ts = |t: u64| {
            format!("Nov {:>2} {:02}:{:02}:{:02}", 1 + (t / 86_400) % 28, (t / 3600) % 24, (t / 60) % 60, t % 60)
        };
        let ip = client(r >> 3);
        let ip = ip.trim_start_matches("::ffff:");
        let user = format!("user{}", r % 97);
        out.push_str(&format!(
            "{} host sshd[{pid}]: Accepted password for {user} from {ip} port {} ssh2\n",
            ts(t),
            30000 + r % 30000
        ));
        out.push_str(&format!(
            "{} host sshd[{pid}]: pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)\n",
            ts(t)
        ));
        out.push_str(&format!(
            "{} host internal-sftp[{}]: session opened for local user {user} from [{ip}]\n",
            ts(t),
            pid + 1
        ));
        for f in 0..(1 + r % 4) {
            let path = format!("/home/{user}/dir {f}/caf\\303\\251 {}.bin", r % 999);
            out.push_str(&format!(
                "{} host internal-sftp[{}]: open \"{path}\" flags WRITE,CREATE,TRUNCATE mode 0644\n",
                ts(t),
                pid + 1
            ));
            out.push_str(&format!(
                "{} host internal-sftp[{}]: close \"{path}\" bytes read 0 written {}\n",
                ts(t + 1),
                pid + 1,
                r % 9_999_999
            ));
        }
        out.push_str(&format!(
            "{} host internal-sftp[{}]: session closed for local user {user} from [{ip}]\n",
            ts(t + 1),
            pid + 1
        ));
        out.push_str(&format!("{} host CRON[{}]: (root) CMD (true)\n", ts(t + 1), pid + 2));
        if r.is_multiple_of(4) {
            out.push_str(&format!(
                "{} host sshd[{}]: Failed password for invalid user admin from {ip} port 4000 ssh2\n",
                ts(t + 2),
                pid + 3
            ));
        }
    }
    out.into_bytes()
}

/// ProFTPD ExtendedLog lines in the default LogFormat up to `target`.
fn proftpd_corpus(target: usize) -> Vec<u8> {
    let mut out = String::with_capacity(target + 256);
    let mut s = 0x5555_aaaa_3333_ccccu64;
    let mut t = 0u64;
    while out.len() < target {
        let r = rng(&mut s);
        t += r % 2;
        let date = format!(
            "[{:02}/Nov/2026:{:02}:{:02}:{:02} +0000]",
            1 + (t / 86_400) % 28,
            (t / 3600) % 24,
            (t / 60) % 60,
            t % 60
        );
        let cmd = ["STOR", "RETR", "RETR", "PASS", "CWD", "DELE"][(r % 6) as usize];
        let (code, arg) = match cmd {
            "PASS" => ("230", "(hidden)".to_string()),
            "CWD" => ("250", "/pub".to_string()),
            _ => ("226", format!("dir {}/file name {}.iso", r % 50, r % 999)),
        };
        out.push_str(&format!(
            "{} UNKNOWN user{} {date} \"{cmd} {arg}\" {code} {}\n",
            client(r >> 3).trim_start_matches("::ffff:"),
            r % 97,
            r % 100_000_000
        ));
    }
    out.into_bytes()
}

fn pass(decoder: &mut dyn AnyDecoder, data: &[u8]) -> (usize, usize) {
    let mut cx = LineContext {
        clock: Clock::new(TimeZone::Utc, 0),
        prefix: PrefixParser::new(),
        ids: IdGen::new(xferstats::enrich::hostkey::HostKey::new(b"bench host key, 16+ chars").id_key()),
        server_host: "bench".into(),
        texts: Default::default(),
        // As ingest in its default IP mode (`hmac`).
        keep_hosts: false,
    };
    let mut events = Vec::with_capacity(10_000);
    let (mut total, mut rejected) = (0, 0);
    for line in data.split(|&c| c == b'\n') {
        if line.is_empty() {
            continue;
        }
        if let Outcome::Rejected(_) = black_box(decoder.line(&mut cx, line, &mut events)) {
            rejected += 1;
        }
        if events.len() >= 10_000 {
            total += events.len();
            events.clear();
        }
    }
    (total + events.len(), rejected)
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let size = if benchmarking { 50 << 20 } else { 1 << 20 };
    let mut c = Criterion::default().configure_from_args();
    let corpora: [(&str, Vec<u8>); 5] = [
        ("xferlog", xferlog_corpus(size)),
        ("vsftpd", vsftpd_corpus(size)),
        ("sftpgo", sftpgo_corpus(size)),
        ("openssh", openssh_corpus(size)),
        ("proftpd-extended", proftpd_corpus(size)),
    ];
    let mut g = c.benchmark_group("format_decode");
    g.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(6));
    for (name, data) in &corpora {
        let new = || -> Box<dyn AnyDecoder> {
            match *name {
                "xferlog" => Box::new(XferlogDecoder::default()),
                "vsftpd" => Box::new(VsftpdDecoder::default()),
                "sftpgo" => Box::new(SftpgoDecoder::default()),
                "openssh" => Box::new(SyslogDecoder::new(LogFormat::compile(DEFAULT_LOG_FORMAT).expect("compiles"))),
                _ => Box::new(ProftpdExtendedDecoder::new(ExtendedFormat::compile(DEFAULT_FORMAT).expect("compiles"))),
            }
        };
        let (events, rejected) = pass(new().as_mut(), data);
        eprintln!("{name}: {} MB, {events} events per pass", data.len() / 1_000_000);
        assert_eq!(rejected, 0, "{name}: the generated corpus must parse");
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), data, |b, data| b.iter(|| pass(new().as_mut(), data)));
    }
    g.finish();
    c.final_summary();
}
