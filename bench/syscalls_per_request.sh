#!/usr/bin/env bash
# System calls per allowed GET: `strace -f -c` of kubegate (plain HTTP in
# front, the demo test server over TLS behind on cpu 1, one worker; audit off unless
# AUDIT=1, which keeps the default per-commit fsync or takes the audit map
# from AUDIT_YAML, e.g. "{fsync: interval, fsync_interval: 100ms}")
# serving N keep-alive GETs of a ConfigMap of BODY bytes from one curl.
# Divide the counts by N. PAD=BYTES adds a header of that size (a long head,
# as an OIDC ID token makes one).
#   N=1000 BODY=2000 [PAD=1200] bash bench/syscalls_per_request.sh [KUBEGATE_BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v strace >/dev/null || apt-get install -y -qq strace >/dev/null
KG="${1:-build/src/kubegate}"
N="${N:-1000}"
W=$(mktemp -d)
trap 'kill $(jobs -p) $(cat $W/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf $W' EXIT
source bench/lib.sh
kg_plain_bench_config $W "$(kg_start_pinned_testserver $W "$KG")" "${AUDIT_YAML:+audit: $AUDIT_YAML}"
PORT=$KG_PORT
BASE=http://127.0.0.1:$PORT/api/v1/namespaces/default/configmaps
AUTH="Authorization: Bearer bench-token"
ARGS=(--bench-disable-audit); [ "${AUDIT:-0}" = 1 ] && ARGS=()
strace -f ${STRACE_ARGS:--c} -o $W/strace.txt "$KG" serve --config $W/kg.yaml "${ARGS[@]}" > $W/kg.log 2>&1 &
for _ in $(seq 100); do curl -s -o /dev/null -H "$AUTH" $BASE && break; sleep 0.2; done
python3 -c 'import json, sys; print(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
  "metadata": {"name": "bench"}, "data": {"k": "x" * int(sys.argv[1])}}))' "${BODY:-2000}" > $W/cm.json
curl -s -o /dev/null -H "$AUTH" -H "Content-Type: application/json" --data-binary @$W/cm.json $BASE
PADH=(); [ -n "${PAD:-}" ] && PADH=(-H "X-Pad: $(head -c "$PAD" /dev/zero | tr '\0' a)")
curl -s -o /dev/null -H "$AUTH" "${PADH[@]}" "$BASE/bench?n=[1-$N]"
pkill -INT -f "serve --config $W/kg.yaml" || true
for _ in $(seq 50); do pgrep -f "serve --config $W/kg.yaml" >/dev/null || break; sleep 0.2; done
sleep 0.5
echo "$N GETs of a ConfigMap with ${BODY:-2000} bytes of data${PAD:+, a $PAD-byte header}:"
if [ -n "${STRACE_ARGS:-}" ]; then cp $W/strace.txt /tmp/strace-full.txt; else head -20 $W/strace.txt; fi
