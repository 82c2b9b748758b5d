-- xferstats SQLite schema, version 4: which input each event came from.
-- 'input' is the ledger fingerprint of the input whose line completed the
-- event, so that `xferstats forget FILE` can remove exactly that input's
-- events (and subtract them from the daily rollups). Rows imported before
-- this version keep NULL: forget refuses inputs whose events predate it.
-- No index: forget is rare and scans; ingest stays as fast as before.

ALTER TABLE transfers ADD COLUMN input INTEGER;
ALTER TABLE logins ADD COLUMN input INTEGER;
