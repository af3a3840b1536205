"""A loopback reverse proxy that adds a bearer token: for tools that cannot send headers (the
conformance suite). It keeps Host and Origin as the client sent them and streams responses, so the
gateway's DNS-rebinding checks and SSE streams are exercised unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import aiohttp
from aiohttp import web

from tests.support.gateway import TOKEN, free_port

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


def _app(upstream: str, token: str) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        session: aiohttp.ClientSession = request.app["session"]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Authorization"] = f"Bearer {token}"
        body = await request.read()
        async with session.request(
            request.method, upstream + request.path_qs, headers=headers, data=body or None,
            allow_redirects=False, timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        ) as upstream_resp:
            response = web.StreamResponse(status=upstream_resp.status)
            for key, value in upstream_resp.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    response.headers.add(key, value)
            await response.prepare(request)
            # The client may leave mid-stream (it closes SSE streams it no longer needs).
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                async for chunk in upstream_resp.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            return response

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app["session"] = aiohttp.ClientSession(auto_decompress=False)
        yield
        await app["session"].close()

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@contextlib.contextmanager
def auth_proxy(upstream: str, token: str = TOKEN) -> Iterator[str]:
    """Run the proxy in a thread; yields its base URL (http://127.0.0.1:PORT)."""
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(_app(upstream, token), shutdown_timeout=1.0)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
