"""Aggregation: one profile's servers seen as one MCP server.

Lists are gathered from every server of the profile concurrently; a server that fails or is slow
only loses its own entries (and is logged). Calls are routed by the name or URI prefix to the one
server that owns them. Results are relayed as raw JSON, never re-validated, so a server whose
schemas are off still works.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.mcp.backend import JSON, BackendError, BackendSession, ProgressFn, ServerRequestFn
from gateway.mcp.lenient import repair_items
from gateway.mcp.naming import join_name, join_uri, split_name, split_uri
from gateway.modes import NORMAL, ModePolicy

log = logging.getLogger(__name__)

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNAVAILABLE = -32000


class RoutingError(BackendError):
    """The name or URI does not belong to any server of this profile."""


class BackendHandle(Protocol):
    """A live server as the aggregator sees it: a session plus a cache of its lists."""

    session: BackendSession
    cache: dict[str, list[JSON]]


Lease = Callable[[Hashable], Any]  # returns an async context manager yielding a BackendHandle


@dataclass(frozen=True, slots=True)
class Member:
    """One server in a profile, and whether its names carry the server prefix."""

    server: str
    prefixed: bool = True


@dataclass(frozen=True, slots=True)
class Caller:
    """Where a backend's request-scoped traffic goes for one front-door request."""

    on_progress: ProgressFn | None = None
    on_log: Callable[[JSON], Awaitable[None]] | None = None
    on_server_request: ServerRequestFn | None = None


LIST_SPECS: dict[str, tuple[str, str]] = {
    # method: (result key, the field that carries the name or URI)
    "tools/list": ("tools", "name"),
    "prompts/list": ("prompts", "name"),
    "resources/list": ("resources", "uri"),
    "resources/templates/list": ("resourceTemplates", "uriTemplate"),
}
CAPABILITY_OF = {
    "tools/list": "tools",
    "prompts/list": "prompts",
    "resources/list": "resources",
    "resources/templates/list": "resources",
}


class ProfileAggregate:
    def __init__(
        self,
        profile_key: Hashable,
        members: list[Member],
        lease: Lease,
        *,
        call_timeout_s: float,
        list_timeout_s: float = 30.0,
        enabled_tool: Callable[[str, str], bool] | None = None,
        modes: ModePolicy = NORMAL,
    ) -> None:
        self.profile_key = profile_key
        self.members = {m.server: m for m in members}
        self._lease = lease
        self._call_timeout = call_timeout_s
        self._list_timeout = list_timeout_s
        self._enabled_tool = enabled_tool or (lambda _server, _tool: True)
        self.modes = modes  # read-only hides mutating tools; safe mode previews calls to them

    def key_for(self, server: str) -> Hashable:
        return (server, self.profile_key)

    # ---- lists -------------------------------------------------------------------------------
    async def list_all(self, method: str) -> list[JSON]:
        results = await asyncio.gather(
            *(self._list_one(m, method) for m in self.members.values()), return_exceptions=True
        )
        merged: list[JSON] = []
        for member, result in zip(self.members.values(), results, strict=True):
            if isinstance(result, BaseException):
                log.warning("%s from server %s failed: %s", method, member.server, result)
                continue
            merged.extend(result)
        return merged

    async def _list_one(self, member: Member, method: str) -> list[JSON]:
        key, field_name = LIST_SPECS[method]
        async with self._lease(self.key_for(member.server)) as handle:
            items = await self._cached_list(handle, method, key)
        out = []
        for item in items:
            if method == "tools/list" and not (
                    self._enabled_tool(member.server, str(item.get("name"))) and self.modes.visible(item)):
                continue
            renamed = dict(item)
            original = str(item.get(field_name, ""))
            if field_name == "name":
                renamed["name"] = join_name(member.server, original, prefixed=member.prefixed)
            else:
                renamed[field_name] = join_uri(member.server, original, prefixed=member.prefixed)
            out.append(renamed)
        return out

    async def _cached_list(self, handle: BackendHandle, method: str, key: str) -> list[JSON]:
        cached = handle.cache.get(method)
        if cached is not None:
            return cached
        if CAPABILITY_OF[method] not in handle.session.capabilities:
            handle.cache[method] = []
            return []
        items: list[JSON] = []
        cursor: str | None = None
        for _page in range(100):  # bounded: a server that pages forever does not hang the gateway
            params = {"cursor": cursor} if cursor else None
            result = await handle.session.request(method, params, timeout=self._list_timeout)
            page = result.get(key)
            if isinstance(page, list):
                items.extend(x for x in page if isinstance(x, dict))
            cursor = result.get("nextCursor")
            if not cursor:
                break
        items = repair_items(method, handle.session.name, items)
        handle.cache[method] = items
        return items

    # ---- routing -----------------------------------------------------------------------------
    def _route_name(self, public: str, kind: str) -> tuple[Member, str]:
        split = split_name(public)
        if split and split[0] in self.members and self.members[split[0]].prefixed:
            return self.members[split[0]], split[1]
        unprefixed = [m for m in self.members.values() if not m.prefixed]
        if unprefixed:
            return unprefixed[0], public
        raise RoutingError(INVALID_PARAMS, f"Unknown {kind}: {public}")

    def _route_uri(self, public: str) -> tuple[Member, str]:
        split = split_uri(public)
        if split and split[0] in self.members and self.members[split[0]].prefixed:
            return self.members[split[0]], split[1]
        unprefixed = [m for m in self.members.values() if not m.prefixed]
        if unprefixed:
            return unprefixed[0], public
        raise RoutingError(-32002, f"Resource not found: {public}")

    # ---- calls -------------------------------------------------------------------------------
    async def call_tool(self, name: str, arguments: JSON | None, meta: JSON | None, caller: Caller,
                        inspect: Callable[[JSON], None] | None = None) -> JSON:
        """Route a call; `inspect` sees the tool's description first and may refuse by raising."""
        member, tool = self._route_name(name, "tool")
        if not self._enabled_tool(member.server, tool):
            raise RoutingError(INVALID_PARAMS, f"Unknown tool: {name}")
        async with self._lease(self.key_for(member.server)) as handle:
            assert isinstance(handle.session, BackendSession)
            tools = await self._cached_list(handle, "tools/list", "tools")
            described = next((t for t in tools if t.get("name") == tool), None)
            # A tool hidden by read-only mode answers exactly like one that does not exist.
            if described is None or not self.modes.visible(described):
                raise RoutingError(INVALID_PARAMS, f"Unknown tool: {name}")
            if inspect is not None:
                inspect(described)
            preview = self.modes.preview(name, described, arguments)
            if preview is not None:
                return preview
            params: JSON = {"name": tool, "arguments": arguments or {}}
            if meta:
                params["_meta"] = {k: v for k, v in meta.items() if k != "progressToken"}
            result: JSON = await handle.session.request(
                "tools/call",
                params,
                timeout=self._call_timeout,
                on_progress=caller.on_progress,
                on_log=caller.on_log,
                on_server_request=caller.on_server_request,
            )
            return result

    async def get_prompt(self, name: str, arguments: JSON | None, caller: Caller) -> JSON:
        member, prompt = self._route_name(name, "prompt")
        params: JSON = {"name": prompt}
        if arguments:
            params["arguments"] = arguments
        return await self._forward(member, "prompts/get", params, caller)

    async def read_resource(self, uri: str, caller: Caller) -> JSON:
        member, original = self._route_uri(uri)
        result = await self._forward(member, "resources/read", {"uri": original}, caller)
        contents = result.get("contents")
        if isinstance(contents, list):
            result = dict(result)
            result["contents"] = [
                {**c, "uri": join_uri(member.server, str(c.get("uri", original)), prefixed=member.prefixed)}
                if isinstance(c, dict) else c
                for c in contents
            ]
        return result

    async def subscribe(self, uri: str, subscribe: bool) -> None:
        member, original = self._route_uri(uri)
        method = "resources/subscribe" if subscribe else "resources/unsubscribe"
        await self._forward(member, method, {"uri": original}, Caller())

    async def complete(self, ref: JSON, argument: JSON, context: JSON | None) -> JSON:
        ref = dict(ref)
        if ref.get("type") == "ref/prompt":
            member, ref["name"] = self._route_name(str(ref.get("name", "")), "prompt")
        else:
            member, ref["uri"] = self._route_uri(str(ref.get("uri", "")))
        params: JSON = {"ref": ref, "argument": argument}
        if context:
            params["context"] = context
        return await self._forward(member, "completion/complete", params, Caller())

    async def set_level(self, level: str) -> None:
        async def one(member: Member) -> None:
            async with self._lease(self.key_for(member.server)) as handle:
                if "logging" in handle.session.capabilities:
                    await handle.session.request("logging/setLevel", {"level": level}, timeout=self._call_timeout)

        await asyncio.gather(*(one(m) for m in self.members.values()), return_exceptions=True)

    async def _forward(self, member: Member, method: str, params: JSON, caller: Caller) -> JSON:
        async with self._lease(self.key_for(member.server)) as handle:
            result: JSON = await handle.session.request(
                method,
                params,
                timeout=self._call_timeout,
                on_progress=caller.on_progress,
                on_log=caller.on_log,
                on_server_request=caller.on_server_request,
            )
            return result

    def public_uri(self, server: str, uri: str) -> str:
        member = self.members.get(server)
        return join_uri(server, uri, prefixed=member.prefixed if member else True)
