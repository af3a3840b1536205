"""Cold start and warm spawn: spawn to the first `tools/list` answer, sandboxed against plain.

- Cold start, for a Python server (echo, on the MCP SDK) and a Node server (the npm reference server
  `everything`): plain process; sandbox without network; the full production path (sandbox, veth into
  its netns, proxy policy bound, Node's proxy preload mounted). Baseline: the plain process.
- Warm spawn with the veth: the standard-library server (its own start is a bare Python start, so the
  layers show) with the network machinery already up (firewall table, address pool, proxy process),
  against the same spawn without network. The veth setup alone is reported too.
Runs of the variants are interleaved, so load on the machine spreads over all of them alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.common import BUNDLED_REGISTRY, DATA_DIR, Progress, bench_config, ensure_installed
from bench.stats import Figure, latency_figure, series
from gateway.backends import SANDBOX_ENV, SandboxSettings, build_spec
from gateway.installer import InstalledLayout
from gateway.manifest import Manifest
from gateway.mcp.backend import BackendSession
from gateway.sandbox_net import EgressSettings, SandboxNetworking, policy_for
from sandbox.process import SandboxError, spawn
from tests.support.gateway import free_port

GROUP = "startup"


@dataclass(frozen=True, slots=True)
class StartupSizes:
    cold_runs: int = 8
    warm_runs: int = 20
    seconds: float = 60.0  # per series group, at most


QUICK = StartupSizes(cold_runs=3, warm_runs=6, seconds=20.0)


async def _first_list(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> BackendSession:
    session = BackendSession(name, reader, writer)
    await session.start(timeout=60)
    await session.request("tools/list", None, timeout=60)
    return session


async def plain_start(manifest: Manifest, layout: InstalledLayout) -> float:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *layout.resolve_command(manifest), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, limit=2**24, cwd=str(layout.root),
        env={"PATH": "/usr/bin:/bin", **SANDBOX_ENV, **manifest.env})
    assert proc.stdout and proc.stdin
    session = await _first_list(proc.stdout, proc.stdin, "plain")
    elapsed = time.perf_counter() - t0
    await session.aclose()
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()
    return elapsed


class Spawner:
    """Sandboxed spawns the way `gateway.backends.BackendFactory` does them, with or without network."""

    def __init__(self, networking: SandboxNetworking) -> None:
        config = bench_config()
        self.settings = SandboxSettings(config.sandbox_uid, config.sandbox_gid, 60.0,
                                        node_runtime_dir=config.node_runtime_dir)
        self.net = networking
        self.count = 0
        # (manifest name, network) -> CFS periods in which the cgroup's CPU quota stopped the start
        self.throttled: dict[tuple[str, bool], list[int]] = {}
        self.failures: list[str] = []

    async def start(self, manifest: Manifest, layout: InstalledLayout, network: bool) -> float:
        """Time to the first tools/list answer. A spawn that fails is retried (twice at most) and counted:
        under heavy load bwrap occasionally fails to set up the loopback of a new netns."""
        for attempt in range(3):
            try:
                return await self._start(manifest, layout, network)
            except SandboxError as exc:
                self.failures.append(str(exc)[:200])
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _start(self, manifest: Manifest, layout: InstalledLayout, network: bool) -> float:
        self.count += 1
        sandbox_id = f"bench-{manifest.name}-{self.count}"
        plan = self.net.reserve() if network else None
        spec = build_spec(manifest, layout, self.settings, sandbox_id, plan, self.net.ca_pem if plan else b"")

        async def attach(child_pid: int) -> None:
            assert plan is not None
            policy = policy_for(manifest, sandbox_id=sandbox_id, profile="bench", user="bench",
                                settings=self.net.settings)
            await self.net.attach(plan, child_pid, policy)

        t0 = time.perf_counter()
        try:
            proc = await spawn(spec, before_release=attach if plan else None)
            try:
                assert proc.stdout and proc.stdin
                session = await _first_list(proc.stdout, proc.stdin, sandbox_id)
                elapsed = time.perf_counter() - t0
                stats = proc.cgroup_stats()
                if stats is not None and stats.cpu_throttled is not None:
                    self.throttled.setdefault((manifest.name, network), []).append(stats.cpu_throttled)
                await session.aclose()
            finally:
                await proc.terminate(grace=0.5)
        finally:
            if plan is not None:
                await self.net.detach(plan)
        return elapsed


def throttling(spawner: Spawner, name: str, network: bool, cpu_percent: int) -> dict[str, Any]:
    """The median number of CFS periods the sandbox's CPU quota (the manifest's `cpu_percent`) stopped the
    server during its start; a note when it did (a multi-threaded start, e.g. Node's, can exceed one core)."""
    counts = spawner.throttled.get((name, network), [])
    median = int(statistics.median(counts)) if counts else 0
    note = (f"the CPU quota ({cpu_percent}% of a core) throttled the start in {median} scheduler periods "
            "(median)") if median else ""
    return {"cpu_throttled_periods": median, "note": note}


async def interleaved(variants: dict[str, Callable[[], Awaitable[float]]], runs: int, seconds: float
                      ) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in variants}
    for start in variants.values():  # warm-up: page cache, the first cgroup, the proxy's first bind
        await start()
    deadline = time.perf_counter() + seconds
    for _ in range(runs):
        if time.perf_counter() > deadline:
            break
        for key, start in variants.items():
            out[key].append(await start())
    return out


@contextlib.asynccontextmanager
async def networking() -> AsyncIterator[SandboxNetworking]:
    workdir = DATA_DIR / f"bench-egress-{free_port()}"
    net = SandboxNetworking(EgressSettings(subnet="10.97.0.0/16", proxy_port=free_port(), if_prefix="gbs"),
                            secret_resolver=None, audit_sink=None, workdir=workdir)
    try:
        await net.start()
        yield net
    finally:
        await net.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def run(sizes: StartupSizes, say: Progress) -> list[Figure]:
    figures: list[Figure] = []
    servers = {"python": await ensure_installed("echo"),
               "node": await ensure_installed("everything", BUNDLED_REGISTRY),
               "stdlib": await ensure_installed("tools10")}
    labels = {"python": "Python server (echo, MCP SDK)", "node": "Node server (npm everything)"}
    async with networking() as net:
        spawner = Spawner(net)
        for kind in ("python", "node"):
            manifest, layout = servers[kind]
            res = await interleaved({
                "plain": functools.partial(plain_start, manifest, layout),
                "sandbox": functools.partial(spawner.start, manifest, layout, network=False),
                "sandbox_net": functools.partial(spawner.start, manifest, layout, network=True),
            }, sizes.cold_runs, sizes.seconds)
            plain = latency_figure(f"startup.{kind}.plain", GROUP, f"{labels[kind]}: plain process", res["plain"],
                                   server=manifest.name)
            figures.append(plain)
            figures.append(latency_figure(f"startup.{kind}.sandbox", GROUP, f"{labels[kind]}: sandbox, no network",
                                          res["sandbox"], baseline=plain, server=manifest.name,
                                          **throttling(spawner, manifest.name, False, manifest.limits.cpu_percent)))
            figures.append(latency_figure(
                f"startup.{kind}.sandbox_net", GROUP, f"{labels[kind]}: sandbox + veth + proxy policy (production)",
                res["sandbox_net"], baseline=plain, server=manifest.name,
                **throttling(spawner, manifest.name, True, manifest.limits.cpu_percent)))
            p50 = {k: series(v)["median"] for k, v in res.items()}
            say(f"{kind} cold start p50: plain {p50['plain']:.0f} ms, sandbox {p50['sandbox']:.0f} ms, with network "
                f"{p50['sandbox_net']:.0f} ms")
        manifest, layout = servers["stdlib"]
        net.net.setup_seconds.clear()
        res = await interleaved({
            "plain": lambda: plain_start(manifest, layout),
            "nonet": lambda: spawner.start(manifest, layout, network=False),
            "net": lambda: spawner.start(manifest, layout, network=True),
        }, sizes.warm_runs, sizes.seconds)
        plain = latency_figure("startup.warm.plain", GROUP, "stdlib server: plain process", res["plain"],
                               server=manifest.name)
        nonet = latency_figure("startup.warm.nonet", GROUP, "stdlib server: warm sandbox spawn, no network",
                               res["nonet"], baseline=plain, server=manifest.name)
        withnet = latency_figure("startup.warm.net", GROUP, "stdlib server: warm sandbox spawn with veth",
                                 res["net"], baseline=nonet, server=manifest.name)
        attach = latency_figure("startup.warm.veth_setup", GROUP, "veth setup alone (inside the spawn above)",
                                list(net.net.setup_seconds), note="host end, peer born in the sandbox netns, "
                                "addresses, IPv6 off")
        figures += [plain, nonet, withnet, attach]
        if spawner.failures:
            say(f"{len(spawner.failures)} sandbox spawn(s) failed and were retried, e.g. {spawner.failures[0]}")
            for f in figures:
                f["spawn_failures_retried"] = len(spawner.failures)
        say(f"warm spawn p50: plain {plain['median']:.0f} ms, sandbox {nonet['median']:.0f} ms, with veth "
            f"{withnet['median']:.0f} ms (veth setup {attach['median']:.1f} ms)")
    return figures
