//! The structure Grafana needs of the two dashboards to load and provision
//! them, and the same panels in the same places in both.

use std::collections::BTreeSet;

use serde_json::Value;

use super::influxql::ALIAS_PATTERNS;
use super::{
    geomap_fields, load, panels, s, var_refs, FILTERS, INFLUX_DASHBOARD, INFLUX_PLUGIN, INFLUX_UID, PG_DASHBOARD,
    PG_PLUGIN, PG_UID, SCHEMA_VERSION,
};

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
