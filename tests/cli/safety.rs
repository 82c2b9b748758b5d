//! Security and robustness of what xferstats shows and creates: no
//! log-derived character that could rewrite a terminal or a report row is
//! printed raw in any output, and the files it creates are private unless
//! asked otherwise.

use xferstats::sanitize::is_unsafe;

use crate::util::Env;

/// One character of each class no output may show raw: C0, DEL, C1,
/// format characters (bidi, zero-width, BOM, tags) and the line/paragraph
/// separators.
const CLASSES: &[char] = &[
    '\u{1b}',
    '\u{7}',
    '\u{7f}',
    '\u{85}',
    '\u{9b}',
    '\u{ad}',
    '\u{61c}',
    '\u{200b}',
    '\u{200e}',
    '\u{2028}',
    '\u{2029}',
    '\u{202e}',
    '\u{2066}',
    '\u{feff}',
    '\u{e0041}',
];

/// Users `u0<c>x`, `u1<c>x`, … (rsyncd failed logins), one per class.
fn users() -> Vec<String> {
    CLASSES.iter().enumerate().map(|(i, c)| format!("u{i:02}{c}x")).collect()
}

fn evil_log(env: &Env) -> std::path::PathBuf {
    let mut log = String::new();
    for (i, u) in users().iter().enumerate() {
        log.push_str(&format!(
            "2026/03/01 10:00:{i:02} [{i}] auth failed on module m from UNKNOWN (198.51.100.7) for {u}: password mismatch\n"
        ));
    }
    env.write("evil.log", log.as_bytes())
}

/// What `sanitize` shows for the character `c`.
fn shown(c: char) -> String {
    if (c as u32) < 0x100 {
        format!("\\x{:02x}", c as u32)
    } else {
        format!("\\u{{{:x}}}", c as u32)
    }
}

fn raw_unsafe(text: &str) -> Vec<char> {
    text.chars().filter(|&c| is_unsafe(c) && c != '\n').collect()
}

#[test]
fn reports_escape_every_class_in_every_format() {
    let env = Env::new();
    let log = evil_log(&env);
    env.ingest(&[log.to_str().unwrap()]).success();
    for by in [None, Some("user"), Some("day,user")] {
        for fmt in ["table", "markdown", "csv"] {
            let mut cmd = env.cmd();
            cmd.args(["report", "--format", fmt]);
            if let Some(by) = by {
                cmd.args(["--by", by]);
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "{fmt} {by:?}: {}", String::from_utf8_lossy(&out.stderr));
            let s = String::from_utf8(out.stdout).unwrap();
            assert_eq!(raw_unsafe(&s), Vec::<char>::new(), "{fmt} {by:?}: {s}");
            for (i, c) in CLASSES.iter().enumerate() {
                let want = format!("u{i:02}{}x", shown(*c));
                assert!(s.contains(&want), "{fmt} {by:?}: {want} missing in {s}");
            }
            // One line per user, the header(s) and the total: no character
            // split a row.
            let rows = s.lines().filter(|l| l.contains("u0") || l.contains("u1")).count();
            assert_eq!(rows, CLASSES.len(), "{fmt} {by:?}: {s}");
        }
        // JSON: escaped as \uXXXX, and parses back to the stored names.
        let mut cmd = env.cmd();
        cmd.args(["report", "--format", "json"]);
        if let Some(by) = by {
            cmd.args(["--by", by]);
        }
        let out = cmd.output().unwrap();
        let s = String::from_utf8(out.stdout).unwrap();
        assert_eq!(raw_unsafe(&s), Vec::<char>::new(), "json {by:?}: {s}");
        assert!(s.contains(r#""u11\u202ex""#) && s.contains(r#""u14\udb40\udc41x""#), "json {by:?}: {s}");
        let rows: serde_json::Value = serde_json::from_str(&s).unwrap();
        let got: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["user"].as_str().unwrap()).collect();
        assert_eq!(got, users(), "json {by:?}");
    }
}

#[test]
fn import_summary_escapes_every_class() {
    let env = Env::new();
    let mut log = String::new();
    for c in CLASSES {
        log.push_str(&format!("not a log line {c} here\n"));
    }
    let name = "evil\u{202e}gol.log";
    let p = env.write(name, log.as_bytes());
    let out = env.cmd().args(["-v", "ingest", "--format", "rsyncd", "--timezone", "UTC"]).arg(&p).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(raw_unsafe(&err), Vec::<char>::new(), "{err}");
    assert!(err.contains("evil\\u{202e}gol.log: rsyncd, 15 lines, 15 rejected"), "{err}");
    assert!(
        err.contains("evil\\u{202e}gol.log:1: no rsyncd log-file or syslog prefix: not a log line \\x1b here"),
        "{err}"
    );
    assert!(
        err.contains("evil\\u{202e}gol.log:3: no rsyncd log-file or syslog prefix: not a log line \\x7f here"),
        "{err}"
    );
}
