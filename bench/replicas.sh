#!/usr/bin/env bash
# Several kubegate replicas on one PostgreSQL (issue 15): throughput of 1, 2
# and 3 replicas writing one audit chain, PostgreSQL's audit commit rate,
# and approve-to-release latency across replicas (held on A, approved
# through B's REST API).
#   bash bench/replicas.sh [SECONDS] [CONNS_PER_REPLICA] [HOLDS]
# Everything shares this machine's cores (wrk, the test server, the
# replicas and PostgreSQL): read the ratios, not absolute rates.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-5}"
CONNS="${2:-16}"
HOLDS="${3:-20}"
BIN=build/src/kubegate
W=$(mktemp -d)
chmod 755 "$W"
trap 'kill $(jobs -p) 2>/dev/null; bash scripts/pg-test.sh destroy $W/pg >/dev/null 2>&1; rm -rf $W' EXIT
PG=$(bash scripts/pg-test.sh start $W/pg)
psql_() { psql "$PG" -qtAX -c "$1"; }
source bench/lib.sh
kg_start_testserver $W
kg_hold_policy $W
start_replicas() {  # n database: starts n replicas on a fresh database, URLs in $W/urls
  psql_ "CREATE DATABASE $2"
  : > $W/urls
  for i in $(seq "$1"); do
    cat > $W/kg$i.yaml <<YAML
listen: {address: 127.0.0.1, port: 0, plain_http: true}
data_dir: $W/kg$i
upstream: {kubeconfig: $W/up.kubeconfig}
log_level: warn
worker_threads: 1
policy_file: $W/policy.yaml
store: {postgres: "$PG dbname=$2"}
tokens:
  - {user: bot, kind: agent, token_sha256: $($BIN token hash --token-file $W/bot)}
  - {user: carol, kind: human, token_sha256: $($BIN token hash --token-file $W/carol)}
YAML
    rm -f $W/kg$i.port
    $BIN serve --config $W/kg$i.yaml --port-file $W/kg$i.port >$W/kg$i.log 2>&1 &
    echo $! > $W/kg$i.pid
    for _ in $(seq 100); do [ -s $W/kg$i.port ] && break; sleep 0.1; done
    echo "http://127.0.0.1:$(cat $W/kg$i.port)" >> $W/urls
  done
}
stop_replicas() {
  for f in $W/kg*.pid; do kill "$(cat $f)" 2>/dev/null || true; done
  for f in $W/kg*.pid; do while kill -0 "$(cat $f)" 2>/dev/null; do sleep 0.1; done; rm -f $f; done
}
# A small allowed GET (a ConfigMap) as the agent.
/usr/lib/google-cloud-sdk/bin/kubectl.1.32 --kubeconfig $W/up.kubeconfig -n default create configmap bench \
  --from-literal=a=b >/dev/null
cat > $W/auth.lua <<'LUA'
wrk.headers["Authorization"] = "Bearer bot-token"
LUA

echo "| replicas | requests/s (sum) | × 1 replica | audit entries committed/s in PostgreSQL | PostgreSQL transactions/s |"
echo "|---|---|---|---|---|"
base=""
for n in 1 2 3; do
  start_replicas $n kgbench$n
  for u in $(cat $W/urls); do wrk -t1 -c4 -d1s -s $W/auth.lua "$u/api/v1/namespaces/default/configmaps/bench" >/dev/null; done
  seq0=$(psql "$PG dbname=kgbench$n" -qtAX -c "SELECT COALESCE(MAX(seq),0) FROM audit_log")
  tx0=$(psql_ "SELECT xact_commit FROM pg_stat_database WHERE datname = 'kgbench$n'")
  for u in $(cat $W/urls); do
    wrk -t1 -c"$CONNS" -d"${SECS}s" -s $W/auth.lua "$u/api/v1/namespaces/default/configmaps/bench" > $W/wrk.$n.$(basename $u) &
  done
  wait $(jobs -p | tail -n "$n") 2>/dev/null || true
  seq1=$(psql "$PG dbname=kgbench$n" -qtAX -c "SELECT COALESCE(MAX(seq),0) FROM audit_log")
  tx1=$(psql_ "SELECT xact_commit FROM pg_stat_database WHERE datname = 'kgbench$n'")
  rps=$(cat $W/wrk.$n.* | awk '/Requests\/sec/ {s += $2} END {printf "%.0f", s}')
  non2xx=$(cat $W/wrk.$n.* | awk '/Non-2xx/ {s += $NF} END {print s + 0}')
  [ -z "$base" ] && base=$rps
  printf "| %d | %s%s | %.2f | %.0f | %.0f |\n" $n "$rps" "$([ "$non2xx" -gt 0 ] && echo " ($non2xx non-2xx)")" \
    "$(echo "$rps / $base" | bc -l)" "$(echo "($seq1 - $seq0) / $SECS" | bc -l)" "$(echo "($tx1 - $tx0) / $SECS" | bc -l)"
  if [ "$n" = 2 ]; then
    # Approve-to-release across replicas: held on replica 1, approved
    # through replica 2.
    A=$(sed -n 1p $W/urls); B=$(sed -n 2p $W/urls)
    kg_approve_to_release "$A" "$B" "$HOLDS" $W | kg_latency_summary "approve on B -> released on A" > $W/approve.txt
  fi
  stop_replicas
done
cat $W/approve.txt
