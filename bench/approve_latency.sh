#!/usr/bin/env bash
# Approve-to-release latency: from sending an approval (REST, as the
# approver) to the held request it approves being answered, on the demo
# test server (both measured by the shell: a few ms of curl start-up each). N requests are
# held and approved one after another over the REST API.
#   bash bench/approve_latency.sh [N] [KUBEGATE_BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-20}"
BIN="${2:-build/src/kubegate}"
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf $W' EXIT
build/testserver/kube-testserver --data-dir $W/ts --kubeconfig-out $W/up.kubeconfig --port-file $W/ts.port >/dev/null 2>&1 &
for _ in $(seq 100); do [ -s $W/ts.port ] && break; sleep 0.1; done
printf bot-token > $W/bot; printf carol-token > $W/carol
cat > $W/policy.yaml <<YAML
apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: hold-secret-reads
    match: {verbs: [get], resources: [secrets]}
    action: review
    review: {approvers: {users: [carol]}, maxWait: 10m, mode: hold}
YAML
cat > $W/kg.yaml <<YAML
listen: {address: 127.0.0.1, port: 0, plain_http: true}
data_dir: $W/kg
upstream: {kubeconfig: $W/up.kubeconfig}
log_level: warn
policy_file: $W/policy.yaml
tokens:
  - {user: bot, kind: agent, token_sha256: $($BIN token hash --token-file $W/bot)}
  - {user: carol, kind: human, token_sha256: $($BIN token hash --token-file $W/carol)}
YAML
$BIN serve --config $W/kg.yaml --port-file $W/kg.port >$W/kg.log 2>&1 &
for _ in $(seq 100); do [ -s $W/kg.port ] && break; sleep 0.1; done
URL=http://127.0.0.1:$(cat $W/kg.port)
ms() { date +%s%N | cut -b1-13; }
for i in $(seq $N); do
  ( curl -s -o /dev/null -H "Authorization: Bearer bot-token" $URL/api/v1/namespaces/default/secrets/s$i; ms > $W/done.$i ) &
  held=$!
  id=""
  for _ in $(seq 200); do
    id=$(curl -s -H "Authorization: Bearer carol-token" "$URL/kubegate/v1/approvals?state=pending" |
         sed -n 's/.*"id":"\(kg-[0-9a-f]*\)".*/\1/p' | head -1)
    [ -n "$id" ] && break; sleep 0.02
  done
  [ -n "$id" ] || { echo "request $i was not held"; exit 1; }
  approving=$(ms)
  curl -s -o /dev/null -X POST -H "Authorization: Bearer carol-token" -H "Content-Type: application/json" \
    -d '{"reason":"bench"}' "$URL/kubegate/v1/approvals/$id/approve"
  wait $held
  echo $(( $(cat $W/done.$i) - approving ))
done | sort -n | awk '{a[NR]=$1} END {printf "approve-to-release over %d holds: min %d ms, p50 %d ms, p90 %d ms, max %d ms\n", NR, a[1], a[int(NR*0.5)+(NR%2)], a[int(NR*0.9)], a[NR]}'
