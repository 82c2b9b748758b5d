//! The schema: migrations, and the month partitions of the raw tables.

use super::{pg_err, PgStore, MIGRATION_LOCK, PARTITION_LOCK, RAW_TABLES};
use crate::error::StoreError;
use crate::model::Event;

/// Schema migrations by version, in ascending order; numbers may have gaps
/// (see [`crate::sinks::pending_migrations`]).
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../sql/postgres/0001_init.sql")),
    (2, include_str!("../../../sql/postgres/0002_store_meta.sql")),
    (3, include_str!("../../../sql/postgres/0003_event_input.sql")),
    (VALUES_VERSION, include_str!("../../../sql/postgres/0004_values.sql")),
    (5, include_str!("../../../sql/postgres/0005_hook_outbox.sql")),
];

/// The version that adds `daily_values`, filled from the raw rows when it
/// is applied.
const VALUES_VERSION: i64 = 4;

/// Month index (year × 12 + month − 1) of a Unix µs time.
pub(super) fn month_of(us: i64) -> i64 {
    let days = us.div_euclid(86_400_000_000);
    let (y, m, _) = crate::time::civil_from_days(days);
    y as i64 * 12 + (m as i64 - 1)
}

/// The month of all these events when they fall in one (found from the
/// earliest and the latest time: a part's events mostly do), else `None`.
fn one_month(events: &[Event]) -> Option<i64> {
    month_of_all(events.iter().map(Event::time))
}

/// The month of all of `times` when they fall in one.
fn month_of_all(times: impl Iterator<Item = i64>) -> Option<i64> {
    let (lo, hi) = times.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    (lo <= hi && month_of(lo) == month_of(hi)).then(|| month_of(lo))
}

fn month_start(idx: i64) -> String {
    format!("{:04}-{:02}-01 00:00:00+00", idx.div_euclid(12), idx.rem_euclid(12) + 1)
}

/// Unix µs of the start of month `idx`.
pub(super) fn month_start_us(idx: i64) -> i64 {
    let (y, m) = (idx.div_euclid(12), idx.rem_euclid(12) + 1);
    crate::time::days_from_civil(y as i32, m as u32, 1) * 86_400_000_000
}

pub(super) fn partition_name(table: &str, idx: i64) -> String {
    format!("{table}_y{:04}m{:02}", idx.div_euclid(12), idx.rem_euclid(12) + 1)
}

/// The month index a partition name stands for.
pub(super) fn partition_month(table: &str, name: &str) -> Option<i64> {
    let rest = name.strip_prefix(table)?.strip_prefix("_y")?;
    let (y, m) = rest.split_once('m')?;
    let (y, m): (i64, i64) = (y.parse().ok()?, m.parse().ok()?);
    (1..=12).contains(&m).then_some(y * 12 + m - 1)
}
impl PgStore {
    /// Applies pending migrations under an advisory lock (several ingesters
    /// may start at once); refuses a database from a newer binary.
    pub(super) fn migrate(&mut self) -> Result<(), StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        self.client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).map_err(err("take migration lock"))?;
        let result = (|| {
            let mut tx = self.client.transaction().map_err(err("begin migration"))?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
                .map_err(err("create schema_version"))?;
            let applied: Vec<i64> = tx
                .query("SELECT version FROM schema_version", &[])
                .map_err(err("read schema version"))?
                .iter()
                .map(|r| r.get::<_, i32>(0) as i64)
                .collect();
            let pending = crate::sinks::pending_migrations(MIGRATIONS, &applied)
                .map_err(|(found, supported)| StoreError::NewerPgSchema { target: target.clone(), found, supported })?;
            for (version, sql) in pending {
                tx.batch_execute(sql).map_err(err("apply migration"))?;
                if version == VALUES_VERSION {
                    super::rollup::roll_values(&mut tx, None).map_err(err("fill value rollups"))?;
                }
                tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&(version as i32)])
                    .map_err(err("record migration"))?;
            }
            tx.commit().map_err(err("commit migration"))
        })();
        let unlock = self.client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
        result?;
        unlock.map_err(err("release migration lock"))?;
        Ok(())
    }

    /// Whether some of these events fall in a month without partitions.
    pub(super) fn missing_months(&self, events: &[Event]) -> bool {
        match one_month(events) {
            Some(m) => !self.months.contains(&m),
            None => events.iter().any(|e| !self.months.contains(&month_of(e.time()))),
        }
    }

    /// Creates the partitions of the months these events fall in.
    pub(super) fn ensure_partitions(&mut self, events: &[Event]) -> Result<(), StoreError> {
        if one_month(events).is_some_and(|m| self.months.contains(&m)) {
            return Ok(());
        }
        let mut missing: Vec<i64> =
            events.iter().map(|e| month_of(e.time())).filter(|m| !self.months.contains(m)).collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let mut tx = self.client.transaction().map_err(err("begin partition creation"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK]).map_err(err("take partition lock"))?;
        for &m in &missing {
            for (table, _) in RAW_TABLES {
                // Names and bounds are made from integers only.
                tx.batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {} PARTITION OF {table} FOR VALUES FROM ('{}') TO ('{}')",
                    partition_name(table, m),
                    month_start(m),
                    month_start(m + 1)
                ))
                .map_err(err("create partition"))?;
            }
        }
        tx.commit().map_err(err("commit partition creation"))?;
        self.months.extend(missing);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_partition_names() {
        // 2026-03-01 10:00:00 UTC
        let t = 1_772_359_200_000_000;
        let m = month_of(t);
        assert_eq!(partition_name("transfers", m), "transfers_y2026m03");
        assert_eq!(month_start(m), "2026-03-01 00:00:00+00");
        assert_eq!(month_start(m + 10), "2027-01-01 00:00:00+00");
        assert_eq!(partition_month("transfers", "transfers_y2026m03"), Some(m));
        assert_eq!(partition_month("transfers", "logins_y2026m03"), None);
        assert_eq!(partition_month("transfers", "transfers_y2026m13"), None);
        assert_eq!(month_of(-1), 1969 * 12 + 11);
        let day = 86_400_000_000;
        assert_eq!(month_of_all([t + day, t, t + 20 * day].into_iter()), Some(m));
        assert_eq!(month_of_all([t + day, t + 40 * day, t].into_iter()), None);
        assert_eq!(month_of_all([t - 10 * day, t].into_iter()), None);
        assert_eq!(month_of_all(std::iter::empty()), None);
    }
}
