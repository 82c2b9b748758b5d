#!/usr/bin/env bash
# Regenerates corpus/<target>/ from testdata/ and the shared real-server
# samples (../../shared/samples/realogs, or $REALOGS): each log is cut into
# chunks of 6 lines (at most 16 chunks a file, spread over it), with the
# layout line first for the targets that read one. Hand-written seeds
# (formats, URLs, arguments, templates) live in corpus/*/hand-* and are kept.
# The decoder-state seeds are saved by the decoders themselves
# (`xferstats-fuzz state-seed`): build first with
# `cargo build --profile fuzz -p xferstats-fuzz`.
set -euo pipefail
cd "$(dirname "$0")"
testdata=../testdata
realogs=${REALOGS:-../../shared/samples/realogs}
test -d "$realogs" || { echo "no real-server samples at $realogs (set REALOGS)" >&2; exit 1; }
bin=${FUZZ_BIN:-../target/fuzz/xferstats-fuzz}

DEFAULT_RSYNC='%o %h [%a] %m (%u) %f %l'
CUSTOM_RSYNC='%t %a %h %o %m %u %f %l %b %i'
DEFAULT_PROFTPD='%h %l %u %t "%r" %s %b'
CUSTOM_PROFTPD='%{iso8601} %a %u %{protocol} %m "%f" %{file-size} %b %{transfer-status} %T'

# chunks TARGET HEADER FILE [FILTER]: writes corpus/TARGET/<file>-NN.
chunks() {
    local target=$1 header=$2 file=$3 filter=${4:-cat}
    local dir=corpus/$target name lines n step i=0
    name=$(echo "$file" | sed -e 's|^\.\./||' -e 's|^.*/realogs/|realogs/|' -e 's|[/.]|_|g')
    mkdir -p "$dir"
    lines=$(wc -l <"$file")
    n=$(((lines + 5) / 6))
    step=$(((n + 15) / 16))
    for ((c = 0; c < n; c += step)); do
        {
            [ -z "$header" ] || printf '%s\n' "$header"
            sed -n "$((c * 6 + 1)),$((c * 6 + 6))p" "$file" | $filter
        } >"$dir/$name-$(printf %02d $i)"
        i=$((i + 1))
    done
}

# The message of a `log file` line: what follows `YYYY/MM/DD HH:MM:SS [pid] `.
rsync_msg() { sed -E 's|^[0-9/]+ [0-9:]+ \[[0-9]+\] ||'; }

for t in rsync rsync_logformat openssh xferlog vsftpd proftpd proftpd_extended sftpgo syslog prefix detect state; do
    find "corpus/$t" -type f ! -name 'hand-*' -delete 2>/dev/null || true
done

for f in "$testdata"/rsync/{bad-lines,bsd-syslog,default-logfile,summary-only-rfc3339}.log "$realogs"/rsync/rsyncd-default.log; do
    chunks rsync "$DEFAULT_RSYNC" "$f"
    chunks rsync_logformat "$DEFAULT_RSYNC" "$f" rsync_msg
done
for f in "$testdata"/rsync/custom-itemize.log "$realogs"/rsync/rsyncd-custom.log; do
    chunks rsync "$CUSTOM_RSYNC" "$f"
    chunks rsync_logformat "$CUSTOM_RSYNC" "$f" rsync_msg
done
for f in "$testdata"/openssh/auth.log "$realogs"/ssh/*/*.log; do
    chunks openssh "" "$f"
done
for f in "$testdata"/xferlog/traps.xferlog "$realogs"/proftpd/xferlog "$realogs"/vsftpd/std/xferlog; do
    chunks xferlog "" "$f"
done
for f in "$testdata"/vsftpd/traps.log "$realogs"/vsftpd/own/vsftpd.log; do
    chunks vsftpd "" "$f"
done
for f in "$testdata"/proftpd/{proftpd,sftp}.log "$realogs"/proftpd/{proftpd,sftp}.log; do
    chunks proftpd "" "$f"
done
for f in "$testdata"/proftpd/extended.log "$realogs"/proftpd/extended.log; do
    chunks proftpd_extended "$DEFAULT_PROFTPD" "$f"
done
chunks proftpd_extended "$CUSTOM_PROFTPD" "$realogs"/proftpd/xfer-ext.log
chunks sftpgo "" "$testdata"/sftpgo/sftpgo.log
for f in "$testdata"/syslog/mixed.log "$testdata"/rsync/{bsd-syslog,summary-only-rfc3339}.log "$testdata"/openssh/auth.log "$realogs"/ssh/syslog/auth.log "$realogs"/ssh/syslog/auth-rfc3339.log; do
    chunks syslog "$DEFAULT_RSYNC" "$f"
done
logs=("$testdata"/*/*.log "$testdata"/xferlog/traps.xferlog "$realogs"/*/*.log "$realogs"/*/*/*.log "$realogs"/*/*/xferlog "$realogs"/proftpd/xferlog)
for f in "${logs[@]}"; do
    chunks prefix "" "$f"
    chunks detect "" "$f"
done

# Decoder states, each saved mid-way through a log: byte 1 picks the
# decoder (0 rsync, 1 openssh, 2 syslog).
mkdir -p corpus/state
for f in "$testdata"/rsync/{default-logfile,custom-itemize,summary-only-rfc3339}.log "$realogs"/rsync/rsyncd-default.log; do
    "$bin" state-seed 0 "$f" >"corpus/state/$(basename "$f" .log)-rsync"
done
for f in "$testdata"/openssh/auth.log "$realogs"/ssh/E-verbose/auth.log; do
    "$bin" state-seed 1 "$f" >"corpus/state/$(basename "$(dirname "$f")")-openssh"
done
"$bin" state-seed 2 "$testdata"/syslog/mixed.log >corpus/state/mixed-syslog
echo "corpus: $(find corpus -type f | wc -l) files, $(du -sh corpus | cut -f1)"
