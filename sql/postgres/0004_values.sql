-- xferstats PostgreSQL schema, version 4: per-day value rollups.
-- daily_values: for each day and each value of one field (user, host,
-- module, protocol, country, geohash cell) or pair of fields (field =
-- 'user,host'; v2 is '' for one field), every report metric. The sets are
-- listed once in the code (rollup::VALUE_SETS); commits add to these rows
-- in the same transaction as the events, and the migration that creates
-- them fills them from the raw rows (as `xferstats rollup --rebuild` does).
-- The index on daily_clients lets distinct clients of any day range be
-- counted by skipping from client to client.
CREATE TABLE daily_values (
    field          text    NOT NULL,
    day            date    NOT NULL,
    v1             text    NOT NULL,
    v2             text    NOT NULL,
    transfers      bigint  NOT NULL,
    completed      bigint  NOT NULL,
    interrupted    bigint  NOT NULL,
    failed         bigint  NOT NULL,
    uploads        bigint  NOT NULL,
    downloads      bigint  NOT NULL,
    bytes_up       bigint  NOT NULL,
    bytes_down     bigint  NOT NULL,
    deletes        bigint  NOT NULL,
    logins_ok      bigint  NOT NULL,
    logins_failed  bigint  NOT NULL,
    PRIMARY KEY (field, day, v1, v2)
);

CREATE INDEX daily_clients_by_client ON daily_clients (client, day);

-- The files (monthly rows) ranked by transfers within a month, for the
-- HTML report's top files.
CREATE INDEX daily_values_files ON daily_values (day, transfers) WHERE field = 'file';
