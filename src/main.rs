//! The `xferstats` command: parses arguments into validated options and
//! calls the library. Nothing else lives here.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use xferstats::actions::{Hook, Hooks, Worker, WorkerHandle, WorkerStats};
use xferstats::config::file::{self as config_file, Effective, FileConfig, Given, Origin, Setting, CONFIG_ENV};
use xferstats::config::{default_dir, local_hostname, DB_ENV, STATE_DIR_ENV};
use xferstats::enrich::hostkey::{HostKey, KEY_ENV};
use xferstats::enrich::{EnrichOptions, Enricher, GeoipChoice, IpMode, DEFAULT_GEOHASH_PRECISION};
use xferstats::filemode::DbMode;
use xferstats::formats::proftpd_extended::{ExtendedFormat, DEFAULT_FORMAT as DEFAULT_PROFTPD_FORMAT};
use xferstats::formats::rsync::{LogFormat, DEFAULT_LOG_FORMAT};
use xferstats::formats::Format;
use xferstats::ingest::{IngestOptions, NoProgress, Progress};
use xferstats::input::Source;
use xferstats::report::digest::{Digest, Payload};
use xferstats::report::{Filter, OutputFormat, ReportOptions};
use xferstats::rollup::Key;
use xferstats::sinks::events::{EventFormat, EventStream};
use xferstats::sinks::{Access, Backend, Sink, StoreSpec};
use xferstats::time::{parse_day, Plausible};

/// Turns file-transfer logs (rsync daemon, …) into exact daily statistics.
///
/// Events land in an embedded SQLite database (default xferstats.db in the
/// state directory). Re-importing a file, its rotated or compressed copy,
/// adds nothing; a grown file adds only its new lines.
#[derive(Debug, Parser)]
#[command(name = "xferstats", version, max_term_width = 100, after_long_help = xferstats::sinks::stores_help())]
struct Cli {
    /// Store: `sqlite:PATH` or a file path (default: xferstats.db in the
    /// state directory), `postgres://…`, `influxdb://…`, `influxdb2://…`;
    /// every form is listed at the end of `xferstats --help`.
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

    /// Configuration file (TOML): store, state directory, GeoIP, IP mode
    /// and per-input sections. Default: $XFERSTATS_CONFIG, else
    /// /etc/xferstats/xferstats.toml if it exists; an empty value reads
    /// none. Flags and environment variables override what it sets.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

/// The forms of `--db`, said once: at the end of `xferstats --help`
/// (the subcommands' `--db` line points here).

#[derive(Debug, Subcommand)]
enum Command {
    /// Read transfer logs into the store (files, rotated/compressed copies,
    /// or - for stdin).
    Ingest(IngestArgs),
    /// Follow growing logs and commit their lines within a second, across
    /// log rotation (rename, gzip, copytruncate, time-stamped names), until
    /// SIGTERM or Ctrl-C. Shares the ledger with ingest.
    Follow(FollowArgs),
    /// Show every input of the ledger (read by ingest or follow): format,
    /// offset, last import, and how far the file under its name is ahead;
    /// then the open sessions per server host and format.
    Status(StatusArgs),
    /// Write the enriched events of transfer logs to standard output
    /// (NDJSON or CSV) instead of a store: the fields a store gets, in
    /// the IP-privacy mode; every input read from its start.
    #[command(mut_arg("format", |a| a.long("log-format")), mut_arg("batch_size", |a| a.hide(true)))]
    Events(EventsArgs),
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
    /// Undo the import of log files read with the wrong options: remove
    /// the events that came from them (and from the daily rollups) and
    /// their checkpoints, so that the next ingest reads them in full.
    /// Not for InfluxDB.
    Forget(ForgetArgs),
    /// The daily digest (per user: logins, failed logins, uploads,
    /// downloads, bytes up and down, totals) of one day: printed, posted
    /// to a webhook (--send) or mailed (--mail-to); without either, to the
    /// receivers of the configuration file's [digest] section.
    Digest(DigestArgs),
    /// Prometheus metrics from the store's totals: print them, write them
    /// atomically for node-exporter's textfile collector (--textfile), or
    /// serve them on /metrics (--listen).
    Metrics(MetricsArgs),
    /// Hook deliveries: status, retry of parked ones, delivery.
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// The configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell) to standard output.
    Completions(CompletionsArgs),
    /// Write the man pages (xferstats.1 and one per subcommand) into DIR;
    /// used when packaging.
    #[command(hide = true)]
    ManPages(ManPagesArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the configuration file (errors name file:line and key) and
    /// print the effective configuration, secrets masked, each value with
    /// where it comes from (command line, environment, file, default).
    Check,
}

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum, value_name = "SHELL")]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
struct ManPagesArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// Output format: a table, or JSON.
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    format: StatusFormat,
}

/// Output format of `status` and `hooks status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StatusFormat {
    Table,
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

    /// Serve Prometheus metrics on http://ADDR/metrics (e.g.
    /// 127.0.0.1:9922): the store's totals, read again for every scrape, as
    /// `xferstats metrics` prints them.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,

    /// Users with series of their own in the metrics (the most bytes
    /// first); the others are summed as user="other".
    #[arg(long, default_value_t = 50, value_name = "N", requires = "metrics_listen")]
    top_users: usize,
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
struct ForgetArgs {
    /// Log files to forget, found by their content as ingest finds them (a
    /// renamed or rotated copy is the same input).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
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
struct DigestArgs {
    /// The UTC day: YYYY-MM-DD, `today`, `yesterday` or `-Nd` (N days ago).
    #[arg(long, default_value = "yesterday", value_name = "DAY", allow_hyphen_values = true)]
    day: String,

    /// POST the digest to this webhook URL (Slack or Mattermost incoming
    /// webhook, or your own receiver) instead of printing it. Prefer the
    /// environment variable XFERSTATS_DIGEST_URL: a URL on the command line
    /// shows in `ps`.
    #[arg(long, env = "XFERSTATS_DIGEST_URL", hide_env_values = true, value_name = "URL")]
    send: Option<String>,

    /// Body of the post: `slack` is {"text": …} with the table (Slack,
    /// Mattermost); `json` has the day, host, the rows of `report --by
    /// day,user --format json`, the totals and the text.
    #[arg(long, value_enum, default_value_t = Payload::Slack)]
    payload: Payload,

    /// Mail the digest to this address (repeatable) through sendmail, as
    /// plain text.
    #[arg(long, value_name = "ADDR")]
    mail_to: Vec<String>,

    /// The From: of the mail (default: what sendmail sets, the running
    /// user).
    #[arg(long, value_name = "ADDR", requires = "mail_to")]
    mail_from: Option<String>,

    /// The sendmail program (any MTA's compatible one), run as `PROGRAM -t
    /// -oi` with the message on its standard input.
    #[arg(long, env = "XFERSTATS_SENDMAIL", default_value = "/usr/sbin/sendmail", value_name = "PATH")]
    sendmail: PathBuf,

    /// Seconds to wait for the webhook receiver.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    timeout: u64,

    /// Only the N users with the most bytes in the table; the totals stay
    /// those of every user.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    top: Option<u64>,

    /// Output format when printing: table, markdown, csv or json (csv and
    /// json are the `report --by day,user` rows of the day).
    #[arg(long, default_value = "table", value_name = "FORMAT", value_parser = digest_format())]
    format: OutputFormat,

    /// Print the digest instead of delivering it, whatever receivers the
    /// command line, XFERSTATS_DIGEST_URL or the configuration file's
    /// [digest] section name (to see what the timer would deliver).
    #[arg(long)]
    print: bool,
}

#[derive(Debug, Args)]
struct MetricsArgs {
    /// Write the metrics to FILE atomically (a temporary file in the same
    /// directory, renamed over FILE): for node-exporter's textfile
    /// collector, e.g. /var/lib/prometheus/node-exporter/xferstats.prom.
    #[arg(long, value_name = "FILE", conflicts_with = "listen")]
    textfile: Option<PathBuf>,

    /// Serve the metrics on http://ADDR/metrics (e.g. 127.0.0.1:9922),
    /// reading the store's totals again for every scrape; runs until
    /// stopped.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,

    /// Users with series of their own (the most bytes first); the others
    /// are summed as user="other".
    #[arg(long, default_value_t = xferstats::metrics::DEFAULT_TOP_USERS, value_name = "N")]
    top_users: usize,
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// Log files to read (.gz and .zst are recognised by content); `-` reads
    /// standard input. Without FILE: the files that the `path` globs of the
    /// configuration file's [[input]] sections match.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Log format: `auto` detects it per file from its first lines; a name
    /// (see `xferstats formats`) forces it.
    #[arg(long, default_value = "auto", value_name = "NAME")]
    format: String,

    /// Time zone of time stamps that carry none (rsyncd log files, BSD
    /// syslog, xferlog, vsftpd.log, SFTPGo without --log-utc-time): an IANA
    /// name like Europe/Paris, UTC, an offset like +02:00 or -0500, or
    /// `local` ($TZ, else /etc/localtime; the default).
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

    /// Events per database transaction [default: 10,000; 500,000 when
    /// `ingest` writes into PostgreSQL or SQLite, which take a transaction
    /// in parts of 10,000 events, so memory holds no more than with 10,000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: Option<u64>,

    /// Progress bar: `auto` shows it when stderr is a terminal.
    #[arg(long, value_enum, default_value_t = When::Auto)]
    progress: When,

    /// Forget the given files first, as `xferstats forget` does (their
    /// events, their counts in the daily rollups, their checkpoints), then
    /// read them in full: for files read before with the wrong options.
    /// Not for InfluxDB.
    #[arg(long)]
    reread: bool,

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

    #[command(flatten)]
    hooks: HookArgs,

    /// Only events at most this old at import time (`90s`, `10m`, `1h`,
    /// `2d`) fire hooks: importing months of old logs fires nothing.
    #[arg(long, default_value = "1h", value_name = "AGE")]
    hooks_max_age: String,

    /// Every newly stored event fires hooks, however old (backfill).
    #[arg(long, conflicts_with = "no_hooks")]
    hooks_backfill: bool,

    /// No hook fires for this import and nothing is delivered (hooks of
    /// the configuration file included).
    #[arg(long)]
    no_hooks: bool,

    /// Seconds to go on delivering after the import: what is still pending
    /// then (a receiver down, a retry not yet due) stays queued for the
    /// next run or `xferstats hooks deliver`.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    hooks_wait: u64,
}

/// Hooks given on the command line.
#[derive(Debug, Args)]
struct HookArgs {
    /// A hook: TRIGGER,KEY=VALUE,… (repeatable, beside the [[hook]]
    /// sections of the configuration file); e.g.
    /// `upload,module=incoming,exec=/usr/local/bin/process`.
    #[arg(long = "hook", value_name = "SPEC", long_help = xferstats::actions::hook::flag_help())]
    specs: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum HooksCommand {
    /// Deliveries per state (pending, done, parked) and the parked ones
    /// with their last error.
    Status(HooksStatusArgs),
    /// Queue parked deliveries again (each gets its attempts anew): the
    /// one with this ID (from `hooks status`), or every one with --all.
    Retry(HooksRetryArgs),
    /// Deliver what is pending (for the hooks of the configuration file
    /// and --hook), for at most --wait seconds.
    Deliver(HooksDeliverArgs),
}

#[derive(Debug, Args)]
struct HooksStatusArgs {
    /// Output format: `table` or `json`.
    #[arg(long, value_enum, default_value_t = StatusFormat::Table)]
    format: StatusFormat,

    /// Parked deliveries listed at most.
    #[arg(long, default_value_t = 100, value_name = "N")]
    limit: u32,
}

#[derive(Debug, Args)]
struct HooksRetryArgs {
    /// The delivery to queue again.
    #[arg(value_name = "ID", required_unless_present = "all", conflicts_with = "all")]
    id: Option<i64>,

    /// Every parked delivery.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
struct HooksDeliverArgs {
    #[command(flatten)]
    hooks: HookArgs,

    /// Seconds to go on delivering (retries fall due meanwhile).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    wait: u64,
}

#[derive(Debug, Args)]
struct EventsArgs {
    /// Output: `ndjson`, one JSON object a line; `csv`, a header line then
    /// one row per event, text starting with = + - @ given a leading '
    /// (spreadsheet formula injection).
    #[arg(long = "format", id = "output_format", value_name = "FORMAT", value_enum, default_value_t = EventFormat::Ndjson)]
    output_format: EventFormat,

    /// Inputs and how to read them, as for ingest (the log format is
    /// --log-format here).
    #[command(flatten)]
    read: IngestArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum When {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// First day to include (UTC): YYYY-MM-DD, `today`, `yesterday` or
    /// `-Nd` (N days ago).
    #[arg(long, value_name = "DAY", allow_hyphen_values = true)]
    since: Option<String>,

    /// Last day to include (UTC), as --since.
    #[arg(long, value_name = "DAY", allow_hyphen_values = true)]
    until: Option<String>,

    /// Group by these keys (comma-separated): day, user, protocol,
    /// direction, host, module, client, status, country, city. Without it:
    /// the daily digest, one row per user. (client, country and city are
    /// read from the raw events; client shows what the IP mode stored:
    /// address, network or hash.)
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    by: Option<Vec<String>>,

    /// Day of the digest (without --by), as --since. Default: the last
    /// complete day, the latest day with events before today (UTC).
    #[arg(long, value_name = "DAY", allow_hyphen_values = true, conflicts_with_all = ["by", "since", "until"])]
    day: Option<String>,

    /// Only the events of this user (`(unknown)` for none).
    #[arg(long, value_name = "NAME")]
    user: Option<String>,

    /// Only the events of this server host.
    #[arg(long, value_name = "NAME")]
    host: Option<String>,

    /// Only the events of this protocol (rsync, sftp, ftp, …).
    #[arg(long, value_name = "NAME")]
    protocol: Option<String>,

    /// Only the events of this module or virtual root (`(none)` for
    /// none); logins have no module, so the login columns are left out.
    #[arg(long, value_name = "NAME")]
    module: Option<String>,

    /// Only the N rows with the most bytes (then transfers and deletes,
    /// then logins); the table sums the others into one `(M more)` row
    /// above the total.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    top: Option<u64>,

    /// Output format. `html` writes one self-contained page (charts, map,
    /// date-range filter and drill-down; no external references) of the
    /// --since/--until period and the events the filters keep, with --top
    /// values per field panel (else 30); --by does not apply to it.
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

/// `digest --format`: the report formats but HTML (a page of a period,
/// not of one day's table).
fn digest_format() -> impl clap::builder::TypedValueParser<Value = OutputFormat> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["table", "markdown", "csv", "json"])
        .map(|s: String| <OutputFormat as ValueEnum>::from_str(&s, false).unwrap_or(OutputFormat::Table))
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

/// The report day `v` given to `flag` (`YYYY-MM-DD`, `today`, `yesterday`,
/// `-Nd`), as `YYYY-MM-DD`.
fn report_day(flag: &'static str, v: &str) -> anyhow::Result<String> {
    let day = xferstats::time::parse_report_day(v, xferstats::time::today())
        .ok_or_else(|| xferstats::error::ConfigError::ReportDay { flag, value: v.to_string() })?;
    Ok(xferstats::time::day_string(day * 86_400_000_000))
}

/// What every subcommand takes from the global options.
struct Global {
    /// The configuration file (empty without one).
    file: FileConfig,
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

    /// [`Global::spec`], refused when it names a local file that does not
    /// exist yet (nothing to read or undo there).
    fn existing_spec(&self) -> anyhow::Result<StoreSpec> {
        let spec = self.spec()?;
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
        Ok(spec)
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
fn run(cli: Cli, m: &ArgMatches) -> anyhow::Result<u8> {
    let file = FileConfig::load(cli.config.or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from)).as_deref())?;
    let g = Global {
        state_dir: cli
            .state_dir
            .filter(|d| !d.as_os_str().is_empty())
            .or_else(|| file.state_dir.as_ref().map(|s| s.value.clone()))
            .unwrap_or_else(default_dir),
        db: cli.db.or_else(|| file.db.as_ref().map(|s| s.value.clone())),
        db_mode: cli.db_mode.or_else(|| file.db_mode.as_ref().map(|s| s.value)).unwrap_or_default(),
        verbose: cli.verbose,
        quiet: cli.quiet,
        file,
    };
    let m = leaf(m);
    match cli.command {
        Command::Formats => formats(),
        Command::Ingest(a) => ingest(&g, a, m, |a, key| {
            let (spec, mut store) = g.open_for_writing()?;
            if a.reread {
                let files: Vec<PathBuf> = a.files.iter().filter(|f| f.as_os_str() != "-").cloned().collect();
                forget_files(&g, &spec, &files, key, &mut *store, false)?;
            }
            Ok(store)
        }),
        Command::Events(a) => events(&g, a, m),
        Command::Report(a) => report(&g, a),
        Command::Db(DbCommand::Migrate) => migrate(&g),
        Command::Prune(a) => prune(&g, a),
        Command::Rollup(a) => rollup(&g, a),
        Command::Forget(a) => forget(&g, a),
        Command::Digest(a) => digest(&g, a, m),
        Command::Metrics(a) => metrics(&g, a),
        Command::Hooks(c) => hooks(&g, c),
        Command::Config(ConfigCommand::Check) => config_check(&g, m),
        Command::Completions(a) => completions(a.shell),
        Command::ManPages(a) => man_pages(&a.dir),
        Command::Follow(a) => follow(&g, a, m),
        Command::Status(a) => status(&g, a),
    }
}

/// The matches of the subcommand that runs (global options are
/// propagated down to it).
fn leaf(m: &ArgMatches) -> &ArgMatches {
    match m.subcommand() {
        Some((_, sub)) => leaf(sub),
        None => m,
    }
}

/// Whether option `id` was given on the command line or by its
/// environment variable: then it wins over the configuration file.
fn given(m: &ArgMatches, id: &str) -> bool {
    matches!(m.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
}

/// The text option `id` was given as (command line or `env`), and where
/// it came from.
fn given_text(m: &ArgMatches, id: &str, env: &'static str) -> Option<(String, Origin)> {
    let origin = match m.value_source(id)? {
        ValueSource::CommandLine => Origin::Flag,
        ValueSource::EnvVariable => Origin::Env(env),
        _ => return None,
    };
    Some((m.get_raw(id)?.next()?.to_string_lossy().into_owned(), origin))
}

/// `xferstats config check`: the file is valid (else `run` failed with
/// its file:line error); prints the effective configuration.
fn config_check(g: &Global, m: &ArgMatches) -> anyhow::Result<u8> {
    let f = &g.file;
    let env = |name: &'static str| std::env::var(name).ok().filter(|v| !v.is_empty()).map(|v| (v, Origin::Env(name)));
    let settings = [
        ("db", given_text(m, "db", DB_ENV), f.db.as_ref().map(Setting::at), g.spec()?.describe()),
        (
            "state_dir",
            given_text(m, "state_dir", STATE_DIR_ENV).filter(|(v, _)| !v.is_empty()),
            f.state_dir.as_ref().map(Setting::at),
            default_dir().display().to_string(),
        ),
        ("db_mode", given_text(m, "db_mode", ""), f.db_mode.as_ref().map(Setting::at), DbMode::default().to_string()),
        ("geoip", env("XFERSTATS_GEOIP"), f.geoip.as_ref().map(Setting::at), "auto".to_string()),
        (
            "ip_mode",
            env("XFERSTATS_IP_MODE"),
            f.ip_mode.as_ref().map(Setting::at),
            IpMode::default().name().to_string(),
        ),
        ("timezone", None, f.timezone.as_ref().map(Setting::at), "local".to_string()),
        ("server_host", None, f.server_host.as_ref().map(Setting::at), local_hostname()),
    ]
    .map(|(key, given, file, default)| {
        let (value, origin) = config_file::resolve(given, file, default);
        Effective { key, value, origin }
    });
    if !g.quiet {
        print!("{}", config_file::render_effective(f, &settings));
        let url = std::env::var("XFERSTATS_DIGEST_URL").ok().filter(|v| !v.is_empty());
        print!("{}", config_file::render_digest(f.digest.as_ref(), url.as_deref()));
    }
    Ok(xferstats::EXIT_OK)
}

/// `xferstats completions SHELL`.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "xferstats", &mut script);
    std::io::stdout().write_all(&script).map_err(xferstats::error::Error::Output)?;
    Ok(xferstats::EXIT_OK)
}

/// `xferstats man-pages DIR`: xferstats.1, and xferstats-SUB.1 for every
/// visible subcommand (nested ones joined by `-`).
fn man_pages(dir: &Path) -> anyhow::Result<u8> {
    let mut cmd = Cli::command();
    cmd.build();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_man_page(&cmd, "xferstats".to_string(), dir)?;
    Ok(xferstats::EXIT_OK)
}

/// The page of `cmd` named `name`, then those of its subcommands.
fn write_man_page(cmd: &clap::Command, name: String, dir: &Path) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone().name(name.clone())).render(&mut page)?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        write_man_page(sub, format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
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
        batch_events: a.batch_size.map(|n| n as usize),
        plausible: Plausible {
            earliest: day_arg("--min-date", &a.min_date)? * 86_400_000_000,
            max_future: age_arg("--max-future", &a.max_future)?,
        },
        fifo_wait: std::time::Duration::from_secs(a.fifo_wait),
        hooks: None,
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

/// The configuration file's GeoIP and IP mode where no flag or variable
/// set them.
fn file_enrichment(g: &Global, a: &mut IngestArgs, m: &ArgMatches) {
    if !given(m, "geoip") {
        if let Some(s) = &g.file.geoip {
            a.geoip = s.value.clone();
        }
    }
    if !given(m, "ip_mode") {
        if let Some(s) = &g.file.ip_mode {
            a.ip_mode = s.value;
        }
    }
}

/// `xferstats events`: an import into the event stream on standard output.
fn events(g: &Global, a: EventsArgs, m: &ArgMatches) -> anyhow::Result<u8> {
    if a.read.reread {
        anyhow::bail!("--reread forgets inputs in a store; events has none (use it with ingest)");
    }
    if !a.read.hooks.specs.is_empty() {
        anyhow::bail!("--hook: hooks fire for events a store keeps (ingest, follow); events has no store");
    }
    // Nor the configuration file's hooks: no outbox to queue them in.
    let mut read = a.read;
    read.no_hooks = true;
    ingest(g, read, m, |_, _| Ok(Box::new(EventStream::stdout(a.output_format))))
}

/// `xferstats ingest` (and `events`): the import into the sink `open`
/// gives, its summary, its exit code. Inputs of different
/// configuration-file sections are read by one import each.
fn ingest(
    g: &Global,
    mut a: IngestArgs,
    m: &ArgMatches,
    open: impl FnOnce(&IngestArgs, &HostKey) -> anyhow::Result<Box<dyn Sink + Send>>,
) -> anyhow::Result<u8> {
    if a.files.is_empty() {
        a.files = g.file.input_paths();
        if a.files.is_empty() && g.file.inputs.is_empty() {
            return Err(config_file::ConfigFileError::NoInput(g.file.describe()).into());
        }
    }
    file_enrichment(g, &mut a, m);
    let mut opts = ingest_options(&a)?;
    opts.hooks = hook_options(g, &a)?;
    let plans = g.file.plan(
        &opts,
        &Given {
            format: given(m, "format"),
            timezone: given(m, "timezone"),
            rsync_log_format: given(m, "rsync_log_format"),
            proftpd_log_format: given(m, "proftpd_log_format"),
            server_host: given(m, "server_host"),
        },
    );
    let key = HostKey::load(std::env::var(KEY_ENV).ok().filter(|k| !k.is_empty()).as_deref(), &g.state_dir, g.db_mode)?;
    // One enricher per import, all made (the GeoIP file checked) before
    // the store is opened: nothing is written with a bad configuration.
    let enrichers = plans
        .iter()
        .map(|_| {
            Enricher::new(&EnrichOptions {
                geoip: a.geoip.clone(),
                geohash_precision: a.geohash_precision,
                ip_mode: a.ip_mode,
                key: key.0.clone(),
                warn_once_in: Some((g.state_dir.clone(), g.db_mode)),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut store = open(&a, &key.0)?;
    let show_bar = !g.quiet
        && match a.progress {
            When::Auto => std::io::stderr().is_terminal(),
            When::Always => true,
            When::Never => false,
        };
    let bar = xferstats::progress::Bar::new();
    let progress: &dyn Progress = if show_bar { &bar } else { &NoProgress };
    let mut report = xferstats::ingest::IngestReport { store: store.describe(), ..Default::default() };
    // Deliveries go out while the import runs, from a connection of their own.
    let worker = match &opts.hooks {
        Some(h) => Some(WorkerHandle::spawn(Worker::new(h.clone(), g.open_for_writing()?.1))),
        None => None,
    };
    for (opts, enricher) in plans.iter().zip(enrichers) {
        config_file::merge_reports(&mut report, xferstats::ingest::ingest(opts, enricher, &mut *store, progress)?);
        if let Some(w) = &worker {
            w.notify();
        }
    }
    if !g.quiet {
        eprint!("{}", report.render(g.verbose > 0));
    } else {
        eprint!("{}", report.error_lines());
    }
    if let Some(w) = worker {
        let stats = w.finish(std::time::Duration::from_secs(a.hooks_wait))?;
        say_deliveries(g, &stats, &mut *g.open_for_writing()?.1)?;
    }
    Ok(report.exit_code())
}

/// The hooks an import or a follower fires (none with `--no-hooks`), with
/// their age limit.
fn hook_options(g: &Global, a: &IngestArgs) -> anyhow::Result<Option<std::sync::Arc<Hooks>>> {
    if a.no_hooks {
        return Ok(None);
    }
    let max_age = match a.hooks_backfill {
        true => None,
        false => Some(xferstats::actions::hook::duration(&a.hooks_max_age).ok_or_else(|| {
            xferstats::error::ConfigError::Duration { flag: "--hooks-max-age", value: a.hooks_max_age.clone() }
        })?),
    };
    Ok(configured_hooks(g, &a.hooks, max_age)?.map(std::sync::Arc::new))
}

/// The hooks of the configuration file and `--hook` flags (none: `None`).
fn configured_hooks(g: &Global, flags: &HookArgs, max_age: Option<i64>) -> anyhow::Result<Option<Hooks>> {
    let mut all: Vec<Hook> = g.file.hooks.iter().map(|(_, h)| h.clone()).collect();
    for spec in &flags.specs {
        all.push(Hook::parse_flag(spec).map_err(|e| anyhow::anyhow!("--hook '{}': {e}", mask_hook_flag(spec)))?);
    }
    if all.is_empty() {
        return Ok(None);
    }
    Ok(Some(Hooks::new(all, max_age).map_err(|e| anyhow::anyhow!("hooks: {e}"))?))
}

/// A `--hook` value as it may be shown: its `post=` URL masked.
fn mask_hook_flag(spec: &str) -> String {
    spec.split(',')
        .map(|item| match item.split_once("post=") {
            Some((pre, url)) => format!("{pre}post={}", xferstats::actions::hook::mask_url(url)),
            None => item.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The deliveries' summary line after an import or `hooks deliver`.
fn say_deliveries(g: &Global, stats: &WorkerStats, store: &mut dyn Backend) -> anyhow::Result<()> {
    let counts = store.outbox().outbox_counts()?;
    g.say(format_args!(
        "hooks: {} delivered, {} failed attempts; {} pending, {} parked in the outbox (xferstats hooks status)",
        stats.delivered, stats.failed, counts[0].1, counts[2].1
    ));
    Ok(())
}

/// `xferstats hooks …`.
fn hooks(g: &Global, c: HooksCommand) -> anyhow::Result<u8> {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0);
    match c {
        HooksCommand::Status(a) => {
            let mut store = xferstats::sinks::open(&g.existing_spec()?, Access::Write(g.db_mode))?;
            let counts = store.outbox().outbox_counts()?;
            let parked = store.outbox().outbox_list("parked", a.limit)?;
            match a.format {
                StatusFormat::Json => {
                    let mut m = serde_json::Map::new();
                    for (state, n) in counts {
                        m.insert(state.to_string(), n.into());
                    }
                    m.insert("parked_deliveries".into(), serde_json::to_value(&parked)?);
                    println!("{}", serde_json::Value::Object(m));
                }
                StatusFormat::Table => {
                    let c: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
                    println!("{}", c.join(", "));
                    for p in &parked {
                        println!(
                            "parked {}: hook {}, {} event {} at {}, {} attempts: {}",
                            p.id,
                            xferstats::sanitize::sanitize(&p.hook),
                            p.trigger,
                            p.event_id,
                            p.event_time,
                            p.attempts,
                            xferstats::sanitize::sanitize(p.last_error.as_deref().unwrap_or("-"))
                        );
                    }
                }
            }
            Ok(xferstats::EXIT_OK)
        }
        HooksCommand::Retry(a) => {
            let mut store = xferstats::sinks::open(&g.existing_spec()?, Access::Write(g.db_mode))?;
            let n = store.outbox().requeue(a.id, now)?;
            match a.id {
                Some(id) if n == 0 => {
                    eprintln!("xferstats: no parked or pending delivery {id} in {}", store.describe());
                    Ok(xferstats::EXIT_REJECTED)
                }
                _ => {
                    g.say(format_args!("{n} deliveries queued again → {}", store.describe()));
                    Ok(xferstats::EXIT_OK)
                }
            }
        }
        HooksCommand::Deliver(a) => {
            let Some(hooks) = configured_hooks(g, &a.hooks, None)? else {
                anyhow::bail!("no hooks: add [[hook]] sections to {} or give --hook", g.file.describe());
            };
            let spec = g.existing_spec()?;
            let mut worker =
                Worker::new(std::sync::Arc::new(hooks), xferstats::sinks::open(&spec, Access::Write(g.db_mode))?);
            worker.deliver_until(std::time::Instant::now() + std::time::Duration::from_secs(a.wait))?;
            let mut store = xferstats::sinks::open(&spec, Access::Write(g.db_mode))?;
            say_deliveries(g, &worker.stats, &mut *store)?;
            Ok(xferstats::EXIT_OK)
        }
    }
}

/// `xferstats follow`: runs until SIGTERM/SIGINT, then says what it added.
fn follow(g: &Global, mut a: FollowArgs, m: &ArgMatches) -> anyhow::Result<u8> {
    let signals = xferstats::follow::Signals::install()?;
    // The file's store, GeoIP, IP mode, time zone and server host; its
    // per-input sections are for ingest (one follower reads with one set
    // of options).
    file_enrichment(g, &mut a.read, m);
    let seconds = |flag: &'static str, v: f64| {
        (v.is_finite() && v > 0.0 && v <= 86_400.0)
            .then(|| std::time::Duration::from_secs_f64(v))
            .ok_or_else(|| anyhow::anyhow!("{flag}: {v} must be more than 0 and at most 86400 seconds"))
    };
    let mut ingest = ingest_options(&a.read)?;
    if let (false, Some(t)) = (given(m, "timezone"), &g.file.timezone) {
        ingest.timezone = t.value;
    }
    if let (false, Some(h)) = (given(m, "server_host"), &g.file.server_host) {
        ingest.server_host = h.value.clone();
    }
    ingest.hooks = hook_options(g, &a.read)?;
    let opts = xferstats::follow::FollowOptions {
        ingest,
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
    if let Some(addr) = &a.metrics_listen {
        let listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("--metrics-listen {addr}: cannot listen"))?;
        let mut render = metrics_renderer(spec.clone(), None, a.top_users);
        let addr = addr.clone();
        std::thread::Builder::new().name("xferstats-metrics".into()).spawn(move || {
            if let Err(e) = xferstats::metrics::server::serve(&listener, &mut render) {
                tracing::warn!("--metrics-listen {addr}: {}", xferstats::sanitize::sanitize(&e.to_string()));
            }
        })?;
    }
    // Deliveries go out from a connection of their own while it follows.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let open_backend = || -> Result<Box<dyn xferstats::sinks::Backend>, xferstats::error::StoreError> {
        xferstats::sinks::open(&spec, Access::Write(g.db_mode))
    };
    let (r, delivered) = std::thread::scope(|scope| {
        let worker = opts.ingest.hooks.clone().map(|hooks| {
            let (stop, open) = (&stop, &open_backend);
            scope.spawn(move || xferstats::actions::deliver_while(hooks, open, stop))
        });
        let r = xferstats::follow::follow(&opts, enricher, &mut *store, &reopen, signals);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (r, worker.map(|w| w.join().unwrap_or_default()))
    });
    let r = r?;
    if let Some(stats) = delivered {
        let mut store = open_backend()?;
        say_deliveries(g, &stats, &mut *store)?;
    }
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
    let key = host_key(g)?;
    let rows = xferstats::status::inputs(&mut *store, &key.id_key())?;
    let sessions = xferstats::status::open_sessions(&mut *store, &key)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match a.format {
        StatusFormat::Table => xferstats::status::write_text(&spec.describe(), &rows, &sessions, &mut out),
        StatusFormat::Json => {
            xferstats::sanitize::write_json(&mut out, &xferstats::status::json(&spec.describe(), &rows, &sessions))
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
    let filters = [(Key::User, &a.user), (Key::Host, &a.host), (Key::Protocol, &a.protocol), (Key::Module, &a.module)]
        .into_iter()
        .filter_map(|(key, v)| v.clone().map(|value| Filter { key, value }))
        .collect();
    let opts = ReportOptions {
        by,
        since: a.since.as_deref().map(|d| report_day("--since", d)).transpose()?,
        until: a.until.as_deref().map(|d| report_day("--until", d)).transpose()?,
        day: a.day.as_deref().map(|d| report_day("--day", d)).transpose()?,
        filters,
        top: a.top.map(|n| n as usize),
        format: a.format,
    };
    if let (Some(since), Some(until)) = (&opts.since, &opts.until) {
        if since > until {
            return Err(
                xferstats::error::ConfigError::ReversedRange { since: since.clone(), until: until.clone() }.into()
            );
        }
    }
    if opts.format == OutputFormat::Html && opts.by.is_some() {
        return Err(xferstats::error::ConfigError::HtmlBy.into());
    }
    let spec = g.existing_spec()?;
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

/// `xferstats digest`: printed as `report --day`, or posted and/or
/// mailed (each receiver named in a line on stderr unless `--quiet`).
/// Receivers and their options the command line (or environment) leaves
/// unset come from the file's `[digest]` section, key by key, unless
/// `--print`.
fn digest(g: &Global, mut a: DigestArgs, m: &ArgMatches) -> anyhow::Result<u8> {
    let day = report_day("--day", &a.day)?;
    if a.print {
        a.send = None;
        a.mail_to.clear();
    } else if let Some(d) = &g.file.digest {
        if a.send.is_none() {
            a.send = d.send.as_ref().map(|s| s.value.clone());
        }
        if a.mail_to.is_empty() {
            a.mail_to = d.mail_to.as_ref().map(|s| s.value.clone()).unwrap_or_default();
            a.mail_from = a.mail_from.or_else(|| d.mail_from.as_ref().map(|s| s.value.clone()));
        }
        if let (false, Some(p)) = (given(m, "payload"), &d.payload) {
            a.payload = p.value;
        }
        if let (false, Some(p)) = (given(m, "sendmail"), &d.sendmail) {
            a.sendmail = p.value.clone();
        }
    }
    if let Some(url) = &a.send {
        xferstats::report::digest::check_url(url)?;
    }
    let spec = g.existing_spec()?;
    let mut store = xferstats::sinks::open(&spec, Access::Read)?;
    let top = a.top.map(|n| n as usize);
    if a.send.is_none() && a.mail_to.is_empty() {
        let opts = ReportOptions {
            by: None,
            since: None,
            until: None,
            day: Some(day),
            filters: Vec::new(),
            top,
            format: a.format,
        };
        let stdout = std::io::stdout();
        xferstats::report::run(&mut *store, &opts, &mut stdout.lock()).context("writing the digest")?;
        return Ok(xferstats::EXIT_OK);
    }
    let d = Digest::build(&mut *store, &day, &local_hostname(), top)?;
    let mail = if a.mail_to.is_empty() {
        None
    } else {
        Some(d.mail(&a.mail_to, a.mail_from.as_deref(), &chrono::Utc::now().to_rfc2822())?)
    };
    if let Some(url) = &a.send {
        let timeout = std::time::Duration::from_secs(a.timeout);
        xferstats::report::digest::post(url, &d.payload(a.payload), timeout)?;
        g.say(format_args!("digest for {day} posted to {}", xferstats::report::digest::redact_url(url)));
    }
    if let Some(m) = mail {
        xferstats::report::digest::send_mail(&a.sendmail, &m)?;
        g.say(format_args!(
            "digest for {day} mailed to {} through {}",
            xferstats::sanitize::sanitize(&a.mail_to.join(", ")),
            a.sendmail.display()
        ));
    }
    Ok(xferstats::EXIT_OK)
}

/// `xferstats metrics`: the exposition on stdout, in `--textfile`, or
/// served on `--listen` (the totals read again per scrape; a store error
/// counts in `xferstats_store_errors_total` and the last good totals are
/// served, or 503 before there are any).
fn metrics(g: &Global, a: MetricsArgs) -> anyhow::Result<u8> {
    use xferstats::metrics::{server, write_textfile, Metrics};
    let spec = g.existing_spec()?;
    let mut store = xferstats::sinks::open(&spec, Access::Read)?;
    let Some(addr) = &a.listen else {
        let text = Metrics::from_store(&mut *store, a.top_users)?.render();
        match &a.textfile {
            Some(path) => write_textfile(path, &text)
                .map_err(xferstats::error::Error::Output)
                .with_context(|| format!("writing {}", path.display()))?,
            None => std::io::stdout().write_all(text.as_bytes()).map_err(xferstats::error::Error::Output)?,
        }
        return Ok(xferstats::EXIT_OK);
    };
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("--listen {addr}: cannot listen"))?;
    g.say(format_args!(
        "serving the metrics of {} on http://{}/metrics",
        spec.describe(),
        listener.local_addr().map_err(|e| anyhow::anyhow!("--listen {addr}: {e}"))?
    ));
    let mut render = metrics_renderer(spec, Some(store), a.top_users);
    server::serve(&listener, &mut render).with_context(|| format!("--listen {addr}"))?;
    Ok(xferstats::EXIT_OK)
}

/// The text a metrics scrape answers: the store's totals read again each
/// time. A store that failed is opened again at the next scrape (a lost
/// PostgreSQL connection comes back with its server) and its last values
/// are served meanwhile, with the failures counted.
fn metrics_renderer(
    spec: StoreSpec,
    store: Option<Box<dyn xferstats::sinks::Backend>>,
    top_users: usize,
) -> impl FnMut() -> Result<String, String> {
    use xferstats::metrics::Metrics;
    let (mut last, mut errors): (Option<Metrics>, u64) = (None, 0);
    let mut store = store;
    move || {
        let read = match store.take() {
            Some(s) => Ok(s),
            None => xferstats::sinks::open(&spec, Access::Read),
        }
        .and_then(|mut s| Metrics::from_store(&mut *s, top_users).map(|m| (s, m)));
        match read {
            Ok((s, m)) => (store, last) = (Some(s), Some(m)),
            Err(e) => {
                errors += 1;
                tracing::warn!("reading the metrics: {}", xferstats::sanitize::sanitize(&e.to_string()));
            }
        }
        let m = last.as_mut().ok_or_else(|| format!("{}: store unreadable, see the server's log", spec.describe()))?;
        m.carry_errors(errors + xferstats::metrics::STORE_ERRORS.load(std::sync::atomic::Ordering::Relaxed));
        Ok(m.render())
    }
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

/// `xferstats forget`: exit 0 when every file was forgotten, 1 when one
/// was not in the ledger.
fn forget(g: &Global, a: ForgetArgs) -> anyhow::Result<u8> {
    let key = HostKey::load(std::env::var(KEY_ENV).ok().filter(|k| !k.is_empty()).as_deref(), &g.state_dir, g.db_mode)?;
    let spec = g.existing_spec()?;
    let mut store = xferstats::sinks::open(&spec, Access::Write(g.db_mode))?;
    forget_files(g, &spec, &a.files, &key.0, &mut *store, true)
}

/// Forgets `files` in `store`, saying what went; a file not in the ledger
/// is an error line (exit code 1) when `missing_is_error`, else passed
/// over.
fn forget_files(
    g: &Global,
    spec: &StoreSpec,
    files: &[PathBuf],
    key: &HostKey,
    store: &mut dyn Backend,
    missing_is_error: bool,
) -> anyhow::Result<u8> {
    let mut code = xferstats::EXIT_OK;
    for r in xferstats::forget::forget(files, key, store)? {
        let name = xferstats::sanitize::sanitize(&r.name);
        match r.forgotten {
            Some(f) => g.say(format_args!(
                "forgot {name}: {} transfers and {} logins removed, its checkpoint dropped (the next ingest reads it in \
                 full) → {}",
                f.transfers,
                f.logins,
                spec.describe()
            )),
            None if !missing_is_error => {}
            None => {
                code = xferstats::EXIT_REJECTED;
                eprintln!(
                    "xferstats: {name}: not in the ledger of {} (never marked as read): nothing to forget",
                    spec.describe()
                );
            }
        }
    }
    Ok(code)
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

/// `cmd` with the `[env: NAME=VALUE]` hint of each option shown only when
/// that variable is set: an unset one would read as set to nothing. The
/// variables are named in the README.
fn env_hints(cmd: clap::Command) -> clap::Command {
    let set: Vec<(clap::Id, bool)> = cmd
        .get_arguments()
        .filter_map(|a| {
            a.get_env().map(|name| (a.get_id().clone(), std::env::var_os(name).is_some_and(|v| !v.is_empty())))
        })
        .collect();
    let mut cmd = set.into_iter().fold(cmd, |c, (id, set)| c.mut_arg(id, |a| a.hide_env(!set)));
    let subs: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for name in subs {
        cmd = cmd.mut_subcommand(name, env_hints);
    }
    cmd
}

// The system allocator: mimalloc saved 0–8 % of the CPU time (events 8 %,
// ingest 1–3 %) but kept 20–65 MiB more resident, growing with the input
// (README, Performance; issue 16's memory bound).

fn main() -> ExitCode {
    let matches = env_hints(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
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
    match run(cli, &matches) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = exit_code_of(&e);
            if code != xferstats::EXIT_OK {
                let mut line = xferstats::error::chain_text(e.as_ref());
                if let Some(check) = xferstats::error::what_to_check(e.as_ref()).filter(|c| !line.contains(c)) {
                    line.push_str(&format!(" ({check})"));
                }
                eprintln!("xferstats: error: {}", xferstats::sanitize::sanitize(&line));
            }
            ExitCode::from(code)
        }
    }
}
