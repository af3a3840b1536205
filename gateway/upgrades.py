"""Staged upgrades: a new version is installed beside the old one, which keeps serving until consent.

When an admin installs a new version with `staged`, the previous one is *held*: a user who approved
the held manifest but not yet the new one keeps being served by the held version (its own install
directory, its own sandbox). When that user consents to the new manifest, their next call switches:
the old sandbox is detached from its slot at once, so the call (and every later one) starts the new
version, while the old process finishes the calls it is running and only then closes. A user who
approved neither is asked for consent to the new version, as without staging.

One version is held per server (the one that was current when the upgrade was staged), in memory:
after a restart, users who have not approved the current version are asked to.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable, Mapping
from typing import Any

from gateway.backends import LiveBackend
from gateway.mcp.aggregator import Lease
from gateway.store import InstalledServer, Store
from sandbox.supervisor import Supervisor


class StagedUpgrades:
    def __init__(self, store: Store, installed: Mapping[str, InstalledServer], supervisor: Supervisor[LiveBackend],
                 *, drain_timeout_s: float) -> None:
        self._store = store
        self._installed = installed  # the gateway's live map of current versions
        self._supervisor = supervisor
        self._drain_timeout_s = drain_timeout_s
        self.held: dict[str, InstalledServer] = {}
        self._retiring: set[asyncio.Task[bool]] = set()

    def stage(self, previous: InstalledServer) -> None:
        self.held[previous.name] = previous

    def clear(self, name: str) -> None:
        self.held.pop(name, None)

    async def serving(self, user_id: int, current: InstalledServer) -> InstalledServer:
        """The version this user runs: the held one while they approved it and not yet `current`."""
        held = self.held.get(current.name)
        if held is None or held.runtime_hash == current.runtime_hash:
            return current
        consents = self._store.consents
        if await consents.has(user_id, current.name, current.runtime_hash):
            return current
        if await consents.has(user_id, held.name, held.runtime_hash):
            return held
        return current

    async def select_version(self, installed: InstalledServer, profile_key: Hashable) -> InstalledServer:
        """The `BackendFactory` hook: which version a (server, profile) sandbox is spawned with."""
        if installed.name not in self.held or not isinstance(profile_key, int):
            return installed
        profile = await self._store.profiles.by_id(profile_key)
        return await self.serving(profile.user_id, installed) if profile else installed

    def lease(self, user_id: int, gated: Lease, raw: Lease) -> Lease:
        """A profile's lease: the version the user runs, in-flight calls counted on the process."""

        @contextlib.asynccontextmanager
        async def versioned(key: Hashable) -> AsyncIterator[Any]:
            name = str(key[0]) if isinstance(key, tuple) else str(key)
            current = self._installed.get(name)
            inner = gated
            if current is not None:
                serving = await self.serving(user_id, current)
                # The held version was approved (serving() checked it); the gate knows only the current one.
                inner = raw if serving is not current else gated
                await self._retire_stale(key, serving)
            async with inner(key) as handle:
                counted = isinstance(handle, LiveBackend)
                if counted:
                    handle.enter()
                try:
                    yield handle
                finally:
                    if counted:
                        handle.leave()

        return versioned

    async def _retire_stale(self, key: Hashable, serving: InstalledServer) -> None:
        for live_key, worker in self._supervisor.live():
            if live_key != key or not worker.runtime_hash or worker.runtime_hash == serving.runtime_hash:
                continue
            worker.drain_timeout_s = self._drain_timeout_s
            task = asyncio.create_task(self._supervisor.stop(key, f"switched to {serving.version}"))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            # stop() detaches the worker from its slot in its first step; let it run before this call leases,
            # so the call starts the new version while the old one drains in the background.
            await asyncio.sleep(0)
            return
