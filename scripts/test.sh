#!/usr/bin/env bash
# Builds everything and runs every test: unit tests (the store suite against
# SQLite and a real PostgreSQL started here on loopback) and the end-to-end
# suite (real kubectl 1.29 and 1.32 -> kubegate -> kube-testserver).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
PGDIR=$(mktemp -d /tmp/kubegate-test-pg.XXXXXX)
trap 'bash scripts/pg-test.sh destroy "$PGDIR"' EXIT
KUBEGATE_TEST_PG="$(bash scripts/pg-test.sh start "$PGDIR")"
export KUBEGATE_TEST_PG KUBEGATE_REQUIRE_PG=1
ctest --test-dir build --output-on-failure -j 2
# The end-to-end suite again, with kubegate and the test server built with
# ASan and UBSan (build-asan/): memory and undefined-behaviour errors on the
# real request paths abort the process and fail the suite.
bash scripts/sanitize-e2e.sh
