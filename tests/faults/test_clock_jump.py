"""Fault: the gateway's wall clock jumps forward two days, then back to a day before it started.

The gateway runs under libfaketime with only the wall clock shifted (`FAKETIME_DONT_FAKE_MONOTONIC`),
which is what a clock step does to a real process. What must hold: expiry stamps follow the wall
clock — a jump forward past a token's or a browser session's expiry ends it (401 with
WWW-Authenticate) — but a jump backward brings no expired credential back and lengthens none; tokens
without expiry keep working throughout; durations do not move: a sandbox is not reaped as idle and
a spent rate-limit bucket is not refilled by the jump; nothing crashes.

The pure rules are unit-tested in tests/unit/test_expiry_clock.py; this is the whole process.
"""

from __future__ import annotations

import email.utils
import hashlib
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.support import db_of, drill_gateway, wait_for
from tests.integration.conftest_egress import Pki
from tests.support.api import api
from tests.support.gateway import Gateway, RawSession

pytestmark = [pytest.mark.root]

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
DAY = 86400.0


@pytest.fixture(scope="module")
def offset_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not LIBFAKETIME.exists():
        pytest.skip(f"libfaketime is not installed ({LIBFAKETIME} missing): apt-get install libfaketime")
    path = tmp_path_factory.mktemp("clock") / "offset"
    path.write_text("+0\n")
    return path


@pytest.fixture(scope="module")
def gw(offset_file: Path, drill_registry: Path, drill_pki: Pki) -> Iterator[Gateway]:
    gateway = drill_gateway(
        drill_registry, drill_pki.ca_pem, install="echo",
        LD_PRELOAD=str(LIBFAKETIME), FAKETIME_TIMESTAMP_FILE=str(offset_file), FAKETIME_DONT_FAKE_MONOTONIC="1",
        FAKETIME_CACHE_DURATION="1", GIG_EGRESS="false", GIG_RATE_LIMIT_RPS="0.01", GIG_RATE_LIMIT_BURST="3",
    ).start()
    try:
        yield gateway
    finally:
        gateway.stop()


def _gateway_clock(gw: Gateway) -> float:
    """The gateway's wall clock, as its HTTP `Date` header shows it (seconds resolution)."""
    _, headers, _ = gw.request("GET", "/health")
    return email.utils.parsedate_to_datetime(headers["Date"]).timestamp()


def _jump(gw: Gateway, offset_file: Path, spec: str, offset_s: float) -> None:
    offset_file.write_text(f"{spec}\n")
    assert wait_for(lambda: abs(_gateway_clock(gw) - time.time() - offset_s) < 120, 10, 0.2), (
        f"the gateway's clock did not move to {spec}")


def _mcp_status(gw: Gateway, token: str) -> tuple[int, dict[str, str]]:
    initialize = (b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
                  b'"capabilities":{},"clientInfo":{"name":"clock","version":"1"}}}')
    status, headers, _ = gw.request("POST", "/mcp", initialize, {
        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream"}, auth=False)
    return status, {k.lower(): v for k, v in headers.items()}


def _token(gw: Gateway, user: str, days: int | None) -> str:
    body: dict[str, Any] = {"name": f"clock-{secrets.token_hex(3)}", "user": user}
    if days is not None:
        body["expires_in_days"] = days
    status, issued = api(gw, "POST", "/api/tokens", body)
    assert status == 201, issued
    return str(issued["token"])


def _web_session(db: Path, created_at: float, ttl_s: float) -> str:
    token = secrets.token_urlsafe(32)
    conn = sqlite3.connect(db, timeout=10)
    with conn:
        conn.execute("INSERT INTO web_sessions(token_hash, user_id, created_at, expires_at, last_seen_at)"
                     " VALUES (?, 1, ?, ?, ?)",
                     (hashlib.sha256(token.encode()).digest(), created_at, created_at + ttl_s, created_at))
    conn.close()
    return token


def _cookie_ok(gw: Gateway, cookie: str) -> bool:
    return api(gw, "GET", "/api/me", token=None, headers={"Cookie": f"gig_session={cookie}"})[0] == 200


def _rate_limited(session: RawSession) -> bool:
    result = session.call("echo_echo", {"message": "rl"})["result"]
    return bool(result.get("isError")) and "Rate limit" in result["content"][0]["text"]


def test_wall_clock_jumps_forward_and_back(gw: Gateway, offset_file: Path) -> None:
    assert api(gw, "POST", "/api/users", {"name": "carol"})[0] == 201
    day_token = _token(gw, "carol", 1)  # expires a day from now
    forever = _token(gw, "carol", None)
    cookie = _web_session(db_of(gw), time.time(), 3600.0)
    assert _mcp_status(gw, day_token)[0] == 200 and _cookie_ok(gw, cookie)

    # A sandbox in use, and a rate-limit bucket spent (burst 3, one token per 100 s).
    assert api(gw, "PUT", "/api/profiles/carol-default/servers/echo", token=forever)[0] == 200
    assert api(gw, "POST", "/api/consent/echo", {}, token=forever)[0] == 200
    session = RawSession(gw, token=forever).open()
    for _ in range(3):
        assert not _rate_limited(session)
    assert _rate_limited(session)
    sandbox = next(s for s in gw.sandboxes() if s["state"] == "running")

    # --- forward two days ---
    _jump(gw, offset_file, "+2d", 2 * DAY)
    status, headers = _mcp_status(gw, day_token)
    assert status == 401 and headers.get("www-authenticate", "").startswith("Bearer"), (status, headers)
    assert not _cookie_ok(gw, cookie)
    assert _mcp_status(gw, forever)[0] == 200
    assert _rate_limited(session), "the jump refilled the rate-limit bucket"
    running = [s for s in gw.sandboxes() if s["state"] == "running"]
    assert [s["pid"] for s in running] == [sandbox["pid"]], "the jump made the sandbox look idle"
    assert running[0]["idle_s"] < 60
    later_token = _token(gw, "carol", 1)  # issued at +2d, expires at +3d
    assert _mcp_status(gw, later_token)[0] == 200
    admin = RawSession(gw).open()
    assert admin.call("echo_echo", {"message": "in two days"})["result"]["isError"] is False

    # --- back to a day before the start ---
    _jump(gw, offset_file, "-1d", -DAY)
    # The expired token stays expired, and the one issued "in the future" does not get four days of life.
    assert _mcp_status(gw, day_token)[0] == 401
    assert _mcp_status(gw, later_token)[0] == 401
    assert not _cookie_ok(gw, cookie)
    assert _mcp_status(gw, forever)[0] == 200
    assert admin.call("echo_echo", {"message": "yesterday"})["result"]["isError"] is False
    assert gw.get("/health")[0] == 200

    # --- and back to the real time: the token issued at +2d is still refused (issued in the future) ---
    _jump(gw, offset_file, "+0", 0.0)
    assert _mcp_status(gw, later_token)[0] == 401
    assert _mcp_status(gw, forever)[0] == 200
    assert gw.proc is not None and gw.proc.poll() is None
