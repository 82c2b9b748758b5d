//! Hooks: trigger, filters, action, and the payload of an event.
//!
//! A hook is written as keys and values, the same keys in a configuration
//! file's `[[hook]]` section and in a `--hook` flag ([`KEYS`] lists them,
//! `Hook::set` reads them both). The payload is a JSON object whose
//! fields [`FIELDS`] lists; a command gets each field as an `XFERSTATS_*`
//! variable too ([`env_vars`]), so the two never disagree.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::actions::alert::{Alert, Count, Per, Rule};
use crate::model::{client_key, Direction, Event, Granularity, LoginOutcome, Status, Transfer};
use crate::sinks::HookRow;

/// What a hook reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// An upload the server logged as completed.
    Upload,
    /// A download the server logged as completed.
    Download,
    /// A file deletion the server logged as done.
    Delete,
    /// An accepted login.
    Login,
    /// A rejected login (bad credentials or unknown user).
    LoginFailed,
    /// A failed-login alert ([`crate::actions::alert`]).
    Alert,
}

impl Trigger {
    /// Every trigger, in the order the help lists them.
    pub const ALL: [Trigger; 6] =
        [Trigger::Upload, Trigger::Download, Trigger::Delete, Trigger::Login, Trigger::LoginFailed, Trigger::Alert];

    /// The name written in configurations and payloads.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Upload => "upload",
            Trigger::Download => "download",
            Trigger::Delete => "delete",
            Trigger::Login => "login",
            Trigger::LoginFailed => "login-failed",
            Trigger::Alert => "alert",
        }
    }

    fn parse(s: &str) -> Result<Trigger, String> {
        Trigger::ALL
            .into_iter()
            .find(|t| t.name() == s.trim())
            .ok_or_else(|| format!("unknown trigger '{s}' (one of {})", Trigger::ALL.map(Trigger::name).join(", ")))
    }

    /// Whether the trigger is about transfers (the transfer filters apply).
    fn transfers(self) -> bool {
        matches!(self, Trigger::Upload | Trigger::Download | Trigger::Delete)
    }

    /// Whether `e` is an event of this trigger. Only completed transfers
    /// count: an interrupted, failed or forced-closed upload never fires.
    fn fires_on(self, e: &Event) -> bool {
        match (self, e) {
            (Trigger::Upload | Trigger::Download | Trigger::Delete, Event::Transfer(t)) => {
                t.status == Status::Completed
                    && t.direction
                        == match self {
                            Trigger::Upload => Direction::Upload,
                            Trigger::Download => Direction::Download,
                            _ => Direction::Delete,
                        }
            }
            (Trigger::Login, Event::Login(l)) => l.outcome == LoginOutcome::Ok,
            (Trigger::LoginFailed, Event::Login(l)) => l.outcome != LoginOutcome::Ok,
            _ => false,
        }
    }
}

/// The keys of a hook, with what they mean: the one list the flag parser,
/// the configuration file and the help read.
pub const KEYS: [(&str, &str); 17] = [
    ("on", "the trigger: upload, download, delete, login, login-failed or alert (required)"),
    ("name", "the hook's name in the outbox and `hooks status` (default: the trigger and a hash of the hook)"),
    ("user", "only events of this user"),
    ("module", "only transfers in this module or virtual root"),
    ("host", "only events of this server host"),
    ("protocol", "only events over this protocol (rsync, sftp, scp, ftp, ftps, ssh, http)"),
    ("path", "only transfers whose path matches this glob (`*` does not cross `/`)"),
    ("min_bytes", "only transfers of at least this many bytes"),
    ("exec", "run this command (argv; no shell unless it says `sh -c`), the event as JSON on stdin"),
    ("post", "POST the event as JSON to this http(s) URL"),
    ("format", "`json` (the event, default) or `slack` (a Slack/Mattermost `{\"text\": …}` message) for post"),
    ("timeout", "seconds a delivery may take (default 30)"),
    ("attempts", "attempts before a delivery is parked (default 10)"),
    ("failed_logins", "alert: this many failed logins … (default 5)"),
    ("within", "alert: … within this time (`10m`, `1h`, `90s`; default 10m) …"),
    ("per", "alert: … from one `client` (default) or for one `user`"),
    (
        "count",
        "alert: what a failure is: `attempts` (failed logins, default) or `lines` (as fail2ban's sshd filter: \
         also the `Invalid user` line, once per connection)",
    ),
];

/// The payload fields: name and meaning. A command gets each as
/// `XFERSTATS_<NAME>` (upper case); a field without a value is left out.
pub const FIELDS: [(&str, &str); 28] = [
    ("event_id", "the event's id (decimal text): the idempotency key"),
    ("hook", "the hook's name"),
    ("trigger", "the trigger"),
    ("time", "when the event happened (RFC 3339, UTC)"),
    ("user", "the user"),
    ("client", "the client as the IP mode stores it (address, network or keyed hash)"),
    ("country", "the client's country (GeoIP)"),
    ("protocol", "the protocol"),
    ("server_host", "the server host"),
    ("session", "the server's session id"),
    ("source", "the log format"),
    ("direction", "transfers: upload, download or delete"),
    ("status", "transfers: completed"),
    ("path", "transfers: the file path as logged"),
    ("module", "transfers: the module or virtual root"),
    ("bytes", "transfers: bytes moved"),
    ("file_size", "transfers: the file's size when logged"),
    ("start", "transfers: when it started, when logged (RFC 3339)"),
    ("granularity", "transfers: file, or session (an rsync session logged without per-file lines)"),
    ("outcome", "logins: ok, failed or invalid_user"),
    ("method", "logins: the authentication method when logged"),
    ("rule", "alerts: the rule, as text"),
    ("per", "alerts: client or user"),
    ("key", "alerts: the client or user the failures came from"),
    ("failures", "alerts: failed logins in the window"),
    ("first", "alerts: the window's first failed login (RFC 3339)"),
    ("last", "alerts: the window's last failed login, the alert's event (RFC 3339)"),
    ("text", "slack format only: the one-line message"),
];

/// A hook's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run a program (argv) with the event on stdin and in `XFERSTATS_*`.
    Exec(Vec<String>),
    /// POST the event to a URL.
    Post {
        /// The URL (may hold a token: never printed unmasked).
        url: String,
        /// A Slack/Mattermost `text` message instead of the event JSON.
        slack: bool,
    },
}

/// One configured hook.
#[derive(Debug, Clone)]
pub struct Hook {
    /// Its name (outbox rows refer to it).
    pub name: String,
    /// What it reacts to.
    pub trigger: Trigger,
    user: Option<String>,
    module: Option<String>,
    host: Option<String>,
    protocol: Option<String>,
    path: Option<glob::Pattern>,
    min_bytes: Option<u64>,
    /// What it does.
    pub action: Action,
    /// Seconds a delivery may take.
    pub timeout: std::time::Duration,
    /// Attempts before a delivery is parked.
    pub attempts: u32,
    /// The alert rule (trigger `alert` only).
    pub rule: Option<Rule>,
    /// The keys as written, in order, for `config check` (secrets masked
    /// there).
    pub written: Vec<(String, String)>,
}

/// What is wrong with a hook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct HookError {
    /// The key (or `hook` for the whole hook).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn bad(key: &str, reason: impl Into<String>) -> HookError {
    HookError { key: key.to_string(), reason: reason.into() }
}

/// A value of a hook key: text, or a list (the argv of `exec` in a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    /// A single value.
    Text(String),
    /// A list of strings.
    List(Vec<String>),
}

/// Builds a [`Hook`] from its keys.
#[derive(Debug, Default)]
pub struct HookBuilder {
    keys: Vec<(String, KeyValue)>,
}

impl HookBuilder {
    /// Adds key `key`; checked by [`HookBuilder::build`].
    pub fn set(&mut self, key: &str, value: KeyValue) {
        self.keys.push((key.to_string(), value));
    }

    /// The hook, or what is wrong with it (the first problem).
    pub fn build(self) -> Result<Hook, HookError> {
        let mut trigger = None;
        let mut name = None;
        let mut hook = Hook {
            name: String::new(),
            trigger: Trigger::Upload,
            user: None,
            module: None,
            host: None,
            protocol: None,
            path: None,
            min_bytes: None,
            action: Action::Exec(Vec::new()),
            timeout: std::time::Duration::from_secs(30),
            attempts: 10,
            rule: None,
            written: Vec::new(),
        };
        let mut action = None;
        let mut slack = false;
        let (mut n, mut within, mut per, mut count) = (None, None, None, None);
        for (key, value) in &self.keys {
            if !KEYS.iter().any(|(k, _)| k == key) {
                let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                return Err(bad(key, format!("unknown key (one of {})", known.join(", "))));
            }
            if self.keys.iter().filter(|(k, _)| k == key).count() > 1 {
                return Err(bad(key, "given twice"));
            }
            let text = match value {
                KeyValue::Text(t) => t.clone(),
                KeyValue::List(_) if key == "exec" => String::new(),
                KeyValue::List(_) => return Err(bad(key, "a single value, not a list")),
            };
            let text = text.trim().to_string();
            match key.as_str() {
                "on" => trigger = Some(Trigger::parse(&text).map_err(|r| bad(key, r))?),
                "name" => {
                    if text.is_empty() || text.chars().any(|c| c.is_control() || c == ',') {
                        return Err(bad(key, "a non-empty name without commas or control characters"));
                    }
                    name = Some(text.clone());
                }
                "user" => hook.user = Some(text.clone()),
                "module" => hook.module = Some(text.clone()),
                "host" => hook.host = Some(text.clone()),
                "protocol" => hook.protocol = Some(text.clone()),
                "path" => hook.path = Some(glob::Pattern::new(&text).map_err(|e| bad(key, format!("'{text}': {e}")))?),
                "min_bytes" => hook.min_bytes = Some(number(key, &text)?),
                "exec" => {
                    let argv = match value {
                        KeyValue::List(v) => v.clone(),
                        KeyValue::Text(t) => argv_of(t).map_err(|r| bad(key, r))?,
                    };
                    if argv.first().is_none_or(|p| p.is_empty()) {
                        return Err(bad(key, "needs a program"));
                    }
                    action = Some(Action::Exec(argv));
                }
                "post" => {
                    let url = url::Url::parse(&text).map_err(|e| bad(key, format!("not a URL: {e}")))?;
                    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
                        return Err(bad(key, "an http:// or https:// URL"));
                    }
                    action = Some(Action::Post { url: text.clone(), slack: false });
                }
                "format" => {
                    slack = match text.as_str() {
                        "json" => false,
                        "slack" => true,
                        _ => return Err(bad(key, format!("'{text}': json or slack"))),
                    }
                }
                "timeout" => {
                    let s = number(key, &text)?;
                    if s == 0 {
                        return Err(bad(key, "at least 1 second"));
                    }
                    hook.timeout = std::time::Duration::from_secs(s);
                }
                "attempts" => {
                    hook.attempts = u32::try_from(number(key, &text)?)
                        .ok()
                        .filter(|a| *a > 0)
                        .ok_or_else(|| bad(key, "1 or more"))?
                }
                "failed_logins" => n = Some(number(key, &text)?),
                "within" => {
                    within = Some(duration(&text).ok_or_else(|| bad(key, format!("'{text}': like 90s, 10m, 1h")))?)
                }
                "per" => per = Some(Per::parse(&text).map_err(|r| bad(key, r))?),
                "count" => count = Some(Count::parse(&text).map_err(|r| bad(key, r))?),
                _ => unreachable!("every key of KEYS is handled"),
            }
            let shown = match value {
                KeyValue::Text(t) => t.clone(),
                KeyValue::List(v) => serde_json::to_string(v).unwrap_or_default(),
            };
            hook.written.push((key.clone(), shown));
        }
        let trigger = trigger.ok_or_else(|| bad("on", "every hook needs a trigger (on=upload, …)"))?;
        hook.trigger = trigger;
        let mut action = action.ok_or_else(|| bad("hook", "needs an action: exec=… or post=…"))?;
        if self.keys.iter().any(|(k, _)| k == "exec") && self.keys.iter().any(|(k, _)| k == "post") {
            return Err(bad("hook", "exec and post are two hooks, not one"));
        }
        match &mut action {
            Action::Post { slack: s, .. } => *s = slack,
            Action::Exec(_) if self.keys.iter().any(|(k, _)| k == "format") => {
                return Err(bad("format", "only for post (a command gets the event as JSON)"))
            }
            Action::Exec(_) => {}
        }
        hook.action = action;
        if !trigger.transfers() {
            for k in ["module", "path", "min_bytes"] {
                if self.keys.iter().any(|(key, _)| key == k) {
                    return Err(bad(k, format!("only for transfer triggers, not {}", trigger.name())));
                }
            }
        }
        if trigger == Trigger::Alert {
            let mut rule = Rule::new(n.unwrap_or(5), within.unwrap_or(600_000_000), per.unwrap_or(Per::Client))
                .map_err(|r| bad("failed_logins", r))?;
            rule.count = count.unwrap_or(Count::Attempts);
            hook.rule = Some(rule);
        } else if let Some(k) =
            ["failed_logins", "within", "per", "count"].into_iter().find(|k| self.keys.iter().any(|(key, _)| key == k))
        {
            return Err(bad(k, "only for alert hooks (on=alert)"));
        }
        hook.name = name.unwrap_or_else(|| {
            let all: Vec<String> = self.keys.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!("{}-{:08x}", trigger.name(), xxhash_rust::xxh3::xxh3_64(all.join("\n").as_bytes()) as u32)
        });
        Ok(hook)
    }
}

/// A whole number of key `key`.
fn number(key: &str, text: &str) -> Result<u64, HookError> {
    text.parse().map_err(|_| bad(key, format!("'{text}': a whole number")))
}

/// `90s`, `10m`, `1h`, `1d` in µs (more than 0).
pub fn duration(text: &str) -> Option<i64> {
    let t = text.trim();
    let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    let unit: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(unit * 1_000_000).filter(|d| *d > 0)
}

/// The argv of an `exec=` value of a flag: a JSON array of strings, or
/// words split at white space (no quoting: write a JSON array, or use the
/// configuration file, for arguments with spaces).
fn argv_of(text: &str) -> Result<Vec<String>, String> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str::<Vec<String>>(text).map_err(|e| format!("not a JSON array of strings: {e}"))
    } else {
        Ok(text.split_whitespace().map(str::to_string).collect())
    }
}

impl Hook {
    /// Parses a `--hook` value: `TRIGGER,KEY=VALUE,…` (the keys of
    /// [`KEYS`]); `exec=` takes the rest of the value, commas included.
    pub fn parse_flag(spec: &str) -> Result<Hook, HookError> {
        let mut b = HookBuilder::default();
        let mut rest = spec;
        let mut first = true;
        while !rest.is_empty() {
            let (item, tail) = match rest.split_once(',') {
                Some((i, t)) if !i.trim_start().starts_with("exec=") => (i, t),
                _ => (rest, ""),
            };
            rest = tail;
            let item = item.trim();
            match item.split_once('=') {
                Some((k, v)) => b.set(k.trim(), KeyValue::Text(v.to_string())),
                None if first => b.set("on", KeyValue::Text(item.to_string())),
                None => return Err(bad(item, "expected KEY=VALUE")),
            }
            first = false;
        }
        b.build()
    }

    /// Whether the hook takes event `e` (trigger and filters).
    fn takes(&self, e: &Event) -> bool {
        self.trigger.fires_on(e) && self.passes(e)
    }

    /// Whether event `e` passes the hook's filters.
    fn passes(&self, e: &Event) -> bool {
        let (user, host, protocol) = match e {
            Event::Transfer(t) => (&*t.user, &*t.server_host, t.protocol.as_str()),
            Event::Login(l) => (&*l.user, &*l.server_host, l.protocol.as_str()),
        };
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        if !(eq(&self.user, user) && eq(&self.host, host) && eq(&self.protocol, protocol)) {
            return false;
        }
        match e {
            Event::Transfer(t) => {
                let opts = glob::MatchOptions { require_literal_separator: true, ..glob::MatchOptions::new() };
                self.module.as_deref().is_none_or(|m| t.module.as_deref() == Some(m))
                    && self.path.as_ref().is_none_or(|p| t.path.as_deref().is_some_and(|x| p.matches_with(x, opts)))
                    && self.min_bytes.is_none_or(|n| t.bytes >= n)
            }
            Event::Login(_) => true,
        }
    }

    /// The hook as `config check` prints it: its keys in the order of
    /// [`KEYS`], URLs masked.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut keys: Vec<(String, String)> =
            self.written.iter().map(|(k, v)| (k.clone(), if k == "post" { mask_url(v) } else { v.clone() })).collect();
        keys.sort_by_key(|(k, _)| KEYS.iter().position(|(name, _)| name == k));
        keys
    }
}

/// A hook URL as it may be shown: scheme and host only (webhook URLs carry
/// their token in the path or the query, and may hold a password).
pub fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.has_host() => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path().len() > 1 || u.query().is_some() { "/****" } else { "/" };
            format!("{}://{}{port}{rest}", u.scheme(), u.host_str().unwrap_or(""))
        }
        _ => "****".to_string(),
    }
}

/// The hooks of an import and when they fire.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// The hooks (names unique).
    pub hooks: Vec<Arc<Hook>>,
    /// Only events at most this old (µs) at import time fire; `None`:
    /// every new event (`--hooks-backfill`).
    pub max_age: Option<i64>,
}

impl Hooks {
    /// The hooks `hooks`, refused when two share a name.
    pub fn new(hooks: Vec<Hook>, max_age: Option<i64>) -> Result<Hooks, HookError> {
        for (i, h) in hooks.iter().enumerate() {
            if hooks[..i].iter().any(|o| o.name == h.name) {
                return Err(bad("name", format!("two hooks are named '{}'", h.name)));
            }
        }
        Ok(Hooks { hooks: hooks.into_iter().map(Arc::new).collect(), max_age })
    }

    /// The hook named `name`.
    pub fn get(&self, name: &str) -> Option<&Hook> {
        self.hooks.iter().find(|h| h.name == name).map(|h| &**h)
    }

    /// The names of the hooks.
    pub fn names(&self) -> Vec<&str> {
        self.hooks.iter().map(|h| h.name.as_str()).collect()
    }

    /// The deliveries of the enriched batch `events` at time `now` (µs):
    /// one per hook that takes an event young enough, and one per alert
    /// `alerts` raises (fed every failed login, so its windows are exact
    /// whatever fires). The store keeps those of events it stores for the
    /// first time.
    pub fn rows(&self, events: &[Event], now: i64, alerts: &mut super::AlertWindows) -> Vec<HookRow> {
        let young = |t: i64| self.max_age.is_none_or(|age| t >= now.saturating_sub(age));
        let mut rows = Vec::new();
        for e in events.iter().filter(|e| young(e.time())) {
            for h in self.hooks.iter().filter(|h| h.takes(e)) {
                rows.push(row(h, e, payload(h, e, None)));
            }
        }
        let rules: Vec<&Arc<Hook>> = self.hooks.iter().filter(|h| h.rule.is_some()).collect();
        if !rules.is_empty() {
            let mut failed: Vec<&Event> = events.iter().filter(|e| Trigger::LoginFailed.fires_on(e)).collect();
            failed.sort_by_key(|e| (e.time(), e.id()));
            for e in failed {
                let Event::Login(l) = e else { continue };
                for h in &rules {
                    let rule = h.rule.as_ref().expect("filtered on rules");
                    // Filters (user, host, protocol) choose the failures counted.
                    if !h.passes(e) {
                        continue;
                    }
                    if let Some(alert) = alerts.feed(&h.name, rule, l) {
                        if young(e.time()) {
                            rows.push(row(h, e, payload(h, e, Some(&alert))));
                        }
                    }
                }
            }
        }
        rows
    }
}

fn row(h: &Hook, e: &Event, payload: Map<String, Value>) -> HookRow {
    HookRow {
        hook: h.name.clone(),
        event_id: e.id(),
        event_time: e.time(),
        login: matches!(e, Event::Login(_)),
        trigger: h.trigger.name(),
        payload: Value::Object(payload).to_string(),
    }
}

/// The client of an event as its store keeps it (the IP mode applied).
fn client_of(
    ip: Option<std::net::IpAddr>,
    origin: Option<&crate::model::Origin>,
    host: Option<&str>,
) -> Option<String> {
    client_key(ip, origin.and_then(|o| o.ip_prefix), origin.and_then(|o| o.client_hash.as_deref()), host)
}

/// The payload of event `e` for hook `h` (with `alert`, an alert's).
pub fn payload(h: &Hook, e: &Event, alert: Option<&Alert>) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &'static str, v: Option<Value>| {
        debug_assert!(FIELDS.iter().any(|f| f.0 == k), "{k} is not in FIELDS");
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    let text = |s: &str| Some(Value::String(s.to_string()));
    let time = |t: i64| Some(Value::String(crate::time::rfc3339(t)));
    put("event_id", Some(Value::String(e.id().to_string())));
    put("hook", text(&h.name));
    put("trigger", text(h.trigger.name()));
    put("time", time(e.time()));
    match e {
        Event::Transfer(t) => {
            common(&mut put, &t.user, client_of(t.client_ip, t.origin.as_deref(), t.client_host.as_deref()), t);
        }
        Event::Login(l) => {
            put("user", text(&l.user));
            put("client", client_of(l.client_ip, l.origin.as_deref(), l.client_host.as_deref()).map(Value::String));
            put("country", l.origin.as_deref().and_then(|o| o.country.as_deref()).and_then(text));
            put("protocol", text(l.protocol.as_str()));
            put("server_host", text(&l.server_host));
            put("session", l.session.as_deref().and_then(text));
            put("source", text(l.source.as_str()));
            put("outcome", text(l.outcome.as_str()));
            put("method", l.method.as_deref().and_then(text));
        }
    }
    if let Some(a) = alert {
        put("rule", text(&a.rule));
        put("per", text(a.per.name()));
        put("key", text(&a.key));
        put("failures", Some(Value::from(a.failures)));
        put("first", time(a.first));
        put("last", time(e.time()));
    }
    m
}

/// The transfer fields.
fn common(put: &mut impl FnMut(&'static str, Option<Value>), user: &str, client: Option<String>, t: &Transfer) {
    let text = |s: &str| Some(Value::String(s.to_string()));
    put("user", text(user));
    put("client", client.map(Value::String));
    put("country", t.origin.as_deref().and_then(|o| o.country.as_deref()).and_then(text));
    put("protocol", text(t.protocol.as_str()));
    put("server_host", text(&t.server_host));
    put("session", t.session.as_deref().and_then(text));
    put("source", text(t.source.as_str()));
    put("direction", text(t.direction.as_str()));
    put("status", text(t.status.as_str()));
    put("path", t.path.as_deref().and_then(text));
    put("module", t.module.as_deref().and_then(text));
    put("bytes", Some(Value::from(t.bytes)));
    put("file_size", t.file_size.map(Value::from));
    put("start", t.start.map(|s| Value::String(crate::time::rfc3339(s))));
    put(
        "granularity",
        text(match t.granularity {
            Granularity::File => "file",
            Granularity::Session => "session",
        }),
    );
}

/// The `XFERSTATS_*` variables of a payload: each field upper-cased, its
/// text (numbers in decimal).
pub fn env_vars(payload: &Map<String, Value>) -> Vec<(String, String)> {
    payload
        .iter()
        .filter_map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((format!("XFERSTATS_{}", k.to_ascii_uppercase()), v))
        })
        .collect()
}

/// The one-line message of the `slack` format, sanitised (log-derived
/// text reaches a chat channel).
pub fn slack_text(p: &Map<String, Value>) -> String {
    let f = |k: &str| match p.get(k) {
        Some(Value::String(s)) => crate::sanitize::sanitize_bytes(s.as_bytes(), 300),
        Some(Value::Number(n)) => n.to_string(),
        _ => "-".to_string(),
    };
    let trigger = f("trigger");
    match trigger.as_str() {
        "alert" => format!(
            "xferstats alert: {} failed logins from {} {} between {} and {} on {} ({})",
            f("failures"),
            f("per"),
            f("key"),
            f("first"),
            f("last"),
            f("server_host"),
            f("rule")
        ),
        "login" | "login-failed" => format!(
            "xferstats {trigger}: {} from {} on {} via {} at {} ({})",
            f("user"),
            f("client"),
            f("server_host"),
            f("protocol"),
            f("time"),
            f("outcome")
        ),
        _ => format!(
            "xferstats {trigger}: {} {} {} ({} bytes) from {} on {} via {} at {}",
            f("user"),
            f("direction"),
            f("path"),
            f("bytes"),
            f("client"),
            f("server_host"),
            f("protocol"),
            f("time")
        ),
    }
}

/// The body a delivery sends: the stored payload, or its `slack` message.
pub fn body(hook: &Hook, payload: &str) -> String {
    match (&hook.action, serde_json::from_str::<Map<String, Value>>(payload)) {
        (Action::Post { slack: true, .. }, Ok(p)) => {
            let mut m = Map::new();
            m.insert("text".into(), Value::String(slack_text(&p)));
            Value::Object(m).to_string()
        }
        _ => payload.to_string(),
    }
}

/// The help text of `--hook`: the syntax, then [`KEYS`].
pub fn flag_help() -> String {
    let mut s = String::from(
        "A hook: TRIGGER,KEY=VALUE,… (repeatable; also [[hook]] sections of the configuration file). \
         exec= takes the rest of the value: words split at spaces, or a JSON array. Keys:",
    );
    for (k, what) in KEYS {
        s.push_str(&format!("\n  {k}: {what}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_into_hooks() {
        let h = Hook::parse_flag("upload,module=incoming,min_bytes=10,exec=/usr/bin/env a,b c").unwrap();
        assert_eq!(h.trigger, Trigger::Upload);
        assert_eq!(h.module.as_deref(), Some("incoming"));
        assert_eq!(h.min_bytes, Some(10));
        assert_eq!(h.action, Action::Exec(vec!["/usr/bin/env".into(), "a,b".into(), "c".into()]));
        assert!(h.name.starts_with("upload-"), "{}", h.name);
        let h = Hook::parse_flag(r#"on=upload,name=x,exec=["sh","-c","echo a b"]"#).unwrap();
        assert_eq!(h.action, Action::Exec(vec!["sh".into(), "-c".into(), "echo a b".into()]));
        assert_eq!(h.name, "x");
        let h =
            Hook::parse_flag("alert,failed_logins=3,within=1m,per=user,post=https://h.example/hooks/abc,format=slack")
                .unwrap();
        assert_eq!(h.action, Action::Post { url: "https://h.example/hooks/abc".into(), slack: true });
        assert_eq!(h.rule.as_ref().unwrap().describe(), "3 failed logins within 60 s per user");
        let e = |s: &str| Hook::parse_flag(s).unwrap_err().to_string();
        assert_eq!(e("upload"), "hook: needs an action: exec=… or post=…");
        assert_eq!(
            e("uplod,exec=x"),
            "on: unknown trigger 'uplod' (one of upload, download, delete, login, login-failed, alert)"
        );
        assert_eq!(e("login,module=x,exec=x"), "module: only for transfer triggers, not login");
        assert_eq!(e("upload,within=1m,exec=x"), "within: only for alert hooks (on=alert)");
        assert_eq!(e("login-failed,count=lines,exec=x"), "count: only for alert hooks (on=alert)");
        assert_eq!(e("alert,count=bytes,exec=x"), "count: 'bytes': attempts or lines");
        let h = Hook::parse_flag("alert,count=lines,exec=x").unwrap();
        assert_eq!(h.rule.as_ref().unwrap().count, Count::Lines);
        assert_eq!(Hook::parse_flag("alert,exec=x").unwrap().rule.unwrap().count, Count::Attempts);
        assert_eq!(e("upload,post=ftp://x/"), "post: an http:// or https:// URL");
        assert!(e("upload,colour=red,exec=x").starts_with("colour: unknown key (one of on, name,"));
        assert_eq!(e("upload,user=a,user=b,exec=x"), "user: given twice");
        // The default name is stable.
        assert_eq!(Hook::parse_flag("upload,exec=x").unwrap().name, Hook::parse_flag("upload,exec=x").unwrap().name);
        assert_ne!(Hook::parse_flag("upload,exec=x").unwrap().name, Hook::parse_flag("upload,exec=y").unwrap().name);
    }

    fn transfer(id: u64, secs: i64, direction: Direction, status: Status, module: &str, bytes: u64) -> Event {
        Event::Transfer(Transfer {
            id,
            end: secs * 1_000_000,
            start: None,
            protocol: crate::model::Protocol::Rsync,
            direction,
            status,
            bytes,
            wire_bytes: None,
            file_size: None,
            path: Some(format!("dir/f{id}.csv")),
            module: Some(module.into()),
            user: "alice".into(),
            client_ip: Some("192.0.2.1".parse().unwrap()),
            client_host: None,
            session: None,
            server_host: "h".into(),
            source: crate::formats::Format::from_name("rsyncd").unwrap().source(),
            granularity: Granularity::File,
            origin: None,
        })
    }

    fn login(id: u64, secs: i64, outcome: LoginOutcome) -> Event {
        Event::Login(crate::model::Login {
            id,
            time: secs * 1_000_000,
            protocol: crate::model::Protocol::Ssh,
            user: "bob".into(),
            client_ip: Some("2001:db8::1".parse().unwrap()),
            client_host: None,
            outcome,
            method: Some("password".into()),
            session: None,
            server_host: "h".into(),
            source: crate::formats::Format::from_name("openssh").unwrap().source(),
            origin: None,
        })
    }

    /// Which events each trigger and filter takes, and the max age.
    #[test]
    fn triggers_filters_and_age() {
        let now = 1_000_000;
        let events = vec![
            transfer(1, now - 10, Direction::Upload, Status::Completed, "incoming", 500),
            transfer(2, now - 10, Direction::Upload, Status::Interrupted, "incoming", 400),
            transfer(3, now - 10, Direction::Upload, Status::Failed, "incoming", 0),
            transfer(4, now - 10, Direction::Upload, Status::Completed, "other", 500),
            transfer(5, now - 10, Direction::Upload, Status::Completed, "incoming", 5),
            transfer(6, now - 7200, Direction::Upload, Status::Completed, "incoming", 500),
            transfer(7, now - 10, Direction::Download, Status::Completed, "incoming", 500),
            transfer(8, now - 10, Direction::Delete, Status::Completed, "incoming", 0),
            login(9, now - 10, LoginOutcome::Ok),
            login(10, now - 10, LoginOutcome::Failed),
            login(11, now - 10, LoginOutcome::InvalidUser),
        ];
        let fired = |specs: &[&str], max_age: Option<i64>| -> Vec<(String, u64)> {
            let hooks = Hooks::new(specs.iter().map(|s| Hook::parse_flag(s).unwrap()).collect(), max_age).unwrap();
            let mut w = super::super::AlertWindows::default();
            hooks.rows(&events, now * 1_000_000, &mut w).into_iter().map(|r| (r.hook, r.event_id)).collect()
        };
        let hour = Some(3_600_000_000);
        let f = |name: &str, ids: &[u64]| ids.iter().map(|i| (name.to_string(), *i)).collect::<Vec<_>>();
        assert_eq!(fired(&["upload,name=u,module=incoming,min_bytes=10,exec=x"], hour), f("u", &[1]));
        assert_eq!(fired(&["upload,name=u,module=incoming,exec=x"], None), f("u", &[1, 5, 6]));
        assert_eq!(
            fired(&["upload,name=u,path=dir/*.csv,user=alice,host=h,protocol=rsync,exec=x"], hour),
            f("u", &[1, 4, 5])
        );
        assert_eq!(fired(&["upload,name=u,path=*.csv,exec=x"], hour), vec![]);
        assert_eq!(fired(&["upload,name=u,user=bob,exec=x"], hour), vec![]);
        assert_eq!(
            fired(&["download,name=d,exec=x", "delete,name=r,exec=x"], hour),
            [f("d", &[7]), f("r", &[8])].concat()
        );
        assert_eq!(
            fired(&["login,name=l,exec=x", "login-failed,name=f,exec=x"], hour),
            [f("l", &[9]), f("f", &[10, 11])].concat()
        );
        // Two failures within a minute from one client: an alert on the second.
        assert_eq!(fired(&["alert,name=a,failed_logins=2,within=1m,exec=x"], hour), f("a", &[11]));
        assert_eq!(fired(&["alert,name=a,failed_logins=3,within=1m,exec=x"], hour), vec![]);
        let hooks = Hooks::new(vec![Hook::parse_flag("upload,name=u,exec=x").unwrap()], hour).unwrap();
        let rows = hooks.rows(&events[..1], now * 1_000_000, &mut Default::default());
        let p: Map<String, Value> = serde_json::from_str(&rows[0].payload).unwrap();
        assert_eq!(p["event_id"], "1");
        assert_eq!(p["client"], "192.0.2.1");
        assert_eq!(p["granularity"], "file");
        assert!(p.keys().all(|k| FIELDS.iter().any(|f| f.0 == k)));
        assert_eq!(
            slack_text(&p),
            "xferstats upload: alice upload dir/f1.csv (500 bytes) from 192.0.2.1 on h via rsync at 1970-01-12T13:46:30Z"
        );
    }

    #[test]
    fn urls_are_masked() {
        assert_eq!(mask_url("https://hooks.slack.com/services/T0/B0/secret"), "https://hooks.slack.com/****");
        assert_eq!(mask_url("http://u:pw@127.0.0.1:8080/x?token=1"), "http://127.0.0.1:8080/****");
        assert_eq!(mask_url("http://h/"), "http://h/");
        let h = Hook::parse_flag("upload,post=https://u:pw@h.example/x/tok").unwrap();
        assert_eq!(
            h.describe(),
            vec![("on".into(), "upload".into()), ("post".into(), "https://h.example/****".into())]
        );
    }

    #[test]
    fn every_key_and_field_is_listed_once() {
        for list in [KEYS.map(|k| k.0).to_vec(), FIELDS.map(|f| f.0).to_vec()] {
            let mut sorted = list.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), list.len());
        }
        assert_eq!(
            env_vars(&serde_json::from_str(r#"{"event_id":"7","bytes":12,"x":null}"#).unwrap()),
            vec![
                ("XFERSTATS_EVENT_ID".to_string(), "7".to_string()),
                ("XFERSTATS_BYTES".to_string(), "12".to_string())
            ]
        );
    }
}
