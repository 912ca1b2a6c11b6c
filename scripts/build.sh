#!/usr/bin/env bash
# Configures and builds into build/: everything (kubegate, its test server,
# every test, fuzz replays and benchmarks), or only the targets named:
#   bash scripts/build.sh                          # all
#   bash scripts/build.sh kubegate kube-testserver # what scripts/run.sh runs
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
source scripts/ccache-env.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j "$(nproc)" "$@"
