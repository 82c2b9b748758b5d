//! The Grafana dashboards (`grafana/xferstats-*.json`) and their provisioning
//! files, tested without a Grafana server: none is installable here (no
//! Debian package; the PyPI and npm packages named grafana are empty
//! placeholders), so what Grafana does with them is redone from its source.
//!
//! - **Structure**: what a classic dashboard needs to load and be
//!   provisioned: no `__inputs`, unique panel ids, a 24-column grid without
//!   overlaps, targets with a `refId`, the `$ds` data source variable
//!   everywhere, a known result format, only variables that exist, and the
//!   filter variables applied to every panel whose table has the column.
//! - **PostgreSQL**: every `rawSql` (and every variable query) is
//!   interpolated as Grafana does it (template variables with the SQL data
//!   sources' quoting, then the backend macros of
//!   `pkg/tsdb/grafana-postgresql-datasource/macros.go`) for a fixed time
//!   range, and run on a throwaway PostgreSQL filled by `xferstats ingest`,
//!   connected as the read-only role of `sql/postgres/grafana_ro.sql`: each
//!   panel gets the columns it is built for, time series a sorted `time`
//!   column, and the results are non-empty and agree with each other.
//! - **InfluxQL**: every query names only measurements, tags and fields the
//!   InfluxDB store writes, groups only by tags (InfluxQL cannot group by a
//!   field), reads each measurement through its retention-policy variable,
//!   and the panel transformations find the fields they need.
//!   `influxql_queries` expands the queries as Grafana does, to run them on
//!   a real InfluxDB.
//! - **Provisioning**: fixed uids that the dashboards default to, secrets
//!   from the environment only, and the read-only PostgreSQL role.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::pg::cluster;
use crate::util::{fixture, geolite, realogs, Env, TEST_HOST_KEY};

/// The PostgreSQL dashboard, relative to `grafana/`.
pub const PG_DASHBOARD: &str = "xferstats-postgres.json";
/// The InfluxDB (InfluxQL) dashboard, relative to `grafana/`.
pub const INFLUX_DASHBOARD: &str = "xferstats-influxdb.json";

const PG_PLUGIN: &str = "grafana-postgresql-datasource";
const INFLUX_PLUGIN: &str = "influxdb";
/// The uids of the provisioned data sources (the `$ds` defaults).
const PG_UID: &str = "xferstats-pg";
const INFLUX_UID: &str = "xferstats-influxql";

/// The time range of every expansion, as Grafana renders it (UTC, RFC 3339).
pub const FROM: &str = "2026-01-01T00:00:00Z";
pub const TO: &str = "2026-12-31T23:59:59Z";
/// `$__interval` of the daily panels (their minimum interval is 1d).
const INTERVAL: &str = "1d";
const INTERVAL_MS: &str = "86400000";

/// The schema version the dashboards are written in: what Grafana 10
/// writes; 11 to 13 migrate it upwards on load.
const SCHEMA_VERSION: u64 = 38;

/// The filter variables of both dashboards.
const FILTERS: [&str; 4] = ["host", "protocol", "module", "user"];

/// The password the test gives the read-only role.
const RO_PASSWORD: &str = "gr0-Test-pw-17";

pub fn grafana_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana")
}

fn load(name: &str) -> Value {
    let p = grafana_dir().join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()))
}

/// Every panel, those inside collapsed rows too.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels[]") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner.iter());
        }
    }
    out
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn epoch_s(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).expect("RFC 3339 time").timestamp()
}

// ---------------------------------------------------------------------------
// Template variables: Grafana's `templateSrv.replace`.

/// What a variable is set to.
#[derive(Clone, Debug)]
pub enum Selection {
    /// "All" (`$__all`): the custom all value if the variable has one, else
    /// every option.
    All,
    /// These options.
    Values(Vec<String>),
}

/// A dashboard variable as the expansion needs it.
#[derive(Clone, Debug)]
pub struct Var {
    pub name: String,
    pub kind: String,
    pub multi: bool,
    pub include_all: bool,
    pub all_value: Option<String>,
    pub options: Vec<String>,
    pub selection: Selection,
}

/// The variables of dashboard `d`, each set to "All" when it can be, else
/// to its current value. Query variables have no options yet.
pub fn dashboard_vars(d: &Value) -> Vec<Var> {
    let mut out = Vec::new();
    for v in d["templating"]["list"].as_array().expect("templating.list[]") {
        let kind = s(&v["type"]).to_string();
        let current: Vec<String> = match &v["current"]["value"] {
            Value::Array(a) => a.iter().map(|x| s(x).to_string()).collect(),
            x => vec![s(x).to_string()],
        };
        let options: Vec<String> = match kind.as_str() {
            "custom" => s(&v["query"]).split(',').map(|o| o.trim().to_string()).collect(),
            "constant" | "textbox" => vec![s(&v["query"]).to_string()],
            _ => Vec::new(),
        };
        let include_all = v["includeAll"].as_bool().unwrap_or(false);
        let selection = if include_all { Selection::All } else { Selection::Values(current) };
        out.push(Var {
            name: s(&v["name"]).to_string(),
            kind,
            multi: v["multi"].as_bool().unwrap_or(false),
            include_all,
            all_value: v["allValue"].as_str().filter(|a| !a.is_empty()).map(str::to_string),
            options,
            selection,
        });
    }
    out
}

/// A variable reference found by Grafana's template regex
/// (`$name`, `[[name]]`, `[[name:fmt]]`, `${name}`, `${name.path:fmt}`).
#[derive(Debug, PartialEq)]
struct VarRef {
    start: usize,
    end: usize,
    name: String,
    format: Option<String>,
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn var_refs(text: &str) -> Vec<VarRef> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let n = b[i + 1..].iter().take_while(|c| is_word(**c)).count();
            if n > 0 {
                out.push(VarRef { start: i, end: i + 1 + n, name: text[i + 1..i + 1 + n].to_string(), format: None });
                i += 1 + n;
                continue;
            }
            if b.get(i + 1) == Some(&b'{') {
                if let Some(close) = text[i + 2..].find('}') {
                    let inner = &text[i + 2..i + 2 + close];
                    let n = inner.bytes().take_while(|c| is_word(*c)).count();
                    let rest = &inner[n..];
                    if n > 0 && (rest.is_empty() || rest.starts_with('.') || rest.starts_with(':')) {
                        let format = rest.find(':').map(|c| rest[c + 1..].to_string());
                        let end = i + 3 + close;
                        out.push(VarRef { start: i, end, name: inner[..n].to_string(), format });
                        i = end;
                        continue;
                    }
                }
            }
        } else if text[i..].starts_with("[[") {
            if let Some(close) = text[i + 2..].find("]]") {
                let inner = &text[i + 2..i + 2 + close];
                let n = inner.bytes().take_while(|c| is_word(*c)).count();
                let rest = &inner[n..];
                if n > 0 && (rest.is_empty() || rest.starts_with(':')) {
                    let end = i + 4 + close;
                    let format = rest.strip_prefix(':').map(str::to_string);
                    out.push(VarRef { start: i, end, name: inner[..n].to_string(), format });
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

/// `templateSrv.replace(text, scopedVars, format)`: references to dashboard
/// variables and to `scoped` built-ins are replaced, others left as they
/// are (macros such as `$__timeFilter(…)` are the data source's business).
fn interpolate(text: &str, vars: &[Var], scoped: &[(&str, &str)], format: fn(&Var) -> String) -> String {
    let mut out = String::new();
    let mut last = 0;
    for r in var_refs(text) {
        let value = if let Some((_, v)) = scoped.iter().find(|(n, _)| *n == r.name) {
            v.to_string()
        } else if let Some(v) = vars.iter().find(|v| v.name == r.name) {
            assert!(r.format.is_none(), "${{{}:{:?}}}: explicit formats are not modelled here", r.name, r.format);
            match (&v.selection, &v.all_value) {
                // templateSrv skips the data source's formatting of a custom
                // all value: it goes in as written.
                (Selection::All, Some(all)) => all.clone(),
                _ => format(v),
            }
        } else {
            continue;
        };
        out.push_str(&text[last..r.start]);
        out.push_str(&value);
        last = r.end;
    }
    out.push_str(&text[last..]);
    out
}

/// The selected values (every option for "All" without a custom value).
fn selected(v: &Var) -> Vec<String> {
    match &v.selection {
        Selection::All => v.options.clone(),
        Selection::Values(x) => x.clone(),
    }
}

// ---------------------------------------------------------------------------
// PostgreSQL: the SQL data source's `interpolateVariable`, `sqleng.Interpolate`
// and the macro engine.

fn sql_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// `SqlDatasource.interpolateVariable`: values of multi-value or "All"
/// variables are quoted and comma-joined; a single value of a plain
/// variable goes in with its quotes doubled.
fn pg_format(v: &Var) -> String {
    let values = selected(v);
    if v.multi || v.include_all {
        values.iter().map(|x| sql_quote(x)).collect::<Vec<_>>().join(",")
    } else {
        values.first().map(|x| x.replace('\'', "''")).unwrap_or_default()
    }
}

/// `gtime.ParseInterval` for the units the dashboards can use, in seconds.
fn parse_interval(text: &str) -> Result<f64, String> {
    let n = text.bytes().take_while(u8::is_ascii_digit).count();
    let value: f64 = text[..n].parse().map_err(|_| format!("error parsing interval {text}"))?;
    let unit = match &text[n..] {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => return Err(format!("error parsing interval {text}")),
    };
    Ok(value * unit)
}

/// One macro of `postgresMacroEngine.evaluateMacro` (without TimescaleDB).
fn pg_macro(name: &str, args: &[String]) -> Result<String, String> {
    let arg0 =
        || args.first().filter(|a| !a.is_empty()).ok_or(format!("missing time column argument for macro {name}"));
    let group = |args: &[String]| -> Result<String, String> {
        if args.len() < 2 {
            return Err(format!("macro {name} needs time column and interval and optional fill value"));
        }
        let secs = parse_interval(args[1].trim_matches('\''))?;
        Ok(format!("floor(extract(epoch from {})/{secs})*{secs}", args[0]))
    };
    Ok(match name {
        "__time" => format!("{} AS \"time\"", arg0()?),
        "__timeEpoch" => format!("extract(epoch from {}) as \"time\"", arg0()?),
        "__timeFilter" => format!("{} BETWEEN '{FROM}' AND '{TO}'", arg0()?),
        "__timeFrom" => format!("'{FROM}'"),
        "__timeTo" => format!("'{TO}'"),
        "__timeGroup" => group(args)?,
        "__timeGroupAlias" => format!("{} AS \"time\"", group(args)?),
        "__unixEpochFilter" => {
            let c = arg0()?;
            format!("{c} >= {} AND {c} <= {}", epoch_s(FROM), epoch_s(TO))
        }
        "__unixEpochNanoFilter" => {
            let c = arg0()?;
            format!("{c} >= {}000000000 AND {c} <= {}000000000", epoch_s(FROM), epoch_s(TO))
        }
        "__unixEpochNanoFrom" => format!("{}000000000", epoch_s(FROM)),
        "__unixEpochNanoTo" => format!("{}000000000", epoch_s(TO)),
        "__unixEpochGroup" => {
            let secs = parse_interval(args.get(1).ok_or("missing interval")?.trim_matches('\''))?;
            format!("floor(({})/{secs})*{secs}", arg0()?)
        }
        "__unixEpochGroupAlias" => {
            let secs = parse_interval(args.get(1).ok_or("missing interval")?.trim_matches('\''))?;
            format!("floor(({})/{secs})*{secs} AS \"time\"", arg0()?)
        }
        _ => return Err(format!("unknown macro {name:?}")),
    })
}

/// `postgresMacroEngine.Interpolate`: every `$name(args)` (args without `)`)
/// is a macro; a `$__timeGroup(…)` directly followed by a comma gets the
/// ` AS "time"` alias (Grafana's pre-5.3 compatibility).
fn pg_macros(sql: &str) -> Result<String, String> {
    let b = sql.as_bytes();
    let mut out = String::new();
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let n = b[i + 1..].iter().take_while(|c| is_word(**c)).count();
            if n > 0 && b.get(i + 1 + n) == Some(&b'(') {
                if let Some(close) = sql[i + 2 + n..].find(')') {
                    let end = i + 3 + n + close;
                    let mut name = &sql[i + 1..i + 1 + n];
                    let whole = &sql[i..end];
                    // As Go does: the first occurrence of the same text decides.
                    let first = sql.find(whole).unwrap_or(i) + whole.len();
                    if name == "__timeGroup" && b.get(first) == Some(&b',') {
                        name = "__timeGroupAlias";
                    }
                    let args: Vec<String> =
                        sql[i + 2 + n..i + 2 + n + close].split(',').map(|a| a.trim_matches(' ').to_string()).collect();
                    out.push_str(&sql[last..i]);
                    out.push_str(&pg_macro(name, &args)?);
                    last = end;
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

/// `rawSql` as the server runs it: the frontend interpolates the template
/// variables (and the built-in `$__interval`), the backend
/// (`sqleng.Interpolate`, then the macro engine) the rest.
pub fn expand_pg(sql: &str, vars: &[Var]) -> Result<String, String> {
    let sql = interpolate(sql, vars, &[("__interval", INTERVAL), ("__interval_ms", INTERVAL_MS)], pg_format);
    let sql = sql
        .replace("$__interval_ms", INTERVAL_MS)
        .replace("$__interval", INTERVAL)
        .replace("$__unixEpochFrom()", &epoch_s(FROM).to_string())
        .replace("$__unixEpochTo()", &epoch_s(TO).to_string());
    pg_macros(&sql)
}

// ---------------------------------------------------------------------------
// InfluxQL: the InfluxDB data source's `interpolateQueryExpr` and the
// backend's `Query.Build` (`pkg/tsdb/influxdb/models/query.go`).

/// `escapeRegex` of `@grafana/data`.
fn escape_regex(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        if "\\^$*+?.()|[]{}/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `interpolateQueryExpr`: values of multi-value or "All" variables are
/// regex-escaped and joined as `(a|b)` (a single one bare); a plain
/// variable goes in as it is.
fn influx_format(v: &Var) -> String {
    let values = selected(v);
    if !v.multi && !v.include_all {
        return values.first().cloned().unwrap_or_default();
    }
    let escaped: Vec<String> = values.iter().map(|x| escape_regex(x)).collect();
    if escaped.len() == 1 {
        escaped[0].clone()
    } else {
        format!("({})", escaped.join("|"))
    }
}

/// The `$timeFilter` of the test's time range: `time >= …ms and time <= …ms`.
pub fn influx_time_filter() -> String {
    format!("time >= {}ms and time <= {}ms", epoch_s(FROM) * 1000, epoch_s(TO) * 1000)
}

/// An InfluxQL query as Grafana sends it to InfluxDB.
pub fn expand_influxql(query: &str, vars: &[Var]) -> String {
    let q = interpolate(query, vars, &[("__interval", INTERVAL), ("__interval_ms", INTERVAL_MS)], influx_format);
    q.replace("$timeFilter", &influx_time_filter())
        .replace("$interval", INTERVAL)
        .replace("$__interval_ms", INTERVAL_MS)
        .replace("$__interval", INTERVAL)
}

/// Every InfluxQL query of the dashboard at `path` as Grafana would send it
/// for the test's time range (`FROM`..`TO`), with every variable at "All"
/// (`/^.*$/`) and the retention policies at their defaults (`raw`,
/// `daily`): `(panel title, query)`, then `("variable NAME", query)` for
/// the variable queries. For running them against a real InfluxDB.
pub fn influxql_queries(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let d: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let vars = dashboard_vars(&d);
    let mut out = Vec::new();
    for p in panels(&d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((s(&p["title"]).to_string(), expand_influxql(s(&t["query"]), &vars)));
        }
    }
    for v in d["templating"]["list"].as_array().expect("templating.list[]") {
        if v["type"] == "query" {
            out.push((format!("variable {}", s(&v["name"])), expand_influxql(s(&v["query"]), &vars)));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The InfluxDB schema of the store and a small InfluxQL reader.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Col {
    Tag,
    Int,
    Float,
    Str,
}

struct Measurement {
    name: &'static str,
    /// The dashboard variable of its retention policy, and its default.
    rp_var: &'static str,
    rp: &'static str,
    columns: &'static [(&'static str, Col)],
}

use Col::{Float, Int, Str, Tag};

/// What the InfluxDB store writes (database `xferstats`; buckets
/// `xfer_raw`/`xfer_daily` with DBRP mappings on 2.x and 3.x).
const INFLUX_SCHEMA: &[Measurement] = &[
    Measurement {
        name: "xfer",
        rp_var: "raw_rp",
        rp: "raw",
        columns: &[
            ("host", Tag),
            ("proto", Tag),
            ("dir", Tag),
            ("status", Tag),
            ("module", Tag),
            ("country", Tag),
            ("bytes", Int),
            ("dur_ms", Int),
            ("wire_bytes", Int),
            ("file_size", Int),
            ("user", Str),
            ("path", Str),
            ("session", Str),
            ("client", Str),
            ("city", Str),
            ("geohash", Str),
            ("lat", Float),
            ("lon", Float),
            ("event_id", Str),
        ],
    },
    Measurement {
        name: "login",
        rp_var: "raw_rp",
        rp: "raw",
        columns: &[
            ("host", Tag),
            ("proto", Tag),
            ("outcome", Tag),
            ("country", Tag),
            ("attempts", Int),
            ("user", Str),
            ("method", Str),
            ("session", Str),
            ("client", Str),
            ("city", Str),
            ("geohash", Str),
            ("event_id", Str),
        ],
    },
    Measurement {
        name: "xfer_daily",
        rp_var: "daily_rp",
        rp: "daily",
        columns: &[
            ("host", Tag),
            ("proto", Tag),
            ("dir", Tag),
            ("status", Tag),
            ("module", Tag),
            ("transfers", Int),
            ("bytes", Int),
            ("unique_clients", Int),
        ],
    },
    Measurement {
        name: "login_daily",
        rp_var: "daily_rp",
        rp: "daily",
        columns: &[("host", Tag), ("proto", Tag), ("outcome", Tag), ("logins", Int), ("unique_clients", Int)],
    },
];

impl Measurement {
    fn col(&self, name: &str) -> Option<Col> {
        self.columns.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// `"double quoted"` identifier.
    Ident(String),
    /// Keyword, function name, number or duration (`1d`, `100ms`).
    Word(String),
    /// `'single quoted'` string.
    Str(String),
    /// `/regex/` (after `=~` or `!~`).
    Regex(String),
    /// `$name` or `${name}` outside quotes.
    Var(String),
    Op(String),
}

fn read_quoted(q: &str, start: usize, quote: u8) -> Result<(String, usize), String> {
    let b = q.as_bytes();
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            return Ok((q[start + 1..i].to_string(), i + 1));
        }
        i += 1;
    }
    Err(format!("unterminated {} at {start}", quote as char))
}

fn tokenize(q: &str) -> Result<Vec<Tok>, String> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'"' || c == b'\'' {
            let (text, next) = read_quoted(q, i, c)?;
            out.push(if c == b'"' { Tok::Ident(text) } else { Tok::Str(text) });
            i = next;
        } else if c == b'/' {
            if !matches!(out.last(), Some(Tok::Op(o)) if o == "=~" || o == "!~") {
                return Err(format!("'/' outside a regex at {i}"));
            }
            let (text, next) = read_quoted(q, i, b'/')?;
            out.push(Tok::Regex(text));
            i = next;
        } else if c == b'$' {
            let r = var_refs(&q[i..]).into_iter().next().filter(|r| r.start == 0).ok_or(format!("stray $ at {i}"))?;
            out.push(Tok::Var(r.name));
            i += r.end;
        } else if is_word(c) {
            let n = b[i..].iter().take_while(|c| is_word(**c)).count();
            out.push(Tok::Word(q[i..i + n].to_string()));
            i += n;
        } else {
            let two = q.get(i..i + 2).unwrap_or("");
            let op = if ["=~", "!~", "!=", "<>", ">=", "<="].contains(&two) {
                two
            } else if "=<>(),.*-+".contains(c as char) {
                &q[i..i + 1]
            } else {
                return Err(format!("unexpected {:?} at {i}", c as char));
            };
            out.push(Tok::Op(op.to_string()));
            i += op.len();
        }
    }
    Ok(out)
}

/// What a checked InfluxQL query reads and returns.
#[derive(Debug)]
struct InfluxInfo {
    measurements: Vec<&'static str>,
    /// Columns of a `table` result: `Time`, the GROUP BY tags, the SELECT
    /// outputs (function name or alias).
    columns: Vec<String>,
    group_tags: Vec<String>,
    /// Every tag or field the query names.
    names: BTreeSet<String>,
}

struct Reader<'a> {
    toks: &'a [Tok],
    i: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if o == op)
    }
    fn expect_kw(&mut self, kw: &str) -> Result<(), String> {
        if self.is_kw(kw) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {kw}, found {:?}", self.peek()))
        }
    }
    fn expect_op(&mut self, op: &str) -> Result<(), String> {
        if self.is_op(op) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {op:?}, found {:?}", self.peek()))
        }
    }
}

/// `FROM` sources: `"rp"."measurement"` or `"measurement"`, comma-separated.
/// The retention policy must be the measurement's variable (`$raw_rp`,
/// `$daily_rp`), or its default once expanded.
fn read_sources(r: &mut Reader, expanded: bool) -> Result<Vec<&'static Measurement>, String> {
    let mut out = Vec::new();
    loop {
        let Some(Tok::Ident(first)) = r.next() else { return Err("expected a measurement".into()) };
        let (rp, name) = if r.is_op(".") {
            r.i += 1;
            let Some(Tok::Ident(m)) = r.next() else { return Err("expected a measurement after the RP".into()) };
            (Some(first), m)
        } else {
            (None, first)
        };
        let m = INFLUX_SCHEMA.iter().find(|m| m.name == name).ok_or(format!("unknown measurement {name:?}"))?;
        let want = if expanded { m.rp.to_string() } else { format!("${}", m.rp_var) };
        if rp.as_deref() != Some(want.as_str()) {
            return Err(format!("measurement {name} read through RP {rp:?}, not {want:?}"));
        }
        out.push(m);
        if !r.is_op(",") {
            return Ok(out);
        }
        r.i += 1;
    }
}

fn column(ms: &[&'static Measurement], name: &str) -> Result<Col, String> {
    let mut kind = None;
    for m in ms {
        let c = m.col(name).ok_or(format!("{name:?} is neither a tag nor a field of {}", m.name))?;
        if kind.is_some_and(|k| k != c) {
            return Err(format!("{name:?} has different kinds in {:?}", ms.iter().map(|m| m.name).collect::<Vec<_>>()));
        }
        kind = Some(c);
    }
    kind.ok_or("no measurement".into())
}

const FUNCS: [&str; 12] =
    ["count", "distinct", "sum", "mean", "median", "min", "max", "first", "last", "spread", "stddev", "mode"];
const NUMERIC_FUNCS: [&str; 7] = ["sum", "mean", "median", "min", "max", "spread", "stddev"];

/// One SELECT item: its output column name, the names it reads.
fn select_item(toks: &[Tok], ms: &[&'static Measurement], names: &mut BTreeSet<String>) -> Result<String, String> {
    let mut output = None;
    let mut reads_field = false;
    let mut funcs: Vec<String> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Word(w) if w.eq_ignore_ascii_case("AS") => {
                match toks.get(i + 1) {
                    Some(Tok::Ident(a)) | Some(Tok::Word(a)) => output = Some(a.clone()),
                    t => return Err(format!("AS followed by {t:?}")),
                }
                if i + 2 != toks.len() {
                    return Err("tokens after the alias".into());
                }
                break;
            }
            Tok::Word(w) if toks.get(i + 1) == Some(&Tok::Op("(".into())) => {
                let f = w.to_ascii_lowercase();
                if !FUNCS.contains(&f.as_str()) {
                    return Err(format!("unknown function {w}"));
                }
                funcs.push(f);
            }
            Tok::Ident(name) => {
                let c = column(ms, name)?;
                names.insert(name.clone());
                reads_field |= c != Tag;
                if let Some(f) = funcs.last() {
                    if c == Tag {
                        return Err(format!("{f}() of the tag {name:?}"));
                    }
                    if NUMERIC_FUNCS.contains(&f.as_str()) && c == Str {
                        return Err(format!("{f}() of the string field {name:?}"));
                    }
                }
            }
            Tok::Op(o) if ["(", ")"].contains(&o.as_str()) => {}
            t => return Err(format!("unexpected {t:?} in the SELECT list")),
        }
        i += 1;
    }
    let output = match (output, &toks[0]) {
        (Some(a), _) => a,
        (None, Tok::Ident(n)) if toks.len() == 1 => n.clone(),
        (None, Tok::Word(f)) => f.to_ascii_lowercase(),
        (None, t) => return Err(format!("cannot name the output of {t:?}")),
    };
    Ok(if reads_field { output } else { format!("\u{0}tag:{output}") })
}

/// The WHERE clause: `$timeFilter` (or its expansion), tag and field
/// comparisons with the right kind of operand, AND/OR and parentheses.
fn read_where(r: &mut Reader, ms: &[&'static Measurement], names: &mut BTreeSet<String>) -> Result<bool, String> {
    let mut time_from = false;
    let mut time_to = false;
    while let Some(t) = r.peek().cloned() {
        match t {
            Tok::Word(w) if ["GROUP", "ORDER", "LIMIT", "SLIMIT"].iter().any(|k| w.eq_ignore_ascii_case(k)) => break,
            Tok::Word(w) if w.eq_ignore_ascii_case("AND") || w.eq_ignore_ascii_case("OR") => r.i += 1,
            Tok::Op(o) if o == "(" || o == ")" => r.i += 1,
            Tok::Var(v) if v == "timeFilter" => {
                r.i += 1;
                (time_from, time_to) = (true, true);
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("time") => {
                r.i += 1;
                match r.next() {
                    Some(Tok::Op(o)) if o == ">=" || o == ">" => time_from = true,
                    Some(Tok::Op(o)) if o == "<=" || o == "<" => time_to = true,
                    t => return Err(format!("time compared with {t:?}")),
                }
                match r.next() {
                    Some(Tok::Word(v)) if v.ends_with("ms") && v[..v.len() - 2].bytes().all(|c| c.is_ascii_digit()) => {
                    }
                    t => return Err(format!("time bound {t:?} is not epoch milliseconds")),
                }
            }
            Tok::Ident(name) => {
                r.i += 1;
                let c = column(ms, &name)?;
                names.insert(name.clone());
                let op = match r.next() {
                    Some(Tok::Op(o)) => o,
                    t => return Err(format!("{name:?} followed by {t:?}")),
                };
                let operand = r.next();
                let ok = matches!(
                    (op.as_str(), &operand, c),
                    ("=~" | "!~", Some(Tok::Regex(_)), Tag | Str)
                        | ("=" | "!=" | "<>", Some(Tok::Str(_)), Tag | Str)
                        | ("=" | "!=" | "<>" | "<" | ">" | "<=" | ">=", Some(Tok::Word(_)), Int | Float)
                );
                if !ok {
                    return Err(format!("{name:?} ({c:?}) {op} {operand:?}"));
                }
            }
            t => return Err(format!("unexpected {t:?} in WHERE")),
        }
    }
    Ok(time_from && time_to)
}

/// Checks an InfluxQL query (`expanded`: as sent to InfluxDB, else as in the
/// dashboard with `$variables`) against `INFLUX_SCHEMA`.
fn check_influxql(q: &str, expanded: bool) -> Result<InfluxInfo, String> {
    let toks = tokenize(q)?;
    let mut r = Reader { toks: &toks, i: 0 };
    let mut names = BTreeSet::new();
    if r.is_kw("SHOW") {
        r.i += 1;
        r.expect_kw("TAG")?;
        r.expect_kw("VALUES")?;
        let ms = if r.is_kw("FROM") {
            r.i += 1;
            read_sources(&mut r, expanded)?
        } else {
            INFLUX_SCHEMA.iter().collect()
        };
        r.expect_kw("WITH")?;
        r.expect_kw("KEY")?;
        r.expect_op("=")?;
        let Some(Tok::Ident(key)) = r.next() else { return Err("WITH KEY = needs a quoted tag key".into()) };
        if column(&ms, &key)? != Tag {
            return Err(format!("WITH KEY = {key:?}: not a tag"));
        }
        names.insert(key);
        if r.peek().is_some() {
            return Err(format!("unexpected {:?} after SHOW TAG VALUES", r.peek()));
        }
        return Ok(InfluxInfo {
            measurements: ms.iter().map(|m| m.name).collect(),
            columns: vec!["key".into(), "value".into()],
            group_tags: Vec::new(),
            names,
        });
    }
    r.expect_kw("SELECT")?;
    let start = r.i;
    let mut depth = 0;
    while !(depth == 0 && r.is_kw("FROM")) {
        match r.next() {
            Some(Tok::Op(o)) if o == "(" => depth += 1,
            Some(Tok::Op(o)) if o == ")" => depth -= 1,
            Some(_) => {}
            None => return Err("no FROM".into()),
        }
    }
    let select = &toks[start..r.i];
    r.i += 1;
    let ms = read_sources(&mut r, expanded)?;
    let mut outputs = Vec::new();
    let mut depth = 0;
    let mut item_start = 0;
    for (k, t) in select.iter().enumerate() {
        match t {
            Tok::Op(o) if o == "(" => depth += 1,
            Tok::Op(o) if o == ")" => depth -= 1,
            Tok::Op(o) if o == "," && depth == 0 => {
                outputs.push(select_item(&select[item_start..k], &ms, &mut names)?);
                item_start = k + 1;
            }
            _ => {}
        }
    }
    outputs.push(select_item(&select[item_start..], &ms, &mut names)?);
    if outputs.iter().all(|o| o.starts_with("\u{0}tag:")) {
        return Err("the SELECT list names no field".into());
    }
    let outputs: Vec<String> = outputs.into_iter().map(|o| o.trim_start_matches("\u{0}tag:").to_string()).collect();
    r.expect_kw("WHERE")?;
    if !read_where(&mut r, &ms, &mut names)? {
        return Err("no time range in WHERE ($timeFilter)".into());
    }
    let mut group_tags = Vec::new();
    if r.is_kw("GROUP") {
        r.i += 1;
        r.expect_kw("BY")?;
        loop {
            match r.next() {
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("time") => {
                    r.expect_op("(")?;
                    match r.next() {
                        Some(Tok::Word(d)) if parse_interval(&d).is_ok() => {}
                        Some(Tok::Var(v)) if !expanded && (v == "__interval" || v == "interval") => {}
                        t => return Err(format!("GROUP BY time({t:?})")),
                    }
                    r.expect_op(")")?;
                }
                Some(Tok::Ident(tag)) => {
                    if column(&ms, &tag)? != Tag {
                        return Err(format!("GROUP BY {tag:?}: InfluxQL groups by tags only, this is a field"));
                    }
                    names.insert(tag.clone());
                    group_tags.push(tag);
                }
                t => return Err(format!("GROUP BY {t:?}")),
            }
            if r.is_op(",") {
                r.i += 1;
                continue;
            }
            break;
        }
        if r.is_kw("fill") {
            r.i += 1;
            r.expect_op("(")?;
            match r.next() {
                Some(Tok::Word(f)) if ["null", "none", "previous", "linear"].contains(&f.as_str()) => {}
                Some(Tok::Word(f)) if f.parse::<i64>().is_ok() => {}
                t => return Err(format!("fill({t:?})")),
            }
            r.expect_op(")")?;
        }
    }
    if r.is_kw("ORDER") {
        r.i += 1;
        r.expect_kw("BY")?;
        r.expect_kw("time")?;
        if r.is_kw("DESC") || r.is_kw("ASC") {
            r.i += 1;
        }
    }
    if r.is_kw("LIMIT") {
        r.i += 1;
        match r.next() {
            Some(Tok::Word(n)) if n.parse::<u32>().is_ok() => {}
            t => return Err(format!("LIMIT {t:?}")),
        }
    }
    if r.peek().is_some() {
        return Err(format!("unexpected {:?} at the end", r.peek()));
    }
    let mut columns = vec!["Time".to_string()];
    columns.extend(group_tags.iter().cloned());
    columns.extend(outputs);
    Ok(InfluxInfo { measurements: ms.iter().map(|m| m.name).collect(), columns, group_tags, names })
}

// ---------------------------------------------------------------------------
// Panel transformations (the ones the dashboards use).

/// The field names after `transformations` (Grafana's groupBy names an
/// aggregate `field (calc)`).
fn transform(mut cols: Vec<String>, transformations: &[Value]) -> Result<Vec<String>, String> {
    let has = |cols: &[String], f: &str| -> Result<(), String> {
        if cols.iter().any(|c| c == f) {
            Ok(())
        } else {
            Err(format!("no field {f:?} in {cols:?}"))
        }
    };
    for t in transformations {
        let o = &t["options"];
        match s(&t["id"]) {
            "groupBy" => {
                let fields = o["fields"].as_object().ok_or("groupBy without fields")?;
                for f in fields.keys() {
                    has(&cols, f)?;
                }
                let mut out: Vec<String> = cols
                    .iter()
                    .filter(|c| fields.get(*c).is_some_and(|f| f["operation"] == "groupby"))
                    .cloned()
                    .collect();
                for c in &cols {
                    if let Some(f) = fields.get(c).filter(|f| f["operation"] == "aggregate") {
                        for calc in f["aggregations"].as_array().ok_or("aggregate without aggregations")? {
                            out.push(format!("{c} ({})", s(calc)));
                        }
                    }
                }
                cols = out;
            }
            "organize" => {
                for (f, excluded) in o["excludeByName"].as_object().into_iter().flatten() {
                    has(&cols, f)?;
                    if excluded == true {
                        cols.retain(|c| c != f);
                    }
                }
                for (f, to) in o["renameByName"].as_object().into_iter().flatten() {
                    has(&cols, f)?;
                    for c in cols.iter_mut().filter(|c| *c == f) {
                        *c = s(to).to_string();
                    }
                }
            }
            "sortBy" => {
                for k in o["sort"].as_array().ok_or("sortBy without sort")? {
                    has(&cols, s(&k["field"]))?;
                }
            }
            "limit" => {
                o["limitField"].as_u64().ok_or("limit without limitField")?;
            }
            other => return Err(format!("transformation {other:?} is not modelled by this test")),
        }
    }
    Ok(cols)
}

/// The fields a geomap panel's layers need.
fn geomap_fields(p: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for l in p["options"]["layers"].as_array().into_iter().flatten() {
        assert_eq!(l["location"]["mode"], "geohash", "{}: layers locate by geohash", p["title"]);
        out.push(s(&l["location"]["geohash"]).to_string());
        out.push(s(&l["config"]["style"]["size"]["field"]).to_string());
    }
    out
}

// ---------------------------------------------------------------------------
// Structure.

const PANEL_TYPES: [&str; 6] = ["row", "stat", "timeseries", "table", "piechart", "geomap"];
const PG_MACROS: [&str; 14] = [
    "__time",
    "__timeEpoch",
    "__timeFilter",
    "__timeFrom",
    "__timeTo",
    "__timeGroup",
    "__timeGroupAlias",
    "__unixEpochFilter",
    "__unixEpochFrom",
    "__unixEpochTo",
    "__unixEpochGroup",
    "__unixEpochGroupAlias",
    "__interval",
    "__interval_ms",
];
const INFLUX_BUILTINS: [&str; 4] = ["timeFilter", "__interval", "__interval_ms", "interval"];
/// The InfluxQL alias patterns besides `$tag_KEY`: column, measurement.
const ALIAS_PATTERNS: [&str; 3] = ["col", "m", "measurement"];

/// Checks what Grafana needs of a provisioned classic dashboard; returns
/// every problem found.
fn structure_errors(d: &Value, plugin: &str, uid: &str) -> Vec<String> {
    let mut errs = Vec::new();
    for k in ["__inputs", "__requires", "__elements", "id"] {
        if d.get(k).is_some() {
            errs.push(format!("top-level {k:?}: exported-for-sharing or instance-local keys break provisioning"));
        }
    }
    let duid = s(&d["uid"]);
    if !(8..=40).contains(&duid.len()) || !duid.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
        errs.push(format!("uid {duid:?}"));
    }
    if d["schemaVersion"].as_u64() != Some(SCHEMA_VERSION) {
        errs.push(format!("schemaVersion {} (want {SCHEMA_VERSION})", d["schemaVersion"]));
    }
    if d["timezone"] != "utc" {
        errs.push(format!("timezone {}: days are UTC days", d["timezone"]));
    }
    let desc = s(&d["description"]);
    if !desc.contains("UTC") || !desc.contains("Personal data") {
        errs.push("the dashboard description must say that days are UTC and what is personal data".into());
    }

    // Variables.
    let list = d["templating"]["list"].as_array().cloned().unwrap_or_default();
    let var_names: Vec<&str> = list.iter().map(|v| s(&v["name"])).collect();
    if var_names.iter().collect::<BTreeSet<_>>().len() != var_names.len() {
        errs.push(format!("duplicate variable names {var_names:?}"));
    }
    let Some(dsv) = list.iter().find(|v| v["name"] == "ds") else {
        errs.push("no data source variable ds".into());
        return errs;
    };
    if dsv["type"] != "datasource" || dsv["query"] != plugin || dsv["current"]["value"] != uid {
        errs.push(format!("$ds must be a {plugin} data source variable defaulting to {uid}: {dsv}"));
    }
    let ds_ref = serde_json::json!({"type": plugin, "uid": "${ds}"});
    for v in &list {
        if v["type"] == "query" && v["datasource"] != ds_ref {
            errs.push(format!("variable {}: datasource {} (want {ds_ref})", v["name"], v["datasource"]));
        }
    }
    for f in FILTERS {
        match list.iter().find(|v| v["name"] == f) {
            Some(v) if v["multi"] == true && v["includeAll"] == true => {}
            _ => errs.push(format!("no multi-value filter variable {f} with All")),
        }
    }

    // Panels.
    let ps = panels(d);
    let mut ids = BTreeSet::new();
    let mut rects: Vec<(i64, i64, i64, i64, String)> = Vec::new();
    let mut used = BTreeSet::new();
    for p in &ps {
        let title = s(&p["title"]).to_string();
        match p["id"].as_u64() {
            Some(id) if id > 0 && ids.insert(id) => {}
            _ => errs.push(format!("{title}: panel id {} missing or not unique", p["id"])),
        }
        if !PANEL_TYPES.contains(&s(&p["type"])) {
            errs.push(format!("{title}: panel type {}", p["type"]));
        }
        let g = &p["gridPos"];
        let (x, y, w, h) = (g["x"].as_i64(), g["y"].as_i64(), g["w"].as_i64(), g["h"].as_i64());
        match (x, y, w, h) {
            (Some(x), Some(y), Some(w), Some(h)) if x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24 => {
                for (x2, y2, w2, h2, t2) in &rects {
                    if x < x2 + w2 && *x2 < x + w && y < y2 + h2 && *y2 < y + h {
                        errs.push(format!("{title} overlaps {t2}"));
                    }
                }
                rects.push((x, y, w, h, title.clone()));
            }
            _ => errs.push(format!("{title}: gridPos {g} is not inside the 24 columns")),
        }
        if p["type"] == "row" {
            continue;
        }
        let pdesc = s(&p["description"]);
        if title.is_empty() || !pdesc.contains("Personal data") {
            errs.push(format!("{title:?}: needs a title and a description saying what is personal data"));
        }
        if p["datasource"] != ds_ref {
            errs.push(format!("{title}: panel datasource {} (want {ds_ref})", p["datasource"]));
        }
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            errs.push(format!("{title}: no targets"));
        }
        let mut refs = BTreeSet::new();
        let mut texts = vec![title.clone(), pdesc.to_string()];
        for t in &targets {
            let r = s(&t["refId"]);
            if r.is_empty() || !refs.insert(r.to_string()) {
                errs.push(format!("{title}: refId {r:?} missing or not unique"));
            }
            let tds = &t["datasource"];
            if tds != &ds_ref && !(tds["type"] == plugin && tds["uid"] == uid) {
                errs.push(format!("{title}/{r}: datasource {tds} is neither $ds nor {uid}"));
            }
            if t["rawQuery"] != true {
                errs.push(format!("{title}/{r}: not a raw query"));
            }
            let (fmt_key, q) = if plugin == PG_PLUGIN { ("format", "rawSql") } else { ("resultFormat", "query") };
            if !["time_series", "table"].contains(&s(&t[fmt_key])) {
                errs.push(format!("{title}/{r}: {fmt_key} {}", t[fmt_key]));
            }
            let text = s(&t[q]);
            if text.trim().is_empty() {
                errs.push(format!("{title}/{r}: empty {q}"));
            }
            let time_filter = if plugin == PG_PLUGIN { "$__timeFilter(" } else { "$timeFilter" };
            if !text.contains(time_filter) {
                errs.push(format!("{title}/{r}: not limited to the time range ({time_filter})"));
            }
            if plugin == PG_PLUGIN && (t["editorMode"] != "code" || text.contains("--") || text.contains("/*")) {
                // Recent Grafana strips SQL comments before interpolating.
                errs.push(format!("{title}/{r}: code editor mode and no SQL comments"));
            }
            if text.contains("daily") && !pdesc.contains("UTC day") {
                errs.push(format!("{title}: reads daily data, the description must say days are UTC days"));
            }
            let raw = if plugin == PG_PLUGIN {
                text.contains("FROM transfers") || text.contains("FROM logins")
            } else {
                text.contains("$raw_rp")
            };
            if raw && !pdesc.contains("raw") {
                errs.push(format!("{title}: reads raw events, the description must say so"));
            }
            texts.push(text.to_string());
            if let Some(a) = t["alias"].as_str() {
                texts.push(a.to_string());
            }
        }
        for text in &texts {
            for r in var_refs(text) {
                let known = var_names.contains(&r.name.as_str())
                    || (plugin == PG_PLUGIN && PG_MACROS.contains(&r.name.as_str()))
                    || (plugin == INFLUX_PLUGIN
                        && (INFLUX_BUILTINS.contains(&r.name.as_str())
                            || ALIAS_PATTERNS.contains(&r.name.as_str())
                            || r.name.starts_with("tag_")));
                if !known {
                    errs.push(format!("{title}: unknown variable ${}", r.name));
                }
                used.insert(r.name);
            }
        }
    }
    for v in &var_names {
        if !used.contains(*v) && *v != "ds" {
            errs.push(format!("variable {v} is used by no panel"));
        }
    }
    errs
}

/// The filter variables a PostgreSQL query must apply, from the tables it
/// reads.
fn pg_filters_needed(sql: &str) -> BTreeSet<&'static str> {
    let mut need = BTreeSet::new();
    for (table, filters) in [
        ("transfers", &["host", "protocol", "module", "user"][..]),
        ("logins", &["host", "protocol", "user"][..]),
        ("daily_clients", &["host"][..]),
    ] {
        if sql.contains(&format!("FROM {table}")) || sql.contains(&format!("FROM daily_{table}")) {
            need.extend(filters.iter().copied());
        }
    }
    need
}

#[test]
fn dashboards_have_the_structure_grafana_needs() {
    for (name, plugin, uid) in [(PG_DASHBOARD, PG_PLUGIN, PG_UID), (INFLUX_DASHBOARD, INFLUX_PLUGIN, INFLUX_UID)] {
        let d = load(name);
        let errs = structure_errors(&d, plugin, uid);
        assert!(errs.is_empty(), "{name}:\n  {}", errs.join("\n  "));
    }
    // The same panels in both, in the same places (top files reads raw
    // paths from PostgreSQL only).
    let layout = |d: &Value| -> Vec<(String, String, Value)> {
        panels(d)
            .iter()
            .map(|p| (s(&p["title"]).to_string(), s(&p["type"]).to_string(), p["gridPos"].clone()))
            .collect()
    };
    let pg: Vec<_> = layout(&load(PG_DASHBOARD));
    let influx: Vec<_> = layout(&load(INFLUX_DASHBOARD));
    let titles = |l: &[(String, String, Value)]| l.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        titles(&pg),
        [
            "Totals (daily rollups, UTC days)",
            "Downloaded",
            "Uploaded",
            "Transfers",
            "Distinct clients",
            "Successful logins",
            "Failed logins",
            "Bytes up/down per day",
            "Transfers per day",
            "Uploads vs downloads",
            "Distinct clients per day",
            "Failed vs successful logins per day",
            "Top users",
            "Top modules",
            "Drill-down (raw events within the time range)",
            "Clients on the map",
            "Countries",
            "Top files",
            "Recent failed transfers",
        ]
    );
    let pg_same: Vec<_> = pg.iter().filter(|p| p.0 != "Top files" && p.1 != "row").map(|p| (&p.0, &p.1)).collect();
    let influx_same: Vec<_> = influx.iter().filter(|p| p.1 != "row").map(|p| (&p.0, &p.1)).collect();
    assert_eq!(pg_same, influx_same);
    let geomaps: Vec<Vec<String>> = [load(PG_DASHBOARD), load(INFLUX_DASHBOARD)]
        .iter()
        .flat_map(|d| panels(d).into_iter().filter(|p| p["type"] == "geomap").map(geomap_fields).collect::<Vec<_>>())
        .collect();
    assert_eq!(
        geomaps,
        [["geohash", "transfers"], ["geohash", "transfers"]],
        "bubbles at the geohash, sized by transfers"
    );
}

#[test]
fn postgres_panels_apply_every_filter_their_tables_have() {
    let d = load(PG_DASHBOARD);
    for p in panels(&d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let sql = s(&t["rawSql"]);
            let used: BTreeSet<String> = var_refs(sql).into_iter().map(|r| r.name).collect();
            for f in pg_filters_needed(sql) {
                assert!(used.contains(f), "{}: reads a table with {f} but does not filter by ${f}", p["title"]);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Expansion rules.

fn var(name: &str, multi: bool, all_value: Option<&str>, options: &[&str], selection: Selection) -> Var {
    Var {
        name: name.into(),
        kind: "query".into(),
        multi,
        include_all: true,
        all_value: all_value.map(str::to_string),
        options: options.iter().map(|o| o.to_string()).collect(),
        selection,
    }
}

#[test]
fn postgres_expansion_follows_grafana() {
    let vars = [
        var("host", true, None, &["vm", "o'neil"], Selection::All),
        var("user", true, Some("'__all'"), &["alice"], Selection::All),
        var("module", true, None, &["pub", "iso"], Selection::Values(vec!["iso".into()])),
    ];
    let e = |sql: &str| expand_pg(sql, &vars).unwrap();
    // The macro table of Grafana's macros.go (and its tests).
    assert_eq!(e("$__time(c)"), "c AS \"time\"");
    assert_eq!(e("$__timeEpoch(c)"), "extract(epoch from c) as \"time\"");
    assert_eq!(e("$__timeFilter(end_ts)"), "end_ts BETWEEN '2026-01-01T00:00:00Z' AND '2026-12-31T23:59:59Z'");
    assert_eq!(e("$__timeFrom() $__timeTo()"), "'2026-01-01T00:00:00Z' '2026-12-31T23:59:59Z'");
    assert_eq!(e("$__timeGroup(c, '5m')"), "floor(extract(epoch from c)/300)*300");
    assert_eq!(e("$__timeGroupAlias(day, '1d')"), "floor(extract(epoch from day)/86400)*86400 AS \"time\"");
    assert_eq!(e("$__timeGroup(c,'5m'), x"), "floor(extract(epoch from c)/300)*300 AS \"time\", x");
    assert_eq!(e("$__timeGroupAlias(c, $__interval, 0)"), "floor(extract(epoch from c)/86400)*86400 AS \"time\"");
    assert_eq!(e("$__unixEpochFilter(t)"), "t >= 1767225600 AND t <= 1798761599");
    assert_eq!(e("$__unixEpochFrom() $__unixEpochTo()"), "1767225600 1798761599");
    assert_eq!(e("$__unixEpochGroupAlias(t, '1h')"), "floor((t)/3600)*3600 AS \"time\"");
    assert_eq!(e("$__interval $__interval_ms"), "1d 86400000");
    assert!(expand_pg("$__nope(x)", &vars).unwrap_err().contains("unknown macro"));
    // Variables: All is every option, quoted and comma-joined; a custom all
    // value goes in as written; one selected value is still quoted.
    assert_eq!(e("server_host IN ($host)"), "server_host IN ('vm','o''neil')");
    assert_eq!(e("('__all' IN ($user) OR username IN (${user}))"), "('__all' IN ('__all') OR username IN ('__all'))");
    assert_eq!(e("module IN ([[module]])"), "module IN ('iso')");
    assert_eq!(e("$unknown $__timeFilter"), "$unknown $__timeFilter", "not variables nor macro calls");
}

#[test]
fn influxql_expansion_follows_grafana() {
    let vars = [
        var("host", true, Some(".*"), &["vm", "a.b"], Selection::All),
        var("protocol", true, Some(".*"), &["rsync", "sftp"], Selection::Values(vec!["rsync".into(), "sftp".into()])),
        var("module", true, Some(".*"), &["pub/iso"], Selection::Values(vec!["pub/iso".into()])),
        var("noall", true, None, &["a.b", "c"], Selection::All),
        Var {
            name: "daily_rp".into(),
            kind: "custom".into(),
            multi: false,
            include_all: false,
            all_value: None,
            options: vec!["daily".into()],
            selection: Selection::Values(vec!["daily".into()]),
        },
    ];
    assert_eq!(
        expand_influxql(
            "SELECT sum(\"bytes\") FROM \"$daily_rp\".\"xfer_daily\" WHERE $timeFilter AND \"host\" =~ /^$host$/ AND \
             \"proto\" =~ /^$protocol$/ AND \"module\" =~ /^$module$/ AND \"x\" =~ /^$noall$/ \
             GROUP BY time($__interval)",
            &vars
        ),
        "SELECT sum(\"bytes\") FROM \"daily\".\"xfer_daily\" WHERE time >= 1767225600000ms and time <= 1798761599000ms \
         AND \"host\" =~ /^.*$/ AND \"proto\" =~ /^(rsync|sftp)$/ AND \"module\" =~ /^pub\\/iso$/ AND \
         \"x\" =~ /^(a\\.b|c)$/ GROUP BY time(1d)"
    );
}

#[test]
fn influxql_reader_rejects_what_influxdb_would() {
    let ok = |q: &str| check_influxql(q, false).unwrap_or_else(|e| panic!("{q}: {e}"));
    let bad = |q: &str| check_influxql(q, false).expect_err(q);
    let info = ok(
        "SELECT sum(\"bytes\") FROM \"$daily_rp\".\"xfer_daily\" WHERE $timeFilter GROUP BY time(1d), \"dir\" fill(0)",
    );
    assert_eq!(
        (info.measurements, info.columns),
        (vec!["xfer_daily"], vec!["Time".into(), "dir".into(), "sum".into()])
    );
    assert!(bad("SELECT sum(\"bytes\") FROM \"$raw_rp\".\"xfer\" WHERE $timeFilter GROUP BY \"user\"")
        .contains("tags only"));
    assert!(bad("SELECT sum(\"bytes\") FROM \"$raw_rp\".\"xfer_daily\" WHERE $timeFilter").contains("RP"));
    assert!(bad("SELECT sum(\"bytes\") FROM \"xfer_daily\" WHERE $timeFilter").contains("RP"));
    assert!(bad("SELECT sum(\"byte\") FROM \"$raw_rp\".\"xfer\" WHERE $timeFilter").contains("neither a tag"));
    assert!(bad("SELECT sum(\"user\") FROM \"$raw_rp\".\"xfer\" WHERE $timeFilter").contains("string field"));
    assert!(bad("SELECT \"host\" FROM \"$raw_rp\".\"xfer\" WHERE $timeFilter").contains("no field"));
    assert!(bad("SELECT \"bytes\" FROM \"$raw_rp\".\"xfer\" WHERE \"host\" = 'vm'").contains("time range"));
    assert!(bad("SELECT \"bytes\" FROM \"$raw_rp\".\"login\" WHERE $timeFilter").contains("neither a tag"));
    assert!(bad("SELECT \"bytes\" FROM \"$raw_rp\".\"xfer\" WHERE $timeFilter AND \"bytes\" =~ /1/").contains("Int"));
    assert!(bad("SHOW TAG VALUES FROM \"$raw_rp\".\"xfer\" WITH KEY = \"user\"").contains("not a tag"));
}

/// Checks every InfluxQL query of the dashboard, as written and as expanded
/// by `influxql_queries`, and what the panels make of the results.
#[test]
fn influxdb_dashboard_names_only_schema_items() {
    let d = load(INFLUX_DASHBOARD);
    let mut checked = 0;
    let expanded = influxql_queries(&grafana_dir().join(INFLUX_DASHBOARD));
    let mut exp = expanded.iter();
    for p in panels(&d) {
        let title = s(&p["title"]);
        let mut columns: Vec<String> = Vec::new();
        for t in p["targets"].as_array().into_iter().flatten() {
            let q = s(&t["query"]);
            let info = check_influxql(q, false).unwrap_or_else(|e| panic!("{title}: {e}\n{q}"));
            let (etitle, eq) = exp.next().expect("one expansion per target");
            assert_eq!(etitle, title);
            assert!(var_refs(eq).is_empty(), "{title}: variables left in {eq}");
            let einfo = check_influxql(eq, true).unwrap_or_else(|e| panic!("{title} (expanded): {e}\n{eq}"));
            assert_eq!((&info.columns, &info.names), (&einfo.columns, &einfo.names));
            // Filters: every measurement's filter tags and, on raw
            // transfer points, the user field.
            let used: BTreeSet<String> = var_refs(q).into_iter().map(|r| r.name).collect();
            let mut need: Vec<&str> = vec!["host", "protocol"];
            if info.measurements.iter().any(|m| m.starts_with("xfer")) {
                need.push("module");
            }
            // "Distinct clients per day" compares the exact raw count with the
            // rollup bound, so both read every user.
            if info.measurements == ["xfer"] && title != "Distinct clients per day" {
                need.push("user");
            }
            for f in need {
                assert!(used.contains(f), "{title}: does not filter by ${f}\n{q}");
            }
            if let Some(alias) = t["alias"].as_str() {
                for r in var_refs(alias) {
                    if let Some(tag) = r.name.strip_prefix("tag_") {
                        assert!(
                            info.group_tags.iter().any(|g| g == tag),
                            "{title}: alias {alias} without GROUP BY {tag}"
                        );
                    } else {
                        assert!(ALIAS_PATTERNS.contains(&r.name.as_str()), "{title}: alias {alias}");
                    }
                }
            }
            if t["resultFormat"] == "table" {
                columns = info.columns.clone();
            }
            checked += 1;
        }
        if let Some(ts) = p["transformations"].as_array() {
            columns = transform(columns, ts).unwrap_or_else(|e| panic!("{title}: {e}"));
        }
        if p["type"] == "geomap" {
            for f in geomap_fields(p) {
                assert!(columns.contains(&f), "{title}: the map needs {f:?}, the data has {columns:?}");
            }
            assert_eq!(columns, ["geohash", "transfers", "bytes", "clients"]);
        }
        if title == "Top users" {
            assert_eq!(columns, ["user", "bytes", "transfers"]);
        }
    }
    // The variable queries.
    let mut vars_checked = 0;
    for v in d["templating"]["list"].as_array().unwrap() {
        if v["type"] != "query" {
            continue;
        }
        let q = s(&v["query"]);
        let info = check_influxql(q, false).unwrap_or_else(|e| panic!("variable {}: {e}\n{q}", v["name"]));
        let (etitle, eq) = exp.next().expect("one expansion per variable");
        assert_eq!(etitle, &format!("variable {}", s(&v["name"])));
        check_influxql(eq, true).unwrap_or_else(|e| panic!("{etitle}: {e}\n{eq}"));
        let want = match s(&v["name"]) {
            "host" => "host",
            "protocol" => "proto",
            "module" => "module",
            "user" => "user",
            other => panic!("unexpected variable {other}"),
        };
        assert_eq!(info.names, BTreeSet::from([want.to_string()]), "variable {}", v["name"]);
        assert_eq!(v["allValue"], ".*", "variable {}: All must match points without the tag too", v["name"]);
        vars_checked += 1;
    }
    assert!(exp.next().is_none());
    assert_eq!((checked, vars_checked), (17, 4));
    eprintln!(
        "grafana: InfluxDB dashboard: {} panels, {checked} queries and {vars_checked} variable queries checked",
        panels(&d).len()
    );
}

// ---------------------------------------------------------------------------
// Provisioning files: the YAML subset they use.

fn yaml_scalar(v: &str) -> Value {
    let v = v.trim();
    if let Some(q) = v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        return Value::String(q.to_string());
    }
    if let Some(q) = v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
        return Value::String(q.replace("''", "'"));
    }
    match v {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => v.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(v.to_string())),
    }
}

/// Block mappings and sequences, plain or quoted scalars, `#` comments on
/// their own lines: the YAML of `grafana/provisioning`.
fn parse_yaml(text: &str) -> Value {
    let mut lines: Vec<(usize, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            assert!(!l.contains(" #"), "trailing comment in {l:?}: not modelled");
            (l.len() - l.trim_start().len(), l.trim().to_string())
        })
        .collect();
    let mut i = 0;
    let v = yaml_block(&mut lines, &mut i, 0);
    assert_eq!(i, lines.len(), "YAML not read to the end at {:?}", lines.get(i));
    v
}

fn yaml_block(lines: &mut Vec<(usize, String)>, i: &mut usize, indent: usize) -> Value {
    if lines[*i].1.starts_with("- ") {
        let mut seq = Vec::new();
        while *i < lines.len() && lines[*i].0 == indent && lines[*i].1.starts_with("- ") {
            lines[*i] = (indent + 2, lines[*i].1[2..].to_string());
            seq.push(yaml_block(lines, i, indent + 2));
        }
        return Value::Array(seq);
    }
    let mut map = Map::new();
    while *i < lines.len() && lines[*i].0 == indent && !lines[*i].1.starts_with("- ") {
        let line = lines[*i].1.clone();
        let (k, v) = line.split_once(':').unwrap_or_else(|| panic!("not key: value: {line:?}"));
        *i += 1;
        let value = if !v.trim().is_empty() {
            yaml_scalar(v)
        } else if *i < lines.len() && (lines[*i].0 > indent || lines[*i].1.starts_with("- ")) {
            let inner = lines[*i].0;
            yaml_block(lines, i, inner)
        } else {
            Value::Null
        };
        assert!(map.insert(k.trim().to_string(), value).is_none(), "duplicate key {k}");
    }
    Value::Object(map)
}

/// `$NAME`, `${NAME}` (Grafana's provisioning syntax) or `$__env{NAME}`.
fn is_env_ref(v: &Value) -> bool {
    let v = s(v);
    let name = v
        .strip_prefix("${")
        .and_then(|x| x.strip_suffix('}'))
        .or_else(|| v.strip_prefix("$__env{").and_then(|x| x.strip_suffix('}')))
        .or_else(|| v.strip_prefix('$'));
    name.is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_'))
}

#[test]
fn provisioning_uses_fixed_uids_env_secrets_and_the_read_only_role() {
    let dir = grafana_dir().join("provisioning");
    let ds = parse_yaml(&std::fs::read_to_string(dir.join("datasources/xferstats.yaml")).unwrap());
    assert_eq!(ds["apiVersion"], 1);
    let sources = ds["datasources"].as_array().expect("datasources[]");
    let role_sql =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/postgres/grafana_ro.sql")).unwrap();
    let role = role_sql
        .split("CREATE ROLE ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("CREATE ROLE in grafana_ro.sql");
    assert_eq!(role, "grafana_ro");
    let mut uids = Vec::new();
    for src in sources {
        let uid = s(&src["uid"]);
        uids.push(uid.to_string());
        assert_eq!(src["name"], src["uid"], "{uid}");
        assert!(is_env_ref(&src["url"]), "{uid}: url {} from the environment", src["url"]);
        for k in ["password", "basicAuthPassword", "database"] {
            assert!(src.get(k).is_none(), "{uid}: top-level {k} (plain text or legacy): use jsonData/secureJsonData");
        }
        let secure = src["secureJsonData"].as_object().expect("secureJsonData");
        assert!(!secure.is_empty());
        for (k, v) in secure {
            assert!(is_env_ref(v), "{uid}: secureJsonData.{k} = {v} is not an environment reference");
        }
        let dash = load(if uid == PG_UID { PG_DASHBOARD } else { INFLUX_DASHBOARD });
        let dsv = dash["templating"]["list"].as_array().unwrap().iter().find(|v| v["name"] == "ds").unwrap().clone();
        assert_eq!(
            (&dsv["current"]["value"], &dsv["query"]),
            (&src["uid"], &src["type"]),
            "{uid}: the dashboard's $ds"
        );
        match uid {
            PG_UID => {
                assert_eq!(src["user"], role, "Grafana connects as the read-only role");
                assert_eq!(src["jsonData"]["database"], "xferstats");
                assert_eq!(src["jsonData"]["timescaledb"], false, "the macros above are the plain-PostgreSQL ones");
            }
            INFLUX_UID => {
                assert_eq!(
                    (&src["jsonData"]["version"], &src["jsonData"]["dbName"]),
                    (&"InfluxQL".into(), &"xferstats".into())
                );
                assert!(is_env_ref(&src["user"]));
            }
            other => panic!("unexpected data source {other}"),
        }
    }
    assert_eq!(uids, [PG_UID, INFLUX_UID]);

    let dash = parse_yaml(&std::fs::read_to_string(dir.join("dashboards/xferstats.yaml")).unwrap());
    assert_eq!(dash["apiVersion"], 1);
    let providers = dash["providers"].as_array().expect("providers[]");
    assert_eq!(providers.len(), 1);
    let p = &providers[0];
    assert_eq!((&p["type"], &p["folder"], &p["allowUiUpdates"]), (&"file".into(), &"xferstats".into(), &false.into()));
    assert!(s(&p["options"]["path"]).starts_with('/'), "absolute dashboards path");
}

#[test]
fn yaml_reader_reads_nesting_and_scalars() {
    let v = parse_yaml("# c\na: 1\nb:\n  - x: 'it''s'\n    y:\n      z: \"${V}\"\n  - x: true\nc: plain text\n");
    assert_eq!(
        v,
        serde_json::json!({"a": 1, "b": [{"x": "it's", "y": {"z": "${V}"}}, {"x": true}], "c": "plain text"})
    );
    assert!(is_env_ref(&"${XFERSTATS_PG_PASSWORD}".into()) && is_env_ref(&"$__env{A_1}".into()));
    assert!(!is_env_ref(&"secret".into()) && !is_env_ref(&"${}".into()) && !is_env_ref(&"$x".into()));
}

// ---------------------------------------------------------------------------
// PostgreSQL: every query on a real server, as the read-only role.

/// A query result: column names and types, rows as text (NULL = None).
struct Table {
    columns: Vec<(String, String)>,
    rows: Vec<Vec<Option<String>>>,
}

impl Table {
    fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.0.as_str()).collect()
    }
    fn col(&self, name: &str) -> usize {
        self.names().iter().position(|n| *n == name).unwrap_or_else(|| panic!("no column {name} in {:?}", self.names()))
    }
    fn num(&self, row: usize, name: &str) -> f64 {
        let c = self.col(name);
        self.rows[row][c].as_deref().unwrap_or_else(|| panic!("{name} is NULL")).parse().unwrap()
    }
    fn sum(&self, name: &str) -> f64 {
        (0..self.rows.len()).map(|r| self.num(r, name)).sum()
    }
    fn text(&self, row: usize, name: &str) -> Option<&str> {
        self.rows[row][self.col(name)].as_deref()
    }
}

fn run(client: &mut postgres::Client, sql: &str) -> Result<Table, String> {
    let stmt = client.prepare(sql).map_err(|e| format!("{e:?}"))?;
    let columns = stmt.columns().iter().map(|c| (c.name().to_string(), c.type_().name().to_string())).collect();
    let mut rows = Vec::new();
    for m in client.simple_query(sql).map_err(|e| format!("{e:?}"))? {
        if let postgres::SimpleQueryMessage::Row(r) = m {
            rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
        }
    }
    Ok(Table { columns, rows })
}

const NUMERIC: [&str; 6] = ["int2", "int4", "int8", "numeric", "float4", "float8"];

/// The columns each PostgreSQL panel is built for.
const PG_COLUMNS: [(&str, &[&str]); 17] = [
    ("Downloaded", &["bytes down"]),
    ("Uploaded", &["bytes up"]),
    ("Transfers", &["transfers"]),
    ("Distinct clients", &["clients"]),
    ("Successful logins", &["logins"]),
    ("Failed logins", &["logins"]),
    ("Bytes up/down per day", &["time", "bytes up", "bytes down"]),
    ("Transfers per day", &["time", "completed", "interrupted", "failed"]),
    ("Uploads vs downloads", &["uploads", "downloads"]),
    ("Distinct clients per day", &["time", "clients"]),
    ("Failed vs successful logins per day", &["time", "successful", "failed", "invalid user"]),
    ("Top users", &["user", "downloads", "uploads", "bytes down", "bytes up"]),
    ("Top modules", &["module", "downloads", "uploads", "bytes down", "bytes up", "users"]),
    ("Clients on the map", &["geohash", "transfers", "bytes", "clients"]),
    ("Countries", &["country", "transfers", "bytes", "clients", "failed logins"]),
    ("Top files", &["path", "module", "downloads", "uploads", "bytes", "clients"]),
    (
        "Recent failed transfers",
        &[
            "time",
            "host",
            "protocol",
            "direction",
            "status",
            "user",
            "module",
            "path",
            "bytes",
            "file_size",
            "country",
            "city",
        ],
    ),
];

/// A City database in the MaxMind layout (152.77.0.0/16 → Grenoble, FR),
/// for when the shared GeoLite2 database is absent.
pub fn tiny_city_db(env: &Env) -> PathBuf {
    let mut w = mmdb_writer::Writer::new("GeoLite2-City");
    let rec = serde_json::json!({"city": {"names": {"en": "Grenoble"}}, "country": {"iso_code": "FR"},
                                 "location": {"latitude": 45.1733, "longitude": 5.7238}});
    w.insert("152.77.0.0/16".parse::<ipnet::IpNet>().unwrap(), &rec).unwrap();
    let p = env.path("tiny-city.mmdb");
    std::fs::write(&p, w.to_bytes().unwrap()).unwrap();
    p
}

/// Runs every variable query (filling the options) and every panel query
/// of the PostgreSQL dashboard with `vars`; results by panel title.
fn run_dashboard(client: &mut postgres::Client, d: &Value, vars: &mut [Var]) -> Vec<(String, String, Table)> {
    for k in 0..vars.len() {
        if vars[k].kind != "query" {
            continue;
        }
        let v =
            d["templating"]["list"].as_array().unwrap().iter().find(|v| v["name"] == vars[k].name.as_str()).unwrap();
        let sql = expand_pg(s(&v["query"]), vars).unwrap();
        let t = run(client, &sql).unwrap_or_else(|e| panic!("variable {}: {e}\n{sql}", vars[k].name));
        let col = t.names().iter().position(|n| *n == "__value").unwrap_or(0);
        vars[k].options = t.rows.iter().map(|r| r[col].clone().unwrap_or_default()).collect();
    }
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = s(&p["title"]).to_string();
            let sql = expand_pg(s(&t["rawSql"]), vars).unwrap_or_else(|e| panic!("{title}: {e}"));
            let table = run(client, &sql).unwrap_or_else(|e| panic!("{title}: {e}\n{sql}"));
            out.push((title, s(&t["format"]).to_string(), table));
        }
    }
    out
}

#[test]
fn postgres_dashboard_queries_run_as_grafana_ro() {
    let Some(pg) = cluster() else { return };
    let env = Env::new();
    let db = pg.fresh_db("grafana");
    let url = pg.url(&db);

    // Two hosts; logins, transfers, deletions, interrupted transfers; GeoIP
    // locations; hashed (default) and truncated client addresses.
    let geo = geolite().unwrap_or_else(|| tiny_city_db(&env));
    let mut inputs: Vec<(PathBuf, &str, Vec<&str>)> = vec![
        (fixture("rsync/default-logfile.log"), "vm", vec![]),
        (fixture("geoip/clients.log"), "mirror2", vec!["--geoip", geo.to_str().unwrap()]),
    ];
    let samples = realogs();
    if let Some(r) = &samples {
        inputs.push((r.join("rsync/rsyncd-default.log"), "vm", vec![]));
        inputs.push((r.join("ssh/syslog/auth-rfc3339.log"), "vm", vec!["--ip-mode", "truncate"]));
        inputs.push((r.join("vsftpd/own/vsftpd.log"), "vm", vec![]));
        inputs.push((r.join("proftpd/xferlog"), "vm", vec![]));
    }
    for (path, host, extra) in &inputs {
        let mut c = env.cmd_with_key_file();
        c.env("XFERSTATS_HOST_KEY", TEST_HOST_KEY).arg("--db").arg(&url);
        c.args(["ingest", "--timezone", "UTC", "--server-host", host, "--progress", "never"]).args(extra).arg(path);
        c.assert().success();
    }

    // The read-only role, made by the shipped script as the README says.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/postgres/grafana_ro.sql");
    pg.psql_file(&db, &script, &[("password", &format!("'{RO_PASSWORD}'"))]);
    let conn = format!("host=127.0.0.1 port={} user=grafana_ro password={RO_PASSWORD} dbname={db}", pg.port());
    let mut ro = postgres::Client::connect(&conn, postgres::NoTls).expect("grafana_ro logs in");
    let show = run(&mut ro, "SHOW default_transaction_read_only").unwrap();
    assert_eq!(show.rows, [[Some("on".to_string())]]);
    for sql in ["SELECT count(*) FROM ledger", "SELECT count(*) FROM session_state", "DELETE FROM daily_logins"] {
        assert!(ro.simple_query(sql).is_err(), "grafana_ro may run {sql}");
    }

    let d = load(PG_DASHBOARD);
    let mut vars = dashboard_vars(&d);
    let results = run_dashboard(&mut ro, &d, &mut vars);
    let options = |name: &str| vars.iter().find(|v| v.name == name).unwrap().options.clone();
    assert_eq!(options("host"), ["mirror2", "vm"]);
    for f in FILTERS {
        assert!(!options(f).is_empty(), "variable {f} has no options");
    }

    let mut by_title: BTreeMap<&str, &Table> = BTreeMap::new();
    for (title, format, t) in &results {
        let want =
            PG_COLUMNS.iter().find(|(p, _)| p == title).unwrap_or_else(|| panic!("{title}: no expected columns"));
        assert_eq!(t.names(), want.1, "{title}: columns");
        assert!(!t.rows.is_empty(), "{title}: no rows");
        if format == "time_series" {
            let (name, ty) = &t.columns[0];
            assert!(name == "time" && (ty == "timestamptz" || NUMERIC.contains(&ty.as_str())), "{title}: time {ty}");
            let times: Vec<f64> = (0..t.rows.len()).map(|r| t.num(r, "time")).collect();
            assert!(times.windows(2).all(|w| w[0] < w[1]), "{title}: time not sorted: {times:?}");
            assert!(times.iter().all(|x| *x % 86_400.0 == 0.0), "{title}: not UTC midnights: {times:?}");
            for (c, ty) in &t.columns[1..] {
                assert!(NUMERIC.contains(&ty.as_str()), "{title}: {c} is {ty}, not a number");
            }
        }
        by_title.insert(title.as_str(), t);
    }
    assert_eq!(by_title.len(), PG_COLUMNS.len());

    // The panels agree with each other: rollups, raw rows, totals, days.
    let t = |name: &str| by_title[name];
    let transfers = t("Transfers").num(0, "transfers");
    let per_day = t("Transfers per day");
    assert_eq!(per_day.sum("completed") + per_day.sum("interrupted") + per_day.sum("failed"), transfers);
    let pie = t("Uploads vs downloads");
    assert_eq!(pie.num(0, "uploads") + pie.num(0, "downloads"), transfers);
    assert_eq!(t("Countries").sum("transfers"), transfers, "raw rows and rollups count the same transfers");
    assert_eq!(t("Bytes up/down per day").sum("bytes down"), t("Downloaded").num(0, "bytes down"));
    assert_eq!(t("Bytes up/down per day").sum("bytes up"), t("Uploaded").num(0, "bytes up"));
    assert_eq!(t("Top modules").sum("bytes down"), t("Downloaded").num(0, "bytes down"));
    let logins = t("Failed vs successful logins per day");
    assert_eq!(logins.sum("successful"), t("Successful logins").num(0, "logins"));
    assert_eq!(logins.sum("failed") + logins.sum("invalid user"), t("Failed logins").num(0, "logins"));
    assert_eq!(t("Countries").sum("failed logins"), t("Failed logins").num(0, "logins"));
    let clients = t("Distinct clients").num(0, "clients");
    let daily_clients = t("Distinct clients per day");
    assert!((0..daily_clients.rows.len()).all(|r| daily_clients.num(r, "clients") <= clients));
    let map = t("Clients on the map");
    assert!(map.sum("transfers") <= transfers);
    for r in 0..map.rows.len() {
        assert_eq!(map.text(r, "geohash").map(str::len), Some(5), "5-character geohash cells");
    }
    assert!((0..map.rows.len()).any(|r| map.text(r, "geohash").is_some_and(|g| g.starts_with("u0h0"))), "Grenoble");
    let countries = t("Countries");
    assert!((0..countries.rows.len()).any(|r| countries.text(r, "country") == Some("FR")));
    let failed = t("Recent failed transfers");
    assert!((0..failed.rows.len()).all(|r| failed.text(r, "status") != Some("completed")));
    if samples.is_some() {
        assert!(options("protocol").len() >= 4, "{:?}", options("protocol"));
        assert!(options("module").contains(&"(none)".to_string()));
    }

    // Every query once more with one value of each filter (two hosts):
    // multi-value quoting and the user filter's selected form.
    let mut one = vars.clone();
    for v in one.iter_mut().filter(|v| FILTERS.contains(&v.name.as_str())) {
        let n = if v.name == "host" { 2 } else { 1 };
        v.selection = Selection::Values(v.options.iter().take(n).cloned().collect());
    }
    let filtered = run_dashboard(&mut ro, &d, &mut one);
    assert_eq!(filtered.len(), results.len());
    let rows: usize = results.iter().chain(&filtered).map(|r| r.2.rows.len()).sum();
    eprintln!(
        "grafana: PostgreSQL dashboard: {} panels, {} queries run twice (All, one value) plus {} variable queries, \
         {rows} rows",
        panels(&d).len(),
        results.len(),
        2 * vars.iter().filter(|v| v.kind == "query").count()
    );
}
