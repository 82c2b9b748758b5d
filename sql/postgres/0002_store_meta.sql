-- xferstats PostgreSQL schema, version 2: store-wide settings.
-- 'pruned_before' (Unix µs, the start of a UTC month): raw partitions
-- before it were dropped by `xferstats prune`; their rollups stay, so
-- events that old are not stored again (that would count them twice).
CREATE TABLE store_meta (
    key          text PRIMARY KEY,
    value        text NOT NULL
);
