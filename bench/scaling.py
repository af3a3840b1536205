"""How the figures grow with profiles and tools, and the memory of many live sandboxes.

One gateway (with the standard-library servers `tools10` and `tools1000` installed):
1. idle: gateway RSS/PSS right after start, nothing spawned;
2. tools: a profile with a 10-tool server, one with a 1,000-tool server: tools/call and tools/list
   latency through the gateway against the same server called directly, and gateway RSS;
3. profiles: 1, 10, 100, 200, 500 profiles, each with `tools10` and touched once (so each had a live
   sandbox; above GIG_MAX_SANDBOXES=200 the least recently used are evicted). At each size, tools/call
   and tools/list latency on the most recently used profiles (round robin over up to 100, all live) and
   gateway RSS; baseline: the 1-profile figure;
4. memory at 200 live sandboxes: gateway RSS, RSS/PSS per idle sandbox against the same server run
   plain, and what the machine as a whole uses more (kernel objects included).
Requests use the stateless 2026-07-28 era, so moving between profiles costs no session set-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.common import TOKEN, Progress, ensure_installed, gateway
from bench.mcpclient import RawMcp
from bench.memory import ProcMem, gateway_mem, plain_server_mem, sandbox_mem
from bench.stats import MIB, Figure, figure, latency_figure, mem_used, series
from gateway.backends import SANDBOX_ENV
from gateway.mcp.backend import BackendSession
from tests.support.gateway import Gateway

GROUP_SCALING = "scaling"
GROUP_MEMORY = "memory"


@dataclass(frozen=True, slots=True)
class ScalingSizes:
    profiles: tuple[int, ...] = (1, 10, 100, 200, 500)
    memory_at: int = 200  # the profile count at which the memory figures are taken (all live)
    tools: tuple[int, ...] = (10, 1000)
    calls: int = 300  # per latency series, at most
    lists: int = 100
    seconds: float = 3.0  # per latency series, at most
    window: int = 100  # profiles the latency series rotate over
    concurrency: int = 8  # for creating and touching profiles
    budget_s: float = 240.0  # the profile sweep stops growing once it ran this long


QUICK = ScalingSizes(profiles=(1, 10, 40), memory_at=40, calls=100, lists=30, seconds=1.0, window=40, budget_s=60.0)


async def timed(op: Callable[[int], Awaitable[Any]], count: int, seconds: float) -> list[float]:
    out: list[float] = []
    deadline = time.perf_counter() + seconds
    for i in range(count):
        if time.perf_counter() > deadline and len(out) >= 5:
            break
        t0 = time.perf_counter()
        await op(i)
        out.append(time.perf_counter() - t0)
    return out


async def bounded(items: list[Any], fn: Callable[[Any], Awaitable[Any]], concurrency: int) -> None:
    queue = list(reversed(items))

    async def worker() -> None:
        while queue:
            await fn(queue.pop())

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class Api:
    def __init__(self, http: aiohttp.ClientSession, gw: Gateway) -> None:
        self.http, self.gw = http, gw
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    async def call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201, 204)) -> Any:
        async with self.http.request(method, self.gw.url + path, json=body, headers=self.headers) as r:
            data = await r.read()
            if r.status not in expect:
                raise RuntimeError(f"{method} {path}: HTTP {r.status} {data[:200]!r}")
        return data

    async def profile(self, slug: str, server: str) -> None:
        await self.call("POST", "/api/profiles", {"slug": slug})
        await self.call("PUT", f"/api/profiles/{slug}/servers/{server}")


def client(http: aiohttp.ClientSession, gw: Gateway, slug: str) -> RawMcp:
    return RawMcp(http, f"{gw.url}/mcp/p/{slug}", TOKEN, "modern")


async def call_and_list(http: aiohttp.ClientSession, gw: Gateway, slugs: list[str], server: str,
                        sizes: ScalingSizes) -> tuple[list[float], list[float]]:
    clients = [client(http, gw, s) for s in slugs]
    for c in clients:  # warm: every one of them is live and has its list cached
        await c.request("tools/list")
    calls = await timed(lambda i: clients[i % len(clients)].call(f"{server}_echo", {"message": "x"}),
                        sizes.calls, sizes.seconds)
    lists = await timed(lambda i: clients[i % len(clients)].request("tools/list"), sizes.lists, sizes.seconds)
    return calls, lists


async def direct_call_and_list(server: str, sizes: ScalingSizes) -> tuple[list[float], list[float]]:
    manifest, layout = await ensure_installed(server)
    proc = await asyncio.create_subprocess_exec(
        *layout.resolve_command(manifest), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, limit=2**24, cwd=str(layout.root),
        env={"PATH": "/usr/bin:/bin", **SANDBOX_ENV, **manifest.env})
    assert proc.stdout and proc.stdin
    session = BackendSession("direct", proc.stdout, proc.stdin)
    try:
        await session.start(timeout=30)
        await session.request("tools/list", None, timeout=30)
        calls = await timed(lambda _i: session.request("tools/call", {"name": "echo", "arguments": {"message": "x"}},
                                                       timeout=30), sizes.calls, sizes.seconds)
        lists = await timed(lambda _i: session.request("tools/list", None, timeout=30), sizes.lists, sizes.seconds)
    finally:
        await session.aclose()
        proc.kill()
        await proc.wait()
    return calls, lists


def mem_figure(fid: str, group: str, name: str, value: int, baseline: Figure | None = None, **extra: Any) -> Figure:
    return figure(fid, group, name, "MiB", median=value / MIB, baseline=baseline, **extra)


async def tools_stage(http: aiohttp.ClientSession, gw: Gateway, api: Api, sizes: ScalingSizes, idle_rss: Figure,
                      say: Progress) -> list[Figure]:
    figures: list[Figure] = []
    for count in sizes.tools:
        server, slug = f"tools{count}", f"t{count}"
        d_calls, d_lists = await direct_call_and_list(server, sizes)
        await api.profile(slug, server)
        calls, lists = await call_and_list(http, gw, [slug], server, sizes)
        dc = latency_figure(f"scaling.tools.{count}.call.direct", GROUP_SCALING,
                            f"tools/call, server with {count} tools: direct stdio", d_calls, tools=count, path="direct")
        dl = latency_figure(f"scaling.tools.{count}.list.direct", GROUP_SCALING,
                            f"tools/list, server with {count} tools: direct stdio", d_lists, tools=count, path="direct")
        figures += [dc, dl]
        figures.append(latency_figure(f"scaling.tools.{count}.call", GROUP_SCALING,
                                      f"tools/call, server with {count} tools: gateway", calls, baseline=dc,
                                      tools=count, path="gateway"))
        figures.append(latency_figure(f"scaling.tools.{count}.list", GROUP_SCALING,
                                      f"tools/list, server with {count} tools: gateway", lists, baseline=dl,
                                      tools=count, path="gateway"))
        figures.append(mem_figure(f"scaling.tools.{count}.rss", GROUP_SCALING,
                                  f"gateway RSS with a {count}-tool server live", gateway_mem(gw).rss,
                                  baseline=idle_rss, tools=count))
        say(f"{count} tools: tools/call p50 {series(calls)['median']:.2f} ms (direct {dc['median']:.2f}), "
            f"tools/list p50 {series(lists)['median']:.2f} ms (direct {dl['median']:.2f})")
    for count in sizes.tools:  # their sandboxes stop with them: the memory figures count only the sweep's
        await api.call("DELETE", f"/api/profiles/t{count}")
    return figures


async def memory_figures(gw: Gateway, live_target: int, idle_rss: Figure, idle_pss: Figure, used_before: int,
                         plain: ProcMem) -> list[Figure]:
    sm = sandbox_mem(gw)
    g = gateway_mem(gw)
    n = sm.count
    label = f"{n} live sandboxes"
    plain_rss = mem_figure("memory.server.plain.rss", GROUP_MEMORY, "the same server run plain: RSS", plain.rss)
    plain_pss = mem_figure("memory.server.plain.pss", GROUP_MEMORY, "the same server run plain: PSS", plain.pss)
    per_rss = mem_figure("memory.sandbox.rss", GROUP_MEMORY, f"RSS per idle sandbox (bwrap + pid 1 + server), {label}",
                         sm.per_sandbox.rss, baseline=plain_rss, live=n)
    return [
        mem_figure("memory.gateway.live.rss", GROUP_MEMORY, f"gateway RSS, {label}", g.rss, baseline=idle_rss, live=n),
        mem_figure("memory.gateway.live.pss", GROUP_MEMORY, f"gateway PSS, {label}", g.pss, baseline=idle_pss, live=n),
        plain_rss, plain_pss, per_rss,
        mem_figure("memory.sandbox.pss", GROUP_MEMORY, f"PSS per idle sandbox, {label}", sm.per_sandbox.pss,
                   baseline=plain_pss, live=n,
                   note="pages shared by all the servers are split between them; the plain baseline is one process "
                        "alone"),
        mem_figure("memory.sandbox.overhead", GROUP_MEMORY, "RSS per idle sandbox beyond the server's own",
                   sm.per_sandbox.rss - plain.rss, live=n, note="per-sandbox RSS minus the plain server's RSS"),
        mem_figure("memory.sandbox.wrappers", GROUP_MEMORY, "RSS of bwrap and the sandbox's pid 1, per sandbox",
                   sm.wrappers.rss, live=n),
        mem_figure("memory.sandbox.cgroup", GROUP_MEMORY, "memory charged to a sandbox's cgroup (median)",
                   sm.cgroup_median, live=n, note="includes page cache"),
        mem_figure("memory.machine.per_sandbox", GROUP_MEMORY, "machine memory in use more, per live sandbox",
                   (mem_used() - used_before) // max(1, n), live=n,
                   note="MemTotal - MemAvailable delta / sandboxes: kernel objects (netns, veth, cgroup) included; "
                        "only meaningful on an otherwise idle machine"),
    ]


async def profiles_stage(http: aiohttp.ClientSession, gw: Gateway, api: Api, sizes: ScalingSizes, idle_rss: Figure,
                         idle_pss: Figure, plain: ProcMem, say: Progress) -> list[Figure]:
    figures: list[Figure] = []
    slugs: list[str] = []
    used_before = mem_used()
    base: dict[str, Figure] = {}
    deadline = time.monotonic() + sizes.budget_s
    for target in sizes.profiles:
        if time.monotonic() > deadline:
            say(f"time budget of the profile sweep ({sizes.budget_s:.0f}s) spent: stopping before {target} profiles")
            break
        new = [f"b{i:04d}" for i in range(len(slugs), target)]
        t0 = time.perf_counter()
        await bounded(new, lambda s: api.profile(s, "tools10"), sizes.concurrency)
        await bounded(new, lambda s: client(http, gw, s).request("tools/list"), sizes.concurrency)
        slugs += new
        setup_s = time.perf_counter() - t0
        # Evicted sandboxes' namespaces are freed by the kernel in the background: let that finish first.
        await asyncio.sleep(min(5.0, 0.01 * len(new)))
        window = slugs[-sizes.window:]
        calls, lists = await call_and_list(http, gw, window, "tools10", sizes)
        live = sum(1 for s in gw.sandboxes() if s.get("state") == "running")
        extra: dict[str, Any] = {"profiles": target, "live": live}
        what = "1 profile" if target == 1 else f"{target} profiles"
        c = latency_figure(f"scaling.profiles.{target}.call", GROUP_SCALING, f"tools/call, {what}", calls,
                           baseline=base.get("call"), **extra)
        lst = latency_figure(f"scaling.profiles.{target}.list", GROUP_SCALING, f"tools/list, {what}",
                             lists, baseline=base.get("list"), **extra)
        rss = mem_figure(f"scaling.profiles.{target}.rss", GROUP_SCALING, f"gateway RSS, {what}",
                         gateway_mem(gw).rss, baseline=idle_rss, **extra)
        base.setdefault("call", c)
        base.setdefault("list", lst)
        figures += [c, lst, rss]
        say(f"{target:3d} profiles ({live} live, +{len(new)} in {setup_s:.1f}s): tools/call p50 {c['median']:.2f} ms, "
            f"tools/list p50 {lst['median']:.2f} ms, gateway RSS {rss['median']:.1f} MiB")
        if target == sizes.memory_at:
            mem = await memory_figures(gw, target, idle_rss, idle_pss, used_before, plain)
            figures += mem
            v = {f["id"]: f["median"] for f in mem}
            say(f"memory at {mem[0]['live']} live: gateway RSS {v['memory.gateway.live.rss']:.1f} MiB, per sandbox "
                f"RSS {v['memory.sandbox.rss']:.1f} MiB (plain server {v['memory.server.plain.rss']:.1f}), PSS "
                f"{v['memory.sandbox.pss']:.1f} MiB, machine {v['memory.machine.per_sandbox']:.1f} MiB per sandbox")
    return figures


async def run(sizes: ScalingSizes, say: Progress) -> list[Figure]:
    servers = [f"tools{t}" for t in sizes.tools]
    for server in servers:
        await ensure_installed(server)
    plain = await plain_server_mem("tools10")
    figures: list[Figure] = []
    # No idle reaping while the sweep runs; the LRU cap stays at its default (200).
    with gateway(",".join(servers), env={"GIG_IDLE_TIMEOUT": "3600"}) as gw:
        await asyncio.sleep(1.0)
        idle = gateway_mem(gw)
        idle_rss = mem_figure("memory.gateway.idle.rss", GROUP_MEMORY, "gateway RSS, idle (no sandbox)", idle.rss)
        idle_pss = mem_figure("memory.gateway.idle.pss", GROUP_MEMORY, "gateway PSS, idle (no sandbox)", idle.pss)
        figures += [idle_rss, idle_pss]
        say(f"gateway idle: RSS {idle_rss['median']:.1f} MiB, PSS {idle_pss['median']:.1f} MiB")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            api = Api(http, gw)
            figures += await tools_stage(http, gw, api, sizes, idle_rss, say)
            figures += await profiles_stage(http, gw, api, sizes, idle_rss, idle_pss, plain, say)
        say("stopping the gateway and its sandboxes")
    return figures
