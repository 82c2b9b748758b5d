//! SQL shared by the SQL stores' report queries, written once with the
//! pieces in which their dialects differ.

/// The SQL pieces in which the SQL stores' raw tables differ, so that the
/// ranked-list queries are written once ([`top_files_sql`],
/// [`failed_transfers_sql`], [`failed_login_clients_sql`]).
pub(crate) struct RawDialect<'a> {
    /// Day (`YYYY-MM-DD`) of a transfer row.
    pub transfer_day: &'a str,
    /// Day of a login row.
    pub login_day: &'a str,
    /// Range filter over transfer rows.
    pub transfer_range: &'a str,
    /// Range filter over login rows.
    pub login_range: &'a str,
    /// End time of a transfer row in µs (a bigint).
    pub transfer_us: &'a str,
    /// The user column.
    pub user: &'a str,
    /// The client expression (as [`Key::Client`] reports it).
    pub client: &'a str,
    /// Placeholder of the row limit.
    pub limit: &'a str,
    /// Suffix of each sum (`::bigint` in PostgreSQL).
    pub cast: &'a str,
}

/// Per-day transfers and bytes of the `limit` files with the most uploads
/// and downloads in the range: `day, path, '', count, bytes`.
pub(crate) fn top_files_sql(d: &RawDialect<'_>) -> String {
    format!(
        "WITH top AS (SELECT path FROM transfers WHERE {range} AND direction <> 'delete' AND path IS NOT NULL \
         GROUP BY path ORDER BY COUNT(*) DESC, path LIMIT {limit}) \
         SELECT {day}, transfers.path, '', COUNT(*){cast}, SUM(bytes){cast} FROM transfers JOIN top ON top.path = transfers.path \
         WHERE {range} AND direction <> 'delete' GROUP BY 1, 2 ORDER BY 1, 2",
        range = d.transfer_range,
        limit = d.limit,
        day = d.transfer_day,
        cast = d.cast,
    )
}

/// The `limit` latest transfers in the range that did not complete, newest
/// first, in [`FailedTransfer`] field order.
pub(crate) fn failed_transfers_sql(d: &RawDialect<'_>) -> String {
    format!(
        "SELECT {us}, {user}, server_host, COALESCE(module, ''), protocol, direction, status, COALESCE(path, ''), \
         {client}, COALESCE(country, '') FROM transfers WHERE {range} AND status <> 'completed' \
         ORDER BY 1 DESC LIMIT {limit}",
        us = d.transfer_us,
        user = d.user,
        client = d.client,
        range = d.transfer_range,
        limit = d.limit,
    )
}

/// Per-day failed logins of the `limit` clients with the most failed logins
/// in the range: `day, client, country, count, 0`.
pub(crate) fn failed_login_clients_sql(d: &RawDialect<'_>) -> String {
    format!(
        "WITH top AS (SELECT {client} AS client FROM logins WHERE {range} AND outcome <> 'ok' \
         GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT {limit}) \
         SELECT {day}, {client}, COALESCE(country, ''), COUNT(*){cast}, 0{cast} FROM logins \
         JOIN top ON top.client = {client} WHERE {range} AND outcome <> 'ok' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        client = d.client,
        range = d.login_range,
        limit = d.limit,
        day = d.login_day,
        cast = d.cast,
    )
}
