//! GeoIP lookups in a MaxMind DB (`.mmdb`) file, memory-mapped.
//!
//! Two record layouts exist in the wild and are told apart by the
//! database's `database_type` metadata:
//!
//! * the MaxMind City schema (`GeoIP2-City`, `GeoLite2-City`, DB-IP's
//!   `DBIP-City-Lite`, … and their Country variants): nested
//!   `country.iso_code`, `city.names.en`, `location.latitude/longitude`;
//! * the flat schema of ip-location-db exports: top-level `country_code`,
//!   `city`, `latitude`, `longitude`.
//!
//! Only those four fields are decoded (into borrowed strings), never the
//! whole record. Addresses that cannot have a location — private, loopback,
//! link-local, documentation, … — are not looked up at all, so no database
//! quirk can ever give them a made-up city.
//!
//! geoipupdate replaces the file by renaming a new one into place; the old
//! mapping stays valid (it maps the old inode) and [`GeoDb::refresh`] notices
//! the new file by its inode and modification time and maps it instead.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use maxminddb::{Mmap, Reader};
use serde::{Deserialize, Deserializer};

use crate::error::EnrichError;

/// Where distributions and geoipupdate put a City database, in the order
/// they are tried when no path is configured.
pub const DEFAULT_PATHS: &[&str] = &[
    "/var/lib/GeoIP/GeoLite2-City.mmdb",
    "/usr/share/GeoIP/GeoLite2-City.mmdb",
    "/usr/local/share/GeoIP/GeoLite2-City.mmdb",
    "/var/lib/GeoIP/GeoIP2-City.mmdb",
    "/usr/share/GeoIP/GeoIP2-City.mmdb",
    "/usr/local/share/GeoIP/GeoIP2-City.mmdb",
    "/var/lib/GeoIP/dbip-city-lite.mmdb",
    "/usr/share/GeoIP/dbip-city-lite.mmdb",
];

/// The record layout of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// MaxMind GeoIP2/GeoLite2 City or Country (also DB-IP's official
    /// lite databases).
    MaxMind,
    /// Flat `city/country_code/latitude/longitude` (ip-location-db).
    Flat,
}

impl Schema {
    /// The layout the metadata's `database_type` names: MaxMind and DB-IP
    /// call theirs `GeoIP2-*`, `GeoLite2-*`, `GeoIP-*` or `DBIP-*`; any
    /// other database is read as the flat layout.
    pub fn detect(meta: &maxminddb::Metadata) -> Schema {
        Schema::of(&meta.database_type)
    }

    fn of(database_type: &str) -> Schema {
        if ["GeoIP2-", "GeoLite2-", "GeoIP-", "DBIP-"].iter().any(|p| database_type.starts_with(p)) {
            Schema::MaxMind
        } else {
            Schema::Flat
        }
    }
}

/// What a lookup found. Every field may be missing (a country-level record
/// has no city, some records have no coordinates).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Location {
    /// ISO 3166-1 alpha-2 code.
    pub country: Option<Box<str>>,
    /// City name in English.
    pub city: Option<Box<str>>,
    /// Latitude, degrees.
    pub latitude: Option<f64>,
    /// Longitude, degrees.
    pub longitude: Option<f64>,
}

impl Location {
    fn is_empty(&self) -> bool {
        self.country.is_none() && self.city.is_none() && self.latitude.is_none() && self.longitude.is_none()
    }
}

#[derive(Deserialize)]
struct MmRecord<'a> {
    #[serde(borrow, default)]
    country: Option<MmCountry<'a>>,
    #[serde(borrow, default)]
    city: Option<MmCity<'a>>,
    #[serde(default)]
    location: Option<MmLocation>,
}

#[derive(Deserialize)]
struct MmCountry<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct MmCity<'a> {
    #[serde(borrow, default)]
    names: Option<MmNames<'a>>,
}

#[derive(Deserialize)]
struct MmNames<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct MmLocation {
    #[serde(default, deserialize_with = "degrees")]
    latitude: Option<f64>,
    #[serde(default, deserialize_with = "degrees")]
    longitude: Option<f64>,
}

#[derive(Deserialize)]
struct FlatRecord<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    city: Option<&'a str>,
    #[serde(default, deserialize_with = "degrees")]
    latitude: Option<f64>,
    #[serde(default, deserialize_with = "degrees")]
    longitude: Option<f64>,
}

/// A coordinate stored as a double, a float or a decimal string (exports
/// differ).
fn degrees<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a coordinate")
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(v.is_finite().then_some(v))
        }
        fn visit_f32<E>(self, v: f32) -> Result<Self::Value, E> {
            Ok(v.is_finite().then_some(v as f64))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

fn text(s: Option<&str>) -> Option<Box<str>> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(Box::from)
}

/// Identity of the file behind a path, to notice a replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mtime: i64,
    mtime_ns: i64,
    len: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp { dev: meta.dev(), ino: meta.ino(), mtime: meta.mtime(), mtime_ns: meta.mtime_nsec(), len: meta.len() }
    }
}

/// An open GeoIP database.
pub struct GeoDb {
    path: PathBuf,
    reader: Reader<Mmap>,
    schema: Schema,
    stamp: Stamp,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb").field("path", &self.path).field("schema", &self.schema).finish()
    }
}

impl GeoDb {
    /// Maps the database at `path` and detects its schema.
    pub fn open(path: &Path) -> Result<GeoDb, EnrichError> {
        let bad = |reason: String| EnrichError::GeoIp { path: path.to_path_buf(), reason };
        let meta = fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if !meta.is_file() {
            return Err(bad("not a file".into()));
        }
        // SAFETY: the mapping is read-only. geoipupdate and package
        // managers replace the file by renaming a new one into place, which
        // leaves this mapping on the old inode; only rewriting the file in
        // place could change the mapped bytes, and the README warns against
        // that.
        let reader = unsafe { Reader::open_mmap(path) }.map_err(|e| bad(e.to_string()))?;
        let schema = Schema::detect(reader.metadata());
        tracing::debug!(path = %path.display(), database_type = %reader.metadata().database_type, ?schema, "GeoIP database opened");
        Ok(GeoDb { path: path.to_path_buf(), reader, schema, stamp: Stamp::of(&meta) })
    }

    /// The first of [`DEFAULT_PATHS`] that exists.
    pub fn find_default() -> Option<PathBuf> {
        DEFAULT_PATHS.iter().map(PathBuf::from).find(|p| p.is_file())
    }

    /// Path of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Detected record layout.
    pub fn schema(&self) -> Schema {
        self.schema
    }

    /// The `database_type` of the metadata.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// Maps the file again if another one was put in its place. Returns
    /// whether it did (cached lookups are then stale). A replacement that
    /// cannot be opened (still being written, corrupt) is reported and the
    /// current database kept; the next call tries again.
    pub fn refresh(&mut self) -> bool {
        let Ok(meta) = fs::metadata(&self.path) else { return false };
        let stamp = Stamp::of(&meta);
        if stamp == self.stamp {
            return false;
        }
        match GeoDb::open(&self.path) {
            Ok(new) => {
                tracing::info!(path = %self.path.display(), "GeoIP database replaced; using the new one");
                *self = new;
                true
            }
            Err(e) => {
                tracing::warn!("{e}; keeping the database already open");
                false
            }
        }
    }

    /// The location of `ip`; `None` for addresses without one (not public,
    /// not in the database, or a record without any of the fields).
    pub fn lookup(&self, ip: IpAddr) -> Option<Location> {
        let ip = ip.to_canonical();
        if !is_public(ip) {
            return None;
        }
        let found = self.reader.lookup(ip).ok()?;
        let loc = match self.schema {
            Schema::MaxMind => {
                let r: MmRecord<'_> = found.decode().ok()??;
                let (latitude, longitude) = r.location.map_or((None, None), |l| (l.latitude, l.longitude));
                Location {
                    country: text(r.country.and_then(|c| c.iso_code)),
                    city: text(r.city.and_then(|c| c.names).and_then(|n| n.en)),
                    latitude,
                    longitude,
                }
            }
            Schema::Flat => {
                let r: FlatRecord<'_> = found.decode().ok()??;
                Location {
                    country: text(r.country_code),
                    city: text(r.city),
                    latitude: r.latitude,
                    longitude: r.longitude,
                }
            }
        };
        (!loc.is_empty()).then_some(loc)
    }
}

/// Whether an address is globally routed, i.e. can have a location.
/// (`IpAddr::is_global` is not stable yet.)
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => is_public_v6(a),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    !(a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_documentation()
        || a.is_multicast()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 carrier-grade NAT
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24 protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18)) // 198.18.0.0/15 benchmarking
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    !(a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard 100::/64
        || (s[0] == 0x0064 && s[1] == 0xff9b)) // NAT64 64:ff9b::/96 (and /48 local use)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::testdb::{flat_db, maxmind_db};

    #[test]
    fn schema_from_metadata() {
        assert_eq!(Schema::of("GeoLite2-City"), Schema::MaxMind);
        assert_eq!(Schema::of("GeoIP2-City"), Schema::MaxMind);
        assert_eq!(Schema::of("DBIP-City-Lite"), Schema::MaxMind);
        assert_eq!(Schema::of("GeoLite2-Country"), Schema::MaxMind);
        assert_eq!(Schema::of("ip-location-db"), Schema::Flat);
        assert_eq!(Schema::of("geolite2-city-ipv4"), Schema::Flat);
    }

    #[test]
    fn maxmind_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        maxmind_db(&path, "GeoLite2-City", "Grenoble");
        let db = GeoDb::open(&path).unwrap();
        assert_eq!(db.schema(), Schema::MaxMind);
        let loc = db.lookup("152.77.1.6".parse().unwrap()).unwrap();
        assert_eq!(loc.country.as_deref(), Some("FR"));
        assert_eq!(loc.city.as_deref(), Some("Grenoble"));
        assert_eq!(loc.latitude, Some(45.1842));
        assert_eq!(loc.longitude, Some(5.7245));
        // IPv4-mapped IPv6 is the same client.
        assert_eq!(db.lookup("::ffff:152.77.1.6".parse().unwrap()), Some(loc));
        // A country-only record.
        let de = db.lookup("2a01:4f8::1".parse().unwrap()).unwrap();
        assert_eq!(de, Location { country: Some("DE".into()), ..Location::default() });
        // Not in the database.
        assert_eq!(db.lookup("8.8.8.8".parse().unwrap()), None);
    }

    #[test]
    fn flat_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flat.mmdb");
        flat_db(&path);
        let db = GeoDb::open(&path).unwrap();
        assert_eq!(db.schema(), Schema::Flat);
        let loc = db.lookup("152.77.1.6".parse().unwrap()).unwrap();
        assert_eq!(loc.country.as_deref(), Some("FR"));
        assert_eq!(loc.city.as_deref(), Some("Grenoble"));
        assert_eq!(loc.latitude, Some(45.1842));
        assert_eq!(loc.longitude, Some(5.7245));
    }

    #[test]
    fn non_public_addresses_get_nothing() {
        // The test databases map these ranges; the lookup must still refuse.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        maxmind_db(&path, "GeoLite2-City", "Grenoble");
        let db = GeoDb::open(&path).unwrap();
        for ip in ["10.1.2.3", "127.0.0.1", "192.168.1.1", "::1", "fd00::1", "fe80::1", "192.0.2.7", "2001:db8::7"] {
            assert_eq!(db.lookup(ip.parse().unwrap()), None, "{ip}");
        }
        assert!(is_public("152.77.1.6".parse().unwrap()));
        assert!(is_public("2a01:4f8::1".parse().unwrap()));
        assert!(!is_public("100.64.0.1".parse().unwrap()));
        assert!(!is_public("::ffff:10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn replaced_file_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        maxmind_db(&path, "GeoLite2-City", "Grenoble");
        let mut db = GeoDb::open(&path).unwrap();
        assert!(!db.refresh(), "nothing changed yet");
        // As geoipupdate does: write a new file, rename it into place.
        let tmp = dir.path().join("city.mmdb.new");
        maxmind_db(&tmp, "GeoLite2-City", "Saint-Martin-d'Hères");
        fs::rename(&tmp, &path).unwrap();
        assert!(db.refresh());
        let loc = db.lookup("152.77.1.6".parse().unwrap()).unwrap();
        assert_eq!(loc.city.as_deref(), Some("Saint-Martin-d'Hères"));
        // A broken replacement keeps the working database.
        fs::write(&tmp, b"not a database").unwrap();
        fs::rename(&tmp, &path).unwrap();
        assert!(!db.refresh());
        assert!(db.lookup("152.77.1.6".parse().unwrap()).is_some());
    }

    #[test]
    fn open_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.mmdb");
        let e = GeoDb::open(&path).unwrap_err().to_string();
        assert!(e.contains("nope.mmdb"), "{e}");
        fs::write(&path, b"garbage").unwrap();
        let e = GeoDb::open(&path).unwrap_err().to_string();
        assert!(e.contains("nope.mmdb"), "{e}");
    }
}
