"""Fault: the filesystem that holds the database fills up.

The database and its audit spool live on a small tmpfs mounted for this test; a filler file takes
every free byte. Writes then fail with a clear 507 `storage_full` (and a log line saying the disk is
full) instead of a 500; the gateway keeps running and answering tool calls, and keeps their audit
rows in memory; once space is freed, writes succeed again, the held audit rows are written, and the
database passes `PRAGMA integrity_check`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.support import drill_gateway, integrity, log_text, tool_calls, wait_for
from tests.integration.conftest_egress import Pki
from tests.support.api import api
from tests.support.gateway import Gateway, RawSession

pytestmark = [pytest.mark.root]
SIZE = "16m"


@pytest.fixture(scope="module")
def small_disk() -> Iterator[Path]:
    mountpoint = Path(tempfile.mkdtemp(prefix="gigmcp-full-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
        with contextlib.suppress(OSError):
            mountpoint.rmdir()


@pytest.fixture(scope="module")
def gw(small_disk: Path, drill_registry: Path, drill_pki: Pki) -> Iterator[Gateway]:
    gateway = drill_gateway(drill_registry, drill_pki.ca_pem, install="echo",
                            GIG_DB_PATH=str(small_disk / "gigmcp.db")).start()
    try:
        yield gateway
    finally:
        gateway.stop()


def _fill(directory: Path) -> Path:
    """A file that takes every free byte of the filesystem under `directory`."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            block = b"\0" * chunk
            while True:
                try:
                    if os.write(fd, block) < chunk:
                        break
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    return filler


def _truncate_wal(db: Path) -> None:
    # SQLite reuses its WAL file: without this, the first writes after the disk fills could still fit.
    conn = sqlite3.connect(db, timeout=10)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def test_full_disk_fails_writes_clearly_and_recovers(gw: Gateway, small_disk: Path) -> None:
    db = small_disk / "gigmcp.db"
    session = RawSession(gw).open()
    assert "result" in session.call("echo_echo", {"message": "warm"})
    assert wait_for(lambda: tool_calls(db, "echo") == 1, 10)
    assert api(gw, "POST", "/api/users", {"name": "roomy"})[0] == 201

    _truncate_wal(db)
    filler = _fill(small_disk)
    try:
        status, body = api(gw, "POST", "/api/users", {"name": "cramped"})
        assert status == 507, (status, body)
        assert body["error"]["code"] == "storage_full", body
        assert "full" in body["error"]["message"]
        assert "the database disk is full" in log_text(gw)
        # The gateway keeps serving: health, reads, and tool calls (their audit rows wait in memory).
        assert gw.get("/health")[0] == 200
        assert api(gw, "GET", "/api/users")[0] == 200
        for i in range(5):
            reply = session.call("echo_echo", {"message": f"full {i}"})
            assert reply.get("result", {}).get("isError") is False, reply
        assert gw.proc is not None and gw.proc.poll() is None
        assert tool_calls(db, "echo") == 1
    finally:
        filler.unlink()

    # Space is back: the held audit rows are written and so are new writes.
    assert wait_for(lambda: tool_calls(db, "echo") == 6, 15), tool_calls(db, "echo")
    assert api(gw, "POST", "/api/users", {"name": "cramped"})[0] == 201
    assert integrity(db) == "ok"


def test_a_start_on_a_full_disk_fails_clearly_and_exits(gw: Gateway, small_disk: Path) -> None:
    db = small_disk / "gigmcp.db"
    assert gw.stop() == 0
    filler = _fill(small_disk)
    try:
        with pytest.raises(RuntimeError, match="exited with 1") as failed:
            gw.start(timeout=60)  # raises as soon as the process exits; a hung process would time out instead
        assert "cannot open database" in str(failed.value) and "full" in str(failed.value), failed.value
    finally:
        filler.unlink()
    gw.start()
    assert "result" in RawSession(gw).open().call("echo_echo", {"message": "room again"})
    assert integrity(db) == "ok"
