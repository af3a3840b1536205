"""Memory readings: the gateway process, the live sandboxes' process trees, the same server run plain.

RSS and PSS come from /proc/<pid>/smaps_rollup. A sandbox's processes are bwrap (outside), bwrap's
pid 1 inside and the server; their sum against the same server run plain is the sandbox's cost beyond
the server's own. PSS splits pages shared between processes (the Python binary and libraries are
shared by all 200 servers), so per-sandbox PSS is much lower than RSS; both are reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from dataclasses import dataclass

from bench.common import ensure_installed
from bench.stats import rss_pss, tree, tree_rss_pss
from gateway.backends import SANDBOX_ENV
from gateway.mcp.backend import BackendSession
from sandbox.process import children
from tests.support.gateway import Gateway


@dataclass(frozen=True, slots=True)
class ProcMem:
    rss: int
    pss: int


@dataclass(frozen=True, slots=True)
class SandboxMem:
    count: int
    total: ProcMem  # every process of every sandbox
    per_sandbox: ProcMem  # mean of the per-sandbox sums
    wrappers: ProcMem  # mean per sandbox of what is not the server (bwrap outside, its pid 1 inside)
    cgroup_median: int  # memory charged to a sandbox's cgroup (includes page cache)


def gateway_mem(gw: Gateway) -> ProcMem:
    assert gw.proc is not None
    return ProcMem(*rss_pss(gw.proc.pid))


def sandbox_mem(gw: Gateway) -> SandboxMem:
    live = [s for s in gw.sandboxes() if s.get("state") == "running" and s.get("pid")]
    per: list[tuple[int, int]] = []
    wrap: list[tuple[int, int]] = []
    for s in live:
        pids = tree(int(s["pid"]))
        per.append(tree_rss_pss(pids))
        leaves = [p for p in pids if not _has_children(p, pids)]
        wrap.append(tree_rss_pss(p for p in pids if p not in leaves))
    n = max(1, len(per))
    cgroups = [int(s.get("memory_bytes") or 0) for s in live]
    return SandboxMem(
        count=len(per),
        total=ProcMem(sum(r for r, _ in per), sum(p for _, p in per)),
        per_sandbox=ProcMem(sum(r for r, _ in per) // n, sum(p for _, p in per) // n),
        wrappers=ProcMem(sum(r for r, _ in wrap) // n, sum(p for _, p in wrap) // n),
        cgroup_median=int(statistics.median(cgroups)) if cgroups else 0,
    )


def _has_children(pid: int, pids: list[int]) -> bool:
    return any(k in pids for k in children(pid))


async def plain_server_mem(server: str) -> ProcMem:
    """RSS/PSS of the server run plain, after it answered `tools/list` (as idle as a sandboxed one)."""
    manifest, layout = await ensure_installed(server)
    proc = await asyncio.create_subprocess_exec(
        *layout.resolve_command(manifest), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, limit=2**24, cwd=str(layout.root),
        env={"PATH": "/usr/bin:/bin", **SANDBOX_ENV, **manifest.env})
    assert proc.stdout and proc.stdin
    session = BackendSession("plain", proc.stdout, proc.stdin)
    try:
        await session.start(timeout=30)
        await session.request("tools/list", None, timeout=30)
        await asyncio.sleep(0.2)
        return ProcMem(*tree_rss_pss(tree(proc.pid)))
    finally:
        await session.aclose()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
