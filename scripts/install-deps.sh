#!/bin/sh
# Installs the Debian 12 packages zonemesh needs to build, test and run its
# demos, and any further packages named as arguments (bench/install-deps.sh
# passes the benchmarks' own). Run as root. Package scripts are kept from
# starting system services (the tests and examples start their own throwaway
# servers on loopback).
#   scripts/install-deps.sh [PACKAGE...]
set -eu

PACKAGES="
  build-essential cmake pkg-config git ca-certificates
  libsqlite3-dev sqlite3
  libpqxx-dev libpq-dev
  default-libmysqlclient-dev
  nlohmann-json3-dev
  libboost-dev libboost-system-dev
  libssl-dev openssl
  libspdlog-dev libfmt-dev
  libgtest-dev googletest
  clang libclang-rt-14-dev
  postgresql postgresql-15
  mariadb-server mariadb-client
  pdns-server pdns-backend-sqlite3 pdns-backend-pgsql pdns-backend-mysql pdns-tools
  dnsutils curl python3 procps
  $*
"

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (it calls apt-get)" >&2
  exit 1
fi

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-deps.sh: all packages present"
  exit 0
fi

# Keep package maintainer scripts from starting mariadb, postgresql or pdns as
# system services; restore whatever policy was there before.
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then saved="$(mktemp)"; cp -p "$policy" "$saved"; fi
restore() {
  if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
}
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' > "$policy"
chmod 755 "$policy"

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
