"""The supervisor seen from outside: crashes, restarts, idle reaping, the LRU cap, drain and orphans."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import pytest
from mcp.shared.exceptions import MCPError

from tests.support.gateway import Gateway, RawSession, mcp_client, running_gateway

pytestmark = [pytest.mark.root]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return "State:\tZ" not in fh.read()
    except FileNotFoundError:
        return False


def _wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _running(gw: Gateway, server: str) -> dict[str, object]:
    entries = [s for s in gw.sandboxes() if s["state"] == "running" and s["key"][0] == server]
    assert len(entries) == 1, gw.sandboxes()
    return entries[0]


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway(install="echo,echob", env={"GIG_IDLE_TIMEOUT": "600"}) as gateway:
        yield gateway


async def test_kill_backend_mid_call_then_next_call_works(gw: Gateway) -> None:
    async with mcp_client(gw.mcp_url) as client:
        await client.call_tool("echo_echo", {"message": "warm"})
        before = _running(gw, "echo")
        call = asyncio.create_task(client.call_tool("echo_slow", {"seconds": 20}))
        await asyncio.sleep(0.5)
        os.kill(int(before["sandbox_pid"]), signal.SIGKILL)  # type: ignore[arg-type]
        with pytest.raises(MCPError) as info:
            await asyncio.wait_for(call, 10)
        assert "echo" in str(info.value)
        result = await client.call_tool("echo_echo", {"message": "back"})
        assert result.content[0].text == "back"
        after = _running(gw, "echo")
        assert after["sandbox_pid"] != before["sandbox_pid"]
        assert int(after["restarts"]) >= 1  # type: ignore[call-overload]


async def test_repeated_crashes_back_off_with_a_reason(gw: Gateway) -> None:
    async with mcp_client(gw.mcp_url) as client:
        for _ in range(2):
            with pytest.raises(MCPError):
                await client.call_tool("echob_crash", {})
            await asyncio.sleep(0.2)
        with pytest.raises(MCPError) as info:
            await client.call_tool("echob_echo", {"message": "x"})
        assert "echob" in str(info.value) and "restarting in" in str(info.value)
        await asyncio.sleep(2.5)
        result = await client.call_tool("echob_echo", {"message": "recovered"})
        assert result.content[0].text == "recovered"


async def test_stop_sandbox_through_the_api(gw: Gateway) -> None:
    async with mcp_client(gw.mcp_url) as client:
        await client.call_tool("echo_echo", {"message": "x"})
        entry = _running(gw, "echo")
        status, _, _ = gw.request("DELETE", f"/api/sandboxes/echo/{entry['key'][1]}")  # type: ignore[index]
        assert status == 200
        assert _wait_gone([int(entry["sandbox_pid"]), int(entry["pid"])]) == []  # type: ignore[call-overload]


def test_idle_reaper_and_lru_cap() -> None:
    env = {"GIG_IDLE_TIMEOUT": "1.5", "GIG_MAX_SANDBOXES": "1"}
    with running_gateway(install="echo,echob", env=env) as gw:
        raw = RawSession(gw).open()
        assert raw.call("echo_echo", {"message": "a"})["result"]["content"][0]["text"] == "a"
        first = _running(gw, "echo")
        assert raw.call("echob_echo", {"message": "b"})["result"]["content"][0]["text"] == "b"
        running = [s for s in gw.sandboxes() if s["state"] == "running"]
        assert [s["key"][0] for s in running] == ["echob"]  # echo was evicted, least recently used
        assert _wait_gone([int(first["sandbox_pid"])]) == []  # type: ignore[call-overload]
        second = _running(gw, "echob")
        time.sleep(3.5)
        assert [s for s in gw.sandboxes() if s["state"] == "running"] == []
        assert _wait_gone([int(second["sandbox_pid"])]) == []  # type: ignore[call-overload]
        # Reaped sandboxes come back on the next use.
        assert raw.call("echo_echo", {"message": "again"})["result"]["content"][0]["text"] == "again"


async def test_sigterm_drains_in_flight_calls_and_leaves_no_orphans() -> None:
    gw = Gateway(install="echo").start()
    try:
        async with mcp_client(gw.mcp_url) as client:
            await client.call_tool("echo_echo", {"message": "warm"})
            entry = _running(gw, "echo")
            call = asyncio.create_task(client.call_tool("echo_slow", {"seconds": 2}))
            await asyncio.sleep(0.5)
            assert gw.proc is not None
            gw.proc.send_signal(signal.SIGTERM)
            result = await asyncio.wait_for(call, 20)
            assert result.content[0].text == "slept 2.0"
        assert await asyncio.to_thread(gw.proc.wait, 30) == 0
        assert _wait_gone([int(entry["sandbox_pid"]), int(entry["pid"])]) == []  # type: ignore[call-overload]
    finally:
        gw.stop()


async def test_sigkill_of_the_gateway_kills_its_sandboxes() -> None:
    gw = Gateway(install="echo").start()
    try:
        async with mcp_client(gw.mcp_url) as client:
            await client.call_tool("echo_echo", {"message": "warm"})
            entry = _running(gw, "echo")
        gw.stop(signal.SIGKILL)
        assert _wait_gone([int(entry["sandbox_pid"])]) == []  # type: ignore[call-overload]
    finally:
        gw.stop()
