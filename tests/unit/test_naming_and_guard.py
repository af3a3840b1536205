"""Pure helpers of the front door: name/URI namespacing, DNS-rebinding checks, lenient tool repair."""

from __future__ import annotations

import pytest

from gateway.http_guard import HostPolicy
from gateway.mcp.lenient import repair_items
from gateway.mcp.naming import join_name, join_uri, split_name, split_uri


@pytest.mark.parametrize(("server", "name"), [("echo", "echo"), ("gitlab", "list_merge_requests"), ("a-b", "x_y")])
def test_names_round_trip(server: str, name: str) -> None:
    assert split_name(join_name(server, name)) == (server, name)


@pytest.mark.parametrize(("server", "uri"), [("fixture", "test://static-text"), ("fs", "file:///a+b"),
                                             ("x", "urn:isbn:1+2")])
def test_uris_round_trip(server: str, uri: str) -> None:
    assert split_uri(join_uri(server, uri)) == (server, uri)


def test_unprefixed_and_malformed() -> None:
    assert join_name("s", "t", prefixed=False) == "t"
    assert split_name("noprefix") is None
    assert split_uri("test://plain") is None


def test_host_policy() -> None:
    policy = HostPolicy.build("https://gw.example.com", ("mcp.internal",), ("https://app.example.com",))
    assert policy.host_allowed("gw.example.com")
    assert policy.host_allowed("127.0.0.1:8080")
    assert policy.host_allowed("[::1]:8080")
    assert policy.host_allowed("mcp.internal:443")
    assert not policy.host_allowed("evil.example.com")
    assert not policy.host_allowed(None)
    assert policy.origin_allowed(None)
    assert policy.origin_allowed("https://gw.example.com")
    assert policy.origin_allowed("http://localhost:6274")
    assert policy.origin_allowed("https://app.example.com/")
    assert not policy.origin_allowed("http://evil.example.com")


def test_lenient_repair_keeps_what_can_be_kept() -> None:
    items = [
        {"name": "no_type", "inputSchema": {"$schema": "http://json-schema.org/draft-07/schema#"}},
        {"name": "bad_output", "inputSchema": {"type": "object"}, "outputSchema": {"type": "string"}},
        {"inputSchema": {"type": "object"}},  # no name: unrepairable
        {"name": "fine", "inputSchema": {"type": "object", "properties": {"a": {"type": "string"}}}},
    ]
    kept = repair_items("tools/list", "s", items)
    assert [t["name"] for t in kept] == ["no_type", "bad_output", "fine"]
    assert kept[0]["inputSchema"]["type"] == "object"
    assert "outputSchema" not in kept[1]
