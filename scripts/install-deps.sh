#!/usr/bin/env bash
# Installs every Debian package kubegate needs to build, test and benchmark.
# Idempotent: packages already present are skipped by apt.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build ccache pkg-config clang
  libboost1.81-dev libboost-url1.81-dev libboost-json1.81-dev
  libssl-dev libyaml-cpp-dev nlohmann-json3-dev libre2-dev
  libsqlite3-dev libpq-dev zlib1g-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev prometheus-cpp-dev
  golang-github-docker-spdystream-dev
  postgresql-15 asciinema
  openssl curl nginx-light haproxy wrk bc iproute2 util-linux procps tmux sqlite3
  python3-jwt
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Node.js 20 comes with machines of this kind; Debian's is the fallback.
if ! command -v npm >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
# npm packages the end-to-end tests use, each pinned by its package-lock.json
# and installed again only when the lock changes:
#   tests/oidc         the OpenID provider they run (oidc-provider);
#   tests/k8s-schemas  Kubernetes models generated from its OpenAPI, which
#                      deploy/ is validated against field by field.
# Only the tests need them: when the registry cannot be reached, say so and
# go on (scripts/run.sh still works; those end-to-end tests will fail).
for NPM_DIR in "$(dirname "$0")/../tests/oidc" "$(dirname "$0")/../tests/k8s-schemas"; do
  if ! cmp -s "$NPM_DIR/package-lock.json" "$NPM_DIR/node_modules/.kubegate-installed-lock" 2>/dev/null; then
    if ! (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
          cp package-lock.json node_modules/.kubegate-installed-lock); then
      echo "install-deps: npm ci in $NPM_DIR failed; the end-to-end tests that use it will fail" >&2
    fi
  fi
done
