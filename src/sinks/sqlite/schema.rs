//! The schema migrations.

use super::SqliteStore;
use crate::error::StoreError;

/// Schema migrations, applied in order; the index + 1 is the version.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../../../sql/sqlite/0001_init.sql"),
    include_str!("../../../sql/sqlite/0002_enrich.sql"),
    include_str!("../../../sql/sqlite/0003_store_meta.sql"),
    include_str!("../../../sql/sqlite/0004_event_input.sql"),
];

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
        let current: i64 = tx
            .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))
            .map_err(err("read schema version"))?;
        let supported = MIGRATIONS.len() as i64;
        if current > supported {
            return Err(StoreError::NewerSchema { path: self.path.clone(), found: current, supported });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql).map_err(err("apply migration"))?;
            tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [i as i64 + 1])
                .map_err(err("record migration"))?;
        }
        tx.commit().map_err(err("commit migration"))?;
        Ok(())
    }
}
