"""7. Anti-entropy cost: what periodic tree comparisons cost on a 2-node
SQLite mesh holding one large zone, how long a change made behind
zonemesh's back takes to be repaired, and what comparisons running back to
back do to the spread latency.

Mesh A (anti-entropy on) goes through four configurations, restarted in
between on the same databases; mesh B (anti-entropy off) is the control:

  A1  interval 2 s, settle 5 s, rehash 3600 s: the zone is loaded on ns1 in
      one transaction and replicated; the first comparison after that hashes
      the whole zone (first_full_hash); then the cost of comparing equal
      nodes whose trees are cached (cached_comparison): each daemon's CPU
      (utime+stime from /proc/PID/stat) over a window of ~5 comparisons,
      without polling inside the window, and each comparison's duration and
      bytes in a second pass.
  A2  interval 2 s, settle 5 s, rehash REPAIR_REHASH s: one record's TTL
      changed on ns2 behind zonemesh's back (PRAGMA cache_size = -7919, so
      the capture triggers skip it); time until both databases hold the same
      row again. Nothing marks the zone changed, so no node notices before
      its tree is rehashed: the time is bounded by rehash + interval +
      comparisons.
  A3  interval 1 s, settle 5 s: single-row writes on ns1 (each marks the zone
      changed, so every comparison hashes the whole zone on both nodes);
      spread latency ns1 -> ns2.
  B   interval 0 (off): the same load and writes; the daemons' idle CPU over
      the window of A1 (heartbeats etc., subtracted from A1's figure) and the
      spread latency without anti-entropy.
"""

import hashlib
import os
import re
import shutil
import time

from .bench_catchup import RssSampler
from .env import log, proc_cpu_seconds
from .mesh import make_mesh, stop_all, wait_count, wait_zone_everywhere
from .spread import measure_spread
from .stats import summarize

ZONE = "ae.test"
INTERVAL = 2          # seconds between comparisons (A1, A2)
SETTLE = 5
WINDOW_COMPARISONS = 5
REPAIR_REHASH = 10    # rehash_seconds while waiting for a change behind zonemesh's back
SPREAD_INTERVAL = 1   # A3
SPREAD_RATE = 20      # single-row transactions per second
BEHIND_BACK_PRAGMA = "PRAGMA cache_size = -7919"


def ae_extra(interval, rehash=3600, settle=SETTLE):
    # debug: one line per comparison (zones, requests, bytes, seconds) and
    # per skipped comparison; the "agrees with peer ... again" lines are at
    # info. Both meshes log at this level, so its cost is in both.
    return {"anti_entropy": {"interval_seconds": interval, "settle_seconds": settle, "rehash_seconds": rehash},
            "log_level": "debug"}


COMPARISON_RE = re.compile(r"anti-entropy with (\S+): (\d+) zone\(s\), (\d+) differing, (\d+) request\(s\), "
                           r"(\d+) bytes, ([\d.]+) s")


class LogCursor:
    """The lines a node's log gained since the cursor was made (the log file
    outlives restarts)."""

    def __init__(self, node):
        self.node = node
        try:
            self.offset = os.path.getsize(node.log_path)
        except OSError:
            self.offset = 0

    def lines(self):
        try:
            with open(self.node.log_path, errors="replace") as f:
                f.seek(self.offset)
                return [l.rstrip("\n") for l in f]
        except OSError:
            return []

    def comparisons(self):
        """The node's debug lines of completed comparisons since the cursor."""
        out = []
        for l in self.lines():
            m = COMPARISON_RE.search(l)
            if m:
                out.append({"zones": int(m.group(2)), "differing": int(m.group(3)), "requests": int(m.group(4)),
                            "bytes": int(m.group(5)), "seconds": float(m.group(6))})
        return out

    def notable(self):
        """anti-entropy lines other than the per-comparison debug line, and
        warnings and errors."""
        return [l for l in self.lines() if not COMPARISON_RE.search(l) and
                (" warning " in l or " error " in l or " critical " in l or "anti-entropy" in l)]


def ae_state(node):
    """(the node's "anti_entropy" status, its entry for the one peer)."""
    st = node.status()["anti_entropy"]
    peer = st.get("peers", {}).get(node.peers[0].name) or {}
    return st, peer


def comparisons(node):
    return ae_state(node)[1].get("comparisons", 0)


def log_lines(node, pattern=r"anti-entropy: | (warning|error|critical) "):
    try:
        with open(node.log_path, errors="replace") as f:
            return [l.rstrip("\n") for l in f if re.search(pattern, l, re.I)]
    except OSError:
        return []


def describe(nodes):
    """Status and log excerpts for an error message."""
    out = []
    for n in nodes:
        try:
            st = ae_state(n)[0]
        except Exception as e:
            st = "status failed: %s" % e
        out.append("%s anti_entropy %s; log: %s" % (n.name, st, log_lines(n)[-8:]))
    return "\n".join(out)


def wait_comparison(nodes, node, target, timeout, interval=0.05):
    """Until node's comparisons counter reaches target; returns (monotonic
    time seen, its anti_entropy status, its peer entry). Raises when the
    node reports a failed comparison meanwhile."""
    deadline = time.monotonic() + timeout
    failures0 = None
    while True:
        st, p = ae_state(node)
        if failures0 is None:
            failures0 = p.get("failures", 0)
        if p.get("comparisons", 0) >= target:
            return time.monotonic(), st, p
        if p.get("failures", 0) > failures0:
            raise RuntimeError("anti-entropy comparison of %s with %s failed: %s\n%s" % (
                node.name, node.peers[0].name, p.get("last_error"), describe(nodes)))
        if time.monotonic() > deadline:
            raise TimeoutError("%s: comparisons did not reach %d within %ds\n%s" % (
                node.name, target, timeout, describe(nodes)))
        time.sleep(interval)


def restart(nodes, extra):
    for n in nodes:
        n.stop()
    for n in nodes:
        n.extra.update(extra)
    for n in nodes:
        n.start()


def load(nodes, records, timeout=1800):
    """Zone created on ns1 and replicated, then `records` A records in one
    transaction (bulk_generate); returns (domain id, insert s, replicated s
    from COMMIT returned, peak RSS MiB per node while replicating)."""
    a = nodes[0]
    c = a.db.connect()
    did = c.create_zone(ZONE)
    wait_zone_everywhere(nodes, ZONE)
    base = c.count_zone_records(ZONE)
    with RssSampler(nodes) as rss:
        t0 = time.monotonic()
        c.begin()
        c.bulk_generate(did, ZONE, "h", 0, records)
        c.commit()
        t1 = time.monotonic()
        reached = wait_count(nodes, ZONE, base + records, timeout, interval=0.05)
    c.close()
    peak = {n.name: round(rss.peak(n.name) / 1024, 1) for n in nodes}
    return did, round(t1 - t0, 2), round(reached[nodes[1].name] - t1, 2), peak, reached[nodes[1].name]


def cpu(nodes):
    return {n.name: proc_cpu_seconds(n.pid) for n in nodes}


def threads_cpu_seconds(pid):
    """On-CPU time of the process's live threads from
    /proc/PID/task/TID/schedstat (nanoseconds, so far finer than the
    utime+stime ticks; the daemon's threads live as long as it does)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def sched_cpu(nodes):
    return {n.name: threads_cpu_seconds(n.pid) for n in nodes}


def wait_each(nodes, targets, timeout, interval=0.05):
    """Polls every node until each one's comparisons counter reaches its
    target; returns {node: (its anti_entropy status, its peer entry) when it
    first did}."""
    deadline = time.monotonic() + timeout
    failures0 = {}
    got = {}
    while len(got) < len(nodes):
        for n in nodes:
            if n.name in got:
                continue
            st, p = ae_state(n)
            failures0.setdefault(n.name, p.get("failures", 0))
            if p.get("comparisons", 0) >= targets[n.name]:
                got[n.name] = (st, p)
            elif p.get("failures", 0) > failures0[n.name]:
                raise RuntimeError("anti-entropy comparison of %s with %s failed: %s\n%s" % (
                    n.name, n.peers[0].name, p.get("last_error"), describe(nodes)))
        if len(got) == len(nodes):
            break
        if time.monotonic() > deadline:
            raise TimeoutError("comparisons did not reach %s within %ds\n%s" % (targets, timeout, describe(nodes)))
        time.sleep(interval)
    return got


def first_full_hash(nodes, t_replicated, timeout):
    """A1: the comparisons each node completes after the load reached ns2.
    The first one whose counter moves (as asked) may have started while the
    load was still being applied on ns2 (then it compared unequal trees);
    so also the first one that started after the load was on ns2 (both
    trees hashed again: the load marked the zone changed on both nodes) and
    the one after it (trees cached). Status polled every 50 ms; a
    comparison's start = when its counter move was seen - its duration."""
    hist = {n.name: [] for n in nodes}
    last = {}
    tb0 = {}
    for n in nodes:
        st, p = ae_state(n)
        last[n.name] = p.get("comparisons", 0)
        tb0[n.name] = st.get("trees_built", 0)
    failures0 = {n.name: ae_state(n)[1].get("failures", 0) for n in nodes}
    deadline = time.monotonic() + timeout

    def done(nm):
        h = hist[nm]
        clean = [i for i, e in enumerate(h) if not e["started_before_load_on_ns2"]]
        return clean and len(h) > clean[0] + 1

    while not all(done(n.name) for n in nodes):
        for n in nodes:
            st, p = ae_state(n)
            if p.get("failures", 0) > failures0[n.name]:
                raise RuntimeError("anti-entropy comparison of %s with %s failed: %s\n%s" % (
                    n.name, n.peers[0].name, p.get("last_error"), describe(nodes)))
            c = p.get("comparisons", 0)
            if c > last[n.name]:
                seen = time.monotonic()
                d = p["last_duration_seconds"]
                hist[n.name].append({
                    "comparison": c,
                    "skipped_unseen": c - last[n.name] - 1,
                    "duration_s": round(d, 3),
                    "bytes": p["last_bytes_received"],
                    "started_s_after_load_on_ns2": round(seen - d - t_replicated, 2),
                    "started_before_load_on_ns2": seen - d < t_replicated,
                    "divergent_zones": p.get("divergent_zones") or [],
                    "trees_built": st.get("trees_built", 0),
                })
                last[n.name] = c
        if time.monotonic() > deadline:
            raise TimeoutError("no comparison after the load within %ds: %s\n%s" % (timeout, hist, describe(nodes)))
        time.sleep(0.05)
    out = {}
    for n in nodes:
        h = hist[n.name]
        i = [k for k, e in enumerate(h) if not e["started_before_load_on_ns2"]][0]
        out[n.name] = {
            "trees_built_before": tb0[n.name],
            # As asked: the first comparison completed after the load was on ns2.
            "first": h[0],
            # The first that started after it, and the next one.
            "first_started_after": h[i],
            "next": h[i + 1],
            "history": h,
        }
    return out


def cpu_window(nodes, seconds):
    """CPU seconds each daemon used over `seconds` (no requests to it in
    between) and the comparisons each completed meanwhile."""
    s0 = {n.name: ae_state(n) for n in nodes}
    c0 = cpu(nodes)
    k0 = sched_cpu(nodes)
    t0 = time.monotonic()
    time.sleep(seconds)
    c1 = cpu(nodes)
    k1 = sched_cpu(nodes)
    t1 = time.monotonic()
    s1 = {n.name: ae_state(n) for n in nodes}
    out = {}
    for n in nodes:
        out[n.name] = {
            "cpu_s": round(c1[n.name] - c0[n.name], 3),
            "cpu_s_schedstat": round(k1[n.name] - k0[n.name], 4),
            "comparisons": s1[n.name][1].get("comparisons", 0) - s0[n.name][1].get("comparisons", 0),
            "trees_built": s1[n.name][0].get("trees_built", 0) - s0[n.name][0].get("trees_built", 0),
        }
    return round(t1 - t0, 2), out


def sample_comparisons(nodes, count, timeout):
    """last_duration_seconds and last_bytes_received of the next `count`
    comparisons of each node (status polled every 50 ms)."""
    out = {n.name: {"durations_s": [], "bytes": [], "divergent": 0} for n in nodes}
    for n in nodes:
        c = comparisons(n)
        for k in range(count):
            t, st, p = wait_comparison(nodes, n, c + k + 1, timeout)
            out[n.name]["durations_s"].append(round(p["last_duration_seconds"], 4))
            out[n.name]["bytes"].append(p["last_bytes_received"])
            out[n.name]["divergent"] += len(p.get("divergent_zones") or [])
    return out


def behind_back_repair(nodes, name, timeout):
    """A2: one record's TTL changed on ns2 without capture; until both
    databases hold the same row again."""
    a, b = nodes
    bc = b.db.connect()
    seq0 = bc.scalar("SELECT seq FROM sqlite_sequence WHERE name = 'zm_outbox'")
    ver0 = bc.query("SELECT hlc, node FROM zm_rowver WHERE tbl = 'records' AND rkey LIKE ?", ("%" + name + "%",))
    before = {}
    for n in nodes:
        st, p = ae_state(n)
        before[n.name] = {"comparisons": p.get("comparisons", 0), "rows_repaired": p.get("rows_repaired", 0),
                          "trees_built": st.get("trees_built", 0)}
    cur = {n.name: LogCursor(n) for n in nodes}
    bc.execute(BEHIND_BACK_PRAGMA)
    t0 = time.monotonic()
    changed = bc.execute("UPDATE records SET ttl = 999 WHERE name = ?", (name,))
    t_changed = time.monotonic()
    if changed != 1:
        raise RuntimeError("the behind-the-back UPDATE changed %d rows" % changed)
    bc.close()
    bc = b.db.connect()  # a plain connection from here on
    seq1 = bc.scalar("SELECT seq FROM sqlite_sequence WHERE name = 'zm_outbox'")
    ver1 = bc.query("SELECT hlc, node FROM zm_rowver WHERE tbl = 'records' AND rkey LIKE ?", ("%" + name + "%",))
    if seq1 != seq0 or ver1 != ver0:
        raise RuntimeError("the UPDATE on ns2 was captured (outbox seq %s -> %s, version %s -> %s)" % (
            seq0, seq1, ver0, ver1))
    ac = a.db.connect()
    conns = {a.name: ac, b.name: bc}
    events = []   # comparisons seen while waiting: (s after change, node, peer entry)
    seen = {n.name: before[n.name]["comparisons"] for n in nodes}
    t_agree = None
    rows_final = None
    deadline = t0 + timeout
    last_status = 0.0
    while True:
        now = time.monotonic()
        rows = {nm: sorted(c.query("SELECT type, content, ttl FROM records WHERE name = ?", (name,)))
                for nm, c in conns.items()}
        if t_agree is None and rows[a.name] == rows[b.name]:
            t_agree = time.monotonic()
            rows_final = rows[a.name]
        if now - last_status >= 0.1 or t_agree is not None:
            last_status = now
            for n in nodes:
                st, p = ae_state(n)
                if p.get("comparisons", 0) > seen[n.name]:
                    if p.get("comparisons", 0) > seen[n.name] + 1:
                        log("  (%s: %d comparisons between two polls; only the last is recorded)" % (
                            n.name, p["comparisons"] - seen[n.name]))
                    seen[n.name] = p["comparisons"]
                    events.append({"after_s": round(time.monotonic() - t0, 2), "node": n.name,
                                   "comparisons": p["comparisons"],
                                   "duration_s": round(p["last_duration_seconds"], 4),
                                   "bytes": p["last_bytes_received"], "rows_repaired_total": p["rows_repaired"],
                                   "divergent_zones": p.get("divergent_zones") or [],
                                   "failures": p.get("failures", 0), "last_error": p.get("last_error"),
                                   "trees_built": st.get("trees_built", 0)})
        # Done when the rows agree and, after that, each node completed a
        # comparison reporting no divergence.
        if t_agree is not None:
            clean = all(any(e["node"] == n.name and e["after_s"] > t_agree - t0 and not e["divergent_zones"]
                            for e in events) for n in nodes)
            if clean:
                break
        if now > deadline:
            raise TimeoutError("row %s %s after %ds: ns1 %s, ns2 %s; comparisons seen %s\n%s" % (
                name, "agrees but divergence still reported" if t_agree else "does not agree",
                timeout, rows[a.name], rows[b.name], events, describe(nodes)))
        time.sleep(0.02)
    ac.close()
    bc.close()
    reported = [e for e in events if e["divergent_zones"]]
    first = reported[0] if reported else None
    after = {}
    for n in nodes:
        st, p = ae_state(n)
        after[n.name] = {"rows_repaired": p.get("rows_repaired", 0) - before[n.name]["rows_repaired"],
                         "trees_built": st.get("trees_built", 0) - before[n.name]["trees_built"],
                         "comparisons": p.get("comparisons", 0) - before[n.name]["comparisons"]}
    repairer = [nm for nm, v in after.items() if v["rows_repaired"] > 0]
    logged = {nm: c.comparisons() for nm, c in cur.items()}
    return {
        "record": name,
        "rehash_seconds": REPAIR_REHASH,
        "update_s": round(t_changed - t0, 4),
        "agreed_after_s": round(t_agree - t0, 2),
        "row_after_repair": rows_final,
        "first_reported_after_s": first["after_s"] if first else None,
        "first_reported_by": first["node"] if first else None,
        "bytes_received_reporting_comparison": first["bytes"] if first else None,
        "duration_s_reporting_comparison": first["duration_s"] if first else None,
        # Each node's first comparison that reported the zone divergent.
        "reported": {n.name: next(({"after_s": e["after_s"], "bytes": e["bytes"], "duration_s": e["duration_s"],
                                    "divergent_zones": e["divergent_zones"]}
                                   for e in reported if e["node"] == n.name), None) for n in nodes},
        # The comparisons each node logged meanwhile (debug lines), with
        # their request counts; those with "differing" > 0 found trees
        # unequal.
        "comparisons_logged": logged,
        "rows_repaired": {nm: v["rows_repaired"] for nm, v in after.items()},
        "repaired_by": repairer,
        "trees_built": {nm: v["trees_built"] for nm, v in after.items()},
        "comparisons": events,
        "log_lines": {nm: c.notable() for nm, c in cur.items()},
    }


def spread(nodes, did, duration, tag):
    measure_spread(nodes[0].db, [nodes[1].db], ZONE, did, rate=SPREAD_RATE, duration=1, tag=tag + "warm")
    s0 = {n.name: ae_state(n) for n in nodes}
    cur = {n.name: LogCursor(n) for n in nodes}
    c0 = cpu(nodes)
    res, _ = measure_spread(nodes[0].db, [nodes[1].db], ZONE, did, rate=SPREAD_RATE, duration=duration, tag=tag)
    c1 = cpu(nodes)
    s1 = {n.name: ae_state(n) for n in nodes}
    out = {k: res[k] for k in ("n", "p50", "p90", "p99", "max", "mean", "writes", "write_rate_achieved", "missing",
                               "poll_period_ms", "errors")}
    out["from_commit_returned"] = {k: res["from_commit_returned"][k] for k in ("p50", "p99", "max")}
    out["cpu_s"] = {n.name: round(c1[n.name] - c0[n.name], 2) for n in nodes}
    out["comparisons"] = {n.name: s1[n.name][1].get("comparisons", 0) - s0[n.name][1].get("comparisons", 0)
                          for n in nodes}
    out["trees_built"] = {n.name: s1[n.name][0].get("trees_built", 0) - s0[n.name][0].get("trees_built", 0)
                          for n in nodes}
    out["comparison_failures"] = {n.name: s1[n.name][1].get("failures", 0) - s0[n.name][1].get("failures", 0)
                                  for n in nodes}
    out["comparisons_logged"] = {nm: c.comparisons() for nm, c in cur.items()}
    out["comparison_s"] = {nm: summarize([e["seconds"] for e in v]) for nm, v in out["comparisons_logged"].items()}
    out["log_lines"] = {nm: c.notable() for nm, c in cur.items()}
    out["anti_entropy_status_after"] = {n.name: s1[n.name][0] for n in nodes}
    return out


def run(env, quick=None):
    # The daemons are restarted mid-run: run a private copy of the binary, so
    # that a rebuild of the original meanwhile cannot change or break it.
    original = env.zonemesh
    copy = env.path("bin", "zonemesh")
    shutil.copy2(original, copy)
    with open(copy, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    env.zonemesh = copy
    try:
        res = run_copy(env, env.quick if quick is None else quick)
    finally:
        env.zonemesh = original
    res["binary"] = {"path": original, "sha256_16": digest,
                     "mtime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(os.path.getmtime(copy)))}
    return res


def run_copy(env, quick):
    records = 20000 if quick else 100000
    spread_s = 5 if quick else 10
    res = {"records": records, "database": "sqlite",
           "config": {"interval_seconds": INTERVAL, "settle_seconds": SETTLE, "rehash_seconds": 3600,
                      "repair_rehash_seconds": REPAIR_REHASH, "spread_interval_seconds": SPREAD_INTERVAL,
                      "spread_rate": SPREAD_RATE, "spread_seconds": spread_s,
                      "cpu_tick_s": round(1.0 / os.sysconf("SC_CLK_TCK"), 4)}}
    window = WINDOW_COMPARISONS * INTERVAL + 0.5

    # ---- mesh A ----------------------------------------------------------
    nodes = make_mesh(env, "sqlite", 2, extra=ae_extra(INTERVAL))
    a, b = nodes
    try:
        log("anti_entropy: %d-record zone on ns1 in one transaction, anti-entropy every %d s" % (records, INTERVAL))
        cur = {n.name: LogCursor(n) for n in nodes}
        did, t_ins, t_repl, peak, t_on_ns2 = load(nodes, records)
        res["load"] = {"insert_s": t_ins, "replicated_s": t_repl, "peak_rss_mib": peak}
        log("  inserted in %.1fs, on ns2 %.1fs after COMMIT (peak RSS %s MiB)" % (t_ins, t_repl, peak))

        timeout = 120 + records / 500
        ffh = first_full_hash(nodes, t_on_ns2, timeout)
        res["first_full_hash"] = ffh
        res["first_full_hash_vmhwm_mib"] = {n.name: round(n.mem()["VmHWM"] / 1024, 1) for n in nodes}
        res["load"]["comparisons_logged"] = {nm: c.comparisons() for nm, c in cur.items()}
        res["load"]["log_lines"] = {nm: c.notable() for nm, c in cur.items()}
        for n in nodes:
            f = ffh[n.name]
            for what, e in (("first after the load", f["first"]), ("first started after", f["first_started_after"]),
                            ("next", f["next"])):
                log("  %s, %s: %.3f s, %d bytes, started %+.2f s from the load on ns2, trees built %d%s" % (
                    n.name, what, e["duration_s"], e["bytes"], e["started_s_after_load_on_ns2"], e["trees_built"],
                    "; DIVERGENT %s" % e["divergent_zones"] if e["divergent_zones"] else ""))
        for nm, c in cur.items():
            for e in res["load"]["comparisons_logged"][nm]:
                log("    %s logged: %s" % (nm, e))
            for l in res["load"]["log_lines"][nm]:
                log("    %s log: %s" % (nm, l))

        # Cached trees: CPU over the window, then durations and bytes.
        wait_comparison(nodes, a, comparisons(a) + 1, timeout)  # start right after one of ns1's
        cur = {n.name: LogCursor(n) for n in nodes}
        wsec, w = cpu_window(nodes, window)
        in_window = {nm: c.comparisons() for nm, c in cur.items()}
        samples = sample_comparisons(nodes, WINDOW_COMPARISONS, timeout)
        cc = {"window_s": wsec}
        for n in nodes:
            v = dict(w[n.name])
            s = samples[n.name]
            v["cpu_s_per_comparison_raw"] = round(v["cpu_s"] / v["comparisons"], 4) if v["comparisons"] else None
            v["cpu_s_per_comparison_raw_schedstat"] = round(v["cpu_s_schedstat"] / v["comparisons"], 5) \
                if v["comparisons"] else None
            v["durations_s"] = s["durations_s"]
            v["bytes"] = s["bytes"]
            v["duration_s_median"] = sorted(s["durations_s"])[len(s["durations_s"]) // 2]
            v["bytes_median"] = sorted(s["bytes"])[len(s["bytes"]) // 2]
            v["divergent_reports"] = s["divergent"]
            v["window_comparisons_logged"] = in_window[n.name]
            v["failures_total"] = ae_state(n)[1].get("failures", 0)
            cc[n.name] = v
            log("  cached trees, %s: %d comparisons in %.1fs, %.3f CPU s (%.4f per comparison, raw); "
                "duration median %.4f s, %d bytes; trees built %d" % (
                    n.name, v["comparisons"], wsec, v["cpu_s"], v["cpu_s_per_comparison_raw"] or 0,
                    v["duration_s_median"], v["bytes_median"], v["trees_built"]))
        res["cached_comparison"] = cc
        res["cached_comparison"]["log_lines"] = {nm: c.notable() for nm, c in cur.items()}

        # A2: a change behind zonemesh's back.
        log("anti_entropy: restart with rehash_seconds %d; TTL of one record changed on ns2 behind zonemesh's back"
            % REPAIR_REHASH)
        restart(nodes, ae_extra(INTERVAL, rehash=REPAIR_REHASH))
        c0 = {n.name: comparisons(n) for n in nodes}
        after_restart = {}
        got = wait_each(nodes, {nm: c + 1 for nm, c in c0.items()}, timeout)
        for n in nodes:
            st, p = got[n.name]
            after_restart[n.name] = {"duration_s": round(p["last_duration_seconds"], 3),
                                     "bytes": p["last_bytes_received"], "trees_built": st.get("trees_built"),
                                     "divergent_zones": p.get("divergent_zones")}
        wait_each(nodes, {nm: c + 2 for nm, c in c0.items()}, timeout)
        res["first_comparison_after_restart"] = after_restart
        log("  first comparison after the restart (trees built from scratch): %s" % {
            k: v["duration_s"] for k, v in after_restart.items()})
        rep = behind_back_repair(nodes, "h%d.%s" % (records // 2, ZONE), REPAIR_REHASH + 6 * INTERVAL + timeout)
        res["repair"] = rep
        log("  rows agree again %.1f s after the change (first reported by %s after %s s, %s bytes in that "
            "comparison); rows repaired %s; row now %s" % (
                rep["agreed_after_s"], rep["first_reported_by"], rep["first_reported_after_s"],
                rep["bytes_received_reporting_comparison"], rep["rows_repaired"], rep["row_after_repair"]))
        for nm, lines in rep["log_lines"].items():
            for l in lines:
                log("    %s log: %s" % (nm, l))
        for nm, v in rep["comparisons_logged"].items():
            for e in v:
                if e["differing"]:
                    log("    %s logged: %s" % (nm, e))

        # A3: spread latency with comparisons back to back.
        log("anti_entropy: restart with interval %d s; spread latency, %d single-row tx/s for %d s" % (
            SPREAD_INTERVAL, SPREAD_RATE, spread_s))
        restart(nodes, ae_extra(SPREAD_INTERVAL))
        wait_each(nodes, {n.name: comparisons(n) + 2 for n in nodes}, timeout)
        on = spread(nodes, did, spread_s, "aeon")
        res["spread_on"] = on
        log("  anti-entropy every %d s: p50 %.1f ms  p99 %.1f ms  max %.1f ms (n=%d); comparisons %s, "
            "trees built %s, daemon CPU %s s" % (SPREAD_INTERVAL, on["p50"], on["p99"], on["max"], on["n"],
                                                 on["comparisons"], on["trees_built"], on["cpu_s"]))
        for nm, lines in on["log_lines"].items():
            for l in lines:
                log("    %s log: %s" % (nm, l))
    finally:
        stop_all(nodes)

    # ---- mesh B: anti-entropy off --------------------------------------------
    nodes = make_mesh(env, "sqlite", 2, extra=ae_extra(0))
    try:
        log("anti_entropy: control mesh, anti-entropy off; the same load")
        cur = {n.name: LogCursor(n) for n in nodes}
        did, t_ins, t_repl, peak, _ = load(nodes, records)
        res["load_off"] = {"insert_s": t_ins, "replicated_s": t_repl, "peak_rss_mib": peak}
        log("  inserted in %.1fs, on ns2 %.1fs after COMMIT (peak RSS %s MiB)" % (t_ins, t_repl, peak))
        time.sleep(2)
        wsec, idle = cpu_window(nodes, window)
        res["idle_baseline"] = {"window_s": wsec, "cpu_s": {n.name: idle[n.name]["cpu_s"] for n in nodes},
                                "cpu_s_schedstat": {n.name: idle[n.name]["cpu_s_schedstat"] for n in nodes}}
        cc = res["cached_comparison"]
        for n in nodes:
            v = cc[n.name]
            base = idle[n.name]["cpu_s"] * cc["window_s"] / wsec
            v["idle_cpu_s_same_window"] = round(base, 3)
            v["cpu_s_per_comparison_net"] = round((v["cpu_s"] - base) / v["comparisons"], 4) \
                if v["comparisons"] else None
            kbase = idle[n.name]["cpu_s_schedstat"] * cc["window_s"] / wsec
            v["idle_cpu_s_same_window_schedstat"] = round(kbase, 4)
            v["cpu_s_per_comparison_net_schedstat"] = round((v["cpu_s_schedstat"] - kbase) / v["comparisons"], 5) \
                if v["comparisons"] else None
            log("  idle %s: %.3f CPU s (schedstat %.4f) in %.1f s -> cached comparison net %.4f CPU s "
                "(schedstat %.5f)" % (n.name, idle[n.name]["cpu_s"], idle[n.name]["cpu_s_schedstat"], wsec,
                                      v["cpu_s_per_comparison_net"] or 0,
                                      v["cpu_s_per_comparison_net_schedstat"] or 0))
        off = spread(nodes, did, spread_s, "aeoff")
        res["spread_off"] = off
        log("  anti-entropy off: p50 %.1f ms  p99 %.1f ms  max %.1f ms (n=%d)" % (
            off["p50"], off["p99"], off["max"], off["n"]))
        res["load_off"]["log_lines"] = {nm: c.notable() for nm, c in cur.items()}
        for nm, lines in off["log_lines"].items():
            for l in lines:
                log("    %s log: %s" % (nm, l))
    finally:
        stop_all(nodes)
    return res
