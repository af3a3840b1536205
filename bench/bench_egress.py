"""Egress benchmark: prints figures, asserts nothing about time.

    .venv/bin/python bench/bench_egress.py            (root: also measures veth setup)

Measures, in one run so the ratios are meaningful:
- request latency direct vs through the proxy process, keep-alive and new connection per request;
- requests/s through the proxy at concurrency 20 (and direct, for the ratio);
- per-sandbox network setup (veth + both ends configured) and proxy bind (listener added).

The upstream is a local aiohttp TLS server (throwaway CA); clients run in a separate process so the
upstream's event loop is not measuring itself. All loops are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "integration")]

PORT = 3139
SEQ_KEEPALIVE = 300
SEQ_NEWCONN = 100
THROUGHPUT_REQUESTS = 2000
CONCURRENCY = 20
NET_CYCLES = 40


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# --- client side (runs in a child process) -----------------------------------------------------------


def client_latency(args: argparse.Namespace) -> dict[str, Any]:
    import http.client
    import ssl

    ctx = ssl.create_default_context(cafile=args.cafile)
    out: dict[str, list[float]] = {}
    for keep in (True, False):
        n = SEQ_KEEPALIVE if keep else SEQ_NEWCONN
        times: list[float] = []
        conn = None
        for i in range(n + 10):
            t0 = time.perf_counter()
            if conn is None:
                if args.proxy:
                    conn = http.client.HTTPSConnection("127.0.0.1", PORT, context=ctx, timeout=10)
                    conn.set_tunnel("localhost", args.port)
                else:
                    conn = http.client.HTTPSConnection("localhost", args.port, context=ctx, timeout=10)
            conn.request("GET", "/api/bench")
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
            if not keep:
                conn.close()
                conn = None
            if i >= 10:  # warm-up excluded
                times.append(time.perf_counter() - t0)
        if conn is not None:
            conn.close()
        out["keepalive" if keep else "newconn"] = times
    return out


async def client_throughput(args: argparse.Namespace) -> dict[str, Any]:
    import ssl

    import aiohttp

    ctx = ssl.create_default_context(cafile=args.cafile)
    conn = aiohttp.TCPConnector(limit=CONCURRENCY, ssl=ctx)
    url = f"https://localhost:{args.port}/api/bench"
    proxy = f"http://127.0.0.1:{PORT}" if args.proxy else None
    remaining = THROUGHPUT_REQUESTS
    errors = 0
    async with aiohttp.ClientSession(connector=conn) as s:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                async with s.get(url, proxy=proxy) as r:
                    await r.read()
                    errors += r.status != 200

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))  # warm-up: opens the pool
        remaining = THROUGHPUT_REQUESTS
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - t0
    return {"rps": THROUGHPUT_REQUESTS / elapsed, "errors": errors}


def client_main(args: argparse.Namespace) -> None:
    res = client_latency(args) if args.client == "latency" else asyncio.run(client_throughput(args))
    print(json.dumps(res))


# --- orchestration -------------------------------------------------------------------------------------


async def run_client(mode: str, cafile: str, port: int, proxy: bool) -> Any:
    argv = [sys.executable, __file__, "--client", mode, "--cafile", cafile, "--port", str(port)]
    if proxy:
        argv.append("--proxy")
    p = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(p.communicate(), 300)
    assert p.returncode == 0, "bench client failed"
    return json.loads(out)


def line(label: str, direct: list[float], proxied: list[float]) -> str:
    d, p = statistics.median(direct), statistics.median(proxied)
    return (
        f"{label:<28} direct median {1000 * d:6.2f} ms p99 {1000 * pct(direct, 0.99):6.2f} | "
        f"proxy median {1000 * p:6.2f} ms p99 {1000 * pct(proxied, 0.99):6.2f} | "
        f"x{p / d:4.1f} (+{1000 * (p - d):.2f} ms)"
    )


async def bench_network() -> None:
    if os.geteuid() != 0:
        print("network setup: skipped (needs root)")
        return
    from conftest_egress import Netns

    from sandbox.network import NetworkManager

    spaces = [Netns() for _ in range(10)]
    try:
        async with NetworkManager(subnet="10.91.0.0/22", ifname_prefix="gsbb") as net:
            teardown: list[float] = []
            for i in range(NET_CYCLES):
                plan = await net.setup(spaces[i % len(spaces)].pid, f"bench-{i}")
                t0 = time.perf_counter()
                await net.teardown(plan)
                teardown.append(time.perf_counter() - t0)
            setup = list(net.setup_seconds)
    finally:
        for ns in spaces:
            ns.kill()
    print(
        f"network setup per sandbox      median {1000 * statistics.median(setup):6.2f} ms "
        f"p99 {1000 * pct(setup, 0.99):6.2f} ms | "
        f"teardown median {1000 * statistics.median(teardown):6.2f} ms "
        f"(n={NET_CYCLES})"
    )


async def loop_lag(duration: float | None) -> list[float]:
    """Oversleep of 5 ms sleeps on this event loop (the gateway's, in production), in ms.

    With `duration` None it samples until cancelled and then returns what it measured.
    """
    samples: list[float] = []
    end = None if duration is None else time.perf_counter() + duration
    try:
        while end is None or time.perf_counter() < end:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            samples.append(max(0.0, (time.perf_counter() - t0) * 1000 - 5.0))
    except asyncio.CancelledError:
        pass
    return samples or [0.0]


async def main() -> None:
    from conftest_egress import make_pki, start_upstream

    from egress.policy import EgressRule, SandboxPolicy
    from egress.supervisor import EgressSupervisor

    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp))
        up, runners = await start_upstream(pki)
        sup = EgressSupervisor(port=PORT, upstream_ca=str(pki.ca_pem))
        t0 = time.perf_counter()
        await sup.start()
        print(f"proxy process start (spawn -> ready)  {1000 * (time.perf_counter() - t0):.0f} ms")
        try:
            pol = SandboxPolicy(
                "bench",
                "bench",
                "default",
                "bench",
                rules=(EgressRule("localhost", ports=(up.https_port,)),),
                allow_loopback=True,
                max_connections=10_000,
                max_rps=1e9,
                address_overrides={"localhost": "127.0.0.1"},
            )
            t0 = time.perf_counter()
            await sup.bind("127.0.0.1", "127.0.0.1", pol)
            print(f"bind (policy + listener add)          {1000 * (time.perf_counter() - t0):.1f} ms")
            # Both CAs in one bundle: the test CA for direct, the proxy's CA for the proxied path.
            bundle = Path(tmp) / "bundle.pem"
            bundle.write_bytes(pki.ca_pem.read_bytes() + Path(sup.ca_cert_path).read_bytes())
            ca = str(bundle)
            direct = await run_client("latency", ca, up.https_port, False)
            proxied = await run_client("latency", ca, up.https_port, True)
            print(line("latency, keep-alive", direct["keepalive"], proxied["keepalive"]))
            print(line("latency, new connection", direct["newconn"], proxied["newconn"]))
            d = await run_client("throughput", ca, up.https_port, False)
            idle_lag = await loop_lag(1.0)
            lag_task = asyncio.create_task(loop_lag(None))
            p = await run_client("throughput", ca, up.https_port, True)
            lag_task.cancel()
            loaded_lag = await lag_task
            print(
                f"event-loop lag of the process hosting the proxy supervisor (5 ms sleeps): idle p50 "
                f"{statistics.median(idle_lag):.2f} ms p99 {pct(idle_lag, 0.99):.2f} ms | proxy loaded p50 "
                f"{statistics.median(loaded_lag):.2f} ms p99 {pct(loaded_lag, 0.99):.2f} ms "
                f"max {max(loaded_lag):.2f} ms ({len(loaded_lag)} samples)"
            )
            print(
                f"throughput, concurrency {CONCURRENCY}     direct {d['rps']:7.0f} req/s | "
                f"proxy {p['rps']:7.0f} req/s | ratio {d['rps'] / p['rps']:.1f}x "
                f"(errors {d['errors']}/{p['errors']}, {THROUGHPUT_REQUESTS} requests each)"
            )
            stats = await sup.stats()
            print(
                f"proxy stats: allowed={stats['allowed']} denied={stats['denied']} errors={stats['errors']} "
                f"client connections={stats['connections']}"
            )
            await sup.unbind("127.0.0.1")
        finally:
            await sup.stop()
            for r in runners:
                await r.cleanup()
    await bench_network()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=["latency", "throughput"])
    ap.add_argument("--cafile")
    ap.add_argument("--port", type=int)
    ap.add_argument("--proxy", action="store_true")
    a = ap.parse_args()
    if a.client:
        client_main(a)
    else:
        asyncio.run(main())
