#!/usr/bin/python3
"""Profiling helpers for the targets the benchmarks miss. Hardware counters
are not available on this machine (`perf stat -e instructions true` says
<not supported>), so CPU profiles come from valgrind --tool=callgrind on the
daemon under a smaller load; database-side evidence from PostgreSQL's
pg_stat_statements and the database's own statement counters.

  bench/profile.py apply-callgrind sqlite|postgresql|mysql [--changes N]
      the receiving daemon under callgrind while it applies a backlog of N
      changes (1000-row transactions); prints callgrind_annotate's
      inclusive and exclusive top functions
  bench/profile.py send-callgrind sqlite [--changes N]
      the sending daemon under callgrind while it drains a backlog
  bench/profile.py apply-statements postgresql|mysql [--changes N]
      statements per applied change and where the database time goes
      (pg_stat_statements / performance_schema digests), wall time split
  bench/profile.py capture-cpu
      CPU time per inserted row with and without capture triggers, on the
      process that does the work, for all three databases
  bench/profile.py capture-sqlite
      per-row cost of SQLite capture, and of the capture trigger's pieces
      (variants of the trigger in a scratch database)
Output goes to stdout and bench/results/profile-*.txt."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from zmbench import env as envmod  # noqa: E402
from zmbench.bench_throughput import rows_for, wait_stamped  # noqa: E402
from zmbench.dbs import new_database  # noqa: E402
from zmbench.env import Env, log, proc_cpu_seconds  # noqa: E402
from zmbench.mesh import check_count, make_mesh, stop_all, wait_name, wait_zone_everywhere  # noqa: E402

OUT = []


def say(s=""):
    print(s)
    OUT.append(s)
    sys.stdout.flush()


def backlog(nodes, n_changes, zone="prof.test"):
    a, b = nodes
    c = a.db.connect()
    did = c.create_zone(zone)
    wait_zone_everywhere(nodes, zone)
    base = c.count_zone_records(zone)
    b.stop()
    last = None
    for k in range(n_changes // 1000):
        rows = rows_for("p%d-" % k, zone, 0, 1000)
        c.begin()
        c.insert_rows(did, rows)
        c.commit()
        last = rows[-1][0]
    c.close()
    wait_stamped(a)
    return zone, base, last


def annotate(outfile, top=40):
    txt = []
    for incl in ("yes", "no"):
        r = subprocess.run(["callgrind_annotate", "--inclusive=" + incl, "--threshold=99", outfile],
                           capture_output=True, text=True)
        lines = r.stdout.splitlines()
        # Keep the header totals and the top entries.
        keep, n = [], 0
        for l in lines:
            if re.match(r"^\s*[\d,]+ \(", l) or l.startswith("Ir") or "PROGRAM TOTALS" in l or l.startswith("-"):
                if re.match(r"^\s*[\d,]+ \(", l):
                    n += 1
                    if n > top:
                        continue
                keep.append(l[:200])
        txt.append("--- callgrind_annotate --inclusive=%s (top %d)" % (incl, top))
        txt += keep
    return "\n".join(txt)


def apply_callgrind(env, kind, n):
    nodes = make_mesh(env, kind, 2)
    try:
        zone, base, last = backlog(nodes, n)
        a, b = nodes
        out = env.path("callgrind", "apply-%s.out" % kind)
        log("starting %s's daemon under callgrind (backlog %d)" % (b.name, n))
        t0 = time.monotonic()
        b.start(wait=True, wrapper=["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                                    "--separate-threads=no"])
        wait_name([b], last, timeout=3600, interval=0.05)
        dt = time.monotonic() - t0
        check_count([b], zone, base + n)
        m = b.metrics()
        b.stop()
        say("== apply under callgrind, %s: %d changes applied in %.1fs (valgrind slows ~50x)" % (kind, n, dt))
        say(annotate(out))
        shutil.copy(out, os.path.join(envmod.BENCH, "results", "callgrind-apply-%s.out" % kind))
    finally:
        stop_all(nodes)


def send_callgrind(env, kind, n):
    nodes = make_mesh(env, kind, 2)
    try:
        zone, base, last = backlog(nodes, n)
        a, b = nodes
        a.stop()
        out = env.path("callgrind", "send-%s.out" % kind)
        b.start()
        log("starting %s's daemon under callgrind (backlog %d)" % (a.name, n))
        t0 = time.monotonic()
        a.start(wait=True, wrapper=["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                                    "--separate-threads=no"])
        wait_name([b], last, timeout=3600, interval=0.05)
        dt = time.monotonic() - t0
        a.stop()
        say("== send under callgrind, %s: %d changes sent in %.1fs" % (kind, n, dt))
        say(annotate(out))
        shutil.copy(out, os.path.join(envmod.BENCH, "results", "callgrind-send-%s.out" % kind))
    finally:
        stop_all(nodes)


def apply_statements(env, kind, n, custom_plans=False):
    if kind == "postgresql":
        pg = env.pg()
        c = pg.admin()
        c.cursor().execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        c.close()
        pg.stop()
        subprocess.run([os.path.join(envmod.SERVERS, "postgres.sh"), "start", pg.dir, str(pg.port)], check=True)
    else:
        my = env.mysql()
    nodes = make_mesh(env, kind, 2)
    try:
        zone, base, last = backlog(nodes, n)
        a, b = nodes
        bc = b.db.connect()
        if custom_plans:
            # An experiment, not a product change: the receiver's database
            # plans every execution with its parameters (no cached generic
            # plan), as a fix in the applier's session would.
            bc.execute("ALTER DATABASE %s SET plan_cache_mode = force_custom_plan" % b.db.name)
        if kind == "postgresql":
            bc.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            bc.execute("SELECT pg_stat_statements_reset()")
        else:
            # MariaDB's performance_schema is off unless the server starts
            # with it (tests/servers/mariadb.sh does not): count statements
            # with the global status counters instead.
            status0 = dict(bc.query("SHOW GLOBAL STATUS"))
        bc.close()
        t0 = time.monotonic()
        b.start(wait=True)
        cpu0 = proc_cpu_seconds(b.pid)
        wait_name([b], last, timeout=3600, interval=0.01)
        wall = time.monotonic() - t0
        cpu_daemon = proc_cpu_seconds(b.pid)
        check_count([b], zone, base + n)
        m = b.metrics()
        apply_s = sum(v for k, v in m.items() if k.startswith("zonemesh_apply_duration_seconds_sum"))
        say("== apply statements, %s%s: %d changes, wall %.2fs (%.0f/s), in apply %.2fs, receiving daemon CPU %.2fs" % (
            kind, " (receiver database with plan_cache_mode=force_custom_plan)" if custom_plans else "",
            n, wall, n / wall, apply_s, cpu_daemon))
        bc = b.db.connect()
        if kind == "postgresql":
            rows = bc.query(
                "SELECT calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 4), rows, "
                "left(regexp_replace(query, '\\s+', ' ', 'g'), 150) FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "ORDER BY total_exec_time DESC LIMIT 25")
            total_calls = bc.scalar("SELECT sum(calls) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM "
                                    "pg_database WHERE datname = current_database()) AND toplevel")
            total_ms = bc.scalar("SELECT sum(total_exec_time) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM "
                                 "pg_database WHERE datname = current_database()) AND toplevel")
        else:
            status1 = dict(bc.query("SHOW GLOBAL STATUS"))
            bc.close()
            say("   MariaDB global status deltas (whole server, incl. the sender's reads):")
            for k in ("Questions", "Com_stmt_execute", "Com_stmt_prepare", "Com_select", "Com_insert", "Com_update",
                      "Com_delete", "Com_begin", "Com_commit", "Handler_read_key", "Handler_write", "Handler_update",
                      "Innodb_rows_inserted", "Innodb_rows_updated", "Innodb_rows_read"):
                if k in status1:
                    d = int(status1[k]) - int(status0.get(k, 0))
                    say("   %-24s %10d  (%.1f per change)" % (k, d, d / n))
            return
        bc.close()
        say("   top-level statements: %d (%.1f per change), server execution time %.0f ms (%.0f%% of wall)" % (
            total_calls, total_calls / n, float(total_ms), float(total_ms) / 10 / wall))
        say("   %8s %10s %9s %8s  %s" % ("calls", "total ms", "mean ms", "rows", "statement"))
        for r in rows:
            say("   %8s %10s %9s %8s  %s" % r)
    finally:
        stop_all(nodes)


def capture_sqlite(env):
    """Per-row cost of the capture trigger and of its parts."""
    import sqlite3
    from zmbench.mesh import Node
    db = new_database(env, "sqlite", prefix="capprof")
    node = Node(env, "ns1", db)
    node.install()
    c = sqlite3.connect(db.path, isolation_level=None)
    trig_sql = c.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'zm_records_ai'").fetchone()[0]
    c.execute("INSERT INTO domains (name, type) VALUES ('p.test', 'NATIVE')")
    did = c.execute("SELECT id FROM domains WHERE name = 'p.test'").fetchone()[0]

    def run(tag, n=5000):
        # CPU time of this process (SQLite runs in it): immune to the other
        # work sharing the machine's two cores. Commit fsyncs are excluded.
        t0 = time.process_time()
        c.execute("BEGIN")
        for i in range(n):
            c.execute("INSERT INTO records (domain_id, name, type, content, ttl, prio) VALUES (?, ?, 'A', ?, 300, 0)",
                      (did, "%s%d.p.test" % (tag, i), "10.0.%d.%d" % (i >> 8 & 255, i & 255)))
        c.execute("COMMIT")
        return (time.process_time() - t0) / n * 1e6

    # Only the insert trigger under test stays; every run starts from the
    # same table contents.
    for t in ("zm_records_au", "zm_records_ad"):
        c.execute("DROP TRIGGER IF EXISTS " + t)

    def with_trigger(body_sql, tag):
        c.execute("DROP TRIGGER IF EXISTS zm_records_ai")
        best = 1e9
        for k in range(2):
            c.execute("DELETE FROM records WHERE domain_id = ?", (did,))
            c.execute("DELETE FROM zm_outbox")
            c.execute("DELETE FROM zm_rowver WHERE tbl = 'records'")
            if body_sql:
                c.execute(body_sql)
            best = min(best, run(tag + str(k)))
            c.execute("DROP TRIGGER IF EXISTS zm_records_ai")
        return best

    when = "WHEN (SELECT cache_size FROM pragma_cache_size) <> -7919"
    assert when in trig_sql
    head, body = trig_sql.split("BEGIN", 1)
    stmts = [x for x in body.rsplit("END", 1)[0].split(";") if x.strip()]
    assert len(stmts) == 2, len(stmts)
    nowhen_head = head.replace(when, "")

    def trig(h, parts):
        return h + "BEGIN\n" + ";\n".join(parts) + ";\nEND"

    variants = [
        ("no trigger", None),
        ("trigger as installed (WHEN + outbox INSERT + rowver upsert)", trig_sql),
        ("WHEN test only, trivial body", trig(head, ["SELECT 1"])),
        ("no WHEN, trivial body", trig(nowhen_head, ["SELECT 1"])),
        ("no WHEN, outbox INSERT only", trig(nowhen_head, stmts[:1])),
        ("no WHEN, outbox INSERT + rowver upsert", trig(nowhen_head, stmts)),
    ]
    res = {}
    for rep in range(4):
        for i, (label, sql) in enumerate(variants):
            t = with_trigger(sql, "v%d-%d-" % (i, rep))
            res[label] = min(res.get(label, 1e9), t)
    say("== SQLite capture cost per inserted row (single-row INSERTs in transactions of 5000,")
    say("   min of 8 runs per variant, interleaved, CPU us/row; pieces measured by replacing the trigger in a scratch copy)")
    base = res["no trigger"]
    for label, _ in variants:
        say("   %-62s %7.1f  (+%.1f)" % (label, res[label], res[label] - base))
    c.close()


def capture_cpu(env, kinds):
    """CPU time per inserted row, with and without the capture triggers,
    measured on the process doing the work (PostgreSQL: the connection's
    backend; MariaDB: the server; SQLite: this process), so that other work
    on the machine does not distort it."""
    from zmbench.bench_capture import workload
    from zmbench.mesh import Node
    say("== capture CPU cost per row (single-row INSERTs in transactions of 100, 5000 rows per run, best of 3)")
    for kind in kinds:
        dbs = {}
        for variant in ("plain", "triggers"):
            db = new_database(env, kind, prefix="cpu" + variant[:4])
            db.load_pdns_schema()
            if variant == "triggers":
                Node(env, "cpu1", db).install(create_schema=False)
            elif kind == "sqlite":
                pc = db.connect()
                pc.query("PRAGMA journal_mode = WAL")
                pc.close()
            c = db.connect()
            c.create_zone("cpu.test")
            dbs[variant] = (db, c, c.zone_id("cpu.test"))
        if kind == "mysql":
            pid = int(open(os.path.join(env.mysql().dir, "server.pid")).read().strip())
        best = {}
        for rep in range(3):
            for variant, (db, c, did) in dbs.items():
                if kind == "postgresql":
                    pid = c.scalar("SELECT pg_backend_pid()")
                if kind == "sqlite":
                    t0 = time.process_time()
                else:
                    t0 = proc_cpu_seconds(pid)
                workload(c, did, "cpu.test", rep * 5000, 5000, 100, "r%d-" % rep)
                t1 = time.process_time() if kind == "sqlite" else proc_cpu_seconds(pid)
                best[variant] = min(best.get(variant, 1e9), (t1 - t0) / 5000 * 1e6)
        for _, c, _ in dbs.values():
            c.close()
        who = {"sqlite": "driver process (SQLite in-process)", "postgresql": "backend process",
               "mysql": "mariadbd (whole server)"}[kind]
        say("   %-10s CPU of %-36s plain %7.1f us/row, with triggers %7.1f us/row (%.1fx)" % (
            kind, who, best["plain"], best["triggers"], best["triggers"] / best["plain"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["apply-callgrind", "send-callgrind", "apply-statements", "capture-sqlite",
                                     "capture-cpu"])
    ap.add_argument("database", nargs="?", default="sqlite")
    ap.add_argument("--changes", type=int, default=None)
    ap.add_argument("--custom-plans", action="store_true",
                    help="apply-statements postgresql: receiver database set to plan_cache_mode=force_custom_plan")
    ap.add_argument("--zonemesh", default=os.path.join(envmod.REPO, "build-bench", "zonemesh"))
    args = ap.parse_args()
    env = Env(zonemesh=os.path.abspath(args.zonemesh))
    os.makedirs(os.path.join(envmod.BENCH, "results"), exist_ok=True)
    try:
        if args.what == "apply-callgrind":
            apply_callgrind(env, args.database, args.changes or 5000)
        elif args.what == "send-callgrind":
            send_callgrind(env, args.database, args.changes or 5000)
        elif args.what == "apply-statements":
            apply_statements(env, args.database, args.changes or 20000, args.custom_plans)
        elif args.what == "capture-sqlite":
            capture_sqlite(env)
        elif args.what == "capture-cpu":
            capture_cpu(env, ["sqlite", "postgresql", "mysql"])
    finally:
        env.close()
    name = "profile-%s%s%s.txt" % (args.what, "" if args.what.startswith("capture") else "-" + args.database,
                                   "-custom-plans" if args.custom_plans else "")
    with open(os.path.join(envmod.BENCH, "results", name), "w") as f:
        f.write("\n".join(OUT) + "\n")


if __name__ == "__main__":
    main()
