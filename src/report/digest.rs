//! `xferstats digest`: the daily digest delivered where people read it —
//! posted to a chat webhook (Slack/Mattermost `text`, or generic JSON) or
//! mailed through the system's `sendmail` — instead of printed.
//!
//! The numbers are those of `report --by day,user --format json` for the
//! day: the digest is built by the same grouping (`super::grouped`) and
//! rendered by the same functions as `report`. A receiver that cannot be
//! reached or answers other than 2xx, or a `sendmail` that fails, is a
//! [`DeliveryError`] naming the receiver without its secrets (a webhook
//! URL's path and query are its credentials: only its origin is shown).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{grouped, render_digest, render_groups, OutputFormat, ReportOptions};
use crate::error::{ConfigError, DeliveryError, Error};
use crate::rollup::{Key, Metric};
use crate::sinks::Store;

/// The body of a webhook post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Payload {
    /// `{"text": …}` with the table in a code block: Slack and Mattermost
    /// incoming webhooks (also Google Chat and Discord-compatible bridges
    /// that read `text`).
    Slack,
    /// `{"day", "host", "users": [the report --by day,user --format json
    /// rows], "total": {…}, "text"}`: for a receiver of your own.
    Json,
}

/// One day's digest, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The host it is sent from (named in the title and the mail subject).
    pub host: String,
    /// The digest table as `report --day DAY` prints it.
    pub text: String,
    /// The rows of `report --by day,user --format json` for the day.
    pub users: Value,
    /// The totals row.
    pub total: Value,
}

impl Digest {
    /// The digest of `day` in `store`; `top` keeps the N users with the
    /// most bytes in the table (the JSON rows too; the totals stay whole).
    pub fn build(store: &mut dyn Store, day: &str, host: &str, top: Option<usize>) -> Result<Digest, Error> {
        let opts = ReportOptions {
            by: None,
            since: None,
            until: None,
            day: Some(day.to_string()),
            filters: Vec::new(),
            top,
            format: OutputFormat::Table,
        };
        let keys = [Key::Day, Key::User];
        let r = grouped(store, &keys, Some(day.to_string()), Some(day.to_string()), &opts)?;
        let (mut text, mut rows) = (Vec::new(), Vec::new());
        render_digest(day, &r, true, OutputFormat::Table, &mut text).map_err(Error::Output)?;
        render_groups(&keys, &r, true, OutputFormat::Json, &mut rows).map_err(Error::Output)?;
        let total: Map<String, Value> =
            Metric::ALL.iter().map(|m| (m.name().to_string(), Value::from(m.of(&r.total)))).collect();
        Ok(Digest {
            day: day.to_string(),
            host: host.to_string(),
            text: String::from_utf8_lossy(&text).into_owned(),
            users: serde_json::from_slice(&rows).map_err(|e| Error::Output(e.into()))?,
            total: Value::Object(total),
        })
    }

    /// The title line: `xferstats digest for DAY (UTC) on HOST`.
    pub fn title(&self) -> String {
        format!("xferstats digest for {} (UTC) on {}", self.day, crate::sanitize::sanitize(&self.host))
    }

    /// The webhook body. Slack's three special characters (`&`, `<`, `>`)
    /// are escaped as its API asks, so that a user name never becomes a
    /// mention or a link.
    pub fn payload(&self, kind: Payload) -> Value {
        match kind {
            Payload::Slack => {
                let text = format!("*{}*\n```\n{}```", self.title(), self.text);
                json!({ "text": text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;") })
            }
            Payload::Json => json!({
                "day": self.day,
                "host": self.host,
                "users": self.users,
                "total": self.total,
                "text": self.text,
            }),
        }
    }

    /// The mail: `To`, optional `From`, `Subject` (the title; RFC 2047
    /// encoded if not ASCII), `Date`, MIME plain text in UTF-8, then the
    /// table. Addresses with control characters are refused (no header
    /// injection).
    pub fn mail(&self, to: &[String], from: Option<&str>, date: &str) -> Result<String, ConfigError> {
        let check = |flag: &'static str, a: &str| {
            if is_mail_address(a) {
                Ok(())
            } else {
                Err(ConfigError::MailAddress { flag, value: crate::sanitize::sanitize(a).into_owned() })
            }
        };
        for a in to {
            check("--mail-to", a)?;
        }
        let mut m = format!("To: {}\n", to.join(", "));
        if let Some(f) = from {
            check("--mail-from", f)?;
            m.push_str(&format!("From: {f}\n"));
        }
        let title = self.title();
        let subject = if title.is_ascii() {
            title
        } else {
            use base64::Engine;
            format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(title))
        };
        m.push_str(&format!(
            "Subject: {subject}\nDate: {date}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n\
             Content-Transfer-Encoding: 8bit\nAuto-Submitted: auto-generated\n\n{}",
            self.text
        ));
        Ok(m)
    }
}

/// Whether `a` may be put in a mail header: not blank, no control
/// characters (no header injection).
pub fn is_mail_address(a: &str) -> bool {
    !a.trim().is_empty() && !a.chars().any(char::is_control)
}

/// `scheme://host[:port]` of `url`: what messages show of a webhook (its
/// path and query hold the credentials of Slack-style hooks).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let more = if u.path().len() > 1 || u.query().is_some() { "/…" } else { "" };
            format!("{}://{}{port}{more}", u.scheme(), u.host_str().unwrap_or(""))
        }
        Err(_) => "(unreadable URL)".to_string(),
    }
}

/// Checks a `--send` URL (http or https with a host).
pub fn check_url(url: &str) -> Result<(), ConfigError> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(ConfigError::WebhookUrl(redact_url(url))),
    }
}

/// POSTs `body` as JSON to `url`; done when the receiver answers 2xx.
pub fn post(url: &str, body: &Value, timeout: Duration) -> Result<(), DeliveryError> {
    let shown = redact_url(url);
    let fail = |reason: String| DeliveryError::Webhook { url: shown.clone(), reason };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| fail(e.to_string()))?;
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("xferstats/", env!("CARGO_PKG_VERSION")))
        // A redirect is an answer other than 2xx: the digest is not sent on
        // to wherever it points.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let body = serde_json::to_vec(body).map_err(|e| fail(e.to_string()))?;
    rt.block_on(async {
        let resp = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            // reqwest's message names the full URL: say only the cause.
            .map_err(|e| fail(cause(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        Err(DeliveryError::Refused {
            url: shown.clone(),
            status: status.as_u16(),
            body: crate::sanitize::sanitize_bytes(text.as_bytes(), 200),
        })
    })
}

/// What went wrong with a request, without the URL reqwest puts in its
/// own message.
fn cause(e: &reqwest::Error) -> String {
    let mut what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let s_text = s.to_string();
        if !what.contains(&s_text) {
            what = format!("{what}: {s_text}");
        }
        src = s.source();
    }
    what
}

/// Pipes `message` to `program -t -oi` (sendmail reads the recipients
/// from the headers; a line of one dot does not end the message); done
/// when it exits 0.
pub fn send_mail(program: &Path, message: &str) -> Result<(), DeliveryError> {
    let fail = |reason: String| DeliveryError::Sendmail { program: program.to_path_buf(), reason };
    let mut child = std::process::Command::new(program)
        .args(["-t", "-oi"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e} (install a mail transfer agent, or name it with --sendmail)")))?;
    let written = child.stdin.take().map(|mut i| i.write_all(message.as_bytes()));
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let said = crate::sanitize::sanitize_bytes(out.stderr.trim_ascii(), 300);
        return Err(fail(format!(
            "{}{}",
            out.status,
            if said.is_empty() { String::new() } else { format!(": {said}") }
        )));
    }
    if let Some(Err(e)) = written {
        return Err(fail(format!("writing the message: {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(host: &str) -> Digest {
        Digest {
            day: "2026-11-28".into(),
            host: host.into(),
            text: "user <!channel>  uploads\n".into(),
            users: json!([]),
            total: json!({}),
        }
    }

    #[test]
    fn webhook_urls_are_shown_without_their_secrets() {
        assert_eq!(redact_url("https://hooks.slack.com/services/T0/B0/XyZsecret"), "https://hooks.slack.com/…");
        assert_eq!(redact_url("http://u:pw@127.0.0.1:8080/hook?token=s"), "http://127.0.0.1:8080/…");
        assert_eq!(redact_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert!(check_url("ftp://x/y").is_err() && check_url("https://x/y").is_ok());
    }

    #[test]
    fn slack_text_cannot_mention_or_link() {
        let p = digest("vm").payload(Payload::Slack);
        let t = p["text"].as_str().unwrap();
        assert!(t.starts_with("*xferstats digest for 2026-11-28 (UTC) on vm*\n```\n"), "{t}");
        assert!(t.contains("&lt;!channel&gt;") && !t.contains('<'), "{t}");
    }

    #[test]
    fn mail_headers() {
        let m =
            digest("höst").mail(&["ops@example.org".into()], Some("xferstats@vm"), "Sun, 29 Nov 2026 07:00:00 +0000");
        let m = m.unwrap();
        assert!(m.starts_with("To: ops@example.org\nFrom: xferstats@vm\nSubject: =?UTF-8?B?"), "{m}");
        assert!(m.contains("\nDate: Sun, 29 Nov 2026 07:00:00 +0000\nMIME-Version: 1.0\n"), "{m}");
        assert!(m.contains("\nContent-Type: text/plain; charset=UTF-8\n"), "{m}");
        assert!(m.ends_with("\n\nuser <!channel>  uploads\n"), "{m}");
        let e = digest("vm").mail(&["a@b\nBcc: x@y".into()], None, "d").unwrap_err();
        assert!(e.to_string().starts_with("--mail-to 'a@b\\x0aBcc: x@y'"), "{e}");
    }
}
