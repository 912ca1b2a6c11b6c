#!/usr/bin/env bash
# Heap allocations per allowed GET, counted by heaptrack: kubegate (plain
# HTTP in front, the demo test server over TLS behind, the audit on with
# AUDIT_YAML, default fsync: interval) serves 2,000 and then 6,000
# keep-alive GETs from one curl, each in its own run; the figure is the
# difference in allocation calls divided by 4,000, so start-up and shutdown
# cancel out. Repeatable for the same binary.
#   bash bench/allocations_per_request.sh [KUBEGATE_BIN ...]   (default build/src/kubegate)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v heaptrack >/dev/null || apt-get install -y -qq heaptrack >/dev/null
[ $# -gt 0 ] || set -- "$PWD/build/src/kubegate"
source bench/lib.sh
calls() {  # binary n -> allocation calls of one run
  local bin=$1 n=$2 W
  W=$(mktemp -d)
  kg_plain_bench_config $W "$(kg_start_pinned_testserver $W "$bin")" "audit: ${AUDIT_YAML:-{fsync: interval, fsync_interval: 100ms\}}"
  heaptrack -o $W/hp "$bin" serve --config $W/kg.yaml > $W/kg.log 2>&1 & local hp=$!
  local url=http://127.0.0.1:$KG_PORT/api/v1/namespaces/default/pods
  kg_wait_answering
  curl -s -o /dev/null -H "Authorization: Bearer bench-token" "$url?limit=[1-$n]"
  pkill -INT -f "^$bin serve --config $W/kg.yaml" || true
  # heaptrack's interpreter can outlive kubegate; once kubegate is gone its
  # data is all in.
  while pgrep -f "^$bin serve --config $W/kg.yaml" > /dev/null; do sleep 0.2; done
  sleep 2; pkill -f "heaptrack_interpret.*" 2>/dev/null || true
  wait $hp 2>/dev/null || true
  kill "$(cat $W/ts.pid)" 2>/dev/null || true
  heaptrack_print -f $W/hp.zst 2>/dev/null | awk '/^calls to allocation functions:/ {print $5}'
  rm -rf $W
}
for BIN in "$@"; do
  a=$(calls "$BIN" 2000)
  b=$(calls "$BIN" 6000)
  echo "$BIN: $(awk -v a=$a -v b=$b 'BEGIN {printf "%.1f", (b - a) / 4000}') allocations per request ($a calls for 2,000 requests, $b for 6,000)"
done
