-- xferstats SQLite schema, version 6: the hook outbox (src/actions).
-- A row is written in the transaction that stores its event for the first
-- time, so a delivery exists exactly when its event does. The delivery
-- worker sends 'pending' rows whose next_attempt_us has come, marks them
-- 'done' after success, or 'parked' after the hook's last attempt
-- (`xferstats hooks retry` makes them 'pending' again). Claiming a row moves
-- its next_attempt_us past the delivery's timeout (a lease), so two workers
-- never send the same row at once. (hook, event_id) is unique: one delivery
-- per hook and event, whatever re-reads the log.
-- (Version 5 belongs to another change; migrations are applied by number.)
CREATE TABLE hook_outbox (
    id              INTEGER PRIMARY KEY,
    hook            TEXT    NOT NULL,
    event_id        INTEGER NOT NULL,
    event_time_us   INTEGER NOT NULL,
    trigger         TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'parked')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_us INTEGER NOT NULL,
    last_error      TEXT,
    created         TEXT    NOT NULL,
    finished        TEXT,
    UNIQUE (hook, event_id)
);
CREATE INDEX hook_outbox_due ON hook_outbox (state, next_attempt_us);
