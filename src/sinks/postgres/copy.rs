//! The binary COPY encoder of the raw rows.

use std::net::IpAddr;

use ::postgres::{GenericClient, Statement, ToStatement};

use crate::model::{Event, Login, Origin, Transfer};

/// Unix µs of PostgreSQL's epoch, 2000-01-01 00:00 UTC.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// Rows in PostgreSQL's binary COPY format, encoded straight into a
/// buffer that is sent in writes of [`CopyBuf::FLUSH_AT`] bytes
/// (tokio-postgres' `BinaryCopyInWriter` costs a blocking round through the
/// driver's runtime per row, which was 40 % of the store thread's time).
pub(super) struct CopyBuf {
    buf: Vec<u8>,
}

impl CopyBuf {
    /// Small enough that the server parses the first rows while the next
    /// are encoded (a part's transfers are ~1.2 MB: sent in one piece, the
    /// server waited for all of them), large enough that the driver's
    /// round per write is nothing.
    const FLUSH_AT: usize = 64 << 10;

    fn new() -> CopyBuf {
        let mut buf = Vec::with_capacity(Self::FLUSH_AT + 4096);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        CopyBuf { buf }
    }
    pub(super) fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }
    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }
    pub(super) fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.i64(v),
            None => self.null(),
        }
    }
    /// A `date` given as days since 1970-01-01.
    pub(super) fn date(&mut self, days: i64) {
        self.buf.extend_from_slice(&4i32.to_be_bytes());
        self.buf.extend_from_slice(&((days - PG_EPOCH_US / 86_400_000_000) as i32).to_be_bytes());
    }
    pub(super) fn ts(&mut self, us: i64) {
        self.i64(us - PG_EPOCH_US);
    }
    fn f64(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.i64(v.to_bits() as i64),
            None => self.null(),
        }
    }
    pub(super) fn text(&mut self, v: &str) {
        self.buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(v.as_bytes());
    }
    fn opt_text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }
    fn inet(&mut self, ip: Option<IpAddr>, prefix: Option<u8>) {
        match ip {
            None => self.null(),
            Some(IpAddr::V4(a)) => {
                self.buf.extend_from_slice(&8i32.to_be_bytes());
                self.buf.extend_from_slice(&[2, prefix.unwrap_or(32).min(32), 0, 4]);
                self.buf.extend_from_slice(&a.octets());
            }
            Some(IpAddr::V6(a)) => {
                self.buf.extend_from_slice(&20i32.to_be_bytes());
                self.buf.extend_from_slice(&[3, prefix.unwrap_or(128).min(128), 0, 16]);
                self.buf.extend_from_slice(&a.octets());
            }
        }
    }
    /// Sends the buffer once it holds [`CopyBuf::FLUSH_AT`] bytes.
    pub(super) fn flush_if_full(&mut self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        if self.buf.len() >= Self::FLUSH_AT {
            self.send(w)?;
        }
        Ok(())
    }
    /// Hands the buffer to the driver, which sends what it was given
    /// before (the driver's writer keeps one piece back until its next
    /// write or flush).
    fn send(&mut self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        w.write_all(&self.buf)?;
        w.flush()?;
        self.buf.clear();
        Ok(())
    }
    /// Sends the rest of the rows, then the two-byte trailer on its own:
    /// the driver puts the rows on the wire when it takes the trailer, so
    /// that only the trailer is held back while the caller works on.
    fn finish(mut self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        self.send(w)?;
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.send(w)
    }
}

/// Why a COPY failed: the server's error when there is one (a unique
/// violation must stay recognisable), else the I/O error.
fn copy_error(e: std::io::Error) -> CopyError {
    match e.into_inner().map(|inner| inner.downcast::<::postgres::Error>()) {
        Some(Ok(pg)) => CopyError::Pg(*pg),
        Some(Err(_)) | None => CopyError::Io,
    }
}

enum CopyError {
    Pg(::postgres::Error),
    Io,
}

/// The COPY statements of the raw tables, prepared once per connection:
/// a part's COPYs then start in one round trip to the server instead of
/// two (the text is not parsed again for each of a run's ~80 COPYs). A
/// prepared COPY names its table, not its partitions: the server looks
/// them up as it runs it, so partitions created later are found.
pub(super) struct RawCopy {
    /// Into `transfers`, then into `logins`.
    pub(super) statements: [Statement; 2],
}

impl RawCopy {
    /// The statement text of the binary COPY into `table`.
    pub(super) fn sql(table: &str) -> String {
        format!("COPY {table} FROM STDIN (FORMAT binary)")
    }

    pub(super) fn prepare(client: &mut impl GenericClient) -> Result<RawCopy, ::postgres::Error> {
        Ok(RawCopy { statements: [client.prepare(&Self::sql("transfers"))?, client.prepare(&Self::sql("logins"))?] })
    }
}

/// COPYs the batch's transfers (or, with `logins`, its logins) with
/// `copy`, a binary `COPY … FROM STDIN` into the raw table or the stage
/// (fixed text, never log text; or that statement prepared, see
/// [`RawCopy`]), each row with `input`, the ledger fingerprint of the input
/// it came from. `during` runs once the rows are sent, while the server is
/// still storing them (see [`copy_rows_during`]).
pub(super) fn copy_events<T: ?Sized + ToStatement>(
    tx: &mut impl GenericClient,
    copy: &T,
    events: &[Event],
    input: Option<u64>,
    logins: bool,
    during: impl FnOnce(),
) -> Result<u64, ::postgres::Error> {
    let input = input.map(|f| f as i64);
    copy_rows_during(tx, copy, during, |b, w| {
        for ev in events {
            match ev {
                Event::Transfer(t) if !logins => encode_transfer(b, t, input),
                Event::Login(l) if logins => encode_login(b, l, input),
                _ => continue,
            }
            b.flush_if_full(w)?;
        }
        Ok(())
    })
}

/// Runs the binary `COPY … FROM STDIN` statement `sql` with the rows
/// `encode` writes (flushing full buffers to the writer it is given).
pub(super) fn copy_rows(
    tx: &mut impl GenericClient,
    sql: &str,
    encode: impl FnOnce(&mut CopyBuf, &mut ::postgres::CopyInWriter<'_>) -> std::io::Result<()>,
) -> Result<u64, ::postgres::Error> {
    copy_rows_during(tx, sql, || (), encode)
}

/// [`copy_rows`] that runs `during` after the rows are sent and before it
/// waits for the server's answer: client work done while the server stores
/// the rows instead of before or after (the server takes longer over them
/// than the client over encoding them). `during` runs unless the sending
/// failed.
pub(super) fn copy_rows_during<T: ?Sized + ToStatement>(
    tx: &mut impl GenericClient,
    sql: &T,
    during: impl FnOnce(),
    encode: impl FnOnce(&mut CopyBuf, &mut ::postgres::CopyInWriter<'_>) -> std::io::Result<()>,
) -> Result<u64, ::postgres::Error> {
    let mut w = tx.copy_in(sql)?;
    let mut b = CopyBuf::new();
    let written = encode(&mut b, &mut w).and_then(|()| b.finish(&mut w));
    match written.map_err(copy_error) {
        Ok(()) => {
            during();
            w.finish()
        }
        Err(CopyError::Pg(e)) => Err(e),
        // An I/O error that is not the server's: finishing reports the
        // server side of it (the COPY is aborted either way).
        Err(CopyError::Io) => w.finish(),
    }
}

fn encode_transfer(b: &mut CopyBuf, t: &Transfer, input: Option<i64>) {
    let o = t.origin.as_deref();
    b.row(25);
    b.ts(t.end);
    b.i64(t.id as i64);
    match t.start {
        Some(s) => b.ts(s),
        None => b.null(),
    }
    b.text(t.protocol.as_str());
    b.text(t.direction.as_str());
    b.text(t.status.as_str());
    b.i64(t.bytes as i64);
    b.opt_i64(t.wire_bytes.map(|v| v as i64));
    b.opt_i64(t.file_size.map(|v| v as i64));
    b.opt_text(t.path.as_deref());
    b.opt_text(t.module.as_deref());
    b.text(&t.user);
    b.inet(t.client_ip, o.and_then(|o| o.ip_prefix));
    b.opt_text(t.client_host.as_deref());
    b.opt_text(t.session.as_deref());
    b.text(&t.server_host);
    b.text(t.source.as_str());
    b.text(if t.granularity == crate::model::Granularity::File { "file" } else { "session" });
    encode_origin(b, o);
    b.opt_i64(input);
}

/// The enrichment columns, last in both raw tables.
fn encode_origin(b: &mut CopyBuf, o: Option<&Origin>) {
    b.opt_text(o.and_then(|o| o.country.as_deref()));
    b.opt_text(o.and_then(|o| o.city.as_deref()));
    b.f64(o.and_then(|o| o.latitude));
    b.f64(o.and_then(|o| o.longitude));
    b.opt_text(o.and_then(|o| o.geohash.as_deref()));
    b.opt_text(o.and_then(|o| o.client_hash.as_deref()));
}

fn encode_login(b: &mut CopyBuf, l: &Login, input: Option<i64>) {
    let o = l.origin.as_deref();
    b.row(18);
    b.ts(l.time);
    b.i64(l.id as i64);
    b.text(l.protocol.as_str());
    b.text(&l.user);
    b.inet(l.client_ip, o.and_then(|o| o.ip_prefix));
    b.opt_text(l.client_host.as_deref());
    b.text(l.outcome.as_str());
    b.opt_text(l.method.as_deref());
    b.opt_text(l.session.as_deref());
    b.text(&l.server_host);
    b.text(l.source.as_str());
    encode_origin(b, o);
    b.opt_i64(input);
}
