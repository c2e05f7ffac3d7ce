#!/bin/sh
# A local three-node zonemesh mesh on SQLite: every node gets a fresh
# PowerDNS database, zonemesh is installed beside it, three daemons run on
# 127.0.0.1:8301-8303, and changes made with plain SQL on different nodes
# appear on all of them. Then one node is stopped while changes pile up for
# it, and catches up when it comes back.
#
#   examples/demo/run-demo.sh [path/to/zonemesh]
#
# Data, configs' databases and logs go to examples/demo/run/ (recreated).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
zm=${1:-$here/../../build/zonemesh}
[ -x "$zm" ] || { echo "run-demo.sh: no zonemesh binary at $zm (build first, or pass its path)" >&2; exit 1; }
zm=$(cd "$(dirname "$zm")" && pwd)/$(basename "$zm")
command -v sqlite3 >/dev/null || { echo "run-demo.sh: needs the sqlite3 command (apt-get install sqlite3)" >&2; exit 1; }

run=$here/run
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

rm -rf "$run"
mkdir -p "$run"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
sql() { sqlite3 -cmd ".timeout 5000" "$run/$1.db" "$2"; }

start() {
  "$zm" run --config "$here/$1.json" >>"$run/$1.log" 2>&1 &
  eval "pid_$1=$!"
  pids="$pids $!"
}
stop() {
  eval "p=\$pid_$1"
  kill "$p"
  wait "$p" 2>/dev/null || true
}

# Waits until every node's canonical dump has the same checksum.
converge() {
  i=0
  while :; do
    a=$("$zm" dump --config "$here/ns1.json" --checksum)
    b=$("$zm" dump --config "$here/ns2.json" --checksum)
    c=$("$zm" dump --config "$here/ns3.json" --checksum)
    if [ "$a" = "$b" ] && [ "$b" = "$c" ]; then
      echo "all three nodes hold the same data (checksum ${a%"${a#????????????????}"}...)"
      return 0
    fi
    i=$((i + 1))
    if [ $i -gt 300 ]; then echo "nodes did not converge; see $run/*.log" >&2; exit 1; fi
    sleep 0.05
  done
}

say "Creating three PowerDNS SQLite databases and installing zonemesh"
for n in ns1 ns2 ns3; do
  "$zm" install --config "$here/$n.json" --create-schema
done

say "Starting three daemons (logs in $run/)"
for n in ns1 ns2 ns3; do start $n; done
sleep 0.5

say "ns1: create zone example.com with its SOA and NS (one transaction, like pdnsutil)"
sql ns1 "BEGIN;
INSERT INTO domains (name, type) VALUES ('example.com', 'NATIVE');
INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth)
  SELECT id, 'example.com', 'SOA', 'ns1.example.com. hostmaster.example.com. 1 10800 3600 604800 3600', 3600, 0, 0, 1 FROM domains WHERE name = 'example.com';
INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth)
  SELECT id, 'example.com', 'NS', 'ns1.example.com', 3600, 0, 0, 1 FROM domains WHERE name = 'example.com';
COMMIT;"
converge

say "ns2: add www.example.com A 192.0.2.10"
sql ns2 "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth)
  SELECT id, 'www.example.com', 'A', '192.0.2.10', 300, 0, 0, 1 FROM domains WHERE name = 'example.com';"
converge
echo "ns3 answers from its own database:"
sql ns3 "SELECT name, type, content, ttl FROM records WHERE name = 'www.example.com';"

say "ns3: replace the www RRset (delete + insert, like the PowerDNS API) and bump the SOA serial"
sql ns3 "BEGIN;
DELETE FROM records WHERE name = 'www.example.com' AND type = 'A';
INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth)
  SELECT id, 'www.example.com', 'A', '192.0.2.20', 300, 0, 0, 1 FROM domains WHERE name = 'example.com';
INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth)
  SELECT id, 'www.example.com', 'A', '192.0.2.21', 300, 0, 0, 1 FROM domains WHERE name = 'example.com';
UPDATE records SET content = 'ns1.example.com. hostmaster.example.com. 2 10800 3600 604800 3600' WHERE type = 'SOA';
COMMIT;"
converge
echo "ns1 now serves:"
sql ns1 "SELECT name, type, content FROM records ORDER BY name, type, content;"

say "PowerDNS's own housekeeping (notified_serial) is not replicated"
sql ns1 "UPDATE domains SET notified_serial = 2 WHERE name = 'example.com';"
sleep 0.3
echo "ns2 notified_serial: $(sql ns2 "SELECT COALESCE(notified_serial, 'NULL') FROM domains")"

say "Stopping ns3, then making 200 changes on ns1 while it is away"
stop ns3
sql ns1 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
  INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth)
  SELECT (SELECT id FROM domains WHERE name = 'example.com'), 'host' || i || '.example.com', 'A',
         '198.51.100.' || (i % 250), 300, 0, 0, 1 FROM n;"
sleep 1.5
"$zm" status --config "$here/ns1.json"

say "Restarting ns3: it catches up"
start ns3
converge
"$zm" status --config "$here/ns1.json"

say "Done. Databases and logs are in $run/"
