"""`bench/run`: every benchmark in one process tree, then latest.json, summary.md, plots and the docs section.

Stages run one after another (calls, startup, egress, scaling); a stage that fails is recorded and the
others still run. Every loop inside is bounded by count and time; the default sizes keep a full run
under 10 minutes on a 2-core machine, `--quick` is a smoke run of about 2 minutes. Nothing asserts a
time: the output is figures with same-run baselines. At the end it checks that nothing was left behind
(child processes, veths and nftables tables of this run's sandbox networks).

A full run writes bench/results/{latest.json,summary.md}, docs/img/bench-*.png and the section of
docs/performance.md between the bench:summary markers; a quick or partial run writes only to
bench/results/quick/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from bench import calls, egress, scaling, startup
from bench.common import NET_PREFIXES, REPO, Progress
from bench.report import write_all
from bench.stats import Figure, tree

STAGES = ("calls", "startup", "egress", "scaling")
RESULTS = REPO / "bench" / "results"


def machine_info() -> dict[str, Any]:
    def cmd(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=REPO).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    with open("/proc/meminfo", encoding="ascii") as fh:
        mem_kib = int(fh.readline().split()[1])
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": cmd("git", "rev-parse", "--short=12", "HEAD") or "?",
        "dirty": bool(cmd("git", "status", "--porcelain", "--untracked-files=no")),
        "cpus": os.cpu_count(),
        "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": cmd("node", "--version") or "none",
        "load_start": round(os.getloadavg()[0], 1),
    }


def links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


def nft_tables() -> list[str]:
    if shutil.which("nft") is None:
        return []
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10).stdout
    return [line.split()[-1] for line in out.splitlines() if line.startswith("table")]


def leftovers() -> dict[str, Any]:
    """What this run may have left behind: its own child processes, its sandbox veths and firewall tables."""
    kids = [p for p in tree(os.getpid()) if p != os.getpid()]
    mine = tuple(NET_PREFIXES)
    veths = [name for name in links() if name.startswith(mine)]
    tables = [t for t in nft_tables() if t.startswith("gigmcp_") and t.removeprefix("gigmcp_").startswith(mine)]
    ok = not kids and not veths and not tables
    return {"processes": kids, "veths": veths, "nft_tables": tables, "ok": ok,
            "summary": ("nothing left behind (no child process, veth or nftables table of this run)" if ok else
                        f"LEFT BEHIND: {len(kids)} processes, veths {veths[:10]}, tables {tables}")}


def stage_fns(quick: bool) -> dict[str, Callable[[Progress], Awaitable[list[Figure]]]]:
    return {
        "calls": lambda say: calls.run(calls.QUICK if quick else calls.CallSizes(), say),
        "startup": lambda say: startup.run(startup.QUICK if quick else startup.StartupSizes(), say),
        "egress": lambda say: egress.run(egress.QUICK if quick else egress.EgressSizes(), say),
        "scaling": lambda say: scaling.run(scaling.QUICK if quick else scaling.ScalingSizes(), say),
    }


async def run_stages(names: list[str], quick: bool, say: Progress) -> tuple[list[Figure], dict[str, Any]]:
    figures: list[Figure] = []
    stages: dict[str, Any] = {}
    fns = stage_fns(quick)
    for name in names:
        say.stage = name
        say("start")
        t0 = time.monotonic()
        error = ""
        try:
            got = await fns[name](say)
            figures += got
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            traceback.print_exc()
            say(f"FAILED: {error}")
        stages[name] = {"seconds": round(time.monotonic() - t0, 1), "error": error}
        say(f"done in {stages[name]['seconds']:.0f}s ({len([f for f in figures if f['group'] == name])} figures)")
    say.stage = ""
    return figures, stages


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/run", description="Run every gigmcp benchmark (as root) and write "
                                 "bench/results/latest.json, summary.md, plots and the docs/performance.md section.")
    ap.add_argument("--quick", action="store_true", help="a ~2 minute smoke run (small sizes; results go to "
                    "bench/results/quick/, the docs are left alone)")
    ap.add_argument("--only", default="", help=f"comma-separated stages to run, of {','.join(STAGES)} (a partial run "
                    "writes to bench/results/quick/)")
    ap.add_argument("--no-docs", action="store_true", help="do not touch docs/ even on a full run")
    ap.add_argument("--check", action="store_true", help="check the arguments and imports, print the plan, run nothing")
    args = ap.parse_args(argv)
    names = [s for s in args.only.split(",") if s] or list(STAGES)
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        ap.error(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    args.stages = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    full = not args.quick and args.stages == list(STAGES)
    out_dir = RESULTS if full else RESULTS / "quick"
    docs = full and not args.no_docs
    plan = (f"stages {', '.join(args.stages)}; {'quick' if args.quick else 'full'} sizes; results to "
            f"{out_dir.relative_to(REPO)}{'; docs updated' if docs else ''}")
    if args.check:
        print(f"bench/run --check: {plan}")
        return 0
    if os.geteuid() != 0:
        print("bench/run: run as root (sandboxes run as another uid; veths and nftables need root)", file=sys.stderr)
        return 2
    say = Progress()
    say(plan)
    info = machine_info()
    figures, stages = asyncio.run(run_stages(args.stages, args.quick, say))
    info["load_end"] = round(os.getloadavg()[0], 1)
    cleanup = leftovers()
    say(f"clean-up check: {cleanup['summary']}")
    results = {"machine": info, "mode": "quick" if args.quick else "full", "wall_s": round(say.elapsed(), 1),
               "stages": stages, "figures": figures, "cleanup": cleanup}
    written = write_all(results, out_dir, docs=docs)
    for path in written:
        say(f"wrote {path.relative_to(REPO)}")
    say(f"total {say.elapsed():.0f}s")
    failed = [k for k, v in stages.items() if v["error"]]
    return 1 if failed or not cleanup["ok"] else 0


if __name__ == "__main__":
    sys.exit(main())
