#!/usr/bin/env bash
# xferstats against rsyncstats 0.11.1 (the tool our users replace), run side
# by side on the same log, alternately, and SQLite's own insert rate for the
# rows xferstats stores (issue 16, point 3).
#
#   benches/vs_rsyncstats.sh [ROUNDS]          (default 3)
#
# Environment: GEOIP (default ../shared/geoip/GeoLite2-City.mmdb), VENV (an
# existing venv with rsyncstats 0.11.1; default: one made in the temp dir
# with `pip install rsyncstats==0.11.1`), KEEP=1 keeps the temp dir.
#
# Writes the ~115 MB, 1.015 M-line log that ../shared/tools/gen_rsyncd_log.py
# writes with its defaults into a temp dir, builds release binaries, then per
# round runs, one after the other:
#   rsyncstats  parse + enrich (its parse_log, GeoIP on the same database);
#   events      `xferstats events` (parse + join + enrich, GeoIP on) > /dev/null;
#   ingest      `xferstats ingest` into a new SQLite file, GeoIP on;
#   sqlite      SQLite's own limit: the raw rows that ingest stored, inserted
#               into an empty copy of their tables with prepared statements in
#               one transaction (examples/sqlite_limit.rs; rows in memory, so
#               no parsing, enrichment or rollups).
# Prints per run wall and CPU seconds, peak RSS and events (`NAME ROUND WALL
# RSS_KB CPU EVENTS`), then the medians: MB/s (log bytes / wall time),
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

cargo build --release -q --bin xferstats --example sqlite_limit
xs=target/release/xferstats
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
run() {
    local name=$1 round=$2
    shift 2
    /usr/bin/time -f "%e %M %U %S" -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err" || {
        echo "$name failed:" >&2
        cat "$tmp/err" >&2
        exit 1
    }
    local events
    case $name in
    rsyncstats) events=$(tail -1 "$tmp/out") ;;
    # Its own clock: the inserts and the commit, not the loading of the rows.
    sqlite) events=$(awk '{print $2}' "$tmp/out") && echo "$(awk '{print $4}' "$tmp/out") 0 $(awk '{print $4}' "$tmp/out") 0" >"$tmp/time" ;;
    *) events=$(grep -o '[0-9]* new events' "$tmp/err" | awk '{print $1}') ;;
    esac
    read -r wall rss user sys <"$tmp/time"
    echo "$name $round $wall $rss $(python3 -c "print(round($user + $sys, 2))") $events" | tee -a "$results"
}

xargs_common=(--progress never --timezone UTC --server-host bench --geoip "$geoip")
export XFERSTATS_STATE_DIR=$tmp/state XFERSTATS_CONFIG=
for r in $(seq "$rounds"); do
    run rsyncstats "$r" "$venv/bin/python" -c 'import sys; from geolite2 import geolite2; geolite2.filename = sys.argv[2]; from rsyncstats import rsyncstats; print(len(rsyncstats.parse_log(sys.argv[1])))' "$log" "$geoip"
    run events "$r" sh -c '"$0" events "$@" >/dev/null' "$xs" "${xargs_common[@]}" "$log"
    rm -f "$tmp"/x.db*
    run ingest "$r" "$xs" --db "$tmp/x.db" ingest "${xargs_common[@]}" "$log"
    run sqlite "$r" "$limit" "$tmp/x.db" "$tmp/limit.db"
done

python3 - "$results" "$bytes" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
size = int(sys.argv[2]) / 1e6
runs = {}
for name, _, wall, rss, cpu, events in rows:
    runs.setdefault(name, []).append((float(wall), int(rss), float(cpu), int(events)))
med = {}
def span(v, fmt):
    return f"{fmt(st.median(v))} ({fmt(min(v))}–{fmt(max(v))})"
mbf = lambda x: f"{x:.1f}"
kf = lambda x: f"{x / 1e3:,.0f}k"
print(f"\n{'':11}{'MB/s':>21}{'events/s':>20}{'RSS MiB':>9}{'MB/CPU-s':>21}{'events/CPU-s':>20}")
for name, rs in runs.items():
    mbs = [size / w for w, _, _, _ in rs]
    eps = [e / w for w, _, _, e in rs]
    cmb = [size / c for _, _, c, _ in rs]
    ceps = [e / c for _, _, c, e in rs]
    rss = st.median([k / 1024 for _, k, _, _ in rs])
    med[name] = (st.median(mbs), st.median(eps), st.median(cmb), st.median(ceps))
    if name == "sqlite":  # rows in memory: no log read, no RSS of interest
        print(f"{name:11}{'':>21}{span(eps, kf):>20}{'':>9}{'':>21}{span(ceps, kf):>20}")
    else:
        print(f"{name:11}{span(mbs, mbf):>21}{span(eps, kf):>20}{rss:>9.0f}{span(cmb, mbf):>21}{span(ceps, kf):>20}")
print("(median, min–max of", len(runs["events"]), "rounds; events: what each tool returns — rsyncstats its parsed transfers,"
      " xferstats transfers + logins)")
rs = med["rsyncstats"]
def ratio(a, what, goal):
    print(f"{what}: {med[a][0] / rs[0]:.1f}× by wall time, {med[a][2] / rs[2]:.1f}× by CPU time  (goal ≥ {goal}×)")
ratio("events", "events vs rsyncstats parse+enrich (MB/s)", 40)
ratio("ingest", "ingest into SQLite vs rsyncstats parse+enrich (MB/s)", 15)
print(f"ingest into SQLite vs SQLite's own insert rate of the same rows (events/s): "
      f"{med['ingest'][1] / med['sqlite'][1]:.0%} by wall time ({med['ingest'][1]:,.0f} vs {med['sqlite'][1]:,.0f}), "
      f"{med['ingest'][3] / med['sqlite'][3]:.0%} by CPU time")
PY
