//! Failed-login alerts: "N failed logins within W from one client" (or for
//! one user), one alert per window.
//!
//! The semantics are fail2ban's (`maxretry`, `findtime`; the reference in
//! its 1.0.2 `sshd` jail): failures of one key are counted while they fall
//! within W of the latest one (both ends included); the failure that makes
//! N raises the alert, and the key starts counting afresh, as a ban resets
//! fail2ban's ticket. The alert belongs to that failure's event: it is
//! queued only if that failed login is stored for the first time, so a
//! re-read log raises nothing again. The windows are kept with the open
//! sessions ([`AlertWindows::save`]), so a window that spans two runs of a
//! scheduled import counts as one.
//!
//! What is counted differs from fail2ban's `sshd` filter (normal mode) in
//! one way, checked with `fail2ban-regex` on the shared OpenSSH samples and
//! a password-guessing log: sshd announces a connection whose user it
//! refuses before authentication (`Invalid user NAME from ADDR`, or `User
//! NAME from ADDR not allowed because …`) in a line of its own, and
//! fail2ban counts that line as one more failure besides the `Failed …
//! for invalid user NAME` attempts that follow. By default
//! ([`Count::Attempts`]) a failure is an authentication attempt, the failed
//! logins of the reports; [`Count::Lines`] adds the announcement, once per
//! connection (sshd pid), at the time of the connection's first failed
//! attempt, so that a jail's `maxretry`/`findtime` carried over from
//! fail2ban raises the alerts fail2ban's bans would.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::Login;

/// What an alert counts failures by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// The client (as the IP mode stores it: address, network or hash).
    Client,
    /// The user name tried.
    User,
}

impl Per {
    /// The name written in configurations and payloads.
    pub fn name(self) -> &'static str {
        match self {
            Per::Client => "client",
            Per::User => "user",
        }
    }

    pub(super) fn parse(s: &str) -> Result<Per, String> {
        [Per::Client, Per::User]
            .into_iter()
            .find(|p| p.name() == s.trim())
            .ok_or_else(|| format!("'{s}': client or user"))
    }
}

/// What an alert counts as one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Each failed authentication attempt (the failed logins of the
    /// reports).
    Attempts,
    /// As fail2ban's `sshd` filter (normal mode) counts log lines: each
    /// failed attempt, plus the line announcing an invalid user, once per
    /// connection.
    Lines,
}

impl Count {
    /// The name written in configurations.
    pub fn name(self) -> &'static str {
        match self {
            Count::Attempts => "attempts",
            Count::Lines => "lines",
        }
    }

    pub(super) fn parse(s: &str) -> Result<Count, String> {
        [Count::Attempts, Count::Lines]
            .into_iter()
            .find(|c| c.name() == s.trim())
            .ok_or_else(|| format!("'{s}': attempts or lines"))
    }
}

/// An alert rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Failures that raise the alert (fail2ban's `maxretry`).
    pub failures: u64,
    /// Window, µs (fail2ban's `findtime`).
    pub within: i64,
    /// Counted per client or per user.
    pub per: Per,
    /// What counts as a failure.
    pub count: Count,
}

impl Rule {
    /// A rule of at least one failure in a window of at least a second,
    /// counting attempts.
    pub fn new(failures: u64, within: i64, per: Per) -> Result<Rule, String> {
        if failures == 0 {
            return Err("at least 1".into());
        }
        Ok(Rule { failures, within, per, count: Count::Attempts })
    }

    /// The rule as text (in payloads).
    pub fn describe(&self) -> String {
        let how = match self.count {
            Count::Attempts => "",
            Count::Lines => " (counting log lines as fail2ban)",
        };
        format!("{} failed logins within {} s per {}{how}", self.failures, self.within / 1_000_000, self.per.name())
    }
}

/// How long a connection's announcement is remembered at least (µs): an
/// hour, far beyond sshd's `LoginGraceTime` (2 minutes by default), after
/// which a connection not authenticated is closed.
const CONNECTION_MEMORY: i64 = 3600 * 1_000_000;

/// An alert raised by a failed login.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The rule, as text.
    pub rule: String,
    /// Per client or per user.
    pub per: Per,
    /// The client or user.
    pub key: String,
    /// Failures in the window.
    pub failures: u64,
    /// Time of the window's first failure (µs).
    pub first: i64,
}

/// The open windows of every alert hook: per hook and key, the failures
/// (time, event id) not yet part of an alert.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AlertWindows {
    windows: HashMap<String, HashMap<String, Vec<(i64, u64)>>>,
    /// Newest failure seen (µs).
    newest: i64,
    /// [`Count::Lines`]: per hook, the connections (`host session`) whose
    /// invalid-user announcement is counted, with their latest failure.
    #[serde(default)]
    announced: HashMap<String, HashMap<String, i64>>,
    #[serde(skip)]
    fed: u64,
}

impl AlertWindows {
    /// Counts the failed login `l` for hook `hook`'s `rule`; the alert it
    /// completes, if any. A failure already counted (same event) counts
    /// nothing.
    pub fn feed(&mut self, hook: &str, rule: &Rule, l: &Login) -> Option<Alert> {
        let key = match rule.per {
            Per::Client => crate::model::client_key(
                l.client_ip,
                l.origin.as_deref().and_then(|o| o.ip_prefix),
                l.origin.as_deref().and_then(|o| o.client_hash.as_deref()),
                l.client_host.as_deref(),
            )?,
            Per::User => l.user.to_string(),
        };
        self.newest = self.newest.max(l.time);
        self.fed += 1;
        if self.fed.is_multiple_of(4096) {
            self.forget_closed(rule.within.max(1));
        }
        let windows = self.windows.entry(hook.to_string()).or_default();
        if windows.get(&key).is_some_and(|list| list.iter().any(|&(_, id)| id == l.id)) {
            return None;
        }
        // The announcement counts once per connection, as a failure of its
        // own before the connection's first failed attempt (at its time,
        // with its id): it may complete a window the attempt then follows.
        let announced = rule.count == Count::Lines
            && l.outcome == crate::model::LoginOutcome::InvalidUser
            && l.session.as_ref().is_some_and(|session| {
                let seen = self.announced.entry(hook.to_string()).or_default();
                seen.insert(format!("{} {session}", l.server_host), l.time).is_none()
            });
        let first = if announced { count_one(windows, &key, rule, l) } else { None };
        // With failed_logins = 1 both would raise one: one alert per event.
        let alert = first.or(count_one(windows, &key, rule, l))?;
        Some(Alert { rule: rule.describe(), per: rule.per, key, failures: alert.0, first: alert.1 })
    }

    /// Drops the windows whose latest failure is more than `within` older
    /// than the newest failure seen (they can no longer fill up; bounded
    /// memory).
    fn forget_closed(&mut self, within: i64) {
        let cut = self.newest - within;
        for keys in self.windows.values_mut() {
            keys.retain(|_, list| list.last().is_some_and(|x| x.0 >= cut));
        }
        let cut = self.newest - within.max(CONNECTION_MEMORY);
        for seen in self.announced.values_mut() {
            seen.retain(|_, t| *t >= cut);
        }
    }

    /// The open windows as text (kept with the open sessions).
    pub fn save(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Windows saved by [`AlertWindows::save`].
    pub fn restore(text: &str) -> Result<AlertWindows, String> {
        serde_json::from_str(text).map_err(|e| format!("unreadable alert windows: {e}"))
    }

    /// Whether no window is open (connections remembered for
    /// [`Count::Lines`] are no window).
    pub fn is_empty(&self) -> bool {
        self.windows.values().all(HashMap::is_empty)
    }
}

/// Counts one failure of `l` in `key`'s window; when it completes the
/// window, the failures counted and the time of the first, and the key
/// starts afresh.
fn count_one(windows: &mut HashMap<String, Vec<(i64, u64)>>, key: &str, rule: &Rule, l: &Login) -> Option<(u64, i64)> {
    let list = windows.entry(key.to_string()).or_default();
    let at = list.partition_point(|&(t, id)| (t, id) < (l.time, l.id));
    list.insert(at, (l.time, l.id));
    let latest = list.last().map_or(l.time, |x| x.0);
    list.retain(|&(t, _)| t >= latest - rule.within);
    // The failures within W before this one (this one the latest of them).
    let count = list.iter().filter(|&&(t, _)| t >= l.time - rule.within && t <= l.time).count() as u64;
    if count < rule.failures {
        return None;
    }
    let first = list.iter().find(|&&(t, _)| t >= l.time - rule.within).map_or(l.time, |x| x.0);
    windows.remove(key);
    Some((count, first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LoginOutcome, Protocol};

    fn failure(id: u64, secs: i64, ip: &str) -> Login {
        Login {
            id,
            time: secs * 1_000_000,
            protocol: Protocol::Ssh,
            user: "root".into(),
            client_ip: Some(ip.parse().unwrap()),
            client_host: None,
            outcome: LoginOutcome::Failed,
            method: None,
            session: None,
            server_host: "h".into(),
            source: crate::formats::Format::from_name("openssh").unwrap().source(),
            origin: None,
        }
    }

    #[test]
    fn one_alert_per_window_like_a_ban() {
        let rule = Rule::new(3, 60_000_000, Per::Client).unwrap();
        let mut w = AlertWindows::default();
        let mut alerts = Vec::new();
        // 0, 30, 61: 0 falls out (61 − 60 = 1 > 0); 90 completes 30, 61, 90.
        for (id, t) in [(1, 0), (2, 30), (3, 61), (4, 90), (5, 91), (6, 92), (7, 93)] {
            if let Some(a) = w.feed("h", &rule, &failure(id, t, "192.0.2.1")) {
                alerts.push((id, a.failures, a.first / 1_000_000));
            }
        }
        // After the alert at 90 the window starts afresh: 91, 92, 93.
        assert_eq!(alerts, vec![(4, 3, 30), (7, 3, 91)]);
        // The same failure again counts nothing.
        assert_eq!(w.feed("h", &rule, &failure(7, 93, "192.0.2.1")), None);
        // Both ends of the window count (fail2ban: time − first ≤ findtime).
        let mut w = AlertWindows::default();
        let got: Vec<bool> = [(1, 0), (2, 30), (3, 60)]
            .iter()
            .map(|&(id, t)| w.feed("h", &rule, &failure(id, t, "::1")).is_some())
            .collect();
        assert_eq!(got, vec![false, false, true]);
    }

    #[test]
    fn windows_survive_a_save() {
        let rule = Rule::new(2, 60_000_000, Per::Client).unwrap();
        let mut w = AlertWindows::default();
        assert!(w.feed("h", &rule, &failure(1, 100, "192.0.2.9")).is_none());
        let mut w = AlertWindows::restore(&w.save()).unwrap();
        assert_eq!(w.feed("h", &rule, &failure(2, 130, "192.0.2.9")).map(|a| a.failures), Some(2));
        assert!(w.is_empty());
    }

    fn invalid(id: u64, secs: i64, pid: u32) -> Login {
        Login {
            outcome: LoginOutcome::InvalidUser,
            session: Some(format!("sshd {pid}").into()),
            ..failure(id, secs, "192.0.2.77")
        }
    }

    #[test]
    fn counting_lines_adds_one_announcement_per_connection() {
        let mut rule = Rule::new(3, 120_000_000, Per::Client).unwrap();
        let feed = |rule: &Rule, logins: &[Login]| {
            let mut w = AlertWindows::default();
            let out: Vec<Option<u64>> = logins.iter().map(|l| w.feed("h", rule, l).map(|a| a.failures)).collect();
            (out, w)
        };
        // Three connections of one unknown user each, then a second
        // attempt on the third connection.
        let logins = [invalid(1, 0, 10), invalid(2, 20, 11), invalid(3, 40, 12), invalid(4, 41, 12)];
        assert_eq!(feed(&rule, &logins).0, vec![None, None, Some(3), None]);
        rule.count = Count::Lines;
        assert_eq!(rule.describe(), "3 failed logins within 120 s per client (counting log lines as fail2ban)");
        // 0: 2 lines; 20: the announcement makes 3 (alert), its attempt
        // starts afresh; 40: 3 again; 41: no announcement (same pid).
        let (out, mut w) = feed(&rule, &logins);
        assert_eq!(out, vec![None, Some(3), Some(3), None]);
        assert_eq!(w.feed("h", &rule, &logins[3]), None, "the same event counts nothing");
        // The connections are remembered across a save, and a saved state
        // without them (an older version's) restores.
        let mut w = AlertWindows::restore(&w.save()).unwrap();
        assert_eq!(w.feed("h", &rule, &invalid(5, 50, 12)), None);
        assert_eq!(w.feed("h", &rule, &invalid(6, 51, 12)).map(|a| a.failures), Some(3));
        assert!(AlertWindows::restore(r#"{"windows":{},"newest":0}"#).is_ok());
        // A failure of a known user is one line, as an attempt.
        let (out, _) = feed(&rule, &[failure(7, 0, "192.0.2.77"), invalid(8, 1, 20)]);
        assert_eq!(out, vec![None, Some(3)]);
    }
}
