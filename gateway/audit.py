"""The egress audit writer: records arrive one by one from the proxy and are written in batches.

Under pressure it slows the producer (the bounded queue's `put` waits) rather than dropping
records; on shutdown everything queued is flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from egress import AuditRecord
from gateway.store.audit import EgressAudit

log = logging.getLogger(__name__)


class AuditWriter:
    def __init__(self, repo: EgressAudit, *, max_queue: int = 10_000, batch: int = 500) -> None:
        self._repo = repo
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_queue)
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def submit(self, record: AuditRecord) -> None:
        row = record.to_dict()
        row["at"] = row.pop("time")
        await self._queue.put(row)

    async def _run(self) -> None:
        while True:
            rows = [await self._queue.get()]
            while len(rows) < self._batch and not self._queue.empty():
                rows.append(self._queue.get_nowait())
            await self._write(rows)

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        for attempt in range(50):
            try:
                await self._repo.insert_many(rows)
                self.written += len(rows)
                return
            except Exception as exc:  # a locked or full database: retry, never drop silently
                if attempt == 0:
                    log.warning("audit write failed, retrying: %s", exc)
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        log.error("dropped %d audit records after repeated write failures", len(rows))

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
