#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for tests and benchmarks.
#   scripts/pg-test.sh start DIR    initdb on first use, start; prints a libpq conninfo
#   scripts/pg-test.sh stop DIR     fast shutdown (the data stays)
#   scripts/pg-test.sh destroy DIR  stop and delete
# The port is chosen once (a free one) and kept in DIR/port, so a restarted
# server is found at the same address. As root, the server runs as the
# postgres user (initdb refuses root).
set -euo pipefail
cmd=${1:?start|stop|destroy}
dir=${2:?directory}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/pg_ctl" ] || { echo "PostgreSQL server not installed (scripts/install-deps.sh)" >&2; exit 1; }
# From /: the caller's working directory may be one the postgres user cannot
# enter (a checkout under a mode-0700 mktemp directory), and the warning
# pg_ctl prints about it would come before the conninfo.
as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
case "$cmd" in
  start)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      mkdir -p "$dir"
      [ "$(id -u)" = 0 ] && chown postgres "$dir"
      as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >/dev/null
      free_port > "$dir/port.tmp" && mv "$dir/port.tmp" "$dir/port"
    fi
    port=$(cat "$dir/port")
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null
    echo "host=127.0.0.1 port=$port user=postgres dbname=postgres"
    ;;
  stop)
    [ -f "$dir/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
  destroy)
    [ -f "$dir/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop|destroy DIR" >&2; exit 2 ;;
esac
