-- xferstats PostgreSQL schema, version 5: the hook outbox (src/actions).
-- A row is written in the transaction that stores its event for the first
-- time, so a delivery exists exactly when its event does. The delivery
-- worker sends 'pending' rows whose next_attempt_us has come, marks them
-- 'done' after success, or 'parked' after the hook's last attempt
-- (`xferstats hooks retry` makes them 'pending' again). Claiming a row moves
-- its next_attempt_us past the delivery's timeout (a lease), so two workers
-- never send the same row at once. (hook, event_id) is unique: one delivery
-- per hook and event, whatever re-reads the log.
-- (Version 4 belongs to another change; migrations are applied by number.)
CREATE TABLE hook_outbox (
    id              bigserial   PRIMARY KEY,
    hook            text        NOT NULL,
    event_id        bigint      NOT NULL,
    event_time_us   bigint      NOT NULL,
    trigger         text        NOT NULL,
    payload         text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'parked')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_us bigint      NOT NULL,
    last_error      text,
    created         timestamptz NOT NULL DEFAULT now(),
    finished        timestamptz,
    UNIQUE (hook, event_id)
);
CREATE INDEX hook_outbox_due ON hook_outbox (state, next_attempt_us);
