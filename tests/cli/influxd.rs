//! Real and scripted HTTP peers for the InfluxDB store tests.
//!
//! - `influxd()`: a throwaway InfluxDB 1.x server (Debian's `influxdb`
//!   package) on free loopback ports in a temp dir, one per test process;
//!   each test creates its own database.
//! - `victoria()`: a throwaway VictoriaMetrics (Debian's `victoria-metrics`),
//!   which accepts `/api/v2/write` — the closest thing to an InfluxDB 2
//!   server that the package registries offer.
//! - `Mock`: a loopback HTTP listener that records every request (headers,
//!   gunzipped body) and answers from a script, for the exact requests of the
//!   2.x path and for retries and refusals.
//!
//! Servers are stopped by an `atexit` handler. Without the binaries the
//! tests are skipped loudly, or fail when `XFERSTATS_REQUIRE_INFLUX` is set
//! (as in CI).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const REQUIRE_VAR: &str = "XFERSTATS_REQUIRE_INFLUX";

extern "C" {
    fn atexit(cb: extern "C" fn()) -> i32;
}

/// Children to kill at exit.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

extern "C" fn kill_children() {
    if let Ok(pids) = CHILDREN.lock() {
        for pid in pids.iter() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}

/// Forgets a child that was waited for.
fn untrack(child: &Child) {
    CHILDREN.lock().unwrap().retain(|&p| p != child.id());
}

fn track(child: &Child) {
    let mut c = CHILDREN.lock().unwrap();
    if c.is_empty() {
        unsafe { atexit(kill_children) };
    }
    c.push(child.id());
}

/// A server process of this test process.
pub struct Server {
    /// HTTP port on 127.0.0.1.
    pub port: u16,
    child: Mutex<Child>,
    dir: tempfile::TempDir,
    /// How it was started: binary, arguments, readiness path.
    cmd: (String, Vec<std::ffi::OsString>, String),
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(c) = self.child.get_mut() {
            let _ = c.kill();
            let _ = c.wait();
            untrack(c);
        }
    }
}

impl Server {
    /// Stops the server (SIGTERM, waited for); its data stays for
    /// [`Server::restart`]. Only for a [`private_influxd`].
    pub fn stop(&self) {
        let mut c = self.child.lock().unwrap();
        let _ = Command::new("kill").args(["-s", "TERM", &c.id().to_string()]).status();
        c.wait().unwrap();
        untrack(&c);
    }

    /// Starts the stopped server again, same ports and data.
    pub fn restart(&self) {
        let (bin, args, ready) = &self.cmd;
        let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        *self.child.lock().unwrap() = spawn(bin, &args, self.port, ready, self.dir.path());
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn missing(bin: &str) -> Option<&'static Server> {
    if std::env::var_os(REQUIRE_VAR).is_some() {
        panic!("{bin} is not installed but {REQUIRE_VAR} is set");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {bin} not installed (apt-get install influxdb victoria-metrics)");
    None
}

fn wait_ready(port: u16, path: &str, log: &Path) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        if let Ok((status, _)) = http(port, "GET", path, &[]) {
            if status < 300 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("server on port {port} did not start: {}", std::fs::read_to_string(log).unwrap_or_default());
}

/// Starts `bin ARGS` (stderr to `log` in `dir`), kills it at exit, and
/// waits until `GET ready_path` answers on `port`.
fn start(bin: &str, args: &[&OsStr], port: u16, ready_path: &str, dir: tempfile::TempDir) -> Server {
    let child = spawn(bin, args, port, ready_path, dir.path());
    let cmd = (bin.to_string(), args.iter().map(|a| a.to_os_string()).collect(), ready_path.to_string());
    Server { port, child: Mutex::new(child), dir, cmd }
}

/// [`start`]'s process.
fn spawn(bin: &str, args: &[&OsStr], port: u16, ready_path: &str, dir: &Path) -> Child {
    let log = dir.join("log");
    let child = Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"));
    track(&child);
    wait_ready(port, ready_path, &log);
    child
}

static INFLUXD: OnceLock<Option<Server>> = OnceLock::new();
static VICTORIA: OnceLock<Option<Server>> = OnceLock::new();

/// The InfluxDB 1.x server of this test process, started on first use.
pub fn influxd() -> Option<&'static Server> {
    INFLUXD.get_or_init(new_influxd).as_ref().or_else(|| missing("influxd"))
}

/// An InfluxDB 1.x server of its own, for a test that stops it.
pub fn private_influxd() -> Option<Server> {
    new_influxd().or_else(|| {
        missing("influxd");
        None
    })
}

fn new_influxd() -> Option<Server> {
    let bin = ["/usr/bin/influxd", "/usr/sbin/influxd"].into_iter().find(|p| Path::new(p).exists())?;
    let dir = tempfile::tempdir().unwrap();
    let (port, rpc) = (free_port(), free_port());
    let d = dir.path().display();
    let conf = format!(
        "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\n  dir = \"{d}/meta\"\n\
         [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
         [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n\
         [monitor]\n  store-enabled = false\n"
    );
    std::fs::write(dir.path().join("influxdb.conf"), conf).unwrap();
    let conf = dir.path().join("influxdb.conf");
    Some(start(bin, &[OsStr::new("-config"), conf.as_os_str()], port, "/ping", dir))
}

/// The VictoriaMetrics server of this test process, started on first use.
pub fn victoria() -> Option<&'static Server> {
    VICTORIA
        .get_or_init(|| {
            let bin = "/usr/bin/victoria-metrics";
            if !Path::new(bin).exists() {
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let data = format!("-storageDataPath={}", dir.path().join("data").display());
            let listen = format!("-httpListenAddr=127.0.0.1:{port}");
            let args = [OsStr::new(&data), OsStr::new(&listen), OsStr::new("-retentionPeriod=100y")];
            Some(start(bin, &args, port, "/health", dir))
        })
        .as_ref()
        .or_else(|| missing("victoria-metrics"))
}

/// A blocking HTTP/1.0 request (the server closes the connection after
/// the answer): `(status, body)`.
pub fn http(port: u16, method: &str, path_query: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "{method} {path_query} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n", body.len())?;
    if !body.is_empty() {
        write!(s, "Content-Type: application/x-www-form-urlencoded\r\n")?;
    }
    s.write_all(b"\r\n")?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((status, body.to_string()))
}

/// `a=b&c=d` with each value form-encoded.
pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// Runs InfluxQL `q` on database `db` of `server`; panics on an error.
pub fn influxql(server: &Server, db: &str, q: &str) -> serde_json::Value {
    let (status, body) = http(server.port, "POST", "/query", form(&[("db", db), ("q", q)]).as_bytes()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{q}: {status} {body}"));
    assert!(status == 200 && !body.contains("\"error\""), "{q}: {status} {body}");
    v
}

/// The rows of the first series of the first result of an InfluxQL answer,
/// as column name → value maps (all series concatenated, tags merged in).
pub fn rows(v: &serde_json::Value) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let mut out = Vec::new();
    for series in v["results"][0]["series"].as_array().into_iter().flatten() {
        let cols: Vec<String> =
            series["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
        for vals in series["values"].as_array().unwrap() {
            let mut m = serde_json::Map::new();
            if let Some(tags) = series["tags"].as_object() {
                for (k, t) in tags {
                    m.insert(k.clone(), t.clone());
                }
            }
            for (c, x) in cols.iter().zip(vals.as_array().unwrap()) {
                m.insert(c.clone(), x.clone());
            }
            out.push(m);
        }
    }
    out
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`.
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body, gunzipped when `Content-Encoding: gzip`.
    pub body: String,
    /// The body as it came (compressed).
    pub raw_len: usize,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap()
    }
    /// Query parameters, decoded, in order.
    pub fn query(&self) -> Vec<(String, String)> {
        let q = self.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }
}

/// A scripted loopback HTTP server.
pub struct Mock {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Requests received, in order.
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl Mock {
    /// Starts a mock answering the n-th request with `script[n]` (status,
    /// body), and 204 once the script is used up.
    pub fn start(script: Vec<(u16, &'static str)>) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reqs = requests.clone();
        let script = Arc::new(Mutex::new(script.into_iter()));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let reqs = reqs.clone();
                let script = script.clone();
                std::thread::spawn(move || serve(conn, reqs, script));
            }
        });
        Mock { port, requests }
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

type Script = Arc<Mutex<std::vec::IntoIter<(u16, &'static str)>>>;

fn serve(conn: TcpStream, reqs: Arc<Mutex<Vec<Request>>>, script: Script) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let mut raw = Vec::new();
        if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = get("content-length").and_then(|n| n.parse::<usize>().ok()) {
            raw.resize(n, 0);
            r.read_exact(&mut raw).unwrap();
        }
        let body = if get("content-encoding").as_deref() == Some("gzip") {
            let mut s = String::new();
            flate2::read::GzDecoder::new(&raw[..]).read_to_string(&mut s).expect("gzip body");
            s
        } else {
            String::from_utf8_lossy(&raw).into_owned()
        };
        reqs.lock().unwrap().push(Request { method, target, headers, body, raw_len: raw.len() });
        let (status, text) = script.lock().unwrap().next().unwrap_or((204, ""));
        let _ = write!(
            w,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        let _ = w.flush();
    }
}
