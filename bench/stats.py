"""Figures and their arithmetic: percentiles of samples, a figure with its same-run baseline, /proc memory.

A figure is a plain dict (it goes to JSON as is):
  {"id", "group", "name", "unit", "median", "p99", "n", "baseline": {"name", "median", "p99"} | None,
   "ratio", "lower_is_better", "note"}
`ratio` is median / baseline median. Nothing here asserts anything about time.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from sandbox.process import process_tree

Figure = dict[str, Any]
MIB = 1024 * 1024


def pct(values: Iterable[float], q: float) -> float:
    """The q-quantile by nearest rank (q=0.99 of 100 samples is the 99th smallest)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def series(samples_s: list[float]) -> dict[str, float]:
    """Median and p99 of samples in seconds, as milliseconds."""
    ms = [v * 1000 for v in samples_s]
    if not ms:
        return {"median": float("nan"), "p99": float("nan"), "n": 0}
    return {"median": statistics.median(ms), "p99": pct(ms, 0.99), "n": len(ms)}


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def figure(fid: str, group: str, name: str, unit: str, *, median: float, p99: float | None = None, n: int = 1,
           baseline: Figure | dict[str, Any] | None = None, lower_is_better: bool = True, note: str = "",
           **extra: Any) -> Figure:
    """One figure; `baseline` is another figure (or a dict with name/median/p99) measured in the same run."""
    base = None
    ratio = None
    if baseline is not None:
        base = {"name": baseline["name"], "median": _r(baseline["median"]), "p99": _r(baseline.get("p99"))}
        if baseline["median"]:
            ratio = round(median / baseline["median"], 3)
    return {"id": fid, "group": group, "name": name, "unit": unit, "median": _r(median), "p99": _r(p99), "n": n,
            "baseline": base, "ratio": ratio, "lower_is_better": lower_is_better, "note": note, **extra}


def latency_figure(fid: str, group: str, name: str, samples_s: list[float], *, baseline: Figure | None = None,
                   note: str = "", **extra: Any) -> Figure:
    s = series(samples_s)
    return figure(fid, group, name, "ms", median=s["median"], p99=s["p99"], n=int(s["n"]), baseline=baseline,
                  note=note, **extra)


# ---- memory from /proc -------------------------------------------------------------------------------


def rss_pss(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in bytes from smaps_rollup; (0, 0) when it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return 0, 0
    return rss, pss


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    return process_tree(pid) or [pid]


def tree_rss_pss(pids: Iterable[int]) -> tuple[int, int]:
    rss = pss = 0
    for pid in pids:
        r, p = rss_pss(pid)
        rss += r
        pss += p
    return rss, pss


def mem_used() -> int:
    """MemTotal - MemAvailable in bytes: what the whole machine uses, kernel included."""
    info: dict[str, int] = {}
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            info[key] = int(rest.split()[0]) * 1024
    return info["MemTotal"] - info["MemAvailable"]
