//! The PostgreSQL dashboard: Grafana's SQL interpolation and macro
//! expansion, checked against the rules of its source, then every query of
//! the dashboard run on a real server as the read-only role `grafana_ro`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{
    dashboard_vars, epoch_s, interpolate, is_word, load, panels, parse_interval, s, selected, tiny_city_db, var,
    Selection, Var, FILTERS, FROM, INTERVAL, INTERVAL_MS, PG_DASHBOARD, TO,
};
use crate::pg::fresh;
use crate::util::{fixture, geolite, realogs};

/// The password the test gives the read-only role.
const RO_PASSWORD: &str = "gr0-Test-pw-17";

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
    let Some(pgdb) = fresh("grafana") else { return };
    let (pg, db, env) = (pgdb.pg, &pgdb.name, &pgdb.env);

    // Two hosts; logins, transfers, deletions, interrupted transfers; GeoIP
    // locations; hashed (default) and truncated client addresses.
    let geo = geolite().unwrap_or_else(|| tiny_city_db(env));
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
        let mut c = env.cmd();
        c.args(["ingest", "--timezone", "UTC", "--server-host", host, "--progress", "never"]).args(extra).arg(path);
        c.assert().success();
    }

    // The read-only role, made by the shipped script as the README says.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/postgres/grafana_ro.sql");
    pg.psql_file(db, &script, &[("password", &format!("'{RO_PASSWORD}'"))]);
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
