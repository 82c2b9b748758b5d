//! Rollup deltas: what the events a commit actually inserted add to the
//! daily rollups. Stores feed only the rows they inserted (a re-read or
//! concurrently stored event adds nothing), so the rollups always equal the
//! sums of the raw rows.

use std::collections::HashMap;

use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::{Key, Metrics, CELL_CHARS, LOGIN_KEYS, TRANSFER_KEYS, VALUE_SETS};
use crate::model::{Direction, Login, LoginOutcome, Origin, Protocol, Status, Transfer};
use crate::time::{day_number, day_string};

/// The [`TRANSFER_KEYS`] of one transfer (the day as a day number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferKey<'a> {
    /// UTC day number of the end.
    pub day: i64,
    /// Server host.
    pub host: &'a str,
    /// Protocol.
    pub protocol: Protocol,
    /// Direction.
    pub direction: Direction,
    /// Status.
    pub status: Status,
    /// Module or virtual root ('' when none).
    pub module: &'a str,
    /// Login name.
    pub user: &'a str,
}

impl<'a> TransferKey<'a> {
    /// The key of `t`.
    pub fn of(t: &'a Transfer) -> TransferKey<'a> {
        TransferKey {
            day: day_number(t.end),
            host: &t.server_host,
            protocol: t.protocol,
            direction: t.direction,
            status: t.status,
            module: t.module.as_deref().unwrap_or(""),
            user: &t.user,
        }
    }

    /// The value of key `k` (`YYYY-MM-DD` for the day).
    pub fn value(&self, k: Key) -> std::borrow::Cow<'a, str> {
        std::borrow::Cow::Borrowed(match k {
            Key::Day => return std::borrow::Cow::Owned(day_string(self.day * 86_400_000_000)),
            Key::Host => self.host,
            Key::Protocol => self.protocol.as_str(),
            Key::Direction => self.direction.as_str(),
            Key::Status => self.status.as_str(),
            Key::Module => self.module,
            Key::User => self.user,
            Key::Month | Key::Client | Key::Country | Key::City | Key::Cell | Key::File => "",
        })
    }
}

/// The [`LOGIN_KEYS`] and outcome of one login (the day as a day number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoginKey<'a> {
    /// UTC day number.
    pub day: i64,
    /// Server host.
    pub host: &'a str,
    /// Protocol.
    pub protocol: Protocol,
    /// Login name.
    pub user: &'a str,
    /// Outcome.
    pub outcome: LoginOutcome,
}

impl<'a> LoginKey<'a> {
    /// The key of `l`.
    pub fn of(l: &'a Login) -> LoginKey<'a> {
        LoginKey {
            day: day_number(l.time),
            host: &l.server_host,
            protocol: l.protocol,
            user: &l.user,
            outcome: l.outcome,
        }
    }

    /// The value of key `k` (`YYYY-MM-DD` for the day).
    pub fn value(&self, k: Key) -> std::borrow::Cow<'a, str> {
        std::borrow::Cow::Borrowed(match k {
            Key::Day => return std::borrow::Cow::Owned(day_string(self.day * 86_400_000_000)),
            Key::Host => self.host,
            Key::Protocol => self.protocol.as_str(),
            Key::User => self.user,
            _ => "",
        })
    }
}

/// What one transfer key adds up to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    /// Transfers (and deletions).
    pub transfers: i64,
    /// Bytes.
    pub bytes: i64,
}

/// A row of the value rollup (`daily_values`): the day (the first of the
/// month for a pair), the index of the set in [`VALUE_SETS`], and its one
/// or two values (`""` for the second of a one-key set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueKey<'a> {
    /// UTC day number.
    pub day: i64,
    /// Index in [`VALUE_SETS`].
    pub set: usize,
    /// Value of the set's first key.
    pub v1: &'a str,
    /// Value of the set's second key, or `""`.
    pub v2: &'a str,
}

impl ValueKey<'_> {
    /// The key columns as `daily_values` orders them: field, day
    /// (`YYYY-MM-DD`), v1, v2.
    pub fn row(&self) -> [std::borrow::Cow<'_, str>; 4] {
        [
            super::SET_NAMES[self.set].as_str().into(),
            day_string(self.day * 86_400_000_000).into(),
            self.v1.into(),
            self.v2.into(),
        ]
    }
}

/// The value of a value-set key for an event, as the raw columns give it
/// (see [`super::sql::Dialect::raw_col`]): module, country and cell `""`
/// when unknown; the file `""` for a login or an unknown path.
fn field<'a>(
    k: Key,
    host: &'a str,
    protocol: Protocol,
    user: &'a str,
    (module, path): (&'a str, &'a str),
    o: Option<&'a Origin>,
) -> &'a str {
    match k {
        Key::User => user,
        Key::Host => host,
        Key::Protocol => protocol.as_str(),
        Key::Module => module,
        Key::Country => o.and_then(|o| o.country.as_deref()).unwrap_or(""),
        Key::Cell => o.and_then(|o| o.geohash.as_deref()).map_or("", |g| g.get(..CELL_CHARS).unwrap_or(g)),
        Key::File => path,
        _ => "",
    }
}

/// The rollup deltas of the events a commit inserted.
#[derive(Debug, Default)]
pub struct Deltas<'a> {
    transfers: HashMap<TransferKey<'a>, Sums, Xxh3DefaultBuilder>,
    logins: HashMap<LoginKey<'a>, i64, Xxh3DefaultBuilder>,
    values: HashMap<ValueKey<'a>, Metrics, Xxh3DefaultBuilder>,
}

impl<'a> Deltas<'a> {
    /// Counts an inserted transfer.
    pub fn transfer(&mut self, t: &'a Transfer) {
        let s = self.transfers.entry(TransferKey::of(t)).or_default();
        s.transfers += 1;
        s.bytes += t.bytes as i64;
        let m = Metrics::of_transfer(t.direction, t.status, t.bytes);
        let texts = (t.module.as_deref().unwrap_or(""), t.path.as_deref().unwrap_or(""));
        let f = |k| field(k, &t.server_host, t.protocol, &t.user, texts, t.origin.as_deref());
        self.add_values(day_number(t.end), &m, true, f);
    }

    /// Counts an inserted login.
    pub fn login(&mut self, l: &'a Login) {
        *self.logins.entry(LoginKey::of(l)).or_default() += 1;
        let m = Metrics::of_login(l.outcome);
        let f = |k| field(k, &l.server_host, l.protocol, &l.user, ("", ""), l.origin.as_deref());
        self.add_values(day_number(l.time), &m, false, f);
    }

    /// Adds `m` to the row of every value set (of the sets with logins
    /// only, for a login).
    fn add_values(&mut self, day: i64, m: &Metrics, transfer: bool, f: impl Fn(Key) -> &'a str) {
        let (y, mo, _) = crate::time::civil_from_days(day);
        let month = crate::time::days_from_civil(y, mo, 1);
        for (set, keys) in VALUE_SETS.iter().enumerate() {
            if !transfer && !super::set_has_logins(keys) {
                continue;
            }
            let v2 = keys.get(1).map_or("", |k| f(*k));
            let day = if super::set_is_monthly(keys) { month } else { day };
            self.values.entry(ValueKey { day, set, v1: f(keys[0]), v2 }).or_default().add(m);
        }
    }

    /// The value deltas in key order.
    pub fn values(&self) -> Vec<(&ValueKey<'a>, &Metrics)> {
        let mut v: Vec<_> = self.values.iter().collect();
        v.sort_unstable_by_key(|(k, _)| **k);
        v
    }

    /// The transfer deltas in key order (rows written in one order keep
    /// concurrent writers from deadlocking).
    pub fn transfers(&self) -> Vec<(&TransferKey<'a>, &Sums)> {
        let mut v: Vec<_> = self.transfers.iter().collect();
        v.sort_unstable_by_key(|(k, _)| **k);
        v
    }

    /// The login deltas in key order.
    pub fn logins(&self) -> Vec<(&LoginKey<'a>, &i64)> {
        let mut v: Vec<_> = self.logins.iter().collect();
        v.sort_unstable_by_key(|(k, _)| **k);
        v
    }
}

/// The values of a transfer key as [`TRANSFER_KEYS`] orders them.
pub fn transfer_row<'a>(k: &TransferKey<'a>) -> [std::borrow::Cow<'a, str>; TRANSFER_KEYS.len()] {
    TRANSFER_KEYS.map(|key| k.value(key))
}

/// The values of a login key as [`LOGIN_KEYS`] orders them, then the
/// outcome.
pub fn login_row<'a>(k: &LoginKey<'a>) -> [std::borrow::Cow<'a, str>; LOGIN_KEYS.len() + 1] {
    let mut row: [std::borrow::Cow<'a, str>; LOGIN_KEYS.len() + 1] = Default::default();
    for (slot, key) in row.iter_mut().zip(LOGIN_KEYS) {
        *slot = k.value(key);
    }
    row[LOGIN_KEYS.len()] = std::borrow::Cow::Borrowed(k.outcome.as_str());
    row
}
