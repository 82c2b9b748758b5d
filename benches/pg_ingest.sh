#!/usr/bin/env bash
# End-to-end PostgreSQL ingest rate of xferstats, and PostgreSQL's own raw
# COPY rate for the same rows on the same server.
#
#   benches/pg_ingest.sh [MB]      (default 160 MB ≈ 1 M events)
#
# Starts a throwaway cluster from /usr/lib/postgresql/*/bin on a free
# loopback port in a temp dir (as the postgres user when run as root), runs
# a release `xferstats ingest` of a generated rsyncd log into it, then times
# binary COPY of the stored rows into an index-free copy of the table and
# into one with the primary key. Removes the cluster at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-160}
. benches/pg_cluster.sh xferstats-pgbench "-c max_wal_size=4GB"
psql -d postgres -c "CREATE DATABASE bench"

cargo build --release -q --bin xferstats --example gen_corpus
target/release/examples/gen_corpus --style logfile --mb "$mb" --out "$tmp/rsyncd.log"
url="postgres://xferstats@127.0.0.1:$port/bench"
start=$(date +%s.%N)
XFERSTATS_STATE_DIR="$tmp/state" /usr/bin/time -f "peak RSS %M KB" \
    target/release/xferstats --db "$url" ingest --progress never --geoip off --timezone UTC "$tmp/rsyncd.log"
end=$(date +%s.%N)
events=$(psql -d bench -At -c "SELECT (SELECT count(*) FROM transfers) + (SELECT count(*) FROM logins)")
python3 -c "print(f'xferstats ingest: {int($events)} events in {$end - $start:.2f} s = {int($events) / ($end - $start):,.0f} events/s end to end')"

psql -d bench -c "COPY (SELECT * FROM transfers) TO '$tmp/pg/rows.bin' (FORMAT binary)" 2>/dev/null ||
    psql -d bench -c "\\copy (SELECT * FROM transfers) TO '$tmp/rows.bin' (FORMAT binary)"
rows=$(psql -d bench -At -c "SELECT count(*) FROM transfers")
file=$tmp/pg/rows.bin; [ -f "$file" ] || file=$tmp/rows.bin
for variant in "no index" "primary key"; do
    psql -d bench -c "DROP TABLE IF EXISTS raw_copy; CREATE TABLE raw_copy (LIKE transfers)"
    [ "$variant" = "primary key" ] && psql -d bench -c "ALTER TABLE raw_copy ADD PRIMARY KEY (end_ts, event_id)"
    s=$(date +%s.%N)
    psql -d bench -c "\\copy raw_copy FROM '$file' (FORMAT binary)"
    e=$(date +%s.%N)
    python3 -c "print(f'raw COPY ($variant): {$rows} rows in {$e - $s:.2f} s = {$rows / ($e - $s):,.0f} rows/s')"
done
