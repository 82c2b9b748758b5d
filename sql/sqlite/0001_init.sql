-- xferstats SQLite schema, version 1.
-- Times are UTC: *_us columns are Unix microseconds, day columns 'YYYY-MM-DD'.
-- Raw tables are keyed by (time, content-derived event id): re-imports are
-- refused by the key, and inserts append in time order to one B-tree.

-- One row per file transfer or deletion.
CREATE TABLE transfers (
    end_us       INTEGER NOT NULL,          -- when the transfer ended
    event_id     INTEGER NOT NULL,          -- content-derived, dedups re-imports
    start_us     INTEGER,                   -- when it started, if logged
    protocol     TEXT    NOT NULL,          -- rsync, sftp, scp, ftp, ftps, http
    direction    TEXT    NOT NULL,          -- upload, download, delete
    status       TEXT    NOT NULL,          -- completed, interrupted, failed
    bytes        INTEGER NOT NULL,          -- payload bytes moved (0 for deletes)
    wire_bytes   INTEGER,                   -- bytes on the wire, if logged (rsync %b)
    file_size    INTEGER,                   -- full file (or file set) size, if logged
    path         TEXT,
    module       TEXT,
    user         TEXT    NOT NULL,          -- login name, 'anonymous' if none
    client_ip    TEXT,
    client_host  TEXT,
    session      TEXT,
    server_host  TEXT    NOT NULL,
    source       TEXT    NOT NULL,          -- log format
    granularity  TEXT    NOT NULL,          -- file or session
    PRIMARY KEY (end_us, event_id)
) WITHOUT ROWID;

-- One row per authentication attempt.
CREATE TABLE logins (
    time_us      INTEGER NOT NULL,
    event_id     INTEGER NOT NULL,
    protocol     TEXT    NOT NULL,
    user         TEXT    NOT NULL,
    client_ip    TEXT,
    client_host  TEXT,
    outcome      TEXT    NOT NULL,          -- ok, failed, invalid_user
    method       TEXT,
    session      TEXT,
    server_host  TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    PRIMARY KEY (time_us, event_id)
) WITHOUT ROWID;

-- Daily rollup of transfers, kept in step with the raw rows inserted.
CREATE TABLE daily_transfers (
    day          TEXT    NOT NULL,
    server_host  TEXT    NOT NULL,
    protocol     TEXT    NOT NULL,
    direction    TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    module       TEXT    NOT NULL,          -- '' when none
    user         TEXT    NOT NULL,
    transfers    INTEGER NOT NULL,
    bytes        INTEGER NOT NULL,
    PRIMARY KEY (day, server_host, protocol, direction, status, module, user)
) WITHOUT ROWID;

-- Daily rollup of logins.
CREATE TABLE daily_logins (
    day          TEXT    NOT NULL,
    server_host  TEXT    NOT NULL,
    protocol     TEXT    NOT NULL,
    user         TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    logins       INTEGER NOT NULL,
    PRIMARY KEY (day, server_host, protocol, user, outcome)
) WITHOUT ROWID;

-- What each input (by fingerprint of its first line) has contributed.
CREATE TABLE ledger (
    fingerprint  INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,          -- path it was last read under
    format       TEXT    NOT NULL,
    offset       INTEGER NOT NULL,          -- decompressed bytes consumed
    lines        INTEGER NOT NULL,
    tail_hash    INTEGER NOT NULL,
    ids_state    TEXT    NOT NULL,
    events_new   INTEGER NOT NULL,
    events_dup   INTEGER NOT NULL,
    rejected     INTEGER NOT NULL,
    first_import TEXT    NOT NULL,
    last_import  TEXT    NOT NULL
);

-- Open sessions of each format, carried from one run to the next.
CREATE TABLE session_state (
    scope        TEXT PRIMARY KEY,
    state        TEXT NOT NULL,
    updated      TEXT NOT NULL
);
