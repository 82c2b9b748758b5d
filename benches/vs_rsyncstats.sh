#!/usr/bin/env bash
# xferstats against rsyncstats 0.11.1 (the tool our users replace), run side
# by side on the same log, alternately, and SQLite's own insert rate for the
# rows xferstats stores (issue 16, point 3).
#
#   benches/vs_rsyncstats.sh [ROUNDS]          (default 3)
#
# Environment: GEOIP (default ../shared/geoip/GeoLite2-City.mmdb), VENV (an
# existing venv with rsyncstats 0.11.1; default: one made in the temp dir
# with `pip install rsyncstats==0.11.1`), KEEP=1 keeps the temp dir,
# BEFORE=BIN another xferstats binary (a build of the branch before a
# change) whose `events` and `ingest` into PostgreSQL run right after this
# build's in every round and on the 1 GB log (`events-before`,
# `pg-before`): before and after side by side in one run.
#
# Writes the ~115 MB, 1.015 M-line log that ../shared/tools/gen_rsyncd_log.py
# writes with its defaults into a temp dir, builds release binaries, then per
# round runs, one after the other:
#   rsyncstats  parse + enrich (its parse_log, GeoIP on the same database);
#   events      `xferstats events` (parse + join + enrich, GeoIP on) > /dev/null,
#               EVENTS_RUNS times a round (default 5; with BEFORE, the two
#               binaries in turn): a run takes ~0.13 s, and this shared
#               machine's vCPUs lose a few to 20 % of such a span to the
#               host at times (the same binary measured 0.125–0.20 s within
#               an hour), which one run per round cannot median out;
#   ingest      `xferstats ingest` into a new SQLite file, GeoIP on;
#   sqlite      SQLite's own limit: the raw rows that ingest stored, inserted
#               into an empty copy of their tables with prepared statements in
#               one transaction (examples/sqlite_limit.rs; rows in memory, so
#               no parsing, enrichment or rollups).
#   pg          `xferstats ingest` into a new database of a throwaway
#               PostgreSQL cluster (loopback, default fsync), GeoIP on; the
#               schema created first (`db migrate`), outside the timing, as
#               the COPY's tables are;
#   pgcopy      PostgreSQL's own limit: the rows that ingest stored, exported
#               in binary and `\copy`-ed back into keyed tables (the raw
#               tables' primary keys) in one transaction, on the same server.
# Then, once: peak RSS of events, ingest and pg on two ~1 GB logs, beside
# the 115 MB medians: nine copies of the log, each with another syslog
# host (BIG=FILE uses an existing one), and one host's 270 days (the
# generator's `-n 1800000 --days 270`; BIG1=FILE uses an existing one) —
# flat in input size and in host count. A larger input by hand (disk
# permitting; ~3.1 GB, deleted by you): `python3 ../shared/tools/
# gen_rsyncd_log.py -n 5400000 --days 810 -o /tmp/3g.log` then
# `BIG=0 BIG1=/tmp/3g.log benches/vs_rsyncstats.sh 1`; and
# the scale-out (issue 16.4): 3 ingests at once of three hosts' copies of the
# log (the syslog host renamed) into one PostgreSQL database, the aggregate
# rate, and a check that every host's raw totals and rollup sums are exactly
# those of the single-host ingest.  PG=0 skips PostgreSQL, BIG=0 and
# BIG1=0 the 1 GB runs.
# Prints per run wall and CPU seconds, peak RSS and events (`NAME ROUND WALL
# RSS_KB CPU EVENTS`; pg's CPU is the client's only), then the medians: MB/s (log bytes / wall time),
# events/s, peak RSS, and the same rates per CPU-second (user + system
# time), and the ratios of both. On a quiet machine the wall ratios are the
# answer; on a shared one (the load average is printed) the CPU-time ratios
# are the steadier measure of the work each tool does.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
geoip=${GEOIP:-../shared/geoip/GeoLite2-City.mmdb}
gen=../shared/tools/gen_rsyncd_log.py
[ -f "$geoip" ] || { echo "no GeoIP database at $geoip (set GEOIP)" >&2; exit 2; }
[ -f "$gen" ] || { echo "no $gen" >&2; exit 2; }
geoip=$(realpath "$geoip")
tmp=$(mktemp -d /tmp/xferstats-vs-rsyncstats.XXXXXX)
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$tmp"' EXIT

pg=${PG:-1}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pgbin" ] || pg=0
cargo build --release -q --bin xferstats --example sqlite_limit
xs=$(realpath target/release/xferstats)
limit=target/release/examples/sqlite_limit
log=$tmp/rsyncd-200k.log
python3 "$gen" -o "$log" >/dev/null
venv=${VENV:-$tmp/rs}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q rsyncstats==0.11.1
fi
bytes=$(stat -c %s "$log")
echo "log: $(wc -l <"$log") lines, $bytes bytes; GeoIP $geoip; $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

results=$tmp/results
: >"$results"
# run NAME ROUND CMD…: times CMD (wall seconds, peak RSS) and records the
# event count the command printed (last number before " new events", or its
# whole stdout for rsyncstats).
#
# Every file CMD names (the program, the log, the GeoIP database) is read
# into the page cache first, untimed. This machine takes cached pages back
# a few MB every ten seconds although most of its memory is free (`fincore`
# on the log: 110 → 102 MB within a minute, the GeoIP file likewise), and
# an `events` run after a 15 s pause read 4–22 MB from disk and took
# 0.13–0.20 s against 0.127 s for the run right after it. Unwarmed, the
# first run of each round paid for the rounds' pause, and with BEFORE that
# was always this build's.
run() {
    local name=$1 round=$2 server0= arg
    shift 2
    for arg in "$@"; do
        if [ -f "$arg" ]; then cat -- "$arg" >/dev/null; fi
    done
    case $name in pg*) server0=$(server_cpu) ;; esac
    local t0=$EPOCHREALTIME
    /usr/bin/time -f "%e %M %U %S" -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err" || {
        echo "$name failed:" >&2
        cat "$tmp/err" >&2
        exit 1
    }
    local t1=$EPOCHREALTIME events
    case $name in
    rsyncstats) events=$(tail -1 "$tmp/out") ;;
    # Its own clock: the inserts and the commit, not the loading of the rows.
    sqlite) events=$(awk '{print $2}' "$tmp/out") && echo "$(awk '{print $4}' "$tmp/out") 0 $(awk '{print $4}' "$tmp/out") 0" >"$tmp/time" ;;
    pgcopy) events=$pgrows ;;
    *) events=$(grep -o '[0-9]* new events' "$tmp/err" | awk '{print $1}') ;;
    esac
    read -r wall rss user sys <"$tmp/time"
    # time's %e steps by 10 ms, 6 % of an `events` run: the wall time is
    # the shell's microsecond clock around it (its fork and exec included).
    [ "$name" = sqlite ] || wall=$(python3 -c "print(f'{$t1 - $t0:.4f}')")
    if [ -n "$server0" ]; then
        sleep 0.5 # the backend exits after its client
        echo "$name $(python3 -c "print(round($(server_cpu) - $server0, 2))")" >>"$tmp/server"
    fi
    echo "$name $round $wall $rss $(python3 -c "print(round($user + $sys, 2))") $events" | tee -a "$results"
}

# CPU seconds of the PostgreSQL cluster so far (benches/pg_server_cpu.py).
server_cpu() { python3 benches/pg_server_cpu.py "$tmp/pg/data"; }

xargs_common=(--progress never --timezone UTC --server-host bench --geoip "$geoip")
export XFERSTATS_STATE_DIR=$tmp/state XFERSTATS_CONFIG=

# The throwaway PostgreSQL cluster (as the postgres user when run as root).
if [ "$pg" = 1 ]; then
    chmod 755 "$tmp"
    as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir "$tmp/pg"
    [ "$(id -u)" = 0 ] && chown postgres "$tmp/pg"
    stop_pg() { as_pg "$pgbin/pg_ctl" -D "$tmp/pg/data" -m immediate stop >/dev/null 2>&1 || true; }
    trap 'stop_pg; [ "${KEEP:-}" = 1 ] || rm -rf "$tmp"' EXIT
    as_pg "$pgbin/initdb" -D "$tmp/pg/data" -U xferstats --auth=trust --no-sync >/dev/null
    as_pg "$pgbin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $tmp/pg -c max_wal_size=4GB" start >/dev/null
    psql() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U xferstats "$@"; }
    pgurl() { echo "postgres://xferstats@127.0.0.1:$port/$1"; }
    fresh_db() { psql -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; }
    echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (default fsync)"
fi

for r in $(seq "$rounds"); do
    run rsyncstats "$r" "$venv/bin/python" -c 'import sys; from geolite2 import geolite2; geolite2.filename = sys.argv[2]; from rsyncstats import rsyncstats; print(len(rsyncstats.parse_log(sys.argv[1])))' "$log" "$geoip"
    for _ in $(seq "${EVENTS_RUNS:-5}"); do
        run events "$r" sh -c '"$0" events "$@" >/dev/null' "$xs" "${xargs_common[@]}" "$log"
        [ -z "${BEFORE:-}" ] || run events-before "$r" sh -c '"$0" events "$@" >/dev/null' "$BEFORE" "${xargs_common[@]}" "$log"
    done
    rm -f "$tmp"/x.db*
    run ingest "$r" "$xs" --db "$tmp/x.db" ingest "${xargs_common[@]}" "$log"
    run sqlite "$r" "$limit" "$tmp/x.db" "$tmp/limit.db"
    if [ "$pg" = 1 ]; then
        # Each ingest into a new database whose schema exists, as the
        # COPY's tables do before its clock starts.
        fresh_db x
        "$xs" --db "$(pgurl x)" db migrate >/dev/null
        run pg "$r" "$xs" --db "$(pgurl x)" ingest "${xargs_common[@]}" "$log"
        if [ -n "${BEFORE:-}" ]; then
            fresh_db xb
            "$BEFORE" --db "$(pgurl xb)" db migrate >/dev/null
            run pg-before "$r" "$BEFORE" --db "$(pgurl xb)" ingest "${xargs_common[@]}" "$log"
        fi
        if [ "$r" = 1 ]; then
            # The stored rows, for the COPY limit (server-side files).
            psql -d x -c "COPY (SELECT * FROM transfers) TO '$tmp/pg/t.bin' (FORMAT binary)" \
                -c "COPY (SELECT * FROM logins) TO '$tmp/pg/l.bin' (FORMAT binary)"
            pgrows=$(psql -d x -At -c "SELECT (SELECT count(*) FROM transfers) + (SELECT count(*) FROM logins)")
        fi
        fresh_db lim
        # The raw tables' columns and primary keys, unpartitioned.
        psql -d x -At -c "SELECT 'CREATE TABLE t (' || string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) || ', PRIMARY KEY (end_ts, event_id));' FROM pg_attribute WHERE attrelid = 'transfers'::regclass AND attnum > 0 AND NOT attisdropped" >"$tmp/lim.sql"
        psql -d x -At -c "SELECT 'CREATE TABLE l (' || string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) || ', PRIMARY KEY (time_ts, event_id));' FROM pg_attribute WHERE attrelid = 'logins'::regclass AND attnum > 0 AND NOT attisdropped" >>"$tmp/lim.sql"
        psql -d lim -f "$tmp/lim.sql"
        run pgcopy "$r" "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U xferstats -d lim \
            -c "BEGIN" -c "\\copy t FROM '$tmp/pg/t.bin' (FORMAT binary)" \
            -c "\\copy l FROM '$tmp/pg/l.bin' (FORMAT binary)" -c "COMMIT"
    fi
done

# Peak RSS on ~1 GB of the same generator's log (flat memory), with as
# many server hosts as the 115 MB log (one) and with nine: memory must not
# grow with either. Each big log is deleted once read.
# big_runs SUFFIX FILE: events, ingest and pg (and their BEFORE runs) on FILE.
big_runs() {
    local sfx=$1 file=$2
    echo "1 GB log ($sfx): $(wc -l <"$file") lines, $(python3 -c "print(round($(stat -c %s "$file") / 1e6))") MB"
    run "events-$sfx" 1 sh -c '"$0" events "$@" >/dev/null' "$xs" "${xargs_common[@]}" "$file"
    [ -z "${BEFORE:-}" ] || run "events-before-$sfx" 1 sh -c '"$0" events "$@" >/dev/null' "$BEFORE" "${xargs_common[@]}" "$file"
    rm -f "$tmp"/x.db*
    run "ingest-$sfx" 1 "$xs" --db "$tmp/x.db" ingest "${xargs_common[@]}" "$file"
    rm -f "$tmp"/x.db*
    if [ "$pg" = 1 ]; then
        fresh_db big
        "$xs" --db "$(pgurl big)" db migrate >/dev/null
        run "pg-$sfx" 1 "$xs" --db "$(pgurl big)" ingest "${xargs_common[@]}" "$file"
        psql -d postgres -c "DROP DATABASE big"
        if [ -n "${BEFORE:-}" ]; then
            fresh_db big
            "$BEFORE" --db "$(pgurl big)" db migrate >/dev/null
            run "pg-before-$sfx" 1 "$BEFORE" --db "$(pgurl big)" ingest "${xargs_common[@]}" "$file"
            psql -d postgres -c "DROP DATABASE big"
        fi
    fi
}
big=${BIG:-}
if [ "$big" != 0 ]; then
    if [ -z "$big" ]; then
        # Nine servers' logs: the 115 MB log with its syslog host renamed
        # per copy (their events are all distinct), one after the other.
        big=$tmp/rsyncd-1g.log
        for h in 1 2 3 4 5 6 7 8 9; do sed "s/ resif-rsync1 / server-$h /" "$log"; done >"$big"
    fi
    big_runs 1g9h "$big"
    [ -n "${BIG:-}" ] || rm -f "$big"
fi
big1=${BIG1:-}
if [ "$big1" != 0 ]; then
    if [ -z "$big1" ]; then
        # One server's 270 days: nine times the events and days of the
        # 115 MB log (same rates, clients and pids).
        big1=$tmp/rsyncd-1g-1host.log
        python3 "$gen" -n 1800000 --days 270 -o "$big1" >/dev/null
    fi
    big_runs 1g1h "$big1"
    [ -n "${BIG1:-}" ] || rm -f "$big1"
fi

# Scale-out: three hosts' logs into one database at once.
if [ "$pg" = 1 ]; then
    fresh_db scale
    "$xs" --db "$(pgurl scale)" db migrate >/dev/null
    for h in a b c; do
        sed "s/ resif-rsync1 / host-$h /" "$log" >"$tmp/host-$h.log"
    done
    s=$(date +%s.%N)
    for h in a b c; do
        /usr/bin/time -f "%e %M %U %S" -o "$tmp/time-$h" "$xs" --db "$(pgurl scale)" ingest "${xargs_common[@]}" \
            "$tmp/host-$h.log" 2>"$tmp/err-$h" &
    done
    wait
    e=$(date +%s.%N)
    rm -f "$tmp"/host-?.log
    totals="SELECT server_host, count(*), sum(bytes), sum(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) FROM transfers GROUP BY 1 ORDER BY 1"
    rolled="SELECT server_host, sum(transfers), sum(bytes) FROM daily_transfers GROUP BY 1 ORDER BY 1"
    logins="SELECT l.server_host, l.n, r.n FROM (SELECT server_host, count(*) n FROM logins GROUP BY 1) l JOIN (SELECT server_host, sum(logins) n FROM daily_logins GROUP BY 1) r USING (server_host) ORDER BY 1"
    one=$(psql -d x -At -F' ' -c "$totals" | awk '{print $2, $3, $4}')
    one_l=$(psql -d x -At -c "SELECT count(*) FROM logins")
    ok=1
    while read -r host n sum completed; do
        [ "$n $sum $completed" = "$one" ] || { echo "scale-out: $host transfers $n $sum $completed, single ingest $one" >&2; ok=0; }
    done < <(psql -d scale -At -F' ' -c "$totals")
    while read -r host n sum; do
        [ "$n $sum" = "$(echo "$one" | awk '{print $1, $2}')" ] || { echo "scale-out: $host rollup $n $sum" >&2; ok=0; }
    done < <(psql -d scale -At -F' ' -c "$rolled")
    while read -r host raw rolled_n; do
        [ "$raw" = "$one_l" ] && [ "$rolled_n" = "$one_l" ] || { echo "scale-out: $host logins $raw, rolled up $rolled_n, single ingest $one_l" >&2; ok=0; }
    done < <(psql -d scale -At -F' ' -c "$logins")
    hosts=$(psql -d scale -At -c "SELECT count(DISTINCT server_host) FROM transfers")
    [ "$hosts" = 3 ] || ok=0
    all=$(psql -d scale -At -c "SELECT (SELECT count(*) FROM transfers) + (SELECT count(*) FROM logins)")
    python3 - "$s" "$e" "$all" "$pgrows" "$ok" "$tmp"/time-? <<'PY'
import sys
s, e, n, one, ok = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
cpu = sum(float(x) for f in sys.argv[6:] for x in open(f).read().split()[2:4])
rss = max(int(open(f).read().split()[1]) for f in sys.argv[6:]) / 1024
print(f"\nscale-out: 3 ingests at once into one PostgreSQL database: {n:,} events ({n / one:.2f}× one host's {one:,}) "
      f"in {e - s:.2f} s wall = {n / (e - s):,.0f} events/s aggregate; clients' CPU {cpu:.1f} s, peak RSS {rss:.0f} MiB each at most")
print("scale-out totals:", "exact — per host, transfers (count, bytes, completed), rollup sums and logins equal the single-host ingest's"
      if ok else "WRONG (see above)")
PY
fi

[ -f "$tmp/server" ] || : >"$tmp/server"
python3 - "$results" "$bytes" "$tmp/server" <<'PY'
import re, sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
bigrun = re.compile(r"-(1g[19]h)$")
big = [r for r in rows if bigrun.search(r[0])]
rows = [r for r in rows if not bigrun.search(r[0])]
size = int(sys.argv[2]) / 1e6
runs = {}
for name, _, wall, rss, cpu, events in rows:
    runs.setdefault(name, []).append((float(wall), int(rss), float(cpu), int(events)))
med = {}
def span(v, fmt):
    return f"{fmt(st.median(v))} ({fmt(min(v))}–{fmt(max(v))})"
mbf = lambda x: f"{x:.1f}"
kf = lambda x: f"{x / 1e3:,.0f}k"
print(f"\n{'':14}{'MB/s':>22}{'events/s':>24}{'RSS MiB':>9}{'MB/CPU-s':>22}{'events/CPU-s':>24}")
for name, rs in runs.items():
    mbs = [size / w for w, _, _, _ in rs]
    eps = [e / w for w, _, _, e in rs]
    cmb = [size / c for _, _, c, _ in rs]
    ceps = [e / c for _, _, c, e in rs]
    rss = st.median([k / 1024 for _, k, _, _ in rs])
    med[name] = (st.median(mbs), st.median(eps), st.median(cmb), st.median(ceps))
    if name == "sqlite":  # rows in memory: no log read, no RSS of interest; its own clock
        print(f"{name:14}{'':>22}{span(eps, kf):>24}{'':>9}{'':>22}{span(ceps, kf):>24}")
    elif name == "pgcopy":  # the server's work: psql's CPU time says nothing
        print(f"{name:14}{'':>22}{span(eps, kf):>24}")
    else:
        print(f"{name:14}{span(mbs, mbf):>22}{span(eps, kf):>24}{rss:>9.0f}{span(cmb, mbf):>22}{span(ceps, kf):>24}")
print("(median, min–max of the runs:", len(runs["rsyncstats"]), "rounds,", len(runs["events"]) // len(runs["rsyncstats"]),
      "runs of events in each; events: what each tool returns — rsyncstats its parsed transfers, xferstats transfers + logins)")
rs = med["rsyncstats"]
def ratio(a, what, goal=None):
    print(f"{what}: {med[a][0] / rs[0]:.1f}× by wall time, {med[a][2] / rs[2]:.1f}× by CPU time"
          + (f"  (goal ≥ {goal}×)" if goal else ""))
ratio("events", "events vs rsyncstats parse+enrich (MB/s)", 40)
ratio("ingest", "ingest into SQLite vs rsyncstats parse+enrich (MB/s)", 15)
print(f"ingest into SQLite vs SQLite's own insert rate of the same rows (events/s): "
      f"{med['ingest'][1] / med['sqlite'][1]:.0%} by wall time ({med['ingest'][1]:,.0f} vs {med['sqlite'][1]:,.0f}), "
      f"{med['ingest'][3] / med['sqlite'][3]:.0%} by CPU time")
if "pg" in med:
    ratio("pg", "ingest into PostgreSQL vs rsyncstats parse+enrich (MB/s; CPU: the client's)")
    print(f"ingest into PostgreSQL vs the server's keyed binary COPY of the same rows (events/s, wall): "
          f"{med['pg'][1] / med['pgcopy'][1]:.0%} ({med['pg'][1]:,.0f} vs {med['pgcopy'][1]:,.0f})  (goal ≥ 85 %)")
if "pg-before" in med:
    print(f"… the binary before (BEFORE): {med['pg-before'][1] / med['pgcopy'][1]:.0%} ({med['pg-before'][1]:,.0f} "
          f"events/s); after / before: {med['pg'][1] / med['pg-before'][1]:.2f}× by wall time, "
          f"{med['pg'][3] / med['pg-before'][3]:.2f}× by client CPU time")
server = {}
for line in open(sys.argv[3]):
    name, cpu = line.split()
    server.setdefault(name, []).append(float(cpu))
if server:
    print("PostgreSQL server CPU seconds (its processes' user + system time, median (min–max)): "
          + "; ".join(f"{n} {span(v, lambda x: f'{x:.2f}')}" for n, v in server.items()))
hosts = {"1g1h": "1 host", "1g9h": "9 hosts"}
for name, _, wall, rss, cpu, events in sorted(big, key=lambda r: (bigrun.sub("", r[0]), r[0])):
    base_name, sfx = bigrun.sub("", name), bigrun.search(name).group(1)
    base = st.median([int(r[3]) for r in rows if r[0] == base_name]) / 1024
    print(f"peak RSS {base_name}: {int(rss) / 1024:.0f} MiB on the 1 GB log of {hosts[sfx]} vs {base:.0f} MiB on 115 MB "
          f"({float(wall):.1f} s wall, {float(cpu):.1f} s CPU, {int(events):,} events)  (goal ≤ 64 MiB + mapped GeoIP, flat)")
PY
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
