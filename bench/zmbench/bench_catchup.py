"""4. Catch-up: a peer offline while N changes accumulate; time to drain
after it returns, and both daemons' RSS while it happens."""

import threading
import time

from .bench_throughput import wait_stamped
from .env import log
from .mesh import make_mesh, stop_all, wait_zone_everywhere


class RssSampler:
    def __init__(self, nodes, interval=0.1):
        self.nodes = nodes
        self.interval = interval
        self.samples = []  # (t, {name: rss_kib})
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        t0 = time.monotonic()
        while not self.stop_ev.is_set():
            row = {}
            for n in self.nodes:
                m = n.mem()
                if m:
                    row[n.name] = m.get("VmRSS", 0)
            self.samples.append((time.monotonic() - t0, row))
            self.stop_ev.wait(self.interval)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop_ev.set()
        self.t.join()

    def peak(self, name):
        return max((r.get(name, 0) for _, r in self.samples), default=0)


def run_one(env, kind, total, per_tx):
    nodes = make_mesh(env, kind, 2)
    a, b = nodes
    zone = "catchup.test"
    try:
        c = a.db.connect()
        did = c.create_zone(zone)
        wait_zone_everywhere(nodes, zone)
        base = c.count_zone_records(zone)
        b.stop()
        log("catch-up %s: ns2 stopped; inserting %d records in transactions of %d on ns1" % (kind, total, per_tx))
        t0 = time.monotonic()
        done = 0
        while done < total:
            k = min(per_tx, total - done)
            c.begin()
            c.bulk_generate(did, zone, "h", done, k)
            c.commit()
            done += k
        t_ins = time.monotonic() - t0
        stamp_wait = wait_stamped(a)
        c.close()
        log("  inserted in %.1fs (+%.1fs until all stamped); starting ns2" % (t_ins, stamp_wait))
        hwm_before = a.mem()["VmHWM"]
        progress = []
        with RssSampler([a, b]) as rss:
            t_start = time.monotonic()
            b.start(wait=True)
            t_ready = time.monotonic()
            expected = base + total
            applied = 0
            status_errors, status_max_ms = 0, 0.0
            last_progress_t, longest_stall = time.monotonic(), 0.0
            while True:
                ts = time.monotonic()
                try:
                    for o in b.status().get("origins", []):
                        if o["id"] == a.name:
                            if o["changes_applied"] > applied:
                                longest_stall = max(longest_stall, ts - last_progress_t)
                                last_progress_t = ts
                            applied = o["changes_applied"]
                except Exception:
                    status_errors += 1
                now = time.monotonic()
                status_max_ms = max(status_max_ms, (now - ts) * 1000)
                progress.append((round(now - t_start, 3), applied))
                if applied >= total:
                    break
                if now - t_start > 3600:
                    raise TimeoutError("catch-up did not finish in an hour (%d of %d)" % (applied, total))
                time.sleep(0.1)
            t_end = time.monotonic()
            time.sleep(0.3)
        bc = b.db.connect()
        have = bc.count_zone_records(zone)
        if have != expected:
            raise RuntimeError("ns2 reports %d applied but holds %d of %d records" % (applied, have - base, total))
        bc.close()
        st = a.peer_status(b.name)
        ac = a.db.connect()
        rounds = ac.query("SELECT COUNT(*) FROM zm_outbox WHERE csn IS NOT NULL GROUP BY csn")
        ac.close()
        sizes = sorted(r[0] for r in rounds)
        res = {
            "database": kind,
            "changes": total,
            "writer_tx_size": per_tx,
            "insert_seconds_with_capture": round(t_ins, 1),
            "drain_seconds": round(t_end - t_start, 2),
            "drain_rate": round(total / (t_end - t_start)),
            "daemon_start_seconds": round(t_ready - t_start, 2),
            "sender_queue_depth_after": st["queue_depth"],
            "sender_batches_sent": st["batches_sent"],
            "sender_peak_rss_mib": round(rss.peak(a.name) / 1024, 1),
            "receiver_peak_rss_mib": round(rss.peak(b.name) / 1024, 1),
            "sender_vmhwm_mib": round(a.mem()["VmHWM"] / 1024, 1),
            "sender_vmhwm_before_drain_mib": round(hwm_before / 1024, 1),
            "receiver_vmhwm_mib": round(b.mem()["VmHWM"] / 1024, 1),
            # The returning peer's GET /status while it applies: slowest
            # answer and failed (5 s timeout) requests.
            "receiver_status_slowest_ms": round(status_max_ms, 1),
            "receiver_status_failures": status_errors,
            # Longest time without the applied count moving (a commit round
            # larger than one batch is staged and applied as one transaction).
            "longest_stall_s": round(longest_stall, 1),
            # How the sender's stamper cut the backlog into commit rounds.
            "commit_rounds": len(sizes),
            "largest_round": sizes[-1] if sizes else 0,
        }
        log("  drained in %.1fs (%d/s); peak RSS sender %.1f MiB, receiver %.1f MiB" % (
            res["drain_seconds"], res["drain_rate"], res["sender_peak_rss_mib"], res["receiver_peak_rss_mib"]))
        return res, {"rss": rss.samples, "progress": progress, "names": [a.name, b.name]}
    finally:
        stop_all(nodes)


def run(env, kinds=("sqlite", "postgresql"), sizes=None):
    sizes = sizes or {}
    results, series = {}, {}
    for kind in kinds:
        total = sizes.get(kind, 100000 if env.quick else 1000000)
        res, ser = run_one(env, kind, total, 10000)
        results[kind] = res
        series[kind] = ser
    return results, series
