#!/usr/bin/python3
"""zonemesh benchmarks: spread latency, throughput, capture cost, catch-up,
wire cost against AXFR, a side-by-side with Bucardo, and the cost of
anti-entropy.

  bench/run.py                      everything (about 30-40 minutes)
  bench/run.py latency throughput   a subset
  bench/run.py --quick              shorter runs, smaller catch-up (a few minutes)

Every database server, zonemesh daemon, PowerDNS and Bucardo it needs is
started here, in a temp directory, on free loopback ports, and stopped at
the end. Prints one JSON document on stdout (also written to
--out/results.json), a readable table on stderr and in --out/results.txt,
and PNG plots into --out. See bench/README.md.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from zmbench import env as envmod  # noqa: E402
from zmbench.env import Env, git_state, log, machine  # noqa: E402

ALL = ["latency", "throughput", "capture", "catchup", "wire", "bucardo", "anti_entropy"]


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return None


def run_bench(name, env, args, results, raw):
    t0 = time.monotonic()
    load0 = loadavg()
    try:
        if name == "latency":
            from zmbench import bench_latency
            kinds = args.databases
            r, samples = bench_latency.run(env, kinds=kinds)
            results[name] = r
            raw["latency"] = samples
        elif name == "throughput":
            from zmbench import bench_throughput
            results[name] = bench_throughput.run(env, kinds=args.databases)
        elif name == "capture":
            from zmbench import bench_capture
            results[name] = bench_capture.run(env, kinds=args.databases)
        elif name == "catchup":
            from zmbench import bench_catchup
            kinds = [k for k in args.catchup_databases if k in args.databases or k == "sqlite"]
            r, series = bench_catchup.run(env, kinds=kinds, sizes=args.catchup_sizes)
            results[name] = r
            raw["catchup"] = series
        elif name == "wire":
            from zmbench import bench_wire
            results[name] = bench_wire.run(env)
        elif name == "bucardo":
            from zmbench import bench_bucardo
            r, samples = bench_bucardo.run(env)
            results[name] = r
            raw["bucardo"] = samples
        elif name == "anti_entropy":
            from zmbench import bench_anti_entropy
            results[name] = bench_anti_entropy.run(env, args.quick)
    except Exception as e:
        log("%s FAILED: %s" % (name, e))
        traceback.print_exc()
        results[name] = {"error": "%s: %s" % (type(e).__name__, e)}
    results.setdefault("_timing", {})[name] = {
        "seconds": round(time.monotonic() - t0, 1), "loadavg_before": load0, "loadavg_after": loadavg()}


# ------------------------------------------------------------------ targets --

def targets(results):
    out = []

    def add(what, measured, target, met):
        out.append({"what": what, "measured": measured, "target": target, "met": met})

    lat = results.get("latency", {})
    for key, r in sorted(lat.items()):
        if isinstance(r, dict) and r.get("p99") is not None:
            add("spread latency p99 %s" % key, "%.1f ms" % r["p99"], "< 100 ms", r["p99"] < 100 and r["missing"] == 0)
    tp = results.get("throughput", {})
    for kind, r in sorted(tp.items()):
        if isinstance(r, dict) and r.get("apply_vs_plain") is not None:
            add("peer apply rate vs plain batched insert, %s" % kind,
                "%d/s vs %d/s = %.2f" % (r["drain"]["apply_rate_in_apply"], r["plain_batched_insert_rate"],
                                         r["apply_vs_plain"]), ">= 0.5", r["apply_vs_plain"] >= 0.5)
            add("end-to-end drain rate vs plain batched insert, %s" % kind,
                "%d/s vs %d/s = %.2f" % (r["drain"]["drain_rate"], r["plain_batched_insert_rate"],
                                         r["drain_vs_plain"]), ">= 0.5", r["drain_vs_plain"] >= 0.5)
    cap = results.get("capture", {})
    for kind, r in sorted(cap.items()):
        if not isinstance(r, dict) or "error" in r:
            continue
        for tx, row in sorted(r.items()):
            add("capture slowdown (triggers), %s, %s" % (kind, tx), "%.2fx" % row["slowdown_triggers"], "<= 2x",
                row["slowdown_triggers"] <= 2)
    cu = results.get("catchup", {})
    for kind, r in sorted(cu.items()):
        if isinstance(r, dict) and "drain_seconds" in r:
            add("catch-up of %d changes, %s" % (r["changes"], kind), "%.1f s" % r["drain_seconds"],
                "< 120 s for 1,000,000", r["drain_seconds"] < 120 * r["changes"] / 1e6)
            peak = max(r["sender_peak_rss_mib"], r["receiver_peak_rss_mib"], r["sender_vmhwm_mib"],
                       r["receiver_vmhwm_mib"])
            add("catch-up peak RSS, %s" % kind, "%.1f MiB" % peak, "< 100 MiB", peak < 100)
    b = results.get("bucardo", {})
    if isinstance(b, dict) and "ratios_bucardo_over_zonemesh" in b:
        rb, rz = b["ratios_bucardo_over_zonemesh"], b["ratios_zonemesh_over_bucardo"]
        add("latency p50 vs Bucardo (Bucardo/zonemesh)", "%.1fx" % rb["latency_p50"], "> 1", rb["latency_p50"] > 1)
        add("latency p99 vs Bucardo (Bucardo/zonemesh)", "%.1fx" % rb["latency_p99"], "> 1", rb["latency_p99"] > 1)
        add("1-row tx throughput vs Bucardo (zonemesh/Bucardo)", "%.2fx" % rz["single_row_tx_mesh_rate"], "> 1",
            rz["single_row_tx_mesh_rate"] > 1)
        add("1000-row tx throughput vs Bucardo (zonemesh/Bucardo)", "%.2fx" % rz["1000_row_tx_mesh_rate"], "> 1",
            rz["1000_row_tx_mesh_rate"] > 1)
    return out


# -------------------------------------------------------------------- table --

def table(doc):
    R = doc["results"]
    lines = []

    def h(t):
        lines.append("")
        lines.append(t)
        lines.append("-" * len(t))

    def row(*cols, w=(34, 12, 12, 12, 12, 12, 12)):
        s = ""
        for i, c in enumerate(cols):
            c = "" if c is None else str(c)
            width = w[i] if i < len(w) else 12
            s += (c.ljust(width) if i == 0 else c.rjust(width)) + " "
        lines.append(s.rstrip())

    m = doc["machine"]
    lines.append("zonemesh benchmarks %s%s" % (doc["started_at"], " (--quick)" if doc["quick"] else ""))
    lines.append("machine: %s, nproc %s, %s GiB RAM, load average at start %s (shared machine)" % (
        m.get("cpu_model"), m.get("nproc"), m.get("ram_gib"), " ".join(m.get("loadavg_at_start", []))))
    lines.append("zonemesh: %s (%s)" % (doc["zonemesh"]["binary"], doc["zonemesh"]["version"]))

    if "latency" in R and "error" not in R["latency"]:
        h("1. Spread latency: commit on ns1 -> row visible in a peer's database (ms)")
        row("case", "writes/s", "p50", "p90", "p99", "max", "p50 lo", "p99 lo", "poll ms", "COMMIT p99",
            w=(20, 9, 9, 9, 9, 9, 9, 9, 9, 11))
        for key, r in sorted(R["latency"].items()):
            lo = r.get("from_commit_returned", {})
            row(key, r["write_rate_achieved"], r["p50"], r["p90"], r["p99"], r["max"], lo.get("p50"), lo.get("p99"),
                r["poll_period_ms"], r["commit_call_ms"]["p99"], w=(20, 9, 9, 9, 9, 9, 9, 9, 9, 11))
        lines.append("  n = %s changes per peer per case. p50..max: from COMMIT sent (upper bound); 'lo': from COMMIT" %
                     next(iter(R["latency"].values()))["writes"])
        lines.append("  returned (lower bound); poll ms = the watcher's poll period (resolution); COMMIT p99 = the")
        lines.append("  writer's COMMIT call (the commit instant lies inside it)")
    if "throughput" in R and "error" not in R["throughput"]:
        h("2. Throughput, 2-node mesh (changes/s)")
        row("database", "1-row: wr", "1-row: mesh", "1000: wr", "1000: mesh", "", "")
        for kind, r in sorted(R["throughput"].items()):
            row(kind, r["single_row_tx"]["writer_rate"], r["single_row_tx"]["mesh_rate"],
                r["1000_row_tx"]["writer_rate"], r["1000_row_tx"]["mesh_rate"])
        lines.append("  wr = the writer's own commit rate; mesh = changes / (first commit -> last change visible on the peer)")
        row("database", "apply", "drain", "plain ins", "apply/plain", "drain/plain", "")
        for kind, r in sorted(R["throughput"].items()):
            row(kind, r["drain"]["apply_rate_in_apply"], r["drain"]["drain_rate"], r["plain_batched_insert_rate"],
                r["apply_vs_plain"], r["drain_vs_plain"])
        lines.append("  apply = changes / time inside the peer's apply (its /metrics histogram), backlog of %s changes;" %
                     next(iter(R["throughput"].values()))["drain"]["changes"])
        lines.append("  drain = the same backlog end to end (peer start -> last row visible); plain ins = multi-row")
        lines.append("  INSERT of 1000 rows per transaction into records without triggers, same server")
    if "capture" in R and "error" not in R["capture"]:
        h("3. Capture cost: single-row INSERTs/s into records")
        row("database / tx size", "plain", "triggers", "+daemon", "slowdown", "slowdn+dmn")
        for kind, r in sorted(R["capture"].items()):
            for tx, v in sorted(r.items(), key=lambda kv: int(kv[0].split("_")[1])):
                row("%s / %s" % (kind, tx.split("_")[1]), v["plain"], v["triggers"], v["triggers+daemon"],
                    "%.2fx" % v["slowdown_triggers"], "%.2fx" % v["slowdown_triggers+daemon"])
    if "catchup" in R and "error" not in R["catchup"]:
        h("4. Catch-up after an outage")
        row("database", "changes", "drain s", "changes/s", "RSS snd MiB", "RSS rcv MiB", "insert s")
        for kind, r in sorted(R["catchup"].items()):
            row(kind, r["changes"], r["drain_seconds"], r["drain_rate"],
                max(r["sender_peak_rss_mib"], r["sender_vmhwm_mib"]),
                max(r["receiver_peak_rss_mib"], r["receiver_vmhwm_mib"]), r["insert_seconds_with_capture"])
        lines.append("  RSS = peak of VmRSS sampled every 100 ms and VmHWM; insert s = building the backlog (bulk SQL, triggers on)")
        for kind, r in sorted(R["catchup"].items()):
            if "longest_stall_s" in r:
                lines.append("  %s: %d commit rounds (largest %d changes); longest stall without progress %.1f s; "
                             "returning peer's /status slowest %.0f ms, %d failed" % (
                                 kind, r["commit_rounds"], r["largest_round"], r["longest_stall_s"],
                                 r["receiver_status_slowest_ms"], r["receiver_status_failures"]))
    if "wire" in R and "error" not in R["wire"]:
        w = R["wire"]
        z, a = w["zonemesh"], w["axfr"]
        h("5. Wire cost and propagation, %d-record zone (SQLite + pdns_server gsqlite3)" % w["zone_records"])
        row("what", "zonemesh", "AXFR", "ratio", w=(52, 14, 14, 10))
        row("bytes for one record inserted with SQL", z["sql_one_record_bytes"], a["axfr_bytes"],
            "%dx" % w["bytes_ratio_axfr_over_zonemesh_sql_change"], w=(52, 14, 14, 10))
        row("bytes for one API RRset change (+SOA bump)", z["api_change_bytes"], a["axfr_bytes"],
            "%dx" % w["bytes_ratio_axfr_over_zonemesh_api_change"], w=(52, 14, 14, 10))
        row("API PATCH on server 1 -> server 2 answers, median ms", z["propagation_ms_median"],
            a["propagation_ms_median"], "%.1fx" % w["propagation_ratio_axfr_over_zonemesh"], w=(52, 14, 14, 10))
        row("  of which the PATCH call itself, ms", "/".join(str(x) for x in z["api_patch_ms"]),
            "/".join(str(x) for x in a["api_patch_ms"]), "", w=(52, 14, 14, 10))
        row("SQL commit on ns1 -> pdns2 answers, median ms", z["sql_change_to_pdns2_answer_ms_median"], "", "",
            w=(52, 14, 14, 10))
        row("initial copy of the zone, s", z["initial_replication_s"], a["initial_transfer_s"], "", w=(52, 14, 14, 10))
    if "bucardo" in R:
        b = R["bucardo"]
        h("6. Two-way PostgreSQL: zonemesh vs Bucardo 5.6 (same cluster, same workload)")
        if "bucardo" in b and "zonemesh" in b:
            row("metric", "zonemesh", "Bucardo", "better")
            z, bu = b["zonemesh"], b["bucardo"]
            for lab, k in (("latency p50 ms", "p50"), ("latency p99 ms", "p99"), ("latency max ms", "max")):
                row(lab, z["latency_ms"][k], bu["latency_ms"][k],
                    "zonemesh %.1fx" % (bu["latency_ms"][k] / z["latency_ms"][k]) if bu["latency_ms"][k] > z["latency_ms"][k]
                    else "Bucardo %.1fx" % (z["latency_ms"][k] / bu["latency_ms"][k]))
            for lab, k in (("1-row tx: writer/s", ("single_row_tx", "writer_rate")),
                           ("1-row tx: mesh/s", ("single_row_tx", "mesh_rate")),
                           ("1000-row tx: writer/s", ("1000_row_tx", "writer_rate")),
                           ("1000-row tx: mesh/s", ("1000_row_tx", "mesh_rate"))):
                zv, bv = z[k[0]][k[1]], bu[k[0]][k[1]]
                row(lab, zv, bv, "zonemesh %.1fx" % (zv / bv) if zv > bv else "Bucardo %.1fx" % (bv / zv))
        elif "error" in b:
            lines.append("  failed: %s" % b["error"])
        if b.get("bucardo_error"):
            lines.append("  Bucardo failed: %s" % b["bucardo_error"])
    if "anti_entropy" in R and "error" not in R["anti_entropy"]:
        ae_table(R["anti_entropy"], h, row, lines)
    T = doc.get("targets", [])
    if T:
        h("Targets")
        for t in T:
            lines.append("  [%s] %s: %s (target %s)" % ("met " if t["met"] else "MISS", t["what"], t["measured"], t["target"]))
    errs = {k: v["error"] for k, v in R.items() if isinstance(v, dict) and "error" in v}
    if errs:
        h("Errors")
        for k, v in errs.items():
            lines.append("  %s: %s" % (k, v))
    return "\n".join(lines) + "\n"


def ae_table(a, h, row, lines):
    names = ("ns1", "ns2")
    cfg = a["config"]
    h("7. Anti-entropy cost, 2-node SQLite mesh, %d-record zone" % a["records"])
    w = (50, 12, 12)
    row("", "ns1", "ns2", w=w)
    lo, lf = a["load"], a.get("load_off", {})
    row("load: one-transaction insert on ns1, s", lo["insert_s"], "", w=w)
    row("load: on ns2 after COMMIT, s (anti-entropy on / off)", "", "%s / %s" % (
        lo["replicated_s"], lf.get("replicated_s")), w=w)
    row("load: peak RSS MiB, anti-entropy on", lo["peak_rss_mib"]["ns1"], lo["peak_rss_mib"]["ns2"], w=w)
    if lf:
        row("load: peak RSS MiB, anti-entropy off", lf["peak_rss_mib"]["ns1"], lf["peak_rss_mib"]["ns2"], w=w)
    f = a["first_full_hash"]
    row("first comparison completed after the load, s", *[f[n]["first"]["duration_s"] for n in names], w=w)
    row("  bytes received", *[f[n]["first"]["bytes"] for n in names], w=w)
    row("  started, s from the load's arrival on ns2", *[f[n]["first"]["started_s_after_load_on_ns2"]
                                                          for n in names], w=w)
    row("first comparison started after it arrived, s", *[f[n]["first_started_after"]["duration_s"] for n in names],
        w=w)
    row("  bytes received", *[f[n]["first_started_after"]["bytes"] for n in names], w=w)
    row("  the comparison after that, s", *[f[n]["next"]["duration_s"] for n in names], w=w)
    row("  trees built: before the load / after these", *["%d / %d" % (f[n]["trees_built_before"],
                                                                       f[n]["next"]["trees_built"]) for n in names],
        w=w)
    r0 = a.get("first_comparison_after_restart")
    if r0:
        row("first comparison after a restart (no load), s", *[r0[n]["duration_s"] for n in names], w=w)
    row("VmHWM after the first full hashing, MiB", *[a["first_full_hash_vmhwm_mib"][n] for n in names], w=w)
    c = a["cached_comparison"]
    row("cached trees, every %d s: comparisons in %.1f s" % (cfg["interval_seconds"], c["window_s"]),
        *[c[n]["comparisons"] for n in names], w=w)
    row("  daemon CPU in the window, s", *[c[n]["cpu_s"] for n in names], w=w)
    row("  idle daemon CPU, same window, s (a.-e. off)", *[c[n].get("idle_cpu_s_same_window") for n in names], w=w)
    row("  CPU ms per comparison, raw", *[None if c[n]["cpu_s_per_comparison_raw"] is None else
                                          round(c[n]["cpu_s_per_comparison_raw"] * 1000, 1) for n in names], w=w)
    row("  CPU ms per comparison, minus idle", *[None if c[n].get("cpu_s_per_comparison_net") is None else
                                                 round(c[n]["cpu_s_per_comparison_net"] * 1000, 1) for n in names],
        w=w)
    row("  the same from schedstat (ns clock): raw", *[
        None if c[n].get("cpu_s_per_comparison_raw_schedstat") is None else
        round(c[n]["cpu_s_per_comparison_raw_schedstat"] * 1000, 1) for n in names], w=w)
    row("                                       minus idle", *[
        None if c[n].get("cpu_s_per_comparison_net_schedstat") is None else
        round(c[n]["cpu_s_per_comparison_net_schedstat"] * 1000, 1) for n in names], w=w)
    row("  last_duration_seconds, median ms", *[round(c[n]["duration_s_median"] * 1000, 1) for n in names], w=w)
    row("  last_bytes_received, median", *[c[n]["bytes_median"] for n in names], w=w)
    row("  trees built in the window", *[c[n]["trees_built"] for n in names], w=w)
    lines.append("  CPU = utime+stime of the whole daemon (comparing, serving the peer's comparisons, heartbeats),")
    lines.append("  /proc/PID/stat tick %s s; schedstat = sum over the daemon's threads; per comparison = CPU /" %
                 cfg["cpu_tick_s"])
    lines.append("  comparisons this daemon completed in the window; idle = same window on the mesh with it off")
    r = a["repair"]
    rr = r["reported"]
    row("one TTL changed on ns2 behind zonemesh's back:", "", "", w=w)
    row("  both databases agree again after, s", r["agreed_after_s"], "", w=w)
    row("  first reported divergent after, s", *[rr[n]["after_s"] if rr.get(n) else "-" for n in names], w=w)
    row("  bytes received in that comparison", *[rr[n]["bytes"] if rr.get(n) else "-" for n in names], w=w)
    row("  that comparison's duration, s", *[rr[n]["duration_s"] if rr.get(n) else "-" for n in names], w=w)
    row("  rows repaired", *[r["rows_repaired"].get(n) for n in names], w=w)
    lines.append("  rehash_seconds %d, interval %d s: nothing marks the zone changed, so the change is seen only" % (
        r["rehash_seconds"], cfg["interval_seconds"]))
    lines.append("  when a node's tree is next rehashed; the row ended as %s on both" % (r["row_after_repair"],))
    on, off = a.get("spread_on"), a.get("spread_off")
    if on and off:
        w2 = (50, 9, 9, 9, 9)
        row("spread ns1 -> ns2, ms (%d single-row tx/s, %d s)" % (cfg["spread_rate"], cfg["spread_seconds"]),
            "p50", "p99", "max", "n", w=w2)
        row("  anti-entropy every %d s" % cfg["spread_interval_seconds"], on["p50"], on["p99"], on["max"], on["n"],
            w=w2)
        row("  anti-entropy off", off["p50"], off["p99"], off["max"], off["n"], w=w2)
        row("  while measuring, anti-entropy on:", "ns1", "ns2", w=w)
        row("    comparisons completed / failed", *["%d / %d" % (on["comparisons"][n], on["comparison_failures"][n])
                                                    for n in names], w=w)
        row("    comparison duration median, s", *[on["comparison_s"][n]["p50"] for n in names], w=w)
        row("    comparison duration max, s", *[on["comparison_s"][n]["max"] for n in names], w=w)
        row("    trees built", *[on["trees_built"][n] for n in names], w=w)
        row("    daemon CPU s while measuring", *[on["cpu_s"][n] for n in names], w=w)
        row("    the same with anti-entropy off", *[off["cpu_s"][n] for n in names], w=w)
        lines.append("  every write marks the zone changed; a changed zone is hashed again at most once per settle_seconds")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("benchmarks", nargs="*", help="subset of: %s (default: all)" % " ".join(ALL))
    ap.add_argument("--quick", action="store_true", help="short runs (about 5 minutes in all)")
    ap.add_argument("--zonemesh", default=os.path.join(envmod.REPO, "build-bench", "zonemesh"),
                    help="zonemesh binary (default build-bench/zonemesh)")
    ap.add_argument("--out", default=os.path.join(envmod.BENCH, "results"), help="directory for results and plots")
    ap.add_argument("--databases", default="sqlite,postgresql,mysql",
                    help="databases for latency, throughput and capture (default sqlite,postgresql,mysql)")
    ap.add_argument("--catchup-databases", default="sqlite,postgresql",
                    help="databases for the catch-up benchmark (default sqlite,postgresql)")
    ap.add_argument("--catchup-changes", default=None,
                    help="backlog sizes per database, e.g. sqlite=1000000,postgresql=200000 "
                         "(default: 1000000 for sqlite, 200000 for postgresql; --quick 100000 / 50000)")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory (databases, logs)")
    args = ap.parse_args()
    wanted = args.benchmarks or ALL
    bad = [b for b in wanted if b not in ALL]
    if bad:
        ap.error("unknown benchmark(s) %s; choose from %s" % (" ".join(bad), " ".join(ALL)))
    args.databases = [d for d in args.databases.split(",") if d]
    args.catchup_databases = [d for d in args.catchup_databases.split(",") if d]
    sizes = {"sqlite": 100000, "postgresql": 50000, "mysql": 50000} if args.quick else \
        {"sqlite": 1000000, "postgresql": 200000, "mysql": 200000}
    if args.catchup_changes:
        for part in args.catchup_changes.split(","):
            k, v = part.split("=")
            sizes[k] = int(v)
    args.catchup_sizes = sizes
    zm = os.path.abspath(args.zonemesh)
    default_zm = os.path.join(envmod.REPO, "build-bench", "zonemesh")
    if zm == default_zm:
        # Always brought up to date (make does nothing when it is).
        log("building %s (cmake Release, make -j2 zonemesh)" % zm)
        bdir = os.path.dirname(zm)
        os.makedirs(bdir, exist_ok=True)
        subprocess.run("cmake .. -DCMAKE_BUILD_TYPE=Release >/dev/null && make -j2 zonemesh >build.log 2>&1",
                       shell=True, cwd=bdir, check=False)
    if not os.access(zm, os.X_OK):
        sys.exit("run.py: no zonemesh binary at %s (build it: mkdir -p build-bench && cd build-bench && "
                 "cmake .. -DCMAKE_BUILD_TYPE=Release && make -j2 zonemesh, or pass --zonemesh)" % zm)
    if os.geteuid() != 0:
        sys.exit("run.py: run as root (PostgreSQL is started as the postgres user, MariaDB as root)")
    version = subprocess.run([zm, "version"], capture_output=True, text=True).stdout.strip()

    env = Env(keep=args.keep, zonemesh=zm, quick=args.quick)
    doc = {
        "started_at": datetime.datetime.now().isoformat(timespec="seconds"),
        "quick": args.quick,
        "benchmarks": wanted,
        "machine": machine(),
        "zonemesh": {"binary": zm, "version": version, "git": git_state()},
        "results": {},
    }
    raw = {}
    try:
        for b in wanted:
            log("=== %s" % b)
            run_bench(b, env, args, doc["results"], raw)
    finally:
        env.close()
    doc["finished_at"] = datetime.datetime.now().isoformat(timespec="seconds")
    doc["targets"] = targets(doc["results"])
    os.makedirs(args.out, exist_ok=True)
    try:
        from zmbench import plots
        doc["plots"] = plots.write_all(args.out, raw)
    except Exception as e:
        doc["plots_error"] = str(e)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        f.write(envmod.dump_json(doc) + "\n")
    with open(os.path.join(args.out, "samples.json"), "w") as f:
        json.dump({k: v for k, v in raw.items() if k in ("latency", "bucardo")}, f)
    text = table(doc)
    with open(os.path.join(args.out, "results.txt"), "w") as f:
        f.write(text)
    print(envmod.dump_json(doc))
    sys.stderr.write("\n" + text)


if __name__ == "__main__":
    main()
