"""The MCP front door end to end: real gateway process, sandboxed echo server, the SDK client in both eras."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from mcp.shared.exceptions import MCPError

from tests.support.gateway import Gateway, mcp_client, running_gateway

pytestmark = [pytest.mark.root]
MODES = ["legacy", "2026-07-28"]


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway() as gateway:
        yield gateway


@pytest.mark.parametrize("mode", MODES)
async def test_list_and_call(gw: Gateway, mode: str) -> None:
    async with mcp_client(gw.mcp_url, mode) as client:
        expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert client.protocol_version == expected
        names = [t.name for t in (await client.list_tools()).tools]
        assert {"echo_echo", "echo_add", "echo_progress", "echo_slow"} <= set(names)
        result = await client.call_tool("echo_echo", {"message": "hello gateway"})
        assert result.content[0].text == "hello gateway"
        assert not result.is_error
        total = await client.call_tool("echo_add", {"a": 2, "b": 40})
        assert total.structured_content == {"result": 42}


@pytest.mark.parametrize("mode", MODES)
async def test_progress_is_relayed(gw: Gateway, mode: str) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with mcp_client(gw.mcp_url, mode) as client:
        result = await client.call_tool("echo_progress", {"steps": 4}, progress_callback=on_progress)
    assert result.content[0].text == "done 4 steps"
    assert [p for p, _, _ in seen] == [1, 2, 3, 4]
    assert seen[-1][1] == 4 and seen[-1][2] == "step 4 of 4"


async def test_logs_are_relayed(gw: Gateway) -> None:
    logs = []

    async def on_log(params: object) -> None:
        logs.append(params)

    async with mcp_client(gw.mcp_url, "legacy", logging_callback=on_log) as client:
        await client.call_tool("echo_log", {"message": "relay me", "level": "warning"})
    assert [(entry.level, entry.data, entry.logger) for entry in logs] == [("warning", "relay me", "echo")]


@pytest.mark.parametrize("mode", MODES)
async def test_cancel_slow_tool(gw: Gateway, mode: str) -> None:
    async with mcp_client(gw.mcp_url, mode) as client:
        call = asyncio.create_task(client.call_tool("echo_slow", {"seconds": 30}))
        await asyncio.sleep(0.5)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # The connection and the backend stay usable after a cancellation.
        quick = await asyncio.wait_for(client.call_tool("echo_echo", {"message": "still here"}), 10)
        assert quick.content[0].text == "still here"


async def test_resources_and_prompts_are_namespaced(gw: Gateway) -> None:
    async with mcp_client(gw.mcp_url, "legacy") as client:
        resources = (await client.list_resources()).resources
        assert [str(r.uri) for r in resources] == ["echo+echo://greeting"]
        read = await client.read_resource("echo+echo://greeting")
        assert read.contents[0].text == "hello from echo"
        assert str(read.contents[0].uri) == "echo+echo://greeting"
        prompts = (await client.list_prompts()).prompts
        assert [p.name for p in prompts] == ["echo_say"]
        prompt = await client.get_prompt("echo_say", {"word": "mango"})
        assert "mango" in prompt.messages[0].content.text


async def test_list_changed_reaches_the_client(gw: Gateway) -> None:
    changed = asyncio.Event()

    async def on_message(message: object) -> None:
        if getattr(getattr(message, "root", message), "method", "") == "notifications/tools/list_changed":
            changed.set()

    async with mcp_client(gw.mcp_url, "legacy", message_handler=on_message) as client:
        before = {t.name for t in (await client.list_tools()).tools}
        await client.call_tool("echo_toggle_extra", {})
        await asyncio.wait_for(changed.wait(), 10)
        after = {t.name for t in (await client.list_tools()).tools}
        assert after ^ before == {"echo_extra"}
        await client.call_tool("echo_toggle_extra", {})


async def test_unknown_tool_is_a_protocol_error(gw: Gateway) -> None:
    async with mcp_client(gw.mcp_url, "legacy") as client:
        with pytest.raises(MCPError) as info:
            await client.call_tool("echo_nope", {})
        assert info.value.code == -32602 and "echo_nope" in str(info.value)
        with pytest.raises(MCPError):
            await client.call_tool("nosuchserver_echo", {})


async def test_wrong_argument_types_give_a_tool_error(gw: Gateway) -> None:
    async with mcp_client(gw.mcp_url, "legacy") as client:
        result = await client.call_tool("echo_add", {"a": "two", "b": []})
        assert result.is_error
        assert "validation" in result.content[0].text.lower()
        ok = await client.call_tool("echo_add", {"a": 1, "b": 1})
        assert ok.structured_content == {"result": 2}


async def test_sandbox_runs_as_unprivileged_user(gw: Gateway) -> None:
    async with mcp_client(gw.mcp_url, "legacy") as client:
        who = (await client.call_tool("echo_whoami", {})).structured_content
    assert who is not None
    assert who["uid"] != 0 and who["hostname"] == "echo"
    assert not any(key.startswith("GIG_") for key in who["env_keys"]), who["env_keys"]


async def test_list_changed_reaches_an_idle_client_on_its_get_stream(gw: Gateway) -> None:
    changed = asyncio.Event()

    async def on_message(message: object) -> None:
        if getattr(getattr(message, "root", message), "method", "") == "notifications/tools/list_changed":
            changed.set()

    async with mcp_client(gw.mcp_url, "legacy", message_handler=on_message) as idle:
        await idle.list_tools()
        await asyncio.sleep(0.5)  # let it open its standalone GET stream; it has no request in flight
        async with mcp_client(gw.mcp_url, "legacy") as other:
            await other.call_tool("echo_toggle_extra", {})
            await asyncio.wait_for(changed.wait(), 10)
            await other.call_tool("echo_toggle_extra", {})
