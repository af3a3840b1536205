"""Profiles over the API: tool toggles on the MCP endpoint, named profiles, adding and removing servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mcp.shared.exceptions import MCPError

from tests.support.api import api
from tests.support.gateway import Gateway, RawSession, mcp_client, running_gateway

pytestmark = [pytest.mark.root]


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway(install="echo,echob") as gateway:
        yield gateway


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_disabled_tool_is_neither_listed_nor_callable(gw: Gateway, mode: str) -> None:
    assert api(gw, "PUT", "/api/profiles/admin-default/tools/echo/add", {"enabled": False})[0] == 200
    try:
        async with mcp_client(gw.mcp_url, mode) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "echo_add" not in names and "echo_echo" in names and "echob_add" in names
            with pytest.raises(MCPError) as info:
                await client.call_tool("echo_add", {"a": 1, "b": 2})
            assert "echo_add" in str(info.value)
            assert (await client.call_tool("echob_add", {"a": 1, "b": 2})).structured_content == {"result": 3}
        status, body = api(gw, "GET", "/api/profiles/admin-default/tools")
        assert status == 200
        assert {"server": "echo", "tool": "add", "enabled": False, "source": "toggle"} in body["tools"]
    finally:
        assert api(gw, "DELETE", "/api/profiles/admin-default/tools/echo/add")[0] == 204
    async with mcp_client(gw.mcp_url, mode) as client:
        assert "echo_add" in {t.name for t in (await client.list_tools()).tools}
        assert (await client.call_tool("echo_add", {"a": 1, "b": 2})).structured_content == {"result": 3}


def test_named_profile_with_its_own_servers(gw: Gateway) -> None:
    status, profile = api(gw, "POST", "/api/profiles", {"slug": "admin-b-only"})
    assert status == 201 and profile["servers"] == [] and not profile["default"]
    assert profile["url"].endswith("/mcp/p/admin-b-only")
    assert api(gw, "POST", "/api/profiles", {"slug": "admin-b-only"})[0] == 409
    assert api(gw, "POST", "/api/profiles", {"slug": "Bad Slug"})[0] == 400
    assert api(gw, "PUT", "/api/profiles/admin-b-only/servers/nosuch")[0] == 404  # only installed servers
    status, profile = api(gw, "PUT", "/api/profiles/admin-b-only/servers/echob")
    assert status == 200 and profile["servers"] == ["echob"]
    raw = RawSession(gw, "/mcp/p/admin-b-only").open()
    names = {t["name"] for t in raw.request("tools/list")["result"]["tools"]}
    assert "echob_echo" in names and not any(n.startswith("echo_") for n in names)
    # One sandbox per (server, profile): this profile's echob is not the default profile's.
    assert raw.call("echob_echo", {"message": "x"})["result"]
    keys = [tuple(s["key"]) for s in gw.sandboxes() if s["key"][0] == "echob" and s["state"] == "running"]
    profile_ids = {k[1] for k in keys}
    assert len(profile_ids) == len(keys)
    assert api(gw, "DELETE", "/api/profiles/admin-b-only/servers/echob")[0] == 204
    assert raw.request("tools/list")["result"]["tools"] == []
    assert api(gw, "DELETE", "/api/profiles/admin-b-only")[0] == 204
    assert api(gw, "GET", "/api/profiles/admin-b-only")[0] == 404


def test_the_default_profile_moves_and_cannot_be_deleted(gw: Gateway) -> None:
    assert api(gw, "DELETE", "/api/profiles/admin-default")[0] == 409
    assert api(gw, "POST", "/api/profiles", {"slug": "admin-next", "default": True})[0] == 201
    try:
        status, me = api(gw, "GET", "/api/me")
        assert status == 200 and me["default_profile"] == "admin-next"
        raw = RawSession(gw).open()  # /mcp now lands on the new (empty) default profile
        assert raw.request("tools/list")["result"]["tools"] == []
    finally:
        assert api(gw, "PATCH", "/api/profiles/admin-default", {"default": True})[0] == 200
        assert api(gw, "PATCH", "/api/profiles/admin-default", {"default": False})[0] == 409
        assert api(gw, "DELETE", "/api/profiles/admin-next")[0] == 204
    assert api(gw, "GET", "/api/me")[1]["default_profile"] == "admin-default"
