#!/usr/bin/env bash
# Two kubegate binaries side by side in one run of ../shared/bench/run.sh
# (README there): a change's "before" and "after", each plain HTTP with the
# audit on and with --bench-disable-audit, beside nginx.
#   BEFORE=/tmp/kubegate-before AFTER=$PWD/build/src/kubegate bash bench/before_after.sh
# Ports: before 19210 (audit) / 19211 (no audit); after 19220 / 19221.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BEFORE:?set BEFORE to the earlier kubegate binary}"
AFTER="${AFTER:-$PWD/build/src/kubegate}"
if [ "${1:-}" = "--start" ]; then  # run.sh's EXTRA_START hook
  W=$BENCH_WORK/kubegate-ba; rm -rf "$W"; mkdir -p "$W"
  source "$PWD/bench/lib.sh"
  H=$(kg_bench_prepare "$W" "$AFTER")
  start() {  # binary name port extra-args
    cat > "$W/$2.yaml" <<C
listen: {address: 127.0.0.1, port: $3, plain_http: true}
data_dir: $W/$2
upstream: {kubeconfig: $W/upstream.kubeconfig}
log_level: warn
worker_threads: ${BENCH_PROXY_NCPU:-1}
tokens:
  - {user: bench, groups: [bench], kind: agent, token_sha256: $H}
C
    "$1" serve --config "$W/$2.yaml" $4 > "$W/$2.log" 2>&1 &
  }
  start "$BEFORE" before 19210 ""
  start "$BEFORE" before-noaudit 19211 "--bench-disable-audit"
  start "$AFTER" after 19220 ""
  start "$AFTER" after-noaudit 19221 "--bench-disable-audit"
  wait
  exit 0
fi
EXTRA_TARGET="kg-before=http://127.0.0.1:19210 kg-after=http://127.0.0.1:19220 kg-before-noaudit=http://127.0.0.1:19211 kg-after-noaudit=http://127.0.0.1:19221" \
EXTRA_START="env BEFORE=$BEFORE AFTER=$AFTER bash $PWD/bench/before_after.sh --start" \
TARGETS="${TARGETS:-nginx-proxy}" CONNS="${CONNS:-16 64}" REPS="${REPS:-3}" DURATION="${DURATION:-5s}" \
OUT="${OUT:-/tmp/kubegate-before-after.md}" bash ../shared/bench/run.sh
