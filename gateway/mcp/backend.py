"""A raw JSON-RPC client session to one MCP server over its stdio pipes.

It relays JSON as it is (no model validation), so a server whose schemas do not validate still
works. Each outgoing request gets a fresh id and, when the caller wants progress, a gateway-owned
progress token, so many front-door callers can share one backend without their ids or tokens
colliding. Requests the server sends to the client (sampling, elicitation, roots) and notifications
not tied to a call go to callbacks owned by the aggregator.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "2025-11-25"
CLIENT_INFO = {"name": "gigmcp", "version": "0.1.0"}

JSON = dict[str, Any]
ProgressFn = Callable[[JSON], Awaitable[None]]
ServerRequestFn = Callable[[str, JSON | None, "CallContext | None"], Awaitable[JSON]]
NotificationFn = Callable[[str, JSON | None], Awaitable[None]]


class BackendError(Exception):
    """The server answered with a JSON-RPC error, or could not answer at all."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class BackendGone(BackendError):
    """The server's process ended or its pipe closed."""


@dataclass(slots=True)
class CallContext:
    """What the session knows about one in-flight request: where its progress and logs go."""

    method: str
    on_progress: ProgressFn | None = None
    on_log: Callable[[JSON], Awaitable[None]] | None = None
    on_server_request: ServerRequestFn | None = None
    future: asyncio.Future[JSON] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class BackendSession:
    def __init__(
        self,
        name: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        on_notification: NotificationFn | None = None,
        on_server_request: ServerRequestFn | None = None,
    ) -> None:
        self.name = name
        self._reader = reader
        self._writer = writer
        self._on_notification = on_notification
        self._on_server_request = on_server_request
        self._ids = itertools.count(1)
        self._pending: dict[int, CallContext] = {}
        self._progress: dict[str, CallContext] = {}
        self._reader_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.initialize_result: JSON = {}

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self, timeout: float) -> JSON:
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"backend-read-{self.name}")
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {"sampling": {}, "elicitation": {"form": {}}, "roots": {"listChanged": True}},
            "clientInfo": CLIENT_INFO,
        }
        self.initialize_result = await self.request("initialize", params, timeout=timeout)
        await self.notify("notifications/initialized", None)
        return self.initialize_result

    @property
    def capabilities(self) -> JSON:
        caps = self.initialize_result.get("capabilities")
        return caps if isinstance(caps, dict) else {}

    async def aclose(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()
        if self._reader_task:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
        self._fail_all("session closed")

    # ---- outgoing ----------------------------------------------------------------------------
    async def notify(self, method: str, params: JSON | None) -> None:
        msg: JSON = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        await self._send(msg)

    async def request(
        self,
        method: str,
        params: JSON | None,
        *,
        timeout: float,
        on_progress: ProgressFn | None = None,
        on_log: Callable[[JSON], Awaitable[None]] | None = None,
        on_server_request: ServerRequestFn | None = None,
    ) -> JSON:
        if self.closed.is_set():
            raise BackendGone(-32000, f"server {self.name} is not running ({self.close_reason})")
        request_id = next(self._ids)
        call = CallContext(method, on_progress, on_log, on_server_request)
        self._pending[request_id] = call
        token: str | None = None
        if on_progress is not None:
            token = f"gig-{request_id}"
            params = dict(params or {})
            meta = dict(params.get("_meta") or {})
            meta["progressToken"] = token
            params["_meta"] = meta
            self._progress[token] = call
        msg: JSON = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            msg["params"] = params
        try:
            await self._send(msg)
            # No shield: the future is this call's alone, and a cancelled one is simply skipped when
            # its answer arrives (`_dispatch`); a shield would cost an extra loop iteration per call.
            async with asyncio.timeout(timeout):
                return await call.future
        except TimeoutError:
            await self._cancel(request_id, "timeout")
            raise BackendError(-32001, f"server {self.name} did not answer {method} within {timeout:g}s") from None
        except asyncio.CancelledError:
            # The front-door caller went away or cancelled: tell the server so it can stop working.
            await self._cancel(request_id, "cancelled by the client")
            raise
        finally:
            self._pending.pop(request_id, None)
            if token:
                self._progress.pop(token, None)

    async def _cancel(self, request_id: int, reason: str) -> None:
        if self.closed.is_set():
            return
        with contextlib.suppress(Exception):
            await self.notify("notifications/cancelled", {"requestId": request_id, "reason": reason})

    async def _send(self, msg: JSON) -> None:
        data = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._mark_closed(f"write failed: {exc}")
            raise BackendGone(-32000, f"server {self.name} is not running (pipe closed)") from None

    # ---- incoming ----------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    self._mark_closed("server exited")
                    return
                line = line.strip()
                if not line:
                    continue
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError:
                    # Servers sometimes print to stdout by mistake; skip the line, keep the session.
                    log.warning("server %s wrote a non-JSON line to stdout (%d bytes)", self.name, len(line))
                    continue
                if isinstance(msg, dict):
                    self._dispatch(msg)
        except (asyncio.LimitOverrunError, ValueError) as exc:
            self._mark_closed(f"protocol error: {exc}")
        except ConnectionError as exc:
            self._mark_closed(f"read failed: {exc}")

    def _dispatch(self, msg: JSON) -> None:
        if "method" in msg:
            if "id" in msg:
                self._spawn(self._answer_server_request(msg))
            else:
                self._spawn(self._handle_notification(msg["method"], msg.get("params")))
            return
        msg_id = msg.get("id")
        call = self._pending.get(msg_id) if isinstance(msg_id, int) else None
        if call is None or call.future.done():
            return
        if "error" in msg and isinstance(msg["error"], dict):
            err = msg["error"]
            call.future.set_exception(
                BackendError(int(err.get("code", -32603)), str(err.get("message", "error")), err.get("data"))
            )
        else:
            result = msg.get("result")
            call.future.set_result(result if isinstance(result, dict) else {})

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _current_call(self) -> CallContext | None:
        # Legacy stdio servers do not say which request a log or a server request belongs to: the
        # most recent in-flight tools/call is the best owner (one sandbox serves one profile).
        for call in reversed(list(self._pending.values())):
            if call.method != "initialize":
                return call
        return None

    async def _handle_notification(self, method: str, params: JSON | None) -> None:
        try:
            if method == "notifications/progress" and params:
                call = self._progress.get(str(params.get("progressToken")))
                if call and call.on_progress:
                    await call.on_progress(params)
                return
            if method == "notifications/message":
                call = self._current_call()
                if call and call.on_log and params is not None:
                    await call.on_log(params)
                    return
            if self._on_notification:
                await self._on_notification(method, params)
        except Exception:
            log.exception("relaying %s from server %s failed", method, self.name)

    async def _answer_server_request(self, msg: JSON) -> None:
        method, params, req_id = str(msg["method"]), msg.get("params"), msg["id"]
        reply: JSON = {"jsonrpc": "2.0", "id": req_id}
        try:
            if method == "ping":
                reply["result"] = {}
            else:
                call = self._current_call()
                handler = (call.on_server_request if call else None) or self._on_server_request
                if handler is None:
                    raise BackendError(-32601, f"the gateway cannot relay {method} here")
                reply["result"] = await handler(method, params, call)
        except BackendError as exc:
            reply["error"] = {"code": exc.code, "message": exc.message}
        except Exception as exc:
            log.warning("relaying %s for server %s failed: %s", method, self.name, exc)
            reply["error"] = {"code": -32603, "message": f"the client could not answer {method}"}
        with contextlib.suppress(BackendGone):
            await self._send(reply)

    def _mark_closed(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
        self._fail_all(reason)

    def _fail_all(self, reason: str) -> None:
        for call in list(self._pending.values()):
            if not call.future.done():
                call.future.set_exception(BackendGone(-32000, f"server {self.name} stopped: {reason}"))
                # Nobody may await it (the caller could be gone); mark the exception as retrieved.
                call.future.exception()
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
