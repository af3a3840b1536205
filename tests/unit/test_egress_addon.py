"""EgressAddon hooks driven directly with mitmproxy's test flows (no sockets), and the scrubber."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.proxy import server_hooks
from mitmproxy.test import tflow

from egress.addon import DENY_HEADER, EgressAddon
from egress.audit import AuditRecord
from egress.policy import CredentialInjection, EgressRule, SandboxPolicy, new_placeholder
from egress.scrub import StreamScrubber, scrub

SB, HOST = "10.88.0.2", "10.88.0.1"
PH = new_placeholder("api")
SECRET = "real-secret-value-42"


def policy(**kw: object) -> SandboxPolicy:
    return SandboxPolicy(
        "sb-1",
        "srv",
        "prof",
        "bob",
        rules=(
            EgressRule("api.example.com", ports=(443, 80), methods=("GET",), path_prefixes=("/v1/",)),
            EgressRule("other.example.com", ports=(443,)),
        ),
        credentials=(
            CredentialInjection("api", ("api.example.com",), PH, header="Authorization", format="Bearer {secret}"),
            CredentialInjection("q", ("api.example.com",), PH + "q", query_param="key"),
        ),
        **kw,  # type: ignore[arg-type]
    )


class Harness:
    def __init__(self, dns: dict[str, list[str]] | None = None, **kw: object) -> None:
        self.audit: list[AuditRecord] = []
        self.asked: list[tuple[str, str]] = []
        self.secrets = {"api": SECRET, "q": "query-secret-99"}
        self.dns = (
            dns if dns is not None else {"api.example.com": ["93.184.216.34"], "other.example.com": ["93.184.216.35"]}
        )

        async def resolve_secret(sid: str, cid: str) -> str | None:
            self.asked.append((sid, cid))
            return self.secrets.get(cid)

        async def resolve_dns(host: str, port: int) -> list[str]:
            if host not in self.dns:
                raise OSError("no such host")
            return self.dns[host]

        self.now = 0.0
        self.addon = EgressAddon(
            secret_resolver=resolve_secret,
            audit_sink=self.audit.append,
            dns_resolver=resolve_dns,
            clock=lambda: self.now,
        )
        self.addon.bind(SB, HOST, policy(**kw))
        self.client = tflow.tclient_conn()
        self.client.peername = (SB, 40000)
        self.client.sockname = (HOST, 3128)

    def connect_client(self) -> None:
        self.addon.client_connected(self.client)
        assert self.client.error is None

    async def connect(self, host: str, port: int = 443) -> http.HTTPFlow:
        f = tflow.tflow(
            client_conn=self.client,
            req=tflow.treq(method=b"CONNECT", host=host, port=port, authority=f"{host}:{port}".encode(), path=b""),
        )
        f.request.headers.clear()
        await self.addon.http_connect(f)
        return f

    async def request(
        self,
        path: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        host_header: str = "api.example.com",
    ) -> http.HTTPFlow:
        f = tflow.tflow(
            client_conn=self.client,
            req=tflow.treq(
                method=method.encode(),
                scheme=b"https",
                host="93.184.216.34",
                port=443,
                path=path.encode(),
                headers=http.Headers(((b"Host", host_header.encode()),)),
                content=b"",
            ),
        )
        for k, v in (headers or {}).items():
            f.request.headers[k] = v
        await self.addon.requestheaders(f)
        return f


async def test_unknown_peer_and_wrong_listener_are_killed() -> None:
    h = Harness()
    stranger = tflow.tclient_conn()
    stranger.peername, stranger.sockname = ("10.88.0.6", 1), (HOST, 3128)
    h.addon.client_connected(stranger)
    assert stranger.error == "unknown_sandbox"
    wrong = tflow.tclient_conn()
    wrong.peername, wrong.sockname = (SB, 1), ("10.88.0.5", 3128)  # another sandbox's listener
    h.addon.client_connected(wrong)
    assert wrong.error == "unknown_sandbox"
    assert [r.reason for r in h.audit] == ["unknown_sandbox", "unknown_sandbox"]


async def test_connection_cap_and_release() -> None:
    h = Harness(max_connections=1)
    h.connect_client()
    second = tflow.tclient_conn()
    second.peername, second.sockname = (SB, 40001), (HOST, 3128)
    h.addon.client_connected(second)
    assert second.error == "too_many_connections"
    h.addon.client_disconnected(second)  # mitmproxy still calls this for killed connections
    h.addon.client_disconnected(h.client)
    third = tflow.tclient_conn()
    third.peername, third.sockname = (SB, 40002), (HOST, 3128)
    h.addon.client_connected(third)
    assert third.error is None


async def test_connect_pins_checked_address() -> None:
    h = Harness()
    h.connect_client()
    f = await h.connect("API.example.com")
    assert f.response is None and f.request.host == "93.184.216.34"


@pytest.mark.parametrize(
    ("host", "port", "dns", "status", "reason"),
    [
        ("evil.example.com", 443, None, 403, "host_not_allowed"),
        ("api.example.com", 8443, None, 403, "port_not_allowed"),
        ("93.184.216.34", 443, None, 403, "ip_literal"),
        ("api.example.com", 443, {"api.example.com": ["10.0.0.5"]}, 403, "address_not_allowed:private"),
        (
            "api.example.com",
            443,
            {"api.example.com": ["93.184.216.34", "127.0.0.1"]},
            403,
            "address_not_allowed:loopback",
        ),
        (
            "api.example.com",
            443,
            {"api.example.com": ["169.254.169.254"]},
            403,
            "address_not_allowed:metadata",
        ),
        ("api.example.com", 443, {}, 502, "resolve_failed"),
    ],
)
async def test_connect_denials(
    host: str, port: int, dns: dict[str, list[str]] | None, status: int, reason: str
) -> None:
    h = Harness(dns=dns)
    h.connect_client()
    f = await h.connect(host, port)
    assert f.response is not None and f.response.status_code == status
    assert f.response.headers[DENY_HEADER] == reason
    assert f.response.json() == {"error": "egress_denied", "reason": reason}
    assert (h.audit[-1].method, h.audit[-1].reason, h.audit[-1].decision) == ("CONNECT", reason, "deny")


async def test_injection_and_scrubbing() -> None:
    h = Harness()
    h.connect_client()
    await h.connect("api.example.com")
    f = await h.request(f"/v1/items?x={PH}q&y=1", headers={"Authorization": "Bearer forged", "X-Other": f"t={PH}"})
    assert f.response is None
    assert f.request.headers["Authorization"] == f"Bearer {SECRET}"  # overwritten
    assert f.request.headers["X-Other"] == f"t={SECRET}"
    assert f.request.query["x"] == "query-secret-99" and f.request.query["key"] == "query-secret-99"
    assert f.request.headers["Accept-Encoding"] == "identity"
    assert h.asked == [("sb-1", "api"), ("sb-1", "q")]
    # The upstream echoes a secret, gzip-compressed, and in a header.
    f.response = http.Response.make(200, b"", {"Content-Encoding": "gzip", "X-Echo": f"Bearer {SECRET}"})
    f.response.raw_content = gzip.compress(f"you sent {SECRET}".encode())
    h.addon.responseheaders(f)
    h.addon.response(f)
    assert f.response.headers["X-Echo"] == f"Bearer {PH}"
    assert f.response.get_text() == f"you sent {PH}"
    rec = h.audit[-1]
    assert (rec.decision, rec.reason, rec.status, rec.host, rec.port, rec.user) == (
        "allow",
        "allowed",
        200,
        "api.example.com",
        443,
        "bob",
    )
    assert SECRET not in rec.path and "query-secret-99" not in rec.path


async def test_no_secret_toward_other_hosts() -> None:
    h = Harness()
    h.connect_client()
    await h.connect("other.example.com")
    f = await h.request("/x", headers={"Authorization": f"Bearer {PH}"}, host_header="other.example.com")
    assert f.response is None
    assert f.request.headers["Authorization"] == f"Bearer {PH}" and h.asked == []


@pytest.mark.parametrize(
    ("path", "method", "host_header", "reason"),
    [
        ("/v2/x", "GET", "api.example.com", "path_not_allowed"),
        ("/v1/x", "POST", "api.example.com", "method_not_allowed"),
        ("/v1/x", "GET", "evil.example.com", "host_header_mismatch"),
        ("/v1/x", "GET", "api.example.com:444", "host_header_mismatch"),
        ("/v1/x", "GET", "[bad", "host_header_mismatch"),
    ],
)
async def test_request_denials(path: str, method: str, host_header: str, reason: str) -> None:
    h = Harness()
    h.connect_client()
    await h.connect("api.example.com")
    f = await h.request(path, method=method, host_header=host_header)
    assert f.response is not None and f.response.status_code == 403
    assert f.response.headers[DENY_HEADER] == reason and h.asked == []
    h.addon.response(f)
    assert (h.audit[-1].decision, h.audit[-1].reason) == ("deny", reason)


async def test_sni_mismatch() -> None:
    from mitmproxy import tls
    from mitmproxy.proxy import context

    h = Harness()
    h.connect_client()
    await h.connect("api.example.com")

    class Hello:
        sni = "evil.example.com"

    data = tls.ClientHelloData(context.Context(h.client, None), Hello())  # type: ignore[arg-type]
    h.addon.tls_clienthello(data)
    f = await h.request("/v1/x")
    assert f.response is not None and f.response.headers[DENY_HEADER] == "sni_mismatch"


async def test_rate_limit() -> None:
    h = Harness(max_rps=1.0)
    h.connect_client()
    await h.connect("api.example.com")
    assert (await h.request("/v1/a")).response is None
    f = await h.request("/v1/b")
    assert f.response is not None and f.response.status_code == 429
    h.now = 1.0
    assert (await h.request("/v1/c")).response is None


async def test_missing_secret_refused() -> None:
    h = Harness()
    h.secrets.pop("api")
    h.connect_client()
    await h.connect("api.example.com")
    f = await h.request("/v1/x")
    assert f.response is not None and f.response.status_code == 503
    assert f.response.headers[DENY_HEADER] == "credential_unavailable"


async def test_unbind_refuses_live_connection() -> None:
    h = Harness()
    h.connect_client()
    await h.connect("api.example.com")
    h.addon.unbind(SB)
    f = await h.request("/v1/x")
    assert f.response is not None and f.response.headers[DENY_HEADER] == "unknown_sandbox"


async def test_server_connect_only_to_pinned_addresses() -> None:
    h = Harness()
    h.connect_client()
    await h.connect("api.example.com")
    ok = tflow.tserver_conn()
    ok.address, ok.error = ("93.184.216.34", 443), None
    h.addon.server_connect(server_hooks.ServerConnectionHookData(ok, h.client))
    assert ok.error is None
    other = tflow.tserver_conn()
    other.address, other.error = ("93.184.216.99", 443), None
    h.addon.server_connect(server_hooks.ServerConnectionHookData(other, h.client))
    assert other.error == "address_not_pinned"


async def test_raw_tcp_refused() -> None:
    h = Harness()
    h.connect_client()
    await h.connect("api.example.com")
    f = tflow.ttcpflow(client_conn=h.client)
    f.live = True
    h.addon.tcp_start(f)
    assert f.error is not None and h.audit[-1].reason == "protocol_not_allowed"


# --- scrubber ------------------------------------------------------------------------------------------


def test_scrub_longest_first() -> None:
    assert scrub(b"abc abcdef", [("abc", "X"), ("abcdef", "Y")]) == b"X Y"


@given(st.binary(max_size=200), st.lists(st.integers(0, 400), max_size=8))
def test_stream_scrubber_matches_whole_buffer(data: bytes, cuts: list[int]) -> None:
    secret, ph = "s3cr3t-token", "PLACEHOLDER"
    payload = data[:50] + secret.encode() + data[50:] + secret.encode()[:5]
    pieces, last = [], 0
    for c in sorted(set(min(c, len(payload)) for c in cuts)):
        pieces.append(payload[last:c])
        last = c
    pieces.append(payload[last:])
    s = StreamScrubber([(secret, ph)])
    out = b"".join(s(p) for p in pieces if p) + s(b"")
    assert out == scrub(payload, [(secret, ph)])
    assert s.bytes_in == len(payload)
