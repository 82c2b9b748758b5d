//! The `xferstats` command: parses arguments into validated options and
//! calls the library. Nothing else lives here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use xferstats::config::{default_dir, local_hostname, StoreSpec, DB_ENV, STATE_DIR_ENV};
use xferstats::enrich::hostkey::{HostKey, KEY_ENV};
use xferstats::enrich::{EnrichOptions, Enricher, GeoipChoice, IpMode, DEFAULT_GEOHASH_PRECISION};
use xferstats::filemode::DbMode;
use xferstats::formats::proftpd_extended::{ExtendedFormat, DEFAULT_FORMAT as DEFAULT_PROFTPD_FORMAT};
use xferstats::formats::rsync::{LogFormat, DEFAULT_LOG_FORMAT};
use xferstats::formats::Format;
use xferstats::ingest::{ingest, IngestOptions, NoProgress, Progress};
use xferstats::input::Source;
use xferstats::report::{OutputFormat, ReportOptions};
use xferstats::sinks::{Access, Backend, Key};
use xferstats::time::{parse_day, Plausible, TimeZone};

/// Turns file-transfer logs (rsync daemon, …) into exact daily statistics.
///
/// Events land in an embedded SQLite database (default xferstats.db in the
/// state directory). Re-importing a file, its rotated or compressed copy,
/// adds nothing; a grown file adds only its new lines.
#[derive(Debug, Parser)]
#[command(name = "xferstats", version, max_term_width = 100)]
struct Cli {
    /// Store to use: `sqlite:PATH` or a file path (default: xferstats.db in
    /// the state directory); `postgres://user:password@host:port/dbname`
    /// (libpq URL; `postgresql://` too), or `postgres:` to take the libpq
    /// PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE variables;
    /// `influxdb://user@host:8086/db?rp=raw&daily_rp=daily` (InfluxDB 1.x) or
    /// `influxdb2://host:8086/ORG/BUCKET?daily_bucket=B` (2.x/3.x, token in
    /// INFLUX_TOKEN); `influxdb:` / `influxdb2:` take INFLUXDB_HOST, _PORT,
    /// _USER, _PASS, _DB, _SSL, _VERIFY_SSL / INFLUX_URL, _ORG, _TOKEN,
    /// _BUCKET. InfluxDB keeps its ledger in a local state file in the
    /// state directory.
    #[arg(long, global = true, env = DB_ENV, hide_env_values = true, value_name = "URL")]
    db: Option<String>,

    /// State directory: the default database and the generated host key
    /// (host.key). Default: /var/lib/xferstats for root, else
    /// ~/.local/share/xferstats.
    #[arg(long, global = true, env = STATE_DIR_ENV, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Mode of new database files (SQLite, InfluxDB state files, with
    /// their -wal/-shm/-journal files), octal like 0640; directories
    /// xferstats creates get it plus the search bits (0750). Applied
    /// exactly. Default: 0600 and 0700, less if the umask is stricter.
    /// Existing files keep their mode.
    #[arg(long, global = true, value_name = "MODE", value_parser = db_mode_arg)]
    db_mode: Option<DbMode>,

    /// More output: -v lists every input with its detected format, -vv adds
    /// debug messages.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Print nothing but errors (no summary, no progress bar).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read transfer logs into the store (files, rotated/compressed copies,
    /// or - for stdin).
    Ingest(IngestArgs),
    /// Print statistics from the store.
    Report(ReportArgs),
    /// List the log formats xferstats reads.
    Formats,
    /// Database maintenance.
    #[command(subcommand)]
    Db(DbCommand),
    /// Remove old raw events; the daily rollups (and reports by day, user,
    /// host, …) stay. PostgreSQL drops whole month partitions that end
    /// before the cut; SQLite deletes the rows.
    Prune(PruneArgs),
    /// Recompute the daily rollups from the raw events still stored.
    Rollup(RollupArgs),
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Create the schema or apply pending migrations, then print the schema
    /// version (ingest does this too).
    Migrate,
}

#[derive(Debug, Args)]
struct PruneArgs {
    /// Age of the raw events to remove: N days (`30d`), weeks (`8w`) or
    /// hours (`36h`).
    #[arg(long, value_name = "AGE")]
    raw_older_than: String,
}

#[derive(Debug, Args)]
struct RollupArgs {
    /// Rebuild the rollups (the only action so far).
    #[arg(long, required = true)]
    rebuild: bool,

    /// First UTC day to rebuild (YYYY-MM-DD); refused if raw events of
    /// those days were pruned.
    #[arg(long, value_name = "DATE")]
    since: String,
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// Log files to read (.gz and .zst are recognised by content); `-` reads
    /// standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Log format: `auto` detects it per file from its first lines; a name
    /// (see `xferstats formats`) forces it.
    #[arg(long, default_value = "auto", value_name = "NAME")]
    format: String,

    /// Time zone of time stamps that carry none (rsyncd log files, BSD
    /// syslog): an IANA name like Europe/Paris, UTC, an offset like +02:00,
    /// or `local` (this machine's zone, the default).
    #[arg(long, default_value = "local", value_name = "ZONE")]
    timezone: String,

    /// The `log format` of rsyncd.conf the daemon writes per-file lines with
    /// (only with `transfer logging = yes`).
    #[arg(long, default_value = DEFAULT_LOG_FORMAT, value_name = "FORMAT")]
    rsync_log_format: String,

    /// The `LogFormat` of ProFTPD's ExtendedLog (transfers are read from
    /// STOR/RETR/APPE/DELE lines; logins come from the SystemLog).
    #[arg(long, default_value = DEFAULT_PROFTPD_FORMAT, value_name = "FORMAT")]
    proftpd_log_format: String,

    /// Server host recorded for logs whose lines do not name one (rsyncd
    /// `log file`); syslog lines carry their own. Default: this machine's
    /// host name.
    #[arg(long, value_name = "NAME")]
    server_host: Option<String>,

    /// Events per database transaction.
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,

    /// Progress bar: `auto` shows it when stderr is a terminal.
    #[arg(long, value_enum, default_value_t = When::Auto)]
    progress: When,

    /// GeoIP City database (.mmdb: GeoLite2/GeoIP2/DB-IP City or an
    /// ip-location-db export). `auto` uses the first of
    /// /var/lib/GeoIP/GeoLite2-City.mmdb, /usr/share/GeoIP/GeoLite2-City.mmdb,
    /// … that exists (none: a warning, events without location); `off`
    /// disables GeoIP.
    #[arg(long, env = "XFERSTATS_GEOIP", default_value = "auto", value_name = "PATH")]
    geoip: String,

    /// Length of the stored geohash, 1–12 (5 is about ±2.4 km; GeoIP is
    /// not more precise).
    #[arg(long, default_value_t = DEFAULT_GEOHASH_PRECISION, value_name = "N",
          value_parser = clap::value_parser!(u8).range(1..=12))]
    geohash_precision: u8,

    /// What of client addresses and host names is stored: `hmac` a keyed
    /// hash only, `truncate` the /24 or /48 network and the parent domain,
    /// `full` everything, `drop` nothing. Locations are always looked up
    /// from the full address first. The hash key comes from
    /// XFERSTATS_HOST_KEY or host.key in the state directory (generated
    /// once, mode 0600).
    #[arg(long, env = "XFERSTATS_IP_MODE", value_enum, default_value_t = IpModeArg::Hmac)]
    ip_mode: IpModeArg,

    /// Earliest plausible event time (UTC day, YYYY-MM-DD): a line with an
    /// event before it is rejected, not stored.
    #[arg(long, default_value = "1990-01-01", value_name = "DATE")]
    min_date: String,

    /// How far past the input's modification time (or now, if earlier) an
    /// event may be: hours, days or weeks (`36h`, `1d`, `2w`). A line with
    /// an event later than that is rejected, not stored.
    #[arg(long, default_value = "1d", value_name = "AGE")]
    max_future: String,

    /// Seconds to wait for a writer on a FIFO given as input; after that it
    /// is reported as an error and the other inputs are read.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    fifo_wait: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum IpModeArg {
    Hmac,
    Truncate,
    Full,
    Drop,
}

impl From<IpModeArg> for IpMode {
    fn from(m: IpModeArg) -> IpMode {
        match m {
            IpModeArg::Hmac => IpMode::Hmac,
            IpModeArg::Truncate => IpMode::Truncate,
            IpModeArg::Full => IpMode::Full,
            IpModeArg::Drop => IpMode::Drop,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum When {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// First day to include (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,

    /// Last day to include (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    until: Option<String>,

    /// Group by these keys (comma-separated): day, user, protocol,
    /// direction, host, module, client, status, country, city. Without it:
    /// the daily digest of the latest day, one row per user. (client,
    /// country and city are read from the raw events; client shows what
    /// the IP mode stored: address, network or hash.)
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    by: Option<Vec<String>>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    format: Output,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Markdown,
    Csv,
    Json,
}

fn store_spec(db: &Option<String>, state_dir: &std::path::Path) -> anyhow::Result<StoreSpec> {
    Ok(match db {
        Some(s) => StoreSpec::parse(s)?.with_state_dir(state_dir),
        None => StoreSpec::default_location(state_dir),
    })
}

fn open_store(spec: &StoreSpec, access: Access) -> anyhow::Result<Box<dyn Backend>> {
    Ok(xferstats::sinks::open(spec, access)?)
}

/// `--db-mode`: clap names the flag and value, so only the reason.
fn db_mode_arg(v: &str) -> Result<DbMode, String> {
    v.parse().map_err(|e| match e {
        xferstats::error::ConfigError::DbMode { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// `30d`, `8w`, `36h` given to `flag` as microseconds.
fn age_arg(flag: &'static str, v: &str) -> anyhow::Result<i64> {
    let bad = || xferstats::error::ConfigError::Age { flag, value: v.to_string() };
    let t = v.trim();
    let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let hours = match unit {
        "h" => 1,
        "d" => 24,
        "w" => 24 * 7,
        _ => return Err(bad().into()),
    };
    Ok(n.checked_mul(hours * 3_600_000_000).ok_or_else(bad)?)
}

fn day_arg(flag: &'static str, v: &Option<String>) -> anyhow::Result<Option<String>> {
    match v {
        None => Ok(None),
        Some(s) => match parse_day(s) {
            Some(d) => Ok(Some(xferstats::time::day_string(d * 86_400_000_000))),
            None => Err(xferstats::error::ConfigError::Date { flag, value: s.clone() }.into()),
        },
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let state_dir = cli.state_dir.clone().filter(|d| !d.as_os_str().is_empty()).unwrap_or_else(default_dir);
    let db_mode = cli.db_mode.unwrap_or_default();
    let write = Access::Write(db_mode);
    match cli.command {
        Command::Formats => {
            for f in Format::all() {
                println!("{:<16} {}", f.name(), f.description());
            }
            Ok(xferstats::EXIT_OK)
        }
        Command::Ingest(a) => {
            let format = match a.format.as_str() {
                "auto" => None,
                name => Some(Format::from_name(name)?),
            };
            let timezone: TimeZone = a.timezone.parse()?;
            let rsync_log_format = LogFormat::compile(&a.rsync_log_format).map_err(|reason| {
                xferstats::error::ConfigError::LogFormat { format: a.rsync_log_format.clone(), reason }
            })?;
            let proftpd_log_format = ExtendedFormat::compile(&a.proftpd_log_format).map_err(|reason| {
                xferstats::error::ConfigError::ProftpdLogFormat { format: a.proftpd_log_format.clone(), reason }
            })?;
            let inputs = a
                .files
                .iter()
                .map(|p| if p.as_os_str() == "-" { Source::Stdin } else { Source::Path(p.clone()) })
                .collect();
            let opts = IngestOptions {
                inputs,
                format,
                timezone,
                rsync_log_format,
                proftpd_log_format,
                server_host: a.server_host.unwrap_or_else(local_hostname),
                batch_events: a.batch_size as usize,
                plausible: Plausible {
                    earliest: parse_day(&a.min_date).ok_or_else(|| xferstats::error::ConfigError::Date {
                        flag: "--min-date",
                        value: a.min_date.clone(),
                    })? * 86_400_000_000,
                    max_future: age_arg("--max-future", &a.max_future)?,
                },
                fifo_wait: std::time::Duration::from_secs(a.fifo_wait),
            };
            let enricher = Enricher::new(&EnrichOptions {
                geoip: match a.geoip.trim() {
                    "auto" | "" => GeoipChoice::Auto,
                    "off" | "none" => GeoipChoice::Off,
                    path => GeoipChoice::Path(PathBuf::from(path)),
                },
                geohash_precision: a.geohash_precision,
                ip_mode: a.ip_mode.into(),
                key: HostKey::load(
                    std::env::var(KEY_ENV).ok().filter(|k| !k.is_empty()).as_deref(),
                    &state_dir,
                    db_mode,
                )?
                .0,
            })?;
            let spec = store_spec(&cli.db, &state_dir)?;
            let mut store = open_store(&spec, write)?;
            let show_bar = !cli.quiet
                && match a.progress {
                    When::Auto => std::io::stderr().is_terminal(),
                    When::Always => true,
                    When::Never => false,
                };
            let bar = xferstats::progress::Bar::new();
            let progress: &dyn Progress = if show_bar { &bar } else { &NoProgress };
            let report = ingest(&opts, enricher, &mut *store, progress)?;
            if !cli.quiet {
                eprint!("{}", report.render(cli.verbose > 0));
            } else {
                for i in &report.inputs {
                    if let xferstats::ingest::InputStatus::Failed(e) = &i.status {
                        eprintln!("xferstats: {}", xferstats::sanitize::sanitize(e));
                    }
                }
            }
            Ok(report.exit_code())
        }
        Command::Report(a) => {
            let by = match a.by {
                None => None,
                Some(keys) => Some(
                    keys.iter()
                        .filter(|k| !k.trim().is_empty())
                        .map(|k| Key::from_name(k).ok_or_else(|| xferstats::error::ConfigError::ReportKey(k.clone())))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let opts = ReportOptions {
                by,
                since: day_arg("--since", &a.since)?,
                until: day_arg("--until", &a.until)?,
                format: match a.format {
                    Output::Table => OutputFormat::Table,
                    Output::Markdown => OutputFormat::Markdown,
                    Output::Csv => OutputFormat::Csv,
                    Output::Json => OutputFormat::Json,
                },
            };
            let spec = store_spec(&cli.db, &state_dir)?;
            let local = match &spec {
                StoreSpec::Sqlite(path) => Some(path.as_path()),
                StoreSpec::Influx(i) => i.state.as_deref(),
                StoreSpec::Postgres(_) => None,
            };
            if let Some(path) = local {
                if std::fs::metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
                    anyhow::bail!("{}: no database yet; run `xferstats ingest FILE…` first", spec.describe());
                }
            }
            let mut store = open_store(&spec, Access::Read)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            xferstats::report::run(&mut *store, &opts, &mut out).context("writing the report")?;
            Ok(xferstats::EXIT_OK)
        }
        Command::Db(DbCommand::Migrate) => {
            let spec = store_spec(&cli.db, &state_dir)?;
            let mut store = open_store(&spec, write)?;
            let v = store.schema_version()?;
            if !cli.quiet {
                eprintln!("{}: schema version {v}", spec.describe());
            }
            Ok(xferstats::EXIT_OK)
        }
        Command::Prune(a) => {
            let age = age_arg("--raw-older-than", &a.raw_older_than)?;
            let spec = store_spec(&cli.db, &state_dir)?;
            let mut store = open_store(&spec, write)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64 * 1_000_000)
                .unwrap_or(0);
            let p = store.prune_raw(now - age)?;
            if !cli.quiet {
                eprintln!(
                    "pruned raw events before {}: {} transfers, {} logins{} → {}",
                    xferstats::time::rfc3339(now - age),
                    p.transfers,
                    p.logins,
                    if p.partitions.is_empty() {
                        String::new()
                    } else {
                        format!(" (dropped partitions {})", p.partitions.join(", "))
                    },
                    spec.describe()
                );
            }
            Ok(xferstats::EXIT_OK)
        }
        Command::Rollup(a) => {
            let since = day_arg("--since", &Some(a.since.clone()))?.unwrap_or_default();
            let spec = store_spec(&cli.db, &state_dir)?;
            let mut store = open_store(&spec, write)?;
            let n = store.rebuild_rollups(&since)?;
            if !cli.quiet {
                eprintln!("rebuilt the daily rollups from {since}: {n} rows → {}", spec.describe());
            }
            Ok(xferstats::EXIT_OK)
        }
    }
}

fn exit_code_of(e: &anyhow::Error) -> u8 {
    // A reader that went away (`xferstats report | head`) is not an error.
    let broken_pipe = |c: &(dyn std::error::Error + 'static)| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(c.downcast_ref::<xferstats::error::Error>(), Some(xferstats::error::Error::Output(io))
                if io.kind() == std::io::ErrorKind::BrokenPipe)
    };
    if e.chain().any(broken_pipe) {
        return xferstats::EXIT_OK;
    }
    for cause in e.chain() {
        if let Some(x) = cause.downcast_ref::<xferstats::error::Error>() {
            return x.exit_code();
        }
        if cause.downcast_ref::<xferstats::error::ConfigError>().is_some() {
            return xferstats::EXIT_USAGE;
        }
        if cause.downcast_ref::<xferstats::error::EnrichError>().is_some() {
            return xferstats::EXIT_USAGE;
        }
        if cause.downcast_ref::<xferstats::error::StoreError>().is_some() {
            return xferstats::EXIT_STORE;
        }
        if cause.downcast_ref::<xferstats::error::InputError>().is_some() {
            return xferstats::EXIT_INPUT;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return xferstats::EXIT_OK;
            }
        }
    }
    xferstats::EXIT_USAGE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("XFERSTATS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("xferstats={level}"))),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = exit_code_of(&e);
            if code != xferstats::EXIT_OK {
                eprintln!("xferstats: error: {}", xferstats::sanitize::sanitize(&format!("{e:#}")));
            }
            ExitCode::from(code)
        }
    }
}
