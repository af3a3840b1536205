"""Which client sent a request when the gateway sits behind reverse proxies (`GIG_TRUST_PROXY`).

`X-Forwarded-For`, `-Proto` and `-Host` are written by whoever connects, so they are believed only
as far as the operator says the chain of proxies in front of the gateway is trusted:

- `false` (default): the headers are ignored; the TCP peer is the client.
- `true`: every hop is trusted; the leftmost forwarded address is the client (only safe when the
  gateway is reachable through the proxy alone).
- a hop count `N`: the last N hops (the peer first) are trusted proxies.
- a list of addresses/CIDRs: hops are trusted while their address is in the list, walking from
  the peer leftwards.

`client_view` is a pure function of (peer, headers, setting) so it can be tested exhaustively.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# A Host value as a proxy may forward it: a DNS name or an IP literal, with an optional port.
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
MAX_HOPS = 64  # a longer chain is an attack, not a deployment


@dataclass(frozen=True, slots=True)
class TrustProxy:
    """The parsed `GIG_TRUST_PROXY`: `hops` trusted hops, or trust decided by `networks`."""

    hops: int = 0
    networks: tuple[Network, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.hops > 0 or bool(self.networks)

    def trusts(self, address: str, depth: int) -> bool:
        """Is the hop at `depth` (0 = the TCP peer) with this address a trusted proxy?"""
        if self.networks:
            ip = _ip(address)
            return ip is not None and any(ip in net for net in self.networks)
        return depth < self.hops


TRUST_NONE = TrustProxy()


def parse_trust_proxy(raw: str) -> TrustProxy:
    """`false` | `true` | a hop count | comma-separated addresses/CIDRs; ValueError says what is wrong."""
    value = raw.strip().lower()
    if value in ("", "false", "0", "no", "off"):
        return TRUST_NONE
    if value in ("true", "yes", "on"):
        return TrustProxy(hops=MAX_HOPS)
    if value.isdigit():
        hops = int(value)
        if hops > MAX_HOPS:
            raise ValueError(f"a hop count must be at most {MAX_HOPS}, got {hops}")
        return TrustProxy(hops=hops)
    networks: list[Network] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"expected false, true, a hop count or addresses/CIDRs, got {item!r}") from None
    return TrustProxy(networks=tuple(networks))


@dataclass(frozen=True, slots=True)
class ClientView:
    """The request as the client made it: its address, the scheme and the host it used."""

    address: str
    scheme: str
    host: str | None
    hops: int = 0  # how many trusted proxies the request went through


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    # An IPv4 peer on a dual-stack socket shows up as ::ffff:a.b.c.d; CIDR lists are written in IPv4.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _values(headers: Mapping[str, str], name: str) -> list[str]:
    # Several header lines and comma-separated lists mean the same thing (RFC 9110 §5.3).
    getall = getattr(headers, "getall", None)
    lines = list(getall(name, [])) if callable(getall) else ([headers[name]] if name in headers else [])
    return [item.strip() for line in lines for item in str(line).split(",") if item.strip()]


def _forwarded_address(item: str) -> str | None:
    # Plain addresses are the norm; tolerate "[v6]:port" and "v4:port" which some proxies write.
    if item.startswith("["):
        item = item[1:].split("]", 1)[0]
    elif item.count(":") == 1:
        item = item.split(":", 1)[0]
    ip = _ip(item)
    return str(ip) if ip is not None else None


def _pick(values: list[str], hops: int) -> str | None:
    # Each proxy appends its own view; the outermost trusted one (the first to see the client)
    # wrote the entry `hops` places from the right.
    if not values or hops <= 0:
        return None
    return values[max(0, len(values) - hops)]


def client_view(peer: str | None, headers: Mapping[str, str], trust: TrustProxy, *,
                scheme: str = "http") -> ClientView:
    """The client's address, scheme and host, believing forwarded headers only from trusted hops."""
    own_host = headers.get("Host")
    peer_ip = _ip(peer or "")
    peer_address = str(peer_ip) if peer_ip is not None else (peer or "")
    if not trust.enabled or peer_ip is None:
        return ClientView(peer_address, scheme, own_host)
    chain = _values(headers, "X-Forwarded-For")[-MAX_HOPS:]
    client, hops = peer_address, 0
    # Walk from the peer towards the client while the current hop is a trusted proxy.
    while trust.trusts(client, hops) and hops < len(chain):
        previous = _forwarded_address(chain[len(chain) - 1 - hops])
        if previous is None:
            break  # garbage in the chain: stop at the last address a trusted proxy vouched for
        client, hops = previous, hops + 1
    if hops == 0 and not trust.trusts(peer_address, 0):
        return ClientView(peer_address, scheme, own_host)
    # Proto and host are believed when at least the peer is a trusted proxy, even without X-Forwarded-For.
    believed = max(hops, 1)
    proto = (_pick(_values(headers, "X-Forwarded-Proto"), believed) or "").lower()
    host = _pick(_values(headers, "X-Forwarded-Host"), believed)
    return ClientView(
        address=client,
        scheme=proto if proto in ("http", "https") else scheme,
        host=host if host and _HOST_RE.match(host) else own_host,
        hops=hops,
    )
