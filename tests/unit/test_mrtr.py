"""Multi-round input for legacy backends: parking, resuming, re-asking, refusing bad states."""

from __future__ import annotations

import asyncio

import pytest

from gateway.mcp.backend import BackendError
from gateway.mcp.mrtr import InputRound, InputRounds

CAPS = {"sampling": {}, "elicitation": {}, "roots": {}}


async def two_questions(round_: InputRound) -> dict[str, object]:
    name = await round_.ask("elicitation/create", {"message": "name?"})
    roots = await round_.ask("roots/list", None)
    return {"content": [{"type": "text", "text": f"{name['content']['name']} {len(roots['roots'])}"}]}


async def test_questions_become_rounds_and_the_call_completes() -> None:
    rounds = InputRounds()
    first = await rounds.run("alice", CAPS, two_questions)
    assert first["resultType"] == "input_required"
    (key, request), = first["inputRequests"].items()
    assert request == {"method": "elicitation/create", "params": {"message": "name?"}}
    answer = {"action": "accept", "content": {"name": "Ada"}}
    second = await rounds.resume("alice", first["requestState"], {key: answer})
    assert second["resultType"] == "input_required" and second["requestState"] != first["requestState"]
    (key2, request2), = second["inputRequests"].items()
    assert request2 == {"method": "roots/list"}
    done = await rounds.resume("alice", second["requestState"], {key2: {"roots": [{"uri": "file:///a"}]}, "x": {}})
    assert done == {"content": [{"type": "text", "text": "Ada 1"}]}


async def test_missing_answers_are_asked_again_and_states_are_single_use() -> None:
    rounds = InputRounds()
    first = await rounds.run("alice", CAPS, two_questions)
    again = await rounds.resume("alice", first["requestState"], {"unrelated": {"x": 1}})
    assert again["inputRequests"] == first["inputRequests"]
    with pytest.raises(BackendError, match="Invalid or expired requestState"):
        await rounds.resume("alice", first["requestState"], {})  # already used
    with pytest.raises(BackendError, match="Invalid or expired requestState"):
        await rounds.resume("mallory", again["requestState"], {})  # someone else's state
    with pytest.raises(BackendError, match="Invalid or expired requestState"):
        await rounds.resume("alice", again["requestState"] + "x", {})


async def test_a_missing_capability_fails_the_request() -> None:
    rounds = InputRounds()
    with pytest.raises(BackendError) as info:
        await rounds.run("alice", {"sampling": {}}, two_questions)
    assert info.value.code == -32021 and info.value.data == {"requiredCapabilities": {"elicitation": {}}}


async def test_expired_rounds_cancel_the_backend_call() -> None:
    rounds = InputRounds(ttl_s=0.0)
    started = asyncio.Event()

    async def slow(round_: InputRound) -> dict[str, object]:
        started.set()
        await round_.ask("sampling/createMessage", {"messages": []})
        return {}

    first = await rounds.run("alice", CAPS, slow)
    await asyncio.sleep(0.01)
    with pytest.raises(BackendError, match="expired"):
        await rounds.resume("alice", first["requestState"], {"q1": {"role": "assistant"}})
