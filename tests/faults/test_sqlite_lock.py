"""Fault: another process holds the database's write lock while calls run.

A short hold is absorbed by waiting (SQLite's busy timeout); a hold longer than that budget makes
writes fail with a clear 503 while audit rows wait in memory (and in the spool) and are written once
the lock is released: every call made under the lock has its audit row afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.support import db_of, drill_gateway, hold_write_lock, log_text, tool_calls, wait_for
from tests.support.api import api
from tests.support.gateway import Gateway, RawSession

pytestmark = [pytest.mark.root]

@pytest.fixture(scope="module")
def gw(drill_registry: Path, drill_pki: object) -> Iterator[Gateway]:
    gateway = drill_gateway(drill_registry, drill_pki.ca_pem, install="echo").start()  # type: ignore[attr-defined]
    try:
        yield gateway
    finally:
        gateway.stop()


def _settled_count(db: Path, tool: str) -> int:
    """The audit count once the writer has caught up (no change for half a second)."""
    last = -1
    for _ in range(40):
        now = tool_calls(db, tool)
        if now == last:
            return now
        last = now
        time.sleep(0.5)
    return last


def test_a_short_lock_is_waited_out_and_no_audit_row_is_lost(gw: Gateway) -> None:
    db = db_of(gw)
    session = RawSession(gw).open()
    assert "result" in session.call("echo_echo", {"message": "warm"})
    before = _settled_count(db, "echo")
    locker = hold_write_lock(db, 3.0)
    started = time.monotonic()
    calls = 0
    try:
        while time.monotonic() - started < 2.5:
            reply = session.call("echo_echo", {"message": f"under lock {calls}"})
            assert reply.get("result", {}).get("isError") is False, reply
            calls += 1
        # A write during the lock waits for it (busy timeout) instead of failing.
        status, body = api(gw, "POST", "/api/users", {"name": "lockwaiter"})
        assert status == 201, body
    finally:
        assert locker.wait(20) == 0
    assert calls >= 5  # calls kept flowing: the front door does not wait for the database
    assert wait_for(lambda: tool_calls(db, "echo") >= before + calls, 15), (before, calls, tool_calls(db, "echo"))
    assert _settled_count(db, "echo") == before + calls


def test_a_lock_longer_than_the_budget_fails_writes_clearly_and_keeps_the_audit(gw: Gateway) -> None:
    db = db_of(gw)
    session = RawSession(gw).open()
    before = _settled_count(db, "echo")
    locker = hold_write_lock(db, 9.0)
    calls = 0
    try:
        for i in range(10):
            reply = session.call("echo_echo", {"message": f"long lock {i}"})
            assert reply.get("result", {}).get("isError") is False, reply
            calls += 1
        status, body = api(gw, "POST", "/api/users", {"name": "lockloser"})
        assert status == 503, (status, body)
        assert body["error"]["code"] == "storage_busy", body
        assert "lock" in body["error"]["message"]
        # Reads still answer while the writer is locked out (WAL readers never wait for it).
        assert api(gw, "GET", "/api/me")[0] == 200
    finally:
        assert locker.wait(30) == 0
    assert wait_for(lambda: tool_calls(db, "echo") >= before + calls, 20), (before, calls, tool_calls(db, "echo"))
    assert _settled_count(db, "echo") == before + calls
    assert "database is locked" in log_text(gw)
    # And writes work again.
    assert api(gw, "POST", "/api/users", {"name": "lockwinner"})[0] == 201
