"""Per-sandbox networking: the glue between a spawn and the egress proxy.

Every sandbox gets one veth whose only reachable address is the proxy listener on its host end
(the nftables table enforces that), and the proxy gets the sandbox's policy — the manifest's
egress rules, narrowed later by consent — bound to the sandbox's address before it is released.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egress import AuditRecord, CredentialInjection, EgressRule, EgressSupervisor, SandboxPolicy
from gateway.manifest import Manifest
from sandbox.firewall import FirewallConfig, firewall_down, firewall_up
from sandbox.network import NetworkManager
from sandbox.spec import NetworkPlan

log = logging.getLogger(__name__)

CA_PATH = "/etc/gigmcp/proxy-ca.pem"
SecretResolver = Callable[[str, str], Awaitable[str | None] | str | None]


@dataclass(frozen=True, slots=True)
class EgressSettings:
    subnet: str = "10.88.0.0/16"
    proxy_port: int = 3128
    upstream_ca_file: str | None = None
    # Test-only: resolve these names to fixed addresses and allow loopback/private targets.
    test_overrides: Mapping[str, str] = field(default_factory=dict)
    if_prefix: str = "gsb"


def policy_for(manifest: Manifest, *, sandbox_id: str, profile: str, user: str,
               credentials: tuple[CredentialInjection, ...] = (), settings: EgressSettings | None = None,
               ) -> SandboxPolicy:
    """The proxy policy of one sandbox: pure translation of the manifest's egress rules."""
    rules = tuple(EgressRule(host=e.host, ports=e.ports, methods=e.methods, path_prefixes=e.paths)
                  for e in manifest.egress)
    overrides = dict(settings.test_overrides) if settings else {}
    return SandboxPolicy(
        sandbox_id=sandbox_id,
        server=manifest.name,
        profile=profile,
        user=user,
        rules=rules,
        credentials=credentials,
        allow_loopback=bool(overrides),
        address_overrides=overrides,
    )


def sandbox_env(plan: NetworkPlan) -> dict[str, str]:
    """What a sandboxed process needs to find the proxy and trust its certificates."""
    env = {"SSL_CERT_FILE": CA_PATH, "REQUESTS_CA_BUNDLE": CA_PATH, "CURL_CA_BUNDLE": CA_PATH,
           "NODE_EXTRA_CA_CERTS": CA_PATH, "NO_PROXY": "localhost,127.0.0.1", "no_proxy": "localhost,127.0.0.1"}
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        env[name] = plan.proxy_url
    return env


class SandboxNetworking:
    """Owns the firewall table, the address pool and the proxy process for the gateway's lifetime."""

    def __init__(self, settings: EgressSettings, *, secret_resolver: SecretResolver | None,
                 audit_sink: Callable[[AuditRecord], Any] | None, workdir: Path) -> None:
        self.settings = settings
        table = "gigmcp" if settings.if_prefix == "gsb" else f"gigmcp_{settings.if_prefix}"
        self.firewall = FirewallConfig(proxy_ports=(settings.proxy_port,), subnet=settings.subnet,
                                       ifname_prefix=settings.if_prefix, table=table)
        self.net = NetworkManager(subnet=settings.subnet, proxy_port=settings.proxy_port,
                                  ifname_prefix=settings.if_prefix)
        self.proxy = EgressSupervisor(
            port=settings.proxy_port, upstream_ca=settings.upstream_ca_file,
            secret_resolver=secret_resolver, audit_sink=audit_sink, workdir=str(workdir),
        )
        self.ca_pem = b""
        self.proxy_workdir = str(workdir)

    async def start(self) -> None:
        Path(self.proxy_workdir).mkdir(mode=0o700, parents=True, exist_ok=True)
        await firewall_up(self.firewall)
        await self.net.start()
        await self.proxy.start()
        self.ca_pem = Path(self.proxy.ca_cert_path).read_bytes()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.proxy.stop()
        with contextlib.suppress(Exception):
            await self.net.close()
        with contextlib.suppress(Exception):
            await firewall_down(self.firewall)

    def reserve(self) -> NetworkPlan:
        return self.net.reserve()

    async def attach(self, plan: NetworkPlan, child_pid: int, policy: SandboxPolicy) -> None:
        await self.net.setup(child_pid, policy.sandbox_id, plan=plan, loopback=False)  # bwrap owns lo
        await self.proxy.bind(plan.sandbox_ip, plan.host_ip, policy)

    async def detach(self, plan: NetworkPlan) -> None:
        """Unbind and remove the sandbox's network; safe for a plan that was only reserved."""
        with contextlib.suppress(Exception):
            await self.proxy.unbind(plan.sandbox_ip)
        with contextlib.suppress(Exception):
            await self.net.teardown(plan)
