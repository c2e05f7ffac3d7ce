"""PNG plots (matplotlib, Agg backend)."""

import os


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def latency(samples, path, title):
    """CDF and histogram of spread latency, one line per case."""
    if not samples:
        return None
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    for key, vals in sorted(samples.items()):
        if not vals:
            continue
        v = sorted(vals)
        n = len(v)
        ax1.step(v, [(i + 1) / n for i in range(n)], where="post", label="%s (n=%d)" % (key, n))
        lo, hi = max(min(v), 0.1), max(v) * 1.01
        bins = [lo * (hi / lo) ** (i / 50.0) for i in range(51)]
        ax2.hist(v, bins=bins, histtype="step", label=key)
    ax1.set_xscale("log")
    ax1.set_xlabel("commit -> visible on peer (ms, log scale)")
    ax1.set_ylabel("fraction of changes")
    ax1.axvline(100, color="grey", linestyle=":", linewidth=1)
    ax1.text(100, 0.02, " 100 ms target", color="grey", fontsize=8)
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=8, loc="lower right")
    ax1.set_title("CDF")
    ax2.set_xscale("log")
    ax2.set_xlabel("commit -> visible on peer (ms, log bins)")
    ax2.set_ylabel("changes")
    ax2.set_title("histogram")
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def catchup(series, path):
    if not series:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(series), 2, figsize=(13, 4 * len(series)), squeeze=False)
    for row, (kind, s) in enumerate(sorted(series.items())):
        a1, a2 = axes[row]
        prog = s["progress"]
        a1.plot([t for t, _ in prog], [n for _, n in prog])
        a1.set_xlabel("seconds since the peer was started")
        a1.set_ylabel("changes applied by the returning peer")
        a1.set_title("%s: catch-up progress" % kind)
        a1.grid(True, alpha=0.3)
        for name in s["names"]:
            a2.plot([t for t, r in s["rss"]], [r.get(name, 0) / 1024 for _, r in s["rss"]],
                    label=name + (" (sender)" if name == s["names"][0] else " (receiver)"))
        a2.axhline(100, color="grey", linestyle=":", linewidth=1)
        a2.set_xlabel("seconds since the peer was started")
        a2.set_ylabel("VmRSS (MiB)")
        a2.set_title("%s: daemon memory while draining" % kind)
        a2.grid(True, alpha=0.3)
        a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_all(outdir, raw):
    os.makedirs(outdir, exist_ok=True)
    made = []
    if raw.get("latency"):
        made.append(latency(raw["latency"], os.path.join(outdir, "latency.png"),
                            "zonemesh spread latency (steady writes on ns1, watched on every peer)"))
    if raw.get("bucardo"):
        made.append(latency(raw["bucardo"], os.path.join(outdir, "bucardo-latency.png"),
                            "two-way PostgreSQL: zonemesh vs Bucardo 5.6, same workload"))
    if raw.get("catchup"):
        made.append(catchup(raw["catchup"], os.path.join(outdir, "catchup.png")))
    return [m for m in made if m]
