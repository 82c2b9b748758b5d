#!/usr/bin/env bash
# Size and generation time of `report --format html` on a large store, the
# two figures of issue 18's bar (≤ 2 MB, ≤ 3 s from 10 M events).
#
#   benches/html_report.sh [EVENTS] [RUNS]      (default 10,000,000 and 3)
#
# Builds (once, under nice, kept as $XFERSTATS_BENCH_DB or
# target/html-bench-EVENTS.db) an SQLite store of one year × 1,000 users ×
# 50 servers of synthetic events through the library's commit path
# (examples/html_report.rs), which then times the HTML report of the whole
# year in-process; then runs the binary (`xferstats report --format html
# -o FILE`) RUNS times and prints the median wall time, its CPU time
# (user + system) and peak RSS (from /usr/bin/time), and the page's size,
# each against the bar.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-10000000}
runs=${2:-3}
nice cargo build --release -q --bin xferstats --example html_report
db=${XFERSTATS_BENCH_DB:-target/html-bench-$events.db}
page=target/html-bench-cli.html
nice target/release/examples/html_report --events "$events" --db "$db" --out target/html-bench.html
times=$(mktemp)
trap 'rm -f "$times"' EXIT
for _ in $(seq "$runs"); do
    /usr/bin/time -a -o "$times" -f "%e %U %S %M" \
        target/release/xferstats --db "$db" report --format html -o "$page"
done
sort -n "$times" | awk -v n="$runs" 'NR == int((n + 1) / 2) {
    printf "xferstats report --format html (median of %d): %.2f s wall (bar 3 s: %s), %.2f s CPU, peak RSS %.0f MB\n",
        n, $1, ($1 <= 3 ? "met" : "MISSED"), $2 + $3, $4 / 1024 }'
stat -c %s "$page" | awk '{ printf "page: %.2f MB (bar 2 MB: %s)\n", $1 / 1e6, ($1 <= 2e6 ? "met" : "MISSED") }'
