#!/usr/bin/env bash
# Memory per held request: kubegate's RSS with N requests held for approval
# against its RSS idle, on the demo test server. Usage: bench/held_memory.sh [N] [KUBEGATE_BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"
B=build
KG="${2:-$B/src/kubegate}"
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf $W' EXIT
source bench/lib.sh
kg_start_testserver $W
cat > $W/policy.yaml <<YAML
apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: hold-deletes
    match: {verbs: [delete], resources: [configmaps]}
    action: review
    review: {approvers: {users: [nobody]}, maxWait: 10m, mode: hold}
YAML
kg_gateway_config $W "$KG" "policy_file: $W/policy.yaml
approvals: {max_held_per_caller: 10000, max_held_total: 100000}"
kg_start_gateway $W "$KG"
URL=$KG_URL
rss() { kg_rss $KGPID; }
# Warm up: one request of each path, then measure idle.
curl -s --cacert $W/kg/pki/ca.crt -H "Authorization: Bearer bench-token" $URL/api/v1/namespaces >/dev/null
IDLE=$(rss)
for i in $(seq $N); do
  curl -s -o /dev/null --cacert $W/kg/pki/ca.crt -H "Authorization: Bearer bench-token" -X DELETE \
    $URL/api/v1/namespaces/default/configmaps/c$i &
done
for _ in $(seq 300); do
  held=$(curl -s --cacert $W/kg/pki/ca.crt -H "Authorization: Bearer bench-token" $URL/metrics | awk '/^kubegate_held_requests / {print $2}')
  [ "${held:-0}" -ge "$N" ] && break; sleep 0.1
done
HELD=$(rss)
echo "held requests: $held"
echo "kubegate RSS idle: ${IDLE} KiB; with $held held: ${HELD} KiB"
echo "per held request: $(( (HELD - IDLE) * 1024 / (held > 0 ? held : 1) )) bytes"
