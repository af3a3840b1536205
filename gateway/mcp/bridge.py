"""A minimal aiohttp → ASGI bridge for the SDK's `StreamableHTTPSessionManager`.

Why not a generic adapter: `receive()` must block (not spin) once the body is delivered, and a
client that disconnects must be reported as `http.disconnect` rather than cancelling the SDK's
handler mid-flight, which would drop a session whose `initialize` already succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


@contextlib.asynccontextmanager
async def running(manager: StreamableHTTPSessionManager) -> AsyncIterator[None]:
    """Run `manager.run()` in a task of its own: anyio task groups must enter and exit in one task."""
    stop, started = asyncio.Event(), asyncio.Event()
    failure: list[BaseException] = []

    async def runner() -> None:
        try:
            async with manager.run():
                started.set()
                await stop.wait()
        except BaseException as exc:
            failure.append(exc)
            started.set()
            raise

    task = asyncio.create_task(runner(), name="mcp-session-manager")
    await started.wait()
    if failure:
        raise failure[0]
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 10)


def build_scope(request: web.Request, body_len: int, extra: dict[str, Any]) -> Scope:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.encode(),
        "root_path": "",
        "query_string": request.query_string.encode(),
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "client": tuple(peer[:2]) if peer else None,
        "server": None,
    }
    scope.update(extra)
    return scope


async def serve(
    handle: Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]],
    request: web.Request,
    body: bytes,
    extra_scope: dict[str, Any],
) -> web.StreamResponse:
    scope = build_scope(request, len(body), extra_scope)
    finished = asyncio.Event()
    body_sent = False
    response: web.StreamResponse | None = None

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()  # block: the SDK listens for disconnects and must not spin
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal response
        if message["type"] == "http.response.start":
            response = web.StreamResponse(status=message["status"])
            for key, value in message.get("headers", []):
                name = key.decode("latin-1")
                if name.lower() == "content-length":
                    continue
                response.headers.add(name, value.decode("latin-1"))
            content_type = response.headers.get("content-type", "")
            if content_type.startswith("text/event-stream"):
                # Reverse proxies must not buffer a stream of events.
                response.headers["X-Accel-Buffering"] = "no"
                response.headers["Cache-Control"] = "no-cache, no-transform"
            await response.prepare(request)
        elif message["type"] == "http.response.body" and response is not None:
            chunk = message.get("body", b"")
            if chunk:
                await response.write(chunk)
            if not message.get("more_body", False):
                await response.write_eof()
                finished.set()

    task = asyncio.ensure_future(handle(scope, receive, send))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        finished.set()
        await asyncio.wait({task}, timeout=5)
        raise
    finally:
        finished.set()
    if response is None:
        return web.Response(status=500, text="no response")
    return response
