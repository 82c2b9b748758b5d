//! `xferstats report`: groups and sums from a store, rendered as a table,
//! Markdown, CSV or JSON, or as a self-contained HTML page ([`html`]).
//!
//! Every output shows log-derived text through [`crate::sanitize`]: escaped
//! (`\x1b`, `\u{202e}`) in the table, Markdown and CSV, as `\uXXXX` in
//! JSON (which parses back to the stored text).
//!
//! The JSON output is an interface: an array of objects with the `--by`
//! keys (day as `YYYY-MM-DD`) and the metrics `transfers, completed,
//! interrupted, failed, uploads, downloads, bytes_up, bytes_down, deletes`,
//! plus `logins_ok, logins_failed` when every key (and every filter key)
//! applies to logins; an empty key value stays `""` there and in CSV, while
//! the table and Markdown show it as `(none)` or `(unknown)`. Without `--by`
//! the report is the daily digest of the last complete day (or `--day`), one
//! row per user. Filters (`--user`, `--host`, `--protocol`, `--module`) and
//! `--top N` apply to every format; the HTML page is made for the filtered
//! events and keeps N values per field.

pub mod digest;
pub mod html;

use std::io::Write;

use serde_json::{Map, Value};

use crate::error::Error;
use crate::rollup::{Aggregate, Group, Key, Metric, Metrics};
use crate::sanitize::{sanitize, write_json};
use crate::sinks::Store;

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned columns for a terminal.
    Table,
    /// A Markdown table.
    Markdown,
    /// RFC 4180 CSV with a header.
    Csv,
    /// A JSON array of objects.
    Json,
    /// A self-contained HTML page with charts, a map and filters
    /// (grouping keys do not apply; the report's filters do).
    Html,
}

/// `--format NAME` of `report`.
impl clap::ValueEnum for OutputFormat {
    fn value_variants<'a>() -> &'a [OutputFormat] {
        &[OutputFormat::Table, OutputFormat::Markdown, OutputFormat::Csv, OutputFormat::Json, OutputFormat::Html]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            OutputFormat::Table => "table",
            OutputFormat::Markdown => "markdown",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
            OutputFormat::Html => "html",
        }))
    }
}

/// What to report.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Grouping keys; `None` for the daily digest.
    pub by: Option<Vec<Key>>,
    /// First day, `YYYY-MM-DD`.
    pub since: Option<String>,
    /// Last day, `YYYY-MM-DD`.
    pub until: Option<String>,
    /// The day of the digest, `YYYY-MM-DD`; `None` for the last complete
    /// day: the latest day with events before today (UTC).
    pub day: Option<String>,
    /// Only events whose key has this value (`--user`, `--host`,
    /// `--protocol`, `--module`).
    pub filters: Vec<Filter>,
    /// Only the N groups with the most bytes (then transfers and deletes,
    /// then logins).
    pub top: Option<usize>,
    /// Output format.
    pub format: OutputFormat,
}

/// A report filter: events whose `key` is `value` (the label of an empty
/// value, `(none)` or `(unknown)`, matches the empty value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The key.
    pub key: Key,
    /// The value it must have.
    pub value: String,
}

impl Filter {
    /// Whether a key value passes the filter.
    pub fn matches(&self, v: &str) -> bool {
        v == self.value || (v.is_empty() && self.value == empty_label(self.key))
    }
}

/// What the table and Markdown outputs show for an empty key value, as the
/// Grafana dashboards do: `(none)` for a transfer outside any module,
/// `(unknown)` for a country, city, user, … the log or GeoIP did not give.
/// JSON and CSV keep the empty string.
pub fn empty_label(key: Key) -> &'static str {
    match key {
        Key::Module => "(none)",
        _ => "(unknown)",
    }
}

/// `v`, sanitised, or the label of an empty value of `key`.
fn shown(key: Key, v: &str) -> String {
    if v.is_empty() {
        empty_label(key).to_string()
    } else {
        sanitize(v).into_owned()
    }
}

/// The metrics a report shows: the login metrics too when every key
/// applies to logins.
fn metrics(logins: bool) -> &'static [Metric] {
    if logins {
        &Metric::ALL
    } else {
        &Metric::TRANSFERS
    }
}

/// Human-readable bytes (SI units).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Runs a report against `store`, writing to `out`.
pub fn run(store: &mut dyn Store, opts: &ReportOptions, out: &mut dyn Write) -> Result<(), Error> {
    let w = |r: std::io::Result<()>| r.map_err(Error::Output);
    if opts.format == OutputFormat::Html {
        return html::render(store, opts, out);
    }
    let logins_apply =
        |keys: &[Key]| keys.iter().chain(opts.filters.iter().map(|f| &f.key)).all(|k| k.applies_to_logins());
    match &opts.by {
        Some(keys) => {
            let groups = grouped(store, keys, opts.since.clone(), opts.until.clone(), opts)?;
            w(render_groups(keys, &groups, logins_apply(keys), opts.format, out))
        }
        None => {
            let day = match &opts.day {
                Some(day) => Some(day.clone()),
                None => {
                    let yesterday = crate::time::day_string((crate::time::today() - 1) * 86_400_000_000);
                    let until = opts.until.clone().map_or(yesterday.clone(), |u| u.min(yesterday));
                    store.latest_day(opts.since.as_deref(), Some(&until))?
                }
            };
            let Some(day) = day else {
                return w(match opts.format {
                    OutputFormat::Json => writeln!(out, "[]"),
                    OutputFormat::Csv => writeln!(out, "day,user,{}", csv_metric_header(true)),
                    _ => writeln!(out, "no events in the store for that period"),
                });
            };
            let keys = vec![Key::Day, Key::User];
            let groups = grouped(store, &keys, Some(day.clone()), Some(day.clone()), opts)?;
            let logins = logins_apply(&keys);
            match opts.format {
                OutputFormat::Json | OutputFormat::Csv => w(render_groups(&keys, &groups, logins, opts.format, out)),
                _ => w(render_digest(&day, &groups, logins, opts.format, out)),
            }
        }
    }
}

/// The groups of `keys` over `since..=until` with the filters of `opts`
/// applied (the store groups by the filter keys too; the groups of other
/// values are dropped and the rest summed per `keys`), and `--top`: the
/// ranked first N, then the others summed into a last group without keys.
fn grouped(
    store: &mut dyn Store,
    keys: &[Key],
    since: Option<String>,
    until: Option<String>,
    opts: &ReportOptions,
) -> Result<Ranked, Error> {
    let mut groups = filtered(store, &Aggregate { keys: keys.to_vec(), since, until }, &opts.filters)?;
    let mut total = Metrics::default();
    for g in &groups {
        total.add(&g.metrics);
    }
    let mut others = None;
    if let Some(n) = opts.top {
        if groups.len() > n {
            groups.sort_by(|a, b| rank(&b.metrics).cmp(&rank(&a.metrics)).then_with(|| a.keys.cmp(&b.keys)));
            let mut rest = Metrics::default();
            let dropped = groups.len() - n;
            for g in groups.drain(n..) {
                rest.add(&g.metrics);
            }
            others = Some((rest, dropped));
        }
    }
    Ok(Ranked { groups, total, others })
}

/// The groups of `q` with `filters` applied: the store groups by the
/// filter keys too; the groups of other values are dropped and the rest
/// summed per key of `q`.
pub(crate) fn filtered(store: &mut dyn Store, q: &Aggregate, filters: &[Filter]) -> Result<Vec<Group>, Error> {
    if filters.is_empty() {
        return Ok(store.aggregate(q)?);
    }
    let mut kept: std::collections::BTreeMap<Vec<String>, Metrics> = Default::default();
    filtered_rows(store, q, filters, &mut |keys, m| {
        kept.entry(keys.iter().map(|k| k.to_string()).collect()).or_default().add(m);
    })?;
    Ok(kept.into_iter().map(|(keys, metrics)| Group { keys, metrics }).collect())
}

/// [`filtered`] as the rows the groups are summed from
/// ([`Store::aggregate_rows`]), passed to `row` without collecting them.
pub(crate) fn filtered_rows(
    store: &mut dyn Store,
    q: &Aggregate,
    filters: &[Filter],
    row: &mut dyn FnMut(&[&str], &Metrics),
) -> Result<(), Error> {
    let mut keys = q.keys.clone();
    for f in filters {
        if !keys.contains(&f.key) {
            keys.push(f.key);
        }
    }
    let at: Vec<(usize, &Filter)> =
        filters.iter().filter_map(|f| keys.iter().position(|k| *k == f.key).map(|i| (i, f))).collect();
    let n = q.keys.len();
    let q = Aggregate { keys, since: q.since.clone(), until: q.until.clone() };
    store.aggregate_rows(&q, &mut |keys, m| {
        if at.iter().all(|(i, f)| f.matches(keys[*i])) {
            row(&keys[..n], m);
        }
    })?;
    Ok(())
}

/// What `--top` ranks by: bytes, then transfers and deletes, then logins.
pub(crate) fn rank(m: &Metrics) -> (u64, u64, u64) {
    (m.bytes_up + m.bytes_down, m.transfers + m.deletes, m.logins_ok + m.logins_failed)
}

/// The groups of a report, their total, and what `--top` left out.
struct Ranked {
    /// The groups shown.
    groups: Vec<Group>,
    /// The total of every group, shown or not.
    total: Metrics,
    /// The sum of the groups `--top` left out, and how many they were.
    others: Option<(Metrics, usize)>,
}

fn csv_metric_header(logins: bool) -> String {
    metrics(logins).iter().map(|m| m.name()).collect::<Vec<_>>().join(",")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn render_groups(
    keys: &[Key],
    r: &Ranked,
    logins: bool,
    format: OutputFormat,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let groups = &r.groups;
    match format {
        OutputFormat::Json => {
            let arr: Vec<Value> = groups
                .iter()
                .map(|g| {
                    let mut o = Map::new();
                    for (k, v) in keys.iter().zip(&g.keys) {
                        o.insert(k.name().to_string(), Value::String(v.clone()));
                    }
                    for m in metrics(logins) {
                        o.insert(m.name().to_string(), Value::from(m.of(&g.metrics)));
                    }
                    Value::Object(o)
                })
                .collect();
            write_json(&mut *out, &arr)?;
            writeln!(out)
        }
        OutputFormat::Csv => {
            let mut header: Vec<&str> = keys.iter().map(|k| k.name()).collect();
            let mh = csv_metric_header(logins);
            header.push(&mh);
            writeln!(out, "{}", header.join(","))?;
            for g in groups {
                let mut row: Vec<String> = g.keys.iter().map(|k| csv_field(&sanitize(k))).collect();
                row.extend(metrics(logins).iter().map(|m| m.of(&g.metrics).to_string()));
                writeln!(out, "{}", row.join(","))?;
            }
            Ok(())
        }
        OutputFormat::Table | OutputFormat::Markdown | OutputFormat::Html => {
            let mut header: Vec<String> = keys.iter().map(|k| k.name().to_string()).collect();
            header.extend(metrics(logins).iter().map(|m| m.label()));
            let mut rows: Vec<Vec<String>> = Vec::new();
            for g in groups {
                rows.push(metric_row(
                    keys.iter().zip(&g.keys).map(|(k, v)| shown(*k, v)).collect(),
                    &g.metrics,
                    logins,
                ));
            }
            let label_row = |label: String| {
                let mut cells = vec![label];
                cells.extend(std::iter::repeat_n(String::new(), keys.len().saturating_sub(1)));
                cells
            };
            if let Some((m, n)) = &r.others {
                rows.push(metric_row(label_row(format!("({n} more)")), m, logins));
            }
            rows.push(metric_row(label_row("total".to_string()), &r.total, logins));
            write_table(&header, &rows, format, keys.len(), out)
        }
    }
}

fn metric_row(mut cells: Vec<String>, m: &Metrics, logins: bool) -> Vec<String> {
    cells.extend(metrics(logins).iter().map(|k| if k.is_bytes() { human_bytes(k.of(m)) } else { k.of(m).to_string() }));
    cells
}

/// The digest table: per user the logins (accepted, failed; left out when
/// a filter key does not apply to logins), transfers and bytes.
fn render_digest(
    day: &str,
    r: &Ranked,
    logins: bool,
    format: OutputFormat,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut header = vec!["user"];
    if logins {
        header.extend(["logins", "failed logins"]);
    }
    header.extend(["uploads", "downloads", "bytes up", "bytes down"]);
    let header: Vec<String> = header.into_iter().map(str::to_string).collect();
    let row = |user: String, m: &Metrics| {
        let mut cells = vec![user];
        if logins {
            cells.extend([m.logins_ok.to_string(), m.logins_failed.to_string()]);
        }
        cells.extend([
            m.uploads.to_string(),
            m.downloads.to_string(),
            human_bytes(m.bytes_up),
            human_bytes(m.bytes_down),
        ]);
        cells
    };
    let mut rows: Vec<Vec<String>> = r.groups.iter().map(|g| row(shown(Key::User, &g.keys[1]), &g.metrics)).collect();
    if let Some((m, n)) = &r.others {
        rows.push(row(format!("({n} more)"), m));
    }
    rows.push(row("total".into(), &r.total));
    match format {
        OutputFormat::Markdown => writeln!(out, "## xferstats daily digest, {day} (UTC)\n")?,
        _ => writeln!(out, "xferstats daily digest for {day} (UTC)\n")?,
    }
    write_table(&header, &rows, format, 1, out)
}

fn write_table(
    header: &[String],
    rows: &[Vec<String>],
    format: OutputFormat,
    text_cols: usize,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let cell = |i: usize, s: &str| {
        let pad = widths[i].saturating_sub(s.chars().count());
        if i < text_cols {
            format!("{s}{}", " ".repeat(pad))
        } else {
            format!("{}{s}", " ".repeat(pad))
        }
    };
    match format {
        OutputFormat::Markdown => {
            let md = |s: &str| s.replace('|', "\\|");
            writeln!(out, "| {} |", header.iter().map(|h| md(h)).collect::<Vec<_>>().join(" | "))?;
            let seps: Vec<&str> = (0..n).map(|i| if i < text_cols { "---" } else { "---:" }).collect();
            writeln!(out, "| {} |", seps.join(" | "))?;
            for r in rows {
                writeln!(out, "| {} |", r.iter().map(|c| md(c)).collect::<Vec<_>>().join(" | "))?;
            }
        }
        _ => {
            let line: Vec<String> = header.iter().enumerate().map(|(i, h)| cell(i, h)).collect();
            writeln!(out, "{}", line.join("  ").trim_end())?;
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            writeln!(out, "{}", rule.join("  "))?;
            for (ri, r) in rows.iter().enumerate() {
                if ri + 1 == rows.len() {
                    writeln!(out, "{}", rule.join("  "))?;
                }
                let line: Vec<String> = r.iter().enumerate().map(|(i, c)| cell(i, c)).collect();
                writeln!(out, "{}", line.join("  ").trim_end())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_themselves() {
        use clap::ValueEnum;
        for (name, f) in [
            ("table", OutputFormat::Table),
            ("markdown", OutputFormat::Markdown),
            ("csv", OutputFormat::Csv),
            ("json", OutputFormat::Json),
            ("html", OutputFormat::Html),
        ] {
            assert_eq!(OutputFormat::from_str(name, false), Ok(f));
        }
        assert_eq!(OutputFormat::value_variants().len(), 5);
        assert_eq!(" client".parse::<Key>().unwrap(), Key::Client);
        let e = "colour".parse::<Key>().unwrap_err();
        assert!(e.to_string().starts_with("--by 'colour': unknown key"), "{e}");
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_567_890), "1.6 MB");
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
    }
}
