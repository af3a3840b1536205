"""Bad input at the front door: each gets the right status and error, and the gateway keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.gateway import Gateway, mcp_client, running_gateway

pytestmark = [pytest.mark.root]
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway() as gateway:
        yield gateway


def _post(gw: Gateway, body: bytes, headers: dict[str, str] | None = None, auth: bool = True,
          ) -> tuple[int, dict[str, str], bytes]:
    return gw.request("POST", "/mcp", body, {**ACCEPT, **(headers or {})}, auth=auth)


def _session(gw: Gateway) -> str:
    status, headers, _ = _post(gw, json.dumps(INIT).encode())
    assert status == 200
    sid = {k.lower(): v for k, v in headers.items()}["mcp-session-id"]
    hdrs = {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}
    status, _, _ = _post(gw, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode(), hdrs)
    assert status == 202
    return sid


def test_missing_and_wrong_token_get_401_with_challenge(gw: Gateway) -> None:
    for auth_header in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": "Basic abc"}):
        status, headers, body = gw.request("POST", "/mcp", json.dumps(INIT).encode(), {**ACCEPT, **auth_header},
                                           auth=False)
        assert status == 401
        assert {k.lower(): v for k, v in headers.items()}["www-authenticate"].startswith("Bearer")
        assert json.loads(body)["error"]["code"] == "unauthorized"


def test_malformed_json_is_a_parse_error(gw: Gateway) -> None:
    status, _, body = _post(gw, b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert status == 400
    assert json.loads(body)["error"]["code"] == -32700


def test_batch_is_refused_on_current_protocol(gw: Gateway) -> None:
    sid = _session(gw)
    batch = json.dumps([{"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                        {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}]).encode()
    status, _, body = _post(gw, batch, {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
    assert status == 400, body
    assert json.loads(body)["error"]["code"] in (-32600, -32602, -32700)


def test_ten_megabyte_body_is_refused(gw: Gateway) -> None:
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": "a" * 10_000_000}})
    status, _, body = _post(gw, big.encode())
    assert status == 413
    assert "exceeds" in json.loads(body)["error"]["message"]


def test_unsupported_protocol_version_header(gw: Gateway) -> None:
    sid = _session(gw)
    status, _, _ = _post(gw, json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).encode(),
                         {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "1999-01-01"})
    assert status == 400


def test_unknown_session_id_is_404(gw: Gateway) -> None:
    status, _, _ = _post(gw, json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).encode(),
                         {"Mcp-Session-Id": "f" * 32, "MCP-Protocol-Version": "2025-11-25"})
    assert status == 404


def test_dns_rebinding_host_and_origin(gw: Gateway) -> None:
    status, _, _ = _post(gw, json.dumps(INIT).encode(), {"Host": "evil.example.com"})
    assert status == 421
    status, _, _ = _post(gw, json.dumps(INIT).encode(), {"Origin": "http://evil.example.com"})
    assert status == 403
    status, _, _ = _post(gw, json.dumps(INIT).encode(), {"Origin": f"http://127.0.0.1:{gw.port}"})
    assert status == 200


def test_unknown_profile_is_404(gw: Gateway) -> None:
    status, _, _ = gw.request("POST", "/mcp/p/nobody-default", json.dumps(INIT).encode(), ACCEPT)
    assert status == 404


async def test_gateway_still_serves_after_bad_input(gw: Gateway) -> None:
    test_malformed_json_is_a_parse_error(gw)
    test_ten_megabyte_body_is_refused(gw)
    async with mcp_client(gw.mcp_url) as client:
        result = await client.call_tool("echo_echo", {"message": "fine"})
    assert result.content[0].text == "fine"
    assert gw.get("/health")[0] == 200
