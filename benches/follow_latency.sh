#!/usr/bin/env bash
# Append-to-committed latency of `xferstats follow` (issue 14.2), and its
# CPU use while nothing is written.
#
#   benches/follow_latency.sh [SECONDS]     (default 10 s per run)
#
# For SQLite and a throwaway PostgreSQL cluster (free loopback port, temp
# dir, as the postgres user when run as root), at 1,000 and 10,000 lines/s:
# a writer appends xferlog lines (one event each) in 10 ms steps and notes
# when each line was written; a poller counts the stored events every
# 10 ms and notes when each line's event was first seen committed (lines
# of one file are committed in order). Latency = seen − written: an upper
# bound (the poll interval and the query are in it). Prints p50, p99 and
# max per run, then the follower's CPU over 10 idle seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
cargo build --release -q --bin xferstats
. benches/pg_cluster.sh xferstats-follow-bench
export PSQL="$bin/psql" PGPORT=$port TMPDIR_BENCH=$tmp SECS=$secs
psql -d postgres -c "CREATE DATABASE bench1k" -c "CREATE DATABASE bench10k"

python3 - <<'EOF'
import datetime, os, sqlite3, subprocess, threading, time

tmp, secs, port, psql = os.environ["TMPDIR_BENCH"], float(os.environ["SECS"]), os.environ["PGPORT"], os.environ["PSQL"]
base = datetime.datetime(2026, 1, 1)

def line(n):
    t = base + datetime.timedelta(seconds=n)
    return f"{t.strftime('%a %b %e %H:%M:%S %Y')} 1 192.0.2.7 {100 + n} /data/f{n} b _ o r alice ftp 0 * c\n"

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]

def run(store, rate, counter):
    d = os.path.join(tmp, f"{store}-{rate}")
    os.mkdir(d)
    log = os.path.join(d, "xferlog")
    open(log, "w").close()
    env = dict(os.environ, XFERSTATS_STATE_DIR=os.path.join(d, "state"), XFERSTATS_GEOIP="off")
    db = os.path.join(d, "x.db") if store == "sqlite" else f"postgres://xferstats@127.0.0.1:{port}/bench{rate // 1000}k"
    err = open(os.path.join(d, "follow.err"), "w")
    p = subprocess.Popen(["target/release/xferstats", "--db", db, "follow", "--timezone", "UTC", log], env=env, stderr=err)
    count = counter(db)
    while count() < 0:  # the store is created and migrated
        time.sleep(0.05)
    total = int(rate * secs)
    written = [0.0] * total
    seen = [None] * total
    done = threading.Event()

    def poll():
        while True:
            n, t = count(), time.monotonic()
            for i in range(poll.k, min(n, total)):
                seen[i] = t
            poll.k = max(poll.k, min(n, total))
            if poll.k >= total or (done.is_set() and time.monotonic() > done.at + 30):
                return
            time.sleep(0.01)
    poll.k = 0
    th = threading.Thread(target=poll)
    th.start()
    step = rate // 100
    start = time.monotonic()
    with open(log, "a") as f:
        for i in range(0, total, step):
            due = start + i / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            f.write("".join(line(n) for n in range(i, min(i + step, total))))
            f.flush()
            t = time.monotonic()
            for n in range(i, min(i + step, total)):
                written[n] = t
    done.at = time.monotonic()
    done.set()
    th.join()
    lat = [s - w for s, w in zip(seen, written) if s is not None]
    missing = total - len(lat)
    print(f"{store:<10} {rate:>6} lines/s: p50 {pct(lat, .5) * 1000:6.0f} ms  p99 {pct(lat, .99) * 1000:6.0f} ms  "
          f"max {max(lat) * 1000:6.0f} ms  ({len(lat)} lines{', %d NOT COMMITTED' % missing if missing else ''})")
    # CPU while idle.
    time.sleep(3)
    tick = os.sysconf("SC_CLK_TCK")
    def cpu():
        f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    c0 = cpu(); time.sleep(10); c1 = cpu()
    print(f"{'':<10} idle: {(c1 - c0) / tick / 10 * 100:.2f} % of one core over 10 s")
    p.terminate()
    p.wait()

def sqlite_counter(db):
    def count():
        try:
            c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            n = c.execute("SELECT count(*) FROM transfers").fetchone()[0]
            c.close()
            return n
        except sqlite3.Error:
            return -1
    return count

def pg_counter(url):
    # Until follow has created the schema.
    while subprocess.run([psql, "-X", "-q", url, "-c", "SELECT 1 FROM transfers LIMIT 0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        time.sleep(0.05)
    q = subprocess.Popen([psql, "-X", "-At", url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, bufsize=1)
    def count():
        q.stdin.write("SELECT count(*) FROM transfers;\n")
        q.stdin.flush()
        return int(q.stdout.readline())
    return count

print(f"xferstats follow, append → committed (upper bound, 10 ms polls), {secs:.0f} s per run, {os.cpu_count()} CPUs")
for store, counter in (("sqlite", sqlite_counter), ("postgres", pg_counter)):
    for rate in (1000, 10000):
        run(store, rate, counter)
EOF
