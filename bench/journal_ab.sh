#!/usr/bin/env bash
# The audit journal on and off, interleaved: kubegate (audit on, one worker)
# and the test server pinned to cpu 1, wrk pinned to cpu 0, ROUNDS rounds of
# 8 s per connection count. Prints kubegate's CPU per request (utime+stime
# of all its threads over the run, from /proc, in µs) and wrk's p50/p99.
#   bash bench/journal_ab.sh                  # CONNS="1 64" ROUNDS=3
#   CONNS=16 ROUNDS=5 bash bench/journal_ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
KG=${KUBEGATE_BIN:-$PWD/build/src/kubegate}
W=$(mktemp -d)
trap 'kill $(cat $W/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf $W' EXIT
source bench/lib.sh
HASH=$(kg_start_pinned_testserver $W "$KG")
TICK_US=$(( 1000000 / $(getconf CLK_TCK) ))
run() {  # journal conns
  local port; port=$(shuf -i 20000-45000 -n 1)
  rm -rf $W/kg
  cat > $W/kg.yaml <<C
listen: {address: 127.0.0.1, port: $port, plain_http: true}
data_dir: $W/kg
upstream: {kubeconfig: $W/up.kubeconfig}
log_level: warn
worker_threads: 1
audit: {journal: $1}
tokens:
  - {user: bench, groups: [bench], kind: agent, token_sha256: $HASH}
C
  KG_PORT=$port kg_serve_pinned $W "$KG"; local pid=$KGPID; echo $pid > $W/kg.pid
  local url=http://127.0.0.1:$port/api/v1/namespaces/default/pods
  taskset -c 0 wrk -t1 -c$2 -d1s -H "Authorization: Bearer bench-token" $url > /dev/null  # warm-up
  local a b; a=$(cat /proc/$pid/task/*/stat | awk '{s+=$14+$15} END {print s}')
  taskset -c 0 wrk -t1 -c$2 -d8s --latency -H "Authorization: Bearer bench-token" $url > $W/wrk.txt
  b=$(cat /proc/$pid/task/*/stat | awk '{s+=$14+$15} END {print s}')
  kill $pid; wait $pid 2>/dev/null || true
  local req; req=$(awk '/requests in/ {print $1}' $W/wrk.txt)
  printf 'journal=%-5s conns=%-3s requests=%-6s cpu_us_per_req=%-4s p50=%-9s p99=%s\n' "$1" "$2" "$req" \
    $(( (b - a) * TICK_US / req )) "$(awk '$1=="50%" {print $2}' $W/wrk.txt)" "$(awk '$1=="99%" {print $2}' $W/wrk.txt)"
}
for c in ${CONNS:-1 64}; do
  for _ in $(seq ${ROUNDS:-3}); do run true $c; run false $c; done
done
