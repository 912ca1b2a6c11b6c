#!/usr/bin/env bash
# Approve-to-release latency: from an approval's answer (REST, as the
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
source bench/lib.sh
kg_start_testserver $W
kg_hold_policy $W
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
kg_approve_to_release $URL $URL $N $W | kg_latency_summary approve-to-release
