"""Migration 2 on top of a database that has only migration 1: data kept, new tables usable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store import Store
from gateway.store.migrations import MIGRATIONS


def _v1_database(path: Path) -> None:
    version, sql = MIGRATIONS[0]
    assert version == 1
    conn = sqlite3.connect(path)
    conn.executescript(sql)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute("INSERT INTO users(name, role, created_at) VALUES ('admin', 'admin', 0)")
    conn.execute("INSERT INTO profiles(user_id, slug, is_default, created_at) VALUES (1, 'admin-default', 1, 0)")
    conn.commit()
    conn.close()


async def test_upgrade_from_version_1_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _v1_database(path)
    store = await Store.open(path)
    try:
        admin = await store.users.by_name("admin")
        assert admin is not None
        profile = await store.profiles.default_for(admin.id)
        assert profile is not None and profile.slug == "admin-default"
        async with store.conn.execute("SELECT MAX(version) FROM schema_version") as cur:
            row = await cur.fetchone()
        assert row is not None and row[0] == MIGRATIONS[-1][0]
        for table in ("api_tokens", "tool_settings", "consents", "credentials", "vault_canary"):
            async with store.conn.execute(f"SELECT count(*) FROM {table}") as cur:
                assert tuple(await cur.fetchone()) == (0,)
    finally:
        await store.close()


async def test_reopening_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "gig.db"
    for _ in range(2):
        store = await Store.open(path)
        await store.users.ensure("admin", "admin")
        await store.close()
    store = await Store.open(path)
    try:
        assert [u.name for u in await store.users.list()] == ["admin"]
    finally:
        await store.close()
