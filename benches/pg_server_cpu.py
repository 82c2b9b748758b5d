"""CPU seconds (user + system) a PostgreSQL cluster has used so far: its
postmaster's own and its exited children's (reaped by it), and its live
processes'. Used by the benchmark scripts to measure the server's work.

    python3 benches/pg_server_cpu.py DATA_DIR
"""
import os
import sys

pm = int(open(os.path.join(sys.argv[1], "postmaster.pid")).readline())
total = 0
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if int(p) == pm:
        total += sum(int(x) for x in f[11:15])
    elif int(f[1]) == pm:
        total += int(f[11]) + int(f[12])
print(total / os.sysconf("SC_CLK_TCK"))
