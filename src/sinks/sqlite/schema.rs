//! The schema migrations.

use super::SqliteStore;
use crate::error::StoreError;

/// Schema migrations by version, in ascending order; numbers may have gaps
/// (see [`crate::sinks::pending_migrations`]).
pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../sql/sqlite/0001_init.sql")),
    (2, include_str!("../../../sql/sqlite/0002_enrich.sql")),
    (3, include_str!("../../../sql/sqlite/0003_store_meta.sql")),
    (4, include_str!("../../../sql/sqlite/0004_event_input.sql")),
    (VALUES_VERSION, include_str!("../../../sql/sqlite/0005_values.sql")),
    (6, include_str!("../../../sql/sqlite/0006_hook_outbox.sql")),
    (8, include_str!("../../../sql/sqlite/0008_failed_logins.sql")),
];

/// The version that adds `daily_values` and `daily_clients`, filled from
/// the raw rows when it is applied.
const VALUES_VERSION: i64 = 5;

impl SqliteStore {
    /// Applies pending migrations; refuses a database from a newer binary.
    pub(super) fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |what| {
            let path = path.clone();
            move |source| StoreError::Sqlite { path: path.clone(), what, source }
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err("begin migration"))?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .map_err(err("create schema_version"))?;
        let applied: Vec<i64> = tx
            .prepare("SELECT version FROM schema_version")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(err("read schema version"))?;
        let pending = crate::sinks::pending_migrations(MIGRATIONS, &applied)
            .map_err(|(found, supported)| StoreError::NewerSchema { path: self.path.clone(), found, supported })?;
        // A new store (no version applied) gets every table from these
        // migrations, in this transaction: it has no rows to roll up.
        let fresh = applied.is_empty();
        for (version, sql) in pending {
            tx.execute_batch(sql).map_err(err("apply migration"))?;
            if version == VALUES_VERSION && !fresh {
                super::admin::roll_values(&tx, None).map_err(err("fill value rollups"))?;
            }
            tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [version])
                .map_err(err("record migration"))?;
        }
        tx.commit().map_err(err("commit migration"))?;
        Ok(())
    }
}
