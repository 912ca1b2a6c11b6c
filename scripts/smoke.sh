#!/usr/bin/env bash
# Manual smoke run: test server + gateway + kubectl. Not part of CI.
set -u
B=${B:-build}
T=$(mktemp -d)
./$B/testserver/kube-testserver --data-dir $T/ts --kubeconfig-out $T/up.kubeconfig --record $T/rec.jsonl --port-file $T/ts.port --max-watch-seconds 3 > $T/ts.log 2>&1 &
TS=$!
printf tok-alice > $T/alice.token
H=$(./$B/src/kubegate token hash --token-file $T/alice.token)
until [ -s $T/ts.port ]; do sleep 0.1; done
cat > $T/gw.yaml <<EOF
listen: {address: 127.0.0.1, port: 0}
data_dir: $T/gw
upstream: {kubeconfig: $T/up.kubeconfig}
tokens:
  - {user: alice, groups: [dev], kind: human, token_sha256: $H}
EOF
./$B/src/kubegate serve --config $T/gw.yaml --port-file $T/gw.port > $T/gw.log 2>&1 &
GW=$!
until [ -s $T/gw.port ]; do sleep 0.1; done
./$B/src/kubegate kubeconfig --user alice --server https://127.0.0.1:$(cat $T/gw.port) --ca-file $T/gw/pki/ca.crt --token-file $T/alice.token -o $T/alice.kubeconfig
export KUBECONFIG=$T/alice.kubeconfig
K=${K:-/usr/lib/google-cloud-sdk/bin/kubectl.1.32}
cat > $T/pod.json <<'EOF'
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}
EOF
run() { echo "\$ $*"; "$@"; echo "rc=$?"; }
run $K get ns
run $K create -f $T/pod.json --validate=false
run $K get pods
run $K label pod web tier=front
run $K exec web -- sh -c "echo hello; exit 3"
run $K logs -f web
run $K --as=bob get pods
run $K delete pod web
run $K get pods -w
KUBECONFIG= run $K --server https://127.0.0.1:$(cat $T/gw.port) --certificate-authority $T/gw/pki/ca.crt --token wrong get pods
tail -3 $T/gw.log
tail -1 $T/rec.jsonl | head -c 800; echo
kill $GW $TS
echo "$T"
