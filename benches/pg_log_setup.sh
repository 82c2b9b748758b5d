# Sourced by benches/pg_ingest.sh and benches/pg_statement_cpu.sh: what both
# need before they measure — the GeoIP choice, a throwaway PostgreSQL
# cluster (benches/pg_cluster.sh; temp dir named after $1, autovacuum off,
# max_wal_size 4GB), the xferstats binary and the log. Environment: GEOIP
# (default ../shared/geoip/GeoLite2-City.mmdb, or off), XS=BIN (default: a
# release build of this tree), LOG=FILE (default: the ~115 MB rsyncd log
# of ../shared/tools/gen_rsyncd_log.py, written into the temp dir). Sets
# `xs`, `log`, `geo` (the --geoip arguments) and `server_cpu` (the
# cluster's CPU seconds so far, benches/pg_server_cpu.py), besides what
# pg_cluster.sh sets; the state directory goes to the temp dir.
geoip=${GEOIP:-../shared/geoip/GeoLite2-City.mmdb}
[ "$geoip" = off ] || [ -f "$geoip" ] || { echo "no GeoIP database at $geoip (set GEOIP, or GEOIP=off)" >&2; exit 2; }
[ -n "${LOG:-}" ] || [ -f ../shared/tools/gen_rsyncd_log.py ] || { echo "no ../shared/tools/gen_rsyncd_log.py (set LOG)" >&2; exit 2; }
. benches/pg_cluster.sh "$1" "-c max_wal_size=4GB -c autovacuum=off"
if [ -z "${XS:-}" ]; then
    cargo build --release -q --bin xferstats
    XS=target/release/xferstats
fi
xs=$(realpath "$XS")
log=${LOG:-}
if [ -z "$log" ]; then
    log=$tmp/rsyncd.log
    python3 ../shared/tools/gen_rsyncd_log.py -o "$log" >/dev/null
fi
geo=(--geoip off)
[ "$geoip" = off ] || geo=(--geoip "$(realpath "$geoip")")
export XFERSTATS_STATE_DIR=$tmp/state XFERSTATS_CONFIG=
server_cpu() { python3 benches/pg_server_cpu.py "$tmp/pg/data"; }
