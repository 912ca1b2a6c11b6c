#!/usr/bin/env bash
# kubegate beside its peers in one run of ../shared/bench/run.sh (README
# there): the table of issue 13. Targets: kubegate with the audit on (plain
# and TLS on both legs) and with --bench-disable-audit, beside nginx (with and
# without its access log) and the Go proxy (with and without its audit line).
#   bash bench/gateway.sh                         # the issue's table, 1/16/64/256 connections
#   CONNS="16 64" TARGETS=nginx-proxy-log bash bench/gateway.sh
#   PROFILE=1 CONNS=64 TARGETS=nginx-proxy bash bench/gateway.sh   # perf record -g of kubegate (audit on)
# Environment: KUBEGATE_BIN (default build/src/kubegate), KG_ARGS (extra
# `serve` arguments for every kubegate), KG_TARGETS (which kubegate targets:
# kg kg-interval kg-noaudit kg-tls; kg-nojournal: audit.journal false), OUT (report file), and everything
# run.sh reads. kg and kg-tls sync the audit log per commit (the default);
# kg-interval uses audit.fsync: interval (100ms).
# PROFILE=1 records one kubegate (PROFILE_TARGET: kg, the default, or
# kg-noaudit) with `perf record -g` while it
# lives (written to $PERF_OUT, default /tmp/kubegate.perf.data; perf ends
# a moment after the run); run one CONNS value with it.
# Ports: 19230 (audit on), 19232 (audit on, fsync interval), 19233 (audit
# on, no journal), 19231 (audit off), 19643 (TLS, audit on). Go comes from bookworm-backports
# (golang-1.23-go), installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--start" ] && [ ! -x "${GO:-/usr/lib/go-1.23/bin/go}" ]; then
  grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/ ||
    echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list
  apt-get update -qq && apt-get install -y -qq -t bookworm-backports golang-1.23-go >/dev/null
fi
KUBEGATE_BIN="${KUBEGATE_BIN:-$PWD/build/src/kubegate}"
if [ "${1:-}" = "--start" ]; then  # run.sh's EXTRA_START hook
  W=$BENCH_WORK/kubegate-gw; rm -rf "$W"; mkdir -p "$W"
  source "$PWD/bench/lib.sh"
  H=$(kg_bench_prepare "$W" "$KUBEGATE_BIN")
  start() {  # name port listen-yaml extra-args [wrapper command]
    local name=$1 port=$2 listen=$3 extra=$4 wrapper=${5:-}
    local audit="{fsync: per_commit}"
    [ "$name" = kg-interval ] && audit="{fsync: interval, fsync_interval: 100ms}"
    [ "$name" = kg-nojournal ] && audit="{fsync: per_commit, journal: false}"
    cat > "$W/$name.yaml" <<C
listen: {address: 127.0.0.1, port: $port, $listen}
data_dir: $W/$name
upstream: {kubeconfig: $W/upstream.kubeconfig}
log_level: warn
worker_threads: ${BENCH_PROXY_NCPU:-1}
audit: $audit
tokens:
  - {user: bench, groups: [bench], kind: agent, token_sha256: $H}
C
    $wrapper "$KUBEGATE_BIN" serve --config "$W/$name.yaml" ${KG_ARGS:-} $extra > "$W/$name.log" 2>&1 &
  }
  if [ -n "${PROFILE:-}" ]; then
    # perf runs kubegate in a session of its own: run.sh ends this hook's
    # process group, and perf must outlive it to write its file. The end of
    # this script stops that kubegate, and perf with it.
    wrap="setsid perf record ${PERF_CALLGRAPH:--g} -F ${PERF_FREQ:-2000} -o ${PERF_OUT:-/tmp/kubegate.perf.data} --"
  fi
  pw() { [ "${PROFILE_TARGET:-kg}" = "$1" ] && echo "${wrap:-}"; true; }
  start kg 19230 "plain_http: true" "" "$(pw kg)"
  start kg-interval 19232 "plain_http: true" "" "$(pw kg-interval)"
  start kg-noaudit 19231 "plain_http: true" "--bench-disable-audit" "$(pw kg-noaudit)"
  start kg-nojournal 19233 "plain_http: true" "" "$(pw kg-nojournal)"
  start kg-tls 19643 "tls_cert_file: $BENCH_TLS_CERT, tls_key_file: $BENCH_TLS_KEY" ""
  wait
  exit 0
fi
declare -A url=([kg]=http://127.0.0.1:19230 [kg-noaudit]=http://127.0.0.1:19231 [kg-interval]=http://127.0.0.1:19232
                [kg-nojournal]=http://127.0.0.1:19233
                [kg-tls]=https://127.0.0.1:19643)
extra=""
for t in ${KG_TARGETS:-kg kg-interval kg-noaudit kg-tls}; do extra+="$t=${url[$t]} "; done
[ -n "${PROFILE:-}" ] && extra="${PROFILE_TARGET:-kg}=${url[${PROFILE_TARGET:-kg}]}"
EXTRA_TARGET="$extra" \
EXTRA_START="env KUBEGATE_BIN=$KUBEGATE_BIN PROFILE=${PROFILE:-} PROFILE_TARGET=${PROFILE_TARGET:-kg} PERF_OUT=${PERF_OUT:-} PERF_CALLGRAPH='${PERF_CALLGRAPH:-}' PERF_FREQ=${PERF_FREQ:-} KG_ARGS='${KG_ARGS:-}' bash $PWD/bench/gateway.sh --start" \
TARGETS="${TARGETS-nginx-proxy nginx-proxy-log go-proxy-audit nginx-proxy-tls nginx-proxy-log-tls go-proxy-audit-tls}" \
CONNS="${CONNS:-1 16 64 256}" REPS="${REPS:-3}" DURATION="${DURATION:-5s}" GO="${GO:-/usr/lib/go-1.23/bin/go}" \
OUT="${OUT:-/tmp/kubegate-gateway.md}" bash ../shared/bench/run.sh
if [ -n "${PROFILE:-}" ]; then
  pkill -TERM -f "kubegate-gw/${PROFILE_TARGET:-kg}.yaml" || true
  while pgrep -f "perf record.*kubegate-gw/${PROFILE_TARGET:-kg}.yaml" > /dev/null; do sleep 0.2; done
  echo "profile written to ${PERF_OUT:-/tmp/kubegate.perf.data}"
fi
