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
  openssl curl nginx-light wrk bc iproute2 util-linux procps tmux sqlite3
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
