#!/bin/bash
# Three real PowerDNS authoritative servers, one per database, kept in sync
# by zonemesh:
#
#   ns1  pdns_server + gsqlite3 (SQLite)      DNS 127.0.0.1:5301  API :8281  zonemesh :8311 (status :8321)
#   ns2  pdns_server + gpgsql   (PostgreSQL)  DNS 127.0.0.1:5302  API :8282  zonemesh :8312 (status :8322)
#   ns3  pdns_server + gmysql   (MariaDB)     DNS 127.0.0.1:5303  API :8283  zonemesh :8313 (status :8323)
#
# Throwaway PostgreSQL (127.0.0.1:55442) and MariaDB (127.0.0.1:53316)
# servers are started in a temporary directory and removed on exit. Zones
# are changed with pdnsutil on one node and with the PowerDNS HTTP API on
# another, and `dig` asks every server after each step: they answer alike,
# the node where a change was made included.
#
#   examples/powerdns/run.sh [path/to/zonemesh]
#
# Needs (Debian 12, as root): pdns-server pdns-backend-sqlite3
# pdns-backend-pgsql pdns-backend-mysql pdns-tools dnsutils postgresql
# mariadb-server curl (scripts/install-deps.sh installs them). Configs,
# the SQLite database and every log go to examples/powerdns/run/ (recreated
# on each run, kept afterwards).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
zm=${1:-$repo/build/zonemesh}
[ -x "$zm" ] || { echo "run.sh: no zonemesh binary at $zm (build first, or pass its path)" >&2; exit 1; }
zm=$(cd "$(dirname "$zm")" && pwd)/$(basename "$zm")
for tool in pdns_server pdnsutil dig curl psql mariadb; do
  command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin:/sbin
  command -v "$tool" >/dev/null ||
    { echo "run.sh: needs $tool (scripts/install-deps.sh installs every package)" >&2; exit 1; }
done
for port in 5301 5302 5303 8281 8282 8283 8311 8312 8313 8321 8322 8323 55442 53316; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "run.sh: 127.0.0.1:$port is in use; stop whatever listens there first" >&2
    exit 1
  fi
done

nodes="ns1 ns2 ns3"
declare -A dns_port=([ns1]=5301 [ns2]=5302 [ns3]=5303)
declare -A api_port=([ns1]=8281 [ns2]=8282 [ns3]=8283)
declare -A status_port=([ns1]=8321 [ns2]=8322 [ns3]=8323)
declare -A label=([ns1]="ns1 (SQLite)" [ns2]="ns2 (PostgreSQL)" [ns3]="ns3 (MariaDB)")

run=$here/run
# initdb runs as the postgres user, who may not be able to reach a clone
# under /root: the database servers live in /tmp.
servers=$(mktemp -d /tmp/zonemesh-powerdns-example.XXXXXX)
chmod 755 "$servers"
pids=""
cleanup() {
  status=$?
  trap - EXIT INT TERM
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for p in $pids; do wait "$p" 2>/dev/null || true; done
  "$repo/tests/servers/postgres.sh" stop "$servers/postgres" || true
  "$repo/tests/servers/mariadb.sh" stop "$servers/mariadb" || true
  rm -rf "$servers"
  if [ "$status" -ne 0 ]; then echo "run.sh: failed; logs are in $run/" >&2; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '   $ %s\n' "$*"; }

# Runs a PowerDNS change again when it fails for a transient database
# reason: on SQLite a PowerDNS transaction that overlaps another writer
# (zonemesh applying a batch, say) fails with "database is locked"; on
# MariaDB one can lose a deadlock. Nothing was changed by the failed try.
again() {
  local i out
  for i in 1 2 3 4 5 6 7 8 9 10; do
    if out=$("$@" 2>&1); then
      [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/     /'
      return 0
    fi
    case $out in
      *locked*|*Deadlock*|*"try restarting"*|*"error: 500"*)
        echo "     (transient failure, trying again: $(printf '%s' "$out" | tail -n 1))"
        sleep 0.2 ;;
      *) printf '%s\n' "$out" >&2; return 1 ;;
    esac
  done
  printf '%s\n' "$out" >&2
  return 1
}

# pdnsutil NODE ARGS...: pdnsutil against that node's PowerDNS configuration.
pdnsutil_on() {
  local n=$1
  shift
  show "pdnsutil --config-dir=run/$n $*"
  again pdnsutil --config-dir="$run/$n" "$@"
}

# api NODE METHOD PATH [JSON]: the node's PowerDNS HTTP API.
api() {
  local n=$1 method=$2 path=$3 body=${4:-}
  show "curl -X $method http://127.0.0.1:${api_port[$n]}/api/v1/servers/localhost$path ${body:+-d '$body'}"
  again curl -sS --fail-with-body -X "$method" -H "X-API-Key: $(cat "$run/$n/api-key")" \
    -H 'Content-Type: application/json' ${body:+--data "$body"} \
    "http://127.0.0.1:${api_port[$n]}/api/v1/servers/localhost$path" -o "$run/api-response.json"
}

# Waits until the three databases hold the same data.
converge() {
  local i=0 a b c
  while :; do
    a=$("$zm" dump --config "$here/ns1.json" --checksum)
    b=$("$zm" dump --config "$here/ns2.json" --checksum)
    c=$("$zm" dump --config "$here/ns3.json" --checksum)
    [ "$a" = "$b" ] && [ "$b" = "$c" ] && return 0
    i=$((i + 1))
    if [ $i -gt 600 ]; then echo "the databases did not converge; see $run/*/zonemesh.log" >&2; exit 1; fi
    sleep 0.05
  done
}

# answer NODE NAME TYPE [dig options]: "STATUS rdata, rdata" from that server.
answer() {
  local n=$1 name=$2 type=$3
  shift 3
  local out status rdata
  out=$(dig @127.0.0.1 -p "${dns_port[$n]}" +norec +time=3 +tries=2 "$@" "$name" "$type" 2>&1) || true
  status=$(printf '%s\n' "$out" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p' | head -n 1)
  rdata=$(printf '%s\n' "$out" | awk '/^;/ || NF < 5 { next } $4 == "'"$type"'" {
            for (i = 5; i <= NF; i++) printf "%s%s", $i, (i < NF ? " " : ""); print "" }' | sort | paste -sd ',' | sed 's/,/, /g')
  echo "${status:-NO-ANSWER} $rdata"
}

# ask NAME TYPE [dig options]: asks every server until all three agree (the
# cache flush that follows a change is asynchronous; up to $patience
# seconds), prints the answers.
patience=15
ask() {
  local name=$1 type=$2
  shift 2
  local i=0 n a1 a2 a3
  while :; do
    a1=$(answer ns1 "$name" "$type" "$@")
    a2=$(answer ns2 "$name" "$type" "$@")
    a3=$(answer ns3 "$name" "$type" "$@")
    [ "$a1" = "$a2" ] && [ "$a2" = "$a3" ] && break
    i=$((i + 1))
    if [ $i -gt $((patience * 4)) ]; then
      printf '   dig %s %s: the servers disagree:\n     ns1: %s\n     ns2: %s\n     ns3: %s\n' \
        "$name" "$type" "$a1" "$a2" "$a3" >&2
      exit 1
    fi
    sleep 0.25
  done
  printf '   dig %s %s\n' "$name" "$type"
  for n in $nodes; do
    printf '     %-18s @127.0.0.1:%s  %s\n' "${label[$n]}" "${dns_port[$n]}" "$(answer "$n" "$name" "$type" "$@")"
  done
}

# expect WANT NAME TYPE: the first server's answer must be WANT.
expect() {
  local want=$1 got
  got=$(answer ns1 "$2" "$3")
  [ "$got" = "$want" ] || { echo "expected \"$want\" for $2 $3, got \"$got\"" >&2; exit 1; }
}

# The zone by AXFR from every server, compared (sorted; an RRSIG's
# signature left out, as ECDSA signs differently every time).
axfr_compare() {
  local zone=$1 n first=""
  for n in $nodes; do
    dig @127.0.0.1 -p "${dns_port[$n]}" +noall +answer "$zone" AXFR |
      awk '$4 == "RRSIG" { NF = 12 } { $1 = $1; print }' | sort >"$run/axfr-$zone-$n.txt"
    [ -s "$run/axfr-$zone-$n.txt" ] || { echo "AXFR of $zone from $n returned nothing" >&2; exit 1; }
    if [ -z "$first" ]; then
      first=$n
    elif ! cmp -s "$run/axfr-$zone-$first.txt" "$run/axfr-$zone-$n.txt"; then
      echo "AXFR of $zone differs between $first and $n:" >&2
      diff "$run/axfr-$zone-$first.txt" "$run/axfr-$zone-$n.txt" >&2 || true
      exit 1
    fi
  done
  echo "   AXFR $zone: identical from ns1, ns2 and ns3 ($(wc -l <"$run/axfr-$zone-ns1.txt") records, run/axfr-$zone-*.txt)"
}

rm -rf "$run"
mkdir -p "$run"

say "Secrets: a mesh secret shared by the three zonemesh nodes, an API key per PowerDNS"
head -c 32 /dev/urandom | base64 >"$run/mesh-secret"
for n in $nodes; do
  mkdir -p "$run/$n"
  head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$run/$n/api-key"
  sed -e "s|@RUN@|$run|g" "$here/pdns/$n.conf.in" >"$run/$n/pdns.conf"
  sed -e "s|@API_KEY@|$(cat "$run/$n/api-key")|" -e "s|@API_PORT@|${api_port[$n]}|" \
    "$here/pdns/common.conf.in" >>"$run/$n/pdns.conf"
done
chmod 600 "$run/mesh-secret" "$run"/ns?/api-key "$run"/ns?/pdns.conf
echo "   run/mesh-secret, run/ns{1,2,3}/api-key, run/ns{1,2,3}/pdns.conf"

say "Databases: ns1 a SQLite file, ns2 on PostgreSQL, ns3 on MariaDB (throwaway servers in $servers)"
"$repo/tests/servers/postgres.sh" start "$servers/postgres" 55442
"$repo/tests/servers/mariadb.sh" start "$servers/mariadb" 53316
show "psql: CREATE ROLE pdns LOGIN ...; CREATE DATABASE pdns OWNER pdns"
psql -q -h 127.0.0.1 -p 55442 -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE pdns LOGIN PASSWORD 'pdns-example'" -c "CREATE DATABASE pdns OWNER pdns"
show "mariadb: CREATE DATABASE pdns; CREATE USER 'pdns'@'127.0.0.1' ...; GRANT ALL ON pdns.* ..."
mariadb --no-defaults -h 127.0.0.1 -P 53316 -u root -e "CREATE DATABASE pdns;
  CREATE USER 'pdns'@'127.0.0.1' IDENTIFIED BY 'pdns-example';
  GRANT ALL PRIVILEGES ON pdns.* TO 'pdns'@'127.0.0.1';"

say "PowerDNS schema: the stock schema on ns2 and ns3 (as an existing PowerDNS has), created by zonemesh on ns1"
show "psql -U pdns -d pdns -f /usr/share/pdns-backend-pgsql/schema/schema.pgsql.sql"
PGPASSWORD=pdns-example psql -q -h 127.0.0.1 -p 55442 -U pdns -d pdns -v ON_ERROR_STOP=1 \
  -f /usr/share/pdns-backend-pgsql/schema/schema.pgsql.sql
show "mariadb -u pdns pdns < /usr/share/pdns-backend-mysql/schema/schema.mysql.sql"
mariadb --no-defaults -h 127.0.0.1 -P 53316 -u pdns -ppdns-example pdns \
  </usr/share/pdns-backend-mysql/schema/schema.mysql.sql

say "Installing zonemesh beside each PowerDNS database"
show "zonemesh install --config ns1.json --create-schema"
"$zm" install --config "$here/ns1.json" --create-schema
for n in ns2 ns3; do
  show "zonemesh install --config $n.json"
  "$zm" install --config "$here/$n.json"
done

say "Starting three pdns_server (caches on, defaults) and three zonemesh daemons"
for n in $nodes; do
  show "pdns_server --config-dir=run/$n"
  pdns_server --config-dir="$run/$n" >>"$run/$n/pdns.log" 2>&1 &
  pids="$pids $!"
done
for n in $nodes; do
  show "zonemesh run --config $n.json"
  "$zm" run --config "$here/$n.json" >>"$run/$n/zonemesh.log" 2>&1 &
  pids="$pids $!"
done
for n in $nodes; do
  i=0
  until curl -sf -o /dev/null -H "X-API-Key: $(cat "$run/$n/api-key")" \
      "http://127.0.0.1:${api_port[$n]}/api/v1/servers/localhost" &&
    curl -sf -o /dev/null "http://127.0.0.1:${status_port[$n]}/health"; do
    i=$((i + 1))
    if [ $i -gt 300 ]; then echo "$n did not start; see $run/$n/pdns.log and zonemesh.log" >&2; exit 1; fi
    sleep 0.1
  done
done
echo "   all up; logs in run/ns{1,2,3}/pdns.log and zonemesh.log"
ask example.com SOA

say "ns1 (SQLite): a zone with pdnsutil"
pdnsutil_on ns1 create-zone example.com ns1.example.com
pdnsutil_on ns1 add-record example.com www A 3600 192.0.2.10
pdnsutil_on ns1 add-record example.com @ MX 3600 "10 mail.example.com."
pdnsutil_on ns1 add-record example.com mail A 3600 192.0.2.25
converge
echo "   ns1 answers too: pdnsutil wrote behind its running pdns_server, whose"
echo "   zone cache would say REFUSED for minutes; zonemesh flushed it."
ask www.example.com A
ask example.com MX
expect "NOERROR 192.0.2.10" www.example.com A

say "ns2 (PostgreSQL): a zone with the HTTP API"
api ns2 POST /zones '{"name": "example.net.", "kind": "Native", "nameservers": ["ns1.example.net."],
  "rrsets": [{"name": "www.example.net.", "type": "A", "ttl": 3600, "records": [{"content": "198.51.100.7", "disabled": false}]},
             {"name": "example.net.", "type": "TXT", "ttl": 3600, "records": [{"content": "\"made through the API on ns2\"", "disabled": false}]}]}'
converge
ask www.example.net A
ask example.net TXT

say "ns3 (MariaDB): replace an RRset with pdnsutil (answers cached everywhere a moment ago)"
pdnsutil_on ns3 replace-rrset example.com www A 3600 192.0.2.20 192.0.2.21
converge
ask www.example.com A
expect "NOERROR 192.0.2.20, 192.0.2.21" www.example.com A

say "ns2 (PostgreSQL): edit the zone made on ns1 through the API (REPLACE one RRset, DELETE another)"
api ns2 PATCH /zones/example.com. '{"rrsets": [
  {"name": "mail.example.com.", "type": "A", "ttl": 3600, "changetype": "REPLACE", "records": [{"content": "192.0.2.26", "disabled": false}]},
  {"name": "example.com.", "type": "MX", "changetype": "DELETE"}]}'
converge
ask mail.example.com A
ask example.com MX
ask example.com SOA

say "ns3 (MariaDB): zone metadata with pdnsutil; read back on ns1 and ns2"
pdnsutil_on ns3 set-meta example.com ALSO-NOTIFY 192.0.2.53
converge
pdnsutil_on ns1 get-meta example.com ALSO-NOTIFY
pdnsutil_on ns2 get-meta example.com ALSO-NOTIFY

say "ns1 (SQLite): sign the zone and rectify it; keys, ordername and auth replicate as data"
pdnsutil_on ns1 secure-zone example.com
pdnsutil_on ns1 rectify-zone example.com
converge
echo "   PowerDNS also caches DNSSEC keys (dnssec-key-cache-ttl, 30 s) and zone metadata"
echo "   (zone-metadata-cache-ttl, 60 s); its cache-flush API does not clear those, so"
echo "   ns2 and ns3 may sign only once their key cache expires. Waiting for that:"
patience=75
ask example.com DNSKEY
ask nothing.example.com A +dnssec
patience=15
for n in $nodes; do
  printf '   %-18s rows with an ordername: ' "${label[$n]}"
  "$zm" dump --config "$here/$n.json" | grep '"t":"records"' | grep -c '"ordername":"' || true
done

say "Every server transfers the same zones"
axfr_compare example.com
axfr_compare example.net

say "Deleting zones: ns3 with pdnsutil (one it just made), ns2 through the API"
pdnsutil_on ns3 create-zone temporary.example.org ns1.temporary.example.org
converge
ask temporary.example.org SOA
pdnsutil_on ns3 delete-zone temporary.example.org
api ns2 DELETE /zones/example.net.
converge
ask temporary.example.org SOA
ask www.example.net A
expect "REFUSED " www.example.net A

say "zonemesh status of ns1 (status_listen 127.0.0.1:8321; also /health, /status)"
"$zm" status --config "$here/ns1.json"
show "curl http://127.0.0.1:8321/health"
curl -s http://127.0.0.1:8321/health
echo

say "Done: three PowerDNS servers on three databases answered alike after every change. Logs: $run/"
