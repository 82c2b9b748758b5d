# Sourced by the benchmark scripts that need PostgreSQL: a throwaway cluster
# from the newest /usr/lib/postgresql/*/bin, in a temp dir named after
# $1, on a free loopback port, trust authentication for user xferstats (as
# the postgres OS user when run as root). Extra server options: $2. Sets
# `bin`, `tmp`, `port` and `psql` (a function); stops and removes everything
# on exit.
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
tmp=$(mktemp -d "/tmp/$1.XXXXXX")
chmod 755 "$tmp"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir "$tmp/pg"
[ "$(id -u)" = 0 ] && chown postgres "$tmp/pg"
cleanup() { as_pg "$bin/pg_ctl" -D "$tmp/pg/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
as_pg "$bin/initdb" -D "$tmp/pg/data" -U xferstats --auth=trust --no-sync >/dev/null
as_pg "$bin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $tmp/pg ${2:-}" start >/dev/null
psql() { "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U xferstats "$@"; }
