"""Fault: a sandbox is killed (SIGKILL) under a running call — its server process, or bwrap itself.

The call in flight gets a clear JSON-RPC error naming the server as unavailable, at once rather than
at its timeout, and the audit records it as such; the next call starts a new sandbox; nothing of the
old one remains: no process, no zombie child of the gateway, no interface.
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
    db_of,
    drill_gateway,
    links,
    prefix_of,
    process_tree,
    still_running,
    tool_calls,
    wait_for,
    zombie_children,
)
from tests.integration.conftest_egress import Pki
from tests.support.gateway import Gateway, RawSession

pytestmark = [pytest.mark.root]


@pytest.fixture(scope="module")
def gw(drill_registry: Path, drill_pki: Pki) -> Iterator[Gateway]:
    gateway = drill_gateway(drill_registry, drill_pki.ca_pem, install="echo").start()
    try:
        yield gateway
    finally:
        gateway.stop()


def _running(gw: Gateway) -> dict[str, Any]:
    entries = [s for s in gw.sandboxes() if s["state"] == "running" and s["key"][0] == "echo"]
    assert len(entries) == 1, gw.sandboxes()
    return entries[0]


@pytest.mark.parametrize("victim", ["server", "bwrap"])
async def test_killed_sandbox_fails_its_call_and_is_replaced(gw: Gateway, victim: str) -> None:
    session = RawSession(gw).open()
    assert "result" in session.call("echo_echo", {"message": "warm"})
    before = _running(gw)
    tree = process_tree(int(before["pid"]))  # bwrap, the sandbox's pid 1, the server
    server = tree[-1]
    assert "gigmcp-echo" in server.cmd, tree
    old_links = links(prefix_of(gw))
    assert len(old_links) == 1, old_links
    unavailable = tool_calls(db_of(gw), "slow", "unavailable")

    call = asyncio.create_task(asyncio.to_thread(session.call, "echo_slow", {"seconds": 30}))
    assert await asyncio.to_thread(wait_for, lambda: _running(gw)["inflight"] == 1, 10)
    killed_at = time.monotonic()
    os.kill(server.pid if victim == "server" else tree[0].pid, signal.SIGKILL)
    reply = await asyncio.wait_for(call, 20)
    assert time.monotonic() - killed_at < 5, "the call waited for its timeout"
    assert reply.get("error", {}).get("code") == -32000, reply
    assert "server echo is unavailable" in reply["error"]["message"], reply

    # Everything of the old sandbox is gone, and the kernel holds no zombie of it for the gateway.
    assert await asyncio.to_thread(wait_for, lambda: not still_running(tree), 10), still_running(tree)
    assert gw.proc is not None
    assert await asyncio.to_thread(wait_for, lambda: not zombie_children(gw.proc.pid), 5)  # type: ignore[union-attr]
    assert await asyncio.to_thread(wait_for, lambda: not set(old_links) & set(links(prefix_of(gw))), 10)

    # The next call starts a new sandbox: at once after a first crash; a repeated one backs off first, and
    # calls meanwhile are told when it will be retried.
    def again() -> dict[str, Any] | None:
        reply = session.call("echo_echo", {"message": "again"})
        if "error" in reply:
            assert "restarting in" in reply["error"]["message"], reply
            return None
        return reply

    reply = await asyncio.to_thread(wait_for, again, 10, 0.2)
    assert reply is not None and reply["result"]["content"][0]["text"] == "again", reply
    after = _running(gw)
    assert after["pid"] != before["pid"] and int(after["restarts"]) >= 1
    assert len(links(prefix_of(gw))) == 1
    assert await asyncio.to_thread(wait_for, lambda: tool_calls(db_of(gw), "slow", "unavailable") == unavailable + 1,
                                   10)
