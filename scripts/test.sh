#!/usr/bin/env bash
# Builds everything and runs every test: unit tests and the end-to-end suite
# (real kubectl 1.29 and 1.32 -> kubegate -> kube-testserver).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j 2
