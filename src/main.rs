//! The `xferstats` command: parses arguments into validated options and
//! calls the library. Nothing else lives here.

use std::io::{IsTerminal, Write};
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
use xferstats::ingest::{IngestOptions, NoProgress, Progress};
use xferstats::input::Source;
use xferstats::report::{OutputFormat, ReportOptions};
use xferstats::sinks::{Access, Backend};
use xferstats::time::{parse_day, Plausible};

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
    /// Follow growing logs and commit their lines within a second, across
    /// log rotation (rename, gzip, copytruncate, time-stamped names), until
    /// SIGTERM or Ctrl-C. Shares the ledger with ingest.
    Follow(FollowArgs),
    /// Show every input of the ledger (read by ingest or follow): format,
    /// offset, last import, and how far the file under its name is ahead.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Output format: a table, or JSON.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    format: StatusFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StatusFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(
    mut_arg("files", |a| a.value_name("PATH|GLOB|DIR").help(
        "Log files to follow: a path (followed by name across rotations, even before it exists), a glob \
         (quoted; `*` and `?` in the last component) or a directory (its files); the set is looked up again \
         as files appear"
    )),
    mut_arg("progress", |a| a.hide(true)),
    mut_arg("fifo_wait", |a| a.hide(true))
)]
struct FollowArgs {
    #[command(flatten)]
    read: IngestArgs,

    /// Poll for changes every 500 ms (`--poll=MS`: every MS milliseconds)
    /// instead of using inotify (for NFS/CIFS mounts, where inotify does not
    /// see other hosts' writes).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "500", value_name = "MS")]
    poll: Option<u64>,

    /// Longest time from a line being appended to it being committed,
    /// seconds (a busy log is committed in batches of a quarter of it).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    flush_interval: f64,

    /// Seconds a rotated-away file must not have grown before its last line
    /// is taken even without a newline and the file is closed.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    rotate_wait: f64,

    /// Log bytes read but not yet committed while the store is unreachable,
    /// MiB; beyond, reading pauses until the store answers again.
    #[arg(long, default_value_t = 64, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..))]
    buffer_limit: u64,
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
    /// … that exists (none: events without location and a warning, once
    /// per state directory; -v repeats it); `off`
    /// disables GeoIP.
    #[arg(long, env = "XFERSTATS_GEOIP", default_value = "auto", value_name = "PATH")]
    geoip: GeoipChoice,

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
    #[arg(long, env = "XFERSTATS_IP_MODE", value_enum, default_value_t = IpMode::Hmac)]
    ip_mode: IpMode,

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

    /// Output format. `html` writes one self-contained page (charts, map,
    /// date-range filter and drill-down; no external references) for the
    /// --since/--until period; --by does not apply to it.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,

    /// Write the report to FILE instead of standard output (removed again
    /// if the report fails).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
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

/// The UTC day `v` given to `flag`, in days since the epoch.
fn day_arg(flag: &'static str, v: &str) -> anyhow::Result<i64> {
    Ok(parse_day(v).ok_or_else(|| xferstats::error::ConfigError::Date { flag, value: v.to_string() })?)
}

/// The UTC day `v` given to `flag`, as `YYYY-MM-DD`.
fn day_string(flag: &'static str, v: &str) -> anyhow::Result<String> {
    Ok(xferstats::time::day_string(day_arg(flag, v)? * 86_400_000_000))
}

/// What every subcommand takes from the global options.
struct Global {
    db: Option<String>,
    state_dir: PathBuf,
    db_mode: DbMode,
    verbose: u8,
    quiet: bool,
}

impl Global {
    /// The store `--db` names (default: SQLite in the state directory).
    fn spec(&self) -> anyhow::Result<StoreSpec> {
        Ok(match &self.db {
            Some(s) => StoreSpec::parse(s)?.with_state_dir(&self.state_dir),
            None => StoreSpec::default_location(&self.state_dir),
        })
    }

    /// The store opened for writing, and its spec.
    fn open_for_writing(&self) -> anyhow::Result<(StoreSpec, Box<dyn Backend>)> {
        let spec = self.spec()?;
        let store = xferstats::sinks::open(&spec, Access::Write(self.db_mode))?;
        Ok((spec, store))
    }

    /// `message` on stderr unless `--quiet`.
    fn say(&self, message: std::fmt::Arguments) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }
}

/// Runs the subcommand; its exit code.
fn run(cli: Cli) -> anyhow::Result<u8> {
    let g = Global {
        state_dir: cli.state_dir.filter(|d| !d.as_os_str().is_empty()).unwrap_or_else(default_dir),
        db: cli.db,
        db_mode: cli.db_mode.unwrap_or_default(),
        verbose: cli.verbose,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Formats => formats(),
        Command::Ingest(a) => ingest(&g, a),
        Command::Report(a) => report(&g, a),
        Command::Db(DbCommand::Migrate) => migrate(&g),
        Command::Prune(a) => prune(&g, a),
        Command::Rollup(a) => rollup(&g, a),
        Command::Follow(a) => follow(&g, a),
        Command::Status(a) => status(&g, a),
    }
}

/// `xferstats formats`.
fn formats() -> anyhow::Result<u8> {
    for f in Format::all() {
        println!("{:<16} {}", f.name(), f.description());
    }
    Ok(xferstats::EXIT_OK)
}

/// The options of an import, checked.
fn ingest_options(a: &IngestArgs) -> anyhow::Result<IngestOptions> {
    let format = match a.format.as_str() {
        "auto" => None,
        name => Some(Format::from_name(name)?),
    };
    let timezone = a.timezone.parse()?;
    let rsync_log_format = LogFormat::compile(&a.rsync_log_format)
        .map_err(|reason| xferstats::error::ConfigError::LogFormat { format: a.rsync_log_format.clone(), reason })?;
    let proftpd_log_format = ExtendedFormat::compile(&a.proftpd_log_format).map_err(|reason| {
        xferstats::error::ConfigError::ProftpdLogFormat { format: a.proftpd_log_format.clone(), reason }
    })?;
    Ok(IngestOptions {
        inputs: a
            .files
            .iter()
            .map(|p| if p.as_os_str() == "-" { Source::Stdin } else { Source::Path(p.clone()) })
            .collect(),
        format,
        timezone,
        rsync_log_format,
        proftpd_log_format,
        server_host: a.server_host.clone().unwrap_or_else(local_hostname),
        batch_events: a.batch_size as usize,
        plausible: Plausible {
            earliest: day_arg("--min-date", &a.min_date)? * 86_400_000_000,
            max_future: age_arg("--max-future", &a.max_future)?,
        },
        fifo_wait: std::time::Duration::from_secs(a.fifo_wait),
    })
}

/// The host key (`XFERSTATS_HOST_KEY`, else the state directory's
/// host.key, generated once).
fn host_key(g: &Global) -> anyhow::Result<HostKey> {
    Ok(HostKey::load(std::env::var(KEY_ENV).ok().filter(|k| !k.is_empty()).as_deref(), &g.state_dir, g.db_mode)?.0)
}

/// The enricher of an import's options (GeoIP, IP mode, host key).
fn enricher(g: &Global, a: &IngestArgs) -> anyhow::Result<Enricher> {
    Ok(Enricher::new(&EnrichOptions {
        geoip: a.geoip.clone(),
        geohash_precision: a.geohash_precision,
        ip_mode: a.ip_mode,
        key: host_key(g)?,
        warn_once_in: Some((g.state_dir.clone(), g.db_mode)),
    })?)
}

/// `xferstats ingest`: the import, its summary, its exit code.
fn ingest(g: &Global, a: IngestArgs) -> anyhow::Result<u8> {
    let opts = ingest_options(&a)?;
    let enricher = enricher(g, &a)?;
    let (_, mut store) = g.open_for_writing()?;
    let show_bar = !g.quiet
        && match a.progress {
            When::Auto => std::io::stderr().is_terminal(),
            When::Always => true,
            When::Never => false,
        };
    let bar = xferstats::progress::Bar::new();
    let progress: &dyn Progress = if show_bar { &bar } else { &NoProgress };
    let report = xferstats::ingest::ingest(&opts, enricher, &mut *store, progress)?;
    if !g.quiet {
        eprint!("{}", report.render(g.verbose > 0));
    } else {
        for i in &report.inputs {
            if let xferstats::ingest::InputStatus::Failed(e) = &i.status {
                eprintln!("xferstats: {}", xferstats::sanitize::sanitize(e));
            }
        }
    }
    Ok(report.exit_code())
}

/// `xferstats follow`: runs until SIGTERM/SIGINT, then says what it added.
fn follow(g: &Global, a: FollowArgs) -> anyhow::Result<u8> {
    let signals = xferstats::follow::Signals::install()?;
    let seconds = |flag: &'static str, v: f64| {
        (v.is_finite() && v > 0.0 && v <= 86_400.0)
            .then(|| std::time::Duration::from_secs_f64(v))
            .ok_or_else(|| anyhow::anyhow!("{flag}: {v} must be more than 0 and at most 86400 seconds"))
    };
    let opts = xferstats::follow::FollowOptions {
        ingest: ingest_options(&a.read)?,
        patterns: a.read.files.clone(),
        poll: a.poll.map(|ms| std::time::Duration::from_millis(ms.max(10))),
        flush_interval: seconds("--flush-interval", a.flush_interval)?,
        rotate_wait: seconds("--rotate-wait", a.rotate_wait)?,
        buffer_limit: a.buffer_limit << 20,
    };
    if opts.patterns.iter().any(|p| p.as_os_str() == "-") {
        anyhow::bail!("follow reads files, not standard input (`ingest -` reads a stream)");
    }
    let enricher = enricher(g, &a.read)?;
    let (spec, mut store) = g.open_for_writing()?;
    let reopen = || -> Result<Box<dyn xferstats::sinks::Sink + Send>, xferstats::error::StoreError> {
        Ok(xferstats::sinks::open(&spec, Access::Write(g.db_mode))?)
    };
    let r = xferstats::follow::follow(&opts, enricher, &mut *store, &reopen, signals)?;
    g.say(format_args!(
        "follow stopped: {} lines read, {} new events, {} already present → {}",
        r.lines,
        r.events_new,
        r.events_dup,
        spec.describe()
    ));
    Ok(xferstats::EXIT_OK)
}

/// `xferstats status`: the ledger of a store that exists, with each file's
/// lag.
fn status(g: &Global, a: StatusArgs) -> anyhow::Result<u8> {
    let spec = g.spec()?;
    let mut store = xferstats::sinks::open(&spec, Access::Read)?;
    let rows = xferstats::status::inputs(&mut *store, &host_key(g)?.id_key())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match a.format {
        StatusFormat::Text => xferstats::status::write_text(&spec.describe(), &rows, &mut out),
        StatusFormat::Json => {
            xferstats::sanitize::write_json(&mut out, &xferstats::status::json(&spec.describe(), &rows))
                .and_then(|()| writeln!(out))
        }
    }
    .context("writing the status")?;
    Ok(xferstats::EXIT_OK)
}

/// `xferstats report`: refuses a local store that does not exist yet;
/// writes to standard output or `-o FILE` (removed if the report fails).
fn report(g: &Global, a: ReportArgs) -> anyhow::Result<u8> {
    let by = match a.by {
        None => None,
        Some(keys) => Some(keys.iter().filter(|k| !k.trim().is_empty()).map(|k| k.parse()).collect::<Result<_, _>>()?),
    };
    let opts = ReportOptions {
        by,
        since: a.since.as_deref().map(|d| day_string("--since", d)).transpose()?,
        until: a.until.as_deref().map(|d| day_string("--until", d)).transpose()?,
        format: a.format,
    };
    if opts.format == OutputFormat::Html && opts.by.is_some() {
        return Err(xferstats::error::ConfigError::HtmlBy.into());
    }
    let spec = g.spec()?;
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
    let mut store = xferstats::sinks::open(&spec, Access::Read)?;
    match &a.output {
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            xferstats::report::run(&mut *store, &opts, &mut out).context("writing the report")?;
        }
        Some(path) => {
            let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let done = xferstats::report::run(&mut *store, &opts, &mut out)
                .and_then(|()| out.flush().map_err(xferstats::error::Error::Output));
            if let Err(e) = done {
                let _ = std::fs::remove_file(path);
                return Err(anyhow::Error::new(e).context(format!("writing {}", path.display())));
            }
        }
    }
    Ok(xferstats::EXIT_OK)
}

/// `xferstats db migrate`.
fn migrate(g: &Global) -> anyhow::Result<u8> {
    let (spec, mut store) = g.open_for_writing()?;
    let v = store.schema_version()?;
    g.say(format_args!("{}: schema version {v}", spec.describe()));
    Ok(xferstats::EXIT_OK)
}

/// `xferstats prune`.
fn prune(g: &Global, a: PruneArgs) -> anyhow::Result<u8> {
    let age = age_arg("--raw-older-than", &a.raw_older_than)?;
    let (spec, mut store) = g.open_for_writing()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 * 1_000_000)
        .unwrap_or(0);
    let p = store.prune_raw(now - age)?;
    let dropped = if p.partitions.is_empty() {
        String::new()
    } else {
        format!(" (dropped partitions {})", p.partitions.join(", "))
    };
    g.say(format_args!(
        "pruned raw events before {}: {} transfers, {} logins{dropped} → {}",
        xferstats::time::rfc3339(now - age),
        p.transfers,
        p.logins,
        spec.describe()
    ));
    Ok(xferstats::EXIT_OK)
}

/// `xferstats rollup --rebuild`.
fn rollup(g: &Global, a: RollupArgs) -> anyhow::Result<u8> {
    let since = day_string("--since", &a.since)?;
    let (spec, mut store) = g.open_for_writing()?;
    let n = store.rebuild_rollups(&since)?;
    g.say(format_args!("rebuilt the daily rollups from {since}: {n} rows → {}", spec.describe()));
    Ok(xferstats::EXIT_OK)
}

/// The documented exit code of `e` (a usage error unless the library
/// says otherwise).
fn exit_code_of(e: &anyhow::Error) -> u8 {
    xferstats::error::exit_code_of(e.as_ref()).unwrap_or(xferstats::EXIT_USAGE)
}

/// Colour in messages only on a terminal, and not with `NO_COLOR` set
/// (no-color.org): a cron mail or a log file gets plain text.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
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
        .with_ansi(colour())
        .with_target(false)
        .without_time()
        .init();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = exit_code_of(&e);
            if code != xferstats::EXIT_OK {
                eprintln!(
                    "xferstats: error: {}",
                    xferstats::sanitize::sanitize(&xferstats::error::chain_text(e.as_ref()))
                );
            }
            ExitCode::from(code)
        }
    }
}
