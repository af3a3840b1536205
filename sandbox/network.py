"""Per-sandbox network: one veth pair and one /30 per sandbox, built from the host side.

Topology: host end `gsb<N>` holds the first address of the /30, the sandbox end is born directly in
the sandbox's network namespace as `eth0` (`peer={"ifname": "eth0", "net_ns_pid": pid}`; moving a
link between namespaces afterwards costs ~25 ms of RCU waits) and holds the second address. The
sandbox gets no default route: the proxy on the host end is on-link, so nothing else is routable.
IPv6 is disabled on both ends, otherwise link-local addresses would expose every host service
listening on `::`.

The host side uses pyroute2's `AsyncIPRoute`. The sandbox side is configured from a short-lived
dedicated thread that setns()es into `/proc/<pid>/ns/net` (network namespaces are per thread) and
then exits, so no pooled thread is ever left in a sandbox's namespace.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import errno
import ipaddress
import logging
import os
import threading
import time
from dataclasses import dataclass

from pyroute2 import AsyncIPRoute, IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from sandbox.spec import NetworkPlan

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
DEFAULT_SUBNET = "10.88.0.0/16"
DEFAULT_PREFIX = "gsb"
SANDBOX_IFNAME = "eth0"
_libc = ctypes.CDLL(None, use_errno=True)


class NetworkError(Exception):
    """Setting up a sandbox's network failed (nothing is left behind when this is raised)."""


class AddressPool:
    """The /30 blocks of a range. Freed blocks go to the back of the queue (FIFO reuse), so an
    address comes back only long after the kernel finished removing its previous veth."""

    def __init__(self, subnet: str = DEFAULT_SUBNET) -> None:
        net = ipaddress.ip_network(subnet)
        if not isinstance(net, ipaddress.IPv4Network) or net.prefixlen > 30:
            raise ValueError(f"sandbox subnet must be an IPv4 network of /30 or larger: {subnet}")
        self.network = net
        self.capacity = net.num_addresses // 4
        self._free: collections.deque[int] = collections.deque(range(self.capacity))
        self._used: set[int] = set()

    def allocate(self) -> int:
        if not self._free:
            raise NetworkError(f"no free /30 left in {self.network}")
        slot = self._free.popleft()
        self._used.add(slot)
        return slot

    def release(self, slot: int) -> None:
        if slot in self._used:
            self._used.remove(slot)
            self._free.append(slot)

    def addresses(self, slot: int) -> tuple[str, str]:
        """(host address, sandbox address) of a block."""
        base = int(self.network.network_address) + 4 * slot
        return str(ipaddress.IPv4Address(base + 1)), str(ipaddress.IPv4Address(base + 2))

    @property
    def in_use(self) -> int:
        return len(self._used)


@dataclass(frozen=True, slots=True)
class _Live:
    slot: int
    ifname: str
    sandbox_id: str
    child_pid: int


def _write_sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _configure_inside(pid: int, address: str, prefixlen: int, loopback: bool) -> None:
    """Runs in a dedicated thread: join the sandbox netns, then (lo up,) eth0 addressed and up, IPv6 off."""
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns into the network namespace of pid {pid}: {os.strerror(e)}")
    finally:
        os.close(fd)
    # /proc/sys/net resolves against the calling thread's namespace, i.e. the sandbox's now.
    for conf in ("all", "default", SANDBOX_IFNAME):
        _write_sysctl(f"/proc/sys/net/ipv6/conf/{conf}/disable_ipv6", "1")
    with IPRoute() as ns:
        lo = ns.link_lookup(ifname="lo")
        eth = ns.link_lookup(ifname=SANDBOX_IFNAME)
        if not lo or not eth:
            raise NetworkError(f"sandbox {pid}: lo or {SANDBOX_IFNAME} missing in its namespace")
        if loopback:
            ns.link("set", index=lo[0], state="up")
        ns.addr("add", index=eth[0], address=address, prefixlen=prefixlen)
        ns.link("set", index=eth[0], state="up")
        # Deliberately no route beyond the on-link /30.


async def _in_netns_thread(pid: int, address: str, prefixlen: int, loopback: bool) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(err: BaseException | None) -> None:
        if done.done():
            return
        if err is None:
            done.set_result(None)
        else:
            done.set_exception(err)

    def worker() -> None:
        err: BaseException | None = None
        try:
            _configure_inside(pid, address, prefixlen, loopback)
        except BaseException as e:
            err = e
        # The thread ends here; its namespace binding ends with it.
        loop.call_soon_threadsafe(settle, err)

    threading.Thread(target=worker, name=f"netns-{pid}", daemon=True).start()
    await done


class NetworkManager:
    """Allocates /30s and builds/tears down veth pairs. Use from one event loop."""

    def __init__(
        self,
        *,
        subnet: str = DEFAULT_SUBNET,
        proxy_port: int = 3128,
        ifname_prefix: str = DEFAULT_PREFIX,
        remove_stale: bool = True,
    ) -> None:
        if not ifname_prefix.isalnum() or len(ifname_prefix) > 6:
            raise ValueError("ifname_prefix must be short and alphanumeric")
        self.pool = AddressPool(subnet)
        self.proxy_port = proxy_port
        self.ifname_prefix = ifname_prefix
        # Links named <prefix><digits> are assumed to be ours: one gateway per prefix per host.
        self.remove_stale = remove_stale
        self._ipr: AsyncIPRoute | None = None
        self._live: dict[str, _Live] = {}  # host address -> live sandbox network
        self._reserved: dict[str, int] = {}  # host address -> slot, allocated before the sandbox exists
        self._lock = asyncio.Lock()
        self.setup_seconds: collections.deque[float] = collections.deque(maxlen=1000)

    async def start(self) -> None:
        """Open the netlink socket and remove links left over by a previous run of ours."""
        self._ipr = AsyncIPRoute()
        await self._ipr.setup_endpoint()
        removed = await self.remove_stale_links() if self.remove_stale else []
        if removed:
            log.warning("removed %d stale sandbox links: %s", len(removed), ", ".join(removed))

    async def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    async def __aenter__(self) -> NetworkManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def live(self) -> int:
        return len(self._live)

    def ifname(self, slot: int) -> str:
        return f"{self.ifname_prefix}{slot}"

    def _iproute(self) -> AsyncIPRoute:
        if self._ipr is None:
            raise RuntimeError("NetworkManager.start() was not called")
        return self._ipr

    async def remove_stale_links(self) -> list[str]:
        ipr = self._iproute()
        names: list[str] = []
        async for link in await ipr.link("dump"):
            name = link.get("ifname") or ""
            rest = name[len(self.ifname_prefix) :]
            if name.startswith(self.ifname_prefix) and rest.isdigit():
                names.append(name)
        for name in names:
            await self._delete_link(name)
        return names

    async def _delete_link(self, ifname: str) -> None:
        ipr = self._iproute()
        try:
            idx = await ipr.link_lookup(ifname=ifname)
            if idx:
                await ipr.link("del", index=idx[0])
        except NetlinkError as e:
            # The sandbox's namespace died first: the kernel removes both ends on its own.
            if e.code != errno.ENODEV:
                raise

    def reserve(self) -> NetworkPlan:
        """Allocate a /30 before the sandbox exists, so its proxy URL can go into its environment.

        Pass the plan to `setup()`; if the sandbox never starts, `release()` (or `teardown()`) it.
        """
        slot = self.pool.allocate()
        plan = self._plan(slot)
        self._reserved[plan.host_ip] = slot
        return plan

    def release(self, plan: NetworkPlan) -> None:
        """Give back a reserved plan that was never set up."""
        slot = self._reserved.pop(plan.host_ip, None)
        if slot is not None:
            self.pool.release(slot)

    def _plan(self, slot: int) -> NetworkPlan:
        host_ip, sandbox_ip = self.pool.addresses(slot)
        return NetworkPlan(
            sandbox_ip=sandbox_ip,
            host_ip=host_ip,
            prefixlen=30,
            proxy_url=f"http://{host_ip}:{self.proxy_port}",
        )

    async def setup(self, child_pid: int, sandbox_id: str, plan: NetworkPlan | None = None, *,
                    loopback: bool = True) -> NetworkPlan:
        """Build the veth for the sandbox whose (network-namespace) pid is `child_pid`.

        Uses `plan` when it came from `reserve()`, else allocates a /30. On failure nothing is left
        behind and the /30 is free again (also a reserved one). `loopback=False` when bwrap owns `lo`:
        it brings it up itself before it waits on its block fd, and bringing it up here as well raced
        bwrap's exclusive address add (`loopback: Failed RTM_NEWADDR`, 45 in 100 starts under load).
        """
        t0 = time.perf_counter()
        ipr = self._iproute()
        if plan is not None:
            if plan.host_ip not in self._reserved:
                raise NetworkError(f"plan for {plan.host_ip} was not reserved (or is already set up)")
            slot = self._reserved.pop(plan.host_ip)
        else:
            slot = self.pool.allocate()
        host_ip, sandbox_ip = self.pool.addresses(slot)
        ifname = self.ifname(slot)
        prefixlen = 30
        created = False
        try:
            async with self._lock:
                await self._delete_link(ifname)  # a leftover with our name would make add fail
                peer = {"ifname": SANDBOX_IFNAME, "net_ns_pid": child_pid}
                await ipr.link("add", ifname=ifname, kind="veth", peer=peer)
                created = True
                # Before the link comes up, so it never gets an IPv6 link-local address.
                _write_sysctl(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "1")
                idx = (await ipr.link_lookup(ifname=ifname))[0]
                await ipr.addr("add", index=idx, address=host_ip, prefixlen=prefixlen)
                await ipr.link("set", index=idx, state="up")
            await _in_netns_thread(child_pid, sandbox_ip, prefixlen, loopback)
        except BaseException as e:
            if created:
                try:
                    async with self._lock:
                        await self._delete_link(ifname)
                except (NetlinkError, OSError) as cleanup:
                    log.error("could not remove %s after a failed setup: %s", ifname, cleanup)
            self.pool.release(slot)
            if isinstance(e, (NetlinkError, OSError, IndexError)):
                msg = f"network setup for sandbox {sandbox_id} (pid {child_pid}) failed: {e}"
                raise NetworkError(msg) from e
            raise
        self._live[host_ip] = _Live(slot, ifname, sandbox_id, child_pid)
        self.setup_seconds.append(time.perf_counter() - t0)
        return self._plan(slot)

    async def teardown(self, plan: NetworkPlan) -> None:
        """Remove the veth (if the kernel has not already) and free the /30. Idempotent."""
        live = self._live.pop(plan.host_ip, None)
        if live is None:
            self.release(plan)
            return
        try:
            async with self._lock:
                await self._delete_link(live.ifname)
        except NetlinkError as e:
            log.error("could not remove %s: %s", live.ifname, e)
        finally:
            self.pool.release(live.slot)
