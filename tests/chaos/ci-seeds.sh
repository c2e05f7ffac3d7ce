#!/bin/sh
# CI hook of the randomized convergence checker: a short, fixed seed set.
#
#   tests/chaos/ci-seeds.sh /path/to/zonemesh-chaos
#
# Runs zonemesh-chaos once per seed: 3 nodes (SQLite, PostgreSQL, MariaDB),
# every kind of chaos, a modest number of operations per writer, so that the
# whole set finishes in a few minutes on 2 cores. Exits 1 if any seed fails
# (its work directory and databases are kept and their place printed), 2 on
# bad usage. CTest runs it with the database-servers fixture and passes the
# servers' ports in ZONEMESH_TEST_PG_PORT / ZONEMESH_TEST_MYSQL_PORT.
#
# Overrides (for a local run): ZONEMESH_CHAOS_SEEDS="1 2 3",
# ZONEMESH_CHAOS_AE_SEEDS="4 5" (run with --anti-entropy 1; "" for none),
# ZONEMESH_CHAOS_OPS=300, ZONEMESH_CHAOS_ARGS="--nodes 4" (extra arguments).
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 /path/to/zonemesh-chaos" >&2
  exit 2
fi
tool=$1
seeds=${ZONEMESH_CHAOS_SEEDS:-"1009 2027 3041"}
# Seeds run again with anti-entropy every second, repairs racing live
# replication (5 nodes, priority strategy).
ae_seeds=${ZONEMESH_CHAOS_AE_SEEDS:-"16109"}
ops=${ZONEMESH_CHAOS_OPS:-300}
extra=${ZONEMESH_CHAOS_ARGS:-}

failed=""
start=$(date +%s)
for seed in $seeds; do
  t0=$(date +%s)
  echo "=== zonemesh-chaos seed $seed ==="
  # shellcheck disable=SC2086 # $extra is a list of arguments
  "$tool" --seed "$seed" --nodes 3 --databases sqlite,postgresql,mysql --ops "$ops" \
    --chaos all --converge-timeout 300 --quiet $extra
  rc=$?
  echo "=== seed $seed: exit $rc after $(( $(date +%s) - t0 ))s ==="
  if [ "$rc" -ne 0 ]; then
    failed="$failed $seed"
  fi
done

for seed in $ae_seeds; do
  t0=$(date +%s)
  echo "=== zonemesh-chaos seed $seed with anti-entropy ==="
  # shellcheck disable=SC2086 # $extra is a list of arguments
  "$tool" --seed "$seed" --nodes 5 --databases sqlite,postgresql,mysql --ops 250 \
    --strategy priority --chaos all --anti-entropy 1 --converge-timeout 300 --quiet $extra
  rc=$?
  echo "=== seed $seed with anti-entropy: exit $rc after $(( $(date +%s) - t0 ))s ==="
  if [ "$rc" -ne 0 ]; then
    failed="$failed $seed(anti-entropy)"
  fi
done

echo "ci-seeds: $(echo "$seeds $ae_seeds" | wc -w) seed(s) in $(( $(date +%s) - start ))s"
if [ -n "$failed" ]; then
  echo "ci-seeds: FAILED seed(s):$failed (rerun one with: $tool --seed N --nodes 3 --ops $ops)" >&2
  exit 1
fi
echo "ci-seeds: all passed"
exit 0
