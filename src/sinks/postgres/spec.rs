//! Where a PostgreSQL store is: a libpq URL or the libpq `PG*` variables,
//! with a description for messages that never holds the password.

use crate::error::ConfigError;
use crate::sinks::{Env, StoreSpec};

/// The `postgres:`/`postgresql:` row of [`crate::sinks::SCHEMES`]: a libpq
/// URL (`rest` starts with `//`), or nothing for the `PG*` variables.
pub(crate) fn parse_scheme(scheme: &str, rest: &str, env: &Env<'_>) -> Result<StoreSpec, ConfigError> {
    let url = match rest {
        "" => None,
        r if r.starts_with("//") => Some(format!("{scheme}:{rest}")),
        _ => {
            return Err(ConfigError::PostgresUrl {
                scheme: scheme.to_string(),
                reason: format!("expected {scheme}://… or {scheme}: alone"),
            })
        }
    };
    Ok(StoreSpec::Postgres(Box::new(PgSpec::parse(url.as_deref(), env)?)))
}

/// A PostgreSQL connection: the driver's configuration and a description
/// without the password. `Debug` never shows the password.
#[derive(Clone)]
pub struct PgSpec {
    /// Driver configuration (host, port, user, password, database, …).
    pub config: postgres::Config,
    /// `postgres://user@host:port/dbname`, for messages.
    pub describe: String,
}

impl std::fmt::Debug for PgSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PgSpec").field(&self.describe).finish()
    }
}

impl PgSpec {
    /// From a `postgres://` / `postgresql://` URL (libpq syntax), or from
    /// the libpq `PG*` environment variables when `url` is `None`
    /// (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
    /// `PGAPPNAME`, `PGCONNECT_TIMEOUT`).
    pub fn parse(url: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Result<PgSpec, ConfigError> {
        let mut config = match url {
            Some(u) => u.parse::<postgres::Config>().map_err(|e| ConfigError::PostgresUrl {
                scheme: u.split("://").next().unwrap_or("postgres").to_string(),
                reason: redact(&e.to_string(), u),
            })?,
            None => {
                let mut c = postgres::Config::new();
                c.host(&env("PGHOST").unwrap_or_else(|| "/var/run/postgresql".into()));
                if let Some(p) = env("PGPORT") {
                    c.port(p.trim().parse().map_err(|_| ConfigError::PostgresUrl {
                        scheme: "postgres".into(),
                        reason: format!("PGPORT '{p}' is not a port number"),
                    })?);
                }
                if let Some(u) = env("PGUSER").or_else(|| env("USER")) {
                    c.user(&u);
                }
                if let Some(pw) = env("PGPASSWORD") {
                    c.password(pw);
                }
                if let Some(d) = env("PGDATABASE") {
                    c.dbname(&d);
                }
                if let Some(a) = env("PGAPPNAME") {
                    c.application_name(&a);
                }
                if let Some(t) = env("PGCONNECT_TIMEOUT").and_then(|t| t.trim().parse::<u64>().ok()) {
                    c.connect_timeout(std::time::Duration::from_secs(t));
                }
                c
            }
        };
        if config.get_hosts().is_empty() {
            config.host("/var/run/postgresql");
        }
        if config.get_user().is_none() {
            if let Some(u) = env("USER") {
                config.user(&u);
            }
        }
        if config.get_application_name().is_none() {
            config.application_name("xferstats");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let describe = describe(&config);
        Ok(PgSpec { config, describe })
    }
}

/// `postgres://user@host:port/dbname` (never the password).
fn describe(c: &postgres::Config) -> String {
    let host = match c.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let user = c.get_user().unwrap_or("");
    let db = c.get_dbname().or(c.get_user()).unwrap_or("");
    format!("postgres://{user}@{host}:{port}/{db}")
}

/// Removes a password that a parser's message might quote.
fn redact(msg: &str, url: &str) -> String {
    let pw = url.split("://").nth(1).and_then(|r| r.split('@').next()).and_then(|u| u.split_once(':')).map(|(_, p)| p);
    match pw {
        Some(p) if !p.is_empty() => msg.replace(p, "***"),
        _ => msg.to_string(),
    }
}
