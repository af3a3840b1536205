"""End to end: sandboxes in real network namespaces reach a local TLS upstream only through the
egress proxy process, with the nftables table up. Root only; everything stays on this machine."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from egress.audit import AuditRecord
from egress.policy import CredentialInjection, EgressRule, SandboxPolicy, new_placeholder
from egress.supervisor import EgressSupervisor
from sandbox.firewall import FirewallConfig, firewall_down, firewall_up
from sandbox.network import NetworkManager
from sandbox.spec import NetworkPlan
from tests.integration.conftest_egress import (
    Netns,
    Pki,
    Upstream,
    body,
    codes,
    curl_args,
    needs_root,
    pki,  # noqa: F401  (fixture)
    upstream,  # noqa: F401  (fixture)
)

pytestmark = [pytest.mark.root, needs_root(), pytest.mark.timeout(60)]

PORT = 3129  # proxy port for the tests (a real gateway uses 3128 on other addresses)
SUBNET = "10.89.0.0/16"
PREFIX = "gsbt"
FW = FirewallConfig(proxy_ports=(PORT,), subnet=SUBNET, ifname_prefix=PREFIX, table="gigtest")
PH = new_placeholder("api")
SECRETS: dict[tuple[str, str], str] = {("sb-a", "api"): "s3cr3t-A-0123456789abcdef"}
INLINE_SECRET = "inl1ne-B-fedcba9876543210"
NAMES = ("allowed.test", "api.allowed.test", "evil.test", "other.test")


def make_policy(sid: str, up: Upstream, **kw: Any) -> SandboxPolicy:
    return SandboxPolicy(
        sandbox_id=sid,
        server="echo",
        profile="default",
        user="alice",
        rules=(
            EgressRule(
                "allowed.test",
                ports=(up.https_port, up.http_port),
                methods=("GET", "POST"),
                path_prefixes=("/api/", "/slow"),
            ),
            EgressRule("*.allowed.test", ports=(up.https_port,)),
        ),
        credentials=(
            CredentialInjection(
                id="api",
                hosts=("allowed.test", "*.allowed.test"),
                placeholder=PH,
                header="Authorization",
                format="Bearer {secret}",
            ),
        ),
        allow_loopback=True,
        address_overrides={n: "127.0.0.1" for n in NAMES},
        **kw,
    )


@dataclass
class Sandbox:
    ns: Netns
    plan: NetworkPlan
    ca: str

    async def curl(self, *extra: str, proxy: str | None = None) -> Any:
        return await self.ns.run(*curl_args(proxy or self.plan.proxy_url, self.ca, *extra))


@dataclass
class Env:
    sup: EgressSupervisor
    net: NetworkManager
    up: Upstream
    audit: list[AuditRecord]
    a: Sandbox
    b: Sandbox

    async def records_for(self, sid: str, n: int, timeout: float = 5.0) -> list[AuditRecord]:
        """The last n audit records of sandbox sid (waits for them to arrive)."""
        deadline = time.monotonic() + timeout
        while True:
            recs = [r for r in self.audit if r.sandbox_id == sid]
            if len(recs) >= n or time.monotonic() > deadline:
                return recs[-n:]
            await asyncio.sleep(0.02)

    def mark(self) -> int:
        return len(self.audit)

    async def since(self, mark: int, n: int = 1, timeout: float = 5.0) -> list[AuditRecord]:
        deadline = time.monotonic() + timeout
        while len(self.audit) - mark < n and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.audit[mark:]


@pytest.fixture(scope="module")
async def env(pki: Pki, upstream: Upstream) -> AsyncIterator[Env]:  # noqa: F811
    audit: list[AuditRecord] = []

    async def resolver(sid: str, cred: str) -> str | None:
        return SECRETS.get((sid, cred))

    sup = EgressSupervisor(
        port=PORT,
        upstream_ca=str(pki.ca_pem),
        secret_resolver=resolver,
        audit_sink=audit.append,
        backoff=(0.05, 1.0),
    )
    net = NetworkManager(subnet=SUBNET, proxy_port=PORT, ifname_prefix=PREFIX)
    namespaces: list[Netns] = []
    plans: list[NetworkPlan] = []
    await sup.start()
    await net.start()
    await firewall_up(FW)
    try:
        sandboxes = []
        for sid, secrets in (("sb-a", None), ("sb-b", {"api": INLINE_SECRET})):
            ns = Netns()
            namespaces.append(ns)
            plan = await net.setup(ns.pid, sid)
            plans.append(plan)
            await sup.bind(plan.sandbox_ip, plan.host_ip, make_policy(sid, upstream), secrets=secrets)
            sandboxes.append(Sandbox(ns, plan, sup.ca_cert_path))
        yield Env(sup, net, upstream, audit, sandboxes[0], sandboxes[1])
    finally:
        for ns in namespaces:
            ns.kill()
        for plan in plans:
            await net.teardown(plan)
        assert net.live == 0 and net.pool.in_use == 0
        await net.close()
        await sup.stop()
        await firewall_down(FW)


def url(up: Upstream, path: str, host: str = "allowed.test", port: int | None = None) -> str:
    return f"https://{host}:{port or up.https_port}{path}"


async def test_allowed_request_gets_real_secret_and_sees_only_placeholder(env: Env) -> None:
    secret = SECRETS[("sb-a", "api")]
    r = await env.a.curl(
        "-H", f"Authorization: Bearer {PH}", "-H", f"X-Key: k={PH}", url(env.up, f"/api/echo?token={PH}")
    )
    assert codes(r) == (200, 200), r.err
    seen = env.up.last()
    # Upstream got the real secret in the configured header, in other headers and in the query.
    assert seen["headers"]["authorization"] == f"Bearer {secret}"
    assert seen["headers"]["x-key"] == f"k={secret}"
    assert seen["path"] == f"/api/echo?token={secret}"
    # The sandbox never sees it: the echo (body and X-Echo-Auth header) comes back scrubbed.
    assert secret not in r.out and secret not in r.err
    assert body(r)["headers"]["authorization"] == f"Bearer {PH}"
    assert f"Bearer {PH}" in r.err  # X-Echo-Auth, scrubbed
    rec = (await env.records_for("sb-a", 1))[-1]
    assert (rec.decision, rec.reason, rec.status, rec.host, rec.method) == (
        "allow",
        "allowed",
        200,
        "allowed.test",
        "GET",
    )
    assert rec.user == "alice" and rec.server == "echo" and rec.profile == "default"
    assert rec.path == f"/api/echo?token={PH}" and rec.bytes_down > 0


async def test_header_injected_even_if_sandbox_sends_nothing_and_wildcard_host(env: Env) -> None:
    secret = SECRETS[("sb-a", "api")]
    r = await env.a.curl(url(env.up, "/anything", host="api.allowed.test"))
    assert codes(r) == (200, 200), r.err
    assert env.up.last()["headers"]["authorization"] == f"Bearer {secret}"
    assert env.up.last()["host"] == f"api.allowed.test:{env.up.https_port}"


async def test_secret_rotation_applies_to_next_request(env: Env) -> None:
    old = SECRETS[("sb-a", "api")]
    SECRETS[("sb-a", "api")] = "rotated-secret-0123456789"
    try:
        r = await env.a.curl(url(env.up, "/api/rot"))
        assert codes(r)[0] == 200
        assert env.up.last()["headers"]["authorization"] == "Bearer rotated-secret-0123456789"
    finally:
        SECRETS[("sb-a", "api")] = old


async def test_inline_secret_and_streamed_echo_is_scrubbed(env: Env) -> None:
    r = await env.b.curl("-N", url(env.up, "/api/sse"))
    assert codes(r)[0] == 200, r.err
    assert INLINE_SECRET not in r.out
    assert f"data: Bearer {PH}" in r.out  # the secret was split across two chunks upstream


async def test_missing_secret_is_refused(env: Env) -> None:
    saved = SECRETS.pop(("sb-a", "api"))
    try:
        r = await env.a.curl(url(env.up, "/api/x"))
        assert codes(r)[0] == 503 and r.deny_reason() == "credential_unavailable"
    finally:
        SECRETS[("sb-a", "api")] = saved


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (lambda up: f"https://evil.test:{up.https_port}/api/x", "host_not_allowed"),
        (lambda up: f"https://127.0.0.1:{up.https_port}/api/x", "ip_literal"),
        (lambda up: f"https://allowed.test:{up.other_port}/api/x", "port_not_allowed"),
        (lambda up: f"https://a.b.allowed.test:{up.https_port}/", "host_not_allowed"),
    ],
)
async def test_connect_refused_before_tls(env: Env, target: Callable[[Upstream], str], reason: str) -> None:
    mark, n_seen = env.mark(), len(env.up.seen)
    r = await env.a.curl(target(env.up))
    assert r.rc != 0 and codes(r) == (0, 403), r.err
    assert r.deny_reason() == reason
    assert len(env.up.seen) == n_seen  # nothing reached the upstream
    rec = [x for x in await env.since(mark) if x.sandbox_id == "sb-a"][-1]
    assert (rec.method, rec.decision, rec.reason, rec.status) == ("CONNECT", "deny", reason, 403)


@pytest.mark.parametrize(
    ("extra", "path", "reason"),
    [
        (("-X", "DELETE"), "/api/x", "method_not_allowed"),
        ((), "/admin", "path_not_allowed"),
        (("--path-as-is",), "/api/../admin", "path_not_allowed"),
        ((), "/api/%2e%2e/admin", "path_not_allowed"),
        (("-H", "Host: evil.test"), "/api/x", "host_header_mismatch"),
    ],
)
async def test_request_rules_inside_the_tunnel(env: Env, extra: tuple[str, ...], path: str, reason: str) -> None:
    mark, n_seen = env.mark(), len(env.up.seen)
    r = await env.a.curl(*extra, url(env.up, path))
    assert codes(r) == (403, 200), r.err
    assert body(r) == {"error": "egress_denied", "reason": reason}
    assert r.deny_reason() == reason
    assert len(env.up.seen) == n_seen
    rec = [x for x in await env.since(mark) if x.sandbox_id == "sb-a"][-1]
    assert (rec.decision, rec.reason, rec.status) == ("deny", reason, 403)


async def test_sni_must_match_connect_host(env: Env) -> None:
    code = f"""
import json, socket, ssl
s = socket.create_connection(("{env.a.plan.host_ip}", {PORT}), timeout=5)
s.sendall(b"CONNECT allowed.test:{env.up.https_port} HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n")
assert s.recv(4096).startswith(b"HTTP/1.1 200")
ctx = ssl.create_default_context(cafile="{env.a.ca}")
t = ctx.wrap_socket(s, server_hostname="evil.test")
host = b"Host: allowed.test:{env.up.https_port}"
t.sendall(b"GET /api/x HTTP/1.1\\r\\n" + host + b"\\r\\nConnection: close\\r\\n\\r\\n")
data = b""
while chunk := t.recv(4096):
    data += chunk
print(json.dumps(data.decode()))
"""
    out = await env.a.ns.python(code)
    assert out.startswith("HTTP/1.1 403") and "sni_mismatch" in out


async def test_plain_http_checked_and_never_gets_secrets(env: Env) -> None:
    r = await env.a.curl(f"http://allowed.test:{env.up.http_port}/api/plain?t={PH}")
    assert codes(r)[0] == 200, r.err
    assert env.up.last()["path"] == f"/api/plain?t={PH}"  # no injection over cleartext
    assert "authorization" not in env.up.last()["headers"]
    r = await env.a.curl(f"http://evil.test:{env.up.http_port}/api/plain")
    assert codes(r)[0] == 403 and r.deny_reason() == "host_not_allowed"
    r = await env.a.curl(f"http://127.0.0.1:{env.up.http_port}/api/plain")
    assert codes(r)[0] == 403 and r.deny_reason() == "ip_literal"


async def test_raw_tcp_in_tunnel_is_refused(env: Env) -> None:
    mark = env.mark()
    code = f"""
import json, socket
s = socket.create_connection(("{env.a.plan.host_ip}", {PORT}), timeout=5)
s.sendall(b"CONNECT allowed.test:{env.up.https_port} HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n")
ok = s.recv(4096).startswith(b"HTTP/1.1 200")
s.sendall(b"\\x00\\x01binary-not-http\\r\\n")
try:
    rest = s.recv(4096)
except OSError:
    rest = b""
print(json.dumps([ok, rest.decode(errors="replace")]))
"""
    ok, rest = await env.a.ns.python(code)
    assert ok and rest == ""
    recs = [x for x in await env.since(mark) if x.reason == "protocol_not_allowed"]
    assert recs and recs[-1].sandbox_id == "sb-a"


async def test_no_way_around_the_proxy(env: Env) -> None:
    gw = await asyncio.start_server(lambda r, w: w.close(), "0.0.0.0", 0)
    gw_port = gw.sockets[0].getsockname()[1]
    host = env.a.plan.host_ip
    try:
        # Direct HTTPS, proxy bypassed: the name is pinned to loopback, which is the sandbox's own lo.
        r = await env.a.ns.run(
            "curl",
            "-sS",
            "--max-time",
            "3",
            "--noproxy",
            "*",
            "--resolve",
            f"allowed.test:{env.up.https_port}:127.0.0.1",
            url(env.up, "/api/x"),
        )
        assert r.rc != 0
        # No route anywhere but the /30: fails at once, nothing is sent.
        r = await env.a.ns.run("curl", "-sS", "--max-time", "3", "--noproxy", "*", "http://198.51.100.1/")
        assert r.rc == 7 and "after 0 ms" in r.err
        probe = f"""
import json, socket
def tcp(h, p):
    try:
        socket.create_connection((h, p), timeout=2).close()
        return "open"
    except OSError as e:
        return type(e).__name__
ipv6 = open("/proc/sys/net/ipv6/conf/all/disable_ipv6").read().strip()
print(json.dumps([tcp("{host}", {gw_port}), tcp("{host}", 22), tcp("{host}", {PORT}), ipv6,
                  tcp("198.51.100.1", 443)]))
"""
        # With the firewall: the gateway-like port on the host veth address is refused.
        refused = "ConnectionRefusedError"
        assert await env.a.ns.python(probe) == [refused, refused, "open", "1", "OSError"]  # ENETUNREACH
        # Control: without the table the same port is reachable, so the test above means something.
        await firewall_down(FW)
        try:
            assert (await env.a.ns.python(probe))[0] == "open"
        finally:
            await firewall_up(FW)
        assert (await env.a.ns.python(probe))[0] == "ConnectionRefusedError"
    finally:
        gw.close()
        await gw.wait_closed()


async def test_other_sandbox_unreachable(env: Env) -> None:
    other_sb, other_host = env.b.plan.sandbox_ip, env.b.plan.host_ip
    probe = f"""
import json, socket
out = []
for h, p in (("{other_sb}", 80), ("{other_host}", {PORT})):
    try:
        socket.create_connection((h, p), timeout=2).close()
        out.append("open")
    except OSError as e:
        out.append(type(e).__name__ + ":" + str(e.errno))
print(json.dumps(out))
"""
    assert await env.a.ns.python(probe) == ["OSError:101", "OSError:101"]  # ENETUNREACH
    # Even a privileged process in sandbox A that adds a route cannot use B's listener: the proxy
    # checks that the peer address belongs to the listener it arrived on.
    r = await env.a.ns.run("ip", "route", "add", f"{other_host}/32", "dev", "eth0")
    assert r.rc == 0, r.err
    mark = env.mark()
    try:
        r = await env.a.curl(url(env.up, "/api/x"), proxy=f"http://{other_host}:{PORT}")
        assert r.rc != 0 and codes(r)[0] != 200
        recs = [x for x in await env.since(mark) if x.reason == "unknown_sandbox"]
        assert recs and recs[-1].host == env.a.plan.sandbox_ip
    finally:
        await env.a.ns.run("ip", "route", "del", f"{other_host}/32", "dev", "eth0")


async def test_rate_and_connection_limits(env: Env, upstream: Upstream) -> None:  # noqa: F811
    ns = Netns()
    plan = await env.net.setup(ns.pid, "sb-c")
    try:
        pol = make_policy("sb-c", upstream, max_rps=2.0, max_connections=2)
        await env.sup.bind(plan.sandbox_ip, plan.host_ip, pol, secrets={"api": "c-secret-0123456789"})
        code = f"""
import http.client, json, socket, ssl, time
ctx = ssl.create_default_context(cafile="{env.sup.ca_cert_path}")
c = http.client.HTTPSConnection("{plan.host_ip}", {PORT}, context=ctx, timeout=5)
c.set_tunnel("allowed.test", {upstream.https_port})
statuses = []
for _ in range(4):
    c.request("GET", "/api/rl")
    r = c.getresponse(); r.read()
    statuses.append((r.status, r.getheader("X-Gig-Deny-Reason")))
# c holds connection 1 (still open: a refused request keeps the tunnel); the cap is 2.
extra = []
for _ in range(2):
    s = socket.create_connection(("{plan.host_ip}", {PORT}), timeout=1)
    time.sleep(0.1)
    try:
        extra.append("closed" if s.recv(100) == b"" else "data")
    except TimeoutError:
        extra.append("open")
print(json.dumps([statuses, extra]))
"""
        statuses, extra = await ns.python(code)
        assert [s for s, _ in statuses[:2]] == [200, 200]
        assert statuses[2] == [429, "rate_limited"]
        assert statuses[3] == [429, "rate_limited"]
        assert extra == ["open", "closed"]  # the third connection was closed by the proxy
        reasons = {"too_many_connections", "rate_limited"}
        await _wait(lambda: reasons <= {r.reason for r in env.audit if r.sandbox_id == "sb-c"}, timeout=5)
        assert any(r.reason == "rate_limited" and r.status == 429 for r in env.audit)
    finally:
        await env.sup.unbind(plan.sandbox_ip)
        await env.net.teardown(plan)
        ns.kill()


async def test_audit_events_iterator_and_stats(env: Env) -> None:
    got: list[AuditRecord] = []

    async def consume() -> None:
        async for rec in env.sup.events():
            got.append(rec)
            if len(got) == 2:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await env.b.curl(url(env.up, "/api/one"))
    await env.b.curl(url(env.up, "/nope"))
    await asyncio.wait_for(task, 5)
    assert [(r.sandbox_id, r.decision, r.reason) for r in got] == [
        ("sb-b", "allow", "allowed"),
        ("sb-b", "deny", "path_not_allowed"),
    ]
    stats = await env.sup.stats()
    assert stats["bindings"] == 2 and stats["allowed"] > 0 and stats["denied"] > 0


async def _wait(cond: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if not isinstance(v, bool):
            v = await v
        if v:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_proxy_restart_mid_traffic(env: Env) -> None:
    old_pid, restarts = env.sup.pid, env.sup.restarts
    assert old_pid is not None
    n_seen = len(env.up.seen)
    inflight = asyncio.create_task(env.a.curl(url(env.up, "/slow?s=6")))
    await _wait(lambda: len(env.up.seen) > n_seen and env.up.last()["path"].startswith("/slow"))
    t0 = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    r = await inflight
    assert r.rc != 0 and time.monotonic() - t0 < 3  # fails promptly, not after the upstream's 6 s
    await _wait(lambda: env.sup.ready and env.sup.restarts == restarts + 1)
    assert env.sup.pid not in (None, old_pid)
    # Bindings are back (both sandboxes), and the CA is unchanged: same --cacert still works.
    for sb in (env.a, env.b):
        r = await sb.curl(url(env.up, "/api/after-restart"))
        assert codes(r) == (200, 200), r.err
    assert (await env.sup.stats())["bindings"] == 2
