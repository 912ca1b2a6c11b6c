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
# The OpenID provider the end-to-end tests run (npm oidc-provider, pinned by
# tests/oidc/package-lock.json); installed again only when the lock changes.
OIDC_DIR="$(dirname "$0")/../tests/oidc"
# Only the tests need it: when the registry cannot be reached, say so and go
# on (scripts/run.sh still works; the OIDC end-to-end tests will fail).
if ! cmp -s "$OIDC_DIR/package-lock.json" "$OIDC_DIR/node_modules/.kubegate-installed-lock" 2>/dev/null; then
  if ! (cd "$OIDC_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
        cp package-lock.json node_modules/.kubegate-installed-lock); then
    echo "install-deps: npm ci in tests/oidc failed; the OIDC end-to-end tests need it" >&2
  fi
fi
