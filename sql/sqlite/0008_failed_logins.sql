-- xferstats SQLite schema, version 8: the failed logins by client.
-- The HTML report lists the clients with the most failed logins of its
-- period, per day (rollup::sql::failed_login_clients_sql). Read from the
-- raw logins, that scanned every login; this partial index holds only the
-- failed ones, ordered by client (the report's client expression), with
-- every column the list reads, so that it reads the index alone. SQLite
-- keeps it in step with every insert and delete (import, forget, prune).
CREATE INDEX logins_failed_by_client
    ON logins (COALESCE(client_ip, client_hash, client_host, ''), time_us, country, outcome,
               client_ip, client_hash, client_host)
    WHERE outcome <> 'ok';
