"""NetworkManager against the real kernel: veth into a real namespace, many cycles, no leaks."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess

import pytest

from sandbox.network import NetworkError, NetworkManager
from tests.integration.conftest_egress import Netns, needs_root

pytestmark = [pytest.mark.root, needs_root(), pytest.mark.timeout(60)]

SUBNET = "10.90.0.0/22"  # 256 blocks: 200 cycles must not run out if nothing leaks
PREFIX = "gsbn"


def links(prefix: str = PREFIX) -> list[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout
    return [link["ifname"] for link in json.loads(out) if link["ifname"].startswith(prefix)]


async def test_sandbox_side_is_configured() -> None:
    ns = Netns()
    async with NetworkManager(subnet=SUBNET, ifname_prefix=PREFIX, proxy_port=3128) as net:
        try:
            plan = await net.setup(ns.pid, "sb-1")
            assert plan.proxy_url == f"http://{plan.host_ip}:3128" and plan.prefixlen == 30
            r = await ns.run("ip", "-j", "addr", "show")
            addrs = {i["ifname"]: i for i in json.loads(r.out)}
            assert set(addrs) == {"lo", "eth0"}
            assert "UP" in addrs["lo"]["flags"] and "UP" in addrs["eth0"]["flags"]
            eth = [(a["family"], a["local"], a["prefixlen"]) for a in addrs["eth0"]["addr_info"]]
            assert eth == [("inet", plan.sandbox_ip, 30)]  # no IPv6 link-local
            r = await ns.run("ip", "-j", "route", "show")
            assert [x["dst"] for x in json.loads(r.out)] == ["10.90.0.0/30"]  # on-link only, no default
            r = await ns.run(
                "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"
            )
            assert r.out.split() == ["1", "1"]
            with open(f"/proc/sys/net/ipv6/conf/{PREFIX}0/disable_ipv6") as f:
                assert f.read().strip() == "1"
            await net.teardown(plan)
            await net.teardown(plan)  # idempotent
            assert links() == [] and net.pool.in_use == 0
        finally:
            ns.kill()


async def test_failed_setup_leaves_nothing() -> None:
    ns = Netns()
    ns.kill()  # the pid is gone: the veth peer cannot be created in its namespace
    async with NetworkManager(subnet=SUBNET, ifname_prefix=PREFIX) as net:
        with pytest.raises(NetworkError):
            await net.setup(ns.pid, "gone")
        assert net.pool.in_use == 0 and net.live == 0 and links() == []


async def test_many_cycles_leak_nothing() -> None:
    """200 setups/teardowns over 20 namespaces, a quarter of them after the namespace died first
    (the kernel deletes the veth itself; teardown must tolerate ENODEV)."""
    spaces = [Netns() for _ in range(20)]
    timings: list[float] = []
    try:
        async with NetworkManager(subnet=SUBNET, ifname_prefix=PREFIX) as net:
            capacity = net.pool.capacity
            for i in range(200):
                ns = spaces[i % len(spaces)]
                plan = await net.setup(ns.pid, f"sb-{i}")
                timings.append(net.setup_seconds[-1])
                if i % 4 == 3:
                    ns.kill()
                    spaces[i % len(spaces)] = Netns()
                await net.teardown(plan)
            assert net.pool.in_use == 0 and net.live == 0
            assert len(net.pool._free) == capacity
            # The kernel removes the links of dead namespaces asynchronously; give it a moment.
            for _ in range(100):
                if not links():
                    break
                await asyncio.sleep(0.02)
            assert links() == []
            out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
            assert "10.90." not in out
    finally:
        for ns in spaces:
            ns.kill()
    print(
        f"network setup: median {1000 * statistics.median(timings):.1f} ms, "
        f"max {1000 * max(timings):.1f} ms over {len(timings)}"
    )


async def test_stale_links_removed_on_start() -> None:
    ns = Netns()
    try:
        net = NetworkManager(subnet=SUBNET, ifname_prefix=PREFIX)
        await net.start()
        await net.setup(ns.pid, "crashed")
        await net.close()  # a gateway that died without teardown
        assert links() == [f"{PREFIX}0"]
        async with NetworkManager(subnet=SUBNET, ifname_prefix=PREFIX):
            assert links() == []
    finally:
        ns.kill()


async def test_reserve_before_spawn() -> None:
    """The proxy URL is known before the sandbox starts (it goes into the sandbox's environment)."""
    ns = Netns()
    try:
        async with NetworkManager(subnet=SUBNET, ifname_prefix=PREFIX) as net:
            plan = net.reserve()
            assert net.pool.in_use == 1 and plan.proxy_url.startswith(f"http://{plan.host_ip}:")
            assert await net.setup(ns.pid, "sb", plan=plan) == plan
            with pytest.raises(NetworkError):
                await net.setup(ns.pid, "sb", plan=plan)  # not reserved any more
            await net.teardown(plan)
            unused = net.reserve()
            net.release(unused)
            failed = net.reserve()
            dead = Netns()
            dead.kill()
            with pytest.raises(NetworkError):
                await net.setup(dead.pid, "gone", plan=failed)
            assert net.pool.in_use == 0 and links() == []
    finally:
        ns.kill()
