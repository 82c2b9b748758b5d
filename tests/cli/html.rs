//! `report --format html`: a self-contained page whose embedded numbers are
//! those of `report --format json`, with log-derived text escaped, checked
//! as a browser renders it (headless Chromium).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde_json::Value;

use crate::enrich::tiny_city_db;
use crate::util::{fixture, Env};

/// Fixtures of every format, several days, users, protocols and (through
/// the tiny GeoIP database) countries.
const FIXTURES: [&str; 9] = [
    "geoip/clients.log",
    "rsync/default-logfile.log",
    "rsync/bsd-syslog.log",
    "openssh/auth.log",
    "proftpd/extended.log",
    "sftpgo/sftpgo.log",
    "vsftpd/traps.log",
    "xferlog/traps.xferlog",
    "syslog/mixed.log",
];

fn loaded() -> Env {
    let env = Env::new();
    let geoip = tiny_city_db(&env);
    for f in FIXTURES {
        // Some fixtures hold rejected lines on purpose (exit 1); the events
        // of the others are what matters here.
        env.ingest(&["--geoip", geoip.to_str().unwrap(), "--ip-mode", "truncate", fixture(f).to_str().unwrap()]);
    }
    env
}

pub(crate) fn html(env: &Env, extra: &[&str]) -> (PathBuf, String) {
    let out = env.path("report.html");
    env.cmd().args(["report", "--format", "html", "-o", out.to_str().unwrap()]).args(extra).assert().success();
    let page = std::fs::read_to_string(&out).unwrap();
    (out, page)
}

/// The page's embedded data: base64 of gzip of JSON.
pub(crate) fn embedded(page: &str) -> Value {
    let start = page.find("id=\"xs-data\">").expect("data script") + "id=\"xs-data\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    let gz = base64::engine::general_purpose::STANDARD.decode(page[start..end].trim()).unwrap();
    let mut json = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut json).unwrap();
    serde_json::from_str(&json).unwrap()
}

const METRICS: [&str; 11] = [
    "transfers",
    "completed",
    "interrupted",
    "failed",
    "uploads",
    "downloads",
    "bytes_up",
    "bytes_down",
    "deletes",
    "logins_ok",
    "logins_failed",
];

/// A metric array of the page (uploads, downloads, bytes up, bytes down,
/// interrupted, failed, deletes, logins ok, logins failed; trailing zeros
/// left out) as the eleven metrics of the JSON report.
fn metrics(row: &[Value]) -> Vec<u64> {
    let m = |i: usize| row.get(i).and_then(Value::as_u64).unwrap_or(0);
    let t = m(0) + m(1);
    vec![t, t - m(4) - m(5), m(4), m(5), m(0), m(1), m(2), m(3), m(6), m(7), m(8)]
}

/// JSON report rows as (keys, metrics), the login metrics 0 where the
/// report has none.
fn json_rows(env: &Env, by: &str) -> Vec<(Vec<String>, Vec<u64>)> {
    json_rows_of(env, by, &[])
}

/// [`json_rows`] of the report with the options `extra` (filters).
fn json_rows_of(env: &Env, by: &str, extra: &[&str]) -> Vec<(Vec<String>, Vec<u64>)> {
    let keys: Vec<&str> = by.split(',').collect();
    let report: Value =
        serde_json::from_slice(&env.report(&[&["--format", "json", "--by", by], extra].concat())).unwrap();
    let mut v: Vec<(Vec<String>, Vec<u64>)> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                keys.iter().map(|k| r[*k].as_str().unwrap().to_string()).collect(),
                METRICS.iter().map(|m| r.get(*m).and_then(Value::as_u64).unwrap_or(0)).collect(),
            )
        })
        .filter(|(_, m): &(Vec<String>, Vec<u64>)| m.iter().any(|x| *x != 0))
        .collect();
    v.sort();
    v
}

/// A field's day × value table as (day, value) rows, or summed over the
/// days as (value) rows.
fn page_rows(data: &Value, field: &str, by_day: bool) -> Vec<(Vec<String>, Vec<u64>)> {
    let f = &data["fields"][field];
    assert_eq!(f["other"], false, "{field}: fewer values than the page keeps");
    let days = data["days"].as_array().unwrap();
    let values = f["values"].as_array().unwrap();
    let mut sums: std::collections::BTreeMap<Vec<String>, Vec<u64>> = Default::default();
    for row in f["cube"].as_array().unwrap() {
        let row = row.as_array().unwrap();
        let v = values[row[1].as_u64().unwrap() as usize].as_str().unwrap().to_string();
        let key = if by_day {
            vec![days[row[0].as_u64().unwrap() as usize].as_str().unwrap().to_string(), v]
        } else {
            vec![v]
        };
        let m = metrics(&row[2..]);
        let s = sums.entry(key).or_insert_with(|| vec![0; 11]);
        s.iter_mut().zip(m).for_each(|(a, b)| *a += b);
    }
    sums.into_iter().filter(|(_, m)| m.iter().any(|x| *x != 0)).collect()
}

/// JSON report rows by `by` summed over all keys but the first `keep`.
fn folded(env: &Env, by: &str, keep: usize) -> Vec<(Vec<String>, Vec<u64>)> {
    let mut sums: std::collections::BTreeMap<Vec<String>, Vec<u64>> = Default::default();
    for (k, m) in json_rows(env, by) {
        let s = sums.entry(k[..keep].to_vec()).or_insert_with(|| vec![0; 11]);
        s.iter_mut().zip(m).for_each(|(a, b)| *a += b);
    }
    sums.into_iter().collect()
}

#[test]
fn numbers_identical_to_json() {
    let env = loaded();
    let (_, page) = html(&env, &[]);
    let data = embedded(&page);
    assert_eq!(page_rows(&data, "user", true), json_rows(&env, "day,user"));
    assert_eq!(page_rows(&data, "country", false), json_rows(&env, "country"));
    assert_eq!(page_rows(&data, "protocol", false), json_rows(&env, "protocol"));
    assert_eq!(page_rows(&data, "host", true), json_rows(&env, "day,host"));
    // Module has no logins: its JSON report has none either.
    assert_eq!(page_rows(&data, "module", true), json_rows(&env, "day,module"));
    let days = data["days"].as_array().unwrap();
    let total: Vec<(Vec<String>, Vec<u64>)> = data["total"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            (vec![days[r[0].as_u64().unwrap() as usize].as_str().unwrap().to_string()], metrics(&r[1..]))
        })
        .collect();
    assert_eq!(total, json_rows(&env, "day"));
    // A pair table (drill-down): user × country over the period.
    let users = data["fields"]["user"]["values"].as_array().unwrap();
    let countries = data["fields"]["country"]["values"].as_array().unwrap();
    let pair = &data["pairs"]["user|country"];
    assert_eq!(pair["monthly"], true, "a small store's pairs are embedded per month");
    let months = data["months"].as_array().unwrap();
    let mut sums: std::collections::BTreeMap<Vec<String>, Vec<u64>> = Default::default();
    for r in pair["rows"].as_array().unwrap() {
        let r = r.as_array().unwrap();
        let key = vec![
            months[r[0].as_u64().unwrap() as usize].as_str().unwrap().to_string(),
            users[r[1].as_u64().unwrap() as usize].as_str().unwrap().to_string(),
            countries[r[2].as_u64().unwrap() as usize].as_str().unwrap().to_string(),
        ];
        let s = sums.entry(key).or_insert_with(|| vec![0; 11]);
        s.iter_mut().zip(metrics(&r[3..])).for_each(|(a, b)| *a += b);
    }
    let pair: Vec<(Vec<String>, Vec<u64>)> = sums.into_iter().filter(|(_, m)| m.iter().any(|x| *x != 0)).collect();
    assert_eq!(pair, json_rows(&env, "month,user,country"));
    // The top files, per month: a small store's files all fit the list
    // (names sanitised in the page).
    let files = &data["files"];
    assert_eq!(files["monthly"], true);
    let names = files["names"].as_array().unwrap();
    let mut page_files: Vec<(String, String, u64, u64)> = files["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let month = months[r[0].as_u64().unwrap() as usize].as_str().unwrap().to_string();
            let name = names[r[1].as_u64().unwrap() as usize].as_str().unwrap().to_string();
            (month, name, r[2].as_u64().unwrap(), r[3].as_u64().unwrap())
        })
        .collect();
    page_files.sort();
    let json_files: Vec<(String, String, u64, u64)> = json_rows(&env, "month,file")
        .into_iter()
        .filter(|(k, m)| !k[1].is_empty() && m[0] > 0)
        .map(|(k, m)| (k[0].clone(), xferstats::sanitize::sanitize(&k[1]).into_owned(), m[0], m[6] + m[7]))
        .collect();
    assert!(json_files.len() > 10 && json_files.len() < 50, "{}", json_files.len());
    assert_eq!(page_files, json_files);
    // The JSON report reads the same value rollup: check it against the raw
    // events (a grouping no rollup has, summed back).
    assert_eq!(json_rows(&env, "month,file"), folded(&env, "month,file,client", 2));
    assert_eq!(json_rows(&env, "month,user,country"), folded(&env, "month,user,country,client", 3));
    assert_eq!(json_rows(&env, "country"), folded(&env, "country,city", 1));
    assert_eq!(json_rows(&env, "day,module"), folded(&env, "day,module,client", 2));
    assert_eq!(json_rows(&env, "day"), folded(&env, "day,client", 1));
    assert!(countries.iter().any(|c| c == "FR"), "the tiny GeoIP database places clients in FR");
    assert_eq!(
        data["clients"],
        env.report_json("client").as_array().unwrap().iter().filter(|r| r["client"] != "").count()
    );

    // --since/--until as for the other formats.
    let (_, page) = html(&env, &["--since", "2026-03-01", "--until", "2026-03-01"]);
    let data = embedded(&page);
    assert_eq!(data["days"], serde_json::json!(["2026-03-01"]));
}

/// The page of `--user`, `--host`, `--protocol`, `--module` and `--top`
/// is made for the events the filters keep: its numbers are those of the
/// JSON report with the same filters.
#[test]
fn filtered_page_numbers_identical_to_json() {
    let env = loaded();
    for filters in [
        &["--user", "alice"][..],
        &["--protocol", "rsync", "--host", "mirror"],
        &["--module", "incoming"],
        &["--module", "(none)", "--user", "anonymous"],
    ] {
        let (_, page) = html(&env, filters);
        let data = embedded(&page);
        let total: Vec<(Vec<String>, Vec<u64>)> = page_rows_total(&data);
        assert!(!total.is_empty(), "{filters:?} keeps events");
        assert_eq!(total, json_rows_of(&env, "day", filters), "{filters:?}");
        for field in ["user", "host", "module", "protocol", "country"] {
            assert_eq!(page_rows(&data, field, true), json_rows_of(&env, &format!("day,{field}"), filters), "{field}");
        }
        let clients = json_rows_of(&env, "client", filters)
            .iter()
            .filter(|(k, m)| !k[0].is_empty() && m.iter().any(|x| *x > 0))
            .count();
        assert_eq!(data["clients"], clients, "{filters:?}");
        let names = data["files"]["names"].as_array().unwrap();
        let files: u64 = data["files"]["rows"].as_array().unwrap().iter().map(|r| r[2].as_u64().unwrap()).sum();
        let json_files: u64 =
            json_rows_of(&env, "file", filters).iter().filter(|(k, _)| !k[0].is_empty()).map(|(_, m)| m[0]).sum();
        assert_eq!(files, json_files, "{filters:?}: {names:?}");
        let failed = data["failed"]["rows"].as_array().unwrap().len() as u64;
        let json_failed: u64 = json_rows_of(&env, "day", filters).iter().map(|(_, m)| m[2] + m[3]).sum();
        assert_eq!(failed, json_failed, "{filters:?}: every interrupted or failed transfer listed");
        assert!(page.contains("<title>xferstats report, "));
    }
    // The filter is named in the title; --top keeps N values per field.
    let (_, page) = html(&env, &["--user", "alice", "--top", "1"]);
    assert!(page.contains(", user alice"), "{}", &page[..400]);
    let data = embedded(&page);
    assert_eq!(data["top"], 1);
    let hosts = &data["fields"]["host"];
    assert_eq!(hosts["values"].as_array().unwrap().len(), 1);
    assert_eq!(
        hosts["other"],
        json_rows_of(&env, "host", &["--user", "alice"]).len() > 1,
        "the others folded into one value"
    );
    assert_eq!(page_rows_total(&data), json_rows_of(&env, "day", &["--user", "alice"]));
}

/// The top files of a range of whole months come from the monthly files of
/// the value rollup without reading them all: a file that no month ranks
/// among its 50 first but whose total does (9 transfers in each of three
/// months against 10 in one month for 150 others) is found, and the list
/// is the JSON report's ranking.
#[test]
fn top_files_found_across_months() {
    let env = Env::new();
    let mut log = String::new();
    for (month, name) in [("Jan", 'a'), ("Feb", 'b'), ("Mar", 'c')] {
        let mut line = |file: &str, n: usize| {
            for i in 0..n {
                log += &format!(
                    "Mon {month}  2 10:{:02}:{:02} 2026 1 203.0.113.9 100 /{file} b _ o r u ftp 0 * c\n",
                    i / 60,
                    i % 60
                );
            }
        };
        for f in 0..50 {
            line(&format!("{name}{f:02}"), 10);
        }
        line("x", 9);
    }
    let file = env.write("xferlog", log.as_bytes());
    env.ingest(&["--format", "xferlog", file.to_str().unwrap()]).success();
    let (_, page) = html(&env, &[]);
    let data = embedded(&page);
    let names = data["files"]["names"].as_array().unwrap();
    let mut totals: std::collections::BTreeMap<&str, u64> = Default::default();
    for r in data["files"]["rows"].as_array().unwrap() {
        *totals.entry(names[r[1].as_u64().unwrap() as usize].as_str().unwrap()).or_default() += r[2].as_u64().unwrap();
    }
    let mut ranked: Vec<(String, u64)> =
        json_rows(&env, "file").into_iter().filter(|(_, m)| m[0] > 0).map(|(k, m)| (k[0].clone(), m[0])).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(50);
    assert_eq!(ranked[0], ("/x".to_string(), 27));
    let page: Vec<(String, u64)> = totals.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    let mut expected = ranked.clone();
    expected.sort();
    assert_eq!(page, expected);
}

/// The page's per-day totals as (day) rows.
fn page_rows_total(data: &Value) -> Vec<(Vec<String>, Vec<u64>)> {
    let days = data["days"].as_array().unwrap();
    data["total"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            (vec![days[r[0].as_u64().unwrap() as usize].as_str().unwrap().to_string()], metrics(&r[1..]))
        })
        .filter(|(_, m)| m.iter().any(|x| *x != 0))
        .collect()
}

/// Every `src=`, `href=` and `url(` of the page, which must all point
/// inside it (`#…`).
fn references(page: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for pat in ["src=", "href=", "url(", "@import", "<link"] {
        let lower = page.to_ascii_lowercase();
        let mut at = 0;
        while let Some(i) = lower[at..].find(pat) {
            let s = at + i + pat.len();
            let target: String = page[s..].chars().take_while(|c| !matches!(c, ' ' | '>' | ')')).collect();
            refs.push(format!("{pat}{target}"));
            at = s;
        }
    }
    refs
}

#[test]
fn no_external_references() {
    let env = loaded();
    let (_, page) = html(&env, &[]);
    let refs = references(&page);
    let outside: Vec<&String> = refs
        .iter()
        .filter(|r| !(r.starts_with("href=\"#") || r.starts_with("url(#") || r.starts_with("url(var")))
        .collect();
    assert!(outside.is_empty(), "external references: {outside:?}");
    assert!(page.contains("<svg id=\"map\""), "inline world map");
    assert!(page.contains("data-cc=\"FR\""));
    assert!(!page.contains("http://") && !page.contains("https://"), "no URL in the page");
}

/// A log whose user and file names are HTML.
fn hostile(env: &Env) -> PathBuf {
    env.write(
        "hostile.log",
        b"2026/03/01 10:00:00 [300] rsyncd version 3.5.0 starting, listening on port 873\n\
          2026/03/01 10:00:01 [301] connect from UNDETERMINED (10.9.9.9)\n\
          2026/03/01 10:00:01 [301] rsync to incoming/ from <script>x=1</script>@UNDETERMINED (10.9.9.9)\n\
          2026/03/01 10:00:02 [301] recv UNDETERMINED [10.9.9.9] incoming (<script>x=1</script>) <script>alert(2)</script>.txt 20\n\
          2026/03/01 10:00:02 [301] sent 10 bytes  received 50 bytes  total size 20\n",
    )
}

#[test]
fn log_text_escaped() {
    let env = Env::new();
    let log = hostile(&env);
    env.ingest(&[log.to_str().unwrap()]).success();
    let users = env.report_json("user");
    assert_eq!(users[0]["user"], "<script>x=1</script>", "the fixture stores an HTML user name");
    let (_, page) = html(&env, &[]);
    assert_eq!(page.matches("<script").count(), 2, "only the page's own scripts");
    assert!(page.contains("<td>&lt;script&gt;x=1&lt;/script&gt;</td>"), "escaped in the no-script table");
    let data = embedded(&page);
    assert_eq!(data["files"]["names"][0], "<script>alert(2)</script>.txt");
}

/// Headless Chromium, or `None` (a failure when XFERSTATS_REQUIRE_CHROMIUM
/// is set, as in CI).
fn chromium() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/chromium");
    let present = p.exists();
    crate::util::required(p, present, "XFERSTATS_REQUIRE_CHROMIUM")
}

/// Runs headless Chromium on `url` with JavaScript, offline; `what` is
/// `--dump-dom` or `--screenshot=PNG`. Returns stdout.
fn browse(bin: &Path, env: &Env, url: &str, what: &str) -> String {
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", env.path("chromium").display()))
        .arg(what)
        .arg(url)
        .env("HOME", env.path("home"))
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The panel `id` of a dumped DOM, up to the next panel.
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("panel {id}"));
    let rest = &dom[at..];
    &rest[..rest.find("<section").unwrap_or(rest.len())]
}

/// The `data-value` of a total card in a dumped DOM.
fn card(dom: &str, id: &str) -> Option<u64> {
    let at = dom.find(&format!("id=\"t-{id}\""))?;
    let tag = &dom[at..at + dom[at..].find('>')?];
    let v = tag.split("data-value=\"").nth(1)?;
    v[..v.find('"')?].parse().ok()
}

#[test]
fn renders_and_filters_in_chromium() {
    let Some(bin) = chromium() else { return };
    let env = loaded();
    let log = hostile(&env);
    env.ingest(&[log.to_str().unwrap()]).success();
    let (path, _) = html(&env, &[]);
    let url = format!("file://{}", path.display());
    let dom = browse(&bin, &env, &url, "--dump-dom");
    assert!(dom.contains("data-ready=\"1\""), "the page script ran");
    for id in [
        "totals",
        "chart-bytes",
        "chart-transfers",
        "chart-logins",
        "map",
        "panel-user",
        "panel-host",
        "panel-module",
        "panel-protocol",
        "panel-country",
        "panel-files",
        "panel-failing",
        "panel-failed",
    ] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "panel {id}");
    }
    let total =
        |m: &str| env.report_json("day").as_array().unwrap().iter().map(|r| r[m].as_u64().unwrap_or(0)).sum::<u64>();
    assert_eq!(card(&dom, "transfers"), Some(total("transfers")));
    assert_eq!(card(&dom, "bytes_down"), Some(total("bytes_down")));
    assert_eq!(card(&dom, "logins_failed"), Some(total("logins_failed")));
    // Rendered as text, not markup.
    assert!(dom.contains("&lt;script&gt;x=1&lt;/script&gt;"));
    assert!(dom.contains("&lt;script&gt;alert(2)&lt;/script&gt;.txt"));
    assert!(!dom.contains("<script>alert"));

    // The fragment filters every panel: alice's totals.
    let alice: Vec<Value> =
        env.report_json("user").as_array().unwrap().iter().filter(|r| r["user"] == "alice").cloned().collect();
    let dom = browse(&bin, &env, &format!("{url}#user=alice"), "--dump-dom");
    assert_eq!(card(&dom, "transfers"), alice[0]["transfers"].as_u64());
    assert_eq!(card(&dom, "bytes_up"), alice[0]["bytes_up"].as_u64());
    assert_eq!(card(&dom, "logins_ok"), alice[0]["logins_ok"].as_u64());
    assert_ne!(card(&dom, "transfers"), Some(total("transfers")));
    // And by date: one day's totals.
    let day = env.report_json("day");
    let d = day.as_array().unwrap().iter().find(|r| r["day"] == "2026-03-01").unwrap();
    let dom = browse(&bin, &env, &format!("{url}#from=2026-03-01&to=2026-03-01"), "--dump-dom");
    assert_eq!(card(&dom, "transfers"), d["transfers"].as_u64());

    // A field filter with a narrower date range of whole months still
    // ranks the other fields (from the per-month pairs): a located user's
    // countries in one month.
    let rows = env.report_json("month,user,country");
    let r = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["country"] != "" && r["transfers"].as_u64() > Some(0) && {
                let u = r["user"].as_str().unwrap();
                !u.is_empty() && u.chars().all(|c| c.is_ascii_alphanumeric())
            }
        })
        .expect("a located user");
    let (month, cc, user) = (r["month"].as_str().unwrap(), r["country"].as_str().unwrap(), r["user"].as_str().unwrap());
    let months = env.report_json("month");
    assert!(months.as_array().unwrap().len() > 1, "the range is narrower than the report");
    let range = format!("from={month}-01&to={month}-31&user={user}");
    let dom = browse(&bin, &env, &format!("{url}#{range}"), "--dump-dom");
    let panel = section(&dom, "panel-country");
    assert!(!panel.contains("Not available"), "{panel}");
    assert!(panel.contains(&format!(">{cc}</td><td>{}</td>", r["transfers"])), "{panel}");
    let panel = section(&dom, "panel-host");
    assert!(!panel.contains("Not available") && panel.contains("<table>"), "{panel}");
    // Part of a month (a day before the month's first day with events):
    // the page says it cannot rank the other fields exactly.
    let days = env.report_json("day");
    let days: Vec<&str> = days.as_array().unwrap().iter().map(|d| d["day"].as_str().unwrap()).collect();
    if let Some(w) = days.windows(2).find(|w| w[0][..7] == w[1][..7]) {
        let dom = browse(&bin, &env, &format!("{url}#from={}&to={}&user={user}", w[1], w[1]), "--dump-dom");
        assert!(section(&dom, "panel-country").contains("choose whole months"));
        // The top files are kept per month.
        let dom = browse(&bin, &env, &format!("{url}#from={}&to={}", w[1], w[1]), "--dump-dom");
        assert!(section(&dom, "panel-files").contains("choose whole months"));
    }
    let dom = browse(&bin, &env, &format!("{url}#from={}-01&to={}-31", &days[0][..7], &days[0][..7]), "--dump-dom");
    assert!(section(&dom, "panel-files").contains("<table>"), "{}", section(&dom, "panel-files"));

    // The map's dots: one per geohash cell of 3 characters with events.
    let dom = browse(&bin, &env, &url, "--dump-dom");
    let cells: Vec<String> = env
        .report_json("cell")
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["cell"].as_str().filter(|c| !c.is_empty()).map(str::to_string))
        .collect();
    assert!(!cells.is_empty() && cells.iter().all(|c| c.len() == 3), "{cells:?}");
    assert_eq!(dom.matches("<circle ").count(), cells.len(), "one dot per cell");
    for c in &cells {
        assert!(dom.contains(&format!("data-cell=\"{c}\"")), "dot of {c}");
    }
    // Without a filter only (a cell has no user).
    let dom = browse(&bin, &env, &format!("{url}#user=alice"), "--dump-dom");
    assert_eq!(dom.matches("<circle ").count(), 0);

    // A screenshot for the CI artifacts.
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report.png");
    let _ = std::fs::remove_file(&png);
    browse(&bin, &env, &url, &format!("--screenshot={}", png.display()));
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    eprintln!("screenshot: {}", png.display());
}

#[test]
fn empty_store_and_by_refused() {
    let env = Env::new();
    env.cmd().args(["db", "migrate"]).assert().success();
    let (_, page) = html(&env, &[]);
    let data = embedded(&page);
    assert_eq!(data["days"], serde_json::json!([]));
    assert!(page.contains("<title>xferstats report, no events</title>"));
    env.cmd()
        .args(["report", "--format", "html", "--by", "user"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--by does not apply to --format html"));
    // An output file that cannot be created is an error.
    env.cmd().args(["report", "--format", "html", "-o", "/nonexistent-dir/r.html"]).assert().failure();
}
