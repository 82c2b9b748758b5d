//! The provisioning files of `grafana/provisioning`: the data sources the
//! dashboards default to, their secrets from the environment only, and the
//! read-only PostgreSQL role.

use std::path::Path;

use serde_json::{Map, Value};

use super::{grafana_dir, load, s, INFLUX_DASHBOARD, INFLUX_UID, PG_DASHBOARD, PG_UID};

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
