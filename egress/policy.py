"""Egress policy: plain data and pure decisions.

Everything here is deterministic and free of I/O so it can be tested exhaustively. The mitmproxy
addon (`egress.addon`) asks these functions, in order: is this sandbox allowed to open a tunnel to
host:port (`decide_connect`), is the address the name resolved to acceptable (`check_address`), and
is this individual request (method, host, port, path) allowed (`decide_request`).

Reasons are short machine-readable strings; they travel in the `X-Gig-Deny-Reason` header, in the
403 body and in audit records.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Reasons (kept as constants so callers and tests never misspell them).
ALLOWED = "allowed"
HOST_NOT_ALLOWED = "host_not_allowed"
PORT_NOT_ALLOWED = "port_not_allowed"
METHOD_NOT_ALLOWED = "method_not_allowed"
PATH_NOT_ALLOWED = "path_not_allowed"
IP_LITERAL = "ip_literal"
ADDRESS_NOT_ALLOWED = "address_not_allowed"  # suffixed with ":<kind>"
SNI_MISMATCH = "sni_mismatch"
HOST_HEADER_MISMATCH = "host_header_mismatch"
RATE_LIMITED = "rate_limited"
TOO_MANY_CONNECTIONS = "too_many_connections"
UNKNOWN_SANDBOX = "unknown_sandbox"
RESOLVE_FAILED = "resolve_failed"
CREDENTIAL_UNAVAILABLE = "credential_unavailable"
PROTOCOL_NOT_ALLOWED = "protocol_not_allowed"
UPSTREAM_ERROR = "upstream_error"

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_METHOD = re.compile(r"^[A-Z]{1,20}$")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str

    @staticmethod
    def allow() -> Decision:
        return Decision(True, ALLOWED)

    @staticmethod
    def deny(reason: str) -> Decision:
        return Decision(False, reason)


def normalize_host(host: str) -> str:
    """Lower-case, strip one trailing dot and IPv6 brackets; IP literals in canonical form."""
    h = host.strip().lower()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    h = h.removesuffix(".")
    ip = parse_ip(h)
    return str(ip) if ip is not None else h


def parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address if `host` is an IP literal (dotted IPv4 or IPv6, brackets allowed), else None."""
    h = host.strip()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        return None


def _valid_hostname(host: str) -> bool:
    labels = host.split(".")
    return len(host) <= 253 and all(_LABEL.match(label) for label in labels)


@dataclass(frozen=True, slots=True)
class EgressRule:
    """One allowed destination. `host` is exact, `*.suffix` (exactly one label deep) or an IP literal.

    Empty `methods` allows every method; empty `path_prefixes` allows every path. A prefix that does
    not end in "/" matches on a segment boundary ("/api" matches "/api" and "/api/x", not "/apix").
    """

    host: str
    ports: tuple[int, ...] = (443,)
    methods: tuple[str, ...] = ()
    path_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        host = normalize_host(self.host)
        if parse_ip(host) is None:
            wildcard = host.startswith("*.")
            bare = host[2:] if wildcard else host
            # "*.com" would open a whole TLD: a wildcard needs at least two labels after it.
            if not bare or "*" in bare or not _valid_hostname(bare) or (wildcard and "." not in bare):
                raise ValueError(f"invalid egress host pattern: {self.host!r}")
        if not self.ports or any(not 0 < p < 65536 for p in self.ports):
            raise ValueError(f"invalid egress ports for {self.host!r}: {self.ports!r}")
        methods = tuple(m.upper() for m in self.methods)
        if any(not _METHOD.match(m) for m in methods):
            raise ValueError(f"invalid egress method for {self.host!r}: {self.methods!r}")
        if any(not p.startswith("/") for p in self.path_prefixes):
            raise ValueError(f"egress path prefixes must start with '/': {self.path_prefixes!r}")
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "ports", tuple(self.ports))
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "path_prefixes", tuple(self.path_prefixes))

    def matches_host(self, host: str) -> bool:
        return host_matches(self.host, host)


def host_matches(pattern: str, host: str) -> bool:
    """Exact match, or `*.suffix` matching exactly one extra label. Both sides already normalized."""
    if pattern.startswith("*."):
        suffix = pattern[1:]  # ".example.com"
        if not host.endswith(suffix):
            return False
        label = host[: -len(suffix)]
        return bool(label) and "." not in label and parse_ip(host) is None
    return pattern == host


def new_placeholder(credential_id: str) -> str:
    """A random, recognisable placeholder the sandbox sees instead of the real secret."""
    safe = re.sub(r"[^A-Za-z0-9]", "", credential_id)[:16] or "cred"
    return f"gigph_{safe}_{secrets.token_hex(16)}"


@dataclass(frozen=True, slots=True)
class CredentialInjection:
    """How one credential reaches its hosts.

    Toward a host in `hosts` the proxy replaces `placeholder` wherever it appears in request headers
    or the query string with the real secret, and additionally overwrites `header` with
    `format` (where "{secret}" stands for the secret) and/or sets `query_param`.
    """

    id: str
    hosts: tuple[str, ...]
    placeholder: str
    header: str | None = None
    format: str = "{secret}"
    query_param: str | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("credential id must not be empty")
        # A short placeholder could occur by chance in unrelated traffic (and then be rewritten).
        if len(self.placeholder) < 16:
            raise ValueError(f"credential {self.id!r}: placeholder must be at least 16 characters")
        if "{secret}" not in self.format:
            raise ValueError(f"credential {self.id!r}: format must contain '{{secret}}'")
        hosts = tuple(normalize_host(h) for h in self.hosts)
        if not hosts:
            raise ValueError(f"credential {self.id!r}: hosts must not be empty")
        object.__setattr__(self, "hosts", hosts)

    def applies_to(self, host: str) -> bool:
        return any(host_matches(p, host) for p in self.hosts)

    def render(self, secret: str) -> str:
        # str.replace, not str.format: a format string must not be able to reach attributes.
        return self.format.replace("{secret}", secret)


_NO_OVERRIDES: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """What one sandbox may reach. `allow_loopback` exists for tests only.

    `address_overrides` maps a host name to the address to use instead of DNS (split-horizon DNS,
    tests). The override is still subject to `check_address`.
    """

    sandbox_id: str
    server: str
    profile: str
    user: str
    rules: tuple[EgressRule, ...] = ()
    credentials: tuple[CredentialInjection, ...] = ()
    allow_loopback: bool = False
    max_connections: int = 64
    max_rps: float = 50.0
    address_overrides: Mapping[str, str] = field(default_factory=lambda: _NO_OVERRIDES)

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_rps <= 0:
            raise ValueError("max_connections and max_rps must be positive")
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "credentials", tuple(self.credentials))
        overrides = {normalize_host(k): v for k, v in self.address_overrides.items()}
        for v in overrides.values():
            if parse_ip(v) is None:
                raise ValueError(f"address override {v!r} is not an IP address")
        object.__setattr__(self, "address_overrides", MappingProxyType(overrides))


def _rules_for_host(policy: SandboxPolicy, host: str) -> tuple[list[EgressRule], Decision | None]:
    h = normalize_host(host)
    if not h:
        return [], Decision.deny(HOST_NOT_ALLOWED)
    rules = [r for r in policy.rules if r.matches_host(h)]
    if not rules:
        # An IP literal is refused unless a rule names exactly that literal (handled by matching).
        return [], Decision.deny(IP_LITERAL if parse_ip(h) is not None else HOST_NOT_ALLOWED)
    return rules, None


def decide_connect(policy: SandboxPolicy, host: str, port: int) -> Decision:
    """May the sandbox open a tunnel to host:port at all?"""
    rules, denied = _rules_for_host(policy, host)
    if denied:
        return denied
    if not any(port in r.ports for r in rules):
        return Decision.deny(PORT_NOT_ALLOWED)
    return Decision.allow()


def split_path(target: str) -> str:
    """The path part of a request target (no query, no fragment); '/' when empty."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    return path or "/"


# %2F is allowed: APIs such as GitLab's put URL-encoded paths in one segment ("acme%2Fapi"). It cannot
# escape a prefix on its own; dot segments are checked after decoding, so "..%2F" is still refused.
_ENCODED_SEPARATOR = re.compile(r"%(5c|00)", re.IGNORECASE)


def path_is_canonical(path: str) -> bool:
    """False for paths an upstream might interpret differently from a prefix check.

    Dot segments (also percent-encoded, or formed with encoded slashes), encoded backslashes/NUL and
    backslashes could turn "/api/../admin" into "/admin" on the server after the prefix check passed.
    """
    if not path.startswith("/") or "\\" in path or _ENCODED_SEPARATOR.search(path):
        return False
    decoded = urllib.parse.unquote(path)
    return all(seg not in (".", "..") for seg in decoded.split("/"))


def path_matches(prefix: str, path: str) -> bool:
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith(prefix + "/")


def decide_request(policy: SandboxPolicy, method: str, host: str, port: int, path: str) -> Decision:
    """May this request go out? Allowed when one single rule allows host, port, method and path.

    When several rules match the host, the reason names the furthest check any of them passed.
    """
    rules, denied = _rules_for_host(policy, host)
    if denied:
        return denied
    rules = [r for r in rules if port in r.ports]
    if not rules:
        return Decision.deny(PORT_NOT_ALLOWED)
    m = method.upper()
    rules = [r for r in rules if not r.methods or m in r.methods]
    if not rules:
        return Decision.deny(METHOD_NOT_ALLOWED)
    p = split_path(path)
    for r in rules:
        if not r.path_prefixes:
            return Decision.allow()
        if path_is_canonical(p) and any(path_matches(pre, p) for pre in r.path_prefixes):
            return Decision.allow()
    return Decision.deny(PATH_NOT_ALLOWED)


_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_ULA = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_6TO4 = ipaddress.ip_network("2002::/16")


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), which is what gets reached."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _6TO4:
        return ip.sixtofour
    return None


def address_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is not a public unicast destination, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            return address_kind(inner)
    if ip in _METADATA:
        return "metadata"
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address):
        if any(ip in n for n in _RFC1918):
            return "private"
        if ip in _CGNAT:
            return "cgnat"
    elif ip in _ULA:
        return "ula"
    if not ip.is_global:
        return "reserved"  # documentation, benchmarking, broadcast, 240/4, ...
    return None


def check_address(ip: str, allow_loopback: bool = False) -> Decision:
    """Is a resolved address an acceptable upstream? `allow_loopback` is for tests only."""
    addr = parse_ip(ip)
    if addr is None:
        return Decision.deny(f"{ADDRESS_NOT_ALLOWED}:invalid")
    kind = address_kind(addr)
    if kind is None or (kind == "loopback" and allow_loopback):
        return Decision.allow()
    return Decision.deny(f"{ADDRESS_NOT_ALLOWED}:{kind}")


class TokenBucket:
    """Requests per second with a burst of one second's worth; time is passed in (testable)."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._last: float | None = None

    def take(self, now: float) -> bool:
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


# --- JSON form (the control channel between the gateway and the proxy process) -------------------


def policy_to_dict(policy: SandboxPolicy) -> dict[str, Any]:
    return {
        "sandbox_id": policy.sandbox_id,
        "server": policy.server,
        "profile": policy.profile,
        "user": policy.user,
        "rules": [
            {
                "host": r.host,
                "ports": list(r.ports),
                "methods": list(r.methods),
                "path_prefixes": list(r.path_prefixes),
            }
            for r in policy.rules
        ],
        "credentials": [
            {
                "id": c.id,
                "hosts": list(c.hosts),
                "placeholder": c.placeholder,
                "header": c.header,
                "format": c.format,
                "query_param": c.query_param,
            }
            for c in policy.credentials
        ],
        "allow_loopback": policy.allow_loopback,
        "max_connections": policy.max_connections,
        "max_rps": policy.max_rps,
        "address_overrides": dict(policy.address_overrides),
    }


def policy_from_dict(d: Mapping[str, Any]) -> SandboxPolicy:
    """Inverse of `policy_to_dict`; raises ValueError/KeyError/TypeError on malformed input."""
    return SandboxPolicy(
        sandbox_id=str(d["sandbox_id"]),
        server=str(d["server"]),
        profile=str(d["profile"]),
        user=str(d["user"]),
        rules=tuple(
            EgressRule(
                host=str(r["host"]),
                ports=tuple(int(p) for p in r.get("ports", (443,))),
                methods=tuple(str(m) for m in r.get("methods", ())),
                path_prefixes=tuple(str(p) for p in r.get("path_prefixes", ())),
            )
            for r in d.get("rules", ())
        ),
        credentials=tuple(
            CredentialInjection(
                id=str(c["id"]),
                hosts=tuple(str(h) for h in c["hosts"]),
                placeholder=str(c["placeholder"]),
                header=None if c.get("header") is None else str(c["header"]),
                format=str(c.get("format", "{secret}")),
                query_param=None if c.get("query_param") is None else str(c["query_param"]),
            )
            for c in d.get("credentials", ())
        ),
        allow_loopback=bool(d.get("allow_loopback", False)),
        max_connections=int(d.get("max_connections", 64)),
        max_rps=float(d.get("max_rps", 50.0)),
        address_overrides={str(k): str(v) for k, v in dict(d.get("address_overrides", {})).items()},
    )
