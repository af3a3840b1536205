"""The supervisor: which sandboxes are alive, and when they start, restart and stop.

One live worker per key (a server in a profile). Workers start lazily on first use; concurrent
first uses share one start. A worker that dies is restarted on the next use after a backoff that
grows with repeated crashes (calls in between fail at once with a reason naming the server). Idle
workers are reaped, the number of live workers is capped with least-recently-used eviction, and
`drain` lets in-flight work finish before everything stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Worker(Protocol):
    """What the supervisor needs of a live sandboxed server."""

    @property
    def done(self) -> asyncio.Event: ...  # set when the worker ended for any reason

    @property
    def exit_reason(self) -> str: ...

    async def aclose(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class Unavailable(Exception):
    """The worker cannot be used right now; the message says why and when to retry."""


@dataclass(frozen=True, slots=True)
class Backoff:
    base_s: float = 0.5
    max_s: float = 30.0
    stable_after_s: float = 60.0  # a worker that ran this long resets the crash count

    def delay(self, crashes: int) -> float:
        # The first crash restarts at once: one bad call should not take a server away.
        if crashes <= 1:
            return 0.0
        return float(min(self.max_s, self.base_s * 2 ** (crashes - 2)))


@dataclass(slots=True)
class Slot:
    key: Hashable
    worker: Worker | None = None
    starting: asyncio.Task[Any] | None = None
    inflight: int = 0
    last_used: float = field(default_factory=time.monotonic)
    started_at: float = 0.0
    restarts: int = 0
    crashes: int = 0
    retry_at: float = 0.0
    last_error: str = ""
    watcher: asyncio.Task[None] | None = None
    stopping: bool = False


class Supervisor[W: Worker]:
    def __init__(
        self,
        factory: Callable[[Hashable], Awaitable[W]],
        *,
        idle_timeout_s: float,
        max_live: int,
        backoff: Backoff | None = None,
        on_event: Callable[[Hashable, str, str], None] | None = None,
    ) -> None:
        self._factory = factory
        self._idle_timeout = idle_timeout_s
        self._max_live = max_live
        self._backoff = backoff or Backoff()
        self._on_event = on_event or (lambda _k, _e, _d: None)
        self._slots: dict[Hashable, Slot] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.spawns = 0

    # ---- public API --------------------------------------------------------------------------
    def start(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_loop(), name="supervisor-reaper")

    @contextlib.asynccontextmanager
    async def lease(self, key: Hashable) -> AsyncIterator[W]:
        """A live worker for `key`, protected from reaping and eviction while the block runs."""
        slot = self._slots.setdefault(key, Slot(key))
        slot.inflight += 1
        self._idle.clear()
        try:
            worker = await self._ensure(slot)
            yield worker
        finally:
            slot.inflight -= 1
            slot.last_used = time.monotonic()
            if all(s.inflight == 0 for s in self._slots.values()):
                self._idle.set()

    def live(self) -> list[tuple[Hashable, W]]:
        return [(s.key, s.worker) for s in self._slots.values() if s.worker is not None]  # type: ignore[misc]

    def snapshot(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        out = []
        for slot in self._slots.values():
            state = "running" if slot.worker else "starting" if slot.starting else "stopped"
            if not slot.worker and slot.retry_at > now:
                state = "backoff"
            entry: dict[str, Any] = {
                "key": list(slot.key) if isinstance(slot.key, tuple) else slot.key,
                "state": state,
                "inflight": slot.inflight,
                "idle_s": round(now - slot.last_used, 3),
                "uptime_s": round(now - slot.started_at, 3) if slot.worker else 0.0,
                "restarts": slot.restarts,
                "last_error": slot.last_error,
            }
            if slot.worker:
                entry.update(slot.worker.describe())
            out.append(entry)
        return out

    async def stop(self, key: Hashable, reason: str = "stopped") -> bool:
        slot = self._slots.get(key)
        if slot is None or slot.worker is None:
            return False
        await self._close_slot(slot, reason)
        return True

    async def stop_matching(self, predicate: Callable[[Hashable], bool], reason: str) -> int:
        slots = [s for s in self._slots.values() if s.worker is not None and predicate(s.key)]
        await asyncio.gather(*(self._close_slot(s, reason) for s in slots))
        return len(slots)

    async def drain(self, timeout_s: float) -> None:
        """Refuse new work, wait up to `timeout_s` for in-flight calls, then stop every worker."""
        self._draining = True
        if self._reaper:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        for slot in self._slots.values():
            if slot.starting and not slot.starting.done():
                slot.starting.cancel()
        await asyncio.gather(
            *(self._close_slot(s, "gateway shutting down") for s in self._slots.values() if s.worker),
            return_exceptions=True,
        )

    # ---- internals ---------------------------------------------------------------------------
    async def _ensure(self, slot: Slot) -> W:
        if self._draining:
            raise Unavailable("the gateway is shutting down")
        worker = slot.worker
        if worker is not None and not worker.done.is_set():
            if getattr(worker, "alive", True):
                return worker  # type: ignore[return-value]
            # It is dying (its pipe closed) but not yet reaped: let the watcher record why, then decide
            # as for any crash — restart now, or back off after repeated crashes.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.done.wait(), 5.0)
            await asyncio.sleep(0)  # the watcher runs as soon as `done` is set
            if worker.done.is_set():
                return await self._ensure(slot)
            raise Unavailable("the server stopped answering; it is being restarted")
        now = time.monotonic()
        if slot.retry_at > now:
            raise Unavailable(
                f"crashed ({slot.last_error or 'unknown reason'}); restarting in {slot.retry_at - now:.1f}s"
            )
        if slot.starting is None:
            # Decided and recorded without awaiting: callers racing for the last places must each see
            # the others' starts and evictions, or together they overshoot the cap.
            victim = self._pick_victim(slot)
            evicted = self._detach(victim) if victim is not None else None
            slot.starting = asyncio.create_task(self._start(slot, victim, evicted), name=f"spawn-{slot.key}")
        starting: asyncio.Task[W] = slot.starting
        try:
            # shield: one caller giving up must not cancel the start the others wait for.
            return await asyncio.shield(starting)
        finally:
            if starting.done() and slot.starting is starting:
                slot.starting = None

    async def _start(self, slot: Slot, victim: Slot | None = None, evicted: W | None = None) -> W:
        if victim is not None and evicted is not None:
            await self._finish_close(victim, evicted, "evicted (least recently used)")
        try:
            worker = await self._factory(slot.key)
        except Exception as exc:
            slot.crashes += 1
            slot.last_error = str(exc) or type(exc).__name__
            slot.retry_at = time.monotonic() + self._backoff.delay(slot.crashes)
            self._on_event(slot.key, "spawn_failed", slot.last_error)
            raise Unavailable(f"could not start: {slot.last_error}") from None
        self.spawns += 1
        if slot.started_at:
            slot.restarts += 1
        slot.worker = worker
        slot.started_at = time.monotonic()
        slot.stopping = False
        slot.watcher = asyncio.create_task(self._watch(slot, worker), name=f"watch-{slot.key}")
        self._on_event(slot.key, "started", "")
        return worker

    async def _watch(self, slot: Slot, worker: W) -> None:
        await worker.done.wait()
        if slot.worker is not worker:
            return
        slot.worker = None
        if slot.stopping:
            return
        ran_for = time.monotonic() - slot.started_at
        slot.crashes = 1 if ran_for >= self._backoff.stable_after_s else slot.crashes + 1
        slot.last_error = worker.exit_reason
        slot.retry_at = time.monotonic() + self._backoff.delay(slot.crashes)
        log.warning("sandbox %s ended unexpectedly: %s", slot.key, worker.exit_reason)
        self._on_event(slot.key, "crashed", worker.exit_reason)
        with contextlib.suppress(Exception):
            await worker.aclose()

    async def _close_slot(self, slot: Slot, reason: str) -> None:
        worker = self._detach(slot)
        if worker is not None:
            await self._finish_close(slot, worker, reason)

    def _detach(self, slot: Slot) -> W | None:
        """Take the worker off its slot at once (it no longer counts as live); closing it comes after."""
        worker = slot.worker
        if worker is not None:
            slot.stopping = True
            slot.worker = None
        return worker  # type: ignore[return-value]

    async def _finish_close(self, slot: Slot, worker: W, reason: str) -> None:
        try:
            await worker.aclose()
        except Exception as exc:
            log.warning("closing sandbox %s failed: %s", slot.key, exc)
        self._on_event(slot.key, "stopped", reason)

    def _pick_victim(self, slot: Slot) -> Slot | None:
        """None when there is room; else the least recently used idle sandbox, to be evicted for `slot`."""
        live = [s for s in self._slots.values() if s.worker is not None or (s.starting and s is not slot)]
        if len(live) < self._max_live:
            return None
        idle = sorted((s for s in live if s.inflight == 0 and s.worker is not None), key=lambda s: s.last_used)
        if not idle:
            raise Unavailable(f"the limit of {self._max_live} live sandboxes is reached and all are busy")
        return idle[0]

    async def _reap_loop(self) -> None:
        interval = max(0.05, min(self._idle_timeout / 4, 5.0))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            idle = [slot for slot in self._slots.values()
                    if slot.worker is not None and slot.inflight == 0 and now - slot.last_used >= self._idle_timeout]
            # Together: closing 100 idle sandboxes one by one took 20-30 s (each waits for its exit).
            await asyncio.gather(*(self._close_slot(slot, "idle") for slot in idle), return_exceptions=True)
