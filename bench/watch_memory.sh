#!/usr/bin/env bash
# Memory per open watch: kubegate's RSS with N watches open (each a TLS
# client connection and a TLS connection to the API server) against its RSS
# before, on the demo test server. Usage: bench/watch_memory.sh [N] [KUBEGATE_BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"
KG="${2:-build/src/kubegate}"
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf $W' EXIT
ulimit -n 65536 2>/dev/null || true
source bench/lib.sh
kg_start_testserver "$W"
kg_gateway_config $W "$KG" "" ", max_connections: 100000, max_connections_per_source: 100000"
kg_start_gateway $W "$KG"
URL=$KG_URL
rss() { kg_rss $KGPID; }
sockets() { kg_sockets $KGPID; }
curl -s --cacert $W/kg/pki/ca.crt -H "Authorization: Bearer bench-token" "$URL/api/v1/namespaces/default/configmaps" >/dev/null
BEFORE=$(rss); BASE=$(sockets)
python3 - "$KG_PORT" "$N" "$W/kg/pki/ca.crt" > $W/watchers.out <<'PY' &
import socket, ssl, sys, time
port, n, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
held = []
for _ in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(b"GET /api/v1/namespaces/default/configmaps?watch=true HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer bench-token\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    held.append(s)
print("ready", flush=True)
time.sleep(3600)
PY
for _ in $(seq 600); do grep -q ready $W/watchers.out 2>/dev/null && break; sleep 0.1; done
# Each watch is two sockets in kubegate: the caller's and the API server's.
for _ in $(seq 100); do [ $(( $(sockets) - BASE )) -ge $((2 * N)) ] && break; sleep 0.1; done
AFTER=$(rss)
echo "watches: $N (kubegate sockets $(( $(sockets) - BASE )) more)"
echo "kubegate RSS ${BEFORE} -> ${AFTER} KiB: $(( (AFTER - BEFORE) * 1024 / N )) bytes per watch"
