//! Maintenance: pruning whole partitions, rebuilding the rollups.

use super::commit::pruned_before;
use super::schema::{month_of, month_start_us, partition_month, partition_name};
use super::{pg_err, PgStore, PARTITION_LOCK, RAW_TABLES};
use crate::error::StoreError;
use crate::sinks::{Admin, Pruned};
use crate::time::day_string;

impl Admin for PgStore {
    fn schema_version(&mut self) -> Result<i64, StoreError> {
        let row = self
            .client
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
            .map_err(self.err("read schema version"))?;
        Ok(row.get::<_, i32>(0) as i64)
    }

    fn prune_raw(&mut self, before: i64) -> Result<Pruned, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let cutoff = month_of(before);
        let mut tx = self.client.transaction().map_err(err("begin prune"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK]).map_err(err("take partition lock"))?;
        let mut pruned = Pruned::default();
        for (table, _) in RAW_TABLES {
            let rows = tx
                .query(
                    "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                     JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1 ORDER BY 1",
                    &[&table],
                )
                .map_err(err("list partitions"))?;
            for r in rows {
                let name: String = r.get(0);
                // A partition goes only if its whole month is before the cut.
                let Some(m) = partition_month(table, &name).filter(|m| *m < cutoff) else { continue };
                let n: i64 = tx
                    .query_one(&format!("SELECT count(*) FROM {}", partition_name(table, m)), &[])
                    .map_err(err("count partition rows"))?
                    .get(0);
                tx.batch_execute(&format!("DROP TABLE {}", partition_name(table, m))).map_err(err("drop partition"))?;
                if table == "transfers" {
                    pruned.transfers += n as u64;
                } else {
                    pruned.logins += n as u64;
                }
                pruned.partitions.push(name);
            }
        }
        let old = pruned_before(&mut tx).map_err(err("read prune horizon"))?;
        let horizon = month_start_us(cutoff);
        tx.execute(
            "INSERT INTO store_meta (key, value) VALUES ('pruned_before', $1) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&old.map_or(horizon, |o| o.max(horizon)).to_string()],
        )
        .map_err(err("record prune horizon"))?;
        tx.commit().map_err(err("commit prune"))?;
        self.months.clear();
        Ok(pruned)
    }

    fn rebuild_rollups(&mut self, since: &str) -> Result<u64, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let mut tx = self.client.transaction().map_err(err("begin rebuild"))?;
        // Ingests wait while the rollups are rebuilt, so none is counted
        // twice or lost.
        tx.batch_execute("LOCK TABLE daily_transfers, daily_logins, daily_clients IN EXCLUSIVE MODE")
            .map_err(err("lock rollups"))?;
        let row = tx
            .query_one(
                "SELECT to_char(LEAST((SELECT MIN(end_ts) FROM transfers), (SELECT MIN(time_ts) FROM logins)) \
                 AT TIME ZONE 'UTC', 'YYYY-MM-DD'), \
                 (SELECT to_char(MIN(day), 'YYYY-MM-DD') FROM (SELECT day FROM daily_transfers UNION ALL \
                 SELECT day FROM daily_logins) d WHERE day >= $1::text::date)",
                &[&since],
            )
            .map_err(err("find raw range"))?;
        if let Some(h) = pruned_before(&mut tx).map_err(err("read prune horizon"))? {
            let since_us = crate::time::parse_day(since).map_or(i64::MIN, |d| d * 86_400_000_000);
            if since_us < h {
                return Err(StoreError::Refused(format!(
                    "{}: raw events before {} were pruned; rebuilding from {since} would lose their rollups \
                     (use --since {} or later)",
                    self.target,
                    day_string(h),
                    day_string(h)
                )));
            }
        }
        let raw_first: Option<String> = row.get(0);
        let rollup_first: Option<String> = row.get(1);
        if let Some(r) = rollup_first {
            if raw_first.as_deref().is_none_or(|f| r.as_str() < f) {
                return Err(StoreError::Refused(format!(
                    "{}: the raw events of {r} and later days up to {} were pruned; rebuilding from {since} would \
                     lose their rollups (use --since {})",
                    self.target,
                    raw_first.as_deref().unwrap_or("today"),
                    raw_first.as_deref().unwrap_or("a later day")
                )));
            }
        }
        for sql in [
            "DELETE FROM daily_transfers WHERE day >= $1::text::date",
            "DELETE FROM daily_logins WHERE day >= $1::text::date",
            "DELETE FROM daily_clients WHERE day >= $1::text::date",
        ] {
            tx.execute(sql, &[&since]).map_err(err("clear rollups"))?;
        }
        let written = super::rollup::rebuild(&mut tx, since).map_err(err("rebuild rollups"))?;
        tx.commit().map_err(err("commit rebuild"))?;
        Ok(written)
    }
}
