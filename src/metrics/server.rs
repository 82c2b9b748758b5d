//! A minimal HTTP server for `GET /metrics`.
//!
//! One thread accepts connections and answers them one at a time: a
//! Prometheus server scrapes every 15–60 s, so there is nothing to gain from
//! an async stack, and a client that sends nothing is dropped after
//! [`READ_TIMEOUT`]. Only `GET` (and `HEAD`) of `/metrics` is served; any
//! other path is 404, any other method 405. Every response closes its
//! connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Longest request head read.
const MAX_HEAD: usize = 8192;

/// What a scrape gets: the exposition, or why there is none (503).
pub type Render<'a> = dyn FnMut() -> Result<String, String> + Send + 'a;

/// Serves `/metrics` from `render` on `listener` until accepting fails
/// (blocks: run it on a thread of its own).
pub fn serve(listener: &TcpListener, render: &mut Render<'_>) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept()?;
        if let Err(e) = answer(stream, render) {
            tracing::debug!(%peer, "metrics request: {e}");
        }
    }
}

/// Reads one request from `stream` and answers it.
fn answer(mut stream: TcpStream, render: &mut Render<'_>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request head too large\n",
            );
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ').filter(|p| !p.is_empty());
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split(|b| *b == b'?').next().unwrap_or_default();
    if method != b"GET" && method != b"HEAD" {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", b"only GET /metrics\n");
    }
    if path != b"/metrics" {
        return respond(&mut stream, "404 Not Found", "text/plain", b"only /metrics is served here\n");
    }
    let (status, ctype, body) = match render() {
        Ok(text) => ("200 OK", CONTENT_TYPE, text),
        Err(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
    };
    let body = if method == b"HEAD" { Vec::new() } else { body.into_bytes() };
    respond(&mut stream, status, ctype, &body)
}

fn respond(stream: &mut TcpStream, status: &str, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_metrics_only() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut n = 0;
            let mut render = move || {
                n += 1;
                if n == 2 {
                    Err("store unreadable".to_string())
                } else {
                    Ok(format!("a_total {n}\n"))
                }
            };
            serve(&listener, &mut render)
        });
        let ok = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\na_total 1\n"), "{ok}");
        let down = get(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert!(down.starts_with("HTTP/1.1 503 ") && down.ends_with("store unreadable\n"), "{down}");
        assert!(get(addr, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(get(addr, "GET /metrics HTTP/1.1\r\n\r\n").ends_with("a_total 3\n"));
    }
}
