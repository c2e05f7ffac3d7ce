#!/bin/sh
# Installs the Debian packages, builds zonemesh and runs the local
# three-node SQLite demo (examples/demo/run-demo.sh). Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target zonemesh
exec examples/demo/run-demo.sh build/zonemesh
