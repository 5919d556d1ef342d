#!/usr/bin/env bash
# A private PostgreSQL cluster for the demo: `scripts/postgres.sh start DIR PORT` creates (once)
# and starts a cluster in DIR listening on 127.0.0.1:PORT with a `doorstep` database and prints
# its URL; `scripts/postgres.sh stop DIR` stops it. The server binaries come from Debian's
# postgresql package (scripts/setup.sh installs it). As root, the cluster runs as `postgres`.
set -euo pipefail

BINDIR="${DOORSTEP_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
[ -x "$BINDIR/pg_ctl" ] || { echo "PostgreSQL server binaries not found; run scripts/setup.sh" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd="${1:-}"; dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
case "$cmd" in
start)
    port="${3:?usage: $0 start DIR PORT}"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$BINDIR/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log"
    fi
    as_owner "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null
    as_owner "$BINDIR/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'doorstep'" | grep -q 1 ||
        as_owner "$BINDIR/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE doorstep"
    echo "postgres://postgres@127.0.0.1:$port/doorstep"
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
*)
    echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2
    ;;
esac
