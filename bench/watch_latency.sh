#!/usr/bin/env bash
# Watch event latency added by kubegate (issue 13, goal 5): with 0 and then
# N other watches open through kubegate (each a TLS client connection and a
# TLS connection to the API server, on services), EVENTS ConfigMaps are
# created one at a time, directly at the test server, and two watches on
# configmaps, one direct and one through kubegate, note when each event
# arrives. Prints p50/p90/p99/max of what kubegate adds (bench/watch_latency.py).
# kubegate runs with its defaults: TLS, audit on.
# Usage: bench/watch_latency.sh [N] [EVENTS] [INTERVAL_MS] [KUBEGATE_BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
EVENTS="${2:-1000}"
INTERVAL="${3:-10}"
KG="${4:-build/src/kubegate}"
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf $W' EXIT
ulimit -n "$(ulimit -Hn)"  # 20,000 here: kubegate needs two descriptors per watch
source bench/lib.sh
kg_start_testserver "$W"
UP_PORT=$(cat $W/ts.port)
sed -n 's/.*certificate-authority-data: *//p' $W/up.kubeconfig | base64 -d > $W/up-ca.crt
UP_TOKEN=$(sed -n 's/.*token: *//p' $W/up.kubeconfig | head -1)
kg_gateway_config $W "$KG" "" ", max_connections: 100000, max_connections_per_source: 100000"
kg_start_gateway $W "$KG"
ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
TSPID=$(pgrep -f "kube-testserver --data-dir $W/ts")
# This VM runs the kernel's DAMON (kdamond) with a 500 ms sampling interval;
# its runs are noted so the report can say which slow events followed one.
KDAMOND=$(pgrep -x kdamond.0 || true)
measure() {  # LABEL
  local k0 t0 sampler= runs=()
  k0=$(ticks $KGPID); t0=$(ticks $TSPID)
  if [ -n "$KDAMOND" ]; then
    python3 bench/watch_latency.py runs $KDAMOND $(( EVENTS * (INTERVAL + 5) / 1000 + 60 )) $W/kdamond-$1.txt &
    sampler=$!
    runs=($W/kdamond-$1.txt)
  fi
  python3 bench/watch_latency.py measure $KG_PORT $W/kg/pki/ca.crt bench-token $UP_PORT $W/up-ca.crt "$UP_TOKEN" \
    "$EVENTS" "$INTERVAL" "$1" $W "${runs[@]}"
  if [ -n "$sampler" ]; then kill $sampler 2>/dev/null || true; fi
  echo "  CPU during the run (ticks of 10 ms): kubegate $(( $(ticks $KGPID) - k0 )), test server $(( $(ticks $TSPID) - t0 ))"
}
measure "open-0"
python3 bench/watch_latency.py idle $KG_PORT $W/kg/pki/ca.crt bench-token "$N" > $W/idle.out &
for _ in $(seq 1200); do grep -q ready $W/idle.out 2>/dev/null && break; sleep 0.1; done
grep -q ready $W/idle.out || { echo "the $N idle watches did not open"; exit 1; }
k0=$(ticks $KGPID); t0=$(ticks $TSPID); sleep 5
echo "with $N watches open and nothing happening for 5 s, CPU ticks: kubegate $(( $(ticks $KGPID) - k0 )), test server $(( $(ticks $TSPID) - t0 ))"
echo "kubegate: $(kg_sockets $KGPID) sockets, RSS $(kg_rss $KGPID) KiB"
# DURING='command': run 3 s into the second run (to profile it), with
# KGPID and TSPID set, e.g. DURING='perf record -a -g -o /tmp/p.data sleep 4'.
[ -n "${DURING:-}" ] && { sleep 3; KGPID=$KGPID TSPID=$TSPID bash -c "$DURING" >/dev/null 2>&1; } &
measure "open-$N"
