#!/usr/bin/env bash
# Proxy overhead benchmark: wrk against an allowed GET
#   (1) directly to a fast fixed upstream (nginx serving a static PodList over TLS),
#   (2) through nginx configured as a TLS reverse proxy to that upstream,
#   (3) through kubegate (bearer-token auth, classification, audit record
#       committed before forwarding, impersonation headers),
#   (4) through kubegate with audit off (serve --bench-disable-audit), to
#       show what the audit stage costs.
# All three in one run, on loopback. Prints req/s, p50 and p99 per path and
# kubegate's overhead relative to nginx's. Usage: bench/proxy_overhead.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS="${2:-32}"
B=build
[ -x $B/src/kubegate ] || bash scripts/build.sh
W=$(mktemp -d)
trap 'kill $(cat $W/*.pid 2>/dev/null) 2>/dev/null; nginx -p $W -c $W/nginx.conf -s stop 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf $W' EXIT

free_port() {
  while :; do
    p=$(shuf -i 20000-45000 -n 1)
    ss -ltn "( sport = :$p )" | grep -q ":$p" || { echo $p; return; }
  done
}
UP=$(free_port); NX=$(free_port)

# Certificates: one CA, one serving cert for 127.0.0.1 (used by upstream and proxy).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
  -keyout $W/ca.key -out $W/ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout $W/srv.key -out $W/srv.csr 2>/dev/null
printf "subjectAltName=IP:127.0.0.1\n" > $W/ext
openssl x509 -req -in $W/srv.csr -CA $W/ca.crt -CAkey $W/ca.key -CAcreateserial -days 2 -extfile $W/ext \
  -out $W/srv.crt 2>/dev/null

# A PodList of about 1 KiB, like a small `kubectl get pods -o json`.
printf '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"100"},"items":[%s]}' \
  "$(for i in 1 2 3; do printf '{"metadata":{"name":"web-%s","namespace":"default","uid":"0000-%s","resourceVersion":"10%s"},"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]},"status":{"phase":"Running","podIP":"10.0.0.%s"}}' $i $i $i $i; [ $i -lt 3 ] && printf ,; done)" \
  > $W/pods.json
mkdir -p $W/logs
cat > $W/nginx.conf <<EOF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  upstream api { server 127.0.0.1:$UP; keepalive 64; }
  server {   # the fast fixed upstream
    listen 127.0.0.1:$UP ssl;
    ssl_certificate $W/srv.crt; ssl_certificate_key $W/srv.key;
    keepalive_requests 1000000;
    location / { default_type application/json; return 200 '$(cat $W/pods.json)'; }
  }
  server {   # nginx as a reverse proxy: the baseline
    listen 127.0.0.1:$NX ssl;
    ssl_certificate $W/srv.crt; ssl_certificate_key $W/srv.key;
    keepalive_requests 1000000;
    location / {
      proxy_pass https://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer bench-upstream-token";
      proxy_ssl_trusted_certificate $W/ca.crt;
      proxy_ssl_verify on;
      proxy_ssl_name 127.0.0.1;
      proxy_ssl_session_reuse on;
    }
  }
}
EOF
nginx -p $W -c $W/nginx.conf

cat > $W/upstream.kubeconfig <<EOF
apiVersion: v1
kind: Config
clusters: [{name: up, cluster: {server: "https://127.0.0.1:$UP", certificate-authority: $W/ca.crt}}]
users: [{name: gw, user: {token: bench-upstream-token}}]
contexts: [{name: up, context: {cluster: up, user: gw}}]
current-context: up
EOF
printf bench-caller-token > $W/caller.token
cat > $W/kubegate.yaml <<EOF
listen: {address: 127.0.0.1, port: 0}
data_dir: $W/kg
upstream: {kubeconfig: $W/upstream.kubeconfig}
log_level: warn
tokens:
  - {user: bench, groups: [bench], kind: agent, token_sha256: $($B/src/kubegate token hash --token-file $W/caller.token)}
EOF
$B/src/kubegate serve --config $W/kubegate.yaml --port-file $W/kg.port > $W/kg.log 2>&1 &
echo $! > $W/kg.pid
for _ in $(seq 100); do [ -s $W/kg.port ] && break; sleep 0.1; done
KG=$(cat $W/kg.port)
sed "s|data_dir: $W/kg|data_dir: $W/kgna|" $W/kubegate.yaml > $W/kubegate-noaudit.yaml
$B/src/kubegate serve --config $W/kubegate-noaudit.yaml --port-file $W/kgna.port --bench-disable-audit > $W/kgna.log 2>&1 &
echo $! > $W/kgna.pid
for _ in $(seq 100); do [ -s $W/kgna.port ] && break; sleep 0.1; done
KGNA=$(cat $W/kgna.port)

PATHQ=/api/v1/namespaces/default/pods
run() {  # name url
  curl -sf --cacert "$3" -H "Authorization: Bearer bench-caller-token" "$2$PATHQ" -o /dev/null || { echo "$1 not answering" >&2; exit 1; }
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer bench-caller-token" "$2$PATHQ" > $W/$1.wrk
  rps=$(awk '/Requests\/sec/ {print $2}' $W/$1.wrk)
  p50=$(awk '$1=="50%" {print $2}' $W/$1.wrk)
  p99=$(awk '$1=="99%" {print $2}' $W/$1.wrk)
  err=$(awk '/Non-2xx|Socket errors/ {print}' $W/$1.wrk | tr '\n' ' ')
  echo "$1 $rps $p50 $p99 $err"
}
echo "# wrk -t1 -c$CONNS -d${DURATION}s GET $PATHQ (TLS everywhere), $(nproc) cores"
printf "%-10s %12s %10s %10s\n" path req/s p50 p99
R_DIRECT=$(run direct https://127.0.0.1:$UP $W/ca.crt)
R_NGINX=$(run nginx https://127.0.0.1:$NX $W/ca.crt)
# PERF_OUT=FILE also profiles kubegate during its run (perf record -g).
PERF_PID=
if [ -n "${PERF_OUT:-}" ]; then perf record -F 999 -g -p $(cat $W/kg.pid) -o "$PERF_OUT" -- sleep "$DURATION" >/dev/null 2>&1 & PERF_PID=$!; fi
R_KG=$(run kubegate https://127.0.0.1:$KG $W/kg/pki/ca.crt)
[ -z "$PERF_PID" ] || wait $PERF_PID
R_KGNA=$(run kg-noaudit https://127.0.0.1:$KGNA $W/kgna/pki/ca.crt)
for r in "$R_DIRECT" "$R_NGINX" "$R_KG" "$R_KGNA"; do set -- $r; printf "%-10s %12s %10s %10s %s\n" $1 $2 $3 $4 "${*:5}"; done
ms() { case $1 in *us) echo "${1%us} / 1000" | bc -l;; *ms) echo "${1%ms}";; *s) echo "${1%s} * 1000" | bc -l;; esac; }
set -- $R_DIRECT; D_RPS=$2
set -- $R_NGINX; N_RPS=$2; N_P50=$(ms $3)
set -- $R_KG; K_RPS=$2; K_P50=$(ms $3)
set -- $R_KGNA; KNA_RPS=$2; KNA_P50=$(ms $3)
printf "kubegate throughput / nginx throughput: %.2f\n" "$(echo "$K_RPS / $N_RPS" | bc -l)"
printf "kubegate p50 / nginx p50:               %.2f\n" "$(echo "$K_P50 / $N_P50" | bc -l)"
printf "nginx throughput / direct throughput:   %.2f\n" "$(echo "$N_RPS / $D_RPS" | bc -l)"
printf "kubegate audit on / audit off (req/s):  %.2f\n" "$(echo "$K_RPS / $KNA_RPS" | bc -l)"
printf "kubegate audit on / audit off (p50):    %.2f\n" "$(echo "$K_P50 / $KNA_P50" | bc -l)"
curl -s --cacert $W/kg/pki/ca.crt -H "Authorization: Bearer bench-caller-token" https://127.0.0.1:$KG/metrics |
  awk '/^kubegate_audit_entries_committed_total/ {e=$2} /^kubegate_audit_batches_total/ {b=$2}
       END {printf "audit: %d entries in %d group commits (%.1f per commit)\n", e, b, (b ? e/b : 0)}'
printf "kubegate throughput / direct throughput: %.2f\n" "$(echo "$K_RPS / $D_RPS" | bc -l)"
