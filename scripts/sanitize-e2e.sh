#!/usr/bin/env bash
# The end-to-end suite with kubegate and the test server built with
# AddressSanitizer and UndefinedBehaviorSanitizer (no recovery: a finding
# aborts the process and fails the tests that needed it), in build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
source scripts/ccache-env.sh
echo "sanitizer build (kubegate, kube-testserver, e2e_tests) in build-asan/ ..."
cmake -S . -B build-asan -G Ninja -DKUBEGATE_SANITIZE=ON -DKUBEGATE_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build-asan kubegate kube-testserver e2e_tests
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
./build-asan/tests/e2e_tests
