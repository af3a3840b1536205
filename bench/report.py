"""Results out: `latest.json`, the Markdown summary (every figure with its baseline, the aims), PNG plots and
the generated section of docs/performance.md.

Everything here is a pure function of the results dict except the writers at the bottom, so the
summary can be tested without running a benchmark. Results:
  {"machine": {...}, "mode": "full"|"quick", "wall_s": float, "stages": {name: {"seconds", "error"}},
   "figures": [figure, ...], "cleanup": {...}}
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.stats import Figure

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DOCS_PAGE = REPO / "docs" / "performance.md"
DOCS_IMG = REPO / "docs" / "img"
START, END = "<!-- bench:summary:start -->", "<!-- bench:summary:end -->"

GROUPS = [
    ("calls", "tools/call through the gateway against the same server direct over stdio"),
    ("startup", "Cold start and warm spawn (spawn to the first tools/list answer)"),
    ("egress", "Egress: through the proxy against direct"),
    ("memory", "Memory"),
    ("scaling", "Growth with the number of profiles and tools"),
]
PLOTS = {
    "calls": ("bench-calls.png", "tools/call latency and throughput against concurrent clients"),
    "startup": ("bench-startup.png", "cold start and warm spawn"),
    "egress": ("bench-egress.png", "egress latency through the proxy"),
    "scaling": ("bench-scaling.png", "growth with profiles and tools"),
    "memory": ("bench-memory.png", "memory"),
}
CALL_SERVERS = {"tools10": "stdlib echo server (its own cost is tiny: the gateway's shows)",
                "echo": "SDK echo server (built on the MCP SDK; saturates by itself)"}
ERA = {"legacy": "2025-11-25", "modern": "2026-07-28"}


# ---- numbers ------------------------------------------------------------------------------------------


def num(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit in ("calls/s", "req/s"):
        return f"{value:,.0f}"
    if unit == "MiB":
        return f"{value:.1f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def by_id(results: dict[str, Any]) -> dict[str, Figure]:
    return {f["id"]: f for f in results.get("figures", [])}


# ---- aims ---------------------------------------------------------------------------------------------


def aims(results: dict[str, Any]) -> list[dict[str, str]]:
    """The issue's aims, each with what was measured and met / not met / not measured."""
    f = by_id(results)
    out: list[dict[str, str]] = []

    def add(aim: str, measured: str, met: bool | None) -> None:
        out.append({"aim": aim, "measured": measured,
                    "status": "not measured" if met is None else "met" if met else "not met"})

    added = []
    for era in ("legacy", "modern"):
        g, d = f.get(f"calls.tools10.{era}.c1"), f.get("calls.tools10.direct.c1")
        if g and d:
            added.append((era, g["median"] - d["median"], g["p99"] - d["p99"]))
    if added:
        add("gateway adds < 1 ms p50 and < 5 ms p99 to a tools/call (1 client, stdlib server)",
            "; ".join(f"{ERA[e]}: +{p50:.2f} ms p50, +{p99:.2f} ms p99" for e, p50, p99 in added),
            all(p50 < 1.0 and p99 < 5.0 for _, p50, p99 in added))
    else:
        add("gateway adds < 1 ms p50 and < 5 ms p99 to a tools/call (1 client, stdlib server)", "—", None)

    rates = [x for x in f.values() if x["id"].startswith("calls.tools10.") and x["id"].endswith(".rate")
             and x.get("path") == "gateway"]
    if rates:
        best = max(rates, key=lambda x: x["median"])
        add(">= 1,000 tools/call/s through the gateway (stdlib server)",
            f"{best['median']:,.0f} calls/s ({ERA[best['era']]}, {best['clients']} clients)", best["median"] >= 1000)
    else:
        add(">= 1,000 tools/call/s through the gateway (stdlib server)", "—", None)

    cold = [(k, f[f"startup.{k}.sandbox_net"]) for k in ("python", "node") if f"startup.{k}.sandbox_net" in f]
    if cold:
        add("cold start < 1.3x a plain process (full sandbox with network)",
            "; ".join(f"{k}: {x['ratio']:.2f}x ({x['median'] - x['baseline']['median']:+.0f} ms)" for k, x in cold),
            all(x["ratio"] is not None and x["ratio"] < 1.3 for _, x in cold))
    else:
        add("cold start < 1.3x a plain process (full sandbox with network)", "—", None)

    p, d = f.get("egress.keepalive.proxy"), f.get("egress.keepalive.direct")
    if p and d:
        add("proxy adds < 2 ms p50 (keep-alive)", f"+{p['median'] - d['median']:.2f} ms p50",
            p["median"] - d["median"] < 2.0)
    else:
        add("proxy adds < 2 ms p50 (keep-alive)", "—", None)

    o = f.get("memory.sandbox.overhead")
    if o:
        add("< 15 MiB RSS per idle sandbox beyond the server's own",
            f"{o['median']:.1f} MiB (at {o.get('live', '?')} live sandboxes)", o["median"] < 15.0)
    else:
        add("< 15 MiB RSS per idle sandbox beyond the server's own", "—", None)
    return out


# ---- Markdown -----------------------------------------------------------------------------------------


def figure_table(figures: Iterable[Figure]) -> list[str]:
    lines = ["| figure | median | p99 | n | baseline (same run) | baseline median | baseline p99 | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for x in figures:
        unit = x["unit"]
        b = x.get("baseline") or {}
        name = x["name"] + (f" ({x['note']})" if x.get("note") else "")
        lines.append(f"| {name} | {num(x['median'], unit)} {unit} | {num(x['p99'], unit)} | {x['n']} | "
                     f"{b.get('name', '—')} | {num(b.get('median'), unit)} | {num(b.get('p99'), unit)} | "
                     f"{ratio(x.get('ratio'))} |")
    return lines


def calls_table(figures: list[Figure], server: str) -> list[str]:
    """One row per client count: direct (the baseline), then each era with its ratios to direct."""
    f = {x["id"]: x for x in figures
         if x.get("server") == server and not x["id"].startswith(("calls.sdk.", "calls.path."))}
    clients = sorted({x["clients"] for x in f.values()})
    if not clients:
        return []
    head = "| clients | direct p50 / p99 (baseline) | direct calls/s |"
    rule = "|---|---|---|"
    for era in ERA.values():
        head += f" {era} p50 / p99 | added p50 | ratio p50 | {era} calls/s (ratio) |"
        rule += "---|---|---|---|"
    lines = [head, rule]
    for n in clients:
        d, dr = f.get(f"calls.{server}.direct.c{n}"), f.get(f"calls.{server}.direct.c{n}.rate")
        row = f"| {n} | {_pair(d)} | {num(dr['median'], 'calls/s') if dr else '—'} |"
        for era in ERA:
            g, gr = f.get(f"calls.{server}.{era}.c{n}"), f.get(f"calls.{server}.{era}.c{n}.rate")
            added = f"{g['median'] - d['median']:+.2f} ms" if g and d else "—"
            rate = f"{num(gr['median'], 'calls/s')} ({ratio(gr.get('ratio'))})" if gr else "—"
            errors = f", {g['errors']} errors" if g and g.get("errors") else ""
            row += f" {_pair(g)} | {added} | {ratio(g.get('ratio')) if g else '—'} | {rate}{errors} |"
        lines.append(row)
    return lines


def _pair(x: Figure | None) -> str:
    return "—" if x is None else f"{num(x['median'])} / {num(x['p99'])} ms"


def summary_markdown(results: dict[str, Any], image_prefix: str = "") -> str:
    """The summary: run facts, the aims, then every figure by group with its baseline and ratio.

    With `image_prefix` (where docs/img is from the page that shows it) each group links its plot.
    """
    m = results.get("machine", {})
    figures = results.get("figures", [])
    dirty = " (uncommitted changes)" if m.get("dirty") else ""
    lines = [
        f"Run of {m.get('date', '?')} at commit `{m.get('commit', '?')}`{dirty}"
        f", {results.get('mode', 'full')} mode: {m.get('cpus', '?')} CPUs, {m.get('mem_gib', '?')} GiB, kernel "
        f"{m.get('kernel', '?')}, Python {m.get('python', '?')}, Node {m.get('node', '?')}; load average "
        f"{m.get('load_start', '?')} at the start, {m.get('load_end', '?')} at the end. Wall time "
        f"{results.get('wall_s', 0):.0f} s. Medians and p99 of per-request times; every ratio is against a "
        "baseline measured in the same run (ratio = figure / baseline).",
        "",
    ]
    errors = {k: v["error"] for k, v in results.get("stages", {}).items() if v.get("error")}
    if errors:
        lines += ["**Stages that failed:** " + "; ".join(f"{k}: {v}" for k, v in errors.items()), ""]
    lines += ["### Aims", "", "| aim | measured | status |", "|---|---|---|"]
    lines += [f"| {a['aim']} | {a['measured']} | {a['status']} |" for a in aims(results)]
    lines.append("")
    for group, title in GROUPS:
        members = [x for x in figures if x["group"] == group]
        if not members:
            continue
        lines += [f"### {title}", ""]
        if group == "calls":
            lines += ["Light clients on both sides: direct is gigmcp's own stdio client with N concurrent callers "
                      "on one plain server process; the gateway is driven by raw HTTP POSTs (one session per "
                      "client in 2025-11-25, stateless requests in 2026-07-28), the gateway in its own process. "
                      "Latency is per call while N clients call in a loop.", ""]
            for server, label in CALL_SERVERS.items():
                table = calls_table(members, server)
                if table:
                    lines += [f"{label}:", "", *table, ""]
            sdk = [x for x in members if x["id"].startswith("calls.sdk.")]
            if sdk:
                lines += ["One `mcp` SDK client, sequential calls:", "", *figure_table(sdk), ""]
            fast = [x for x in members if x["id"].startswith("calls.path.")]
            if fast:
                lines += ["The fast path against the SDK's transport (`GIG_FAST_PATH=false`), one client calling in "
                          "a loop; the gateway's CPU per call is read from /proc (it does not count waiting for a "
                          "core, so it holds on a busy machine):", "", *figure_table(fast), ""]
        else:
            if group == "egress":
                lines += ["The Node rows are the proxy-unaware-client path: Node's fetch() ignores HTTPS_PROXY and "
                          "reaches the proxy through the undici preload every networked sandbox gets. There is no "
                          "transparent interception, by design (docs/architecture.md).", ""]
            lines += [*figure_table(members), ""]
        plotted = results.get("_plotted")
        if image_prefix and group in PLOTS and (plotted is None or group in plotted):
            file, alt = PLOTS[group]
            lines += [f"![{alt}]({image_prefix}{file})", ""]
    cleanup = results.get("cleanup")
    if cleanup:
        lines += [f"Clean-up check after the run: {cleanup.get('summary', '')}", ""]
    return "\n".join(lines).rstrip() + "\n"


def replace_section(page: str, body: str) -> str:
    """`page` with the text between the bench markers replaced by `body` (markers appended if missing)."""
    block = f"{START}\n{body.rstrip()}\n{END}"
    if START in page and END in page:
        return re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _m: block, page, count=1, flags=re.S)
    return page.rstrip() + "\n\n## Latest run (`sudo bench/run`)\n\n" + block + "\n"


# ---- plots --------------------------------------------------------------------------------------------


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_calls(figs: dict[str, Figure], path: Path) -> bool:
    servers = [s for s in CALL_SERVERS if any(k.startswith(f"calls.{s}.") for k in figs)]
    if not servers:
        return False
    plt = _plt()
    fig, axes = plt.subplots(2, len(servers), figsize=(6 * len(servers), 8), squeeze=False)
    for col, server in enumerate(servers):
        lat, thr = axes[0][col], axes[1][col]
        for path_key, label, color in (("direct", "direct stdio", "tab:gray"), ("legacy", "gateway 2025-11-25",
                                       "tab:blue"), ("modern", "gateway 2026-07-28", "tab:orange")):
            pts = sorted((x["clients"], x) for k, x in figs.items()
                         if k.startswith(f"calls.{server}.{path_key}.c") and not k.endswith(".rate"))
            if not pts:
                continue
            xs = [c for c, _ in pts]
            lat.plot(xs, [x["median"] for _, x in pts], "o-", color=color, label=f"{label} p50")
            lat.plot(xs, [x["p99"] for _, x in pts], "--", color=color, alpha=0.6, label=f"{label} p99")
            rates = sorted((x["clients"], x["median"]) for k, x in figs.items()
                           if k.startswith(f"calls.{server}.{path_key}.c") and k.endswith(".rate"))
            thr.plot([c for c, _ in rates], [r for _, r in rates], "o-", color=color, label=label)
        lat.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="ms per call",
                title=f"tools/call latency, {CALL_SERVERS[server].split(' (')[0]}")
        thr.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="calls/s", title="throughput")
        thr.axhline(1000, color="tab:green", linestyle=":", label="aim: 1,000 calls/s")
        for ax in (lat, thr):
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _bars(ax: Any, items: list[tuple[str, Figure]], title: str, unit: str) -> None:
    labels = [label for label, _ in items]
    med = [x["median"] for _, x in items]
    p99 = [x["p99"] if x["p99"] is not None else x["median"] for _, x in items]
    ys = range(len(items))
    if any(x["p99"] is not None for _, x in items):
        ax.barh(ys, p99, color="tab:blue", alpha=0.25, label="p99")
    ax.barh(ys, med, color="tab:blue", label="median")
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel=unit, title=title)
    ax.grid(True, axis="x", alpha=0.3)
    if any(x["p99"] is not None for _, x in items):
        ax.legend(fontsize=7)


def plot_bar_groups(panels: list[tuple[str, str, list[tuple[str, str]]]], figs: dict[str, Figure], path: Path) -> bool:
    """One horizontal bar panel per (title, unit, [(label, figure id)]), for the figures that exist."""
    present = [(t, u, [(lbl, figs[i]) for lbl, i in items if i in figs]) for t, u, items in panels]
    present = [p for p in present if p[2]]
    if not present:
        return False
    plt = _plt()
    fig, axes = plt.subplots(len(present), 1, figsize=(9, 2.2 + 0.45 * sum(len(p[2]) for p in present)),
                             squeeze=False)
    for ax, (title, unit, items) in zip((a[0] for a in axes), present, strict=True):
        _bars(ax, items, title, unit)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_startup(figs: dict[str, Figure], path: Path) -> bool:
    panels = [(f"cold start, {kind} server", "ms", [("plain process", f"startup.{kind}.plain"),
                                                     ("sandbox, no network", f"startup.{kind}.sandbox"),
                                                     ("sandbox + veth + proxy", f"startup.{kind}.sandbox_net")])
              for kind in ("python", "node")]
    panels.append(("warm spawn, stdlib server", "ms", [("plain process", "startup.warm.plain"),
                                                       ("sandbox, no network", "startup.warm.nonet"),
                                                       ("sandbox with veth", "startup.warm.net"),
                                                       ("veth setup alone", "startup.warm.veth_setup")]))
    return plot_bar_groups(panels, figs, path)


def plot_egress(figs: dict[str, Figure], path: Path) -> bool:
    return plot_bar_groups([
        ("HTTPS request latency", "ms", [("keep-alive, direct", "egress.keepalive.direct"),
                                         ("keep-alive, proxy", "egress.keepalive.proxy"),
                                         ("new connection, direct", "egress.newconn.direct"),
                                         ("new connection, proxy", "egress.newconn.proxy")]),
        ("Node fetch() (proxy-unaware client path)", "ms", [("direct", "egress.node.direct"),
                                                            ("undici preload -> proxy", "egress.node.preload")]),
    ], figs, path)


def plot_memory(figs: dict[str, Figure], path: Path) -> bool:
    return plot_bar_groups([
        ("gateway process", "MiB", [("RSS idle", "memory.gateway.idle.rss"),
                                    ("RSS with the live sandboxes", "memory.gateway.live.rss"),
                                    ("PSS idle", "memory.gateway.idle.pss"),
                                    ("PSS with the live sandboxes", "memory.gateway.live.pss")]),
        ("per idle sandbox", "MiB", [("server run plain: RSS", "memory.server.plain.rss"),
                                     ("sandbox (bwrap + pid 1 + server): RSS", "memory.sandbox.rss"),
                                     ("beyond the server's own: RSS", "memory.sandbox.overhead"),
                                     ("server run plain: PSS", "memory.server.plain.pss"),
                                     ("sandbox: PSS", "memory.sandbox.pss"),
                                     ("machine-wide, per sandbox", "memory.machine.per_sandbox")]),
    ], figs, path)


def plot_scaling(figs: dict[str, Figure], path: Path) -> bool:
    prof = sorted((x["profiles"], k.rsplit(".", 1)[1], x) for k, x in figs.items()
                  if k.startswith("scaling.profiles."))
    tools = [(k, x) for k, x in figs.items() if k.startswith("scaling.tools.") and x["unit"] == "ms"]
    if not prof and not tools:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    lat, mem, tl = axes
    for kind, color in (("call", "tab:blue"), ("list", "tab:orange")):
        pts = [(n, x) for n, k, x in prof if k == kind]
        if pts:
            lat.plot([n for n, _ in pts], [x["median"] for _, x in pts], "o-", color=color, label=f"tools/{kind} p50")
            lat.plot([n for n, _ in pts], [x["p99"] for _, x in pts], "--", color=color, alpha=0.6,
                     label=f"tools/{kind} p99")
    lat.set(xscale="log", xlabel="profiles (each with one sandboxed server)", ylabel="ms",
            title="latency through the gateway vs profiles")
    pts = [(n, x) for n, k, x in prof if k == "rss"]
    if pts:
        mem.plot([n for n, _ in pts], [x["median"] for _, x in pts], "o-", color="tab:purple", label="gateway RSS")
    if "memory.gateway.idle.rss" in figs:
        mem.axhline(figs["memory.gateway.idle.rss"]["median"], color="tab:gray", linestyle=":", label="idle")
    mem.set(xscale="log", xlabel="profiles", ylabel="MiB", ylim=(0, None), title="gateway RSS vs profiles")
    labels, gw_vals, direct_vals = [], [], []
    for count in sorted({x["tools"] for _, x in tools}):
        for kind in ("call", "list"):
            g, d = figs.get(f"scaling.tools.{count}.{kind}"), figs.get(f"scaling.tools.{count}.{kind}.direct")
            if g and d:
                labels.append(f"tools/{kind}\n{count} tools")
                gw_vals.append(g["median"])
                direct_vals.append(d["median"])
    xs = range(len(labels))
    tl.bar([i - 0.2 for i in xs], direct_vals, 0.4, color="tab:gray", label="direct stdio p50")
    tl.bar([i + 0.2 for i in xs], gw_vals, 0.4, color="tab:blue", label="gateway p50")
    tl.set_xticks(list(xs), labels, fontsize=8)
    tl.set(yscale="log", ylabel="ms", title="10 vs 1,000 tools")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


PLOTTERS: dict[str, Callable[[dict[str, Figure], Path], bool]] = {
    "calls": plot_calls, "startup": plot_startup, "egress": plot_egress, "scaling": plot_scaling,
    "memory": plot_memory,
}


# ---- writers ------------------------------------------------------------------------------------------


def write_all(results: dict[str, Any], out_dir: Path, *, docs: bool) -> list[Path]:
    """latest.json, summary.md and the plots in `out_dir`; with `docs`, the plots go to docs/img and the
    summary into docs/performance.md between the markers."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    (out_dir / "latest.json").write_text(json.dumps(results, indent=1) + "\n")
    written.append(out_dir / "latest.json")
    img_dir = DOCS_IMG if docs else out_dir
    img_dir.mkdir(parents=True, exist_ok=True)
    figs = by_id(results)
    plotted = set()
    for group, plotter in PLOTTERS.items():
        if plotter(figs, img_dir / PLOTS[group][0]):
            plotted.add(group)
            written.append(img_dir / PLOTS[group][0])
    rel = "../../docs/img/" if docs else "./"
    summary = "# gigmcp benchmark summary (`bench/run`)\n\n" + summary_markdown(
        {**results, "_plotted": sorted(plotted)}, image_prefix=rel)
    (out_dir / "summary.md").write_text(summary)
    written.append(out_dir / "summary.md")
    if docs and DOCS_PAGE.exists():
        body = summary_markdown({**results, "_plotted": sorted(plotted)}, image_prefix="img/")
        DOCS_PAGE.write_text(replace_section(DOCS_PAGE.read_text(), body))
        written.append(DOCS_PAGE)
    return written


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Write summary.md and the plots again from a results JSON")
    ap.add_argument("results", type=Path, help="e.g. bench/results/latest.json")
    ap.add_argument("--docs", action="store_true", help="also update docs/img and docs/performance.md")
    a = ap.parse_args()
    for p in write_all(json.loads(a.results.read_text()), a.results.parent, docs=a.docs):
        print(f"wrote {p}")
