"""Egress: requests through the proxy process against the same requests sent directly.

- HTTPS request latency, keep-alive and a new connection per request (Python http.client);
- requests/s at concurrency 20 (aiohttp), and the event-loop lag of the process supervising the proxy;
- the proxy-unaware client path: Node's built-in fetch() ignores HTTPS_PROXY, and sandboxes reach the
  proxy through the undici preload in runtime/node (`NODE_OPTIONS=--require=.../proxy-preload.cjs`).
  That is what is measured here: fetch through the preload to the proxy against fetch direct. There is
  no transparent interception by design (docs/architecture.md): a client that bypasses the proxy
  anyway has no route out;
- per-sandbox veth setup and teardown in namespaces this benchmark creates.

The upstream is a local aiohttp TLS server (throwaway CA) on 127.0.0.1; clients run in child processes
(`python -m bench.egress --client ...`, `node`) so the upstream's event loop does not measure itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO, Progress
from bench.stats import Figure, figure, latency_figure, series

GROUP = "egress"
PRELOAD = REPO / "runtime" / "node" / "proxy-preload.cjs"

NODE_CLIENT = r"""
const url = process.env.BENCH_URL, n = Number(process.env.BENCH_N || 100), warm = 10;
(async () => {
  const out = [];
  for (let i = 0; i < n + warm; i++) {
    const t0 = performance.now();
    const r = await fetch(url);
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`status ${r.status}`);
    if (i >= warm) out.push((performance.now() - t0) / 1000);
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(String(e && e.cause || e)); process.exit(1); });
"""


@dataclass(frozen=True, slots=True)
class EgressSizes:
    keepalive: int = 300
    newconn: int = 100
    throughput: int = 2000
    concurrency: int = 20
    node: int = 200
    net_cycles: int = 40


QUICK = EgressSizes(keepalive=100, newconn=30, throughput=400, concurrency=20, node=60, net_cycles=10)


# --- client side (a child process) ---------------------------------------------------------------------


def client_latency(args: argparse.Namespace) -> dict[str, list[float]]:
    import http.client
    import ssl

    ctx = ssl.create_default_context(cafile=args.cafile)
    out: dict[str, list[float]] = {}
    for keep in (True, False):
        n = args.keepalive if keep else args.newconn
        times: list[float] = []
        conn = None
        deadline = time.perf_counter() + 60
        for i in range(n + 10):
            if time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            if conn is None:
                if args.proxy_port:
                    conn = http.client.HTTPSConnection("127.0.0.1", args.proxy_port, context=ctx, timeout=10)
                    conn.set_tunnel("localhost", args.port)
                else:
                    conn = http.client.HTTPSConnection("localhost", args.port, context=ctx, timeout=10)
            conn.request("GET", "/api/bench")
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"status {r.status}")
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
    conn = aiohttp.TCPConnector(limit=args.concurrency, ssl=ctx)
    url = f"https://localhost:{args.port}/api/bench"
    proxy = f"http://127.0.0.1:{args.proxy_port}" if args.proxy_port else None
    total = args.throughput
    remaining = total
    errors = 0
    async with aiohttp.ClientSession(connector=conn) as s:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                async with s.get(url, proxy=proxy) as r:
                    await r.read()
                    errors += r.status != 200

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))  # warm-up: opens the pool
        remaining = total
        t0 = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(args.concurrency))), 120)
        elapsed = time.perf_counter() - t0
    return {"rps": total / elapsed, "errors": errors}


def client_main(args: argparse.Namespace) -> None:
    res = client_latency(args) if args.client == "latency" else asyncio.run(client_throughput(args))
    print(json.dumps(res))


# --- orchestration -------------------------------------------------------------------------------------


async def _child(argv: list[str], env: dict[str, str] | None = None, timeout: float = 180) -> Any:
    p = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                             env=env, cwd=REPO)
    try:
        out, err = await asyncio.wait_for(p.communicate(), timeout)
    except TimeoutError:
        p.kill()
        await p.wait()
        raise
    if p.returncode != 0:
        raise RuntimeError(f"bench client {argv[:3]} failed: {err.decode(errors='replace')[-400:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


async def run_client(mode: str, cafile: str, port: int, proxy_port: int, sizes: EgressSizes) -> Any:
    argv = [sys.executable, "-m", "bench.egress", "--client", mode, "--cafile", cafile, "--port", str(port),
            "--proxy-port", str(proxy_port), "--keepalive", str(sizes.keepalive), "--newconn", str(sizes.newconn),
            "--throughput", str(sizes.throughput), "--concurrency", str(sizes.concurrency)]
    return await _child(argv, env={**os.environ, "PYTHONPATH": str(REPO)})


async def node_fetch(cafile: str, port: int, proxy_port: int, n: int, script: Path) -> list[float]:
    env = {"PATH": "/usr/bin:/bin", "NODE_EXTRA_CA_CERTS": cafile, "BENCH_URL": f"https://localhost:{port}/api/bench",
           "BENCH_N": str(n)}
    argv = ["node"]
    if proxy_port:
        # What a networked sandbox gets: the preload and the proxy in the environment.
        env["HTTPS_PROXY"] = env["HTTP_PROXY"] = f"http://127.0.0.1:{proxy_port}"
        argv += [f"--require={PRELOAD}"]
    return list(await _child([*argv, str(script)], env=env))


async def loop_lag(duration: float | None) -> list[float]:
    """Oversleep of 5 ms sleeps on this event loop (the gateway's, in production), in seconds.

    With `duration` None it samples until cancelled and then returns what it measured.
    """
    samples: list[float] = []
    end = None if duration is None else time.perf_counter() + duration
    try:
        while (end is None or time.perf_counter() < end) and len(samples) < 100_000:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            samples.append(max(0.0, time.perf_counter() - t0 - 0.005))
    except asyncio.CancelledError:
        pass
    return samples or [0.0]


async def network_cycles(cycles: int) -> tuple[list[float], list[float]]:
    """veth setup and teardown into namespaces made here (`unshare --net`), removed afterwards."""
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    from conftest_egress import Netns

    from sandbox.network import NetworkManager

    spaces = [Netns() for _ in range(min(10, cycles))]
    teardown: list[float] = []
    try:
        async with NetworkManager(subnet="10.96.0.0/22", ifname_prefix="gbe") as net:
            for i in range(cycles):
                plan = await net.setup(spaces[i % len(spaces)].pid, f"bench-{i}")
                t0 = time.perf_counter()
                await net.teardown(plan)
                teardown.append(time.perf_counter() - t0)
            setup = list(net.setup_seconds)
    finally:
        for ns in spaces:
            ns.kill()
    return setup, teardown


async def run(sizes: EgressSizes, say: Progress) -> list[Figure]:
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    from conftest_egress import make_pki, start_upstream

    from egress.policy import EgressRule, SandboxPolicy
    from egress.supervisor import EgressSupervisor
    from tests.support.gateway import free_port

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp))
        up, runners = await start_upstream(pki)
        port = free_port()
        (Path(tmp) / "proxy").mkdir(mode=0o700)
        sup = EgressSupervisor(port=port, upstream_ca=str(pki.ca_pem), workdir=str(Path(tmp) / "proxy"))
        t0 = time.perf_counter()
        await sup.start()
        start_s = time.perf_counter() - t0
        try:
            pol = SandboxPolicy("bench", "bench", "default", "bench",
                                rules=(EgressRule("localhost", ports=(up.https_port,)),), allow_loopback=True,
                                max_connections=10_000, max_rps=1e9, address_overrides={"localhost": "127.0.0.1"})
            await sup.bind("127.0.0.1", "127.0.0.1", pol)
            # Both CAs in one bundle: the test CA for direct, the proxy's CA for the proxied path.
            bundle = Path(tmp) / "bundle.pem"
            bundle.write_bytes(pki.ca_pem.read_bytes() + Path(sup.ca_cert_path).read_bytes())
            ca = str(bundle)
            direct = await run_client("latency", ca, up.https_port, 0, sizes)
            proxied = await run_client("latency", ca, up.https_port, port, sizes)
            for key, label in (("keepalive", "keep-alive"), ("newconn", "new connection per request")):
                d = latency_figure(f"egress.{key}.direct", GROUP, f"HTTPS request, {label}: direct", direct[key])
                p = latency_figure(f"egress.{key}.proxy", GROUP, f"HTTPS request, {label}: through the proxy",
                                   proxied[key], baseline=d)
                figures += [d, p]
                say(f"{label}: direct p50 {d['median']:.2f} ms, proxy p50 {p['median']:.2f} ms")
            d_rps = await run_client("throughput", ca, up.https_port, 0, sizes)
            idle_lag = await loop_lag(1.0)
            lag_task = asyncio.create_task(loop_lag(None))
            p_rps = await run_client("throughput", ca, up.https_port, port, sizes)
            lag_task.cancel()
            loaded_lag = await lag_task
            c = sizes.concurrency
            d_fig = figure("egress.rps.direct", GROUP, f"requests/s, concurrency {c}, keep-alive: direct", "req/s",
                           median=d_rps["rps"], n=sizes.throughput, lower_is_better=False, errors=d_rps["errors"])
            figures.append(d_fig)
            figures.append(figure("egress.rps.proxy", GROUP, f"requests/s, concurrency {c}, keep-alive: through "
                                  "the proxy", "req/s", median=p_rps["rps"], n=sizes.throughput, baseline=d_fig,
                                  lower_is_better=False, errors=p_rps["errors"]))
            idle = latency_figure("egress.lag.idle", GROUP, "event-loop lag of the proxy's supervisor, idle",
                                  idle_lag)
            figures.append(idle)
            figures.append(latency_figure("egress.lag.loaded", GROUP, "event-loop lag of the proxy's supervisor, "
                                          "proxy under load", loaded_lag, baseline=idle,
                                          note="the proxy is its own process; the lag is CPU contention"))
            say(f"requests/s at {c}: direct {d_rps['rps']:.0f}, proxy {p_rps['rps']:.0f}")
            with tempfile.NamedTemporaryFile("w", suffix=".js", dir=tmp, delete=False) as fh:
                fh.write(NODE_CLIENT)
            nd = await node_fetch(ca, up.https_port, 0, sizes.node, Path(fh.name))
            before = (await sup.stats())["allowed"]
            npx = await node_fetch(ca, up.https_port, port, sizes.node, Path(fh.name))
            through = (await sup.stats())["allowed"] - before
            if through < 1:  # a keep-alive tunnel is one CONNECT: at least one, not one per request
                raise RuntimeError("Node fetch with the preload did not reach the proxy")
            nd_fig = latency_figure("egress.node.direct", GROUP, "Node fetch(), keep-alive: direct", nd)
            figures.append(nd_fig)
            figures.append(latency_figure(
                "egress.node.preload", GROUP, "Node fetch(), keep-alive: through the undici preload to the proxy",
                npx, baseline=nd_fig, tunnels=through,
                note="the proxy-unaware-client path; there is no transparent interception by design"))
            say(f"Node fetch (proxy-unaware client path): direct p50 {series(nd)['median']:.2f} ms, via preload "
                f"{series(npx)['median']:.2f} ms")
            figures.append(figure("egress.proxy_start", GROUP, "proxy process start (spawn to ready)", "ms",
                                  median=start_s * 1000))
            await sup.unbind("127.0.0.1")
        finally:
            await sup.stop()
            for r in runners:
                await r.cleanup()
    if os.geteuid() == 0:
        setup, teardown = await network_cycles(sizes.net_cycles)
        figures.append(latency_figure("egress.veth.setup", GROUP, "per-sandbox veth setup (netns made here)", setup))
        figures.append(latency_figure("egress.veth.teardown", GROUP, "per-sandbox veth teardown", teardown))
        say(f"veth setup p50 {series(setup)['median']:.1f} ms, teardown p50 {series(teardown)['median']:.1f} ms")
    return figures


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="egress benchmark client (run by bench/run; not on its own)")
    ap.add_argument("--client", choices=["latency", "throughput"], required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--proxy-port", type=int, default=0)
    ap.add_argument("--keepalive", type=int, default=300)
    ap.add_argument("--newconn", type=int, default=100)
    ap.add_argument("--throughput", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=20)
    client_main(ap.parse_args())
