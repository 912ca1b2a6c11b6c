#!/usr/bin/env bash
# p50 and p99 of one connection's keep-alive GETs through kubegate with
# `audit.fsync: interval`, with the audit ingest thread's scheduling changed
# from outside: MODE none (as kubegate runs it), nice10 (renice), batch
# (SCHED_BATCH), idle (SCHED_IDLE). kubegate and the demo test server on
# cpu 1, wrk on cpu 0 for 8 s. Shows whether the worker waits for the
# ingest (docs/performance.md, "Commits in the caller's turn").
#   bash bench/ingest_priority_p99.sh [MODE...]      # default: all four
# Environment: KUBEGATE_BIN (default build/src/kubegate), CONNS (wrk connections, 1).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${KUBEGATE_BIN:-$PWD/build/src/kubegate}
source bench/lib.sh
[ $# -gt 0 ] || set -- none nice10 batch idle
for mode in "$@"; do
  W=$(mktemp -d)
  kg_plain_bench_config $W "$(kg_start_pinned_testserver $W "$BIN")" "audit: {fsync: interval, fsync_interval: 100ms}"
  kg_serve_pinned $W "$BIN"; PID=$KGPID
  URL=http://127.0.0.1:$KG_PORT/api/v1/namespaces/default/pods
  IT=$(for t in /proc/$PID/task/*; do [ "$(cat $t/comm)" = kg-audit-ingest ] && basename $t; done; true)
  case $mode in
    nice10) renice -n 10 -p "$IT" > /dev/null ;;
    batch) chrt --batch -p 0 "$IT" ;;
    idle) chrt --idle -p 0 "$IT" ;;
  esac
  taskset -c 0 wrk -t1 -c${CONNS:-1} -d8s --latency -H "Authorization: Bearer bench-token" $URL > $W/wrk.txt 2>&1
  echo "$mode: $(grep -E '^ +(50|99)%' $W/wrk.txt | tr -s ' ' | tr '\n' ' ') $(grep Requests/sec $W/wrk.txt)"
  kill $PID "$(cat $W/ts.pid)"; wait $PID 2>/dev/null || true
  rm -rf $W
done
