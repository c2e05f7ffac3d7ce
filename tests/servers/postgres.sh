#!/bin/sh
# Throwaway PostgreSQL 15 server for tests, benchmarks and examples.
#   postgres.sh start DIR PORT   initdb DIR (once) and start on 127.0.0.1:PORT
#   postgres.sh stop DIR         stop it (fast shutdown)
#   postgres.sh kill DIR         stop it without a clean shutdown (crash tests)
# Runs as root: initdb and pg_ctl run as the `postgres` user, which owns DIR.
# Trust auth for user postgres on loopback only; fsync off unless
# ZM_PG_FSYNC=on (test data is disposable).
set -eu
cmd=${1:?usage: postgres.sh start|stop|kill DIR [PORT]}
dir=${2:?data directory}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "postgres.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    port=${3:?port}
    # A server already answering on the port (a developer's, or an earlier
    # run's) is reused.
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then exit 0; fi
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then exit 0; fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${ZM_PG_FSYNC:-off} -c max_connections=200" start >/dev/null ||
      { tail -n 30 "$dir/server.log" >&2; exit 1; }
    # pg_ctl -w can trust a stale postmaster.pid after a crash: wait until
    # the server really answers.
    i=0
    until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; do
      i=$((i + 1))
      if [ $i -gt 600 ]; then tail -n 30 "$dir/server.log" >&2; exit 1; fi
      sleep 0.1
    done
    ;;
  stop)
    [ -f "$dir/data/PG_VERSION" ] || exit 0
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  kill)
    # The whole server dies at once, as in a crash or power cut.
    [ -f "$dir/data/postmaster.pid" ] || exit 0
    pid=$(head -n 1 "$dir/data/postmaster.pid")
    pkill -9 -P "$pid" 2>/dev/null || true
    kill -9 "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    ;;
  *) echo "postgres.sh: unknown command $cmd" >&2; exit 2 ;;
esac
