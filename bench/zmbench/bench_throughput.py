"""2. Throughput through the mesh, the peer's apply rate and the database's
plain batched-insert ceiling."""

import time

from .dbs import new_database
from .env import log
from .mesh import check_count, make_mesh, stop_all, wait_name, wait_zone_everywhere

KINDS = ["sqlite", "postgresql", "mysql"]


def rows_for(prefix, zone, start, count):
    return [("%s%d.%s" % (prefix, i, zone), "10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255))
            for i in range(start, start + count)]


SINGLE_ROW_INSERT = "INSERT INTO records (domain_id, name, type, content, ttl, prio) VALUES (?, ?, 'A', ?, 300, 0)"


def commit_one_by_one(c, did, rows):
    """Inserts (name, content) rows into zone `did`, one transaction each."""
    for name, content in rows:
        c.begin()
        c.execute(SINGLE_ROW_INSERT, (did, name, content))
        c.commit()


def apply_counters(node, origin):
    m = node.metrics()
    changes = 0.0
    for k, v in m.items():
        if k.startswith("zonemesh_changes_applied_total") and 'origin="%s"' % origin in k:
            changes = v
    secs = sum(v for k, v in m.items() if k.startswith("zonemesh_apply_duration_seconds_sum"))
    batches = sum(v for k, v in m.items() if k.startswith("zonemesh_apply_duration_seconds_count"))
    return changes, secs, batches


def single_row(env, nodes, n_tx):
    zone = "tp1.test"
    c = nodes[0].db.connect()
    did = c.create_zone(zone)
    wait_zone_everywhere(nodes, zone)
    base = c.count_zone_records(zone)
    rows = rows_for("s", zone, 0, n_tx)
    t0 = time.monotonic()
    commit_one_by_one(c, did, rows)
    t_w = time.monotonic()
    c.close()
    reached = wait_name(nodes[1:], rows[-1][0], timeout=600)
    t_end = max(reached.values())
    check_count(nodes, zone, base + n_tx)
    return {
        "changes": n_tx,
        "writer_rate": round(n_tx / (t_w - t0)),
        "mesh_rate": round(n_tx / (t_end - t0)),
        "lag_after_last_commit_s": round(t_end - t_w, 3),
    }


def big_tx(env, nodes, n_tx, per_tx):
    zone = "tp1000.test"
    c = nodes[0].db.connect()
    did = c.create_zone(zone)
    wait_zone_everywhere(nodes, zone)
    base = c.count_zone_records(zone)
    before = [apply_counters(p, nodes[0].name) for p in nodes[1:]]
    t0 = time.monotonic()
    for k in range(n_tx):
        rows = rows_for("b%d-" % k, zone, 0, per_tx)
        last = rows[-1][0]
        c.begin()
        c.insert_rows(did, rows)
        c.commit()
    t_w = time.monotonic()
    c.close()
    total = n_tx * per_tx
    reached = wait_name(nodes[1:], last, timeout=900)
    t_end = max(reached.values())
    check_count(nodes, zone, base + total)
    after = [apply_counters(p, nodes[0].name) for p in nodes[1:]]
    ch = sum(a[0] - b[0] for a, b in zip(after, before))
    secs = sum(a[1] - b[1] for a, b in zip(after, before))
    return {
        "changes": total,
        "tx_size": per_tx,
        "writer_rate": round(total / (t_w - t0)),
        "mesh_rate": round(total / (t_end - t0)),
        "lag_after_last_commit_s": round(t_end - t_w, 3),
        "peer_apply_rate_in_apply": round(ch / secs) if secs > 0 else None,
    }


def wait_stamped(node, timeout=600):
    """Until the node's outbox thread has stamped every committed change."""
    c = node.db.connect()
    t = time.monotonic()
    try:
        while c.scalar("SELECT COUNT(*) FROM zm_outbox WHERE csn IS NULL") > 0:
            if time.monotonic() - t > timeout:
                raise TimeoutError("outbox of %s not stamped after %ds" % (node.name, timeout))
            time.sleep(0.05)
    finally:
        c.close()
    return time.monotonic() - t


def drain(env, nodes, n_tx, per_tx):
    """Backlog built while the peer's daemon is down; time for it to drain
    once it is back (sender read + HTTP + apply, end to end), and the
    apply-only rate from the peer's apply-duration histogram."""
    zone = "drain.test"
    a, b = nodes[0], nodes[1]
    c = a.db.connect()
    did = c.create_zone(zone)
    wait_zone_everywhere(nodes[:2], zone)
    base = c.count_zone_records(zone)
    b.stop()
    for k in range(n_tx):
        rows = rows_for("d%d-" % k, zone, 0, per_tx)
        c.begin()
        c.insert_rows(did, rows)
        c.commit()
    c.close()
    total = n_tx * per_tx
    # Wait until the sender's outbox thread has stamped everything.
    wait_stamped(a)
    time.sleep(1.2)  # queue depth refresh
    t0 = time.monotonic()
    b.start(wait=True)
    reached = wait_name([b], rows[-1][0], timeout=900)
    t_end = reached[b.name]
    check_count([b], zone, base + total)
    ch, secs, batches = apply_counters(b, a.name)
    return {
        "changes": total,
        "tx_size": per_tx,
        "drain_s": round(t_end - t0, 3),
        "drain_rate": round(total / (t_end - t0)),
        "apply_rate_in_apply": round(ch / secs) if secs > 0 else None,
        "apply_batches": int(batches),
        "apply_seconds": round(secs, 3),
    }


def ceiling(env, kind, n_tx, per_tx, repeats):
    """Plain batched insert: the same rows, multi-row INSERT of per_tx rows
    per transaction, into a PowerDNS records table without triggers."""
    db = new_database(env, kind, prefix="plain")
    db.load_pdns_schema()
    c = db.connect()
    did = c.create_zone("plain.test")
    best = 0
    for r in range(repeats):
        t0 = time.monotonic()
        for k in range(n_tx):
            c.begin()
            c.insert_rows(did, rows_for("p%d-%d-" % (r, k), "plain.test", 0, per_tx))
            c.commit()
        rate = n_tx * per_tx / (time.monotonic() - t0)
        best = max(best, rate)
    c.close()
    return round(best)


def run(env, kinds=KINDS):
    results = {}
    n_single = 1000 if env.quick else 5000
    n_big = 10 if env.quick else 50
    n_drain = 20 if env.quick else 100
    for kind in kinds:
        log("throughput: %s" % kind)
        res = {}
        nodes = make_mesh(env, kind, 2)
        try:
            res["single_row_tx"] = single_row(env, nodes, n_single)
            log("  1-row tx: %s" % res["single_row_tx"])
            res["1000_row_tx"] = big_tx(env, nodes, n_big, 1000)
            log("  1000-row tx: %s" % res["1000_row_tx"])
            res["drain"] = drain(env, nodes, n_drain, 1000)
            log("  drain: %s" % res["drain"])
        finally:
            stop_all(nodes)
        res["plain_batched_insert_rate"] = ceiling(env, kind, n_drain, 1000, 1 if env.quick else 2)
        apply_rate = res["drain"]["apply_rate_in_apply"]
        res["apply_vs_plain"] = round(apply_rate / res["plain_batched_insert_rate"], 3) if apply_rate else None
        res["drain_vs_plain"] = round(res["drain"]["drain_rate"] / res["plain_batched_insert_rate"], 3)
        log("  plain insert %d/s; apply/plain %.2f; drain/plain %.2f" % (
            res["plain_batched_insert_rate"], res["apply_vs_plain"] or 0, res["drain_vs_plain"]))
        results[kind] = res
    return results
