//! InfluxDB line protocol: escaping, the point layout of xferstats'
//! measurements, and collision-free timestamps.
//!
//! Only bounded values are tags (server host, protocol, direction, status,
//! module, country): every distinct tag set is a series, and unbounded tags
//! (client hashes, paths, users, sessions) blow up series cardinality.
//!
//! InfluxDB keys a point by measurement + tag set + timestamp and lets a
//! later write with the same key overwrite the fields. Log times have one
//! second resolution, so two transfers of one series in the same second
//! would silently overwrite each other. Each raw point therefore gets a
//! deterministic sub-second offset derived from its event id: a re-import
//! writes the very same points again (idempotent) and distinct events never
//! share a timestamp in practice (a collision needs two events of one series
//! in one second whose ids agree modulo 10^9).

use std::fmt::Write;

use crate::model::{client_key, Login, Origin, Transfer};

/// Appends a measurement name (commas and spaces escaped).
pub fn measurement(out: &mut String, s: &str) {
    escape(out, s, &[',', ' ']);
}

/// Appends a tag key, tag value or field key (commas, `=` and spaces
/// escaped; newlines, which line protocol cannot carry, become spaces).
pub fn key(out: &mut String, s: &str) {
    escape(out, s, &[',', '=', ' ']);
}

/// Appends a string field value, quoted (`"` and `\` escaped).
pub fn string_value(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn escape(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        if c == '\n' || c == '\r' {
            out.push(' ');
            continue;
        }
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The timestamp of a raw point, in nanoseconds: the event time, plus, for
/// a time on a whole second (most logs), `event_id mod 10^9` ns; for a time
/// with sub-second digits, `event_id mod 1000` ns on top of its µs.
pub fn point_time_ns(time_us: i64, event_id: u64) -> i64 {
    if time_us.rem_euclid(1_000_000) == 0 {
        time_us * 1000 + (event_id % 1_000_000_000) as i64
    } else {
        time_us * 1000 + (event_id % 1000) as i64
    }
}

/// Writes tags in key order (as InfluxDB recommends); empty values are
/// left out (line protocol has no empty tag values).
fn tags(out: &mut String, tags: &mut [(&str, &str)]) {
    tags.sort_unstable_by_key(|t| t.0);
    for (k, v) in tags.iter() {
        if v.is_empty() {
            continue;
        }
        out.push(',');
        key(out, k);
        out.push('=');
        key(out, v);
    }
}

/// Field writer: the first field has no leading comma.
struct Fields<'a> {
    out: &'a mut String,
    first: bool,
}

impl Fields<'_> {
    fn sep(&mut self) {
        self.out.push(if self.first { ' ' } else { ',' });
        self.first = false;
    }
    fn int(&mut self, k: &str, v: i64) {
        self.sep();
        key(self.out, k);
        let _ = write!(self.out, "={v}i");
    }
    fn float(&mut self, k: &str, v: f64) {
        if v.is_finite() {
            self.sep();
            key(self.out, k);
            let _ = write!(self.out, "={v}");
        }
    }
    fn string(&mut self, k: &str, v: &str) {
        self.sep();
        key(self.out, k);
        self.out.push('=');
        string_value(self.out, v);
    }
    fn opt_string(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.string(k, v);
        }
    }
    /// `event_id` as 16 hex digits (written in place: no allocation).
    fn event_id(&mut self, id: u64) {
        self.sep();
        let _ = write!(self.out, "event_id=\"{id:016x}\"");
    }
    /// `client` (as the stores count it: see `model::client_key`), `city`
    /// and `geohash`, when known.
    fn client_and_place(&mut self, ip: Option<std::net::IpAddr>, host: Option<&str>, o: Option<&Origin>) {
        let client = client_key(ip, o.and_then(|o| o.ip_prefix), o.and_then(|o| o.client_hash.as_deref()), host);
        self.opt_string("client", client.as_deref());
        self.opt_string("city", o.and_then(|o| o.city.as_deref()));
        self.opt_string("geohash", o.and_then(|o| o.geohash.as_deref()));
    }
}

/// Appends the `xfer` point of a transfer (with its newline).
pub fn transfer(out: &mut String, t: &Transfer) {
    let o = t.origin.as_deref();
    measurement(out, "xfer");
    tags(
        out,
        &mut [
            ("host", &t.server_host),
            ("proto", t.protocol.as_str()),
            ("dir", t.direction.as_str()),
            ("status", t.status.as_str()),
            ("module", t.module.as_deref().unwrap_or("")),
            ("country", o.and_then(|o| o.country.as_deref()).unwrap_or("")),
        ],
    );
    let mut f = Fields { out, first: true };
    f.int("bytes", t.bytes as i64);
    if let Some(s) = t.start {
        f.int("dur_ms", (t.end - s).max(0) / 1000);
    }
    if let Some(w) = t.wire_bytes {
        f.int("wire_bytes", w as i64);
    }
    if let Some(s) = t.file_size {
        f.int("file_size", s as i64);
    }
    f.string("user", &t.user);
    f.opt_string("path", t.path.as_deref());
    f.opt_string("session", t.session.as_deref());
    f.client_and_place(t.client_ip, t.client_host.as_deref(), o);
    if let Some(lat) = o.and_then(|o| o.latitude) {
        f.float("lat", lat);
    }
    if let Some(lon) = o.and_then(|o| o.longitude) {
        f.float("lon", lon);
    }
    f.event_id(t.id);
    let _ = writeln!(out, " {}", point_time_ns(t.end, t.id));
}

/// Appends the `login` point of a login attempt (with its newline).
pub fn login(out: &mut String, l: &Login) {
    let o = l.origin.as_deref();
    measurement(out, "login");
    tags(
        out,
        &mut [
            ("host", &l.server_host),
            ("proto", l.protocol.as_str()),
            ("outcome", l.outcome.as_str()),
            ("country", o.and_then(|o| o.country.as_deref()).unwrap_or("")),
        ],
    );
    let mut f = Fields { out, first: true };
    f.int("attempts", 1);
    f.string("user", &l.user);
    f.opt_string("method", l.method.as_deref());
    f.opt_string("session", l.session.as_deref());
    f.client_and_place(l.client_ip, l.client_host.as_deref(), o);
    f.event_id(l.id);
    let _ = writeln!(out, " {}", point_time_ns(l.time, l.id));
}

/// Appends a daily point (`xfer_daily`, `login_daily`; timestamp in
/// seconds): its tags (empty ones left out) and integer fields.
pub fn daily(out: &mut String, name: &str, day: i64, tags_: &mut [(&str, &str)], fields: &[(&str, i64)]) {
    measurement(out, name);
    tags(out, tags_);
    let mut f = Fields { out, first: true };
    for (k, v) in fields {
        f.int(k, *v);
    }
    let _ = writeln!(out, " {day}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Direction, Granularity, Origin, Protocol, Status};
    use std::sync::Arc;

    fn t(module: &str, path: &str, user: &str) -> Transfer {
        Transfer {
            id: 0x1234_5678_9abc_def0,
            end: 1_772_359_202_000_000,
            start: Some(1_772_359_200_500_000),
            protocol: Protocol::Rsync,
            direction: Direction::Download,
            status: Status::Completed,
            bytes: 1200,
            wire_bytes: None,
            file_size: Some(1200),
            path: Some(path.into()),
            module: Some(module.into()),
            user: user.into(),
            client_ip: None,
            client_host: None,
            session: Some("101@1772359201".into()),
            server_host: "mirror 1".into(),
            source: crate::formats::Format::Rsyncd.source(),
            granularity: Granularity::File,
            origin: Some(Arc::new(Origin {
                country: Some("FR".into()),
                city: Some("Saint-Martin-d'Hères".into()),
                geohash: Some("u0h0f".into()),
                client_hash: Some("S3EtzA_cTR15fWNMLq-a0g".into()),
                latitude: Some(45.1733),
                longitude: Some(5.7238),
                ip_prefix: None,
            })),
        }
    }

    #[test]
    fn escaping_of_tags_and_fields() {
        let mut s = String::new();
        transfer(&mut s, &t("pub,a=b c", "iso/my \"disk\", v2=x\\.iso", "a b"));
        let ts = point_time_ns(1_772_359_202_000_000, 0x1234_5678_9abc_def0);
        let expected = format!(
            "xfer,country=FR,dir=download,host=mirror\\ 1,module=pub\\,a\\=b\\ c,proto=rsync,status=completed \
             bytes=1200i,dur_ms=1500i,file_size=1200i,user=\"a b\",path=\"iso/my \\\"disk\\\", v2=x\\\\.iso\",\
             session=\"101@1772359201\",client=\"S3EtzA_cTR15fWNMLq-a0g\",city=\"Saint-Martin-d'Hères\",\
             geohash=\"u0h0f\",lat=45.1733,lon=5.7238,event_id=\"123456789abcdef0\" {ts}\n"
        );
        assert_eq!(s, expected);
    }

    #[test]
    fn timestamps_never_collide_for_distinct_ids_in_one_second() {
        let a = point_time_ns(1_772_359_202_000_000, 1);
        let b = point_time_ns(1_772_359_202_000_000, 2);
        assert_ne!(a, b);
        assert_eq!(a / 1_000_000_000, 1_772_359_202);
        assert_eq!(point_time_ns(1_772_359_202_000_000, 1), a, "deterministic");
        // Sub-second times keep their µs.
        assert_eq!(point_time_ns(1_772_359_202_123_456, 5), 1_772_359_202_123_456_005);
    }
}
