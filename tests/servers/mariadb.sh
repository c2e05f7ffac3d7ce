#!/bin/sh
# Throwaway MariaDB server for tests, benchmarks and examples.
#   mariadb.sh start DIR PORT   install a datadir in DIR (once), start on 127.0.0.1:PORT
#   mariadb.sh stop DIR         clean shutdown
#   mariadb.sh kill DIR         kill -9 (crash tests)
# root has no password and can log in over TCP from loopback only.
set -eu
cmd=${1:?usage: mariadb.sh start|stop|kill DIR [PORT]}
dir=${2:?data directory}
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] ||
  { echo "mariadb.sh: mariadbd not found (apt-get install mariadb-server)" >&2; exit 1; }
PATH=$PATH:/usr/sbin:/usr/bin

case "$cmd" in
  start)
    port=${3:?port}
    # A server already answering on the port is reused.
    if mariadb --no-defaults -h 127.0.0.1 -P "$port" -u root -e "SELECT 1" >/dev/null 2>&1; then exit 0; fi
    mkdir -p "$dir"
    if [ ! -d "$dir/data/mysql" ]; then
      mariadb-install-db --datadir="$dir/data" --user=root --auth-root-authentication-method=normal \
        --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; exit 1; }
    fi
    if [ -f "$dir/server.pid" ] && kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then exit 0; fi
    mariadbd --no-defaults --datadir="$dir/data" --user=root --socket="$dir/mysql.sock" \
      --port="$port" --bind-address=127.0.0.1 --pid-file="$dir/server.pid" \
      --skip-name-resolve --innodb-flush-log-at-trx-commit=${ZM_MYSQL_FLUSH:-2} \
      --innodb-buffer-pool-size=128M --max-connections=300 \
      --log-error="$dir/server.log" >/dev/null 2>&1 &
    i=0
    until mariadb --no-defaults -h 127.0.0.1 -P "$port" -u root -e "SELECT 1" >/dev/null 2>&1; do
      i=$((i + 1))
      if [ $i -gt 600 ]; then tail -n 30 "$dir/server.log" >&2; exit 1; fi
      sleep 0.1
    done
    ;;
  stop)
    [ -f "$dir/server.pid" ] || exit 0
    pid=$(cat "$dir/server.pid")
    kill "$pid" 2>/dev/null || exit 0
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    ;;
  kill)
    [ -f "$dir/server.pid" ] || exit 0
    pid=$(cat "$dir/server.pid")
    kill -9 "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    ;;
  *) echo "mariadb.sh: unknown command $cmd" >&2; exit 2 ;;
esac
