//! `xferstats report --format html`: one self-contained HTML file (inline
//! CSS, JavaScript and SVG, no external reference) with totals, per-day
//! charts, top lists, a world map and a date-range filter and drill-down
//! that run in the page, without a server.
//!
//! The page embeds daily aggregates, never raw events, so its size depends
//! on days × distinct values, not on traffic. Every number comes from the
//! rows of the queries behind `report --format json`
//! ([`Store::aggregate_rows`], which [`Store::aggregate`] sums into groups;
//! the page folds them as they come, values numbered once), so the
//! page and the JSON report agree by construction (a CLI test compares
//! them); the groupings it asks for (the day and one field or pair of
//! fields) are the per-day value rollup the stores keep at ingest
//! ([`crate::rollup::VALUE_SETS`]), so it reads no raw event but for the
//! bounded lists below. What is embedded, as gzip-compressed JSON in base64
//! (the page inflates it with the browser's `DecompressionStream`):
//!
//! * per day: the totals (`--by day`), and for each field — user, host,
//!   module, protocol, country — the day × value table (`--by day,FIELD`),
//!   limited to the [`TOP`] values of the period with the most transfers
//!   and logins; the rest is summed into one "other" value so that every
//!   table still adds up to the totals;
//! * for each pair of fields, the month × value × value table (`--by
//!   month,A,B`, the values folded as above; the value rollup keeps pairs
//!   per month), which is what drill-down by one field needs; a pair with
//!   more than [`PAIR_ROWS`] such rows is embedded for the whole period
//!   instead (value × value);
//! * the [`TOP_CELLS`] busiest geohash cells ([`Key::Cell`], 3 characters)
//!   per month, drawn as dots on the map;
//! * the [`TOP_FILES`] most transferred files, per month (the value rollup
//!   keeps files per month: per day it would hold nearly a row per
//!   transfer), and the [`FAILING_CLIENTS`] clients with the most failed
//!   logins, per day; the [`RECENT_FAILED`] latest interrupted or failed
//!   transfers; the distinct clients of the period.
//!
//! What the page can answer exactly, and therefore shows (anything else
//! says "not available" rather than show a number that could be wrong):
//!
//! * any date range without a field filter: every panel but the top files,
//!   which need whole months;
//! * one field value and a date range of whole months (from the first day
//!   with events of a month of the period to the last of one): every panel
//!   but the top files, the map's dots (and the failing clients, unless the
//!   field is the country) — the other field panels over the whole period
//!   only for a pair embedded for the whole period; other ranges: the
//!   totals, the daily charts and the failed transfers;
//! * the map's dots: no field filter, the whole period or whole months;
//! * distinct clients: the whole period without a filter only.
//!
//! Log-derived text is passed through [`sanitize`] and then either escaped
//! for HTML here or, in the page, only ever written with `textContent`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use base64::Engine;
use serde_json::{json, Value};

use super::ReportOptions;
use crate::error::Error;
use crate::rollup::{Aggregate, DayCount, FailedTransfer, Group, Key, Metric, Metrics};
use crate::sanitize::sanitize;
use crate::sinks::Store;

/// Values kept per field (user, host, …); the rest are summed as "other".
pub const TOP: usize = 30;
/// Files in the top-files list.
pub const TOP_FILES: u32 = 50;
/// Clients in the failed-logins list.
pub const FAILING_CLIENTS: u32 = 50;
/// Latest failed transfers listed.
pub const RECENT_FAILED: u32 = 200;

/// Most pair rows (month × value × value) embedded per month for one pair
/// of fields; a pair with more is embedded for the whole period only (the
/// page then answers a filter by one of them over the whole period only).
pub const PAIR_ROWS: usize = 1_500;
/// Geohash cells on the map (the busiest of the period).
pub const TOP_CELLS: usize = 400;

/// The fields of the page's drill-down, in panel order.
pub const FIELDS: [Key; 5] = [Key::User, Key::Host, Key::Module, Key::Protocol, Key::Country];

/// The metrics of the embedded arrays, in order. `transfers` (uploads +
/// downloads) and `completed` (transfers − interrupted − failed) are
/// derived in the page; trailing zeros are left out.
pub const METRICS: [Metric; 9] = [
    Metric::Uploads,
    Metric::Downloads,
    Metric::BytesUp,
    Metric::BytesDown,
    Metric::Interrupted,
    Metric::Failed,
    Metric::Deletes,
    Metric::LoginsOk,
    Metric::LoginsFailed,
];

const PAGE: &str = include_str!("page.html");
const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");
const WORLD: &str = include_str!("world.txt");

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Log-derived text as the page shows it: control and bidi characters
/// escaped by [`sanitize`] (HTML escaping comes where it is written).
fn text(s: &str) -> String {
    sanitize(s).into_owned()
}

fn metric_array(m: &Metrics) -> Value {
    let v = METRICS.map(|k| k.of(m));
    let n = v.iter().rposition(|x| *x != 0).map_or(0, |i| i + 1);
    Value::from(v[..n].to_vec())
}

/// An embedded row: the indexes `keys`, then the [`metric_array`].
fn row(keys: &[usize], m: &Metrics) -> Value {
    let mut row: Vec<Value> = keys.iter().map(|k| Value::from(*k)).collect();
    if let Value::Array(v) = metric_array(m) {
        row.extend(v);
    }
    Value::from(row)
}

/// The `YYYY-MM` of a `YYYY-MM-DD` day.
fn month_of(day: &str) -> &str {
    day.get(..7).unwrap_or(day)
}

/// The distinct values of a field met in the rows of a report, each
/// stored once and numbered in order of appearance.
#[derive(Default)]
struct Interner {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    /// The number of `v`, given it the first time.
    fn id(&mut self, v: &str) -> u32 {
        if let Some(i) = self.index.get(v) {
            return *i;
        }
        let i = self.names.len() as u32;
        self.names.push(v.to_string());
        self.index.insert(v.to_string(), i);
        i
    }

    /// The sums per value of `rows` (value number, metrics), by value.
    fn totals<'a>(&self, rows: impl Iterator<Item = (u32, &'a Metrics)>) -> BTreeMap<String, Metrics> {
        let mut sums = vec![Metrics::default(); self.names.len()];
        for (v, m) in rows {
            sums[v as usize].add(m);
        }
        self.names.iter().cloned().zip(sums).collect()
    }
}

/// One field's kept values: index by value; values beyond [`TOP`] map to
/// the "other" index (`values.len()`).
struct Dict {
    values: Vec<String>,
    index: HashMap<String, usize>,
    folded: bool,
}

impl Dict {
    /// The `top` values of `totals` (period metrics per value) by activity.
    fn of(totals: &BTreeMap<String, Metrics>, top: usize) -> Dict {
        let mut ranked: Vec<(&String, &Metrics)> = totals.iter().collect();
        let w = |m: &Metrics| m.transfers + m.deletes + m.logins_ok + m.logins_failed;
        ranked.sort_by(|a, b| w(b.1).cmp(&w(a.1)).then_with(|| a.0.cmp(b.0)));
        let values: Vec<String> = ranked.iter().take(top).map(|(v, _)| (*v).clone()).collect();
        let index = values.iter().enumerate().map(|(i, v)| (v.clone(), i)).collect();
        Dict { folded: totals.len() > values.len(), values, index }
    }

    fn idx(&self, v: &str) -> usize {
        self.index.get(v).copied().unwrap_or(self.values.len())
    }
}

/// Builds the page's data (see the module documentation) for the
/// `--since`/`--until` range and the filters of `opts`, keeping `--top`
/// values per field ([`TOP`] without it).
pub fn collect(store: &mut dyn Store, opts: &ReportOptions) -> Result<Value, Error> {
    let (since, until, filters) = (opts.since.as_deref(), opts.until.as_deref(), &opts.filters[..]);
    let top = opts.top.unwrap_or(TOP);
    let agg = |store: &mut dyn Store, keys: &[Key]| {
        let q = Aggregate { keys: keys.to_vec(), since: opts.since.clone(), until: opts.until.clone() };
        super::filtered(store, &q, filters)
    };
    let per_day = agg(store, &[Key::Day])?;
    let days: Vec<String> = per_day.iter().map(|g| g.keys[0].clone()).collect();
    let day_idx: HashMap<&str, usize> = days.iter().enumerate().map(|(i, d)| (d.as_str(), i)).collect();
    let di = |d: &str| day_idx.get(d).copied();
    let total: Vec<Value> = per_day.iter().enumerate().map(|(i, g)| row(&[i], &g.metrics)).collect();

    // The months of the period, for the pairs and the cells (kept per month).
    let months: Vec<String> = {
        let mut m: Vec<String> = days.iter().map(|d| month_of(d).to_string()).collect();
        m.dedup();
        m
    };
    let month_idx: HashMap<&str, usize> = months.iter().enumerate().map(|(i, m)| (m.as_str(), i)).collect();
    let mi = |m: &str| month_idx.get(m).copied();
    // The rows of a report are folded as they come (values interned, no
    // group built per row).
    let rows = |store: &mut dyn Store, keys: &[Key], row: &mut dyn FnMut(&[&str], &Metrics)| {
        let q = Aggregate { keys: keys.to_vec(), since: opts.since.clone(), until: opts.until.clone() };
        super::filtered_rows(store, &q, filters, row)
    };

    let mut dicts = Vec::new();
    let mut fields = serde_json::Map::new();
    for key in FIELDS {
        let mut values = Interner::default();
        let mut by_day: HashMap<(usize, u32), Metrics> = HashMap::new();
        rows(store, &[Key::Day, key], &mut |k, m| {
            if let Some(d) = di(k[0]) {
                by_day.entry((d, values.id(k[1]))).or_default().add(m);
            }
        })?;
        let totals = values.totals(by_day.iter().map(|((_, v), m)| (*v, m)));
        let dict = Dict::of(&totals, top);
        let at: Vec<usize> = values.names.iter().map(|v| dict.idx(v)).collect();
        let mut cube: BTreeMap<(usize, usize), Metrics> = BTreeMap::new();
        for ((d, v), m) in &by_day {
            cube.entry((*d, at[*v as usize])).or_default().add(m);
        }
        let cube: Vec<Value> = cube.iter().map(|((d, v), m)| row(&[*d, *v], m)).collect();
        fields.insert(
            key.name().into(),
            json!({
                "values": dict.values.iter().map(|v| text(v)).collect::<Vec<_>>(),
                "other": dict.folded,
                "logins": key.applies_to_logins(),
                "cube": cube,
            }),
        );
        dicts.push(dict);
    }
    let mut pairs = serde_json::Map::new();
    for (i, a) in FIELDS.iter().enumerate() {
        for (j, b) in FIELDS.iter().enumerate().skip(i + 1) {
            let mut monthly: BTreeMap<(usize, usize, usize), Metrics> = BTreeMap::new();
            rows(store, &[Key::Month, *a, *b], &mut |k, m| {
                if let Some(month) = mi(k[0]) {
                    monthly.entry((month, dicts[i].idx(k[1]), dicts[j].idx(k[2]))).or_default().add(m);
                }
            })?;
            // Per month when it fits the budget; else for the whole period.
            let value = if monthly.len() <= PAIR_ROWS {
                let rows: Vec<Value> = monthly.iter().map(|((m, x, y), v)| row(&[*m, *x, *y], v)).collect();
                json!({ "monthly": true, "rows": rows })
            } else {
                let mut period: BTreeMap<(usize, usize), Metrics> = BTreeMap::new();
                for ((_, x, y), m) in &monthly {
                    period.entry((*x, *y)).or_default().add(m);
                }
                let rows: Vec<Value> = period.iter().map(|((x, y), m)| row(&[*x, *y], m)).collect();
                json!({ "monthly": false, "rows": rows })
            };
            pairs.insert(format!("{}|{}", a.name(), b.name()), value);
        }
    }
    // The cells per day (the order the value rollup keeps them in: no
    // sort), summed per month here.
    let mut cell_names = Interner::default();
    let mut by_month: HashMap<(usize, u32), Metrics> = HashMap::new();
    rows(store, &[Key::Day, Key::Cell], &mut |k, m| {
        if let Some(month) = di(k[0]).and_then(|d| mi(month_of(&days[d]))) {
            by_month.entry((month, cell_names.id(k[1]))).or_default().add(m);
        }
    })?;
    let cells = cells(&cell_names, &by_month);
    // The bounded lists: from the store's own queries, or under a filter
    // from the filtered groups (ranked as those queries rank).
    let clients = if filters.is_empty() {
        store.distinct_clients(since, until)?
    } else {
        agg(store, &[Key::Client])?.iter().filter(|g| !g.keys[0].is_empty()).count() as u64
    };
    let whole_months = crate::rollup::value_set(&[Key::File], since, until).is_some();
    let top_files = if filters.is_empty() && whole_months {
        top_files(store, &months, TOP_FILES)?
    } else if filters.is_empty() {
        store.top_files(since, until, TOP_FILES)?
    } else {
        let groups = agg(store, &[Key::Month, Key::File])?;
        let rows = groups.iter().filter(|g| !g.keys[1].is_empty() && g.metrics.transfers > 0);
        top_rows(rows, 1, TOP_FILES, |m| (m.transfers, m.bytes_up + m.bytes_down))
    };
    let failing_clients = if filters.is_empty() {
        store.failed_login_clients(since, until, FAILING_CLIENTS)?
    } else {
        let groups = agg(store, &[Key::Day, Key::Client, Key::Country])?;
        top_rows(groups.iter().filter(|g| g.metrics.logins_failed > 0), 1, FAILING_CLIENTS, |m| (m.logins_failed, 0))
    };

    let ranked = |mut rows: Vec<crate::rollup::DayCount>, limit: u32, files: bool| {
        // Files per month, clients per day.
        let di = |d: &str| if files { month_idx.get(d).copied() } else { di(d) };
        // One order whatever the store's collation.
        rows.sort_by(|a, b| (&a.day, &a.key, &a.country).cmp(&(&b.day, &b.key, &b.country)));
        let mut names: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for r in &rows {
            let Some(d) = di(&r.day) else { continue };
            let n = names.len();
            let k = *index.entry(r.key.clone()).or_insert(n);
            if k == n {
                names.push(text(&r.key));
            }
            // Files: month, file, transfers, bytes; clients: day, client,
            // failed logins, country.
            out.push(if files { json!([d, k, r.count, r.bytes]) } else { json!([d, k, r.count, text(&r.country)]) });
        }
        json!({ "limit": limit, "monthly": files, "names": names, "rows": out })
    };
    let files = ranked(top_files, TOP_FILES, true);
    let failing = ranked(failing_clients, FAILING_CLIENTS, false);
    let failed: Vec<Value> = recent_failed(store, opts)?
        .iter()
        .map(|f| {
            json!([
                crate::time::rfc3339(f.end),
                text(&f.user),
                text(&f.host),
                text(&f.module),
                text(&f.protocol),
                text(&f.direction),
                text(&f.status),
                text(&f.path),
                text(&f.client),
                text(&f.country)
            ])
        })
        .collect();

    Ok(json!({
        "version": 1,
        "since": since,
        "until": until,
        "days": days,
        "months": months,
        "metrics": METRICS.map(Metric::name),
        "top": top,
        "filters": filters.iter().map(|f| json!([f.key.name(), text(&f.value)])).collect::<Vec<_>>(),
        "total": total,
        "fields": fields,
        "pairs": pairs,
        "clients": clients,
        "cells": cells,
        "files": files,
        "failing": failing,
        "failed": { "limit": RECENT_FAILED, "rows": failed },
    }))
}

/// The rows of the `limit` keys (column `at` of `rows`' keys) with the
/// largest `count` over all rows, as the stores rank their lists (count
/// down, then key), as [`DayCount`]s: the first key the day or month, the
/// one after `at` (if any) the country.
fn top_rows<'a>(
    rows: impl Iterator<Item = &'a Group> + Clone,
    at: usize,
    limit: u32,
    count: impl Fn(&Metrics) -> (u64, u64),
) -> Vec<DayCount> {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for g in rows.clone() {
        *totals.entry(&g.keys[at]).or_default() += count(&g.metrics).0;
    }
    let mut ranked: Vec<(&str, u64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let kept: std::collections::HashSet<&str> = ranked.iter().take(limit as usize).map(|(k, _)| *k).collect();
    rows.filter(|g| kept.contains(g.keys[at].as_str()))
        .map(|g| {
            let (count, bytes) = count(&g.metrics);
            let country = g.keys.get(at + 1).cloned().unwrap_or_default();
            DayCount { day: g.keys[0].clone(), key: g.keys[at].clone(), country, count, bytes }
        })
        .collect()
}

/// The `limit` most transferred files of `months` (`YYYY-MM`, a range of
/// whole months), per month, from the files of the value rollup without
/// reading all of them: the files each month ranks first are candidates,
/// and the `limit`-th best of their totals, `L`, bounds the list from
/// below; a file in the list has a total of at least `L`, so at least
/// `L / months` transfers in one of the months — the other candidates,
/// which each month's ranking (an index) gives. Ranked by transfers, then
/// file, as [`Store::top_files`] ranks.
fn top_files(store: &mut dyn Store, months: &[String], limit: u32) -> Result<Vec<DayCount>, Error> {
    let firsts: Vec<String> = months.iter().map(|m| format!("{m}-01")).collect();
    let mut candidates: std::collections::BTreeSet<String> = Default::default();
    for m in &firsts {
        candidates.extend(store.month_files(m, 1, limit, &[])?.into_iter().map(|f| f.0));
    }
    // Exact per-month counts of the candidates; their ranking.
    let counted = |store: &mut dyn Store, names: &std::collections::BTreeSet<String>| {
        let names: Vec<String> = names.iter().cloned().collect();
        let mut rows = Vec::new();
        for (m, first) in months.iter().zip(&firsts) {
            for chunk in names.chunks(500).filter(|c| !c.is_empty()) {
                rows.extend(store.month_files(first, 0, 0, chunk)?.into_iter().map(|f| (m.clone(), f)));
            }
        }
        let mut totals: HashMap<&str, u64> = HashMap::new();
        for (_, (f, n, _)) in &rows {
            *totals.entry(f.as_str()).or_default() += n;
        }
        let mut ranked: Vec<(String, u64)> = totals.into_iter().map(|(f, n)| (f.to_string(), n)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(limit as usize);
        Ok::<_, Error>((rows, ranked))
    };
    let (_, ranked) = counted(store, &candidates)?;
    let bound = if ranked.len() < limit as usize { 1 } else { ranked.last().map_or(1, |r| r.1) };
    let at_least = bound.div_ceil(months.len().max(1) as u64).max(1);
    for m in &firsts {
        candidates.extend(store.month_files(m, at_least, u32::MAX, &[])?.into_iter().map(|f| f.0));
    }
    let (rows, ranked) = counted(store, &candidates)?;
    let kept: std::collections::HashSet<&str> = ranked.iter().map(|r| r.0.as_str()).collect();
    Ok(rows
        .into_iter()
        .filter(|(_, f)| kept.contains(f.0.as_str()))
        .map(|(day, (key, count, bytes))| DayCount { day, key, country: String::new(), count, bytes })
        .collect())
}

/// The [`RECENT_FAILED`] latest interrupted or failed transfers of the
/// range that pass the filters of `opts`: the store's list, asked for more
/// until enough pass or there are no more.
fn recent_failed(store: &mut dyn Store, opts: &ReportOptions) -> Result<Vec<FailedTransfer>, Error> {
    let mut limit = RECENT_FAILED;
    loop {
        let all = store.failed_transfers(opts.since.as_deref(), opts.until.as_deref(), limit)?;
        let passes = |f: &FailedTransfer| {
            opts.filters.iter().all(|x| {
                x.matches(match x.key {
                    Key::User => &f.user,
                    Key::Host => &f.host,
                    Key::Module => &f.module,
                    Key::Protocol => &f.protocol,
                    _ => "",
                })
            })
        };
        let done = all.len() < limit as usize || limit == u32::MAX;
        let kept: Vec<FailedTransfer> = all.into_iter().filter(passes).take(RECENT_FAILED as usize).collect();
        if kept.len() == RECENT_FAILED as usize || done {
            return Ok(kept);
        }
        limit = limit.saturating_mul(8);
    }
}

/// The map's dots: the [`TOP_CELLS`] busiest geohash cells of the period
/// (transfers and logins), each with its centre on the map (`x`, `y` in
/// the outline's 720 × 300 equirectangular units), and per month
/// `[month, cell, transfers, logins]` (per day they would double the page),
/// from the sums per (month, cell number of `names`).
fn cells(names: &Interner, by_month: &HashMap<(usize, u32), Metrics>) -> Value {
    let totals = names.totals(by_month.iter().map(|((_, c), m)| (*c, m)));
    let w = |m: &Metrics| m.transfers + m.deletes + m.logins_ok + m.logins_failed;
    let mut ranked: Vec<(&String, (f64, f64), u64)> =
        totals.iter().filter_map(|(c, m)| Some((c, cell_center(c)?, w(m)))).collect();
    ranked.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(b.0)));
    ranked.truncate(TOP_CELLS);
    let index: HashMap<&str, usize> = ranked.iter().enumerate().map(|(i, c)| (c.0.as_str(), i)).collect();
    let at: Vec<Value> = ranked
        .iter()
        .map(|(c, (lat, lon), _)| {
            let x = ((lon + 180.0) * 2.0 * 2.0).round() / 2.0;
            let y = ((84.0 - lat.clamp(-66.0, 84.0)) * 2.0 * 2.0).round() / 2.0;
            json!([text(c), x, y])
        })
        .collect();
    // In (month, cell) order.
    let mut kept: Vec<(usize, &str, &Metrics)> = by_month
        .iter()
        .map(|((d, c), m)| (*d, names.names[*c as usize].as_str(), m))
        .filter(|(_, c, _)| index.contains_key(c))
        .collect();
    kept.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let cube: Vec<Value> =
        kept.iter().map(|(d, c, m)| json!([d, index[c], m.transfers, m.logins_ok + m.logins_failed])).collect();
    json!({ "limit": TOP_CELLS, "chars": crate::rollup::CELL_CHARS, "at": at, "cube": cube })
}

/// The centre (latitude, longitude) of a geohash cell; `None` for an empty
/// or invalid one.
fn cell_center(gh: &str) -> Option<(f64, f64)> {
    const BASE32: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (mut lat, mut lon) = ((-90.0_f64, 90.0_f64), (-180.0_f64, 180.0_f64));
    let mut even = true;
    if gh.is_empty() {
        return None;
    }
    for c in gh.bytes() {
        let v = BASE32.iter().position(|b| *b == c)?;
        for bit in (0..5).rev() {
            let r = if even { &mut lon } else { &mut lat };
            let mid = (r.0 + r.1) / 2.0;
            if v >> bit & 1 == 1 {
                r.0 = mid;
            } else {
                r.1 = mid;
            }
            even = !even;
        }
    }
    Some(((lat.0 + lat.1) / 2.0, (lon.0 + lon.1) / 2.0))
}

/// The world outline as inline SVG paths, one per country, each with its
/// ISO code (`data-cc`) and a title.
fn world_svg() -> String {
    let mut lines = WORLD.lines();
    let (w, h) = lines
        .next()
        .and_then(|l| {
            let mut it = l.trim_start_matches('#').split_whitespace();
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .unwrap_or_else(|| ("720".into(), "300".into()));
    let mut svg = format!(
        "<svg id=\"map\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Clients by country\" \
         preserveAspectRatio=\"xMidYMid meet\">"
    );
    for l in lines {
        let mut parts = l.splitn(3, '\t');
        let (Some(cc), Some(name), Some(d)) = (parts.next(), parts.next(), parts.next()) else { continue };
        svg.push_str(&format!(
            "<path data-cc=\"{}\" d=\"{}\"><title>{}</title></path>",
            html_escape(cc),
            html_escape(d),
            html_escape(name)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// The busiest users as a static table for readers without JavaScript.
fn noscript_table(data: &Value) -> String {
    let mut s = String::from(
        "<p>This report draws its charts and filters with JavaScript; the busiest users of the period:</p>\
         <table><thead><tr><th>user</th><th>transfers</th></tr></thead><tbody>",
    );
    let user = &data["fields"]["user"];
    let mut sums: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    let values = user["values"].as_array().cloned().unwrap_or_default();
    let mut per: HashMap<u64, u64> = HashMap::new();
    for row in user["cube"].as_array().into_iter().flatten() {
        let v = row[1].as_u64().unwrap_or(0);
        let n = |i: usize| row.get(i).and_then(Value::as_u64).unwrap_or(0);
        *per.entry(v).or_default() += n(2) + n(3);
    }
    for (i, name) in values.iter().enumerate() {
        sums.entry(per.get(&(i as u64)).copied().unwrap_or(0)).or_default().push(name.as_str().unwrap_or(""));
    }
    for (n, names) in sums.iter().rev().take(20) {
        for name in names {
            s.push_str(&format!("<tr><td>{}</td><td>{n}</td></tr>", html_escape(name)));
        }
    }
    s.push_str("</tbody></table>");
    s
}

/// Writes the HTML report of days `since..=until` to `out`.
pub fn render(store: &mut dyn Store, opts: &ReportOptions, out: &mut dyn Write) -> Result<(), Error> {
    let (since, until) = (opts.since.as_deref(), opts.until.as_deref());
    let data = collect(store, opts)?;
    let json = serde_json::to_vec(&data).map_err(|e| Error::Output(e.into()))?;
    // The default level: 0.3 % larger than the best, in 60 % of its time.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json).map_err(Error::Output)?;
    let packed = base64::engine::general_purpose::STANDARD.encode(gz.finish().map_err(Error::Output)?);
    let days = data["days"].as_array().cloned().unwrap_or_default();
    let first = since.map(str::to_string).or_else(|| days.first().and_then(|d| d.as_str().map(str::to_string)));
    let last = until.map(str::to_string).or_else(|| days.last().and_then(|d| d.as_str().map(str::to_string)));
    let mut period = match (first, last) {
        (Some(a), Some(b)) => format!("{a} – {b}"),
        _ => "no events".to_string(),
    };
    for f in &opts.filters {
        period.push_str(&format!(", {} {}", f.key.name(), text(&f.value)));
    }
    let page = PAGE
        .replace("{{PERIOD}}", &html_escape(&period))
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{CSS}}", CSS)
        .replace("{{MAP}}", &world_svg())
        .replace("{{NOSCRIPT}}", &noscript_table(&data))
        .replace("{{DATA}}", &packed)
        .replace("{{JS}}", JS);
    out.write_all(page.as_bytes()).map_err(Error::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(html_escape("<script>a&'\"</script>"), "&lt;script&gt;a&amp;&#39;&quot;&lt;/script&gt;");
    }

    #[test]
    fn trailing_zero_metrics_dropped() {
        let m = Metrics { transfers: 2, uploads: 2, bytes_up: 10, completed: 2, ..Default::default() };
        assert_eq!(metric_array(&m), json!([2, 0, 10]));
        assert_eq!(metric_array(&Metrics::default()), json!([]));
    }

    #[test]
    fn world_outline_has_countries() {
        let svg = world_svg();
        assert!(svg.contains("data-cc=\"FR\""));
        assert!(svg.contains("data-cc=\"US\""));
        assert_eq!(svg.matches("<path ").count(), WORLD.lines().count() - 1);
    }

    #[test]
    fn geohash_cell_centres() {
        // u0h: a cell of Grenoble's region (45.1733 N, 5.7238 E is u0h0f).
        let (lat, lon) = cell_center("u0h").unwrap();
        assert!((lat - 45.703125).abs() < 1e-9 && (lon - 6.328125).abs() < 1e-9, "{lat} {lon}");
        assert_eq!(cell_center("s"), Some((22.5, 22.5)));
        assert_eq!(cell_center(""), None);
        assert_eq!(cell_center("u0a"), None, "a is not a geohash digit");
    }

    #[test]
    fn dict_folds_beyond_top() {
        let m = |n: u64| Metrics { transfers: n, ..Default::default() };
        let mut totals: BTreeMap<String, Metrics> =
            (0..TOP as u64 + 2).map(|i| (format!("u{i:03}"), m(i + 1))).collect();
        totals.insert("zero".into(), m(0));
        let d = Dict::of(&totals, TOP);
        assert_eq!(d.values.len(), TOP);
        assert!(d.folded);
        assert_eq!(d.idx(&format!("u{:03}", TOP + 1)), 0);
        assert_eq!(d.idx("u000"), TOP);
    }
}
