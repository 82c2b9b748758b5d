#!/usr/bin/env bash
# Where the PostgreSQL server's CPU goes in one `xferstats ingest` (issue
# 16): the backend's CPU seconds per statement, from the server's own
# `log_statement_stats`, next to those of the keyed binary COPY of the same
# rows that benches/pg_ingest.sh takes as the limit.
#
#   benches/pg_statement_cpu.sh
#
# Environment as for pg_ingest.sh: LOG=FILE (default: the ~115 MB rsyncd log
# of ../shared/tools/gen_rsyncd_log.py), GEOIP=FILE|off, XS=BIN (default: a
# release build of this tree).
#
# Prints per statement (its first 60 characters, parse, bind and execute
# summed) the CPU seconds (user + system) and the executions, the sum over
# all statements, and the backend's CPU outside them (connection, idle
# loop; the cluster's total from pg_server_cpu.py minus the statements').
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/pg_log_setup.sh xferstats-pgstmt
url() { echo "postgres://xferstats@127.0.0.1:$port/$1"; }

# measure NAME DB CMD…: runs CMD with statement statistics logged for the
# database DB, then prints them.
measure() {
    local name=$1 db=$2
    shift 2
    psql -d postgres -c "ALTER DATABASE $db SET log_statement_stats = on"
    local first s0 s1
    first=$(($(wc -l <"$tmp/pg/log") + 1))
    s0=$(server_cpu)
    "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    sleep 0.5 # the backend exits after its client
    s1=$(server_cpu)
    echo "== $name: server CPU $(python3 -c "print(round($s1 - $s0, 3))") s"
    tail -n +"$first" "$tmp/pg/log" | python3 -c '
import re, sys
total = float(sys.argv[1])
cpu, runs, pending, kind = {}, {}, None, None
for line in sys.stdin:
    m = re.search(r"LOG:  (QUERY|PARSE MESSAGE|BIND MESSAGE|EXECUTE MESSAGE) STATISTICS", line)
    if m:
        kind = m.group(1)
        continue
    m = re.search(r"!\s+([0-9.]+) s user, ([0-9.]+) s system, [0-9.]+ s elapsed", line)
    if m and kind:
        pending = float(m.group(1)) + float(m.group(2))
        continue
    m = re.search(r"STATEMENT:  (.*)", line)
    if m and pending is not None:
        key = " ".join(m.group(1).split())[:60]
        cpu[key] = cpu.get(key, 0) + pending
        runs[key] = runs.get(key, 0) + (kind in ("QUERY", "EXECUTE MESSAGE"))
        pending, kind = None, None
stmts = sum(cpu.values())
for key in sorted(cpu, key=cpu.get, reverse=True)[:25]:
    print(f"{cpu[key]:8.3f} {runs[key]:6d}  {key}")
print(f"{stmts:8.3f}         all statements ({len(cpu)} kinds, the first 25 shown)")
print(f"{total - stmts:8.3f}         outside statements (connections, idle loop, other processes)")
' "$(python3 -c "print($s1 - $s0)")"
    psql -d postgres -c "ALTER DATABASE $db RESET log_statement_stats"
}

echo "log $log: $(wc -l <"$log") lines; PostgreSQL $("$bin/postgres" --version | awk '{print $3}'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
psql -d postgres -c "CREATE DATABASE x"
measure ingest x "$xs" --db "$(url x)" ingest --progress never --timezone UTC --server-host bench "${geo[@]}" "$log"

psql -d x -c "COPY (SELECT * FROM transfers) TO '$tmp/pg/t.bin' (FORMAT binary)" \
    -c "COPY (SELECT * FROM logins) TO '$tmp/pg/l.bin' (FORMAT binary)"
psql -d postgres -c "CREATE DATABASE lim"
for t in transfers:end_ts logins:time_ts; do
    psql -d x -At -c "SELECT 'CREATE TABLE ${t:0:1} (' || string_agg(quote_ident(attname) || ' ' ||
        format_type(atttypid, atttypmod), ', ' ORDER BY attnum) || ', PRIMARY KEY (${t#*:}, event_id));'
        FROM pg_attribute WHERE attrelid = '${t%%:*}'::regclass AND attnum > 0 AND NOT attisdropped"
done | psql -d lim
measure "keyed COPY (the limit)" lim "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U xferstats -d lim \
    -c "BEGIN" -c "\\copy t FROM '$tmp/pg/t.bin' (FORMAT binary)" -c "\\copy l FROM '$tmp/pg/l.bin' (FORMAT binary)" \
    -c "COMMIT"
