//! Delivery of line protocol to an InfluxDB server.
//!
//! Points go out gzip-compressed in requests of `batch_lines` lines (5000 by
//! default, as the InfluxDB docs advise). 5xx, 429, 408, timeouts and
//! refused or reset connections are retried with exponential backoff; any
//! other refusal is final and its error carries the server's own message. A
//! write counts as done only when the server answered 2xx: the caller keeps
//! its local transaction open until then.
//!
//! 2.x/3.x servers are reached through the `influxdb2` client (its gzip
//! stream and `/api/v2/write`); 1.x servers only have `/write`, which that
//! client cannot address, so those requests are built on the same `reqwest`
//! client stack by hand.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use influxdb2::api::write::TimestampPrecision;
use influxdb2::models::WriteDataPoint;

use super::spec::{InfluxApi, InfluxSpec};
use crate::error::StoreError;

/// Timestamp precision of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Nanoseconds (raw points).
    Nanoseconds,
    /// Seconds (daily points).
    Seconds,
}

impl Precision {
    fn v1(self) -> &'static str {
        match self {
            Precision::Nanoseconds => "ns",
            Precision::Seconds => "s",
        }
    }
    fn v2(self) -> TimestampPrecision {
        match self {
            Precision::Nanoseconds => TimestampPrecision::Nanoseconds,
            Precision::Seconds => TimestampPrecision::Seconds,
        }
    }
}

/// Where points go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The raw bucket / retention policy.
    Raw,
    /// The daily bucket / retention policy.
    Daily,
}

/// What the server did with a write.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Requests acknowledged.
    pub requests: u64,
    /// Lines sent.
    pub lines: u64,
    /// Points the server dropped as older than the retention policy.
    pub beyond_retention: u64,
}

enum Client {
    V1 {
        http: reqwest::Client,
        db: String,
        rp: Option<String>,
        daily_rp: Option<String>,
        auth: Option<(String, Option<String>)>,
    },
    V2 {
        client: influxdb2::Client,
        bucket: String,
        daily_bucket: Option<String>,
    },
}

/// An HTTP connection (pool) to one server.
pub struct Writer {
    rt: tokio::runtime::Runtime,
    client: Client,
    base_url: String,
    target: String,
    batch_lines: usize,
    retries: u32,
    backoff: Duration,
}

/// One gzip-streamed request body of the influxdb2 client.
struct Body(Arc<str>);

impl WriteDataPoint for Body {
    fn write_data_point_to<W: std::io::Write>(&self, mut w: W) -> std::io::Result<()> {
        w.write_all(self.0.as_bytes())
    }
}

/// The outcome of one failed attempt.
enum Failure {
    /// Worth another attempt (5xx, 429, 408, transport).
    Retry(String),
    /// The server could not be reached (worth another attempt): the cause
    /// and what to check.
    Unreachable(String, &'static str),
    /// Final (4xx): the server's message.
    Refused(String),
}

impl Writer {
    /// A writer for `spec` (no request is made yet).
    pub fn new(spec: &InfluxSpec) -> Result<Writer, StoreError> {
        let err = |reason: String| StoreError::Influx { target: spec.describe.clone(), what: "set up HTTP", reason };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| err(e.to_string()))?;
        let builder = || {
            reqwest::Client::builder()
                .timeout(spec.timeout)
                .connect_timeout(spec.timeout.min(Duration::from_secs(10)))
                .danger_accept_invalid_certs(!spec.verify_tls)
                .user_agent(concat!("xferstats/", env!("CARGO_PKG_VERSION")))
        };
        let client = match &spec.api {
            InfluxApi::V1 { db, rp, daily_rp, user, password } => Client::V1 {
                http: builder().build().map_err(|e| err(e.to_string()))?,
                db: db.clone(),
                rp: rp.clone(),
                daily_rp: daily_rp.clone(),
                auth: user.clone().map(|u| (u, password.clone())),
            },
            InfluxApi::V2 { org, bucket, daily_bucket, token } => Client::V2 {
                client: influxdb2::ClientBuilder::with_builder(
                    builder(),
                    &spec.base_url,
                    org,
                    token.as_deref().unwrap_or(""),
                )
                .gzip(true)
                .build()
                .map_err(|e| err(e.to_string()))?,
                bucket: bucket.clone(),
                daily_bucket: daily_bucket.clone(),
            },
        };
        Ok(Writer {
            rt,
            client,
            base_url: spec.base_url.clone(),
            target: spec.describe.clone(),
            batch_lines: spec.batch_lines,
            retries: spec.retries,
            backoff: spec.backoff,
        })
    }

    /// Sends `lines` (complete lines, each ending in `\n`) in requests of at
    /// most `batch_lines` lines; returns once every request was acknowledged.
    pub fn write(&self, target: Target, precision: Precision, lines: &str) -> Result<Delivered, StoreError> {
        let mut done = Delivered::default();
        let mut rest = lines;
        while !rest.is_empty() {
            // Whole requests of `batch_lines`; the last one takes the rest.
            let (cut, n) = match memchr::memchr_iter(b'\n', rest.as_bytes()).nth(self.batch_lines - 1) {
                Some(i) => (i + 1, self.batch_lines as u64),
                None => (rest.len(), memchr::memchr_iter(b'\n', rest.as_bytes()).count() as u64),
            };
            let (chunk, tail) = rest.split_at(cut);
            rest = tail;
            done.beyond_retention += self.send(target, precision, chunk)?;
            done.requests += 1;
            done.lines += n;
        }
        Ok(done)
    }

    /// One request with its retries; returns the points dropped as beyond
    /// the retention policy. An outage is said in one line when it starts
    /// (and again only if its cause changes); the attempts themselves are
    /// debug messages, the recovery an info message (`-v`).
    fn send(&self, target: Target, precision: Precision, body: &str) -> Result<u64, StoreError> {
        let body: Arc<str> = Arc::from(body);
        let mut wait = self.backoff;
        let mut attempt = 0;
        let started = std::time::Instant::now();
        let mut said: Option<String> = None;
        loop {
            let reason = match self.attempt(target, precision, &body) {
                Ok(()) => {
                    if attempt > 0 {
                        tracing::info!(
                            "{}: written after {attempt} retr{} ({:.0?})",
                            self.target,
                            if attempt == 1 { "y" } else { "ies" },
                            started.elapsed()
                        );
                    }
                    return Ok(0);
                }
                Err(Failure::Refused(msg)) if msg.contains("beyond retention policy") => {
                    let dropped = dropped_count(&msg);
                    tracing::warn!(
                        "{}: the server dropped {dropped} point(s) older than its retention policy ({})",
                        self.target,
                        crate::sanitize::sanitize(&msg)
                    );
                    return Ok(dropped);
                }
                Err(Failure::Refused(msg)) => {
                    return Err(StoreError::Influx {
                        target: self.target.clone(),
                        what: "the server refused the write",
                        reason: crate::sanitize::sanitize(&msg).into_owned(),
                    })
                }
                Err(Failure::Retry(msg)) => (crate::sanitize::sanitize(&msg).into_owned(), None),
                Err(Failure::Unreachable(msg, check)) => (crate::sanitize::sanitize(&msg).into_owned(), Some(check)),
            };
            let (reason, check) = reason;
            if attempt >= self.retries {
                return Err(StoreError::Influx {
                    target: self.target.clone(),
                    what: "write failed",
                    reason: format!(
                        "{reason}; gave up after {} attempt(s) over {:.0?}{}",
                        attempt + 1,
                        started.elapsed(),
                        check.map_or(String::new(), |c| format!(" ({c})"))
                    ),
                });
            }
            if said.as_deref() != Some(reason.as_str()) {
                match said {
                    None => tracing::warn!(
                        "{}: write failed: {reason}; retrying up to {} time(s) over {:?}",
                        self.target,
                        self.retries,
                        retry_span(self.backoff, self.retries)
                    ),
                    Some(_) => tracing::warn!("{}: write still failing, now: {reason}; retrying", self.target),
                }
                said = Some(reason);
            }
            attempt += 1;
            tracing::debug!("{}: retry {attempt} of {} in {:?}", self.target, self.retries, wait);
            std::thread::sleep(wait);
            wait = next_wait(wait);
        }
    }

    fn attempt(&self, target: Target, precision: Precision, body: &Arc<str>) -> Result<(), Failure> {
        match &self.client {
            Client::V2 { client, bucket, daily_bucket } => {
                let bucket = match target {
                    Target::Raw => bucket,
                    Target::Daily => daily_bucket.as_ref().unwrap_or(bucket),
                };
                let points = futures_util::stream::iter(vec![Body(body.clone())]);
                match self.rt.block_on(client.write_with_precision(bucket, points, precision.v2())) {
                    Ok(()) => Ok(()),
                    Err(influxdb2::RequestError::Http { status, text }) => Err(classify(status.as_u16(), &text)),
                    Err(influxdb2::RequestError::ReqwestProcessing { source }) => Err(transport(&source)),
                    Err(e) => Err(Failure::Retry(e.to_string())),
                }
            }
            Client::V1 { http, db, rp, daily_rp, auth } => {
                let rp = match target {
                    Target::Raw => rp.as_ref(),
                    Target::Daily => daily_rp.as_ref().or(rp.as_ref()),
                };
                let mut query: Vec<(&str, &str)> = vec![("db", db), ("precision", precision.v1())];
                if let Some(rp) = rp {
                    query.push(("rp", rp));
                }
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 8), flate2::Compression::fast());
                gz.write_all(body.as_bytes()).map_err(|e| Failure::Refused(e.to_string()))?;
                let zipped = gz.finish().map_err(|e| Failure::Refused(e.to_string()))?;
                let mut req = http
                    .post(format!("{}/write", self.base_url))
                    .query(&query)
                    .header("Content-Encoding", "gzip")
                    .header("Content-Type", "text/plain; charset=utf-8")
                    .body(zipped);
                if let Some((u, p)) = auth {
                    req = req.basic_auth(u, p.as_ref());
                }
                self.rt.block_on(async {
                    match req.send().await {
                        Ok(resp) if resp.status().is_success() => Ok(()),
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let text = resp.text().await.unwrap_or_default();
                            Err(classify(status, &text))
                        }
                        Err(e) => Err(transport(&e)),
                    }
                })
            }
        }
    }
}

/// The wait after `wait` between attempts: doubled, at most 30 s.
fn next_wait(wait: Duration) -> Duration {
    (wait * 2).min(Duration::from_secs(30))
}

/// How long `retries` retries starting at `backoff` wait in all.
fn retry_span(backoff: Duration, retries: u32) -> Duration {
    std::iter::successors(Some(backoff), |w| Some(next_wait(*w))).take(retries as usize).sum()
}

/// A transport error said once: a connection that failed by its innermost
/// cause and what to check, anything else with its causes (reqwest's own
/// text omits them; hyper's repeat each other).
fn transport(e: &reqwest::Error) -> Failure {
    if e.is_connect() {
        let root = std::iter::successors(std::error::Error::source(e), |c| c.source()).last();
        let cause = root.map_or_else(|| e.to_string(), |c| c.to_string());
        let check = crate::error::what_to_check(e).unwrap_or("check the host and port of --db");
        Failure::Unreachable(format!("cannot connect: {cause}"), check)
    } else if e.is_timeout() {
        Failure::Unreachable("no answer within the timeout".into(), crate::error::TIMEOUT_CHECK)
    } else {
        Failure::Retry(crate::error::chain_text(e))
    }
}

/// Sorts an HTTP error into retry or refusal, with the server's message
/// (`{"error": …}` of 1.x, `{"message": …}` of 2.x, else the body).
fn classify(status: u16, body: &str) -> Failure {
    let msg = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").or_else(|| v.get("message")).and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.trim().chars().take(500).collect());
    let text = format!("HTTP {status}: {msg}");
    if status >= 500 || status == 429 || status == 408 {
        Failure::Retry(text)
    } else {
        Failure::Refused(text)
    }
}

/// `dropped=N` of a partial-write message.
fn dropped_count(msg: &str) -> u64 {
    msg.rsplit("dropped=")
        .next()
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_are_sorted() {
        assert!(matches!(classify(503, "busy"), Failure::Retry(m) if m == "HTTP 503: busy"));
        assert!(matches!(classify(429, ""), Failure::Retry(_)));
        assert!(
            matches!(classify(400, r#"{"error":"unable to parse 'x': bad timestamp"}"#), Failure::Refused(m) if m == "HTTP 400: unable to parse 'x': bad timestamp")
        );
        assert!(
            matches!(classify(401, r#"{"code":"unauthorized","message":"unauthorized access"}"#), Failure::Refused(m) if m == "HTTP 401: unauthorized access")
        );
        assert_eq!(dropped_count("partial write: points beyond retention policy dropped=17"), 17);
        assert_eq!(dropped_count("partial write: points beyond retention policy"), 0);
    }
}
