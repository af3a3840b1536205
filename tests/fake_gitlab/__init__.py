"""A stateful fake GitLab REST API for tests, following GitLab's documented response shapes.

Use `running_fake()` in tests (it serves on a loopback port) or run `python -m tests.fake_gitlab --port N`.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from .app import FakeGitLab, RecordedRequest, Running

__all__ = ["FakeGitLab", "RecordedRequest", "Running", "running_fake"]


@asynccontextmanager
async def running_fake(
    host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None, **kwargs: Any
) -> AsyncIterator[Running]:
    """Serve a fresh FakeGitLab on loopback (HTTPS with `ssl_context`); yields its base URL (without /api/v4)."""
    fake = FakeGitLab(**kwargs)
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    sockets = site._server.sockets if site._server is not None else []
    bound = sockets[0].getsockname()[1] if sockets else port
    url = f"{'https' if ssl_context else 'http'}://{host}:{bound}"
    fake.base_url = url
    try:
        yield Running(fake, url, runner)
    finally:
        await runner.cleanup()
