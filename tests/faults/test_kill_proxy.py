"""Fault: the egress proxy process is killed (SIGKILL) while a sandbox is using it.

The request in flight fails at once with a connection error (not at its timeout); calls while the
proxy is down fail fast with a clear reason; /ready reports the proxy as not running; the gateway's
supervisor starts a new proxy, re-sends every sandbox binding, and the same sandbox reaches its host
again, credential injected, without being restarted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.support import (
    CREDENTIAL_SECRET,
    drill_gateway,
    proxy_process,
    still_running,
    wait_for,
    zombie_children,
)
from tests.integration.conftest_egress import Pki, Upstream
from tests.support.api import api
from tests.support.gateway import Gateway, RawSession

pytestmark = [pytest.mark.root]


@pytest.fixture(scope="module")
def gw(drill_registry: Path, drill_pki: Pki) -> Iterator[Gateway]:
    gateway = drill_gateway(drill_registry, drill_pki.ca_pem, install="fetch").start()
    try:
        assert api(gateway, "PUT", "/api/credentials/fetch/token", {"value": CREDENTIAL_SECRET})[0] in (200, 201)
        yield gateway
    finally:
        gateway.stop()


def _fetched(reply: dict[str, Any]) -> dict[str, Any]:
    assert "result" in reply, reply
    structured = reply["result"].get("structuredContent") or {}
    return dict(structured.get("result", structured))


def _ready(gw: Gateway) -> tuple[int, dict[str, Any]]:
    status, body = gw.get("/ready")
    return status, body


async def test_proxy_killed_mid_request_then_restarted(gw: Gateway, drill_upstream: Upstream) -> None:
    session = RawSession(gw).open()
    base = f"https://allowed.test:{drill_upstream.https_port}"
    args = {"bearer_from_env": "FETCH_TOKEN", "timeout": 20}
    assert _fetched(await asyncio.to_thread(session.call, "fetch_fetch", {"url": f"{base}/warm", **args}))[
        "status"] == 200
    assert _ready(gw)[0] == 200
    sandbox_pid = next(s["sandbox_pid"] for s in gw.sandboxes() if s["state"] == "running")
    proxy = proxy_process(gw)

    # A request held open by the upstream for 8 s when the proxy dies under it.
    drill_upstream.seen.clear()
    inflight = asyncio.create_task(asyncio.to_thread(
        session.call, "fetch_fetch", {"url": f"{base}/slow?s=8", **args}))
    assert await asyncio.to_thread(wait_for, lambda: any(r["path"].startswith("/slow") for r in drill_upstream.seen),
                                   10)
    killed_at = time.monotonic()
    os.kill(proxy.pid, signal.SIGKILL)
    got = _fetched(await asyncio.wait_for(inflight, 30))
    assert time.monotonic() - killed_at < 5, "the in-flight request waited for its timeout"
    assert got["status"] == 0 and got["error"], got

    # While the proxy is down: /ready says so, and a call fails fast with a reason.
    down = await asyncio.to_thread(wait_for, lambda: _ready(gw)[0] == 503, 5, 0.02)
    status, body = _ready(gw)
    if down and status == 503:
        assert body["checks"]["egress_proxy"] == "not running", body
        started = time.monotonic()
        got = _fetched(await asyncio.to_thread(session.call, "fetch_fetch", {"url": f"{base}/while-down", **args}))
        assert time.monotonic() - started < 5
        # Connection refused at once (nothing listens), or already the new proxy's answer.
        assert got["status"] == 200 or "ConnectionRefused" in got.get("error", ""), got
    else:
        print("the proxy came back before /ready could see it down; the down-time checks were not exercised")

    # It comes back: ready again, a new process, the same sandbox reaches its host with the credential.
    assert await asyncio.to_thread(wait_for, lambda: _ready(gw)[0] == 200, 30, 0.1), _ready(gw)
    assert proxy_process(gw).pid != proxy.pid
    assert not still_running([proxy])
    assert gw.proc is not None and not zombie_children(gw.proc.pid)
    drill_upstream.seen.clear()
    got = _fetched(await asyncio.to_thread(session.call, "fetch_fetch", {"url": f"{base}/after", **args}))
    assert got["status"] == 200, got
    assert drill_upstream.last()["headers"]["authorization"] == f"Bearer {CREDENTIAL_SECRET}"
    assert next(s["sandbox_pid"] for s in gw.sandboxes() if s["state"] == "running") == sandbox_pid
