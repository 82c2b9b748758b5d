#!/usr/bin/env bash
# End-to-end PostgreSQL ingest rate of xferstats against PostgreSQL's own
# keyed binary COPY of the same rows on the same server (issue 16).
#
#   benches/pg_ingest.sh [ROUNDS]      (default 5)
#
# Environment: LOG=FILE the log to ingest (default: the ~115 MB, 1.015
# M-line rsyncd log that ../shared/tools/gen_rsyncd_log.py writes with its
# defaults, written into the temp dir); GEOIP=FILE (default
# ../shared/geoip/GeoLite2-City.mmdb, `off` for none); XS=BIN the xferstats
# binary (default: a release build of this tree); BEFORE=BIN another
# xferstats binary (a build of the branch before a change), run right
# after XS in every round: before and after side by side.
#
# Starts a throwaway cluster from /usr/lib/postgresql/*/bin on a free
# loopback port in a temp dir (default fsync; autovacuum off, or its work
# after one run would land in the next one's CPU seconds; as the postgres
# user when run as root, see pg_cluster.sh). Per round, alternately: `ingest` of the log
# into a new database with the schema created (`xs`, then `before`), and `copy`: the rows the first
# ingest stored, exported in binary and `\copy`-ed back into keyed tables
# (the raw tables' columns and primary keys, unpartitioned, no rollups) in
# one transaction — the server's own limit for these rows. Prints per run
# the wall seconds, the client's CPU seconds (user + system), the server's
# (all its processes) and events/s, then the median and best of each, and
# the ingest's rate as a share of the COPY's.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
. benches/pg_log_setup.sh xferstats-pgbench
args=(ingest --progress never --timezone UTC --server-host bench "${geo[@]}" "$log")
echo "log $log: $(wc -l <"$log") lines; PostgreSQL $("$bin/postgres" --version | awk '{print $3}'); $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

results=$tmp/results
: >"$results"
# run NAME EVENTS CMD…: wall, client CPU and server CPU of CMD; EVENTS is
# the event count, or `-` to read it from the ingest's summary.
run() {
    local name=$1 events=$2
    shift 2
    local s0
    s0=$(server_cpu)
    /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$@" >/dev/null 2>"$tmp/err" || {
        cat "$tmp/err" >&2
        exit 1
    }
    sleep 0.5 # the backend exits after its client
    local s1
    s1=$(server_cpu)
    [ "$events" != - ] || events=$(grep -o '[0-9]* new events' "$tmp/err" | awk '{print $1}')
    read -r wall user sys <"$tmp/time"
    python3 -c "print('$name', $wall, round($user + $sys, 2), round($s1 - $s0, 2), $events, round($events / $wall))" |
        tee -a "$results"
}
fresh_db() { psql -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; }
url() { echo "postgres://xferstats@127.0.0.1:$port/$1"; }

echo "name wall_s client_cpu_s server_cpu_s events events_per_s"
for r in $(seq "$rounds"); do
    # A new database whose schema exists, as the COPY's tables do before
    # its clock starts.
    fresh_db x
    "$xs" --db "$(url x)" db migrate >/dev/null
    run ingest - "$xs" --db "$(url x)" "${args[@]}"
    if [ -n "${BEFORE:-}" ]; then
        fresh_db xb
        "$BEFORE" --db "$(url xb)" db migrate >/dev/null
        run ingest-before - "$BEFORE" --db "$(url xb)" "${args[@]}"
    fi
    if [ "$r" = 1 ]; then
        psql -d x -c "COPY (SELECT * FROM transfers) TO '$tmp/pg/t.bin' (FORMAT binary)" \
            -c "COPY (SELECT * FROM logins) TO '$tmp/pg/l.bin' (FORMAT binary)"
        rows=$(psql -d x -At -c "SELECT (SELECT count(*) FROM transfers) + (SELECT count(*) FROM logins)")
        for t in transfers:end_ts logins:time_ts; do
            psql -d x -At -c "SELECT 'CREATE TABLE ${t:0:1} (' || string_agg(quote_ident(attname) || ' ' ||
                format_type(atttypid, atttypmod), ', ' ORDER BY attnum) || ', PRIMARY KEY (${t#*:}, event_id));'
                FROM pg_attribute WHERE attrelid = '${t%%:*}'::regclass AND attnum > 0 AND NOT attisdropped"
        done >"$tmp/copy.sql"
    fi
    fresh_db lim
    psql -d lim -f "$tmp/copy.sql"
    run copy "$rows" "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U xferstats -d lim \
        -c "BEGIN" -c "\\copy t FROM '$tmp/pg/t.bin' (FORMAT binary)" -c "\\copy l FROM '$tmp/pg/l.bin' (FORMAT binary)" \
        -c "COMMIT"
done

python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, wall, client, server, events, rate = line.split()
    runs.setdefault(name, []).append((float(wall), float(client), float(server), int(rate)))
med = {n: [statistics.median(c) for c in zip(*r)] for n, r in runs.items()}
best = {n: [min(c) for c in list(zip(*r))[:3]] + [max(r[i][3] for i in range(len(r)))] for n, r in runs.items()}
print(f"{'':14} {'wall s':>15} {'client CPU s':>15} {'server CPU s':>15} {'events/s':>19}   (median / best of {len(runs['copy'])})")
for n in runs:
    m, b = med[n], best[n]
    print(f"{n:14} {m[0]:7.2f} /{b[0]:6.2f} {m[1]:7.2f} /{b[1]:6.2f} {m[2]:7.2f} /{b[2]:6.2f} {m[3]:9,.0f} /{b[3]:9,.0f}")
for n in runs:
    if n != "copy":
        print(f"{n}: {med[n][3] / med['copy'][3]:.0%} of the keyed COPY's rate (medians), {best[n][3] / best['copy'][3]:.0%} (best)")
PY
