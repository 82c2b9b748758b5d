//! Where an InfluxDB store is and how to talk to it, from a `--db` URL and
//! the environment variables sysadmins already set for their InfluxDB tools
//! (`INFLUXDB_*` of the 1.x world, `INFLUX_*` of the 2.x CLI). URL parts win;
//! the environment fills what the URL leaves out, so secrets can stay out of
//! command lines (`ps` shows those to every user).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::ConfigError;
use crate::sinks::{Env, StoreSpec};

/// The `influxdb:` row of [`crate::sinks::SCHEMES`] (1.x).
pub(crate) fn parse_v1(_: &str, rest: &str, env: &Env<'_>) -> Result<StoreSpec, ConfigError> {
    Ok(StoreSpec::Influx(Box::new(InfluxSpec::parse(false, rest, env)?)))
}

/// The `influxdb2:` row of [`crate::sinks::SCHEMES`] (2.x/3.x).
pub(crate) fn parse_v2(_: &str, rest: &str, env: &Env<'_>) -> Result<StoreSpec, ConfigError> {
    Ok(StoreSpec::Influx(Box::new(InfluxSpec::parse(true, rest, env)?)))
}

/// Which write API the server speaks.
#[derive(Clone, PartialEq, Eq)]
pub enum InfluxApi {
    /// InfluxDB 1.x: `POST /write?db=…&rp=…`, optional user and password.
    V1 {
        /// Database.
        db: String,
        /// Retention policy of the raw points (server default when `None`).
        rp: Option<String>,
        /// Retention policy of the daily points (`rp` when `None`).
        daily_rp: Option<String>,
        /// User name, if the server wants authentication.
        user: Option<String>,
        /// Password (never printed).
        password: Option<String>,
    },
    /// InfluxDB 2.x / 3.x: `POST /api/v2/write?org=…&bucket=…` with a token.
    V2 {
        /// Organisation.
        org: String,
        /// Bucket of the raw points.
        bucket: String,
        /// Bucket of the daily points (`bucket` when `None`).
        daily_bucket: Option<String>,
        /// API token (never printed).
        token: Option<String>,
    },
}

/// A validated InfluxDB target. `Debug` never shows the password or token.
#[derive(Clone, PartialEq, Eq)]
pub struct InfluxSpec {
    /// Write API and its target.
    pub api: InfluxApi,
    /// `http(s)://host:port[/prefix]`, without a trailing slash.
    pub base_url: String,
    /// Check the server's TLS certificate (`verify_ssl=false` turns it off).
    pub verify_tls: bool,
    /// Time limit of one HTTP request.
    pub timeout: Duration,
    /// Attempts after the first one on 5xx, 429, timeouts and refused
    /// connections.
    pub retries: u32,
    /// Wait before the first retry; doubled each time, at most 30 s.
    pub backoff: Duration,
    /// Lines per write request.
    pub batch_lines: usize,
    /// Local state file (ledger, open sessions, the events sent); `None`
    /// until [`InfluxSpec::default_state`] fills it in.
    pub state: Option<PathBuf>,
    /// `influxdb://user@host:port/db` or `influxdb2://host:port/org/bucket`,
    /// for messages.
    pub describe: String,
}

impl std::fmt::Debug for InfluxApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "***");
        match self {
            InfluxApi::V1 { db, rp, daily_rp, user, password } => f
                .debug_struct("V1")
                .field("db", db)
                .field("rp", rp)
                .field("daily_rp", daily_rp)
                .field("user", user)
                .field("password", &redacted(password))
                .finish(),
            InfluxApi::V2 { org, bucket, daily_bucket, token } => f
                .debug_struct("V2")
                .field("org", org)
                .field("bucket", bucket)
                .field("daily_bucket", daily_bucket)
                .field("token", &redacted(token))
                .finish(),
        }
    }
}

impl std::fmt::Debug for InfluxSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("InfluxSpec").field(&self.describe).finish()
    }
}

/// Default HTTP port of InfluxDB.
const DEFAULT_PORT: u16 = 8086;
/// Default 1.x database.
pub const DEFAULT_DB: &str = "xferstats";

fn bad(reason: impl Into<String>) -> ConfigError {
    ConfigError::InfluxUrl(reason.into())
}

fn parse_bool(name: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(bad(format!("{name} '{v}': expected true or false"))),
    }
}

/// `30`, `30s`, `500ms`, `2m`.
fn parse_duration(name: &str, v: &str) -> Result<Duration, ConfigError> {
    let t = v.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let wrong = || bad(format!("{name} '{v}': expected a duration like 500ms, 30s, 2m"));
    let n: u64 = n.parse().map_err(|_| wrong())?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(wrong)?),
        _ => return Err(wrong()),
    })
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// Query parameters that tune delivery, shared by both URL forms.
struct Tuning {
    ssl: Option<bool>,
    verify: Option<bool>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    batch_lines: usize,
    state: Option<PathBuf>,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            ssl: None,
            verify: None,
            timeout: Duration::from_secs(30),
            retries: 5,
            backoff: Duration::from_secs(1),
            batch_lines: 5000,
            state: None,
        }
    }
}

impl Tuning {
    /// Takes a tuning parameter; `false` if `k` is not one.
    fn take(&mut self, k: &str, v: &str) -> Result<bool, ConfigError> {
        match k {
            "ssl" | "tls" => self.ssl = Some(parse_bool(k, v)?),
            "verify_ssl" | "verify_tls" => self.verify = Some(parse_bool(k, v)?),
            "timeout" => self.timeout = parse_duration(k, v)?,
            "backoff" => self.backoff = parse_duration(k, v)?,
            "retries" => {
                self.retries = v.trim().parse().map_err(|_| bad(format!("retries '{v}': expected a number")))?
            }
            "batch" => {
                self.batch_lines = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| bad(format!("batch '{v}': expected 1 to 1000000 lines")))?
            }
            "state" => self.state = Some(PathBuf::from(v)),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl InfluxSpec {
    /// Parses `influxdb://[user[:password]@]host[:port][/db][?…]` (1.x) or
    /// `influxdb2://host[:port][/org/bucket][?…]` (2.x/3.x); `influxdb:` and
    /// `influxdb2:` alone take everything from the environment.
    ///
    /// Environment, 1.x: `INFLUXDB_HOST`, `INFLUXDB_PORT`, `INFLUXDB_USER`,
    /// `INFLUXDB_PASS`, `INFLUXDB_DB`, `INFLUXDB_SSL`, `INFLUXDB_VERIFY_SSL`,
    /// `INFLUXDB_RP`, `INFLUXDB_DAILY_RP`. 2.x: `INFLUX_URL`, `INFLUX_ORG`,
    /// `INFLUX_TOKEN`, `INFLUX_BUCKET`, `INFLUX_BUCKET_DAILY`.
    ///
    /// Query parameters: `rp`, `daily_rp` (1.x), `daily_bucket` (2.x),
    /// `ssl`, `verify_ssl`, `timeout`, `retries`, `backoff`, `batch`,
    /// `state`.
    ///
    /// `rest` is what follows the scheme's `:` (see [`crate::sinks::SCHEMES`]);
    /// `v2` says which of the two schemes it was.
    pub fn parse(v2: bool, rest: &str, env: impl Fn(&str) -> Option<String>) -> Result<InfluxSpec, ConfigError> {
        let rest = rest.trim_end();
        let env = |k: &str| nonempty(env(k));
        let mut tune = Tuning::default();
        // Host, port, path segments, user info and parameters of the URL, if
        // there is one.
        let mut host = None;
        let mut port = None;
        let mut segs: Vec<String> = Vec::new();
        let mut user = None;
        let mut password = None;
        let mut extra: Vec<(String, String)> = Vec::new();
        if !rest.is_empty() {
            if !rest.starts_with("//") {
                return Err(bad(format!("expected {}://host… or {}: alone", scheme(v2), scheme(v2))));
            }
            let url = url::Url::parse(&format!("{}:{rest}", scheme(v2)))
                .map_err(|e| bad(format!("cannot parse the URL: {e}")))?;
            host = url.host_str().filter(|h| !h.is_empty()).map(str::to_string);
            port = url.port();
            segs = url.path_segments().map(|s| s.filter(|p| !p.is_empty()).map(decode).collect()).unwrap_or_default();
            user = Some(decode(url.username())).filter(|u| !u.is_empty());
            password = url.password().map(decode);
            for (k, v) in url.query_pairs() {
                if !tune.take(&k, &v)? {
                    extra.push((k.into_owned(), v.into_owned()));
                }
            }
        }
        let mut param = |name: &str| extra.iter().position(|(k, _)| k == name).map(|i| extra.remove(i).1);
        let (api, base_url, ssl_env, verify_env, path) = if v2 {
            // 2.x: INFLUX_URL gives scheme, host, port (and a path prefix).
            let (base, ssl_default) = match &host {
                Some(h) => (format!("{h}:{}", port.unwrap_or(DEFAULT_PORT)), false),
                None => {
                    let u = env("INFLUX_URL").unwrap_or_else(|| format!("http://localhost:{DEFAULT_PORT}"));
                    let u = u.trim().trim_end_matches('/').to_string();
                    match u.split_once("://") {
                        Some(("https", r)) => (r.to_string(), true),
                        Some(("http", r)) => (r.to_string(), false),
                        _ => return Err(bad(format!("INFLUX_URL '{u}': expected http://host:port or https://…"))),
                    }
                }
            };
            if segs.len() > 2 {
                return Err(bad("expected influxdb2://host:port/ORG/BUCKET"));
            }
            let org = segs
                .first()
                .cloned()
                .or_else(|| env("INFLUX_ORG"))
                .ok_or_else(|| bad("no organisation: give influxdb2://host:port/ORG/BUCKET or set INFLUX_ORG"))?;
            let bucket = segs
                .get(1)
                .cloned()
                .or_else(|| env("INFLUX_BUCKET"))
                .ok_or_else(|| bad("no bucket: give influxdb2://host:port/ORG/BUCKET or set INFLUX_BUCKET"))?;
            let daily_bucket = nonempty(param("daily_bucket")).or_else(|| env("INFLUX_BUCKET_DAILY"));
            if user.is_some() || password.is_some() {
                return Err(bad("influxdb2:// takes no user or password in the URL: set INFLUX_TOKEN"));
            }
            let path = format!("/{org}/{bucket}");
            let api = InfluxApi::V2 { org, bucket, daily_bucket, token: env("INFLUX_TOKEN") };
            (api, (base, ssl_default), None, None, path)
        } else {
            let h = host.or_else(|| env("INFLUXDB_HOST")).unwrap_or_else(|| "localhost".into());
            let p = match port {
                Some(p) => p,
                None => match env("INFLUXDB_PORT") {
                    Some(p) => {
                        p.trim().parse().map_err(|_| bad(format!("INFLUXDB_PORT '{p}' is not a port number")))?
                    }
                    None => DEFAULT_PORT,
                },
            };
            if segs.len() > 1 {
                return Err(bad("expected influxdb://host:port/DATABASE"));
            }
            let db = segs.first().cloned().or_else(|| env("INFLUXDB_DB")).unwrap_or_else(|| DEFAULT_DB.into());
            let api = InfluxApi::V1 {
                db: db.clone(),
                rp: nonempty(param("rp")).or_else(|| env("INFLUXDB_RP")),
                daily_rp: nonempty(param("daily_rp")).or_else(|| env("INFLUXDB_DAILY_RP")),
                user: user.or_else(|| env("INFLUXDB_USER")),
                password: password.or_else(|| env("INFLUXDB_PASS")),
            };
            let host_port =
                if h.contains(':') && !h.starts_with('[') { format!("[{h}]:{p}") } else { format!("{h}:{p}") };
            (api, (host_port, false), env("INFLUXDB_SSL"), env("INFLUXDB_VERIFY_SSL"), format!("/{db}"))
        };
        if let Some((k, _)) = extra.first() {
            return Err(bad(format!("unknown parameter '{k}'")));
        }
        let (host_port, ssl_default) = base_url;
        let ssl = match (tune.ssl, ssl_env) {
            (Some(s), _) => s,
            (None, Some(e)) => parse_bool("INFLUXDB_SSL", &e)?,
            (None, None) => ssl_default,
        };
        let verify_tls = match (tune.verify, verify_env) {
            (Some(v), _) => v,
            (None, Some(e)) => parse_bool("INFLUXDB_VERIFY_SSL", &e)?,
            (None, None) => true,
        };
        let who = match &api {
            InfluxApi::V1 { user: Some(u), .. } => format!("{u}@"),
            _ => String::new(),
        };
        let describe = format!("{}://{who}{host_port}{path}{}", scheme(v2), if ssl { " (https)" } else { "" });
        Ok(InfluxSpec {
            api,
            base_url: format!("{}://{host_port}", if ssl { "https" } else { "http" }),
            verify_tls,
            timeout: tune.timeout,
            retries: tune.retries,
            backoff: tune.backoff,
            batch_lines: tune.batch_lines,
            state: tune.state,
            describe,
        })
    }

    /// Fills in the default state file, `influx-HOST-PORT-TARGET.db` in the
    /// state directory, unless `state=` named one.
    pub fn default_state(&mut self, state_dir: &std::path::Path) {
        if self.state.is_none() {
            let ident: String = self
                .target()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' { c } else { '-' })
                .collect();
            let ident = ident.trim_matches('-');
            self.state = Some(state_dir.join(format!("influx-{ident}.db")));
        }
    }

    /// `host:port/db` (1.x) or `host:port/org/bucket` (2.x): the server and
    /// database a state file belongs to (no user, no secrets).
    pub fn target(&self) -> String {
        let host_port = self.base_url.split_once("://").map_or(self.base_url.as_str(), |(_, r)| r);
        match &self.api {
            InfluxApi::V1 { db, .. } => format!("{host_port}/{db}"),
            InfluxApi::V2 { org, bucket, .. } => format!("{host_port}/{org}/{bucket}"),
        }
    }
}

fn scheme(v2: bool) -> &'static str {
    if v2 {
        "influxdb2"
    } else {
        "influxdb"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--db` text parsed through the scheme table, as an InfluxDB spec.
    fn parse(s: &str, env: impl Fn(&str) -> Option<String>) -> Result<InfluxSpec, ConfigError> {
        match crate::sinks::StoreSpec::parse_with(s, &env)? {
            crate::sinks::StoreSpec::Influx(i) => Ok(*i),
            other => panic!("{s}: {other:?}"),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn v1_url_with_everything() {
        let s = parse(
            "influxdb://stats:pa%40ss@db.example:8087/mirror?rp=raw&daily_rp=daily&ssl=true&verify_ssl=false\
             &timeout=5s&retries=2&backoff=100ms&batch=100",
            no_env,
        )
        .unwrap();
        assert_eq!(
            s.api,
            InfluxApi::V1 {
                db: "mirror".into(),
                rp: Some("raw".into()),
                daily_rp: Some("daily".into()),
                user: Some("stats".into()),
                password: Some("pa@ss".into()),
            }
        );
        assert_eq!(s.base_url, "https://db.example:8087");
        assert!(!s.verify_tls);
        assert_eq!(
            (s.timeout, s.retries, s.backoff, s.batch_lines),
            (Duration::from_secs(5), 2, Duration::from_millis(100), 100)
        );
        assert_eq!(s.describe, "influxdb://stats@db.example:8087/mirror (https)");
        assert!(!format!("{s:?}").contains("pa@ss"));
    }

    #[test]
    fn v1_from_the_seed_environment() {
        let env = |k: &str| {
            Some(
                match k {
                    "INFLUXDB_HOST" => "10.1.1.1",
                    "INFLUXDB_PORT" => "9086",
                    "INFLUXDB_USER" => "writer",
                    "INFLUXDB_PASS" => "hunter2",
                    "INFLUXDB_DB" => "rsync",
                    "INFLUXDB_SSL" => "True",
                    "INFLUXDB_VERIFY_SSL" => "False",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let s = parse("influxdb:", env).unwrap();
        assert_eq!(s.base_url, "https://10.1.1.1:9086");
        assert!(!s.verify_tls);
        assert_eq!(s.describe, "influxdb://writer@10.1.1.1:9086/rsync (https)");
        let InfluxApi::V1 { password, db, rp, .. } = &s.api else { panic!() };
        assert_eq!((password.as_deref(), db.as_str(), rp), (Some("hunter2"), "rsync", &None));
        // URL parts win over the environment; the password still comes from it.
        let s = parse("influxdb://127.0.0.1:8086/other", env).unwrap();
        assert_eq!(s.describe, "influxdb://writer@127.0.0.1:8086/other (https)");
        // Defaults.
        let s = parse("influxdb:", no_env).unwrap();
        assert_eq!(
            (s.base_url.as_str(), s.describe.as_str()),
            ("http://localhost:8086", "influxdb://localhost:8086/xferstats")
        );
        let s = parse("influxdb://[::1]:8086", no_env).unwrap();
        assert_eq!(s.base_url, "http://[::1]:8086");
    }

    #[test]
    fn v2_url_and_environment() {
        let env = |k: &str| {
            Some(
                match k {
                    "INFLUX_URL" => "https://influx.example/",
                    "INFLUX_ORG" => "acme",
                    "INFLUX_TOKEN" => "tok-secret",
                    "INFLUX_BUCKET" => "xfer_raw",
                    "INFLUX_BUCKET_DAILY" => "xfer_daily",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let s = parse("influxdb2:", env).unwrap();
        assert_eq!(s.base_url, "https://influx.example");
        assert_eq!(
            s.api,
            InfluxApi::V2 {
                org: "acme".into(),
                bucket: "xfer_raw".into(),
                daily_bucket: Some("xfer_daily".into()),
                token: Some("tok-secret".into())
            }
        );
        assert_eq!(s.describe, "influxdb2://influx.example/acme/xfer_raw (https)");
        assert!(!format!("{s:?}").contains("tok-secret"));
        let s = parse("influxdb2://127.0.0.1:9999/o/b?daily_bucket=d", no_env).unwrap();
        assert_eq!(s.base_url, "http://127.0.0.1:9999");
        assert!(matches!(&s.api, InfluxApi::V2 { daily_bucket: Some(d), .. } if d == "d"));
        let e = parse("influxdb2://127.0.0.1:9999/o", no_env).unwrap_err().to_string();
        assert!(e.contains("no bucket"), "{e}");
    }

    #[test]
    fn mistakes_are_named() {
        for (url, want) in [
            ("influxdb://h/db?retention=x", "unknown parameter 'retention'"),
            ("influxdb://h/db?ssl=maybe", "ssl 'maybe'"),
            ("influxdb://h/db?timeout=5h", "timeout '5h'"),
            // Fuzzing found: minutes past u64::MAX seconds overflowed (a
            // panic in debug builds).
            ("influxdb://h/db?backoff=9223372036854775808m", "backoff '9223372036854775808m'"),
            ("influxdb://h/a/b", "influxdb://host:port/DATABASE"),
            ("influxdb2://u:tok@h/o/b", "INFLUX_TOKEN"),
            ("influxdb:h", "expected influxdb://host"),
        ] {
            let e = parse(url, no_env).unwrap_err().to_string();
            assert!(e.contains(want), "{url}: {e}");
        }
    }

    #[test]
    fn default_state_file_names_the_target() {
        let mut s = parse("influxdb://u:p@127.0.0.1:8086/xferstats", no_env).unwrap();
        s.default_state(std::path::Path::new("/var/lib/xferstats"));
        assert_eq!(s.state.unwrap(), PathBuf::from("/var/lib/xferstats/influx-127.0.0.1-8086-xferstats.db"));
        let mut s = parse("influxdb2://h:1/o/b?state=/tmp/x.db", no_env).unwrap();
        s.default_state(std::path::Path::new("/var/lib/xferstats"));
        assert_eq!(s.state.unwrap(), PathBuf::from("/tmp/x.db"));
    }
}
