#!/usr/bin/env bash
# p50, p90 and p99 of keep-alive GETs through kubegate, binary beside
# binary: kubegate (plain HTTP in front, one worker) and the demo test server
# (TLS behind) on cpu 1, wrk on cpu 0; for each of ROUNDS rounds every
# binary runs once, in turn, so a change is compared inside a round.
#   bash bench/latency.sh BIN...                        # 16 connections, audit.fsync: interval
#   CONNS=1 ROUNDS=3 bash bench/latency.sh A B
#   KG_ARGS=--bench-disable-audit bash bench/latency.sh A
# Environment: CONNS (16), DURATION (seconds, 8), ROUNDS (2), AUDIT (the
# audit: map's contents; default fsync: interval, fsync_interval: 100ms), KG_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- "$PWD/build/src/kubegate"
source bench/lib.sh
W=$(mktemp -d)
trap 'kill $(cat $W/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf $W' EXIT
C=${CONNS:-16}
for round in $(seq "${ROUNDS:-2}"); do
  for bin in "$@"; do
    R=$(mktemp -d -p $W)  # this run's test server, kubegate and data
    kg_plain_bench_config $R "$(kg_start_pinned_testserver $R "$bin")" \
      "audit: {${AUDIT:-fsync: interval, fsync_interval: 100ms}}"
    cp $R/ts.pid $W/ts.pid
    kg_serve_pinned $R "$bin"; echo $KGPID > $W/kg.pid
    url=http://127.0.0.1:$KG_PORT/api/v1/namespaces/default/pods
    taskset -c 0 wrk -t1 -c$C -d2s -H "Authorization: Bearer bench-token" $url > /dev/null  # warm-up
    taskset -c 0 wrk -t1 -c$C -d${DURATION:-8}s --latency -H "Authorization: Bearer bench-token" $url > $R/wrk.txt
    printf 'round %s conns=%s %s: %s req/s %s\n' "$round" "$C" "$bin" "$(awk '/Requests\/sec/ {print $2}' $R/wrk.txt)" \
      "$(awk '$1 == "50%" || $1 == "90%" || $1 == "99%" {printf "p%s %s  ", substr($1, 1, 2), $2}' $R/wrk.txt)"
    kill $KGPID "$(cat $W/ts.pid)"; wait $KGPID 2>/dev/null || true
    rm -f $W/*.pid; rm -rf $R
  done
done
