"""The tools/call fast path: answers the hot request on aiohttp directly, beside the SDK.

Why: through the SDK a tools/call crosses the ASGI bridge, anyio memory streams, a task group, an
SSE writer task and pydantic validation of the envelope and the result — about 3 ms on this class of
machine, more than the backend's own work. Here the same request is one JSON parse, one call on the
profile's aggregate and one write. Everything else (initialize, lists, GET streams, DELETE, odd or
invalid requests) still goes to the SDK, which stays the authority on the wire: a request the fast
path is not sure about is handed over untouched (`None`), so behaviour at the edges cannot drift.

Shape of the answer, as the SDK's modern entry does it for both eras: JSON when the call produced
nothing in between; once the backend logs, reports progress or asks the client something, the
response commits to `text/event-stream` and carries those messages before the result. A legacy-era
backend question goes out with a gateway-owned id (`gigfp-N`); the client POSTs its answer and
`intercept` routes it back here, as it does `notifications/cancelled` for calls running here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiohttp import web
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.connection import allowed_log_levels
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
    validate_mcp_param_headers,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from gateway.mcp.aggregator import Caller
from gateway.mcp.backend import JSON, BackendError, CallContext
from gateway.mcp.frontdoor import FrontDoor, RequestIdentity, meta_of

log = logging.getLogger(__name__)

PING_INTERVAL_S = 15.0  # an idle SSE stream behind a proxy's read timeout needs a keepalive
SERVER_REQUEST_PREFIX = "gigfp-"
MCP_PARAM_PREFIX = "mcp-param-"
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # reverse proxies must not buffer a stream of events
}


def accepts(accept: str) -> tuple[bool, bool]:
    """(json, event-stream) as the SDK reads an Accept header, wildcards included."""
    types = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    wildcard = "*/*" in types
    return (wildcard or bool(types & {"application/json", "application/*"}),
            wildcard or bool(types & {"text/event-stream", "text/*"}))


def is_json_content(content_type: str) -> bool:
    return any(part.strip() == "application/json" for part in content_type.split(";", 1)[0].split(","))


def simple_tool_call(decoded: Any) -> bool:
    """A single, well-formed tools/call: the only shape this path answers."""
    if not isinstance(decoded, dict) or decoded.get("jsonrpc") != "2.0" or decoded.get("method") != "tools/call":
        return False
    request_id = decoded.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return False
    params = decoded.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        return False
    arguments = params.get("arguments")
    meta = params.get("_meta")
    return (arguments is None or isinstance(arguments, dict)) and (meta is None or isinstance(meta, dict))


def sse_event(message: JSON) -> bytes:
    return b"event: message\r\ndata: " + _dumps(message) + b"\r\n\r\n"


def _dumps(message: JSON) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


class HeaderMismatch(Exception):
    """An `Mcp-Param-*` header disagrees with the body: the SDK's HEADER_MISMATCH, found on our path."""

    def __init__(self, rejection: InboundLadderRejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


@dataclass
class Exchange:
    """One POST's response: undecided until the call either finishes (JSON) or emits (SSE)."""

    request: web.Request
    headers: dict[str, str]
    response: web.StreamResponse | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def emit(self, message: JSON) -> None:
        await self._write(sse_event(message))

    async def ping(self) -> None:
        await self._write(b": ping\r\n\r\n")

    async def _write(self, chunk: bytes) -> None:
        async with self._lock:
            with contextlib.suppress(ConnectionError, RuntimeError):  # the client went away: drop, as the SDK does
                if self.response is None:
                    response = web.StreamResponse(status=200, headers={**self.headers, **SSE_HEADERS})
                    self.response = response
                    await response.prepare(self.request)
                await self.response.write(chunk)

    async def finish(self, message: JSON | None, status: int) -> web.StreamResponse:
        async with self._lock:
            if self.response is None:
                if message is None:  # cancelled before anything was sent: an empty stream, no response
                    return web.Response(status=200, headers={**self.headers, **SSE_HEADERS})
                return web.Response(body=_dumps(message), status=status,
                                    headers={**self.headers, "Content-Type": "application/json"})
            with contextlib.suppress(ConnectionError, RuntimeError):
                if message is not None:
                    await self.response.write(sse_event(message))
                await self.response.write_eof()
            return self.response


class Watch:
    """Pings a long call's stream, and cancels the call (in its own task) when asked or the client is gone."""

    def __init__(self, request: web.Request, exchange: Exchange) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.cancelled = False
        self._request = request
        self._exchange = exchange
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(PING_INTERVAL_S, self._tick)
        self._pings: set[asyncio.Task[None]] = set()

    def cancel(self) -> None:
        if not self.cancelled and self._timer is not None:
            self.cancelled = True
            self.task.cancel()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        transport = self._request.transport
        if transport is None or transport.is_closing():
            self.cancel()  # the client went away: for a 2026 client that is the cancellation
            return
        ping = asyncio.ensure_future(self._exchange.ping())
        self._pings.add(ping)
        ping.add_done_callback(self._pings.discard)
        self._timer = self._loop.call_later(PING_INTERVAL_S, self._tick)


@dataclass(frozen=True, slots=True)
class Era:
    """What the request's protocol era decides: its version, its session and how errors map to HTTP."""

    protocol_version: str
    session_id: str = ""  # legacy sessions only
    transport: Any = None  # the SDK's session transport (legacy), kept busy while the call runs

    @property
    def modern(self) -> bool:
        return not self.session_id


class FastPath:
    def __init__(self, frontdoor: FrontDoor, manager: StreamableHTTPSessionManager, *, answer_timeout_s: float) -> None:
        self.frontdoor = frontdoor
        self.manager = manager
        self.answer_timeout_s = answer_timeout_s
        self._ids = itertools.count(1)
        self._questions: dict[str, tuple[str, asyncio.Future[JSON]]] = {}  # our id → (session, answer)
        self._running: dict[tuple[str, str], Watch] = {}  # (session, request id) → the call's watch
        self.served = 0  # counted for tests and metrics: proof the path is taken

    async def handle(self, request: web.Request, body: bytes, identity: RequestIdentity,
                     user: AuthenticatedUser) -> web.StreamResponse | None:
        """The response, or None to let the SDK answer."""
        if request.method != "POST" or not is_json_content(request.headers.get("Content-Type", "")):
            return None
        has_json, has_sse = accepts(request.headers.get("Accept", ""))
        if not (has_json and has_sse):
            return None
        if b'"tools/call"' not in body:
            return await self._intercept(request, body, user) if (self._questions or self._running) else None
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not simple_tool_call(decoded):
            return None
        era = self._era(request, decoded, user)
        if era is None:
            return None
        return await self._serve(request, decoded, identity, era)

    # ---- which era, and may we answer it ---------------------------------------------------
    def _era(self, request: web.Request, decoded: JSON, user: AuthenticatedUser) -> Era | None:
        version = request.headers.get("MCP-Protocol-Version")
        if version is None:
            return None  # the SDK applies the spec's default-version rules
        if version in HANDSHAKE_PROTOCOL_VERSIONS:
            return self._legacy(request, version, user)
        if find_duplicated_routing_header(request.headers.items()) is not None:
            return None
        verdict = classify_inbound_request(decoded, headers={k.lower(): v for k, v in request.headers.items()})
        if isinstance(verdict, InboundLadderRejection):
            return None
        return Era(verdict.protocol_version)

    def _legacy(self, request: web.Request, version: str, user: AuthenticatedUser) -> Era | None:
        session_id = request.headers.get("Mcp-Session-Id", "")
        # The SDK keeps its sessions private; read-only use, pinned to the SDK version in pyproject.
        transport = self.manager._server_instances.get(session_id) if session_id else None
        if transport is None or getattr(transport, "_terminated", True):
            return None
        if self.manager._session_owners.get(session_id) != authorization_context(user):
            return None
        idle = getattr(transport, "idle_scope", None)
        if idle is not None and idle.cancel_called:
            return None
        return Era(version, session_id, transport)

    # ---- the call ----------------------------------------------------------------------------
    async def _serve(self, request: web.Request, decoded: JSON, identity: RequestIdentity,
                     era: Era) -> web.StreamResponse:
        request_id = decoded["id"]
        params: JSON = decoded["params"]
        headers = {"Mcp-Session-Id": era.session_id} if era.session_id else {}
        exchange = Exchange(request, headers)
        caller = self._caller(exchange, era, params)
        inspect = _param_header_check(request, params) if era.modern else None
        key = (era.session_id, json.dumps(request_id))
        # The call runs in this handler's own task (no task per call: that costs loop iterations on
        # the hottest path); a timer keeps long calls alive with pings and notices a client gone.
        watch = Watch(request, exchange)
        if era.session_id:
            self._running[key] = watch
        result: JSON | None = None
        error: JSON | None = None
        with _busy(era.transport, self.answer_timeout_s + 30.0):
            try:
                result = await self.frontdoor.call_tool(identity, params, era.protocol_version, caller,
                                                        inspect=inspect)
            except asyncio.CancelledError:
                if not watch.cancelled:
                    raise
                watch.task.uncancel()  # cancelled on purpose: answered below, the request goes on
            except Exception as exc:
                error = _error_data(exc)
            finally:
                watch.stop()
                self._running.pop(key, None)
        self.served += 1
        if result is not None:
            return await exchange.finish({"jsonrpc": "2.0", "id": request_id, "result": result}, 200)
        if error is not None:
            status = ERROR_CODE_HTTP_STATUS.get(error["code"], 200) if era.modern else 200
            return await exchange.finish({"jsonrpc": "2.0", "id": request_id, "error": error}, status)
        return await exchange.finish(None, 200)  # cancelled: no JSON-RPC response is owed

    def _caller(self, exchange: Exchange, era: Era, params: JSON) -> Caller:
        meta = meta_of(params)
        token = meta.get("progressToken")
        levels = allowed_log_levels(era.protocol_version, meta)

        async def on_progress(update: JSON) -> None:
            out: JSON = {"progressToken": token, "progress": update.get("progress", 0)}
            for optional in ("total", "message"):
                if update.get(optional) is not None:
                    out[optional] = update[optional]
            await exchange.emit({"jsonrpc": "2.0", "method": "notifications/progress", "params": out})

        async def on_log(entry: JSON) -> None:
            if entry.get("level", "info") in levels:
                await exchange.emit({"jsonrpc": "2.0", "method": "notifications/message", "params": entry})

        async def on_server_request(method: str, request_params: JSON | None, _call: CallContext | None) -> JSON:
            question_id = f"{SERVER_REQUEST_PREFIX}{next(self._ids)}"
            answer: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
            self._questions[question_id] = (era.session_id, answer)
            try:
                message: JSON = {"jsonrpc": "2.0", "id": question_id, "method": method}
                if request_params is not None:
                    message["params"] = request_params
                await exchange.emit(message)
                reply = await asyncio.wait_for(answer, self.answer_timeout_s)
            except TimeoutError:
                raise BackendError(-32001, f"the client did not answer {method}") from None
            finally:
                self._questions.pop(question_id, None)
            error = reply.get("error")
            if isinstance(error, dict):
                code, text = int(error.get("code", -32603)), str(error.get("message", "error"))
                raise BackendError(code, text, error.get("data"))
            result = reply.get("result")
            return result if isinstance(result, dict) else {}

        # A 2026 client never gets server requests: `interactive` turns them into input rounds.
        return Caller(on_progress=on_progress if token is not None else None, on_log=on_log,
                      on_server_request=None if era.modern else on_server_request)

    # ---- client messages that belong to calls running here ----------------------------------
    async def _intercept(self, request: web.Request, body: bytes, user: AuthenticatedUser) -> web.StreamResponse | None:
        session_id = request.headers.get("Mcp-Session-Id", "")
        if not session_id or self.manager._session_owners.get(session_id) != authorization_context(user):
            return None
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(decoded, dict) or decoded.get("jsonrpc") != "2.0":
            return None
        if "method" not in decoded:
            question = self._questions.get(str(decoded.get("id")))
            if question is None or question[0] != session_id or ("result" not in decoded and "error" not in decoded):
                return None
            if not question[1].done():
                question[1].set_result(decoded)
            return web.Response(status=202)
        if decoded.get("method") == "notifications/cancelled" and isinstance(decoded.get("params"), dict):
            watch = self._running.get((session_id, json.dumps(decoded["params"].get("requestId"))))
            if watch is None:
                return None
            watch.cancel()
            return web.Response(status=202)
        return None


def _param_header_check(request: web.Request, params: JSON) -> Callable[[JSON], None] | None:
    """The SDK's `Mcp-Param-*` rule for 2026 calls, checked against the schema the aggregate already has."""
    arguments: Mapping[str, Any] = params.get("arguments") or {}
    headers = {k: v for k, v in request.headers.items()}
    if not arguments and not any(k.lower().startswith(MCP_PARAM_PREFIX) for k in headers):
        return None

    def check(described: JSON) -> None:
        schema = described.get("inputSchema")
        if schema is None:
            return
        rejection = validate_mcp_param_headers(schema, arguments, headers)
        if rejection is not None:
            raise HeaderMismatch(rejection)

    return check


def _error_data(exc: BaseException) -> JSON:
    if isinstance(exc, HeaderMismatch):
        r = exc.rejection
        return {"code": r.code, "message": r.message, **({"data": r.data} if r.data is not None else {})}
    if isinstance(exc, MCPError):
        e = exc.error
        return {"code": e.code, "message": e.message, **({"data": e.data} if e.data is not None else {})}
    log.error("tools/call on the fast path failed", exc_info=exc)
    return {"code": -32603, "message": "Internal server error"}


@contextlib.contextmanager
def _busy(transport: Any, longest_call_s: float) -> Any:
    """Hold the SDK session's idle countdown while a call runs here, as its own requests do.

    Cheaper than the SDK's own bookkeeping on the hot path: the deadline moves only when it could
    fall inside this call (it is pushed to now + idle timeout whenever a call ends).
    """
    scope = getattr(transport, "idle_scope", None)
    timeout = getattr(transport, "_idle_timeout", None)
    if scope is None or timeout is None:
        yield
        return
    transport._requests_in_flight += 1
    if scope.deadline - anyio.current_time() < longest_call_s:
        scope.deadline = float("inf")
    try:
        yield
    finally:
        transport._requests_in_flight -= 1
        if not transport._requests_in_flight:
            scope.deadline = anyio.current_time() + timeout
