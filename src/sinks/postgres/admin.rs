//! Maintenance: pruning whole partitions, rebuilding the rollups.

use super::commit::pruned_before;
use super::query::DIALECT;
use super::rollup::CLIENT;
use super::schema::{month_of, month_start_us, partition_month, partition_name};
use super::{pg_err, PgStore, PARTITION_LOCK, RAW_TABLES};
use crate::error::StoreError;
use crate::rollup::sql::{LOGINS, TRANSFERS};
use crate::sinks::{forget_refusal, Admin, Forgotten, Pruned};
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

    fn forget(&mut self, fingerprint: u64) -> Result<Option<Forgotten>, StoreError> {
        self.forget_input(fingerprint)
    }
}

/// `forget`: one input's events out of the raw tables and the rollups
/// (distinct clients included), its ledger entry dropped.
impl PgStore {
    /// [`Admin::forget`].
    fn forget_input(&mut self, fingerprint: u64) -> Result<Option<Forgotten>, StoreError> {
        let target = self.target.clone();
        let err = |what| pg_err(&target, what);
        let fp = fingerprint as i64;
        let mut tx = self.client.transaction().map_err(err("begin forget"))?;
        // Ingests wait, so that no client row is dropped that a concurrent
        // ingest just found present.
        tx.batch_execute("LOCK TABLE daily_transfers, daily_logins, daily_clients IN EXCLUSIVE MODE")
            .map_err(err("lock rollups"))?;
        let Some(entry) = tx
            .query_opt("SELECT name, events_new FROM ledger WHERE fingerprint = $1", &[&fp])
            .map_err(err("read ledger"))?
        else {
            return Ok(None);
        };
        let (name, recorded): (String, i64) = (entry.get(0), entry.get(1));
        let counts = tx
            .query_one(
                "SELECT (SELECT count(*) FROM transfers WHERE input = $1), (SELECT count(*) FROM logins WHERE input = $1)",
                &[&fp],
            )
            .map_err(err("count events"))?;
        let (transfers, logins): (i64, i64) = (counts.get(0), counts.get(1));
        if let Some(e) = forget_refusal(&target, &name, recorded as u64, (transfers + logins) as u64) {
            return Err(e);
        }
        let clients: Vec<String> = [&TRANSFERS, &LOGINS]
            .map(|r| {
                format!(
                    "SELECT {} AS day, server_host, {CLIENT} AS client FROM {} WHERE input = $1 AND {CLIENT} IS NOT NULL",
                    (DIALECT.day_of)(DIALECT.time_of(r)),
                    r.raw
                )
            })
            .to_vec();
        tx.execute(&format!("CREATE TEMP TABLE forget_clients ON COMMIT DROP AS {}", clients.join(" UNION ")), &[&fp])
            .map_err(err("list clients"))?;
        for r in [&TRANSFERS, &LOGINS] {
            tx.execute(&DIALECT.unroll_sql(r, "input = $1"), &[&fp]).map_err(err("subtract from rollups"))?;
            tx.execute(&DIALECT.drop_empty_sql(r), &[]).map_err(err("subtract from rollups"))?;
            tx.execute(&format!("DELETE FROM {} WHERE input = $1", r.raw), &[&fp]).map_err(err("delete events"))?;
        }
        // A client of the forgotten events stays counted on a day where
        // other events of it remain.
        let remains: Vec<String> = [&TRANSFERS, &LOGINS]
            .map(|r| {
                let time = DIALECT.time_of(r);
                format!(
                    "SELECT 1 FROM {raw} x WHERE x.{time} >= d.day::timestamp AT TIME ZONE 'UTC' \
                     AND x.{time} < (d.day + 1)::timestamp AT TIME ZONE 'UTC' AND x.server_host = d.server_host \
                     AND {client} = d.client",
                    raw = r.raw,
                    client = CLIENT.replace("client_", "x.client_")
                )
            })
            .to_vec();
        tx.execute(
            &format!(
                "DELETE FROM daily_clients d USING forget_clients f WHERE (d.day, d.server_host, d.client) = \
                 (f.day, f.server_host, f.client) AND NOT EXISTS ({})",
                remains.join(" UNION ALL ")
            ),
            &[],
        )
        .map_err(err("subtract clients"))?;
        tx.execute("DELETE FROM ledger WHERE fingerprint = $1", &[&fp]).map_err(err("drop ledger entry"))?;
        tx.commit().map_err(err("commit forget"))?;
        Ok(Some(Forgotten { name, transfers: transfers as u64, logins: logins as u64 }))
    }
}
