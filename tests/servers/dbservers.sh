#!/bin/sh
# Starts or stops both throwaway test servers (the CTest fixture calls this).
#   dbservers.sh start|stop DIR
# Ports: ZONEMESH_TEST_PG_PORT (default 55432), ZONEMESH_TEST_MYSQL_PORT (53306).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?start|stop}
dir=${2:?directory}
pg=${ZONEMESH_TEST_PG_PORT:-55432}
my=${ZONEMESH_TEST_MYSQL_PORT:-53306}
case "$cmd" in
  start)
    "$here/postgres.sh" start "$dir/postgres" "$pg"
    "$here/mariadb.sh" start "$dir/mariadb" "$my"
    ;;
  stop)
    "$here/postgres.sh" stop "$dir/postgres"
    "$here/mariadb.sh" stop "$dir/mariadb"
    ;;
esac
