"""The tools/call fast path against a real gateway: taken, equivalent to the SDK path, and complete.

The SDK answers a legacy-era tools/call with an event stream; the fast path answers JSON unless
the call emits something first. That difference is how these tests see which path answered.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.gateway import Gateway, RawSession, running_gateway

pytestmark = [pytest.mark.root]


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway() as gateway:
        yield gateway


def post(session: RawSession, message: dict[str, Any]) -> tuple[int, str, bytes]:
    status, headers, body = session._post(message)
    return status, {k.lower(): v for k, v in headers.items()}.get("content-type", ""), body


def events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: ")]


def call(name: str, arguments: dict[str, Any], request_id: int = 7, meta: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def test_a_plain_call_is_answered_as_json(gw: Gateway) -> None:
    session = RawSession(gw).open()
    status, content_type, body = post(session, call("echo_echo", {"message": "fast"}))
    assert status == 200 and content_type.startswith("application/json")
    reply = json.loads(body)
    assert reply["id"] == 7 and reply["result"]["content"][0]["text"] == "fast"


def test_without_the_fast_path_the_sdk_answers_the_same_result() -> None:
    with running_gateway(env={"GIG_FAST_PATH": "false"}) as slow_gw:
        session = RawSession(slow_gw).open()
        status, content_type, body = post(session, call("echo_echo", {"message": "sdk"}))
    assert status == 200 and content_type.startswith("text/event-stream")
    [reply] = events(body)
    assert reply["result"]["content"][0]["text"] == "sdk"


def test_a_call_that_logs_switches_to_an_event_stream(gw: Gateway) -> None:
    session = RawSession(gw).open()
    status, content_type, body = post(session, call("echo_log", {"message": "relay me", "level": "warning"}))
    assert status == 200 and content_type.startswith("text/event-stream")
    log, reply = events(body)
    assert log["method"] == "notifications/message" and log["params"]["data"] == "relay me"
    assert reply["id"] == 7 and reply["result"]["content"][0]["text"] == "logged relay me"


def test_progress_goes_out_with_the_clients_own_token(gw: Gateway) -> None:
    session = RawSession(gw).open()
    _, _, body = post(session, call("echo_progress", {"steps": 3}, meta={"progressToken": "mine"}))
    *progress, reply = events(body)
    assert [(p["params"]["progressToken"], p["params"]["progress"]) for p in progress] == [
        ("mine", 1), ("mine", 2), ("mine", 3)]
    assert reply["result"]["content"][0]["text"] == "done 3 steps"


def test_notifications_cancelled_stops_a_call_running_on_the_fast_path(gw: Gateway) -> None:
    session = RawSession(gw).open()
    outcome: dict[str, Any] = {}

    def slow_call() -> None:
        started = time.monotonic()
        outcome["reply"] = post(session, call("echo_slow", {"seconds": 30}, request_id=41))
        outcome["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=slow_call)
    worker.start()
    time.sleep(1.0)
    status, _, _ = post(session, {"jsonrpc": "2.0", "method": "notifications/cancelled",
                                  "params": {"requestId": 41, "reason": "test"}})
    assert status == 202
    worker.join(20)
    assert not worker.is_alive() and outcome["seconds"] < 15
    # A cancelled request gets no JSON-RPC response, and the session stays usable.
    assert not [e for e in events(outcome["reply"][2]) if e.get("id") == 41]
    _, _, body = post(session, call("echo_echo", {"message": "after"}))
    assert json.loads(body)["result"]["content"][0]["text"] == "after"


def test_another_credential_cannot_use_the_session(gw: Gateway) -> None:
    session = RawSession(gw).open()
    status, _, body = gw.request("POST", "/api/tokens", json.dumps({"name": "other"}).encode(),
                                 {"Content-Type": "application/json"})
    if status not in (200, 201):
        pytest.fail(f"could not mint a second token: {status} {body[:200]!r}")
    other = RawSession(gw, token=json.loads(body)["token"])
    other.session_id = session.session_id
    status, _, _ = post(other, call("echo_echo", {"message": "steal"}))
    assert status == 404  # answered by the SDK, exactly as for an unknown session


def test_modern_era_call_is_answered_on_the_fast_path_with_result_type(gw: Gateway) -> None:
    message = call("echo_echo", {"message": "modern"}, meta={
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    })
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo_echo"}
    status, _, body = gw.request("POST", "/mcp", json.dumps(message).encode(), headers)
    assert status == 200, body
    reply = json.loads(body)
    assert reply["result"]["resultType"] == "complete" and reply["result"]["content"][0]["text"] == "modern"
    # A routing header that disagrees with the body is refused as the SDK refuses it.
    headers["Mcp-Name"] = "echo_add"
    status, _, body = gw.request("POST", "/mcp", json.dumps(message).encode(), headers)
    assert status == 400 and json.loads(body)["error"]["code"] == -32020
