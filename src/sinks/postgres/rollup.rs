//! The daily rollups of the PostgreSQL store, from the one key list of
//! [`crate::rollup`]: the deltas of a batch that was stored whole (fast
//! path), the rows a staged insert actually added (exact path), and the
//! distinct clients per day (`daily_clients`, a table only this store has).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use ::postgres::types::ToSql;
use ::postgres::Transaction;

use super::query::DIALECT;
use crate::model::{client_key, Event};
use crate::rollup::sql::{Rollup, LOGINS, TRANSFERS};
use crate::rollup::{login_row, transfer_row, Deltas};
use crate::time::{day_number, day_string};

/// The client of a raw row, as `daily_clients` keeps it.
pub(super) const CLIENT: &str = "COALESCE(abbrev(client_ip), client_hash, client_host)";

/// Moves the staged rows of a rollup's raw table into it and rolls up
/// exactly the rows inserted (and their clients); returns their count.
fn move_sql(r: &Rollup) -> String {
    let time = DIALECT.time_of(r);
    let n = DIALECT.key_count(r);
    let order: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    format!(
        "WITH ins AS (INSERT INTO {raw} SELECT * FROM stage_{raw} ON CONFLICT DO NOTHING \
         RETURNING {cols}, {CLIENT} AS client), \
         roll AS ({insert} {select} ORDER BY {order} {conflict}), \
         cl AS (INSERT INTO daily_clients (day, server_host, client) \
         SELECT DISTINCT {day}, server_host, client FROM ins WHERE client IS NOT NULL ORDER BY 1, 2, 3 \
         ON CONFLICT DO NOTHING) \
         SELECT count(*) FROM ins",
        raw = r.raw,
        cols = DIALECT.raw_columns(r),
        insert = DIALECT.insert_into(r),
        select = DIALECT.roll_select(r, "ins", ""),
        order = order.join(", "),
        conflict = DIALECT.add_on_conflict(r),
        day = (DIALECT.day_of)(time),
    )
}

/// [`move_sql`] of transfers and of logins.
pub(super) static MOVE: LazyLock<[String; 2]> = LazyLock::new(|| [move_sql(&TRANSFERS), move_sql(&LOGINS)]);

/// Adds the rows given as column arrays (key columns as text, the day
/// first, then the values), sorted by key.
fn upsert_sql(r: &Rollup) -> String {
    let nk = DIALECT.key_count(r);
    let n = nk + r.values.len();
    let names: Vec<String> = (1..=n).map(|i| format!("c{i}")).collect();
    let arrays: Vec<String> = (1..=n).map(|i| format!("${i}::{}[]", if i <= nk { "text" } else { "int8" })).collect();
    let mut select = names.clone();
    select[0] = "c1::date".into();
    format!(
        "{} SELECT {} FROM unnest({}) AS x({}) {}",
        DIALECT.insert_into(r),
        select.join(", "),
        arrays.join(", "),
        names.join(", "),
        DIALECT.add_on_conflict(r)
    )
}

static UPSERT: LazyLock<[String; 2]> = LazyLock::new(|| [upsert_sql(&TRANSFERS), upsert_sql(&LOGINS)]);

/// Rewrites the rollups (and clients) from the raw rows, from the day `$1`
/// on; returns the rows written.
pub(super) fn rebuild(tx: &mut Transaction<'_>, since: &str) -> Result<u64, ::postgres::Error> {
    let mut written = 0;
    for r in [&TRANSFERS, &LOGINS] {
        written += tx.execute(&DIALECT.rebuild_sql(r), &[&since])?;
    }
    let clients: Vec<String> = [&TRANSFERS, &LOGINS]
        .map(|r| {
            let time = DIALECT.time_of(r);
            format!(
                "SELECT {}, server_host, {CLIENT} FROM {} WHERE {} AND {CLIENT} IS NOT NULL",
                (DIALECT.day_of)(time),
                r.raw,
                (DIALECT.rebuild_from)(time)
            )
        })
        .to_vec();
    let sql = format!("INSERT INTO daily_clients (day, server_host, client) {}", clients.join(" UNION "));
    written += tx.execute(&sql, &[&since])?;
    Ok(written)
}

/// Adds the rollup deltas of a batch whose every event is new: one
/// statement per table, the rows passed as arrays in key order.
pub(super) fn add_batch(tx: &mut Transaction<'_>, events: &[Event]) -> Result<(), ::postgres::Error> {
    let mut deltas = Deltas::default();
    let mut clients = BTreeSet::new();
    for ev in events {
        let (time, host, ip, origin, client_host) = match ev {
            Event::Transfer(t) => {
                deltas.transfer(t);
                (t.end, &*t.server_host, t.client_ip, t.origin.as_deref(), t.client_host.as_deref())
            }
            Event::Login(l) => {
                deltas.login(l);
                (l.time, &*l.server_host, l.client_ip, l.origin.as_deref(), l.client_host.as_deref())
            }
        };
        if let Some(k) =
            client_key(ip, origin.and_then(|o| o.ip_prefix), origin.and_then(|o| o.client_hash.as_deref()), client_host)
        {
            clients.insert((day_number(time), host, k));
        }
    }
    let transfers = deltas.transfers();
    upsert(tx, &UPSERT[0], transfers.iter().map(|(k, s)| (transfer_row(k).to_vec(), vec![s.transfers, s.bytes])))?;
    let logins = deltas.logins();
    upsert(tx, &UPSERT[1], logins.iter().map(|(k, n)| (login_row(k).to_vec(), vec![**n])))?;
    if !clients.is_empty() {
        let mut cols: (Vec<String>, Vec<&str>, Vec<&str>) = Default::default();
        for (d, host, client) in &clients {
            cols.0.push(day_string(d * 86_400_000_000));
            cols.1.push(host);
            cols.2.push(client);
        }
        tx.execute(
            "INSERT INTO daily_clients (day, server_host, client) SELECT day::date, h, c \
             FROM unnest($1::text[], $2::text[], $3::text[]) AS x(day, h, c) ON CONFLICT DO NOTHING",
            &[&cols.0, &cols.1, &cols.2],
        )?;
    }
    Ok(())
}

/// Runs an [`upsert_sql`] statement with `rows` (key values, values) turned
/// into column arrays; nothing when there are no rows.
fn upsert<'a>(
    tx: &mut Transaction<'_>,
    sql: &str,
    rows: impl Iterator<Item = (Vec<std::borrow::Cow<'a, str>>, Vec<i64>)>,
) -> Result<(), ::postgres::Error> {
    let mut keys: Vec<Vec<String>> = Vec::new();
    let mut values: Vec<Vec<i64>> = Vec::new();
    for (k, v) in rows {
        keys.resize_with(k.len(), Vec::new);
        values.resize_with(v.len(), Vec::new);
        for (col, x) in keys.iter_mut().zip(k) {
            col.push(x.into_owned());
        }
        for (col, x) in values.iter_mut().zip(v) {
            col.push(x);
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    let params: Vec<&(dyn ToSql + Sync)> =
        keys.iter().map(|c| c as &(dyn ToSql + Sync)).chain(values.iter().map(|c| c as &(dyn ToSql + Sync))).collect();
    tx.execute(sql, &params).map(|_| ())
}
