"""bench/run's report: the summary shows every figure with its baseline and ratio, and the aims table.

Pure functions on a made-up results dict (no benchmark runs here), plus `bench/run --check`, which
parses the arguments and imports every stage without running anything.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.stats import Figure, figure, latency_figure, pct, series

REPO = Path(__file__).resolve().parents[2]


def _lat(fid: str, group: str, name: str, median: float, p99: float, baseline: Figure | None = None,
         **extra: Any) -> Figure:
    return figure(fid, group, name, "ms", median=median, p99=p99, n=100, baseline=baseline, **extra)


def _mem(fid: str, name: str, mib: float, baseline: Figure | None = None, **extra: Any) -> Figure:
    return figure(fid, "memory", name, "MiB", median=mib, baseline=baseline, **extra)


def make_results(*, fast: bool) -> dict[str, Any]:
    """Every kind of figure bench/run produces; `fast` picks values that meet every aim."""
    figs: list[Figure] = []
    for n in (1, 10, 50, 200):
        common = {"server": "tools10", "clients": n}
        d = _lat(f"calls.tools10.direct.c{n}", "calls", f"direct {n}", 0.05 * n, 0.1 * n, path="direct", era="-",
                 **common)
        dr = figure(f"calls.tools10.direct.c{n}.rate", "calls", f"direct rate {n}", "calls/s", median=20000 + n,
                    lower_is_better=False, path="direct", era="-", **common)
        figs += [d, dr]
        for k, era in enumerate(("legacy", "modern")):
            added = (0.5 if fast else 3.0) + 0.01 * k + (n - 1)
            figs.append(_lat(f"calls.tools10.{era}.c{n}", "calls", f"{era} {n}", d["median"] + added,
                             d["p99"] + (2.0 if fast else 9.0), baseline=d, path="gateway", era=era, errors=0,
                             **common))
            figs.append(figure(f"calls.tools10.{era}.c{n}.rate", "calls", f"{era} rate {n}", "calls/s",
                               median=(1500 if fast else 600) + n + k, baseline=dr, lower_is_better=False,
                               path="gateway", era=era, **common))
    sdk = _lat("calls.sdk.direct", "calls", "one SDK client, direct", 1.1, 1.5, server="echo", clients=1)
    figs += [sdk, _lat("calls.sdk.modern", "calls", "one SDK client, gateway", 3.3, 5.0, baseline=sdk, server="echo",
                       clients=1)]
    for kind in ("python", "node"):
        plain = _lat(f"startup.{kind}.plain", "startup", f"{kind} plain", 500, 600)
        figs += [plain, _lat(f"startup.{kind}.sandbox", "startup", f"{kind} sandbox", 520, 640, baseline=plain),
                 _lat(f"startup.{kind}.sandbox_net", "startup", f"{kind} sandbox with network",
                      550 if fast else 700, 700, baseline=plain)]
    warm_plain = _lat("startup.warm.plain", "startup", "warm plain", 20, 25)
    nonet = _lat("startup.warm.nonet", "startup", "warm no network", 70, 90, baseline=warm_plain)
    figs += [warm_plain, nonet, _lat("startup.warm.net", "startup", "warm with veth", 80, 99, baseline=nonet),
             _lat("startup.warm.veth_setup", "startup", "veth setup", 9.5, 14)]
    ka = _lat("egress.keepalive.direct", "egress", "keep-alive direct", 0.3, 0.6)
    nc = _lat("egress.newconn.direct", "egress", "new connection direct", 2.0, 5.0)
    nd = _lat("egress.node.direct", "egress", "Node fetch direct", 0.7, 2.0)
    figs += [ka, _lat("egress.keepalive.proxy", "egress", "keep-alive proxy", 1.5 if fast else 2.8, 4.0, baseline=ka),
             nc, _lat("egress.newconn.proxy", "egress", "new connection proxy", 10.0, 25.0, baseline=nc),
             nd, _lat("egress.node.preload", "egress", "Node fetch via preload", 2.0, 6.0, baseline=nd)]
    idle = _mem("memory.gateway.idle.rss", "gateway RSS idle", 99.0)
    plain_rss = _mem("memory.server.plain.rss", "server plain RSS", 9.6)
    figs += [idle, _mem("memory.gateway.live.rss", "gateway RSS at 200 live", 140.0, baseline=idle, live=200),
             plain_rss, _mem("memory.sandbox.rss", "RSS per idle sandbox", 12.7, baseline=plain_rss, live=200),
             _mem("memory.sandbox.overhead", "RSS beyond the server's own", 3.1 if fast else 16.0, live=200)]
    first: dict[str, Figure] = {}
    for n in (1, 10, 100, 500):
        for kind in ("call", "list"):
            f = _lat(f"scaling.profiles.{n}.{kind}", "scaling", f"tools/{kind}, {n} profiles", 2.0 + n / 100, 9.0,
                     baseline=first.get(kind), profiles=n, live=min(n, 200))
            first.setdefault(kind, f)
            figs.append(f)
        figs.append(figure(f"scaling.profiles.{n}.rss", "scaling", f"gateway RSS, {n} profiles", "MiB",
                           median=100 + n / 10, baseline=idle, profiles=n, live=min(n, 200)))
    for count in (10, 1000):
        for kind in ("call", "list"):
            d = _lat(f"scaling.tools.{count}.{kind}.direct", "scaling", f"tools/{kind} {count} tools direct", 0.1,
                     0.2, tools=count, path="direct")
            figs += [d, _lat(f"scaling.tools.{count}.{kind}", "scaling", f"tools/{kind} {count} tools gateway",
                             2.0 + count / 100, 8.0, baseline=d, tools=count, path="gateway")]
    return {"machine": {"date": "2026-01-01 00:00 UTC", "commit": "abc123", "cpus": 2, "kernel": "6.1",
                        "python": "3.13.0", "node": "v20", "mem_gib": 24, "load_start": 1.0, "load_end": 1.2},
            "mode": "full", "wall_s": 321.0, "stages": {"calls": {"seconds": 100.0, "error": ""}},
            "figures": figs, "cleanup": {"ok": True, "summary": "nothing left behind"}}


def _aims(md: str) -> dict[str, str]:
    section = md.split("### Aims", 1)[1].split("###", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    return {cells[1].strip(): cells[3].strip() for cells in rows[1:]}


def test_every_figure_appears_with_its_baseline_and_ratio() -> None:
    results = make_results(fast=False)
    md = report.summary_markdown(results)
    table_rows = [line for line in md.splitlines() if line.startswith("| ")]
    for f in results["figures"]:
        if f["id"].startswith("calls.tools10."):
            # The pivot: one row per client count holding direct (the baseline) and both eras with their ratios.
            row = next(r for r in table_rows if r.startswith(f"| {f['clients']} |"))
            assert report.num(f["median"], f["unit"]) in row, (f["id"], row)
            if f["ratio"] is not None:
                assert report.ratio(f["ratio"]) in row, (f["id"], row)
            continue
        row = next((r for r in table_rows if r.startswith(f"| {f['name']} |")), None)
        assert row is not None, f"{f['id']} missing from the summary"
        assert report.num(f["median"], f["unit"]) in row
        if f["baseline"]:
            assert f["baseline"]["name"] in row and report.ratio(f["ratio"]) in row


def test_aims_met_and_not_met() -> None:
    slow = _aims(report.summary_markdown(make_results(fast=False)))
    fast = _aims(report.summary_markdown(make_results(fast=True)))
    assert len(slow) == len(fast) == 5
    assert set(slow.values()) == {"not met"}, slow
    assert set(fast.values()) == {"met"}, fast


def test_aims_not_measured_when_a_stage_is_missing() -> None:
    results = make_results(fast=True)
    results["figures"] = [f for f in results["figures"] if f["group"] != "egress"]
    aims = _aims(report.summary_markdown(results))
    assert aims["proxy adds < 2 ms p50 (keep-alive)"] == "not measured"
    assert list(aims.values()).count("met") == 4


def test_aim_arithmetic_uses_the_same_run_baseline() -> None:
    results = make_results(fast=True)
    by = report.by_id(results)
    measured = {a["aim"]: a["measured"] for a in report.aims(results)}
    added = by["calls.tools10.legacy.c1"]["median"] - by["calls.tools10.direct.c1"]["median"]
    aim = "gateway adds < 1 ms p50 and < 5 ms p99 to a tools/call (1 client, stdlib server)"
    assert f"+{added:.2f} ms p50" in measured[aim]
    best = max((f for f in results["figures"] if f["id"].endswith(".rate") and f.get("path") == "gateway"),
               key=lambda f: f["median"])
    assert f"{best['median']:,.0f} calls/s (2026-07-28, 200 clients)" in measured[
        ">= 1,000 tools/call/s through the gateway (stdlib server)"]


def test_docs_section_is_replaced_between_the_markers_only() -> None:
    page = f"# Performance\n\nprose before\n\n{report.START}\nold\n{report.END}\n\nprose after\n"
    new = report.replace_section(page, "new body")
    assert "old" not in new and "new body" in new
    assert new.startswith("# Performance\n\nprose before") and new.endswith("prose after\n")
    assert report.replace_section(new, "new body") == new
    appended = report.replace_section("# Performance\n", "body")
    assert appended.count(report.START) == 1 and "body" in appended


def test_stats_percentiles() -> None:
    values = [float(i) for i in range(1, 101)]
    assert pct(values, 0.5) == 51.0 and pct(values, 0.99) == 99.0
    s = series([0.001] * 99 + [0.1])
    assert s["median"] == pytest.approx(1.0) and s["n"] == 100
    f = latency_figure("x", "g", "x", [0.002] * 10, baseline={"name": "b", "median": 1.0, "p99": 1.0})
    assert f["ratio"] == pytest.approx(2.0)


def test_write_all_writes_json_summary_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is in the dev extra (bench/run's plots)")
    results = make_results(fast=True)
    written = report.write_all(results, tmp_path, docs=False)
    names = {p.name for p in written}
    assert {"latest.json", "summary.md", *(file for file, _ in report.PLOTS.values())} <= names
    assert json.loads((tmp_path / "latest.json").read_text())["figures"] == results["figures"]
    summary = (tmp_path / "summary.md").read_text()
    assert "### Aims" in summary and "./bench-calls.png" in summary
    for file, _ in report.PLOTS.values():
        assert (tmp_path / file).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_run_checks_its_arguments() -> None:
    ok = subprocess.run([str(REPO / "bench" / "run"), "--check", "--quick"], capture_output=True, text=True,
                        timeout=60, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert "stages calls, startup, egress, scaling; quick sizes" in ok.stdout
    bad = subprocess.run([str(REPO / "bench" / "run"), "--check", "--only", "nonsense"], capture_output=True,
                         text=True, timeout=60, cwd=REPO)
    assert bad.returncode == 2 and "unknown stage" in bad.stderr
