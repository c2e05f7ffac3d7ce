"""Spread-latency measurement shared by the zonemesh and Bucardo runs.

A writer thread commits single-row INSERTs into `records` on one database at
a fixed rate and notes time.monotonic() right after COMMIT returns. One
watcher thread per peer database polls, every `poll_ms`, for the names
written and not yet seen there (`SELECT name FROM records WHERE name IN
(...)`, served by the (name, type) index) and notes when each first appears.
The commit becomes visible somewhere between the writer sending COMMIT and
COMMIT returning, so both are recorded: latency = first seen - COMMIT sent
(reported p50/p99/max: an upper bound, it includes the COMMIT call itself,
e.g. an fsync) and first seen - COMMIT returned (from_commit_returned: a
lower bound; on a CPU-starved machine the writer thread can get the CPU back
only after the peer already has the row, so some lower bounds are below the
poll period). Resolution: the watcher's poll period plus one query (measured,
poll_period_ms)."""

import threading
import time

from .stats import summarize


def measure_spread(writer_db, peer_dbs, zone, domain_id, rate, duration, poll_ms=1.0, tag="lat",
                   settle_timeout=60):
    wc = writer_db.connect()
    written = {}          # name -> COMMIT returned
    issued = {}           # name -> COMMIT sent
    order = []
    lock = threading.Lock()
    done = threading.Event()
    seen = [dict() for _ in peer_dbs]
    pending_sets = [set() for _ in peer_dbs]
    polls = [0 for _ in peer_dbs]
    poll_time = [0.0 for _ in peer_dbs]
    errors = []

    def watcher(i, db):
        try:
            c = db.connect()
            local_seen = seen[i]
            t_start = time.monotonic()
            n = 0
            while True:
                with lock:
                    pending = list(pending_sets[i])
                    finished = done.is_set()
                if finished and not pending:
                    break
                if pending:
                    rows = c.query("SELECT name FROM records WHERE name IN (%s)" % ", ".join("?" * len(pending)),
                                   pending)
                    now = time.monotonic()
                    with lock:
                        for (nm,) in rows:
                            if nm not in local_seen:
                                local_seen[nm] = now
                                pending_sets[i].discard(nm)
                n += 1
                time.sleep(poll_ms / 1000.0)
                if finished and time.monotonic() - t_done[0] > settle_timeout:
                    errors.append("peer %d: %d change(s) not seen within %ds" % (i, len(pending), settle_timeout))
                    break
            polls[i] = n
            poll_time[i] = time.monotonic() - t_start
            c.close()
        except Exception as e:  # reported, not raised in a thread
            errors.append("watcher %d: %r" % (i, e))

    t_done = [0.0]
    threads = [threading.Thread(target=watcher, args=(i, db), daemon=True) for i, db in enumerate(peer_dbs)]
    for t in threads:
        t.start()
    interval = 1.0 / rate
    n_writes = int(rate * duration)
    t0 = time.monotonic()
    commit_ms = []
    for k in range(n_writes):
        target = t0 + k * interval
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        name = "%s%d.%s" % (tag, k, zone)
        tb = time.monotonic()
        wc.begin()
        wc.execute("INSERT INTO records (domain_id, name, type, content, ttl, prio) VALUES (?, ?, 'A', ?, 300, 0)",
                   (domain_id, name, "192.0.2.%d" % (k % 250 + 1)))
        tp = time.monotonic()
        wc.commit()
        tc = time.monotonic()
        commit_ms.append((tc - tp) * 1000)
        with lock:
            written[name] = tc
            issued[name] = tp
            order.append(name)
            for ps in pending_sets:
                ps.add(name)
    elapsed = time.monotonic() - t0
    t_done[0] = time.monotonic()
    done.set()
    for t in threads:
        t.join()
    wc.close()
    lat, lat_lo = [], []
    per_peer = []
    missing = 0
    for i in range(len(peer_dbs)):
        li = [(seen[i][nm] - issued[nm]) * 1000 for nm in order if nm in seen[i]]
        lo = [(seen[i][nm] - written[nm]) * 1000 for nm in order if nm in seen[i]]
        missing += len(order) - len(li)
        lat += li
        lat_lo += lo
        s = summarize(li)
        s["poll_period_ms"] = round(poll_time[i] / max(polls[i], 1) * 1000, 3)
        per_peer.append(s)
    res = summarize(lat)
    res.update({
        "writes": n_writes,
        "write_rate_achieved": round(n_writes / elapsed, 1),
        "missing": missing,
        # The same, measured from COMMIT returned instead of COMMIT sent (a
        # lower bound; the p50/p99/max above are the upper bound).
        "from_commit_returned": summarize(lat_lo),
        # The COMMIT call (sent -> returned): the commit instant lies in
        # this window, so it bounds how far latencies can be under-stated.
        "commit_call_ms": summarize(commit_ms),
        "per_peer": per_peer,
        "poll_period_ms": max(p["poll_period_ms"] for p in per_peer) if per_peer else None,
        "errors": errors,
    })
    return res, lat
