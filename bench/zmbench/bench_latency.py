"""1. Spread latency: local commit -> row visible in each peer's database."""

import time

from .env import log
from .mesh import make_mesh, stop_all, wait_zone_everywhere
from .spread import measure_spread

KINDS = ["sqlite", "postgresql", "mysql"]


def run(env, kinds=KINDS, sizes=(2, 3)):
    rate = 40
    duration = 5 if env.quick else 20
    results = {}
    samples = {}
    for kind in kinds:
        for n in sizes:
            key = "%s/%d-node" % (kind, n)
            log("latency: %s, %d writes/s for %ds" % (key, rate, duration))
            nodes = make_mesh(env, kind, n)
            try:
                zone = "lat.test"
                c = nodes[0].db.connect()
                did = c.create_zone(zone)
                c.close()
                wait_zone_everywhere(nodes, zone)
                # Warm-up: connections, prepared statements, caches.
                measure_spread(nodes[0].db, [x.db for x in nodes[1:]], zone, did, rate=20, duration=1, tag="warm")
                res, lat = measure_spread(nodes[0].db, [x.db for x in nodes[1:]], zone, did, rate, duration)
                res["rate"] = rate
                res["duration_s"] = duration
                results[key] = res
                samples[key] = lat
                log("  p50 %.1f ms  p99 %.1f ms  max %.1f ms  (n=%d, poll %.2f ms)" % (
                    res["p50"], res["p99"], res["max"], res["n"], res["poll_period_ms"]))
            finally:
                stop_all(nodes)
    return results, samples
