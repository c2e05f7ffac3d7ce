#!/bin/sh
# Installs the Debian packages, builds everything and runs the whole test
# suite: unit tests, the conformance suites on SQLite, PostgreSQL and MariaDB
# (throwaway servers started by the tests themselves), and the integration
# tests with real zonemesh daemons. Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
cd build
exec ctest --output-on-failure -j2 --timeout 1200
