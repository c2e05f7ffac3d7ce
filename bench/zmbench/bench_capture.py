"""3. Write cost of capture: inserts/s into `records` with zonemesh's
triggers installed versus the stock schema without them.

Same client, same statements (single-row INSERTs), committed in
transactions of 1 and of 100 rows. Variants, each on its own fresh database
of the same server:
  plain        the stock PowerDNS schema only
  triggers     + `zonemesh install` (capture triggers and zm_* tables), no
               daemon: the cost the triggers alone add to a writer
  triggers+daemon  + a running zonemesh daemon (no peers) stamping the
               outbox while the writer runs, as in production
Variants run interleaved in chunks (n/rounds inserts each) on a shared
machine; rate = inserts / summed time per variant. SQLite: the plain
database is switched to WAL like the ones zonemesh opens (zonemesh sets
journal_mode=WAL), with the driver's default synchronous=FULL in all."""

import statistics
import time

from .dbs import new_database
from .env import log
from .mesh import Node

KINDS = ["sqlite", "postgresql", "mysql"]


def workload(c, did, zone, start, n, per_tx, tag):
    """n single-row INSERTs in transactions of per_tx; returns seconds."""
    sql = "INSERT INTO records (domain_id, name, type, content, ttl, prio) VALUES (?, ?, 'A', ?, 300, 0)"
    t0 = time.monotonic()
    i = start
    while i < start + n:
        c.begin()
        for _ in range(per_tx):
            c.execute(sql, (did, "%s%d.%s" % (tag, i, zone), "10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)))
            i += 1
        c.commit()
    return time.monotonic() - t0


def run(env, kinds=KINDS):
    n = 2000 if env.quick else 10000
    rounds = 4 if env.quick else 10
    results = {}
    for kind in kinds:
        log("capture: %s, %d inserts" % (kind, n))
        variants = {}
        plain = new_database(env, kind, prefix="capplain")
        plain.load_pdns_schema()
        if kind == "sqlite":
            # zonemesh switches its databases to WAL; compare like with like.
            pc = plain.connect()
            pc.query("PRAGMA journal_mode = WAL")
            pc.close()
        trig = new_database(env, kind, prefix="captrig")
        trig.load_pdns_schema()
        Node(env, "cap1", trig).install(create_schema=False)
        dmn_db = new_database(env, kind, prefix="capdmn")
        dmn_db.load_pdns_schema()
        dnode = Node(env, "cap2", dmn_db)
        dnode.install(create_schema=False)
        dnode.start()
        zone = "cap.test"
        for db in (plain, trig, dmn_db):
            c = db.connect()
            c.create_zone(zone)
            c.close()
        variants_db = (("plain", plain), ("triggers", trig), ("triggers+daemon", dmn_db))
        conns = {name: db.connect() for name, db in variants_db}
        dids = {name: conns[name].zone_id(zone) for name, _ in variants_db}
        secs = {}
        # The machine is shared: variants run interleaved in small chunks so
        # that load changes hit all of them alike.
        chunk = n // rounds
        try:
            for per_tx in (1, 100):
                for r in range(rounds):
                    for name, _ in variants_db:
                        secs[(name, per_tx)] = secs.get((name, per_tx), 0.0) + workload(
                            conns[name], dids[name], zone, r * chunk, chunk, per_tx, "c%d-" % per_tx)
        finally:
            dnode.stop()
            for c in conns.values():
                c.close()
        rates = {k: [chunk * rounds / v] for k, v in secs.items()}
        for per_tx in (1, 100):
            row = {}
            for name in ("plain", "triggers", "triggers+daemon"):
                row[name] = round(statistics.median(rates[(name, per_tx)]))
            row["slowdown_triggers"] = round(row["plain"] / row["triggers"], 2)
            row["slowdown_triggers+daemon"] = round(row["plain"] / row["triggers+daemon"], 2)
            variants["tx_%d" % per_tx] = row
            log("  tx of %d: %s" % (per_tx, row))
        results[kind] = variants
    return results
