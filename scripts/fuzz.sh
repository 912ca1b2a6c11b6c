#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ (every library
# instrumented for coverage, ASan and UBSan, not only the harnesses) and
# runs each for SECONDS (default 60) on its corpus, on one core.
# Prints each target's runs, coverage (cov: edges, ft: features) and corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
SECONDS_PER_TARGET="${1:-60}"
TARGETS=(request_info http_head spdy_frame audit_record websocket_decoder spdy_decoder upstream_json query_selectors
         policy_loader session_end jwt credential_api)
source scripts/ccache-env.sh
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DKUBEGATE_FUZZ=ON -DKUBEGATE_TESTS=OFF -DKUBEGATE_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build-fuzz "${TARGETS[@]/%/_fuzz}"
for t in "${TARGETS[@]}"; do
  mkdir -p "build-fuzz/corpus-$t"
  log="build-fuzz/$t.log"
  "./build-fuzz/fuzz/${t}_fuzz" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
    "build-fuzz/corpus-$t" "fuzz/corpus/$t" >"$log" 2>&1 || { tail -40 "$log"; exit 1; }
  start=$(grep -m1 -E '^#[0-9]+.*(INITED|pulse)' "$log" | grep -o 'cov: [0-9]*' || true)
  end=$(grep -E '^#[0-9]+' "$log" | tail -1)
  echo "$t: start ${start:-cov: ?}; end $end"
done
