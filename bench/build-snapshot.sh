#!/bin/sh
# Builds zonemesh from the committed HEAD (git archive), not from the working
# tree, into build-bench/snap-<commit>/, so that a benchmark run measures one
# known version even while the working tree is being edited. Prints the
# binary's path. (The plain build the README names works too:
#   mkdir -p build-bench && cd build-bench && cmake .. -DCMAKE_BUILD_TYPE=Release && make -j2 zonemesh)
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
rev=$(git -C "$repo" rev-parse --short HEAD)
dir=$repo/build-bench/snap-$rev
if [ ! -x "$dir/obj/zonemesh" ]; then
  rm -rf "$dir"
  mkdir -p "$dir/src" "$dir/obj"
  git -C "$repo" archive HEAD | tar -x -C "$dir/src"
  (cd "$dir/obj" && cmake ../src -DCMAKE_BUILD_TYPE=Release >/dev/null && make -j2 zonemesh >"$dir/build.log" 2>&1) ||
    { tail -n 30 "$dir/build.log" >&2; exit 1; }
fi
echo "$dir/obj/zonemesh"
