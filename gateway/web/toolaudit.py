"""Per-tool-call audit: every finished tools/call becomes one row of `tool_calls`, written in batches.

It rides on the front door's existing `CallObserver` hook: `AuditingObserver` wraps whatever observer
the app set (rate limits, metrics) and adds the row. The front door must never wait for the database,
so rows go to a bounded queue; when that is full the row is counted and dropped with a warning rather
than stalling MCP traffic (the metrics and the structured audit log still have the call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from gateway.mcp.frontdoor import CallObserver, RequestIdentity
from gateway.mcp.naming import split_name
from gateway.store.toolcalls import ToolCalls

log = logging.getLogger(__name__)

# The hook reports an outcome category; this is the class of failure it stands for.
ERROR_CLASS = {"tool_error": "ToolError", "error": "BackendError", "unavailable": "Unavailable",
               "rate_limited": "RateLimited"}


class ToolCallWriter:
    def __init__(self, repo: ToolCalls, *, max_queue: int = 10_000, batch: int = 500) -> None:
        self._repo = repo
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_queue)
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tool-call-audit")

    def submit(self, row: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(row)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("tool-call audit queue full: %d rows dropped so far", self.dropped)

    async def _run(self) -> None:
        while True:
            rows = [await self._queue.get()]
            while len(rows) < self._batch and not self._queue.empty():
                rows.append(self._queue.get_nowait())
            await self._write(rows)

    async def _write(self, rows: list[dict[str, Any]]) -> None:
        for attempt in range(20):
            try:
                await self._repo.insert_many(rows)
                self.written += len(rows)
                return
            except Exception as exc:  # a locked database: retry with backoff
                if attempt == 0:
                    log.warning("tool-call audit write failed, retrying: %s", exc)
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        self.dropped += len(rows)
        log.error("dropped %d tool-call audit rows after repeated write failures", len(rows))

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


def audit_row(identity: RequestIdentity, name: str, outcome: str, seconds: float) -> dict[str, Any]:
    split = split_name(name)
    server, tool = split if split else ("", name)
    profile = identity.profile_key if isinstance(identity.profile_key, int) else None
    return {"at": time.time(), "user": identity.principal, "profile_id": profile, "server": server[:64],
            "tool": tool[:128], "duration_ms": round(seconds * 1000), "outcome": outcome,
            "error_class": ERROR_CLASS.get(outcome, "")}


class AuditingObserver:
    """A `CallObserver` that records each call, then defers to the observer it wraps (if any)."""

    def __init__(self, writer: ToolCallWriter, inner: CallObserver | None) -> None:
        self._writer = writer
        self._inner = inner

    def admit(self, identity: RequestIdentity, name: str) -> dict[str, Any] | None:
        refusal = self._inner.admit(identity, name) if self._inner is not None else None
        if refusal is not None:
            self._writer.submit(audit_row(identity, name, "rate_limited", 0.0))
        return refusal

    def finished(self, identity: RequestIdentity, name: str, outcome: str, seconds: float) -> None:
        self._writer.submit(audit_row(identity, name, outcome, seconds))
        if self._inner is not None:
            self._inner.finished(identity, name, outcome, seconds)
