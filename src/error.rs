//! Typed errors of the library. Each names what failed (the flag, the file,
//! the database) so the binary can print it as is; the binary alone adds
//! `anyhow` context on top.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// A configuration value that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// `--timezone` is neither UTC, an offset nor an IANA zone name.
    #[error("--timezone '{0}': not UTC, an offset like +02:00 or an IANA zone like Europe/Paris")]
    TimeZone(String),
    /// `--rsync-log-format` could not be compiled.
    #[error("--rsync-log-format '{format}': {reason}")]
    LogFormat {
        /// The format string as given.
        format: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--proftpd-log-format` could not be compiled.
    #[error("--proftpd-log-format '{format}': {reason}")]
    ProftpdLogFormat {
        /// The format string as given.
        format: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--db-mode` is not a usable octal mode.
    #[error("--db-mode '{value}': {reason}")]
    DbMode {
        /// The mode as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--db` names a store this build does not know.
    #[error("--db '{0}': unknown store (expected {})", crate::sinks::scheme_forms())]
    Store(String),
    /// A PostgreSQL connection string that does not parse (the string itself
    /// is not repeated: it may hold a password).
    #[error("--db {scheme}://…: invalid PostgreSQL connection URL: {reason}")]
    PostgresUrl {
        /// `postgres` or `postgresql`.
        scheme: String,
        /// Why.
        reason: String,
    },
    /// A bad InfluxDB URL or `INFLUX*` variable.
    #[error("--db influxdb: {0}")]
    InfluxUrl(String),
    /// A date option could not be read.
    #[error("{flag} '{value}': expected a date YYYY-MM-DD")]
    Date {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
    },
    /// A report day (`--since`, `--until`, `--day`) could not be read.
    #[error("{flag} '{value}': expected a day YYYY-MM-DD, today, yesterday or -Nd (N days ago)")]
    ReportDay {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
    },
    /// `--since` is after `--until`: the period holds no day.
    #[error("--since {since} is after --until {until}: the period holds no day (swap them?)")]
    ReversedRange {
        /// `--since` as a day.
        since: String,
        /// `--until` as a day.
        until: String,
    },
    /// `--by` names an unknown key.
    #[error("--by '{0}': unknown key (expected day, month, user, protocol, direction, host, module, client, status, country, city, cell, file)")]
    ReportKey(String),
    /// `--by` with `--format html` (the page has its own drill-down).
    #[error(
        "--by does not apply to --format html: the page groups by day, user, host, module, protocol and country itself"
    )]
    HtmlBy,
    /// A duration like `10m` could not be read.
    #[error("{flag} '{value}': expected a number of seconds, minutes, hours or days like 90s, 10m, 1h, 2d")]
    Duration {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// An age like `30d` could not be read.
    #[error("{flag} '{value}': expected a number of hours, days or weeks like 36h, 30d, 8w")]
    Age {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
    },
    /// A mail address with control characters (or empty).
    #[error("{flag} '{value}': not a mail address")]
    MailAddress {
        /// The flag.
        flag: &'static str,
        /// The value given (sanitised).
        value: String,
    },
    /// A webhook URL that is not http(s)://host/….
    #[error("--send {0}: expected an http:// or https:// URL")]
    WebhookUrl(String),
    /// `--format NAME` names an unknown log format.
    #[error("--format '{0}': unknown log format (see `xferstats formats`)")]
    Format(String),
}

/// An input that could not be read.
#[derive(Debug, Error)]
pub enum InputError {
    /// Opening failed (missing, permission denied, a directory, …).
    #[error("{path}: cannot open: {source}")]
    Open {
        /// The input.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Reading or decompressing failed part-way.
    #[error("{path}: read error after {offset} bytes: {source}")]
    Read {
        /// The input.
        path: PathBuf,
        /// Decompressed bytes read before the error.
        offset: u64,
        /// The underlying error (truncated .gz/.zst show up here).
        source: io::Error,
    },
    /// Setting up change notification or signal handling for `follow`
    /// failed (inotify limits, …).
    #[error("cannot watch for changes: {source}")]
    Watch {
        /// The OS error.
        source: io::Error,
    },
}

/// A store (database) operation failed; nothing of the current batch was
/// committed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite reported an error while doing `what`.
    #[error("sqlite {path}: {what}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The operation.
        what: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// PostgreSQL reported an error (or the connection failed) while doing
    /// `what`. `target` never holds the password.
    #[error("postgres {target}: {what}: {source}")]
    Postgres {
        /// `postgres://user@host:port/db`.
        target: String,
        /// The operation.
        what: &'static str,
        /// The driver's error.
        source: postgres::Error,
    },
    /// A database written by a newer xferstats (PostgreSQL).
    #[error(
        "{target}: schema version {found} is newer than this xferstats understands ({supported}); upgrade xferstats"
    )]
    NewerPgSchema {
        /// The database.
        target: String,
        /// Version in the database.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
    /// A maintenance request that would lose data.
    #[error("{0}")]
    Refused(String),
    /// An SQLite database (or InfluxDB state file) written by a newer
    /// xferstats.
    #[error(
        "{path}: schema version {found} is newer than this xferstats understands ({supported}); upgrade xferstats"
    )]
    NewerSchema {
        /// The database.
        path: PathBuf,
        /// Version in the database.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
    /// Creating the database directory failed.
    #[error("{path}: cannot create database directory: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Creating the database file failed.
    #[error("{path}: cannot create database file: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The database file cannot be read (permissions).
    #[error("{path}: cannot read the database: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A database opened read-only needs migrations only a writer can apply.
    #[error(
        "{path}: schema version {found}, this xferstats needs {supported}; run `xferstats db migrate` (or an \
         ingest) once as a user who can write the database"
    )]
    OlderSchema {
        /// The database.
        path: PathBuf,
        /// Version in the database.
        found: i64,
        /// Version this binary needs.
        supported: i64,
    },
    /// InfluxDB refused a write, or could not be reached after the retries.
    #[error("{target}: {what}: {reason}")]
    Influx {
        /// The server, as `influxdb://user@host:port/db` (no secrets).
        target: String,
        /// The operation.
        what: &'static str,
        /// The server's message or the transport error.
        reason: String,
    },
    /// The store's event ids were keyed with another host key: importing
    /// under this one would count every event again.
    #[error(
        "{store}: its event ids were written under another host key (XFERSTATS_HOST_KEY or host.key in the state \
         directory changed); importing with this key would count every event again: restore the old key, or \
         import into a new store"
    )]
    HostKeyChanged {
        /// The store, as [`crate::sinks::Sink::describe`] names it.
        store: String,
    },
    /// The store's event ids follow a scheme this binary does not know.
    #[error("{store}: event ids of unknown scheme '{scheme}' (written by a newer xferstats?); upgrade xferstats")]
    IdScheme {
        /// The store.
        store: String,
        /// `store_meta.id_scheme`.
        scheme: String,
    },
    /// Writing the event stream failed (a reader that went away, a broken
    /// pipe, is not an error: see [`exit_code_of`]).
    #[error("writing events to {target}: {source}")]
    Write {
        /// Where the events went (`standard output`).
        target: String,
        /// The OS error.
        source: io::Error,
    },
    /// Session state stored by an earlier run could not be decoded.
    #[error("stored session state for '{scope}' is unreadable: {reason}")]
    State {
        /// The state's scope.
        scope: String,
        /// Why.
        reason: String,
    },
}

/// The enrichment stage could not be set up. These are configuration
/// problems: each names the flag, variable or file.
#[derive(Debug, Error)]
pub enum EnrichError {
    /// The GeoIP database cannot be opened or is not a MaxMind DB.
    #[error("--geoip {path}: {reason}")]
    GeoIp {
        /// The database file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `--geohash-precision` out of range.
    #[error("--geohash-precision {0}: expected 1 to 12")]
    GeohashPrecision(u8),
    /// The host key is shorter than allowed (the key itself is never shown).
    #[error("{source_name}: host key too short (at least 16 characters)")]
    KeyTooShort {
        /// `XFERSTATS_HOST_KEY` or the key file.
        source_name: String,
    },
    /// Reading or creating the host key file failed.
    #[error("{path}: cannot {what} the host key: {source}")]
    Key {
        /// The file or directory.
        path: PathBuf,
        /// `read` or `create`.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// A digest that could not be delivered.
#[derive(Debug, Error)]
pub enum DeliveryError {
    /// The webhook receiver could not be reached (`url` without its path:
    /// the credentials of a Slack-style hook).
    #[error("posting the digest to {url}: {reason}")]
    Webhook {
        /// The receiver, without path and query.
        url: String,
        /// Why.
        reason: String,
    },
    /// The receiver answered other than 2xx.
    #[error("posting the digest to {url}: HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Refused {
        /// The receiver, without path and query.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of its answer (sanitised).
        body: String,
    },
    /// `sendmail` could not be run or failed.
    #[error("mailing the digest through {program}: {reason}", program = program.display())]
    Sendmail {
        /// The program.
        program: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Any error the library returns.
#[derive(Debug, Error)]
pub enum Error {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An unreadable input.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Enrichment could not be set up.
    #[error(transparent)]
    Enrich(#[from] EnrichError),
    /// Writing the report to stdout failed.
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
}

impl Error {
    /// The documented process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => ConfigError::EXIT_CODE,
            Error::Input(_) => InputError::EXIT_CODE,
            Error::Store(_) => StoreError::EXIT_CODE,
            Error::Enrich(_) => EnrichError::EXIT_CODE,
            Error::Output(_) => OUTPUT_EXIT_CODE,
        }
    }
}

// The exit-code table: one code per error type (the codes are documented
// at their constants in the crate root).
impl ConfigError {
    /// Exit code of a bad configuration.
    pub const EXIT_CODE: u8 = crate::EXIT_USAGE;
}
impl EnrichError {
    /// Exit code of an enrichment set-up failure (a configuration problem).
    pub const EXIT_CODE: u8 = crate::EXIT_USAGE;
}
impl InputError {
    /// Exit code of an unreadable input.
    pub const EXIT_CODE: u8 = crate::EXIT_INPUT;
}
impl StoreError {
    /// Exit code of a store failure.
    pub const EXIT_CODE: u8 = crate::EXIT_STORE;
}
impl DeliveryError {
    /// Exit code of a failed delivery.
    pub const EXIT_CODE: u8 = crate::EXIT_DELIVERY;
}
/// Exit code of a failed write of the report.
const OUTPUT_EXIT_CODE: u8 = crate::EXIT_INPUT;

/// The exit code of the first library error in the chain that starts at
/// `e` (an [`enum@Error`] or one of the typed errors it wraps), or `None` when
/// the chain holds none. A reader that went away (`xferstats report |
/// head`: a broken pipe anywhere in the chain) is not an error:
/// [`crate::EXIT_OK`].
pub fn exit_code_of(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    let chain = || std::iter::successors(Some(e), |c| c.source());
    // `Error::Output` has its `io::Error` as source: the chain holds it.
    if chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)) {
        return Some(crate::EXIT_OK);
    }
    chain().find_map(|c| {
        if let Some(x) = c.downcast_ref::<Error>() {
            Some(x.exit_code())
        } else if c.is::<ConfigError>() {
            Some(ConfigError::EXIT_CODE)
        } else if c.is::<EnrichError>() {
            Some(EnrichError::EXIT_CODE)
        } else if c.is::<StoreError>() {
            Some(StoreError::EXIT_CODE)
        } else if c.is::<InputError>() {
            Some(InputError::EXIT_CODE)
        } else if c.is::<DeliveryError>() {
            Some(DeliveryError::EXIT_CODE)
        } else {
            None
        }
    })
}

/// What to check when a server did not answer in time.
pub const TIMEOUT_CHECK: &str = "check that the host is reachable: network, firewall";

/// What to check when `e` (or one of its causes) is a failed connection to
/// a database server: added once to the error line by the binary.
pub fn what_to_check(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let chain = || std::iter::successors(Some(e), |c| c.source());
    let text = chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ");
    if text.contains("password authentication failed") {
        return Some("check the user and password (in --db, or PGPASSWORD / ~/.pgpass)");
    }
    if text.contains("failed to lookup address") || text.contains("Name or service not known") {
        return Some("check the host name in --db");
    }
    chain().find_map(|c| {
        let io = c.downcast_ref::<io::Error>()?;
        match io.kind() {
            io::ErrorKind::ConnectionRefused => {
                Some("check that the server runs and listens on the host and port of --db")
            }
            io::ErrorKind::TimedOut | io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                Some(TIMEOUT_CHECK)
            }
            _ => None,
        }
    })
}

/// `e` and its causes as one line, `a: b: c`, each cause said once.
///
/// The library's errors name their OS or driver cause in their own text
/// *and* return it as `source()` (so a caller printing only the top error
/// loses nothing), and drivers do the same with theirs. Printing every
/// link of the chain would repeat a cause — `Not a directory (os error
/// 20): Not a directory (os error 20)` — so a cause whose text the line
/// already ends with is left out.
pub fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    for cause in std::iter::successors(e.source(), |c| c.source()) {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_text_already_ends_with_is_said_once() {
        let dir = StoreError::Dir { path: "/x".into(), source: io::Error::other("/x is a file") };
        assert_eq!(dir.to_string(), "/x: cannot create database directory: /x is a file");
        assert_eq!(chain_text(&dir), "/x: cannot create database directory: /x is a file");
        let out = Error::Output(io::Error::other("disk full"));
        assert_eq!(chain_text(&out), "writing output: disk full");
        // A cause its owner does not quote (context) is printed after it.
        let context = anyhow::Error::new(io::Error::other("disk full")).context("writing the report");
        assert_eq!(chain_text(context.as_ref()), "writing the report: disk full");
        let wrapped = anyhow::Error::new(dir).context("opening the store");
        assert_eq!(
            chain_text(wrapped.as_ref()),
            "opening the store: /x: cannot create database directory: /x is a file"
        );
    }

    #[test]
    fn exit_codes_follow_the_first_library_error_of_the_chain() {
        let code = |e: &(dyn std::error::Error + 'static)| exit_code_of(e);
        assert_eq!(code(&ConfigError::ReportKey("x".into())), Some(crate::EXIT_USAGE));
        assert_eq!(code(&EnrichError::GeohashPrecision(13)), Some(crate::EXIT_USAGE));
        assert_eq!(code(&StoreError::Refused("no".into())), Some(crate::EXIT_STORE));
        let open = InputError::Open { path: "f".into(), source: io::Error::other("x") };
        assert_eq!(code(&Error::from(open)), Some(crate::EXIT_INPUT));
        assert_eq!(code(&io::Error::other("plain")), None);
        // A broken pipe anywhere in the chain, wrapped or not, is success.
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert_eq!(code(&Error::Output(pipe())), Some(crate::EXIT_OK));
        assert_eq!(code(&pipe()), Some(crate::EXIT_OK));
        assert_eq!(code(&Error::Output(io::Error::other("disk full"))), Some(crate::EXIT_INPUT));
    }
}
