-- xferstats SQLite schema, version 3: store-wide settings.
-- 'pruned_before' (Unix µs, a UTC midnight): raw events before it were
-- removed by `xferstats prune`; their rollups stay, so events that old are
-- not stored again (that would count them twice).
CREATE TABLE store_meta (
    key          TEXT PRIMARY KEY,
    value        TEXT NOT NULL
);
