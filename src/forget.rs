//! `xferstats forget`: undoing the import of an input read with the wrong
//! options (a custom rsyncd `log format` not given, say), so that it can be
//! read again in full. Every stored event records the ledger fingerprint of
//! the input it came from; forgetting an input removes those events,
//! subtracts them from the daily rollups and drops the input's ledger
//! entry, in one store transaction ([`crate::sinks::Admin::forget`]).
//!
//! The open sessions the decoders keep between runs are kept per format
//! and ingesting host, not per input, and are left as they are: they hold
//! only sessions still open at the end of the inputs read, and a session
//! joins only lines of its own.

use std::path::PathBuf;
use std::time::Duration;

use crate::enrich::hostkey::HostKey;
use crate::error::Error;
use crate::formats::proftpd_extended::{ExtendedFormat, DEFAULT_FORMAT};
use crate::formats::rsync::{LogFormat, DEFAULT_LOG_FORMAT};
use crate::formats::Templates;
use crate::ingest::{rekey_state, store_ids_key};
use crate::input::{Input, Source};
use crate::sinks::{Backend, Forgotten};

/// What became of one input given to [`forget`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgetReport {
    /// The input as given.
    pub name: String,
    /// What was removed; `None` when the store has no ledger entry of it
    /// (never read, or read only with an unusable result).
    pub forgotten: Option<Forgotten>,
}

/// Forgets each of `paths` in `store` (whose ids are keyed with `key`): an
/// input is found by its content, as `ingest` finds its checkpoint, so a
/// renamed or rotated copy is the same input. Stops at the first input
/// that cannot be opened or that the store refuses to forget; those
/// forgotten before stay forgotten.
pub fn forget(paths: &[PathBuf], key: &HostKey, store: &mut dyn Backend) -> Result<Vec<ForgetReport>, Error> {
    // Re-keying open sessions reads no line: the default line layouts do.
    let rsync = LogFormat::compile(DEFAULT_LOG_FORMAT).expect("the default rsyncd log format compiles");
    let proftpd = ExtendedFormat::compile(DEFAULT_FORMAT).expect("the default ProFTPD LogFormat compiles");
    let templates = Templates { rsync: &rsync, proftpd: &proftpd };
    let ids_key = store_ids_key(store, key, &mut |scope, state| rekey_state(&templates, key, scope, state))?;
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let input = Input::open(Source::Path(path.clone()), Duration::ZERO)?;
        let mut forgotten = None;
        for fingerprint in [input.fingerprint(&ids_key), input.first_line_fingerprint(&ids_key)].into_iter().flatten() {
            forgotten = store.forget(fingerprint)?;
            if forgotten.is_some() {
                break;
            }
        }
        out.push(ForgetReport { name: path.display().to_string(), forgotten });
    }
    Ok(out)
}
