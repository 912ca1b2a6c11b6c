#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and runs each for
# SECONDS (default 60) on its corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
SECONDS_PER_TARGET="${1:-60}"
CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DKUBEGATE_FUZZ=ON -DKUBEGATE_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build-fuzz request_info_fuzz http_head_fuzz spdy_frame_fuzz audit_record_fuzz websocket_decoder_fuzz spdy_decoder_fuzz upstream_json_fuzz
for t in request_info http_head spdy_frame audit_record websocket_decoder spdy_decoder upstream_json; do
  mkdir -p "build-fuzz/corpus-$t"
  "./build-fuzz/fuzz/${t}_fuzz" -max_total_time="$SECONDS_PER_TARGET" "build-fuzz/corpus-$t" "fuzz/corpus/$t"
done
