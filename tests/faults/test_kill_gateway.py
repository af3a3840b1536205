"""Fault: the gateway is killed with SIGKILL in the middle of traffic, then started again on its data.

What must hold: the database is intact; users, tokens, consents, sealed credentials and browser
sessions survive; every tools/call whose answer reached a client has its audit row, and so has every
egress request whose answer reached the sandbox; no sandbox, server or proxy process outlives the
gateway; no sandbox interface is left, and the restarted gateway removes what an earlier run of its
own prefix left; after a clean stop neither interfaces nor the firewall table remain. MCP sessions
live in memory: a client presenting an old session id gets 404 and initializes again (the spec's
rule), and its bearer token still works.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.support import (
    CREDENTIAL_SECRET,
    Traffic,
    db_of,
    drill_gateway,
    hold_write_lock,
    integrity,
    kill9,
    links,
    log_text,
    nft_table,
    prefix_of,
    process_tree,
    query,
    still_running,
    table_of,
    wait_for,
)
from tests.integration.conftest_egress import Pki, Upstream
from tests.support.api import api
from tests.support.gateway import Gateway, RawSession

pytestmark = [pytest.mark.root]


@pytest.fixture(scope="module")
def gw(drill_registry: Path, drill_pki: Pki) -> Iterator[Gateway]:
    gateway = drill_gateway(drill_registry, drill_pki.ca_pem).start()
    try:
        yield gateway
    finally:
        gateway.stop()


def _web_session(db: Path, user_id: int) -> str:
    """A browser session as the OIDC callback would create it (the store keeps only its hash)."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    conn = sqlite3.connect(db, timeout=10)
    with conn:
        conn.execute("INSERT INTO web_sessions(token_hash, user_id, created_at, expires_at, last_seen_at)"
                     " VALUES (?, ?, ?, ?, ?)",
                     (hashlib.sha256(token.encode()).digest(), user_id, now, now + 3600, now))
    conn.close()
    return token


def _me(gw: Gateway, *, token: str | None = None, cookie: str | None = None) -> tuple[int, Any]:
    headers = {"Cookie": f"gig_session={cookie}"} if cookie else {}
    return api(gw, "GET", "/api/me", token=token, headers=headers)


def _fetch_ok(reply: dict[str, Any]) -> bool:
    structured = reply.get("result", {}).get("structuredContent") or {}
    return bool(structured.get("result", structured).get("status") == 200)


def _egress_rows(db: Path, path: str) -> int:
    return int(query(db, "SELECT count(*) FROM egress_audit WHERE path = ? AND decision = 'allow'", (path,))[0][0])


def _echo_rows(db: Path) -> int:
    return int(query(db, "SELECT count(*) FROM tool_calls WHERE server = 'echo' AND tool = 'echo'"
                         " AND outcome = 'ok'")[0][0])


async def test_sigkill_mid_traffic_then_restart(gw: Gateway, drill_upstream: Upstream) -> None:
    db = db_of(gw)
    # --- state worth keeping ---
    assert api(gw, "PUT", "/api/credentials/fetch/token", {"value": CREDENTIAL_SECRET})[0] in (200, 201)
    assert api(gw, "POST", "/api/users", {"name": "bob"})[0] == 201
    status, issued = api(gw, "POST", "/api/tokens", {"name": "drill", "user": "bob", "expires_in_days": 1})
    assert status == 201, issued
    bob_token = issued["token"]
    cookie = _web_session(db, user_id=1)
    assert _me(gw, cookie=cookie)[1]["name"] == "admin"
    consents_before = query(db, "SELECT user_id, server_name, runtime_hash FROM consents ORDER BY 1, 2")
    assert {row[1] for row in consents_before} >= {"echo", "fetch"}

    # --- traffic, and the kill in the middle of it ---
    old_session = RawSession(gw).open()
    assert "result" in old_session.call("echo_echo", {"message": "before"})
    assert await asyncio.to_thread(wait_for, lambda: _echo_rows(db) == 1, 10)
    echo_before = 1
    url = f"https://allowed.test:{drill_upstream.https_port}/kill-drill"
    echo = Traffic(gw, "echo_echo", {"message": "under fire"}, threads=4).start()
    fetch = Traffic(gw, "fetch_fetch", {"url": url, "bearer_from_env": "FETCH_TOKEN", "timeout": 5}, threads=1,
                    accept=_fetch_ok).start()
    # Long enough for both sandboxes to start and a few calls of each to be answered.
    await asyncio.to_thread(wait_for, lambda: echo.answered > 20 and fetch.answered > 2, 15)
    # Then another process takes the database's write lock: from here on the audit writer cannot commit,
    # so the rows of the calls answered now exist only in the gateway (memory, spool) when it is killed.
    locker = hold_write_lock(db, 60)
    locked_at = echo.answered
    await asyncio.sleep(1.0)
    assert gw.proc is not None
    tree = process_tree(gw.proc.pid)
    assert any("egress.proxy_process" in p.cmd for p in tree) and any("bwrap" in p.cmd for p in tree), tree
    sandbox_links = links(prefix_of(gw))
    assert len(sandbox_links) == 2, sandbox_links  # echo and fetch
    kill9(gw)
    locker.kill()
    locker.wait()
    await asyncio.to_thread(echo.stop)
    await asyncio.to_thread(fetch.stop)
    assert echo.answered > 20 and fetch.answered > 2, (echo.answered, fetch.answered, echo.errors[:3], fetch.errors[:3])
    assert echo.answered - locked_at > 10, "too few calls answered while the audit could not be committed"

    # --- nothing of it keeps running, no interface is left ---
    survivors = await asyncio.to_thread(wait_for, lambda: not still_running(tree[1:]), 10)
    assert survivors, f"still running after the gateway was killed: {still_running(tree[1:])}"
    assert await asyncio.to_thread(wait_for, lambda: not links(prefix_of(gw)), 10), links(prefix_of(gw))
    # Plant a leftover of this prefix: the next start of the same gateway must remove it.
    planted = [f"{prefix_of(gw)}77", f"{prefix_of(gw)}78"]
    subprocess.run(["ip", "link", "add", planted[0], "type", "veth", "peer", "name", planted[1]], check=True)

    # --- the same gateway again, on the same data ---
    assert integrity(db) == "ok"
    await asyncio.to_thread(gw.start)
    assert not set(planted) & set(links(prefix_of(gw)))
    assert "stale sandbox links" in log_text(gw)
    assert integrity(db) == "ok"

    # Every answered call has its audit row (rows of unanswered calls may exist too).
    def audited() -> bool:
        return _echo_rows(db) - echo_before >= echo.answered and _egress_rows(db, "/kill-drill") >= fetch.answered

    assert await asyncio.to_thread(wait_for, audited, 15), (
        _echo_rows(db) - echo_before, echo.answered, echo.sent, _egress_rows(db, "/kill-drill"), fetch.answered)
    assert _echo_rows(db) - echo_before <= echo.sent
    assert "rows replayed from the spool" in log_text(gw)  # they came back from the spool, not from luck

    # Tokens, browser sessions and consents survived.
    status, me = _me(gw, token=bob_token)
    assert status == 200 and me["name"] == "bob", me
    status, me = _me(gw, cookie=cookie)
    assert status == 200 and me["name"] == "admin", me
    assert query(db, "SELECT user_id, server_name, runtime_hash FROM consents ORDER BY 1, 2") == consents_before

    # The old MCP session is gone (404: initialize again); a new one works.
    status, _, body = gw.request("POST", "/mcp", json.dumps(
        {"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {}}).encode(), {
        "Accept": "application/json, text/event-stream", "Content-Type": "application/json",
        "Mcp-Session-Id": old_session.session_id, "MCP-Protocol-Version": "2025-11-25"})
    assert status == 404, body
    session = RawSession(gw).open()
    assert session.call("echo_echo", {"message": "after"})["result"]["content"][0]["text"] == "after"

    # The sealed credential still opens: the proxy injects it toward its host.
    drill_upstream.seen.clear()
    reply = await asyncio.to_thread(session.call, "fetch_fetch",
                                    {"url": url + "/after", "bearer_from_env": "FETCH_TOKEN"})
    assert _fetch_ok(reply), reply
    assert drill_upstream.last()["headers"]["authorization"] == f"Bearer {CREDENTIAL_SECRET}"

    # --- a clean stop leaves nothing behind ---
    assert gw.proc is not None
    tree = process_tree(gw.proc.pid)
    assert gw.stop() == 0
    assert not still_running(tree), still_running(tree)
    assert not links(prefix_of(gw))
    assert not nft_table(table_of(gw))
    assert integrity(db) == "ok"
    assert not list(db.with_suffix(".spool").glob("*.jsonl"))  # everything written: the spool is empty
