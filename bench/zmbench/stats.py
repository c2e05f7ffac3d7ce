"""Percentiles (nearest-rank) and summaries."""

import math


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(math.ceil(p / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[k]


def summarize(vals):
    v = sorted(vals)
    if not v:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    return {
        "n": len(v),
        "min": round(v[0], 3),
        "p50": round(pct(v, 50), 3),
        "p90": round(pct(v, 90), 3),
        "p99": round(pct(v, 99), 3),
        "max": round(v[-1], 3),
        "mean": round(sum(v) / len(v), 3),
    }
