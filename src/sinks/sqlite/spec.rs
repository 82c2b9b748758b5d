//! Where an SQLite store is: `sqlite:PATH`, `sqlite://PATH`, or a path.

use std::path::PathBuf;

use crate::error::ConfigError;
use crate::sinks::{Env, StoreSpec};

/// The `sqlite:` row of [`crate::sinks::SCHEMES`], which also takes bare
/// paths (`scheme` empty: the path is taken as it is).
pub(crate) fn parse_scheme(scheme: &str, rest: &str, _: &Env<'_>) -> Result<StoreSpec, ConfigError> {
    let path = if scheme.is_empty() { rest } else { rest.strip_prefix("//").unwrap_or(rest) };
    if path.is_empty() {
        return Err(ConfigError::Store(format!("{scheme}:{rest}")));
    }
    Ok(StoreSpec::Sqlite(PathBuf::from(path)))
}
