-- xferstats SQLite schema, version 5: per-day value rollups.
-- daily_values: for each day and each value of one field (user, host,
-- module, protocol, country, geohash cell) or pair of fields (field =
-- 'user,host'; v2 is '' for one field), every report metric. The sets are
-- listed once in the code (rollup::VALUE_SETS); commits add to these rows
-- in the same transaction as the events, and the migration that creates
-- them fills them from the raw rows (as `xferstats rollup --rebuild` does).
-- daily_clients: the clients seen each day (address, network, keyed hash
-- or host name, as stored), for distinct-client counts of any day range.
CREATE TABLE daily_values (
    field          TEXT    NOT NULL,
    day            TEXT    NOT NULL,
    v1             TEXT    NOT NULL,
    v2             TEXT    NOT NULL,
    transfers      INTEGER NOT NULL,
    completed      INTEGER NOT NULL,
    interrupted    INTEGER NOT NULL,
    failed         INTEGER NOT NULL,
    uploads        INTEGER NOT NULL,
    downloads      INTEGER NOT NULL,
    bytes_up       INTEGER NOT NULL,
    bytes_down     INTEGER NOT NULL,
    deletes        INTEGER NOT NULL,
    logins_ok      INTEGER NOT NULL,
    logins_failed  INTEGER NOT NULL,
    PRIMARY KEY (field, day, v1, v2)
) WITHOUT ROWID;

CREATE TABLE daily_clients (
    client         TEXT    NOT NULL,
    day            TEXT    NOT NULL,
    PRIMARY KEY (client, day)
) WITHOUT ROWID;

-- The files (monthly rows) ranked by transfers within a month, for the
-- HTML report's top files.
CREATE INDEX daily_values_files ON daily_values (day, transfers) WHERE field = 'file';
