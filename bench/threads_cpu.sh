#!/usr/bin/env bash
# kubegate's CPU per request, thread by thread: where an allowed GET's cost
# goes (the worker, the audit journal writer, the audit ingest, ...).
# kubegate (plain HTTP in front, one worker, the demo test server over TLS
# behind) and the test server on cpu 1, wrk on cpu 0; each thread's
# utime+stime over the measured run from /proc/PID/task/TID/stat, divided
# by the requests wrk completed. Threads are named (common/thread_name.h).
#   bash bench/threads_cpu.sh                       # CONNS="1 16", audit defaults
#   AUDIT="fsync: interval, fsync_interval: 100ms" CONNS=16 bash bench/threads_cpu.sh
#   KG_ARGS=--bench-disable-audit bash bench/threads_cpu.sh
#   DURING='perf record -g -p $KGPID -o /tmp/kg.perf -- sleep 6' CONNS=16 bash bench/threads_cpu.sh
# Environment: KUBEGATE_BIN, AUDIT (the audit: map's contents), KG_ARGS,
# CONNS, DURATION (seconds, default 6), DURING (a command, see above).
set -euo pipefail
cd "$(dirname "$0")/.."
KG=${KUBEGATE_BIN:-$PWD/build/src/kubegate}
W=$(mktemp -d)
trap 'kill $(cat $W/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf $W' EXIT
source bench/lib.sh
HASH=$(kg_start_pinned_testserver $W "$KG")
TICK_US=$(( 1000000 / $(getconf CLK_TCK) ))
snap() { for t in /proc/$1/task/*; do echo "$(basename $t) $(cat $t/comm) $(awk '{print $14+$15}' $t/stat)"; done; }
for c in ${CONNS:-1 16}; do
  rm -rf $W/kg
  kg_plain_bench_config $W "$HASH" "audit: {${AUDIT:-}}"
  port=$KG_PORT
  kg_serve_pinned $W "$KG"; pid=$KGPID; echo $pid > $W/kg.pid
  url=http://127.0.0.1:$port/api/v1/namespaces/default/pods
  taskset -c 0 wrk -t1 -c$c -d2s -H "Authorization: Bearer bench-token" $url > /dev/null  # warm-up
  snap $pid | sort > $W/a
  # DURING runs beside the measured run, with kubegate's pid in $KGPID
  # (a profiler, strace); the run waits for it.
  [ -n "${DURING:-}" ] && { KGPID=$pid bash -c "$DURING" & during_pid=$!; }
  req=$(taskset -c 0 wrk -t1 -c$c -d${DURATION:-6}s -H "Authorization: Bearer bench-token" $url | awk '/requests in/ {print $1}')
  snap $pid | sort > $W/b
  [ -n "${DURING:-}" ] && { wait $during_pid || echo "DURING failed: $?" >&2; }
  # Audit entries per group commit, from /metrics.
  metrics=$(curl -s -H "Authorization: Bearer bench-token" http://127.0.0.1:$port/metrics || true)
  kill $pid; wait $pid 2>/dev/null || true
  echo "conns=$c requests=$req audit={${AUDIT:-}} ${KG_ARGS:-}"
  join $W/a $W/b | awk -v r="$req" -v t="$TICK_US" '
    { d = ($5 - $3) * t / r; tot += d; if (d >= 0.5) printf "  %-16s %7.1f us/req\n", $2, d }
    END { printf "  %-16s %7.1f us/req\n", "total", tot }'
  echo "$metrics" | awk '/^kubegate_audit_batches_total/ {b=$2} /^kubegate_audit_entries_committed_total/ {e=$2}
    END { if (b > 0) printf "  audit: %d group commits since start, %.1f entries each\n", b, e / b }'
done
