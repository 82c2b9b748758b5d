//! Maintenance: pruning raw rows, rebuilding the rollups.

use rusqlite::{Connection, OptionalExtension};

use super::query::DIALECT;
use super::{err_at, SqliteStore};
use crate::error::StoreError;
use crate::rollup;
use crate::sinks::{forget_refusal, Admin, Forgotten, Pruned, Sink};

impl Admin for SqliteStore {
    fn schema_version(&mut self) -> Result<i64, StoreError> {
        SqliteStore::schema_version(self)
    }

    fn prune_raw(&mut self, before: i64) -> Result<Pruned, StoreError> {
        // Whole UTC days only, so every day is either fully in the raw
        // tables or not at all (a rebuild can tell which).
        let before = crate::time::day_number(before) * 86_400_000_000;
        let tx = self.conn.transaction().map_err(err_at(&self.path, "begin prune"))?;
        let old = pruned_before(&tx).map_err(err_at(&self.path, "read prune horizon"))?;
        tx.execute(
            "INSERT INTO store_meta (key, value) VALUES ('pruned_before', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [old.map_or(before, |o| o.max(before)).to_string()],
        )
        .map_err(err_at(&self.path, "record prune horizon"))?;
        let transfers =
            tx.execute("DELETE FROM transfers WHERE end_us < ?1", [before]).map_err(err_at(&self.path, "prune"))?;
        let logins =
            tx.execute("DELETE FROM logins WHERE time_us < ?1", [before]).map_err(err_at(&self.path, "prune"))?;
        // Delivered hooks of those events: they cannot be stored again.
        tx.execute("DELETE FROM hook_outbox WHERE state = 'done' AND event_time_us < ?1", [before])
            .map_err(err_at(&self.path, "prune hook deliveries"))?;
        tx.commit().map_err(err_at(&self.path, "commit prune"))?;
        Ok(Pruned { transfers: transfers as u64, logins: logins as u64, partitions: Vec::new() })
    }

    fn rebuild_rollups(&mut self, since: &str) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err_at(&path, "begin rebuild"))?;
        let since_us = crate::time::parse_day(since).map(|d| d * 86_400_000_000).unwrap_or(i64::MIN);
        if let Some(h) = pruned_before(&tx).map_err(err_at(&path, "read prune horizon"))?.filter(|h| since_us < *h) {
            return Err(StoreError::Refused(format!(
                "sqlite:{}: raw events before {} were pruned; rebuilding from {since} would lose their rollups \
                 (use --since {} or later)",
                path.display(),
                crate::time::day_string(h),
                crate::time::day_string(h)
            )));
        }
        let (raw_first, rollup_first): (Option<String>, Option<String>) = tx
            .query_row(
                "SELECT date(MIN(t) / 1000000, 'unixepoch'), (SELECT MIN(day) FROM (SELECT day FROM daily_transfers \
                 UNION ALL SELECT day FROM daily_logins) WHERE day >= ?1) FROM (SELECT MIN(end_us) AS t FROM \
                 transfers UNION ALL SELECT MIN(time_us) FROM logins)",
                [since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(err_at(&path, "find raw range"))?;
        if let Some(r) = rollup_first {
            if raw_first.as_deref().is_none_or(|f| r.as_str() < f) {
                return Err(StoreError::Refused(format!(
                    "sqlite:{}: the raw events of {r} and later days up to {} were pruned; rebuilding from {since} \
                     would lose their rollups (use --since {})",
                    path.display(),
                    raw_first.as_deref().unwrap_or("today"),
                    raw_first.as_deref().unwrap_or("a later day")
                )));
            }
        }
        tx.execute("DELETE FROM daily_transfers WHERE day >= ?1", [since]).map_err(err_at(&path, "clear rollups"))?;
        tx.execute("DELETE FROM daily_logins WHERE day >= ?1", [since]).map_err(err_at(&path, "clear rollups"))?;
        let mut written = 0;
        for r in [&rollup::sql::TRANSFERS, &rollup::sql::LOGINS] {
            written +=
                tx.execute(&DIALECT.rebuild_sql(r), [since_us]).map_err(err_at(&path, "rebuild rollups"))? as u64;
        }
        written += roll_values(&tx, Some(since)).map_err(err_at(&path, "rebuild rollups"))?;
        tx.commit().map_err(err_at(&path, "commit rebuild"))?;
        Ok(written)
    }

    fn forget(&mut self, fingerprint: u64) -> Result<Option<Forgotten>, StoreError> {
        self.forget_input(fingerprint)
    }
}

/// Rewrites the value rollup and the daily clients of the days from `since`
/// (`YYYY-MM-DD`) on, and of its whole month for the monthly sets (`None`:
/// fills them all), the daily rollups being complete for those days.
pub(super) fn roll_values(conn: &Connection, since: Option<&str>) -> rusqlite::Result<u64> {
    let us = |day: &str| crate::time::parse_day(day).map_or(i64::MIN, |d| d * 86_400_000_000);
    let mut written = 0;
    for monthly in [false, true] {
        let from = since.map(|d| if monthly { format!("{}-01", d.get(..7).unwrap_or(d)) } else { d.to_string() });
        if let Some(from) = &from {
            conn.execute(&DIALECT.values_clear_sql(monthly), [us(from)])?;
        }
        for r in [&rollup::sql::TRANSFERS, &rollup::sql::LOGINS] {
            let sql = DIALECT.values_rebuild_sql(r, monthly, from.is_some());
            written += match &from {
                Some(from) => conn.execute(&sql, [us(from)])?,
                None => conn.execute(&sql, [])?,
            } as u64;
        }
    }
    let since = since.map_or(i64::MIN, us);
    if since > i64::MIN {
        conn.execute("DELETE FROM daily_clients WHERE day >= date(?1 / 1000000, 'unixepoch')", [since])?;
    }
    for r in [&rollup::sql::TRANSFERS, &rollup::sql::LOGINS] {
        let time = DIALECT.time_of(r);
        written += conn.execute(
            &format!(
                "INSERT OR IGNORE INTO daily_clients (client, day) SELECT {CLIENT}, {} FROM {} WHERE {} AND {CLIENT} <> ''",
                (DIALECT.day_of)(time),
                r.raw,
                (DIALECT.rebuild_from)(time)
            ),
            [since],
        )? as u64;
    }
    Ok(written)
}

/// The client of a raw row as `daily_clients` keeps it (NULL when unknown).
const CLIENT: &str = "COALESCE(client_ip, client_hash, client_host)";

/// The prune horizon (µs), if the store was ever pruned.
pub(super) fn pruned_before(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT value FROM store_meta WHERE key = 'pruned_before'")?
        .query_row([], |r| r.get::<_, String>(0))
        .optional()
        .map(|v| v.and_then(|v| v.parse().ok()))
}

/// `forget`: one input's events out of the raw tables and the rollups,
/// its ledger entry dropped.
impl SqliteStore {
    /// [`Admin::forget`].
    pub(super) fn forget_input(&mut self, fingerprint: u64) -> Result<Option<Forgotten>, StoreError> {
        let (path, store) = (self.path.clone(), self.describe());
        let err = |what| err_at(&path, what);
        let fp = fingerprint as i64;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err("begin forget"))?;
        let entry: Option<(String, i64)> = tx
            .query_row("SELECT name, events_new FROM ledger WHERE fingerprint = ?1", [fp], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(err("read ledger"))?;
        let Some((name, recorded)) = entry else { return Ok(None) };
        let count = |table: &str| {
            tx.query_row(&format!("SELECT count(*) FROM {table} WHERE input = ?1"), [fp], |r| r.get::<_, i64>(0))
        };
        let (transfers, logins) =
            (count("transfers").map_err(err("count events"))?, count("logins").map_err(err("count events"))?);
        if let Some(e) = forget_refusal(&store, &name, recorded as u64, (transfers + logins) as u64) {
            return Err(e);
        }
        let rollups = [&rollup::sql::TRANSFERS, &rollup::sql::LOGINS];
        let clients = rollups.map(|r| {
            let day = (DIALECT.day_of)(DIALECT.time_of(r));
            format!("SELECT {CLIENT} AS client, {day} AS day FROM {} WHERE input = ?1 AND {CLIENT} <> ''", r.raw)
        });
        tx.execute_batch("DROP TABLE IF EXISTS temp.forget_clients").map_err(err("list clients"))?;
        tx.execute(&format!("CREATE TEMP TABLE forget_clients AS {}", clients.join(" UNION ")), [fp])
            .map_err(err("list clients"))?;
        for r in rollups {
            tx.execute(&DIALECT.unroll_sql(r, "input = ?1"), [fp]).map_err(err("subtract from rollups"))?;
            tx.execute(&DIALECT.drop_empty_sql(r), []).map_err(err("subtract from rollups"))?;
            tx.execute(&DIALECT.values_unroll_sql(r, "input = ?1"), [fp]).map_err(err("subtract from rollups"))?;
            tx.execute(&format!("DELETE FROM {} WHERE input = ?1", r.raw), [fp]).map_err(err("delete events"))?;
        }
        tx.execute(&DIALECT.values_drop_empty_sql(), []).map_err(err("subtract from rollups"))?;
        // A client of the forgotten events stays counted on a day where
        // other events of it remain (the days of an input are never
        // pruned in part: forget refuses an input whose events were).
        let remains = rollups.map(|r| {
            let time = DIALECT.time_of(r);
            format!(
                "SELECT {CLIENT}, {} FROM {} WHERE {time} >= (SELECT strftime('%s', min(day)) * 1000000 FROM \
                 forget_clients) AND {time} < (SELECT (strftime('%s', max(day)) + 86400) * 1000000 FROM forget_clients)",
                (DIALECT.day_of)(time),
                r.raw
            )
        });
        tx.execute(
            &format!(
                "DELETE FROM daily_clients WHERE (client, day) IN (SELECT client, day FROM forget_clients EXCEPT {})",
                remains.join(" UNION ")
            ),
            [],
        )
        .map_err(err("subtract clients"))?;
        tx.execute_batch("DROP TABLE temp.forget_clients").map_err(err("subtract clients"))?;
        tx.execute("DELETE FROM ledger WHERE fingerprint = ?1", [fp]).map_err(err("drop ledger entry"))?;
        tx.commit().map_err(err("commit forget"))?;
        Ok(Some(Forgotten { name, transfers: transfers as u64, logins: logins as u64 }))
    }
}
