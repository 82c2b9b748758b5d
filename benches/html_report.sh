#!/usr/bin/env bash
# Size and generation time of `report --format html` on a large store.
#
#   benches/html_report.sh [EVENTS]      (default 10,000,000)
#
# Builds (once, under nice, kept as target/html-bench-EVENTS.db) an SQLite
# store of one year × 1,000 users × 50 servers of synthetic events through
# the library's commit path (examples/html_report.rs), then times the HTML
# report of the whole year from it and prints the page's size; then the same
# through the binary (`xferstats report --format html -o FILE`), timed by
# /usr/bin/time with its peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-10000000}
nice cargo build --release -q --bin xferstats --example html_report
db="target/html-bench-$events.db"
nice target/release/examples/html_report --events "$events" --db "$db" --out target/html-bench.html
/usr/bin/time -f "xferstats report --format html: %e s wall, peak RSS %M KB" \
    target/release/xferstats --db "$db" report --format html -o target/html-bench-cli.html
ls -l target/html-bench-cli.html | awk '{ printf "page: %.2f MB\n", $5 / 1e6 }'
