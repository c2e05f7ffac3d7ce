#!/bin/sh
# Installs the Debian 12 packages the benchmarks need on top of those
# zonemesh needs to build (scripts/install-deps.sh does the installing, with
# system services kept from starting: the benchmarks start their own
# throwaway PostgreSQL, MariaDB and PowerDNS on loopback). Run as root.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../scripts/install-deps.sh" \
  python3 python3-psycopg2 python3-pymysql python3-matplotlib \
  postgresql-15 postgresql-plperl-15 bucardo libdbd-pg-perl libdbix-safe-perl \
  pdns-server pdns-backend-sqlite3 pdns-backend-pgsql pdns-backend-mysql pdns-tools \
  dnsutils sqlite3 procps valgrind linux-perf
