//! The InfluxDB (InfluxQL) dashboard: Grafana's expansion of its queries,
//! and a small InfluxQL reader that checks every query against what the
//! InfluxDB store writes, the way InfluxDB would refuse it. The expanded
//! queries also run on a real InfluxDB (`tests/cli/influx.rs`).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::{
    dashboard_vars, epoch_s, geomap_fields, grafana_dir, interpolate, is_word, load, panels, parse_interval, s,
    selected, var, var_refs, Selection, Var, FROM, INFLUX_DASHBOARD, INTERVAL, INTERVAL_MS, TO,
};

/// The InfluxQL alias patterns besides `$tag_KEY`: column, measurement.
pub(super) const ALIAS_PATTERNS: [&str; 3] = ["col", "m", "measurement"];

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
