"""The audit spool (gateway/store/spool.py), the batch writer's retries (gateway/audit.py) and the
classification of storage failures (gateway/store/db.py)."""

from __future__ import annotations

import asyncio
import errno
import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.audit import BatchWriter, RetryPolicy
from gateway.store import Store, StoreError
from gateway.store.db import open_db, storage_failure
from gateway.store.spool import Spool
from gateway.store.toolcalls import ToolCalls

FAST = RetryPolicy(base_s=0.001, cap_s=0.005, patience_s=0.02)
LOCKED = sqlite3.OperationalError("database is locked")
FULL = sqlite3.OperationalError("database or disk is full")


def _row(n: int) -> dict[str, Any]:
    return {"at": 1.0, "user": "u", "profile_id": 1, "server": "echo", "tool": f"t{n}", "duration_ms": 1,
            "outcome": "ok", "error_class": ""}


class FlakyInsert:
    """An insert_many that fails `failures` times with `error`, then records what it is given."""

    def __init__(self, failures: int = 0, error: Exception = LOCKED) -> None:
        self.failures = failures
        self.error = error
        self.rows: list[dict[str, Any]] = []
        self.calls = 0

    async def __call__(self, rows: Sequence[dict[str, Any]]) -> None:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        self.rows.extend(dict(r) for r in rows)


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


# ---- storage failures and the retry policy ---------------------------------------------------------
def test_storage_failures_are_told_apart() -> None:
    assert storage_failure(FULL) == "full"
    assert storage_failure(LOCKED) == "busy"
    assert storage_failure(sqlite3.OperationalError("disk I/O error")) == "io"
    assert storage_failure(OSError(errno.ENOSPC, "No space left on device")) == "full"
    assert storage_failure(sqlite3.IntegrityError("UNIQUE constraint failed: users.name")) is None
    assert storage_failure(sqlite3.OperationalError("no such table: nope")) is None
    assert storage_failure(ValueError("bug")) is None


def test_retry_policy() -> None:
    policy = RetryPolicy(base_s=0.05, cap_s=2.0, attempts_for_other_errors=3)
    assert [policy.delay(a) for a in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    assert policy.delay(10_000) == 2.0
    assert all(policy.retry(LOCKED, a) for a in (0, 100, 10_000))  # the storage refusing: forever
    assert [policy.retry(ValueError("bug"), a) for a in range(4)] == [True, True, False, False]


# ---- the spool ---------------------------------------------------------------------------------------
def test_spool_rows_are_removed_once_committed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "calls")
    assert spool.open() == 0
    segments = [spool.append(_row(n)) for n in range(3)]
    current = tmp_path / "calls-1.jsonl"
    lines = current.read_text().splitlines()
    assert len(lines) == 3 and len({json.loads(line)["spool_id"] for line in lines}) == 3
    spool.committed(segments[:2])
    assert current.stat().st_size > 0  # one row still pending
    spool.committed(segments[2:])
    assert current.stat().st_size == 0  # nothing pending: started over, not grown
    spool.close()
    assert list(tmp_path.iterdir()) == []


def test_spool_rotates_and_keeps_what_is_pending(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "calls", segment_bytes=300)
    spool.open()
    numbers = [spool.append(_row(n)) for n in range(6)]
    assert len(set(numbers)) > 1
    spool.committed(n for n in numbers if n == numbers[0])
    assert not (tmp_path / f"calls-{numbers[0]}.jsonl").exists()  # sealed and fully committed: gone
    spool.close()  # the rest is pending: it stays for the next run
    again = Spool(tmp_path, "calls")
    assert again.open() >= 1
    replay = again.to_replay()
    rows = [row for n in replay for row in again.read(n)]
    assert sorted(r["tool"] for r in rows) == [f"t{n}" for n in range(6) if numbers[n] != numbers[0]]


def test_spool_skips_a_torn_line(tmp_path: Path) -> None:
    (tmp_path / "calls-4.jsonl").write_text(json.dumps({**_row(1), "spool_id": "a-1"}) + "\n" + '{"at": 1, "us')
    spool = Spool(tmp_path, "calls")
    assert spool.open() == 1
    assert [r["spool_id"] for r in spool.read(4)] == ["a-1"]
    assert spool.append(_row(2)) == 5  # new segments never reuse an old number


def test_spool_failure_leaves_the_row_unmarked(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "calls")
    spool.open()
    spool.close()
    row = _row(1)
    with pytest.raises(OSError):
        spool.append(row)
    assert "spool_id" not in row


# ---- the writer ----------------------------------------------------------------------------------------
async def test_a_long_storage_failure_drops_nothing(caplog: pytest.LogCaptureFixture) -> None:
    insert = FlakyInsert(failures=200)  # far more attempts than any fixed budget would allow
    writer = BatchWriter(insert, name="test audit", retry=FAST)
    writer.start()
    for n in range(5):
        writer.submit_nowait(_row(n))
    await _until(lambda: len(insert.rows) == 5)
    await writer.close()
    assert writer.dropped == 0 and writer.written == 5
    messages = [r.getMessage() for r in caplog.records]
    assert any("database is locked" in m for m in messages)
    assert any("writes have failed for" in m for m in messages)  # past its patience: an error
    assert any("writing again after" in m for m in messages)


async def test_other_errors_are_given_up_after_a_few_attempts() -> None:
    insert = FlakyInsert(failures=100, error=ValueError("bad row"))
    writer = BatchWriter(insert, name="test audit", retry=RetryPolicy(base_s=0.001, attempts_for_other_errors=3))
    writer.start()
    writer.submit_nowait(_row(1))
    await _until(lambda: writer.dropped == 1)
    assert insert.calls == 3
    insert.failures = 0
    writer.submit_nowait(_row(2))
    await _until(lambda: len(insert.rows) == 1)  # the writer goes on with the next rows
    await writer.close()


async def test_a_full_queue_spills_to_the_spool_and_is_replayed(tmp_path: Path) -> None:
    insert = FlakyInsert(failures=30)
    writer = BatchWriter(insert, name="test audit", retry=FAST, max_queue=3, batch=2, spool=Spool(tmp_path, "c"))
    writer.start()
    for n in range(10):
        writer.submit_nowait(_row(n))
    assert writer.dropped == 0 and writer.spooled_only > 0
    await _until(lambda: len({r["spool_id"] for r in insert.rows}) == 10)
    await writer.close()
    assert sorted({r["tool"] for r in insert.rows}) == sorted(f"t{n}" for n in range(10))
    assert list(tmp_path.iterdir()) == []  # everything committed: the spool is empty


async def test_rows_that_cannot_be_written_at_shutdown_are_replayed_at_the_next_start(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "gig.db")
    try:
        calls = ToolCalls(store.conn)
        blocked = FlakyInsert(failures=10**6, error=FULL)
        first = BatchWriter(blocked, name="test audit", retry=FAST, spool=Spool(tmp_path / "spool", "c"),
                            close_budget_s=0.05)
        first.start()
        for n in range(4):
            first.submit_nowait(_row(n))
        await _until(lambda: blocked.calls > 2)
        await first.close()  # the database never took them: they stay in the spool
        assert await calls.count() == 0
        # The next run: one of the rows had in fact been committed (killed between commit and truncation).
        rows = Spool(tmp_path / "spool", "c")
        rows.open()
        await calls.insert_many(rows.read(rows.to_replay()[0])[:1])
        rows.close()
        second = BatchWriter(calls.insert_many, name="test audit", retry=FAST, spool=Spool(tmp_path / "spool", "c"))
        second.start()
        await _until(lambda: second.replayed == 4)
        await second.close()
        assert await calls.count() == 4  # each row exactly once
        assert list((tmp_path / "spool").iterdir()) == []
    finally:
        await store.close()


async def test_a_writer_started_before_its_spool_replays_leftovers_at_once(tmp_path: Path) -> None:
    (tmp_path / "c-1.jsonl").write_text(json.dumps({**_row(1), "spool_id": "old-1"}) + "\n")
    insert = FlakyInsert()
    writer = BatchWriter(insert, name="test audit", retry=FAST)
    writer.start()
    await asyncio.sleep(0.01)
    writer.use_spool(Spool(tmp_path, "c"))
    await _until(lambda: len(insert.rows) == 1)  # no new row was needed to wake it
    await writer.close()


# ---- opening -------------------------------------------------------------------------------------------
async def test_a_failed_open_leaves_no_thread_behind(tmp_path: Path) -> None:
    path = tmp_path / "gig.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=DELETE")
    holder.execute("BEGIN EXCLUSIVE")  # nobody may even read: switching to WAL fails when the timeout ends
    before = threading.active_count()
    try:
        with pytest.raises(StoreError, match="another process holds its write lock"):
            await open_db(path, busy_timeout_ms=50)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    await asyncio.sleep(0.05)
    assert threading.active_count() == before
