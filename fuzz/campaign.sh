#!/usr/bin/env bash
# Runs a documented campaign per target, one after the other, at the lowest
# CPU priority: `campaign.sh EXECS SECONDS TARGET...` (a target stops at
# whichever limit it reaches first). The summary lines go to stdout and to
# campaigns.log; progress and crashes to stderr.
set -euo pipefail
cd "$(dirname "$0")"
execs=$1 secs=$2
shift 2
bin=${FUZZ_BIN:-../target/fuzz/xferstats-fuzz}
for t in "$@"; do
    start=$(date -u +%FT%TZ)
    set +e
    line=$(nice -n 19 "$bin" run "$t" --execs "$execs" --seconds "$secs")
    rc=$?
    set -e
    echo "$start $line exit=$rc" | tee -a campaigns.log
done
