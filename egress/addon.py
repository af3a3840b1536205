"""The mitmproxy addon that enforces a sandbox's egress policy.

A sandbox is identified by the peer address of the client connection (its veth address, one /30 per
network namespace, so it cannot be forged from inside) and the local address it connected to (the
host end of its own veth). Decisions come from `egress.policy`; this module only wires them to
mitmproxy's hooks:

- `client_connected`: unknown peer or listener mismatch, or over the connection cap -> connection killed.
- `http_connect`: host/port allowed? name resolved once, every address checked, the tunnel pinned to
  the checked address (`flow.request.host = ip`; never rewrite `server.address` in `server_connect`,
  which breaks mitmproxy's connection reuse).
- `tls_clienthello`: the SNI must equal the CONNECT host.
- `requestheaders`: rate limit, Host header, method/path rules, credential injection. Everything that
  changes the request happens here because a streamed request body leaves right after this hook.
- `responseheaders`/`response`: secrets echoed back are replaced by their placeholders; audit.
- `server_connect`: last guard; only addresses this addon pinned are ever connected to.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import connection, http, tcp, tls, udp
from mitmproxy.proxy import server_hooks

from egress import policy as pol
from egress.audit import ALLOW, DENY, ERROR, AuditRecord
from egress.scrub import StreamScrubber, scrub, scrub_text

log = logging.getLogger(__name__)

SecretResolver = Callable[[str, str], Awaitable[str | None]]
"""(sandbox_id, credential_id) -> the current secret, asked per request so rotation applies at once."""
AuditSink = Callable[[AuditRecord], None]
DnsResolver = Callable[[str, int], Awaitable[list[str]]]

DENY_HEADER = "X-Gig-Deny-Reason"
_STATUS = {
    pol.RATE_LIMITED: 429,
    pol.RESOLVE_FAILED: 502,
    pol.CREDENTIAL_UNAVAILABLE: 503,
}
_META = "gig"  # key of our per-flow state in flow.metadata


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(i[4][0]) for i in infos))


@dataclass
class Binding:
    """A sandbox known to the proxy: its addresses, policy and live counters."""

    sandbox_ip: str
    host_ip: str
    policy: pol.SandboxPolicy
    bucket: pol.TokenBucket
    connections: int = 0


@dataclass
class _Conn:
    """Per client connection: who it is and what its CONNECT tunnel was checked for."""

    binding: Binding
    tunnel_host: str | None = None
    tunnel_port: int = 0
    sni_mismatch: bool = False
    pinned: set[str] = field(default_factory=set)


@dataclass
class _FlowState:
    binding: Binding
    host: str
    port: int
    path: str
    decision: str = ALLOW
    reason: str = pol.ALLOWED
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (secret, placeholder)
    up: _Counter | None = None
    down: StreamScrubber | None = None
    audited: bool = False


class _Counter:
    """Pass-through stream callable that counts bytes (streamed request bodies)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, chunk: bytes) -> bytes:
        self.n += len(chunk)
        return chunk


def _deny_response(status: int, reason: str, close: bool = False) -> http.Response:
    body = json.dumps({"error": "egress_denied", "reason": reason}).encode()
    headers = {"Content-Type": "application/json", DENY_HEADER: reason}
    if close:  # a refused CONNECT ends the connection; a refused request keeps the tunnel usable
        headers["Connection"] = "close"
    return http.Response.make(status, body, headers)


class EgressAddon:
    def __init__(
        self,
        *,
        secret_resolver: SecretResolver,
        audit_sink: AuditSink,
        dns_resolver: DnsResolver = system_resolve,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secrets = secret_resolver
        self._audit = audit_sink
        self._dns = dns_resolver
        self._clock = clock
        self.bindings: dict[str, Binding] = {}  # sandbox_ip -> binding
        self._conns: dict[str, _Conn] = {}  # client connection id -> state
        self.counters: dict[str, int] = {
            "allowed": 0,
            "denied": 0,
            "errors": 0,
            "connections": 0,
            "connections_killed": 0,
        }
        self.started = asyncio.Event()

    # --- bindings ---------------------------------------------------------------------------------

    def bind(self, sandbox_ip: str, host_ip: str, policy: pol.SandboxPolicy) -> Binding:
        old = self.bindings.get(sandbox_ip)
        b = Binding(sandbox_ip, host_ip, policy, pol.TokenBucket(policy.max_rps))
        if old is not None and old.host_ip == host_ip:
            b.connections = old.connections
            # Existing connections keep counting against the new binding.
            for c in self._conns.values():
                if c.binding is old:
                    c.binding = b
        self.bindings[sandbox_ip] = b
        return b

    def unbind(self, sandbox_ip: str) -> Binding | None:
        return self.bindings.pop(sandbox_ip, None)

    def _binding(self, client: connection.Client) -> Binding | None:
        if not client.peername or not client.sockname:
            return None
        b = self.bindings.get(str(client.peername[0]))
        # The right source address on another sandbox's listener is refused: each sandbox may only
        # talk to the host end of its own veth.
        if b is None or str(client.sockname[0]) != b.host_ip:
            return None
        return b

    def _conn(self, client: connection.Client) -> _Conn | None:
        c = self._conns.get(client.id)
        if c is None:
            return None
        b = self._binding(client)
        # Unbound (or rebound to another veth) since the connection opened: refuse from now on.
        return c if b is not None and b is c.binding else None

    # --- audit ------------------------------------------------------------------------------------

    def _record(
        self,
        binding: Binding | None,
        *,
        method: str,
        host: str,
        port: int,
        path: str,
        status: int,
        up: int,
        down: int,
        decision: str,
        reason: str,
        secrets: list[tuple[str, str]] | None = None,
    ) -> None:
        self.counters[{ALLOW: "allowed", DENY: "denied"}.get(decision, "errors")] += 1
        p = binding.policy if binding else None
        rec = AuditRecord(
            time=time.time(),
            sandbox_id=p.sandbox_id if p else "",
            server=p.server if p else "",
            profile=p.profile if p else "",
            user=p.user if p else "",
            method=method,
            host=host,
            port=port,
            path=scrub_text(path, secrets or []),
            status=status,
            bytes_up=up,
            bytes_down=down,
            decision=decision,
            reason=reason,
        )
        try:
            self._audit(rec)
        except Exception:  # an audit sink bug must not take the proxy down
            log.exception("audit sink failed")

    def _audit_flow(self, flow: http.HTTPFlow, st: _FlowState, decision: str, reason: str) -> None:
        if st.audited:
            return
        st.audited = True
        req, resp = flow.request, flow.response
        up = st.up.n if st.up else len(req.raw_content or b"")
        if st.down is not None:
            down = st.down.bytes_in
        else:
            down = len(resp.raw_content or b"") if resp is not None and decision == ALLOW else 0
        status = resp.status_code if resp is not None else 502
        self._record(
            st.binding,
            method=req.method,
            host=st.host,
            port=st.port,
            path=st.path,
            status=status,
            up=up,
            down=down,
            decision=decision,
            reason=reason,
            secrets=st.secrets,
        )

    # --- hooks ------------------------------------------------------------------------------------

    def running(self) -> None:
        self.started.set()

    def client_connected(self, client: connection.Client) -> None:
        b = self._binding(client)
        peer = str(client.peername[0]) if client.peername else ""
        if b is None:
            self.counters["connections_killed"] += 1
            client.error = pol.UNKNOWN_SANDBOX
            self._record(
                None,
                method="",
                host=peer,
                port=0,
                path="",
                status=0,
                up=0,
                down=0,
                decision=DENY,
                reason=pol.UNKNOWN_SANDBOX,
            )
            return
        if b.connections >= b.policy.max_connections:
            self.counters["connections_killed"] += 1
            client.error = pol.TOO_MANY_CONNECTIONS
            self._record(
                b,
                method="",
                host="",
                port=0,
                path="",
                status=0,
                up=0,
                down=0,
                decision=DENY,
                reason=pol.TOO_MANY_CONNECTIONS,
            )
            return
        b.connections += 1
        self.counters["connections"] += 1
        self._conns[client.id] = _Conn(binding=b)

    def client_disconnected(self, client: connection.Client) -> None:
        c = self._conns.pop(client.id, None)
        if c is not None:
            c.binding.connections = max(0, c.binding.connections - 1)

    async def _resolve_checked(self, p: pol.SandboxPolicy, host: str, port: int) -> tuple[str | None, str]:
        """Resolve once and check every address; (address, reason). Fail closed on any bad address."""
        literal = pol.parse_ip(host)
        if literal is not None:
            addrs = [str(literal)]
        elif host in p.address_overrides:
            addrs = [p.address_overrides[host]]
        else:
            try:
                addrs = await self._dns(host, port)
            except OSError:
                return None, pol.RESOLVE_FAILED
        if not addrs:
            return None, pol.RESOLVE_FAILED
        for a in addrs:
            d = pol.check_address(a, p.allow_loopback)
            if not d.allowed:
                return None, d.reason
        return addrs[0], pol.ALLOWED

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        c = self._conn(flow.client_conn)
        host, port = pol.normalize_host(flow.request.host), flow.request.port
        b = c.binding if c else None
        reason = pol.UNKNOWN_SANDBOX
        if c is not None and b is not None:
            d = pol.decide_connect(b.policy, host, port)
            reason = d.reason
            if d.allowed:
                ip, reason = await self._resolve_checked(b.policy, host, port)
                if ip is not None:
                    c.tunnel_host, c.tunnel_port = host, port
                    c.pinned.add(ip)
                    flow.request.host = ip  # pin: the tunnel goes to the checked address only
                    return
        flow.response = _deny_response(_STATUS.get(reason, 403), reason, close=True)
        self._record(
            b,
            method="CONNECT",
            host=host,
            port=port,
            path="",
            status=flow.response.status_code,
            up=0,
            down=0,
            decision=DENY,
            reason=reason,
        )

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        c = self._conns.get(data.context.client.id)
        if c is None or c.tunnel_host is None:
            return
        sni = data.client_hello.sni
        expected = c.tunnel_host
        # No SNI toward a name would make the upstream check run against the pinned IP; treat it
        # as a mismatch too (IP-literal tunnels legitimately carry no SNI).
        if sni is None:
            c.sni_mismatch = pol.parse_ip(expected) is None
        else:
            c.sni_mismatch = pol.normalize_host(sni) != expected

    def _deny(self, flow: http.HTTPFlow, st: _FlowState, reason: str) -> None:
        st.decision, st.reason = DENY, reason
        flow.response = _deny_response(_STATUS.get(reason, 403), reason)

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        c = self._conn(flow.client_conn)
        tunnel = c is not None and c.tunnel_host is not None
        if c is not None and c.tunnel_host is not None:
            host, port = c.tunnel_host, c.tunnel_port
        else:
            host, port = pol.normalize_host(req.host), req.port
        if c is None:
            # Unknown or unbound: answer (so the sandbox sees why) and audit without a binding.
            flow.response = _deny_response(403, pol.UNKNOWN_SANDBOX)
            self._record(
                None,
                method=req.method,
                host=host,
                port=port,
                path=req.path,
                status=403,
                up=0,
                down=0,
                decision=DENY,
                reason=pol.UNKNOWN_SANDBOX,
            )
            return
        st = _FlowState(binding=c.binding, host=host, port=port, path=req.path)
        flow.metadata[_META] = st
        p = c.binding.policy
        if not c.binding.bucket.take(self._clock()):
            return self._deny(flow, st, pol.RATE_LIMITED)
        if tunnel and c.sni_mismatch:
            return self._deny(flow, st, pol.SNI_MISMATCH)
        if not self._host_header_ok(req, host, port):
            return self._deny(flow, st, pol.HOST_HEADER_MISMATCH)
        d = pol.decide_request(p, req.method, host, port, req.path)
        if not d.allowed:
            return self._deny(flow, st, d.reason)
        if not tunnel:
            # Absolute-form request: pin it like a tunnel. data.host keeps the Host header intact.
            ip, reason = await self._resolve_checked(p, host, port)
            if ip is None:
                return self._deny(flow, st, reason)
            c.pinned.add(ip)
            req.data.host = ip
        if req.scheme == "https":  # never put a secret on a cleartext upstream connection
            missing = await self._inject(flow, st, p, host)
            if missing:
                return self._deny(flow, st, pol.CREDENTIAL_UNAVAILABLE)
        if req.stream:
            st.up = _Counter()
            req.stream = st.up

    @staticmethod
    def _host_header_ok(req: http.Request, host: str, port: int) -> bool:
        """Host header and request authority (h2 :authority, HTTP/1 absolute form) name the target."""
        for value in (req.host_header, req.authority):
            if not value:
                continue
            try:
                h, p = _parse_authority(value)
            except ValueError:
                return False
            if pol.normalize_host(h) != host or (p is not None and p != port):
                return False
        return True

    async def _inject(self, flow: http.HTTPFlow, st: _FlowState, p: pol.SandboxPolicy, host: str) -> bool:
        """Put real secrets in place of placeholders toward the credential's hosts; True if one is missing.

        Placeholders are replaced in header values and anywhere in the request target (path and
        query, URL-encoded); then the configured header/query parameter is overwritten.
        """
        req = flow.request
        resolved: list[tuple[pol.CredentialInjection, str]] = []
        for cred in p.credentials:
            if cred.applies_to(host):
                secret = await self._secrets(p.sandbox_id, cred.id)
                if not secret:
                    return True
                resolved.append((cred, secret))
        if not resolved:
            return False
        st.secrets = [(secret, cred.placeholder) for cred, secret in resolved]
        # Longest placeholder first, so one that happens to extend another is replaced whole.
        for cred, secret in sorted(resolved, key=lambda cs: len(cs[0].placeholder), reverse=True):
            for name in list(req.headers.keys()):
                values = req.headers.get_all(name)
                if any(cred.placeholder in v for v in values):
                    req.headers.set_all(name, [v.replace(cred.placeholder, secret) for v in values])
            if cred.placeholder in req.path:
                req.path = req.path.replace(cred.placeholder, urllib.parse.quote(secret, safe=""))
        for cred, secret in resolved:
            if cred.header:
                req.headers[cred.header] = cred.render(secret)  # overwrite whatever the sandbox sent
            if cred.query_param:
                req.query[cred.query_param] = secret
        # Compressed responses would hide an echoed secret from the streaming scrubber.
        req.headers["Accept-Encoding"] = "identity"
        return False

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        st = flow.metadata.get(_META)
        resp = flow.response
        if not isinstance(st, _FlowState) or resp is None or st.decision != ALLOW:
            return
        if st.secrets:
            for name in list(resp.headers.keys()):
                values = resp.headers.get_all(name)
                resp.headers.set_all(name, [scrub_text(v, st.secrets) for v in values])
        event_stream = resp.headers.get("content-type", "").startswith("text/event-stream")
        if resp.stream or event_stream:
            # Large or endless bodies are streamed; the scrubber works across chunk boundaries.
            st.down = StreamScrubber(st.secrets)
            resp.stream = st.down

    def response(self, flow: http.HTTPFlow) -> None:
        st = flow.metadata.get(_META)
        if not isinstance(st, _FlowState):
            return
        resp = flow.response
        if st.decision == ALLOW and st.secrets and resp is not None and st.down is None:
            body = resp.get_content(strict=False)
            if body and any(s.encode() in body for s, _ in st.secrets):
                resp.content = scrub(body, st.secrets)
            elif resp.raw_content and any(s.encode() in resp.raw_content for s, _ in st.secrets):
                resp.raw_content = scrub(resp.raw_content, st.secrets)
        self._audit_flow(flow, st, st.decision, st.reason)

    def error(self, flow: http.HTTPFlow) -> None:
        st = flow.metadata.get(_META)
        if isinstance(st, _FlowState):
            self._audit_flow(
                flow,
                st,
                ERROR if st.decision == ALLOW else st.decision,
                pol.UPSTREAM_ERROR if st.decision == ALLOW else st.reason,
            )

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        # Validate only: rewriting data.server.address here would defeat connection reuse.
        c = self._conn(data.client)
        addr = data.server.address
        if c is None or addr is None:
            data.server.error = pol.UNKNOWN_SANDBOX
            return
        ip = str(addr[0])
        if ip not in c.pinned:
            data.server.error = "address_not_pinned"
            return
        d = pol.check_address(ip, c.binding.policy.allow_loopback)
        if not d.allowed:
            data.server.error = d.reason

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        self._refuse_raw(flow.client_conn, "TCP")
        flow.kill()  # type: ignore[no-untyped-call]

    def udp_start(self, flow: udp.UDPFlow) -> None:
        self._refuse_raw(flow.client_conn, "UDP")
        flow.kill()  # type: ignore[no-untyped-call]

    def _refuse_raw(self, client: connection.Client, proto: str) -> None:
        # Non-HTTP payloads would bypass method/path rules and credential handling.
        c = self._conns.get(client.id)
        self._record(
            c.binding if c else None,
            method=proto,
            host=(c.tunnel_host or "") if c else "",
            port=c.tunnel_port if c else 0,
            path="",
            status=0,
            up=0,
            down=0,
            decision=DENY,
            reason=pol.PROTOCOL_NOT_ALLOWED,
        )

    def stats(self) -> dict[str, Any]:
        return {
            **self.counters,
            "bindings": len(self.bindings),
            "live_connections": len(self._conns),
        }


def _parse_authority(value: str) -> tuple[str, int | None]:
    """Split "host[:port]" (IPv6 in brackets); ValueError on garbage."""
    v = value.strip()
    if v.startswith("["):
        end = v.find("]")
        if end < 0:
            raise ValueError(value)
        host, rest = v[1:end], v[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(value)
        port_s = rest[1:] if rest else ""
    elif v.count(":") == 1:
        host, port_s = v.split(":")
    elif ":" in v:
        raise ValueError(value)  # bare IPv6 without brackets is not a valid authority
    else:
        host, port_s = v, ""
    if not host:
        raise ValueError(value)
    if port_s:
        if not port_s.isdigit() or not 0 < int(port_s) < 65536:
            raise ValueError(value)
        return host, int(port_s)
    return host, None
