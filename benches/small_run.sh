#!/usr/bin/env bash
# The fixed cost of a run: every log of the shared real-server samples
# (../shared/samples/realogs, 17 files, 0.3 MB) ingested into a new SQLite
# store, by each binary given, alternately.
#
#   benches/small_run.sh [RUNS] BINARY...     (RUNS: default 20)
#
# Prints per binary the median and the least CPU time of a run
# (`perf stat -e task-clock`: user + system, all threads), and, with
# CALLGRIND=1, the instructions of one run under valgrind (whole process,
# all threads). A tiny import is all start-up, schema, per-input and
# per-commit work: this is the measure of that fixed cost, where
# throughput benches (parse, formats, vs_rsyncstats.sh) do not see it.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=20
if [[ ${1:-} =~ ^[0-9]+$ ]]; then runs=$1; shift; fi
[[ $# -gt 0 ]] || { echo "usage: $0 [RUNS] BINARY..." >&2; exit 2; }
samples=../shared/samples/realogs
mapfile -t files < <(find "$samples" \( -name '*.log' -o -name xferlog \) | sort)
export XFERSTATS_HOST_KEY=xferstats-bench-host-key-0123456789
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
once() { # BINARY [WRAPPER...]: one run into a new store (exit 1: the samples have rejected lines)
    local bin=$1 rc=0; shift
    rm -rf "$work/s" && mkdir "$work/s"
    "$@" "$bin" --db "$work/s/x.db" --state-dir "$work/s" ingest --server-host bench --timezone UTC \
        --geoip off "${files[@]}" >/dev/null 2>"$work/s/err" || rc=$?
    [[ $rc -le 1 ]] || { cat "$work/s/err" >&2; exit "$rc"; }
}
for _ in $(seq "$runs"); do
    for bin in "$@"; do
        once "$bin" perf stat -x, -e task-clock -o "$work/perf"
        echo "$bin $(grep task-clock "$work/perf" | cut -d, -f1)" >>"$work/all"
    done
done
for bin in "$@"; do
    grep -F "$bin " "$work/all" | awk '{ print $2 }' | sort -n | awk -v b="$bin" \
        '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
           printf "%s: task-clock median %.1f ms, min %.1f ms (%d runs)\n", b, m, a[1], NR }'
    if [[ ${CALLGRIND:-} == 1 ]]; then
        once "$bin" valgrind -q --tool=callgrind --callgrind-out-file="$work/cg"
        callgrind_annotate "$work/cg" 2>/dev/null | awk -v b="$bin" '/PROGRAM TOTALS/ { print b ": " $1 " instructions" }'
    fi
done
