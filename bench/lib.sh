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
