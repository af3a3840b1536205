"""Read-only and safe mode: what is listed, what is refused, what is only previewed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway.mcp.aggregator import Caller, Member, ProfileAggregate, RoutingError
from gateway.mcp.backend import BackendSession
from gateway.modes import NORMAL, ModePolicy, is_read_only, profile_modes, set_profile_modes
from gateway.store import Store

TOOLS = [
    {"name": "get", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}},
    {"name": "put", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": False}},
    {"name": "bare", "inputSchema": {"type": "object"}},
]


class FakeSession(BackendSession):
    """Answers tools/list with TOOLS and records every other request (no process behind it)."""

    def __init__(self) -> None:  # the real one needs a process's pipes
        self.name = "srv"
        self.initialize_result = {"capabilities": {"tools": {}}}
        self.calls: list[dict[str, Any]] = []

    async def request(self, method: str, params: Any = None, **_: Any) -> dict[str, Any]:
        if method == "tools/list":
            return {"tools": TOOLS}
        self.calls.append(params)
        return {"content": [{"type": "text", "text": "ran"}]}


class Handle:
    def __init__(self) -> None:
        self.session = FakeSession()
        self.cache: dict[str, list[dict[str, Any]]] = {}


def aggregate(modes: ModePolicy) -> tuple[ProfileAggregate, Handle]:
    handle = Handle()

    @asynccontextmanager
    async def lease(_key: Any) -> AsyncIterator[Handle]:
        yield handle

    return ProfileAggregate(1, [Member("srv")], lease, call_timeout_s=5, modes=modes), handle


def test_only_an_explicit_hint_is_read_only() -> None:
    assert [is_read_only(t) for t in TOOLS] == [True, False, False]
    assert ModePolicy(read_only=True) | ModePolicy(safe=True) == ModePolicy(True, True)
    assert NORMAL.preview("srv_put", TOOLS[1], {}) is None


async def test_read_only_hides_and_refuses_mutating_tools() -> None:
    agg, handle = aggregate(ModePolicy(read_only=True))
    assert [t["name"] for t in await agg.list_all("tools/list")] == ["srv_get"]
    with pytest.raises(RoutingError, match="Unknown tool: srv_put"):
        await agg.call_tool("srv_put", {}, None, Caller())
    assert (await agg.call_tool("srv_get", {}, None, Caller()))["content"][0]["text"] == "ran"
    assert len(handle.session.calls) == 1


async def test_safe_mode_lists_everything_and_previews_mutations() -> None:
    agg, handle = aggregate(ModePolicy(safe=True))
    assert len(await agg.list_all("tools/list")) == 3
    result = await agg.call_tool("srv_bare", {"x": 1}, None, Caller())
    assert handle.session.calls == []
    preview = json.loads(result["content"][0]["text"])
    assert preview == {"safe_mode": True, "executed": False, "tool": "srv_bare", "arguments": {"x": 1}}
    assert result["structuredContent"] == preview and result["isError"] is False
    await agg.call_tool("srv_get", {}, None, Caller())
    assert len(handle.session.calls) == 1


async def test_profile_flags_are_stored(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "m.db")
    try:
        user = await store.users.ensure("u", "user")
        profile = await store.profiles.ensure_default(user)
        assert await profile_modes(store.conn, profile.id) == NORMAL
        await set_profile_modes(store.conn, profile.id, ModePolicy(True, False))
        assert await profile_modes(store.conn, profile.id) == ModePolicy(True, False)
        assert await profile_modes(store.conn, 999) == NORMAL
    finally:
        await store.close()
