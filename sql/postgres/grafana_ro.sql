-- A read-only role for Grafana's PostgreSQL data source.
-- Run as a superuser or the database owner, in the xferstats database:
--   psql -d xferstats -v password="'choose-one'" -f sql/postgres/grafana_ro.sql
-- Grafana then connects as grafana_ro. It can read the rollups and the raw
-- tables (for drill-down), nothing else, and cannot write anywhere.
CREATE ROLE grafana_ro LOGIN PASSWORD :password
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
ALTER ROLE grafana_ro SET default_transaction_read_only = on;
ALTER ROLE grafana_ro SET statement_timeout = '60s';
GRANT CONNECT ON DATABASE :"DBNAME" TO grafana_ro;
GRANT USAGE ON SCHEMA public TO grafana_ro;
-- PostgreSQL 15 already denies CREATE in public to ordinary roles; older
-- servers do not, and a role can turn default_transaction_read_only off
-- for itself, so take the privilege away explicitly.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT SELECT ON daily_transfers, daily_logins, daily_clients, daily_values, transfers, logins TO grafana_ro;
-- Partitions created later are read through the parent tables above;
-- the ledger and the session state (sealed open sessions) stay private.
REVOKE ALL ON ledger, session_state, schema_version FROM grafana_ro;
