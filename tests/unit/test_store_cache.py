"""The read cache is invalidated by any commit: the gateway's own connection or another process's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store import Store


async def test_cache_follows_every_commit(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite")
    try:
        calls = 0

        async def load() -> int:
            nonlocal calls
            calls += 1
            async with store.conn.execute("SELECT count(*) FROM users") as cur:
                row = await cur.fetchone()
            return int(row[0])

        assert await store.cache.get("users", load) == 0
        assert await store.cache.get("users", load) == 0
        assert calls == 1  # served from the cache
        await store.users.ensure("alice", "user")  # a commit on the gateway's own connection
        assert await store.cache.get("users", load) == 1
        other = sqlite3.connect(tmp_path / "db.sqlite")  # like the CLI: another connection, another process
        other.execute("INSERT INTO users(name, role, created_at) VALUES ('bob', 'user', 0)")
        other.commit()
        other.close()
        assert await store.cache.get("users", load) == 2
        assert calls == 3
        assert store.cache.hits == 1
    finally:
        await store.close()
