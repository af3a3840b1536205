"""Coalesced jobs: at most one running job per key; every caller for that key awaits the same result.

The job runs in its own task and callers await it through `asyncio.shield`, so a caller that gives up
(a cancelled request, the proxy's secret timeout) never cancels the job. That matters for a token
refresh: once the vendor has rotated the refresh token, the new one must be persisted whoever waited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable


class Coalescer[K: Hashable, T]:
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[T]] = {}
        self.started = 0  # jobs started so far (each one a real call, e.g. one token refresh)

    def running(self, key: K) -> bool:
        return key in self._running

    async def run(self, key: K, job: Callable[[], Awaitable[T]]) -> T:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(job())
            self.started += 1
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: K, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so a job whose callers all left never warns

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for the jobs still running, e.g. at shutdown so refreshed tokens get persisted."""
        tasks = list(self._running.values())
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
