-- xferstats SQLite schema, version 2: enrichment.
-- Where the client is (GeoIP, computed from the full address at ingest) and
-- a keyed hash of its address. What client_ip/client_host hold depends on
-- the IP mode of the import: nothing (hmac, drop), the /24 or /48 network
-- written as 'addr/bits' (truncate), or the address (full).
-- Rows imported before this version keep NULLs here.

ALTER TABLE transfers ADD COLUMN country     TEXT;   -- ISO 3166-1 alpha-2
ALTER TABLE transfers ADD COLUMN city        TEXT;   -- English name
ALTER TABLE transfers ADD COLUMN latitude    REAL;
ALTER TABLE transfers ADD COLUMN longitude   REAL;
ALTER TABLE transfers ADD COLUMN geohash     TEXT;   -- Grafana's geomap finds it by this name
ALTER TABLE transfers ADD COLUMN client_hash TEXT;   -- HMAC-SHA256 of the address, 22 chars base64url

ALTER TABLE logins ADD COLUMN country     TEXT;
ALTER TABLE logins ADD COLUMN city        TEXT;
ALTER TABLE logins ADD COLUMN latitude    REAL;
ALTER TABLE logins ADD COLUMN longitude   REAL;
ALTER TABLE logins ADD COLUMN geohash     TEXT;
ALTER TABLE logins ADD COLUMN client_hash TEXT;
