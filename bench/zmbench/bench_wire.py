"""5. Wire cost and propagation to a second PowerDNS, zonemesh versus
PowerDNS primary/secondary (NOTIFY + AXFR), on a 100,000-record zone.

zonemesh: two SQLite databases, two zonemesh daemons, one pdns_server
(gsqlite3) on each database. The second daemon has a "powerdns" section
pointing at its pdns_server's API, so applied changes flush its caches.
AXFR: a pdns_server primary (zone kind MASTER) and a pdns_server secondary
(kind SLAVE, its own gsqlite3 database), also-notify from primary to
secondary.

The same operator action is timed on both: a PATCH of one RRset (REPLACE
of a new name's A record) through the first server's HTTP API, which bumps
the SOA serial (SOA-EDIT-API DEFAULT); on the AXFR setup followed by the
API's notify call (what zonemesh's `notify` option would do). The clock
runs from just before the PATCH until the second server answers the new
name (UDP queries every ~2 ms; the name was queried once before the change,
so a negative answer sits in that server's cache, as it would in
production)."""

import os
import statistics
import subprocess
import time

from .dbs import Database, new_database
from .env import log, wait_for
from .mesh import Node, stop_all, wait_name
from .pdns import API_KEY, Pdns, soa_serial

ZONE = "wire.test"


def fill_zone(db, kind="NATIVE", records=100000, master=None):
    c = db.connect()
    c.begin()
    c.execute("INSERT INTO domains (name, type, master) VALUES (?, ?, ?)", (ZONE, kind, master))
    did = c.zone_id(ZONE)
    c.commit()
    if records:
        c.begin()
        c.execute("INSERT INTO records (domain_id, name, type, content, ttl, prio, auth) VALUES (?, ?, 'SOA', ?, 3600, 0, 1)",
                  (did, ZONE, "ns1.%s hostmaster.%s 2024010101 10800 3600 604800 3600" % (ZONE, ZONE)))
        c.execute("INSERT INTO records (domain_id, name, type, content, ttl, prio, auth) VALUES (?, ?, 'NS', ?, 3600, 0, 1)",
                  (did, ZONE, "ns1." + ZONE))
        c.execute("INSERT INTO domainmetadata (domain_id, kind, content) VALUES (?, 'SOA-EDIT-API', 'DEFAULT')", (did,))
        c.commit()
        done = 0
        while done < records:
            k = min(20000, records - done)
            c.begin()
            c.bulk_generate(did, ZONE, "host", done, k)
            c.commit()
            done += k
    c.close()
    return did


def patch(pdns, name, content):
    pdns.api("PATCH", "/api/v1/servers/localhost/zones/%s." % ZONE, {
        "rrsets": [{"name": name + ".", "type": "A", "ttl": 300, "changetype": "REPLACE",
                    "records": [{"content": content, "disabled": False}]}]})


def wait_answer(pdns, name, timeout=120, interval=0.002):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        try:
            rcode, an, _ = pdns.query(name, timeout=0.5)
            if rcode == 0 and an > 0:
                return time.monotonic()
        except OSError:
            pass
        time.sleep(interval)
    raise TimeoutError("%s not answered by %s within %ds" % (name, pdns.name, timeout))


def wait_acked(node, peer, before_bytes, timeout=60):
    def ok():
        p = node.peer_status(peer)
        return p if p["queue_depth"] == 0 and p["bytes_sent"] > before_bytes else None
    return wait_for(ok, timeout, 0.01, "peer %s acknowledged" % peer)


def zonemesh_side(env, records, repeats):
    res = {}
    d1 = new_database(env, "sqlite", prefix="wirezm")
    d2 = new_database(env, "sqlite", prefix="wirezm")
    p1 = Pdns(env, "zm-pdns1", d1.path)
    p2 = Pdns(env, "zm-pdns2", d2.path)
    n1 = Node(env, "ns1", d1, extra={"powerdns": {"api_url": p1.api_url, "api_key": API_KEY}})
    n2 = Node(env, "ns2", d2, extra={"powerdns": {"api_url": p2.api_url, "api_key": API_KEY}})
    n1.peers, n2.peers = [n2], [n1]
    nodes = [n1, n2]
    try:
        for n in nodes:
            n.install()
            n.start()
        t0 = time.monotonic()
        fill_zone(d1, records=records)
        res["initial_fill_with_capture_s"] = round(time.monotonic() - t0, 2)
        last = "host%d.%s" % (records - 1, ZONE)
        wait_name([n2], last, timeout=1800, interval=0.05)
        res["initial_replication_s"] = round(time.monotonic() - t0, 2)
        c2 = d2.connect()
        res["records_on_ns2"] = c2.count_zone_records(ZONE)
        c2.close()
        # PowerDNS starts after the zone exists (its zone cache would answer
        # REFUSED for a zone created behind its back for up to 5 minutes).
        p1.start()
        p2.start()
        recs, msgs, byts = p1.axfr_size(ZONE)
        res["zone_records"] = recs
        # One change made with plain SQL on ns1: bytes on the wire to ns2.
        c1 = d1.connect()
        did = c1.zone_id(ZONE)
        sql_bytes, sql_changes = [], []
        for i in range(repeats):
            before = n1.peer_status("ns2")
            c1.execute("INSERT INTO records (domain_id, name, type, content, ttl, prio, auth) VALUES (?, ?, 'A', ?, 300, 0, 1)",
                       (did, "sql%d.%s" % (i, ZONE), "192.0.2.%d" % (i + 1)))
            after = wait_acked(n1, "ns2", before["bytes_sent"])
            sql_bytes.append(after["bytes_sent"] - before["bytes_sent"])
            sql_changes.append(after["changes_sent"] - before["changes_sent"])
        c1.close()
        res["sql_one_record_bytes"] = int(statistics.median(sql_bytes))
        res["sql_one_record_changes"] = int(statistics.median(sql_changes))
        # A change made with SQL on ns1: commit -> pdns2 answers it.
        c1 = d1.connect()
        sql_times = []
        for i in range(repeats):
            name = "sqlp%d.%s" % (i, ZONE)
            p2.query(name)  # negative answer, now cached by pdns2
            time.sleep(0.05)
            c1.begin()
            c1.execute("INSERT INTO records (domain_id, name, type, content, ttl, prio, auth) VALUES (?, ?, 'A', ?, 300, 0, 1)",
                       (did, name, "192.0.2.%d" % (50 + i)))
            c1.commit()
            t0 = time.monotonic()
            sql_times.append((wait_answer(p2, name) - t0) * 1000)
            time.sleep(0.2)
        c1.close()
        res["sql_change_to_pdns2_answer_ms"] = [round(t, 1) for t in sql_times]
        res["sql_change_to_pdns2_answer_ms_median"] = round(statistics.median(sql_times), 1)
        # The API change: time until pdns2 answers it, and its bytes.
        times, api_bytes, api_changes, patch_ms = [], [], [], []
        for i in range(repeats):
            name = "api%d.%s" % (i, ZONE)
            rcode, _, _ = p2.query(name)  # negative answer, now cached by pdns2
            time.sleep(0.05)
            before = n1.peer_status("ns2")
            t0 = time.monotonic()
            patch(p1, name, "192.0.2.%d" % (100 + i))
            patch_ms.append((time.monotonic() - t0) * 1000)
            t1 = wait_answer(p2, name)
            times.append((t1 - t0) * 1000)
            after = wait_acked(n1, "ns2", before["bytes_sent"])
            api_bytes.append(after["bytes_sent"] - before["bytes_sent"])
            api_changes.append(after["changes_sent"] - before["changes_sent"])
            time.sleep(0.2)
        res["api_change_bytes"] = int(statistics.median(api_bytes))
        res["api_change_changes"] = int(statistics.median(api_changes))
        res["serial_pdns1"] = soa_serial("127.0.0.1", p1.port, ZONE)
        res["serial_pdns2"] = soa_serial("127.0.0.1", p2.port, ZONE)
        res["propagation_ms"] = [round(t, 1) for t in times]
        res["propagation_ms_median"] = round(statistics.median(times), 1)
        res["api_patch_ms"] = [round(t, 1) for t in patch_ms]
        res["after_patch_returned_ms"] = [round(t - p, 1) for t, p in zip(times, patch_ms)]
        return res, (recs, msgs, byts)
    finally:
        p1.stop()
        p2.stop()
        stop_all(nodes)


def axfr_side(env, records, repeats):
    res = {}
    dp = Database("sqlite", path=env.path("sqlite", "axfr-primary.db"))
    ds = Database("sqlite", path=env.path("sqlite", "axfr-secondary.db"))
    dp.load_pdns_schema()
    ds.load_pdns_schema()
    prim = Pdns(env, "axfr-primary", dp.path, {"primary": "yes"})
    sec = Pdns(env, "axfr-secondary", ds.path, {"secondary": "yes"})
    # also-notify needs the secondary's port, known only now.
    with open(os.path.join(prim.dir, "pdns.conf"), "a") as f:
        f.write("also-notify=127.0.0.1:%d\n" % sec.port)
    fill_zone(dp, kind="MASTER", records=records)
    fill_zone(ds, kind="SLAVE", records=0, master="127.0.0.1:%d" % prim.port)
    try:
        prim.start()
        sec.start()
        serial = soa_serial("127.0.0.1", prim.port, ZONE)
        t0 = time.monotonic()
        r = sec.control("retrieve", ZONE)
        wait_for(lambda: soa_serial("127.0.0.1", sec.port, ZONE) == serial, 600, 0.05,
                 "initial AXFR to the secondary")
        res["initial_transfer_s"] = round(time.monotonic() - t0, 2)
        recs, msgs, byts = prim.axfr_size(ZONE)
        res.update({"axfr_records": recs, "axfr_messages": msgs, "axfr_bytes": byts})
        times, patch_ms = [], []
        for i in range(repeats):
            name = "api%d.%s" % (i, ZONE)
            sec.query(name)  # negative answer, now cached by the secondary
            time.sleep(0.05)
            t0 = time.monotonic()
            patch(prim, name, "192.0.2.%d" % (100 + i))
            patch_ms.append((time.monotonic() - t0) * 1000)
            prim.api("PUT", "/api/v1/servers/localhost/zones/%s./notify" % ZONE)
            t1 = wait_answer(sec, name, timeout=300)
            times.append((t1 - t0) * 1000)
            time.sleep(0.2)
        res["serial_primary"] = soa_serial("127.0.0.1", prim.port, ZONE)
        res["serial_secondary"] = soa_serial("127.0.0.1", sec.port, ZONE)
        res["propagation_ms"] = [round(t, 1) for t in times]
        res["propagation_ms_median"] = round(statistics.median(times), 1)
        res["api_patch_ms"] = [round(t, 1) for t in patch_ms]
        res["after_patch_returned_ms"] = [round(t - p, 1) for t, p in zip(times, patch_ms)]
        return res
    finally:
        prim.stop()
        sec.stop()


def run(env):
    records = 100000
    repeats = 3 if env.quick else 5
    log("wire: zonemesh side, %d-record zone" % records)
    zm, axfr_of_zm_zone = zonemesh_side(env, records, repeats)
    log("  %s" % zm)
    log("wire: PowerDNS primary/secondary side")
    ax = axfr_side(env, records, repeats)
    log("  %s" % ax)
    return {
        "zone_records": records,
        "zonemesh": zm,
        "axfr": ax,
        "axfr_bytes_of_zonemesh_zone": axfr_of_zm_zone[2],
        "bytes_ratio_axfr_over_zonemesh_sql_change": round(ax["axfr_bytes"] / zm["sql_one_record_bytes"]),
        "bytes_ratio_axfr_over_zonemesh_api_change": round(ax["axfr_bytes"] / zm["api_change_bytes"]),
        "propagation_ratio_axfr_over_zonemesh": round(ax["propagation_ms_median"] / zm["propagation_ms_median"], 1),
    }
