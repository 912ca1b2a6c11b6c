#!/usr/bin/env bash
# Instructions per allowed GET, counted by callgrind: repeatable for the same
# binary and inputs whatever else the machine is doing (wall-clock figures
# on this shared machine move by 20-40 %). kubegate (plain HTTP in front, the
# demo test server over TLS behind on cpu 1, audit off unless AUDIT=1) serves N
# requests on one keep-alive connection from curl; the figure is
# (Ir(3000) - Ir(1000)) / 2000, so start-up and shutdown cancel out. User-space
# instructions only: the kernel's share (sockets, fsync) is not in it.
#   bash bench/instructions_per_request.sh [KUBEGATE_BIN ...]   (default build/src/kubegate)
#   AUDIT=1 KEEP_CG=/tmp/cg bash bench/instructions_per_request.sh   # keeps /tmp/cg.1000 and /tmp/cg.3000
#     for callgrind_annotate --inclusive=yes
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
[ $# -gt 0 ] || set -- "$PWD/build/src/kubegate"
W=$(mktemp -d)
trap 'kill $(cat $W/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf $W' EXIT
source bench/lib.sh
kg_plain_bench_config $W "$(kg_start_pinned_testserver $W "$1")"
PORT=$KG_PORT
URL=http://127.0.0.1:$PORT/api/v1/namespaces/default/pods
ARGS=(--bench-disable-audit); [ "${AUDIT:-0}" = 1 ] && ARGS=()
for BIN in "$@"; do
  ir=()
  for n in 1000 3000; do
    rm -rf $W/kg $W/cg.out
    valgrind --tool=callgrind --callgrind-out-file=$W/cg.out "$BIN" serve --config $W/kg.yaml "${ARGS[@]}" \
      > $W/kg.log 2>&1 & VP=$!
    kg_wait_answering
    curl -s -o /dev/null -H "Authorization: Bearer bench-token" "$URL?limit=[1-$n]"
    kill -INT $VP; wait $VP || true
    [ -n "${KEEP_CG:-}" ] && cp $W/cg.out "$KEEP_CG.$n"
    ir+=($(grep -m1 "^summary:" $W/cg.out | awk '{print $2}'))
  done
  echo "$BIN: $(( (ir[1] - ir[0]) / 2000 )) instructions per request (Ir ${ir[0]} for 1,000 requests, ${ir[1]} for 3,000)"
done
