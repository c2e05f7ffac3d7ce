"""6. Side by side with Bucardo 5.6 (two-way PostgreSQL), same workload.

Both run on the same throwaway PostgreSQL cluster, each on its own pair of
databases holding the stock PowerDNS schema:
  zonemesh  two daemons, `zonemesh install` in both databases
  Bucardo   `bucardo install` (its own `bucardo` database), both databases
            added as sources of one sync over public.domains and
            public.records (conflict_strategy bucardo_latest); Bucardo
            replicates by primary key, so domains.id and records.id get
            odd ids on one side and even ids on the other (ALTER SEQUENCE
            ... INCREMENT BY 2), as a two-way PowerDNS setup needs.
Bucardo runs with its default timing settings (kids woken by NOTIFY from its
triggers, ctl_sleep/kid_sleep 0.2/0.5 s safety polls).
Workload: spread latency at a steady rate (writer on side A, watcher on side
B, see spread.py), then throughput of single-row and of 1000-row
transactions (A to B, until the last row is visible on B)."""

import os
import subprocess
import time

from .bench_throughput import commit_one_by_one, rows_for
from .env import log, wait_for
from .mesh import Node, check_count, stop_all, wait_name
from .spread import measure_spread


class Bucardo:
    def __init__(self, env, pg):
        self.env = env
        self.pg = pg
        self.dir = os.path.dirname(env.path("bucardo", "x"))
        self.home = os.path.join(self.dir, "home")
        self.run_dir = os.path.join(self.dir, "run")
        self.log_dir = os.path.join(self.dir, "log")
        for d in (self.home, self.run_dir, self.log_dir):
            os.makedirs(d, exist_ok=True)
        self.rc = os.path.join(self.dir, "bucardorc")
        with open(self.rc, "w") as f:
            f.write("dbhost = 127.0.0.1\ndbport = %d\ndbname = bucardo\ndbuser = bucardo\n"
                    "piddir = %s\nlogdest = %s\n" % (pg.port, self.run_dir, self.log_dir))
        self.transcript = []
        self.started = False

    def cmd(self, *args, check=True, timeout=300):
        env = dict(os.environ, HOME=self.home, PGHOST="127.0.0.1", PGPORT=str(self.pg.port))
        full = ["bucardo", "--bucardorc", self.rc] + list(args)
        r = subprocess.run(full, capture_output=True, text=True, env=env, cwd=self.dir, timeout=timeout)
        self.transcript.append({"cmd": " ".join(full[3:]), "rc": r.returncode,
                                "out": (r.stdout + r.stderr).strip()[-600:]})
        if check and r.returncode != 0:
            raise RuntimeError("bucardo %s failed (%d): %s %s" % (" ".join(args), r.returncode, r.stdout[-1500:],
                                                                 r.stderr[-1500:]))
        return r

    def install(self):
        self.cmd("install", "--batch", "--dbhost", "127.0.0.1", "--dbport", str(self.pg.port),
                 "--dbuser", "postgres", "--dbname", "postgres", "--piddir", self.run_dir)
        for k, v in (("log_conflict_file", os.path.join(self.log_dir, "conflict.log")),
                     ("warning_file", os.path.join(self.log_dir, "warning.log")),
                     ("reason_file", os.path.join(self.log_dir, "restart.reason")),
                     ("piddir", self.run_dir)):
            self.cmd("set", "%s=%s" % (k, v))

    def add_pair(self, db_a, db_b):
        for label, db in (("A", db_a), ("B", db_b)):
            self.cmd("add", "db", label, "dbname=%s" % db.name, "host=127.0.0.1", "port=%d" % self.pg.port,
                     "user=postgres")
        self.cmd("add", "table", "public.domains", "public.records", "db=A", "relgroup=pdns")
        self.cmd("add", "sync", "pdns", "relgroup=pdns", "dbs=A:source,B:source",
                 "conflict_strategy=bucardo_latest", "onetimecopy=0")

    def start(self):
        self.cmd("start", "--logdest", self.log_dir)
        self.started = True
        self.env.cleanups.append(self.stop)

    def stop(self):
        if self.started:
            self.cmd("stop", check=False, timeout=120)
            self.started = False
            # Bucardo's processes detach; wait for its MCP to go away.
            pidfile = os.path.join(self.run_dir, "bucardo.mcp.pid")
            t = time.monotonic()
            while os.path.exists(pidfile) and time.monotonic() - t < 30:
                time.sleep(0.2)

    def log_tail(self, n=40):
        out = []
        for fn in sorted(os.listdir(self.log_dir)):
            p = os.path.join(self.log_dir, fn)
            try:
                lines = open(p, errors="replace").read().splitlines()[-n:]
            except OSError:
                continue
            out.append("== %s\n%s" % (fn, "\n".join(lines)))
        return "\n".join(out)


def odd_even(db, offset):
    c = db.connect()
    for seq in ("domains_id_seq", "records_id_seq"):
        c.execute("ALTER SEQUENCE %s INCREMENT BY 2 RESTART WITH %d" % (seq, 1 + offset))
    c.close()


def workload(a_db, b_db, tag, rate, duration, n_single, n_big, wait_ready):
    """The same steps for both systems; returns results."""
    res = {}
    c = a_db.connect()
    zone = "%s.test" % tag
    did = c.create_zone(zone)
    wait_for(lambda: wait_ready(zone), 120, 0.02, "zone %s on B" % zone)
    # Warm-up, then the measurement.
    measure_spread(a_db, [b_db], zone, did, rate=20, duration=2, tag="warm")
    lat, samples = measure_spread(a_db, [b_db], zone, did, rate, duration)
    res["latency_ms"] = lat
    # Single-row transactions.
    rows = rows_for("s", zone, 0, n_single)
    t0 = time.monotonic()
    commit_one_by_one(c, did, rows)
    tw = time.monotonic()
    t_end = _wait_visible(b_db, rows[-1][0])
    res["single_row_tx"] = {"changes": n_single, "writer_rate": round(n_single / (tw - t0)),
                            "mesh_rate": round(n_single / (t_end - t0)),
                            "lag_after_last_commit_s": round(t_end - tw, 3)}
    # 1000-row transactions.
    t0 = time.monotonic()
    for k in range(n_big):
        rows = rows_for("b%d-" % k, zone, 0, 1000)
        c.begin()
        c.insert_rows(did, rows)
        c.commit()
    tw = time.monotonic()
    t_end = _wait_visible(b_db, rows[-1][0])
    total = n_big * 1000
    res["1000_row_tx"] = {"changes": total, "writer_rate": round(total / (tw - t0)),
                          "mesh_rate": round(total / (t_end - t0)),
                          "lag_after_last_commit_s": round(t_end - tw, 3)}
    # Both sides must hold the same rows.
    na = c.count_zone_records(zone)
    cb = b_db.connect()
    nb = cb.count_zone_records(zone)
    cb.close()
    c.close()
    res["rows_a"], res["rows_b"] = na, nb
    return res, samples


def _wait_visible(db, name, timeout=900):
    c = db.connect()
    try:
        t = time.monotonic()
        while not c.query("SELECT 1 FROM records WHERE name = ?", (name,)):
            if time.monotonic() - t > timeout:
                raise TimeoutError("%s not visible after %ds" % (name, timeout))
            time.sleep(0.002)
        return time.monotonic()
    finally:
        c.close()


def run(env):
    rate = 40
    duration = 5 if env.quick else 20
    n_single = 1000 if env.quick else 3000
    n_big = 10 if env.quick else 30
    pg = env.pg()
    out = {"settings": {"rate": rate, "duration_s": duration, "single_row_tx": n_single, "big_tx": n_big}}
    samples = {}

    # --- zonemesh, two-way PostgreSQL
    log("bucardo comparison: zonemesh side")
    za, zb = pg.create_database("zmpair"), pg.create_database("zmpair")
    n1, n2 = Node(env, "ns1", za), Node(env, "ns2", zb)
    n1.peers, n2.peers = [n2], [n1]
    try:
        for n in (n1, n2):
            n.install()
            n.start()
        zbc = zb.connect()
        res, samples["zonemesh"] = workload(za, zb, "zm", rate, duration, n_single, n_big,
                                            lambda z: zbc.zone_id(z) is not None)
        zbc.close()
        out["zonemesh"] = res
        log("  zonemesh: %s" % {k: v for k, v in res.items() if k != "latency_ms"})
    finally:
        stop_all([n1, n2])

    # --- Bucardo, two-way PostgreSQL
    log("bucardo comparison: Bucardo side")
    ba, bb = pg.create_database("bucpair"), pg.create_database("bucpair")
    for db, off in ((ba, 0), (bb, 1)):
        db.load_pdns_schema()
        odd_even(db, off)
    buc = Bucardo(env, pg)
    try:
        buc.install()
        buc.add_pair(ba, bb)
        buc.start()
        bbc = bb.connect()
        res, samples["bucardo"] = workload(ba, bb, "buc", rate, duration, n_single, n_big,
                                           lambda z: bbc.zone_id(z) is not None)
        bbc.close()
        # Two-way: a change made on B reaches A.
        cb = bb.connect()
        did_b = cb.zone_id("buc.test")
        cb.execute("INSERT INTO records (domain_id, name, type, content, ttl, prio) VALUES (?, 'fromb.buc.test', 'A', '192.0.2.9', 300, 0)",
                   (did_b,))
        cb.close()
        t0 = time.monotonic()
        _wait_visible(ba, "fromb.buc.test", timeout=60)
        res["b_to_a_single_change_ms"] = round((time.monotonic() - t0) * 1000, 1)
        out["bucardo"] = res
        log("  bucardo: %s" % {k: v for k, v in res.items() if k != "latency_ms"})
    except Exception as e:
        out["bucardo_error"] = str(e)
        out["bucardo_log_tail"] = buc.log_tail()
        log("  Bucardo failed: %s" % e)
    finally:
        buc.stop()
        out["bucardo_transcript"] = buc.transcript

    if "bucardo" in out:
        z, b = out["zonemesh"], out["bucardo"]
        out["ratios_bucardo_over_zonemesh"] = {
            "latency_p50": round(b["latency_ms"]["p50"] / z["latency_ms"]["p50"], 1),
            "latency_p99": round(b["latency_ms"]["p99"] / z["latency_ms"]["p99"], 1),
        }
        out["ratios_zonemesh_over_bucardo"] = {
            "single_row_tx_mesh_rate": round(z["single_row_tx"]["mesh_rate"] / b["single_row_tx"]["mesh_rate"], 2),
            "1000_row_tx_mesh_rate": round(z["1000_row_tx"]["mesh_rate"] / b["1000_row_tx"]["mesh_rate"], 2),
        }
    return out, samples
