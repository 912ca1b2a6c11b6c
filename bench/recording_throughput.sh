#!/usr/bin/env bash
# Session recording cost, in one run on loopback against the project's test
# server: a large `kubectl exec -i POD -- cat` (SIZE MiB up through stdin and
# back down through stdout), and port-forward connections through one
# tunnel, each measured
#   (1) directly to the test server,
#   (2) through kubegate with recording off (recording.enabled: false),
#   (3) through kubegate recording with the default cap (64 MiB of payload
#       written per session, the rest counted),
#   (4) through kubegate recording everything (no cap).
# Usage: [REPS=3] bench/recording_throughput.sh [SIZE_MIB] [PF_CONNECTIONS] [KUBECTL_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${1:-256}"
PF_CONNS="${2:-300}"
KV="${3:-1.32}"
B=build
KUBECTL=$(dpkg -L kubectl | grep "bin/kubectl.$KV\$" | head -1)
[ -x "$KUBECTL" ] || { echo "no kubectl $KV"; exit 1; }
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf $W' EXIT
$B/testserver/kube-testserver --data-dir $W/ts --kubeconfig-out $W/up.kubeconfig --port-file $W/ts.port >/dev/null 2>&1 &
for _ in $(seq 100); do [ -s $W/ts.port ] && break; sleep 0.1; done
printf bench-token > $W/t
start_gateway() {  # NAME EXTRA_YAML
  cat > $W/$1.yaml <<YAML
listen: {address: 127.0.0.1, port: 0}
data_dir: $W/$1
upstream: {kubeconfig: $W/up.kubeconfig}
log_level: warn
tokens:
  - {user: bench, kind: human, token_sha256: $($B/src/kubegate token hash --token-file $W/t)}
$2
YAML
  $B/src/kubegate serve --config $W/$1.yaml --port-file $W/$1.port >$W/$1.log 2>&1 &
  KGPID[$1]=$!
  for _ in $(seq 100); do [ -s $W/$1.port ] && break; sleep 0.1; done
  $B/src/kubegate kubeconfig --user bench --server https://127.0.0.1:$(cat $W/$1.port) --ca-file $W/$1/pki/ca.crt \
    --token-file $W/t -o $W/$1.kubeconfig >/dev/null
}
declare -A KGPID CPU
ticks() { awk '{print $14 + $15}' /proc/$1/stat; }
start_gateway off "recording: {enabled: false}"
start_gateway capped ""
start_gateway full "recording: {max_bytes: 1099511627776}"
cp $W/up.kubeconfig $W/direct.kubeconfig
"$KUBECTL" --kubeconfig $W/direct.kubeconfig run bench-pod --image=busybox --restart=Never >/dev/null
head -c $((SIZE * 1024 * 1024)) /dev/urandom | base64 -w 76 > $W/payload   # text lines, ~SIZE*1.33 MiB
BYTES=$(stat -c %s $W/payload)

now() { date +%s.%N; }
exec_run() {  # KUBECONFIG -> seconds; kubegate's CPU ticks go to $W/NAME.cpu
  local t0 t1 name c0
  name=$(basename $1 .kubeconfig)
  [ -n "${KGPID[$name]:-}" ] && c0=$(ticks ${KGPID[$name]})
  t0=$(now)
  "$KUBECTL" --kubeconfig $1 exec -i bench-pod -- cat < $W/payload > $W/out
  t1=$(now)
  [ -n "${KGPID[$name]:-}" ] && echo $(( $(ticks ${KGPID[$name]}) - c0 )) >> $W/$name.cpu
  cmp -s $W/payload $W/out || { echo "output differs ($1)" >&2; exit 1; }
  echo "$t1 - $t0" | bc -l
}
pf_run() {  # KUBECONFIG -> seconds for PF_CONNS connections through one tunnel
  local pf port t0 t1
  "$KUBECTL" --kubeconfig $1 port-forward pod/bench-pod :8080 > $W/pf.out 2>&1 &
  pf=$!
  for _ in $(seq 100); do grep -q -- "-> 8080" $W/pf.out 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/.*127.0.0.1:\([0-9]*\) -> 8080.*/\1/p' $W/pf.out | head -1)
  t0=$(now)
  for _ in $(seq $PF_CONNS); do curl -s -o /dev/null http://127.0.0.1:$port/; done
  t1=$(now)
  kill $pf; wait $pf 2>/dev/null || true
  echo "$t1 - $t0" | bc -l
}
# measure RESULTS_ARRAY RUN_FUNCTION UNIT_LABEL WORK: best of $REPS per path. The paths take
# turns within each repetition, so drift in the machine's speed touches them alike.
REPS="${REPS:-3}"
measure() {
  local -n results=$1
  local path s
  for path in direct off capped full; do results[$path]=999999; done
  for _ in $(seq $REPS); do
    for path in direct off capped full; do
      s=$($2 $W/$path.kubeconfig)
      results[$path]=$(echo "if ($s < ${results[$path]}) $s else ${results[$path]}" | bc -l)
    done
  done
  for path in direct off capped full; do
    printf "  %-7s %6.2f s  %7.1f %s\n" $path ${results[$path]} $(echo "$4 / ${results[$path]}" | bc -l) "$3"
  done
}
echo "exec -i cat of $BYTES bytes each way, kubectl $KV (best of $REPS):"
declare -A EXEC PF
measure EXEC exec_run "MiB/s each way" "$BYTES / 1048576"
for path in off capped full; do
  echo "  kubegate CPU per exec, $path: $(sort -n $W/$path.cpu | head -1)0 ms at best, $(sort -n $W/$path.cpu | tail -1)0 ms at worst"
done
echo "port-forward: $PF_CONNS connections through one tunnel (best of $REPS):"
measure PF pf_run "connections/s" "$PF_CONNS"
printf "ratios (throughput relative to kubegate with recording off):\n"
for path in direct capped full; do
  printf "  %-7s exec %.2f   port-forward %.2f\n" $path $(echo "${EXEC[off]} / ${EXEC[$path]}" | bc -l) \
    $(echo "${PF[off]} / ${PF[$path]}" | bc -l)
done
du -sh $W/full/recordings $W/capped/recordings | sed 's/^/  recordings on disk: /'
# Payload an optional recording dropped because its writer fell behind (counted, marked truncated).
for path in capped full; do
  dropped=$($B/src/kubegate audit --config $W/$path.yaml -o jsonl --limit 1000 | { grep -o '"dropped_bytes":[0-9]*' || true; } |
            cut -d: -f2 | paste -sd+ | bc)
  echo "  $path: payload dropped by the recording writer: ${dropped:-0} bytes"
done
