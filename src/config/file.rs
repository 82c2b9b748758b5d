//! The configuration file, `/etc/xferstats/xferstats.toml` by default
//! (`--config`, `XFERSTATS_CONFIG`).
//!
//! A scheduled import needs its options somewhere other than a crontab
//! line, and one host's logs need different options per file (a default and
//! a custom-format rsyncd log, a server in another time zone): the file
//! holds the global settings (store, state directory, GeoIP, IP mode) and
//! `[[input]]` sections that map a path glob to the options of the files it
//! matches; `[[hook]]` sections, and a `[digest]` section saying where
//! `xferstats digest` delivers (so that the packaged timer's command line
//! holds no webhook secret). Precedence is flags > environment > file >
//! defaults; the binary applies it (it alone knows which flags were
//! given), this module parses,
//! validates (every error names file:line and key), matches inputs to
//! sections and renders the effective configuration with secrets masked.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::enrich::{GeoipChoice, IpMode};
use crate::filemode::DbMode;
use crate::formats::proftpd_extended::ExtendedFormat;
use crate::formats::rsync::LogFormat;
use crate::formats::Format;
use crate::ingest::{IngestOptions, IngestReport};
use crate::input::Source;
use crate::time::TimeZone;

use crate::sinks::StoreSpec;

/// Environment variable naming the configuration file (`--config`); set
/// but empty, no file is read.
pub const CONFIG_ENV: &str = "XFERSTATS_CONFIG";
/// The file read when neither `--config` nor `XFERSTATS_CONFIG` names one
/// (a missing file there is no error).
pub const DEFAULT_PATH: &str = "/etc/xferstats/xferstats.toml";

/// What is wrong with a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A key, value or section is not valid.
    #[error("{path}:{line}: {key}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key (or of the section).
        line: usize,
        /// The key, dotted (`input.format`), or the section.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// No input names a file: neither the command line nor an `[[input]]`
    /// section.
    #[error("no input: name files on the command line or add [[input]] sections with a path to {0}")]
    NoInput(String),
}

impl ConfigFileError {
    /// Exit code: a usage error.
    pub const EXIT_CODE: u8 = crate::EXIT_USAGE;
}

/// A value of the file and the line it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting<T> {
    /// The parsed value.
    pub value: T,
    /// The text as written in the file.
    pub raw: String,
    /// 1-based line.
    pub line: usize,
}

impl<T> Setting<T> {
    /// The text as written and its line (for the effective configuration).
    pub fn at(&self) -> (String, usize) {
        (self.raw.clone(), self.line)
    }
}

/// An `[[input]]` section: the options of the files its glob matches.
#[derive(Debug, Clone)]
pub struct InputSection {
    /// 1-based line of the `[[input]]` header.
    pub line: usize,
    /// The path glob as written.
    pub path: String,
    pattern: glob::Pattern,
    /// Forced format (`auto`: detected per file, as without it).
    pub format: Option<Setting<Option<Format>>>,
    /// Zone of zone-less time stamps.
    pub timezone: Option<Setting<TimeZone>>,
    /// rsyncd `log format`.
    pub rsync_log_format: Option<Setting<LogFormat>>,
    /// ProFTPD ExtendedLog `LogFormat`.
    pub proftpd_log_format: Option<Setting<ExtendedFormat>>,
    /// Server host of logs that do not name one.
    pub server_host: Option<Setting<String>>,
}

/// A parsed and validated configuration file; `Default` is "no file".
#[derive(Debug, Clone, Default)]
pub struct FileConfig {
    /// The file read, `None` when there is none.
    pub path: Option<PathBuf>,
    /// Store (`--db` syntax).
    pub db: Option<Setting<String>>,
    /// State directory.
    pub state_dir: Option<Setting<PathBuf>>,
    /// Mode of new database files.
    pub db_mode: Option<Setting<DbMode>>,
    /// GeoIP database (`auto`, `off` or a path).
    pub geoip: Option<Setting<GeoipChoice>>,
    /// What of client addresses is stored.
    pub ip_mode: Option<Setting<IpMode>>,
    /// Default zone of zone-less time stamps for every input.
    pub timezone: Option<Setting<TimeZone>>,
    /// Default server host for every input.
    pub server_host: Option<Setting<String>>,
    /// `[[input]]` sections in file order (the first that matches wins).
    pub inputs: Vec<InputSection>,
    /// `[[hook]]` sections in file order: the line of each, and the hook
    /// (the keys of [`crate::actions::hook::KEYS`]).
    pub hooks: Vec<(usize, crate::actions::Hook)>,
    /// The `[digest]` section.
    pub digest: Option<DigestSection>,
    /// Why the default file was not read though it exists (not readable
    /// by this user: the package's file is for root and group xferstats).
    pub skipped: Option<String>,
}

/// The `[digest]` section: where `xferstats digest` delivers, key by key
/// where its command line and environment leave a receiver or an option
/// unset.
#[derive(Debug, Clone, Default)]
pub struct DigestSection {
    /// 1-based line of the `[digest]` header.
    pub line: usize,
    /// Webhook URL (`--send`; a secret: shown as its origin only).
    pub send: Option<Setting<String>>,
    /// Body of the post (`--payload`).
    pub payload: Option<Setting<crate::report::digest::Payload>>,
    /// Mail recipients (`--mail-to`); `raw` is them joined by `, `.
    pub mail_to: Option<Setting<Vec<String>>>,
    /// The From: of the mail (`--mail-from`).
    pub mail_from: Option<Setting<String>>,
    /// The sendmail program (`--sendmail`).
    pub sendmail: Option<Setting<PathBuf>>,
}

/// The file as TOML: unknown keys are errors, not silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    db: Option<Spanned<String>>,
    state_dir: Option<Spanned<String>>,
    db_mode: Option<Spanned<String>>,
    geoip: Option<Spanned<String>>,
    ip_mode: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    server_host: Option<Spanned<String>>,
    #[serde(default)]
    input: Vec<Spanned<RawInput>>,
    #[serde(default)]
    hook: Vec<Spanned<toml::Table>>,
    digest: Option<Spanned<RawDigest>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDigest {
    send: Option<Spanned<String>>,
    payload: Option<Spanned<String>>,
    mail_to: Option<Spanned<Vec<String>>>,
    mail_from: Option<Spanned<String>>,
    sendmail: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    path: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    rsync_log_format: Option<Spanned<String>>,
    proftpd_log_format: Option<Spanned<String>>,
    server_host: Option<Spanned<String>>,
}

/// The file to read: `flag` (`--config` or `XFERSTATS_CONFIG`, through
/// clap) when given — empty means none — else [`DEFAULT_PATH`] if it exists.
pub fn locate(flag: Option<&Path>) -> Option<(PathBuf, bool)> {
    match flag {
        Some(p) if p.as_os_str().is_empty() => None,
        Some(p) => Some((p.to_path_buf(), true)),
        None => Some((PathBuf::from(DEFAULT_PATH), false)),
    }
}

impl FileConfig {
    /// Reads the file [`locate`] names for `flag`: an error if a named
    /// file cannot be read or is not valid; no file (the default path
    /// missing) is the empty configuration.
    pub fn load(flag: Option<&Path>) -> Result<FileConfig, ConfigFileError> {
        let Some((path, required)) = locate(flag) else { return Ok(FileConfig::default()) };
        match std::fs::read_to_string(&path) {
            Ok(text) => FileConfig::parse(&path, &text),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
            // The packaged file is readable by root and group xferstats
            // only: other users run without it, as without the package.
            Err(e) if !required && e.kind() == std::io::ErrorKind::PermissionDenied => {
                let why = format!("{} is not readable by this user: {e}", path.display());
                tracing::info!("no configuration file: {why}");
                Ok(FileConfig { skipped: Some(why), ..FileConfig::default() })
            }
            Err(source) => Err(ConfigFileError::Read { path, source }),
        }
    }

    /// Parses and validates `text`, the content of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<FileConfig, ConfigFileError> {
        let lines = LineIndex::new(text);
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| lines.line(s.start));
            let message = e.message().trim().to_string();
            ConfigFileError::Invalid { path: path.to_path_buf(), line, key: lines.key_at(line), reason: message }
        })?;
        let cx = Cx { path, lines: &lines };
        let mut cfg = FileConfig {
            path: Some(path.to_path_buf()),
            db: cx.setting("db", raw.db, |s| StoreSpec::parse(s).map(|_| s.trim().to_string()))?,
            state_dir: cx.setting("state_dir", raw.state_dir, |s| {
                if s.is_empty() {
                    Err("empty path".to_string())
                } else {
                    Ok(PathBuf::from(s))
                }
            })?,
            db_mode: cx.setting("db_mode", raw.db_mode, str::parse::<DbMode>)?,
            geoip: cx.setting("geoip", raw.geoip, str::parse::<GeoipChoice>)?,
            ip_mode: cx.setting("ip_mode", raw.ip_mode, |s| {
                IpMode::ALL
                    .into_iter()
                    .find(|m| m.name() == s.trim())
                    .ok_or_else(|| format!("not one of {}", IpMode::ALL.map(IpMode::name).join(", ")))
            })?,
            timezone: cx.setting("timezone", raw.timezone, str::parse::<TimeZone>)?,
            server_host: cx.setting("server_host", raw.server_host, host)?,
            inputs: Vec::new(),
            hooks: Vec::new(),
            digest: raw.digest.map(|d| cx.digest(d)).transpose()?,
            skipped: None,
        };
        for section in raw.hook {
            cfg.hooks.push(cx.hook(lines.line(section.span().start), section.into_inner())?);
        }
        for section in raw.input {
            let line = lines.line(section.span().start);
            let r = section.into_inner();
            let Some(p) = r.path else {
                return Err(cx.invalid(line, "input", "an [[input]] section needs a path (a file or a glob)".into()));
            };
            let path_line = lines.line(p.span().start);
            let pattern = glob::Pattern::new(p.get_ref())
                .map_err(|e| cx.invalid(path_line, "input.path", format!("'{}': {e}", p.get_ref())))?;
            cfg.inputs.push(InputSection {
                line,
                path: p.into_inner(),
                pattern,
                format: cx.setting("input.format", r.format, |s| match s.trim() {
                    "auto" => Ok(None),
                    name => Format::from_name(name).map(Some),
                })?,
                timezone: cx.setting("input.timezone", r.timezone, str::parse::<TimeZone>)?,
                rsync_log_format: cx.setting("input.rsync_log_format", r.rsync_log_format, LogFormat::compile)?,
                proftpd_log_format: cx.setting(
                    "input.proftpd_log_format",
                    r.proftpd_log_format,
                    ExtendedFormat::compile,
                )?,
                server_host: cx.setting("input.server_host", r.server_host, host)?,
            });
        }
        Ok(cfg)
    }

    /// The section whose glob matches `path` (as given, or made absolute),
    /// the first in file order.
    pub fn section_for(&self, path: &Path) -> Option<&InputSection> {
        // As the expansion of the glob reads it: `*` stays within one
        // path component.
        let opts = glob::MatchOptions { require_literal_separator: true, ..glob::MatchOptions::new() };
        let absolute = std::path::absolute(path).ok();
        self.inputs.iter().find(|s| {
            s.pattern.matches_path_with(path, opts)
                || absolute.as_deref().is_some_and(|a| s.pattern.matches_path_with(a, opts))
        })
    }

    /// Every file the sections' globs match now, in section order and
    /// sorted by name within a section, each once.
    pub fn input_paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for s in &self.inputs {
            // The pattern compiled when the file was read: glob() cannot fail.
            let Ok(found) = glob::glob(&s.path) else { continue };
            let mut found: Vec<PathBuf> = found.filter_map(Result::ok).filter(|p| p.is_file()).collect();
            found.sort();
            for p in found {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// The file's name for messages (`(none)` without a file, with the
    /// reason when the default file was not readable).
    pub fn describe(&self) -> String {
        match (&self.path, &self.skipped) {
            (Some(p), _) => p.display().to_string(),
            (None, Some(why)) => format!("(none: {why})"),
            (None, None) => "(none)".to_string(),
        }
    }

    /// `base` split into one import per set of options: each input gets the
    /// options of its section where the command line left the default
    /// (`given` says which it set), then the file's top-level `timezone` and
    /// `server_host`, then `base`'s. Inputs with equal options share one
    /// import, in the order of their first input.
    pub fn plan(&self, base: &IngestOptions, given: &Given) -> Vec<IngestOptions> {
        let mut plans: Vec<IngestOptions> = Vec::new();
        for input in &base.inputs {
            let section = match input {
                Source::Path(p) => self.section_for(p),
                Source::Stdin => None,
            };
            let mut o = IngestOptions { inputs: Vec::new(), ..base.clone() };
            if !given.timezone {
                if let Some(t) = section.and_then(|s| s.timezone.as_ref()).or(self.timezone.as_ref()) {
                    o.timezone = t.value;
                }
            }
            if !given.server_host {
                if let Some(h) = section.and_then(|s| s.server_host.as_ref()).or(self.server_host.as_ref()) {
                    o.server_host = h.value.clone();
                }
            }
            if let Some(s) = section {
                if let (false, Some(f)) = (given.format, &s.format) {
                    o.format = f.value;
                }
                if let (false, Some(f)) = (given.rsync_log_format, &s.rsync_log_format) {
                    o.rsync_log_format = f.value.clone();
                }
                if let (false, Some(f)) = (given.proftpd_log_format, &s.proftpd_log_format) {
                    o.proftpd_log_format = f.value.clone();
                }
            }
            match plans.iter_mut().find(|p| same_options(p, &o)) {
                Some(p) => p.inputs.push(input.clone()),
                None => {
                    o.inputs.push(input.clone());
                    plans.push(o);
                }
            }
        }
        plans
    }
}

/// Which per-input options the command line set (they win over the file).
#[derive(Debug, Clone, Copy, Default)]
pub struct Given {
    /// `--format`.
    pub format: bool,
    /// `--timezone`.
    pub timezone: bool,
    /// `--rsync-log-format`.
    pub rsync_log_format: bool,
    /// `--proftpd-log-format`.
    pub proftpd_log_format: bool,
    /// `--server-host`.
    pub server_host: bool,
}

/// Whether `a` and `b` read their inputs the same way.
fn same_options(a: &IngestOptions, b: &IngestOptions) -> bool {
    a.format == b.format
        && a.timezone == b.timezone
        && a.rsync_log_format == b.rsync_log_format
        && a.proftpd_log_format == b.proftpd_log_format
        && a.server_host == b.server_host
}

/// `b`, the report of a later import of the same run (same store), added
/// to `a`.
pub fn merge_reports(a: &mut IngestReport, b: IngestReport) {
    a.inputs.extend(b.inputs);
    a.events_new += b.events_new;
    a.events_dup += b.events_dup;
    a.samples.extend(b.samples);
    a.elapsed += b.elapsed;
}

/// A server host name: not empty, no white space.
fn host(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() || t.chars().any(char::is_whitespace) {
        Err("not a host name".to_string())
    } else {
        Ok(t.to_string())
    }
}

/// Parsing context: the file and its line index.
struct Cx<'a> {
    path: &'a Path,
    lines: &'a LineIndex<'a>,
}

impl Cx<'_> {
    fn invalid(&self, line: usize, key: &str, reason: String) -> ConfigFileError {
        ConfigFileError::Invalid { path: self.path.to_path_buf(), line, key: key.to_string(), reason }
    }

    /// `raw` parsed by `parse`; an error names the file, line and `key`.
    fn setting<T, E: std::fmt::Display>(
        &self,
        key: &str,
        raw: Option<Spanned<String>>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<Setting<T>>, ConfigFileError> {
        let Some(raw) = raw else { return Ok(None) };
        let line = self.lines.line(raw.span().start);
        let text = raw.into_inner();
        match parse(&text) {
            Ok(value) => Ok(Some(Setting { value, raw: text, line })),
            Err(e) => Err(self.invalid(line, key, format!("'{text}': {}", without_flag(&e.to_string())))),
        }
    }
}

impl Cx<'_> {
    /// A `[[hook]]` section starting on `line`; an error names the line of
    /// the key at fault (found by its text) and `hook.KEY`.
    fn hook(&self, line: usize, table: toml::Table) -> Result<(usize, crate::actions::Hook), ConfigFileError> {
        use crate::actions::hook::{HookBuilder, KeyValue};
        let key_line = |key: &str| {
            (line..line + 200)
                .take_while(|l| *l == line || !self.lines.line_text(*l).trim_start().starts_with('['))
                .find(|l| self.lines.line_text(*l).trim_start().starts_with(key))
                .unwrap_or(line)
        };
        let mut b = HookBuilder::default();
        for (key, value) in &table {
            let v = match value {
                toml::Value::String(s) => KeyValue::Text(s.clone()),
                toml::Value::Integer(i) => KeyValue::Text(i.to_string()),
                toml::Value::Array(a) => KeyValue::List(
                    a.iter().map(|v| v.as_str().map(str::to_string)).collect::<Option<Vec<_>>>().ok_or_else(|| {
                        self.invalid(key_line(key), &format!("hook.{key}"), "a list of strings".into())
                    })?,
                ),
                _ => {
                    return Err(self.invalid(key_line(key), &format!("hook.{key}"), "a string, number or list".into()))
                }
            };
            b.set(key, v);
        }
        let hook = b.build().map_err(|e| {
            let at = if e.key == "hook" { line } else { key_line(&e.key) };
            self.invalid(at, &format!("hook.{}", e.key), e.reason)
        })?;
        Ok((line, hook))
    }
}

impl Cx<'_> {
    /// The `[digest]` section; an error names the line and `digest.KEY`,
    /// never the webhook URL.
    fn digest(&self, raw: Spanned<RawDigest>) -> Result<DigestSection, ConfigFileError> {
        use crate::report::digest::{check_url, is_mail_address, Payload};
        let line = self.lines.line(raw.span().start);
        let r = raw.into_inner();
        let send = match r.send {
            Some(url) => {
                let at = self.lines.line(url.span().start);
                let url = url.into_inner();
                check_url(&url).map_err(|e| self.invalid(at, "digest.send", e.to_string()))?;
                Some(Setting { value: url.trim().to_string(), raw: url, line: at })
            }
            None => None,
        };
        let address = |s: &str| if is_mail_address(s) { Ok(s.to_string()) } else { Err("not a mail address") };
        let mail_to = match r.mail_to {
            Some(list) => {
                let at = self.lines.line(list.span().start);
                let list = list.into_inner();
                for a in &list {
                    address(a).map_err(|e| self.invalid(at, "digest.mail_to", format!("'{a}': {e}")))?;
                }
                if list.is_empty() {
                    return Err(self.invalid(at, "digest.mail_to", "an empty list".into()));
                }
                Some(Setting { raw: list.join(", "), value: list, line: at })
            }
            None => None,
        };
        Ok(DigestSection {
            line,
            send,
            payload: self.setting("digest.payload", r.payload, |s| {
                <Payload as clap::ValueEnum>::from_str(s.trim(), false).map_err(|_| "slack or json")
            })?,
            mail_to,
            mail_from: self.setting("digest.mail_from", r.mail_from, address)?,
            sendmail: self.setting("digest.sendmail", r.sendmail, |s| {
                if s.is_empty() {
                    Err("empty path")
                } else {
                    Ok(PathBuf::from(s))
                }
            })?,
        })
    }
}

/// A library message about a flag (`--timezone 'X': reason`) said of a
/// key of the file: the reason only (the caller names key and value).
fn without_flag(msg: &str) -> &str {
    match msg.strip_prefix("--") {
        Some(rest) if rest.contains("': ") => rest.split_once("': ").map_or(msg, |(_, reason)| reason),
        _ => msg,
    }
}

/// Line numbers and table headers of the file's text.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { text, starts }
    }

    /// 1-based line of byte `offset`.
    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).max(1)
    }

    fn line_text(&self, line: usize) -> &'a str {
        let start = self.starts.get(line - 1).copied().unwrap_or(self.text.len());
        let end = self.starts.get(line).copied().unwrap_or(self.text.len());
        &self.text[start..end]
    }

    /// The dotted key on `line` (`input.format`), or its table header.
    fn key_at(&self, line: usize) -> String {
        let text = self.line_text(line).trim();
        let table = |l: &str| l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        if text.starts_with('[') {
            return table(text.split('#').next().unwrap_or(text));
        }
        let key = text.split_once('=').map_or(text, |(k, _)| k).trim().trim_matches('"').to_string();
        let header = (1..line).rev().map(|l| self.line_text(l).trim()).find(|l| l.starts_with('['));
        match header {
            Some(h) => format!("{}.{key}", table(h.split('#').next().unwrap_or(h))),
            None => key,
        }
    }
}

/// Where an effective setting comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env(&'static str),
    /// The file, at this line.
    File(usize),
    /// The built-in default.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => f.write_str("command line"),
            Origin::Env(v) => write!(f, "environment {v}"),
            Origin::File(l) => write!(f, "file, line {l}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// One effective global setting, for `xferstats config check`.
#[derive(Debug, Clone)]
pub struct Effective {
    /// Key of the file.
    pub key: &'static str,
    /// The value as text (masked when printed).
    pub value: String,
    /// Where it comes from.
    pub origin: Origin,
}

/// The value `flag`/`env` (clap's `value_source` tells which), else the
/// file's, else `default`: the precedence of every global setting.
pub fn resolve<T>(given: Option<(T, Origin)>, file: Option<(T, usize)>, default: T) -> (T, Origin) {
    given.or_else(|| file.map(|(v, line)| (v, Origin::File(line)))).unwrap_or((default, Origin::Default))
}

/// The effective configuration as TOML, each value with its origin in a
/// comment, passwords and tokens masked; then the `[[input]]` sections.
pub fn render_effective(file: &FileConfig, settings: &[Effective]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "# configuration file: {}", file.describe());
    let _ = writeln!(s, "# precedence: command line > environment > file > defaults; secrets masked");
    for e in settings {
        let _ = writeln!(s, "{} = {}  # {}", e.key, quoted(&mask_secrets(&e.value)), e.origin);
    }
    for i in &file.inputs {
        let _ = writeln!(s, "\n[[input]]  # line {}", i.line);
        let _ = writeln!(s, "path = {}", quoted(&i.path));
        let keys: [(&str, Option<&str>); 5] = [
            ("format", i.format.as_ref().map(|v| v.raw.as_str())),
            ("timezone", i.timezone.as_ref().map(|v| v.raw.as_str())),
            ("rsync_log_format", i.rsync_log_format.as_ref().map(|v| v.raw.as_str())),
            ("proftpd_log_format", i.proftpd_log_format.as_ref().map(|v| v.raw.as_str())),
            ("server_host", i.server_host.as_ref().map(|v| v.raw.as_str())),
        ];
        for (k, v) in keys {
            if let Some(v) = v {
                let _ = writeln!(s, "{k} = {}", quoted(v));
            }
        }
    }
    s.push_str(&render_hooks(file.hooks.iter().map(|(line, h)| (format!("line {line}"), h))));
    s
}

/// The `[digest]` section for `config check`: the file's keys, the webhook
/// URL as its origin only; `env_url`, the URL of `XFERSTATS_DIGEST_URL`,
/// wins over the file's (as it does when the digest runs).
pub fn render_digest(section: Option<&DigestSection>, env_url: Option<&str>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if section.is_none() && env_url.is_none() {
        return s;
    }
    match section {
        Some(d) => {
            let _ = writeln!(s, "\n[digest]  # line {}", d.line);
        }
        None => s.push_str("\n[digest]\n"),
    }
    let send = match (env_url, section.and_then(|d| d.send.as_ref())) {
        (Some(url), _) => Some((url, Origin::Env("XFERSTATS_DIGEST_URL"))),
        (None, Some(f)) => Some((f.value.as_str(), Origin::File(f.line))),
        (None, None) => None,
    };
    if let Some((url, origin)) = send {
        let _ = writeln!(s, "send = {}  # {origin}", quoted(&crate::actions::hook::mask_url(url)));
    }
    if let Some(d) = section {
        if let Some(p) = &d.payload {
            let _ = writeln!(s, "payload = {}", quoted(&p.raw));
        }
        if let Some(m) = &d.mail_to {
            let list = toml::Value::Array(m.value.iter().cloned().map(toml::Value::String).collect());
            let _ = writeln!(s, "mail_to = {list}");
        }
        for (k, v) in [
            ("mail_from", &d.mail_from.as_ref().map(|v| v.raw.clone())),
            ("sendmail", &d.sendmail.as_ref().map(|v| v.raw.clone())),
        ] {
            if let Some(v) = v {
                let _ = writeln!(s, "{k} = {}", quoted(v));
            }
        }
    }
    s
}

/// Hooks as `[[hook]]` sections, each with where it comes from, URLs
/// masked (for `config check`).
pub fn render_hooks<'h>(hooks: impl Iterator<Item = (String, &'h crate::actions::Hook)>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for (origin, h) in hooks {
        let _ = writeln!(s, "\n[[hook]]  # {origin}");
        let _ = writeln!(s, "name = {}", quoted(&h.name));
        for (k, v) in h.describe().into_iter().filter(|(k, _)| k != "name") {
            // An argv as the TOML list it can be written as.
            let value = match serde_json::from_str::<Vec<String>>(&v) {
                Ok(argv) if k == "exec" => toml::Value::Array(argv.into_iter().map(toml::Value::String).collect()),
                _ => match v.parse::<i64>() {
                    Ok(n) if ["min_bytes", "timeout", "attempts", "failed_logins"].contains(&k.as_str()) => {
                        toml::Value::Integer(n)
                    }
                    _ => toml::Value::String(v),
                },
            };
            let _ = writeln!(s, "{k} = {value}");
        }
    }
    s
}

/// `v` as a TOML string (escaped, so control characters cannot reach the
/// terminal).
fn quoted(v: &str) -> String {
    toml::Value::String(v.to_string()).to_string()
}

/// `value` with the password of a URL and the values of secret-looking
/// query parameters (token, password, secret, key) replaced by `****`;
/// anything that is not a URL with a host unchanged.
pub fn mask_secrets(value: &str) -> String {
    let Ok(mut url) = url::Url::parse(value) else { return value.to_string() };
    if !url.has_host() {
        return value.to_string();
    }
    let mut changed = false;
    if url.password().is_some() {
        let _ = url.set_password(Some("****"));
        changed = true;
    }
    let secret = |k: &str| {
        let k = k.to_ascii_lowercase();
        ["token", "password", "passwd", "secret", "key", "pass"].iter().any(|s| k.contains(s))
    };
    let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if pairs.iter().any(|(k, _)| secret(k)) {
        let mut q = url.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, if secret(k) { "****" } else { v });
        }
        drop(q);
        changed = true;
    }
    if changed {
        url.to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileConfig, ConfigFileError> {
        FileConfig::parse(Path::new("x.toml"), text)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_globals_and_sections_with_their_lines() {
        let c = parse(
            "# comment\ndb = \"sqlite:/tmp/x.db\"\nip_mode = \"truncate\"\ngeoip = \"off\"\n\n[[input]]\npath = \"/var/log/rsyncd-custom.log*\"\nformat = \"rsyncd\"\nrsync_log_format = \"%t %a %h %o %m %u %f %l %b %i\"\n\n[[input]]\npath = \"/srv/remote/*.log\"\ntimezone = \"Europe/Paris\"\nserver_host = \"ftp2\"\n",
        )
        .unwrap();
        assert_eq!(c.db.as_ref().unwrap().line, 2);
        assert_eq!(c.ip_mode.as_ref().unwrap().value, IpMode::Truncate);
        assert_eq!(c.geoip.as_ref().unwrap().value, GeoipChoice::Off);
        assert_eq!(c.inputs.len(), 2);
        assert_eq!(c.inputs[0].line, 6);
        assert_eq!(c.inputs[0].format.as_ref().unwrap().value, Some(Format::from_name("rsyncd").unwrap()));
        assert_eq!(c.inputs[1].server_host.as_ref().unwrap().value, "ftp2");
        assert_eq!(c.inputs[1].server_host.as_ref().unwrap().line, 14);
        let hit = c.section_for(Path::new("/var/log/rsyncd-custom.log.2.gz")).unwrap();
        assert_eq!(hit.line, 6);
        assert_eq!(c.section_for(Path::new("/srv/remote/a.log")).unwrap().line, 11);
        assert!(c.section_for(Path::new("/var/log/auth.log")).is_none());
        assert!(c.section_for(Path::new("/srv/remote/old/a.log")).is_none());
    }

    #[test]
    fn errors_name_line_and_key() {
        assert_eq!(
            err("db = \"sqlite:/x\"\nip_mode = \"all\"\n"),
            "x.toml:2: ip_mode: 'all': not one of hmac, truncate, full, drop"
        );
        let e = err("[[input]]\npath = \"/a\"\ntimezone = \"Mars/Olympus\"\n");
        assert!(e.starts_with("x.toml:3: input.timezone: 'Mars/Olympus': not UTC"), "{e}");
        let e = err("[[input]]\npath = \"/a\"\nformat = \"nope\"\n");
        assert!(e.starts_with("x.toml:3: input.format: 'nope': "), "{e}");
        let e = err("[[input]]\npath = \"/a\"\nrsync_log_format = \"%Q\"\n");
        assert!(e.starts_with("x.toml:3: input.rsync_log_format: '%Q': "), "{e}");
        let e = err("\n\ngeo_ip = \"off\"\n");
        assert!(e.starts_with("x.toml:3: geo_ip: unknown field `geo_ip`"), "{e}");
        let e = err("[[input]]\npath = \"/a\"\nformat = 5\n");
        assert!(e.starts_with("x.toml:3: input.format: invalid type: integer `5`"), "{e}");
        let e = err("db = \"sqlite:/x\"\n\n[[input]]\nformat = \"rsyncd\"\n");
        assert_eq!(e, "x.toml:3: input: an [[input]] section needs a path (a file or a glob)");
        let e = err("[[input]]\npath = \"/a/[\"\n");
        assert!(e.starts_with("x.toml:2: input.path: '/a/[': "), "{e}");
        let e = err("db = \"mysql://x\"\n");
        assert!(e.starts_with("x.toml:1: db: 'mysql://x': "), "{e}");
        let e = err("db_mode = \"999\"\n");
        assert!(e.starts_with("x.toml:1: db_mode: '999': "), "{e}");
        let e = err("a = [\n");
        assert!(e.starts_with("x.toml:"), "{e}");
    }

    #[test]
    fn a_missing_default_file_is_no_configuration_but_a_named_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        assert!(matches!(FileConfig::load(Some(&missing)), Err(ConfigFileError::Read { .. })));
        assert!(FileConfig::load(Some(Path::new(""))).unwrap().path.is_none());
        assert_eq!(locate(None), Some((PathBuf::from(DEFAULT_PATH), false)));
    }

    #[test]
    fn masks_passwords_and_tokens() {
        assert_eq!(mask_secrets("postgres://xfer:s3cret@db:5432/x"), "postgres://xfer:****@db:5432/x");
        assert_eq!(
            mask_secrets("influxdb2://h:8086/org/b?token=abc&daily_bucket=d"),
            "influxdb2://h:8086/org/b?token=****&daily_bucket=d"
        );
        assert_eq!(mask_secrets("sqlite:/var/lib/xferstats/x.db"), "sqlite:/var/lib/xferstats/x.db");
        assert_eq!(mask_secrets("postgres://xfer@db/x"), "postgres://xfer@db/x");
        assert_eq!(mask_secrets("/plain/path"), "/plain/path");
    }

    #[test]
    fn the_digest_section_with_its_url_masked() {
        let c = parse(
            "db = \"sqlite:/x\"\n\n[digest]\nsend = \"https://hooks.example/T0/B0/s3cret\"\nmail_to = [\"a@example.org\", \"b@example.org\"]\nsendmail = \"/usr/bin/msmtp\"\n",
        )
        .unwrap();
        let d = c.digest.as_ref().unwrap();
        assert_eq!((d.line, d.send.as_ref().unwrap().line), (3, 4));
        assert_eq!(d.mail_to.as_ref().unwrap().value, ["a@example.org", "b@example.org"]);
        assert_eq!(
            render_digest(Some(d), None),
            "\n[digest]  # line 3\nsend = \"https://hooks.example/****\"  # file, line 4\nmail_to = [\"a@example.org\", \"b@example.org\"]\nsendmail = \"/usr/bin/msmtp\"\n"
        );
        let shown = render_digest(Some(d), Some("https://other.example/x?token=t0k"));
        assert!(
            shown.contains("send = \"https://other.example/****\"  # environment XFERSTATS_DIGEST_URL\n"),
            "{shown}"
        );
        assert_eq!(render_digest(None, None), "");
        let e = err("[digest]\nsend = \"mailto:s3cret@x\"\n");
        assert!(e.starts_with("x.toml:2: digest.send: ") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn precedence_is_given_then_file_then_default() {
        let file = Some((2, 7));
        assert_eq!(resolve(Some((1, Origin::Flag)), file, 3), (1, Origin::Flag));
        assert_eq!(resolve(Some((1, Origin::Env("X"))), file, 3), (1, Origin::Env("X")));
        assert_eq!(resolve(None, file, 3), (2, Origin::File(7)));
        assert_eq!(resolve(None, None, 3), (3, Origin::Default));
    }

    #[test]
    fn without_flag_keeps_the_reason() {
        assert_eq!(without_flag("--timezone 'X': not UTC"), "not UTC");
        assert_eq!(without_flag("plain reason"), "plain reason");
    }
}
