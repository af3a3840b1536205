"""Gateway benchmark: tools/call latency through the gateway vs direct stdio, throughput, cold start.

Prints figures (medians, p99, ratios against a baseline measured in the same run); asserts nothing
about time. Run as root (the sandbox runs as another uid): `.venv/bin/python -m bench.bench_gateway`.
Writes the figures as JSON to `bench/results/gateway.json` as well.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from gateway.backends import SandboxSettings, build_spec
from gateway.catalog import Catalog
from gateway.config import load_config
from gateway.installer import InstalledLayout, install_dir
from gateway.mcp.backend import BackendSession
from sandbox.process import spawn
from tests.support.gateway import FIXTURE_REGISTRY, TOKEN, Gateway, mcp_client, shared_data_dir

RESULTS = Path(__file__).resolve().parent / "results"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"p50_ms": round(statistics.median(ms), 3), "p99_ms": round(pct(ms, 0.99), 3), "n": len(ms)}


async def direct_stdio_latency(venv: Path, calls: int) -> list[float]:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=str(venv / "bin" / "gigmcp-echo"), args=[], env={"PATH": "/usr/bin"})
    async with Client(params) as client:
        for _ in range(20):
            await client.call_tool("echo", {"message": "warm"})
        out = []
        for _ in range(calls):
            t0 = time.perf_counter()
            await client.call_tool("echo", {"message": "hello"})
            out.append(time.perf_counter() - t0)
    return out


async def gateway_latency(gw: Gateway, mode: str, calls: int) -> list[float]:
    async with mcp_client(gw.mcp_url, mode) as client:
        for _ in range(20):
            await client.call_tool("echo_echo", {"message": "warm"})
        out = []
        for _ in range(calls):
            t0 = time.perf_counter()
            await client.call_tool("echo_echo", {"message": "hello"})
            out.append(time.perf_counter() - t0)
    return out


class RawClient:
    """A light legacy-era client on aiohttp, so the load generator costs less CPU than the SDK's."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.url, self.sid, self.n = http, url, "", 0

    def _headers(self) -> dict[str, str]:
        h = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json, text/event-stream",
             "Content-Type": "application/json"}
        if self.sid:
            h.update({"Mcp-Session-Id": self.sid, "MCP-Protocol-Version": "2025-11-25"})
        return h

    async def open(self) -> None:
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
        async with self.http.post(self.url, json=body, headers=self._headers()) as r:
            self.sid = r.headers["mcp-session-id"]
            await r.read()
        async with self.http.post(self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                                  headers=self._headers()) as r:
            await r.read()

    async def call(self) -> None:
        self.n += 1
        body = {"jsonrpc": "2.0", "id": self.n, "method": "tools/call",
                "params": {"name": "echo_echo", "arguments": {"message": "x"}}}
        async with self.http.post(self.url, json=body, headers=self._headers()) as r:
            data = await r.read()
            if r.status != 200 or b'"result"' not in data:
                raise RuntimeError(f"call failed: {r.status} {data[:200]!r}")


async def throughput(gw: Gateway, clients: int, total: int, max_s: float) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        raws = [RawClient(http, gw.mcp_url) for _ in range(clients)]
        await asyncio.gather(*(r.open() for r in raws))
        await asyncio.gather(*(r.call() for r in raws))  # warm
        done = 0
        errors = 0
        deadline = time.perf_counter() + max_s
        t0 = time.perf_counter()

        async def worker(raw: RawClient) -> None:
            nonlocal done, errors
            while done < total and time.perf_counter() < deadline:
                done += 1
                try:
                    await raw.call()
                except Exception:
                    errors += 1

        await asyncio.gather(*(worker(r) for r in raws))
        elapsed = time.perf_counter() - t0
    return {"clients": clients, "calls": done, "errors": errors, "calls_per_s": round(done / elapsed, 1)}


async def cold_starts(layout: InstalledLayout, runs: int) -> dict[str, Any]:
    config = load_config({"GIG_BEARER_TOKEN": TOKEN, "GIG_DATA_DIR": str(shared_data_dir()),
                          "GIG_REGISTRY_DIR": str(FIXTURE_REGISTRY)})
    catalog = Catalog.load(FIXTURE_REGISTRY)
    entry = catalog.get("echo")
    assert entry is not None
    spec = build_spec(entry.manifest, layout, SandboxSettings(config.sandbox_uid, config.sandbox_gid, 30.0), "bench")
    plain, boxed = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *spec.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**24,
            env={"PATH": "/usr/bin:/bin", **spec.env}, cwd=spec.cwd,
        )
        assert proc.stdout and proc.stdin
        session = BackendSession("plain", proc.stdout, proc.stdin)
        await session.start(timeout=30)
        await session.request("tools/list", None, timeout=30)
        plain.append(time.perf_counter() - t0)
        await session.aclose()
        proc.kill()
        await proc.wait()

        t0 = time.perf_counter()
        sproc = await spawn(spec)
        assert sproc.stdout and sproc.stdin
        session = BackendSession("boxed", sproc.stdout, sproc.stdin)
        await session.start(timeout=30)
        await session.request("tools/list", None, timeout=30)
        boxed.append(time.perf_counter() - t0)
        await session.aclose()
        await sproc.terminate(grace=0.5)
    p, b = statistics.median(plain), statistics.median(boxed)
    return {
        "plain_start": summary(plain),
        "sandboxed_start": summary(boxed),
        "overhead_ms": round((b - p) * 1000, 2),
        "ratio": round(b / p, 3),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    gw = Gateway(install="echo").start()
    try:
        catalog = Catalog.load(FIXTURE_REGISTRY)
        entry = catalog.get("echo")
        assert entry is not None
        layout = InstalledLayout(install_dir(shared_data_dir() / "servers", entry.manifest))
        direct = await direct_stdio_latency(layout.venv, args.calls)
        results: dict[str, Any] = {"direct_stdio": summary(direct)}
        for mode in ("legacy", "2026-07-28"):
            through = await gateway_latency(gw, mode, args.calls)
            s = summary(through)
            s["added_p50_ms"] = round(s["p50_ms"] - results["direct_stdio"]["p50_ms"], 3)
            s["ratio_p50"] = round(s["p50_ms"] / results["direct_stdio"]["p50_ms"], 2)
            results[f"gateway_{mode}"] = s
        results["throughput"] = [await throughput(gw, c, args.total, args.max_seconds) for c in (1, 10, 50)]
        results["cold_start"] = await cold_starts(layout, args.cold_runs)
    finally:
        gw.stop()
    return results


def report(results: dict[str, Any]) -> None:
    d = results["direct_stdio"]
    print(f"tools/call direct stdio (SDK client)      p50 {d['p50_ms']:.3f} ms   p99 {d['p99_ms']:.3f} ms")
    for mode in ("legacy", "2026-07-28"):
        g = results[f"gateway_{mode}"]
        print(f"tools/call via gateway ({mode:10})    p50 {g['p50_ms']:.3f} ms   p99 {g['p99_ms']:.3f} ms"
              f"   added p50 {g['added_p50_ms']:+.3f} ms   ratio {g['ratio_p50']:.2f}x")
    for t in results["throughput"]:
        print(f"throughput {t['clients']:3d} clients: {t['calls_per_s']:8.1f} calls/s ({t['calls']} calls, "
              f"{t['errors']} errors)")
    c = results["cold_start"]
    print(f"cold start to first tools/list: plain {c['plain_start']['p50_ms']:.1f} ms, sandboxed "
          f"{c['sandboxed_start']['p50_ms']:.1f} ms (overhead {c['overhead_ms']:+.1f} ms, ratio {c['ratio']:.2f}x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="sequential calls per latency series")
    parser.add_argument("--total", type=int, default=3000, help="calls per throughput run (upper bound)")
    parser.add_argument("--max-seconds", type=float, default=15.0, help="time bound per throughput run")
    parser.add_argument("--cold-runs", type=int, default=10)
    ns = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_gateway: run as root (sandboxes run as another uid)")
    out = asyncio.run(main(ns))
    report(out)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gateway.json").write_text(json.dumps(out, indent=2) + "\n")
