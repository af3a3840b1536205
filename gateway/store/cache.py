"""A read cache that is exactly as fresh as the database.

Every MCP request needs the caller's token, profile and consent: a few small reads that would each
cost a round trip through aiosqlite's thread. The cache keeps their results until the database
changes. It asks SQLite itself, through a second plain connection: `PRAGMA data_version` changes
whenever any *other* connection commits — the gateway's own aiosqlite connection, or a `gigmcp`
CLI in another process — so a revocation still takes effect on the very next request. The probe is
a microsecond-scale call on the event loop's thread; no lock is taken in WAL mode.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 10_000


class VersionedCache:
    def __init__(self, db_path: Path) -> None:
        self._probe = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, check_same_thread=False)
        self._version: int | None = None
        self._entries: dict[Hashable, Any] = {}
        self.hits = 0
        self.misses = 0

    def _data_version(self) -> int:
        return int(self._probe.execute("PRAGMA data_version").fetchone()[0])

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        version = self._data_version()
        if version != self._version:
            self._entries.clear()
            self._version = version
        if key in self._entries:
            self.hits += 1
            return self._entries[key]  # type: ignore[no-any-return]
        self.misses += 1
        value = await load()
        # Keep it only if nothing was committed while it loaded: otherwise it may already be stale.
        if self._data_version() == version:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = value
        return value

    def close(self) -> None:
        self._probe.close()
