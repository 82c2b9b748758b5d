//! Rollup deltas: what the events a commit actually inserted add to the
//! daily rollups. Stores feed only the rows they inserted (a re-read or
//! concurrently stored event adds nothing), so the rollups always equal the
//! sums of the raw rows.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use xxhash_rust::xxh3::xxh3_64;

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
    transfers: HashMap<Hashed<TransferKey<'a>>, Sums, BuildHasherDefault<Prehashed>>,
    logins: HashMap<Hashed<LoginKey<'a>>, i64, BuildHasherDefault<Prehashed>>,
    /// The sums of the events of each [`Profile`]: what they add to every
    /// value set but the files, which [`Deltas::values`] spreads.
    profiles: HashMap<Hashed<Profile<'a>>, Metrics, BuildHasherDefault<Prehashed>>,
    /// The file rows (mostly one per event: added as they come).
    files: HashMap<Hashed<ValueKey<'a>>, Metrics, BuildHasherDefault<Prehashed>>,
}

impl<'a> Deltas<'a> {
    /// Counts an inserted transfer.
    pub fn transfer(&mut self, t: &'a Transfer) {
        let key = TransferKey::of(t);
        let texts = (key.module, t.path.as_deref().unwrap_or(""));
        let cols = columns(|k| field(k, &t.server_host, t.protocol, &t.user, texts, t.origin.as_deref()));
        let (host, module, user) = (col(&cols, Key::Host).1, col(&cols, Key::Module).1, col(&cols, Key::User).1);
        let codes = key.protocol as u64 | (key.direction as u64) << 8 | (key.status as u64) << 16;
        let hash = hash_words(&[key.day as u64, host, module, user, codes]);
        let s = self.transfers.entry(Hashed { key, hash }).or_default();
        s.transfers += 1;
        s.bytes += t.bytes as i64;
        let m = Metrics::of_transfer(t.direction, t.status, t.bytes);
        self.add_values(key.day, &m, true, &cols);
    }

    /// Counts an inserted login.
    pub fn login(&mut self, l: &'a Login) {
        let key = LoginKey::of(l);
        let cols = columns(|k| field(k, &l.server_host, l.protocol, &l.user, ("", ""), l.origin.as_deref()));
        let (host, user) = (col(&cols, Key::Host).1, col(&cols, Key::User).1);
        let hash = hash_words(&[key.day as u64, host, user, key.protocol as u64 | (key.outcome as u64) << 8]);
        *self.logins.entry(Hashed { key, hash }).or_default() += 1;
        let m = Metrics::of_login(l.outcome);
        self.add_values(key.day, &m, false, &cols);
    }

    /// Adds `m` to the row of every value set (of the sets with logins
    /// only, for a login), from the event's [`columns`]: the file's row
    /// now, the others' once per profile (the events of a commit have few
    /// profiles; 16 sets each).
    fn add_values(&mut self, day: i64, m: &Metrics, transfer: bool, cols: &Columns<'a>) {
        let mut profile = *cols;
        profile[FILE] = ("", 0);
        let mut words = [day as u64, u64::from(transfer), 0, 0, 0, 0, 0, 0];
        for (w, (_, h)) in words[2..].iter_mut().zip(&profile[..FILE]) {
            *w = *h;
        }
        let key = Hashed { key: Profile { day, transfer, cols: profile }, hash: hash_words(&words) };
        self.profiles.entry(key).or_default().add(m);
        if transfer {
            add_value(&mut self.files, FILE_SET, day, cols, m);
        }
    }

    /// The value deltas in key order.
    pub fn values(&self) -> Vec<(ValueKey<'a>, Metrics)> {
        let mut all: HashMap<Hashed<ValueKey<'a>>, Metrics, BuildHasherDefault<Prehashed>> =
            self.files.iter().map(|(k, m)| (Hashed { key: k.key, hash: k.hash }, *m)).collect();
        for (p, m) in &self.profiles {
            let p = &p.key;
            for (set, keys) in VALUE_SETS.iter().enumerate() {
                if set != FILE_SET && (p.transfer || super::set_has_logins(keys)) {
                    add_value(&mut all, set, p.day, &p.cols, m);
                }
            }
        }
        let mut v: Vec<_> = all.into_iter().map(|(k, m)| (k.key, m)).collect();
        v.sort_unstable_by_key(|(k, _)| *k);
        v
    }

    /// The transfer deltas in key order (rows written in one order keep
    /// concurrent writers from deadlocking).
    pub fn transfers(&self) -> Vec<(&TransferKey<'a>, &Sums)> {
        let mut v: Vec<_> = self.transfers.iter().map(|(k, s)| (&k.key, s)).collect();
        v.sort_unstable_by_key(|(k, _)| **k);
        v
    }

    /// The login deltas in key order.
    pub fn logins(&self) -> Vec<(&LoginKey<'a>, &i64)> {
        let mut v: Vec<_> = self.logins.iter().map(|(k, n)| (&k.key, n)).collect();
        v.sort_unstable_by_key(|(k, _)| **k);
        v
    }
}

/// The columns of [`VALUE_SETS`]; every set's keys are among them.
const SET_KEYS: [Key; 7] = [Key::User, Key::Host, Key::Module, Key::Protocol, Key::Country, Key::Cell, Key::File];

/// Where [`Key::File`] is in [`SET_KEYS`] (last).
const FILE: usize = SET_KEYS.len() - 1;

/// The index of the file set in [`VALUE_SETS`] (last).
const FILE_SET: usize = VALUE_SETS.len() - 1;

/// Adds `m` to the row of value set `set` on `day` (the first of its month
/// for a monthly set) with the columns `cols`.
fn add_value<'a>(
    map: &mut HashMap<Hashed<ValueKey<'a>>, Metrics, BuildHasherDefault<Prehashed>>,
    set: usize,
    day: i64,
    cols: &Columns<'a>,
    m: &Metrics,
) {
    let keys = VALUE_SETS[set];
    let (v1, h1) = col(cols, keys[0]);
    let (v2, h2) = keys.get(1).map_or(("", 0), |k| col(cols, *k));
    let day = if super::set_is_monthly(keys) {
        let (y, mo, _) = crate::time::civil_from_days(day);
        crate::time::days_from_civil(y, mo, 1)
    } else {
        day
    };
    let key = ValueKey { day, set, v1, v2 };
    map.entry(Hashed { key, hash: hash_words(&[day as u64, set as u64, h1, h2]) }).or_default().add(m);
}

/// The columns of an event that the value sets other than the file's
/// take (the file `""`), its day, and whether it is a transfer: the events
/// of one profile add to the same rows of those sets.
#[derive(Debug, Clone, Copy)]
struct Profile<'a> {
    day: i64,
    transfer: bool,
    cols: Columns<'a>,
}

impl PartialEq for Hashed<Profile<'_>> {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.key, &other.key);
        self.hash == other.hash
            && (a.day, a.transfer) == (b.day, b.transfer)
            && a.cols.iter().zip(&b.cols).all(|(x, y)| same(x.0, y.0))
    }
}

/// The value of each of [`SET_KEYS`] for one event, with its hash.
type Columns<'a> = [(&'a str, u64); SET_KEYS.len()];

/// The [`Columns`] of an event whose value of key `k` is `f(k)`.
fn columns<'a>(f: impl Fn(Key) -> &'a str) -> Columns<'a> {
    SET_KEYS.map(|k| {
        let v = f(k);
        (v, xxh3_64(v.as_bytes()))
    })
}

/// The value and hash of key `k` (one of [`SET_KEYS`]) in `cols`.
fn col<'a>(cols: &Columns<'a>, k: Key) -> (&'a str, u64) {
    cols[SET_KEYS.iter().position(|c| *c == k).unwrap_or(0)]
}

/// The hash of a key made of words (column hashes, numbers; at most 8).
fn hash_words(words: &[u64]) -> u64 {
    let mut raw = [0u8; 64];
    let n = words.len().min(8);
    for (chunk, w) in raw.chunks_exact_mut(8).zip(&words[..n]) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    xxh3_64(&raw[..8 * n])
}

/// Whether two texts are equal; the columns of events are mostly the same
/// interned strings as a key's, and equal pointers spare reading the text.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
}

/// A rollup key with its hash, computed from the hashes of its columns
/// (see [`Deltas::transfer`]); equal keys have equal hashes.
#[derive(Debug)]
struct Hashed<K> {
    key: K,
    hash: u64,
}

impl<K> std::hash::Hash for Hashed<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for Hashed<TransferKey<'_>> {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.key, &other.key);
        self.hash == other.hash
            && (a.day, a.protocol, a.direction, a.status) == (b.day, b.protocol, b.direction, b.status)
            && same(a.host, b.host)
            && same(a.module, b.module)
            && same(a.user, b.user)
    }
}

impl PartialEq for Hashed<LoginKey<'_>> {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.key, &other.key);
        self.hash == other.hash
            && (a.day, a.protocol, a.outcome) == (b.day, b.protocol, b.outcome)
            && same(a.host, b.host)
            && same(a.user, b.user)
    }
}

impl PartialEq for Hashed<ValueKey<'_>> {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.key, &other.key);
        self.hash == other.hash && a.day == b.day && a.set == b.set && same(a.v1, b.v1) && same(a.v2, b.v2)
    }
}

impl<K> Eq for Hashed<K> where Hashed<K>: PartialEq {}

/// The hasher of [`Hashed`] keys, which are hashed already: it keeps the
/// one `u64` written.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else is still hashed.
        self.0 = xxh3_64(bytes) ^ self.0.rotate_left(5);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::model::{Granularity, Origin};

    fn transfer(day: i64, user: &str, module: Option<&str>, path: &str, geo: Option<(&str, &str)>) -> Transfer {
        Transfer {
            id: 1,
            end: day * 86_400_000_000 + 3_600_000_000,
            start: None,
            protocol: Protocol::Rsync,
            direction: if path.ends_with('x') { Direction::Upload } else { Direction::Download },
            status: Status::Completed,
            bytes: path.len() as u64 * 100,
            wire_bytes: None,
            file_size: None,
            path: Some(path.into()),
            module: module.map(Into::into),
            // A fresh allocation each: equal texts at other addresses.
            user: user.into(),
            client_ip: None,
            client_host: None,
            session: None,
            server_host: "h".into(),
            source: crate::formats::Format::Rsyncd.source(),
            granularity: Granularity::File,
            origin: geo.map(|(country, geohash)| {
                Arc::new(Origin { country: Some(country.into()), geohash: Some(geohash.into()), ..Origin::default() })
            }),
        }
    }

    fn login(day: i64, user: &str, outcome: LoginOutcome) -> Login {
        Login {
            id: 2,
            time: day * 86_400_000_000,
            protocol: Protocol::Sftp,
            user: user.into(),
            client_ip: None,
            client_host: None,
            outcome,
            method: None,
            session: None,
            server_host: "h".into(),
            source: crate::formats::Format::Rsyncd.source(),
            origin: None,
        }
    }

    /// The value rows, summed per event and set the plain way.
    fn naive<'a>(transfers: &'a [Transfer], logins: &'a [Login]) -> BTreeMap<ValueKey<'a>, Metrics> {
        let mut rows = BTreeMap::new();
        let mut add = |day: i64, transfer: bool, m: Metrics, f: &dyn Fn(Key) -> &'a str| {
            let (y, mo, _) = crate::time::civil_from_days(day);
            for (set, keys) in VALUE_SETS.iter().enumerate() {
                if !transfer && !crate::rollup::set_has_logins(keys) {
                    continue;
                }
                let v2 = keys.get(1).map_or("", |k| f(*k));
                let day =
                    if crate::rollup::set_is_monthly(keys) { crate::time::days_from_civil(y, mo, 1) } else { day };
                rows.entry(ValueKey { day, set, v1: f(keys[0]), v2 }).or_insert_with(Metrics::default).add(&m);
            }
        };
        for t in transfers {
            let texts = (t.module.as_deref().unwrap_or(""), t.path.as_deref().unwrap_or(""));
            let f = |k| field(k, &t.server_host, t.protocol, &t.user, texts, t.origin.as_deref());
            add(day_number(t.end), true, Metrics::of_transfer(t.direction, t.status, t.bytes), &f);
        }
        for l in logins {
            let f = |k| field(k, &l.server_host, l.protocol, &l.user, ("", ""), l.origin.as_deref());
            add(day_number(l.time), false, Metrics::of_login(l.outcome), &f);
        }
        rows
    }

    #[test]
    fn value_rows_by_profile_equal_the_sums_per_event_and_set() {
        assert_eq!(SET_KEYS[FILE], Key::File);
        assert_eq!(VALUE_SETS[FILE_SET], [Key::File]);
        assert!(VALUE_SETS[..FILE_SET].iter().all(|set| !set.contains(&Key::File)));
        let geo = Some(("FR", "u0h0f"));
        let transfers = [
            transfer(20_000, "ann", Some("pub"), "a/x", geo),
            transfer(20_000, "ann", Some("pub"), "b", geo),
            transfer(20_000, "ann", Some("pub"), "a/x", geo),
            transfer(20_001, "ann", Some("pub"), "a/x", None),
            transfer(20_030, "bob", None, "a/x", Some(("DE", "u33db"))),
            transfer(20_000, "bob", Some(""), "", geo),
        ];
        let logins = [
            login(20_000, "ann", LoginOutcome::Ok),
            login(20_000, "ann", LoginOutcome::Failed),
            login(20_000, "ann", LoginOutcome::Ok),
        ];
        let mut deltas = Deltas::default();
        transfers.iter().for_each(|t| deltas.transfer(t));
        logins.iter().for_each(|l| deltas.login(l));
        let expected: Vec<(ValueKey<'_>, Metrics)> = naive(&transfers, &logins).into_iter().collect();
        assert_eq!(deltas.values(), expected);
        assert_eq!(deltas.transfers().len(), 5);
        let ann_ok = deltas.logins().into_iter().find(|(k, _)| k.outcome == LoginOutcome::Ok).map(|(_, n)| *n);
        assert_eq!(ann_ok, Some(2));
    }
}
