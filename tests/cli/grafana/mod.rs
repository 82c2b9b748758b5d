//! The Grafana dashboards (`grafana/xferstats-*.json`) and their provisioning
//! files, tested without a Grafana server: none is installable here (no
//! Debian package; the PyPI and npm packages named grafana are empty
//! placeholders), so what Grafana does with them is redone from its source.
//!
//! - **Structure** (`structure.rs`): what a classic dashboard needs to load
//!   and be provisioned: no `__inputs`, unique panel ids, a 24-column grid
//!   without overlaps, targets with a `refId`, the `$ds` data source
//!   variable everywhere, a known result format, only variables that exist,
//!   and the filter variables applied to every panel whose table has the
//!   column.
//! - **PostgreSQL** (`pg.rs`): every `rawSql` (and every variable query) is
//!   interpolated as Grafana does it (template variables with the SQL data
//!   sources' quoting, then the backend macros of
//!   `pkg/tsdb/grafana-postgresql-datasource/macros.go`) for a fixed time
//!   range, and run on a throwaway PostgreSQL filled by `xferstats ingest`,
//!   connected as the read-only role of `sql/postgres/grafana_ro.sql`: each
//!   panel gets the columns it is built for, time series a sorted `time`
//!   column, and the results are non-empty and agree with each other.
//! - **InfluxQL** (`influxql.rs`): every query names only measurements, tags
//!   and fields the InfluxDB store writes, groups only by tags (InfluxQL
//!   cannot group by a field), reads each measurement through its
//!   retention-policy variable, and the panel transformations find the
//!   fields they need. `influxql_queries` expands the queries as Grafana
//!   does, to run them on a real InfluxDB.
//! - **Provisioning** (`provisioning.rs`): fixed uids that the dashboards
//!   default to, secrets from the environment only, and the read-only
//!   PostgreSQL role.
//!
//! This file holds what they share: the dashboard loaders, the time range,
//! and Grafana's template variables (`templateSrv.replace`).

mod influxql;
mod pg;
mod prometheus;
mod provisioning;
mod structure;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::Env;

pub use influxql::influxql_queries;

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

/// `gtime.ParseInterval` for the units the dashboards can use, in seconds
/// (the PostgreSQL macros and InfluxQL's `GROUP BY time(…)`).
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

/// A query variable for the expansion tests.
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
