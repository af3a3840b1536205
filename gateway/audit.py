"""Audit writers: records arrive one at a time and are written to the store in batches.

Two policies, one mechanism. Egress records use `submit`, which waits when the queue is full, so a
flood slows the proxy down rather than losing records. Tool-call rows use `submit_nowait`, because
the MCP front door must never wait for the database: a full queue drops (counted, with a warning),
and the metrics and the structured log still have the call. On shutdown everything queued is flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from egress import AuditRecord
from gateway.store.audit import EgressAudit

log = logging.getLogger(__name__)
Row = dict[str, Any]


class BatchWriter:
    def __init__(self, insert_many: Callable[[Sequence[Row]], Awaitable[None]], *, name: str,
                 max_queue: int = 10_000, batch: int = 500) -> None:
        self._insert_many = insert_many
        self._name = name
        self._queue: asyncio.Queue[Row] = asyncio.Queue(max_queue)
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def submit(self, row: Row) -> None:
        await self._queue.put(row)

    def submit_nowait(self, row: Row) -> None:
        try:
            self._queue.put_nowait(row)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("%s queue full: %d rows dropped so far", self._name, self.dropped)

    async def _run(self) -> None:
        while True:
            rows = [await self._queue.get()]
            while len(rows) < self._batch and not self._queue.empty():
                rows.append(self._queue.get_nowait())
            await self._write(rows)

    async def _write(self, rows: list[Row]) -> None:
        for attempt in range(50):
            try:
                await self._insert_many(rows)
                self.written += len(rows)
                return
            except Exception as exc:  # a locked or full database: retry, never drop silently
                if attempt == 0:
                    log.warning("%s write failed, retrying: %s", self._name, exc)
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        self.dropped += len(rows)
        log.error("dropped %d %s rows after repeated write failures", len(rows), self._name)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        rows = []
        while not self._queue.empty():
            rows.append(self._queue.get_nowait())
        if rows:
            await self._write(rows)


class AuditWriter(BatchWriter):
    """The egress audit: backpressure instead of loss."""

    def __init__(self, repo: EgressAudit, **kwargs: Any) -> None:
        super().__init__(repo.insert_many, name="egress audit", **kwargs)

    async def submit_record(self, record: AuditRecord) -> None:
        row = record.to_dict()
        row["at"] = row.pop("time")
        await self.submit(row)
