#!/usr/bin/env bash
# Memory per idle client connection: kubegate's RSS with N connections open
# against its RSS before, (a) before the TLS handshake (a TCP connection
# that sends nothing) and (b) after the handshake and one request, idle on
# keep-alive; with MODES="... get", (c) idle after a GET of a 60 KB
# ConfigMap (relayed in pieces, chunked as kube-apiserver sends it).
# Usage: [MODES="tcp tls get"] bench/idle_connections.sh [N] [KUBEGATE_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2000}"
KG="${2:-build/src/kubegate}"
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf $W' EXIT
ulimit -n 65536 2>/dev/null || true
source bench/lib.sh
kg_start_testserver $W
# Caps above N, so the measurement is not cut by them (an older binary
# without the settings is given none).
CAPS=""
if strings "$KG" | grep max_connections_per_source >/dev/null; then
  CAPS=", max_connections: 100000, max_connections_per_source: 100000"
fi
kg_gateway_config $W "$KG" "" "$CAPS"
hold() {  # MODE: tcp | tls; holds N connections, prints "ready", then waits to be killed
  python3 - "$PORT" "$N" "$1" <<'PY' &
import socket, ssl, sys, time
port, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
held = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    if mode == "tls":
        s = ctx.wrap_socket(s)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(4096)
    elif mode == "get":
        s = ctx.wrap_socket(s)
        s.sendall(b"GET /api/v1/namespaces/default/configmaps/big HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer bench-token\r\n\r\n")
        got = b""
        while not got.endswith(b"0\r\n\r\n"):  # the last chunk
            got += s.recv(65536)
    held.append(s)
print("ready", flush=True)
time.sleep(3600)
PY
}
start_kubegate() {
  kg_start_gateway $W "$KG"
  PORT=$KG_PORT
  curl -s --cacert $W/kg/pki/ca.crt -H "Authorization: Bearer bench-token" $KG_URL/api/v1/namespaces >/dev/null
  python3 -c 'import json; print(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "big"}, "data": {"blob": "x" * 60000}}))' > $W/big.json
  curl -s -o /dev/null --cacert $W/kg/pki/ca.crt -H "Authorization: Bearer bench-token" \
    -H "Content-Type: application/json" --data-binary @$W/big.json $KG_URL/api/v1/namespaces/default/configmaps
}
rss() { kg_rss $KGPID; }
for mode in ${MODES:-tcp tls}; do
  start_kubegate  # a fresh process for each: freed heap is not returned to the system
  BEFORE=$(rss)
  hold $mode > $W/$mode.out
  HP=$!
  for _ in $(seq 600); do grep -q ready $W/$mode.out 2>/dev/null && break; sleep 0.1; done
  sleep 1  # let the gateway finish accepting what the kernel queued
  AFTER=$(rss)
  echo "$mode: RSS ${BEFORE} -> ${AFTER} KiB with $N idle connections: $(( (AFTER - BEFORE) * 1024 / N )) bytes each"
  kill $HP; wait $HP 2>/dev/null || true
  kill $KGPID; wait $KGPID 2>/dev/null || true
done
