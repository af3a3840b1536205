"""The supervisor's policy with in-memory workers: coalescing, backoff, reaping, eviction, drain."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

import pytest

from sandbox.supervisor import Backoff, Supervisor, Unavailable


class FakeWorker:
    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.done = asyncio.Event()
        self.exit_reason = ""
        self.closed = False
        self.alive = True

    async def aclose(self) -> None:
        self.closed = True
        self.done.set()

    def crash(self, reason: str = "boom") -> None:
        self.exit_reason = reason
        self.done.set()

    def describe(self) -> dict[str, Any]:
        return {"fake": True}


class Factory:
    def __init__(self, delay: float = 0.0, fail: int = 0) -> None:
        self.delay = delay
        self.fail = fail
        self.made: list[FakeWorker] = []

    async def __call__(self, key: Hashable) -> FakeWorker:
        await asyncio.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("spawn failed")
        worker = FakeWorker(key)
        self.made.append(worker)
        return worker


def make(factory: Factory, **kwargs: Any) -> Supervisor[FakeWorker]:
    options: dict[str, Any] = {"idle_timeout_s": 60.0, "max_live": 10, "backoff": Backoff(0.2, 1.0, 60.0)}
    options.update(kwargs)
    return Supervisor(factory, **options)


async def test_concurrent_cold_starts_are_coalesced() -> None:
    factory = Factory(delay=0.05)
    sup = make(factory)

    async def use() -> FakeWorker:
        async with sup.lease("k") as worker:
            return worker

    workers = await asyncio.gather(*(use() for _ in range(20)))
    assert len(factory.made) == 1
    assert all(w is factory.made[0] for w in workers)


async def test_crash_restarts_at_once_then_backs_off() -> None:
    factory = Factory()
    sup = make(factory)
    async with sup.lease("k") as first:
        pass
    first.crash("exited with status 1")
    await asyncio.sleep(0.01)
    async with sup.lease("k") as second:  # first crash: immediate restart
        assert second is not first
    second.crash("again")
    await asyncio.sleep(0.01)
    with pytest.raises(Unavailable, match=r"again.*restarting in"):
        async with sup.lease("k"):
            pass
    await asyncio.sleep(0.25)
    async with sup.lease("k") as third:
        assert third not in (first, second)
    assert sup.snapshot()[0]["restarts"] == 2


async def test_spawn_failure_is_reported_and_retried() -> None:
    factory = Factory(fail=1)
    sup = make(factory)
    with pytest.raises(Unavailable, match="could not start: spawn failed"):
        async with sup.lease("k"):
            pass
    async with sup.lease("k") as worker:
        assert worker is factory.made[0]


async def test_idle_reaping_spares_busy_workers() -> None:
    factory = Factory()
    sup = make(factory, idle_timeout_s=0.1)
    sup.start()
    async with sup.lease("idle"):
        pass
    async with sup.lease("busy") as busy:
        await asyncio.sleep(0.4)
        assert not busy.closed
    idle = factory.made[0]
    assert idle.closed
    await sup.drain(1.0)


async def test_lru_eviction_and_cap() -> None:
    factory = Factory()
    sup = make(factory, max_live=2)
    for key in ("a", "b"):
        async with sup.lease(key):
            pass
        await asyncio.sleep(0.01)
    async with sup.lease("a"):
        pass  # "b" is now least recently used
    async with sup.lease("c"):
        pass
    live = sorted(str(k) for k, _ in sup.live())
    assert live == ["a", "c"]
    async with sup.lease("a"), sup.lease("c"):
        with pytest.raises(Unavailable, match="limit of 2"):
            async with sup.lease("d"):
                pass


class SlowToCloseWorker(FakeWorker):
    async def aclose(self) -> None:
        await asyncio.sleep(0.05)  # evictions take time: concurrent first calls race through it
        await super().aclose()


async def test_concurrent_first_calls_at_the_cap_never_overshoot_it() -> None:
    class SlowFactory(Factory):
        async def __call__(self, key: Hashable) -> FakeWorker:
            await asyncio.sleep(0.01)
            worker = SlowToCloseWorker(key)
            self.made.append(worker)
            return worker

    sup = make(SlowFactory(), max_live=10)
    for key in range(10):
        async with sup.lease(key):
            pass
    peak = 0

    async def use(key: int) -> None:
        nonlocal peak
        async with sup.lease(key):
            peak = max(peak, len(sup.live()))
            await asyncio.sleep(0.01)

    await asyncio.gather(*(use(k) for k in range(10, 14)))
    assert peak <= 10 and len(sup.live()) == 10


async def test_drain_waits_for_in_flight_work() -> None:
    factory = Factory()
    sup = make(factory)
    finished = asyncio.Event()

    async def slow_call() -> None:
        async with sup.lease("k"):
            await asyncio.sleep(0.2)
            finished.set()

    task = asyncio.create_task(slow_call())
    await asyncio.sleep(0.05)
    await sup.drain(5.0)
    assert finished.is_set()
    assert factory.made[0].closed
    await task
    with pytest.raises(Unavailable, match="shutting down"):
        async with sup.lease("k"):
            pass


def test_backoff_grows_and_caps() -> None:
    backoff = Backoff(0.5, 4.0, 60.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]


async def test_a_dying_worker_is_not_handed_out() -> None:
    factory = Factory()
    sup = make(factory)
    async with sup.lease("k") as first:
        pass
    first.alive = False  # its pipe closed; the exit is reaped a moment later

    async def reap_later() -> None:
        await asyncio.sleep(0.1)
        first.crash("exited with status 1")

    reaper = asyncio.create_task(reap_later())
    async with sup.lease("k") as second:
        assert second is not first
    await reaper
    assert sup.snapshot()[0]["last_error"] == "exited with status 1"
