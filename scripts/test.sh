#!/usr/bin/env bash
# Builds Shorthorn and runs every test: unit tests (GoogleTest, no root) and
# integration tests (tests/integration/, real daemons; as root, otherwise
# CTest reports them as skipped).
#
#   scripts/test.sh            install deps (as root), configure, build in build/, ctest
#
# Safe to run again: install-deps and the build do only what is missing.
# SHORTHORN_BUILD_DIR=DIR builds and tests in DIR instead of build/.
# Exits with ctest's status. Extra arguments go to ctest (e.g. -L integration,
# -R persistence, -E quickstart).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SHORTHORN_BUILD_DIR:-$repo/build}

if ((EUID == 0)); then
  bash "$repo/scripts/install-deps.sh"
else
  echo "test.sh: not root: not installing packages; integration tests will be skipped"
fi

cmake -S "$repo" -B "$build"
cmake --build "$build" -j"$(nproc)"

rc=0
ctest --test-dir "$build" --output-on-failure "$@" || rc=$?
exit "$rc"
