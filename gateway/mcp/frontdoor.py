"""The MCP front door: the SDK's low-level `Server` whose handlers relay to a profile's aggregate.

The SDK owns the wire (both protocol eras, sessions, SSE, header rules); this module owns what the
gateway adds: who is calling (set on the ASGI scope by the HTTP layer), which profile that is, and
relaying progress, logs and server-to-client requests between the caller and the backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import mcp_types as types
from mcp.server.caching import CacheHint
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from gateway.mcp.aggregator import Caller, ProfileAggregate
from gateway.mcp.backend import JSON, BackendError, BackendGone, CallContext
from gateway.mcp.mrtr import InputRound, InputRounds
from sandbox.supervisor import Unavailable

log = logging.getLogger(__name__)

SCOPE_KEY = "gig.identity"
MODERN_META_PREFIX = "io.modelcontextprotocol/"
# Lists depend on the caller's profile and change when backends do: private, immediately stale.
LIST_HINT = CacheHint(ttl_ms=0, scope="private")
Ctx = ServerRequestContext[Any, Any]


@dataclass(frozen=True, slots=True)
class RequestIdentity:
    """Who is calling and which profile they reach; put on the ASGI scope by the HTTP layer."""

    principal: str
    profile_key: Hashable
    aggregate: ProfileAggregate
    token_id: str = ""  # the credential's stable id: rate limits are per token
    client: str = ""  # the client's address as `gateway.forwarded` believes it (for the audit log)


class CallObserver(Protocol):
    """Set by the app on `FrontDoor.call_observer`: admits (rate limits) and records every tools/call."""

    def admit(self, identity: RequestIdentity, name: str) -> JSON | None:
        """None lets the call run; a CallToolResult answers it instead (e.g. a rate-limit tool error)."""

    def finished(self, identity: RequestIdentity, name: str, outcome: str, seconds: float) -> None:
        """The call ran: outcome is ok, tool_error (isError result), error (JSON-RPC error) or unavailable."""


class GatewayServer(Server[Any]):
    """Advertises list-changed notifications: the gateway relays them from every backend."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(True, True, True), experimental_capabilities, extensions
        )


def _identity(ctx: Ctx) -> RequestIdentity:
    request = ctx.request
    scope: Mapping[str, Any] = getattr(request, "scope", {}) or {}
    identity = scope.get(SCOPE_KEY)
    if not isinstance(identity, RequestIdentity):
        raise MCPError(-32001, "unauthenticated")
    return identity


LIST_CHANGED = frozenset({
    "notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"})


def _connection(ctx: Ctx) -> Connection | None:
    connection = getattr(ctx.session, "_connection", None)  # the SDK keeps it private; stable in 2.3
    return connection if isinstance(connection, Connection) else None


def _raw_meta(ctx: Ctx) -> JSON:
    return meta_of(ctx.params)


def meta_of(params: Mapping[str, Any] | None) -> JSON:
    meta = (params or {}).get("_meta")
    return dict(meta) if isinstance(meta, Mapping) else {}


def forwardable_meta(params: Mapping[str, Any] | None) -> JSON:
    # Protocol-level keys describe the front connection, not the backend one.
    return {k: v for k, v in meta_of(params).items() if k != "progressToken" and not k.startswith(MODERN_META_PREFIX)}


def complete_for(protocol_version: str, result: JSON) -> JSON:
    if protocol_version in MODERN_PROTOCOL_VERSIONS and "resultType" not in result:
        return {**result, "resultType": "complete"}
    return result


def _complete(ctx: Ctx, result: JSON) -> JSON:
    return complete_for(ctx.protocol_version, result)


def _mcp_error(exc: Exception) -> MCPError:
    if isinstance(exc, Unavailable):
        return MCPError(-32000, str(exc))
    if isinstance(exc, BackendError):
        return MCPError(exc.code, exc.message, exc.data)
    return MCPError(-32603, "internal error")


class FrontDoor:
    def __init__(self, name: str = "gigmcp", version: str = "0.1.0") -> None:
        # Connections, not per-request sessions: a Connection lives as long as the client's MCP session
        # and owns its standalone stream, which is where unsolicited notifications belong.
        self._sessions: dict[Hashable, weakref.WeakSet[Connection]] = {}
        self._subscriptions: dict[Hashable, dict[str, weakref.WeakSet[Connection]]] = {}
        self._rounds = InputRounds()
        self.call_observer: CallObserver | None = None
        self.server = GatewayServer(
            name,
            version=version,
            instructions="gigmcp: tools of several sandboxed MCP servers, named <server>_<tool>.",
            cache_hints={m: LIST_HINT for m in (
                "tools/list", "resources/list", "resources/templates/list", "prompts/list", "resources/read")},
        )
        # Registered one by one (not as on_* arguments) because the handlers return raw dicts.
        handlers: list[tuple[str, type[Any], Any]] = [
            ("tools/list", types.PaginatedRequestParams, self._list("tools/list", "tools")),
            ("tools/call", types.CallToolRequestParams, self._call_tool),
            ("resources/list", types.PaginatedRequestParams, self._list("resources/list", "resources")),
            ("resources/templates/list", types.PaginatedRequestParams,
             self._list("resources/templates/list", "resourceTemplates")),
            ("resources/read", types.ReadResourceRequestParams, self._read_resource),
            ("resources/subscribe", types.SubscribeRequestParams, self._subscribe),
            ("resources/unsubscribe", types.UnsubscribeRequestParams, self._unsubscribe),
            ("prompts/list", types.PaginatedRequestParams, self._list("prompts/list", "prompts")),
            ("prompts/get", types.GetPromptRequestParams, self._get_prompt),
            ("completion/complete", types.CompleteRequestParams, self._complete),
            ("logging/setLevel", types.SetLevelRequestParams, self._set_level),
        ]
        for method, params_type, handler in handlers:
            self.server.add_request_handler(method, params_type, handler)

    # ---- bookkeeping of connected sessions (for list_changed and resource updates) ----------
    def _track(self, ctx: Ctx, identity: RequestIdentity) -> None:
        connection = _connection(ctx)
        if connection is not None:
            self._sessions.setdefault(identity.profile_key, weakref.WeakSet()).add(connection)

    async def backend_notification(self, server: str, profile_key: Hashable, method: str, params: JSON | None) -> None:
        """A backend sent a notification that is not tied to one call: relay it to the profile's sessions."""
        if method == "notifications/resources/updated" and params and "uri" in params:
            for uri, subscribers in self._subscriptions.get(profile_key, {}).items():
                target = uri.split("+", 1)[-1] if "+" in uri.split(":", 1)[0] else uri
                if target == params["uri"]:
                    for connection in list(subscribers):
                        await connection.notify(method, {"uri": uri})
            return
        if method not in LIST_CHANGED:
            return
        for connection in list(self._sessions.get(profile_key, ())):
            await connection.notify(method, None)  # never raises; dropped if the client has no GET stream

    # ---- relays for one request ---------------------------------------------------------------
    def _caller(self, ctx: Ctx) -> Caller:
        token = _raw_meta(ctx).get("progressToken")
        session = ctx.session
        request_id = ctx.request_id

        async def on_progress(params: JSON) -> None:
            if token is None:
                return
            await session.send_progress_notification(
                token,
                float(params.get("progress", 0)),
                params.get("total"),
                params.get("message"),
                related_request_id=str(request_id) if request_id is not None else None,
            )

        async def on_log(params: JSON) -> None:
            with contextlib.suppress(Exception):
                await session.send_log_message(
                    params.get("level", "info"), params.get("data"), params.get("logger"),
                    related_request_id=request_id,
                )

        async def on_server_request(method: str, params: JSON | None, _call: CallContext | None) -> JSON:
            # Relayed raw so that a backend's sampling/elicitation shape passes through unchanged.
            outbound = session._request_outbound
            if not outbound.can_send_request:
                raise BackendError(-32601, f"the client cannot answer {method} on this connection")
            result = await outbound.send_raw_request(method, params, None)
            return dict(result)

        return Caller(on_progress=on_progress if token is not None else None, on_log=on_log,
                      on_server_request=on_server_request)

    async def _interactive(self, ctx: Ctx, identity: RequestIdentity,
                           call: Callable[[Caller], Awaitable[JSON]]) -> JSON:
        return await self.interactive(ctx.protocol_version, ctx.params, identity, self._caller(ctx), call)

    async def interactive(self, protocol_version: str, raw: Mapping[str, Any] | None, identity: RequestIdentity,
                          caller: Caller, call: Callable[[Caller], Awaitable[JSON]]) -> JSON:
        """Run a call that may ask the client for input, in the way the client's protocol era expects.

        2025-11-25 clients get the backend's questions as real requests on the call's stream; a
        2026-07-28 client gets `input_required` results and answers by retrying (see `mrtr`).
        """
        if protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return complete_for(protocol_version, await call(caller))
        raw = raw or {}
        owner = f"{identity.principal}/{identity.profile_key}"
        state = raw.get("requestState")
        if isinstance(state, str) and state:
            responses = raw.get("inputResponses")
            resumed = await self._rounds.resume(owner, state, responses if isinstance(responses, Mapping) else {})
            return complete_for(protocol_version, resumed)
        capabilities = meta_of(raw).get(MODERN_META_PREFIX + "clientCapabilities")

        async def start(round_: InputRound) -> JSON:
            async def ask(method: str, params: JSON | None, _call: CallContext | None) -> JSON:
                return await round_.ask(method, params)

            return await call(Caller(caller.on_progress, caller.on_log, ask))

        result = await self._rounds.run(owner, capabilities if isinstance(capabilities, Mapping) else {}, start)
        return complete_for(protocol_version, result)

    # ---- handlers -----------------------------------------------------------------------------
    def _list(self, method: str, key: str) -> Callable[[Ctx, Any], Awaitable[JSON]]:
        async def handler(ctx: Ctx, _params: Any) -> JSON:
            identity = _identity(ctx)
            self._track(ctx, identity)
            return _complete(ctx, {key: await identity.aggregate.list_all(method)})

        return handler

    async def _call_tool(self, ctx: Ctx, _params: types.CallToolRequestParams) -> JSON:
        identity = _identity(ctx)
        self._track(ctx, identity)
        return await self.call_tool(identity, ctx.params or {}, ctx.protocol_version, self._caller(ctx))

    async def call_tool(self, identity: RequestIdentity, raw: Mapping[str, Any], protocol_version: str,
                        caller: Caller, inspect: Callable[[JSON], None] | None = None) -> JSON:
        """tools/call for both the SDK's handler and the HTTP fast path (`fastpath`): admit, run, record."""
        name = str(raw.get("name", ""))
        arguments = raw.get("arguments") if isinstance(raw.get("arguments"), dict) else None
        observer = self.call_observer
        if observer is not None:
            refusal = observer.admit(identity, name)
            if refusal is not None:
                return complete_for(protocol_version, refusal)
        started, outcome = time.monotonic(), "error"
        try:
            result = await self.interactive(protocol_version, raw, identity, caller, lambda c: (
                identity.aggregate.call_tool(name, arguments, forwardable_meta(raw), c, inspect=inspect)))
            outcome = "tool_error" if result.get("isError") is True else "ok"
            return result
        except (BackendError, Unavailable) as exc:
            if isinstance(exc, BackendGone | Unavailable):
                outcome = "unavailable"
                server = name.split("_", 1)[0]
                raise MCPError(-32000, f"server {server} is unavailable: {exc}") from None
            raise _mcp_error(exc) from None
        finally:
            if observer is not None:
                observer.finished(identity, name, outcome, time.monotonic() - started)

    async def _read_resource(self, ctx: Ctx, params: types.ReadResourceRequestParams) -> JSON:
        identity = _identity(ctx)
        try:
            return await self._interactive(
                ctx, identity, lambda caller: identity.aggregate.read_resource(str(params.uri), caller))
        except (BackendError, Unavailable) as exc:
            raise _mcp_error(exc) from None

    async def _subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> JSON:
        identity = _identity(ctx)
        uri = str(params.uri)
        try:
            await identity.aggregate.subscribe(uri, True)
        except (BackendError, Unavailable) as exc:
            raise _mcp_error(exc) from None
        subs = self._subscriptions.setdefault(identity.profile_key, {})
        connection = _connection(ctx)
        if connection is not None:
            subs.setdefault(uri, weakref.WeakSet()).add(connection)
        return {}

    async def _unsubscribe(self, ctx: Ctx, params: types.UnsubscribeRequestParams) -> JSON:
        identity = _identity(ctx)
        uri = str(params.uri)
        try:
            await identity.aggregate.subscribe(uri, False)
        except (BackendError, Unavailable) as exc:
            raise _mcp_error(exc) from None
        subs = self._subscriptions.get(identity.profile_key, {})
        connection = _connection(ctx)
        if uri in subs and connection is not None:
            subs[uri].discard(connection)
        return {}

    async def _get_prompt(self, ctx: Ctx, params: types.GetPromptRequestParams) -> JSON:
        identity = _identity(ctx)
        raw = ctx.params or {}
        arguments = raw.get("arguments") if isinstance(raw.get("arguments"), dict) else None
        try:
            return await self._interactive(
                ctx, identity, lambda caller: identity.aggregate.get_prompt(params.name, arguments, caller))
        except (BackendError, Unavailable) as exc:
            raise _mcp_error(exc) from None

    async def _complete(self, ctx: Ctx, _params: types.CompleteRequestParams) -> JSON:
        identity = _identity(ctx)
        raw = dict(ctx.params or {})
        try:
            result = await identity.aggregate.complete(raw.get("ref") or {}, raw.get("argument") or {},
                                                       raw.get("context"))
            return _complete(ctx, result)
        except (BackendError, Unavailable) as exc:
            raise _mcp_error(exc) from None

    async def _set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> JSON:
        identity = _identity(ctx)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(identity.aggregate.set_level(str(params.level)), 10)
        return {}
