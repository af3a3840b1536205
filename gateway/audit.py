"""Audit writers: records arrive one at a time and are written to the store in batches.

Durability. With a spool (`gateway/store/spool.py`) a row is on disk before `submit_nowait` returns,
that is before the call it describes is answered, and a killed gateway's rows are replayed at the next
start: every answered call has its audit row. A write that the storage refuses (another process holds
the lock, the disk is full, an I/O error) is retried for as long as it takes, with growing pauses
(`RetryPolicy`); past its patience the failure is logged as an error, and the first success after it
says so. Nothing is dropped for a storage failure: rows wait in the queue and, with a spool, on disk;
when the queue is full new rows stay in the spool alone and are replayed from it once writes succeed.
Without a spool a full queue drops rows (counted, with a warning). Other failures (a bug, a bad row)
are retried a few times, then the batch is dropped with an error.

Tool-call rows use `submit_nowait`: the MCP front door never waits for the database. Egress records
use `submit`, which without a spool waits when the queue is full (a flood slows the proxy down rather
than losing records) and with a spool never waits. On shutdown whatever is queued is written within a
short budget; what still fails stays in the spool for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from egress import AuditRecord
from gateway.store.audit import EgressAudit
from gateway.store.db import storage_failure
from gateway.store.spool import Spool

log = logging.getLogger(__name__)
Row = dict[str, Any]
_Item = tuple[Row, int | None]  # a row and the spool segment holding it (None: not spooled)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed batch is tried again, and for how long."""

    base_s: float = 0.05
    cap_s: float = 2.0
    patience_s: float = 10.0  # failing longer than this is an error in the log, not a warning
    attempts_for_other_errors: int = 5  # a failure that is not the storage refusing is not retried forever

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number `attempt` (0 for the first failure)."""
        return float(min(self.cap_s, self.base_s * 2 ** min(attempt, 30)))

    def retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether to try again after `exc` was failed attempt number `attempt`."""
        return storage_failure(exc) is not None or attempt + 1 < self.attempts_for_other_errors


# A row waits this long for company before its batch is committed. Each commit costs far more than a
# row (and runs on a thread that competes with the event loop for the GIL), so under load this turns
# a commit per call into one per few dozen calls; the spool already holds each row durably.
LINGER_S = 0.02


class BatchWriter:
    def __init__(self, insert_many: Callable[[Sequence[Row]], Awaitable[None]], *, name: str,
                 max_queue: int = 10_000, batch: int = 500, retry: RetryPolicy | None = None,
                 spool: Spool | None = None, close_budget_s: float = 3.0, linger_s: float = LINGER_S) -> None:
        self._insert_many = insert_many
        self._name = name
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue(max_queue)  # None: look at the spool
        self._batch = batch
        self._retry = retry or RetryPolicy()
        self._close_budget_s = close_budget_s
        self._linger_s = linger_s
        self._task: asyncio.Task[None] | None = None
        self._inflight: list[_Item] = []
        self._spool: Spool | None = None
        self._spool_broken = False
        self._failing_since: float | None = None
        self._overdue = False
        self.written = 0
        self.dropped = 0
        self.spooled_only = 0  # rows the full queue refused: they wait in the spool
        self.replayed = 0
        if spool is not None:
            self.use_spool(spool)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def spooled(self) -> bool:
        return self._spool is not None

    @property
    def failing(self) -> bool:
        """True while writes fail (rows are waiting for the storage to take them)."""
        return self._failing_since is not None

    def use_spool(self, spool: Spool) -> None:
        """Spool every row from now on. Segments an earlier run left behind are replayed by the writer.

        Raises OSError when the spool directory cannot be made (the caller decides whether to go on).
        """
        leftovers = spool.open()
        if leftovers:
            log.warning("%s: %d spool segment(s) left by an earlier run will be replayed", self._name, leftovers)
        self._spool = spool
        if leftovers:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)  # a running writer task replays them now, not at the next row

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def submit(self, row: Row) -> None:
        if self._spool is not None:
            self.submit_nowait(row)
        else:
            await self._queue.put((row, None))

    def submit_nowait(self, row: Row) -> None:
        segment = self._spool_row(row)
        try:
            self._queue.put_nowait((row, segment))
        except asyncio.QueueFull:
            if segment is not None and self._spool is not None:
                self._spool.orphan(segment)
                self.spooled_only += 1
                return
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("%s queue full: %d rows dropped so far", self._name, self.dropped)

    def _spool_row(self, row: Row) -> int | None:
        if self._spool is None:
            return None
        try:
            segment = self._spool.append(row)
        except OSError as exc:
            if not self._spool_broken:
                self._spool_broken = True
                log.error("%s: cannot write the audit spool (%s); rows are held in memory only until it works "
                          "again", self._name, exc)
            return None
        if self._spool_broken:
            self._spool_broken = False
            log.warning("%s: the audit spool works again", self._name)
        return segment

    # ---- the writer task ----------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await self._replay()
            first = await self._queue.get()
            items = [first] if first is not None else []
            self._inflight = items  # the same list: `close` finds what was taken, even mid-linger
            if items and self._linger_s > 0 and self._queue.qsize() < self._batch - 1:
                await asyncio.sleep(self._linger_s)
            while len(items) < self._batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None:
                    items.append(item)
            if not items:
                continue
            self._inflight = items
            await self._write([row for row, _ in items])
            self._inflight = []
            self._committed(items)

    def _committed(self, items: list[_Item]) -> None:
        if self._spool is not None:
            self._spool.committed(segment for _, segment in items if segment is not None)

    async def _replay(self) -> None:
        spool = self._spool
        if spool is None:
            return
        for number in spool.to_replay():
            rows = spool.read(number)
            for start in range(0, len(rows), self._batch):
                await self._write(rows[start:start + self._batch])
            spool.replayed(number)
            self.replayed += len(rows)
            log.info("%s: %d rows replayed from the spool", self._name, len(rows))

    async def _write(self, rows: list[Row]) -> bool:
        """Insert `rows`, retrying as the policy says; False if they were given up (and counted as dropped)."""
        attempt = 0
        while True:
            try:
                await self._insert_many(rows)
            except Exception as exc:
                if not self._retry.retry(exc, attempt):
                    self.dropped += len(rows)
                    log.error("%s: dropped %d rows after %d failed attempts: %s", self._name, len(rows),
                              attempt + 1, exc)
                    return False
                self._note_failure(exc)
                await asyncio.sleep(self._retry.delay(attempt))
                attempt += 1
                continue
            self.written += len(rows)
            self._note_success()
            return True

    def _note_failure(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since, self._overdue = now, False
            log.warning("%s write failed, retrying: %s", self._name, exc)
        elif not self._overdue and now - self._failing_since >= self._retry.patience_s:
            self._overdue = True
            where = "in memory and in the spool" if self._spool is not None else "in memory"
            log.error("%s: writes have failed for %.0f s (%s); %d rows wait %s and are written once the "
                      "database takes writes again", self._name, now - self._failing_since, exc,
                      self.depth + len(self._inflight), where)

    def _note_success(self) -> None:
        if self._failing_since is not None:
            log.warning("%s: writing again after %.1f s of failures", self._name,
                        time.monotonic() - self._failing_since)
            self._failing_since = None

    # ---- shutdown -----------------------------------------------------------------------------------
    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        items, self._inflight = self._inflight, []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                items.append(item)
        if items and await self._flush([row for row, _ in items]):
            self._committed(items)
        if self._spool is not None:
            self._spool.close()

    async def _flush(self, rows: list[Row]) -> bool:
        deadline = time.monotonic() + self._close_budget_s
        attempt = 0
        while True:
            try:
                await self._insert_many(rows)
            except Exception as exc:
                left = deadline - time.monotonic()
                if left <= 0 or not self._retry.retry(exc, attempt):
                    fate = ("they stay in the spool and are written at the next start" if self._spool is not None
                            else "they are lost")
                    log.error("%s: %d rows could not be written at shutdown (%s); %s", self._name, len(rows),
                              exc, fate)
                    if self._spool is None:
                        self.dropped += len(rows)
                    return False
                await asyncio.sleep(min(self._retry.delay(attempt), left))
                attempt += 1
                continue
            self.written += len(rows)
            return True


class AuditWriter(BatchWriter):
    """The egress audit: backpressure (or the spool) instead of loss."""

    def __init__(self, repo: EgressAudit, **kwargs: Any) -> None:
        super().__init__(repo.insert_many, name="egress audit", **kwargs)

    def record_nowait(self, record: AuditRecord) -> None:
        """Spool and queue a record at once (with a spool, this never waits and never loses it)."""
        self.submit_nowait(_egress_row(record))

    async def submit_record(self, record: AuditRecord) -> None:
        await self.submit(_egress_row(record))



def _egress_row(record: AuditRecord) -> Row:
    row = record.to_dict()
    row["at"] = row.pop("time")
    return row
