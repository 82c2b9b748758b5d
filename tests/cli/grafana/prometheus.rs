//! The Prometheus dashboard (`grafana/xferstats-prometheus.json`): the
//! structure Grafana needs (as `structure.rs` checks of the SQL ones), only
//! metric names of `xferstats::metrics::Family`, and every expression
//! parsed by `promtool check rules` (each becomes a recording rule, the
//! `$instance` variable expanded as Grafana does for "All").

use std::collections::BTreeSet;

use serde_json::Value;

use super::{load, panels, s, SCHEMA_VERSION};

pub const PROMETHEUS_DASHBOARD: &str = "xferstats-prometheus.json";

/// The PromQL of every target.
fn exprs(d: &Value) -> Vec<(String, String)> {
    panels(d)
        .iter()
        .flat_map(|p| {
            p["targets"].as_array().unwrap().iter().map(|t| (s(&p["title"]).to_string(), s(&t["expr"]).to_string()))
        })
        .collect()
}

#[test]
fn the_prometheus_dashboard_has_the_structure_grafana_needs() {
    let d = load(PROMETHEUS_DASHBOARD);
    for k in ["__inputs", "__requires", "id"] {
        assert!(d.get(k).is_none(), "top-level {k}");
    }
    assert_eq!(s(&d["uid"]), "xferstats-prometheus");
    assert_eq!(d["schemaVersion"].as_u64(), Some(SCHEMA_VERSION));
    assert_eq!(d["timezone"], "utc");
    assert!(s(&d["description"]).contains("Personal data"));
    let vars = d["templating"]["list"].as_array().unwrap();
    let ds = vars.iter().find(|v| v["name"] == "ds").expect("$ds");
    assert_eq!((s(&ds["type"]), s(&ds["query"])), ("datasource", "prometheus"));
    let ds_ref = serde_json::json!({"type": "prometheus", "uid": "${ds}"});
    let (mut ids, mut rects) = (BTreeSet::new(), Vec::<(i64, i64, i64, i64)>::new());
    for p in panels(&d) {
        let title = s(&p["title"]);
        assert!(ids.insert(p["id"].as_u64().unwrap()), "{title}: id not unique");
        assert!(s(&p["description"]).contains("Personal data"), "{title}");
        assert_eq!(p["datasource"], ds_ref, "{title}");
        let g = &p["gridPos"];
        let (x, y, w, h) =
            (g["x"].as_i64().unwrap(), g["y"].as_i64().unwrap(), g["w"].as_i64().unwrap(), g["h"].as_i64().unwrap());
        assert!(x >= 0 && w > 0 && h > 0 && x + w <= 24, "{title}: {g}");
        for (x2, y2, w2, h2) in &rects {
            assert!(!(x < x2 + w2 && *x2 < x + w && y < y2 + h2 && *y2 < y + h), "{title} overlaps");
        }
        rects.push((x, y, w, h));
        let mut refs = BTreeSet::new();
        for t in p["targets"].as_array().unwrap() {
            assert!(refs.insert(s(&t["refId"]).to_string()), "{title}: refId");
            assert_eq!(t["datasource"], ds_ref, "{title}");
        }
    }
    let names: BTreeSet<&str> = xferstats::metrics::Family::ALL.iter().map(|f| f.name()).collect();
    for (title, e) in exprs(&d) {
        assert!(e.contains("instance=~\"$instance\""), "{title}: {e} ignores $instance");
        for word in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("xferstats_"))
        {
            assert!(names.contains(word), "{title}: {word} is no metric of xferstats");
        }
    }
}

#[test]
fn the_prometheus_dashboard_queries_parse() {
    let Some(promtool) = ["/usr/bin/promtool"].into_iter().map(std::path::PathBuf::from).find(|p| p.exists()) else {
        assert!(std::env::var_os("XFERSTATS_REQUIRE_PROMETHEUS").is_none(), "promtool missing");
        eprintln!("SKIPPED: promtool not found (set XFERSTATS_REQUIRE_PROMETHEUS=1 to require it)");
        return;
    };
    let rules: Vec<Value> = exprs(&load(PROMETHEUS_DASHBOARD))
        .into_iter()
        .enumerate()
        .map(|(i, (_, e))| serde_json::json!({"record": format!("xferstats:panel_{i}"), "expr": e.replace("$instance", ".*")}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yml");
    std::fs::write(&file, serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string()).unwrap();
    let out = std::process::Command::new(promtool).args(["check", "rules"]).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
