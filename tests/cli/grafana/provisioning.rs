//! The provisioning files of `grafana/provisioning`: the data sources the
//! dashboards default to, their secrets from the environment only, and the
//! read-only PostgreSQL role. The YAML is read by `serde_yaml_ng`.

use std::path::Path;

use serde_json::Value;

use super::{grafana_dir, load, s, INFLUX_DASHBOARD, INFLUX_UID, PG_DASHBOARD, PG_UID};

/// YAML `text` as JSON, through the YAML crate's own value, which refuses
/// duplicate keys (serde_json's would keep the last one); keys are strings.
fn yaml_to_json(text: &str) -> Result<Value, String> {
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_value(v).map_err(|e| e.to_string())
}

/// A provisioning file, read as JSON.
fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    yaml_to_json(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
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
    let ds = read_yaml(&dir.join("datasources/xferstats.yaml"));
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

    let dash = read_yaml(&dir.join("dashboards/xferstats.yaml"));
    assert_eq!(dash["apiVersion"], 1);
    let providers = dash["providers"].as_array().expect("providers[]");
    assert_eq!(providers.len(), 1);
    let p = &providers[0];
    assert_eq!((&p["type"], &p["folder"], &p["allowUiUpdates"]), (&"file".into(), &"xferstats".into(), &false.into()));
    assert!(s(&p["options"]["path"]).starts_with('/'), "absolute dashboards path");
}

/// The YAML as the provisioning test sees it: nesting, quoted and plain
/// `${NAME}` references kept as written, comments, duplicate keys refused.
#[test]
fn yaml_reader_reads_nesting_and_scalars() {
    let v = yaml_to_json(
        "# c\na: 1\nb:\n  - x: 'it''s'\n    y:\n      z: \"${V}\"\n      w: ${V} # c\n  - x: true\nc: plain text\n",
    )
    .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"a": 1, "b": [{"x": "it's", "y": {"z": "${V}", "w": "${V}"}}, {"x": true}], "c": "plain text"})
    );
    assert!(yaml_to_json("a: 1\nb: 2\na: 3\n").unwrap_err().contains("duplicate"));
    assert!(is_env_ref(&"${XFERSTATS_PG_PASSWORD}".into()) && is_env_ref(&"$__env{A_1}".into()));
    assert!(!is_env_ref(&"secret".into()) && !is_env_ref(&"${}".into()) && !is_env_ref(&"$x".into()));
}
