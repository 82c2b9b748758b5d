-- xferstats PostgreSQL schema, version 1.
-- Times are timestamptz; days are UTC dates (the session runs with TimeZone UTC).
-- Raw tables are partitioned by month of the event time; xferstats creates a
-- month's partitions before it first writes into it (there is no default
-- partition). Retention drops whole partitions; the daily rollups stay.

-- One row per file transfer or deletion.
CREATE TABLE transfers (
    end_ts       timestamptz      NOT NULL,   -- when the transfer ended
    event_id     bigint           NOT NULL,   -- content-derived, dedups re-imports
    start_ts     timestamptz,                 -- when it started, if logged
    protocol     text             NOT NULL,   -- rsync, sftp, scp, ftp, ftps, ssh, http
    direction    text             NOT NULL,   -- upload, download, delete
    status       text             NOT NULL,   -- completed, interrupted, failed
    bytes        bigint           NOT NULL CHECK (bytes >= 0),
    wire_bytes   bigint,                      -- bytes on the wire, if logged (rsync %b)
    file_size    bigint,
    path         text,
    module       text,
    username     text             NOT NULL,   -- login name, 'anonymous' if none
    client_ip    inet,                        -- as the IP mode allows: address, network, or NULL
    client_host  text,
    session      text,
    server_host  text             NOT NULL,
    source       text             NOT NULL,   -- log format
    granularity  text             NOT NULL,   -- file or session
    country      text,                        -- ISO 3166-1 alpha-2 (GeoIP)
    city         text,
    latitude     double precision,
    longitude    double precision,
    geohash      text,
    client_hash  text,                        -- HMAC-SHA256 of the client address, 22 chars
    PRIMARY KEY (end_ts, event_id)
) PARTITION BY RANGE (end_ts);

-- One row per authentication attempt.
CREATE TABLE logins (
    time_ts      timestamptz      NOT NULL,
    event_id     bigint           NOT NULL,
    protocol     text             NOT NULL,
    username     text             NOT NULL,
    client_ip    inet,
    client_host  text,
    outcome      text             NOT NULL,   -- ok, failed, invalid_user
    method       text,
    session      text,
    server_host  text             NOT NULL,
    source       text             NOT NULL,
    country      text,
    city         text,
    latitude     double precision,
    longitude    double precision,
    geohash      text,
    client_hash  text,
    PRIMARY KEY (time_ts, event_id)
) PARTITION BY RANGE (time_ts);

-- Daily rollup of transfers (UTC day of end_ts), kept in step with the raw
-- rows inserted, in the same transaction.
CREATE TABLE daily_transfers (
    day          date   NOT NULL,
    server_host  text   NOT NULL,
    protocol     text   NOT NULL,
    direction    text   NOT NULL,
    status       text   NOT NULL,
    module       text   NOT NULL,             -- '' when none
    username     text   NOT NULL,
    transfers    bigint NOT NULL,
    bytes        bigint NOT NULL,
    PRIMARY KEY (day, server_host, protocol, direction, status, module, username)
);

-- Daily rollup of logins.
CREATE TABLE daily_logins (
    day          date   NOT NULL,
    server_host  text   NOT NULL,
    protocol     text   NOT NULL,
    username     text   NOT NULL,
    outcome      text   NOT NULL,
    logins       bigint NOT NULL,
    PRIMARY KEY (day, server_host, protocol, username, outcome)
);

-- Distinct clients per server host and day (transfers and logins): the
-- client hash, else the stored address or network, else the host name.
-- count(*) per (day, server_host) is the number of unique clients.
CREATE TABLE daily_clients (
    day          date   NOT NULL,
    server_host  text   NOT NULL,
    client       text   NOT NULL,
    PRIMARY KEY (day, server_host, client)
);

-- What each input (by fingerprint of its first line) has contributed.
CREATE TABLE ledger (
    fingerprint  bigint      PRIMARY KEY,
    name         text        NOT NULL,        -- path it was last read under
    format       text        NOT NULL,
    "offset"     bigint      NOT NULL,        -- decompressed bytes consumed
    lines        bigint      NOT NULL,
    tail_hash    bigint      NOT NULL,
    ids_state    text        NOT NULL,
    events_new   bigint      NOT NULL,
    events_dup   bigint      NOT NULL,
    rejected     bigint      NOT NULL,
    first_import timestamptz NOT NULL,
    last_import  timestamptz NOT NULL
);

-- Open sessions of each format, carried from one run to the next.
CREATE TABLE session_state (
    scope        text        PRIMARY KEY,
    state        text        NOT NULL,
    updated      timestamptz NOT NULL
);
