# Sourced by the bench scripts that add kubegate targets to
# ../shared/bench/run.sh (inside its EXTRA_START hook, whose environment
# names the upstream and the caller's token).
#   H=$(kg_bench_prepare "$W" "$KUBEGATE_BIN")   # writes $W/upstream.kubeconfig and $W/caller.token
kg_bench_prepare() {  # dir kubegate-binary; prints the caller token's sha256
  cat > "$1/upstream.kubeconfig" <<K
apiVersion: v1
kind: Config
clusters: [{name: up, cluster: {server: "$BENCH_UPSTREAM_HTTPS", certificate-authority: "$BENCH_UPSTREAM_CA"}}]
users: [{name: gw, user: {token: bench-upstream-token}}]
contexts: [{name: up, context: {cluster: up, user: gw}}]
current-context: up
K
  printf %s "$BENCH_TOKEN" > "$1/caller.token"
  "$2" token hash --token-file "$1/caller.token"
}

# The demo test server in DIR/ts, its admin kubeconfig DIR/up.kubeconfig;
# returns once it listens.
kg_start_testserver() {  # dir
  build/testserver/kube-testserver --data-dir "$1/ts" --kubeconfig-out "$1/up.kubeconfig" \
    --port-file "$1/ts.port" >/dev/null 2>&1 &
  for _ in $(seq 100); do [ -s "$1/ts.port" ] && break; sleep 0.1; done
}

# The CPU benches' setting: the test server pinned to cpu 1 (its pid in
# DIR/ts.pid), DIR/caller.token holding "bench-token"; prints that token's
# sha256 for kubegate's config.
kg_start_pinned_testserver() {  # dir kubegate-binary
  taskset -c 1 build/testserver/kube-testserver --data-dir "$1/ts" --port 0 --token up-token \
    --kubeconfig-out "$1/up.kubeconfig" --port-file "$1/ts.port" > "$1/ts.log" 2>&1 & echo $! > "$1/ts.pid"
  for _ in $(seq 100); do [ -s "$1/ts.port" ] && [ -s "$1/up.kubeconfig" ] && break; sleep 0.1; done
  printf %s bench-token > "$1/caller.token"
  "$2" token hash --token-file "$1/caller.token"
}

# DIR/kg.yaml for the per-request benches: plain HTTP in front on a free
# loopback port (sets KG_PORT), one worker, the test server of DIR behind
# (kg_start_pinned_testserver), the caller `bench` whose token's sha256 is
# HASH, and the YAML lines EXTRA.
kg_plain_bench_config() {  # dir hash [extra-yaml]
  KG_PORT=$(shuf -i 20000-45000 -n 1)
  cat > "$1/kg.yaml" <<C
listen: {address: 127.0.0.1, port: $KG_PORT, plain_http: true}
data_dir: $1/kg
upstream: {kubeconfig: $1/up.kubeconfig}
log_level: warn
worker_threads: 1
${3:-}
tokens:
  - {user: bench, groups: [bench], kind: agent, token_sha256: $2}
C
}

# Returns once kubegate on 127.0.0.1:KG_PORT answers the bench caller's GET
# of pods (up to 120 s: under valgrind it starts slowly); fails otherwise.
kg_wait_answering() {
  local url=http://127.0.0.1:$KG_PORT/api/v1/namespaces/default/pods
  for _ in $(seq 1200); do curl -s -o /dev/null -H "Authorization: Bearer bench-token" "$url" && return 0; sleep 0.1; done
  echo "kubegate on port $KG_PORT never answered" >&2
  return 1
}

# kubegate on DIR/kg.yaml (kg_plain_bench_config) with KG_ARGS, pinned to
# cpu 1 beside the test server; sets KGPID and returns once it answers.
kg_serve_pinned() {  # dir kubegate-binary
  taskset -c 1 "$2" serve --config "$1/kg.yaml" ${KG_ARGS:-} > "$1/kg.log" 2>&1 &
  KGPID=$!
  kg_wait_answering
}

# kubegate's config in DIR/kg.yaml, for the test server of DIR
# (kg_start_testserver): TLS on a free loopback port, the caller `bench`
# (an agent) with the token in DIR/t ("bench-token"), and the YAML lines
# EXTRA; LISTEN_EXTRA goes inside `listen: {...}` (", max_connections: N").
kg_gateway_config() {  # dir kubegate-binary [extra-yaml] [listen-extra]
  printf bench-token > "$1/t"
  cat > "$1/kg.yaml" <<YAML
listen: {address: 127.0.0.1, port: 0${4:-}}
data_dir: $1/kg
upstream: {kubeconfig: $1/up.kubeconfig}
log_level: warn
tokens:
  - {user: bench, kind: agent, token_sha256: $("$2" token hash --token-file "$1/t")}
${3:-}
YAML
}

# Starts kubegate on DIR/kg.yaml; returns once it listens, with KGPID,
# KG_PORT and KG_URL set.
kg_start_gateway() {  # dir kubegate-binary
  rm -f "$1/kg.port"
  "$2" serve --config "$1/kg.yaml" --port-file "$1/kg.port" >"$1/kg.log" 2>&1 &
  KGPID=$!
  for _ in $(seq 100); do [ -s "$1/kg.port" ] && break; sleep 0.1; done
  KG_PORT=$(cat "$1/kg.port")
  KG_URL=https://127.0.0.1:$KG_PORT
}

kg_rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }              # pid -> KiB
kg_sockets() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }  # pid -> open sockets

# A policy holding every secret read for carol's approval, and the tokens
# of bot (the agent) and carol in DIR/bot and DIR/carol.
kg_hold_policy() {  # dir
  printf bot-token > "$1/bot"; printf carol-token > "$1/carol"
  cat > "$1/policy.yaml" <<YAML
apiVersion: kubegate.io/v1
kind: Policy
default: allow
rules:
  - name: hold-secret-reads
    match: {verbs: [get], resources: [secrets]}
    action: review
    review: {approvers: {users: [carol]}, maxWait: 10m, mode: hold}
YAML
}

# Approve-to-release: N secret reads held as bot through HOLD_URL, each
# approved by carol through APPROVE_URL's REST API; prints one line per
# hold: milliseconds from the approval's answer (the decision committed)
# to the held request's answer, both seen by this shell (the held curl's
# exit and a date process: a few ms, more on a loaded machine).
kg_approve_to_release() {  # hold-url approve-url n dir
  local i held id approved
  ms() { date +%s%N | cut -b1-13; }
  for i in $(seq "$3"); do
    ( curl -s -o "$4/held.$i" -H "Authorization: Bearer bot-token" "$1/api/v1/namespaces/default/secrets/s$i"; ms > "$4/done.$i" ) &
    held=$!
    id=""
    for _ in $(seq 200); do
      id=$(curl -s -H "Authorization: Bearer carol-token" "$2/kubegate/v1/approvals?state=pending" |
           sed -n 's/.*"id":"\(kg-[0-9a-f]*\)".*/\1/p' | head -1)
      [ -n "$id" ] && break; sleep 0.02
    done
    [ -n "$id" ] || { wait $held; echo "request $i was not held: $(head -c 300 "$4/held.$i")" >&2; return 1; }
    curl -s -o /dev/null -X POST -H "Authorization: Bearer carol-token" -H "Content-Type: application/json" \
      -d '{"reason":"bench"}' "$2/kubegate/v1/approvals/$id/approve"
    approved=$(ms)
    wait $held
    echo $(( $(cat "$4/done.$i") - approved ))
  done
}

# min, p50, p90, p99, max of the numbers on stdin, after LABEL (nearest rank).
kg_latency_summary() {  # label
  sort -n | awk -v label="$1" 'function rank(p) { r = int(NR * p + 0.999999); return a[r < 1 ? 1 : r] }
    {a[NR]=$1} END {printf "%s over %d holds: min %d ms, p50 %d ms, p90 %d ms, p99 %d ms, max %d ms\n",
    label, NR, a[1], rank(0.5), rank(0.9), rank(0.99), a[NR]}'
}
