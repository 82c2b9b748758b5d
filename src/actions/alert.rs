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

/// An alert rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Failures that raise the alert (fail2ban's `maxretry`).
    pub failures: u64,
    /// Window, µs (fail2ban's `findtime`).
    pub within: i64,
    /// Counted per client or per user.
    pub per: Per,
}

impl Rule {
    /// A rule of at least one failure in a window of at least a second.
    pub fn new(failures: u64, within: i64, per: Per) -> Result<Rule, String> {
        if failures == 0 {
            return Err("at least 1".into());
        }
        Ok(Rule { failures, within, per })
    }

    /// The rule as text (in payloads).
    pub fn describe(&self) -> String {
        format!("{} failed logins within {} s per {}", self.failures, self.within / 1_000_000, self.per.name())
    }
}

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
        let list = self.windows.entry(hook.to_string()).or_default().entry(key.clone()).or_default();
        if list.iter().any(|&(_, id)| id == l.id) {
            return None;
        }
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
        if let Some(keys) = self.windows.get_mut(hook) {
            keys.remove(&key);
        }
        Some(Alert { rule: rule.describe(), per: rule.per, key, failures: count, first })
    }

    /// Drops the windows whose latest failure is more than `within` older
    /// than the newest failure seen (they can no longer fill up; bounded
    /// memory).
    fn forget_closed(&mut self, within: i64) {
        let cut = self.newest - within;
        for keys in self.windows.values_mut() {
            keys.retain(|_, list| list.last().is_some_and(|x| x.0 >= cut));
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

    /// Whether no window is open.
    pub fn is_empty(&self) -> bool {
        self.windows.values().all(HashMap::is_empty)
    }
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
}
