"""The identity read cache: emptied by writes to identity tables from any connection, kept by audit writes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from gateway.store import Store


async def _loads_after(store: Store, path: Path, write: str, params: tuple[object, ...] = ()) -> int:
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        return "value"

    assert await store.cache.get("k", load) == "value"
    other = sqlite3.connect(path, isolation_level=None)  # like a CLI in another process
    try:
        other.execute(write, params)
    finally:
        other.close()
    before = loads
    await store.cache.get("k", load)
    return loads - before


async def test_audit_writes_and_token_touches_keep_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = await Store.open(path)
    try:
        user = await store.users.create("alice", "user")
        assert user is not None
        assert await _loads_after(store, path, "INSERT INTO tool_calls (at, user, server, tool, duration_ms, outcome) "
                                  "VALUES (?, 'alice', 'echo', 'echo', 1, 'ok')", (time.time(),)) == 0
        assert await _loads_after(store, path, "INSERT INTO sandbox_events (at, server, event, detail) "
                                  "VALUES (?, 'echo', 'spawn', '')", (time.time(),)) == 0
        token = await store.tokens.create(user_id=user.id, profile_id=None, name="t", token_hash=b"h" * 32,
                                          prefix="p", expires_at=None)
        assert await _loads_after(store, path, "UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                                  (time.time(), token.id)) == 0
    finally:
        await store.close()


async def test_identity_writes_from_another_connection_empty_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = await Store.open(path)
    try:
        user = await store.users.create("bob", "user")
        assert user is not None
        token = await store.tokens.create(user_id=user.id, profile_id=None, name="t", token_hash=b"h" * 32,
                                          prefix="p", expires_at=None)
        assert await _loads_after(store, path, "UPDATE api_tokens SET revoked_at = ? WHERE id = ?",
                                  (time.time(), token.id)) == 1
        assert await _loads_after(store, path, "UPDATE users SET role = 'admin' WHERE id = ?", (user.id,)) == 1
        assert await _loads_after(store, path, "DELETE FROM users WHERE id = ?", (user.id,)) == 1
    finally:
        await store.close()


async def test_triggers_are_installed_once_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    for _ in range(2):
        store = await Store.open(path)
        await store.close()
    conn = sqlite3.connect(path)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    conn.close()
    assert len(names) == len(set(names)) and "gen_users_insert" in names
    assert not any(n.startswith("gen_tool_calls") for n in names)


async def test_a_request_sees_commits_made_before_it_began_and_probes_once(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = await Store.open(path)
    try:
        user = await store.users.create("carol", "user")
        assert user is not None
        loads = 0

        async def load() -> int:
            nonlocal loads
            loads += 1
            return loads

        async def request() -> int:
            store.cache.begin_request()
            first = await store.cache.get("k", load)
            assert await store.cache.get("k", load) == first  # the same request: served from the cache
            return first

        assert await asyncio.create_task(request()) == 1
        assert await asyncio.create_task(request()) == 1
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("UPDATE users SET role = 'admin' WHERE id = ?", (user.id,))
        other.close()
        assert await asyncio.create_task(request()) == 2  # the next request reloads
    finally:
        await store.close()
