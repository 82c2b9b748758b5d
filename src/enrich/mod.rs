//! Enrichment: where each client is, and what of its address is kept.
//!
//! Runs between the decoders and the store, on whole batches. For every
//! client address it looks up the location ([`geoip`]), computes a geohash
//! and a keyed hash ([`hostkey`]) — once per distinct address, cached — and
//! then applies the IP-privacy mode, so the full address never leaves this
//! stage unless the mode is `full`:
//!
//! | mode       | `client_ip` stored      | host name stored      | `client_hash` |
//! |------------|-------------------------|-----------------------|---------------|
//! | `hmac`     | none                    | none                  | yes           |
//! | `truncate` | /24 (IPv4), /48 (IPv6)  | parent domain         | no            |
//! | `full`     | the address             | as logged             | yes           |
//! | `drop`     | none                    | none                  | no            |
//!
//! Geo fields are always computed from the full address, in memory. In
//! the same pass NUL characters in the events' text become U+FFFD
//! ([`Event::scrub_nul`]): PostgreSQL text cannot hold them, and every
//! store must store the same thing.

pub mod geoip;
pub mod hostkey;
#[cfg(test)]
pub(crate) mod testdb;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::EnrichError;
use crate::filemode::DbMode;
use crate::model::{Event, FastHash, Origin};
use geoip::GeoDb;
use hostkey::HostKey;

/// What of a client address a store may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpMode {
    /// A keyed hash, no address, no host name (default).
    #[default]
    Hmac,
    /// The /24 (IPv4) or /48 (IPv6) network and the host's parent domain.
    Truncate,
    /// The address and host name as logged, plus the hash.
    Full,
    /// Nothing.
    Drop,
}

impl IpMode {
    /// Every mode.
    pub const ALL: [IpMode; 4] = [IpMode::Hmac, IpMode::Truncate, IpMode::Full, IpMode::Drop];

    /// Name used by `--ip-mode`.
    pub fn name(self) -> &'static str {
        match self {
            IpMode::Hmac => "hmac",
            IpMode::Truncate => "truncate",
            IpMode::Full => "full",
            IpMode::Drop => "drop",
        }
    }

    /// Whether events keep a client hash.
    pub fn keeps_hash(self) -> bool {
        matches!(self, IpMode::Hmac | IpMode::Full)
    }

    /// Whether events keep the client's host name (or its parent domain).
    pub fn keeps_hosts(self) -> bool {
        matches!(self, IpMode::Full | IpMode::Truncate)
    }
}

/// `--ip-mode NAME`: the names of [`IpMode::name`].
impl clap::ValueEnum for IpMode {
    fn value_variants<'a>() -> &'a [IpMode] {
        &IpMode::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

/// Bits kept of an IPv4 address in `truncate` mode.
pub const TRUNCATE_V4: u8 = 24;
/// Bits kept of an IPv6 address in `truncate` mode.
pub const TRUNCATE_V6: u8 = 48;
/// Default geohash length (about ±2.4 km; GeoIP is no more precise).
pub const DEFAULT_GEOHASH_PRECISION: u8 = 5;
/// How often a running import checks whether the GeoIP file was replaced.
const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// Cached clients; the cache starts over past this many.
const CACHE_MAX: usize = 1 << 18;
/// The file in the state directory that says the missing-GeoIP warning
/// was given (see [`EnrichOptions::warn_once_in`]).
pub const GEOIP_WARNED_FILE: &str = "geoip-warned";

/// Which GeoIP database to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeoipChoice {
    /// The first of [`geoip::DEFAULT_PATHS`] that exists; none → one warning.
    Auto,
    /// This file (an error if it cannot be opened).
    Path(PathBuf),
    /// No GeoIP.
    Off,
}

/// `--geoip`: `auto` (or empty), `off` (or `none`), else a path.
impl std::str::FromStr for GeoipChoice {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<GeoipChoice, Self::Err> {
        Ok(match s.trim() {
            "auto" | "" => GeoipChoice::Auto,
            "off" | "none" => GeoipChoice::Off,
            path => GeoipChoice::Path(PathBuf::from(path)),
        })
    }
}

/// Enrichment settings.
#[derive(Debug, Clone)]
pub struct EnrichOptions {
    /// GeoIP database.
    pub geoip: GeoipChoice,
    /// Geohash length, 1–12.
    pub geohash_precision: u8,
    /// What of client addresses is stored.
    pub ip_mode: IpMode,
    /// The host-hash key.
    pub key: HostKey,
    /// State directory (and the mode of what is created in it) where the
    /// "no GeoIP database found" warning of `auto` is remembered: given
    /// once, it leaves [`GEOIP_WARNED_FILE`] there and later runs log it at
    /// info level (`-v`) only, so a cron job does not mail it every time.
    /// `None`: a warning every time.
    pub warn_once_in: Option<(PathBuf, DbMode)>,
}

/// The enrichment stage.
pub struct Enricher {
    geo: Option<GeoDb>,
    key: HostKey,
    precision: usize,
    mode: IpMode,
    by_ip: HashMap<IpAddr, (Option<IpAddr>, Arc<Origin>), FastHash>,
    by_host: HashMap<Box<str>, Arc<Origin>, FastHash>,
    checked: Instant,
    /// Shared names seen without NUL.
    nul_free: NulFree,
}

/// Shared names (users, modules, methods, host names) known to hold no
/// NUL, told by their address: the decoders share one copy of each name
/// among the events that carry it, and reading the name's text again for
/// every event was a cache miss each — the join thread, which clones the
/// names, and the store thread, which drops them, keep writing the counts
/// beside the text. Direct-mapped by address; each slot holds its name
/// (an `Arc`), so that no other name can get that address while it is
/// here. Bounded: [`NulFree::SLOTS`] names.
struct NulFree {
    slots: Box<[Option<Arc<str>>]>,
}

impl Default for NulFree {
    fn default() -> NulFree {
        NulFree { slots: vec![None; NulFree::SLOTS].into_boxed_slice() }
    }
}

impl NulFree {
    /// Names kept at most (a power of two).
    const SLOTS: usize = 256;

    /// Whether `s` holds no NUL: known, or read and then remembered.
    #[inline]
    fn clean(&mut self, s: &Arc<str>) -> bool {
        let at = Arc::as_ptr(s).cast::<u8>() as usize;
        let slot = &mut self.slots[((at >> 4) ^ (at >> 12)) & (NulFree::SLOTS - 1)];
        if slot.as_ref().is_some_and(|k| Arc::ptr_eq(k, s)) {
            return true;
        }
        let clean = !s.contains('\0');
        if clean {
            *slot = Some(s.clone());
        }
        clean
    }
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher").field("geo", &self.geo).field("mode", &self.mode).finish_non_exhaustive()
    }
}

/// Says that `auto` found no GeoIP database: a warning, or only an info
/// message once the marker in `once_in` records an earlier warning. The
/// marker is left only when the warning was actually shown (not under
/// `-q`); failing to leave it just repeats the warning next time.
fn warn_no_geoip(once_in: Option<&(PathBuf, DbMode)>) {
    let marker = once_in.map(|(dir, mode)| (dir, dir.join(GEOIP_WARNED_FILE), *mode));
    let tried = geoip::DEFAULT_PATHS.join(", ");
    if marker.as_ref().is_some_and(|(_, m, _)| m.exists()) {
        tracing::info!("no GeoIP database found (tried {tried}); events are stored without location");
        return;
    }
    tracing::warn!(
        "no GeoIP database found (tried {tried}); events are stored without location. \
         --geoip PATH names one, --geoip off silences this{}",
        if marker.is_some() { " (said once; -v repeats it)" } else { "" }
    );
    if let Some((dir, path, mode)) = marker.filter(|_| tracing::enabled!(tracing::Level::WARN)) {
        if let Err(e) = mode.create_dir_all(dir).and_then(|()| mode.create_file(&path)) {
            tracing::debug!(path = %path.display(), "cannot leave the GeoIP warning marker: {e}");
        }
    }
}

impl Enricher {
    /// Opens the GeoIP database (if any) and sets up the stage.
    pub fn new(opts: &EnrichOptions) -> Result<Enricher, EnrichError> {
        if !(1..=12).contains(&opts.geohash_precision) {
            return Err(EnrichError::GeohashPrecision(opts.geohash_precision));
        }
        let geo = match &opts.geoip {
            GeoipChoice::Off => None,
            GeoipChoice::Path(p) => Some(GeoDb::open(p)?),
            GeoipChoice::Auto => match GeoDb::find_default() {
                Some(p) => Some(GeoDb::open(&p)?),
                None => {
                    warn_no_geoip(opts.warn_once_in.as_ref());
                    None
                }
            },
        };
        if let Some(g) = &geo {
            tracing::info!("GeoIP database {} ({}, {:?} layout)", g.path().display(), g.database_type(), g.schema());
        }
        Ok(Enricher {
            geo,
            key: opts.key.clone(),
            precision: opts.geohash_precision as usize,
            mode: opts.ip_mode,
            by_ip: HashMap::default(),
            by_host: HashMap::default(),
            checked: Instant::now(),
            nul_free: NulFree::default(),
        })
    }

    /// The open GeoIP database, if any.
    pub fn geoip(&self) -> Option<&GeoDb> {
        self.geo.as_ref()
    }

    /// The IP mode.
    pub fn ip_mode(&self) -> IpMode {
        self.mode
    }

    /// The host key (for sealing session state).
    pub fn key(&self) -> &HostKey {
        &self.key
    }

    /// Picks up a replaced GeoIP file now (normally done every 10 s).
    pub fn refresh_geoip(&mut self) {
        self.checked = Instant::now();
        if self.geo.as_mut().is_some_and(GeoDb::refresh) {
            self.by_ip.clear();
        }
    }

    /// Enriches a batch in place, applies the IP mode and replaces NUL
    /// characters ([`Event::scrub_nul`]), one event at a time: each event
    /// is read once, while it is at hand.
    pub fn enrich(&mut self, events: &mut [Event]) {
        if self.checked.elapsed() >= REFRESH_EVERY {
            self.refresh_geoip();
        }
        for ev in events {
            let (ip, host, origin) = match ev {
                Event::Transfer(t) => (&mut t.client_ip, &mut t.client_host, &mut t.origin),
                Event::Login(l) => (&mut l.client_ip, &mut l.client_host, &mut l.origin),
            };
            self.apply(ip, host, origin);
            ev.scrub_nul_with(|s| self.nul_free.clean(s));
        }
    }

    fn apply(&mut self, ip: &mut Option<IpAddr>, host: &mut Option<Arc<str>>, origin: &mut Option<Arc<Origin>>) {
        if let Some(addr) = *ip {
            let (kept, o) = self.for_ip(addr);
            *ip = kept;
            *origin = Some(o);
        } else if let Some(h) = host.as_deref() {
            *origin = self.for_host(h);
        }
        if let Some(h) = host.as_mut() {
            match self.mode {
                IpMode::Full => {}
                IpMode::Truncate => match parent_domain(h) {
                    Some(p) => *h = p.into(),
                    None => *host = None,
                },
                IpMode::Hmac | IpMode::Drop => *host = None,
            }
        }
    }

    fn for_ip(&mut self, addr: IpAddr) -> (Option<IpAddr>, Arc<Origin>) {
        let addr = addr.to_canonical();
        if let Some((kept, o)) = self.by_ip.get(&addr) {
            return (*kept, o.clone());
        }
        let mut o = Origin::default();
        if let Some(loc) = self.geo.as_ref().and_then(|g| g.lookup(addr)) {
            o.geohash = match (loc.latitude, loc.longitude) {
                (Some(lat), Some(lon)) => {
                    geohash::encode(geohash::Coord { x: lon, y: lat }, self.precision).ok().map(String::into_boxed_str)
                }
                _ => None,
            };
            o.country = loc.country;
            o.city = loc.city;
            o.latitude = loc.latitude;
            o.longitude = loc.longitude;
        }
        if self.mode.keeps_hash() {
            o.client_hash = Some(self.key.hash(addr.to_string().as_bytes()).into_boxed_str());
        }
        let kept = match self.mode {
            IpMode::Full => Some(addr),
            IpMode::Truncate => {
                let (net, bits) = truncate(addr);
                o.ip_prefix = Some(bits);
                Some(net)
            }
            IpMode::Hmac | IpMode::Drop => None,
        };
        let o = Arc::new(o);
        if self.by_ip.len() >= CACHE_MAX {
            self.by_ip.clear();
        }
        self.by_ip.insert(addr, (kept, o.clone()));
        (kept, o)
    }

    fn for_host(&mut self, host: &str) -> Option<Arc<Origin>> {
        if !self.mode.keeps_hash() {
            return None;
        }
        if let Some(o) = self.by_host.get(host) {
            return Some(o.clone());
        }
        let o = Arc::new(Origin {
            client_hash: Some(self.key.hash(host.to_ascii_lowercase().as_bytes()).into_boxed_str()),
            ..Origin::default()
        });
        if self.by_host.len() >= CACHE_MAX {
            self.by_host.clear();
        }
        self.by_host.insert(host.into(), o.clone());
        Some(o)
    }
}

/// The network `truncate` mode keeps of an address: /24 or /48.
pub fn truncate(addr: IpAddr) -> (IpAddr, u8) {
    match addr.to_canonical() {
        IpAddr::V4(a) => {
            let bits = u32::from(a) & (u32::MAX << (32 - TRUNCATE_V4));
            (IpAddr::V4(Ipv4Addr::from(bits)), TRUNCATE_V4)
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a) & (u128::MAX << (128 - TRUNCATE_V6));
            (IpAddr::V6(Ipv6Addr::from(bits)), TRUNCATE_V6)
        }
    }
}

/// A host name without its first label, when at least two labels remain
/// (`dsl-7.pool.example.net` → `pool.example.net`; `example.net` → none).
/// Addresses logged as host names get no parent.
pub fn parent_domain(host: &str) -> Option<&str> {
    if host.parse::<IpAddr>().is_ok() {
        return None;
    }
    let (_, rest) = host.trim_end_matches('.').split_once('.')?;
    rest.contains('.').then_some(rest)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::enrich::testdb::maxmind_db;
    use crate::model::{Direction, Granularity, Protocol, Status, Transfer};

    #[test]
    fn options_parse_themselves() {
        use clap::ValueEnum;
        for m in IpMode::ALL {
            assert_eq!(IpMode::from_str(m.name(), false), Ok(m));
        }
        assert!(IpMode::from_str("hash", false).is_err());
        assert_eq!("auto".parse(), Ok(GeoipChoice::Auto));
        assert_eq!(" ".parse(), Ok(GeoipChoice::Auto));
        assert_eq!("none".parse(), Ok(GeoipChoice::Off));
        assert_eq!("off".parse(), Ok(GeoipChoice::Off));
        assert_eq!("/x/City.mmdb".parse(), Ok(GeoipChoice::Path("/x/City.mmdb".into())));
    }

    /// A transfer from `ip` (host name `host`), for tests here and of the
    /// stages around.
    pub(crate) fn transfer(ip: Option<&str>, host: Option<&str>) -> Event {
        Event::Transfer(Transfer {
            id: 1,
            end: 0,
            start: None,
            protocol: Protocol::Rsync,
            direction: Direction::Download,
            status: Status::Completed,
            bytes: 1,
            wire_bytes: None,
            file_size: None,
            path: None,
            module: None,
            user: "u".into(),
            client_ip: ip.map(|s| s.parse().unwrap()),
            client_host: host.map(Arc::from),
            session: None,
            server_host: "vm".into(),
            source: crate::formats::Format::Rsyncd.source(),
            granularity: Granularity::File,
            origin: None,
        })
    }

    fn parts(e: &Event) -> (Option<IpAddr>, Option<Arc<str>>, Origin) {
        let Event::Transfer(t) = e else { unreachable!() };
        (t.client_ip, t.client_host.clone(), t.origin.as_deref().cloned().unwrap_or_default())
    }

    fn enricher(dir: &std::path::Path, mode: IpMode, precision: u8) -> Enricher {
        let path = dir.join("city.mmdb");
        if !path.exists() {
            maxmind_db(&path, "GeoLite2-City", "Grenoble");
        }
        Enricher::new(&EnrichOptions {
            geoip: GeoipChoice::Path(path),
            geohash_precision: precision,
            ip_mode: mode,
            key: HostKey::new(b"0123456789abcdef-test"),
            warn_once_in: None,
        })
        .unwrap()
    }

    #[test]
    fn nul_characters_are_scrubbed_and_clean_names_stay_shared() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = enricher(dir.path(), IpMode::Full, 5);
        let (clean, dirty): (Arc<str>, Arc<str>) = ("alice".into(), "bo\0b".into());
        let module: Arc<str> = "pub\0".into();
        let event = |user: &Arc<str>, path: &str| {
            let mut ev = transfer(None, Some("h\0st"));
            let Event::Transfer(t) = &mut ev else { unreachable!() };
            t.user = user.clone();
            t.module = Some(module.clone());
            t.path = Some(path.into());
            ev
        };
        // Each name twice (the second time from what was seen), and more
        // names than are kept.
        let mut evs = vec![event(&clean, "a\0b"), event(&dirty, "c"), event(&clean, "d"), event(&dirty, "\0")];
        let many: Vec<Arc<str>> = (0..NulFree::SLOTS * 2).map(|k| Arc::from(format!("user{k}"))).collect();
        evs.extend(many.iter().map(|u| event(u, "x")));
        let mut want = evs.clone();
        want.iter_mut().for_each(Event::scrub_nul);
        e.enrich(&mut evs);
        for (got, want) in evs.iter().zip(&want) {
            let (Event::Transfer(g), Event::Transfer(w)) = (got, want) else { unreachable!() };
            assert_eq!((&g.user, &g.path, &g.module, &g.client_host), (&w.user, &w.path, &w.module, &w.client_host));
        }
        let users = |evs: &[Event]| {
            evs.iter()
                .map(|ev| if let Event::Transfer(t) = ev { t.user.clone() } else { unreachable!() })
                .collect::<Vec<_>>()
        };
        let got = users(&evs);
        assert_eq!((&*got[1], &*got[3], &*got[0]), ("bo\u{fffd}b", "bo\u{fffd}b", "alice"));
        // A name without NUL is the very name the event came with.
        assert!(Arc::ptr_eq(&got[0], &clean) && Arc::ptr_eq(&got[2], &clean));
        assert!(got[4..].iter().zip(&many).all(|(g, m)| Arc::ptr_eq(g, m)));
        assert!(e.nul_free.slots.iter().flatten().all(|s| !s.contains('\0')));
    }

    #[test]
    fn modes_keep_what_they_say() {
        let dir = tempfile::tempdir().unwrap();
        let key = HostKey::new(b"0123456789abcdef-test");
        let hash = key.hash(b"152.77.1.6");
        let host = Some("dsl-7.pool.example.net");
        let expect = [
            (IpMode::Hmac, None, None, Some(hash.as_str()), None),
            (IpMode::Truncate, Some("152.77.1.0"), Some("pool.example.net"), None, Some(24)),
            (IpMode::Full, Some("152.77.1.6"), Some("dsl-7.pool.example.net"), Some(hash.as_str()), None),
            (IpMode::Drop, None, None, None, None),
        ];
        for (mode, ip, h, client_hash, prefix) in expect {
            let mut e = enricher(dir.path(), mode, 5);
            let mut evs = vec![transfer(Some("152.77.1.6"), host)];
            e.enrich(&mut evs);
            let (kept_ip, kept_host, o) = parts(&evs[0]);
            assert_eq!(kept_ip, ip.map(|s| s.parse().unwrap()), "{mode:?}");
            assert_eq!(kept_host.as_deref(), h, "{mode:?}");
            assert_eq!(o.client_hash.as_deref(), client_hash, "{mode:?}");
            assert_eq!(o.ip_prefix, prefix, "{mode:?}");
            // Geo comes from the full address whatever the mode.
            assert_eq!(o.country.as_deref(), Some("FR"), "{mode:?}");
            assert_eq!(o.city.as_deref(), Some("Grenoble"), "{mode:?}");
            assert_eq!(o.geohash.as_deref(), Some("u0h14"), "{mode:?}");
        }
    }

    #[test]
    fn geohash_precision_and_v4_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = enricher(dir.path(), IpMode::Hmac, 12);
        let mut evs = vec![transfer(Some("::ffff:152.77.1.6"), None), transfer(Some("152.77.1.6"), None)];
        e.enrich(&mut evs);
        let (_, _, a) = parts(&evs[0]);
        let (_, _, b) = parts(&evs[1]);
        assert_eq!(a.geohash.as_deref().map(str::len), Some(12));
        assert!(a.geohash.as_deref().unwrap().starts_with("u0h14"));
        assert_eq!(a, b, "a v4-mapped address is the same client");
        for bad in [0, 13] {
            let err = Enricher::new(&EnrichOptions {
                geoip: GeoipChoice::Off,
                geohash_precision: bad,
                ip_mode: IpMode::Hmac,
                key: HostKey::new(b"0123456789abcdef-test"),
                warn_once_in: None,
            })
            .unwrap_err();
            assert!(err.to_string().contains("--geohash-precision"));
        }
    }

    #[test]
    fn private_and_host_only_clients() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = enricher(dir.path(), IpMode::Hmac, 5);
        let mut evs =
            vec![transfer(Some("10.0.0.5"), None), transfer(None, Some("Build.Example.Org")), transfer(None, None)];
        e.enrich(&mut evs);
        let (_, _, private) = parts(&evs[0]);
        assert!(private.country.is_none() && private.geohash.is_none());
        assert!(private.client_hash.is_some());
        let (_, h, host_only) = parts(&evs[1]);
        assert_eq!(h, None);
        assert_eq!(host_only.client_hash.as_deref(), Some(e.key.hash(b"build.example.org").as_str()));
        let Event::Transfer(t) = &evs[2] else { unreachable!() };
        assert!(t.origin.is_none());
    }

    #[test]
    fn without_geoip_only_privacy_applies() {
        let mut e = Enricher::new(&EnrichOptions {
            geoip: GeoipChoice::Off,
            geohash_precision: 5,
            ip_mode: IpMode::Truncate,
            key: HostKey::new(b"0123456789abcdef-test"),
            warn_once_in: None,
        })
        .unwrap();
        let mut evs = vec![transfer(Some("2001:db8:1234:5678::9"), Some("example.net"))];
        e.enrich(&mut evs);
        let (ip, host, o) = parts(&evs[0]);
        assert_eq!(ip, Some("2001:db8:1234::".parse().unwrap()));
        assert_eq!(host, None);
        assert_eq!(o.ip_prefix, Some(48));
        assert!(o.country.is_none() && o.client_hash.is_none());
    }

    #[test]
    fn parents() {
        assert_eq!(parent_domain("a.b.example.org"), Some("b.example.org"));
        assert_eq!(parent_domain("b.example.org."), Some("example.org"));
        assert_eq!(parent_domain("example.org"), None);
        assert_eq!(parent_domain("localhost"), None);
        assert_eq!(parent_domain("192.0.2.1"), None);
    }
}
