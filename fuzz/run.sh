#!/bin/sh
# Builds the batch-decoder fuzz target with clang and runs it for a bounded
# time on the seed corpus (a copy, so the repository stays clean).
#   fuzz/run.sh BUILD_DIR [SECONDS]
# Exits non-zero when the fuzzer finds a crash, a sanitizer report or a
# broken property; the reproducer is left in BUILD_DIR.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?build directory}
seconds=${2:-60}
command -v clang++ >/dev/null || { echo "fuzz/run.sh: clang++ not found (apt-get install clang)" >&2; exit 1; }
cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 >/dev/null
rm -rf "$build/corpus" && cp -r "$here/corpus" "$build/corpus"
cd "$build"
exec ./batch_fuzzer -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 corpus
