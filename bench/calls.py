"""tools/call through the gateway against the same server called directly over stdio.

Light clients on both sides, so client CPU does not dominate: direct is our `BackendSession` over the
pipes of a plain (unsandboxed) echo process with N concurrent callers; the gateway is reached with raw
aiohttp POSTs (`bench.mcpclient.RawMcp`) in both protocol eras, each client its own session (legacy)
or stateless caller (2026-07-28). The gateway is a separate process, so its CPU is its own. Every
point is bounded by a call count and a time limit. One SDK client per path is kept as a figure too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import TOKEN, Progress, ensure_installed, gateway
from bench.mcpclient import RawMcp
from bench.stats import Figure, figure, latency_figure, series
from gateway.backends import SANDBOX_ENV
from gateway.mcp.backend import BackendSession
from tests.support.gateway import Gateway, mcp_client

GROUP = "calls"
ERA_LABEL = {"legacy": "2025-11-25 session", "modern": "2026-07-28 stateless"}
SERVER_LABEL = {"tools10": "stdlib echo", "echo": "SDK echo"}


@dataclass(frozen=True, slots=True)
class CallSizes:
    clients: tuple[int, ...] = (1, 10, 50, 200)
    total: int = 3000  # calls per point, at most
    seconds: float = 5.0  # and time per point, at most
    sdk_calls: int = 200
    rounds: int = 3  # the three paths take turns this many times per client count
    # tools10 is a standard-library server (its own cost is tiny, so the gateway's shows); echo is built on
    # the MCP SDK and saturates at a few hundred calls/s by itself on two cores.
    servers: tuple[str, ...] = ("tools10", "echo")


QUICK = CallSizes(clients=(1, 10, 50, 200), total=500, seconds=1.0, sdk_calls=50, servers=("tools10",))


@dataclass(slots=True)
class LoadResult:
    latencies: list[float]
    elapsed: float
    errors: int

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed > 0 else 0.0


async def run_load(callers: Sequence[Callable[[], Awaitable[Any]]], total: int, seconds: float) -> LoadResult:
    """Each caller calls in a loop until `total` calls were started or `seconds` passed; every call is timed."""
    started = 0
    errors = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(call: Callable[[], Awaitable[Any]]) -> None:
        nonlocal started, errors
        while started < total and time.perf_counter() < deadline:
            started += 1
            t0 = time.perf_counter()
            try:
                await call()
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in callers))
    return LoadResult(latencies, time.perf_counter() - t0, errors)


async def warm(callers: Sequence[Callable[[], Awaitable[Any]]], rounds: int = 2) -> None:
    for _ in range(rounds):
        await asyncio.gather(*(c() for c in callers))


# ---- the three paths -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def direct_server(server: str) -> AsyncIterator[BackendSession]:
    """The server as a plain process with our stdio client on its pipes: the baseline path."""
    manifest, layout = await ensure_installed(server)
    proc = await asyncio.create_subprocess_exec(
        *layout.resolve_command(manifest), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, limit=2**24, env={"PATH": "/usr/bin:/bin", **SANDBOX_ENV, **manifest.env},
        cwd=str(layout.root))
    assert proc.stdin and proc.stdout
    session = BackendSession("direct", proc.stdout, proc.stdin)
    try:
        await session.start(timeout=30)
        await session.request("tools/list", None, timeout=30)
        yield session
    finally:
        await session.aclose()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def direct_call(session: BackendSession) -> None:
    result = await session.request("tools/call", {"name": "echo", "arguments": {"message": "x"}}, timeout=30)
    if result.get("isError"):
        raise RuntimeError(str(result))


async def warm_backend(gw: Gateway, server: str, calls: int = 30) -> None:
    """Spawn the server's sandbox and let it warm up (first calls of an SDK server build its models)."""
    async with aiohttp.ClientSession() as http:
        client = await RawMcp(http, gw.mcp_url, TOKEN, "modern").open()
        for _ in range(calls):
            await client.call(f"{server}_echo", {"message": "warm"})


async def point(gw: Gateway, session: BackendSession, server: str, n: int, sizes: CallSizes) -> dict[str, LoadResult]:
    """All three paths at `n` clients, in interleaved rounds: a burst of load from elsewhere on the machine
    then lands on every path alike instead of on whichever happened to run at that moment."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        direct: list[Callable[[], Awaitable[Any]]] = [functools.partial(direct_call, session)] * n
        callers = {"direct": direct}
        opened: list[RawMcp] = []
        for era in ("legacy", "modern"):
            clients = [RawMcp(http, gw.mcp_url, TOKEN, era) for _ in range(n)]
            await asyncio.wait_for(asyncio.gather(*(c.open() for c in clients)), 120)
            opened += clients
            callers[era] = [functools.partial(c.call, f"{server}_echo", {"message": "x"}) for c in clients]
        for group in callers.values():
            await warm(group)
        out = {k: LoadResult([], 0.0, 0) for k in callers}
        for _ in range(sizes.rounds):
            for key, group in callers.items():
                res = await run_load(group, sizes.total // sizes.rounds, sizes.seconds / sizes.rounds)
                out[key].latencies += res.latencies
                out[key].elapsed += res.elapsed
                out[key].errors += res.errors
        await asyncio.wait_for(asyncio.gather(*(c.close() for c in opened), return_exceptions=True), 60)
        return out


def _clients(n: int) -> str:
    return "1 client" if n == 1 else f"{n} clients"


def _p50(r: LoadResult) -> float:
    return series(r.latencies)["median"]


async def sweep(gw: Gateway, server: str, sizes: CallSizes, say: Progress) -> list[Figure]:
    """Direct and gateway (both eras) at every client count, for one server."""
    figures: list[Figure] = []
    label = SERVER_LABEL.get(server, server)
    await warm_backend(gw, server)
    async with direct_server(server) as session:
        for n in sizes.clients:
            res = await point(gw, session, server, n, sizes)
            d = res["direct"]
            common: dict[str, Any] = {"server": server, "path": "direct", "era": "-", "clients": n}
            d_lat = latency_figure(f"calls.{server}.direct.c{n}", GROUP, f"{label}, direct stdio, {_clients(n)}: "
                                   "latency", d.latencies, errors=d.errors, **common)
            d_rate = figure(f"calls.{server}.direct.c{n}.rate", GROUP, f"{label}, direct stdio, {_clients(n)}: "
                            "throughput", "calls/s", median=d.rate, n=len(d.latencies), lower_is_better=False,
                            **common)
            figures += [d_lat, d_rate]
            line = f"{server}, {n:3d} clients: direct p50 {_p50(d):6.2f} ms {d.rate:6.0f}/s"
            for era in ("legacy", "modern"):
                g = res[era]
                common = {"server": server, "path": "gateway", "era": era, "clients": n, "errors": g.errors}
                name = f"{label}, gateway {ERA_LABEL[era]}, {_clients(n)}"
                figures.append(latency_figure(f"calls.{server}.{era}.c{n}", GROUP, f"{name}: latency", g.latencies,
                                              baseline=d_lat, **common))
                figures.append(figure(f"calls.{server}.{era}.c{n}.rate", GROUP, f"{name}: throughput", "calls/s",
                                      median=g.rate, n=len(g.latencies), baseline=d_rate, lower_is_better=False,
                                      **common))
                line += f" | {era} p50 {_p50(g):6.2f} ms {g.rate:5.0f}/s" + (f" {g.errors} errors" if g.errors else "")
            say(line)
    return figures


@contextlib.asynccontextmanager
async def sdk_clients(gw: Gateway) -> AsyncIterator[dict[str, tuple[Any, str]]]:
    """One `mcp` SDK client per path to the SDK echo server: direct over stdio, and the gateway in each era."""
    from mcp import Client, StdioServerParameters

    manifest, layout = await ensure_installed("echo")
    argv = layout.resolve_command(manifest)
    params = StdioServerParameters(command=argv[0], args=list(argv[1:]), env={"PATH": "/usr/bin:/bin"})
    async with contextlib.AsyncExitStack() as stack:
        yield {"direct": (await stack.enter_async_context(Client(params)), "echo"),
               "legacy": (await stack.enter_async_context(mcp_client(gw.mcp_url, "legacy")), "echo_echo"),
               "modern": (await stack.enter_async_context(mcp_client(gw.mcp_url, "2026-07-28")), "echo_echo")}


async def sdk_latencies(gw: Gateway, sizes: CallSizes) -> dict[str, list[float]]:
    """Sequential calls by one SDK client per path, the paths taking turns (like `point`)."""
    out: dict[str, list[float]] = {}
    async with sdk_clients(gw) as clients:
        for client, tool in clients.values():
            for _ in range(10):
                await client.call_tool(tool, {"message": "warm"})
        deadline = time.perf_counter() + 60
        for _ in range(sizes.rounds):
            for key, (client, tool) in clients.items():
                for _ in range(sizes.sdk_calls // sizes.rounds):
                    if time.perf_counter() > deadline:
                        break
                    t0 = time.perf_counter()
                    await client.call_tool(tool, {"message": "hello"})
                    out.setdefault(key, []).append(time.perf_counter() - t0)
    return out


def process_cpu_s(pid: int) -> float:
    """User + system CPU of a whole process (all its threads) from /proc, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def gateway_cost(gw: Gateway, server: str, calls: int, seconds: float) -> tuple[list[float], float]:
    """One legacy client calling in a loop: (latencies, the gateway's CPU seconds per call).

    CPU time is the figure that survives a busy machine: it does not count waiting for a core."""
    assert gw.proc is not None
    async with aiohttp.ClientSession() as http:
        client = await RawMcp(http, gw.mcp_url, TOKEN, "legacy").open()
        call = functools.partial(client.call, f"{server}_echo", {"message": "x"})
        await warm([call], rounds=50)
        before = process_cpu_s(gw.proc.pid)
        result = await run_load([call], calls, seconds)
        spent = process_cpu_s(gw.proc.pid) - before
        await client.close()
    return result.latencies, spent / max(1, len(result.latencies))


async def paths(server: str, sizes: CallSizes, say: Progress) -> list[Figure]:
    """The fast path against the SDK's transport (GIG_FAST_PATH=false), same gateway code otherwise."""
    measured: dict[str, tuple[list[float], float]] = {}
    for key, flag in (("sdk", "false"), ("fast", "true")):
        with gateway(server, {"GIG_FAST_PATH": flag}) as gw:
            await warm_backend(gw, server)
            measured[key] = await gateway_cost(gw, server, sizes.total, sizes.seconds)
    label = SERVER_LABEL.get(server, server)
    common: dict[str, Any] = {"server": server, "path": "gateway", "era": "legacy", "clients": 1}
    sdk_cpu = figure(f"calls.path.{server}.sdk.cpu", GROUP, f"{label}: gateway CPU per tools/call, SDK transport",
                     "ms", median=measured["sdk"][1] * 1000, n=len(measured["sdk"][0]), **common)
    sdk_lat = latency_figure(f"calls.path.{server}.sdk", GROUP, f"{label}: tools/call latency, SDK transport",
                             measured["sdk"][0], **common)
    out = [sdk_cpu, sdk_lat,
           figure(f"calls.path.{server}.fast.cpu", GROUP, f"{label}: gateway CPU per tools/call, fast path", "ms",
                  median=measured["fast"][1] * 1000, n=len(measured["fast"][0]), baseline=sdk_cpu, **common),
           latency_figure(f"calls.path.{server}.fast", GROUP, f"{label}: tools/call latency, fast path",
                          measured["fast"][0], baseline=sdk_lat, **common)]
    say(f"{server}: gateway CPU per call {measured['sdk'][1] * 1000:.3f} ms (SDK transport) -> "
        f"{measured['fast'][1] * 1000:.3f} ms (fast path)")
    return out


async def run(sizes: CallSizes, say: Progress) -> list[Figure]:
    for server in sizes.servers:
        await ensure_installed(server)
    figures: list[Figure] = []
    with gateway(",".join(dict.fromkeys(("echo", *sizes.servers)))) as gw:
        for server in sizes.servers:
            figures += await sweep(gw, server, sizes, say)
        sdk = await sdk_latencies(gw, sizes)
        sdk_direct = latency_figure("calls.sdk.direct", GROUP, "one SDK client, SDK echo server, direct stdio",
                                    sdk["direct"], server="echo", path="direct", era="-", clients=1)
        figures.append(sdk_direct)
        for era in ("legacy", "modern"):
            figures.append(latency_figure(
                f"calls.sdk.{era}", GROUP, f"one SDK client, SDK echo server, gateway {ERA_LABEL[era]}", sdk[era],
                baseline=sdk_direct, server="echo", path="gateway", era=era, clients=1))
        say(f"SDK client: direct p50 {sdk_direct['median']:.2f} ms, gateway "
            + ", ".join(f"{f['era']} {f['median']:.2f} ms" for f in figures[-2:]))
    figures += await paths(sizes.servers[0], sizes, say)
    return figures
