"""Host firewall for sandbox interfaces: one nftables table, `inet gigmcp`.

Sandbox veths (`gsb*`) may reach only the proxy port(s) on the host addresses of the sandbox range.
Everything else arriving from them (the gateway's own ports, SSH, ICMP to the host, any IPv6) is
refused, TCP with a reset so clients fail fast instead of waiting for a timeout; nothing is ever
forwarded in or out of a sandbox interface, which matters on hosts with ip_forward=1 (Docker...).

The interface name is matched with a wildcard, so no rule changes per sandbox. The table is
replaced atomically in one `nft -f -` transaction ("add; delete; define"), which makes `up`
idempotent across gateway restarts; `down` removes it.

Drop verdicts are final across tables; our accept is not (another table can still refuse), and our
chains run at priority filter-10, before the usual filter chains.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,30}$")


class FirewallError(Exception):
    """nft refused the ruleset or is missing."""


@dataclass(frozen=True, slots=True)
class FirewallConfig:
    proxy_ports: tuple[int, ...] = (3128,)
    subnet: str = "10.88.0.0/16"
    ifname_prefix: str = "gsb"
    table: str = "gigmcp"

    def __post_init__(self) -> None:
        if not self.proxy_ports or any(not 0 < p < 65536 for p in self.proxy_ports):
            raise ValueError(f"invalid proxy ports {self.proxy_ports!r}")
        if not isinstance(ipaddress.ip_network(self.subnet), ipaddress.IPv4Network):
            raise ValueError("the sandbox subnet must be IPv4")
        if not _NAME.match(self.table) or not self.ifname_prefix.isalnum():
            raise ValueError("table and interface prefix must be plain identifiers")


def render_ruleset(cfg: FirewallConfig) -> str:
    """The complete `nft -f` script: replaces the table atomically (works whether it exists or not)."""
    iif = f'iifname "{cfg.ifname_prefix}*"'
    oif = f'oifname "{cfg.ifname_prefix}*"'
    ports = ", ".join(str(p) for p in sorted(set(cfg.proxy_ports)))
    subnet = str(ipaddress.ip_network(cfg.subnet))
    return f"""table inet {cfg.table}
delete table inet {cfg.table}
table inet {cfg.table} {{
    chain input {{
        type filter hook input priority filter - 10; policy accept;
        {iif} meta nfproto ipv4 ip daddr {subnet} tcp dport {{ {ports} }} accept
        {iif} meta l4proto tcp counter reject with tcp reset
        {iif} counter drop
    }}
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        {iif} counter drop
        {oif} counter drop
    }}
}}
"""


async def _nft(script: str | None, *args: str) -> tuple[int, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            "nft",
            *args,
            stdin=asyncio.subprocess.PIPE if script is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise FirewallError("nft not found: install the nftables package") from None
    out, err = await proc.communicate(script.encode() if script is not None else None)
    rc = proc.returncode if proc.returncode is not None else -1
    return rc, (out + err).decode(errors="replace").strip()


async def firewall_up(cfg: FirewallConfig) -> None:
    """Install (or replace) the table."""
    rc, msg = await _nft(render_ruleset(cfg), "-f", "-")
    if rc != 0:
        raise FirewallError(f"nft rejected the sandbox ruleset: {msg}")


async def firewall_down(cfg: FirewallConfig) -> None:
    """Remove the table; a missing table is fine."""
    rc, msg = await _nft(None, "delete", "table", "inet", cfg.table)
    if rc != 0 and "No such file or directory" not in msg:
        raise FirewallError(f"nft could not remove table {cfg.table}: {msg}")


async def firewall_active(cfg: FirewallConfig) -> bool:
    rc, _ = await _nft(None, "list", "table", "inet", cfg.table)
    return rc == 0
