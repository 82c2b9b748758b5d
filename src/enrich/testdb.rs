//! Tiny `.mmdb` files for unit tests, written with `mmdb-writer`.

use std::path::Path;

use ipnet::IpNet;
use mmdb_writer::Writer;
use serde_json::json;

/// A MaxMind-schema City database: 152.77.0.0/16 is `city` (FR, at
/// Grenoble's coordinates), 2a01:4f8::/32 a country-only record (DE), and
/// every reserved range a lookup must refuse is mapped too.
pub fn maxmind_db(path: &Path, database_type: &str, city: &str) {
    let mut w = Writer::new(database_type);
    let grenoble = json!({
        "city": {"geoname_id": 3014728, "names": {"en": city, "fr": city}},
        "continent": {"code": "EU", "names": {"en": "Europe"}},
        "country": {"iso_code": "FR", "names": {"en": "France"}},
        "location": {"latitude": 45.1842, "longitude": 5.7245, "accuracy_radius": 20, "time_zone": "Europe/Paris"},
    });
    insert(&mut w, "152.77.0.0/16", &grenoble);
    insert(&mut w, "2a01:4f8::/32", &json!({"country": {"iso_code": "DE", "names": {"en": "Germany"}}}));
    for reserved in
        ["10.0.0.0/8", "127.0.0.0/8", "192.168.0.0/16", "192.0.2.0/24", "2001:db8::/32", "fd00::/8", "fe80::/10"]
    {
        insert(&mut w, reserved, &grenoble);
    }
    std::fs::write(path, w.to_bytes().expect("serialise test mmdb")).expect("write test mmdb");
}

/// An ip-location-db style flat database (longitude stored as text, as
/// some exports do).
pub fn flat_db(path: &Path) {
    let mut w = Writer::new("ip-location-db-city");
    let rec = json!({"country_code": "FR", "state1": "Auvergne-Rhone-Alpes", "city": "Grenoble",
                     "latitude": 45.1842, "longitude": "5.7245", "timezone": "Europe/Paris"});
    insert(&mut w, "152.77.0.0/16", &rec);
    std::fs::write(path, w.to_bytes().expect("serialise test mmdb")).expect("write test mmdb");
}

fn insert(w: &mut Writer, net: &str, value: &serde_json::Value) {
    w.insert(net.parse::<IpNet>().expect("network"), value).expect("insert");
}
